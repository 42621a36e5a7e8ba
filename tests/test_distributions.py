"""Action distributions (agents/distributions.py) against closed forms and scipy."""

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf
from scipy import special, stats

from agents.distributions import (
    Categorical,
    DiagGaussian,
    LogStd,
    StateDependentGaussian,
    StateDependentStd,
    distribution_for,
)
from envs import EnvError


def test_categorical_log_prob_entropy_sample_and_mode():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 4)).astype(np.float32) * 3
    actions = rng.integers(0, 4, 6)
    dist = Categorical(4)
    want = special.log_softmax(logits.astype(np.float64), axis=1)[np.arange(6), actions]
    np.testing.assert_allclose(dist.log_prob(logits, actions).numpy(), want, rtol=1e-5)
    probs = special.softmax(logits.astype(np.float64), axis=1)
    np.testing.assert_allclose(dist.entropy(logits).numpy(), stats.entropy(probs, axis=1),
                               rtol=1e-5)
    np.testing.assert_array_equal(dist.mode(logits), logits.argmax(1))
    # frequencies of 40 000 samples of one row: chi-square against its probabilities
    samples = dist.sample(np.repeat(logits[:1], 40_000, axis=0), np.random.default_rng(1))
    counts = np.bincount(samples, minlength=4)
    assert stats.chisquare(counts, probs[0] * 40_000).pvalue > 1e-3


def test_gaussian_log_prob_entropy_sample_and_mode():
    rng = np.random.default_rng(0)
    dist = DiagGaussian((3,))
    mean = rng.normal(size=(5, 3)).astype(np.float32)
    log_std = np.array([-1.0, 0.0, 0.7], np.float32)
    params = LogStd().numpy(mean, None, log_std)
    actions = rng.normal(size=(5, 3)).astype(np.float32) * 2
    cov = np.diag(np.exp(2 * log_std.astype(np.float64)))
    want = [stats.multivariate_normal(m, cov).logpdf(a) for m, a in zip(mean, actions)]
    np.testing.assert_allclose(dist.log_prob(params, actions).numpy(), want, rtol=1e-5)
    np.testing.assert_allclose(dist.entropy(params).numpy(),
                               stats.multivariate_normal(mean[0], cov).entropy(), rtol=1e-6)
    np.testing.assert_array_equal(dist.mode(params), mean)
    draws = dist.sample(np.repeat(params[:1], 50_000, axis=0), np.random.default_rng(1))
    assert draws.shape == (50_000, 3) and draws.dtype == np.float32
    np.testing.assert_allclose(draws.mean(0), mean[0], atol=0.03)
    np.testing.assert_allclose(draws.std(0), np.exp(log_std), rtol=0.02)


def test_log_std_layer_is_trainable_and_state_independent():
    layer = LogStd(-0.5)
    out = layer(tf.constant([[1.0, 2.0], [3.0, 4.0]]))
    np.testing.assert_allclose(out.numpy(), [[1, 2, -0.5, -0.5], [3, 4, -0.5, -0.5]])
    assert [w.name for w in layer.trainable_weights] == ["log_std"]
    dist = DiagGaussian((2,))
    with tf.GradientTape() as tape:
        entropy = dist.entropy(layer(tf.zeros((1, 2))))
    np.testing.assert_allclose(tape.gradient(entropy, layer.log_std).numpy(), [1.0, 1.0])


def test_gsde_log_prob_entropy_and_noise_against_scipy():
    """gSDE: a | s ~ N(μ, diag(z² @ σ² + 1e-6)); the noise z θ with θ ~ N(0, σ²) has that
    variance; the layer's graph and numpy forms agree; no gradient reaches z."""
    rng = np.random.default_rng(0)
    b, latent_dim, d = 5, 3, 2
    mean = rng.normal(size=(b, d)).astype(np.float32)
    z = np.tanh(rng.normal(size=(b, latent_dim))).astype(np.float32)
    log_std = rng.uniform(-1, 0.5, (latent_dim, d)).astype(np.float32)
    layer = StateDependentStd()
    params = layer.numpy(mean, z, log_std)
    z_in = tf.constant(z)
    layer.build(mean.shape, z.shape)
    layer.log_std.assign(log_std)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(z_in)
        graph = layer(tf.constant(mean), z_in)
        log_prob = StateDependentGaussian((d,)).log_prob(graph, tf.ones((b, d)))
    np.testing.assert_allclose(graph.numpy(), params, rtol=1e-5)
    assert tape.gradient(log_prob, z_in) is None  # z enters without its gradient
    assert np.abs(tape.gradient(log_prob, layer.log_std).numpy()).min() > 0

    var = np.square(z.astype(np.float64)) @ np.exp(2 * log_std.astype(np.float64)) + 1e-6
    dist = StateDependentGaussian((d,))
    actions = rng.normal(size=(b, d)).astype(np.float32) * 2
    laws = [stats.multivariate_normal(m, np.diag(v)) for m, v in zip(mean, var)]
    np.testing.assert_allclose(dist.log_prob(params, actions).numpy(),
                               [law.logpdf(a) for law, a in zip(laws, actions)], rtol=1e-5)
    np.testing.assert_allclose(dist.entropy(params).numpy(), [law.entropy() for law in laws],
                               rtol=1e-5)
    np.testing.assert_array_equal(dist.mode(params), mean)
    # 50 000 rows of one state, each its own θ: the noise has the state's variance
    draws = dist.sample(np.repeat(params[:1], 50_000, axis=0), np.random.default_rng(1))
    assert draws.shape == (50_000, d) and draws.dtype == np.float32
    np.testing.assert_allclose(draws.mean(0), mean[0], atol=0.03)
    np.testing.assert_allclose(draws.std(0), np.sqrt(var[0] - 1e-6), rtol=0.02)
    held = dist.sample(np.repeat(params[:1], 50_000, axis=0), np.random.default_rng(2))
    np.testing.assert_array_equal(held, draws)  # θ held until reset_noise
    dist.reset_noise()
    fresh = dist.sample(np.repeat(params[:1], 50_000, axis=0), np.random.default_rng(2))
    assert not np.array_equal(fresh, draws)


@pytest.mark.parametrize("space", [gym.spaces.MultiBinary(3), gym.spaces.MultiDiscrete([2, 3]),
                                   gym.spaces.Dict({"a": gym.spaces.Discrete(2)}),
                                   gym.spaces.Discrete(3, start=1)])
def test_unsupported_action_spaces_are_a_one_line_error(space):
    with pytest.raises(EnvError, match="needs a Discrete .* or Box action space") as error:
        distribution_for(space, "PPO")
    assert len(str(error.value).splitlines()) == 1
    assert isinstance(distribution_for(gym.spaces.Box(-1, 1, (2,)), "PPO"), DiagGaussian)
    assert isinstance(distribution_for(gym.spaces.Box(-1, 1, (2,)), "PPO", use_sde=True),
                      StateDependentGaussian)
    with pytest.raises(EnvError, match="gSDE .* needs Box actions"):
        distribution_for(gym.spaces.Discrete(2), "PPO", use_sde=True)
