"""Atari through ale-py: the DQN preprocessing, the training-only wrappers, whole-game scores,
a short Pong run through scripts/train_dqn.py."""

import sys

import numpy as np
import pytest
from conftest import train_dqn
from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation, TransformReward

from envs import (
    EnvError,
    check_env_id,
    finished_episodes,
    frame_stack_size,
    get_env_state,
    make_vec_env,
    set_env_state,
    supports_exact_state,
)
from envs.atari import EpisodicLife, FireReset
from rlharness import read_scalars

pytest.importorskip("ale_py", reason="the 'atari' extra is not installed")


def layers(env):
    out, layer = [], env
    while hasattr(layer, "env"):
        out.append(type(layer))
        layer = layer.env
    return out


@pytest.mark.parametrize("env_id", ["ALE/Pong-v5", "PongNoFrameskip-v4"])
def test_dqn_preprocessing_shapes_and_dtypes(env_id):
    env = make_vec_env(env_id, 2, seed=0)
    assert env.single_observation_space.shape == (4, 84, 84)
    assert env.single_observation_space.dtype == np.uint8 and frame_stack_size(env) == 4
    obs, _ = env.reset(seed=0)
    assert obs.shape == (2, 4, 84, 84) and obs.dtype == np.uint8
    np.testing.assert_array_equal(obs[:, 0], obs[:, 3])  # a fresh stack repeats its frame
    inner = env.envs[0]
    kinds = layers(inner)
    assert kinds.index(FrameStackObservation) < kinds.index(AtariPreprocessing)
    assert FireReset in kinds  # Pong has FIRE
    pre = next(x for x in _walk(inner) if isinstance(x, AtariPreprocessing))
    assert (pre.noop_max, pre.frame_skip, pre.grayscale_obs) == (30, 4, True)
    assert inner.unwrapped._frameskip == 1  # frame skipping (max-pooled) is the wrapper's
    sticky = inner.unwrapped.ale.getFloat("repeat_action_probability")
    assert sticky == pytest.approx(0.25 if env_id.startswith("ALE/") else 0.0)
    zero = make_vec_env(env_id, 1, sticky_actions=0.0).envs[0].unwrapped
    assert zero.ale.getFloat("repeat_action_probability") == 0.0


def _walk(env):
    while True:
        yield env
        if not hasattr(env, "env"):
            return
        env = env.env


def test_training_only_wrappers_clip_rewards_end_episodes_on_lives_and_keep_real_scores():
    """MsPacman pays 10 per pellet and has 3 lives: training sees rewards clipped to 1 and an
    episode end at each lost life without a reset; games are scored whole, unclipped."""
    train = make_vec_env("ALE/MsPacman-v5", 1, seed=0, sticky_actions=0.0)
    evaluate = make_vec_env("ALE/MsPacman-v5", 1, seed=0, training=False, sticky_actions=0.0)
    assert EpisodicLife in layers(train.envs[0]) and TransformReward in layers(train.envs[0])
    assert EpisodicLife not in layers(evaluate.envs[0])
    assert TransformReward not in layers(evaluate.envs[0])
    rng = np.random.default_rng(0)
    for env, training in ((train, True), (evaluate, False)):
        env.reset(seed=0)
        rewards, ends, games = [], 0, []
        while not games:
            _, r, term, trunc, infos = env.step(rng.integers(0, 9, 1))
            rewards.append(float(r[0]))
            ends += int(term[0] or trunc[0])
            games += finished_episodes(infos)
        score, length = games[0]
        assert set(rewards) <= ({0.0, 1.0} if training else set(range(0, 5000, 10)))
        assert score >= 10 * sum(rewards) if training else score == sum(rewards)
        assert score % 10 == 0 and score > 0
        assert ends == (3 if training else 1)  # three lives; eval: one whole game
        assert length == len(rewards) or training


def test_missing_atari_extra_is_a_one_line_error_naming_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ale_py", None)  # import ale_py raises ImportError
    with pytest.raises(EnvError, match=r"pip install 'rlharness\[atari\]'"):
        check_env_id("ALE/Breakout-v5")


def test_short_pong_run_through_train_dqn_logs_every_tag(tmp_path):
    run_dir = str(tmp_path / "pong")  # a random Pong game lasts ~760 agent steps
    result = train_dqn("--env", "ALE/Pong-v5", "--logdir", run_dir, "--total-steps", "800",
                       "--learning-starts", "200", "--buffer-size", "2000", "--train-freq",
                       "100", "--gradient-steps", "2", "--batch-size", "8",
                       "--exploration-fraction", "0.5", "--eval-freq", "0",
                       "--eval-episodes", "1", "--sticky-actions", "0", "--no-progress",
                       "--checkpoint-every", "0", "--target-update-interval", "100")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "dqn on ALE/Pong-v5" in result.stdout
    tags = read_scalars(run_dir)
    for tag in ("train/loss", "train/q_mean", "train/learning_rate", "train/tau",
                "rollout/ep_return", "rollout/ep_length", "rollout/exploration_rate",
                "eval/mean_return", "time/sps", "time/env_steps"):
        assert tags.get(tag), tag
    (_, game), *_ = tags["rollout/ep_return"]
    assert -21 <= game <= 21 and game == int(game)  # a whole game's score, not a life's
    assert -21 <= tags["eval/mean_return"][-1][1] <= 21


def test_ale_state_resumes_mid_game_exactly_with_sticky_actions():
    """get_env_state saves ALE through cloneState(include_rng=True) (sticky actions' RNG
    included), the frame stack and max-pool buffers, lives; a fresh env continues identically."""
    env = make_vec_env("ALE/Breakout-v5", 2, seed=0)  # v5: sticky actions 0.25
    assert supports_exact_state(env)
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    for _ in range(50):
        env.step(rng.integers(0, 4, 2))
    state = get_env_state(env)
    actions = rng.integers(0, 4, (120, 2))

    def rollout(vec):
        out = []
        for a in actions:
            obs, reward, term, trunc, infos = vec.step(a)
            out.append((obs.copy(), reward, term, trunc, finished_episodes(infos)))
        return out

    want = rollout(env)
    fresh = make_vec_env("ALE/Breakout-v5", 2, seed=123)
    set_env_state(fresh, state)
    got = rollout(fresh)
    assert sum(w[2].sum() for w in want) >= 1  # lives were lost on the way
    for (o1, r1, t1, u1, e1), (o2, r2, t2, u2, e2) in zip(want, got, strict=True):
        np.testing.assert_array_equal(o1, o2)
        np.testing.assert_array_equal(r1, r2)
        assert (t1 == t2).all() and (u1 == u2).all() and e1 == e2
