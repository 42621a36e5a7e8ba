import gymnasium as gym
import numpy as np
import pytest

from envs import (
    ChainEnv,
    EnvError,
    check_env_id,
    final_observations,
    finished_episodes,
    make_env,
    make_vec_env,
    require_discrete,
)


def test_unknown_id_suggests_close_match():
    expected = r"unknown environment 'CartPol-v1'; did you mean 'CartPole-v1'\?"
    with pytest.raises(EnvError, match=expected):
        check_env_id("CartPol-v1")
    with pytest.raises(EnvError, match="known ids include"):
        make_vec_env("zzzzzz", 2)


def test_known_ids_pass():
    check_env_id("CartPole-v1")
    check_env_id("Chain-v0")


def test_require_discrete():
    with make_env("CartPole-v1") as env:
        assert require_discrete(env) == 2
    env = make_vec_env("CartPole-v1", 2)
    assert require_discrete(env) == 2
    env.close()
    with make_env("Pendulum-v1") as env, pytest.raises(EnvError) as info:
        require_discrete(env, "DQN")
    msg = str(info.value)
    assert "DQN needs a Discrete action space" in msg
    assert "Pendulum-v1 has Box(-2.0, 2.0, (1,), float32)" in msg
    assert "CartPole-v1" in msg
    with pytest.raises(EnvError, match="Box"):
        require_discrete(gym.spaces.Box(-1, 1, (2,)))


def test_vec_env_final_obs_and_episode_stats():
    n_envs, steps = 2, 600
    env = make_vec_env("CartPole-v1", n_envs, seed=3)
    env.reset(seed=3)
    running = np.zeros(n_envs)
    lengths = np.zeros(n_envs, dtype=int)
    n_done = 0
    for _ in range(steps):
        next_obs, rewards, terminated, truncated, infos = env.step(env.action_space.sample())
        done = terminated | truncated
        real = final_observations(next_obs, infos, done)
        running += rewards
        lengths += 1
        if not done.any():
            assert real is next_obs
            assert finished_episodes(infos) == []
        else:
            assert np.array_equal(infos["_final_obs"], done)
            expected = []
            for i in range(n_envs):
                if done[i]:
                    assert np.array_equal(real[i], infos["final_obs"][i])
                    if terminated[i]:
                        x, _, theta, _ = real[i]
                        assert abs(x) > 2.4 or abs(theta) > 0.2094, "final obs is terminal"
                    assert not np.array_equal(next_obs[i], real[i])
                    assert np.all(np.abs(next_obs[i]) <= 0.05), "expected a fresh reset obs"
                    expected.append((float(running[i]), int(lengths[i])))
                    running[i], lengths[i] = 0.0, 0
                else:
                    assert np.array_equal(real[i], next_obs[i])
            assert finished_episodes(infos) == expected
            n_done += len(expected)
    assert n_done >= 10
    env.close()


def test_vec_chain_truncation_keeps_final_obs():
    env = make_vec_env("Chain-v0", 2, seed=0)
    env.reset(seed=0)
    for _ in range(19):
        _, _, terminated, truncated, infos = env.step(np.zeros(2, dtype=np.int64))
        assert not (terminated | truncated).any() and finished_episodes(infos) == []
    next_obs, _, terminated, truncated, infos = env.step(np.zeros(2, dtype=np.int64))
    assert truncated.all() and not terminated.any()
    real = final_observations(next_obs, infos, terminated | truncated)
    np.testing.assert_array_equal(real, np.eye(5, dtype=np.float32)[[0, 0]])
    assert np.all(next_obs[:, 4] == 0) and np.all(next_obs.sum(axis=1) == 1)
    assert finished_episodes(infos) == [(0.0, 20), (0.0, 20)]
    env.close()


def _rollout(env: gym.vector.VectorEnv, seed: int | None, actions: np.ndarray) -> np.ndarray:
    out = [env.reset(seed=seed)[0] if seed is not None else env.reset()[0]]
    out += [env.step(a)[0] for a in actions]
    return np.stack(out)


