"""Train PPO on a gymnasium environment (CartPole-v1 by default), lr and clip range annealed.

Discrete or Box actions (a diagonal Gaussian policy, e.g. --env Pendulum-v1).

    python scripts/train_ppo.py                 # then: tensorboard --logdir runs
"""

from __future__ import annotations

import argparse
import sys

from rlharness import cli
from rlharness.schedule_flags import optional_spec, schedule_flag, schedule_spec

#: rl-zoo3's CartPole-v1 settings; SB3's lin_X is 'linear(X, end=0, steps=TOTAL)@env_steps'.
CARTPOLE_STEPS = 100_000


def build_parser() -> argparse.ArgumentParser:
    p = cli.ArgumentParser(prog="train_ppo.py", description=__doc__.splitlines()[0])
    cli.add_run_args(p, env="CartPole-v1", total_steps=CARTPOLE_STEPS, n_envs=8)
    cli.add_lr_args(p, lr=f"linear(1e-3, end=0, steps={CARTPOLE_STEPS})@env_steps",
                    schedule="constant", decay_steps=10_000, decay_rate=0.5)
    g = p.add_argument_group(
        "PPO (Stable-Baselines3 names)",
        "The defaults are rl-zoo3's CartPole-v1 settings (500 at 100k env steps): 8 envs x 32 "
        "steps per rollout, 20 epochs of one 256-sample minibatch, lr and clip range annealed "
        "linearly to 0 over the 100k env steps; with another --total-steps, give --lr and "
        "--clip-range too.")
    g.add_argument("--n-steps", type=cli.positive_int, default=32,
                   help="rollout length per sub-env: one round every n-steps vector steps "
                        "(default: %(default)s)")
    g.add_argument("--batch-size", type=cli.positive_int, default=256,
                   help="minibatch size; a rollout's remainder beyond a whole number of "
                        "minibatches is left out of each epoch (default: %(default)s)")
    g.add_argument("--n-epochs", type=cli.positive_int, default=20,
                   help="passes over each rollout (default: %(default)s)")
    g.add_argument("--gamma", type=cli.unit_interval, default=0.98, help="(default: %(default)s)")
    g.add_argument("--gae-lambda", type=cli.unit_interval, default=0.8,
                   help="GAE lambda (default: %(default)s)")
    g.add_argument("--clip-range", type=schedule_flag, metavar="SCHEDULE",
                   default=f"linear(0.2, end=0, steps={CARTPOLE_STEPS})@env_steps",
                   help="policy ratio clip epsilon: a number or a schedule, clock updates "
                        "unless given (default: %(default)s)")
    g.add_argument("--clip-range-vf", type=schedule_flag, default=None, metavar="SCHEDULE",
                   help="value clip range around the rollout's values, in reward units "
                        "(default: no value clipping)")
    g.add_argument("--ent-coef", type=schedule_flag, default="0.0", metavar="SCHEDULE",
                   help="entropy bonus coefficient: a number or a schedule "
                        "(default: %(default)s)")
    g.add_argument("--vf-coef", type=cli.non_negative_float, default=0.5,
                   help="value loss coefficient (default: %(default)s)")
    g.add_argument("--max-grad-norm", type=cli.positive_float, default=0.5,
                   help="gradient-norm clipping (default: %(default)s)")
    g.add_argument("--target-kl", type=cli.positive_float, default=None,
                   help="stop a round before a minibatch whose approx KL exceeds 1.5 x this "
                        "(default: no limit)")
    g.add_argument("--normalize-advantage", action=argparse.BooleanOptionalAction,
                   default=True, help="standardize advantages per minibatch (default: on)")
    g.add_argument("--hidden-sizes", type=cli.positive_int, nargs="+", default=[64, 64],
                   metavar="N", help="MLP hidden layer sizes (default: 64 64)")
    g.add_argument("--shared", action=argparse.BooleanOptionalAction, default=False,
                   help="one trunk for the policy and value heads (default: separate nets)")
    cli.add_on_policy_args(g)
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return cli.parse(build_parser(), argv, algo="ppo", box=True, check=_check)


def _check(args: argparse.Namespace) -> None:
    rollout = cli.check_rollout(args)
    if args.batch_size > rollout:
        cli.fail(f"--batch-size {args.batch_size} is larger than a rollout of --n-steps "
                 f"{args.n_steps} x --n-envs {args.n_envs} = {rollout}; lower --batch-size")


def make_agent(args: argparse.Namespace, env, schedule):
    """The PPO the flags describe."""
    from agents.ppo import PPO

    return PPO(
        env.single_observation_space, env.single_action_space, learning_rate=schedule,
        n_steps=args.n_steps, batch_size=args.batch_size, n_epochs=args.n_epochs,
        gamma=args.gamma, gae_lambda=args.gae_lambda,
        clip_range=schedule_spec(args.clip_range), clip_range_vf=optional_spec(args.clip_range_vf),
        ent_coef=schedule_spec(args.ent_coef), vf_coef=args.vf_coef,
        max_grad_norm=args.max_grad_norm, target_kl=args.target_kl,
        normalize_advantage=args.normalize_advantage, hidden_sizes=args.hidden_sizes,
        shared=args.shared, log_std_init=args.log_std_init, policy=args.policy,
        use_sde=args.use_sde, sde_sample_freq=args.sde_sample_freq,
        update_mode=args.update_mode, jit_compile=args.jit_compile,
        seed=args.seed,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from rlharness.run import run

    return run(args, make_agent, algo="ppo")


if __name__ == "__main__":
    sys.exit(main())
