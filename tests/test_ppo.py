"""PPO (agents/ppo.py, scripts/train_ppo.py) through the real Trainer, on real gymnasium envs
with real event files; Box actions, normalization and MuJoCo state for exact resume."""

import os
import sys

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf
from conftest import ROOT

from agents.ppo import PPO, clipped_losses, explained_variance
from envs import get_env_state, make_vec_env, set_env_state, supports_exact_state
from rlharness import read_scalars
from rlharness.step import GlobalStep
from rlharness.trainer import Trainer

sys.path.insert(0, os.path.join(ROOT, "scripts"))
import train_ppo  # noqa: E402

PENDULUM_TAGS = {"train/learning_rate", "train/clip_range", "train/clip_range_vf",
                 "train/approx_kl", "train/clip_fraction", "train/entropy",
                 "train/explained_variance", "train/early_stop", "train/loss",
                 "train/policy_loss", "train/value_loss", "train/ent_coef",
                 "rollout/ep_return", "rollout/ep_length", "eval/mean_return"}


def test_clipped_losses_match_a_numpy_reference_on_a_fixed_batch():
    rng = np.random.default_rng(0)
    n, clip, clip_vf = 64, 0.2, 0.5
    log_prob, old_log_prob = rng.normal(-1, 0.3, n), rng.normal(-1, 0.3, n)  # r in ~[0.4, 2.5]
    adv, value, old_value, ret = rng.normal(size=(4, n))
    got = {k: v.numpy() for k, v in clipped_losses(
        *(tf.constant(x, tf.float32) for x in (log_prob, old_log_prob, adv, value, old_value,
                                                ret)), clip, clip_vf).items()}
    ratio = np.exp(log_prob - old_log_prob)
    assert (np.abs(ratio - 1) > clip).mean() > 0.3  # the clip is active on this batch
    surrogate = np.minimum(ratio * adv, np.clip(ratio, 1 - clip, 1 + clip) * adv)
    v_clipped = old_value + np.clip(value - old_value, -clip_vf, clip_vf)
    want = {"policy_loss": -surrogate.mean(),
            "value_loss": np.maximum((ret - value) ** 2, (ret - v_clipped) ** 2).mean(),
            "approx_kl": (ratio - 1 - np.log(ratio)).mean(),
            "clip_fraction": (np.abs(ratio - 1) > clip).mean()}
    for name, value_ in want.items():
        np.testing.assert_allclose(got[name], value_, rtol=1e-5, err_msg=name)
    plain = clipped_losses(*(tf.constant(x, tf.float32) for x in (
        log_prob, old_log_prob, adv, value, old_value, ret)), clip)["value_loss"]
    np.testing.assert_allclose(plain.numpy(), ((ret - value) ** 2).mean(), rtol=1e-5)
    ev = explained_variance(tf.constant(value, tf.float32), tf.constant(ret, tf.float32))
    np.testing.assert_allclose(ev.numpy(), 1 - np.var(ret - value) / np.var(ret), rtol=1e-5)


def test_ppo_learns_the_chain(tmp_path):
    gamma = 0.9
    env = make_vec_env("Chain-v0", 4, seed=0)
    agent = PPO(env.single_observation_space, env.single_action_space, learning_rate=3e-3,
                n_steps=16, batch_size=32, n_epochs=4, gamma=gamma, gae_lambda=1.0,
                hidden_sizes=(32,), jit_compile=False, seed=0)
    Trainer(agent, env, total_steps=2048, log_dir=str(tmp_path), progress=False).train()
    states = np.eye(5, dtype=np.float32)[:4]  # the non-terminal states 0..3
    logits = agent.policy_params(states)
    p_right = 1 / (1 + np.exp(logits[:, 0] - logits[:, 1]))
    assert (p_right > 0.95).all(), p_right
    np.testing.assert_allclose(agent.value(states), gamma ** (3 - np.arange(4)), atol=0.1)


def cartpole_round(log_dir, update_mode):
    env = make_vec_env("CartPole-v1", 2, seed=0)
    agent = PPO(env.single_observation_space, env.single_action_space, learning_rate=1e-2,
                n_steps=16, batch_size=8, n_epochs=2, target_kl=0.01, hidden_sizes=(16,),
                update_mode=update_mode, jit_compile=False, seed=0)
    summary = Trainer(agent, env, total_steps=128, log_dir=str(log_dir), progress=False).train()
    return agent, summary, read_scalars(str(log_dir))


