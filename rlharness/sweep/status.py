"""The sweep's console: one status line every ``--status-every`` seconds and one line per
trial that ends, instead of Ray Tune's per-trial tables. Imports Ray (driver only)."""

from __future__ import annotations

import os
import time

from ray import tune

from rlharness.sweep.spec import METRIC
from rlharness.sweep.trial import read_status

ORDER = ("running", "pending", "paused", "done", "stopped", "failed", "unfinished")


class Live:
    """What the driver shares with its callback. Module level, so that the callback Ray
    Tune pickles into its experiment state finds the live object when restored."""

    def __init__(self) -> None:
        self.reset(None)

    def reset(self, spec) -> None:
        self.spec = spec
        self.start = time.monotonic()
        self.last_print = 0.0
        self.best: tuple[float, str] | None = None
        self.stopping = False
        self.running: set[str] = set()
        self.ended: dict[str, str] = {}  # trial name -> done/stopped/failed


LIVE = Live()


def ended_state(trial) -> str:
    """done, stopped (by the scheduler) or failed, for a trial Tune has ended."""
    if trial.status == "ERROR":
        return "failed"
    status = read_status(os.path.join(LIVE.spec.logdir, str(trial)))
    steps = (trial.last_result or {}).get("env_steps", 0)
    if status.get("status") == "done" or steps >= LIVE.spec.total_steps:
        return "done"
    return "unfinished" if LIVE.stopping else "stopped"


def status_line(trials) -> str:
    counts = dict.fromkeys(ORDER, 0)
    for trial in trials:
        if trial.status in ("TERMINATED", "ERROR"):
            state = LIVE.ended.get(str(trial)) or ended_state(trial)
        else:
            state = trial.status.lower()
        counts[state] = counts.get(state, 0) + 1
    parts = [f"{n} {k}" for k, n in counts.items() if n or k in ("running", "done", "failed")]
    best = f" | best {METRIC} {LIVE.best[0]:.4g} ({LIVE.best[1]})" if LIVE.best else ""
    return f"[{time.monotonic() - LIVE.start:6.0f} s] " + " · ".join(parts) + best


class StatusTable(tune.Callback):
    """Prints the status line and one line per ended trial (with a failure's reason)."""

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        LIVE.running.add(str(trial))

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        value = result.get(METRIC)
        if value is not None and (LIVE.best is None or value > LIVE.best[0]):
            LIVE.best = (float(value), str(trial))

    def _ended(self, trial) -> None:
        name = str(trial)
        LIVE.running.discard(name)
        state = LIVE.ended[name] = ended_state(trial)
        if state == "failed":
            reason = read_status(os.path.join(LIVE.spec.logdir, name)).get("reason")
            print(f"  failed  {name}: {reason or 'see ' + str(trial.path)}", flush=True)
            return
        result = trial.last_result or {}
        value = result.get(METRIC)
        shown = f"{METRIC} {value:.4g}" if value is not None else "no evaluation"
        print(f"  {state:7} {name}: {shown} at {result.get('env_steps', 0)} env steps",
              flush=True)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self._ended(trial)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._ended(trial)

    def on_step_end(self, iteration, trials, **info) -> None:
        # what Ctrl-C waits for: PBT's paused trials hold no process, they are not running
        LIVE.running = {str(t) for t in trials if t.status == "RUNNING"}
        now = time.monotonic()
        if now - LIVE.last_print >= LIVE.spec.status_every:
            LIVE.last_print = now
            print(status_line(trials), flush=True)

    def on_experiment_end(self, trials, **info) -> None:
        print(status_line(trials), flush=True)
