"""Checkpoints: exact resume, kill -9, Ctrl-C, corrupt files, NaN, determinism."""

import glob
import os
import shutil
import signal
import subprocess
import sys
import time

import gymnasium as gym
import keras
import numpy as np
import pytest
from conftest import QUICK, ROOT, train_dqn
from test_cli import assert_one_line_error, tree_digest

from envs import make_vec_env
from rlharness import read_scalars
from rlharness.agent import Agent
from rlharness.trainer import Trainer


def curves(run_dir):
    return read_scalars(run_dir)


def steps_of(series):
    return [s for s, _ in series]


def assert_no_step_twice(points):
    for tag, series in points.items():
        steps = steps_of(series)
        assert steps == sorted(set(steps)), f"{tag}: a step is logged twice or out of order"


def latest_checkpoint_steps(run_dir):
    try:
        with open(os.path.join(run_dir, "checkpoints", "checkpoint")) as f:
            text = f.read()
    except OSError:
        return 0
    return int(text.split('"')[1].rsplit("-", 1)[1])


def test_resume_continues_the_lr_curve_exactly(tmp_path, finished_run, uninterrupted):
    """A finished 1000-step run, extended to 3000 env steps by --resume."""
    run_dir = str(tmp_path / "run")
    shutil.copytree(finished_run, run_dir)
    second = train_dqn("--logdir", run_dir, "--total-steps", "3000", "--resume", "--no-progress")
    assert second.returncode == 0, second.stderr
    assert "resumed" in second.stdout and "env_steps=1000" in second.stdout
    resumed, straight = curves(run_dir), curves(uninterrupted)
    assert resumed["train/learning_rate"] == straight["train/learning_rate"]
    n_lr = len(straight["train/learning_rate"])
    assert steps_of(resumed["train/learning_rate"]) == list(range(n_lr))
    assert_no_step_twice(resumed)
    # the same global step at the end: env steps, updates and episodes
    assert "after 3000 env steps, " in second.stdout
    n_updates = 8 * len(range(300, 3001, 100))
    assert f"{n_updates} updates" in second.stdout


def kill_mid_run(run_dir, sig, min_checkpoint_steps):
    """Start a 3000-step run, send ``sig`` once a checkpoint past ``min_checkpoint_steps``
    exists, and return the finished process."""
    proc = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "scripts", "train_dqn.py"), "--logdir", run_dir,
         "--total-steps", "3000", "--checkpoint-every", "500", *QUICK],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 120
    while latest_checkpoint_steps(run_dir) < min_checkpoint_steps:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


def test_ctrl_c_saves_a_checkpoint_and_resume_matches(tmp_path, uninterrupted):
    run_dir = str(tmp_path / "run")
    code, out, err = kill_mid_run(run_dir, signal.SIGINT, 500)
    assert code == 130, err
    assert "Traceback" not in err and "interrupted at" in out and "--resume" in out
    stopped_at = latest_checkpoint_steps(run_dir)
    assert 500 <= stopped_at < 3000
    resumed = train_dqn("--logdir", run_dir, "--resume", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    got, want = curves(run_dir), curves(uninterrupted)
    assert_no_step_twice(got)
    assert got["train/learning_rate"] == want["train/learning_rate"]
    assert got["train/loss"] == want["train/loss"]


def test_corrupt_checkpoint_is_a_clear_error_and_nothing_is_touched(tmp_path, finished_run):
    run_dir = str(tmp_path / "run")
    shutil.copytree(finished_run, run_dir)
    data = glob.glob(os.path.join(run_dir, "checkpoints", "ckpt-*.data-*"))[-1]
    with open(data, "r+b") as f:
        f.truncate(os.path.getsize(data) // 2)
    before = tree_digest(run_dir)
    result = train_dqn("--logdir", run_dir, "--resume", "--total-steps", "2000")
    assert_one_line_error(result, "truncated or corrupt", "nothing was changed")
    assert tree_digest(run_dir) == before


class _DivergingAgent(Agent):
    """A real (tiny) Keras agent whose third training round reports a NaN loss."""

    def __init__(self):
        self.optimizer = keras.optimizers.SGD(0.1)
        self.net = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        self.optimizer.build(self.net.trainable_variables)
        self.train_freq, self.rounds = 100, 0

    def act(self, obs, explore=True):
        return np.zeros(len(obs), np.int64)

    def update(self):
        self.rounds += 1
        grads = [np.ones(v.shape, np.float32) for v in self.net.trainable_variables]
        self.optimizer.apply(grads, self.net.trainable_variables)
        return {"loss": float("nan") if self.rounds == 3 else 1.0}

    def checkpoint_objects(self):
        return {"net": self.net, "optimizer": self.optimizer}


def test_nan_loss_stops_naming_the_update_and_keeps_the_last_checkpoint(tmp_path):
    env = make_vec_env("CartPole-v1", 1, seed=0)
    trainer = Trainer(_DivergingAgent(), env, total_steps=1000, log_dir=str(tmp_path),
                      checkpoint_every=150, progress=False)
    with pytest.raises(FloatingPointError, match="train/loss is nan at update 2"):
        trainer.train()
    assert trainer.checkpointer.latest.endswith("ckpt-150")
    fresh = Trainer(_DivergingAgent(), make_vec_env("CartPole-v1", 1, seed=0), total_steps=1000,
                    log_dir=str(tmp_path), progress=False)
    fresh.restore()  # the last good checkpoint loads
    assert fresh.global_step.env_steps == 150 and fresh.global_step.updates == 1


def test_checkpoint_holds_the_replay_buffer_and_global_step(tmp_path, finished_run):
    args = dict(observation_space=gym.spaces.Box(-np.inf, np.inf, (4,), np.float32),
                action_space=gym.spaces.Discrete(2))
    from agents.dqn import DQN

    run_dir = str(tmp_path / "run")  # a copy: other workers read finished_run meanwhile
    shutil.copytree(finished_run, run_dir)
    agent = DQN(**args, hidden_sizes=(32, 32), batch_size=32, learning_starts=300)
    trainer = Trainer(agent, make_vec_env("CartPole-v1", 1, seed=5), total_steps=1000,
                      log_dir=run_dir, progress=False)
    path, arrays = trainer.checkpointer.restore()
    assert trainer.global_step.env_steps == 1000 and path.endswith("ckpt-1000")
    assert len(arrays["agent/buffer/actions"]) == 1000
    assert trainer.global_step.updates == 8 * len(range(300, 1001, 100))
    assert int(agent.optimizer.iterations) == trainer.global_step.updates
