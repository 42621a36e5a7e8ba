"""A frame-deduplicated uint8 replay for (stacked) image observations, Dopamine's layout.

An 84x84x4 stack stored twice per transition (obs and next obs) as float32 costs 226 KB;
as uint8 56 KB. Here each frame is stored once, uint8, and the stacks are rebuilt at sample
time from the frames before it: about 7.07 KB per transition for 84x84 frames.
"""

from __future__ import annotations

import math

import numpy as np

from agents.replay import draw_prioritized, td_priorities
from rlharness.npz import copy_into


def stacks_from_window(window, k, stack: int):
    """``(s_t, s_{t+k})`` cut from windows of :meth:`FrameReplayBuffer.rows_at`
    (``[B, stack + n, *frame]`` uint8) and ``k`` (``[B]``, 1 to n, any number type): frames
    ``0 .. stack-1`` and ``k .. k+stack-1`` of each row, as tensors (the DQN update cuts them
    in-graph, so the replay gathers each frame once)."""
    import tensorflow as tf

    rows = tf.cast(k, tf.int32)[:, None] + tf.range(stack)[None, :]
    return window[:, :stack], tf.gather(window, rows, axis=1, batch_dims=1)


class FrameReplayBuffer:
    """Replay of one-step transitions of each sub-env, stored as per-sub-env streams of rows.

    Row ``t`` of sub-env ``e`` holds the newest frame of the observation at step ``t``, the
    action, reward and termination of that step. When an episode ends (terminated, truncated,
    or the next observation does not continue the stream, e.g. fresh episodes after a resume
    without env state) one more row holds the newest frame of the true final observation,
    and the next row starts a new episode. A stack of ``stack`` frames is rebuilt from the
    rows before, repeating the episode's first frame where the episode is younger than the
    stack (what ``FrameStackObservation``'s default ``padding_type="reset"`` shows).

    Sampling returns ``n``-step transitions (Sutton 1988), computed at sample time:
    ``(s_t, a_t, Σ_{i<k} γ^i r_{t+i}, s_{t+k}, terminated, k)``, ``k = n`` or fewer where the
    episode ends first (then ``s_{t+k}`` is its final observation), in
    :attr:`FIELDS` order, like :class:`agents.replay.ReplayBuffer`. A row can be sampled once
    its ``n`` next rows (or its episode's end) are written, and until its stack's oldest frame
    is overwritten. ``prioritized``: proportional PER on a :class:`SumTree` over the rows,
    zero for rows that cannot be sampled (same API as
    :class:`agents.replay.PrioritizedReplayBuffer`).

    ``capacity`` transitions are split evenly over the sub-envs (each stream gets
    ``ceil(capacity / n_envs) + n + stack`` rows, so that ``capacity`` transitions can be
    sampled); the arrays are allocated at the first :meth:`push` (or load), whose batch fixes
    ``n_envs``. Observations are ``(stack, *frame_shape)`` if ``stack > 1`` (the
    ``FrameStackObservation`` layout), else ``frame_shape``.
    """

    FIELDS = ("obs", "actions", "rewards", "next_obs", "dones", "n_steps")
    _ROW_FIELDS = ("frames", "actions", "rewards", "terminated", "final", "offset", "k")

    def __init__(self, capacity: int, obs_shape: tuple[int, ...], *, stack: int = 1,
                 n_step: int = 1, gamma: float = 0.99, prioritized: bool = False,
                 alpha: float = 0.6, eps: float = 1e-6) -> None:
        self.capacity, self.stack = int(capacity), int(stack)
        self.obs_shape = tuple(obs_shape)
        self.frame_shape = self.obs_shape[1:] if self.stack > 1 else self.obs_shape
        if self.stack > 1 and self.obs_shape[0] != self.stack:
            raise ValueError(f"observations {self.obs_shape} are not stacks of {stack} frames")
        self.n, self.gamma = int(n_step), float(gamma)
        self.prioritized, self.alpha, self.eps = prioritized, float(alpha), float(eps)
        self.max_priority = 1.0  # of p^alpha
        self._back = np.arange(self.stack - 1, -1, -1)[None, :]  # oldest frame first
        # a window: rows back from t, oldest first, then the n rows after t (negative)
        self._window = np.arange(self.stack - 1, -self.n - 1, -1)[None, :]
        self._ahead = np.arange(self.n)[None, :]
        self._gammas = self.gamma ** np.arange(self.n, dtype=np.float64)[None, :]
        self.n_envs = 0
        self.count = np.zeros(0, np.int64)  # rows ever written, per sub-env
        self.last_next: np.ndarray | None = None  # each sub-env's latest next obs

    # -- storage --------------------------------------------------------------------------
    def _allocate(self, n_envs: int) -> None:
        self.n_envs = int(n_envs)
        self.rows = math.ceil(self.capacity / n_envs) + self.n + self.stack
        shape = (self.n_envs, self.rows)
        self.frames = np.zeros((*shape, *self.frame_shape), np.uint8)
        self.actions = np.zeros(shape, np.int32)
        self.rewards = np.zeros(shape, np.float32)
        self.terminated = np.zeros(shape, np.uint8)  # the step of this row terminated
        self.final = np.zeros(shape, np.uint8)  # a final-observation row, no transition
        self.offset = np.zeros(shape, np.uint8)  # rows since the episode start, <= stack-1
        self.k = np.zeros(shape, np.uint8)  # steps of the row's n-step transition, 0: none
        self.count = np.zeros(self.n_envs, np.int64)
        if self.prioritized:
            from agents.sumtree import SumTree  # numba only for PER

            self.tree = SumTree(self.n_envs * self.rows)

    def __len__(self) -> int:
        """Transitions that can be sampled."""
        return int(np.count_nonzero(self.k)) if self.n_envs else 0

    def nbytes(self) -> int:
        """Bytes of the arrays (the sum tree included)."""
        arrays = [getattr(self, f) for f in self._ROW_FIELDS] if self.n_envs else []
        tree = sum(level.nbytes for level in self.tree.levels) if self.prioritized and \
            self.n_envs else 0
        return sum(a.nbytes for a in arrays) + tree

    def _frame(self, obs: np.ndarray) -> np.ndarray:
        return obs[-1] if self.stack > 1 else obs

    def _write(self, e: int, frame, action=0, reward=0.0, final=False) -> None:
        t = int(self.count[e])
        p = t % self.rows
        if t >= self.rows:  # the oldest row goes; so do the stacks that reach back to it
            gone = (p + np.arange(self.stack)) % self.rows
            self._set_k(e, gone, 0)
        previous = (p - 1) % self.rows
        starts = t == 0 or bool(self.final[e, previous])
        self.frames[e, p] = frame
        self.actions[e, p], self.rewards[e, p] = action, reward
        self.terminated[e, p], self.final[e, p], self.k[e, p] = 0, final, 0
        self.offset[e, p] = 0 if starts else min(int(self.offset[e, previous]) + 1,
                                                 self.stack - 1)
        self.count[e] = t + 1

    def _set_k(self, e: int, pos, k) -> None:
        self.k[e, pos] = k
        if self.prioritized:
            pos = np.atleast_1d(pos)
            k = np.broadcast_to(k, pos.shape)
            self.tree.update(e * self.rows + pos, np.where(k > 0, self.max_priority, 0.0))

    def _complete(self, e: int, episode_end: bool) -> None:
        """Mark the transitions that the row just written completes (all up to ``n`` back
        if it is an episode's final row, else the one ``n`` back)."""
        t = int(self.count[e]) - 1  # the row just written
        oldest = max(t - self.n, int(self.count[e]) - self.rows + self.stack, 0)
        for s in range(t - 1, oldest - 1, -1):
            p = s % self.rows
            if self.final[e, p]:
                break  # the previous episode
            if episode_end or s == t - self.n:
                self._set_k(e, p, t - s)

    def push(self, obs, actions, rewards, next_obs, terminated, truncated) -> None:
        """Record one vector step (one row per sub-env, one more where an episode ended)."""
        obs, next_obs = np.asarray(obs), np.asarray(next_obs)
        if not self.n_envs:
            self._allocate(len(actions))
            self.last_next = np.zeros((self.n_envs, *self.obs_shape), np.uint8)
        for e in range(self.n_envs):
            t = int(self.count[e])
            if t and not self.final[e, (t - 1) % self.rows] \
                    and not np.array_equal(self.last_next[e], obs[e]):
                # the stream breaks (fresh episode): end the old one, bootstrapping
                self._write(e, self._frame(self.last_next[e]), final=True)
                self._complete(e, episode_end=True)
            self._write(e, self._frame(obs[e]), actions[e], rewards[e])
            self._complete(e, episode_end=False)
            if terminated[e] or truncated[e]:
                self.terminated[e, (int(self.count[e]) - 1) % self.rows] = bool(terminated[e])
                self._write(e, self._frame(next_obs[e]), final=True)
                self._complete(e, episode_end=True)
        self.last_next[:] = next_obs

    # -- sampling -------------------------------------------------------------------------
    @property
    def windowed(self) -> bool:
        """Whether a window (see :meth:`rows_at`) is smaller than the two stacks it holds:
        frames are stacked and ``n`` is below the stack size (DQN on Atari: 5 frames, not 8)."""
        return 1 < self.stack and self.n < self.stack

    def sample(self, n: int, rng: np.random.Generator, window: bool = False,
               ) -> tuple[np.ndarray, ...]:
        """``n`` transitions drawn uniformly with replacement, in :attr:`FIELDS` order (with
        ``window``, as :meth:`rows_at` says). The observation arrays are reused by the next
        sample: consume them first (the DQN update copies them into the graph)."""
        return self.rows_at(self._uniform(n, rng), reuse=True, window=window)

    def _uniform(self, n: int, rng: np.random.Generator) -> np.ndarray:
        filled = np.minimum(self.count, self.rows)
        ends = np.cumsum(filled)
        index = np.empty(n, np.int64)
        todo = np.arange(n)
        flat_k = self.k.reshape(-1)
        for attempt in range(1000):  # rejection: a few rows per sub-env cannot be sampled
            draw = rng.integers(0, ends[-1], len(todo))
            if self.n_envs == 1:
                rows = draw
            else:
                e = np.searchsorted(ends, draw, side="right")
                rows = e * self.rows + draw - (ends[e] - filled[e])
            ok = flat_k[rows] > 0
            index[todo[ok]] = rows[ok]
            todo = todo[~ok]
            if not len(todo):
                return index
            if attempt == 9 and not len(self):
                break
        raise ValueError("the replay holds no complete transition yet")

    def rows_at(self, index: np.ndarray, reuse: bool = False, window: bool = False,
                ) -> tuple[np.ndarray, ...]:
        """The transitions at the global row ``index`` (any shape), in :attr:`FIELDS` order.

        ``window``: instead of the stacks of ``s_t`` and ``s_{t+k}``, each transition's
        ``stack + n`` frames ``t-stack+1 .. t+n`` once (``obs``, ``[..., stack + n, *frame]``;
        ``next_obs`` is then empty): ``s_t`` is its first ``stack`` frames, ``s_{t+k}`` the
        ``stack`` from frame ``k`` on (:func:`stacks_from_window`). Frames before the
        episode's start repeat its first, as in a stack; frames past an episode's end are
        unused. ``reuse``: write the frames into one array kept for the next call of the
        same size (a fresh ~0.5 MB array costs page faults: 10x the gather itself). The
        frames are gathered with one ``np.take``: the cost is memory traffic, ~7 KB of random
        reads per 84x84 frame, so a window of 5 frames costs 5/8 of two stacks of 4."""
        shape = np.shape(index)
        index = np.asarray(index, np.int64).reshape(-1)
        pos = index % self.rows
        k = self.k.reshape(-1)[index].astype(np.int64)
        base = index - pos  # sub-env * rows
        ahead = base[:, None] + (pos[:, None] + self._ahead) % self.rows
        returns = (self.rewards.reshape(-1)[ahead] * self._gammas
                   * (self._ahead < k[:, None])).sum(axis=1).astype(np.float32)
        if window:
            back = np.minimum(self._window, self.offset.reshape(-1)[index][:, None])
            frames = base[:, None] + (pos[:, None] - back) % self.rows
            obs_shape = (self.stack + self.n, *self.frame_shape)
            parts = 1
        else:
            next_pos = (pos + k) % self.rows
            both = np.concatenate([pos, next_pos])  # the stacks of s_t and s_{t+k}
            flat_base = np.concatenate([base, base])
            if self.stack == 1:
                frames = flat_base + both
            else:
                back = np.minimum(self._back, self.offset.reshape(-1)[flat_base + both][:, None])
                frames = flat_base[:, None] + (both[:, None] - back) % self.rows
            obs_shape, parts = self.obs_shape, 2
        flat = self.frames.reshape(-1, *self.frame_shape)
        if reuse:
            out = getattr(self, "_out", None)
            if out is None or out.shape != (parts, len(index), *obs_shape):
                out = self._out = np.empty((parts, len(index), *obs_shape), np.uint8)
            # mode="clip": with "raise" (valid indices anyway) numpy buffers ``out`` (a copy)
            np.take(flat, frames.reshape(-1), axis=0, mode="clip",
                    out=out.reshape(-1, *self.frame_shape))
        else:
            out = np.take(flat, frames.reshape(-1), axis=0).reshape(
                parts, len(index), *obs_shape)
        next_obs = out[1] if parts == 2 else np.zeros((len(index), 0), np.uint8)
        last = base + (pos + k - 1) % self.rows
        fields = (out[0], self.actions.reshape(-1)[index].astype(np.int64), returns, next_obs,
                  self.terminated.reshape(-1)[last].astype(np.float32), k.astype(np.float32))
        if len(shape) == 1:
            return fields
        return tuple(x.reshape(*shape, *x.shape[1:]) for x in fields)

    # -- prioritized replay ---------------------------------------------------------------
    def sample_prioritized(self, batch_size: int, rng: np.random.Generator, beta: np.ndarray,
                           window: bool = False,
                           ) -> tuple[np.ndarray, tuple[np.ndarray, ...], np.ndarray]:
        """As :meth:`agents.replay.PrioritizedReplayBuffer.sample_prioritized` (observation
        arrays reused and ``window`` as in :meth:`sample`)."""
        index, weights = draw_prioritized(self.tree, batch_size, rng, beta)
        return index, self.rows_at(index, reuse=True, window=window), weights

    def update_priorities(self, index: np.ndarray, td_errors: np.ndarray) -> None:
        """``p_i = (|δ_i| + eps)^α``; rows that can no longer be sampled stay at 0."""
        index = np.asarray(index).reshape(-1)
        priority = td_priorities(td_errors, self.eps, self.alpha)
        e, pos = np.divmod(index, self.rows)
        self.tree.update(index, np.where(self.k[e, pos] > 0, priority, 0.0))
        self.max_priority = max(self.max_priority, float(priority.max()))

    # -- checkpointing --------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """The arrays themselves (no copies: ``np.savez`` writes them in 16 MiB chunks)."""
        if not self.n_envs:
            return {}
        state = {f: getattr(self, f) for f in self._ROW_FIELDS}
        state.update(count=self.count, last_next=self.last_next)
        if self.prioritized:
            state["priorities"] = self.tree.levels[0][: self.n_envs * self.rows]
            state["max_priority"] = np.array(self.max_priority)
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        if "count" not in state:
            return
        n_envs, rows = state["frames"].shape[:2]
        self._allocate(n_envs)
        if rows != self.rows:
            raise ValueError(f"saved replay has {rows} rows per sub-env, this one {self.rows} "
                             "(another --buffer-size or --n-envs?)")
        for f in self._ROW_FIELDS:  # streamed into the arrays: no second copy of the replay
            copy_into(getattr(self, f), state[f])
        self.count[:] = state["count"]
        self.last_next = np.array(state["last_next"])
        if self.prioritized:
            self.tree.levels[0][:] = 0.0
            copy_into(self.tree.levels[0][: n_envs * rows], state["priorities"])
            self.tree.rebuild()
            self.max_priority = float(state["max_priority"])
