"""Advantage actor-critic (A2C; Mnih et al. 2016, synchronous) with GAE (Schulman et al. 2016)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from agents.distributions import distribution_for
from agents.networks import NatureCNN, resolve_policy
from rlharness.agent import Agent, compile_update
from rlharness.checkpoint import rng_state, set_rng_state
from rlharness.hyper import Scheduled, scheduled
from rlharness.schedules import as_schedule

ROLLOUT_FIELDS = ("obs", "actions", "rewards", "next_obs", "terminated", "truncated")


def gae(rewards, values, next_values, terminated, truncated, gamma: float, gae_lambda: float):
    """Generalized advantage estimates over a rollout, all arguments shaped ``[T, n_envs]``.

    ``δ_t = r_t + γ (1 - terminated_t) V(s'_t) - V(s_t)`` where ``s'_t`` is the true next
    observation: a truncated step bootstraps from ``V(s'_t)``, a terminated one does not.
    ``A_t = δ_t + γ λ (1 - done_t) A_{t+1}`` with ``done = terminated or truncated``, so no
    advantage flows across an episode boundary; ``A_{T-1} = δ_{T-1}`` bootstraps the rollout's
    end. ``λ = 1`` gives n-step returns ``A_t + V(s_t)``. A ``tf.scan`` backwards in time: a
    loop in the graph, so compile time does not grow with ``T`` (an unrolled loop made XLA
    take minutes for ``T = 512``).
    """
    deltas = rewards + gamma * (1.0 - terminated) * next_values - values
    not_done = 1.0 - tf.maximum(terminated, truncated)
    return tf.scan(lambda next_advantage, x: x[0] + x[1] * next_advantage,
                   (deltas, gamma * gae_lambda * not_done),
                   initializer=tf.zeros_like(deltas[0]), reverse=True)


class A2C(Agent):
    """A2C for a Discrete or Box action space, with Stable-Baselines3's hyperparameter names.

    Every ``n_steps`` vector-env steps (``train_freq``) the rollout of
    ``n_steps x n_envs`` transitions makes ONE gradient step on
    ``loss = policy_loss + vf_coef * value_loss - ent_coef * entropy`` with
    ``policy_loss = -mean(A_t log π(a_t|s_t))``, ``value_loss = mean((A_t + V(s_t) - V_θ(s_t))²)``
    and ``A_t`` from :func:`gae` (computed in-graph with the pre-update values). The policy
    and value heads share one tanh MLP trunk if ``shared``, else each has its own. π is
    categorical for Discrete actions, a diagonal Gaussian with a state-independent log-std
    (initialised to ``log_std_init``) for Box actions (:mod:`agents.distributions`); Box
    samples go to the env unclipped (the env clips them, see :func:`envs.make_vec_env`).
    ``learning_rate`` is a float or any schedule (driven by the Trainer's global step);
    ``max_grad_norm`` clips the global gradient norm. ``ent_coef`` is a number or a schedule
    (:mod:`rlharness.hyper`; ``updates`` clock by default), evaluated in-graph. The rollout
    arrays are allocated at the first :meth:`observe`, whose batch size fixes ``n_envs``.
    ``policy="cnn"`` (``"auto"`` for uint8 images) shares one :class:`NatureCNN` between the
    heads (Stable-Baselines3's CnnPolicy); the rollout keeps uint8 observations.
    ``use_rms_prop``: RMSprop (ρ = 0.99, SB3's A2C optimizer) instead of Adam (ε = 1e-5).
    ``use_sde`` (Box actions): gSDE's state-dependent noise
    (:class:`~agents.distributions.StateDependentGaussian`) instead, its exploration matrices
    drawn again at the start of every rollout and, if ``sde_sample_freq`` N > 0, every N
    vector steps of it (SB3's rule: at rollout steps 0, N, 2N, ...).
    """

    def __init__(
        self,
        observation_space,
        action_space,
        *,
        learning_rate=7e-4,
        n_steps: int = 5,
        gamma: float = 0.99,
        gae_lambda: float = 1.0,
        ent_coef=0.0,
        vf_coef: float = 0.5,
        max_grad_norm: float = 0.5,
        hidden_sizes: Sequence[int] = (64, 64),
        shared: bool = False,
        normalize_advantage: bool = False,
        use_rms_prop: bool = False,
        log_std_init: float = 0.0,
        policy: str = "auto",
        use_sde: bool = False,
        sde_sample_freq: int = -1,
        update_mode: str = "tf_function",
        jit_compile: bool | None = None,
        seed: int = 0,
    ) -> None:
        self.obs_shape = tuple(observation_space.shape)
        self.obs_dtype = np.uint8 if observation_space.dtype == np.uint8 else np.float32
        self.policy = resolve_policy(policy, observation_space)
        self.dist = distribution_for(action_space, type(self).__name__, log_std_init, use_sde)
        self.use_sde, self.sde_sample_freq = bool(use_sde), int(sde_sample_freq)
        self.n_steps, self.gamma, self.gae_lambda = int(n_steps), gamma, gae_lambda
        self.ent_coef = scheduled(ent_coef, "updates")
        self.vf_coef, self.max_grad_norm = vf_coef, max_grad_norm
        self.normalize_advantage = normalize_advantage
        self.train_freq, self.learning_starts = self.n_steps, 0  # a round per full rollout
        self.rng = np.random.default_rng(seed)
        if self.policy == "cnn":
            self.net, self._policy_layers = cnn_policy_value_net(self.obs_shape, self.dist, seed)
            self.net_input = self.obs_shape
            self._params = tf.function(lambda obs: self.net(obs)[0], reduce_retracing=True)
        else:
            self.net, self._policy_layers = policy_value_net(
                int(np.prod(self.obs_shape)), self.dist, hidden_sizes, shared, seed)
            self.net_input = (int(np.prod(self.obs_shape)),)
        if jit_compile is None:  # XLA's CPU convolutions are ~5x slower than TF's own
            jit_compile = self.policy == "mlp" or bool(tf.config.list_physical_devices("GPU"))
        lr = as_schedule(learning_rate)
        # SB3 steps g / (sqrt(v) + 1e-5) (torch); Keras puts ε inside: g / sqrt(v + ε), so ε = 1e-10
        self.optimizer = (keras.optimizers.RMSprop(lr, rho=0.99, epsilon=1e-10) if use_rms_prop
                          else keras.optimizers.Adam(lr, epsilon=1e-5))
        self.optimizer.build(self.net.trainable_variables)
        self._update = compile_update(
            update_mode, self.train_round, self.net, self.optimizer, jit_compile
        )
        self.rollout: dict[str, np.ndarray] = {}  # ROLLOUT_FIELDS -> [n_steps, n_envs, ...]
        self.pos = 0  # rollout rows filled
        self._acting_weights: list[tuple[np.ndarray, ...]] | None = None  # None: stale

    # -- acting ---------------------------------------------------------------------------
    def policy_params(self, obs: np.ndarray) -> np.ndarray:
        """The distribution's parameters (logits, or ``[μ, log σ]``) by a numpy forward pass
        (µs; ``model.predict`` costs ~50 ms); the CNN by a compiled graph."""
        if self.policy == "cnn":
            return self._params(obs).numpy()
        if self._acting_weights is None:
            self._acting_weights = [tuple(w.numpy() for w in layer.weights)
                                    for layer in self._policy_layers]
        h = np.asarray(obs, np.float32).reshape(len(obs), -1)
        n_dense = sum(isinstance(layer, keras.layers.Dense) for layer in self._policy_layers)
        for w, b in self._acting_weights[:n_dense - 1]:
            h = np.tanh(h @ w + b)
        latent = h  # the last hidden features (gSDE's z(s))
        w, b = self._acting_weights[n_dense - 1]
        h = latent @ w + b
        for layer, weights in zip(self._policy_layers[n_dense:], self._acting_weights[n_dense:]):
            h = layer.numpy(h, latent, *weights)
        return h

    def act(self, obs: np.ndarray, explore: bool = True) -> np.ndarray:
        """Sample ``a ~ π(·|obs)`` on the seeded generator; the mode (argmax, or the mean)
        when ``explore`` is False. With gSDE, a new exploration matrix at rollout step 0 and,
        if ``sde_sample_freq`` N > 0, at every N-th step."""
        params = self.policy_params(obs)
        if not explore:
            return self.dist.mode(params)
        freq = self.sde_sample_freq
        if self.use_sde and (self.pos == 0 or freq > 0 and self.pos % freq == 0):
            self.dist.reset_noise()
        return self.dist.sample(params, self.rng)

    def greedy_actions(self, obs: tf.Tensor) -> tf.Tensor:
        """The mode of ``π(·|obs)`` in TensorFlow (argmax, or the mean)."""
        obs = tf.reshape(obs, (tf.shape(obs)[0], *self.net_input))
        return self.dist.mode_tf(self.net(obs)[0])

    # -- learning -------------------------------------------------------------------------
    def observe(self, obs, actions, rewards, next_obs, terminated, truncated) -> None:
        if not self.rollout:
            self._allocate(len(actions))
        row = self.pos
        if row > 0:  # a sub-env whose obs does not continue its stored next_obs restarted
            # (fresh episodes on resume): end its trace there, bootstrapping as on truncation
            broken = (self.rollout["next_obs"][row - 1] != obs).reshape(len(obs), -1).any(1)
            self.rollout["truncated"][row - 1, broken] = 1.0
        for name, x in zip(ROLLOUT_FIELDS,
                           (obs, actions, rewards, next_obs, terminated, truncated)):
            self.rollout[name][row] = x
        self.pos += 1

    def _allocate(self, n_envs: int) -> None:
        shape = (self.n_steps, n_envs)
        self.rollout = {
            "obs": np.zeros((*shape, *self.obs_shape), self.obs_dtype),
            "actions": np.zeros((*shape, *self.dist.action_shape), self.dist.action_dtype),
            "rewards": np.zeros(shape, np.float32),
            "next_obs": np.zeros((*shape, *self.obs_shape), self.obs_dtype),
            "terminated": np.zeros(shape, np.float32),
            "truncated": np.zeros(shape, np.float32),
        }

    def update(self) -> dict[str, float]:
        """One gradient step on the full rollout; the next rollout overwrites it."""
        if self.pos != self.n_steps:
            raise RuntimeError(f"A2C.update with {self.pos} of {self.n_steps} rollout steps; "
                               "the Trainer calls it every train_freq = n_steps vector steps")
        self.ent_coef.sync(self.global_step)
        metrics = self._update(tuple(self.rollout[name] for name in ROLLOUT_FIELDS))
        self.pos = 0
        self._acting_weights = None
        return metrics

    def train_round(self, obs, actions, rewards, next_obs, terminated, truncated):
        """One gradient step on a whole rollout (the shared A2C update of the three modes)."""
        n_steps, n_envs = rewards.shape
        flat_obs = tf.reshape(obs, (n_steps * n_envs, *self.net_input))
        _, next_values = self.net(tf.reshape(next_obs, (n_steps * n_envs, *self.net_input)))
        next_values = tf.reshape(next_values, (n_steps, n_envs))
        with tf.GradientTape() as tape:
            logits, values = self.net(flat_obs)
            values = tf.reshape(values, (n_steps, n_envs))
            old_values = tf.stop_gradient(values)
            advantages = gae(rewards, old_values, next_values, terminated, truncated,
                             self.gamma, self.gae_lambda)
            returns = advantages + old_values
            advantages = tf.reshape(advantages, (-1,))
            if self.normalize_advantage:
                mean, var = tf.nn.moments(advantages, axes=[0])
                advantages = (advantages - mean) / (tf.sqrt(var) + 1e-8)
            flat_actions = tf.reshape(actions, (n_steps * n_envs, *self.dist.action_shape))
            log_prob = self.dist.log_prob(logits, flat_actions)
            policy_loss = -tf.reduce_mean(advantages * log_prob)
            value_loss = tf.reduce_mean(tf.square(returns - values))
            entropy = tf.reduce_mean(self.dist.entropy(logits))
            loss = policy_loss + self.vf_coef * value_loss - self.ent_coef.tensor() * entropy
        variables = self.net.trainable_variables
        grads = tape.gradient(loss, variables)
        grads, _ = tf.clip_by_global_norm(grads, self.max_grad_norm)
        self.optimizer.apply(grads, variables)
        return {"loss": loss, "policy_loss": policy_loss, "value_loss": value_loss,
                "entropy": entropy}

    def scheduled(self) -> dict[str, Scheduled]:
        return {"train/ent_coef": self.ent_coef}

    def value(self, obs: np.ndarray) -> np.ndarray:
        """``V(obs)`` by the Keras model (for inspection and tests, not the hot path)."""
        obs = np.asarray(obs, self.obs_dtype).reshape(len(obs), *self.net_input)
        return self.net(obs)[1].numpy()[:, 0]

    # -- checkpointing --------------------------------------------------------------------
    def checkpoint_objects(self) -> dict:
        return {"net": self.net, "optimizer": self.optimizer}

    def numpy_state(self) -> dict[str, np.ndarray]:
        state = {f"rollout/{k}": v for k, v in self.rollout.items()}
        state["pos"] = np.array(self.pos)
        state["rng"] = rng_state(self.rng)
        if self.use_sde:  # the held exploration matrices (none: drawn at the next step)
            noise = self.dist.noise
            state["sde_noise"] = np.zeros((0,), np.float32) if noise is None else noise
        return state

    def load_numpy_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore :meth:`numpy_state`. If the env is not restored exactly (fresh episodes),
        :meth:`observe` sees that the next obs does not continue the stored rollout and
        treats that step as truncated: bootstrap from its stored next obs, cut the trace."""
        self.rollout = {k.split("/", 1)[1]: np.array(v) for k, v in state.items()
                        if k.startswith("rollout/")}
        self.pos = int(state["pos"])
        set_rng_state(self.rng, state["rng"])
        if self.use_sde:
            noise = state.get("sde_noise")
            self.dist.noise = None if noise is None or noise.size == 0 else np.array(noise)
        self._acting_weights = None


def policy_value_net(obs_dim: int, dist, hidden_sizes: Sequence[int], shared: bool,
                     seed: int) -> tuple[keras.Model, list[keras.layers.Layer]]:
    """``obs -> (params [B, n], value [B, 1])``: tanh MLP(s) with SB3's orthogonal init (gain
    √2 hidden, 0.01 policy head, 1 value head), the policy head followed by ``dist.head()``
    (the Gaussian's log-std), each called as ``layer(params, latent)`` with the policy's last
    hidden features; also the policy path's layers."""
    seeds = iter(range(seed * 1000, seed * 1000 + 1000))  # one initializer seed per layer

    def dense(units: int, gain: float, activation: str | None = None) -> keras.layers.Dense:
        init = keras.initializers.Orthogonal(gain, seed=next(seeds))
        return keras.layers.Dense(units, activation, kernel_initializer=init)

    def trunk() -> list[keras.layers.Dense]:
        return [dense(h, math.sqrt(2), "tanh") for h in hidden_sizes]

    def apply(layers: list[keras.layers.Dense], h):
        for layer in layers:
            h = layer(h)
        return h

    inputs = keras.Input((obs_dim,))
    pi_trunk, pi_head, v_head = trunk(), dense(dist.n_params, 0.01), dense(1, 1.0)
    extra = dist.head()
    h_pi = apply(pi_trunk, inputs)
    h_v = h_pi if shared else apply(trunk(), inputs)
    name = "shared_actor_critic" if shared else "actor_critic"
    params = pi_head(h_pi)
    for layer in extra:
        params = layer(params, h_pi)
    outputs = [params, v_head(h_v)]
    return keras.Model(inputs, outputs, name=name), [*pi_trunk, pi_head, *extra]


def cnn_policy_value_net(obs_shape: tuple[int, ...], dist, seed: int) -> tuple[keras.Model, list]:
    """``uint8 images -> (params, value)`` on one shared :class:`NatureCNN`, heads with
    orthogonal init (gain 0.01 policy, 1 value), the policy head followed by ``dist.head()``."""
    inputs = keras.Input(obs_shape, dtype="uint8")
    features = NatureCNN(name="encoder")(inputs)
    pi_head = keras.layers.Dense(dist.n_params, kernel_initializer=keras.initializers.Orthogonal(
        0.01, seed=seed * 1000))
    v_head = keras.layers.Dense(1, kernel_initializer=keras.initializers.Orthogonal(
        1.0, seed=seed * 1000 + 1))
    params = pi_head(features)
    for layer in dist.head():
        params = layer(params, features)
    return keras.Model(inputs, [params, v_head(features)], name="cnn_actor_critic"), []
