"""Atomic checkpoints of everything a run's future depends on."""

from __future__ import annotations

import glob
import json
import os

import numpy as np
import tensorflow as tf


class CheckpointError(RuntimeError):
    """A checkpoint is missing, truncated or corrupt."""


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
        return self._manager.latest_checkpoint

    @staticmethod
    def _arrays_path(checkpoint_path: str) -> str:
        head, name = os.path.split(checkpoint_path)
        return os.path.join(head, name.replace("ckpt-", "state-") + ".npz")

    def save(self, number: int, arrays: dict[str, np.ndarray]) -> str:
        os.makedirs(self.directory, exist_ok=True)
        target = self._arrays_path(os.path.join(self.directory, f"ckpt-{number}"))
        with open(target + ".tmp", "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(target + ".tmp", target)
        path = self._manager.save(checkpoint_number=number)
        keep = {self._arrays_path(p) for p in self._manager.checkpoints}
        for stale in glob.glob(os.path.join(self.directory, "state-*.npz")):
            if stale not in keep:
                os.remove(stale)
        return path

    def restore(self) -> tuple[str, dict[str, np.ndarray]]:
        """Load the latest checkpoint into the trackables; return its path and arrays."""
        path = self.latest
        if path is None:
            raise CheckpointError(f"no checkpoint in {self.directory}")
        try:
            self._checkpoint.read(path).assert_existing_objects_matched()
            with np.load(self._arrays_path(path), allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except Exception as e:  # a file from elsewhere can break a reader in any way
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise CheckpointError(
                f"checkpoint {path} cannot be read, it is truncated or corrupt ({reason[:160]})"
            ) from e
        return path, arrays


def rng_state(rng: np.random.Generator) -> np.ndarray:
    """A numpy Generator's state as a 0-d string array (JSON, no pickling)."""
    return np.array(json.dumps(rng.bit_generator.state))


def set_rng_state(rng: np.random.Generator, state: np.ndarray) -> None:
    rng.bit_generator.state = json.loads(str(state))
