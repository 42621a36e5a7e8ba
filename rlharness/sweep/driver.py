"""The sweep driver: Ray Tune set-up, schedulers, the status table, Ctrl-C and --resume.

Layout of a sweep directory ``DIR``::

    DIR/sweep.json            the sweep's flags (what --resume reads)
    DIR/<trial name>/         one ordinary run directory per trial (config.json, events,
                              checkpoints/, hparams/, sweep_status.json, exploits.jsonl)
    DIR/tune/                 Ray Tune's experiment state (and PBT's checkpoint copies)
    DIR/results.csv, DIR/summary.md
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
import uuid
import warnings

from rlharness import cli
from rlharness.sweep import report
from rlharness.sweep import spec as sweep_spec
from rlharness.sweep.spec import METRIC, PROG, STOP_FILE, SWEEP_FILE, SweepError, SweepSpec
from rlharness.sweep.trial import read_status, run_trial

EXPERIMENT = "tune"
# Before Ray is imported: our own Ctrl-C handling and status table, no Ray result loggers
# (every trial writes its own TensorBoard run), no chdir into Ray's trial directories, and
# Ray Tune's experiment state saved every few seconds (for --resume after kill -9).
RAY_ENV = {
    "TUNE_DISABLE_SIGINT_HANDLER": "1",
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    "RAY_CHDIR_TO_TRIAL_DIR": "0",
    "TUNE_GLOBAL_CHECKPOINT_S": "2",
    "RAY_AIR_NEW_OUTPUT": "0",
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "1000",
    "RAY_DEDUP_LOGS": "0",
    "RAY_TRAIN_V2_ENABLED": "0",
    "RAY_worker_niceness": "0",  # Ray's default 15 lets any other process starve the trials
}


# -- Ray Tune pieces ------------------------------------------------------------------------
def _domain(sample):
    from ray import tune

    if sample.kind == "loguniform":
        return tune.loguniform(sample.low, sample.high)
    if sample.kind == "uniform":
        return tune.uniform(sample.low, sample.high)
    if sample.kind == "int":
        return tune.randint(int(sample.low), int(sample.high) + 1)
    return tune.choice(list(sample.choices))


def _clip(config: dict, samples: dict) -> dict:
    """PBT's explore step may leave a range (x1.2); keep every flag in its --sample range."""
    for dest, sample in samples.items():
        if dest in config:
            config[dest] = sample.clip(config[dest])
    return config


def _trial_name(trial, swept: tuple[str, ...]) -> str:
    """By the trial's index in generated order, or (search algorithms) by its id."""
    suffix = str(trial.trial_id).rsplit("_", 1)[-1]
    return sweep_spec.trial_name(int(suffix) if suffix.isdigit() else suffix, trial.config,
                                 list(swept))


def param_space(spec: SweepSpec) -> dict:
    from ray import tune

    space: dict = {dest: tune.grid_search(values) for dest, values in spec.grid.items()}
    space.update({dest: _domain(s) for dest, s in spec.samples.items()})
    if spec.search != "optuna":
        space["seed"] = tune.grid_search(spec.seeds)
    return space


def make_tuner(spec: SweepSpec, restore: bool):
    from ray import tune

    from rlharness.sweep.status import StatusTable

    trainable = tune.with_resources(
        tune.with_parameters(run_trial, spec_json=spec.to_json()), {"cpu": spec.cpus_per_trial})
    path = os.path.join(spec.logdir, EXPERIMENT)
    if restore and tune.Tuner.can_restore(path):
        # Errored trials "resume" too: a trial whose run directory says it failed fails
        # again at once with its reason, one that was stopped mid-run continues.
        return tune.Tuner.restore(path, trainable, resume_unfinished=True,
                                  resume_errored=True, param_space=param_space(spec))
    name = functools.partial(_trial_name, swept=tuple(spec.swept))
    scheduler, search_alg, num_samples = None, None, spec.num_samples
    if spec.search == "optuna":
        from ray.tune.search import Repeater
        from ray.tune.search.optuna import OptunaSearch

        search_alg = OptunaSearch(metric=METRIC, mode="max", seed=0)
        if len(spec.seeds) > 1:  # each suggestion runs on every seed; Optuna sees the mean
            search_alg = Repeater(search_alg, repeat=len(spec.seeds), set_index=True)
        num_samples = spec.num_samples * len(spec.seeds)
    else:
        from ray.tune.search.basic_variant import BasicVariantGenerator

        # constant_grid_search: a sampled configuration runs on every seed of the grid
        search_alg = BasicVariantGenerator(constant_grid_search=True, random_state=0)
    if spec.scheduler == "asha":
        from ray.tune.schedulers import ASHAScheduler

        scheduler = ASHAScheduler(time_attr="env_steps", max_t=spec.total_steps,
                                  grace_period=max(1, spec.eval_freq), reduction_factor=3)
    elif spec.scheduler == "pbt":
        from ray.tune.schedulers import PopulationBasedTraining

        scheduler = PopulationBasedTraining(
            time_attr="env_steps", perturbation_interval=spec.pbt_interval,
            hyperparam_mutations={d: _domain(s) for d, s in spec.samples.items()},
            quantile_fraction=0.25, resample_probability=0.25, synch=True,
            custom_explore_fn=functools.partial(_clip, samples=spec.samples))
    return tune.Tuner(
        trainable, param_space=param_space(spec),
        tune_config=tune.TuneConfig(
            metric=METRIC, mode="max", num_samples=num_samples, search_alg=search_alg,
            scheduler=scheduler, trial_name_creator=name, trial_dirname_creator=name,
            reuse_actors=True),
        run_config=tune.RunConfig(
            name=EXPERIMENT, storage_path=spec.logdir, verbose=0,
            callbacks=[StatusTable()],
            checkpoint_config=tune.CheckpointConfig(num_to_keep=4),
            failure_config=tune.FailureConfig(max_failures=0)),
    )


