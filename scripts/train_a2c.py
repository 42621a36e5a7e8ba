"""Train A2C on a gymnasium environment (CartPole-v1 by default), lr decayed by the global step.

Discrete or Box actions (a diagonal Gaussian policy, e.g. --env Pendulum-v1).

    python scripts/train_a2c.py                 # then: tensorboard --logdir runs
"""

from __future__ import annotations

import argparse
import sys

from rlharness import cli
from rlharness.schedule_flags import schedule_flag, schedule_spec


def build_parser() -> argparse.ArgumentParser:
    p = cli.ArgumentParser(prog="train_a2c.py", description=__doc__.splitlines()[0])
    cli.add_run_args(p, env="CartPole-v1", total_steps=200_000, n_envs=8)
    cli.add_lr_args(p, lr=1e-3, schedule="polynomial", decay_steps=5_000, decay_rate=0.5)
    g = p.add_argument_group(
        "A2C (Stable-Baselines3 names)",
        "The defaults solve CartPole-v1 in 200k env steps: 8 envs x 5 steps per update make "
        "5000 updates, over which the lr decays linearly from 1e-3 to 1e-5.")
    g.add_argument("--n-steps", type=cli.positive_int, default=5,
                   help="rollout length per sub-env: one update every n-steps vector steps "
                        "(default: %(default)s)")
    g.add_argument("--gamma", type=cli.unit_interval, default=0.99, help="(default: %(default)s)")
    g.add_argument("--gae-lambda", type=cli.unit_interval, default=1.0,
                   help="GAE lambda, 1 = n-step returns (default: %(default)s)")
    g.add_argument("--ent-coef", type=schedule_flag, default="0.0", metavar="SCHEDULE",
                   help="entropy bonus coefficient: a number or a schedule such as "
                        "'linear(0.01, end=0, steps=5000)', clock updates by default "
                        "(default: %(default)s)")
    g.add_argument("--vf-coef", type=cli.non_negative_float, default=0.5,
                   help="value loss coefficient (default: %(default)s)")
    g.add_argument("--max-grad-norm", type=cli.positive_float, default=0.5,
                   help="gradient-norm clipping (default: %(default)s)")
    g.add_argument("--hidden-sizes", type=cli.positive_int, nargs="+", default=[64, 64],
                   metavar="N", help="MLP hidden layer sizes (default: 64 64)")
    g.add_argument("--shared", action=argparse.BooleanOptionalAction, default=False,
                   help="one trunk for the policy and value heads (default: separate nets); "
                        "it wants a weaker value loss, e.g. --vf-coef 0.1 --max-grad-norm 5")
    g.add_argument("--normalize-advantage", action=argparse.BooleanOptionalAction,
                   default=False, help="standardize advantages per rollout (default: off)")
    g.add_argument("--use-rms-prop", action=argparse.BooleanOptionalAction, default=False,
                   help="RMSprop (rho 0.99, eps 1e-5), SB3's A2C optimizer, instead of Adam "
                        "(default: Adam)")
    cli.add_on_policy_args(g)
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return cli.parse(build_parser(), argv, algo="a2c", box=True, check=_check)


def _check(args: argparse.Namespace) -> None:
    cli.check_rollout(args)


def make_agent(args: argparse.Namespace, env, schedule):
    from agents.a2c import A2C

    return A2C(
        env.single_observation_space, env.single_action_space, learning_rate=schedule,
        n_steps=args.n_steps, gamma=args.gamma, gae_lambda=args.gae_lambda,
        ent_coef=schedule_spec(args.ent_coef), vf_coef=args.vf_coef,
        max_grad_norm=args.max_grad_norm,
        hidden_sizes=args.hidden_sizes, shared=args.shared,
        normalize_advantage=args.normalize_advantage, use_rms_prop=args.use_rms_prop,
        log_std_init=args.log_std_init,
        use_sde=args.use_sde, sde_sample_freq=args.sde_sample_freq,
        policy=args.policy,
        update_mode=args.update_mode, jit_compile=args.jit_compile,
        seed=args.seed,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from rlharness.run import run

    return run(args, make_agent, algo="a2c")


if __name__ == "__main__":
    sys.exit(main())
