"""Action distributions of the policy-gradient agents (A2C, PPO): the one home of sampling,
log-probabilities, entropies and greedy actions.

A policy network's head outputs the distribution's parameters as one ``[B, n_params]`` array:
the logits for :class:`Categorical`, ``[mean, log_std]`` for :class:`DiagGaussian` (its
state-independent log-std is the :class:`LogStd` layer appended to the head). ``log_prob`` and
``entropy`` run in-graph (TensorFlow, for the loss); ``sample`` and ``mode`` run in numpy on
the acting path (µs per step), drawing from the agent's seeded generator.
"""

from __future__ import annotations

import math

import gymnasium as gym
import keras
import numpy as np
import tensorflow as tf

from envs import require_discrete_or_box


class Categorical:
    """``π(a|s) = softmax(logits)_a`` over ``n`` actions ``0..n-1``."""

    action_dtype = np.int32

    def __init__(self, n: int) -> None:
        self.n = int(n)
        self.n_params = self.n
        self.action_shape: tuple[int, ...] = ()

    def log_prob(self, logits: tf.Tensor, actions: tf.Tensor) -> tf.Tensor:
        """``log π(a|s) = logits_a - logsumexp(logits)``, shape ``[B]``."""
        return tf.gather(tf.nn.log_softmax(logits), tf.cast(actions, tf.int32), batch_dims=1)

    def entropy(self, logits: tf.Tensor) -> tf.Tensor:
        """``H = -Σ_a π_a log π_a`` in nats, shape ``[B]``."""
        log_p = tf.nn.log_softmax(logits)
        return -tf.reduce_sum(tf.exp(log_p) * log_p, axis=-1)

    def sample(self, logits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``a ~ softmax(logits)`` by inverse CDF, one uniform draw per row."""
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        cdf = np.cumsum(probs, axis=1)
        u = rng.random((len(cdf), 1)) * cdf[:, -1:]
        return np.minimum((cdf <= u).sum(axis=1), self.n - 1)

    def mode(self, logits: np.ndarray) -> np.ndarray:
        """The greedy action ``argmax_a logits_a``."""
        return logits.argmax(axis=1)

    def mode_tf(self, logits: tf.Tensor) -> tf.Tensor:
        """:meth:`mode` in TensorFlow (an exported policy)."""
        return tf.argmax(logits, axis=1)

    def head(self) -> list[keras.layers.Layer]:
        """Layers after the policy's linear output (none: the output is the logits)."""
        return []


class DiagGaussian:
    """``π(a|s) = N(a; μ(s), diag σ²)`` with ``σ = exp(log_std)`` the same in every state.

    Params ``[μ, log σ]`` (``2 d`` columns for ``d`` action dimensions). Samples are NOT
    clipped here: the env clips them to its bounds (gymnasium's ``ClipAction``, see
    :func:`envs.make_vec_env`) and learning uses the log-prob of the unclipped sample.
    """

    action_dtype = np.float32

    def __init__(self, shape: tuple[int, ...], log_std_init: float = 0.0) -> None:
        self.action_shape = tuple(int(s) for s in shape)
        self.dim = int(np.prod(self.action_shape))
        self.n_params = self.dim  # the linear output: μ; LogStd appends log σ
        self.log_std_init = float(log_std_init)

    def _split(self, params):
        return params[..., : self.dim], params[..., self.dim:]

    def log_prob(self, params: tf.Tensor, actions: tf.Tensor) -> tf.Tensor:
        """``log π(a|s) = -Σ_i [(a_i - μ_i)² / (2σ_i²) + log σ_i + ½ log 2π]``, shape ``[B]``."""
        mean, log_std = self._split(params)
        z = (tf.reshape(actions, tf.shape(mean)) - mean) * tf.exp(-log_std)
        return -tf.reduce_sum(0.5 * tf.square(z) + log_std + 0.5 * math.log(2 * math.pi),
                              axis=-1)

    def entropy(self, params: tf.Tensor) -> tf.Tensor:
        """``H = Σ_i (log σ_i + ½ log 2πe)`` in nats, shape ``[B]``."""
        _, log_std = self._split(params)
        return tf.reduce_sum(log_std + 0.5 * math.log(2 * math.pi * math.e), axis=-1)

    def sample(self, params: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``a = μ + σ ε``, ``ε ~ N(0, I)``, unclipped, shaped ``[B, *action_shape]``."""
        mean, log_std = self._split(params)
        noise = rng.standard_normal(mean.shape, dtype=np.float32)
        return (mean + np.exp(log_std) * noise).reshape(len(params), *self.action_shape)

    def mode(self, params: np.ndarray) -> np.ndarray:
        """The greedy action: the mean ``μ``."""
        return self._split(params)[0].reshape(len(params), *self.action_shape)

    def mode_tf(self, params: tf.Tensor) -> tf.Tensor:
        """:meth:`mode` in TensorFlow (an exported policy; unclipped, as ``mode``)."""
        return tf.reshape(self._split(params)[0], (-1, *self.action_shape))

    def head(self) -> list[keras.layers.Layer]:
        return [LogStd(self.log_std_init)]


class LogStd(keras.layers.Layer):
    """``μ [B, d] -> [μ, log σ] [B, 2d]``: a trainable log-std (one per action dimension,
    initialised to ``init``) that does not depend on the state."""

    def __init__(self, init: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.init = float(init)

    def build(self, input_shape) -> None:
        self.log_std = self.add_weight(shape=(int(input_shape[-1]),), name="log_std",
                                       initializer=keras.initializers.Constant(self.init))

    def call(self, mean):
        return tf.concat([mean, tf.zeros_like(mean) + self.log_std], axis=-1)

    def numpy(self, mean: np.ndarray, log_std: np.ndarray) -> np.ndarray:
        """What :meth:`call` computes, in numpy (``log_std``: the weight's value)."""
        return np.concatenate([mean, np.broadcast_to(log_std, mean.shape)], axis=-1)

    def get_config(self) -> dict:
        return {**super().get_config(), "init": self.init}


def distribution_for(space: gym.Space, algo: str = "this agent",
                     log_std_init: float = 0.0) -> Categorical | DiagGaussian:
    """The distribution of an action space: Discrete -> :class:`Categorical`, Box ->
    :class:`DiagGaussian`; any other space is an :class:`envs.EnvError` naming it."""
    require_discrete_or_box(space, algo)
    if isinstance(space, gym.spaces.Discrete):
        return Categorical(space.n)
    return DiagGaussian(space.shape, log_std_init)