# -- Ray start-up ---------------------------------------------------------------------------
def start_ray(spec: SweepSpec) -> float:
    """Start (or join) Ray quietly; return the seconds it took."""
    for key, value in RAY_ENV.items():
        os.environ.setdefault(key, value)
    warnings.filterwarnings("ignore", module="ray")
    start = time.perf_counter()
    import ray

    kwargs = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    try:
        with _quiet_fd2(os.path.join(spec.logdir, "ray-start.log")):
            if spec.address:
                ray.init(address=spec.address, runtime_env={"env_vars": {
                    "PYTHONPATH": os.pathsep.join([sweep_spec.ROOT,
                                                   os.environ.get("PYTHONPATH", "")])}},
                         **kwargs)
            else:
                ray.init(address="local", num_cpus=spec.num_cpus or os.cpu_count(), **kwargs)
    except Exception as e:  # connection refused, bad address, authentication, ...
        where = f"the Ray cluster at {spec.address}" if spec.address else "a local Ray"
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        cli.fail(f"could not start {where}: {first[:200]} (Ray's messages: "
                 f"{os.path.join(spec.logdir, 'ray-start.log')})", PROG)
    for name in ("ray", "ray.tune", "ray.train", "ray.data"):  # the status table reports
        logging.getLogger(name).setLevel(logging.CRITICAL)
    if spec.address:
        check_shared_logdir(spec.logdir)
    return time.perf_counter() - start


def check_reachable(address: str, timeout: float = 10.0) -> None:
    """Fail at once if nothing listens at ``host:port`` (Ray would retry for minutes)."""
    if address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except (OSError, ValueError) as e:
        cli.fail(f"--address {address}: nothing answers there ({e}); start the cluster's "
                 "head with `ray start --head` and give its HOST:PORT", PROG)


@contextlib.contextmanager
def _quiet_fd2(log_path: str):
    """Ray's start-up writes notices to fd 2 from C++: they go to ``log_path``."""
    with open(log_path, "ab") as captured:
        saved = os.dup(2)
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _sees(path: str, token: str) -> bool:
    try:
        with open(path) as f:
            return f.read() == token
    except OSError:
        return False


