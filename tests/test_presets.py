"""Per-env presets (hyperparams/<algo>.toml): every table resolves through its script's own
parser, the command line overrides a preset, the run's config.json records the result, and
a broken preset is a one-line error."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT

from rlharness import presets

sys.path.insert(0, os.path.join(ROOT, "scripts"))

SCRIPTS = {"dqn": "train_dqn", "a2c": "train_a2c"}


def _algos():
    return sorted(f[:-5] for f in os.listdir(presets.PRESET_DIR) if f.endswith(".toml"))


def test_every_algorithm_has_a_preset_file_and_a_script():
    assert set(SCRIPTS) <= set(_algos())
    for algo in _algos():
        assert os.path.exists(os.path.join(ROOT, "scripts", f"train_{algo}.py")), algo


@pytest.mark.parametrize("algo", _algos())
def test_every_preset_resolves_through_the_scripts_parser(algo, tmp_path):
    module = importlib.import_module(f"train_{algo}")
    for i, (env, table) in enumerate(presets.load(algo).items()):
        args = module.parse_args(["--env", env, "--logdir", str(tmp_path / f"r{i}")])
        assert args.preset == env
        assert "total-steps" in table, f"{algo} preset {env} must state its env-step budget"
        for key, value in table.items():
            got = getattr(args, key.replace("-", "_"))
            if isinstance(value, str) and isinstance(got, (int, float)):
                value = float(value)
            assert got == value or str(got) == str(value), (algo, env, key, got, value)


def test_a_flag_given_overrides_the_preset_and_config_records_both(tmp_path):
    from train_dqn import parse_args

    from rlharness import cli

    table = presets.load("dqn")["CartPole-v1"]
    args = parse_args(["--env", "CartPole-v1", "--lr", "1e-3", "--gradient-steps", "7",
                       "--logdir", str(tmp_path / "run")])
    assert (args.lr, args.gradient_steps) == (1e-3, 7)
    assert args.batch_size == table["batch-size"] and args.preset == "CartPole-v1"
    cli.save_config(args, "dqn")
    saved = json.load(open(tmp_path / "run" / "config.json"))["args"]
    assert saved["lr"] == 1e-3 and saved["preset"] == "CartPole-v1"
    assert saved["decay_rate"] == table["decay-rate"]


def test_an_env_without_a_preset_takes_the_scripts_defaults(tmp_path):
    from train_dqn import build_parser, parse_args

    args = parse_args(["--env", "Chain-v0", "--logdir", str(tmp_path / "run")])
    assert args.preset == ""
    assert args.train_freq == build_parser().get_default("train_freq")


def test_a_real_run_saves_its_preset(finished_run):
    saved = json.load(open(os.path.join(finished_run, "config.json")))["args"]
    assert saved["preset"] == "CartPole-v1" and saved["total_steps"] == 1000


def _with_preset_file(monkeypatch, tmp_path, text: str) -> None:
    (tmp_path / "dqn.toml").write_text(text)
    monkeypatch.setattr(presets, "PRESET_DIR", str(tmp_path))


def test_preset_values_of_every_kind(monkeypatch, tmp_path):
    from train_dqn import parse_args

    _with_preset_file(monkeypatch, tmp_path / "", '["Chain-v0"]\ntotal-steps = 640\n'
                      'double = false\nstaircase = true\nhidden-sizes = [8, 4]\n'
                      'exploration-rate = "linear(1.0, end=0.1, steps=100)"\n')
    args = parse_args(["--env", "Chain-v0", "--logdir", str(tmp_path / "run")])
    assert (args.total_steps, args.double, args.staircase) == (640, False, True)
    assert args.hidden_sizes == [8, 4] and args.exploration_rate.startswith("linear(")
    args = parse_args(["--env", "Chain-v0", "--double", "--hidden-sizes", "16",
                       "--logdir", str(tmp_path / "run2")])
    assert args.double is True and args.hidden_sizes == [16]


@pytest.mark.parametrize("text, words", [
    ('["Chain-v0"]\nlearning-rate = 0.1\n', ["'learning-rate' is not a flag", "dqn.toml"]),
    ('["Chain-v0"]\nlr = 0\n', ["--lr", "positive"]),
    ('["Chain-v0"\nlr = 0.1\n', ["dqn.toml", "unreadable"]),
])
def test_a_broken_preset_is_a_one_line_error(monkeypatch, tmp_path, capsys, text, words):
    from train_dqn import parse_args

    _with_preset_file(monkeypatch, tmp_path, text)
    with pytest.raises(SystemExit) as stop:
        parse_args(["--env", "Chain-v0", "--logdir", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and len(err.splitlines()) == 1, err
    assert all(w in err for w in words), err
    assert not os.path.exists(tmp_path / "run")


def test_list_presets_prints_each_env_without_tensorflow():
    code = ("import runpy, sys\nsys.argv = ['train_dqn.py', '--list-presets']\n"
            "try:\n    runpy.run_path('scripts/train_dqn.py', run_name='__main__')\n"
            "except SystemExit as e:\n    assert e.code == 0, e.code\n"
            "assert 'tensorflow' not in sys.modules\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT)
    assert result.returncode == 0, result.stderr
    for env in presets.load("dqn"):
        assert f"--env {env}:" in result.stdout
    assert "--total-steps" in result.stdout


#: Flags that shrink a preset's run to a smoke test: a few hundred env steps (DQN's into a
#: small replay, before its first update: other tests train each network kind), no evaluation
#: (a whole Pong game would take most of the time), no XLA compile; the preset's other flags
#: stay as they are.
_QUIET = ["--eval-freq", "0", "--eval-episodes", "0", "--no-progress", "--no-jit-compile"]
SMOKE = {"a2c": ["--total-steps", "320", *_QUIET],
         "dqn": ["--total-steps", "300", "--learning-starts", "300", "--buffer-size", "1000",
                 *_QUIET],
         "ppo": ["--total-steps", "512", "--n-steps", "64", "--n-epochs", "1", *_QUIET]}


@pytest.mark.parametrize("algo, env", [(a, e) for a in sorted(SMOKE) for e in presets.load(a)])
def test_every_preset_constructs_and_runs_a_few_hundred_steps(algo, env, tmp_path, capsys):
    module = importlib.import_module(f"train_{algo}")
    assert module.main(["--env", env, "--logdir", str(tmp_path / "run"), *SMOKE[algo]]) == 0
    steps = SMOKE[algo][SMOKE[algo].index("--total-steps") + 1]
    summary = capsys.readouterr().out
    assert f"{algo} on {env}: not evaluated" in summary and f"after {steps} env steps" in summary
