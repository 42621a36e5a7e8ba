"""Learning-rate schedules: pure functions of a step, accepted by any Keras optimizer.

Every schedule is a ``keras.optimizers.schedules.LearningRateSchedule``: ``sched(step)`` depends
on ``step`` only (never on a "current" lr, so decay cannot compound) and ``step`` is counted in
whatever clock drives it: optimizer updates, env steps or episodes. ``step`` may be a Python or
NumPy number, a tensor of any int/float dtype (e.g. ``optimizer.iterations + offset``, int64) or
a 1-D array/tensor of steps (``sched(tf.range(100))`` gives 100 values). The result is always a
float32 tensor of the step's shape. Only TF ops, no Python branching on values, so everything
but a Python-fallback :class:`FunctionSchedule` compiles under ``tf.function(jit_compile=True)``.
Where Keras has the same schedule, the arguments and float32 values are Keras's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from numbers import Integral, Real

import keras
import numpy as np
import tensorflow as tf

from rlharness import _validate as v

LearningRateSchedule = keras.optimizers.schedules.LearningRateSchedule
StepLike = int | float | np.ndarray | np.number | tf.Tensor | tf.Variable
_register = keras.saving.register_keras_serializable(package="rlharness")


def _steps(step: StepLike) -> tf.Tensor:
    return tf.cast(step, tf.float32)


def _f32(x: float) -> tf.Tensor:
    return tf.constant(x, tf.float32)


class _Schedule(LearningRateSchedule):
    _config_keys: tuple[str, ...] = ()

    def get_config(self) -> dict:
        return {key: getattr(self, key) for key in self._config_keys}

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self.get_config().items())
        return f"{type(self).__name__}({args})"


@_register
class Constant(_Schedule):
    """``lr(step) = learning_rate`` (``step`` in any clock; only its shape matters)."""

    _config_keys = ("learning_rate",)

    def __init__(self, learning_rate: float) -> None:
        self.learning_rate = v.positive("learning_rate", learning_rate)

    def __call__(self, step: StepLike) -> tf.Tensor:
        return tf.zeros_like(_steps(step)) + _f32(self.learning_rate)


@_register
class Value(_Schedule):
    """``h(step) = value``, a constant hyperparameter that may be 0 (ε, an entropy
    coefficient); :class:`Constant` is the learning-rate version, which must be positive."""

    _config_keys = ("value",)

    def __init__(self, value: float) -> None:
        self.value = v.non_negative("value", value)

    def __call__(self, step: StepLike) -> tf.Tensor:
        return tf.zeros_like(_steps(step)) + _f32(self.value)


@_register
class ExponentialDecay(_Schedule):
    """``lr(step) = initial_learning_rate * decay_rate ** (step / decay_steps)``, with the
    exponent floored if ``staircase``; ``step`` in the driving clock's units."""

    _config_keys = ("initial_learning_rate", "decay_steps", "decay_rate", "staircase")

    def __init__(self, initial_learning_rate: float, decay_steps: float, decay_rate: float,
                 staircase: bool = False) -> None:
        self.initial_learning_rate = v.positive("initial_learning_rate", initial_learning_rate)
        self.decay_steps = v.positive("decay_steps", decay_steps)
        self.decay_rate = v.positive("decay_rate", decay_rate)
        self.staircase = v.boolean("staircase", staircase)

    def __call__(self, step: StepLike) -> tf.Tensor:
        p = _steps(step) / _f32(self.decay_steps)
        if self.staircase:
            p = tf.floor(p)
        return _f32(self.initial_learning_rate) * tf.pow(_f32(self.decay_rate), p)


@_register
class StepDecay(_Schedule):
    """``lr(step) = initial_learning_rate * drop ** floor(step / steps_per_drop)``, 0 < drop <= 1:
    the lr is multiplied by ``drop`` every ``steps_per_drop`` steps of the driving clock."""

    _config_keys = ("initial_learning_rate", "drop", "steps_per_drop")

    def __init__(self, initial_learning_rate: float, drop: float, steps_per_drop: float) -> None:
        self.initial_learning_rate = v.positive("initial_learning_rate", initial_learning_rate)
        self.drop = v.in_range("drop", drop, 0, 1, open_lo=True)
        self.steps_per_drop = v.positive("steps_per_drop", steps_per_drop)

    def __call__(self, step: StepLike) -> tf.Tensor:
        p = tf.floor(_steps(step) / _f32(self.steps_per_drop))
        return _f32(self.initial_learning_rate) * tf.pow(_f32(self.drop), p)


