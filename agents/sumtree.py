"""A sum tree in numpy with vectorized batch sampling and batch priority updates."""

from __future__ import annotations

import numpy as np

_sum, _cumsum, _max, _min = np.add.reduce, np.add.accumulate, np.maximum.reduce, np.minimum.reduce
_greater = np.greater


class SumTree:
    """Non-negative priorities ``p_0 .. p_{capacity-1}`` and their prefix sums, for sampling
    ``i`` with probability ``p_i / Σ p`` (Schaul et al. 2016, proportional variant).

    The tree is ``fanout``-ary (default 32) under a flat top: level 0 holds the leaves, each
    node of level ``d+1`` the sum of its ``fanout`` children in level ``d``, up to the first
    level of at most ``top`` nodes (default 1024), each level padded with zeros to
    ``fanout`` times the length of the one above. A search takes the prefix sums of that top
    level in one ``np.cumsum`` and descends the levels below in vectorized numpy steps (no
    Python loop over the batch): for a 1M-leaf tree and a minibatch, a cumsum of 977 nodes and
    2 steps; a round's thousands of draws start a level lower (a cumsum of 31,264, 1 step).
    :meth:`update` sets a batch of leaves and recomputes their ancestors from their children
    (never by adding deltas, so sums cannot drift); with repeated indices the last value wins.
    Sums are float64.
    """

    def __init__(self, capacity: int, fanout: int = 32, top: int = 1024) -> None:
        if capacity < 1 or fanout < 2 or top < 1:
            raise ValueError(f"SumTree needs capacity >= 1, fanout >= 2 and top >= 1, got "
                             f"{capacity}, {fanout}, {top}")
        self.capacity, self.fanout = int(capacity), int(fanout)
        sizes = [self.capacity]
        while sizes[-1] > top:
            sizes.append(-(-sizes[-1] // fanout))
        for d in range(len(sizes) - 2, -1, -1):  # pad: every inner node has fanout children
            sizes[d] = sizes[d + 1] * fanout
        self.levels: list[np.ndarray] = [np.zeros(size, np.float64) for size in sizes]
        self._groups = [level.reshape(-1, fanout) for level in self.levels[:-1]]
        self._prefixes: dict[int, np.ndarray] = {}
        # children @ _before: [:, j] = Σ_{k<j} children[:, k] for j < fanout, then 1e300 x the
        # row's sum: above any mass in the row, so the search needs no bounds check
        self._before = np.triu(np.ones((fanout, fanout + 1)), 1)
        self._before[:, fanout] = 1e300
        self._plans: dict[int, tuple[int, np.ndarray]] = {}
        self._strata: dict[tuple[int, int], np.ndarray] = {}

    @property
    def total(self) -> float:
        return float(_sum(self.levels[-1]))

    def __getitem__(self, index) -> np.ndarray:
        return self.levels[0][index]

    def update(self, index: np.ndarray, priority: np.ndarray) -> None:
        """``p[index] = priority`` for a batch of leaves, and their ancestors' sums."""
        node = np.asarray(index, np.int64)
        self.levels[0][node] = priority
        for d in range(1, len(self.levels)):
            node = node // self.fanout
            # np.add.reduce, not a BLAS dot: a row's sum must not depend on how many rows are
            # summed with it, or a resumed run (rebuild) would round differently
            self.levels[d][node] = _sum(self._groups[d - 1].take(node, axis=0), axis=1)

    def _prefix(self, level: int) -> np.ndarray:
        """``[0, s_0, s_0 + s_1, ...]`` over the nodes ``s`` of ``level``; the last is the total."""
        prefix = self._prefixes.get(level)
        if prefix is None:
            prefix = self._prefixes[level] = np.zeros(len(self.levels[level]) + 1)
        _cumsum(self.levels[level], out=prefix[1:])
        return prefix

    def _plan(self, n: int) -> tuple[int, np.ndarray]:
        """For ``n`` draws: the level to start from, the lowest with at most ``max(top, 4n)``
        nodes (a round's thousands of draws skip a descent step for a longer cumsum), and
        ``[0, F+1, 2(F+1), ...]``, the flat offset of each row of ``before`` (cached)."""
        plan = self._plans.get(n)
        if plan is None:
            limit = max(len(self.levels[-1]), 4 * n)
            start = next(d for d, level in enumerate(self.levels) if len(level) <= limit)
            plan = self._plans[n] = (start, np.arange(n) * (self.fanout + 1))
        return plan

    def find(self, mass: np.ndarray, prefix: np.ndarray | None = None) -> np.ndarray:
        """For each ``m`` in ``mass`` (``0 <= m < total``) the leaf ``i`` with
        ``Σ_{j<i} p_j <= m < Σ_{j<=i} p_j``: ``i`` then has probability ``p_i / total`` for a
        uniform ``m``. Rounding can only land on a leaf of non-zero priority. ``prefix``: the
        top level's prefix sums to search from (default: computed now)."""
        mass = np.array(mass, np.float64)
        if prefix is not None:
            return self._find(mass, prefix, len(self.levels) - 1)
        start = self._plan(len(mass))[0]
        return self._find(mass, self._prefix(start), start)

    # Minibatch-sized arrays make numpy's per-call overhead (1-10 µs) the cost, so this counts
    # calls: ufuncs and ndarray methods directly, in place where possible, offsets cached, and
    # on the minibatch path no bounds checks (one check of the leaves at the end instead).
    def _find(self, draws: np.ndarray, prefix: np.ndarray, start: int, exact: bool = False,
              ) -> np.ndarray:
        """:meth:`find` from level ``start`` with its ``prefix``, on float64 ``draws``."""
        fast = len(draws) <= 512 and not exact
        # the node whose prefix range holds the draw: how many inner boundaries are <= it
        node = prefix[1:-1].searchsorted(draws, side="right")
        if not fast and _max(draws) >= prefix[-1]:  # rounding put a draw at the total
            node[draws >= prefix[-1]] = prefix.searchsorted(prefix[-1], side="left") - 1
        mass = draws - prefix.take(node)  # >= 0 exactly: prefix[node] <= draw
        row_start = self._plan(len(mass))[1]
        for d in range(start - 1, -1, -1):
            children = self._groups[d].take(node, axis=0)  # [B, fanout]
            # Exclusive prefix sums of each row's children: for a minibatch a BLAS matmul beats
            # np.cumsum (~6 µs vs ~11); for a round's thousands (and exactly), cumsum.
            if fast:
                before = children @ self._before
            else:
                before = np.zeros((len(mass), self.fanout + 1))
                _cumsum(children, axis=1, out=before[:, 1:])
            # the first child whose inclusive prefix sum exceeds the mass
            child = _greater(before[:, 1:], mass[:, None]).argmax(axis=1)
            if not fast and _max(mass - before[:, -1]) >= 0.0:
                late = mass >= before[:, -1]  # rounding: a mass at the row's sum
                child[late] = (before[late, :-1] < before[late, -1:]).sum(axis=1) - 1
            if d:
                mass -= before.take(row_start + child)
            node *= self.fanout
            node += child
        # An exact cumsum never picks a zero-priority child; a matmul may round two equal
        # prefixes differently, and a draw may round to the total: redo those with cumsums.
        if fast and _min(self.levels[0].take(node)) <= 0.0:
            bad = self.levels[0].take(node) <= 0.0
            node[bad] = self._find(draws[bad], prefix, start, exact=True)
        return node

    def sample(self, batch_size: int, rng: np.random.Generator, n_batches: int = 1,
               ) -> np.ndarray:
        """``[n_batches, batch_size]`` leaves, each minibatch drawn by stratified sampling as in
        the paper: one uniform draw in each of ``batch_size`` equal segments of ``[0, total)``
        (every leaf keeps the marginal probability ``p_i / total`` per draw on average)."""
        start = self._plan(n_batches * batch_size)[0]
        prefix = self._prefix(start)
        key = (n_batches, batch_size)
        strata = self._strata.get(key)
        if strata is None:
            strata = self._strata[key] = np.tile(np.arange(batch_size, dtype=np.float64),
                                                 n_batches)
        mass = rng.random(n_batches * batch_size)
        mass += strata
        mass *= prefix[-1] / batch_size
        return self._find(mass, prefix, start).reshape(n_batches, batch_size)

    def rebuild(self) -> None:
        """Recompute every inner level from the leaves (after a bulk load)."""
        for d in range(1, len(self.levels)):
            sums = _sum(self._groups[d - 1], axis=1)
            self.levels[d][:] = 0.0
            self.levels[d][: len(sums)] = sums