def check_shared_logdir(logdir: str) -> None:
    """Every alive node of the cluster must read a file the driver wrote into ``logdir``."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    token = uuid.uuid4().hex
    probe = os.path.join(logdir, f".probe-{token}")
    with open(probe, "w") as f:
        f.write(token)
    try:
        sees = ray.remote(num_cpus=0)(_sees)
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        answers = ray.get([sees.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
            n["NodeID"], soft=False)).remote(probe, token) for n in nodes], timeout=120)
    finally:
        os.remove(probe)
    blind = [n.get("NodeManagerAddress", "?") for n, ok in zip(nodes, answers) if not ok]
    if blind:
        cli.fail(f"--logdir {logdir} is not visible on node(s) {', '.join(blind)}; with "
                 "--address the sweep directory must be shared storage (e.g. NFS) mounted "
                 "at the same path on every node", PROG)


# -- Ctrl-C ---------------------------------------------------------------------------------
def _install_sigint(spec: SweepSpec) -> None:
    stop_file = os.path.join(spec.logdir, STOP_FILE)

    from rlharness.sweep.status import LIVE

    def on_sigint(signum, frame):
        if LIVE.stopping:
            raise KeyboardInterrupt
        LIVE.stopping = True
        print("stopping: running trials save a checkpoint (Ctrl-C again to quit at once)",
              flush=True)
        open(stop_file, "w").close()
        threading.Thread(target=_end_when_saved, args=(spec,), daemon=True).start()

    signal.signal(signal.SIGINT, on_sigint)


def _end_when_saved(spec: SweepSpec, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    from rlharness.sweep.status import LIVE

    while time.monotonic() < deadline:
        running = list(LIVE.running)
        statuses = [read_status(os.path.join(spec.logdir, n)).get("status") for n in running]
        if all(s in ("interrupted", "done", "failed") for s in statuses):
            break
        time.sleep(0.3)
    os.kill(os.getpid(), signal.SIGUSR1)  # Ray Tune's own handler: end, save its state


# -- results --------------------------------------------------------------------------------
def collect(spec: SweepSpec, results, interrupted: bool) -> list[dict]:
    rows = []
    # Trials that never started have no config in their Result; their Trial has it.
    trials = {os.path.basename(str(t.path).rstrip("/")): t for t in
              getattr(getattr(results, "_experiment_analysis", None), "trials", None) or []}
    for result in results:
        name = os.path.basename(str(result.path).rstrip("/"))
        config = result.config or getattr(trials.get(name), "config", None) or {}
        run_dir = os.path.join(spec.logdir, name)
        status = read_status(run_dir)
        metrics = {**(result.metrics or {}), **status.get("metrics", {})}
        if result.error is not None or status.get("status") == "failed":
            state = "failed"
        elif status.get("status") == "done":
            state = "done"
        elif interrupted or not metrics:
            state = "unfinished"
        else:
            state = "stopped"  # by the scheduler (ASHA)
        row = {"trial": name, "seed": sweep_spec.trial_seed(spec, config), "status": state,
               "eval/mean_return": metrics.get(METRIC), "env_steps": metrics.get("env_steps"),
               "wall_s": status.get("seconds"), "reason": status.get("reason")
               if state == "failed" else None}
        if state == "failed" and not row["reason"]:
            row["reason"] = str(result.error).strip().splitlines()[-1][:200]
        row.update({k: config.get(k) for k in spec.swept})
        rows.append(row)
    return sorted(rows, key=lambda r: r["trial"])


def write_reports(spec: SweepSpec, rows: list[dict]) -> str:
    report.write_csv(os.path.join(spec.logdir, "results.csv"), rows, spec.swept)
    text = report.summarize(rows, spec.swept, f"Sweep: {spec.algo} on {spec.env}", METRIC)
    text += f"\nCommand: `python scripts/{spec.command}`\n"
    with open(os.path.join(spec.logdir, "summary.md"), "w") as f:
        f.write(text)
    return text


# -- main -----------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        spec = sweep_spec.parse(argv)
    except SweepError as e:
        cli.fail(str(e), PROG)
    resume = "--resume" in argv[: argv.index("--")] if "--" in argv else "--resume" in argv
    if spec.address:
        check_reachable(spec.address)  # before anything is written
    os.makedirs(spec.logdir, exist_ok=True)
    if resume:
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(spec.logdir, STOP_FILE))
    else:
        with open(os.path.join(spec.logdir, SWEEP_FILE), "w") as f:
            json.dump(spec.to_json(), f, indent=1)
    ray_seconds = start_ray(spec)
    import ray

    from rlharness.sweep.status import LIVE

    LIVE.reset(spec)

    cpus = ray.cluster_resources().get("CPU", 0)
    print(f"{'resuming' if resume else 'sweep'} {spec.logdir}: {spec.algo} on {spec.env}, "
          f"{spec.scheduler}, {spec.search} search; Ray up in {ray_seconds:.1f} s with "
          f"{cpus:g} CPUs, {spec.cpus_per_trial:g} per trial\n"
          f"  tensorboard --logdir {spec.logdir}", flush=True)
    _install_sigint(spec)
    try:
        tuner = make_tuner(spec, restore=resume)
        results = tuner.fit()
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    interrupted = LIVE.stopping
    rows = collect(spec, results, interrupted)
    text = write_reports(spec, rows)
    ray.shutdown()
    print("\n" + text + f"\nresults: {os.path.join(spec.logdir, 'results.csv')}", flush=True)
    if interrupted:
        print(f"interrupted; continue with: python scripts/sweep.py --resume --logdir "
              f"{spec.logdir}", flush=True)
        return 130
    return 1 if any(r["status"] == "failed" for r in rows) else 0
