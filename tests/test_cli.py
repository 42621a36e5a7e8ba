"""Bad input: a one-line error, exit status 2, no traceback, nothing touched, no TF import."""

import hashlib
import os
import subprocess
import sys

import pytest
from conftest import QUICK, ROOT, train_dqn


def tree_digest(path):
    digest = hashlib.sha256()
    for root, _, files in sorted(os.walk(path)):
        for name in sorted(files):
            with open(os.path.join(root, name), "rb") as f:
                digest.update(name.encode() + f.read())
    return digest.hexdigest()


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("train_dqn.py: error: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize("args, fragment", [
    (["--total-steps", "-5"], "--total-steps"),
    (["--total-steps", "abc"], "not a number"),
    (["--lr", "0"], "--lr"),
    (["--lr", "-0.1"], "positive"),
    (["--decay-steps", "0"], "--decay-steps"),
    (["--decay-rate", "0"], "--decay-rate"),
    (["--decay-rate", "-2"], "--decay-rate"),
    (["--decay-rate", "1.5"], "grow the lr"),
    (["--lr-schedule", "linear-ish"], "invalid choice"),
    (["--update-mode", "predict"], "invalid choice"),
    (["--batch-size", "0"], "--batch-size"),
    (["--gamma", "1.5"], "--gamma"),
    (["--gamma", "-0.1"], "--gamma"),
    (["--env", "CartPol-v1"], "did you mean 'CartPole-v1'"),
    (["--env", "Pendulum-v1"], "Discrete"),
    (["--resume", "--logdir", "/nonexistent/run"], "does not exist"),
    (["--resume"], "--logdir"),
    (["--boundaries", "300", "200"], "strictly increasing"),
])
def test_bad_arguments(args, fragment):
    assert_one_line_error(train_dqn(*args), fragment)


def test_argument_errors_come_before_tensorflow_is_imported():
    code = (
        "import runpy, sys\n"
        "sys.argv = ['train_dqn.py', '--lr', '0']\n"
        "try:\n    runpy.run_path('scripts/train_dqn.py', run_name='__main__')\n"
        "except SystemExit as e:\n    assert e.code == 2\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.split() == ["False", "False"], out.stderr


def test_tensorflow_imports_without_the_extras_keras_would_load():
    """Keras's optional imports (pandas, matplotlib, ...) stay out of a training process's
    start; matplotlib is still importable afterwards (scripts/plot.py needs it)."""
    code = (
        "import sys\n"
        "from rlharness import cli\n"
        "cli.import_tensorflow_quietly()\n"
        "print(sorted(m for m in cli.KERAS_EXTRAS_HIDDEN if m in sys.modules))\n"
        "import keras, matplotlib.pyplot as plt, numpy as np\n"
        "print(keras.layers.Dense(2)(np.ones((1, 3))).shape, type(plt.figure()).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["[]", "(1, 2) Figure"], out.stdout + out.stderr


def test_existing_run_is_never_overwritten(finished_run):
    before = tree_digest(finished_run)
    assert_one_line_error(train_dqn("--logdir", finished_run, *QUICK), "--resume")
    assert tree_digest(finished_run) == before


def test_resume_with_contradicting_flags_names_them(finished_run):
    before = tree_digest(finished_run)
    result = train_dqn("--logdir", finished_run, "--resume", "--gamma", "0.5",
                       "--total-steps", "2000")
    assert_one_line_error(result, "--gamma 0.5 contradicts", "0.99")
    result = train_dqn("--logdir", finished_run, "--resume", "--total-steps", "500")
    assert_one_line_error(result, "below the 1000 env steps")
    assert tree_digest(finished_run) == before


def test_resume_without_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text('{"algo": "dqn", "args": {}}')
    assert_one_line_error(train_dqn("--logdir", str(run_dir), "--resume"), "no checkpoint")


def test_help_lists_every_flag():
    result = train_dqn("--help")
    assert result.returncode == 0
    for flag in ["--env", "--total-steps", "--seed", "--logdir", "--lr", "--lr-schedule",
                 "--decay-steps", "--decay-rate", "--staircase", "--lr-clock", "--update-mode",
                 "--batch-size", "--buffer-size", "--learning-starts", "--gamma",
                 "--target-update-interval", "--train-freq", "--gradient-steps",
                 "--exploration-fraction", "--exploration-final-eps", "--hidden-sizes",
                 "--eval-freq", "--eval-episodes", "--double", "--no-double", "--resume",
                 "--checkpoint-every"]:
        assert flag in result.stdout, flag
