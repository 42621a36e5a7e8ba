"""scripts/plot.py: learning curves from real event files, grouped by configuration."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "scripts"))
import plot  # noqa: E402


def test_png_from_two_tiny_runs(finished_run, uninterrupted, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    sweep = tmp_path / "sweep"  # a sweep-like directory: runs below it, found by config.json
    shutil.copytree(finished_run, sweep / "a")
    shutil.copytree(uninterrupted, sweep / "b")
    out = tmp_path / "img" / "curves.png"
    assert plot.main([str(sweep), "--tag", "rollout/ep_return", "--lr", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    printed = capsys.readouterr().out
    # the runs differ in --total-steps and --checkpoint-every; only the first is configuration
    assert "rollout/ep_return of 2 runs in 2 configuration(s): total_steps=1000 (1 seed); " \
           "total_steps=3000 (1 seed)" in printed, printed
    groups = plot.load_groups(plot.find_runs([str(sweep)]), "train/loss", lr=True)
    assert [len(g.lr[0][0]) > 0 for g in groups] == [True, True]
    x, _ = groups[1].curves[0]
    assert x == sorted(x) and x[0] == 300 and x[-1] == 3000  # updates mapped to env steps


def test_a_flag_missing_from_an_older_config_counts_at_its_default(finished_run, tmp_path):
    sweep = tmp_path / "sweep"
    shutil.copytree(finished_run, sweep / "new")
    shutil.copytree(finished_run, sweep / "old")
    path = sweep / "old" / "config.json"
    config = json.loads(path.read_text())
    del config["args"]["dueling"]  # as if the run predated --dueling
    path.write_text(json.dumps(config))
    groups = plot.load_groups(plot.find_runs([str(sweep)]), "rollout/ep_return")
    assert [len(g.curves) for g in groups] == [2]


def test_mean_and_bootstrap_band():
    curves = [([0, 10, 20], [0.0, 1.0, 2.0]), ([0, 10, 20], [2.0, 3.0, 4.0]),
              ([0, 20], [1.0, 3.0])]  # the last one is interpolated at x=10
    x, mean, low, high = plot.mean_and_band(curves)
    assert x.tolist() == [0, 10, 20]
    np.testing.assert_allclose(mean, [1.0, 2.0, 3.0])
    assert np.all(low <= mean) and np.all(mean <= high) and np.all(low < high)
    assert np.all(low >= [0.0, 1.0, 2.0]) and np.all(high <= [2.0, 3.0, 4.0])


def test_refusals_in_one_line(tmp_path):
    code = ("import runpy, sys; sys.modules['matplotlib'] = None; "
            f"sys.argv = ['plot.py', {str(tmp_path)!r}, '--out', 'x.png']; "
            f"runpy.run_path({os.path.join(ROOT, 'scripts', 'plot.py')!r}, run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == ("plot.py: error: plot.py needs matplotlib, which is not "
                                     "installed; pip install -e '.[plot]'")
    with pytest.raises(SystemExit) as stop:
        plot.main([str(tmp_path), "--out", str(tmp_path / "x.png")])
    assert stop.value.code == 2 and not (tmp_path / "x.png").exists()


def test_labelled_curves_and_the_ablation_table(finished_run, uninterrupted, tmp_path, capsys):
    """LABEL=PATH[,PATH...] names one curve (and one row of scripts/ablation_table.py); a
    label whose runs are two configurations is refused in one line."""
    import ablation_table

    sweep = tmp_path / "sweep"
    shutil.copytree(finished_run, sweep / "0000_a_seed=0")
    shutil.copytree(uninterrupted, sweep / "0001_b_seed=0")
    curves = plot.labelled([f"short={sweep}/*_a_*", f"long={sweep}/0001_b_seed=0"])
    assert [(label, len(runs)) for label, runs in curves] == [("short", 1), ("long", 1)]
    groups = plot.load_labelled(curves, "rollout/ep_return")
    assert [g.label for g in groups] == ["short (1 seed)", "long (1 seed)"]
    with pytest.raises(SystemExit) as stop:
        plot.load_labelled(plot.labelled([f"both={sweep}"]), "rollout/ep_return")
    assert stop.value.code == 2
    assert "both: its runs are 2 configurations" in capsys.readouterr().err
    assert ablation_table.main([f"short={sweep}/*_a_*"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[2].startswith("| short | 0: ") and rows[2].endswith(" | n/a |"), rows
