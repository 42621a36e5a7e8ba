"""TensorBoard logging on explicit, strictly increasing integer steps."""

from __future__ import annotations

import glob
import json
import os
import time
from collections.abc import Iterable
from contextlib import suppress

import numpy as np
import tensorflow as tf
from tensorboard.backend.event_processing.event_file_loader import (
    EventFileLoader,
    RawEventFileLoader,
)
from tensorboard.compat.proto import event_pb2
from tensorboard.plugins.scalar import metadata as scalar_metadata
from tensorboard.util import tensor_util

from rlharness import faults

_METADATA = scalar_metadata.create_summary_metadata(
    display_name=None, description=None
).SerializeToString()


_POINTS_SIGNATURE = (
    tf.TensorSpec([None], tf.string),
    tf.TensorSpec([None], tf.int64),
    tf.TensorSpec([None], tf.float32),
)


class RunWriter:
    """Scalars for TensorBoard, buffered in memory and written in batches.

    An eager ``tf.summary.scalar`` costs ~0.3 ms; :meth:`scalar` only appends to a list
    and :meth:`flush` writes everything buffered in one compiled graph call, so a point
    costs microseconds. Events are the same ``scalars`` events ``tf.summary.scalar``
    writes. Steps of each tag must strictly increase: a repeated or backward step raises,
    because two points on one step would draw a broken curve.
    """

    def __init__(self, log_dir: str, flush_secs: float = 5.0) -> None:
        self.log_dir = log_dir
        self.flush_secs = flush_secs
        self._writer = None  # the event file is created at the first flush
        self._tags: list[str] = []
        self._steps: list[int] = []
        self._values: list[float] = []
        self._last_step: dict[str, int] = {}
        self._last_flush = time.monotonic()
        self._failed = False
        # One graph per writer: a traced summary op is bound to the writer it saw.
        self._write_points = tf.function(
            self._write_points_eager, input_signature=_POINTS_SIGNATURE
        )

    def _write_points_eager(self, tags, steps, values):
        with self._file_writer().as_default():
            for i in tf.range(tf.shape(tags)[0]):
                tf.summary.write(tags[i], values[i], step=steps[i], metadata=_METADATA)

    def _file_writer(self):
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir, max_queue=100_000)
        return self._writer

    def scalar(self, tag: str, value: float, step: int) -> None:
        self._check(tag, step, step)
        self._tags.append(tag)
        self._steps.append(step)
        self._values.append(value)

    def scalars(self, tag: str, values: Iterable[float], steps: Iterable[int]) -> None:
        """Many points of one tag at once (e.g. the lr of every update of a round)."""
        steps = [int(s) for s in steps]
        values = [float(v) for v in values]
        if len(steps) != len(values):
            raise ValueError(f"{tag}: {len(steps)} steps but {len(values)} values")
        if not steps:
            return
        if any(b <= a for a, b in zip(steps, steps[1:])):
            raise ValueError(f"{tag}: steps must strictly increase")
        self._check(tag, steps[0], steps[-1])
        self._tags.extend([tag] * len(steps))
        self._steps.extend(steps)
        self._values.extend(values)

    def _check(self, tag: str, first: int, last: int) -> None:
        previous = self._last_step.get(tag)
        if previous is not None and first <= previous:
            raise ValueError(f"{tag}: step {first} is not after the last logged step {previous}")
        self._last_step[tag] = last

    def maybe_flush(self) -> None:
        """Flush if ``flush_secs`` have passed since the last flush."""
        if time.monotonic() - self._last_flush >= self.flush_secs:
            self.flush()

    def flush(self) -> None:
        """Write every buffered point and flush the event file to disk; an I/O failure
        raises :class:`~rlharness.faults.RunIOError` and leaves the writer unusable (later
        points are dropped: the run is stopping)."""
        if self._tags and not self._failed:
            tags, steps, values = self._tags, self._steps, self._values
            self._tags, self._steps, self._values = [], [], []
            try:
                with faults.guard("writing the event files", self.log_dir):
                    self._write_points(tf.constant(tags), tf.constant(steps, tf.int64),
                                       tf.constant(values, tf.float32))
                    self._writer.flush()
            except faults.RunIOError:
                self._failed = True
                raise
            faults.point("events_flushed")
        self._last_flush = time.monotonic()

    def close(self) -> None:
        """Flush and close; after a failed write only close (the error was raised then)."""
        if not self._failed:
            self.flush()
        if self._writer is not None:
            with suppress(Exception):
                self._writer.close()


