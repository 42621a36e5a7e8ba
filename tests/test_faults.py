"""Faults at any moment: kill -9 at named points (SQLite-style crash tests), a cut event
record, a full disk, a read-only file system, a vanished run directory, bad run paths."""

import os
import random
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import QUICK, RAINBOW_RUN, ROOT, train_dqn
from test_checkpoint import assert_no_step_twice, latest_checkpoint_steps, steps_of
from test_cli import assert_one_line_error, tree_digest

from rlharness import read_scalars
from rlharness.faults import POINTS, RunIOError, describe
from rlharness.logger import event_files

TAGS = ("train/learning_rate", "train/loss", "train/q_mean", "train/per_beta",
        "rollout/ep_return", "rollout/exploration_rate", "eval/mean_return")


def killed_at(point, count, run_dir, *args):
    env = {**os.environ, "RLHARNESS_KILL_AT": f"{point}:{count}"}
    return train_dqn("--logdir", run_dir, *args, env=env)


def assert_same_curves(run_dir, reference):
    got, want = read_scalars(run_dir), read_scalars(reference)
    assert_no_step_twice(got)
    for tag in TAGS:
        assert steps_of(got[tag]) == steps_of(want[tag]), tag
        np.testing.assert_allclose([v for _, v in got[tag]], [v for _, v in want[tag]],
                                   rtol=1e-5, err_msg=tag)


def test_kill_9_at_random_moments_then_resume_matches_the_uninterrupted_run(
        tmp_path, rainbow_uninterrupted):
    """One ``--rainbow`` run (the most state a checkpoint holds: sum tree, n-step queues,
    noise, scheduled ε/β/τ), killed with SIGKILL at seeded random moments (env steps,
    training rounds, event flushes, checkpoint writes, the resume's own event rewrite),
    resumed after each; once its last event record is also cut in half. It must end with
    the uninterrupted run's curves and no step logged twice."""
    rng = random.Random(14)
    run_dir = str(tmp_path / "run")
    # The first life must leave a checkpoint: it dies inside the save of its second one.
    first = killed_at("checkpoint_index", 2, run_dir, *RAINBOW_RUN)
    assert first.returncode == -9, first.stderr
    assert latest_checkpoint_steps(run_dir) == 500
    kills = [(p, rng.randint(1, 400) if p == "env_step" else rng.randint(1, 2))
             for p in rng.sample(POINTS, len(POINTS))]
    deaths = 1
    for i, (point, count) in enumerate(kills):
        if i == 2:  # a kill in the middle of an event write leaves a cut last record
            last = event_files(run_dir)[-1]
            os.truncate(last, os.path.getsize(last) - 7)
        life = killed_at(point, count, run_dir, "--resume", "--no-progress")
        assert life.returncode in (-9, 0), (point, count, life.stderr)
        assert "Traceback" not in life.stderr, (point, count, life.stderr)
        if life.returncode == 0:
            break
        deaths += 1
    else:
        final = train_dqn("--logdir", run_dir, "--resume", "--no-progress")
        assert final.returncode == 0, final.stderr
    assert deaths >= 5, f"only {deaths} kills happened"
    assert latest_checkpoint_steps(run_dir) == 2000
    assert_same_curves(run_dir, rainbow_uninterrupted)
    leftovers = [n for n in os.listdir(run_dir) if "rewrite" in n or n.endswith(".tmp")]
    assert not leftovers


