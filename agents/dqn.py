"""Deep Q-Network (Mnih et al. 2015) with Double DQN (van Hasselt et al. 2016)."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from agents.replay import ReplayBuffer
from rlharness.agent import Agent, compile_update
from rlharness.checkpoint import rng_state, set_rng_state
from rlharness.schedules import as_schedule


def mlp(obs_dim: int, n_outputs: int, hidden_sizes: Sequence[int], name: str) -> keras.Model:
    layers = [keras.Input((obs_dim,))]
    layers += [keras.layers.Dense(h, activation="relu") for h in hidden_sizes]
    layers.append(keras.layers.Dense(n_outputs))
    return keras.Sequential(layers, name=name)


class DQN(Agent):
    """DQN for a discrete action space, with Stable-Baselines3's hyperparameter names.

    Units: ``buffer_size``, ``learning_starts``, ``target_update_interval`` count env
    steps; ``train_freq`` counts vector-env steps; ``gradient_steps`` updates (one
    minibatch of ``batch_size`` each) per training round; the epsilon-greedy rate goes
    linearly from ``exploration_initial_eps`` to ``exploration_final_eps`` over the first
    ``exploration_fraction`` of the run's env steps. ``learning_rate`` is a float or any
    schedule (driven by the Trainer's global step).
    """

    def __init__(
        self,
        observation_space,
        action_space,
        *,
        learning_rate=1e-3,
        buffer_size: int = 100_000,
        learning_starts: int = 1000,
        batch_size: int = 64,
        gamma: float = 0.99,
        tau: float = 1.0,
        train_freq: int = 256,
        gradient_steps: int = 128,
        target_update_interval: int = 10,
        exploration_fraction: float = 0.16,
        exploration_initial_eps: float = 1.0,
        exploration_final_eps: float = 0.04,
        max_grad_norm: float = 10.0,
        double: bool = True,
        hidden_sizes: Sequence[int] = (256, 256),
        update_mode: str = "tf_function",
        jit_compile: bool = True,
        seed: int = 0,
    ) -> None:
        obs_dim = int(np.prod(observation_space.shape))
        self.n_actions = int(action_space.n)
        self.batch_size, self.gamma, self.tau = batch_size, gamma, tau
        self.train_freq, self.gradient_steps = train_freq, gradient_steps
        self.learning_starts, self.target_update_interval = learning_starts, target_update_interval
        self.exploration_fraction = exploration_fraction
        self.exploration_initial_eps = exploration_initial_eps
        self.exploration_final_eps = exploration_final_eps
        self.max_grad_norm, self.double = max_grad_norm, double
        self.rng = np.random.default_rng(seed)
        keras.utils.set_random_seed(seed)
        self.q_net = mlp(obs_dim, self.n_actions, hidden_sizes, "q_net")
        self.target_net = mlp(obs_dim, self.n_actions, hidden_sizes, "target_net")
        self.target_net.set_weights(self.q_net.get_weights())
        self.optimizer = keras.optimizers.Adam(as_schedule(learning_rate))
        self.optimizer.build(self.q_net.trainable_variables)
        self.buffer = ReplayBuffer(buffer_size, (obs_dim,))
        self._update = compile_update(
            update_mode, self.train_round, self.q_net, self.optimizer, jit_compile
        )
        self._acting_weights: list[np.ndarray] | None = None  # numpy copy, None when stale
        self._target_stale = False

    # -- acting ---------------------------------------------------------------------------
    def exploration_rate(self) -> float:
        horizon = self.exploration_fraction * self.total_steps
        progress = min(1.0, self.global_step.env_steps / horizon) if horizon > 0 else 1.0
        eps0, eps1 = self.exploration_initial_eps, self.exploration_final_eps
        return eps0 + progress * (eps1 - eps0)

    def q_values(self, obs: np.ndarray) -> np.ndarray:
        """Q(obs, .) by a numpy forward pass: ``act`` costs ~25 µs per env step on the
        256x256 MLP, ``model.predict`` ~50 ms (``scripts/bench.py``). The weights are copied
        to numpy once after each update (~0.3 ms), so acting always uses the current net."""
        if self._acting_weights is None:
            self._acting_weights = self.q_net.get_weights()
        *hidden, w_out, b_out = self._acting_weights
        h = np.asarray(obs, np.float32).reshape(len(obs), -1)
        for w, b in zip(hidden[::2], hidden[1::2]):
            h = np.maximum(h @ w + b, 0.0)
        return h @ w_out + b_out

    def act(self, obs: np.ndarray, explore: bool = True) -> np.ndarray:
        actions = self.q_values(obs).argmax(axis=1)
        if explore:
            random = self.rng.random(len(actions)) < self.exploration_rate()
            actions[random] = self.rng.integers(0, self.n_actions, int(random.sum()))
        return actions

    def rollout_metrics(self) -> dict[str, float]:
        return {"exploration_rate": self.exploration_rate()}

    # -- learning -------------------------------------------------------------------------
    def observe(self, obs, actions, rewards, next_obs, terminated, truncated) -> None:
        self.buffer.add(obs, actions, rewards, next_obs, terminated)
        # SB3 semantics: the target follows the online net every target_update_interval
        # env steps; a hard copy is skipped while the online net has not changed since.
        if self.global_step.env_steps % self.target_update_interval < len(actions):
            if self.tau < 1.0 or self._target_stale:
                self._sync_target(tf.constant(self.tau))
                self._target_stale = False

    @tf.function
    def _sync_target(self, tau):
        for t, o in zip(self.target_net.weights, self.q_net.weights):
            t.assign(tau * o + (1.0 - tau) * t)

    def update(self) -> dict[str, float]:
        batch = self.buffer.sample(self.gradient_steps * self.batch_size, self.rng)
        rounds = tuple(x.reshape((self.gradient_steps, self.batch_size, *x.shape[1:]))
                       for x in batch)
        metrics = self._update(rounds)
        self._acting_weights = None
        self._target_stale = True
        return metrics

    def train_round(self, obs, actions, rewards, next_obs, dones):
        """One gradient step per minibatch along the first axis (the shared DQN update)."""
        total_loss, total_q = 0.0, 0.0
        n = tf.shape(obs)[0]
        for i in tf.range(n):
            loss, q = self.train_step(obs[i], actions[i], rewards[i], next_obs[i], dones[i])
            total_loss += loss
            total_q += q
        n = tf.cast(n, tf.float32)
        return {"loss": total_loss / n, "q_mean": total_q / n}

    def train_step(self, obs, actions, rewards, next_obs, dones):
        next_q_target = self.target_net(next_obs)
        if self.double:
            next_actions = tf.argmax(self.q_net(next_obs), axis=1)
        else:
            next_actions = tf.argmax(next_q_target, axis=1)
        next_q = tf.gather(next_q_target, next_actions, batch_dims=1)
        td_target = rewards + self.gamma * (1.0 - dones) * next_q
        with tf.GradientTape() as tape:
            q = tf.gather(self.q_net(obs), actions, batch_dims=1)
            loss = tf.reduce_mean(keras.losses.huber(td_target[:, None], q[:, None]))
        grads = tape.gradient(loss, self.q_net.trainable_variables)
        grads, _ = tf.clip_by_global_norm(grads, self.max_grad_norm)
        self.optimizer.apply(grads, self.q_net.trainable_variables)
        return loss, tf.reduce_mean(q)

    # -- checkpointing --------------------------------------------------------------------
    def checkpoint_objects(self) -> dict:
        return {"q_net": self.q_net, "target_net": self.target_net, "optimizer": self.optimizer}

    def numpy_state(self) -> dict[str, np.ndarray]:
        state = {f"buffer/{k}": v for k, v in self.buffer.state_dict().items()}
        state["rng"] = rng_state(self.rng)
        state["target_stale"] = np.array(self._target_stale)
        return state

    def load_numpy_state(self, state: dict[str, np.ndarray]) -> None:
        self.buffer.load_state_dict(
            {k.split("/", 1)[1]: v for k, v in state.items() if k.startswith("buffer/")}
        )
        set_rng_state(self.rng, state["rng"])
        self._target_stale = bool(state["target_stale"])
        self._acting_weights = None

