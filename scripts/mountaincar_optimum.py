"""The best return any policy can get on MountainCar-v0, to put an evaluation in perspective.

For each start state, a search over bang-bang action sequences (full throttle left or right,
switching direction at most ``--switches`` times) in gymnasium's MountainCar-v0 dynamics,
vectorized over every choice of switch times; the best sequence found is replayed in the real
env to confirm its length. Printed: the optimum on the episodes of each seed's final greedy
evaluation (the Trainer's evaluation seed after ``--total-steps`` env steps), and its
expectation over the start distribution (positions uniform in [-0.6, -0.4], at rest).

    python scripts/mountaincar_optimum.py --seeds 0 1 2 3 4 --total-steps 120000
    python scripts/mountaincar_optimum.py --eval-seed 12345 --episodes 1000

With ``--eval-seed``, the optimum on the episodes of ``scripts/evaluate.py RUN --episodes N
--seed S`` instead (any MountainCar-v0 run: the episodes depend only on the seed), so a policy's
mean there minus this optimum is its loss in steps per episode.
"""

from __future__ import annotations

import itertools
import os
import sys

import gymnasium as gym
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rlharness import cli  # noqa: E402  (no TensorFlow yet)

LIMIT = 200  # MountainCar-v0's TimeLimit


def build_parser() -> cli.ArgumentParser:
    parser = cli.ArgumentParser(prog="mountaincar_optimum.py",
                                description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=cli.seed, nargs="+", default=[0, 1, 2, 3, 4],
                        help="run seeds whose final evaluation episodes to solve")
    parser.add_argument("--total-steps", type=cli.positive_int, default=120_000,
                        help="env steps of those runs (the evaluation seed depends on them)")
    parser.add_argument("--episodes", type=cli.positive_int, default=20,
                        help="episodes per evaluation, as the Trainer's --eval-episodes")
    parser.add_argument("--eval-seed", type=cli.seed, default=None, metavar="S",
                        help="solve the episodes of evaluate.py --seed S instead of --seeds's")
    parser.add_argument("--switches", type=cli.non_negative_int, default=2,
                        help="most direction changes searched (3 costs ~40x the time of 2)")
    parser.add_argument("--grid", type=cli.positive_int, default=101,
                        help="start positions for the expectation over the start distribution")
    return parser


def bang_bang(first: int, times: np.ndarray, t: int) -> np.ndarray:
    """The action at step ``t`` of sequences that start with ``first`` (0: left, 2: right) and
    switch direction at each of their ``times`` (one row per sequence)."""
    return np.where((times <= t).sum(-1) % 2 == 0, first, 2 - first)


def steps_to_goal(env, position: float, velocity: float, switches: int):
    """Fewest steps (and the action sequence) from ``(position, velocity)`` to the flag among
    bang-bang sequences with at most ``switches`` switches; ``LIMIT`` if none arrives."""
    u = env.unwrapped
    best, best_actions = LIMIT, None
    for k in range(switches + 1):
        combos = list(itertools.combinations(range(1, LIMIT), k))
        times = np.array(combos, np.int64).reshape(len(combos), k)
        for first in (0, 2):
            p, v = np.full(len(times), position), np.full(len(times), velocity)
            arrival = np.full(len(times), LIMIT)
            for t in range(best):
                action = bang_bang(first, times, t)
                v = np.clip(v + (action - 1) * u.force - np.cos(3 * p) * u.gravity,
                            -u.max_speed, u.max_speed)
                p = np.clip(p + v, u.min_position, u.max_position)
                v[(p == u.min_position) & (v < 0)] = 0.0
                at_flag = (p >= u.goal_position) & (v >= u.goal_velocity)
                arrival[at_flag & (arrival == LIMIT)] = t + 1
                if arrival.min() < LIMIT:
                    i = int(arrival.argmin())
                    best = int(arrival[i])
                    best_actions = [int(bang_bang(first, times[i], s)) for s in range(best)]
                    break
    return best, best_actions


def replay(env, start, actions) -> int | None:
    """Steps the real env takes to terminate under ``actions`` from ``start`` (None: never)."""
    env.reset()
    env.unwrapped.state = np.array(start, np.float64)
    for t, action in enumerate(actions):
        if env.step(action)[2]:
            return t + 1
    return None


def episode_starts(env, seed: int, episodes: int) -> list[tuple[float, float]]:
    """Start states of an evaluation's ``episodes`` from ``seed``, as the Trainer's and
    evaluate.py's 1-env vector env plays them: one seeded reset, then the env's own stream."""
    starts = []
    env.reset(seed=seed)
    for _ in range(episodes):
        starts.append(tuple(env.unwrapped.state))
        env.reset()
    return starts


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cli.import_tensorflow_quietly()  # the Trainer's module holds the evaluation seed
    from rlharness.trainer import evaluation_seed

    env = gym.make("MountainCar-v0")

    def optimum(start) -> int:
        steps, actions = steps_to_goal(env, *start, args.switches)
        if actions is not None:
            assert replay(env, start, actions) == steps, "the real env disagrees with the search"
        return steps

    if args.eval_seed is not None:
        returns = [-optimum(s) for s in episode_starts(env, args.eval_seed, args.episodes)]
        print(f"optimum {np.mean(returns):.3f} on the {args.episodes} episodes of "
              f"evaluate.py --episodes {args.episodes} --seed {args.eval_seed}")
        return 0
    means = []
    for seed in args.seeds:
        returns = [-optimum(s) for s in episode_starts(env, evaluation_seed(seed, args.total_steps),
                                                      args.episodes)]
        means.append(np.mean(returns))
        print(f"seed {seed}: optimum {means[-1]:.2f} on its final evaluation's "
              f"{args.episodes} episodes (per episode: {' '.join(map(str, returns))})", flush=True)
    if len(means) > 1:
        print(f"mean over seeds: {np.mean(means):.2f}")
    grid = [-optimum((x, 0.0)) for x in np.linspace(-0.6, -0.4, args.grid)]
    print(f"expected optimum over the start distribution ({args.grid} positions): "
          f"{np.mean(grid):.2f} (from {min(grid)} to {max(grid)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
