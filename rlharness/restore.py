"""A trained agent from a run directory: the run's ``config.json`` rebuilds the agent, a
checkpoint fills in its weights. Nothing is retrained and nothing in the run is written.

:func:`read_run` and :func:`checkpoint_path` import no TensorFlow, so a wrong directory or
checkpoint name is a one-line error at once; :func:`load_agent` imports it.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
from dataclasses import dataclass


class RunDirError(ValueError):
    """Not a run directory, or no such checkpoint; the message names the fix."""


@dataclass
class Run:
    """A run directory's ``config.json``: the algorithm and the resolved training flags."""

    dir: str
    algo: str
    args: argparse.Namespace


def read_run(run_dir: str) -> Run:
    """The run in ``run_dir``, read from its ``config.json`` (TF-free)."""
    if not os.path.isdir(run_dir):
        raise RunDirError(f"{run_dir} is not a directory; pass a run directory that a "
                          "training script wrote (its --logdir)")
    path = os.path.join(run_dir, "config.json")
    try:
        with open(path) as f:
            config = json.load(f)
        algo, args = config["algo"], argparse.Namespace(**config["args"])
    except FileNotFoundError:
        raise RunDirError(f"{run_dir} is not a run directory (it has no config.json); pass "
                          "the --logdir of a training run") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise RunDirError(f"{path} is unreadable ({type(e).__name__}: {e}); it is not a "
                          "run's config") from None
    from agents import ALGORITHMS
    from rlharness.sweep.spec import load_script, script_path

    if algo not in ALGORITHMS:
        raise RunDirError(f"{run_dir} is a run of {algo!r}, which this version does not know "
                          f"(known: {', '.join(sorted(ALGORITHMS))})")
    # a flag added after the run was trained takes its default (the behaviour it had then)
    defaults = load_script(script_path(algo)).build_parser().parse_args([])
    return Run(run_dir, algo, argparse.Namespace(**{**vars(defaults), **vars(args)}))


def checkpoints(run_dir: str) -> list[str]:
    """Names of the checkpoints in ``run_dir``, ``ckpt-N``, by N."""
    names = [os.path.basename(p)[: -len(".index")]
             for p in glob.glob(os.path.join(run_dir, "checkpoints", "ckpt-*.index"))]
    return sorted(names, key=lambda n: int(n.split("-")[1]))


def checkpoint_path(run_dir: str, name: str | None = None) -> str:
    """Path of checkpoint ``name`` (``ckpt-N``, or ``N``) in ``run_dir``; default the latest
    (TF-free)."""
    available = checkpoints(run_dir)
    if not available:
        raise RunDirError(f"{run_dir} has no checkpoint (the run stopped before its first "
                          "one); train it longer or resume it")
    if name is None:
        name = available[-1]
    elif re.fullmatch(r"\d+", name):
        name = f"ckpt-{name}"
    if name not in available:
        raise RunDirError(f"{run_dir} has no checkpoint {name!r}; it has "
                          f"{', '.join(available)} (--checkpoint NAME)")
    return os.path.join(run_dir, "checkpoints", name)


def load_agent(run: Run, checkpoint: str, env):
    """The run's agent, built by its training script's ``make_agent`` with the run's flags
    for the vector env ``env``, with the weights of ``checkpoint`` (a path from
    :func:`checkpoint_path`). Returns ``(agent, global_step)`` as they were saved.

    If ``env`` normalizes observations (``cli.make_env_from_args(run.args, evaluation=True)``
    of a ``--normalize-obs`` run), it gets the checkpoint's running statistics, frozen, as the
    Trainer's evaluation env gets them (:func:`envs.sync_normalization`)."""
    from rlharness import cli
    from rlharness.checkpoint import Checkpointer
    from rlharness.step import GlobalStep
    from rlharness.sweep.spec import load_script, script_path

    script = load_script(script_path(run.algo))
    agent = script.make_agent(run.args, env, cli.make_schedule_from_args(run.args))
    step = GlobalStep()
    agent.bind(step, run.args.total_steps)
    checkpointer = Checkpointer(os.path.dirname(checkpoint),
                                {"global_step": step, **agent.checkpoint_objects()})
    _, arrays = checkpointer.restore(checkpoint)
    agent.load_numpy_state({k[len("agent/"):]: v for k, v in arrays.items()
                            if k.startswith("agent/")})
    _restore_normalization(run, checkpoint, {k[len("env/"):]: v for k, v in arrays.items()
                                             if k.startswith("env/")}, env)
    return agent, step


def _restore_normalization(run: Run, checkpoint: str, env_state: dict, env) -> None:
    """Give ``env`` the observation statistics of the training env saved in ``env_state``."""
    from envs import sync_normalization
    from envs.make import observation_normalizer
    from envs.state import EnvStateError, set_env_state
    from rlharness import cli
    from rlharness.checkpoint import CheckpointError

    if observation_normalizer(env) is None:
        return
    if not env_state:
        raise CheckpointError(f"{checkpoint} has no observation statistics (the run's env "
                              "state could not be saved); evaluate a run whose env can")
    train_env = cli.make_env_from_args(run.args, seed=run.args.seed)
    try:
        set_env_state(train_env, env_state)
    except EnvStateError as e:
        raise CheckpointError(f"{checkpoint}: {e}") from None
    sync_normalization(train_env, env)
    train_env.close()
