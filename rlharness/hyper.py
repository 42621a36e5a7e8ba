"""Scheduled hyperparameters: any annealed value (ε, PER β, entropy coefficient, τ) is a
schedule of one clock of the run's :class:`~rlharness.step.GlobalStep`.

A :class:`Scheduled` holds a schedule (any of :mod:`rlharness.schedules`, any Keras
``LearningRateSchedule``, a callable or a number) and the name of the clock that drives it
(``updates``, ``env_steps`` or ``episodes``). It keeps no state of its own, so a resumed run
evaluates exactly what an uninterrupted one does. The value is read where it is used: in
numpy (:meth:`Scheduled.value`, µs on the per-env-step path) or in-graph (:meth:`Scheduled.tensor`).
The Trainer logs each agent's scheduled values (``Agent.scheduled()``) on the axis of the tag's
group: ``train/*`` at every update, ``rollout/*`` at every episode end.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

from rlharness import schedules as sch
from rlharness.step import CLOCKS, GlobalStep

_BLOCK = 4096  # clock values evaluated per vectorized schedule call


class Scheduled:
    """``value = schedule(global_step[clock])``.

    :meth:`value` memoizes blocks of :data:`_BLOCK` consecutive clock values computed in one
    vectorized (float32) schedule call, so the per-env-step cost is a dict-free array lookup
    and every value equals ``float(schedule(t))`` exactly. The memo is a cache of a pure
    function, not state: it never changes a value.
    """

    def __init__(self, schedule: sch.LearningRateSchedule | Callable | float,
                 clock: str = "env_steps") -> None:
        if clock not in CLOCKS:
            raise ValueError(f"unknown clock {clock!r}; use one of {', '.join(CLOCKS)}")
        self.schedule = as_value_schedule(schedule)
        self.clock = clock
        self._base, self._block = -1, np.zeros(0, np.float32)
        self._clock_var = tf.Variable(0, dtype=tf.int64, trainable=False, name=f"{clock}_clock")

    def __repr__(self) -> str:
        return f"Scheduled({self.schedule!r}, clock={self.clock!r})"

    def at(self, t: int) -> float:
        """``schedule(t)`` for one clock value ``t``."""
        i = t - self._base
        if not 0 <= i < len(self._block):
            self._base = t
            self._block = self.at_many(np.arange(t, t + _BLOCK))
            i = 0
        return float(self._block[i])

    def at_many(self, steps: np.ndarray) -> np.ndarray:
        """``schedule(t)`` for an array of clock values, float32, in one call."""
        steps = np.asarray(steps, np.int64)
        values = np.asarray(self.schedule(tf.constant(steps)), np.float32)
        if values.shape != steps.shape:  # a schedule of scalar steps only
            values = np.array([float(self.schedule(int(t))) for t in steps.reshape(-1)],
                              np.float32).reshape(steps.shape)
        return values

    def value(self, global_step: GlobalStep) -> float:
        """The value now: ``schedule(global_step[clock])``."""
        return self.at(global_step[self.clock])

    def per_update(self, global_step: GlobalStep, first_update: int, n: int) -> np.ndarray:
        """The values of updates ``first_update .. first_update + n - 1`` of a training
        round: along the round on the ``updates`` clock, constant on the others (which do
        not move while the agent updates)."""
        if self.clock == "updates":
            return self.at_many(np.arange(first_update, first_update + n))
        return np.full(n, self.value(global_step), np.float32)

    # -- in-graph -------------------------------------------------------------------------
    def sync(self, global_step: GlobalStep) -> None:
        """Copy the clock into the variable :meth:`tensor` reads; call before a round."""
        self._clock_var.assign(global_step[self.clock])

    def tensor(self, offset=0) -> tf.Tensor:
        """In-graph ``schedule(clock + offset)`` (``offset``: the update's index within the
        round, counted on the ``updates`` clock only), the clock as of the last :meth:`sync`."""
        t = self._clock_var
        if self.clock == "updates":
            t = t + tf.cast(offset, tf.int64)
        return self.schedule(t)


def as_value_schedule(obj) -> sch.LearningRateSchedule:
    """A number ``>= 0`` -> :class:`~rlharness.schedules.Value`; else as
    :func:`~rlharness.schedules.as_schedule`."""
    if isinstance(obj, int | float | np.number) and not isinstance(obj, bool):
        return sch.Value(float(obj))
    return sch.as_schedule(obj)


def scheduled(spec, default_clock: str = "env_steps") -> Scheduled:
    """A :class:`Scheduled` from a :class:`Scheduled`, a number, a schedule, or a parsed CLI
    spec (:class:`rlharness.schedule_flags.ScheduleSpec`)."""
    if isinstance(spec, Scheduled):
        return spec
    if hasattr(spec, "build"):
        return Scheduled(spec.build(), spec.clock or default_clock)
    return Scheduled(spec, default_clock)