def event_files(log_dir: str) -> list[str]:
    return sorted(glob.glob(os.path.join(log_dir, "events.out.tfevents.*")))


def read_scalars(log_dir: str) -> dict[str, list[tuple[int, float]]]:
    """Every scalar point in ``log_dir``'s event files: ``{tag: [(step, value), ...]}``,
    in file order (as TensorBoard reads them). For tests, resume checks and tools."""
    points: dict[str, list[tuple[int, float]]] = {}
    for path in event_files(log_dir):
        for event in EventFileLoader(path).Load():
            for v in event.summary.value:
                tensor = v.HasField("tensor")
                value = tensor_util.make_ndarray(v.tensor) if tensor else v.simple_value
                points.setdefault(v.tag, []).append((event.step, float(np.asarray(value))))
    return points


#: The rewrite in progress, and its record (see :func:`truncate_events`).
_PENDING, _PLAN = "pending.tfevents.rewrite", "rewrite.json"


def _whole_records(path: str) -> tuple[list[bytes], bool]:
    """The complete records of an event file, and whether a cut record follows them (what
    a kill in the middle of a write leaves). TensorBoard reads such a file the same way."""
    records = list(RawEventFileLoader(path).Load())
    whole = sum(len(r) + 16 for r in records)  # TFRecord framing: length, 2 CRCs
    return records, whole != os.path.getsize(path)


def truncate_events(log_dir: str, last_steps: dict[str, int]) -> int:
    """Drop scalar points logged after a checkpoint, so a resumed run logs no step twice.

    ``last_steps`` maps a tag group (the part before ``/``) to the last step to keep;
    groups not named are kept whole. A cut last record (a kill during a write) is dropped
    too. The surviving events are rewritten into one event file, synced, and recorded in
    ``rewrite.json`` before any old file goes, so a crash at any moment leaves either the
    old files (an unfinished rewrite is discarded) or the rewrite (finished by the next
    call). Returns the number of points dropped.
    """
    with faults.guard("rewriting the event files to resume", log_dir):
        _finish_rewrite(log_dir)
        olds = event_files(log_dir)
        kept, dropped, cut = [], 0, False
        for path in olds:
            records, partial = _whole_records(path)
            cut |= partial
            for record in records:
                event = event_pb2.Event.FromString(record)
                values = event.summary.value
                limit = last_steps.get(values[0].tag.split("/")[0]) if values else None
                if limit is not None and event.step > limit:
                    dropped += 1
                else:
                    kept.append(record)
        if not dropped and not cut:
            return 0
        pending = os.path.join(log_dir, _PENDING)
        with tf.io.TFRecordWriter(pending) as writer:
            for record in kept:
                writer.write(record)
        with open(pending, "rb") as f:
            os.fsync(f.fileno())
        final = f"events.out.tfevents.{time.time():.6f}.rlharness.resumed"
        plan = {"replaces": [os.path.basename(p) for p in olds], "final": final}
        faults.replace_atomically(os.path.join(log_dir, _PLAN), json.dumps(plan).encode())
        _finish_rewrite(log_dir)
    return dropped



def _finish_rewrite(log_dir: str) -> None:
    """Complete a recorded rewrite, or discard an unrecorded (so unfinished) one."""
    plan_path, pending = os.path.join(log_dir, _PLAN), os.path.join(log_dir, _PENDING)
    if not os.path.exists(plan_path):
        if os.path.exists(pending):
            os.remove(pending)
        return
    with open(plan_path) as f:
        plan = json.load(f)
    for name in plan["replaces"]:
        faults.point("resume_rewrite")
        if os.path.exists(os.path.join(log_dir, name)):
            os.remove(os.path.join(log_dir, name))
    if os.path.exists(pending):
        os.replace(pending, os.path.join(log_dir, plan["final"]))
    faults.sync_directory(log_dir)
    os.remove(plan_path)
