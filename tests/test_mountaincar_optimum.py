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
