"""LunarLander-v3 (the `box2d` extra): it runs, and a missing Box2D is a one-line error."""

from __future__ import annotations

import os

import numpy as np
import pytest
from conftest import run_script_without

from envs import finished_episodes, make_vec_env


def test_lunar_lander_runs_a_few_hundred_steps():
    pytest.importorskip("Box2D", reason="the box2d extra is not installed")
    env = make_vec_env("LunarLander-v3", 2, seed=0)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (2, 8)
    ended = 0
    for _ in range(300):
        obs, rewards, _, _, infos = env.step(env.action_space.sample())
        ended += len(finished_episodes(infos))
    assert np.isfinite(obs).all() and ended >= 1  # random landers crash within ~100 steps


@pytest.mark.parametrize("blocked", ["Box2D", "pygame"])
def test_missing_box2d_names_the_extra_before_anything_starts(blocked, tmp_path):
    """The import fails for real (the module is blocked in sys.modules), nothing mocked."""
    logdir = str(tmp_path / "run")
    result = run_script_without(blocked, "train_dqn.py", "--env", "LunarLander-v3",
                                "--logdir", logdir)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"train_dqn.py: error: environment 'LunarLander-v3' needs {blocked}, which is not "
        "installed; pip install -e '.[box2d]'")
    assert not os.path.exists(logdir)  # refused before the run directory is made
