"""Export a trained agent's greedy policy as a TensorFlow SavedModel: observations -> actions.

    python scripts/export.py runs/dqn-CartPole-v1-... --out exported/cartpole

The SavedModel needs TensorFlow only (not this project) to run. It maps RAW observations to
the actions the env executes: a --normalize-obs run's observation normalization is baked in
(the checkpoint's statistics, frozen), and Box actions are clipped to the action bounds:

    import tensorflow as tf
    policy = tf.saved_model.load("exported/cartpole")
    actions = policy.serve(tf.constant(obs_batch, tf.float32))   # int64 [batch] or float32
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
    import gymnasium as gym
    import keras
    import tensorflow as tf

    from envs.make import observation_normalizer
    from rlharness.agent import Agent
    from rlharness.checkpoint import CheckpointError
    from rlharness.restore import load_agent

    run = args.run
    env = cli.make_env_from_args(run.args, evaluation=True)
    try:
        agent, step = load_agent(run, args.checkpoint_path, env)  # normalizer statistics too
    except CheckpointError as e:
        cli.fail(str(e))
    obs_shape = tuple(env.single_observation_space.shape)
    normalizer, action_space = observation_normalizer(env), env.single_action_space
    env.close()
    if type(agent).greedy_actions is Agent.greedy_actions:
        cli.fail(f"{run.algo} agents cannot be exported yet: {type(agent).__name__} has no "
                 "greedy_actions (the greedy policy in TensorFlow ops); add one")
    archive = keras.export.ExportArchive()
    for obj in agent.checkpoint_objects().values():
        if isinstance(obj, keras.layers.Layer):  # the networks (not the optimizer)
            archive.track(obj)
    archive.add_endpoint("serve", greedy_policy(agent, normalizer, action_space),
                         input_signature=[tf.TensorSpec((None, *obs_shape), tf.float32)])
    archive.write_out(args.out, verbose=False)
    out = ("int64 [batch]" if isinstance(action_space, gym.spaces.Discrete)
           else f"float32 [batch, {', '.join(map(str, action_space.shape))}]")
    print(f"{run.algo} on {run.args.env}, {os.path.basename(args.checkpoint_path)} "
          f"({step.env_steps} env steps): greedy policy saved to {args.out}"
          f"{' (observation normalization included)' if normalizer else ''}\n"
          f"use: policy = tf.saved_model.load({args.out!r}); actions = policy.serve(obs)"
          f"  # raw float32 [batch, {', '.join(map(str, obs_shape))}] -> {out}")
    return 0


def greedy_policy(agent, normalizer, action_space):
    """``raw obs -> action``: the frozen observation normalization of a ``--normalize-obs``
    run (``normalizer``: :func:`envs.make.observation_normalizer`'s ``(mean, scale)``), in
    the wrapper's dtypes, ``clip(float32((obs - mean) / scale), -CLIP, CLIP)``; the agent's
    greedy action; a Box action clipped to the space's bounds, as the env clips it."""
    import gymnasium as gym
    import numpy as np
    import tensorflow as tf

    from envs.make import CLIP

    def policy(obs):
        if normalizer is not None:
            mean, scale = normalizer
            centered = tf.cast(obs, np.result_type(np.float32, mean.dtype)) - mean
            scaled = tf.cast(centered, np.result_type(centered.dtype.as_numpy_dtype,
                                                      scale.dtype)) / scale
            obs = tf.clip_by_value(tf.cast(scaled, tf.float32), -CLIP, CLIP)
        actions = agent.greedy_actions(obs)
        if isinstance(action_space, gym.spaces.Box):
            actions = tf.clip_by_value(actions, action_space.low, action_space.high)
        return actions

    return policy


if __name__ == "__main__":
    sys.exit(main())
