"""rlharness: RL training on Keras 3 with a persistent global step and step-driven lr decay.

Attributes are imported lazily so that ``import rlharness`` (and the CLI's argument
checks) does not pay for importing TensorFlow.
"""

from importlib import import_module

__version__ = "0.1.0"

_EXPORTS = {
    "Agent": "rlharness.agent",
    "Trainer": "rlharness.trainer",
    "GlobalStep": "rlharness.step",
    "DecayController": "rlharness.controller",
    "GlobalStepScheduler": "rlharness.callbacks",
    "RunWriter": "rlharness.logger",
    "read_scalars": "rlharness.logger",
    "as_schedule": "rlharness.schedules",
    "make_schedule": "rlharness.schedules",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'rlharness' has no attribute {name!r}")
