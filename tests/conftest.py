import os
import subprocess
import sys

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: Small, fast DQN settings for CLI runs in tests (a few seconds each); without XLA, which
#: starts slower (test_hyper's --rainbow kill-and-resume runs keep it).
QUICK = ["--hidden-sizes", "32", "32", "--batch-size", "32", "--learning-starts", "300",
         "--train-freq", "100", "--gradient-steps", "8", "--eval-freq", "0",
         "--eval-episodes", "2", "--no-progress", "--lr-schedule", "exponential",
         "--decay-steps", "50", "--no-jit-compile"]


def train_dqn(*args: str, **kwargs) -> subprocess.CompletedProcess:
    """Run scripts/train_dqn.py in a subprocess, as a user would."""
    return subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "train_dqn.py"), *args],
                          capture_output=True, text=True, cwd=ROOT, **kwargs)


def run_script_without(module: str, script: str, *argv: str) -> subprocess.CompletedProcess:
    """``scripts/SCRIPT ARGV`` in a subprocess where importing ``module`` really fails (it is
    blocked in ``sys.modules``, as if not installed); nothing is mocked."""
    code = (f"import runpy, sys; sys.modules[{module!r}] = None; "
            f"sys.argv = [{script!r}, *{list(argv)!r}]; "
            f"runpy.run_path({os.path.join(ROOT, 'scripts', script)!r}, run_name='__main__')")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
    """A real, finished 1000-step DQN run directory (config, checkpoint, events)."""
    run_dir = str(tmp_path_factory.mktemp("runs") / "finished")
    result = train_dqn("--logdir", run_dir, "--total-steps", "1000", *QUICK)
    assert result.returncode == 0, result.stderr
    return run_dir


@pytest.fixture(scope="session")
def uninterrupted(tmp_path_factory):
    """A 3000-step DQN run, checkpointed every 500 steps, never interrupted: the curves
    every crash-and-resume test must reproduce."""
    run_dir = str(tmp_path_factory.mktemp("u") / "run")
    result = train_dqn("--logdir", run_dir, "--total-steps", "3000", "--checkpoint-every", "500",
                       *QUICK)
    assert result.returncode == 0, result.stderr
    return run_dir
