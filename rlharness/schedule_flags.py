"""Schedule flags: one command-line syntax for every scheduled hyperparameter (ε, PER β, τ,
A2C's entropy coefficient, the lr). Imports no TensorFlow (until :meth:`ScheduleSpec.build`),
so a mistake is a one-line error before the heavy imports."""

from __future__ import annotations

import argparse
import ast
from dataclasses import dataclass, field

from rlharness import _validate as v
from rlharness.cli import SCHEDULES

CLOCKS = ("updates", "env_steps", "episodes")  # rlharness.step.CLOCKS, without its TF import
#: Keywords of a schedule spec and the make_schedule argument each sets.
SPEC_KEYS = {"steps": "decay_steps", "rate": "decay_rate", "end": "end_learning_rate",
             "power": "power", "warmup": "warmup_steps", "alpha": "alpha",
             "staircase": "staircase", "boundaries": "boundaries", "values": "values"}


@dataclass(frozen=True)
class ScheduleSpec:
    """A parsed schedule flag: ``VALUE`` or ``NAME(INITIAL, key=value, ...)``, optionally
    ``@CLOCK``. ``NAME`` is one of :data:`SCHEDULES` or ``linear``; keys are :data:`SPEC_KEYS`
    (``steps`` = decay_steps, ``rate`` = decay_rate, ``end`` = final value, ...). Examples::

        0.05                                        # constant
        linear(1.0, end=0.04, steps=8000)           # ε from 1 to 0.04 over 8000 clock steps
        linear(0.4, end=1.0, steps=50000)@env_steps # PER β annealed to 1
        exponential(0.01, rate=0.5, steps=1000)@updates
    """

    name: str
    initial: float
    kwargs: dict = field(default_factory=dict)
    clock: str | None = None

    def __str__(self) -> str:
        if self.name == "constant" and not self.kwargs:
            text = repr(self.initial)
        else:
            args = ", ".join([repr(self.initial)] + [f"{k}={v!r}" for k, v in self.kwargs.items()])
            text = f"{self.name}({args})"
        return text + (f"@{self.clock}" if self.clock else "")

    def build(self):
        """The schedule (imports TensorFlow)."""
        from rlharness import schedules as sch

        kw = {SPEC_KEYS[k]: v for k, v in self.kwargs.items()}
        if self.name == "constant":
            return sch.Value(self.initial)
        if self.name == "linear":
            return sch.LinearDecay(self.initial, kw["decay_steps"],
                                   kw.get("end_learning_rate", 0.0))
        return sch.make_schedule(self.name, self.initial, **kw)


def schedule_spec(text: str) -> ScheduleSpec:
    """argparse type of a schedule flag (see :class:`ScheduleSpec`); one-line errors."""
    def bad(why: str):
        raise argparse.ArgumentTypeError(
            f"{why} in {text!r}; write VALUE or NAME(INITIAL, key=value, ...)[@CLOCK], e.g. "
            "'linear(1.0, end=0.05, steps=10000)@env_steps'")

    body, _, clock = text.partition("@")
    clock = clock.strip() or None
    if clock is not None and clock not in CLOCKS:
        bad(f"unknown clock {clock!r} (use {', '.join(CLOCKS)})")
    try:
        tree = ast.parse(body.strip(), mode="eval").body
    except SyntaxError:
        bad("not a schedule")
    try:
        if isinstance(tree, ast.Call):
            if not isinstance(tree.func, ast.Name):
                bad("not a schedule name")
            name = tree.func.id.replace("_", "-")
            args = [ast.literal_eval(a) for a in tree.args]
            kwargs = {k.arg: ast.literal_eval(k.value) for k in tree.keywords}
        else:
            name, args, kwargs = "constant", [ast.literal_eval(tree)], {}
    except ValueError:
        bad("arguments must be numbers")
    if name not in (*SCHEDULES, "linear"):
        bad(f"unknown schedule {name!r} (use {', '.join((*SCHEDULES, 'linear'))})")
    if len(args) != 1:
        bad("give exactly one positional argument, the initial value")
    unknown = sorted(set(kwargs) - set(SPEC_KEYS))
    if unknown:
        bad(f"unknown key {unknown[0]!r} (use {', '.join(SPEC_KEYS)})")
    try:
        v.non_negative("the initial value", args[0])
        for k in ("steps", "rate", "power"):
            if k in kwargs:
                v.positive(k, kwargs[k])
        for k in ("end", "warmup", "alpha"):
            if k in kwargs:
                v.non_negative(k, kwargs[k])
        if name in ("linear", "polynomial", "exponential", "step", "inverse-time", "cosine") \
                and "steps" not in kwargs:
            bad(f"{name} needs steps=N")
        if name != "constant":
            v.positive("the initial value", args[0])
    except ValueError as e:
        bad(str(e))
    return ScheduleSpec(name, float(args[0]), kwargs, clock)


def schedule_flag(text: str) -> str:
    """argparse type of a schedule flag: checks ``text`` (:func:`schedule_spec`) and keeps it
    as given, so config.json stores what the user wrote."""
    schedule_spec(text)
    return text


def optional_spec(text: str | None) -> ScheduleSpec | None:
    return None if text is None else schedule_spec(text)
