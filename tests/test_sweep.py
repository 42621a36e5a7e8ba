"""scripts/sweep.py on a real local Ray (2 CPUs), real TensorFlow trials on Chain-v0, real
event files read back: grid x seeds, kill -9 and --resume, PBT exploits, Optuna + ASHA, and
bad flags."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import ROOT

pytest.importorskip("ray.tune", reason="the sweep extra: pip install -e '.[sweep]'")

from rlharness import read_scalars  # noqa: E402
from rlharness.sweep import report, spec  # noqa: E402
from rlharness.sweep.trial import checkpoint_steps, read_exploits, read_status  # noqa: E402

SWEEP = os.path.join(ROOT, "scripts", "sweep.py")
#: Tiny DQN runs on Chain-v0: an update round of 4 gradient steps every 50 env steps from
#: step 100, lr = lr0 * 0.3 ** (update / 50).
CHAIN = ["--env", "Chain-v0", "--hidden-sizes", "32", "32", "--batch-size", "32",
         "--learning-starts", "100", "--train-freq", "50", "--gradient-steps", "4",
         "--eval-freq", "200", "--eval-episodes", "5", "--checkpoint-every", "200",
         "--lr-schedule", "exponential", "--decay-steps", "50", "--update-mode", "tf_function",
         "--no-jit-compile"]


def sweep_cmd(*args):
    return [sys.executable, SWEEP, *args]


def run_sweep(*args, timeout=420):
    return subprocess.run(sweep_cmd(*args), capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout)


def rows_of(logdir):
    with open(os.path.join(logdir, "results.csv")) as f:
        return list(csv.DictReader(f))


def trial_dirs(logdir):
    return sorted(os.path.join(logdir, d) for d in os.listdir(logdir)
                  if os.path.exists(os.path.join(logdir, d, "sweep_status.json")))


def n_updates(total, start=100, every=50, grads=4):
    return grads * len(range(start, total + 1, every))


def expected_lr(lr0, updates):
    return lr0 * 0.3 ** (np.asarray(updates, np.float64) / 50)


def assert_one_curve(points):
    for tag, series in points.items():
        steps = [s for s, _ in series]
        assert steps == sorted(set(steps)), f"{tag}: a step is logged twice or out of order"


def hparams_of(run_dir):
    """The HParams session start info TensorBoard reads from ``run_dir/hparams``."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams import metadata

    for path in sorted(os.listdir(os.path.join(run_dir, "hparams"))):
        for event in EventFileLoader(os.path.join(run_dir, "hparams", path)).Load():
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == metadata.PLUGIN_NAME and \
                        value.tag == metadata.SESSION_START_INFO_TAG:
                    info = metadata.parse_session_start_info_plugin_data(
                        value.metadata.plugin_data.content)
                    return {k: float(v.number_value) if v.HasField("number_value")
                            else v.string_value for k, v in info.hparams.items()}
    return None


