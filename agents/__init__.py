"""Algorithms, by name. Importing this package imports no TensorFlow: an agent's module is
imported when :func:`get_agent_class` asks for it.

To add one, put ``class MyAgent(rlharness.agent.Agent)`` in ``agents/my_agent.py`` and add
``"my_agent": "agents.my_agent:MyAgent"`` to :data:`ALGORITHMS`.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rlharness.agent import Agent

#: Algorithm name -> ``"module:Class"`` of its :class:`rlharness.agent.Agent` subclass.
ALGORITHMS: dict[str, str] = {
    "dqn": "agents.dqn:DQN",
    "a2c": "agents.a2c:A2C",
    "ppo": "agents.ppo:PPO",
}


def get_agent_class(name: str) -> type[Agent]:
    """The Agent subclass registered as ``name`` (case-insensitive) in :data:`ALGORITHMS`."""
    target = ALGORITHMS.get(name.lower())
    if target is None:
        raise ValueError(f"unknown algorithm {name!r}; known: {', '.join(sorted(ALGORITHMS))}")
    module, cls = target.split(":")
    return getattr(import_module(module), cls)


__all__ = ["ALGORITHMS", "get_agent_class"]
