"""Deep Q-Network (Mnih et al. 2015) with Double DQN (van Hasselt et al. 2016) and the other
Rainbow components (Hessel et al. 2018) as independent switches: dueling heads (Wang et al.
2016), n-step returns, prioritized replay (Schaul et al. 2016), noisy nets (Fortunato et al.
2018) and distributional C51 (Bellemare et al. 2017)."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from agents.frame_replay import FrameReplayBuffer, stacks_from_window
from agents.networks import QNetwork, categorical_projection, expected_q, resolve_policy
from agents.replay import NStepQueue, PrioritizedReplayBuffer, ReplayBuffer
from rlharness.agent import Agent, compile_update
from rlharness.checkpoint import rng_state, set_rng_state
from rlharness.hyper import Scheduled, scheduled
from rlharness.schedules import LinearDecay, as_schedule


def mlp(obs_dim: int, n_outputs: int, hidden_sizes: Sequence[int], name: str) -> keras.Model:
    layers = [keras.Input((obs_dim,))]
    layers += [keras.layers.Dense(h, activation="relu") for h in hidden_sizes]
    layers.append(keras.layers.Dense(n_outputs))
    return keras.Sequential(layers, name=name)


class DQN(Agent):
    """DQN for a discrete action space, with Stable-Baselines3's hyperparameter names.

    Units: ``buffer_size``, ``learning_starts``, ``target_update_interval`` count env
    steps; ``train_freq`` counts vector-env steps; ``gradient_steps`` updates (one
    minibatch of ``batch_size`` each) per training round. ``learning_rate`` is a float or any
    schedule (driven by the Trainer's global step), the step size of Adam with ``adam_eps``
    (Keras's default 1e-7; Rainbow's 1.5e-4 damps the steps of small, noisy gradients).

    Scheduled hyperparameters (a number, a schedule, a :class:`~rlharness.hyper.Scheduled` or a
    CLI :class:`~rlharness.schedule_flags.ScheduleSpec`; see :mod:`rlharness.hyper`):
    ``exploration_rate`` ε (default: linear from ``exploration_initial_eps`` to
    ``exploration_final_eps`` over the first ``exploration_fraction`` of the run's env steps,
    on the ``env_steps`` clock), ``tau`` (default 1: hard copies; ``env_steps`` clock) and
    ``per_beta`` (default: linear from 0.4 to 1 over the run's env steps).

    Rainbow components, each independent: ``dueling``; ``n_step`` returns (per sub-env, cut at
    episode ends); ``prioritized`` replay (``per_alpha``, ``per_beta``, ``per_eps``);
    ``noisy`` output layers (noise resampled for every acting step and every minibatch, means
    for greedy acting); ``distributional`` C51 over ``n_atoms`` atoms on ``[v_min, v_max]``.

    Pixels: ``policy`` ``"auto"`` picks the Nature CNN for uint8 image observations (else the
    MLP of ``hidden_sizes``); image observations go to a :class:`FrameReplayBuffer` (each
    frame stored once, uint8; ``frame_stack`` is the number of frames stacked along the
    observation's first axis, 1 if none) that also computes the n-step returns.
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
        tau=1.0,
        train_freq: int = 256,
        gradient_steps: int = 128,
        target_update_interval: int = 10,
        exploration_fraction: float = 0.16,
        exploration_initial_eps: float = 1.0,
        exploration_final_eps: float = 0.04,
        exploration_rate=None,
        max_grad_norm: float = 10.0,
        adam_eps: float = 1e-7,
        double: bool = True,
        dueling: bool = False,
        n_step: int = 1,
        prioritized: bool = False,
        per_alpha: float = 0.6,
        per_beta=None,
        per_eps: float = 1e-6,
        noisy: bool = False,
        distributional: bool = False,
        n_atoms: int = 51,
        v_min: float = 0.0,
        v_max: float = 200.0,
        hidden_sizes: Sequence[int] = (256, 256),
        policy: str = "auto",
        frame_stack: int = 1,
        save_replay: bool = True,
        update_mode: str = "tf_function",
        jit_compile: bool | None = None,
        seed: int = 0,
    ) -> None:
        obs_shape = tuple(observation_space.shape)
        self.policy = resolve_policy(policy, observation_space)
        self.n_actions = int(action_space.n)
        self.batch_size, self.gamma = batch_size, gamma
        self.train_freq, self.gradient_steps = train_freq, gradient_steps
        self.learning_starts, self.target_update_interval = learning_starts, target_update_interval
        self.exploration_fraction = exploration_fraction
        self.exploration_initial_eps = exploration_initial_eps
        self.exploration_final_eps = exploration_final_eps
        self.max_grad_norm, self.double = max_grad_norm, double
        self.dueling, self.noisy, self.distributional = dueling, noisy, distributional
        self.n_step, self.prioritized = int(n_step), prioritized
        self.tau = scheduled(tau, "env_steps")
        self._exploration_arg, self._per_beta_arg = exploration_rate, per_beta
        self.epsilon: Scheduled | None = None  # set in bind(): the default needs total_steps
        self.per_beta: Scheduled | None = None
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        keras.utils.set_random_seed(seed)
        atoms = n_atoms if distributional else 1
        self.support = (tf.linspace(float(v_min), float(v_max), n_atoms) if distributional
                        else None)
        self._support_np = None if self.support is None else self.support.numpy()
        net = dict(dueling=dueling, noisy=noisy, n_atoms=atoms, policy=self.policy)
        self.q_net = QNetwork(obs_shape, self.n_actions, hidden_sizes, name="q_net", **net)
        self.target_net = QNetwork(obs_shape, self.n_actions, hidden_sizes, name="target_net",
                                   **net)
        self.target_net.set_weights(self.q_net.get_weights())
        self.optimizer = keras.optimizers.Adam(as_schedule(learning_rate), epsilon=adam_eps)
        self.optimizer.build(self.q_net.trainable_variables)
        self.frame_replay = observation_space.dtype == np.uint8 and len(obs_shape) in (2, 3)
        if self.frame_replay:
            self.buffer = FrameReplayBuffer(buffer_size, obs_shape, stack=frame_stack,
                                            n_step=n_step, gamma=gamma, prioritized=prioritized,
                                            alpha=per_alpha, eps=per_eps)
        elif prioritized:
            self.buffer = PrioritizedReplayBuffer(buffer_size, (int(np.prod(obs_shape)),),
                                                  alpha=per_alpha, eps=per_eps)
        else:
            self.buffer = ReplayBuffer(buffer_size, (int(np.prod(obs_shape)),))
        # stacked frames: the replay sends each transition's frames once, a window that
        # train_step cuts both stacks from (5 frames instead of 8 at n-step 1)
        self.windowed = self.frame_replay and self.buffer.windowed
        self._window = {"window": True} if self.windowed else {}
        if prioritized:
            self._priorities = tf.Variable(tf.zeros((gradient_steps, batch_size)),
                                           trainable=False, name="td_errors")
        self.n_step_queue = NStepQueue(self.n_step, gamma)
        self.save_replay = save_replay
        self._trains_from = 0  # env steps; later after a resume without the replay
        if jit_compile is None:  # XLA's CPU convolutions are ~5x slower than TF's own
            jit_compile = self.policy == "mlp" or bool(tf.config.list_physical_devices("GPU"))
        self._update = compile_update(
            update_mode, self.train_round, self.q_net, self.optimizer, jit_compile
        )
        self._acting_weights: dict | None = None  # numpy copy, None when stale
        self._target_stale = False

    def bind(self, global_step, total_steps: int) -> None:
        super().bind(global_step, total_steps)
        if self._exploration_arg is not None:
            self.epsilon = scheduled(self._exploration_arg, "env_steps")
        else:
            horizon = self.exploration_fraction * total_steps
            eps0, eps1 = self.exploration_initial_eps, self.exploration_final_eps
            self.epsilon = scheduled(
                LinearDecay(eps0, horizon, eps1) if horizon > 0 and eps0 > 0 else eps1)
        if self.prioritized:
            beta = self._per_beta_arg
            self.per_beta = scheduled(LinearDecay(0.4, total_steps, 1.0) if beta is None
                                      else beta, "env_steps")

    def scheduled(self) -> dict[str, Scheduled]:
        out = {"rollout/exploration_rate": self.epsilon}
        if self.prioritized:
            out["train/per_beta"] = self.per_beta
        out["train/tau"] = self.tau
        return out

    # -- acting ---------------------------------------------------------------------------
    def exploration_rate(self) -> float:
        return self.epsilon.value(self.global_step)

    def q_values(self, obs: np.ndarray, noise: bool = False) -> np.ndarray:
        """Q(obs, .) by a numpy forward pass: ``act`` costs ~25 µs per env step on the
        256x256 MLP, ``model.predict`` ~50 ms (``scripts/bench.py``). The weights are copied
        to numpy once after each update (~0.3 ms), so acting always uses the current net.
        ``noise``: sample the noisy layers' noise (else their mean weights)."""
        if self._acting_weights is None:
            self._acting_weights = self.q_net.numpy_weights()
        out = self.q_net.numpy_forward(self._acting_weights, obs, self.rng if noise else None)
        return expected_q(out, self._support_np)

    def act(self, obs: np.ndarray, explore: bool = True) -> np.ndarray:
        """ε-greedy actions (greedy if not ``explore``); no forward pass when every sub-env
        explores (SB3's shortcut: the replay fill and early ε cost env steps only)."""
        if not explore:
            return self.q_values(obs).argmax(axis=1)
        random = self.rng.random(len(obs)) < self.exploration_rate()
        actions = np.zeros(len(obs), np.int64)
        if not random.all():
            actions[:] = self.q_values(obs, noise=self.noisy).argmax(axis=1)
        actions[random] = self.rng.integers(0, self.n_actions, int(random.sum()))
        return actions

    def greedy_actions(self, obs: tf.Tensor) -> tf.Tensor:
        """``argmax_a Q(obs, a)`` in TensorFlow (noisy layers at their means)."""
        return tf.argmax(expected_q(self.q_net(obs), self.support), axis=1)

    # -- learning -------------------------------------------------------------------------
    def observe(self, obs, actions, rewards, next_obs, terminated, truncated) -> None:
        if self.frame_replay:  # stores one-step data, n-step returns come at sample time
            self.buffer.push(obs, actions, rewards, next_obs, terminated, truncated)
        else:
            transitions = self.n_step_queue.push(obs, actions, rewards, next_obs, terminated,
                                                 truncated)
            if transitions is not None:
                self.buffer.add(*transitions)
        # SB3 semantics: the target follows the online net every target_update_interval
        # env steps; a hard copy is skipped while the online net has not changed since.
        if self.global_step.env_steps % self.target_update_interval < len(actions):
            tau = self.tau.value(self.global_step)
            if tau < 1.0 or self._target_stale:
                self._sync_target(tf.constant(tau))
                self._target_stale = False

    @tf.function
    def _sync_target(self, tau):
        for t, o in zip(self.target_net.weights, self.q_net.weights):
            t.assign(tau * o + (1.0 - tau) * t)

    def update(self) -> dict[str, float]:
        if self.global_step.env_steps < self._trains_from:
            return {}  # refilling the replay after a resume without it
        g, b = self.gradient_steps, self.batch_size
        if self.prioritized:
            beta = self.per_beta.per_update(self.global_step, self.global_step.updates, g)
            index, batch, weights = self.buffer.sample_prioritized(b, self.rng, beta,
                                                                   **self._window)
        else:
            batch = tuple(x.reshape((g, b, *x.shape[1:]))
                          for x in self.buffer.sample(g * b, self.rng, **self._window))
            weights = np.ones((g, b), np.float32)
        metrics = self._update((*batch, weights))
        if self.prioritized:
            self.buffer.update_priorities(index, self._priorities.numpy())
        self._acting_weights = None
        self._target_stale = True
        return metrics

    def train_round(self, obs, actions, rewards, next_obs, dones, n_steps, weights):
        """One gradient step per minibatch along the first axis (the shared DQN update)."""
        total_loss, total_q = 0.0, 0.0
        n = tf.shape(obs)[0]
        errors = tf.TensorArray(tf.float32, size=n)
        for i in tf.range(n):
            loss, q, error = self.train_step(obs[i], actions[i], rewards[i], next_obs[i],
                                             dones[i], n_steps[i], weights[i])
            errors = errors.write(i, error)
            total_loss += loss
            total_q += q
        if self.prioritized:  # the new priorities, read back by update()
            self._priorities.assign(errors.stack())
        n = tf.cast(n, tf.float32)
        return {"loss": total_loss / n, "q_mean": total_q / n}

    def train_step(self, obs, actions, rewards, next_obs, dones, n_steps, weights):
        """One minibatch: the (Double, n-step, C51) target, the IS-weighted loss, one
        optimizer step; returns the loss, mean Q and each sample's new PER priority."""
        if self.windowed:
            obs, next_obs = stacks_from_window(obs, n_steps, self.buffer.stack)
        seed = self._noise_seed()
        next_target = self.target_net(next_obs, seed=None if seed is None else seed + [50, 0])
        next_online = self.q_net(next_obs, seed=seed) if self.double else next_target
        next_actions = tf.argmax(expected_q(next_online, self.support), axis=1)
        discounts = tf.pow(self.gamma, n_steps) * (1.0 - dones)  # γ^k, 0 after a termination
        if self.distributional:
            next_probs = tf.nn.softmax(tf.gather(next_target, next_actions, batch_dims=1))
            target = categorical_projection(next_probs, rewards, discounts, self.support)
        else:
            target = rewards + discounts * tf.gather(next_target, next_actions, batch_dims=1)
        with tf.GradientTape() as tape:
            out = tf.gather(self.q_net(obs, seed=seed), actions, batch_dims=1)
            if self.distributional:  # cross-entropy to the projected target
                per_sample = -tf.reduce_sum(target * tf.nn.log_softmax(out), axis=1)
                q = tf.reduce_sum(tf.nn.softmax(out) * self.support, axis=1)
                error = per_sample
            else:
                per_sample = keras.losses.huber(target[:, None], out[:, None])
                q = out
                error = tf.abs(target - q)
            loss = tf.reduce_mean(weights * per_sample)
        grads = tape.gradient(loss, self.q_net.trainable_variables)
        grads, _ = tf.clip_by_global_norm(grads, self.max_grad_norm)
        self.optimizer.apply(grads, self.q_net.trainable_variables)
        return loss, tf.reduce_mean(q), error

    def _noise_seed(self):
        """Noisy nets: a stateless seed per minibatch, ``[100 seed, optimizer.iterations]``,
        so every update mode and a resumed run draw the same noise. None without noise."""
        if not self.noisy:
            return None
        return tf.stack([tf.constant(100 * self.seed, tf.int64),
                         tf.cast(self.optimizer.iterations, tf.int64)])

    # -- checkpointing --------------------------------------------------------------------
    def checkpoint_objects(self) -> dict:
        return {"q_net": self.q_net, "target_net": self.target_net, "optimizer": self.optimizer}

    def numpy_state(self) -> dict[str, np.ndarray]:
        """The replay (its arrays themselves, no copies) unless ``save_replay`` is off, the
        n-step queues, the RNG."""
        replay = self.buffer.state_dict() if self.save_replay else {}
        state = {f"buffer/{k}": v for k, v in replay.items()}
        state.update({f"nstep/{k}": v for k, v in self.n_step_queue.state_dict().items()})
        state["rng"] = rng_state(self.rng)
        state["target_stale"] = np.array(self._target_stale)
        return state

    def load_numpy_state(self, state: dict[str, np.ndarray]) -> None:
        def part(prefix: str) -> dict[str, np.ndarray]:
            return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}

        replay = part("buffer/")
        if replay:
            self.buffer.load_state_dict(replay)
        else:  # saved without the replay: refill it for learning_starts env steps first
            self._trains_from = self.global_step.env_steps + self.learning_starts
        self.n_step_queue.load_state_dict(part("nstep/"))
        set_rng_state(self.rng, state["rng"])
        self._target_stale = bool(state["target_stale"])
        self._acting_weights = None