def test_grid_x_seeds_killed_with_kill_9_then_ctrl_c_then_resumed(tmp_path):
    logdir, total = str(tmp_path / "sweep"), 1000
    proc = subprocess.Popen(
        sweep_cmd("dqn", "--seeds", "2", "--grid", "lr=1e-3,1e30", "--num-cpus", "2",
                  "--logdir", logdir, "--", "--total-steps", str(total), *CHAIN),
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline, killed_at = time.monotonic() + 300, None
    while killed_at is None:  # kill -9 once a trial is past a checkpoint, mid-run
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no trial reached a checkpoint"
        for run_dir in trial_dirs(logdir) if os.path.isdir(logdir) else []:
            steps = checkpoint_steps(run_dir)
            if steps and steps < total and read_status(run_dir).get("status") == "running":
                proc.send_signal(signal.SIGKILL)
                killed_at = {d: checkpoint_steps(d) for d in trial_dirs(logdir)}
                break
        time.sleep(0.02)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL

    # Ctrl-C in the resumed sweep, once a trial runs again: every running trial saves a
    # checkpoint, the sweep says how to continue and exits 130.
    proc = subprocess.Popen(sweep_cmd("--resume", "--logdir", logdir), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not any(len(read_status(d).get("segments", [])) == 2 and
                  read_status(d).get("status") == "running" for d in trial_dirs(logdir)):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no trial resumed"
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 130, out + err
    assert "interrupted; continue with: python scripts/sweep.py --resume" in out
    interrupted = [d for d in trial_dirs(logdir) if read_status(d)["status"] == "interrupted"]
    assert interrupted, [read_status(d) for d in trial_dirs(logdir)]
    for run_dir in interrupted:  # saved where it stopped, beyond where the kill had left it
        assert checkpoint_steps(run_dir) >= (killed_at.get(run_dir) or 0)

    resumed = run_sweep("--resume", "--logdir", logdir)
    assert resumed.returncode == 1, resumed.stdout + resumed.stderr  # 1: a trial failed
    assert "Best configuration" in resumed.stdout and "Traceback" not in resumed.stdout

    rows = rows_of(logdir)
    failed = [r for r in rows if r["lr"] == "1e30"]  # lr 1e30: the loss is NaN at once
    assert [r["status"] for r in failed] == ["failed", "failed"]
    assert all("train/loss is nan at update" in r["reason"] for r in failed)
    for r in failed:  # the one-line reason was printed while the others went on
        assert f"failed  {r['trial']}: stopped: train/loss is nan" in resumed.stdout
    rows = [r for r in rows if r not in failed]
    assert len(rows) == 2 and {r["status"] for r in rows} == {"done"}
    assert sorted((r["lr"], r["seed"]) for r in rows) == [("1e-3", "0"), ("1e-3", "1")]
    assert all(int(r["env_steps"]) == total for r in rows)
    summary = open(os.path.join(logdir, "summary.md")).read()
    assert "| 1e-3 | 2/2 |" in summary
    assert "| 1e30 | 0/2 | - | - |" in summary and "Failed trials:" in summary
    assert "IQM" in summary and "Best configuration: **lr=" in summary

    assert any(killed_at.values())
    for run_dir in trial_dirs(logdir):
        if "1e30" in run_dir:
            continue
        config = json.load(open(os.path.join(run_dir, "config.json")))["args"]
        segments = read_status(run_dir)["segments"]
        if killed_at.get(run_dir):  # it had a checkpoint: resumed there, not rerun from 0
            assert len(segments) >= 2 and segments[1] >= killed_at[run_dir], segments
        assert segments == sorted(segments), segments  # each life went on from the last
        points = read_scalars(run_dir)
        assert_one_curve(points)
        lr = points["train/learning_rate"]
        assert [s for s, _ in lr] == list(range(n_updates(total)))
        np.testing.assert_allclose([v for _, v in lr], expected_lr(config["lr"], range(len(lr))),
                                   rtol=1e-6)
        assert [s for s, _ in points["eval/mean_return"]] == list(range(200, total + 1, 200))
        assert hparams_of(run_dir) == {"lr": config["lr"], "seed": config["seed"]}


def test_pbt_exploits_keep_one_lr_curve_and_a_readable_record(tmp_path):
    logdir, total = str(tmp_path / "pbt"), 400
    result = run_sweep("dqn", "--sample", "lr=loguniform:1e-4:1e-2", "--num-samples", "2",
                       "--scheduler", "pbt", "--pbt-interval", "200", "--num-cpus", "2",
                       "--logdir", logdir, "--", "--total-steps", str(total), *CHAIN)
    assert result.returncode == 0, result.stdout + result.stderr
    names = [os.path.basename(d) for d in trial_dirs(logdir)]
    exploited = 0
    for run_dir in trial_dirs(logdir):
        exploits = read_exploits(run_dir)
        exploited += len(exploits)
        points = read_scalars(run_dir)
        assert_one_curve(points)
        lr = points["train/learning_rate"]
        assert [s for s, _ in lr] == list(range(n_updates(total)))  # no reset, no gap here
        # the lr follows each segment's flags: the initial lr, then each exploit's new one
        initial = exploits[0]["old"]["lr"] if exploits else json.load(
            open(os.path.join(run_dir, "config.json")))["args"]["lr"]
        bounds = [0] + [e["updates"] for e in exploits] + [len(lr)]
        lrs = [initial] + [e["new"]["lr"] for e in exploits]
        for (a, b), lr0 in zip(zip(bounds, bounds[1:]), lrs):
            np.testing.assert_allclose([v for _, v in lr[a:b]], expected_lr(lr0, range(a, b)),
                                       rtol=1e-6)
        for e in exploits:
            assert e["from_trial"] in names and e["from_trial"] != os.path.basename(run_dir)
            assert e["env_steps"] % 200 == 0 and e["old"]["lr"] != e["new"]["lr"]
            assert 1e-4 <= e["new"]["lr"] <= 1e-2
        if exploits:
            saved = json.load(open(os.path.join(run_dir, "config.json")))["args"]
            assert saved["lr"] == exploits[-1]["new"]["lr"]
    assert exploited >= 1  # synchronous PBT: the bottom trial is replaced at every interval
    assert {r["status"] for r in rows_of(logdir)} == {"done"}


def test_optuna_search_with_asha_stopping_a_trial(tmp_path):
    logdir, total = str(tmp_path / "asha"), 1800
    result = run_sweep("dqn", "--sample", "lr=loguniform:1e-7:1e-2", "--num-samples", "4",
                       "--search", "optuna", "--scheduler", "asha", "--num-cpus", "2",
                       "--logdir", logdir, "--", "--total-steps", str(total), *CHAIN)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = rows_of(logdir)
    lrs = [float(r["lr"]) for r in rows]
    assert len(rows) == 4 and len(set(lrs)) == 4 and all(1e-7 <= x <= 1e-2 for x in lrs)
    assert any(f.startswith("searcher-state") for f in os.listdir(os.path.join(logdir, "tune")))
    stopped = [r for r in rows if r["status"] == "stopped"]
    assert stopped, rows
    assert all(int(r["env_steps"]) < total for r in stopped)
    assert "stopped" in result.stdout


# -- bad input --------------------------------------------------------------------------------
@pytest.mark.parametrize("argv, fragment", [
    (["dqn", "--grid", "lr=1e-3,-1"], "--grid lr=-1: argument --lr"),
    (["dqn", "--grid", "lrr=1"], "did you mean lr"),
    (["dqn", "--grid", "lr"], "write FLAG=VALUES"),
    (["dqn", "--grid", "lr=1,1"], "listed twice"),
    (["dqn", "--sample", "lr=normal:0:1"], "unknown distribution"),
    (["dqn", "--sample", "lr=loguniform:0:1"], "0 < LO"),
    (["dqn", "--sample", "lr=uniform:2:1"], "LO must be below HI"),
    (["dqn", "--sample", "decay-steps=uniform:1:9"], "int:LO:HI"),
    (["dqn", "--sample", "gamma=uniform:0.5:1.5"], "argument --gamma"),
    (["dqn", "--grid", "seed=1,2"], "--seeds N"),
    (["dqn", "--", "--seed", "3"], "--seeds N"),
    (["dqn", "--", "--logdir", "x"], "the sweep's --logdir"),
    (["dqn", "--", "--lr", "0"], "training flags after --: argument --lr"),
    (["dqn", "--", "--env", "Pendulum-v1"], "Discrete"),
    (["dqn", "--scheduler", "pbt"], "--sample FLAG=DIST"),
    (["dqn", "--pbt-interval", "100"], "--scheduler pbt"),
    (["dqn", "--search", "optuna", "--sample", "gamma=uniform:0.9:0.99", "--grid",
      "lr=1e-3,2e-3"], "cannot take --grid"),
    (["dqn", "--num-samples", "4"], "--sample"),
    (["dqn", "--address", "auto"], "shared"),
    (["rainbowish"], "unknown algorithm"),
    ([], "ALGO is missing"),
    (["--resume"], "--logdir"),
])
def test_bad_sweep_flags_are_one_line_errors(argv, fragment):
    with pytest.raises(spec.SweepError, match=None) as e:
        spec.parse(argv)
    assert fragment in str(e.value) and "\n" not in str(e.value)


def test_parsing_a_sweep_leaves_nothing_behind(tmp_path):
    """Each trial's flags are checked by the training script's own parser, whose --logdir it
    creates: a temporary one, removed again (it once left a probe directory in runs/)."""
    runs = os.path.join(ROOT, "runs")
    before = set(os.listdir(runs)) if os.path.isdir(runs) else set()
    spec.parse(["dqn", "--seeds", "2", "--grid", "lr=1e-3,2e-3", "--logdir",
                str(tmp_path / "sweep"), "--", "--total-steps", "1000"])
    after = set(os.listdir(runs)) if os.path.isdir(runs) else set()
    assert after == before and not (tmp_path / "sweep").exists()


def test_cli_error_is_one_line_exit_2_before_ray_or_tensorflow(tmp_path):
    used = tmp_path / "used"
    used.mkdir()
    (used / "x").write_text("")
    code = ("import sys, runpy\n"
            f"sys.argv = [{SWEEP!r}, 'dqn', '--logdir', {str(used)!r}]\n"
            "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\n"
            "except SystemExit as e:\n    print('exit', e.code)\n"
            "print('ray' in sys.modules, 'tensorflow' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.split() == ["exit", "2", "False", "False"], out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sweep.py: error: sweep directory")
    assert "--resume" in lines[0] and os.listdir(used) == ["x"]  # nothing written


def test_an_address_nothing_answers_is_a_one_line_error_at_once(tmp_path):
    logdir = tmp_path / "cluster"
    result = run_sweep("dqn", "--address", "127.0.0.1:9", "--logdir", str(logdir), timeout=60)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "nothing answers there" in result.stderr and not logdir.exists()


def test_resume_needs_a_sweep_directory(tmp_path):
    logdir = tmp_path / "s"
    logdir.mkdir()
    with pytest.raises(spec.SweepError, match="no sweep.json"):
        spec.parse(["--resume", "--logdir", str(logdir)])


# -- statistics -------------------------------------------------------------------------------
def test_bench_has_a_sweep_section():
    import importlib.util

    bench_spec = importlib.util.spec_from_file_location(
        "bench_for_sweep", os.path.join(ROOT, "scripts", "bench.py"))
    bench = importlib.util.module_from_spec(bench_spec)
    sys.modules["bench_for_sweep"] = bench  # for @dataclass
    bench_spec.loader.exec_module(bench)
    args = bench.parse_args(["--sweep", "--sweep-steps", "500"])
    assert args.sweep and args.sweep_steps == 500 and callable(bench.bench_sweep)


def test_iqm_and_its_bootstrap_ci():
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(1)
    for n in (1, 2, 3, 4, 5, 8, 10):
        x = rng.normal(size=n)
        assert np.isclose(report.iqm(x), scipy_stats.trim_mean(x, 0.25))
    scores = [1.0, 2.0, 3.0, 4.0, 100.0]
    point, low, high = report.iqm_ci([scores])
    assert point == 3.0 and low <= point <= high and high < 100
    assert report.iqm_ci([[5.0, 5.0]]) == (5.0, 5.0, 5.0)
