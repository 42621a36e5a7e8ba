"""Atomic checkpoints of everything a run's future depends on."""

from __future__ import annotations

import glob
import json
import os
import shutil

import numpy as np
import tensorflow as tf

from rlharness import faults
from rlharness.npz import CheckpointError, read_arrays, unreadable


class Checkpointer:
    """Checkpoints in ``directory``, numbered by env steps; the last ``max_to_keep`` stay.

    ``ckpt-N.*`` holds the TensorFlow objects (models, optimizer with its iteration count,
    the GlobalStep) through ``tf.train.CheckpointManager``; ``state-N.npz`` holds numpy
    arrays (replay buffer, RNG states as JSON, env state). The npz is renamed into place
    before the manager commits ``ckpt-N`` to its index file, and TensorFlow writes that
    index atomically, so a crash at any moment leaves the previous checkpoint as the
    latest, whole. Nothing is ever unpickled.
    """

    def __init__(self, directory: str, trackables: dict, max_to_keep: int = 3) -> None:
        self.directory = directory
        self._checkpoint = tf.train.Checkpoint(**trackables)
        self._manager = tf.train.CheckpointManager(
            self._checkpoint, directory, max_to_keep=max_to_keep, checkpoint_name="ckpt"
        )

    @property
    def latest(self) -> str | None:
        """The latest whole checkpoint, as the index file on disk says."""
        return tf.train.latest_checkpoint(self.directory)

    @staticmethod
    def _arrays_path(checkpoint_path: str) -> str:
        head, name = os.path.split(checkpoint_path)
        return os.path.join(head, name.replace("ckpt-", "state-") + ".npz")

    def save(self, number: int, arrays: dict[str, np.ndarray]) -> str:
        """Save checkpoint ``number``; on any failure remove what it had written and raise
        (an I/O failure as :class:`~rlharness.faults.RunIOError`), the previous one intact."""
        try:
            with faults.guard(f"saving checkpoint {number}", self.directory):
                return self._save(number, arrays)
        except BaseException:
            self._remove_uncommitted(number)
            raise

    def _save(self, number: int, arrays: dict[str, np.ndarray]) -> str:
        if not os.path.isdir(self.directory):
            os.mkdir(self.directory)  # not makedirs: a vanished run directory is an error
        target = self._arrays_path(os.path.join(self.directory, f"ckpt-{number}"))
        with open(target + ".tmp", "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        faults.point("checkpoint_arrays")
        os.replace(target + ".tmp", target)
        faults.point("checkpoint_index")
        path = self._manager.save(checkpoint_number=number)
        faults.point("checkpoint_saved")
        keep = {self._arrays_path(p) for p in self._manager.checkpoints}
        for stale in glob.glob(os.path.join(self.directory, "state-*.npz")):
            if stale not in keep:
                os.remove(stale)
        return path

    def _committed(self) -> set[str]:
        state = tf.train.get_checkpoint_state(self.directory)
        return set(state.all_model_checkpoint_paths) if state else set()

    def _remove_uncommitted(self, number: int) -> None:
        """Best effort: free what a failed save of ``number`` left (the index never names it)."""
        prefix = os.path.join(self.directory, f"ckpt-{number}")
        try:
            if any(os.path.basename(p) == f"ckpt-{number}" for p in self._committed()):
                return
            for path in (glob.glob(prefix + ".*") + glob.glob(prefix + "_temp*")
                         + glob.glob(self._arrays_path(prefix) + "*")
                         + glob.glob(os.path.join(self.directory, "checkpoint.tmp*"))):
                if os.path.isdir(path):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    os.remove(path)
        except Exception:  # the directory may be gone or unreadable: nothing left to free
            pass

    def restore(self, path: str | None = None) -> tuple[str, dict[str, np.ndarray]]:
        """Load checkpoint ``path`` (default: the latest) into the trackables; return its
        path and arrays."""
        path = path or self.latest
        if path is None:
            raise CheckpointError(f"no checkpoint in {self.directory}")
        try:
            self._checkpoint.read(path).assert_existing_objects_matched().expect_partial()
            arrays = read_arrays(self._arrays_path(path))
        except Exception as e:  # a file from elsewhere can break a reader in any way
            raise unreadable(path, e) from e

        return path, arrays


def rng_state(rng: np.random.Generator) -> np.ndarray:
    """A numpy Generator's state as a 0-d string array (JSON, no pickling)."""
    return np.array(json.dumps(rng.bit_generator.state))


def set_rng_state(rng: np.random.Generator, state: np.ndarray) -> None:
    rng.bit_generator.state = json.loads(str(state))
