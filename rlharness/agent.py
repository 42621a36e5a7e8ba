"""The Agent contract, and the three update modes every agent gets for free."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from rlharness.cli import UPDATE_MODES  # defined TF-free, for the scripts' flags
from rlharness.step import GlobalStep


class Agent:
    """Base class of an algorithm. Subclass it to add one; the Trainer needs nothing else.

    The Trainer's loop, per step of a (vector) env with ``n`` sub-envs::

        actions = agent.act(obs)                                   # explore=True
        global_step.env_steps += n
        agent.observe(obs, actions, rewards, next_obs, terminated, truncated)
        if env_steps >= agent.learning_starts and vector steps % agent.train_freq == 0:
            metrics = agent.update()      # one training round; logged as train/<name>

    Evaluation calls ``agent.act(obs, explore=False)``. ``next_obs`` is the true next
    observation (the final one where an episode ended).

    A subclass sets ``optimizer`` (whose lr the Trainer's DecayController drives),
    ``train_freq`` (vector-env steps between rounds) and ``learning_starts`` (env steps
    before the first round), implements :meth:`act`, :meth:`observe` and :meth:`update`,
    and lists what a checkpoint must hold in :meth:`checkpoint_objects` (TensorFlow
    trackables: models, the optimizer) and :meth:`numpy_state` (arrays: buffers, RNGs).
    """

    optimizer: keras.optimizers.Optimizer
    train_freq: int = 1
    learning_starts: int = 0
    global_step: GlobalStep
    total_steps: int

    def bind(self, global_step: GlobalStep, total_steps: int) -> None:
        """Called by the Trainer: the run's counters and its env-step budget."""
        self.global_step = global_step
        self.total_steps = total_steps

    def act(self, obs: np.ndarray, explore: bool = True) -> np.ndarray:
        """Actions for a batch of observations (one row per sub-env)."""
        raise NotImplementedError

    def greedy_actions(self, obs: tf.Tensor) -> tf.Tensor:
        """``act(obs, explore=False)`` as TensorFlow ops on a float32 batch: int64 actions,
        from the networks in :meth:`checkpoint_objects` (``scripts/export.py`` saves it)."""
        raise NotImplementedError

    def observe(self, obs, actions, rewards, next_obs, terminated, truncated) -> None:
        """Record one vector step of transitions."""

    def update(self) -> dict[str, float]:
        """One training round; returns scalar metrics such as ``{"loss": ...}``."""
        raise NotImplementedError

    def rollout_metrics(self) -> dict[str, float]:
        """Values logged as ``rollout/<name>`` at the end of each episode."""
        return {}

    def scheduled(self) -> dict[str, Any]:
        """The agent's scheduled hyperparameters (:class:`rlharness.hyper.Scheduled`) by
        TensorBoard tag; the Trainer logs a ``train/*`` one at every update, a ``rollout/*``
        one at every episode end, each value as used there."""
        return {}

    def checkpoint_objects(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer}

    def numpy_state(self) -> dict[str, np.ndarray]:
        return {}

    def load_numpy_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`numpy_state` returned."""


class _RoundModel(keras.Model):
    """Keras face of a training round, so that ``fit`` and ``train_on_batch`` run it."""

    def __init__(self, network: keras.Model, train_round: Callable) -> None:
        super().__init__()
        self.network = network
        self.train_round = train_round

    def call(self, inputs):
        return self.network(inputs)

    def train_step(self, data):
        batch, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self.train_round(*batch)


def compile_update(
    mode: str,
    train_round: Callable[..., dict[str, tf.Tensor]],
    network: keras.Model,
    optimizer: keras.optimizers.Optimizer,
    jit_compile: bool = True,
) -> Callable[[tuple[np.ndarray, ...]], dict[str, float]]:
    """Return ``run(batch) -> metrics`` applying ``train_round(*batch)`` once per call;
    ``run.tracing_count()`` says how often the round was traced (once, if shapes are fixed).

    ``train_round`` holds the algorithm's whole update (loss, gradients,
    ``optimizer.apply``), possibly many gradient steps over stacked minibatches; the
    three modes only differ in who calls it, so they train identically:

    - ``fit``: one ``model.fit(epochs=1)`` per round over a dataset built once, that
      reads the round's batch from variables (one Keras step covers the round);
    - ``train_on_batch``: one ``model.train_on_batch(batch)`` per round;
    - ``tf_function``: one call of the compiled ``train_round``.
    Every call is one graph execution, so Keras's per-call overhead is paid once per round.
    """
    if mode not in UPDATE_MODES:
        raise ValueError(f"unknown update mode {mode!r}; use one of {', '.join(UPDATE_MODES)}")
    step = tf.function(train_round)  # autograph for the round's loop, also inside Keras
    run = _DRIVERS[mode](step, network, optimizer, jit_compile)
    run.tracing_count = step.experimental_get_tracing_count
    return run


def _tf_function_driver(step, network, optimizer, jit_compile):
    compiled = tf.function(step, jit_compile=jit_compile)

    def run(batch):
        return {k: float(v) for k, v in compiled(*batch).items()}

    return run


def _keras_model(step, network, optimizer, jit_compile) -> _RoundModel:
    model = _RoundModel(network, step)
    model.compile(optimizer=optimizer, jit_compile=jit_compile)
    model.built = True  # its network is built; skips Keras's symbolic build on the batch
    return model


def _train_on_batch_driver(step, network, optimizer, jit_compile):
    model = _keras_model(step, network, optimizer, jit_compile)

    def run(batch):
        return {k: float(v) for k, v in model.train_on_batch(batch, return_dict=True).items()}

    return run


def _fit_driver(step, network, optimizer, jit_compile):
    model = _keras_model(step, network, optimizer, jit_compile)
    slots: list[tf.Variable] = []
    dataset: list[tf.data.Dataset] = []

    def run(batch):
        if not slots:
            slots.extend(tf.Variable(x, trainable=False) for x in batch)
            # Keras makes a new iterator per fit; tf.data's graph rewrites cost ~10 ms each.
            options = tf.data.Options()
            options.experimental_optimization.apply_default_optimizations = False
            options.autotune.enabled = False
            dataset.append(
                tf.data.Dataset.from_tensors(0).repeat()
                .map(lambda _: (tuple(v.read_value() for v in slots),))
                .with_options(options)
            )
        else:
            for v, x in zip(slots, batch):
                v.assign(x)
        history = model.fit(dataset[0], steps_per_epoch=1, epochs=1, verbose=0, shuffle=False)
        return {k: float(v[-1]) for k, v in history.history.items()}

    return run


_DRIVERS = {"fit": _fit_driver, "train_on_batch": _train_on_batch_driver,
            "tf_function": _tf_function_driver}
