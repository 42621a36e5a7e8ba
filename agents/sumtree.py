"""A sum tree in numpy with vectorized batch sampling and batch priority updates."""

from __future__ import annotations

import numpy as np


class SumTree:
    """Non-negative priorities ``p_0 .. p_{capacity-1}`` and their prefix sums, for sampling
    ``i`` with probability ``p_i / Σ p`` (Schaul et al. 2016, proportional variant).

    The tree is ``fanout``-ary (default 32) under a flat top: level 0 holds the leaves, each
    node of level ``d+1`` the sum of its ``fanout`` children in level ``d``, up to the first
    level of at most ``top`` nodes (default 1024). A search takes the prefix sums of that top
    level in one ``np.cumsum`` and descends the levels below in vectorized numpy steps (no
    Python loop over the batch): for a 1M-leaf tree, a cumsum of 992 nodes and 2 steps.
    :meth:`update` sets a batch of leaves and recomputes their ancestors from their children
    (never by adding deltas, so sums cannot drift); with repeated indices the last value wins.
    Sums are float64.
    """

    def __init__(self, capacity: int, fanout: int = 32, top: int = 1024) -> None:
        if capacity < 1 or fanout < 2 or top < 1:
            raise ValueError(f"SumTree needs capacity >= 1, fanout >= 2 and top >= 1, got "
                             f"{capacity}, {fanout}, {top}")
        self.capacity, self.fanout = int(capacity), int(fanout)
        self.levels: list[np.ndarray] = []
        size = self.capacity
        while size > top:
            padded = -(-size // fanout) * fanout
            self.levels.append(np.zeros(padded, np.float64))
            size = padded // fanout
        self.levels.append(np.zeros(size, np.float64))
        self._groups = [level.reshape(-1, fanout) for level in self.levels[:-1]]
        self._prefix = np.zeros(len(self.levels[-1]) + 1, np.float64)  # exclusive, of the top
        # before[:, j] = Σ_{k<j} children[:, k], and before[:, fanout] = the row's sum
        self._before = np.triu(np.ones((fanout, fanout + 1)), 1)

    @property
    def total(self) -> float:
        return float(self.levels[-1].sum())

    def __getitem__(self, index) -> np.ndarray:
        return self.levels[0][index]

    def update(self, index: np.ndarray, priority: np.ndarray) -> None:
        """``p[index] = priority`` for a batch of leaves, and their ancestors' sums."""
        node = np.asarray(index, np.int64)
        self.levels[0][node] = priority
        for d in range(1, len(self.levels)):
            node = node // self.fanout
            self.levels[d][node] = self._groups[d - 1].take(node, axis=0).sum(axis=1)

    def _top_prefix(self) -> np.ndarray:
        """``[0, s_0, s_0 + s_1, ...]`` over the top level's nodes ``s``; the last is the total."""
        np.cumsum(self.levels[-1], out=self._prefix[1:])
        return self._prefix

    def find(self, mass: np.ndarray, prefix: np.ndarray | None = None) -> np.ndarray:
        """For each ``m`` in ``mass`` (``0 <= m < total``) the leaf ``i`` with
        ``Σ_{j<i} p_j <= m < Σ_{j<=i} p_j``: ``i`` then has probability ``p_i / total`` for a
        uniform ``m``. Rounding can only land on a leaf of non-zero priority."""
        prefix = self._top_prefix() if prefix is None else prefix
        mass = np.array(mass, np.float64)
        node = np.searchsorted(prefix, mass, side="right") - 1
        late = mass >= prefix[-1]
        if late.any():  # rounding put a draw at the total: the last node of non-zero sum
            node[late] = np.searchsorted(prefix, prefix[-1], side="left") - 1
        mass -= prefix[node]  # >= 0 exactly: prefix[node] <= mass
        rows = np.arange(len(mass)) * (self.fanout + 1)
        for d in range(len(self.levels) - 2, -1, -1):
            children = self._groups[d].take(node, axis=0)  # [B, fanout]
            # Exclusive prefix sums of each row's children plus the row's sum: for a minibatch a
            # BLAS matmul beats np.cumsum (~6 µs vs ~11); for a round's thousands, cumsum.
            if len(mass) <= 512:
                before = children @ self._before
            else:
                before = np.zeros((len(mass), self.fanout + 1))
                np.cumsum(children, axis=1, out=before[:, 1:])
            above = before > mass[:, None]
            child = above.argmax(axis=1) - 1  # the last child with before <= mass (before[0] = 0)
            late = child < 0
            if late.any():  # rounding left the mass at the row's sum: its last non-zero child
                child[late] = (before[late, :-1] < before[late, -1:]).sum(axis=1) - 1
            if d:
                mass -= before.ravel().take(rows + child)
            node = node * self.fanout + child
        return node

    def sample(self, batch_size: int, rng: np.random.Generator, n_batches: int = 1,
               ) -> np.ndarray:
        """``[n_batches, batch_size]`` leaves, each minibatch drawn by stratified sampling as in
        the paper: one uniform draw in each of ``batch_size`` equal segments of ``[0, total)``
        (every leaf keeps the marginal probability ``p_i / total`` per draw on average)."""
        prefix = self._top_prefix()
        u = rng.random((n_batches, batch_size))
        u += np.arange(batch_size)
        u *= prefix[-1] / batch_size
        return self.find(u.reshape(-1), prefix).reshape(n_batches, batch_size)

    def rebuild(self) -> None:
        """Recompute every inner level from the leaves (after a bulk load)."""
        for d in range(1, len(self.levels)):
            sums = self._groups[d - 1].sum(axis=1)
            self.levels[d][:] = 0.0
            self.levels[d][: len(sums)] = sums
