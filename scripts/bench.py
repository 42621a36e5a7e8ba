"""Benchmark rlharness's DQN on this machine: update modes, acting, lr control and logging
costs, and end-to-end CartPole-v1 training against Stable-Baselines3, all in one run; PPO's
costs with --only ppo.

    python scripts/bench.py                # full run, several minutes: use a quiet machine
    python scripts/bench.py --quick        # smoke run (noisy, small sizes)
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from rlharness.cli import (  # noqa: E402  (no TF)
    UPDATE_MODES,
    ArgumentParser,
    import_tensorflow_quietly,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = ArgumentParser(prog="bench.py", description=" ".join(__doc__.split("\n\n")[0].split()))
    p.add_argument("--quick", action="store_true",
                   help="smoke run: few rounds, 5000-step end-to-end runs (noisy numbers)")
    p.add_argument("--skip-e2e", action="store_true", help="skip the end-to-end training runs")
    p.add_argument("--seeds", type=int, default=1, metavar="N",
                   help="end-to-end runs per mode, seeds 0..N-1 (default: %(default)s)")
    p.add_argument("--only", choices=("core", "rainbow", "ppo"), default=None,
                   help="only sections 1-4 (update modes, acting, lr, end to end), only "
                        "5-7 (Rainbow components, PER, end to end plain vs --rainbow), or only "
                        "10 (PPO on CartPole-v1 with 8 envs: where the time goes, vs SB3)")
    p.add_argument("--modes", nargs="+", choices=UPDATE_MODES, default=list(UPDATE_MODES),
                   help="update modes to time (default: all)")
    p.add_argument("--sweep", action="store_true",
                   help="only section 8: a 4-trial sweep on Ray Tune vs the same 4 runs one "
                        "after another, and Ray's start-up (needs the sweep extra)")
    p.add_argument("--pixels", action="store_true",
                   help="only section 9: the frame replay (84x84x4), the Nature-CNN gradient "
                        "step against its FLOP floor, the replay's checkpoint memory, DQN on "
                        "ALE/Pong-v5 with training vs SB3 (needs the atari extra)")
    p.add_argument("--replay-checkpoint-rss", type=int, default=None, metavar="N",
                   help="only: peak RSS growth of saving and of restoring a checkpoint of a "
                        "frame replay of N 84x84 transitions, as JSON (section 9d runs it "
                        "in a fresh process)")
    p.add_argument("--pixel-steps", type=int, default=20_000, metavar="N",
                   help="env steps of the Pong run in section 9 (default: %(default)s)")
    p.add_argument("--sweep-steps", type=int, default=50_000, metavar="N",
                   help="env steps per run in section 8 (default: %(default)s)")
    args = p.parse_args(argv)
    if args.seeds < 1:
        p.error("--seeds must be at least 1")
    if args.pixel_steps < 1:
        p.error("--pixel-steps must be at least 1")
    if args.replay_checkpoint_rss is not None and args.replay_checkpoint_rss < 1000:
        p.error("--replay-checkpoint-rss must be at least 1000")
    if args.sweep_steps < 1:
        p.error("--sweep-steps must be at least 1")
    args.modes = list(dict.fromkeys(args.modes))
    return args


if __name__ == "__main__":
    ARGS = parse_args()  # --help and mistakes answer before the TF import
import_tensorflow_quietly()

import gymnasium as gym  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from agents.dqn import DQN, mlp  # noqa: E402
from envs import make_vec_env  # noqa: E402
from rlharness.controller import DecayController  # noqa: E402
from rlharness.logger import RunWriter  # noqa: E402
from rlharness.schedules import make_schedule  # noqa: E402
from rlharness.step import GlobalStep  # noqa: E402

LR, BATCH = 2.3e-3, 64  # rl-zoo3's CartPole-v1 DQN (train_dqn.py's defaults)
SB3_MISSING = "SB3 not installed: pip install torch==2.13.0 stable-baselines3"


@dataclass(frozen=True)
class Sizes:
    hidden: tuple[int, ...] = (256, 256)
    gradient_steps: int = 128
    fill: int = 5000        # random transitions in the replay buffer
    warmup: int = 2         # rounds after the first (tracing) one, not timed
    rounds: int = 15        # timed rounds per update mode (interleaved)
    ab_reps: int = 7        # alternating A/B repetitions for the in-graph lr cost
    ab_rounds: int = 4      # rounds per A or B timing
    calls: int = 2000       # calls of a µs-scale operation per timing
    slow_calls: int = 40    # calls of a ms-scale operation (predict, eager fit) per timing
    e2e_steps: int = 50_000
    per_capacity: int = 1_000_000  # full prioritized buffer for section 6
    jit_compile: bool = True  # the DQN default


FULL = Sizes()
QUICK = replace(FULL, warmup=1, rounds=5, ab_reps=3, ab_rounds=2, calls=200, slow_calls=8,
                e2e_steps=5000)


# -- helpers ------------------------------------------------------------------------------
def per_call(fn, n: int = 1, repeats: int = 1, clock=time.perf_counter) -> float:
    """Seconds per call of ``fn``: the median over ``repeats`` timings of ``n`` calls
    (``clock=time.thread_time``: the calling thread's CPU seconds, robust to load)."""
    n = max(1, n)

    def once() -> float:
        start = clock()
        for _ in range(n):
            fn()
        return (clock() - start) / n

    return statistics.median(once() for _ in range(repeats))


def cpu_and_wall(fn, n: int) -> tuple[float, float]:
    """Mean wall and process CPU seconds per call of ``fn`` over ``n`` calls (CPU time: what
    the call costs, whatever else runs on the machine)."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        fn()
    return (time.perf_counter() - wall) / n, (time.process_time() - cpu) / n


def timed_run(cmd: list[str], label: str, env: dict | None = None
              ) -> tuple[float, float, str, bool]:
    """Whole-process wall and CPU (user + system) seconds, stdout and success of ``cmd`` (a
    failure prints its stderr). CPU seconds are what the run costs whatever else runs."""
    print(f"running {label} ...", file=sys.stderr, flush=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    if result.returncode != 0:
        print(f"{label} FAILED ({result.returncode}): {result.stderr[-2000:]}")
    return seconds, cpu, result.stdout, result.returncode == 0


def table(title: str, header: list[str], rows: list[list]) -> None:
    print(f"\n### {title}\n\n| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")


def make_agent(mode: str, sizes: Sizes, controlled: bool = True, seed: int = 0,
               **components):
    """A DQN with a filled buffer, and the DecayController the Trainer attaches to it.
    ``controlled=False``: no controller, the optimizer is an Adam with a constant float lr
    (a plain variable) swapped in before the first update traces (tf_function mode only)."""
    obs_space = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
    schedule = make_schedule("exponential", LR, decay_steps=10_000, decay_rate=0.3)
    agent = DQN(obs_space, gym.spaces.Discrete(2), learning_rate=schedule, batch_size=BATCH,
                gradient_steps=sizes.gradient_steps, hidden_sizes=sizes.hidden,
                update_mode=mode, jit_compile=sizes.jit_compile, seed=seed, **components)
    step = GlobalStep()
    agent.bind(step, FULL.e2e_steps)
    controller = DecayController(agent.optimizer, None, step, "updates") if controlled else None
    if not controlled:
        assert mode == "tf_function", "the Keras modes compiled the original optimizer"
        agent.optimizer = keras.optimizers.Adam(LR)
        agent.optimizer.build(agent.q_net.trainable_variables)
    rng = np.random.default_rng(seed)
    high = np.array([2.4, 3.0, 0.21, 3.5], np.float32)  # CartPole-like observations
    obs = rng.uniform(-high, high, (sizes.fill, 4)).astype(np.float32)
    next_obs = obs + rng.normal(0, 0.05, obs.shape).astype(np.float32)
    agent.buffer.add(obs, rng.integers(0, 2, sizes.fill), np.ones(sizes.fill, np.float32),
                     next_obs, rng.random(sizes.fill) < 0.05)
    return agent, controller


def trainer_round(agent, controller):
    """What Trainer._train_round does around the update (logging measured in section 3)."""
    def run():
        controller.before_update()
        agent.update()
        controller.after_update()

    run.controller = controller
    return run


# -- 1. update modes ----------------------------------------------------------------------
def bench_update_modes(modes: list[str], sizes: Sizes) -> dict[str, float]:
    """Table of ms per round / per gradient step; returns ms per gradient step by mode."""
    g, runs, first, times = sizes.gradient_steps, {}, {}, {m: [] for m in modes}
    for mode in modes:
        agent, controller = make_agent(mode, sizes)
        runs[mode] = trainer_round(agent, controller)
        first[mode] = per_call(runs[mode])
        for _ in range(sizes.warmup):
            runs[mode]()
    for rep in range(sizes.rounds):  # interleaved, so that load from others hits all modes
        for mode in modes if rep % 2 == 0 else modes[::-1]:
            times[mode].append(per_call(runs[mode]))
    per_step = {m: 1e3 * statistics.median(t) / g for m, t in times.items()}
    calls = 1 + sizes.warmup + sizes.rounds
    assert all(r.controller.global_step.updates == calls * g for r in runs.values())
    rows = [[m, 1, f"{first[m]:.2f}", f"{per_step[m] * g:.1f}", f"{per_step[m]:.3f}"]
            for m in modes]
    net = mlp(4, 2, sizes.hidden, "naive_q_net")
    net.compile(keras.optimizers.Adam(LR), loss="mse")  # default jit_compile ("auto")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(BATCH, 4)).astype(np.float32)
    y = rng.normal(size=(BATCH, 2)).astype(np.float32)
    naive = {
        "eager `model.fit(epochs=1)` per minibatch (MSE)": (
            lambda: net.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False),
            sizes.slow_calls),
        "`train_on_batch` per minibatch (MSE)": (lambda: net.train_on_batch(x, y),
                                                 sizes.calls // 10),
    }
    for name, (fn, n) in naive.items():
        first = per_call(fn)
        ms = 1e3 * per_call(fn, n, repeats=3)
        rows.append([name, g, f"{first:.2f}", f"{ms * g:.1f} (extrapolated)", f"{ms:.3f}"])
    fastest = min(per_step.values(), default=None)
    for row in rows:
        row.append(f"{float(row[4]) / fastest:.2f}" if fastest else "-")
    table(f"1. Training cost per round of {g} gradient steps (batch {BATCH}, MLP "
          f"{sizes.hidden}), medians", ["update path", "calls per round",
          "first call s (trace+compile)", "ms per round", "ms per gradient step",
          "x fastest mode"], rows)
    return per_step


# -- 2. acting ----------------------------------------------------------------------------
def bench_acting(sizes: Sizes) -> None:
    agent, _ = make_agent("tf_function", sizes)
    obs = np.array([[0.01, -0.02, 0.03, 0.04]], np.float32)
    q_net = agent.q_net
    forward = tf.function(lambda x: q_net(x, training=False))

    def act_after_update():
        agent._acting_weights = None  # what update() does: the next act re-reads the weights
        agent.act(obs)

    env = gym.make("CartPole-v1")
    env.reset(seed=0)
    vec = make_vec_env("CartPole-v1", 1, seed=0)
    vec_actions = np.array([1])

    def env_step():
        if any(env.step(1)[2:4]):
            env.reset()

    cases = [
        ("`agent.act(obs)` (numpy forward, eps-greedy)", lambda: agent.act(obs), sizes.calls),
        ("`agent.act(obs)` first after an update (get_weights)", act_after_update,
         sizes.calls // 4),
        ("`q_net.predict(obs, verbose=0)`", lambda: q_net.predict(obs, verbose=0).argmax(1),
         sizes.slow_calls),
        ("`q_net.predict_on_batch(obs)`", lambda: q_net.predict_on_batch(obs).argmax(1),
         sizes.calls // 10),
        ("`tf.function` forward", lambda: forward(obs).numpy().argmax(1), sizes.calls // 4),
        ("CartPole-v1 `env.step` (gym.make, reset when done)", env_step, sizes.calls),
        ("`make_vec_env(CartPole-v1, 1).step`", lambda: vec.step(vec_actions), sizes.calls),
    ]
    rows = []
    for name, fn, n in cases:
        fn()  # trace / warm
        rows.append([name, 1e6 * per_call(fn, n, repeats=3)])
    base = rows[0][1]
    table("2. Action selection per env step, obs shape (1, 4), medians",
          ["call", "µs per call", "x agent.act"],
          [[name, f"{us:.1f}", f"{us / base:.1f}"] for name, us in rows])


# -- 3. lr control and logging ------------------------------------------------------------
def bench_lr_costs(sizes: Sizes, step_ms: float | None) -> None:
    g = sizes.gradient_steps
    a, controller = make_agent("tf_function", sizes)
    b, _ = make_agent("tf_function", sizes, controlled=False)
    run_a = trainer_round(a, controller)
    for _ in range(1 + sizes.warmup):
        run_a()
        b.update()

    def time_a() -> float:  # the update alone: the controller's Python side is timed below
        controller.before_update()
        seconds = per_call(a.update, sizes.ab_rounds)
        controller.after_update()
        return seconds

    ta, tb = [], []
    timers = [(time_a, ta), (lambda: per_call(b.update, sizes.ab_rounds), tb)]
    for rep in range(sizes.ab_reps):  # alternate which goes first, take medians
        for timer, times in timers if rep % 2 == 0 else timers[::-1]:
            times.append(timer())
    diff = [x - y for x, y in zip(ta, tb)]
    assert int(b.optimizer.iterations) == int(a.optimizer.iterations), "B's optimizer unused"
    step_ms = step_ms or 1e3 * statistics.median(ta) / g
    py_round = per_call(lambda: (controller.before_update(), controller.after_update()),
                        sizes.calls, repeats=3)

    with tempfile.TemporaryDirectory() as log_dir:
        writer = RunWriter(os.path.join(log_dir, "run"))
        first = [0]

        def log_round(flush: bool = True):  # Trainer._train_round's logging of one round
            f = first[0]
            writer.scalars("train/learning_rate", controller.learning_rates(f, g),
                           range(f, f + g))
            last = f + g - 1
            for tag in ("train/loss", "train/q_mean", "time/sps", "time/env_steps"):
                writer.scalar(tag, 1.0, last)
            if flush:
                writer.flush()
            first[0] += g

        log_round()
        log_flush = per_call(log_round, sizes.slow_calls * 2, repeats=3)
        log_buffer = per_call(lambda: log_round(False), sizes.slow_calls * 2, repeats=3)
        writer.close()
        summary_writer = tf.summary.create_file_writer(os.path.join(log_dir, "eager"))
        counter = iter(range(10**9))
        with summary_writer.as_default():
            eager = per_call(lambda: tf.summary.scalar("lr", LR, step=next(counter)),
                             sizes.calls // 4, repeats=3)
        summary_writer.close()
    optimizer = keras.optimizers.Adam(LR)
    assign = per_call(lambda: setattr(optimizer, "learning_rate", LR / 2), sizes.calls,
                      repeats=3)

    def row(name, round_s, update_s):
        us = 1e6 * update_s
        return [name, "-" if round_s is None else f"{1e6 * round_s:.1f}", f"{us:.2f}",
                f"{100 * us / (1e3 * step_ms):.2f}%"]

    d = statistics.median(diff)
    rows = [
        row("(a) in-graph ClockedLearningRate vs constant float lr (A-B, median "
            f"of {sizes.ab_reps}; A {1e3 * statistics.median(ta) / g:.3f} ms/step, "
            f"B {1e3 * statistics.median(tb) / g:.3f} ms/step)", d, d / g),
        row("(a) controller.before_update + after_update (Python)", py_round, py_round / g),
        row("(b) lr of the round + 4 metric scalars into RunWriter, flush every round",
            log_flush, log_flush / g),
        row("(b) same, buffered only (Trainer flushes every 5 s)", log_buffer, log_buffer / g),
        row("(c) eager `tf.summary.scalar` per update", None, eager),
        row("(c) Python `optimizer.learning_rate = value` per update", None, assign),
    ]
    table(f"3. lr control and logging per update, % of a tf_function gradient step "
          f"({step_ms:.3f} ms)", ["cost", "µs per round", "µs per update",
                                  "% of gradient step"], rows)


# -- 4. end to end ------------------------------------------------------------------------
SB3_SCRIPT = """
import sys, torch
torch.set_num_threads(1)
import gymnasium as gym
from stable_baselines3 import DQN
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
steps, seed = int(sys.argv[1]), int(sys.argv[2])
model = DQN("MlpPolicy", "CartPole-v1", learning_rate=2.3e-3, batch_size=64,
            buffer_size=100_000, learning_starts=1000, gamma=0.99, target_update_interval=10,
            train_freq=256, gradient_steps=128, exploration_fraction=0.16,
            exploration_final_eps=0.04, policy_kwargs=dict(net_arch=[256, 256]), seed=seed,
            verbose=0).learn(steps)
eval_env = Monitor(gym.make("CartPole-v1"))
eval_env.reset(seed=seed + 1000)
mean, _ = evaluate_policy(model, eval_env, n_eval_episodes=20, deterministic=True)
print(f"eval mean return {mean:.1f}")
"""


def parse_return(stdout: str) -> float | None:
    match = re.search(r"eval mean return (-?[\d.]+|nan)", stdout)
    return float(match.group(1)) if match else None


def timed_process(cmd: list[str], label: str) -> tuple[float, float | None]:
    """Whole-process wall seconds of ``cmd`` and the eval return it printed (None if it
    failed)."""
    seconds, _, stdout, ok = timed_run(cmd, label)
    return seconds, parse_return(stdout) if ok else None


def bench_e2e(modes: list[str], seeds: int, steps: int) -> None:
    results: dict[str, list[tuple[float, float | None]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(seeds):
            for mode in modes:
                cmd = [sys.executable, os.path.join(ROOT, "scripts", "train_dqn.py"),
                       "--total-steps", str(steps), "--eval-freq", "0", "--checkpoint-every",
                       "0", "--no-progress", "--logdir", os.path.join(tmp, f"{mode}-{seed}"),
                       "--update-mode", mode, "--seed", str(seed)]
                results.setdefault(mode, []).append(timed_process(cmd, f"{mode} seed {seed}"))
            if importlib.util.find_spec("stable_baselines3") is not None:
                cmd = [sys.executable, "-c", SB3_SCRIPT, str(steps), str(seed)]
                label = "SB3 DQN (torch, 1 thread)"
                results.setdefault(label, []).append(timed_process(cmd, f"{label} seed {seed}"))
    median = {k: statistics.median(s for s, _ in v) for k, v in results.items()}
    sb3 = next((v for k, v in median.items() if k.startswith("SB3")), None)
    fastest = min(median[m] for m in modes)
    rows = [[name, ", ".join(f"{s:.1f}" for s, _ in runs), f"{median[name]:.1f}",
             ", ".join("-" if r is None else f"{r:.1f}" for _, r in runs),
             f"{median[name] / sb3:.2f}" if sb3 else "-", f"{median[name] / fastest:.2f}"]
            for name, runs in results.items()]
    table(f"4. End to end: {steps}-step CartPole-v1 DQN, whole process wall time "
          f"(seeds 0..{seeds - 1})", ["run", "seconds per seed", "median s",
                                     "final eval return (20 greedy episodes)", "x SB3",
                                     "x fastest mode"], rows)
    if sb3 is None:
        print(f"\n{SB3_MISSING}")
    if "fit" in median:
        print(f"\nfit / fastest mode: {median['fit'] / fastest:.2f}x")


# -- 5. Rainbow components ----------------------------------------------------------------
COMPONENTS = {
    "Double DQN (plain)": {},
    "`--dueling`": dict(dueling=True),
    "`--n-step 3`": dict(n_step=3),
    "`--prioritized`": dict(prioritized=True),
    "`--noisy`": dict(noisy=True),
    "`--distributional` (C51, 51 atoms)": dict(distributional=True),
    "`--rainbow` (all five)": dict(dueling=True, n_step=3, prioritized=True, noisy=True,
                                   distributional=True),
}


def bench_components(sizes: Sizes) -> None:
    """ms per gradient step (tf_function, a whole Trainer round incl. PER sampling and
    priority updates) and µs per exploring act, for each component vs plain Double DQN."""
    g, runs, agents = sizes.gradient_steps, {}, {}
    for name, kw in COMPONENTS.items():
        agent, controller = make_agent("tf_function", sizes, **kw)
        runs[name], agents[name] = trainer_round(agent, controller), agent
        for _ in range(1 + sizes.warmup):
            runs[name]()
    times = {name: [] for name in runs}
    for rep in range(sizes.rounds):  # interleaved
        for name in list(runs) if rep % 2 == 0 else list(runs)[::-1]:
            times[name].append(per_call(runs[name]))
    obs = np.array([[0.01, -0.02, 0.03, 0.04]], np.float32)
    rows, base, base_act = [], None, None
    for name, agent in agents.items():
        ms = 1e3 * statistics.median(times[name]) / g
        agent.act(obs)
        act_us = 1e6 * per_call(lambda a=agent: a.act(obs), sizes.calls, repeats=3)
        base, base_act = base or ms, base_act or act_us
        rows.append([name, f"{ms:.3f}", f"{ms / base:.2f}", f"{act_us:.1f}",
                     f"{act_us / base_act:.2f}"])
    table(f"5. Rainbow components: cost per gradient step (tf_function round of {g}, batch "
          f"{BATCH}, MLP {sizes.hidden}, medians) and per exploring `act`",
          ["DQN", "ms per gradient step", "x plain", "µs per act", "x plain"], rows)


def bench_per(sizes: Sizes) -> None:
    """PER sample + priority update of one minibatch of 64 from a full 1M buffer."""
    from agents.replay import PrioritizedReplayBuffer, draw_prioritized

    n = sizes.per_capacity
    buf = PrioritizedReplayBuffer(n, (4,))
    rng = np.random.default_rng(0)
    chunk = min(n, 100_000)
    for _ in range(0, n, chunk):
        buf.add(np.zeros((chunk, 4), np.float32), np.zeros(chunk, np.int64),
                np.zeros(chunk, np.float32), np.zeros((chunk, 4), np.float32), np.zeros(chunk))
    buf.update_priorities(np.arange(n), rng.exponential(size=n))
    beta = np.array([0.5])
    errors = rng.exponential(size=(1, BATCH))
    index = buf.tree.sample(BATCH, rng)

    def tree_only():
        buf.update_priorities(buf.tree.sample(BATCH, rng), errors)

    def draw_and_update():
        idx, _ = draw_prioritized(buf.tree, BATCH, rng, beta)
        buf.update_priorities(idx, errors)

    def sample_and_update():
        idx, _, _ = buf.sample_prioritized(BATCH, rng, beta)
        buf.update_priorities(idx, errors)

    round_beta, round_errors = np.full(128, 0.5), rng.exponential(size=(128, BATCH))

    def round_per_minibatch():  # how a training round draws: its 128 minibatches in one call
        idx, _ = draw_prioritized(buf.tree, BATCH, rng, round_beta)
        buf.update_priorities(idx, round_errors)

    one = (sizes.calls, 1)  # (calls per timing, minibatches per call)
    cases = [
        ("sum tree: stratified sample of 64 + priority update of 64", tree_only, one),
        ("PER: `draw_prioritized` (+ IS weights) + `update_priorities` (+ p = (|δ| + ε)^α)",
         draw_and_update, one),
        ("the same + the transitions' gather (`sample_prioritized`), as uniform replay has",
         sample_and_update, one),
        ("sum tree sample of 64 alone", lambda: buf.tree.sample(BATCH, rng), one),
        ("priority update of 64 alone", lambda: buf.update_priorities(index, errors), one),
        ("PER as a training round uses it: 128 minibatches drawn and updated in one call, "
         "per minibatch", round_per_minibatch, (20, 128)),
    ]
    # wall time, and the thread's CPU time: what the call costs whatever else the host runs
    rows = [[name, *(f"{1e6 * per_call(fn, calls, 5, clock=clock) / per:.1f}"
                     for clock in (time.perf_counter, time.thread_time))]
            for name, fn, (calls, per) in cases]
    table(f"6. Prioritized replay, full buffer of {n:,} (fanout {buf.tree.fanout}, "
          f"{len(buf.tree.levels)} levels), minibatch {BATCH}, medians",
          ["operation", "wall µs", "thread CPU µs"], rows)


def bench_e2e_rainbow(seeds: int, steps: int) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(seeds):
            for label, flags in (("plain Double DQN", []), ("`--rainbow`", ["--rainbow"])):
                cmd = [sys.executable, os.path.join(ROOT, "scripts", "train_dqn.py"),
                       "--total-steps", str(steps), "--eval-freq", "0", "--checkpoint-every",
                       "0", "--no-progress", "--logdir",
                       os.path.join(tmp, f"{len(flags)}-{seed}"), "--seed", str(seed), *flags]
                seconds, ret = timed_process(cmd, f"{label} seed {seed}")
                rows.append([label, seed, f"{seconds:.1f}", "-" if ret is None else f"{ret:.1f}"])
    table(f"7. End to end: {steps}-step CartPole-v1, plain vs --rainbow, whole process "
          "(tf_function)", ["run", "seed", "seconds", "final eval return (20 greedy episodes)"],
          rows)

RAY_START = """
import time
start = time.perf_counter()
import ray
ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
up = time.perf_counter() - start
ray.get(ray.remote(lambda: 1).remote())
print(f"ray up {up:.2f} first task {time.perf_counter() - start:.2f}")
ray.shutdown()
"""


def bench_sweep(steps: int, trials: int = 4, cpus: int = 2) -> None:
    """A ``trials``-seed sweep on ``cpus`` cores against the same runs one after another,
    both as whole processes; aggregate env steps/s = trials x steps / wall time."""
    flags = ["--total-steps", str(steps), "--eval-freq", "0", "--checkpoint-every", "0"]
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, "-c", RAY_START], capture_output=True, text=True)
        ray_up = re.search(r"ray up ([\d.]+) first task ([\d.]+)", out.stdout)
        sequential = 0.0
        for seed in range(trials):
            cmd = [sys.executable, os.path.join(ROOT, "scripts", "train_dqn.py"), *flags,
                   "--no-progress", "--seed", str(seed), "--logdir",
                   os.path.join(tmp, f"run-{seed}")]
            sequential += timed_process(cmd, f"sequential run, seed {seed}")[0]
        print("running the sweep ...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        result = subprocess.run(
            [sys.executable, os.path.join(ROOT, "scripts", "sweep.py"), "dqn", "--seeds",
             str(trials), "--num-cpus", str(cpus), "--logdir", os.path.join(tmp, "sweep"),
             "--", *flags], capture_output=True, text=True, cwd=ROOT)
        swept = time.perf_counter() - start
    if result.returncode != 0:
        print(f"sweep FAILED ({result.returncode}): {result.stderr[-2000:]}")
        return
    in_sweep = re.search(r"Ray up in ([\d.]+) s", result.stdout)
    total = trials * steps
    rows = [[f"{trials} runs of train_dqn.py one after another", f"{sequential:.1f}",
             f"{total / sequential:.0f}", "1.00"],
            [f"scripts/sweep.py dqn --seeds {trials} --num-cpus {cpus}", f"{swept:.1f}",
             f"{total / swept:.0f}", f"{sequential / swept:.2f}"]]
    table(f"8. Sweep on Ray Tune: {trials} x {steps}-step CartPole-v1 DQN runs on {cpus} "
          "cores, whole-process wall time", ["way", "wall s", "aggregate env steps/s",
                                              "speed-up"], rows)
    if ray_up:
        print(f"\nRay start-up: ray.init {ray_up.group(1)} s, first task done "
              f"{ray_up.group(2)} s after `import ray`; inside the sweep: "
              f"{in_sweep.group(1) if in_sweep else '?'} s (included above)")


# -- 9. pixels ----------------------------------------------------------------------------
PIXEL_THREADS = 1  # TF intra/inter-op and torch threads of section 9: the same on both sides
def nature_cnn_update_flops(batch: int = 32, n_actions: int = 6) -> float:
    """FLOPs (2 per multiply-add) of one Double-DQN update of the Nature CNN on 84x84x4:
    three forward passes (online s, online s', target s') and one backward pass (weight
    gradients of every layer, input gradients of all but the first)."""
    layers = [(20 * 20, 32, 8 * 8 * 4), (9 * 9, 64, 4 * 4 * 32), (7 * 7, 64, 3 * 3 * 64),
              (1, 512, 3136), (1, n_actions, 512)]
    macs = [positions * out * fan_in for positions, out, fan_in in layers]
    forward = sum(macs)
    backward = 2 * forward - macs[0]
    return 2.0 * batch * (3 * forward + backward)


def bench_pixels(sizes: Sizes, steps: int) -> None:
    """Section 9: frame replay memory and sampling, gradient step vs FLOP floor, the replay's
    checkpoint memory, Pong end to end vs SB3."""
    tf.config.threading.set_intra_op_parallelism_threads(PIXEL_THREADS)
    tf.config.threading.set_inter_op_parallelism_threads(PIXEL_THREADS)
    bench_frame_replay(sizes)
    env_sps = bench_cnn_step(sizes, steps)
    bench_replay_checkpoint(20_000 if sizes.calls < 100 else 200_000)
    bench_pong_vs_sb3(steps, env_sps)


def bench_frame_replay(sizes: Sizes) -> None:
    """9a: bytes per transition and 32-minibatch sampling of a full 84x84x4 frame replay: as
    the DQN samples (each transition's stack + n frames once, a window) and as two stacks."""
    from agents.frame_replay import FrameReplayBuffer

    rng = np.random.default_rng(0)
    capacity = 1000 if sizes.calls < 100 else 100_000
    rows = []
    for n_step, prioritized in ((1, False), (3, False), (3, True)):
        buffer = FrameReplayBuffer(capacity, (4, 84, 84), stack=4, n_step=n_step,
                                   prioritized=prioritized)
        frames = rng.integers(0, 256, (64, 1, 4, 84, 84), np.uint8)
        for t in range(capacity):  # episodes of 1000 steps
            obs = frames[t % 64]
            ends = np.array([t % 1000 == 999])
            buffer.push(obs, [t % 6], [1.0], frames[(t + 1) % 64], ends, [False])
        times = []
        for window in (True, False):
            if prioritized:
                def sample(b=buffer, w=window):
                    return b.sample_prioritized(32, rng, np.array([0.4]), window=w)
            else:
                def sample(b=buffer, w=window):
                    return b.sample(32, rng, window=w)
            times += [per_call(sample, sizes.calls, 5) * 1e6,
                      per_call(sample, sizes.calls, 5, clock=time.thread_time) * 1e6]
        rows.append([("prioritized" if prioritized else "uniform") + f", n-step {n_step}",
                     f"{capacity:,}", f"{buffer.nbytes() / capacity / 1024:.2f} KB",
                     f"{4 + n_step} frames: {times[0]:.0f} / {times[1]:.0f} µs",
                     f"8 frames: {times[2]:.0f} / {times[3]:.0f} µs"])
    table("9a. Frame replay, 84x84x4 stacks: bytes per transition, 32-minibatch sample "
          "(wall / thread CPU, medians; target <= 8 KB, <= 200 µs)",
          ["replay", "capacity", "per transition", "as the DQN samples (a window per "
           "transition)", "two stacks per transition"], rows)


def bench_cnn_step(sizes: Sizes, steps: int) -> float:
    """9b: the Nature-CNN Double-DQN gradient step vs its FLOP floor, acting; returns the
    random-action env steps/s of ALE/Pong-v5."""
    env = make_vec_env("ALE/Pong-v5", 1, seed=0)
    agent = DQN(env.single_observation_space, env.single_action_space, learning_rate=1e-4,
                buffer_size=10_000, learning_starts=0, batch_size=32, train_freq=4,
                gradient_steps=1, target_update_interval=1000, frame_stack=4, seed=0)
    agent.bind(GlobalStep(), 10**9)
    obs, _ = env.reset(seed=0)
    for _ in range(300):
        actions = env.action_space.sample()
        next_obs, rewards, term, trunc, infos = env.step(actions)
        agent.observe(obs, actions, rewards, next_obs, term, trunc)
        obs = next_obs
    agent.update()  # traces
    n = max(2, sizes.slow_calls)
    ms, cpu_ms = (x * 1e3 for x in cpu_and_wall(agent.update, n))
    agent.act(obs, explore=False)  # traces
    act_ms, act_cpu_ms = (x * 1e3 for x in cpu_and_wall(
        lambda: agent.act(obs, explore=False), n))
    flops = nature_cnn_update_flops(32, agent.n_actions)
    table(f"9b. Nature CNN (84x84x4, Pong's 6 actions), one Double-DQN gradient step at batch "
          f"32, sampling included, {PIXEL_THREADS} TF thread(s), mean of {n}", ["", "value"],
          [["gradient step, wall / process CPU", f"{ms:.1f} ms / {cpu_ms:.1f} ms"],
           ["FLOP floor per step", f"{flops / 1e9:.2f} GFLOP"],
           ["achieved (per CPU second)", f"{flops / cpu_ms / 1e6:.1f} GFLOP/s"],
           ["greedy `agent.act(obs)`, wall / CPU", f"{act_ms:.2f} ms / {act_cpu_ms:.2f} ms"],
           ["XLA", str(bool(tf.config.list_physical_devices("GPU")))]])

    env.reset(seed=0)
    start = time.perf_counter()
    for _ in range(min(steps, 2000)):
        env.step(env.action_space.sample())
    return min(steps, 2000) / (time.perf_counter() - start)


# Same settings on both sides: ALE/Pong-v5 (sticky actions 0.25, frame skip 4 by the
# wrappers), 84x84x4 uint8, ε 1 -> 0.01 over 10%, lr 1e-4, batch 32, train freq 4, one
# gradient step, target update 1000, replay 10k, learning from step steps // 4, 1 thread.
SB3_PONG_SCRIPT = """
import sys, time, torch
torch.set_num_threads(1)
import ale_py, gymnasium as gym
gym.register_envs(ale_py)
from stable_baselines3 import DQN
from stable_baselines3.common.env_util import make_atari_env
from stable_baselines3.common.vec_env import VecFrameStack
steps, seed, starts = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
env = VecFrameStack(make_atari_env("ALE/Pong-v5", n_envs=1, seed=seed,
                                   env_kwargs=dict(frameskip=1)), 4)
model = DQN("CnnPolicy", env, learning_rate=1e-4, buffer_size=10_000, learning_starts=starts,
            batch_size=32, train_freq=4, gradient_steps=1, target_update_interval=1000,
            exploration_fraction=0.1, exploration_final_eps=0.01, seed=seed, verbose=0)
start = time.perf_counter()
model.learn(steps)
seconds = time.perf_counter() - start
print(f"{seconds:.1f} s, {steps / seconds:.0f} env steps/s, {model._n_updates} updates")
n = 20
wall, cpu = time.perf_counter(), time.process_time()
for _ in range(n):
    model.train(gradient_steps=1, batch_size=32)
print(f"gradient step {(time.perf_counter() - wall) / n * 1e3:.1f} ms wall, "
      f"{(time.process_time() - cpu) / n * 1e3:.1f} ms CPU")
"""


def bench_pong_vs_sb3(steps: int, env_sps: float) -> None:
    """9c: whole training processes, ours (train_dqn.py) and SB3's DQN CnnPolicy."""
    starts = steps // 4
    threads = {v: str(PIXEL_THREADS) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                               "TF_NUM_INTRAOP_THREADS",
                                               "TF_NUM_INTEROP_THREADS")}
    env = {**os.environ, **threads}
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for double in (True, False):
            label = f"ours, DQN{'' if double else ' --no-double'} (TF, {PIXEL_THREADS} thread)"
            cmd = [sys.executable, os.path.join(ROOT, "scripts", "train_dqn.py"), "--env",
                   "ALE/Pong-v5", "--total-steps", str(steps), "--learning-starts",
                   str(starts), "--buffer-size", "10000", "--eval-freq", "0",
                   "--eval-episodes", "0", "--checkpoint-every", "0", "--no-progress",
                   "--logdir", os.path.join(tmp, f"ours-{double}"),
                   "--double" if double else "--no-double"]
            runs[label] = timed_run(cmd, label, env)
        if importlib.util.find_spec("stable_baselines3") is not None:
            label = f"SB3 DQN CnnPolicy (torch, {PIXEL_THREADS} thread; no Double DQN)"
            cmd = [sys.executable, "-c", SB3_PONG_SCRIPT, str(steps), "0", str(starts)]
            runs[label] = timed_run(cmd, label, env)
    loops = {k: re.search(r"([\d.]+) s, (\d+) env steps/s", out)
             for k, (_, _, out, _) in runs.items()}
    sb3 = next((k for k in runs if k.startswith("SB3") and loops[k]), None)
    rows = [["env only (random actions, no agent)", "-", "-", "-", f"{env_sps:.0f}", "-", "-",
             "-"]]
    for label, (wall, cpu, stdout, _) in runs.items():
        loop = loops[label]
        grad = re.search(r"gradient step ([\d.]+) ms wall, ([\d.]+) ms CPU", stdout)
        x_loop = x_cpu = "-"
        if loop and sb3:
            x_loop = f"{float(loop.group(1)) / float(loops[sb3].group(1)):.2f}"
            x_cpu = f"{cpu / runs[sb3][1]:.2f}"
        rows.append([label, f"{wall:.1f}", f"{cpu:.1f}", loop.group(1) if loop else "FAILED",
                     loop.group(2) if loop else "-", x_loop, x_cpu,
                     f"{grad.group(1)} / {grad.group(2)}" if grad else "(9b)"])
    table(f"9c. ALE/Pong-v5 DQN with training, {steps:,} env steps (learning from {starts:,}; "
          f"train freq 4, batch 32, replay 10k), {PIXEL_THREADS} thread each",
          ["run", "process wall s", "process CPU s", "training loop s", "env steps/s",
           "loop x SB3", "CPU x SB3", "gradient step ms, wall / CPU"], rows)
    if sb3 is None:
        print(f"\n{SB3_MISSING}")


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        return int(next(ln for ln in f if ln.startswith(field + ":")).split()[1])


def _reset_peak_rss() -> None:
    with open("/proc/self/clear_refs", "w") as f:  # "5": VmHWM := VmRSS (Linux >= 4.0)
        f.write("5")


def replay_checkpoint_rss(capacity: int) -> dict[str, float]:
    """MB: a frame replay of ``capacity`` 84x84 transitions (one sub-env, every page
    written), and the peak RSS growth of saving it with :class:`Checkpointer` and of restoring
    it into a fresh replay (``/proc/self/status`` VmHWM - VmRSS before); whether the restored
    replay equals the saved one."""
    from agents.frame_replay import FrameReplayBuffer
    from rlharness.checkpoint import Checkpointer

    def filled() -> FrameReplayBuffer:
        buffer = FrameReplayBuffer(capacity, (4, 84, 84), stack=4)
        frame = np.zeros((1, 4, 84, 84), np.uint8)
        buffer.push(frame, [0], [0.0], frame, [False], [False])
        rng = np.random.default_rng(0)
        for rows in np.array_split(np.arange(buffer.rows), 64):  # no full-size temporary
            buffer.frames[0, rows] = rng.integers(0, 256, (len(rows), 84, 84), np.uint8)
        buffer.actions[:] = rng.integers(0, 6, buffer.actions.shape)
        return buffer

    mb = 1 / 1024
    with tempfile.TemporaryDirectory() as tmp:
        checkpointer = Checkpointer(tmp, {"step": tf.Variable(0)})
        buffer = filled()
        saved_digest = [hash(getattr(buffer, f).tobytes()) for f in ("actions", "offset")]
        frames_sum = int(buffer.frames.sum(dtype=np.int64))
        size = buffer.nbytes() / 2**20
        _reset_peak_rss()
        before = _status_kb("VmRSS")
        checkpointer.save(1, {f"agent/buffer/{k}": v for k, v in buffer.state_dict().items()})
        save = (_status_kb("VmHWM") - before) * mb
        del buffer
        restored = FrameReplayBuffer(capacity, (4, 84, 84), stack=4)
        _reset_peak_rss()
        before = _status_kb("VmRSS")
        _, arrays = checkpointer.restore()
        restored.load_state_dict({k[len("agent/buffer/"):]: v for k, v in arrays.items()})
        load = (_status_kb("VmHWM") - before) * mb
        equal = (saved_digest == [hash(getattr(restored, f).tobytes())
                                  for f in ("actions", "offset")]
                 and frames_sum == int(restored.frames.sum(dtype=np.int64)))
    return {"replay_mb": round(size, 1), "save_peak_growth_mb": round(save, 1),
            "restore_peak_growth_mb": round(load, 1), "restored_equal": bool(equal)}


def bench_replay_checkpoint(capacity: int) -> None:
    """9d: peak RSS of checkpointing a large frame replay, in a fresh process."""
    cmd = [sys.executable, os.path.join(ROOT, "scripts", "bench.py"),
           "--replay-checkpoint-rss", str(capacity)]
    seconds, _, stdout, _ = timed_run(cmd, f"replay checkpoint of {capacity:,} transitions")
    r = json.loads(stdout.strip().splitlines()[-1])
    table(f"9d. Checkpoint of a frame replay of {capacity:,} 84x84 transitions: peak RSS "
          "growth (VmHWM) over the process before (target: no second copy)",
          ["replay", "save", "restore (into a fresh replay)", "restored equal", "process s"],
          [[f"{r['replay_mb']:.0f} MB", f"+{r['save_peak_growth_mb']:.0f} MB",
            f"+{r['restore_peak_growth_mb']:.0f} MB", r["restored_equal"], f"{seconds:.0f}"]])


# -- 10. PPO -----------------------------------------------------------------------------
SB3_PPO_SCRIPT = """
import sys, torch
torch.set_num_threads(1)
import gymnasium as gym
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
steps, seed = int(sys.argv[1]), int(sys.argv[2])
lin = lambda x: (lambda progress: progress * x)
env = make_vec_env("CartPole-v1", n_envs=8, seed=seed)
model = PPO("MlpPolicy", env, n_steps=32, batch_size=256, n_epochs=20, gamma=0.98,
            gae_lambda=0.8, ent_coef=0.0, learning_rate=lin(1e-3), clip_range=lin(0.2),
            seed=seed, device="cpu", verbose=0).learn(steps)
eval_env = Monitor(gym.make("CartPole-v1"))
eval_env.reset(seed=seed + 10000 + steps)
mean, _ = evaluate_policy(model, eval_env, n_eval_episodes=20, deterministic=True)
print(f"eval mean return {mean:.1f}")
"""


def bench_ppo(sizes: Sizes, steps: int, seeds: int = 1) -> None:
    """Where a PPO run's time goes (train_ppo.py's CartPole-v1 defaults, 8 envs): the
    Trainer loop's parts timed one by one over whole rollouts, then whole training runs
    (ours, and SB3's PPO with the same settings if installed)."""
    from agents.ppo import PPO
    from envs import final_observations
    from rlharness.schedules import LinearDecay

    env = make_vec_env("CartPole-v1", 8, seed=0)
    agent = PPO(env.single_observation_space, env.single_action_space,
                learning_rate=LinearDecay(1e-3, 100_000, 0.0), n_steps=32, batch_size=256,
                n_epochs=20, gamma=0.98, gae_lambda=0.8, clip_range=0.2,
                jit_compile=sizes.jit_compile, seed=0)
    agent.bind(GlobalStep(), 100_000)
    parts = dict.fromkeys(("env.step (8 sub-envs)", "agent.act", "agent.observe",
                           "agent.update (compiled round: 20 epochs x 1 minibatch of 256)"), 0.0)
    names = list(parts)
    obs, _ = env.reset(seed=0)
    rounds = 1 + sizes.warmup + sizes.rounds
    for r in range(rounds):
        if r == 1 + sizes.warmup:  # the first round traces and compiles; warm-up rounds
            parts = dict.fromkeys(parts, 0.0)
        for _ in range(32):
            t0 = time.perf_counter()
            actions = agent.act(obs)
            t1 = time.perf_counter()
            next_obs, rewards, terminated, truncated, infos = env.step(actions)
            real_next = final_observations(next_obs, infos, terminated | truncated)
            t2 = time.perf_counter()
            agent.observe(obs, actions, rewards, real_next, terminated, truncated)
            t3 = time.perf_counter()
            obs = next_obs
            parts[names[1]] += t1 - t0
            parts[names[0]] += t2 - t1
            parts[names[2]] += t3 - t2
        t0 = time.perf_counter()
        agent.global_step.updates += 20
        agent.update()
        parts[names[3]] += time.perf_counter() - t0
    total = sum(parts.values())
    env_steps = 256 * sizes.rounds
    table(f"10a. PPO on CartPole-v1, 8 envs x 32 steps per round: where the time goes "
          f"({sizes.rounds} rounds after {1 + sizes.warmup} untimed)",
          ["part", "ms per round", "share", "µs per env step"],
          [[name, f"{1e3 * t / sizes.rounds:.2f}", f"{t / total:.0%}",
            f"{1e6 * t / env_steps:.1f}"] for name, t in parts.items()]
          + [["all", f"{1e3 * total / sizes.rounds:.2f}", "100%",
              f"{1e6 * total / env_steps:.1f} ({env_steps / total:.0f} env steps/s)"]])
    if steps:
        bench_ppo_e2e(seeds, steps)


def bench_ppo_e2e(seeds: int, steps: int) -> None:
    """Whole training processes, ours and SB3's alternating (seeds 0..seeds-1), so both meet
    the same machine load; the same work: train, then 20 greedy episodes."""
    results: dict[str, list[tuple[float, float | None]]] = {}
    ours, sb3 = "ours: train_ppo.py", "SB3 PPO (torch, 1 thread)"
    have_sb3 = importlib.util.find_spec("stable_baselines3") is not None
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(seeds):
            cmd = [sys.executable, os.path.join(ROOT, "scripts", "train_ppo.py"),
                   "--total-steps", str(steps), "--eval-freq", "0", "--checkpoint-every", "0",
                   "--eval-episodes", "20", "--no-progress", "--seed", str(seed),
                   "--logdir", os.path.join(tmp, f"ppo-{seed}")]
            results.setdefault(ours, []).append(timed_process(cmd, f"{ours} seed {seed}"))
            if have_sb3:
                cmd = [sys.executable, "-c", SB3_PPO_SCRIPT, str(steps), str(seed)]
                results.setdefault(sb3, []).append(timed_process(cmd, f"{sb3} seed {seed}"))
    median = {k: statistics.median(t for t, _ in v) for k, v in results.items()}
    rows = [[name, ", ".join(f"{t:.1f}" for t, _ in runs), f"{median[name]:.1f}",
             f"{steps / median[name]:.0f}",
             ", ".join("-" if r is None else f"{r:.1f}" for _, r in runs),
             f"{median[name] / median[sb3]:.2f}" if sb3 in median else "-"]
            for name, runs in results.items()]
    table(f"10b. PPO end to end: {steps} env steps of CartPole-v1, 8 envs, then 20 greedy "
          f"episodes; whole process wall time (TF/torch import, XLA compile included), "
          f"ours and SB3 alternating, seeds 0..{seeds - 1}",
          ["run", "seconds per seed", "median s", "env steps/s (median)",
           "final eval return per seed", "x SB3 (median)"], rows)
    if not have_sb3:
        print(f"\n{SB3_MISSING}")


# -- main ---------------------------------------------------------------------------------
def machine() -> str:
    with open("/proc/cpuinfo") as f:
        cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")),
                   platform.processor() or "unknown cpu")
    torch = ""
    if importlib.util.find_spec("torch") is not None:
        torch = f", torch {importlib.metadata.version('torch')}"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{cpu}, nproc {len(os.sched_getaffinity(0))}, Python {platform.python_version()}, "
            f"TF {tf.__version__}, Keras {keras.__version__}{torch}; load average {load}")