def test_a_cut_event_record_does_not_stop_the_resume(tmp_path, finished_run):
    """The issue's case: a finished run whose event file lost its last 7 bytes."""
    run_dir = str(tmp_path / "run")
    shutil.copytree(finished_run, run_dir)
    last = event_files(run_dir)[-1]
    os.truncate(last, os.path.getsize(last) - 7)
    before = read_scalars(run_dir)
    result = train_dqn("--logdir", run_dir, "--total-steps", "1200", "--resume", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "unrestored" not in result.stderr
    after = read_scalars(run_dir)
    assert_no_step_twice(after)
    for tag, series in before.items():  # every whole point before the cut survives
        assert after[tag][: len(series) - 1] == series[:-1], tag
    assert "after 1200 env steps" in result.stdout


@pytest.fixture
def tmpfs(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({made.stderr.strip()})")
    yield str(mount)
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_is_a_one_line_error_and_the_run_resumes_after_freeing_space(tmpfs):
    run_dir = os.path.join(tmpfs, "run")
    result = train_dqn("--logdir", run_dir, "--total-steps", "40000", "--checkpoint-every",
                       "2000", *QUICK)
    assert result.returncode == 1, result.stderr
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1 and "Traceback" not in line, line
    assert "the disk is full while" in line and "the last good checkpoint is" in line, line
    assert f"--logdir {run_dir} --resume" in line and "free space" in line, line
    saved = latest_checkpoint_steps(run_dir)
    assert saved > 0 and f"ckpt-{saved} (intact)" in line
    names = os.listdir(os.path.join(run_dir, "checkpoints"))
    assert not [n for n in names if n.endswith(".tmp") or "_temp" in n], names
    subprocess.run(["mount", "-o", "remount,size=64m", tmpfs], check=True)
    resumed = train_dqn("--logdir", run_dir, "--resume", "--total-steps", str(saved + 1000),
                        "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert_no_step_twice(read_scalars(run_dir))


def test_a_read_only_run_directory_is_refused_before_anything_runs(tmpfs, finished_run):
    run_dir = os.path.join(tmpfs, "run")
    shutil.copytree(finished_run, run_dir)
    subprocess.run(["mount", "-o", "remount,ro", tmpfs], check=True)
    started = time.monotonic()
    result = train_dqn("--logdir", run_dir, "--resume", "--total-steps", "1000")
    assert_one_line_error(result, "Read-only file system", run_dir)
    assert time.monotonic() - started < 10


def test_a_run_directory_that_vanishes_mid_run_is_a_one_line_error(tmp_path):
    run_dir = str(tmp_path / "run")
    proc = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "scripts", "train_dqn.py"), "--logdir", run_dir,
         "--total-steps", "200000", "--checkpoint-every", "1000", *QUICK],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while latest_checkpoint_steps(run_dir) == 0:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    shutil.rmtree(run_dir)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert "vanished" in err and "nothing is left to resume" in err, err


@pytest.mark.parametrize("where, fragment", [
    ("file", "is a file, not a directory"),
    ("under-file", "is a file, not a directory"),
    ("/proc/x/run", "cannot write"),
])
def test_bad_run_paths_fail_before_tensorflow(tmp_path, where, fragment):
    a_file = tmp_path / "a_file"
    a_file.write_text("keep me")
    path = {"file": str(a_file), "under-file": str(a_file / "run")}.get(where, where)
    before = tree_digest(tmp_path)
    started = time.monotonic()
    assert_one_line_error(train_dqn("--logdir", path), fragment, path)
    assert time.monotonic() - started < 10  # no TensorFlow import (tested in test_cli)
    assert tree_digest(tmp_path) == before


def test_io_errors_are_named_for_the_user():
    import errno

    import tensorflow as tf

    assert describe(OSError(errno.ENOSPC, "No space left on device")) == "the disk is full"
    assert describe(PermissionError(errno.EACCES, "Permission denied")) == \
        "permission is denied"
    assert describe(OSError(errno.EROFS, "Read-only")) == "the file system is read-only"
    tf_error = tf.errors.ResourceExhaustedError(None, None, "x; No space left on device")
    assert describe(tf_error) == "the disk is full"
    assert describe(ValueError("no I/O")) is None
    error = RunIOError("the disk is full", "saving checkpoint 6000", "/r/checkpoints")
    assert str(error) == "the disk is full while saving checkpoint 6000 (/r/checkpoints)"
