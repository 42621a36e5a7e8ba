"""The sweep's command line, checked before Ray or TensorFlow is imported.

Training flags are checked by the training script's own parser: the script
``scripts/train_<algo>.py`` is loaded as a module and its ``parse_args(argv)`` is called
with every grid value and both ends of every sampled range, so a bad value is a one-line
error before anything starts.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib.util
import io
import json
import math
import os
import re
import tempfile
import time
from dataclasses import asdict, dataclass, field

from rlharness import cli

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROG = "sweep.py"
METRIC = "eval/mean_return"
DISTRIBUTIONS = ("loguniform", "uniform", "int", "choice")
#: Training flags the sweep sets itself, with what to use instead.
RESERVED = {"seed": "--seeds N or --seed-list", "logdir": "the sweep's --logdir",
            "resume": "the sweep's --resume"}
#: Sweep flags that ``--resume`` may change; the others are the sweep's, from sweep.json.
RESUMABLE = {"num_cpus", "address", "status_every"}
SWEEP_FILE = "sweep.json"
STOP_FILE = "STOP"


class SweepError(ValueError):
    """Bad sweep input; the message is the one-line error."""


@dataclass
class Flag:
    """How a training flag is written on the command line."""

    dest: str
    option: str          # "--lr"
    kind: str            # "value", "list" (nargs), "true" (store_true), "negatable"
    numeric: str | None  # "int", "float" or None

    def argv(self, value) -> list[str]:
        if self.kind in ("true", "negatable"):
            on = _truth(value, self.option)
            if self.kind == "true":
                return [self.option] if on else []
            return [self.option if on else "--no-" + self.option[2:]]
        if self.kind == "list":
            return [self.option, *str(value).replace(",", " ").split()]
        return [self.option, _text(value)]


def _truth(value, option: str) -> bool:
    text = str(value).lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise SweepError(f"{option} is on/off: use true or false, not {value!r}")


def _text(value) -> str:
    """A value as a command-line word; floats exactly (repr)."""
    return repr(value) if isinstance(value, float) else str(value)


def short(value) -> str:
    """A value for a trial name: 3 significant digits for floats."""
    return f"{value:.3g}" if isinstance(value, float) else str(value).replace(" ", "-")


@dataclass
class Sample:
    """``--sample FLAG=DIST``: loguniform:LO:HI, uniform:LO:HI, int:LO:HI, choice:A,B,..."""

    kind: str
    low: float | None = None
    high: float | None = None
    choices: list[str] = field(default_factory=list)

    def ends(self) -> list:
        if self.kind == "choice":
            return list(self.choices)
        if self.kind == "int":
            return [int(self.low), int(self.high)]
        return [float(self.low), float(self.high)]

    def clip(self, value):
        if self.kind == "choice":
            return value
        value = min(max(value, self.low), self.high)
        return int(round(value)) if self.kind == "int" else float(value)


@dataclass
class SweepSpec:
    """Everything a sweep needs, as saved in ``DIR/sweep.json``."""

    algo: str
    script: str
    train_argv: list[str]
    seeds: list[int]
    grid: dict[str, list[str]]
    samples: dict[str, Sample]
    num_samples: int
    search: str
    scheduler: str
    pbt_interval: int | None
    logdir: str
    num_cpus: int | None
    cpus_per_trial: float
    address: str | None
    status_every: float
    flags: dict[str, Flag]
    total_steps: int
    eval_freq: int
    env: str
    command: str

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> SweepSpec:
        data = dict(data)
        data["samples"] = {k: Sample(**v) for k, v in data["samples"].items()}
        data["flags"] = {k: Flag(**v) for k, v in data["flags"].items()}
        return cls(**data)

    @property
    def swept(self) -> list[str]:
        """The swept flags' dests, in command-line order."""
        return [*self.grid, *self.samples]

    def trial_argv(self, config: dict) -> list[str]:
        """The training script's argv for a trial config (swept flags and seed)."""
        argv = list(self.train_argv)
        for dest in self.swept:
            argv += self.flags[dest].argv(config[dest])
        return argv + ["--seed", str(trial_seed(self, config)), "--no-progress"]


