"""Train DQN on a gymnasium environment (CartPole-v1 by default), lr decayed by the global step.

    python scripts/train_dqn.py                 # then: tensorboard --logdir runs
"""

from __future__ import annotations

import argparse
import sys

from rlharness import cli
from rlharness.schedule_flags import optional_spec, schedule_flag, schedule_spec


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
    g.add_argument("--tau", type=schedule_flag, default="1.0", metavar="SCHEDULE",
                   help="target update coefficient in [0, 1], 1 = hard copy; a number or a "
                        "schedule, clock env_steps by default (default: %(default)s)")
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
    g.add_argument("--exploration-rate", type=schedule_flag, default=None, metavar="SCHEDULE",
                   help="epsilon as a schedule, e.g. 'linear(1.0, end=0.05, steps=10000)' or 0; "
                        "replaces the three --exploration-* flags above (clock env_steps by "
                        "default)")
    g.add_argument("--max-grad-norm", type=cli.positive_float, default=10.0,
                   help="gradient-norm clipping (default: %(default)s)")
    g.add_argument("--adam-eps", type=cli.positive_float, default=1e-7,
                   help="Adam's epsilon, added to the root of its second-moment estimate; "
                        "larger values damp the steps of small, noisy gradients (Rainbow: "
                        "1.5e-4) (default: %(default)s, Keras's)")
    g.add_argument("--hidden-sizes", type=cli.positive_int, nargs="+", default=[256, 256],
                   metavar="N", help="MLP hidden layer sizes (default: 256 256)")
    g.add_argument("--double", action=argparse.BooleanOptionalAction, default=True,
                   help="Double DQN targets (default: on)")
    g.add_argument("--save-replay", action=argparse.BooleanOptionalAction, default=True,
                   help="keep the replay buffer in checkpoints (default: on); off: small, fast "
                        "checkpoints, but --resume starts from an empty replay and waits "
                        "--learning-starts env steps before it trains again (README)")
    r = p.add_argument_group(
        "Rainbow components (Hessel et al. 2018), each independent; see docs/dqn.md")
    r.add_argument("--rainbow", action="store_true",
                   help="all five components with Double DQN: --double --dueling --n-step 3 "
                        "--prioritized --noisy --distributional, each unless given (ε keeps "
                        "its schedule); solves CartPole-v1 in 50k env steps (README)")
    r.add_argument("--dueling", action=argparse.BooleanOptionalAction, default=False,
                   help="dueling value/advantage heads (Wang et al. 2016) (default: off)")
    r.add_argument("--n-step", type=cli.positive_int, default=1,
                   help="n-step returns, cut at episode ends (default: %(default)s)")
    r.add_argument("--prioritized", action=argparse.BooleanOptionalAction, default=False,
                   help="proportional prioritized replay (Schaul et al. 2016) (default: off)")
    r.add_argument("--per-alpha", type=cli.unit_interval, default=0.6,
                   help="priority exponent alpha (default: %(default)s)")
    r.add_argument("--per-beta", type=schedule_flag, default=None, metavar="SCHEDULE",
                   help="importance-sampling exponent beta (default: linear from 0.4 to 1 "
                        "over --total-steps env steps)")
    r.add_argument("--per-eps", type=cli.positive_float, default=1e-6,
                   help="added to |TD error| in priorities (default: %(default)s)")
    r.add_argument("--noisy", action=argparse.BooleanOptionalAction, default=False,
                   help="factorised Gaussian noisy output layers (Fortunato et al. 2018) "
                        "(default: off)")
    r.add_argument("--distributional", action=argparse.BooleanOptionalAction, default=False,
                   help="C51 categorical distribution of returns (Bellemare et al. 2017) "
                        "(default: off)")
    r.add_argument("--n-atoms", type=cli.positive_int, default=51, help="(default: %(default)s)")
    r.add_argument("--v-min", type=float, default=0.0, help="C51 support (default: %(default)s)")
    r.add_argument("--v-max", type=float, default=100.0,
                   help="C51 support (default: %(default)s)")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = build_parser()

    def check(args: argparse.Namespace) -> None:
        if args.rainbow and not args.resume:
            given = cli._given_flags(parser, argv)
            for key, value in RAINBOW.items():
                if key not in given:
                    setattr(args, key, value)
        _check(args)

    return cli.parse(parser, argv, algo="dqn", check=check)


def _check(args: argparse.Namespace) -> None:
    tau = schedule_spec(args.tau)
    if tau.name == "constant" and tau.initial > 1:
        cli.fail(f"--tau {args.tau} must be in [0, 1] (1: hard target copies)")
    if args.distributional and args.v_max <= args.v_min:
        cli.fail(f"--v-max {args.v_max} must exceed --v-min {args.v_min}")
    if args.distributional and args.n_atoms < 2:
        cli.fail("--n-atoms must be at least 2 for --distributional")


#: What --rainbow sets, for each flag not given on the command line.
RAINBOW = {"double": True, "dueling": True, "n_step": 3, "prioritized": True, "noisy": True,
           "distributional": True}


def make_agent(args: argparse.Namespace, env, schedule):
    from agents.dqn import DQN
    from envs import frame_stack_size

    return DQN(
        env.single_observation_space, env.single_action_space, learning_rate=schedule,
        buffer_size=args.buffer_size, learning_starts=args.learning_starts,
        batch_size=args.batch_size, gamma=args.gamma, tau=schedule_spec(args.tau),
        train_freq=args.train_freq, gradient_steps=args.gradient_steps,
        target_update_interval=args.target_update_interval,
        exploration_fraction=args.exploration_fraction,
        exploration_initial_eps=args.exploration_initial_eps,
        exploration_final_eps=args.exploration_final_eps,
        exploration_rate=optional_spec(args.exploration_rate),
        max_grad_norm=args.max_grad_norm, adam_eps=args.adam_eps, double=args.double,
        dueling=args.dueling, n_step=args.n_step, prioritized=args.prioritized,
        per_alpha=args.per_alpha,
        per_beta=optional_spec(args.per_beta), per_eps=args.per_eps, noisy=args.noisy,
        distributional=args.distributional, n_atoms=args.n_atoms, v_min=args.v_min,
        v_max=args.v_max, hidden_sizes=args.hidden_sizes, policy=args.policy,
        frame_stack=frame_stack_size(env), save_replay=args.save_replay,
        update_mode=args.update_mode, jit_compile=args.jit_compile, seed=args.seed,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from rlharness.run import run

    return run(args, make_agent, algo="dqn")


if __name__ == "__main__":
    sys.exit(main())
