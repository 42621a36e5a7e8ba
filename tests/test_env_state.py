"""Exact env-state save/restore (envs.state) on real gymnasium envs, no mocks."""

import io
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

from envs import (
    EnvStateError,
    get_env_state,
    make_vec_env,
    set_env_state,
    supports_exact_state,
)


def savez_roundtrip(state: dict) -> dict:
    """Through np.savez and np.load(allow_pickle=False): proves the state needs no pickle."""
    buf = io.BytesIO()
    np.savez(buf, **state)
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as data:
        return dict(data)


def rollout(env, actions) -> list:
    """(obs, rewards, terminated, truncated, episode returns, episode lengths) per step."""
    records = []
    for action in actions:
        obs, rewards, terminated, truncated, infos = env.step(action)
        done = infos.get("_episode", np.zeros(env.num_envs, bool))
        stats = infos.get("episode", {"r": np.zeros(env.num_envs), "l": np.zeros(env.num_envs)})
        records.append((obs, rewards, terminated, truncated, done, stats["r"], stats["l"]))
    return records


def assert_same(a: list, b: list) -> None:
    assert len(a) == len(b)
    for step, (ra, rb) in enumerate(zip(a, b)):
        for xa, xb in zip(ra, rb, strict=True):
            np.testing.assert_array_equal(xa, xb, err_msg=f"step {step}")


CASES = [  # env id, n_envs, seed, steps before the checkpoint, steps after it, make kwargs
    ("CartPole-v1", 1, 3, 30, 60, {}),
    ("CartPole-v1", 3, 0, 40, 80, {}),
    ("Chain-v0", 3, 1, 37, 60, {}),
    ("Acrobot-v1", 2, 2, 70, 60, {"max_episode_steps": 50}),
]


@pytest.mark.parametrize(("env_id", "n_envs", "seed", "k", "m", "kwargs"), CASES,
                         ids=[f"{c[0]}-x{c[1]}" for c in CASES])
def test_restored_env_continues_exactly(env_id, n_envs, seed, k, m, kwargs):
    a = make_vec_env(env_id, n_envs, seed=seed, **kwargs)
    a.reset(seed=seed)
    for _ in range(k):
        a.step(a.action_space.sample())
    # the checkpoint falls after finished episodes and in the middle of running ones
    assert a.episode_count > 0 and (a.episode_lengths > 0).any()
    state = get_env_state(a)
    assert all(isinstance(v, np.ndarray) and v.dtype != object for v in state.values())
    loaded = savez_roundtrip(state)

    actions = np.random.default_rng(99).integers(0, a.single_action_space.n, (m, n_envs))
    expected = rollout(a, actions)
    assert any(r[4].any() for r in expected), "some episodes must finish after the checkpoint"

    b = make_vec_env(env_id, n_envs, seed=seed + 100, **kwargs)
    b.reset(seed=seed + 100)
    set_env_state(b, loaded)
    assert_same(expected, rollout(b, actions))
    assert b.episode_count == a.episode_count
    assert list(b.return_queue) == list(a.return_queue)
    assert list(b.length_queue) == list(a.length_queue)
    # the action spaces' RNG streams carry over too: the batched one and each sub-env's
    np.testing.assert_array_equal([a.action_space.sample() for _ in range(5)],
                                  [b.action_space.sample() for _ in range(5)])
    for sub_a, sub_b in zip(a.unwrapped.envs, b.unwrapped.envs, strict=True):
        assert [sub_a.action_space.sample() for _ in range(5)] == \
               [sub_b.action_space.sample() for _ in range(5)]
        assert sub_a.np_random.random() == sub_b.np_random.random()
        assert sub_a.unwrapped.np_random_seed == sub_b.unwrapped.np_random_seed


