"""scripts/bench.py runs its sections end to end at tiny sizes (no timing assertions)."""

import importlib.util
import os
import sys
from dataclasses import replace

import pytest
from conftest import ROOT

spec = importlib.util.spec_from_file_location("bench", os.path.join(ROOT, "scripts", "bench.py"))
bench = sys.modules["bench"] = importlib.util.module_from_spec(spec)  # for @dataclass
spec.loader.exec_module(bench)

TINY = replace(bench.FULL, hidden=(8,), gradient_steps=2, fill=200, warmup=0, rounds=1,
               ab_reps=2, ab_rounds=1, calls=8, slow_calls=1, e2e_steps=0,
               jit_compile=False, per_capacity=1000)


def test_sections_print_their_tables(capsys):
    per_step = bench.bench_update_modes(["tf_function"], TINY)
    assert set(per_step) == {"tf_function"}
    bench.bench_acting(TINY)
    bench.bench_lr_costs(TINY, per_step["tf_function"])
    out = capsys.readouterr().out
    for title in ("### 1.", "### 2.", "### 3."):
        assert title in out
    for row in ("| tf_function | 1 |", "eager `model.fit(epochs=1)`", "`agent.act(obs)`",
                "`train_on_batch` per minibatch", "(a) in-graph ClockedLearningRate",
                "(c) eager `tf.summary.scalar`"):
        assert row in out


def test_rainbow_sections_print_their_tables(capsys):
    bench.bench_components(TINY)
    bench.bench_per(TINY)
    out = capsys.readouterr().out
    for row in ("### 5.", "| Double DQN (plain) |", "| `--rainbow` (all five) |", "### 6.",
                "sum tree: stratified sample of 64"):
        assert row in out


def test_ppo_section_prints_where_the_time_goes(capsys):
    bench.bench_ppo(TINY, steps=0)
    out = capsys.readouterr().out
    for row in ("### 10a.", "| env.step (8 sub-envs) |", "| agent.update (compiled round",
                "| all |"):
        assert row in out


def test_parse_return_and_args():
    assert bench.parse_return("dqn on CartPole-v1: eval mean return 143.2 (20 ...") == 143.2
    assert bench.parse_return("nothing") is None
    args = bench.parse_args(["--quick", "--modes", "fit", "--seeds", "2"])
    assert args.quick and args.modes == ["fit"] and args.seeds == 2 and not args.skip_e2e
    with pytest.raises(SystemExit):
        bench.parse_args(["--seeds", "0"])
