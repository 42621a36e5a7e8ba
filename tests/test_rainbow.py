"""Rainbow components of DQN on real TF and real envs: C51 projection, fast acting path,
noisy layers, each component and all together learning Chain-v0's Q*, three update modes."""

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

from agents.dqn import DQN
from agents.networks import QNetwork, categorical_projection
from envs import ChainEnv, make_vec_env
from rlharness import GlobalStep, read_scalars
from rlharness.trainer import Trainer

GAMMA, N_STATES = 0.9, 5
C51 = dict(distributional=True, n_atoms=51, v_min=0.0, v_max=1.0)
COMPONENTS = {
    "dueling": dict(dueling=True),
    "n_step": dict(n_step=3),
    "prioritized": dict(prioritized=True),
    "noisy": dict(noisy=True),
    "distributional": C51,
    "rainbow": dict(dueling=True, n_step=3, prioritized=True, noisy=True, **C51),
}


def projection_reference(p, r, discount, z):
    """Bellemare et al. 2017, Algorithm 1, with loops (the l == u case keeps all the mass)."""
    v_min, v_max, n = z[0], z[-1], len(z)
    dz = (v_max - v_min) / (n - 1)
    m = np.zeros_like(p)
    for b in range(len(p)):
        for j in range(n):
            tz = min(max(r[b] + discount[b] * z[j], v_min), v_max)
            pos = (tz - v_min) / dz
            lo, hi = int(np.floor(pos)), int(np.ceil(pos))
            if lo == hi:
                m[b, lo] += p[b, j]
            else:
                m[b, lo] += p[b, j] * (hi - pos)
                m[b, hi] += p[b, j] * (pos - lo)
    return m


def test_c51_projection_matches_the_numpy_reference():
    rng = np.random.default_rng(0)
    z = np.linspace(-10.0, 10.0, 51).astype(np.float32)
    p = rng.dirichlet(np.ones(51), size=32).astype(np.float32)
    r = rng.uniform(-15, 15, 32).astype(np.float32)  # some targets fall off the support
    r[:4] = [0.0, 0.4, -10.0, 10.0]  # on atoms, exactly
    discount = (0.99 ** rng.integers(1, 4, 32) * (rng.random(32) > 0.2)).astype(np.float32)
    discount[:2] = [1.0, 1.0]
    got = categorical_projection(tf.constant(p), tf.constant(r), tf.constant(discount),
                                 tf.constant(z)).numpy()
    np.testing.assert_allclose(got, projection_reference(p, r, discount, z), atol=1e-5)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("heads", [{}, dict(dueling=True), dict(noisy=True),
                                   dict(dueling=True, noisy=True, **C51)])
def test_fast_act_path_matches_the_keras_model_for_every_head(heads):
    env = gym.make("CartPole-v1")
    agent = DQN(env.observation_space, env.action_space, hidden_sizes=(32, 32), seed=1, **heads)
    obs = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    out = agent.q_net(obs).numpy()  # mean weights
    if heads.get("distributional"):
        out = (tf.nn.softmax(out).numpy() * agent.support.numpy()).sum(-1)
    np.testing.assert_allclose(agent.q_values(obs), out, rtol=1e-4, atol=1e-5)


def test_noisy_nets_resample_noise_while_exploring_and_act_greedily_on_the_means():
    env = gym.make("CartPole-v1")
    agent = DQN(env.observation_space, env.action_space, hidden_sizes=(16,), noisy=True,
                exploration_rate=0.0, seed=0)
    agent.bind(GlobalStep(), 1000)
    obs = np.random.default_rng(0).normal(size=(256, 4)).astype(np.float32)
    noisy = [agent.q_values(obs, noise=True) for _ in range(2)]
    assert not np.allclose(noisy[0], noisy[1])  # fresh noise at every acting step
    greedy = agent.act(obs, explore=False)
    np.testing.assert_array_equal(greedy, agent.act(obs, explore=False))
    np.testing.assert_array_equal(greedy, agent.q_net(obs).numpy().argmax(1))
    # in-graph: noise is a pure function of the seed
    seed = tf.constant([3, 7], tf.int64)
    net = agent.q_net
    np.testing.assert_array_equal(net(obs, seed=seed), net(obs, seed=seed))
    assert not np.allclose(net(obs, seed=seed), net(obs, seed=seed + [0, 1]))
    assert isinstance(net, QNetwork)


