"""Plot a TensorBoard tag of run directories as learning curves, one panel per group.

    python scripts/plot_curves.py --out curves.png CartPole-v1=runs/ppo-cp-s* Pendulum-v1=runs/p-*

Each ``TITLE=RUN_DIR...`` argument (shell globs expanded) is one panel: every run's curve of
``--tag`` (default ``eval/mean_return``) thin, and their mean thick where all runs have a
point. Needs the ``plot`` extra (matplotlib).
"""

from __future__ import annotations

import argparse
import glob
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rlharness import cli  # noqa: E402  (no TF)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = cli.ArgumentParser(prog="plot_curves.py", description=__doc__.splitlines()[0])
    p.add_argument("groups", nargs="+", metavar="TITLE=RUN_DIR...",
                   help="a panel: its title, '=', then run directories (globs allowed, "
                        "separated by commas or given as more arguments of the same title)")
    p.add_argument("--tag", default="eval/mean_return", help="(default: %(default)s)")
    p.add_argument("--out", required=True, help="image file to write (.png, .svg, ...)")
    args = p.parse_args(argv)
    panels: dict[str, list[str]] = {}
    for group in args.groups:
        title, sep, dirs = group.partition("=")
        if not sep or not dirs:
            cli.fail(f"{group!r} is not TITLE=RUN_DIR...", p.prog)
        found = sorted(d for pattern in dirs.split(",") for d in glob.glob(pattern)
                       if os.path.isdir(d))
        if not found:
            cli.fail(f"{group!r}: no run directory matches", p.prog)
        panels.setdefault(title, []).extend(found)
    args.panels = panels
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from rlharness.logger import read_scalars

    fig, axes = plt.subplots(1, len(args.panels), figsize=(4.5 * len(args.panels), 3.4),
                             squeeze=False)
    for ax, (title, dirs) in zip(axes[0], args.panels.items()):
        curves = [read_scalars(d).get(args.tag, []) for d in dirs]
        for points in curves:
            if points:
                ax.plot(*zip(*points), lw=0.8, alpha=0.45)
        common = sorted(set.intersection(*(set(s for s, _ in c) for c in curves if c)))
        if common:
            means = [np.mean([dict(c)[s] for c in curves if c]) for s in common]
            ax.plot(common, means, lw=2.2, color="black", label=f"mean of {len(dirs)} runs")
            ax.legend(loc="lower right", fontsize=8)
        ax.set_title(title)
        ax.set_xlabel("env steps")
        ax.set_ylabel(args.tag)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
