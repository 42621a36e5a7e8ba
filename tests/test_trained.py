"""Using a trained agent: scripts/evaluate.py and scripts/export.py on real run directories."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, run_script_without

from rlharness.logger import read_scalars

sys.path.insert(0, os.path.join(ROOT, "scripts"))
import evaluate  # noqa: E402
import export  # noqa: E402
import train_a2c  # noqa: E402


@pytest.fixture(scope="module")
def a2c_run(tmp_path_factory):
    """Box actions and normalized observations and rewards: Pendulum-v1."""
    run_dir = str(tmp_path_factory.mktemp("a2c") / "run")
    assert train_a2c.main(["--env", "Pendulum-v1", "--logdir", run_dir, "--total-steps", "800",
                           "--n-envs", "2", "--hidden-sizes", "16", "--eval-freq", "0",
                           "--eval-episodes", "3", "--normalize-obs", "--normalize-reward",
                           "--log-std-init", "-0.5", "--no-progress", "--seed", "3"]) == 0
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


def test_a_run_from_before_a_flag_existed_gets_its_default(a2c_run, tmp_path):
    from rlharness.restore import read_run

    config = json.load(open(os.path.join(a2c_run, "config.json")))
    del config["args"]["log_std_init"]  # A2C had no --log-std-init before
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert read_run(str(tmp_path)).args.log_std_init == 0.0
    assert read_run(a2c_run).args.normalize_obs is True


def test_a2c_takes_the_initial_log_std_from_its_flag(a2c_run):
    from rlharness import cli
    from rlharness.restore import read_run

    run = read_run(a2c_run)
    agent = train_a2c.make_agent(run.args, cli.make_env_from_args(run.args), 1e-3)
    assert agent.policy_params(np.zeros((1, 3), np.float32))[0, 1] == -0.5  # [μ, log σ]


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
    result = run_script_without("moviepy", "evaluate.py", finished_run, "--video",
                                str(tmp_path / "v"))
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
for name in sys.argv[1:]:
    obs = tf.constant(np.load(name + "-obs.npy"), tf.float32)
    policy = tf.saved_model.load(name)  # kept: a collected policy deletes its variables
    np.save(name + ".npy", policy.serve(obs).numpy())
"""


def test_export_round_trip_in_a_process_without_rlharness(finished_run, a2c_run, tmp_path,
                                                          capsys):
    """The exported policy maps RAW observations to the agent's own greedy actions: a
    --normalize-obs run's frozen statistics are baked in (Pendulum-v1, Box actions)."""
    import gymnasium as gym
    import tensorflow as tf

    from envs.make import observation_normalizer
    from rlharness import cli
    from rlharness.restore import checkpoint_path, load_agent, read_run

    rng = np.random.default_rng(0)
    runs = {"dqn": finished_run, "a2c": a2c_run}
    raw = {"dqn": rng.standard_normal((512, 4)) * 3,  # CartPole-v1 observations
           "a2c": np.c_[rng.uniform(-1, 1, (512, 2)), rng.uniform(-8, 8, 512)]}  # Pendulum
    for name, run_dir in runs.items():
        np.save(tmp_path / f"{name}-obs.npy", raw[name].astype(np.float32))
        assert export.main([run_dir, "--out", str(tmp_path / name)]) == 0
        out = capsys.readouterr().out
        assert "greedy policy saved to" in out
        assert ("(observation normalization included)" in out) == (name == "a2c")
    env_vars = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-I", "-S", "-c", _OUTSIDE, *runs],
                            capture_output=True, text=True, cwd=tmp_path, env=env_vars)
    assert result.returncode == 0, result.stderr[-2000:]
    for name, run_dir in runs.items():
        run = read_run(run_dir)
        env = cli.make_env_from_args(run.args, evaluation=True)
        agent, _ = load_agent(run, checkpoint_path(run_dir), env)
        obs = np.load(tmp_path / f"{name}-obs.npy")
        exported = np.load(tmp_path / f"{name}.npy")
        if name == "dqn":
            np.testing.assert_array_equal(exported, agent.act(obs, explore=False))
            assert len(set(exported.tolist())) == 2, "a constant policy tests nothing"
            continue
        clip, normalize = env.unwrapped.envs[0], env.unwrapped.envs[0].env  # as in evaluation
        seen = np.stack([clip.observation(normalize.observation(o)) for o in obs])
        as_exported = export.greedy_policy(_Identity(), observation_normalizer(env),
                                           gym.spaces.Discrete(2))  # Discrete: no clipping
        np.testing.assert_array_equal(as_exported(tf.constant(obs)).numpy(), seen)  # exact
        ours = np.clip(agent.act(seen, explore=False), -2, 2)
        np.testing.assert_allclose(exported, ours, rtol=1e-5, atol=1e-6)
        assert np.abs(ours - agent.act(obs, explore=False)).max() > 1e-3, \
            "the statistics changed nothing: this tests no normalization"


class _Identity:
    """An agent whose greedy action is its (normalized) observation."""

    def greedy_actions(self, obs):
        return obs


def test_export_refuses_a_used_out_dir(finished_run, tmp_path, capsys):
    (tmp_path / "x").write_text("keep")
    with pytest.raises(SystemExit) as stop:
        export.main([finished_run, "--out", str(tmp_path)])
    assert stop.value.code == 2
    assert "is not an empty directory" in capsys.readouterr().err
    assert (tmp_path / "x").read_text() == "keep"