@_register
class InverseTimeDecay(_Schedule):
    """``lr(step) = initial_learning_rate / (1 + decay_rate * step / decay_steps)``, with
    ``step / decay_steps`` floored if ``staircase``; ``step`` in the driving clock's units.
    Keras 2's ``decay=d`` optimizer argument was ``decay_steps=1, decay_rate=d`` in updates."""

    _config_keys = ("initial_learning_rate", "decay_steps", "decay_rate", "staircase")

    def __init__(self, initial_learning_rate: float, decay_steps: float, decay_rate: float,
                 staircase: bool = False) -> None:
        self.initial_learning_rate = v.positive("initial_learning_rate", initial_learning_rate)
        self.decay_steps = v.positive("decay_steps", decay_steps)
        self.decay_rate = v.positive("decay_rate", decay_rate)
        self.staircase = v.boolean("staircase", staircase)

    def __call__(self, step: StepLike) -> tf.Tensor:
        p = _steps(step) / _f32(self.decay_steps)
        if self.staircase:
            p = tf.floor(p)
        return _f32(self.initial_learning_rate) / (_f32(1.0) + _f32(self.decay_rate) * p)


@_register
class PolynomialDecay(_Schedule):
    """``lr(step) = (initial - end) * (1 - s / decay_steps) ** power + end`` with
    ``s = min(step, decay_steps)`` (``end = end_learning_rate``). If ``cycle``, ``s = step`` and
    ``decay_steps`` is scaled by ``ceil(step / decay_steps)`` (1 at step 0), as in Keras.
    ``step`` is in the driving clock's units."""

    _config_keys = ("initial_learning_rate", "decay_steps", "end_learning_rate", "power", "cycle")

    def __init__(self, initial_learning_rate: float, decay_steps: float,
                 end_learning_rate: float = 0.0001, power: float = 1.0,
                 cycle: bool = False) -> None:
        self.initial_learning_rate = v.positive("initial_learning_rate", initial_learning_rate)
        self.decay_steps = v.positive("decay_steps", decay_steps)
        self.end_learning_rate = v.non_negative("end_learning_rate", end_learning_rate)
        self.power = v.positive("power", power)
        self.cycle = v.boolean("cycle", cycle)

    def __call__(self, step: StepLike) -> tf.Tensor:
        s, decay_steps = _steps(step), _f32(self.decay_steps)
        if self.cycle:
            multiplier = tf.where(tf.equal(s, 0.0), _f32(1.0), tf.math.ceil(s / decay_steps))
            decay_steps = decay_steps * multiplier
        else:
            s = tf.minimum(s, decay_steps)
        end = _f32(self.end_learning_rate)
        delta = _f32(self.initial_learning_rate) - end
        # The clamp changes no eager value, but XLA turns s / decay_steps into s * (1 / decay_steps)
        # and 1 - p can then be -1e-8 at the end: NaN for power < 1 (as Keras's own does under XLA).
        remaining = tf.maximum(_f32(1.0) - s / decay_steps, _f32(0.0))
        return delta * tf.pow(remaining, _f32(self.power)) + end


@_register
class LinearDecay(PolynomialDecay):
    """``lr(step) = initial + (end - initial) * min(step, decay_steps) / decay_steps``:
    :class:`PolynomialDecay` with ``power=1``; ``step`` in the driving clock's units."""

    _config_keys = ("initial_learning_rate", "decay_steps", "end_learning_rate")

    def __init__(self, initial_learning_rate: float, decay_steps: float,
                 end_learning_rate: float = 0.0) -> None:
        super().__init__(initial_learning_rate, decay_steps, end_learning_rate, power=1.0)


