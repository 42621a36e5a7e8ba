"""Reading a checkpoint's ``.npz`` without a second copy of its large arrays (TF-free)."""

from __future__ import annotations

import zipfile

import numpy as np


class CheckpointError(RuntimeError):
    """A checkpoint is missing, truncated or corrupt."""


def unreadable(path: str, e: BaseException) -> CheckpointError:
    reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return CheckpointError(
        f"checkpoint {path} cannot be read, it is truncated or corrupt ({reason[:160]})")


STREAM_BYTES = 16 * 2**20  # arrays larger than this are read when needed, in such chunks


def read_arrays(path: str) -> dict[str, np.ndarray | StoredArray]:
    """The arrays of an ``.npz``: small ones read, large ones as :class:`StoredArray`."""
    arrays: dict[str, np.ndarray | StoredArray] = {}
    with np.load(path, allow_pickle=False) as data:
        for key in data.files:
            info = data.zip.getinfo(key + ".npy")
            if info.file_size > STREAM_BYTES and info.compress_type == zipfile.ZIP_STORED:
                with data.zip.open(info) as f:
                    shape, fortran, dtype = _read_header(f)
                if not fortran and not dtype.hasobject:
                    arrays[key] = StoredArray(path, key, shape, dtype)
                    continue
            arrays[key] = data[key]
    return arrays


def _read_header(f) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(f)
    read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
            else np.lib.format.read_array_header_2_0)
    return read(f)


class StoredArray:
    """A large array of a checkpoint's ``.npz``, not yet read. :meth:`read_into` streams it
    into an existing array in 16 MiB chunks, so restoring a multi-GB replay into its
    preallocated arrays needs no second copy of it; ``np.asarray(stored)`` reads it whole.
    A truncated or corrupt file (zip CRC) raises :class:`CheckpointError`."""

    def __init__(self, path: str, key: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.path, self.key, self.shape, self.dtype = path, key, tuple(shape), np.dtype(dtype)
        self.ndim = len(self.shape)
        self.nbytes = int(np.prod(self.shape)) * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def read_into(self, out: np.ndarray) -> np.ndarray:
        """Fill the C-contiguous ``out`` (this array's shape and dtype) with the stored data."""
        if out.shape != self.shape or out.dtype != self.dtype or not out.flags.c_contiguous:
            raise ValueError(f"cannot read {self.key} {self.dtype}{list(self.shape)} into "
                             f"{out.dtype}{list(out.shape)}")
        target = out.reshape(-1).view(np.uint8)
        try:
            with zipfile.ZipFile(self.path) as z, z.open(self.key + ".npy") as f:
                _read_header(f)
                for start in range(0, self.nbytes, STREAM_BYTES):
                    chunk = target[start:start + STREAM_BYTES]
                    if f.readinto(chunk) != len(chunk):
                        raise EOFError(f"{self.key} is truncated")
                if f.read(1):  # also runs zipfile's CRC check of the whole member
                    raise ValueError(f"{self.key} is longer than its header says")
        except Exception as e:
            raise unreadable(self.path, e) from e
        return out

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self.read_into(np.empty(self.shape, self.dtype))
        return out if dtype is None else out.astype(dtype, copy=False)


def copy_into(out: np.ndarray, array: np.ndarray | StoredArray) -> None:
    """``out[...] = array``, streamed for a :class:`StoredArray` when ``out`` is contiguous."""
    if isinstance(array, StoredArray) and out.flags.c_contiguous and out.shape == array.shape \
            and out.dtype == array.dtype:
        array.read_into(out)
    else:
        out[...] = np.asarray(array)