def trial_seed(spec: SweepSpec, config: dict) -> int:
    if "seed" in config:
        return int(config["seed"])
    return spec.seeds[int(config.get("__trial_index__", 0))]  # Optuna's Repeater


def trial_name(index: int | str, config: dict, swept: list[str]) -> str:
    """``0003_lr=0.001_seed=2``: the trial's run directory under the sweep's logdir."""
    parts = [f"{index:04d}" if isinstance(index, int) else index]
    parts += [f"{k}={short(config[k])}" for k in swept if k in config]
    if "seed" in config:
        parts.append(f"seed={config['seed']}")
    elif "__trial_index__" in config:
        parts.append(f"rep={config['__trial_index__']}")
    return re.sub(r"[^A-Za-z0-9._=+-]", "-", "_".join(parts))[:120]


# -- the training script ------------------------------------------------------------------
def script_path(algo: str) -> str:
    from agents import ALGORITHMS  # TF-free registry

    if algo.lower() not in ALGORITHMS:
        raise SweepError(f"unknown algorithm {algo!r}; known: {', '.join(sorted(ALGORITHMS))}")
    path = os.path.join(ROOT, "scripts", f"train_{algo.lower()}.py")
    if not os.path.exists(path):
        raise SweepError(f"{algo} has no training script {path}; add scripts/train_{algo}.py "
                         "with parse_args(argv) and make_agent(args, env, schedule)")
    return path


def load_script(path: str):
    """The training script as a module (its top level imports no TensorFlow)."""
    name = "_sweep_" + os.path.splitext(os.path.basename(path))[0]
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


class _ParserSpy:
    """Stands in for ``rlharness.cli`` in a loaded script to catch the parser it builds."""

    def __init__(self) -> None:
        self.parser: argparse.ArgumentParser | None = None

    def __getattr__(self, name):
        return getattr(cli, name)

    def parse(self, parser, argv, **kwargs):
        self.parser = parser
        return cli.parse(parser, argv, **kwargs)


class TrainingParser:
    """A training script's ``parse_args``, with errors as :class:`SweepError`."""

    def __init__(self, script: str) -> None:
        self.script = script
        self.module = load_script(script)
        self._spy = _ParserSpy()
        self.module.cli = self._spy

    def parse(self, argv: list[str], context: str = "") -> argparse.Namespace:
        """Parse ``argv`` (plus a fresh --logdir, made by the parse and removed after it); a
        parser error becomes a SweepError."""
        captured = io.StringIO()
        try:
            with contextlib.redirect_stderr(captured), tempfile.TemporaryDirectory() as tmp:
                return self.module.parse_args([*argv, "--logdir", os.path.join(tmp, "probe")])
        except SystemExit as e:
            if e.code in (0, None):
                raise
            lines = captured.getvalue().strip().splitlines() or [f"exit status {e.code}"]
            message = lines[-1].split(": error: ", 1)[-1]
            raise SweepError(f"{context}{message}") from None

    def flags(self) -> dict[str, Flag]:
        """Every flag of the script by dest (after one :meth:`parse`)."""
        flags = {}
        for action in self._spy.parser._actions:  # argparse has no public list
            longs = [o for o in action.option_strings if o.startswith("--")]
            if not longs or action.dest == "help":
                continue
            if isinstance(action, argparse.BooleanOptionalAction):
                kind = "negatable"
            elif isinstance(action, argparse._StoreTrueAction):
                kind = "true"
            elif action.nargs not in (None, 1):
                kind = "list"
            else:
                kind = "value"
            numeric = None
            if kind == "value" and action.choices is None and action.type is not None:
                name = getattr(action.type, "__name__", "")
                # schedule flags (--lr, --tau, ...) take a plain number too
                numeric = "int" if "int" in name else "float" if (
                    "float" in name or name in ("positive", "non negative", "in range",
                                                "lr_flag", "schedule_flag")) else None
            flags[action.dest] = Flag(action.dest, longs[0], kind, numeric)
        return flags


