"""One sweep trial, inside a Ray worker: an ordinary training run in ``DIR/<trial name>``.

The trial runs the training script's ``parse_args`` and :func:`rlharness.run.run` in this
process with a :class:`SweepTrainer`, which reports every evaluation to Ray Tune. Its run
directory is the truth: a trial that finds a checkpoint there resumes from it exactly
(``--resume`` semantics), one that finds ``sweep_status.json`` saying done reports its final
result again without training, one that failed fails again with the same reason.

Population Based Training: at every ``--pbt-interval`` the trial reports a copy of its latest
checkpoint, marked with its name (``owner.json``). A trial restarted by PBT with another
trial's checkpoint (an exploit) replaces its checkpoints by that copy, rewrites config.json
with its new flags and appends the exploit to ``exploits.jsonl``; the restored global step
carries on from the donor's, and events logged past it are dropped, so each TensorBoard
curve stays one curve on one step axis.
"""

from __future__ import annotations

import contextlib
import glob
import io
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid

import numpy as np

from rlharness import cli
from rlharness.sweep.spec import STOP_FILE, SweepError, SweepSpec, TrainingParser

STATUS_FILE = "sweep_status.json"
EXPLOITS_FILE = "exploits.jsonl"
OWNER_FILE = "owner.json"


class TrialFailed(RuntimeError):
    """A trial failed; the message is its one-line reason."""


def limit_threads(cpus: float) -> int:
    """Give TensorFlow (and OpenMP) ``cpus`` intra- and inter-op threads. Call before
    TensorFlow initialises: N trials on N cores then use N cores, not N x N threads."""
    n = max(1, int(cpus))
    for var in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
        os.environ[var] = str(n)
    cli.import_tensorflow_quietly()
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(n)
    except RuntimeError:  # already initialised (a reused worker): the env vars held
        pass
    return n


