"""DQN, the Trainer and the replay buffer, on real gymnasium envs with real event files."""

import os
import sys

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf
from conftest import ROOT

from agents.dqn import DQN
from agents.replay import ReplayBuffer
from envs import ChainEnv, make_vec_env
from rlharness import read_scalars
from rlharness.schedules import ExponentialDecay
from rlharness.trainer import Trainer

SCHEDULE = ExponentialDecay(1e-3, decay_steps=50, decay_rate=0.5)
TAGS = {
    "train/learning_rate", "train/loss", "train/q_mean", "rollout/ep_return",
    "rollout/ep_length", "rollout/exploration_rate", "eval/mean_return", "time/sps",
    "time/env_steps",
}


def short_cartpole_run(log_dir, update_mode, total_steps=1200, seed=0, n_envs=1):
    env = make_vec_env("CartPole-v1", n_envs, seed=seed)
    agent = DQN(env.single_observation_space, env.single_action_space, learning_rate=SCHEDULE,
                learning_starts=400, train_freq=100, gradient_steps=8, batch_size=32,
                hidden_sizes=(32, 32), update_mode=update_mode, seed=seed)
    trainer = Trainer(agent, env, total_steps=total_steps, log_dir=str(log_dir),
                      eval_env=make_vec_env("CartPole-v1", 1, seed=seed + 1), eval_freq=1000,
                      eval_episodes=2, seed=seed, progress=False)
    summary = trainer.train()
    trainer.writer.close()
    return agent, summary, read_scalars(str(log_dir))


@pytest.mark.parametrize("update_mode", ["fit", "train_on_batch", "tf_function"])
def test_short_cartpole_run_logs_every_tag_and_an_exact_lr_curve(tmp_path, update_mode):
    agent, summary, points = short_cartpole_run(tmp_path, update_mode)
    assert TAGS <= set(points)
    rounds = len(range(400, 1201, 100))  # a round every 100 env steps from 400 on
    assert summary["updates"] == rounds * 8
    lr = points["train/learning_rate"]
    assert [s for s, _ in lr] == list(range(rounds * 8))  # one point per update, in order
    want = [float(SCHEDULE(s)) for s in range(rounds * 8)]
    np.testing.assert_allclose([v for _, v in lr], want, rtol=1e-6)
    for tag, series in points.items():
        steps = [s for s, _ in series]
        assert steps == sorted(set(steps)), f"{tag} steps not strictly increasing"
    assert [s for s, _ in points["eval/mean_return"]] == [1000, 1200]
    assert agent._update.tracing_count() == 1  # no retracing after the first round


def test_update_modes_train_identically(tmp_path):
    losses = {}
    for mode in ("fit", "train_on_batch", "tf_function"):
        _, _, points = short_cartpole_run(tmp_path / mode, mode, total_steps=700)
        losses[mode] = [v for _, v in points["train/loss"]]
    np.testing.assert_allclose(losses["fit"], losses["tf_function"], rtol=1e-4)
    np.testing.assert_allclose(losses["train_on_batch"], losses["tf_function"], rtol=1e-4)


def test_vector_env_counts_every_sub_env_step(tmp_path):
    agent, summary, points = short_cartpole_run(tmp_path, "tf_function", n_envs=2)
    assert summary["env_steps"] == 1200 and len(agent.buffer) == 1200
    # train_freq counts vector steps: rounds at vector steps 200 (env step 400), 300, ..., 600
    assert summary["updates"] == 5 * 8
    assert [s for s, _ in points["train/learning_rate"]] == list(range(40))
    returns = points["rollout/ep_return"]
    assert len(returns) == summary["episodes"] > 2
    assert sum(v for _, v in points["rollout/ep_length"]) <= 1200
    steps = [s for s, _ in returns]
    assert steps == sorted(set(steps)) and steps[-1] <= 1200


def test_dqn_learns_the_chain_optimal_q_values(tmp_path):
    gamma, n = 0.9, 5
    env = make_vec_env("Chain-v0", 1, seed=0)
    agent = DQN(env.single_observation_space, env.single_action_space, learning_rate=3e-3,
                gamma=gamma, learning_starts=200, train_freq=20, gradient_steps=20,
                batch_size=64, target_update_interval=100, exploration_fraction=0.2,
                exploration_final_eps=0.3, hidden_sizes=(32,), seed=0)
    Trainer(agent, env, total_steps=4000, log_dir=str(tmp_path), seed=0, progress=False).train()
    q = agent.q_values(np.eye(n, dtype=np.float32)[: n - 1])
    np.testing.assert_allclose(q, ChainEnv(n).optimal_q(gamma), atol=0.05)


def test_fast_act_path_matches_the_keras_model():
    env = gym.make("CartPole-v1")
    agent = DQN(env.observation_space, env.action_space, hidden_sizes=(64, 64), seed=3)
    obs = np.random.default_rng(0).normal(size=(256, 4)).astype(np.float32) * 2
    np.testing.assert_allclose(agent.q_values(obs), agent.q_net(obs).numpy(), rtol=1e-4,
                               atol=1e-5)
    agent.bind(agent_step := __import__("rlharness").GlobalStep(), 1000)
    np.testing.assert_array_equal(agent.act(obs, explore=False),
                                  np.argmax(agent.q_net(obs).numpy(), axis=1))
    # after an update the numpy copy follows the new weights
    for w in agent.q_net.trainable_variables:
        w.assign(w + tf.random.normal(w.shape, stddev=0.1, seed=1))
    agent._acting_weights = None
    np.testing.assert_allclose(agent.q_values(obs), agent.q_net(obs).numpy(), rtol=1e-4,
                               atol=1e-5)
    assert agent_step.env_steps == 0


def test_replay_buffer_wraps_and_round_trips():
    buf = ReplayBuffer(5, (2,))
    for t in range(7):  # 7 single-row adds into capacity 5: rows hold t = 5, 6, 2, 3, 4
        buf.add(np.full((1, 2), t), [t], [t], np.full((1, 2), t + 1), [t % 2])
    assert len(buf) == 5 and buf.pos == 2
    np.testing.assert_array_equal(buf.actions, [5, 6, 2, 3, 4])
    np.testing.assert_array_equal(buf.next_obs[:, 0], [6, 7, 3, 4, 5])
    buf.add(np.zeros((3, 2)), [7, 8, 9], [0, 0, 0], np.zeros((3, 2)), [0, 0, 0])  # wraps mid-batch
    np.testing.assert_array_equal(buf.actions, [5, 6, 7, 8, 9])
    assert buf.pos == 0
    obs, actions, rewards, next_obs, dones, n_steps = buf.sample(1000, np.random.default_rng(0))
    assert set(actions) == {5, 6, 7, 8, 9}
    copy = ReplayBuffer(5, (2,))
    copy.load_state_dict(buf.state_dict())
    for f in ReplayBuffer.FIELDS:
        np.testing.assert_array_equal(getattr(copy, f), getattr(buf, f))
    assert copy.pos == buf.pos and len(copy) == len(buf)


def test_adam_eps_flag_reaches_the_optimizer(tmp_path):
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    import train_dqn

    env = make_vec_env("CartPole-v1", 1, seed=0)
    for i, (argv, eps) in enumerate((([], 1e-7), (["--adam-eps", "1.5e-4"], 1.5e-4))):
        args = train_dqn.parse_args(["--hidden-sizes", "8", "--logdir", str(tmp_path / str(i)),
                                     *argv])
        agent = train_dqn.make_agent(args, env, 1e-3)
        assert agent.optimizer.epsilon == pytest.approx(eps)
