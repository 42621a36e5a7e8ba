import os
import shutil
import subprocess
import sys

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: Small, fast DQN settings for CLI runs in tests (a few seconds each); without XLA, whose
#: compile costs more than these runs train (~9 s of CPU for --rainbow). XLA is tested where
#: it is the point: test_dqn's update modes, test_boundaries, test_schedules.
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


def shared_run(tmp_path_factory, name: str, *args: str) -> str:
    """``train_dqn.py ARGS`` run once per test session, not once per xdist worker: the first
    worker to ask makes the run directory, the others wait on a file lock and reuse it (each
    costs a TensorFlow start and seconds of training). Tests treat it as read-only."""
    import filelock

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the session's directory above each worker's own
    run_dir, done = root / "shared" / name, root / "shared" / f"{name}.done"
    run_dir.parent.mkdir(exist_ok=True)
    with filelock.FileLock(str(root / "shared" / f"{name}.lock")):
        if not done.exists():
            shutil.rmtree(run_dir, ignore_errors=True)  # a failed earlier attempt
            result = train_dqn("--logdir", str(run_dir), *args)
            assert result.returncode == 0, result.stderr
            done.touch()
    return str(run_dir)


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
    """A real, finished 1000-step DQN run directory (config, checkpoint, events)."""
    return shared_run(tmp_path_factory, "finished", "--total-steps", "1000", *QUICK)


@pytest.fixture(scope="session")
def uninterrupted(tmp_path_factory):
    """A 3000-step DQN run, checkpointed every 500 steps, never interrupted: the curves
    every crash-and-resume test must reproduce."""
    return shared_run(tmp_path_factory, "uninterrupted", "--total-steps", "3000",
                      "--checkpoint-every", "500", *QUICK)


#: A --rainbow run with every scheduled hyperparameter: ε and PER β on their own clocks, τ.
EPSILON = "linear(0.5, end=0.05, steps=2000)"  # clock env_steps (the default for ε)
BETA = "linear(0.4, end=1.0, steps=100)@updates"
RAINBOW = [*QUICK, "--rainbow", "--n-atoms", "11", "--exploration-rate", EPSILON,
           "--per-beta", BETA, "--tau", "0.9", "--target-update-interval", "50"]
RAINBOW_RUN = ["--total-steps", "2000", "--checkpoint-every", "500", *RAINBOW]


@pytest.fixture(scope="session")
def rainbow_uninterrupted(tmp_path_factory):
    """A 2000-step ``--rainbow`` run (:data:`RAINBOW_RUN`), checkpointed every 500 env steps,
    never interrupted: the curves the kill -9 walk (test_faults) must reproduce, sum tree,
    n-step queues and noise included."""
    return shared_run(tmp_path_factory, "rainbow", *RAINBOW_RUN)


#: The longest tests (15-150 s each on 2 cores), longest first. Collected first and handed out
#: one at a time (pyproject's `--dist load --maxschedchunk 1`), they start while the short
#: tests fill the other workers, and no worker is left running one alone at the end.
SLOW_FIRST = (
    "test_sweep.py::test_grid_x_seeds_killed_with_kill_9_then_ctrl_c_then_resumed",
    "test_faults.py::test_kill_9_at_random_moments_then_resume_matches_the_uninterrupted_run",
    "test_sweep.py::test_pbt_exploits_keep_one_lr_curve_and_a_readable_record",
    "test_sweep.py::test_optuna_search_with_asha_stopping_a_trial",
    "test_boundaries.py::test_boundary_values_run_to_a_clean_summary",
    "test_checkpoint.py::test_resume_continues_the_lr_curve_exactly",
    "test_atari.py::test_short_pong_run_through_train_dqn_logs_every_tag",
    "test_checkpoint.py::test_ctrl_c_saves_a_checkpoint_and_resume_matches",
    "test_pixels.py::test_catch_resume_continues_exactly",
    "test_pixels.py::test_dqn_with_the_nature_cnn_solves_catch",
    "test_dqn.py::test_update_modes_train_identically",
    "test_pixels.py::test_dqn_cuts_both_stacks_from_one_window_in_every_update_mode",
    "test_faults.py::test_a_full_disk_is_a_one_line_error_and_the_run_resumes_after_freeing_space",
    "test_bench.py::test_rainbow_sections_print_their_tables",
)


def pytest_collection_modifyitems(items):
    modules = {item.nodeid.removeprefix("tests/").split("::")[0]: item.module for item in items
               if getattr(item, "module", None)}
    stale = [slow for slow, (file, test) in ((s, s.split("::")) for s in SLOW_FIRST)
             if file in modules and not hasattr(modules[file], test)]
    if stale:  # a renamed test would silently lose its place at the front
        raise pytest.UsageError(f"conftest.SLOW_FIRST names tests that do not exist: {stale}")

    def rank(item):
        name = item.nodeid.removeprefix("tests/")
        return next((i for i, slow in enumerate(SLOW_FIRST) if name.startswith(slow)),
                    len(SLOW_FIRST))

    items.sort(key=rank)  # stable: every other test keeps its place