# -- the sweep's flags ----------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = cli.ArgumentParser(
        prog=PROG, usage="%(prog)s ALGO [sweep flags] -- [training flags]",
        description="Run many trainings of ALGO on Ray Tune: seeds, grids, sampled searches, "
                    "ASHA and Population Based Training. Everything after -- goes to "
                    "scripts/train_ALGO.py for every trial.")
    p.add_argument("algo", nargs="?", metavar="ALGO", help="a name from agents.ALGORITHMS")
    g = p.add_argument_group("what to run")
    seeds = g.add_mutually_exclusive_group()
    seeds.add_argument("--seeds", type=cli.positive_int, default=None, metavar="N",
                       help="run every configuration on seeds 0..N-1 (default: 1)")
    seeds.add_argument("--seed-list", type=cli.non_negative_int, nargs="+", default=None,
                       metavar="S", help="run every configuration on these seeds")
    g.add_argument("--grid", action="append", default=[], metavar="FLAG=V1,V2,...",
                   help="a training flag's values; several --grid make the cross product")
    g.add_argument("--sample", action="append", default=[], metavar="FLAG=DIST",
                   help="a sampled training flag: loguniform:LO:HI, uniform:LO:HI, "
                        "int:LO:HI (HI included) or choice:A,B,...")
    g.add_argument("--num-samples", type=cli.positive_int, default=None, metavar="K",
                   help="configurations drawn from the --sample distributions (default: 8 "
                        "with --sample, else 1)")
    g.add_argument("--search", choices=("random", "optuna"), default="random",
                   help="how --sample draws: at random, or Optuna's TPE (default: %(default)s)")
    g.add_argument("--scheduler", choices=("fifo", "asha", "pbt"), default="fifo",
                   help="fifo: run all to the end; asha: stop weak trials early on "
                        f"{METRIC}; pbt: Population Based Training (default: %(default)s)")
    g.add_argument("--pbt-interval", type=cli.positive_int, default=None, metavar="STEPS",
                   help="env steps between PBT exploit/explore steps (default: a fifth of "
                        "--total-steps); trials evaluate and checkpoint at this interval")
    r = p.add_argument_group("where and how")
    r.add_argument("--logdir", default=None, metavar="DIR",
                   help="the sweep directory; every trial is a run directory in it "
                        "(default: a fresh runs/sweep-ALGO-ENV-TIME)")
    r.add_argument("--resume", action="store_true",
                   help="continue the killed or interrupted sweep in --logdir")
    r.add_argument("--num-cpus", type=cli.positive_int, default=None,
                   help="CPUs of the local Ray instance (default: all cores)")
    r.add_argument("--cpus-per-trial", type=cli.positive_float, default=1.0,
                   help="CPUs per trial; also its TensorFlow thread count (default: 1)")
    r.add_argument("--address", default=None,
                   help="join this Ray cluster (e.g. ray://head:10001 or auto) instead of "
                        "starting Ray here; --logdir must then be on storage every node sees")
    r.add_argument("--status-every", type=cli.positive_float, default=30.0, metavar="S",
                   help="seconds between status lines (default: %(default)s)")
    return p


def parse_sample(text: str) -> tuple[str, Sample]:
    flag, dist = _split_assignment(text, "--sample")
    kind, _, rest = dist.partition(":")
    if kind not in DISTRIBUTIONS:
        raise SweepError(f"--sample {text}: unknown distribution {kind!r}; use one of "
                         "loguniform:LO:HI, uniform:LO:HI, int:LO:HI, choice:A,B,...")
    if kind == "choice":
        choices = [c for c in rest.split(",") if c]
        if len(choices) < 2:
            raise SweepError(f"--sample {text}: choice needs two or more values, "
                             "e.g. choice:64,128")
        return flag, Sample(kind, choices=choices)
    bounds = rest.split(":")
    try:
        low, high = (int(b) if kind == "int" else float(b) for b in bounds)
    except ValueError:
        raise SweepError(f"--sample {text}: {kind} needs two numbers, {kind}:LO:HI") from None
    if not low < high:
        raise SweepError(f"--sample {text}: LO must be below HI")
    if kind == "loguniform" and low <= 0:
        raise SweepError(f"--sample {text}: loguniform needs 0 < LO")
    if not (math.isfinite(low) and math.isfinite(high)):
        raise SweepError(f"--sample {text}: the bounds must be finite")
    return flag, Sample(kind, low, high)


