"""A preallocated numpy ring buffer of transitions."""

from __future__ import annotations

import numpy as np


class ReplayBuffer:
    """Fixed-capacity FIFO of transitions ``(obs, action, reward, next_obs, terminated)``.

    Arrays are allocated once; :meth:`add` writes a batch of rows (one per vector
    sub-env) at the write position, wrapping around and overwriting the oldest.
    ``terminated`` excludes truncation, so a time-limited episode still bootstraps.
    """

    FIELDS = ("obs", "actions", "rewards", "next_obs", "dones")

    def __init__(self, capacity: int, obs_shape: tuple[int, ...], obs_dtype=np.float32) -> None:
        self.capacity = int(capacity)
        self.obs = np.zeros((capacity, *obs_shape), obs_dtype)
        self.next_obs = np.zeros((capacity, *obs_shape), obs_dtype)
        self.actions = np.zeros(capacity, np.int64)
        self.rewards = np.zeros(capacity, np.float32)
        self.dones = np.zeros(capacity, np.float32)
        self.pos = 0  # next row to write
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(self, obs, actions, rewards, next_obs, terminated) -> None:
        n = len(actions)
        rows = np.arange(self.pos, self.pos + n) % self.capacity
        self.obs[rows] = obs
        self.actions[rows] = actions
        self.rewards[rows] = rewards
        self.next_obs[rows] = next_obs
        self.dones[rows] = terminated
        self.pos = int(rows[-1] + 1) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        """``n`` transitions drawn uniformly with replacement, in :attr:`FIELDS` order."""
        rows = rng.integers(0, self.size, n)
        return tuple(getattr(self, f)[rows] for f in self.FIELDS)

    def state_dict(self) -> dict[str, np.ndarray]:
        """The filled part and the write position, for ``np.savez`` (no pickling)."""
        state = {f: getattr(self, f)[: self.size] for f in self.FIELDS}
        state["pos"] = np.array(self.pos)
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        size = len(state["actions"])
        if size > self.capacity:
            raise ValueError(f"saved buffer holds {size} transitions, capacity is {self.capacity}")
        for f in self.FIELDS:
            getattr(self, f)[:size] = state[f]
        self.size = size
        self.pos = int(state["pos"])
