"""What a training script does once its arguments are valid: build, train, report."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from contextlib import suppress

from rlharness import cli, faults

cli.import_tensorflow_quietly()

from rlharness.agent import Agent  # noqa: E402
from rlharness.checkpoint import CheckpointError  # noqa: E402
from rlharness.trainer import Trainer  # noqa: E402


def run(args: argparse.Namespace, make_agent: Callable[..., Agent], algo: str, *,
        make_trainer: Callable[..., Trainer] = Trainer) -> int:
    """Train ``make_agent(args, env, schedule)`` as the flags say; print a summary.
    ``make_trainer`` builds the Trainer (a sweep trial passes a subclass that reports).

    Exit status: 0 done, 1 the loss diverged or writing the run's files failed, 2 bad
    input (a corrupt checkpoint included), 130 interrupted by Ctrl-C after saving a
    checkpoint.
    """
    env = cli.make_env_from_args(args, seed=args.seed)
    eval_env = cli.make_env_from_args(args, evaluation=True, seed=args.seed + 1000)
    agent = make_agent(args, env, cli.make_schedule_from_args(args))
    trainer = make_trainer(
        agent, env, total_steps=args.total_steps, log_dir=args.logdir, lr_clock=args.lr_clock,
        eval_env=eval_env, eval_freq=args.eval_freq, eval_episodes=args.eval_episodes,
        seed=args.seed, progress=not args.no_progress, checkpoint_every=args.checkpoint_every,
        progress_every=args.progress_every,
    )
    resume = f"python {sys.argv[0]} --logdir {args.logdir} --resume"
    try:
        if args.resume:
            try:
                path = trainer.restore()
            except CheckpointError as e:
                cli.fail(f"{e}; nothing was changed")
            print(f"resumed {path} at {trainer.global_step}")
            if trainer.global_step.env_steps >= args.total_steps:
                print(f"the run already has {args.total_steps} env steps; nothing to do")
                return 0
        else:
            cli.save_config(args, algo)
        summary = trainer.train()
    except FloatingPointError as e:
        with suppress(faults.RunIOError):
            trainer.writer.flush()
        last = trainer.checkpointer.latest or "none saved yet"
        cli.fail(f"stopped: {e}; the last good checkpoint is {last} (left intact)", status=1)
    except faults.RunIOError as e:
        cli.fail(_io_failure(e, args.logdir, trainer, resume), status=1)
    finally:
        trainer.writer.close()
    if summary["interrupted"]:
        print(f"interrupted at {summary['env_steps']} env steps; checkpoint saved: "
              f"{summary['checkpoint']}\ncontinue with: {resume}")
        return 130
    evaluation = (f"eval mean return {summary['eval/mean_return']:.1f} "
                  f"({args.eval_episodes} greedy episodes)" if args.eval_episodes
                  else "not evaluated (--eval-episodes 0)")
    print(
        f"{algo} on {args.env}: {evaluation} after {summary['env_steps']} env steps, "
        f"{summary['updates']} updates, {summary['episodes']} episodes; "
        f"{summary['seconds']:.1f} s, {summary['sps']:.0f} env steps/s\n"
        f"logs: tensorboard --logdir {args.logdir}   checkpoint: {summary['checkpoint']}"
    )
    return 0


_FIXES = {"the disk is full": "free space", "the disk quota is exceeded": "free space",
          "the file system is read-only": "make it writable",
          "permission is denied": "fix the permissions"}


def _io_failure(error: faults.RunIOError, logdir: str, trainer: Trainer, resume: str) -> str:
    """One line: what failed where, what survives, and the command that continues."""
    if not os.path.isdir(logdir):
        return f"{error}; the run directory {logdir} is gone, nothing is left to resume"
    latest = None
    with suppress(Exception):
        latest = trainer.checkpointer.latest
    fix = _FIXES.get(error.problem, "fix that")
    if latest is None:
        return f"{error}; no checkpoint was saved yet: {fix} and start the run again"
    steps = latest.rsplit("-", 1)[-1]
    return (f"{error}; the last good checkpoint is {latest} (intact), nothing before env "
            f"step {steps} is lost; {fix} and continue with: {resume}")
