"""Command-line flags shared by the training scripts. Imports no TensorFlow: argument
mistakes are reported in a fraction of a second, before the heavy imports."""

from __future__ import annotations

import argparse
import copy
import importlib.abc
import json
import os
import re
import sys
import tempfile
import time

from rlharness import _validate as v
from rlharness import presets

SCHEDULES = ("constant", "exponential", "step", "inverse-time", "polynomial", "cosine", "piecewise")
UPDATE_MODES = ("fit", "train_on_batch", "tf_function")


#: Packages Keras 3 imports at its own import for features no script here uses (DataFrame
#: inputs, image-gallery plots, notebook detection, bounding-box drawing), each in a
#: ``try: import ... except ImportError``. The dev extra installs them (pandas with Ray,
#: matplotlib for plots, OpenCV for Atari), where they cost ~3 s of each process start on a
#: 2-vCPU machine.
KERAS_EXTRAS_HIDDEN = ("pandas", "matplotlib", "IPython", "cv2")


class _HideKerasExtras(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in KERAS_EXTRAS_HIDDEN:
            raise ModuleNotFoundError(f"{name} is hidden while Keras imports", name=name)
        return None


def import_tensorflow_quietly() -> None:
    """Import TensorFlow and Keras; scripts call this once their arguments are valid.

    TF 2.21 writes C++ start-up notices (oneDNN, no CUDA) to fd 2 during import, past
    TF_CPP_MIN_LOG_LEVEL: hidden, and shown if the import fails. The packages of
    :data:`KERAS_EXTRAS_HIDDEN` not yet imported are hidden from Keras's import (Keras then
    turns those features off for the process); they stay importable afterwards."""
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    hide = _HideKerasExtras()
    sys.meta_path.insert(0, hide)
    with tempfile.TemporaryFile() as captured:
        stderr = os.dup(2)
        os.dup2(captured.fileno(), 2)
        try:
            import keras  # noqa: F401
            import tensorflow  # noqa: F401
        except BaseException:
            os.dup2(stderr, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            sys.meta_path.remove(hide)
            os.dup2(stderr, 2)
            os.close(stderr)


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump)."""

    def error(self, message: str):
        fail(f"{message} (see {self.prog} --help)", self.prog)


def fail(message: str, prog: str | None = None, status: int = 2) -> None:
    """Print ``prog: error: message`` and exit with ``status`` (2: bad input): no traceback."""
    prog = prog or os.path.basename(sys.argv[0])
    print(f"{prog}: error: {message}", file=sys.stderr)
    raise SystemExit(status)


def _checked(check, *extra):
    def parse(text: str):
        try:
            value = float(text) if check in (v.positive, v.non_negative, v.in_range) else int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        try:
            check("value", value, *extra)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e).replace("value ", "", 1)) from None
        return value

    parse.__name__ = check.__name__.replace("_", " ")
    return parse


positive_int = _checked(v.positive_int)
non_negative_int = _checked(v.non_negative_int)
positive_float = _checked(v.positive)
non_negative_float = _checked(v.non_negative)
unit_interval = _checked(v.in_range, 0.0, 1.0)


def seed(text: str) -> int:
    """A seed for numpy, gymnasium and Keras: an integer in [0, 2**32)."""
    value = non_negative_int(text)
    if value >= 2**32:
        raise argparse.ArgumentTypeError(f"must be below 2**32 (numpy's seed range), got {value}")
    return value


def add_run_args(p: argparse.ArgumentParser, *, env: str, total_steps: int,
                 n_envs: int = 1) -> None:
    g = p.add_argument_group("run")
    g.add_argument("--env", default=env, help="gymnasium environment id (default: %(default)s)")
    g.add_argument("--n-envs", type=positive_int, default=n_envs,
                   help="sub-envs of the gymnasium vector env; env steps count every sub-env's "
                        "steps (default: %(default)s)")
    g.add_argument("--total-steps", type=positive_int, default=total_steps,
                   help="the run's total env steps, also when resuming (default: %(default)s)")
    g.add_argument("--seed", type=seed, default=0, help="(default: %(default)s)")
    g.add_argument("--logdir", default=None,
                   help="run directory for event files and checkpoints "
                        "(default: a fresh one under runs/)")
    g.add_argument("--resume", action="store_true",
                   help="continue the run in --logdir from its last checkpoint")
    g.add_argument("--checkpoint-every", type=non_negative_int, default=10_000,
                   help="env steps between checkpoints, 0: only at the end (default: %(default)s)")
    g.add_argument("--eval-freq", type=non_negative_int, default=10_000,
                   help="env steps between greedy evaluations, 0: only at the end "
                        "(default: %(default)s)")
    g.add_argument("--eval-episodes", type=non_negative_int, default=20,
                   help="episodes per evaluation (default: %(default)s)")
    g.add_argument("--update-mode", choices=UPDATE_MODES, default="tf_function",
                   help="how each training round runs: one model.fit(epochs=1), one "
                        "train_on_batch, or one compiled tf.function (default: %(default)s)")
    g.add_argument("--jit-compile", action=argparse.BooleanOptionalAction, default=None,
                   help="XLA-compile the training round (default: on for an MLP, off for the "
                        "CNN on a CPU, whose convolutions XLA runs slower); off starts faster, "
                        "which suits short runs")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument("--progress-every", type=positive_float, default=10.0, metavar="SECONDS",
                   help="where stderr is not a terminal (CI, nohup), a plain status line every "
                        "SECONDS instead of the bar (default: %(default)s)")
    g.add_argument("--policy", choices=("auto", "cnn", "mlp"), default="auto",
                   help="network trunk: the Nature CNN or an MLP; auto: the CNN for uint8 "
                        "image observations (Atari, Catch-v0) (default: %(default)s)")
    g.add_argument("--sticky-actions", type=unit_interval, default=None, metavar="P",
                   help="Atari only: ALE's repeat_action_probability (default: the id's own, "
                        "0.25 for ALE/*-v5, 0 for *NoFrameskip-v4)")
    g.add_argument("--list-presets", action="store_true",
                   help="list the tuned per-env presets (hyperparams/ALGO.toml) and exit; the "
                        "preset of --env replaces the defaults shown here, and every flag given "
                        "overrides it")


def log_std(text: str) -> float:
    """An initial log std of a Gaussian policy: a number in [-20, 2] (std 2e-9 .. 7.4)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not -20 <= value <= 2:
        raise argparse.ArgumentTypeError(f"{value} is outside [-20, 2] (std 2e-9 .. 7.4); "
                                         "use e.g. 0 (std 1)")
    return value


def add_on_policy_args(g) -> None:
    """The flags A2C and PPO share (train_a2c.py, train_ppo.py): the Gaussian policy's initial
    log std and gSDE for Box actions, observation and reward normalization (envs.make_vec_env)."""
    g.add_argument("--log-std-init", type=log_std, default=0.0,
                   help="initial log std of a Box action policy, in [-20, 2]; with --use-sde "
                        "of each entry of the exploration std matrix (default: %(default)s)")
    g.add_argument("--use-sde", action=argparse.BooleanOptionalAction, default=False,
                   help="Box actions: generalized state-dependent exploration (gSDE), noise "
                        "z(s) θ from the policy's last hidden features z(s) and a held random "
                        "matrix θ ~ N(0, σ²) (default: off)")
    g.add_argument("--sde-sample-freq", type=sde_sample_freq, default=-1, metavar="N",
                   help="with --use-sde: a new θ every N vector steps of a rollout; -1: only at "
                        "the start of each rollout (default: %(default)s)")
    g.add_argument("--normalize-obs", action=argparse.BooleanOptionalAction, default=False,
                   help="standardize observations by running statistics, saved in "
                        "checkpoints, frozen in evaluation, evaluate.py and export.py "
                        "(default: off)")
    g.add_argument("--normalize-reward", action=argparse.BooleanOptionalAction, default=False,
                   help="scale rewards by the running std of the discounted return "
                        "(default: off)")


def sde_sample_freq(text: str) -> int:
    """gSDE's resampling period in vector steps: -1 (once per rollout) or a positive integer."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value != -1 and value < 1:
        raise argparse.ArgumentTypeError(f"{value} is neither -1 (once per rollout) nor a "
                                         "positive number of steps; use e.g. 4")
    return value


def add_lr_args(p: argparse.ArgumentParser, *, lr: float, schedule: str, decay_steps: int,
                decay_rate: float) -> None:
    g = p.add_argument_group("learning rate (a pure function of the global step)")
    g.add_argument("--lr", type=lr_flag, default=lr, metavar="LR",
                   help="initial learning rate, shaped by the flags below; or a whole "
                        "schedule in the syntax of every scheduled hyperparameter, e.g. "
                        "'cosine(1e-3, steps=20000)@updates', which replaces them "
                        "(default: %(default)s)")
    g.add_argument("--lr-schedule", choices=SCHEDULES, default=schedule,
                   help="(default: %(default)s)")
    g.add_argument("--lr-clock", choices=("updates", "env_steps"), default="updates",
                   help="the global-step counter the schedule reads (default: %(default)s)")
    g.add_argument("--decay-steps", type=positive_int, default=decay_steps,
                   help="clock steps per decay period (default: %(default)s)")
    g.add_argument("--decay-rate", type=positive_float, default=decay_rate,
                   help="exponential/inverse-time rate; the drop factor for 'step' and "
                        "'piecewise' (default: %(default)s)")
    g.add_argument("--staircase", action="store_true", help="decay in discrete intervals")
    g.add_argument("--end-lr", type=non_negative_float, default=None,
                   help="final lr of 'polynomial' (default: lr/100)")
    g.add_argument("--power", type=positive_float, default=1.0,
                   help="power of 'polynomial', 1 = linear (default: %(default)s)")
    g.add_argument("--warmup-steps", type=non_negative_int, default=0,
                   help="linear warmup of 'cosine' (default: %(default)s)")
    g.add_argument("--boundaries", type=positive_int, nargs="+", default=None,
                   help="step boundaries of 'piecewise' (default: decay-steps x 1, 2, 3)")


def lr_flag(text: str) -> float | str:
    """argparse type of ``--lr``: a positive number, or a schedule flag (kept as text)."""
    from rlharness.schedule_flags import schedule_spec

    try:
        float(text)
    except ValueError:
        if schedule_spec(text).initial <= 0:
            raise argparse.ArgumentTypeError(
                f"the initial lr must be positive in {text!r}") from None
        return text
    return positive_float(text)


def validate_lr_args(args: argparse.Namespace) -> None:
    from rlharness.schedule_flags import schedule_spec

    if isinstance(args.lr, str):  # a schedule flag: it names its own clock
        args.lr_clock = schedule_spec(args.lr).clock or args.lr_clock
        return
    if args.lr_schedule in ("exponential", "step", "piecewise") and args.decay_rate > 1:
        fail(f"--decay-rate {args.decay_rate} would grow the lr with --lr-schedule "
             f"{args.lr_schedule}; use a rate in (0, 1]")
    if args.boundaries and any(b <= a for a, b in zip(args.boundaries, args.boundaries[1:])):
        fail("--boundaries must be strictly increasing")


def make_schedule_from_args(args: argparse.Namespace):
    from rlharness.schedule_flags import schedule_spec
    from rlharness.schedules import make_schedule

    if isinstance(args.lr, str):
        return schedule_spec(args.lr).build()
    boundaries = args.boundaries or [args.decay_steps * i for i in (1, 2, 3)]
    end_lr = args.end_lr if args.end_lr is not None else args.lr / 100
    return make_schedule(
        args.lr_schedule, args.lr, decay_steps=args.decay_steps, decay_rate=args.decay_rate,
        staircase=args.staircase, end_learning_rate=end_lr, power=args.power,
        warmup_steps=args.warmup_steps, boundaries=boundaries,
    )


def make_env_from_args(args: argparse.Namespace, *, evaluation: bool = False,
                       seed: int | None = None, **kwargs):
    """The vector env of a run with flags ``args`` (``--env``, ``--n-envs``,
    ``--sticky-actions``, ``--normalize-obs``, ``--normalize-reward``, ``--gamma``); with
    ``evaluation``, its evaluation env: one sub-env, the evaluation wrappers, observations
    normalized as in training (statistics from :func:`envs.sync_normalization`), rewards raw.
    ``kwargs`` go to :func:`envs.make_vec_env` (e.g. ``render_mode``)."""
    from envs import make_vec_env

    sticky = getattr(args, "sticky_actions", None)
    if sticky is not None:
        kwargs["sticky_actions"] = sticky
    normalize_obs = getattr(args, "normalize_obs", False)  # flags of some scripts only
    if evaluation:
        return make_vec_env(args.env, 1, seed=seed, training=False,
                            normalize_obs=normalize_obs, **kwargs)
    return make_vec_env(args.env, args.n_envs, seed=seed, normalize_obs=normalize_obs,
                        normalize_reward=getattr(args, "normalize_reward", False),
                        gamma=getattr(args, "gamma", 0.99), **kwargs)


def default_logdir(algo: str, env: str) -> str:
    return os.path.join("runs", f"{algo}-{env}-{time.strftime('%Y%m%d-%H%M%S')}")


def refuse_used_logdir(logdir: str, fix: str) -> None:
    """A run never writes into another run's directory: fail if ``logdir`` is not empty."""
    if os.path.isdir(logdir) and os.listdir(logdir):
        fail(f"run directory {logdir} is not empty; {fix}")


def check_rollout(args: argparse.Namespace) -> int:
    """On-policy scripts: a rollout of ``--n-steps x --n-envs`` env steps must fit in
    ``--total-steps``; returns the rollout's size."""
    rollout = args.n_steps * args.n_envs
    if rollout > args.total_steps:
        fail(f"--n-steps {args.n_steps} x --n-envs {args.n_envs} = {rollout} env steps per "
             f"rollout, more than --total-steps {args.total_steps}: no update would run; "
             "lower --n-steps")
    return rollout


def open_run(args: argparse.Namespace) -> None:
    """Tools on a trained run: ``args.run`` and ``args.checkpoint_path`` from ``args.run_dir``
    and ``args.checkpoint``, or a one-line error (TF-free)."""
    from rlharness.restore import RunDirError, checkpoint_path, read_run

    try:
        args.run = read_run(args.run_dir)
        args.checkpoint_path = checkpoint_path(args.run_dir, args.checkpoint)
    except RunDirError as e:
        fail(str(e))


def refuse_used_output(path: str, flag: str) -> None:
    """A tool never overwrites: ``path`` (given as ``flag``) must be new or an empty directory."""
    if os.path.isfile(path) or (os.path.isdir(path) and os.listdir(path)):
        fail(f"{flag} {path} is not an empty directory; choose a new one (nothing is overwritten)")


def make_run_dir(logdir: str) -> None:
    """Create ``logdir`` (if needed) and check that a file can be written in it, or fail in
    one line naming the path: before TensorFlow is imported, and before anything is written."""
    fix = "choose another --logdir"
    if os.path.exists(logdir) and not os.path.isdir(logdir):
        fail(f"--logdir {logdir} is a file, not a directory; {fix}")
    parent = os.path.dirname(os.path.abspath(logdir))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        fail(f"--logdir {logdir}: {parent} is a file, not a directory; {fix}")
    try:
        os.makedirs(logdir, exist_ok=True)
        tempfile.TemporaryFile(dir=logdir).close()
    except OSError as e:
        where = f" {e.filename}" if e.filename and e.filename != logdir else ""
        fail(f"--logdir {logdir}: cannot write{where} ({e.strerror}); {fix} (a writable place)")


#: Flags a resumed run may change; every other flag is fixed by the run's config.json.
RESUMABLE = {"total_steps", "logdir", "resume", "no_progress", "checkpoint_every", "eval_freq",
             "eval_episodes", "update_mode", "jit_compile", "progress_every"}


def parse(parser: argparse.ArgumentParser, argv: list[str] | None, *, algo: str,
          discrete: bool = True, box: bool = False, check=None) -> argparse.Namespace:
    """Parse and check everything that can be checked without TensorFlow; ``check(args)``
    adds the script's own cross-flag checks (calling :func:`fail`). The run directory is
    made last, so a refused command leaves nothing behind. ``discrete``: the env must have
    Discrete actions; ``box``: Discrete or Box actions.

    With ``--resume`` the flags not given take the run's saved values; a given flag that
    contradicts them is an error naming it, unless it is one of :data:`RESUMABLE`.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    if args.list_presets:
        try:
            print(presets.describe(parser, algo))
        except presets.PresetError as e:
            fail(str(e))
        sys.exit(0)
    if not args.resume:
        args = _with_preset(parser, argv, args, algo)
    del args.list_presets
    if args.resume:
        args.preset = ""  # a run's config.json holds its resolved flags, preset included
        given = _given_flags(parser, argv)
        saved = _saved_config(args.logdir, algo)
        clashes = [k for k in sorted(given - RESUMABLE)
                   if k in saved and getattr(args, k) != saved[k]]
        if clashes:
            k = clashes[0]
            fail(f"--{k.replace('_', '-')} {_show(getattr(args, k))} contradicts the checkpoint "
                 f"in {args.logdir}, which was trained with {_show(saved[k])}; drop the flag to "
                 "keep the run's value" + (f" (also: {', '.join(clashes[1:])})" if clashes[1:]
                                          else ""))
        for k, value in saved.items():
            if k not in given and k not in ("resume", "logdir"):
                setattr(args, k, value)
        done = _checkpoint_steps(args.logdir)
        if args.total_steps < done:
            fail(f"--total-steps {args.total_steps} is below the {done} env steps the run "
                 "already has; --total-steps is the run's total")
    validate_run_args(args, algo=algo, discrete=discrete, box=box)
    validate_lr_args(args)
    if check is not None:
        check(args)
    make_run_dir(args.logdir)  # last: a refused command leaves no directory behind
    return args


def _with_preset(parser: argparse.ArgumentParser, argv: list[str], args: argparse.Namespace,
                 algo: str) -> argparse.Namespace:
    """``args`` with the preset of ``args.env`` under the flags given; ``args.preset`` names
    the preset used ("" for none: the script's defaults, tuned for its default env)."""
    try:
        table = presets.load(algo).get(args.env)
        if table is None:
            args.preset = ""
            return args
        before = presets.as_argv(parser, table, f"{presets.path(algo)} [{args.env}]")
    except presets.PresetError as e:
        fail(str(e))
    args = parser.parse_args(before + argv)
    args.preset = args.env
    return args


def _show(value) -> str:
    return " ".join(map(str, value)) if isinstance(value, list) else str(value)


def _given_flags(parser: argparse.ArgumentParser, argv: list[str] | None) -> set[str]:
    quiet = copy.deepcopy(parser)
    for action in quiet._actions:  # argparse has no public way to tell given from default
        action.default = argparse.SUPPRESS
    return set(vars(quiet.parse_args(argv)))


def config_path(logdir: str) -> str:
    return os.path.join(logdir, "config.json")


def _saved_config(logdir: str | None, algo: str) -> dict:
    if logdir is None:
        fail("--resume needs --logdir RUN, the run directory to continue")
    if not os.path.isdir(logdir):
        fail(f"--resume: run directory {logdir} does not exist")
    try:
        with open(config_path(logdir)) as f:
            saved = json.load(f)
    except FileNotFoundError:
        fail(f"--resume: {logdir} has no config.json, it is not a run directory of rlharness")
    except (OSError, ValueError) as e:
        fail(f"--resume: {config_path(logdir)} is unreadable ({e})")
    if saved.get("algo") != algo:
        fail(f"--resume: {logdir} is a {saved.get('algo')} run, not {algo}; use its own script")
    return saved["args"]


def _checkpoint_steps(logdir: str) -> int:
    """Env steps of the latest checkpoint, read from the manager's index file."""
    try:
        with open(os.path.join(logdir, "checkpoints", "checkpoint")) as f:
            match = re.search(r'model_checkpoint_path: ".*?ckpt-(\d+)"', f.read())
    except OSError:
        match = None
    if match is None:
        fail(f"--resume: no checkpoint in {logdir} (the run stopped before its first one); "
             "start the run again in a new --logdir")
    return int(match.group(1))


def save_config(args: argparse.Namespace, algo: str) -> None:
    """Write the run's ``config.json`` atomically (a crash leaves no half of it)."""
    from rlharness import faults

    data = json.dumps({"algo": algo, "args": vars(args)}, indent=1).encode()
    with faults.guard("writing config.json", config_path(args.logdir)):
        faults.replace_atomically(config_path(args.logdir), data)


def validate_run_args(args: argparse.Namespace, *, algo: str, discrete: bool = True,
                      box: bool = False) -> None:
    """Check the env (its action space, see :func:`parse`) and the run directory; fills in
    a default ``--logdir``."""
    from envs import EnvError, check_env_id, require_discrete, require_discrete_or_box

    try:
        check_env_id(args.env)
        if discrete or box:
            import gymnasium

            probe = gymnasium.make(args.env)
            try:
                actions = (require_discrete_or_box if box else require_discrete)(
                    probe, algo.upper())
                space = probe.observation_space
            finally:
                probe.close()
            image = space.dtype == "uint8" and len(space.shape) in (2, 3)
            if getattr(args, "use_sde", False) and not isinstance(actions, gymnasium.spaces.Box):
                fail(f"--use-sde needs Box (continuous) actions, but {args.env} has "
                     f"{probe.action_space}; drop --use-sde or pick an env such as Pendulum-v1")
            if getattr(args, "policy", "auto") == "cnn" and not image:
                fail(f"--policy cnn needs image observations (uint8 pixels), but {args.env} "
                     f"has {space}; use --policy mlp or auto")
    except EnvError as e:
        fail(str(e))
    from envs.atari import is_atari_id

    if getattr(args, "sticky_actions", None) is not None and not is_atari_id(args.env):
        fail(f"--sticky-actions is for Atari games (ALE/<Game>-v5, <Game>NoFrameskip-v4), "
             f"not {args.env}")
    if args.resume:
        _saved_config(args.logdir, algo)
        _checkpoint_steps(args.logdir)
    elif args.logdir is None:
        args.logdir = default_logdir(algo, args.env)
    else:
        refuse_used_logdir(args.logdir, "pass --resume to continue it, or choose a new --logdir")
