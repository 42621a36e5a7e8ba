"""Replay: a preallocated numpy ring buffer of transitions, and its prioritized variant."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from rlharness.npz import copy_into

if TYPE_CHECKING:  # imported where a buffer is prioritized: numba only for PER
    from agents.sumtree import SumTree


class ReplayBuffer:
    """Fixed-capacity FIFO of transitions ``(obs, action, reward, next_obs, terminated, n_steps)``.

    Arrays are allocated once; :meth:`add` writes a batch of rows (one per vector
    sub-env) at the write position, wrapping around and overwriting the oldest.
    ``terminated`` excludes truncation, so a time-limited episode still bootstraps.
    ``n_steps`` is the number ``k`` of env steps the (possibly multi-step) reward covers; the
    target bootstraps with ``gamma ** k`` (1 for plain one-step transitions).
    """

    FIELDS = ("obs", "actions", "rewards", "next_obs", "dones", "n_steps")

    def __init__(self, capacity: int, obs_shape: tuple[int, ...], obs_dtype=np.float32) -> None:
        self.capacity = int(capacity)
        self.obs = np.zeros((capacity, *obs_shape), obs_dtype)
        self.next_obs = np.zeros((capacity, *obs_shape), obs_dtype)
        self.actions = np.zeros(capacity, np.int64)
        self.rewards = np.zeros(capacity, np.float32)
        self.dones = np.zeros(capacity, np.float32)
        self.n_steps = np.ones(capacity, np.float32)
        self.pos = 0  # next row to write
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(self, obs, actions, rewards, next_obs, terminated, n_steps=1) -> np.ndarray:
        """Write a batch of transitions; returns the rows written."""
        n = len(actions)
        rows = np.arange(self.pos, self.pos + n) % self.capacity
        self.obs[rows] = obs
        self.actions[rows] = actions
        self.rewards[rows] = rewards
        self.next_obs[rows] = next_obs
        self.dones[rows] = terminated
        self.n_steps[rows] = n_steps
        self.pos = int(rows[-1] + 1) % self.capacity
        self.size = min(self.size + n, self.capacity)
        return rows

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        """``n`` transitions drawn uniformly with replacement, in :attr:`FIELDS` order."""
        return self.rows(rng.integers(0, self.size, n))

    def rows(self, index: np.ndarray) -> tuple[np.ndarray, ...]:
        """The transitions at ``index`` (any shape), in :attr:`FIELDS` order."""
        return tuple(getattr(self, f)[index] for f in self.FIELDS)

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
            if f in state:  # n_steps is absent from checkpoints of one-step DQN before it
                copy_into(getattr(self, f)[:size], state[f])
        self.size = size
        self.pos = int(state["pos"])


def draw_prioritized(tree: SumTree, batch_size: int, rng: np.random.Generator, beta: np.ndarray,
                     ) -> tuple[np.ndarray, np.ndarray]:
    """``len(beta)`` stratified minibatches of leaves of ``tree`` and their importance-sampling
    weights ``w_i = (N P(i))^-β[g] / max_j w_j`` over minibatch ``g``: ``(index [G, B],
    weights [G, B] float32)``. The one home of PER's draw, for every prioritized buffer."""
    beta = np.asarray(beta, np.float64).reshape(-1, 1)
    index = tree.sample(batch_size, rng, n_batches=len(beta))
    # (N P(i))^-β / max_j (N P(j))^-β is (min_j p_j / p_i)^β: N and Σp cancel
    weights = tree.levels[0].take(index)
    np.divide(np.minimum.reduce(weights, axis=1, keepdims=True), weights, out=weights)
    weights **= beta
    return index, weights.astype(np.float32)


def td_priorities(td_errors: np.ndarray, eps: float, alpha: float) -> np.ndarray:
    """PER's stored priorities ``p_i^α = (|δ_i| + eps)^α``, flat float64, for every prioritized
    buffer."""
    priority = np.abs(np.asarray(td_errors, np.float64).reshape(-1))
    priority += eps
    priority **= alpha
    return priority