def _split_assignment(text: str, option: str) -> tuple[str, str]:
    flag, sep, value = text.partition("=")
    flag = flag.strip().lstrip("-")
    if not sep or not flag or not value:
        raise SweepError(f"{option} {text!r}: write FLAG=VALUES, e.g. {option} lr=1e-3,3e-3")
    return flag, value


def _dest(flag: str, flags: dict[str, Flag], option: str, script: str) -> str:
    dest = flag.replace("-", "_")
    if dest in RESERVED:
        raise SweepError(f"{option} {flag}: the sweep sets --{flag} itself; use "
                         f"{RESERVED[dest]}")
    if dest not in flags:
        near = difflib.get_close_matches(dest, flags, n=1)
        hint = f"; did you mean {near[0].replace('_', '-')}?" if near else ""
        raise SweepError(f"{option} {flag}: {os.path.basename(script)} has no flag "
                         f"--{flag}{hint}")
    return dest


def check_reserved(argv: list[str]) -> None:
    for token in argv:
        if not token.startswith("--") or token == "--":
            continue
        name = token[2:].split("=", 1)[0].replace("-", "_")
        for dest, instead in RESERVED.items():
            if len(name) >= 3 and dest.startswith(name):
                raise SweepError(f"training flag {token} is set by the sweep for each trial; "
                                 f"use {instead}")


