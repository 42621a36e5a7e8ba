"""Pixels: Catch-v0, the Nature-CNN encoder, the frame-deduplicated uint8 replay."""

import json
import os
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf
from gymnasium.wrappers import FrameStackObservation, TimeLimit

from agents.a2c import A2C
from agents.dqn import DQN
from agents.frame_replay import FrameReplayBuffer, stacks_from_window
from envs import CatchEnv, make_vec_env
from rlharness import read_scalars
from rlharness.npz import STREAM_BYTES, CheckpointError, StoredArray, read_arrays
from rlharness.schedules import LinearDecay
from rlharness.trainer import Trainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_catch_follows_bsuite_rules():
    env = CatchEnv()
    obs, _ = env.reset(seed=3)
    assert obs.shape == (44, 44) and obs.dtype == np.uint8
    assert env.observation_space.contains(obs)
    column = env.ball_column
    np.testing.assert_array_equal(obs[2:-2:4, 2:-2:8] // 255, env.grid())  # scaled 4x8
    assert obs.sum() == 2 * 4 * 8 * 255  # ball and paddle, nothing else
    rewards, steps, done = [], 0, False
    while not done:  # move to the ball's column, then stay
        action = 1 + np.sign(column - env.paddle)
        obs, reward, done, truncated, _ = env.step(action)
        rewards.append(reward)
        steps += 1
        assert not truncated
    assert steps == 9 and rewards == [0.0] * 8 + [1.0]
    env.reset(seed=4)
    away = 0 if env.ball_column >= 3 else 2  # runs into the far wall
    *_, = [env.step(away) for _ in range(9)]
    assert env.step.__self__ is env
    assert [env.paddle, env.ball_row] == [4 if away == 2 else 0, 9]
    with pytest.raises(ValueError, match="Catch actions"):
        env.step(3)


def stacked_catch(stack, limits=(7, 20, 20)):
    """Catch in a vector env; sub-env 0's TimeLimit (7) is shorter than an episode (9 steps),
    so its episodes are truncated, the others' terminated."""
    def make(limit):
        env = TimeLimit(CatchEnv(), limit)
        return (lambda: FrameStackObservation(env, stack)) if stack > 1 else (lambda: env)
    return gym.vector.SyncVectorEnv([make(limit) for limit in limits],
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


def naive_transitions(steps, n, gamma):
    """Each one-step transition of one sub-env's stream as an n-step one, the slow way."""
    out = []
    for i, (obs, action, _, _, _, _) in enumerate(steps):
        ret, k = 0.0, 0
        while True:
            _, _, r, next_obs, term, trunc = steps[i + k]
            ret += gamma ** k * r
            k += 1
            if term or trunc or k == n:
                break
        out.append((obs, action, ret, next_obs, float(term), k))
    return out


def assert_windows_hold_the_stacks(buffer, index):
    """The DQN's windows (each transition's stack + n frames, cut in-graph) give exactly the
    two stacks and the other fields of ``rows_at``."""
    stacks, windows = buffer.rows_at(index), buffer.rows_at(index, reuse=True, window=True)
    assert windows[0].shape == (len(index), buffer.stack + buffer.n, *buffer.frame_shape)
    assert windows[3].shape == (len(index), 0)
    obs, next_obs = stacks_from_window(windows[0], windows[5], buffer.stack)
    np.testing.assert_array_equal(np.asarray(obs), stacks[0])
    np.testing.assert_array_equal(np.asarray(next_obs), stacks[3])
    for field in (1, 2, 4, 5):
        np.testing.assert_array_equal(windows[field], stacks[field])


@pytest.mark.parametrize("stack,n,prioritized", [(4, 1, False), (4, 3, True), (1, 2, False)])
def test_frame_replay_rebuilds_every_transition_like_a_naive_stacked_reference(
        stack, n, prioritized):
    n_envs, gamma = 3, 0.9
    env = stacked_catch(stack)
    buffer = FrameReplayBuffer(10_000, env.single_observation_space.shape, stack=stack,
                               n_step=n, gamma=gamma, prioritized=prioritized)
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=0)
    streams = [[] for _ in range(n_envs)]
    for _ in range(60):
        actions = rng.integers(0, 3, n_envs)
        next_obs, rewards, term, trunc, infos = env.step(actions)
        real_next = next_obs.copy()
        for e in np.flatnonzero(term | trunc):
            real_next[e] = infos["final_obs"][e]
        buffer.push(obs, actions, rewards, real_next, term, trunc)
        for e in range(n_envs):
            streams[e].append((obs[e], actions[e], rewards[e], real_next[e], term[e], trunc[e]))
        obs = next_obs
    for e, steps in enumerate(streams):
        # a stream's last transitions are complete only at its episode's end
        last_end = max(i for i, s in enumerate(steps) if s[4] or s[5])
        complete = naive_transitions(steps[: last_end + 1], n, gamma)
        step_rows = np.flatnonzero(buffer.final[e, : buffer.count[e]] == 0)
        index = e * buffer.rows + step_rows[: len(complete)]
        assert (buffer.k[e, step_rows[: len(complete)]] > 0).all()
        got = buffer.rows_at(index)
        for field, (name, want) in enumerate(zip(buffer.FIELDS, zip(*complete))):
            np.testing.assert_allclose(got[field], np.array(want, got[field].dtype),
                                       rtol=1e-6, err_msg=name)
        if buffer.windowed:
            assert_windows_hold_the_stacks(buffer, index)
    # episodes of both kinds were crossed: truncations in sub-env 0, terminations elsewhere
    assert sum(s[5] and not s[4] for s in streams[0]) >= 5
    assert sum(s[4] for st in streams[1:] for s in st) >= 10
    # samples only ever return complete transitions
    batch = buffer.sample(256, rng)
    assert batch[0].shape == (256, *env.single_observation_space.shape)
    assert batch[0].dtype == np.uint8 and (batch[5] >= 1).all() and (batch[5] <= n).all()


def test_frame_replay_wraps_around_and_never_samples_a_stale_stack():
    env = stacked_catch(4, limits=(7, 20))
    buffer = FrameReplayBuffer(40, env.single_observation_space.shape, stack=4, n_step=2,
                               gamma=0.5)
    rng = np.random.default_rng(1)
    obs, _ = env.reset(seed=1)
    seen = {}  # (sub-env, frame bytes of obs) -> every next obs it led to, naive
    for _ in range(100):  # 100 steps per sub-env into 24 + 6 rows each: many wraps
        actions = rng.integers(0, 3, 2)
        next_obs, rewards, term, trunc, infos = env.step(actions)
        real_next = next_obs.copy()
        for e in np.flatnonzero(term | trunc):
            real_next[e] = infos["final_obs"][e]
        buffer.push(obs, actions, rewards, real_next, term, trunc)
        for e in range(2):
            seen.setdefault(obs[e].tobytes(), []).append(actions[e])
        obs = next_obs
    assert buffer.count.min() > 2 * buffer.rows
    assert_windows_hold_the_stacks(buffer, buffer._uniform(500, rng))
    batch = buffer.sample(500, rng)
    for o, a in zip(batch[0], batch[1]):  # every sampled stack is one the env showed
        assert a in seen[o.tobytes()]
    assert 0 < len(buffer) <= 2 * buffer.rows


def test_frame_replay_memory_per_transition_for_84x84x4_stacks():
    capacity = 20_000
    buffer = FrameReplayBuffer(capacity, (4, 84, 84), stack=4, n_step=3, prioritized=True)
    frames = np.zeros((1, 4, 84, 84), np.uint8)
    buffer.push(frames, [0], [0.0], frames, [False], [False])  # allocates
    per_transition = buffer.nbytes() / capacity
    assert per_transition <= 8 * 1024, per_transition  # 1M transitions in <= 8 GB
    assert per_transition >= 84 * 84  # the floor: one frame each


#: DQN on Catch-v0 (the preset of hyperparams/dqn.toml, shorter): solves it in 2000 env steps.
CATCH = dict(learning_rate=1e-3, buffer_size=5000, learning_starts=200, batch_size=32,
             gamma=0.99, train_freq=1, gradient_steps=1, target_update_interval=40,
             exploration_fraction=0.1, exploration_final_eps=0.05)


def catch_trainer(log_dir, total_steps, seed=0, n_envs=4, eval_episodes=0, **overrides):
    env = make_vec_env("Catch-v0", n_envs, seed=seed)
    eval_env = make_vec_env("Catch-v0", 1, seed=seed + 1000) if eval_episodes else None
    agent = DQN(env.single_observation_space, env.single_action_space, seed=seed,
                **{**CATCH, **overrides})
    return Trainer(agent, env, total_steps=total_steps, log_dir=str(log_dir), seed=seed,
                   eval_env=eval_env, eval_episodes=eval_episodes, progress=False)


def test_dqn_cuts_both_stacks_from_one_window_in_every_update_mode(tmp_path):
    """4 stacked frames at n-step 1: the replay gathers each transition's 5 frames once (not
    two stacks, 8) and the update cuts both stacks in-graph, with the same losses as from two
    gathered stacks, in each update mode."""
    def losses(mode, windowed):
        env = stacked_catch(4)
        agent = DQN(env.single_observation_space, env.single_action_space, seed=0,
                    frame_stack=4, update_mode=mode,
                    **{**CATCH, "learning_starts": 48, "train_freq": 2, "batch_size": 16})
        assert agent.windowed
        if not windowed:
            agent.windowed, agent._window = False, {}
        log_dir = str(tmp_path / f"{mode}-{windowed}")
        trainer = Trainer(agent, env, total_steps=120, log_dir=log_dir, seed=0, progress=False)
        trainer.train()
        trainer.writer.close()
        return read_scalars(log_dir)["train/loss"]

    want = losses("tf_function", windowed=False)
    assert len(want) >= 10
    for mode in ("tf_function", "train_on_batch", "fit"):
        assert losses(mode, windowed=True) == want, mode


def test_dqn_with_the_nature_cnn_solves_catch(tmp_path):
    trainer = catch_trainer(tmp_path, 2000, eval_episodes=50)
    agent = trainer.agent
    assert agent.policy == "cnn" and isinstance(agent.buffer, FrameReplayBuffer)
    summary = trainer.train()
    trainer.writer.close()
    assert summary["eval/mean_return"] >= 0.9, summary
    assert agent.buffer.frames.dtype == np.uint8


def test_catch_resume_continues_exactly(tmp_path):
    """Stop at 200 env steps, resume in a fresh process state: the same curves and weights
    as the uninterrupted run (exact env state, replay, RNGs, optimizer)."""
    fast = dict(learning_starts=60, train_freq=2, exploration_rate=LinearDecay(1.0, 200, 0.1),
                n_step=3, prioritized=True, per_beta=LinearDecay(0.4, 400, 1.0))  # not of
    # total_steps, which the first part (200) gives its Trainer
    straight = catch_trainer(tmp_path / "straight", 400, n_envs=2, **fast)
    straight.train()
    straight.writer.close()
    first = catch_trainer(tmp_path / "resumed", 200, n_envs=2, **fast)
    first.train()
    first.writer.close()
    second = catch_trainer(tmp_path / "resumed", 400, n_envs=2, **fast)
    second.restore()
    second.train()
    second.writer.close()
    got, want = read_scalars(str(tmp_path / "resumed")), read_scalars(str(tmp_path / "straight"))
    for tag in ("train/loss", "train/q_mean", "rollout/ep_return", "train/learning_rate"):
        assert got[tag] == want[tag], tag
    for a, b in zip(second.agent.q_net.get_weights(), straight.agent.q_net.get_weights(),
                    strict=True):
        np.testing.assert_array_equal(a, b)


def test_cnn_runs_every_rainbow_flag_and_a2c_on_uint8_pixels(tmp_path):
    rainbow = dict(dueling=True, noisy=True, distributional=True, n_atoms=11, v_min=-1.0,
                   v_max=1.0, n_step=3, prioritized=True, exploration_rate=0.0)
    trainer = catch_trainer(tmp_path / "dqn", 120, n_envs=2, learning_starts=60,
                            train_freq=4, **rainbow)
    agent = trainer.agent
    obs = trainer.env.reset(seed=0)[0]
    assert obs.dtype == np.uint8
    keras_q = (tf.nn.softmax(agent.q_net(obs)).numpy() * agent.support.numpy()).sum(-1)
    np.testing.assert_allclose(agent.q_values(obs), keras_q, rtol=1e-4, atol=1e-5)
    trainer.train()
    trainer.writer.close()
    assert int(agent.optimizer.iterations) > 0
    assert np.isfinite(read_scalars(str(tmp_path / "dqn"))["train/loss"][-1][1])

    env = make_vec_env("Catch-v0", 2, seed=0)
    a2c = A2C(env.single_observation_space, env.single_action_space, n_steps=5, seed=0)
    assert a2c.policy == "cnn"
    trainer = Trainer(a2c, env, total_steps=40, log_dir=str(tmp_path / "a2c"), progress=False)
    trainer.train()
    trainer.writer.close()
    assert a2c.rollout["obs"].dtype == np.uint8 and int(a2c.optimizer.iterations) == 4


def test_replay_checkpoint_has_no_second_copy_in_memory():
    """Peak RSS growth (VmHWM) of saving and of restoring a ~135 MB frame replay, in a fresh
    process: saving writes the arrays in 16 MiB chunks; restoring streams them into the
    fresh replay's arrays (reading the npz whole first would add a second copy: ~270 MB)."""
    out = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "bench.py"),
                          "--replay-checkpoint-rss", "20000"], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    assert r["restored_equal"] and r["replay_mb"] > 130
    assert r["save_peak_growth_mb"] < 0.25 * r["replay_mb"]
    assert r["restore_peak_growth_mb"] < 1.25 * r["replay_mb"]  # the replay itself, once


def test_a_corrupt_large_checkpoint_array_is_a_checkpoint_error(tmp_path):
    path = str(tmp_path / "state.npz")
    frames = np.arange(STREAM_BYTES + 1000, dtype=np.int64).astype(np.uint8)
    np.savez(path, frames=frames, small=np.arange(3))
    arrays = read_arrays(path)
    assert isinstance(arrays["frames"], StoredArray) and isinstance(arrays["small"], np.ndarray)
    np.testing.assert_array_equal(np.asarray(arrays["frames"]), frames)
    with open(path, "r+b") as f:  # flip a byte in the middle of the frames
        f.seek(STREAM_BYTES // 2)
        byte = f.read(1)
        f.seek(STREAM_BYTES // 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    stored = read_arrays(path)["frames"]
    with pytest.raises(CheckpointError, match="truncated or corrupt.*CRC"):
        stored.read_into(np.empty_like(frames))
