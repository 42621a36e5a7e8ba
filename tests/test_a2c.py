"""A2C, the agent registry and the agent guide's example (docs/agents.md), through the real
Trainer, on real gymnasium envs with real event files."""

import os
import re
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf
from conftest import ROOT

from agents import ALGORITHMS, get_agent_class
from agents.a2c import A2C, gae
from envs import make_vec_env
from rlharness import read_scalars
from rlharness.schedules import ExponentialDecay
from rlharness.trainer import Trainer

SCHEDULE = ExponentialDecay(1e-3, decay_steps=10, decay_rate=0.5)
METRICS = ("loss", "policy_loss", "value_loss", "entropy")
CARTPOLE = (gym.spaces.Box(-np.inf, np.inf, (4,), np.float32), gym.spaces.Discrete(2))


def cartpole_run(log_dir, total_steps, *, update_mode="tf_function", resume=False, **kwargs):
    env = make_vec_env("CartPole-v1", 2, seed=0)
    agent = A2C(env.single_observation_space, env.single_action_space, learning_rate=SCHEDULE,
                n_steps=5, gae_lambda=0.95, ent_coef=0.01, hidden_sizes=(32, 32),
                update_mode=update_mode, jit_compile=False, seed=0, **kwargs)
    trainer = Trainer(agent, env, total_steps=total_steps, log_dir=str(log_dir), seed=0,
                      progress=False)
    if resume:
        trainer.restore()
    summary = trainer.train()
    trainer.writer.close()
    return agent, summary, read_scalars(str(log_dir))


def test_gae_bootstraps_on_truncation_and_cuts_the_trace_at_every_episode_end():
    gamma, lam = 0.9, 0.5
    # one sub-env, 4 steps: step 1 truncated, step 2 terminated, step 3 ends the rollout
    r = np.array([[1.0], [2.0], [3.0], [4.0]], np.float32)
    v = np.array([[0.5], [0.6], [0.7], [0.8]], np.float32)
    v_next = np.array([[0.6], [10.0], [20.0], [0.9]], np.float32)  # V(true next obs)
    term = np.array([[0.0], [0.0], [1.0], [0.0]], np.float32)
    trunc = np.array([[0.0], [1.0], [0.0], [0.0]], np.float32)
    adv = gae(r, v, v_next, term, trunc, gamma, lam).numpy()[:, 0]
    d3 = 4 + gamma * 0.9 - 0.8  # the rollout's end bootstraps
    d2 = 3 - 0.7                # terminated: no bootstrap, trace cut
    d1 = 2 + gamma * 10 - 0.6   # truncated: bootstrap from V(final obs), trace cut
    d0 = 1 + gamma * 0.6 - 0.5
    np.testing.assert_allclose(adv, [d0 + gamma * lam * d1, d1, d2, d3], rtol=1e-6)
    # lambda = 1: advantage + value = the n-step return
    v_next = np.array([[0.8], [0.9]], np.float32)  # V(next obs) = V(obs of the next step)
    adv = gae(r[2:], v[2:], v_next, term[2:] * 0, trunc[2:], gamma, 1.0).numpy()[:, 0]
    np.testing.assert_allclose(adv + v[2:, 0], [3 + gamma * (4 + gamma * 0.9), 4 + gamma * 0.9],
                               rtol=1e-6)


def test_a2c_learns_the_chain(tmp_path):
    gamma = 0.9
    env = make_vec_env("Chain-v0", 4, seed=0)
    agent = A2C(env.single_observation_space, env.single_action_space, learning_rate=3e-3,
                n_steps=5, gamma=gamma, hidden_sizes=(32,), seed=0)
    Trainer(agent, env, total_steps=3000, log_dir=str(tmp_path), progress=False).train()
    states = np.eye(5, dtype=np.float32)[:4]  # the non-terminal states 0..3
    logits = agent.policy_params(states)
    p_right = 1 / (1 + np.exp(logits[:, 0] - logits[:, 1]))
    assert (p_right > 0.95).all(), p_right
    np.testing.assert_allclose(agent.value(states), gamma ** (3 - np.arange(4)), atol=0.05)


