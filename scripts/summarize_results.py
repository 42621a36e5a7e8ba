"""Table of the DQN preset seed runs (scripts/run_dqn_presets.sh) for docs/results.md.

    python scripts/summarize_results.py RUNS_DIR
Final eval/mean_return (20 greedy episodes) of each finished run; mean ± std across seeds
(std with ddof=1), IQM with a 95% bootstrap CI (rlharness.sweep.report.iqm_ci).
"""

from __future__ import annotations

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from rlharness import cli  # noqa: E402

cli.import_tensorflow_quietly()

from rlharness.logger import read_scalars  # noqa: E402
from rlharness.sweep.report import iqm_ci  # noqa: E402

ENVS = ("Acrobot-v1", "MountainCar-v0", "LunarLander-v3")


def main(runs: str) -> None:
    logs = os.path.join(runs, "logs")
    for env in ENVS:
        rows = []
        for seed in range(5):
            name = f"{env}-seed{seed}"
            log = os.path.join(logs, f"{name}.log")
            text = open(log).read() if os.path.exists(log) else ""
            done = re.search(r"eval mean return (-?[\d.]+) .* after (\d+) env steps.*?; "
                             r"([\d.]+) s, (\d+) env steps/s", text)
            if not done:
                state = "running or not started" if not text else "unfinished"
                rows.append((seed, None, state))
                continue
            evals = dict(read_scalars(os.path.join(runs, name)).get("eval/mean_return", []))
            final = evals[int(done.group(2))]
            rows.append((seed, final, f"{float(done.group(3)):.0f} s"))
        scores = [r[1] for r in rows if r[1] is not None]
        print(f"\n{env}: " + ", ".join(
            f"seed {s}: {v:.1f} ({t})" if v is not None else f"seed {s}: {t}" for s, v, t in rows))
        if scores:
            point, low, high = iqm_ci([scores])
            std = np.std(scores, ddof=1) if len(scores) > 1 else 0.0
            print(f"  n={len(scores)} mean {np.mean(scores):.1f} ± {std:.1f}, IQM {point:.1f} "
                  f"[{low:.1f}, {high:.1f}], min {min(scores):.1f}, max {max(scores):.1f}")


if __name__ == "__main__":
    main(sys.argv[1])
