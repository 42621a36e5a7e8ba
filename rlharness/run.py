"""What a training script does once its arguments are valid: build, train, report."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from envs import make_vec_env  # noqa: E402
from rlharness import cli  # noqa: E402
from rlharness.agent import Agent  # noqa: E402
from rlharness.trainer import Trainer  # noqa: E402


def run(args: argparse.Namespace, make_agent: Callable[..., Agent], algo: str) -> int:
    """Train ``make_agent(args, env, schedule)`` as the flags say; print a summary."""
    env = make_vec_env(args.env, getattr(args, "n_envs", 1), seed=args.seed)
    eval_env = make_vec_env(args.env, 1, seed=args.seed + 1000)
    agent = make_agent(args, env, cli.make_schedule_from_args(args))
    trainer = Trainer(
        agent, env, total_steps=args.total_steps, log_dir=args.logdir, lr_clock=args.lr_clock,
        eval_env=eval_env, eval_freq=args.eval_freq, eval_episodes=args.eval_episodes,
        seed=args.seed, progress=not args.no_progress,
    )
    summary = trainer.train()
    trainer.writer.close()
    print(
        f"{algo} on {args.env}: eval mean return {summary['eval/mean_return']:.1f} "
        f"({args.eval_episodes} greedy episodes) after {summary['env_steps']} env steps, "
        f"{summary['updates']} updates, {summary['episodes']} episodes; "
        f"{summary['seconds']:.1f} s, {summary['sps']:.0f} env steps/s\n"
        f"logs: tensorboard --logdir {args.logdir}"
    )
    return 0
