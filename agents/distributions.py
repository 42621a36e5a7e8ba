"""Action distributions of the policy-gradient agents (A2C, PPO): the one home of sampling,
log-probabilities, entropies and greedy actions.

A policy network's head outputs the distribution's parameters as one ``[B, n_params]`` array:
the logits for :class:`Categorical`, ``[mean, log_std]`` for :class:`DiagGaussian` (its
state-independent log-std is the :class:`LogStd` layer appended to the head), ``[mean, log_std(s),
z(s), log σ]`` for :class:`StateDependentGaussian` (gSDE; the :class:`StateDependentStd`
layer). The layers of ``head()`` are called as ``layer(params, latent)``, ``latent`` being the
policy's last hidden features. ``log_prob`` and ``entropy`` run in-graph (TensorFlow, for the
loss); ``sample`` and ``mode`` run in numpy on the acting path (µs per step), drawing from the
agent's seeded generator.
"""

from __future__ import annotations

import math

import gymnasium as gym
import keras
import numpy as np
import tensorflow as tf

from envs import EnvError, require_discrete_or_box


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
        return params[..., : self.dim], params[..., self.dim: 2 * self.dim]

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


class StateDependentGaussian(DiagGaussian):
    """Generalized state-dependent exploration (gSDE; Raffin et al. 2021, "Smooth Exploration
    for Robotic Reinforcement Learning", CoRL 2021; Stable-Baselines3's ``use_sde``):

        a = μ(s) + ε(s),  ε(s) = z(s) θ_ε,  θ_ε ~ N(0, σ²) held for several steps

    ``z(s)`` is the policy's last hidden features ``[L]`` (not trained through the noise:
    SB3's ``learn_features=False``), ``θ_ε`` an ``[L, d]`` exploration matrix per sub-env and
    ``σ = exp(log σ)`` a learned ``[L, d]`` matrix (SB3's ``full_std``). Given ``s``, ``a`` is
    Gaussian with the state-dependent variance ``σ_k(s)² = Σ_j z_j² σ_jk² + 1e-6`` (SB3's
    epsilon): :meth:`log_prob`, :meth:`entropy` and :meth:`mode` (the mean) are
    :class:`DiagGaussian`'s on ``[μ, log σ(s)]``, which :class:`StateDependentStd` computes.
    :meth:`sample` uses the held ``θ_ε = σ ⊙ noise``, ``noise ~ N(0, I)`` drawn again after
    :meth:`reset_noise`; the agent decides when (SB3's ``sde_sample_freq``) and checkpoints
    :attr:`noise`.
    """

    def __init__(self, shape: tuple[int, ...], log_std_init: float = 0.0) -> None:
        super().__init__(shape, log_std_init)
        self.noise: np.ndarray | None = None  # [n_envs, L, d] standard normal; None: redraw

    def reset_noise(self) -> None:
        """Draw a new exploration matrix at the next :meth:`sample`."""
        self.noise = None

    def sample(self, params: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``a = μ(s) + z(s) (σ ⊙ noise)``, one held matrix per row (sub-env), unclipped."""
        d = self.dim
        latent_dim = (params.shape[1] - 2 * d) // (1 + d)
        mean, z = params[:, :d], params[:, 2 * d: 2 * d + latent_dim]
        std = np.exp(params[0, 2 * d + latent_dim:]).reshape(latent_dim, d)
        if self.noise is None or self.noise.shape != (len(params), latent_dim, d):
            self.noise = rng.standard_normal((len(params), latent_dim, d), dtype=np.float32)
        eps = np.einsum("bj,bjk->bk", z, std * self.noise)
        return (mean + eps).reshape(len(params), *self.action_shape)

    def head(self) -> list[keras.layers.Layer]:
        return [StateDependentStd(self.log_std_init)]


class LogStd(keras.layers.Layer):
    """``μ [B, d] -> [μ, log σ] [B, 2d]``: a trainable log-std (one per action dimension,
    initialised to ``init``) that does not depend on the state (nor on ``latent``)."""

    def __init__(self, init: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.init = float(init)

    def build(self, mean_shape, latent_shape=None) -> None:
        self.log_std = self.add_weight(shape=(int(mean_shape[-1]),), name="log_std",
                                       initializer=keras.initializers.Constant(self.init))

    def call(self, mean, latent=None):
        return tf.concat([mean, tf.zeros_like(mean) + self.log_std], axis=-1)

    def numpy(self, mean: np.ndarray, latent: np.ndarray | None,
              log_std: np.ndarray) -> np.ndarray:
        """What :meth:`call` computes, in numpy (``log_std``: the weight's value)."""
        return np.concatenate([mean, np.broadcast_to(log_std, mean.shape)], axis=-1)

    def get_config(self) -> dict:
        return {**super().get_config(), "init": self.init}


class StateDependentStd(keras.layers.Layer):
    """gSDE's head: ``(μ [B, d], z [B, L]) -> [μ, log σ(s), z, log σ flattened]``
    ``[B, 2d + L + L d]`` with a trainable ``[L, d]`` log σ (initialised to ``init``) and
    ``log σ_k(s) = ½ log(Σ_j z_j² σ_jk² + 1e-6)``; ``z`` enters without its gradient."""

    epsilon = 1e-6

    def __init__(self, init: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.init = float(init)

    def build(self, mean_shape, latent_shape) -> None:
        self.log_std = self.add_weight(
            shape=(int(latent_shape[-1]), int(mean_shape[-1])), name="log_std",
            initializer=keras.initializers.Constant(self.init))

    def call(self, mean, latent):
        z = tf.stop_gradient(latent)
        log_std_s = 0.5 * tf.math.log(tf.matmul(tf.square(z), tf.exp(2.0 * self.log_std))
                                      + self.epsilon)
        flat = tf.zeros_like(mean[:, :1]) + tf.reshape(self.log_std, (1, -1))
        return tf.concat([mean, log_std_s, z, flat], axis=-1)

    def numpy(self, mean: np.ndarray, latent: np.ndarray, log_std: np.ndarray) -> np.ndarray:
        """What :meth:`call` computes, in numpy (``log_std``: the weight's value)."""
        log_std_s = 0.5 * np.log(np.square(latent) @ np.exp(2.0 * log_std) + self.epsilon)
        flat = np.broadcast_to(log_std.reshape(1, -1), (len(mean), log_std.size))
        return np.concatenate([mean, log_std_s.astype(np.float32), latent, flat],
                              axis=-1).astype(np.float32)

    def get_config(self) -> dict:
        return {**super().get_config(), "init": self.init}


def distribution_for(space: gym.Space, algo: str = "this agent", log_std_init: float = 0.0,
                     use_sde: bool = False) -> Categorical | DiagGaussian:
    """The distribution of an action space: Discrete -> :class:`Categorical`, Box ->
    :class:`DiagGaussian`, or :class:`StateDependentGaussian` if ``use_sde``; any other space,
    or ``use_sde`` with Discrete actions, is an :class:`envs.EnvError` naming it."""
    require_discrete_or_box(space, algo)
    if isinstance(space, gym.spaces.Discrete):
        if use_sde:
            raise EnvError(f"gSDE (use_sde) needs Box actions, but this environment has {space}; "
                           "drop use_sde or pick an environment such as Pendulum-v1")
        return Categorical(space.n)
    return (StateDependentGaussian if use_sde else DiagGaussian)(space.shape, log_std_init)