@_register
class CosineDecay(_Schedule):
    """Keras 3's cosine decay with optional linear warmup; ``step`` in the driving clock's units.

    Without ``warmup_target``: ``lr(step) = initial_learning_rate * d(min(step, decay_steps))``
    with ``d(s) = (1 - alpha) * 0.5 * (1 + cos(pi * s / decay_steps)) + alpha`` (``warmup_steps``
    is then ignored, as in Keras). With it: a linear ramp from ``initial_learning_rate`` (may be 0)
    to ``warmup_target`` over ``warmup_steps``, then ``warmup_target * d(step - warmup_steps)``.
    """

    _config_keys = ("initial_learning_rate", "decay_steps", "alpha", "warmup_steps",
                    "warmup_target")

    def __init__(self, initial_learning_rate: float, decay_steps: float, alpha: float = 0.0,
                 warmup_steps: float = 0, warmup_target: float | None = None) -> None:
        check_initial = v.positive if warmup_target is None else v.non_negative
        self.initial_learning_rate = check_initial("initial_learning_rate", initial_learning_rate)
        self.decay_steps = v.positive("decay_steps", decay_steps)
        self.alpha = v.in_range("alpha", alpha, 0.0, 1.0)
        self.warmup_steps = v.non_negative("warmup_steps", warmup_steps)
        if warmup_target is not None:
            v.positive("warmup_target", warmup_target)
        self.warmup_target = warmup_target

    def _decay(self, s: tf.Tensor, decay_steps: tf.Tensor, lr: tf.Tensor) -> tf.Tensor:
        cosine = 0.5 * (1.0 + tf.cos(_f32(math.pi) * (s / decay_steps)))
        return lr * ((1 - self.alpha) * cosine + self.alpha)

    def __call__(self, step: StepLike) -> tf.Tensor:
        s, initial = _steps(step), _f32(self.initial_learning_rate)
        decay_steps = _f32(self.decay_steps)
        if self.warmup_target is None:
            return self._decay(tf.minimum(s, decay_steps), decay_steps, initial)
        target, warmup_steps = _f32(self.warmup_target), _f32(self.warmup_steps)
        s = tf.minimum(s, decay_steps + warmup_steps)
        warm = (target - initial) * tf.math.divide_no_nan(s, warmup_steps) + initial
        return tf.where(s < warmup_steps, warm, self._decay(s - warmup_steps, decay_steps, target))


@_register
class PiecewiseConstant(_Schedule):
    """``lr(step) = values[i]`` for ``boundaries[i-1] < step <= boundaries[i]`` (``values[0]`` up
    to and including ``boundaries[0]``, ``values[-1]`` after ``boundaries[-1]``), as Keras's
    ``PiecewiseConstantDecay``; ``step`` and ``boundaries`` in the driving clock's units."""

    _config_keys = ("boundaries", "values")

    def __init__(self, boundaries: Sequence[float], values: Sequence[float]) -> None:
        boundaries, values = _number_list("boundaries", boundaries), _number_list("values", values)
        for i, b in enumerate(boundaries):
            v.non_negative(f"boundaries[{i}]", b)
        if any(b <= a for a, b in zip(boundaries, boundaries[1:], strict=False)):
            raise ValueError(f"boundaries must be strictly increasing, got {boundaries}")
        if len(values) != len(boundaries) + 1:
            raise ValueError(f"values must have len(boundaries) + 1 = {len(boundaries) + 1} "
                             f"entries, got {len(values)}: {values}")
        for i, x in enumerate(values):
            v.non_negative(f"values[{i}]", x)
        self.boundaries = [int(b) if isinstance(b, Integral) else float(b) for b in boundaries]
        self.values = [float(x) for x in values]

    def __call__(self, step: StepLike) -> tf.Tensor:
        # float64 compares int64 steps with the boundaries exactly (up to 2**53).
        s = tf.expand_dims(tf.cast(step, tf.float64), -1)
        above = tf.cast(s > tf.constant(self.boundaries, tf.float64, [len(self.boundaries)]),
                        tf.int32)
        return tf.gather(tf.constant(self.values, tf.float32), tf.reduce_sum(above, axis=-1))


def _number_list(name: str, seq: object) -> list:
    if isinstance(seq, str | bytes) or not isinstance(seq, Sequence | np.ndarray):
        raise ValueError(f"{name} must be a list of numbers, got {seq!r}")
    return list(seq)