def main(args: argparse.Namespace) -> int:
    sys.stdout.reconfigure(line_buffering=True)  # tables appear as sections finish
    sizes = QUICK if args.quick else FULL
    print(f"# rlharness benchmark{' (--quick: smoke sizes, noisy)' if args.quick else ''}")
    if args.replay_checkpoint_rss is not None:
        print(json.dumps(replay_checkpoint_rss(args.replay_checkpoint_rss)))
        return 0
    if args.pixels:
        bench_pixels(sizes, args.pixel_steps)
        print(f"\nmachine: {machine()}")
        print(f"command: {shlex.join([os.path.basename(sys.executable), *sys.argv])}")
        return 0
    if args.sweep:
        bench_sweep(args.sweep_steps)
        print(f"\nmachine: {machine()}")
        print(f"command: {shlex.join([os.path.basename(sys.executable), *sys.argv])}")
        return 0
    if args.only == "ppo":
        bench_ppo(sizes, 0 if args.skip_e2e else (20_000 if args.quick else 100_000),
                  args.seeds)
        print(f"\nmachine: {machine()}")
        print(f"command: {shlex.join([os.path.basename(sys.executable), *sys.argv])}")
        return 0
    if args.only != "rainbow":
        per_step = bench_update_modes(args.modes, sizes)
        bench_acting(sizes)
        bench_lr_costs(sizes, per_step.get("tf_function"))
        if not args.skip_e2e:
            bench_e2e(args.modes, args.seeds, sizes.e2e_steps)
    if args.only != "core":
        bench_components(sizes)
        bench_per(sizes)
        if not args.skip_e2e:
            bench_e2e_rainbow(args.seeds, sizes.e2e_steps)
    print(f"\nmachine: {machine()}")
    print(f"command: {shlex.join([os.path.basename(sys.executable), *sys.argv])}")
    return 0


if __name__ == "__main__":
    sys.exit(main(ARGS))
