"""Scheduled hyperparameters (ε, PER β, τ, A2C's entropy coefficient): exact values logged on
the right axis and the CLI's schedule syntax. (A --rainbow run killed and resumed at every
kill point: test_faults.)"""

import os
import sys

import numpy as np
import pytest
from conftest import BETA, EPSILON, ROOT, train_dqn
from test_checkpoint import steps_of
from test_cli import assert_one_line_error

from agents.a2c import A2C
from envs import make_vec_env
from rlharness import GlobalStep, read_scalars
from rlharness.hyper import Scheduled
from rlharness.schedule_flags import CLOCKS, schedule_spec
from rlharness.schedules import ExponentialDecay, LinearDecay
from rlharness.trainer import Trainer


def test_scheduled_values_are_the_schedule_at_the_clock():
    hyper = Scheduled(ExponentialDecay(0.5, 100, 0.5), "episodes")
    step = GlobalStep(updates=7, env_steps=5000, episodes=250)
    assert hyper.value(step) == pytest.approx(0.5 * 0.5**2.5, rel=1e-6)
    for t in (0, 1, 4095, 4096, 10_000, 3):  # across memo blocks, backwards too
        assert hyper.at(t) == float(np.float32(ExponentialDecay(0.5, 100, 0.5)(t)))
    np.testing.assert_array_equal(hyper.per_update(step, 7, 3), [hyper.value(step)] * 3)
    on_updates = Scheduled(LinearDecay(1.0, 10, 0.0), "updates")
    np.testing.assert_allclose(on_updates.per_update(step, 7, 5), [0.3, 0.2, 0.1, 0, 0],
                               atol=1e-7)
    assert Scheduled(0.0).value(step) == 0.0  # a number: a constant that may be 0
    spec = schedule_spec("exponential(0.01, rate=0.5, steps=1000)@updates")
    assert (spec.name, spec.initial, spec.clock) == ("exponential", 0.01, "updates")
    from rlharness.step import CLOCKS as STEP_CLOCKS

    assert CLOCKS == STEP_CLOCKS


@pytest.mark.parametrize("flag, value, fragment", [
    ("--per-beta", "linear(0.4)", "linear needs steps=N"),
    ("--exploration-rate", "0.1@days", "unknown clock 'days'"),
    ("--tau", "cosine(1, steps=5, warm=3)", "unknown key 'warm'"),
    ("--exploration-rate", "-0.1", "non-negative"),
])
def test_bad_schedule_flags_are_one_line_errors(tmp_path, flag, value, fragment):
    result = train_dqn("--logdir", str(tmp_path / "run"), flag, value)
    assert_one_line_error(result, flag, fragment)
    assert not os.path.exists(tmp_path / "run")


def test_a2c_entropy_coefficient_schedule_is_used_in_graph_and_logged_per_update(tmp_path):
    schedule = LinearDecay(0.05, 20, 0.0)
    env = make_vec_env("CartPole-v1", 2, seed=0)
    agent = A2C(env.single_observation_space, env.single_action_space, n_steps=5,
                ent_coef=Scheduled(schedule, "updates"), hidden_sizes=(16,), seed=0)
    trainer = Trainer(agent, env, total_steps=300, log_dir=str(tmp_path), seed=0, progress=False)
    trainer.train()
    trainer.writer.close()
    points = read_scalars(str(tmp_path))
    coef = points["train/ent_coef"]
    assert steps_of(coef) == list(range(30))
    np.testing.assert_allclose([v for _, v in coef], [float(schedule(u)) for u in range(30)],
                               rtol=1e-6)
    # the loss each update reports used exactly that coefficient
    value = {tag: np.array([v for _, v in points[f"train/{tag}"]])
             for tag in ("loss", "policy_loss", "value_loss", "entropy", "ent_coef")}
    np.testing.assert_allclose(
        value["loss"], value["policy_loss"] + 0.5 * value["value_loss"]
        - value["ent_coef"] * value["entropy"], rtol=1e-4, atol=1e-6)


def test_schedules_are_logged_exactly_at_their_steps(rainbow_uninterrupted):
    points = read_scalars(rainbow_uninterrupted)
    eps, beta = schedule_spec(EPSILON).build(), schedule_spec(BETA).build()
    episodes = points["rollout/exploration_rate"]
    assert steps_of(episodes) == steps_of(points["rollout/ep_return"])  # one per episode end
    np.testing.assert_allclose([v for _, v in episodes],
                               [float(eps(s)) for s in steps_of(episodes)], rtol=1e-6)
    betas = points["train/per_beta"]
    assert steps_of(betas) == list(range(8 * len(range(300, 2001, 100))))  # every update
    np.testing.assert_allclose([v for _, v in betas], [float(beta(u)) for u in steps_of(betas)],
                               rtol=1e-6)
    np.testing.assert_allclose([v for _, v in points["train/tau"]], 0.9, rtol=1e-6)


def test_lr_takes_the_same_schedule_syntax_and_its_clock(tmp_path):
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    from train_dqn import parse_args

    from rlharness.cli import make_schedule_from_args

    args = parse_args(["--lr", "cosine(0.001, steps=200)@env_steps", "--logdir",
                       str(tmp_path / "a")])
    assert args.lr_clock == "env_steps"
    schedule = make_schedule_from_args(args)
    assert float(schedule(100)) == pytest.approx(0.0005, rel=1e-5)
    plain = parse_args(["--lr", "0.01", "--lr-schedule", "constant", "--logdir",
                        str(tmp_path / "b")])  # today's flags still work
    assert float(make_schedule_from_args(plain)(10**6)) == pytest.approx(0.01)
