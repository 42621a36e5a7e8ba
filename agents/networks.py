"""Q-networks for DQN and its Rainbow components: dueling heads, factorised noisy layers,
categorical (C51) outputs, with a numpy forward pass for fast acting; the Nature-CNN encoder
that image observations select."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf


def _scaled_noise(x):
    """``f(x) = sign(x) sqrt(|x|)`` (Fortunato et al. 2018, factorised noise)."""
    if isinstance(x, np.ndarray):
        return np.copysign(np.sqrt(np.abs(x)), x)
    return tf.sign(x) * tf.sqrt(tf.abs(x))


POLICIES = ("auto", "mlp", "cnn")


def is_image_shape(shape: Sequence[int], dtype) -> bool:
    """Whether observations of this shape and dtype are images: uint8, ``(H, W)``,
    ``(frames, H, W)`` (``FrameStackObservation``'s layout) or ``(H, W, C)`` (C <= 4)."""
    return np.dtype(dtype) == np.uint8 and len(shape) in (2, 3)


def resolve_policy(policy: str, observation_space) -> str:
    """``"cnn"`` or ``"mlp"``: ``"auto"`` picks the CNN for image observations."""
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; use one of {', '.join(POLICIES)}")
    if policy != "auto":
        return policy
    space = observation_space
    return "cnn" if is_image_shape(space.shape, space.dtype) else "mlp"


class NatureCNN(keras.layers.Layer):
    """The DQN encoder of Mnih et al. (2015): conv 32 8x8/4, conv 64 4x4/2, conv 64 3x3/1,
    all ReLU, then dense 512 ReLU, orthogonal init with gain √2 (Stable-Baselines3's; Glorot's
    leaves sparse images such as Catch's with ~1e-3 features that learn slowly). Takes uint8
    images ``(frames, H, W)``, ``(H, W, C)`` or ``(H, W)`` (H, W >= 36) and scales them to
    [0, 1] in the graph (``x / 255``), so the replay and the host-to-graph copies stay uint8 (4x
    fewer bytes than float32)."""

    def __init__(self, features: int = 512, **kwargs) -> None:
        super().__init__(**kwargs)
        self.features = int(features)
        init = dict(activation="relu", kernel_initializer=keras.initializers.Orthogonal(
            math.sqrt(2.0)))
        self.conv_0 = keras.layers.Conv2D(32, 8, strides=4, **init)
        self.conv_1 = keras.layers.Conv2D(64, 4, strides=2, **init)
        self.conv_2 = keras.layers.Conv2D(64, 3, strides=1, **init)
        self.dense = keras.layers.Dense(self.features, **init)

    def build(self, input_shape) -> None:
        shape = tuple(input_shape)
        self.channels_first = len(shape) == 4 and not (shape[-1] <= 4 < shape[1])
        h, w, c = self._hwc(shape[1:])
        if min(h, w) < 36:
            raise ValueError(f"the Nature CNN needs images of at least 36x36 pixels, got "
                             f"{h}x{w}; use --policy mlp")
        if (h - 36) % 8 or (w - 36) % 8:
            warnings.warn(f"the Nature CNN never sees the last rows or columns of {h}x{w} "
                          "images (it sees all of 36 + 8k pixels, e.g. 84)", stacklevel=2)
        shape = (None, h, w, c)
        for conv in (self.conv_0, self.conv_1, self.conv_2):
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
        self.dense.build((None, int(np.prod(shape[1:]))))
        self.built = True

    def _hwc(self, shape):
        if len(shape) == 2:
            return (*shape, 1)
        return (shape[1], shape[2], shape[0]) if self.channels_first else tuple(shape)

    def call(self, obs):
        x = tf.cast(obs, tf.float32) * (1.0 / 255.0)
        if len(x.shape) == 3:
            x = x[..., None]
        elif self.channels_first:
            x = tf.transpose(x, (0, 2, 3, 1))  # TF's CPU convolutions are NHWC only
        x = self.conv_2(self.conv_1(self.conv_0(x)))
        return self.dense(tf.reshape(x, (tf.shape(x)[0], -1)))

    def get_config(self) -> dict:
        return {**super().get_config(), "features": self.features}


class NoisyDense(keras.layers.Layer):
    """Factorised-Gaussian noisy linear layer (Fortunato et al. 2018):
    ``y = x (μ_W + σ_W ⊙ f(ε_in) f(ε_out)ᵀ) + μ_b + σ_b ⊙ f(ε_out)``, ``f(x) = sgn(x)√|x|``,
    ``ε ~ N(0, 1)``; ``μ ~ U(±1/√p)``, ``σ = σ₀/√p`` at init (``p`` inputs, ``σ₀ = 0.5``).

    ``call(x)`` uses the mean weights ``μ`` (greedy evaluation); ``call(x, seed)`` draws the
    noise statelessly from ``seed`` (an int ``[2]`` tensor), so a given seed always gives the
    same noise: in every update mode, and after a resume.
    """

    def __init__(self, units: int, sigma0: float = 0.5, **kwargs) -> None:
        super().__init__(**kwargs)
        self.units, self.sigma0 = int(units), float(sigma0)

    def build(self, input_shape) -> None:
        p = int(input_shape[-1])
        bound = 1.0 / math.sqrt(p)
        uniform = keras.initializers.RandomUniform(-bound, bound)
        sigma = keras.initializers.Constant(self.sigma0 / math.sqrt(p))
        self.mu_kernel = self.add_weight(shape=(p, self.units), initializer=uniform,
                                         name="mu_kernel")
        self.sigma_kernel = self.add_weight(shape=(p, self.units), initializer=sigma,
                                            name="sigma_kernel")
        self.mu_bias = self.add_weight(shape=(self.units,), initializer=uniform, name="mu_bias")
        self.sigma_bias = self.add_weight(shape=(self.units,), initializer=sigma, name="sigma_bias")

    def call(self, x, seed=None):
        if seed is None:
            return tf.matmul(x, self.mu_kernel) + self.mu_bias
        p = self.mu_kernel.shape[0]
        eps = _scaled_noise(tf.random.stateless_normal((p + self.units,), seed))
        eps_in, eps_out = eps[:p], eps[p:]
        # Forming the [p, units] weights costs p*units multiply-adds, the factored form
        # x (σ ⊙ ε_in ε_outᵀ) = ((x ⊙ ε_in) σ) ⊙ ε_out a second matmul of batch*p*units.
        kernel = self.mu_kernel + self.sigma_kernel * (eps_in[:, None] * eps_out[None, :])
        return tf.matmul(x, kernel) + self.mu_bias + self.sigma_bias * eps_out

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units, "sigma0": self.sigma0}


