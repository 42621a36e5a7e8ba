"""Using a trained agent: scripts/evaluate.py and scripts/export.py on real run directories."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

from rlharness.logger import read_scalars

sys.path.insert(0, os.path.join(ROOT, "scripts"))
import evaluate  # noqa: E402
import export  # noqa: E402
import train_a2c  # noqa: E402


@pytest.fixture(scope="module")
def a2c_run(tmp_path_factory):
    run_dir = str(tmp_path_factory.mktemp("a2c") / "run")
    assert train_a2c.main(["--logdir", run_dir, "--total-steps", "800", "--n-envs", "2",
                           "--hidden-sizes", "16", "--eval-freq", "0", "--eval-episodes", "3",
                           "--no-progress", "--seed", "3"]) == 0
    return run_dir


def _mean(out: str) -> float:
    return float(re.search(r"mean return (-?[\d.]+) ± ", out).group(1))


@pytest.mark.parametrize("which", ["dqn", "a2c"])
def test_evaluate_seed_run_reproduces_the_runs_final_evaluation(which, finished_run, a2c_run,
                                                                capsys):
    run_dir = finished_run if which == "dqn" else a2c_run
    episodes = json.load(open(os.path.join(run_dir, "config.json")))["args"]["eval_episodes"]
    (step, logged), = read_scalars(run_dir)["eval/mean_return"][-1:]
    assert evaluate.main([run_dir, "--seed", "run", "--episodes", str(episodes)]) == 0
    out = capsys.readouterr().out
    assert f"ckpt-{step} ({step} env steps)" in out
    assert _mean(out) == pytest.approx(logged, abs=0.051), out
    assert evaluate.main([run_dir, "--seed", "7", "--episodes", "1"]) == 0
    assert "over 1 greedy episodes (--seed 7;" in capsys.readouterr().out


def test_evaluate_records_one_video_per_episode(finished_run, tmp_path, capsys):
    pytest.importorskip("moviepy")
    assert evaluate.main([finished_run, "--episodes", "2", "--video", str(tmp_path / "v")]) == 0
    assert sorted(os.listdir(tmp_path / "v")) == [
        f"dqn-CartPole-v1-episode-{i}.mp4" for i in range(2)]


def _refused(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as stop:
        evaluate.main(argv)
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and len(err.splitlines()) == 1, err
    return err


def test_evaluate_refuses_in_one_line(finished_run, tmp_path, capsys):
    assert "is not a run directory (it has no config.json)" in _refused([str(tmp_path)], capsys)
    assert "is not a directory" in _refused([str(tmp_path / "nope")], capsys)
    err = _refused([finished_run, "--checkpoint", "ckpt-7"], capsys)
    assert "has no checkpoint 'ckpt-7'; it has ckpt-1000" in err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep")
    assert "not an empty directory" in _refused(
        [finished_run, "--video", str(tmp_path / "full")], capsys)
    assert (tmp_path / "full" / "x").read_text() == "keep"


def test_evaluate_names_the_video_extra_when_moviepy_is_missing(finished_run, tmp_path):
    code = ("import runpy, sys; sys.modules['moviepy'] = None; "  # as if not installed
            f"sys.argv = ['evaluate.py', {finished_run!r}, '--video', {str(tmp_path / 'v')!r}]; "
            f"runpy.run_path({os.path.join(ROOT, 'scripts', 'evaluate.py')!r}, "
            "run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT)
    assert result.returncode == 2
    assert result.stderr.strip() == ("evaluate.py: error: --video needs moviepy, which is not "
                                     "installed; pip install -e '.[video]'")
    assert not (tmp_path / "v").exists()


#: Runs in a process that has TensorFlow but not this project: -I -S (no PYTHONPATH, no
#: .pth files such as the editable install's), site-packages added by hand, cwd elsewhere.
_OUTSIDE = """
import sys, sysconfig
sys.path += [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
try:
    import rlharness
    sys.exit("rlharness is importable here")
except ImportError:
    pass
import numpy as np, tensorflow as tf
obs = tf.constant(np.load("obs.npy"), tf.float32)
for name in sys.argv[1:]:
    policy = tf.saved_model.load(name)  # kept: a collected policy deletes its variables
    np.save(name + ".npy", policy.serve(obs).numpy())
"""


def test_export_round_trip_in_a_process_without_rlharness(finished_run, a2c_run, tmp_path,
                                                          capsys):
    from envs import make_vec_env
    from rlharness.restore import checkpoint_path, load_agent, read_run

    rng = np.random.default_rng(0)
    obs = (rng.standard_normal((512, 4)) * 3).astype(np.float32)  # CartPole-v1 observations
    np.save(tmp_path / "obs.npy", obs)
    runs = {"dqn": finished_run, "a2c": a2c_run}
    for name, run_dir in runs.items():
        assert export.main([run_dir, "--out", str(tmp_path / name)]) == 0
        assert "greedy policy saved to" in capsys.readouterr().out
    env_vars = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-I", "-S", "-c", _OUTSIDE, *runs],
                            capture_output=True, text=True, cwd=tmp_path, env=env_vars)
    assert result.returncode == 0, result.stderr[-2000:]
    for name, run_dir in runs.items():
        run = read_run(run_dir)
        agent, _ = load_agent(run, checkpoint_path(run_dir), make_vec_env(run.args.env, 1))
        exported = np.load(tmp_path / f"{name}.npy")
        np.testing.assert_array_equal(exported, agent.act(obs, explore=False), err_msg=name)
        assert len(set(exported.tolist())) == 2, f"{name}: a constant policy tests nothing"


def test_export_refuses_a_used_out_dir(finished_run, tmp_path, capsys):
    (tmp_path / "x").write_text("keep")
    with pytest.raises(SystemExit) as stop:
        export.main([finished_run, "--out", str(tmp_path)])
    assert stop.value.code == 2
    assert "is not an empty directory" in capsys.readouterr().err
    assert (tmp_path / "x").read_text() == "keep"
