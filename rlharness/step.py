"""The run's persistent global step."""

from __future__ import annotations

import json

import tensorflow as tf

CLOCKS = ("updates", "env_steps", "episodes")


class GlobalStep(tf.train.experimental.PythonState):
    """Counters of a whole run: ``updates`` (optimizer updates applied), ``env_steps``
    (environment transitions, summed over vector sub-envs) and ``episodes`` (finished).

    Nothing in rlharness ever resets them: not ``model.fit``, not a new training round.
    They are plain Python ints, so incrementing one on the per-env-step hot path costs
    nanoseconds, yet the object is ``tf.train.Checkpoint``-trackable::

        ckpt = tf.train.Checkpoint(step=global_step)   # saved and restored with the run
    """

    def __init__(self, updates: int = 0, env_steps: int = 0, episodes: int = 0) -> None:
        self.updates = int(updates)
        self.env_steps = int(env_steps)
        self.episodes = int(episodes)

    def __getitem__(self, clock: str) -> int:
        """The value of one clock by name: ``step["env_steps"]``."""
        if clock not in CLOCKS:
            raise ValueError(f"unknown clock {clock!r}; use one of {', '.join(CLOCKS)}")
        return getattr(self, clock)

    def as_dict(self) -> dict[str, int]:
        return {c: getattr(self, c) for c in CLOCKS}

    def serialize(self) -> str:
        return json.dumps(self.as_dict())

    def deserialize(self, string_value) -> None:
        if isinstance(string_value, bytes):
            string_value = string_value.decode()
        values = json.loads(string_value)
        for clock in CLOCKS:
            setattr(self, clock, int(values[clock]))

    def __repr__(self) -> str:
        fields = ", ".join(f"{c}={getattr(self, c)}" for c in CLOCKS)
        return f"GlobalStep({fields})"
