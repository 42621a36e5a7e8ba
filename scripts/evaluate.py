"""Evaluate a trained agent: greedy episodes from a run directory's checkpoint, no retraining.

    python scripts/evaluate.py runs/dqn-CartPole-v1-...               # 20 episodes, fresh seed
    python scripts/evaluate.py RUN --seed run     # the run's final evaluation, exactly
    python scripts/evaluate.py RUN --episodes 3 --video videos/       # needs the `video` extra

The agent is rebuilt from the run's config.json by its training script's make_agent, with
the checkpoint's weights; the run directory is only read. A --normalize-obs run's episodes
see observations normalized by the checkpoint's running statistics, frozen (as in the
run's own evaluations).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import secrets
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rlharness import cli  # noqa: E402  (no TensorFlow yet)


def build_parser() -> argparse.ArgumentParser:
    p = cli.ArgumentParser(prog="evaluate.py", description=__doc__.splitlines()[0])
    p.add_argument("run_dir", metavar="RUN_DIR", help="a training run's --logdir")
    p.add_argument("--episodes", type=cli.positive_int, default=20,
                   help="greedy episodes (default: %(default)s)")
    p.add_argument("--checkpoint", default=None, metavar="ckpt-N",
                   help="which checkpoint, ckpt-N or N (default: the latest)")
    p.add_argument("--seed", type=seed_or_run, default=None, metavar="N|run",
                   help="env seed of the first episode (the next ones continue its stream); "
                        "'run': the seed of the run's own evaluation at that checkpoint, "
                        "which it reproduces exactly (default: a fresh random seed, printed)")
    p.add_argument("--video", default=None, metavar="DIR",
                   help="record every episode as an mp4 in DIR (a new or empty directory) "
                        "with gymnasium's RecordVideo; needs pip install -e '.[video]'")
    p.add_argument("--render", action="store_true",
                   help="show the episodes in a window (render_mode='human'; needs a display "
                        "and pygame)")
    return p


def seed_or_run(text: str) -> int | str:
    return text if text == "run" else cli.seed(text)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Everything that can be checked without TensorFlow."""
    args = build_parser().parse_args(argv)
    cli.open_run(args)
    if args.video and args.render:
        cli.fail("--video and --render exclude each other (one render mode); drop one")
    needs = (["moviepy", "pygame"] if args.video else []) + (["pygame"] if args.render else [])
    missing = [m for m in needs if importlib.util.find_spec(m) is None]
    if missing:
        flag, extra = ("--video", "video") if args.video else ("--render", "video")
        cli.fail(f"{flag} needs {' and '.join(missing)}, which is not installed; "
                 f"pip install -e '.[{extra}]'")
    if args.video:
        cli.refuse_used_output(args.video, "--video")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cli.import_tensorflow_quietly()
    import numpy as np

    from rlharness.checkpoint import CheckpointError
    from rlharness.restore import load_agent
    from rlharness.trainer import evaluation_seed, greedy_returns

    run = args.run
    if args.seed == "run":
        seed = evaluation_seed(run.args.seed, int(args.checkpoint_path.rsplit("-", 1)[1]))
    else:
        seed = secrets.randbelow(2**31) if args.seed is None else args.seed
    render_mode = "rgb_array" if args.video else "human" if args.render else None
    if args.video:
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # off-screen frames, no display
    kwargs = {"render_mode": render_mode} if render_mode else {}
    env = cli.make_env_from_args(run.args, evaluation=True, **kwargs)  # as the Trainer's
    if args.video:
        from gymnasium.wrappers.vector import RecordVideo

        with warnings.catch_warnings():  # "episodes will not contain the last frame"
            warnings.simplefilter("ignore")
            env = RecordVideo(env, args.video, episode_trigger=lambda i: i < args.episodes,
                              name_prefix=f"{run.algo}-{run.args.env}")
    try:
        agent, step = load_agent(run, args.checkpoint_path, env)
    except CheckpointError as e:
        cli.fail(str(e))
    returns = np.array(greedy_returns(agent, env, args.episodes, seed))
    env.close()
    name = os.path.basename(args.checkpoint_path)
    print(f"{run.algo} on {run.args.env}, {name} ({step.env_steps} env steps): mean return "
          f"{returns.mean():.1f} ± {returns.std():.1f} over {args.episodes} greedy episodes "
          f"(--seed {seed}; min {returns.min():.1f}, max {returns.max():.1f})")
    if args.video:
        print(f"videos: {args.video}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