def parse(argv: list[str]) -> SweepSpec:
    """The sweep's flags and the training flags after ``--``, all checked."""
    if "--" in argv:
        at = argv.index("--")
        argv, train_argv = argv[:at], argv[at + 1:]
    else:
        train_argv = []
    args = build_parser().parse_args(argv)
    if args.resume:
        return _resume_spec(args, argv, train_argv)
    if args.algo is None:
        raise SweepError("ALGO is missing: python scripts/sweep.py dqn [sweep flags] -- "
                         "[training flags]")
    script = script_path(args.algo)
    check_reserved(train_argv)
    training = TrainingParser(script)
    base = training.parse(train_argv, "training flags after --: ")
    flags = training.flags()
    grid: dict[str, list[str]] = {}
    for text in args.grid:
        flag, values = _split_assignment(text, "--grid")
        dest = _dest(flag, flags, "--grid", script)
        if dest in grid:
            raise SweepError(f"--grid {flag} is given twice; put all values in one --grid")
        grid[dest] = [v.strip() for v in values.split(",") if v.strip()]
        if len(set(grid[dest])) != len(grid[dest]):
            raise SweepError(f"--grid {text}: a value is listed twice")
    samples: dict[str, Sample] = {}
    for text in args.sample:
        flag, sample = parse_sample(text)
        dest = _dest(flag, flags, "--sample", script)
        if dest in grid or dest in samples:
            raise SweepError(f"--sample {flag}: the flag is already swept")
        numeric = flags[dest].numeric
        if sample.kind != "choice" and numeric is None:
            raise SweepError(f"--sample {text}: --{flag} is not a number; use choice:A,B,...")
        if sample.kind in ("loguniform", "uniform") and numeric == "int":
            raise SweepError(f"--sample {text}: --{flag} takes integers; use int:LO:HI")
        samples[dest] = sample
    for dest, values in grid.items():
        for value in values:
            training.parse(train_argv + flags[dest].argv(value), f"--grid {dest}={value}: ")
    for dest, sample in samples.items():
        for value in sample.ends():
            training.parse(train_argv + flags[dest].argv(value),
                           f"--sample {dest}={sample.kind}, value {value}: ")
    seeds = args.seed_list or list(range(args.seeds or 1))
    if len(set(seeds)) != len(seeds):
        raise SweepError("--seed-list: a seed is listed twice")
    if args.num_samples is not None and not samples:
        raise SweepError("--num-samples needs --sample FLAG=DIST to draw from")
    num_samples = args.num_samples or (8 if samples else 1)
    if args.search == "optuna":
        if not samples:
            raise SweepError("--search optuna needs --sample FLAG=DIST to search over")
        if grid:
            raise SweepError("--search optuna cannot take --grid; sample the flag with "
                             "--sample FLAG=choice:A,B,...")
    if args.pbt_interval is not None and args.scheduler != "pbt":
        raise SweepError("--pbt-interval needs --scheduler pbt")
    pbt_interval = None
    if args.scheduler == "pbt":
        if not samples:
            raise SweepError("--scheduler pbt needs --sample FLAG=DIST: the flags PBT "
                             "perturbs (e.g. --sample lr=loguniform:1e-4:1e-2)")
        if args.search == "optuna":
            raise SweepError("--scheduler pbt draws its own population; use --search random")
        pbt_interval = args.pbt_interval or max(1, base.total_steps // 5)
        if pbt_interval >= base.total_steps:
            raise SweepError(f"--pbt-interval {pbt_interval} leaves no exploit step before "
                             f"--total-steps {base.total_steps}; choose a smaller interval")
        train_argv = _set_flag(train_argv, "--eval-freq", pbt_interval)
        train_argv = _set_flag(train_argv, "--checkpoint-every", pbt_interval)
    elif args.scheduler == "asha" and base.eval_freq == 0:
        raise SweepError("--scheduler asha compares trials on their evaluations; give the "
                         "training flag --eval-freq a positive value")
    if args.address and not args.logdir:
        raise SweepError("--address needs --logdir DIR on shared storage that every node of "
                         "the cluster mounts at the same path (e.g. NFS)")
    logdir = args.logdir or os.path.join(
        "runs", f"sweep-{args.algo.lower()}-{base.env}-{time.strftime('%Y%m%d-%H%M%S')}")
    if os.path.isdir(logdir) and os.listdir(logdir):
        raise SweepError(f"sweep directory {logdir} is not empty; pass --resume to continue "
                         "that sweep, or choose a new --logdir")
    return SweepSpec(
        algo=args.algo.lower(), script=script, train_argv=train_argv, seeds=seeds, grid=grid,
        samples=samples, num_samples=num_samples, search=args.search,
        scheduler=args.scheduler, pbt_interval=pbt_interval, logdir=os.path.abspath(logdir),
        num_cpus=args.num_cpus, cpus_per_trial=args.cpus_per_trial, address=args.address,
        status_every=args.status_every, flags=flags, total_steps=base.total_steps,
        eval_freq=base.eval_freq, env=base.env,
        command=" ".join(["sweep.py", *argv, *(["--", *train_argv] if train_argv else [])]),
    )


def _set_flag(argv: list[str], option: str, value: int) -> list[str]:
    """``argv`` with ``option value`` replacing any given value (PBT's own cadence)."""
    out, skip = [], False
    for token in argv:
        if skip:
            skip = False
            continue
        if token == option:
            skip = True
            continue
        if token.startswith(option + "="):
            continue
        out.append(token)
    return out + [option, str(value)]


def _resume_spec(args: argparse.Namespace, argv: list[str], train_argv: list[str]) -> SweepSpec:
    if args.logdir is None:
        raise SweepError("--resume needs --logdir DIR, the sweep directory to continue")
    path = os.path.join(args.logdir, SWEEP_FILE)
    try:
        with open(path) as f:
            spec = SweepSpec.from_json(json.load(f))
    except FileNotFoundError:
        raise SweepError(f"--resume: {args.logdir} has no {SWEEP_FILE}, it is not a sweep "
                         "directory") from None
    except (OSError, ValueError, TypeError) as e:
        raise SweepError(f"--resume: {path} is unreadable ({e})") from None
    if train_argv:
        raise SweepError("--resume takes no training flags: every trial continues with its "
                         "own; drop what follows --")
    if args.algo and args.algo.lower() != spec.algo:
        raise SweepError(f"--resume: {args.logdir} is a {spec.algo} sweep, not {args.algo}")
    defaults = vars(build_parser().parse_args([]))
    changed = [k for k, v in vars(args).items()
               if k not in RESUMABLE | {"algo", "logdir", "resume"} and v != defaults[k]]
    if changed:
        flag = "--" + changed[0].replace("_", "-")
        raise SweepError(f"--resume: {flag} cannot change a sweep; its flags are in {path} "
                         "(only --num-cpus, --address and --status-every may be given)")
    spec.logdir = os.path.abspath(args.logdir)
    for k in RESUMABLE:
        if getattr(args, k) != defaults[k]:
            setattr(spec, k, getattr(args, k))
    return spec
