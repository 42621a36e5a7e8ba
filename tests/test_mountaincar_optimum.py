"""scripts/mountaincar_optimum.py: the searched optimum is reached in the real MountainCar-v0,
and no shorter bang-bang sequence exists among those it searches."""

import importlib.util
import os

import gymnasium as gym
import numpy as np
from conftest import ROOT

spec = importlib.util.spec_from_file_location(
    "mountaincar_optimum", os.path.join(ROOT, "scripts", "mountaincar_optimum.py"))
optimum = importlib.util.module_from_spec(spec)
spec.loader.exec_module(optimum)


def test_the_searched_optimum_reaches_the_flag_in_the_real_env():
    env = gym.make("MountainCar-v0")
    steps, actions = optimum.steps_to_goal(env, -0.5, 0.0, 2)
    assert steps == len(actions) == 102
    assert optimum.replay(env, np.array([-0.5, 0.0]), actions) == 102
    assert optimum.steps_to_goal(env, -0.5, 0.0, 1) == (optimum.LIMIT, None)  # too few switches
    # a start already at speed near the flag: a few steps of pushing right
    steps, actions = optimum.steps_to_goal(env, 0.45, 0.05, 2)
    assert steps == 1 and actions == [2]
    # no sequence the search covers is shorter: every single-switch sequence from a start
    # that one switch solves, replayed in the real env
    steps, _ = optimum.steps_to_goal(env, -0.2, 0.0, 1)
    lengths = [optimum.replay(env, (-0.2, 0.0),
                              [first] * switch + [2 - first] * (optimum.LIMIT - switch))
               for first in (0, 2) for switch in range(1, steps)]
    assert min(n for n in lengths if n is not None) == steps


def test_eval_seed_solves_the_episodes_evaluate_py_runs(capsys):
    from envs import make_vec_env
    from rlharness.trainer import greedy_returns

    # evaluate.py --seed 7 plays a 1-env vector env reset with the seed: record the first
    # observation of each of its episodes under a bang-bang controller
    env = make_vec_env("MountainCar-v0", 1, training=False)
    firsts = []

    class Swing:  # push along the velocity: reaches the flag, not in the fewest steps
        def act(self, obs, explore=False):
            if obs[0, 1] == 0.0 and obs[0, 0] >= -0.6:  # at rest, not at the left wall: a start
                firsts.append(tuple(obs[0]))
            return np.where(obs[:, 1] < 0, 0, 2)

    returns = greedy_returns(Swing(), env, 3, 7)
    starts = optimum.episode_starts(gym.make("MountainCar-v0"), 7, 3)
    np.testing.assert_allclose(firsts[:3], starts, rtol=1e-6)
    assert optimum.main(["--eval-seed", "7", "--episodes", "3"]) == 0
    best = float(capsys.readouterr().out.split()[1])
    assert -200 < np.mean(returns) <= best < -80