def chain_agent(update_mode="tf_function", buffer_size=1000, jit_compile=False, **components):
    env = make_vec_env("Chain-v0", 1, seed=0)
    agent = DQN(env.single_observation_space, env.single_action_space, learning_rate=3e-3,
                gamma=GAMMA, buffer_size=buffer_size, learning_starts=200, train_freq=20,
                gradient_steps=20, batch_size=64, target_update_interval=100,
                exploration_fraction=0.2, exploration_final_eps=0.02, hidden_sizes=(32,),
                update_mode=update_mode, jit_compile=jit_compile, seed=0, **components)
    return agent, env


def train_on_chain(log_dir, total_steps, update_mode="tf_function", **components):
    """Without XLA (half the time of these small runs); XLA in every update mode is
    test_dqn's, XLA under the Rainbow flags test_boundaries' (its first profile)."""
    agent, env = chain_agent(update_mode, **components)
    trainer = Trainer(agent, env, total_steps=total_steps, log_dir=str(log_dir), seed=0,
                      progress=False)
    trainer.train()
    trainer.writer.close()
    return agent, read_scalars(str(log_dir))


@pytest.mark.parametrize("name", list(COMPONENTS))
def test_each_component_and_all_together_learn_the_chain_optimal_q_values(tmp_path, name):
    steps = 3000 if name in ("n_step", "rainbow") else 2000  # n-step's ε bias needs longer
    agent, points = train_on_chain(tmp_path, steps, **COMPONENTS[name])
    q = agent.q_values(np.eye(N_STATES, dtype=np.float32)[: N_STATES - 1])  # C51: the mean
    np.testing.assert_allclose(q, ChainEnv(N_STATES).optimal_q(GAMMA), atol=0.05)
    if agent.prioritized:  # β on its default schedule, linear 0.4 -> 1 over the env steps
        updates, betas = zip(*points["train/per_beta"])
        assert list(updates) == list(range(len(updates)))
        assert betas[0] == pytest.approx(0.4 + 0.6 * 200 / steps, rel=1e-6)


def test_rainbow_trains_identically_in_the_three_update_modes(tmp_path):
    curves = {}
    for mode in ("fit", "train_on_batch", "tf_function"):
        agent, points = train_on_chain(tmp_path / mode, 400, mode, **COMPONENTS["rainbow"])
        curves[mode] = points
        assert agent._update.tracing_count() == 1
    want = curves["tf_function"]
    assert len(want["train/loss"]) == 11
    for mode in ("fit", "train_on_batch"):
        for tag in ("train/loss", "train/q_mean"):
            assert [s for s, _ in curves[mode][tag]] == [s for s, _ in want[tag]]
            np.testing.assert_allclose([v for _, v in curves[mode][tag]],
                                       [v for _, v in want[tag]], rtol=1e-4, err_msg=tag)
        assert curves[mode]["rollout/ep_return"] == want["rollout/ep_return"]


@pytest.mark.parametrize("name", [n for n in COMPONENTS if n != "rainbow"])
def test_each_component_alone_trains_identically_in_the_three_update_modes(tmp_path, name):
    weights = {}
    for mode in ("fit", "train_on_batch", "tf_function"):  # three rounds of 20 updates each
        agent, _ = train_on_chain(tmp_path / mode, 240, mode, **COMPONENTS[name])
        assert int(agent.optimizer.iterations) == 60
        weights[mode] = agent.q_net.get_weights()
    for mode in ("fit", "train_on_batch"):
        for got, want in zip(weights[mode], weights["tf_function"], strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=mode)