@_register
class FunctionSchedule(_Schedule):
    """``lr(step) = fn(step)`` for a plain Python callable ``fn``; ``step`` in the driving clock.

    ``fn`` is called on the float32 step tensor, which suits arithmetic such as
    ``lambda s: 0.1 * 0.5 ** (s / 100)`` (graph- and XLA-friendly). Where that fails
    (``math.pow``, ``if s < 100:``, NumPy on a graph tensor...: TypeError, ValueError,
    NotImplementedError or AttributeError), ``fn`` runs per element in Python through
    ``tf.numpy_function`` (with a Python int or float step) and ``jit_compatible`` is False:
    XLA (``jit_compile=True``) cannot compile the schedule then. To know this before the first
    call, ``__init__`` traces ``fn`` once on a symbolic 1-D step; a later failure in ``__call__``
    still switches to the fallback. ``get_config`` holds the callable itself, a best effort:
    ``from_config`` works in-process, but the config is not JSON-serializable.
    """

    _config_keys = ("fn",)

    def __init__(self, fn: Callable[[float], float]) -> None:
        if not callable(fn):
            raise ValueError(f"fn must be a callable step -> learning rate, got {fn!r}")
        self.fn = fn
        try:  # a probe: does fn trace on a symbolic vector of steps?
            tf.function(self._tensor_call, autograph=False).get_concrete_function(
                tf.TensorSpec([None], tf.float32))
            self.jit_compatible = True
        except Exception:  # any failure: fn needs concrete Python numbers
            self.jit_compatible = False

    def _tensor_call(self, s: tf.Tensor) -> tf.Tensor:
        return tf.broadcast_to(tf.cast(self.fn(s), tf.float32), tf.shape(s))

    def __call__(self, step: StepLike) -> tf.Tensor:
        if self.jit_compatible:
            try:
                return self._tensor_call(_steps(step))
            except (TypeError, ValueError, NotImplementedError, AttributeError):
                self.jit_compatible = False
        step = tf.convert_to_tensor(step)
        step = tf.cast(step, tf.int64 if step.dtype.is_integer else tf.float64)

        def per_element(steps: np.ndarray) -> np.ndarray:
            lrs = [float(self.fn(x)) for x in steps.reshape(-1).tolist()]
            return np.asarray(lrs, np.float32).reshape(steps.shape)

        out = tf.numpy_function(per_element, [step], tf.float32)
        out.set_shape(step.shape)
        return out


def as_schedule(obj: LearningRateSchedule | Callable[[float], float] | float,
                ) -> LearningRateSchedule:
    """A number -> :class:`Constant`; any Keras ``LearningRateSchedule`` -> itself; another
    callable ``step -> lr`` -> :class:`FunctionSchedule`; anything else -> TypeError."""
    if isinstance(obj, LearningRateSchedule):
        return obj
    if isinstance(obj, Real) and not isinstance(obj, bool):
        return Constant(obj)
    if callable(obj):
        return FunctionSchedule(obj)
    raise TypeError("expected a learning rate: a positive number, a Keras LearningRateSchedule "
                    f"or a callable step -> lr, got {type(obj).__name__} {obj!r}")


SCHEDULE_NAMES = ("constant", "exponential", "step", "inverse-time", "polynomial", "cosine",
                  "piecewise")


def make_schedule(name: str, learning_rate: float, *, decay_steps: float = 10_000,
                  decay_rate: float = 0.5, staircase: bool = False,
                  end_learning_rate: float | None = None, power: float = 1.0,
                  warmup_steps: float = 0, alpha: float = 0.0,
                  boundaries: Sequence[float] | None = None,
                  values: Sequence[float] | None = None) -> LearningRateSchedule:
    """Build schedule ``name`` (one of :data:`SCHEDULE_NAMES`) from CLI-style flags.

    ``learning_rate`` is the initial lr (the warmup target of "cosine" with ``warmup_steps > 0``,
    which then ramps up from 0). "step" drops by ``decay_rate`` every ``decay_steps``;
    "piecewise" uses ``boundaries`` (default ``decay_steps * [1, 2, 3]``) and ``values``
    (default ``learning_rate * decay_rate ** i``). ``end_learning_rate`` of "polynomial"
    defaults to ``learning_rate / 100``. Flags that the named schedule does not use are ignored.
    """
    if name not in SCHEDULE_NAMES:
        raise ValueError(f"unknown schedule {name!r}; use one of {', '.join(SCHEDULE_NAMES)}")
    lr = v.positive("learning_rate", learning_rate)
    if name == "constant":
        return Constant(lr)
    if name == "exponential":
        return ExponentialDecay(lr, decay_steps, decay_rate, staircase)
    if name == "step":
        return StepDecay(lr, drop=decay_rate, steps_per_drop=decay_steps)
    if name == "inverse-time":
        return InverseTimeDecay(lr, decay_steps, decay_rate, staircase)
    if name == "polynomial":
        end = lr / 100 if end_learning_rate is None else end_learning_rate
        return PolynomialDecay(lr, decay_steps, end, power)
    if name == "cosine":
        if v.non_negative("warmup_steps", warmup_steps) > 0:
            return CosineDecay(0.0, decay_steps, alpha, warmup_steps, warmup_target=lr)
        return CosineDecay(lr, decay_steps, alpha)
    v.positive("decay_steps", decay_steps)
    if boundaries is None:
        boundaries = [decay_steps * i for i in (1, 2, 3)]
    if values is None:
        v.positive("decay_rate", decay_rate)
        values = [lr * decay_rate**i for i in range(len(boundaries) + 1)]
    return PiecewiseConstant(boundaries, values)
