"""Train DQN on a gymnasium environment (CartPole-v1 by default), lr decayed by the global step.

    python scripts/train_dqn.py                 # then: tensorboard --logdir runs
"""

from __future__ import annotations

import argparse
import sys

from rlharness import cli


def build_parser() -> argparse.ArgumentParser:
    p = cli.ArgumentParser(prog="train_dqn.py", description=__doc__.splitlines()[0])
    cli.add_run_args(p, env="CartPole-v1", total_steps=50_000)
    cli.add_lr_args(p, lr=2.3e-3, schedule="exponential", decay_steps=10_000, decay_rate=0.3)
    g = p.add_argument_group("DQN (Stable-Baselines3 names; rl-zoo3's CartPole-v1 settings)")
    g.add_argument("--batch-size", type=cli.positive_int, default=64, help="(default: %(default)s)")
    g.add_argument("--buffer-size", type=cli.positive_int, default=100_000,
                   help="replay capacity in transitions (default: %(default)s)")
    g.add_argument("--learning-starts", type=cli.non_negative_int, default=1000,
                   help="env steps before the first update (default: %(default)s)")
    g.add_argument("--gamma", type=cli.unit_interval, default=0.99, help="(default: %(default)s)")
    g.add_argument("--tau", type=cli.unit_interval, default=1.0,
                   help="target update coefficient, 1 = hard copy (default: %(default)s)")
    g.add_argument("--target-update-interval", type=cli.positive_int, default=10,
                   help="env steps between target updates (default: %(default)s)")
    g.add_argument("--train-freq", type=cli.positive_int, default=256,
                   help="env steps between training rounds (default: %(default)s)")
    g.add_argument("--gradient-steps", type=cli.positive_int, default=128,
                   help="updates per training round (default: %(default)s)")
    g.add_argument("--exploration-fraction", type=cli.unit_interval, default=0.16,
                   help="fraction of --total-steps over which epsilon decays "
                        "(default: %(default)s)")
    g.add_argument("--exploration-initial-eps", type=cli.unit_interval, default=1.0,
                   help="(default: %(default)s)")
    g.add_argument("--exploration-final-eps", type=cli.unit_interval, default=0.04,
                   help="(default: %(default)s)")
    g.add_argument("--max-grad-norm", type=cli.positive_float, default=10.0,
                   help="gradient-norm clipping (default: %(default)s)")
    g.add_argument("--hidden-sizes", type=cli.positive_int, nargs="+", default=[256, 256],
                   metavar="N", help="MLP hidden layer sizes (default: 256 256)")
    g.add_argument("--double", action=argparse.BooleanOptionalAction, default=True,
                   help="Double DQN targets (default: on)")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return cli.parse(build_parser(), argv, algo="dqn")


def make_agent(args: argparse.Namespace, env, schedule):
    from agents.dqn import DQN

    return DQN(
        env.single_observation_space, env.single_action_space, learning_rate=schedule,
        buffer_size=args.buffer_size, learning_starts=args.learning_starts,
        batch_size=args.batch_size, gamma=args.gamma, tau=args.tau,
        train_freq=args.train_freq, gradient_steps=args.gradient_steps,
        target_update_interval=args.target_update_interval,
        exploration_fraction=args.exploration_fraction,
        exploration_initial_eps=args.exploration_initial_eps,
        exploration_final_eps=args.exploration_final_eps,
        max_grad_norm=args.max_grad_norm, double=args.double,
        hidden_sizes=args.hidden_sizes, update_mode=args.update_mode, seed=args.seed,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from rlharness.run import run

    return run(args, make_agent, algo="dqn")


if __name__ == "__main__":
    sys.exit(main())