def test_update_modes_run_the_same_round_with_the_kl_early_stop(tmp_path):
    runs = {mode: cartpole_round(tmp_path / mode, mode)
            for mode in ("fit", "train_on_batch", "tf_function")}
    agent, summary, want = runs["tf_function"]
    stops = [v for _, v in want["train/early_stop"]]
    assert 0 < sum(stops) < len(stops), stops  # some rounds stopped early, some did not
    # the update axis counts the gradient steps taken: fewer than 4 rounds x 8 minibatches
    assert summary["updates"] < 32 and len(want["train/learning_rate"]) == summary["updates"]
    assert agent._update.tracing_count() == 1
    for mode in ("fit", "train_on_batch"):
        _, other, got = runs[mode]
        assert other["updates"] == summary["updates"], mode
        for tag in ("train/loss", "train/approx_kl", "train/early_stop"):
            np.testing.assert_allclose([v for _, v in got[tag]], [v for _, v in want[tag]],
                                       rtol=1e-4, atol=1e-6, err_msg=f"{mode} {tag}")


def test_box_actions_are_clipped_for_the_env_only():
    env = make_vec_env("Pendulum-v1", 2, seed=0)
    agent = PPO(env.single_observation_space, env.single_action_space, n_steps=4,
                log_std_init=np.log(5.0), seed=0)
    obs, _ = env.reset(seed=0)
    for _ in range(4):
        actions = agent.act(obs)
        next_obs, rewards, terminated, truncated, _ = env.step(actions)
        torques = [sub.unwrapped.last_u for sub in env.unwrapped.envs]
        assert all(-2.0 <= u <= 2.0 for u in torques)
        np.testing.assert_array_equal(torques, np.clip(actions[:, 0], -2, 2))  # ClipAction did it
        agent.observe(obs, actions, rewards, next_obs, terminated, truncated)
        obs = next_obs
    stored = agent.rollout["actions"]
    assert stored.shape == (4, 2, 1) and np.abs(stored).max() > 2.0  # unclipped for learning
    greedy = agent.act(obs, explore=False)
    np.testing.assert_array_equal(greedy, agent.policy_params(obs)[:, :1])  # the mean


def test_gsde_noise_is_drawn_every_sde_sample_freq_steps_and_held_between():
    env = make_vec_env("Pendulum-v1", 2, seed=0)
    agent = PPO(env.single_observation_space, env.single_action_space, n_steps=8,
                batch_size=16, n_epochs=1, hidden_sizes=(8,), use_sde=True,
                sde_sample_freq=3, jit_compile=False, seed=0)
    agent.bind(GlobalStep(), total_steps=48)
    obs, _ = env.reset(seed=0)
    noise = None
    # freq 3: draws at rollout steps 0, 3, 6, and at 0 of the next rollout (8 is no multiple
    # of 3); then freq -1 for a third rollout: its start is its only draw
    for t in range(24):
        if t == 16:
            agent.sde_sample_freq = -1
        actions = agent.act(obs)
        assert agent.dist.noise.shape == (2, 8, 1)  # one [L, d] matrix per sub-env
        assert not np.array_equal(agent.dist.noise[0], agent.dist.noise[1])
        drawn = noise is None or not np.array_equal(agent.dist.noise, noise)
        assert drawn == (t % 8 in ({0, 3, 6} if t < 16 else {0})), t
        noise = agent.dist.noise.copy()
        params = agent.policy_params(obs)  # the action is μ(s) + z(s) (σ ⊙ noise)
        mean, z, log_std = params[:, :1], params[:, 2:10], params[0, 10:].reshape(8, 1)
        want = mean + np.einsum("bj,bjk->bk", z, np.exp(log_std) * noise)
        np.testing.assert_allclose(actions, want, rtol=1e-6)
        next_obs, rewards, terminated, truncated, _ = env.step(actions)
        agent.observe(obs, actions, rewards, next_obs, terminated, truncated)
        if agent.pos == agent.n_steps:
            agent.update()
        obs = next_obs


def run_ppo(*argv: str) -> None:
    """``train_ppo.py ARGV`` in-process, without XLA (whose compile would take most of it)."""
    assert train_ppo.main(["--no-progress", "--no-jit-compile", *argv]) == 0


PENDULUM = ["--env", "Pendulum-v1", "--n-envs", "2", "--n-steps", "64", "--batch-size", "32",
            "--n-epochs", "2", "--hidden-sizes", "16", "--gamma", "0.9", "--eval-freq", "0",
            "--eval-episodes", "1", "--checkpoint-every", "0", "--normalize-obs",
            "--normalize-reward", "--target-kl", "0.05", "--clip-range-vf", "0.5",
            "--lr", "linear(1e-3, end=0, steps=1000)@env_steps",
            "--clip-range", "linear(0.3, end=0.1, steps=1000)@env_steps",
            "--use-sde", "--sde-sample-freq", "4"]