def test_seeding_reproducible():
    actions = np.random.default_rng(0).integers(0, 2, size=(80, 2))
    a = _rollout(make_vec_env("CartPole-v1", 2, seed=7), 7, actions)
    b = _rollout(make_vec_env("CartPole-v1", 2, seed=7), 7, actions)
    c = _rollout(make_vec_env("CartPole-v1", 2, seed=7), None, actions)
    d = _rollout(make_vec_env("CartPole-v1", 2, seed=7), None, actions)
    e = _rollout(make_vec_env("CartPole-v1", 2, seed=8), 8, actions)
    assert np.array_equal(a, b) and np.array_equal(c, d)
    assert not np.array_equal(a, e)
    assert not np.array_equal(a[0, 0], a[0, 1]), "sub-envs must get different seeds"
    s1, s2 = make_vec_env("CartPole-v1", 2, seed=7), make_vec_env("CartPole-v1", 2, seed=7)
    assert np.array_equal(s1.action_space.sample(), s2.action_space.sample())
    e1, e2 = make_env("CartPole-v1", seed=5), make_env("CartPole-v1", seed=5)
    assert np.array_equal(e1.reset()[0], e2.reset()[0])
    assert e1.action_space.sample() == e2.action_space.sample()


def test_chain_dynamics_and_rewards():
    env = make_env("Chain-v0", seed=0)
    assert env.observation_space == gym.spaces.Box(0.0, 1.0, (5,), np.float32)
    starts = {int(np.argmax(env.reset()[0])) for _ in range(100)}
    assert starts == {0, 1, 2, 3}
    obs, _ = env.reset(options={"state": 0})
    assert obs.dtype == np.float32 and np.array_equal(obs, np.eye(5, dtype=np.float32)[0])
    obs, r, term, trunc, _ = env.step(0)
    assert np.argmax(obs) == 0 and r == 0.0 and not term and not trunc
    for s in (1, 2, 3):
        obs, r, term, _, _ = env.step(1)
        assert np.argmax(obs) == s and r == 0.0 and not term
    obs, _, _, _, _ = env.step(0)
    assert np.argmax(obs) == 2
    env.step(1)
    obs, r, term, trunc, info = env.step(1)
    assert np.argmax(obs) == 4 and r == 1.0 and term and not trunc
    assert info["episode"]["r"] == 1.0 and info["episode"]["l"] == 7
    env.reset(options={"state": 0})
    for t in range(20):
        _, r, term, trunc, _ = env.step(0)
        assert r == 0.0 and not term and trunc == (t == 19)
    with make_env("Chain-v0", n=7, max_episode_steps=3) as env:
        assert env.reset(seed=1)[0].shape == (7,)
        assert [env.step(0)[3] for _ in range(3)] == [False, False, True]


def _value_iteration(env: ChainEnv, gamma: float) -> np.ndarray:
    n = env.n
    model = {}
    for s in range(n - 1):
        for a in (0, 1):
            env.reset(options={"state": s})
            obs, r, term, _, _ = env.step(a)
            model[s, a] = (int(np.argmax(obs)), r, term)
    q = np.zeros((n - 1, 2))
    for _ in range(1000):
        new = np.empty_like(q)
        for (s, a), (s2, r, term) in model.items():
            new[s, a] = r + (0.0 if term else gamma * q[s2].max())
        q = new
    return q


@pytest.mark.parametrize("n", [3, 5, 7])
@pytest.mark.parametrize("gamma", [0.9, 0.99])
def test_optimal_q_matches_value_iteration(n, gamma):
    env = ChainEnv(n)
    q = env.optimal_q(gamma)
    assert q.shape == (n - 1, 2)
    np.testing.assert_allclose(q, _value_iteration(env, gamma), rtol=1e-10, atol=1e-12)
    assert np.all(q[:, 1] >= q[:, 0])