@pytest.mark.parametrize("shared", [False, True])
def test_numpy_act_path_matches_the_model_and_samples_the_policy(shared):
    agent = A2C(*CARTPOLE, hidden_sizes=(16, 16), shared=shared, seed=1)
    assert len(agent.net.trainable_variables) == (8 if shared else 12)
    obs = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    logits, values = agent.net(obs)
    np.testing.assert_allclose(agent.policy_params(obs), logits.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(agent.act(obs, explore=False), logits.numpy().argmax(1))
    # a policy that picks action 1 with probability 0.8 in every state
    head = agent._policy_layers[-1]
    head.kernel.assign(tf.zeros_like(head.kernel))
    head.bias.assign([0.0, np.log(4.0)])
    agent._acting_weights = None
    actions = agent.act(np.zeros((20_000, 4), np.float32))
    assert set(np.unique(actions)) == {0, 1}
    assert abs(actions.mean() - 0.8) < 0.01


@pytest.fixture(scope="module")
def mode_runs(tmp_path_factory):
    return {mode: cartpole_run(tmp_path_factory.mktemp(mode), 300, update_mode=mode)
            for mode in ("fit", "train_on_batch", "tf_function")}


def test_update_modes_train_identically_and_log_one_lr_point_per_update(mode_runs):
    for mode, (agent, summary, points) in mode_runs.items():
        assert summary["updates"] == 30, mode  # one update per 5 vector steps of 2 envs
        lr = points["train/learning_rate"]
        assert [s for s, _ in lr] == list(range(30))
        np.testing.assert_allclose([v for _, v in lr], SCHEDULE(np.arange(30)), rtol=1e-6)
        assert agent._update.tracing_count() == 1, mode  # fixed shapes: traced once
    _, _, want = mode_runs["tf_function"]
    for mode in ("fit", "train_on_batch"):
        _, _, got = mode_runs[mode]
        for name in METRICS:
            np.testing.assert_allclose([v for _, v in got[f"train/{name}"]],
                                       [v for _, v in want[f"train/{name}"]], rtol=1e-4,
                                       atol=1e-6, err_msg=f"{mode} {name}")


def test_resume_mid_rollout_matches_the_uninterrupted_run(tmp_path, mode_runs):
    _, _, straight = mode_runs["tf_function"]
    cartpole_run(tmp_path, 154)  # stops 2 vector steps into a 5-step rollout
    agent, summary, resumed = cartpole_run(tmp_path, 300, resume=True)
    assert summary["updates"] == 30
    for name in ("learning_rate", *METRICS):
        assert resumed[f"train/{name}"] == straight[f"train/{name}"], name


def test_a_restarted_env_cuts_the_stored_rollout():
    agent = A2C(*CARTPOLE, n_steps=4, seed=0)
    obs = np.ones((2, 4), np.float32)
    step = dict(actions=np.array([0, 1]), rewards=np.ones(2), terminated=np.zeros(2, bool),
                truncated=np.zeros(2, bool))
    agent.observe(obs, next_obs=obs + 1, **step)
    agent.act(np.zeros((100, 4), np.float32))  # moves the RNG on
    state = agent.numpy_state()
    fresh = A2C(*CARTPOLE, n_steps=4, seed=0)
    fresh.load_numpy_state(state)
    assert fresh.rng.random() == agent.rng.random()  # the RNG came back
    assert fresh.pos == 1
    np.testing.assert_array_equal(fresh.rollout["next_obs"][0], obs + 1)
    # sub-env 0 continues where it was; sub-env 1 was reset (new episode) on resume
    fresh.observe(np.array([obs[0] + 1, obs[1] - 5]), next_obs=obs, **step)
    np.testing.assert_array_equal(fresh.rollout["truncated"][0], [0.0, 1.0])


def test_registry_picks_agents_by_name_without_importing_tensorflow():
    assert get_agent_class("a2c") is A2C
    assert get_agent_class("DQN").__name__ == "DQN"
    assert set(ALGORITHMS) >= {"dqn", "a2c", "ppo"}
    with pytest.raises(ValueError, match="unknown algorithm 'sac'; known: a2c, dqn, ppo"):
        get_agent_class("sac")
    code = "import sys, agents; assert 'tensorflow' not in sys.modules; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr


def test_train_a2c_script_end_to_end(tmp_path, capsys):
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    try:
        import train_a2c
    finally:
        sys.path.remove(os.path.join(ROOT, "scripts"))
    run_dir = str(tmp_path / "run")
    status = train_a2c.main(["--logdir", run_dir, "--total-steps", "400", "--n-envs", "4",
                             "--n-steps", "10", "--eval-freq", "0", "--eval-episodes", "1",
                             "--no-progress", "--shared", "--hidden-sizes", "16"])
    assert status == 0
    out = capsys.readouterr().out
    assert "a2c on CartPole-v1" in out and "10 updates" in out
    assert len(read_scalars(run_dir)["train/learning_rate"]) == 10


# -- the agent guide's example (docs/agents.md) ---------------------------------------
MARKERS = r"<!-- agent-example:start -->\s*```python\n(.*?)```\s*<!-- agent-example:end -->"


def readme_example() -> str:
    with open(os.path.join(ROOT, "docs", "agents.md")) as f:
        found = re.search(MARKERS, f.read(), re.S)
    assert found, "no agent example between the markers in docs/agents.md"
    return found.group(1)


def test_readme_agent_example_trains_through_the_trainer_with_a_decayed_lr(tmp_path):
    namespace: dict = {}
    exec(compile(readme_example(), "docs/agents.md:agent-example", "exec"), namespace)
    schedule = ExponentialDecay(1e-2, decay_steps=4, decay_rate=0.5)

    env = make_vec_env("CartPole-v1", 2, seed=0)
    agent = namespace["Reinforce"](env.single_observation_space, env.single_action_space,
                                   learning_rate=schedule, n_steps=20, update_mode="fit")
    trainer = Trainer(agent, env, total_steps=400, log_dir=str(tmp_path), progress=False)
    assert trainer.train()["updates"] == 10  # a round every 20 vector steps of 2 envs
    trainer.writer.close()
    points = read_scalars(str(tmp_path))
    lr = points["train/learning_rate"]
    assert [s for s, _ in lr] == list(range(10))  # one point per update, strictly increasing
    np.testing.assert_allclose([v for _, v in lr], schedule(np.arange(10)), rtol=1e-6)
    assert [s for s, _ in points["train/loss"]] == list(range(10))
    # its numpy_state holds an unfinished rollout and the RNG
    obs, _ = env.reset(seed=1)
    for _ in range(3):
        actions = agent.act(obs)
        next_obs, rewards, terminated, truncated, _ = env.step(actions)
        agent.observe(obs, actions, rewards, next_obs, terminated, truncated)
        obs = next_obs
    fresh = namespace["Reinforce"](env.single_observation_space, env.single_action_space)
    fresh.load_numpy_state(agent.numpy_state())
    assert fresh.rng.random() == agent.rng.random()
    assert len(fresh.rollout) == 3
    for got, want in zip(fresh.rollout, agent.rollout):
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)
