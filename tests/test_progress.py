"""Progress output where stderr is not a terminal (CI, nohup, sweeps): plain status lines."""

from __future__ import annotations

import io

from conftest import QUICK, train_dqn

from rlharness.trainer import StatusLines


def test_piped_stderr_gets_status_lines_not_carriage_returns(tmp_path):
    quick = [a for a in QUICK if a != "--no-progress"]
    result = train_dqn("--logdir", str(tmp_path / "run"), "--total-steps", "1200",
                       "--progress-every", "0.05", *quick)
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("env steps ")]
    assert len(lines) >= 3, result.stderr
    assert lines[-1].startswith("env steps 1200/1200 (100%) | "), lines[-1]
    assert " steps/s | episodes=" in lines[-1] and " ret=" in lines[-1] and " lr=" in lines[-1]


def test_status_lines_wait_for_their_interval():
    out = io.StringIO()
    bar = StatusLines(total=100, every=3600.0, file=out)
    for _ in range(100):
        bar.update(1)
    bar.set_postfix(episodes=3, ret="9.5", refresh=False)
    assert out.getvalue() == ""  # nothing before the interval has passed
    bar.close()
    (line,) = out.getvalue().splitlines()
    assert line.startswith("env steps 100/100 (100%) | ") and line.endswith(
        " | episodes=3 ret=9.5")