# -- the run directory's sweep files ---------------------------------------------------------
def read_status(run_dir: str) -> dict:
    try:
        with open(os.path.join(run_dir, STATUS_FILE)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def write_status(run_dir: str, **fields) -> None:
    status = {**read_status(run_dir), **fields}
    path = os.path.join(run_dir, STATUS_FILE)
    with open(path + ".tmp", "w") as f:
        json.dump(status, f, indent=1)
    os.replace(path + ".tmp", path)


def read_exploits(run_dir: str) -> list[dict]:
    """The PBT exploits a trial went through, oldest first: ``from_trial``, ``env_steps``
    and ``updates`` (the donor checkpoint's global step, where this trial's curves go on),
    ``own_env_steps`` (this trial's step when it was replaced), ``old`` and ``new`` flags."""
    try:
        with open(os.path.join(run_dir, EXPLOITS_FILE)) as f:
            return [json.loads(line) for line in f if line.strip()]
    except OSError:
        return []


def checkpoint_steps(run_dir: str) -> int | None:
    """Env steps of the run's latest checkpoint, or None."""
    try:
        with open(os.path.join(run_dir, "checkpoints", "checkpoint")) as f:
            first = f.readline()
    except OSError:
        return None
    try:
        return int(first.split('"')[1].rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return None


def write_hparams(run_dir: str, hparams: dict, trial_id: str) -> None:
    """TensorBoard HParams session data in ``run_dir/hparams`` (a sub-run, so that the
    run's own event files hold scalars only)."""
    from tensorboard.compat.proto import event_pb2
    from tensorboard.plugins.hparams import summary_v2 as hp
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(os.path.join(run_dir, "hparams"))
    writer.add_event(event_pb2.Event(wall_time=time.time(), step=0,
                                     summary=hp.hparams_pb(hparams, trial_id=trial_id)))
    writer.close()


def write_final_metric(run_dir: str, value: float, env_steps: int) -> None:
    """The final eval/mean_return in the HParams sub-run, where the dashboard reads it."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(os.path.join(run_dir, "hparams"))
    summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(
        tag="final/eval_mean_return", simple_value=value)])
    writer.add_event(event_pb2.Event(wall_time=time.time(), step=env_steps, summary=summary))
    writer.close()


# -- reporting ------------------------------------------------------------------------------
class Reporter:
    """Sends a trial's evaluations (and, under PBT, checkpoints) to Ray Tune."""

    def __init__(self, spec: SweepSpec, run_dir: str, name: str, config: dict,
                 seconds_before: float) -> None:
        self.spec, self.run_dir, self.name, self.config = spec, run_dir, name, config
        self.start, self.seconds_before = time.time(), seconds_before
        self.trainer = None
        self.stop_requested = threading.Event()
        self.last_reported: int | None = None

    def seconds(self) -> float:
        return self.seconds_before + time.time() - self.start

    def metrics(self, trainer) -> dict:
        step = trainer.global_step
        out = {"env_steps": step.env_steps, "updates": step.updates, "episodes": step.episodes,
               "wall_s": self.seconds()}
        if trainer.last_eval is not None:
            out["eval/mean_return"] = trainer.last_eval
        if trainer.recent_returns:
            out["rollout/ep_return"] = float(np.mean(trainer.recent_returns))
        return out

    def report(self, trainer, checkpoint_path: str | None) -> None:
        from ray import tune

        metrics = self.metrics(trainer)
        self.last_reported = metrics["env_steps"]
        if metrics["env_steps"] >= trainer.total_steps:  # before Tune may stop us
            write_status(self.run_dir, status="done", metrics=metrics, seconds=metrics["wall_s"])
            if "eval/mean_return" in metrics:
                write_final_metric(self.run_dir, metrics["eval/mean_return"],
                                   metrics["env_steps"])
        else:
            write_status(self.run_dir, status="running", metrics=metrics,
                         seconds=metrics["wall_s"])
        if checkpoint_path is None or self.spec.scheduler != "pbt":
            tune.report(metrics)
            return
        with tempfile.TemporaryDirectory(prefix="rlharness-pbt-") as copy:
            export_checkpoint(checkpoint_path, copy, self.name, trainer, self.config)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(copy))


def export_checkpoint(path: str, target: str, name: str, trainer, config: dict) -> None:
    """Copy checkpoint ``path`` (``.../ckpt-N``) into ``target`` with an owner record."""
    head, base = os.path.split(path)
    files = glob.glob(path + ".*") + [os.path.join(head, base.replace("ckpt-", "state-")
                                                   + ".npz")]
    for file in files:
        shutil.copy2(file, target)
    with open(os.path.join(target, "checkpoint"), "w") as f:
        f.write(f'model_checkpoint_path: "{base}"\nall_model_checkpoint_paths: "{base}"\n')
    step = trainer.global_step
    with open(os.path.join(target, OWNER_FILE), "w") as f:
        json.dump({"trial": name, "env_steps": step.env_steps, "updates": step.updates,
                   "config": config, "id": uuid.uuid4().hex}, f)


def make_sweep_trainer(reporter: Reporter):
    """A Trainer class that reports each evaluation to ``reporter`` (after the checkpoint
    of the same step, if one is due) and stops when the sweep is interrupted."""
    from rlharness.trainer import Trainer

    class SweepTrainer(Trainer):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self._eval_at: int | None = None
            reporter.trainer = self
            if reporter.stop_requested.is_set():
                self.request_stop()

        def request_stop(self) -> None:
            self._interrupted = True  # the loop stops between two env steps and saves

        def _checkpoint_due(self) -> bool:
            step, n = self.global_step.env_steps, self.env.num_envs
            return step >= self.total_steps or bool(
                self.checkpoint_every and step % self.checkpoint_every < n)

        def evaluate(self):
            value = super().evaluate()
            self._eval_at = self.global_step.env_steps
            if not self._checkpoint_due():
                reporter.report(self, None)
                self._eval_at = None
            return value

        def save_checkpoint(self) -> str:
            path = super().save_checkpoint()
            if self._eval_at == self.global_step.env_steps:
                self._eval_at = None
                reporter.report(self, path)
            return path

    return SweepTrainer


# -- PBT exploits ---------------------------------------------------------------------------
def apply_exploit(source: str, run_dir: str, name: str, old: dict | None, new: dict,
                  swept: list[str]) -> dict | None:
    """Make the checkpoint in ``source`` (another trial's) this run's latest; None if it is
    this trial's own or was applied before. ``old``/``new``: the flags before and after."""
    with open(os.path.join(source, OWNER_FILE)) as f:
        owner = json.load(f)
    if owner["trial"] == name or owner["id"] in {e["id"] for e in read_exploits(run_dir)}:
        return None
    own_env_steps = checkpoint_steps(run_dir)
    target = os.path.join(run_dir, "checkpoints")
    fresh = target + ".exploit"
    shutil.rmtree(fresh, ignore_errors=True)
    shutil.copytree(source, fresh, ignore=shutil.ignore_patterns(OWNER_FILE))
    if os.path.isdir(target):
        os.replace(target, target + ".old")
    os.replace(fresh, target)
    shutil.rmtree(target + ".old", ignore_errors=True)
    record = {"id": owner["id"], "from_trial": owner["trial"], "env_steps": owner["env_steps"],
              "updates": owner["updates"], "own_env_steps": own_env_steps,
              "old": {k: (old or {}).get(k) for k in swept}, "new": {k: new.get(k) for k in swept},
              "time": time.time()}
    with open(os.path.join(run_dir, EXPLOITS_FILE), "a") as f:
        f.write(json.dumps(record) + "\n")
    return record


# -- the trial ------------------------------------------------------------------------------
def run_trial(config: dict, spec_json: dict) -> None:
    """Ray Tune's function trainable: one training run, resumed where its directory says."""
    from ray import tune

    spec = SweepSpec.from_json(spec_json)
    name = os.path.basename(tune.get_context().get_trial_dir().rstrip("/"))
    run_dir = os.path.join(spec.logdir, name)
    os.makedirs(run_dir, exist_ok=True)
    status = read_status(run_dir)
    if status.get("status") == "done":  # a finished trial is never rerun
        tune.report(status["metrics"])
        return
    if status.get("status") == "failed":
        raise TrialFailed(status.get("reason", "failed before"))
    stop_file = os.path.join(spec.logdir, STOP_FILE)
    if os.path.exists(stop_file):  # the sweep is stopping: do not start
        write_status(run_dir, status="interrupted")
        threading.Event().wait()
    reporter = Reporter(spec, run_dir, name, config, status.get("seconds", 0.0))
    try:
        _train(spec, config, run_dir, name, reporter, stop_file)
    except TrialFailed as e:
        write_status(run_dir, status="failed", reason=str(e))
        raise
    except Exception as e:
        reason = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
        write_status(run_dir, status="failed", reason=reason)
        raise TrialFailed(reason) from e


def _train(spec: SweepSpec, config: dict, run_dir: str, name: str, reporter: Reporter,
           stop_file: str) -> None:
    from ray import tune

    limit_threads(spec.cpus_per_trial)
    training = TrainingParser(spec.script)
    try:
        args = training.parse(spec.trial_argv(config))
    except SweepError as e:
        raise TrialFailed(f"training flags: {e}") from None
    args.logdir = run_dir
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as source:
            if apply_exploit(source, run_dir, name, _saved_args(run_dir), vars(args),
                             spec.swept):
                cli.save_config(args, spec.algo)  # the trial's flags from here on
    start = checkpoint_steps(run_dir)
    args.resume = start is not None
    if not args.resume:  # an earlier start that died before its first checkpoint
        for leftover in glob.glob(os.path.join(run_dir, "events.out.tfevents.*")):
            os.remove(leftover)
        shutil.rmtree(os.path.join(run_dir, "hparams"), ignore_errors=True)
    # Where each start of this trial began (env steps): a resumed trial never restarts at 0.
    segments = read_status(run_dir).get("segments", []) + [start or 0]
    write_status(run_dir, status="running", segments=segments)
    if not args.resume:
        hparams = {k: _hparam(getattr(args, k)) for k in spec.swept}
        write_hparams(run_dir, {**hparams, "seed": args.seed}, name)
    watcher = threading.Thread(target=_watch, args=(stop_file, reporter), daemon=True)
    watcher.start()

    from rlharness.run import run

    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            code = run(args, training.module.make_agent, spec.algo,
                       make_trainer=make_sweep_trainer(reporter))
    except SystemExit as e:
        if e.code in (0, None):  # Ray Tune ends a trial it stops (ASHA, PBT) from report()
            raise
        lines = captured.getvalue().strip().splitlines()
        raise TrialFailed(lines[-1].split(": error: ", 1)[-1] if lines
                          else f"exit status {e.code}") from None
    finally:
        sys.stderr.write(captured.getvalue())
    if code == 130:  # stopped by the sweep's Ctrl-C, checkpoint saved: wait to be ended
        write_status(run_dir, status="interrupted", seconds=reporter.seconds())
        threading.Event().wait()
    if reporter.trainer is None or reporter.last_reported != reporter.trainer.global_step.env_steps:
        if reporter.trainer is None:  # the run had its steps already
            tune.report(read_status(run_dir).get("metrics", {}))
        else:
            reporter.report(reporter.trainer, None)


def _hparam(value):
    return value if isinstance(value, (bool, int, float, str)) else str(value)


def _saved_args(run_dir: str) -> dict | None:
    try:
        with open(cli.config_path(run_dir)) as f:
            return json.load(f)["args"]
    except (OSError, ValueError, KeyError):
        return None


def _watch(stop_file: str, reporter: Reporter) -> None:
    while not os.path.exists(stop_file):
        time.sleep(0.5)
    reporter.stop_requested.set()
    if reporter.trainer is not None:
        reporter.trainer.request_stop()

