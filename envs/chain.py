"""A tiny deterministic chain with closed-form optimal Q-values, for fast learning tests."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

MAX_STEPS = 20


class ChainEnv(gym.Env):
    """States ``0..n-1`` on a line; action 0 moves left (floored at 0), action 1 moves right.

    Reaching ``n-1`` pays +1 and terminates; every other step pays 0. Episodes start uniformly
    in ``0..n-2`` (``reset(options={"state": s})`` picks the start). Observations are one-hot
    float32. Truncation comes from the TimeLimit of the ``Chain-v0`` registration
    (``MAX_STEPS`` steps; ``gym.make("Chain-v0", max_episode_steps=k)`` changes it), so a bare
    ``ChainEnv`` never truncates.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, n: int = 5) -> None:
        if n < 2:
            raise ValueError(f"ChainEnv needs n >= 2 states, got {n}")
        self.n = n
        self.observation_space = gym.spaces.Box(0.0, 1.0, (n,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.state = 0

    def _obs(self) -> np.ndarray:
        obs = np.zeros(self.n, dtype=np.float32)
        obs[self.state] = 1.0
        return obs

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start in a uniform non-terminal state, or in ``options["state"]``."""
        super().reset(seed=seed)
        if options is not None and "state" in options:
            self.state = int(options["state"])
        else:
            self.state = int(self.np_random.integers(0, self.n - 1))
        return self._obs(), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Move one state left or right; +1 and termination on reaching ``n-1``."""
        self.state = min(self.state + 1, self.n - 1) if int(action) == 1 else max(self.state - 1, 0)
        terminated = self.state == self.n - 1
        return self._obs(), float(terminated), terminated, False, {}

    def optimal_q(self, gamma: float) -> np.ndarray:
        """Q*(s, a) for the non-terminal states ``0..n-2``, shape ``(n-1, 2)``, in closed form."""
        s = np.arange(self.n - 1)
        v = gamma ** (self.n - 2 - s).astype(np.float64)
        left = gamma * v[np.maximum(s - 1, 0)]
        return np.stack([left, v], axis=1)


if "Chain-v0" not in gym.registry:
    gym.register(id="Chain-v0", entry_point="envs.chain:ChainEnv", max_episode_steps=MAX_STEPS)