def test_time_limit_counter_is_restored():
    """Always moving left never terminates a chain, so only TimeLimit's _elapsed_steps decides
    when the episode is truncated; without it a restored env would truncate late."""
    a = make_vec_env("Chain-v0", 1, seed=0, max_episode_steps=10)
    a.reset(seed=0)
    for _ in range(4):
        a.step(np.zeros(1, int))
    state = savez_roundtrip(get_env_state(a))
    left = np.zeros((12, 1), int)
    truncated_at = [i for i, r in enumerate(rollout(a, left)) if r[3].any()]
    assert truncated_at == [5]

    b = make_vec_env("Chain-v0", 1, seed=5, max_episode_steps=10)
    b.reset(seed=5)
    fresh = [i for i, r in enumerate(rollout(b, left)) if r[3].any()]
    assert fresh == [9]  # what a counter that was not restored would give

    b = make_vec_env("Chain-v0", 1, seed=5, max_episode_steps=10)
    b.reset(seed=5)
    set_env_state(b, state)
    records = rollout(b, left)
    assert [i for i, r in enumerate(records) if r[3].any()] == truncated_at
    assert records[5][6][0] == 10  # episode length counts the steps taken before the checkpoint


def test_restore_into_env_never_reset():
    """Toy text, restored into an env made without a seed (attributes reset creates are set)."""
    a = make_vec_env("FrozenLake-v1", 2, seed=4)
    a.reset(seed=4)
    for _ in range(25):
        a.step(a.action_space.sample())
    state = savez_roundtrip(get_env_state(a))
    actions = np.random.default_rng(0).integers(0, 4, (40, 2))
    b = make_vec_env("FrozenLake-v1", 2)
    set_env_state(b, state)
    assert_same(rollout(a, actions), rollout(b, actions))


def test_mismatched_env_is_rejected():
    cartpole = make_vec_env("CartPole-v1", 1, seed=0)
    state = get_env_state(cartpole)
    expected = r"""'sub0/3/__class__' is "CartPoleEnv CartPole-v1" in the state but "AcrobotEnv"""
    with pytest.raises(EnvStateError, match=expected):
        set_env_state(make_vec_env("Acrobot-v1", 1, seed=0), state)

    three = get_env_state(make_vec_env("CartPole-v1", 3, seed=0))
    with pytest.raises(EnvStateError, match=r"n_envs.*'vec/0/episode_start_times' has shape"):
        set_env_state(cartpole, three)
    with pytest.raises(EnvStateError, match=r"shape \(1,\) in the state but \(3,\) here"):
        set_env_state(make_vec_env("CartPole-v1", 3, seed=0), state)
    assert state.keys() == get_env_state(cartpole).keys()  # the failed restores changed nothing


def test_malformed_values_are_rejected_before_anything_is_restored():
    source = make_vec_env("Chain-v0", 1, seed=0)
    for _ in range(5):
        source.step(source.action_space.sample())
    state = get_env_state(source)
    env = make_vec_env("Chain-v0", 1, seed=1)
    before = get_env_state(env)
    key = "sub0/3/_np_random"
    state[key] = np.array(str(state[key]).replace('"PCG64"', '"seed"'))
    with pytest.raises(EnvStateError, match=f"'{key}' is malformed: unknown bit generator 'seed'"):
        set_env_state(env, state)
    state[key] = np.array('{"deque": [1, 2]}')
    with pytest.raises(EnvStateError, match=f"'{key}' is malformed: 'maxlen'"):
        set_env_state(env, state)
    after = get_env_state(env)
    assert all(np.array_equal(before[k], after[k]) for k in before)  # nothing was restored
    assert not all(np.array_equal(state[k], after[k]) for k in before if k != key)


class SimulatorHandle:
    """Stands in for an opaque simulator object (a MuJoCo MjData, a Box2D world)."""


class OpaqueEnv(gym.Env):
    def __init__(self):
        self.observation_space = gym.spaces.Discrete(2)
        self.action_space = gym.spaces.Discrete(2)
        self.sim = SimulatorHandle()

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return 0, {}

    def step(self, action):
        return 0, 0.0, False, False, {}


def test_supports_exact_state():
    for env_id in ["CartPole-v1", "Acrobot-v1", "MountainCar-v0", "Pendulum-v1", "Chain-v0",
                   "FrozenLake-v1", "Taxi-v4", "Blackjack-v1"]:
        assert supports_exact_state(make_vec_env(env_id, 2, seed=0)), env_id
    if "OpaqueTest-v0" not in gym.registry:
        gym.register("OpaqueTest-v0", entry_point=OpaqueEnv, max_episode_steps=5)
    assert not supports_exact_state(make_vec_env("OpaqueTest-v0", 1, seed=0))


def test_envs_package_does_not_import_tensorflow():
    code = "import sys, envs; envs.get_env_state; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
