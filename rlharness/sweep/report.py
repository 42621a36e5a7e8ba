"""A sweep's results: ``results.csv`` (one row per trial) and ``summary.md`` (per configuration
across seeds: mean ± std, interquartile mean with a 95% stratified-bootstrap CI)."""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence

import numpy as np

COLUMNS = ["trial", "seed", "eval/mean_return", "env_steps", "wall_s", "status", "reason"]


def iqm(scores: np.ndarray, axis: int = -1) -> np.ndarray:
    """Interquartile mean: the mean of the middle 50%, ``floor(n/4)`` cut from each end
    (``scipy.stats.trim_mean(x, 0.25)``, as in Agarwal et al. 2021)."""
    scores = np.sort(np.asarray(scores, np.float64), axis=axis)
    n = scores.shape[axis]
    cut = int(0.25 * n)
    return np.take(scores, range(cut, n - cut), axis=axis).mean(axis=axis)


def iqm_ci(scores_by_task: Sequence[Sequence[float]], reps: int = 2000, level: float = 0.95,
           seed: int = 0) -> tuple[float, float, float]:
    """IQM over all runs and its percentile CI by stratified bootstrap: each resample draws
    every task's runs with replacement from that task's own runs (Agarwal et al. 2021).
    A sweep has one task (its env), so this resamples the seeds."""
    rng = np.random.default_rng(seed)
    tasks = [np.asarray(s, np.float64) for s in scores_by_task]
    point = float(iqm(np.concatenate(tasks)))
    draws = np.concatenate(
        [t[rng.integers(0, len(t), (reps, len(t)))] for t in tasks], axis=1)
    stats = iqm(draws, axis=1)
    alpha = (1 - level) / 2
    low, high = np.quantile(stats, [alpha, 1 - alpha])
    return point, float(low), float(high)


def write_csv(path: str, rows: list[dict], swept: list[str]) -> None:
    columns = ["trial", *swept, *[c for c in COLUMNS if c != "trial"]]
    with open(path + ".tmp", "w", newline="") as f:
        writer = csv.DictWriter(f, columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(row.get(k)) for k in columns})
    os.replace(path + ".tmp", path)


def _cell(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.6g}" if isinstance(value, float) else value


def _value(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _fmt(x: float) -> str:
    return f"{x:.1f}" if abs(x) >= 10 else f"{x:.3g}"


def summarize(rows: list[dict], swept: list[str], title: str, metric: str) -> str:
    """``summary.md``: a table of configurations (their finished trials' final ``metric``
    across seeds) and the best configuration by IQM."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(_value(row.get(k)) for k in swept), []).append(row)
    lines = [f"# {title}", ""]
    counts = {s: sum(r["status"] == s for r in rows) for s in ("done", "stopped", "failed")}
    unfinished = len(rows) - sum(counts.values())
    lines.append(f"{len(rows)} trials: {counts['done']} done, {counts['stopped']} stopped "
                 f"early, {counts['failed']} failed, {unfinished} unfinished. Final "
                 f"`{metric}` of the trials that ran to the end; IQM with a 95% "
                 "stratified-bootstrap CI (2000 resamples).")
    lines += ["", "| " + " | ".join([*(swept or ["config"]), "seeds done", "mean ± std",
                                      "IQM [95% CI]"]) + " |",
              "|" + "---|" * (max(len(swept), 1) + 3)]
    best = None
    for key, group in groups.items():
        scores = [r[metric] for r in group if r["status"] == "done" and r.get(metric) is not None]
        cells = list(key) if swept else ["(defaults)"]
        if scores:
            mean, std = float(np.mean(scores)), float(np.std(scores, ddof=1 if len(scores) > 1
                                                                     else 0))
            point, low, high = iqm_ci([scores])
            cells += [f"{len(scores)}/{len(group)}", f"{_fmt(mean)} ± {_fmt(std)}",
                      f"{_fmt(point)} [{_fmt(low)}, {_fmt(high)}]"]
            if best is None or (point, mean) > best[0]:
                best = ((point, mean), key)
        else:
            cells += [f"0/{len(group)}", "-", "-"]
        lines.append("| " + " | ".join(cells) + " |")
    failed = [r for r in rows if r["status"] == "failed"]
    if best is not None:
        described = ", ".join(f"{k}={v}" for k, v in zip(swept, best[1])) or "(defaults)"
        lines += ["", f"Best configuration: **{described}** (IQM {_fmt(best[0][0])}, "
                      f"mean {_fmt(best[0][1])})."]
    if failed:
        lines += ["", "Failed trials:", ""]
        lines += [f"- {r['trial']}: {r.get('reason') or 'unknown reason'}" for r in failed]
    return "\n".join(lines) + "\n"