class QNetwork(keras.Model):
    """``obs -> Q [B, A]``, or ``-> logits [B, A, n_atoms]`` if ``n_atoms > 1`` (C51).

    A ReLU MLP trunk on the flattened observation (``policy="mlp"``; uint8 observations are
    scaled by 1/255 in the graph) or the :class:`NatureCNN` (``policy="cnn"``, no MLP), then
    one linear output (``Dense`` or, if ``noisy``, :class:`NoisyDense`) or, if ``dueling``
    (Wang et al. 2016), two: ``V [B, 1, N]`` and ``A [B, A, N]`` combined as ``V + A - mean_a
    A`` (per atom for C51). ``call(obs, seed)`` samples the noisy layers'
    noise from ``seed`` (a layer's seed is ``seed + [layer index, 0]``), ``call(obs)`` uses
    their means. :meth:`numpy_forward` computes the same in numpy for acting.
    """

    def __init__(self, obs_shape: int | Sequence[int], n_actions: int,
                 hidden_sizes: Sequence[int], *, policy: str = "mlp", dueling: bool = False,
                 noisy: bool = False, n_atoms: int = 1, name: str = "q_net") -> None:
        super().__init__(name=name)
        obs_shape = (obs_shape,) if isinstance(obs_shape, int) else tuple(obs_shape)
        self.policy = policy
        self.encoder = NatureCNN(name="encoder") if policy == "cnn" else None
        if self.encoder is not None:
            hidden_sizes = ()
            self._features = tf.function(self.encoder, jit_compile=True, reduce_retracing=True)
        self.n_actions, self.n_atoms = int(n_actions), int(n_atoms)
        self.dueling, self.noisy = bool(dueling), bool(noisy)
        # One attribute per layer: tf.train.Checkpoint does not see into Keras-tracked lists.
        self.n_hidden = len(hidden_sizes)
        for i, h in enumerate(hidden_sizes):
            setattr(self, f"hidden_{i}", keras.layers.Dense(h, activation="relu"))
        out = NoisyDense if noisy else keras.layers.Dense
        self.advantage_head = out(self.n_actions * self.n_atoms, name="advantage")
        self.value_head = out(self.n_atoms, name="value") if dueling else None
        self.build((None, *obs_shape))

    @property
    def hidden(self) -> list:
        return [getattr(self, f"hidden_{i}") for i in range(self.n_hidden)]

    @property
    def heads(self) -> list:
        return [self.advantage_head] + ([self.value_head] if self.dueling else [])

    def build(self, input_shape) -> None:
        shape = tuple(input_shape)
        if self.encoder is not None:
            self.encoder.build(shape)
            shape = (None, self.encoder.features)
        else:
            shape = (None, int(np.prod(shape[1:])))
        for layer in self.hidden:
            layer.build(shape)
            shape = (None, layer.units)
        for head in self.heads:
            head.build(shape)
        self.built = True

    def trunk_input(self, obs):
        """The encoder's features, or the flattened float observation for the MLP."""
        if self.encoder is not None:
            return self.encoder(obs)
        scale = 1.0 / 255.0 if obs.dtype == tf.uint8 else 1.0
        return tf.reshape(tf.cast(obs, tf.float32) * scale, (tf.shape(obs)[0], -1))

    def call(self, obs, seed=None):
        h = self.trunk_input(obs)
        for layer in self.hidden:
            h = layer(h)
        outs = []
        for i, head in enumerate(self.heads):
            if self.noisy and seed is not None:
                outs.append(head(h, seed=seed + tf.constant([i, 0], seed.dtype)))
            else:
                outs.append(head(h))
        return self._combine(*outs)

    def _combine(self, advantage, value=None, ops=tf):
        shape = (-1, self.n_actions, self.n_atoms) if self.n_atoms > 1 else (-1, self.n_actions)
        a = ops.reshape(advantage, shape)
        if value is None:
            return a
        v = ops.reshape(value, (-1, 1, self.n_atoms) if self.n_atoms > 1 else (-1, 1))
        mean = ops.mean(a, axis=1, keepdims=True) if ops is np else tf.reduce_mean(
            a, axis=1, keepdims=True)
        return v + a - mean

    # -- numpy acting path ----------------------------------------------------------------
    def numpy_weights(self) -> dict:
        """A numpy copy of the weights for :meth:`numpy_forward` (~0.3 ms; redo after updates)."""
        def head(layer):
            if isinstance(layer, NoisyDense):
                return tuple(w.numpy() for w in (layer.mu_kernel, layer.mu_bias,
                                                  layer.sigma_kernel, layer.sigma_bias))
            return layer.kernel.numpy(), layer.bias.numpy()

        return {"hidden": [(layer.kernel.numpy(), layer.bias.numpy()) for layer in self.hidden],
                "heads": [head(layer) for layer in self.heads]}

    def numpy_forward(self, weights: dict, obs: np.ndarray,
                      rng: np.random.Generator | None = None) -> np.ndarray:
        """What :meth:`call` computes, in numpy; noisy layers draw fresh noise from ``rng``
        (one sample for the whole batch), or use their means if ``rng`` is None. The CNN
        encoder runs as a compiled graph (numpy convolutions would be slower), the heads in
        numpy."""
        if self.encoder is not None:
            h = self._features(obs).numpy()
        else:
            h = np.asarray(obs, np.float32).reshape(len(obs), -1)
            if np.asarray(obs).dtype == np.uint8:
                h *= np.float32(1.0 / 255.0)
        for w, b in weights["hidden"]:
            h = np.maximum(h @ w + b, 0.0)
        outs = []
        for params in weights["heads"]:
            y = h @ params[0] + params[1]
            if len(params) == 4 and rng is not None:  # factored: cheapest for a few rows
                mu_w, _, sigma_w, sigma_b = params
                p = mu_w.shape[0]
                eps = _scaled_noise(rng.standard_normal(p + mu_w.shape[1], dtype=np.float32))
                y += ((h * eps[:p]) @ sigma_w + sigma_b) * eps[p:]
            outs.append(y)
        return self._combine(*outs, ops=np)


