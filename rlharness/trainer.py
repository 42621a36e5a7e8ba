"""The training loop: env steps, training rounds, evaluation, logging."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import warnings
from collections import deque

import numpy as np
from tqdm.auto import tqdm

from envs import (
    final_observations,
    finished_episodes,
    get_env_state,
    set_env_state,
    supports_exact_state,
    sync_normalization,
)
from rlharness import faults
from rlharness.agent import Agent
from rlharness.checkpoint import Checkpointer
from rlharness.controller import DecayController
from rlharness.logger import RunWriter, truncate_events
from rlharness.step import GlobalStep

#: TensorBoard step axis of each tag group.
AXES = {"train": "updates", "time": "updates", "rollout": "env_steps", "eval": "env_steps"}


class Trainer:
    """Runs ``agent`` in the vector env ``env`` for ``total_steps`` env steps.

    Owns the run's :class:`GlobalStep`, the :class:`DecayController` that drives the
    agent's optimizer lr on ``lr_clock``, and the :class:`RunWriter`. Logging axes:
    ``train/*`` and ``time/*`` on the global update step (``train/learning_rate`` at
    every update), ``rollout/*`` and ``eval/*`` on env steps. Greedy evaluation runs
    ``eval_episodes`` episodes in ``eval_env`` every ``eval_freq`` env steps (0: only at
    the end) and at the end of training. Progress: a tqdm bar on a terminal, else (CI,
    ``nohup``, sweeps) a :class:`StatusLines` line every ``progress_every`` seconds.
    """

    def __init__(
        self,
        agent: Agent,
        env,
        *,
        total_steps: int,
        log_dir: str,
        lr_clock: str = "updates",
        eval_env=None,
        eval_freq: int = 0,
        eval_episodes: int = 10,
        seed: int = 0,
        progress: bool = True,
        progress_every: float = 10.0,
        checkpoint_every: int = 0,
        global_step: GlobalStep | None = None,
    ) -> None:
        self.agent, self.env, self.eval_env = agent, env, eval_env
        self.total_steps, self.seed = total_steps, seed
        self.eval_freq, self.eval_episodes = eval_freq, eval_episodes
        self.global_step = global_step if global_step is not None else GlobalStep()
        agent.bind(self.global_step, total_steps)
        self.controller = DecayController(agent.optimizer, None, self.global_step, lr_clock)
        os.makedirs(log_dir, exist_ok=True)
        self.writer = RunWriter(log_dir)
        self.log_dir = log_dir
        self.progress, self.progress_every = progress, progress_every
        self.recent_returns: deque[float] = deque(maxlen=100)
        self.last_eval: float | None = None
        self.last_lr: float | None = None
        self.obs: np.ndarray | None = None
        self.checkpoint_every = checkpoint_every
        self.checkpointer = Checkpointer(
            os.path.join(log_dir, "checkpoints"),
            {"global_step": self.global_step, **agent.checkpoint_objects()},
        )
        self._interrupted = False

    def train(self) -> dict[str, float]:
        """Run until ``total_steps`` env steps (or Ctrl-C); return a summary."""
        step = self.global_step
        if self.obs is None:
            self.obs, _ = self.env.reset(seed=self.seed)
        start_time, start_steps = time.perf_counter(), step.env_steps
        if self.progress and not sys.stderr.isatty():
            bar = StatusLines(self.total_steps, step.env_steps, self.progress_every)
        else:
            bar = tqdm(total=self.total_steps, initial=step.env_steps, unit="step",
                       disable=not self.progress, dynamic_ncols=True)
        in_main_thread = threading.current_thread() is threading.main_thread()
        if in_main_thread:
            previous_handler = signal.signal(signal.SIGINT, self._on_sigint)
        try:
            self._loop(bar, start_time, start_steps)
        finally:
            if in_main_thread:
                signal.signal(signal.SIGINT, previous_handler)
            bar.close()
        if not self._interrupted:
            self.evaluate()
        self.save_checkpoint()
        elapsed = time.perf_counter() - start_time
        return {
            "eval/mean_return": self.last_eval,
            "env_steps": step.env_steps,
            "updates": step.updates,
            "episodes": step.episodes,
            "seconds": elapsed,
            "sps": (step.env_steps - start_steps) / max(elapsed, 1e-9),
            "interrupted": self._interrupted,
            "checkpoint": self.checkpointer.latest,
        }

    def _on_sigint(self, signum, frame) -> None:
        self._interrupted = True  # acted on between two env steps, where the state is whole

    def _loop(self, bar, start_time: float, start_steps: int) -> None:
        env, agent, step = self.env, self.agent, self.global_step
        n_envs = env.num_envs
        while step.env_steps < self.total_steps and not self._interrupted:
            actions = agent.act(self.obs)
            next_obs, rewards, terminated, truncated, infos = env.step(actions)
            real_next = final_observations(next_obs, infos, terminated | truncated)
            step.env_steps += n_envs
            agent.observe(self.obs, actions, rewards, real_next, terminated, truncated)
            self.obs = next_obs
            faults.point("env_step")
            for i, (ep_return, ep_length) in enumerate(finished_episodes(infos)):
                self._log_episode(ep_return, ep_length, step.env_steps - n_envs + 1 + i, bar)
            if (step.env_steps >= agent.learning_starts
                    and (step.env_steps // n_envs) % agent.train_freq == 0):
                self._train_round(start_time, start_steps)
            before_end = step.env_steps < self.total_steps
            if self.eval_freq and step.env_steps % self.eval_freq < n_envs and before_end:
                self.evaluate()
            if self.checkpoint_every and step.env_steps % self.checkpoint_every < n_envs \
                    and before_end:
                self.save_checkpoint()
            bar.update(n_envs)

    # -- checkpoints ----------------------------------------------------------------------
    def save_checkpoint(self) -> str:
        """Flush the event files, then save a checkpoint numbered by env steps."""
        self.writer.flush()
        latest = self.checkpointer.latest
        if latest and latest.endswith(f"ckpt-{self.global_step.env_steps}"):
            return latest
        arrays = {f"agent/{k}": v for k, v in self.agent.numpy_state().items()}
        if supports_exact_state(self.env):
            arrays.update({f"env/{k}": v for k, v in get_env_state(self.env).items()})
        arrays["trainer/obs"] = self.obs
        arrays["trainer/recent_returns"] = np.array(self.recent_returns, np.float64)
        arrays["trainer/last_eval"] = np.array(np.nan if self.last_eval is None else self.last_eval)
        return self.checkpointer.save(self.global_step.env_steps, arrays)

    def restore(self) -> str:
        """Continue from the latest checkpoint in ``log_dir``: weights, optimizer, global
        step, agent and env state; event points logged after it are dropped."""
        path, arrays = self.checkpointer.restore()

        def part(prefix: str) -> dict[str, np.ndarray]:
            return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}

        self.agent.load_numpy_state(part("agent/"))
        env_state = part("env/")
        self.obs = arrays["trainer/obs"]
        if env_state:
            set_env_state(self.env, env_state)
        else:
            warnings.warn(f"{self.env} keeps state that cannot be saved; resuming with "
                          "freshly reset episodes", stacklevel=2)
            self.obs, _ = self.env.reset(seed=self.seed + self.global_step.env_steps)
        self.recent_returns.extend(arrays["trainer/recent_returns"].tolist())
        last_eval = float(arrays["trainer/last_eval"])
        self.last_eval = None if np.isnan(last_eval) else last_eval
        limits = {"updates": self.global_step.updates - 1, "env_steps": self.global_step.env_steps}
        truncate_events(self.log_dir, {group: limits[axis] for group, axis in AXES.items()})
        return path

    def _log_episode(self, ep_return: float, ep_length: int, at: int, bar) -> None:
        self.global_step.episodes += 1
        self.recent_returns.append(ep_return)
        self.writer.scalar("rollout/ep_return", ep_return, at)
        self.writer.scalar("rollout/ep_length", ep_length, at)
        for name, value in self.agent.rollout_metrics().items():
            self.writer.scalar(f"rollout/{name}", value, at)
        for tag, hyper in self.agent.scheduled().items():
            if tag.startswith("rollout/"):
                self.writer.scalar(tag, hyper.value(self.global_step), at)
        lr = {} if self.last_lr is None else {"lr": f"{self.last_lr:.3g}"}
        bar.set_postfix(episodes=self.global_step.episodes,
                        ret=f"{np.mean(self.recent_returns):.1f}", **lr, refresh=False)

    def _train_round(self, start_time: float, start_steps: int) -> None:
        step, writer = self.global_step, self.writer
        first = step.updates
        self.controller.before_update()
        metrics = self.agent.update()
        faults.point("train_round")
        n = self.controller.after_update()
        if n == 0:
            return
        learning_rates = self.controller.learning_rates(first, n)
        writer.scalars("train/learning_rate", learning_rates, range(first, first + n))
        self.last_lr = float(learning_rates[-1])  # shown by the progress bar
        for tag, hyper in self.agent.scheduled().items():
            if tag.startswith("train/"):
                writer.scalars(tag, hyper.per_update(step, first, n), range(first, first + n))
        last = step.updates - 1
        for name, value in metrics.items():
            if not np.isfinite(value):
                raise FloatingPointError(f"train/{name} is {value} at update {last}")
            writer.scalar(f"train/{name}", value, last)
        sps = (step.env_steps - start_steps) / max(time.perf_counter() - start_time, 1e-9)
        writer.scalar("time/sps", sps, last)
        writer.scalar("time/env_steps", step.env_steps, last)
        writer.maybe_flush()

    def evaluate(self) -> float | None:
        """Mean return of ``eval_episodes`` greedy episodes, logged as eval/mean_return."""
        if self.eval_env is None or self.eval_episodes <= 0:
            return None
        sync_normalization(self.env, self.eval_env)  # the training statistics, frozen
        returns = greedy_returns(self.agent, self.eval_env, self.eval_episodes,
                                 evaluation_seed(self.seed, self.global_step.env_steps))
        self.last_eval = float(np.mean(returns))
        self.writer.scalar("eval/mean_return", self.last_eval, self.global_step.env_steps)
        self.writer.flush()
        return self.last_eval


def evaluation_seed(seed: int, env_steps: int) -> int:
    """The env seed of the Trainer's greedy evaluation after ``env_steps`` in a run of
    ``seed``: ``seed + 10000 + env_steps`` (``scripts/evaluate.py --seed run`` reuses it)."""
    return seed + 10_000 + env_steps


def greedy_returns(agent: Agent, env, episodes: int, seed: int) -> list[float]:
    """Returns of the first ``episodes`` greedy episodes in the vector env ``env``, reset
    with ``seed`` (its sub-envs then reset themselves, continuing their seeded streams)."""
    returns: list[float] = []
    obs, _ = env.reset(seed=seed)
    while len(returns) < episodes:
        obs, _, _, _, infos = env.step(agent.act(obs, explore=False))
        returns.extend(r for r, _ in finished_episodes(infos))
    return returns[:episodes]


class StatusLines:
    """The progress bar where stderr is not a terminal: a plain line every ``every``
    seconds and one at the end, instead of tqdm's carriage-return frames, e.g.
    ``env steps 12000/50000 (24%) | 480 steps/s | episodes=61 ret=87.3 lr=0.00148``
    (``ret``: mean return of the last 100 episodes; ``lr``: that of the last update).
    Speaks the part of tqdm's interface the Trainer uses."""

    def __init__(self, total: int, initial: int = 0, every: float = 10.0, file=None) -> None:
        self.total, self.n, self.start_n, self.every = total, initial, initial, every
        self.file = file if file is not None else sys.stderr
        self.start = self.last = time.monotonic()
        self.postfix: dict[str, object] = {}

    def update(self, n: int = 1) -> None:
        self.n += n
        if time.monotonic() - self.last >= self.every:
            self.print()

    def set_postfix(self, refresh: bool = False, **values) -> None:
        self.postfix.update(values)

    def print(self) -> None:
        self.last = now = time.monotonic()
        rate = (self.n - self.start_n) / max(now - self.start, 1e-9)
        parts = [f"env steps {self.n}/{self.total} ({100 * self.n / self.total:.0f}%)",
                 f"{rate:.0f} steps/s"]
        if self.postfix:
            parts.append(" ".join(f"{k}={v}" for k, v in self.postfix.items()))
        print(" | ".join(parts), file=self.file, flush=True)

    def close(self) -> None:
        self.print()