def test_pendulum_logs_every_tag_and_normalization_resumes_exactly(tmp_path):
    run_ppo("--logdir", str(tmp_path / "straight"), *PENDULUM, "--total-steps", "600")
    straight = read_scalars(str(tmp_path / "straight"))
    assert PENDULUM_TAGS <= set(straight), PENDULUM_TAGS - set(straight)
    lr = [v for _, v in straight["train/learning_rate"]]
    clip = [v for _, v in straight["train/clip_range"]]
    assert lr[0] > lr[-1] > 0 and clip[0] > clip[-1] >= 0.1  # both annealed on env steps
    # stop mid-rollout (at 300 env steps = 150 vector steps: 2 rounds + 22 steps, half-way
    # through a gSDE matrix's 4 steps: the held matrices are state), resume
    stopped = str(tmp_path / "stopped")
    run_ppo("--logdir", stopped, *PENDULUM, "--total-steps", "300")
    run_ppo("--logdir", stopped, "--resume", "--total-steps", "600")
    resumed = read_scalars(stopped)
    for tag in sorted(PENDULUM_TAGS - {"eval/mean_return"}):
        assert resumed[tag] == straight[tag], tag  # exactly: the statistics came back
    assert resumed["eval/mean_return"][-1] == straight["eval/mean_return"][-1]


def test_an_action_space_ppo_cannot_handle_is_a_one_line_error(tmp_path, capsys):
    gym.register("MultiBinaryProbe-v0", entry_point=MultiBinaryEnv)
    try:
        with pytest.raises(SystemExit) as stop:
            train_ppo.parse_args(["--env", "MultiBinaryProbe-v0", "--logdir",
                                  str(tmp_path / "run")])
    finally:
        del gym.registry["MultiBinaryProbe-v0"]
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and len(err.splitlines()) == 1, err
    assert "PPO needs a Discrete (actions 0..n-1) or Box action space" in err
    assert "MultiBinary(3)" in err and not os.path.exists(tmp_path / "run")


def test_use_sde_on_discrete_actions_is_a_one_line_error(tmp_path, capsys):
    for argv, words in [(["--use-sde"], ["--use-sde needs Box", "Discrete(2)"]),
                        (["--sde-sample-freq", "0"], ["--sde-sample-freq", "-1"])]:
        with pytest.raises(SystemExit) as stop:
            train_ppo.parse_args([*argv, "--logdir", str(tmp_path / "run")])
        err = capsys.readouterr().err.strip()
        assert stop.value.code == 2 and len(err.splitlines()) == 1, err
        assert all(w in err for w in words), err
    assert not os.path.exists(tmp_path / "run")


class MultiBinaryEnv(gym.Env):
    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.MultiBinary(3)


@pytest.mark.parametrize("env_id", ["HalfCheetah-v5", "Hopper-v5"])
def test_mujoco_envs_resume_exactly_from_their_saved_state(env_id, tmp_path):
    pytest.importorskip("mujoco")  # the 'mujoco' extra, which 'dev' includes
    actions = np.random.default_rng(0).uniform(-1, 1, (120, 2, 6 if "Cheetah" in env_id else 3))
    env = make_vec_env(env_id, 2, seed=0, normalize_obs=True, normalize_reward=True)
    env.reset(seed=0)
    assert supports_exact_state(env)
    for a in actions[:60]:
        env.step(a)
    np.savez(tmp_path / "state.npz", **get_env_state(env))
    with np.load(tmp_path / "state.npz", allow_pickle=False) as data:
        state = dict(data)
    assert any(k.endswith("mujoco.state") for k in state)
    fresh = make_vec_env(env_id, 2, seed=123, normalize_obs=True, normalize_reward=True)
    set_env_state(fresh, state)
    for a in actions[60:]:  # Hopper falls and resets inside this stretch: RNG restored too
        want, got = env.step(a), fresh.step(a)
        for x, y in zip(want[:4], got[:4]):
            np.testing.assert_array_equal(x, y)


def test_a2c_takes_box_actions_from_the_same_distribution_code(tmp_path):
    from agents.a2c import A2C
    from agents.distributions import DiagGaussian

    env = make_vec_env("Pendulum-v1", 2, seed=0)
    agent = A2C(env.single_observation_space, env.single_action_space, n_steps=5,
                log_std_init=-0.5, hidden_sizes=(8,), jit_compile=False, seed=0)
    assert isinstance(agent.dist, DiagGaussian)
    assert "log_std" in [v.name for v in agent.net.trainable_variables]
    Trainer(agent, env, total_steps=100, log_dir=str(tmp_path), progress=False).train()
    entropy = [v for _, v in read_scalars(str(tmp_path))["train/entropy"]]
    assert len(entropy) == 10  # H = log σ + ½ log 2πe, moving from log σ = -0.5
    np.testing.assert_allclose(entropy[0], -0.5 + 0.5 * np.log(2 * np.pi * np.e), atol=0.01)
