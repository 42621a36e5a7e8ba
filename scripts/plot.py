"""Plot learning curves from run directories' event files: mean across seeds, 95% band.

    python scripts/plot.py runs/sweep-dqn-... --out docs/img/cartpole.png
    python scripts/plot.py runs/a runs/b --tag rollout/ep_return --lr --out curves.png

Every directory under the given paths that holds a config.json is a run. Runs with the same
configuration (the same config.json flags except --seed, --logdir and display flags; a flag
added after a run was made counts at its default) form one curve: the mean across their
seeds, with a 95% bootstrap confidence band of that mean (seeds resampled with replacement).
x is env steps. Needs the `plot` extra (matplotlib).

An argument ``LABEL=PATH[,PATH...]`` (globs allowed) names one curve instead: the runs at or
under those paths, which must be one configuration, labelled LABEL (for ablations, where
the differing flags make long labels):

    python scripts/plot.py "decay=runs/lr/*exponential*" "constant=runs/lr/*constant*" --out x.png
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import os
import sys
import warnings
from dataclasses import dataclass, field

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from rlharness import cli  # noqa: E402  (no TensorFlow yet)

#: config.json flags that do not change what a run learns: not part of its configuration.
NOT_CONFIG = {"seed", "logdir", "resume", "no_progress", "progress_every", "checkpoint_every"}


@dataclass
class Group:
    """Runs of one configuration: ``label``, and per run (seed) its curve ``(x, y)``."""

    config: dict
    label: str = ""
    seeds: list[int] = field(default_factory=list)
    curves: list[tuple[list[float], list[float]]] = field(default_factory=list)
    lr: list[tuple[list[float], list[float]]] = field(default_factory=list)


def build_parser() -> argparse.ArgumentParser:
    p = cli.ArgumentParser(prog="plot.py", description=__doc__.splitlines()[0])
    p.add_argument("paths", nargs="+", metavar="RUN_OR_SWEEP_DIR",
                   help="run directories, or directories holding runs (a sweep); or "
                        "LABEL=PATH[,PATH...]: one curve named LABEL")
    p.add_argument("--out", required=True, metavar="FILE.png", help="the image to write")
    p.add_argument("--tag", default="eval/mean_return",
                   help="the TensorBoard scalar on the y axis (default: %(default)s)")
    p.add_argument("--lr", action="store_true",
                   help="also plot train/learning_rate against env steps, below")
    p.add_argument("--title", default=None, help="(default: the algorithm and env)")
    return p


def find_runs(paths: list[str]) -> list[str]:
    """Run directories (holding config.json) at or under ``paths``, sorted."""
    runs = set()
    for path in paths:
        for root, dirs, files in os.walk(path):
            if "config.json" in files:
                runs.add(root)
                dirs.clear()  # a run holds no runs
    return sorted(runs)


def load_groups(run_dirs: list[str], tag: str, lr: bool = False) -> list[Group]:
    """The runs' ``tag`` curves, grouped by configuration; x is env steps (tags on the
    update axis, ``train/*`` and ``time/*``, are mapped to env steps)."""
    from rlharness.logger import read_scalars
    from rlharness.restore import read_run
    from rlharness.trainer import AXES

    groups: dict[str, Group] = {}
    for run_dir in run_dirs:
        run = read_run(run_dir)  # a flag added after a run takes its default: same group
        args = vars(run.args)
        key = {"algo": run.algo, **{k: v for k, v in args.items() if k not in NOT_CONFIG}}
        group = groups.setdefault(json.dumps(key, sort_keys=True), Group(key))
        scalars = read_scalars(run_dir)
        points = dict(scalars.get(tag, []))  # a step logged twice keeps its last value
        if not points:
            continue
        group.seeds.append(args["seed"])
        x = list(points)
        if AXES.get(tag.split("/")[0]) == "updates":
            x = _env_steps(x, scalars)
        group.curves.append((x, list(points.values())))
        if lr and scalars.get("train/learning_rate") and scalars.get("time/env_steps"):
            lrs = scalars["train/learning_rate"]
            steps, values = zip(*lrs[:: max(1, len(lrs) // 500)])
            group.lr.append((_env_steps(steps, scalars), list(values)))
    out = [g for g in groups.values() if g.curves]
    differing = sorted({k for g in out for k in g.config
                        if len({json.dumps(h.config.get(k)) for h in out}) > 1})
    for g in out:
        g.label = ", ".join(f"{k}={_show(g.config.get(k))}" for k in differing) or (
            f"{g.config['algo']} {g.config['env']}")
        g.label += f" ({len(g.curves)} seed{'s' if len(g.curves) > 1 else ''})"
    return out


def _env_steps(updates, scalars) -> list[float]:
    """Global update steps as env steps, by the run's ``time/env_steps`` (logged at the last
    update of each training round)."""
    known = scalars.get("time/env_steps")
    if not known:
        return [float("nan")] * len(updates)
    at, env_steps = zip(*known)
    return np.interp(updates, at, env_steps).tolist()


def _show(value) -> str:
    return " ".join(map(str, value)) if isinstance(value, list) else str(value)


def mean_and_band(curves, reps: int = 1000, seed: int = 0):
    """On the union of the curves' x values (each curve interpolated inside its own range):
    ``x``, the mean across curves, and its 95% bootstrap band (curves resampled)."""
    x = np.unique(np.concatenate([np.asarray(c[0], float) for c in curves]))
    ys = np.array([np.where((x >= c[0][0]) & (x <= c[0][-1]), np.interp(x, c[0], c[1]), np.nan)
                   for c in curves])
    mean = np.nanmean(ys, axis=0)
    idx = np.random.default_rng(seed).integers(0, len(curves), (reps, len(curves)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # columns a resample left empty
        boot = np.nanmean(ys[idx], axis=1)
        low, high = np.nanpercentile(boot, [2.5, 97.5], axis=0)
    return x, mean, low, high


def labelled(args: list[str]) -> list[tuple[str, list[str]]] | None:
    """``LABEL=PATH[,PATH...]`` arguments as (label, run directories); None if every argument
    is a directory (a plain path, whose runs are grouped by configuration)."""
    if all(os.path.isdir(a) for a in args):
        return None
    out = []
    for arg in args:
        label, _, paths = arg.partition("=")
        if not paths:
            cli.fail(f"{arg} is not a directory; pass run or sweep directories, or LABEL=PATH")
        found = [p for pattern in paths.split(",") for p in sorted(glob.glob(pattern))]
        runs = find_runs([p for p in found if os.path.isdir(p)])
        if not runs:
            cli.fail(f"{label}: no run directory (with a config.json) at {paths}")
        out.append((label, runs))
    return out


def load_labelled(curves: list[tuple[str, list[str]]], tag: str, lr: bool = False) -> list[Group]:
    """One group per ``(label, runs)``; the runs of a label must share one configuration."""
    out = []
    for label, runs in curves:
        groups = load_groups(runs, tag, lr)
        if len(groups) > 1:
            cli.fail(f"{label}: its runs are {len(groups)} configurations ("
                     + "; ".join(g.label for g in groups) + "); give one per LABEL=")
        for g in groups:
            g.label = f"{label} ({len(g.curves)} seed{'s' if len(g.curves) > 1 else ''})"
            out.append(g)
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if importlib.util.find_spec("matplotlib") is None:
        cli.fail("plot.py needs matplotlib, which is not installed; pip install -e '.[plot]'")
    curves = labelled(args.paths)
    runs = find_runs(args.paths) if curves is None else [r for _, rs in curves for r in rs]
    if not runs:
        cli.fail(f"no run directory (with a config.json) under {', '.join(args.paths)}")
    if not args.out.lower().endswith(".png"):
        cli.fail(f"--out {args.out} must name a .png file")
    cli.import_tensorflow_quietly()  # the event-file reader
    groups = (load_groups(runs, args.tag, args.lr) if curves is None
              else load_labelled(curves, args.tag, args.lr))
    if not groups:
        from rlharness.logger import read_scalars

        tags = sorted(read_scalars(runs[0]))
        cli.fail(f"no run has the tag {args.tag!r}; {runs[0]} has {', '.join(tags) or 'none'} "
                 "(--tag)")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = 2 if args.lr else 1
    fig, axes = plt.subplots(rows, 1, figsize=(7, 4 + 2.2 * (rows - 1)), sharex=True,
                             squeeze=False, height_ratios=[2, 1][:rows])
    ax = axes[0, 0]
    for i, g in enumerate(groups):
        x, mean, low, high = mean_and_band(g.curves)
        color = f"C{i % 10}"
        ax.plot(x, mean, color=color, label=g.label)
        if len(g.curves) > 1:
            ax.fill_between(x, low, high, color=color, alpha=0.2, linewidth=0)
        if args.lr:
            for j, (lx, ly) in enumerate(g.lr):
                axes[1, 0].plot(lx, ly, color=color, alpha=0.8, linewidth=1,
                                label=g.label if j == 0 else None)
    first = groups[0].config
    ax.set_title(args.title or f"{first['algo']} on {first['env']}: mean over seeds, 95% "
                 "bootstrap CI")
    ax.set_ylabel(args.tag)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    if args.lr:
        axes[1, 0].set_ylabel("train/learning_rate")
        axes[1, 0].set_yscale("log")
        axes[1, 0].grid(alpha=0.3)
    axes[-1, 0].set_xlabel("env steps")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"{args.out}: {args.tag} of {sum(len(g.curves) for g in groups)} runs in "
          f"{len(groups)} configuration(s): " + "; ".join(g.label for g in groups))
    return 0


if __name__ == "__main__":
    sys.exit(main())
