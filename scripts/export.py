"""Export a trained agent's greedy policy as a TensorFlow SavedModel: observations -> actions.

    python scripts/export.py runs/dqn-CartPole-v1-... --out exported/cartpole

The SavedModel needs TensorFlow only (not this project) to run:

    import tensorflow as tf
    policy = tf.saved_model.load("exported/cartpole")
    actions = policy.serve(tf.constant(obs_batch, tf.float32))   # int64 [batch]
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rlharness import cli  # noqa: E402  (no TensorFlow yet)


def build_parser() -> argparse.ArgumentParser:
    p = cli.ArgumentParser(prog="export.py", description=__doc__.splitlines()[0])
    p.add_argument("run_dir", metavar="RUN_DIR", help="a training run's --logdir")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="the SavedModel directory to write (new or empty)")
    p.add_argument("--checkpoint", default=None, metavar="ckpt-N",
                   help="which checkpoint, ckpt-N or N (default: the latest)")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Everything that can be checked without TensorFlow."""
    args = build_parser().parse_args(argv)
    cli.open_run(args)
    cli.refuse_used_output(args.out, "--out")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cli.import_tensorflow_quietly()
    import keras
    import tensorflow as tf

    from envs import make_vec_env
    from rlharness.agent import Agent
    from rlharness.checkpoint import CheckpointError
    from rlharness.restore import load_agent

    run = args.run
    env = make_vec_env(run.args.env, 1)
    try:
        agent, step = load_agent(run, args.checkpoint_path, env)
    except CheckpointError as e:
        cli.fail(str(e))
    obs_shape = tuple(env.single_observation_space.shape)
    env.close()
    if type(agent).greedy_actions is Agent.greedy_actions:
        cli.fail(f"{run.algo} agents cannot be exported yet: {type(agent).__name__} has no "
                 "greedy_actions (the greedy policy in TensorFlow ops); add one")
    archive = keras.export.ExportArchive()
    for obj in agent.checkpoint_objects().values():
        if isinstance(obj, keras.layers.Layer):  # the networks (not the optimizer)
            archive.track(obj)
    archive.add_endpoint("serve", agent.greedy_actions,
                         input_signature=[tf.TensorSpec((None, *obs_shape), tf.float32)])
    archive.write_out(args.out, verbose=False)
    print(f"{run.algo} on {run.args.env}, {os.path.basename(args.checkpoint_path)} "
          f"({step.env_steps} env steps): greedy policy saved to {args.out}\n"
          f"use: policy = tf.saved_model.load({args.out!r}); actions = policy.serve(obs)"
          f"  # float32 [batch, {', '.join(map(str, obs_shape))}] -> int64 [batch]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