def expected_q(out, support):
    """Q-values from a network output: itself, or ``Σ_z softmax(logits) z`` for C51."""
    if support is None:
        return out
    if isinstance(out, np.ndarray):
        p = np.exp(out - out.max(axis=-1, keepdims=True))
        return (p / p.sum(axis=-1, keepdims=True)) @ support
    return tf.reduce_sum(tf.nn.softmax(out) * support, axis=-1)


def categorical_projection(next_probs, rewards, discounts, support):
    """C51's projection (Bellemare et al. 2017, Alg. 1) of the target distribution
    ``r + γ^k (1 - done) z`` onto the fixed ``support`` z (``discounts = γ^k (1 - done)``),
    in-graph.

    Each atom's mass ``p_i`` goes to the two atoms around ``b_i = (clip(Tz_i) - v_min) / Δz``:
    ``1 - frac(b_i)`` of it to ``floor(b_i)`` and ``frac(b_i)`` to the next atom, so a target
    exactly on an atom keeps all its mass there (the paper's ``l == u`` case). One segment sum
    of ``2 B N`` values, no ``[B, N, N]`` tensor. ``next_probs [B, N]``, ``rewards``/``discounts
    [B]``, returns ``[B, N]``.
    """
    n = tf.shape(support)[0]
    v_min, v_max = support[0], support[-1]
    delta = (v_max - v_min) / tf.cast(n - 1, tf.float32)
    tz = tf.clip_by_value(rewards[:, None] + discounts[:, None] * support[None, :], v_min, v_max)
    b = (tz - v_min) / delta
    lower = tf.minimum(tf.floor(b), tf.cast(n - 1, tf.float32))
    frac = b - lower
    lower = tf.cast(lower, tf.int32)
    upper = tf.minimum(lower + 1, n - 1)
    rows = tf.range(tf.shape(next_probs)[0])[:, None] * n
    ids = tf.concat([rows + lower, rows + upper], axis=1)
    mass = tf.concat([next_probs * (1.0 - frac), next_probs * frac], axis=1)
    m = tf.math.unsorted_segment_sum(tf.reshape(mass, [-1]), tf.reshape(ids, [-1]),
                                     tf.shape(next_probs)[0] * n)
    return tf.reshape(m, tf.shape(next_probs))
