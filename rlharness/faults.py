"""Faults of a run's files: I/O failures named in one line, and crash points for tests.

Imports no TensorFlow (the CLI uses it before TF is loaded); a TensorFlow I/O error is
recognised by its class when one is raised.

Crash tests: with ``RLHARNESS_KILL_AT=NAME:N`` in the environment, the process kills itself
with SIGKILL the ``N``-th time it passes :func:`point` ``NAME`` (SQLite's crash tests in
spirit: a kill at an exact moment, repeatable). The named points are listed in
:data:`POINTS`. Unset, a point costs one module-global check.
"""

from __future__ import annotations

import errno
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager, suppress

#: Where a crash test can kill a run (see the module docstring).
POINTS = (
    "env_step",          # after an env step is recorded, before anything is logged
    "train_round",       # after the optimizer applied a round, before the step counts it
    "events_flushed",    # right after buffered points reached the event file
    "checkpoint_arrays",  # the npz written as .tmp, not yet renamed into place
    "checkpoint_index",  # the npz in place, the TF checkpoint not yet written
    "checkpoint_saved",  # the checkpoint committed, stale files not yet removed
    "resume_rewrite",    # resuming: event files being replaced by their rewrite
)


def _armed() -> tuple[str, int] | None:
    spec = os.environ.get("RLHARNESS_KILL_AT")
    if not spec:
        return None
    name, _, count = spec.partition(":")
    if name not in POINTS or not count.isdigit() or int(count) < 1:
        raise ValueError(f"RLHARNESS_KILL_AT={spec!r}: use NAME:N, NAME one of {POINTS}")
    return name, int(count)


ARMED = _armed()
_passes = 0


def point(name: str) -> None:
    """A place where a crash test may kill the process (no-op unless armed for ``name``)."""
    global _passes
    if ARMED is not None and ARMED[0] == name:
        _passes += 1
        if _passes == ARMED[1]:
            os.kill(os.getpid(), signal.SIGKILL)


class RunIOError(RuntimeError):
    """Writing a run's files failed: ``problem`` (e.g. "the disk is full") while ``doing``
    (e.g. "saving checkpoint 6000"), at ``path``."""

    def __init__(self, problem: str, doing: str, path: str) -> None:
        super().__init__(f"{problem} while {doing} ({path})")
        self.problem, self.doing, self.path = problem, doing, path


_PROBLEMS = {  # errno -> what the user is told
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission is denied",
    errno.EPERM: "permission is denied",
    errno.ENOENT: "a directory of the run vanished",
    errno.ENOTDIR: "a directory of the run was replaced by a file",
    errno.EIO: "the device reported an I/O error",
}
_TF_TEXT = {  # TensorFlow errors carry no errno, only the OS's text
    "No space left on device": errno.ENOSPC,
    "Disk quota exceeded": errno.EDQUOT,
    "Read-only file system": errno.EROFS,
    "Permission denied": errno.EACCES,
    "No such file or directory": errno.ENOENT,
    "Not a directory": errno.ENOTDIR,
    "Input/output error": errno.EIO,
}


def describe(error: BaseException) -> str | None:
    """What an I/O error means for the user, or None if ``error`` is no I/O error."""
    if isinstance(error, OSError):
        code = error.errno
    elif type(error).__module__.startswith("tensorflow") and hasattr(error, "error_code"):
        text = str(error)
        code = next((c for t, c in _TF_TEXT.items() if t in text), None)
        if code is None:
            return None
    else:
        return None
    if code in _PROBLEMS:
        return _PROBLEMS[code]
    reason = os.strerror(code) if code else str(error).strip().splitlines()[0][:120]
    return f"writing failed ({reason})"


@contextmanager
def guard(doing: str, path: str) -> Iterator[None]:
    """Turn an I/O error raised inside into a :class:`RunIOError` about ``doing``/``path``."""
    try:
        yield
    except RunIOError:
        raise
    except Exception as e:
        problem = describe(e)
        if problem is None:
            raise
        raise RunIOError(problem, doing, getattr(e, "filename", None) or path) from e


def replace_atomically(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves the old file or the new one whole:
    a synced temporary file renamed over it, then the directory synced."""
    tmp = path + ".tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.remove(tmp)
        raise
    sync_directory(os.path.dirname(path) or ".")


def sync_directory(path: str) -> None:
    """fsync a directory, so that renames in it survive a power cut (not just a kill)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
