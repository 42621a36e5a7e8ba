"""A sum tree in numpy with vectorized batch sampling and batch priority updates."""

from __future__ import annotations

import numpy as np


class SumTree:
    """Non-negative priorities ``p_0 .. p_{capacity-1}`` and their prefix sums, for sampling
    ``i`` with probability ``p_i / Σ p`` (Schaul et al. 2016, proportional variant).

    The tree is ``fanout``-ary (default 32): level 0 holds the leaves, each node of level
    ``d+1`` the sum of its ``fanout`` children in level ``d``, so a 1M-leaf tree has 4 levels
    and a batch walks it in 4 vectorized numpy steps (no Python loop over the batch).
    :meth:`update` sets a batch of leaves and recomputes their ancestors from their children
    (never by adding deltas, so sums cannot drift); with repeated indices the last value wins.
    Sums are float64.
    """

    def __init__(self, capacity: int, fanout: int = 32) -> None:
        if capacity < 1 or fanout < 2:
            raise ValueError(f"SumTree needs capacity >= 1 and fanout >= 2, got {capacity}, "
                             f"{fanout}")
        self.capacity, self.fanout = int(capacity), int(fanout)
        self.levels: list[np.ndarray] = []
        size = self.capacity
        while True:
            padded = -(-size // fanout) * fanout
            self.levels.append(np.zeros(padded, np.float64))
            if padded == fanout:
                break
            size = padded // fanout
        self._groups = [level.reshape(-1, fanout) for level in self.levels]
        self._used = 1  # 1 + the highest leaf ever updated
        self._strict_upper = np.triu(np.ones((fanout, fanout)), 1)

    @property
    def total(self) -> float:
        return float(self.levels[-1].sum())

    def __getitem__(self, index) -> np.ndarray:
        return self.levels[0][index]

    def update(self, index: np.ndarray, priority: np.ndarray) -> None:
        """``p[index] = priority`` for a batch of leaves, and their ancestors' sums."""
        node = np.asarray(index, np.int64)
        self.levels[0][node] = priority
        self._used = max(self._used, int(node.max()) + 1)
        for d in range(1, len(self.levels)):
            node = node // self.fanout
            self.levels[d][node] = self._groups[d - 1][node].sum(axis=1)

    def find(self, mass: np.ndarray) -> np.ndarray:
        """For each ``m`` in ``mass`` (``0 <= m < total``) the leaf ``i`` with
        ``Σ_{j<i} p_j <= m < Σ_{j<=i} p_j``: ``i`` then has probability ``p_i / total`` for a
        uniform ``m``. Rounding can only land on a leaf of non-zero priority."""
        mass = np.array(mass, np.float64)
        top = np.cumsum(self.levels[-1])  # the root's children: one row for the whole batch
        node = np.minimum(np.searchsorted(top, mass, side="right"), self.fanout - 1)
        mass -= top[node] - self.levels[-1][node]
        flat_rows = np.arange(len(mass)) * self.fanout
        for d in range(len(self.levels) - 2, -1, -1):
            children = self._groups[d][node]  # [B, fanout]
            # Exclusive prefix sums of each row's children: for a minibatch a BLAS matmul
            # (~6 µs) beats np.cumsum (~11 µs); for a whole round's thousands of rows, cumsum.
            if len(mass) <= 512:
                before = children @ self._strict_upper
            else:
                before = np.cumsum(children, axis=1) - children
            child = (before <= mass[:, None]).sum(axis=1) - 1  # before[0] = 0 <= mass
            mass -= before.ravel()[flat_rows + child]
            node = node * self.fanout + child
        # Rounding can push a draw past the last leaf in use (onto a zero leaf): step back.
        return np.minimum(node, self._used - 1)

    def sample(self, batch_size: int, rng: np.random.Generator, n_batches: int = 1,
               ) -> np.ndarray:
        """``[n_batches, batch_size]`` leaves, each minibatch drawn by stratified sampling as in
        the paper: one uniform draw in each of ``batch_size`` equal segments of ``[0, total)``
        (every leaf keeps the marginal probability ``p_i / total`` per draw on average)."""
        segment = self.total / batch_size
        u = rng.random((n_batches, batch_size))
        return self.find(((np.arange(batch_size) + u) * segment).reshape(-1)).reshape(
            n_batches, batch_size)

    def rebuild(self) -> None:
        """Recompute every inner level from the leaves (after a bulk load)."""
        nonzero = np.flatnonzero(self.levels[0])
        self._used = int(nonzero[-1]) + 1 if len(nonzero) else 1
        for d in range(1, len(self.levels)):
            sums = self._groups[d - 1].sum(axis=1)
            self.levels[d][:] = 0.0
            self.levels[d][: len(sums)] = sums