class PrioritizedReplayBuffer(ReplayBuffer):
    """Proportional prioritized replay (Schaul et al. 2016) on a :class:`SumTree`.

    Transition ``i`` is sampled with ``P(i) = p_i^α / Σ_k p_k^α`` where
    ``p_i = |δ_i| + per_eps`` from the TD error (or loss) of the update that last used it;
    a new transition gets the largest ``p^α`` seen so far (1 at first), so it is replayed
    soon. Importance-sampling weights ``w_i = (N P(i))^-β / max_j w_j`` are normalised by the
    minibatch's max. Sampling and priority updates are vectorized over the batch.
    """

    def __init__(self, capacity: int, obs_shape: tuple[int, ...], *, alpha: float = 0.6,
                 eps: float = 1e-6, obs_dtype=np.float32) -> None:
        super().__init__(capacity, obs_shape, obs_dtype)
        from agents.sumtree import SumTree

        self.alpha, self.eps = float(alpha), float(eps)
        self.tree = SumTree(self.capacity)
        self.max_priority = 1.0  # of p^alpha

    def add(self, obs, actions, rewards, next_obs, terminated, n_steps=1) -> np.ndarray:
        rows = super().add(obs, actions, rewards, next_obs, terminated, n_steps)
        self.tree.update(rows, np.full(len(rows), self.max_priority))
        return rows

    def sample_prioritized(self, batch_size: int, rng: np.random.Generator, beta: np.ndarray,
                           ) -> tuple[np.ndarray, tuple[np.ndarray, ...], np.ndarray]:
        """``len(beta)`` minibatches of ``batch_size``, minibatch ``g`` weighted with
        ``beta[g]``: returns ``(index [G, B], transitions in FIELDS order [G, B, ...],
        weights [G, B] float32)``."""
        index, weights = draw_prioritized(self.tree, batch_size, rng, beta)
        return index, self.rows(index), weights

    def update_priorities(self, index: np.ndarray, td_errors: np.ndarray) -> None:
        """``p_i = (|δ_i| + eps)^α`` for a batch (any shape; later entries win on repeats)."""
        priority = td_priorities(td_errors, self.eps, self.alpha)
        self.tree.update(np.asarray(index).reshape(-1), priority)
        self.max_priority = max(self.max_priority, float(np.maximum.reduce(priority)))

    def state_dict(self) -> dict[str, np.ndarray]:
        state = super().state_dict()
        state["priorities"] = self.tree[: self.size]
        state["max_priority"] = np.array(self.max_priority)
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        super().load_state_dict(state)
        self.tree.levels[0][:] = 0.0
        copy_into(self.tree.levels[0][: self.size], state["priorities"])
        self.tree.rebuild()
        self.max_priority = float(state["max_priority"])


class NStepQueue:
    """Turns each sub-env's one-step transitions into ``n``-step ones (Sutton 1988; used by
    Rainbow): ``(s_t, a_t, Σ_{i<k} γ^i r_{t+i}, s_{t+k}, terminated, k)``, ``k <= n``.

    A transition leaves once ``n`` steps follow it. At an episode end every queued one leaves
    with the ``k`` steps actually taken: after a termination without bootstrap
    (``terminated = 1``), after a truncation bootstrapping from the true final observation.
    Two episodes are never mixed: a sub-env whose next ``obs`` does not continue its queue
    (fresh episodes after a resume without env state) is flushed as truncated first.
    """

    def __init__(self, n: int, gamma: float) -> None:
        self.n, self.gamma = int(n), float(gamma)
        self.queues: list[list[tuple]] = []  # per sub-env: (obs, action, reward) oldest first
        self.last_next: list[np.ndarray | None] = []

    def push(self, obs, actions, rewards, next_obs, terminated, truncated,
             ) -> tuple[np.ndarray, ...] | None:
        """Record one vector step; the n-step transitions it completes as arrays
        ``(obs, actions, returns, next_obs, terminated, k)``, or None."""
        if self.n == 1:
            return obs, actions, rewards, next_obs, terminated, np.ones(len(actions))
        if not self.queues:
            self.queues = [[] for _ in actions]
            self.last_next = [None] * len(actions)
        out: list[tuple] = []
        for e, queue in enumerate(self.queues):
            if queue and not np.array_equal(self.last_next[e], obs[e]):
                self._flush(queue, self.last_next[e], False, out)
            queue.append((obs[e], actions[e], float(rewards[e])))
            self.last_next[e] = next_obs[e]
            if terminated[e] or truncated[e]:
                self._flush(queue, next_obs[e], bool(terminated[e]), out)
            elif len(queue) == self.n:
                self._emit(queue, next_obs[e], False, out)
        if not out:
            return None
        return tuple(np.array(x) for x in zip(*out))

    def _emit(self, queue: list, next_obs, terminated: bool, out: list) -> None:
        ret = 0.0
        for _, _, r in reversed(queue):
            ret = r + self.gamma * ret
        first_obs, action, _ = queue.pop(0)
        out.append((first_obs, action, ret, next_obs, float(terminated), len(queue) + 1))

    def _flush(self, queue: list, next_obs, terminated: bool, out: list) -> None:
        while queue:
            self._emit(queue, next_obs, terminated, out)

    def state_dict(self) -> dict[str, np.ndarray]:
        if self.n == 1 or not self.queues:
            return {}
        lengths = np.array([len(q) for q in self.queues])
        entries = [x for q in self.queues for x in q]
        state = {"lengths": lengths,
                 "last_next": np.stack([np.asarray(x) for x in self.last_next])}
        if entries:
            state["obs"] = np.stack([x[0] for x in entries])
            state["actions"] = np.array([x[1] for x in entries])
            state["rewards"] = np.array([x[2] for x in entries], np.float64)
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        if "lengths" not in state:
            self.queues, self.last_next = [], []
            return
        self.queues, i = [], 0
        for length in state["lengths"].tolist():
            self.queues.append([(state["obs"][j], state["actions"][j], float(state["rewards"][j]))
                                for j in range(i, i + length)])
            i += length
        self.last_next = list(state["last_next"])
