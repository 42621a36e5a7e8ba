"""Every flag of every training script at its boundary values: 0 where allowed, 1, its
largest sensible value. Each value either runs to a clean summary or is refused by the
parser in one line; the value just outside each boundary is refused.

Runs are in-process and few: run ``i`` sets every flag to ``values[i % len(values)]``, so
every listed value of every flag is used in at least one real run (the number of runs is
the longest list). Values that switch a part of the run off (no training, no evaluation)
run alone on the base settings (each script's ``solo``), so they hide nothing else. A flag missing
from the tables fails the test: a new flag must state its boundaries here.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

import pytest
from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "scripts"))

BIG = 10**9  # "never" for a period in env steps; also the largest sensible step count

#: Flags every training script shares (rlharness.cli's run and lr groups).
COMMON = {
    "--n-envs": [1, 1, 16],
    "--seed": [0, 1, 2**32 - 1],
    "--checkpoint-every": [0, 1000, BIG],
    "--eval-freq": [BIG, 1000, 0],
    "--eval-episodes": [1, 1, 30],
    "--update-mode": ["fit", "train_on_batch", "tf_function"],
    "--jit-compile": [True, False, False],  # the base runs without XLA: faster to start
    "--lr": [1e-9, 1e-3, 1.0],
    # every schedule runs in some script (LR_SCHEDULES below): three per script keep the
    # walk at three profiles; the schedule code is the same for every script
    "--lr-schedule": ["constant", "exponential", "step"],
    "--lr-clock": ["updates", "env_steps"],
    "--decay-steps": [1, 1, BIG],
    "--decay-rate": [1e-9, 1.0, 1.0],
    "--staircase": [True, False],
    "--end-lr": [0.0, 1e-9, 1e-3],
    "--power": [1e-3, 1.0, 10.0],
    "--warmup-steps": [0, 1, BIG],
    "--boundaries": [[1], [1, 2], [BIG]],
    "--progress-every": [1e-3, 1.0, 3600.0],
    "--policy": ["auto", "mlp", "auto"],  # cnn: refused on CartPole, run in test_pixels/atari
}
#: Per script: its own flags, the base argv of every run, values to run alone.
SCRIPTS = {
    "train_dqn": dict(
        flags={
            "--batch-size": [1, 1, 256],
            "--buffer-size": [1, 1, 1_000_000],
            "--learning-starts": [0, 1, 32],
            "--gamma": [0.0, 1.0, 0.99],
            "--tau": [0.0, 1.0, 0.005],
            "--target-update-interval": [1, 1, BIG],
            "--train-freq": [1, 1, 8],
            "--gradient-steps": [1, 1, 16],
            "--exploration-fraction": [0.0, 1.0, 0.5],
            "--exploration-initial-eps": [0.0, 1.0, 1.0],
            "--exploration-final-eps": [0.0, 1.0, 0.0],
            "--max-grad-norm": [1e-9, 1.0, 1e9],
            "--adam-eps": [1e-12, 1.0, 1e-7],
            "--hidden-sizes": [[1], [1, 1], [256, 256]],
            "--double": [True, False],
            "--save-replay": [True, False],
            "--exploration-rate": ["0", "1", "linear(1.0, end=0.05, steps=64)"],
            "--rainbow": [False, False, True],
            "--dueling": [True, False],
            "--n-step": [1, 1, 10],
            "--prioritized": [True, False],
            "--per-alpha": [0.0, 1.0, 0.6],
            "--per-beta": ["0", "1", "linear(0.4, end=1.0, steps=64)"],
            "--per-eps": [1e-9, 1.0, 1.0],
            "--noisy": [True, False],
            "--distributional": [True, False],
            "--n-atoms": [2, 2, 101],
            "--v-min": [0.0, -1.0, -100.0],
            "--v-max": [1.0, 1.0, 100.0],
        },
        base=["--no-jit-compile", "--total-steps", "64", "--learning-starts", "16",
              "--train-freq", "4", "--gradient-steps", "2", "--batch-size", "8",
              "--hidden-sizes", "8"],
        solo=[["--total-steps", "1"], ["--total-steps", "2"], ["--learning-starts", str(BIG)],
              ["--train-freq", str(BIG)], ["--eval-episodes", "0"],
              ["--checkpoint-every", "1", "--eval-freq", "1", "--total-steps", "8"]],
        refused=[["--policy", "cnn"], ["--sticky-actions", "0.5"]],
    ),
    "train_a2c": dict(
        flags={
            "--n-steps": [1, 1, 16],
            "--gamma": [0.0, 1.0, 0.99],
            "--gae-lambda": [0.0, 1.0, 0.95],
            "--ent-coef": [0.0, 1.0, 1.0],
            "--vf-coef": [0.0, 1.0, 10.0],
            "--max-grad-norm": [1e-9, 1.0, 1e9],
            "--hidden-sizes": [[1], [1, 1], [256, 256]],
            "--shared": [True, False],
            "--normalize-advantage": [True, False],
            "--use-rms-prop": [True, False],
            "--log-std-init": [-20.0, 0.0, 2.0],
            "--use-sde": [True, False, False],  # gSDE needs Box actions: Pendulum-v1 below
            "--env": ["Pendulum-v1", "CartPole-v1", "CartPole-v1"],
            "--sde-sample-freq": [-1, 1, BIG],
            "--normalize-obs": [True, False],
            "--normalize-reward": [True, False],
            "--lr-schedule": ["inverse-time", "polynomial", "cosine"],
        },
        base=["--no-jit-compile", "--total-steps", "256", "--n-envs", "2", "--hidden-sizes", "8"],
        solo=[["--total-steps", "1", "--n-steps", "1", "--n-envs", "1"],
              ["--n-steps", "128"], ["--eval-episodes", "0"],
              ["--checkpoint-every", "1", "--eval-freq", "1", "--total-steps", "8",
               "--n-steps", "1"]],
        refused=[["--n-steps", "65", "--n-envs", "2", "--total-steps", "128"],
                 ["--policy", "cnn"], ["--sticky-actions", "0.5"], ["--log-std-init", "2.5"],
                 ["--use-sde"], ["--sde-sample-freq", "0"]],
    ),
    "train_ppo": dict(
        flags={
            "--n-steps": [1, 1, 2],
            "--batch-size": [1, 1, 32],
            "--n-epochs": [1, 1, 20],
            "--gamma": [0.0, 1.0, 0.99],
            "--gae-lambda": [0.0, 1.0, 0.95],
            "--clip-range": ["0", "1", "linear(0.2, end=0, steps=64)"],
            "--clip-range-vf": ["0", "1", "linear(10.0, end=0, steps=32)@env_steps"],
            "--ent-coef": ["0", "1", "linear(0.01, end=0, steps=64)"],
            "--vf-coef": [0.0, 1.0, 10.0],
            "--max-grad-norm": [1e-9, 1.0, 1e9],
            "--target-kl": [1e-9, 1.0, 1e9],
            "--normalize-advantage": [True, False],
            "--hidden-sizes": [[1], [1, 1], [256, 256]],
            "--shared": [True, False],
            "--log-std-init": [-20.0, 0.0, 2.0],
            "--use-sde": [True, False, False],  # gSDE needs Box actions: Pendulum-v1 below
            "--env": ["Pendulum-v1", "CartPole-v1", "CartPole-v1"],
            "--sde-sample-freq": [1, -1, BIG],
            "--normalize-obs": [True, False],
            "--normalize-reward": [True, False],
            "--lr-schedule": ["piecewise", "cosine", "exponential"],
        },
        base=["--no-jit-compile", "--total-steps", "32", "--n-envs", "2", "--n-steps", "8",
              "--hidden-sizes", "8", "--batch-size", "8"],
        solo=[["--total-steps", "1", "--n-steps", "1", "--n-envs", "1", "--batch-size", "1"],
              ["--eval-episodes", "0"],
              ["--checkpoint-every", "1", "--eval-freq", "1", "--total-steps", "8",
               "--n-steps", "1", "--batch-size", "2"]],
        refused=[["--n-steps", "65", "--n-envs", "2", "--total-steps", "128"],
                 ["--batch-size", "257", "--n-steps", "32", "--n-envs", "8"],
                 ["--log-std-init", "2.5"], ["--use-sde"], ["--sde-sample-freq", "-2"]],
    ),
}
#: Flags that take no boundary values: a path, a name, or an action.
NOT_WALKED = {"-h", "--logdir", "--resume", "--env", "--no-progress", "--list-presets",
              "--sticky-actions"}  # Atari only: refused here (see refused), run in test_atari



def test_every_lr_schedule_runs_in_some_script():
    from rlharness.cli import SCHEDULES

    walked = {name for spec in SCRIPTS.values()
              for name in {**COMMON, **spec["flags"]}["--lr-schedule"]}
    assert walked == set(SCHEDULES), sorted(set(SCHEDULES) - walked)


def _flag(action: argparse.Action) -> str:
    return action.option_strings[0]


def _argv(flag: str, value) -> list[str]:
    if value is True or value is False:
        return [flag if value else "--no-" + flag[2:]] if flag in _optional_bools \
            else ([flag] if value else [])
    if isinstance(value, list):
        return [flag, *map(str, value)]
    return [flag, str(value)]


_optional_bools: set[str] = set()


def _tables(script: str):
    module = importlib.import_module(script)
    parser = module.build_parser()
    spec = SCRIPTS[script]
    table = {**COMMON, **spec["flags"]}
    for action in parser._actions:  # argparse offers no public list of its actions
        if isinstance(action, argparse.BooleanOptionalAction):
            _optional_bools.add(_flag(action))
    return module, parser, table, spec


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_every_flag_has_boundary_values(script):
    _, parser, table, spec = _tables(script)
    flags = {_flag(a) for a in parser._actions}
    missing = flags - set(table) - {"--total-steps"} - NOT_WALKED
    assert not missing, f"{script}: give {sorted(missing)} boundary values in this test"
    stale = set(table) - flags
    assert not stale, f"{script}: stale flags {sorted(stale)}"


def _refusals(parser, table):
    """(flag, value) pairs just outside each numeric flag's range."""
    for action in parser._actions:
        flag = _flag(action)
        if flag not in table or action.type is None:
            continue
        kind = getattr(action.type, "__name__", "")
        if kind == "positive int":
            yield flag, "0"
        elif kind == "non negative int":
            yield flag, "-1"
        elif kind in ("positive", "non negative"):
            yield flag, "0" if kind == "positive" else "-1e-9"
        elif kind == "in range":
            yield flag, "1.0000001"
            yield flag, "-1e-9"
    yield "--seed", str(2**32)


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_values_outside_the_boundaries_are_refused_in_one_line(script, tmp_path, capsys):
    module, parser, table, _ = _tables(script)
    for i, (flag, value) in enumerate(_refusals(parser, table)):
        with pytest.raises(SystemExit) as stop:
            module.parse_args([flag, value, "--logdir", str(tmp_path / f"r{i}")])
        err = capsys.readouterr().err.strip()
        assert stop.value.code == 2 and len(err.splitlines()) == 1, (flag, value, err)
        assert flag in err, (flag, value, err)
    for i, argv in enumerate(SCRIPTS[script].get("refused", [])):
        with pytest.raises(SystemExit) as stop:
            module.parse_args([*argv, "--logdir", str(tmp_path / f"x{i}")])
        err = capsys.readouterr().err.strip()
        assert stop.value.code == 2 and len(err.splitlines()) == 1, (argv, err)
    assert not os.listdir(tmp_path), "a refused command created its run directory"


def _runs(script):
    _, _, table, spec = _tables(script)
    n = max(len(values) for values in table.values())
    for i in range(n):
        argv = list(spec["base"])
        for flag, values in table.items():
            argv += _argv(flag, values[i % len(values)])
        yield f"profile {i}", argv
    for argv in spec["solo"]:
        yield " ".join(argv), [*spec["base"], *argv]


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_boundary_values_run_to_a_clean_summary(script, tmp_path, capsys):
    module = importlib.import_module(script)
    for i, (name, argv) in enumerate(_runs(script)):
        argv = [*argv, "--no-progress", "--logdir", str(tmp_path / f"run{i}")]
        try:
            code = module.main(argv)
        except SystemExit as e:  # a refusal by a cross-flag check, or a failed run
            code = e.code
        out, err = capsys.readouterr()
        assert code == 0, f"{script} {name}: exit {code}\n{' '.join(argv)}\n{err[-2000:]}"
        assert "Traceback" not in err
        env = argv[argv.index("--env") + 1] if "--env" in argv else "CartPole-v1"
        assert f"on {env}: " in out and "env steps" in out, (name, out)
