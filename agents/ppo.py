"""Proximal policy optimization (PPO; Schulman et al. 2017), clipped surrogate, with GAE."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from agents.a2c import A2C, ROLLOUT_FIELDS, gae
from rlharness.hyper import Scheduled, scheduled

ROUND_METRICS = ("loss", "policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction")


class PPO(A2C):
    """PPO-clip for Discrete or Box actions, with Stable-Baselines3's hyperparameter names.

    Acting, the rollout of ``n_steps x n_envs`` transitions, the network (separate or
    ``shared`` tanh MLPs) and the action distributions are A2C's. Every full rollout makes one
    compiled round: ``n_epochs`` passes over it in shuffled minibatches of ``batch_size``,
    each one gradient step (clipped to ``max_grad_norm``) on

        loss = policy_loss + vf_coef * value_loss - ent_coef * entropy
        policy_loss = mean(max(-A r, -A clip(r, 1 - ε, 1 + ε))),  r = π_θ(a|s) / π_old(a|s)
        value_loss = mean((R - V_θ(s))²), or with ``clip_range_vf`` c
                     mean(max((R - V_θ)², (R - V_old - clip(V_θ - V_old, -c, c))²))

    where ``A`` are :func:`agents.a2c.gae` advantages of the rollout (bootstrapped on
    truncation, not on termination; standardized per minibatch if ``normalize_advantage``),
    ``R = A + V_old``, and ``π_old``, ``V_old`` the network that collected the rollout.
    ``approx_kl = mean((r - 1) - log r)`` (Schulman's k3 estimator); with ``target_kl`` the
    round stops before the first minibatch whose ``approx_kl > 1.5 target_kl`` (as SB3), and
    logs ``early_stop`` = 1. ``learning_rate`` (driven by the Trainer), ``clip_range`` (ε),
    ``clip_range_vf`` and ``ent_coef`` are numbers or schedules; the last three are
    :class:`~rlharness.hyper.Scheduled` on the ``updates`` clock unless their spec names
    another, evaluated in-graph at each gradient step.
    """

    def __init__(
        self,
        observation_space,
        action_space,
        *,
        learning_rate=3e-4,
        n_steps: int = 2048,
        batch_size: int = 64,
        n_epochs: int = 10,
        gamma: float = 0.99,
        gae_lambda: float = 0.95,
        clip_range=0.2,
        clip_range_vf=None,
        normalize_advantage: bool = True,
        ent_coef=0.0,
        vf_coef: float = 0.5,
        max_grad_norm: float = 0.5,
        target_kl: float | None = None,
        **kwargs,
    ) -> None:
        self.batch_size, self.n_epochs = int(batch_size), int(n_epochs)
        self.clip_range = scheduled(clip_range, "updates")
        self.clip_range_vf = None if clip_range_vf is None else scheduled(clip_range_vf, "updates")
        self.target_kl = target_kl
        super().__init__(observation_space, action_space, learning_rate=learning_rate,
                         n_steps=n_steps, gamma=gamma, gae_lambda=gae_lambda, ent_coef=ent_coef,
                         vf_coef=vf_coef, max_grad_norm=max_grad_norm,
                         normalize_advantage=normalize_advantage, **kwargs)
        self.seed = int(kwargs.get("seed", 0))

    def update(self) -> dict[str, float]:
        """One round (``n_epochs`` passes of minibatches) on the full rollout."""
        if self.pos != self.n_steps:
            raise RuntimeError(f"PPO.update with {self.pos} of {self.n_steps} rollout steps; "
                               "the Trainer calls it every train_freq = n_steps vector steps")
        for hyper in self.scheduled().values():
            hyper.sync(self.global_step)
        # the minibatch shuffles' seed: the run's seed and the round's first update, so a
        # resumed run shuffles as the uninterrupted one did, in every update mode
        shuffle_seed = np.array([self.seed, self.global_step.updates], np.int64)
        rollout = tuple(self.rollout[name] for name in ROLLOUT_FIELDS)
        metrics = self._update((*rollout, shuffle_seed))
        self.pos = 0
        self._acting_weights = None
        return metrics

    def train_round(self, obs, actions, rewards, next_obs, terminated, truncated, shuffle_seed):
        """The PPO round (the shared update of the three modes): advantages from the rollout,
        then ``n_epochs x (n_steps n_envs // batch_size)`` minibatch gradient steps."""
        n_steps, n_envs = rewards.shape
        size = n_steps * n_envs
        obs = tf.reshape(obs, (size, *self.net_input))
        actions = tf.reshape(actions, (size, *self.dist.action_shape))
        # what the network that collected the rollout says: π_old, V_old, the advantages
        old_params, old_values = self.net(obs)
        _, next_values = self.net(tf.reshape(next_obs, (size, *self.net_input)))
        old_values = tf.reshape(old_values, (n_steps, n_envs))
        advantages = gae(rewards, old_values, tf.reshape(next_values, (n_steps, n_envs)),
                         terminated, truncated, self.gamma, self.gae_lambda)
        returns = tf.reshape(advantages + old_values, (-1,))
        advantages, old_values = tf.reshape(advantages, (-1,)), tf.reshape(old_values, (-1,))
        old_log_prob = self.dist.log_prob(old_params, actions)

        n_batches = size // self.batch_size
        order = tf.argsort(tf.random.stateless_uniform((self.n_epochs, size), shuffle_seed),
                           axis=1)[:, : n_batches * self.batch_size]
        batches = tf.reshape(order, (self.n_epochs * n_batches, self.batch_size))
        totals = {name: tf.constant(0.0) for name in ROUND_METRICS}
        steps, early_stop = tf.constant(0), tf.constant(0.0)
        for i in tf.range(self.n_epochs * n_batches):
            stats, stop = self.train_step(
                batches[i], steps, obs, actions, advantages, returns, old_values, old_log_prob)
            if stop:
                early_stop = tf.constant(1.0)
                break
            totals = {name: totals[name] + stats[name] for name in ROUND_METRICS}
            steps += 1
        metrics = {name: total / tf.cast(tf.maximum(steps, 1), tf.float32)
                   for name, total in totals.items()}
        metrics["explained_variance"] = explained_variance(old_values, returns)
        if self.target_kl is not None:
            metrics["early_stop"] = early_stop
        return metrics

    def train_step(self, idx, step, obs, actions, advantages, returns, old_values, old_log_prob):
        """One minibatch ``idx``: the losses and, unless the KL limit is passed, one optimizer
        step. ``step``: the round's gradient steps so far (the scheduled values' offset)."""
        clip = tf.cast(self.clip_range.tensor(step), tf.float32)
        advantage = tf.gather(advantages, idx)
        if self.normalize_advantage:
            mean, var = tf.nn.moments(advantage, axes=[0])
            advantage = (advantage - mean) / (tf.sqrt(var) + 1e-8)
        ret, old_value = tf.gather(returns, idx), tf.gather(old_values, idx)
        clip_vf = None if self.clip_range_vf is None else \
            tf.cast(self.clip_range_vf.tensor(step), tf.float32)
        with tf.GradientTape() as tape:
            params, value = self.net(tf.gather(obs, idx))
            log_prob = self.dist.log_prob(params, tf.gather(actions, idx))
            stats = clipped_losses(log_prob, tf.gather(old_log_prob, idx), advantage,
                                   value[:, 0], old_value, ret, clip, clip_vf)
            stats["entropy"] = tf.reduce_mean(self.dist.entropy(params))
            stats["loss"] = stats["policy_loss"] + self.vf_coef * stats["value_loss"] \
                - tf.cast(self.ent_coef.tensor(step), tf.float32) * stats["entropy"]
        stop = False if self.target_kl is None else stats["approx_kl"] > 1.5 * self.target_kl
        if not stop:
            variables = self.net.trainable_variables
            grads = tape.gradient(stats["loss"], variables)
            grads, _ = tf.clip_by_global_norm(grads, self.max_grad_norm)
            self.optimizer.apply(grads, variables)
        return stats, stop

    def scheduled(self) -> dict[str, Scheduled]:
        hypers = {"train/ent_coef": self.ent_coef, "train/clip_range": self.clip_range}
        if self.clip_range_vf is not None:
            hypers["train/clip_range_vf"] = self.clip_range_vf
        return hypers


def clipped_losses(log_prob, old_log_prob, advantage, value, old_value, ret, clip,
                   clip_vf=None) -> dict:
    """PPO's per-minibatch terms, all ``[B]`` inputs: with ``r = exp(log_prob - old_log_prob)``

    - ``policy_loss = mean(max(-A r, -A clip(r, 1 - clip, 1 + clip)))``
    - ``value_loss = mean((R - V)²)``, or with ``clip_vf``
      ``mean(max((R - V)², (R - V_old - clip(V - V_old, -clip_vf, clip_vf))²))``
    - ``approx_kl = mean((r - 1) - log r)``, ``clip_fraction = mean(|r - 1| > clip)``.
    """
    log_ratio = log_prob - old_log_prob
    ratio = tf.exp(log_ratio)
    policy_loss = tf.reduce_mean(tf.maximum(
        -advantage * ratio, -advantage * tf.clip_by_value(ratio, 1 - clip, 1 + clip)))
    value_loss = tf.square(ret - value)
    if clip_vf is not None:
        clipped = old_value + tf.clip_by_value(value - old_value, -clip_vf, clip_vf)
        value_loss = tf.maximum(value_loss, tf.square(ret - clipped))
    return {"policy_loss": policy_loss, "value_loss": tf.reduce_mean(value_loss),
            "approx_kl": tf.reduce_mean(ratio - 1.0 - log_ratio),
            "clip_fraction": tf.reduce_mean(tf.cast(tf.abs(ratio - 1.0) > clip, tf.float32))}


def explained_variance(predicted, target):
    """``1 - Var[target - predicted] / Var[target]``: 1 is a perfect value function, 0 no
    better than a constant, negative worse (NaN-free: 0 when the target is constant)."""
    _, var_target = tf.nn.moments(target, axes=[0])
    _, var_error = tf.nn.moments(target - predicted, axes=[0])
    return tf.where(var_target > 0, 1.0 - var_error / tf.maximum(var_target, 1e-12), 0.0)
