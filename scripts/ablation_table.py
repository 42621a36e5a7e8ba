"""Markdown table of an ablation: per labelled configuration, every seed's final greedy
evaluation, mean ± std, IQM [95% CI], the mean of all its evaluations, and wall times.

    python scripts/ablation_table.py "preset=runs/lr-a/*exponential*" "constant 1.2e-4=runs/lr-b"

Each argument is ``LABEL=PATH[,PATH...]`` (globs allowed; the syntax of scripts/plot.py); every
run directory (holding a config.json) at or under the paths is one seed of that row. The final
evaluation is ``eval/mean_return`` at the run's last env step; "all evals" is the mean of every
``eval/mean_return`` point of the run (every ``--eval-freq`` env steps and the final one: a
crude area under the learning curve), averaged over seeds. Wall time: ``sweep_status.json``'s
seconds (sweep trials only); a sweep trial whose status is not done is named and not counted.
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

from rlharness import cli  # noqa: E402


def _row(label: str, runs: list[str]) -> str:
    from rlharness.logger import read_scalars
    from rlharness.sweep.report import iqm_ci

    seeds, cells_note = [], []
    for run in runs:
        with open(os.path.join(run, "config.json")) as f:
            seed = json.load(f)["args"]["seed"]
        evals = read_scalars(run).get("eval/mean_return", [])
        status = os.path.join(run, "sweep_status.json")
        wall = None
        if os.path.exists(status):
            with open(status) as f:
                state = json.load(f)
            if state.get("status") != "done":  # running, failed or interrupted: not counted
                cells_note.append(f"seed {seed} {state.get('status')}")
                continue
            wall = state.get("seconds")
        seeds.append((seed, evals, wall))
    seeds.sort(key=lambda s: s[0])
    finals = [e[-1][1] for _, e, _ in seeds if e]
    cells = [label, " / ".join([f"{s}: {e[-1][1]:.1f}" if e else f"{s}: n/a"
                                for s, e, _ in seeds] + cells_note)]
    if finals:
        point, low, high = iqm_ci([finals])
        std = f"{np.std(finals, ddof=1):.1f}" if len(finals) > 1 else "n/a"
        cells += [f"{np.mean(finals):.1f} ± {std}", f"{point:.1f} [{low:.1f}, {high:.1f}]",
                  f"{np.mean([np.mean([v for _, v in e]) for _, e, _ in seeds if e]):.1f}"]
    else:
        cells += ["-", "-", "-"]
    walls = [w for *_, w in seeds if w is not None]
    cells.append(f"{min(walls):.0f}–{max(walls):.0f}" if walls else "n/a")
    numbers = [c.replace("-", "−") for c in cells[1:]]  # typographic minus, as in the docs
    return "| " + " | ".join([cells[0], *numbers]) + " |"


def main(argv: list[str] | None = None) -> int:
    from plot import labelled

    argv = sys.argv[1:] if argv is None else argv
    rows = labelled(argv) if argv else None
    if not rows:
        cli.fail("give one or more LABEL=PATH[,PATH...] (run or sweep directories, globs allowed)")
    cli.import_tensorflow_quietly()  # the event-file reader
    print("| configuration | final eval per seed (seed: return) | mean ± std | IQM [95% CI] "
          "| mean of all evals | wall time (s) |")
    print("|---|---|---|---|---|---|")
    for label, runs in rows:
        print(_row(label, runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
