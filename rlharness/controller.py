"""The decay controller: every gradient step uses ``schedule(global step)``."""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from rlharness.schedules import Constant, as_schedule
from rlharness.step import CLOCKS, GlobalStep

LearningRateSchedule = keras.optimizers.schedules.LearningRateSchedule
ScheduleLike = LearningRateSchedule | Callable[[int], float] | float


class ClockedLearningRate(LearningRateSchedule):
    """What the controller installs as ``optimizer.learning_rate``.

    Keras evaluates it inside the compiled update, once per optimizer step, at the
    optimizer's ``iterations``. With the ``updates`` clock the step is
    ``iterations + shift`` where ``shift = global updates - iterations``, so the lr moves
    at every gradient step even when one graph call runs a whole round of minibatches.
    With ``env_steps``/``episodes`` the step is ``shift`` itself, set once per round (those
    clocks do not move while the agent updates).
    """

    def __init__(self, schedule: LearningRateSchedule, clock: str, shift: tf.Variable) -> None:
        self.schedule = schedule
        self.clock = clock
        self.shift = shift

    def __call__(self, step):
        t = self.shift + tf.cast(step, tf.int64) if self.clock == "updates" else self.shift
        return self.schedule(t)

    def get_config(self) -> dict:
        # Saving an optimizer keeps the underlying schedule; the clock is the controller's.
        return self.schedule.get_config()


class DecayController:
    """Sets ``optimizer.learning_rate`` so that each gradient step uses ``schedule(t)``.

    ``t`` is read from ``global_step`` on ``clock``: ``"updates"`` (default; the number of
    optimizer updates applied before this one), ``"env_steps"`` or ``"episodes"``.
    The lr is never derived from the current lr, so it cannot compound, and it holds for
    any update path that calls ``optimizer.apply``: ``fit`` (any ``steps_per_execution``),
    ``train_on_batch`` or a custom ``tf.function``.

    Create it before the first compiled update traces (a graph traced earlier keeps
    reading the old lr variable). Around each training round call :meth:`before_update`
    and :meth:`after_update`; they cost two scalar reads, the per-step work is in-graph.

    ``schedule`` may be one of ours, any Keras ``LearningRateSchedule``, a callable
    ``step -> lr`` or a float. If the optimizer was built with its own Keras schedule and
    ``schedule`` is None, that schedule is driven by the global step instead of by
    ``optimizer.iterations``; passing both is an error.
    """

    def __init__(
        self,
        optimizer: keras.optimizers.Optimizer,
        schedule: ScheduleLike | None = None,
        global_step: GlobalStep | None = None,
        clock: str = "updates",
    ) -> None:
        if clock not in CLOCKS:
            raise ValueError(f"unknown clock {clock!r}; use one of {', '.join(CLOCKS)}")
        current = getattr(optimizer, "_learning_rate", None)  # Keras keeps no public handle
        if current is None:
            raise TypeError(f"expected a Keras 3 optimizer, got {type(optimizer).__name__}")
        if isinstance(current, ClockedLearningRate):
            current = current.schedule
        if isinstance(current, LearningRateSchedule):
            if schedule is not None and schedule is not current:
                raise ValueError(
                    f"the optimizer was built with its own {type(current).__name__} and a "
                    "schedule was also given; pass schedule=None to drive the optimizer's "
                    "schedule by the global step, or build the optimizer with a float lr"
                )
            schedule = current
        elif schedule is None:
            schedule = Constant(float(keras.ops.convert_to_numpy(optimizer.learning_rate)))
        self.optimizer = optimizer
        self.schedule = as_schedule(schedule)
        self.global_step = global_step if global_step is not None else GlobalStep()
        self.clock = clock
        self._shift = tf.Variable(0, dtype=tf.int64, trainable=False, name="lr_clock_shift")
        self._shift_value = 0
        self._iterations_before = int(optimizer.iterations)
        self.before_update()
        # Not the `learning_rate` setter: it would untrack the optimizer's lr variable by
        # deleting it from a tracked list, after which tf.train.Checkpoint cannot save it.
        optimizer._learning_rate = ClockedLearningRate(self.schedule, clock, self._shift)

    @property
    def jit_compatible(self) -> bool:
        """False when the schedule needs Python at every step (XLA cannot compile it)."""
        return getattr(self.schedule, "jit_compatible", True)

    def before_update(self) -> None:
        """Align the in-graph clock with the global step; call before a training round."""
        self._iterations_before = int(self.optimizer.iterations)
        if self.clock == "updates":
            shift = self.global_step.updates - self._iterations_before
        else:
            shift = self.global_step[self.clock]
        if shift != self._shift_value:
            self._shift.assign(shift)
            self._shift_value = shift

    def after_update(self) -> int:
        """Count the updates the optimizer applied since :meth:`before_update` into
        ``global_step.updates`` and return how many there were."""
        n = int(self.optimizer.iterations) - self._iterations_before
        self.global_step.updates += n
        self._iterations_before += n
        return n

    def current_learning_rate(self) -> float:
        """The lr the next update will use."""
        return float(keras.ops.convert_to_numpy(self.optimizer.learning_rate))

    def learning_rates(self, first_update: int, n: int) -> np.ndarray:
        """The lr that updates ``first_update .. first_update + n - 1`` used, in one
        vectorized schedule call (for logging a whole round at once)."""
        if self.clock == "updates":
            steps = np.arange(first_update, first_update + n, dtype=np.int64)
        else:
            steps = np.full(n, self._shift_value, dtype=np.int64)
        try:
            values = np.asarray(self.schedule(tf.constant(steps)), dtype=np.float32)
            if values.shape == (n,):
                return values
        except (TypeError, ValueError, tf.errors.InvalidArgumentError):
            pass  # a schedule that only takes scalar steps
        return np.array([float(self.schedule(int(s))) for s in steps], dtype=np.float32)
