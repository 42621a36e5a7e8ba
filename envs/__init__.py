"""Gymnasium environments for rlharness: construction, validation and a test chain env.

Importing this package registers ``Chain-v0`` and ``Catch-v0``. It never imports TensorFlow.
"""

from envs.catch import CatchEnv
from envs.chain import ChainEnv
from envs.make import (
    EnvError,
    check_env_id,
    final_observations,
    finished_episodes,
    frame_stack_size,
    make_env,
    make_vec_env,
    require_discrete,
    require_discrete_or_box,
    sync_normalization,
)
from envs.state import EnvStateError, get_env_state, set_env_state, supports_exact_state

__all__ = [
    "CatchEnv",
    "ChainEnv",
    "EnvError",
    "EnvStateError",
    "check_env_id",
    "final_observations",
    "finished_episodes",
    "frame_stack_size",
    "get_env_state",
    "make_env",
    "make_vec_env",
    "require_discrete",
    "require_discrete_or_box",
    "sync_normalization",
    "set_env_state",
    "supports_exact_state",
]
