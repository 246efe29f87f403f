"""A model's tensors from ``model.safetensors``: no pickle, and only what a run uses is read.

Hugging Face's safetensors reader checks the file (its header's names, dtypes, shapes and offsets,
and that they fit the file). Embedding tables are then read through a memory map, so a run reads only
the rows of its tokens (of MiniLM's 30,522 x 384 table, 47 MB, a few pages). Every other tensor is
read straight into an array of its own, once, when first used: matrices read through the map made
the forward pass 25% slower on this project's machine (measured: 90 against 70 ms at 128 tokens).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AttnvizError, quoted

STORED: dict[str, np.dtype] = {  # safetensors dtype -> how its bytes are read (little-endian, as the format stores them)
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U8": np.dtype("u1"), "BOOL": np.dtype("?"),
}


class Weights:
    """Tensors by their Hugging Face names, with the name ``prefix`` of the base model ("bert.",
    "roberta.", "transformer." or "") found once, so the forward passes can use bare names."""

    def __init__(self, path: Path, dtype: np.dtype, prefixes: tuple[str, ...], marker: str) -> None:
        from safetensors import SafetensorError, safe_open

        self.path, self.dtype = path, np.dtype(dtype)
        try:
            with safe_open(str(path), framework="numpy") as checked:  # refuses a header that lies
                self.names = set(checked.keys())
            self._entries, data_start = read_header(path)
        except (SafetensorError, OSError, ValueError) as error:
            raise AttnvizError(f"model weights {quoted(str(path))} cannot be read: {error}") from error
        self._data_start = data_start
        self._map: np.memmap | None = None  # mapped on the first embedding lookup
        found = [p for p in prefixes if p + marker in self.names]
        if not found:
            raise AttnvizError(f"model weights {quoted(str(path))} have no {marker!r}: not the architecture config.json names")
        self.prefix = found[0]
        self._cache: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        """The whole tensor ``name`` in the run's dtype, read once."""
        if name not in self._cache:
            self._cache[name] = self._loaded(name)
        return self._cache[name]

    def rows(self, name: str, ids: np.ndarray) -> np.ndarray:
        """Rows ``ids`` of the table ``name`` (an embedding table): only their pages are read."""
        table = self._mapped(name)
        if table.ndim != 2 or (ids.size and (ids.min() < 0 or ids.max() >= table.shape[0])):
            raise AttnvizError(f"model weights {quoted(str(self.path))}: {name!r} of shape {table.shape} has no row {int(ids.max())}")
        return self._finite(name, self._as_run_dtype(table[ids]))

    def linear(self, name: str) -> np.ndarray:
        """A Linear layer's weight as (in, out), to apply as x @ W (PyTorch stores it (out, in))."""
        return self[name + ".weight"].T

    def linears(self, *names: str) -> tuple[np.ndarray, np.ndarray]:
        """Linear layers that read the same input (a layer's query, key and value), side by side: their
        weights as one (in, sum of outs) matrix and their biases as one vector, read once. One product
        makes all three: fewer, larger BLAS calls, and for a long text one pass of the thread pool
        rather than three. The parts are not kept apart, so the weights are in memory once."""
        key = "+".join(names)
        if key not in self._cache:
            self._cache[key] = np.concatenate([self._loaded(name + ".weight").T for name in names], axis=1)
            self._cache[key + ".bias"] = np.concatenate([self._loaded(name + ".bias") for name in names])
        return self._cache[key], self._cache[key + ".bias"]

    def _loaded(self, name: str) -> np.ndarray:
        """Tensor ``name`` read from the file, in the run's dtype and checked finite (not cached)."""
        return self._finite(name, self._as_run_dtype(self._read(name)))

    def _entry(self, name: str) -> tuple[np.dtype, tuple[int, ...], int, int]:
        """The stored dtype, shape, and first and last byte in the file of tensor ``name``."""
        if name not in self.names:
            raise AttnvizError(f"model weights {quoted(str(self.path))} lack {name!r}")
        entry = self._entries[name]
        begin, end = entry["data_offsets"]
        return STORED[entry["dtype"]], tuple(entry["shape"]), self._data_start + begin, self._data_start + end

    def _mapped(self, name: str) -> np.ndarray:
        """The tensor as the file holds it: a view of the memory map, nothing read yet."""
        dtype, shape, begin, end = self._entry(name)
        if self._map is None:
            self._map = np.memmap(self.path, dtype=np.uint8, mode="r")
        return self._map[begin:end].view(dtype).reshape(shape)

    def _read(self, name: str) -> np.ndarray:
        """The tensor as the file holds it, read into an array of its own."""
        dtype, shape, begin, end = self._entry(name)
        array = np.empty(shape, dtype)
        try:
            with open(self.path, "rb") as file:
                file.seek(begin)
                done = file.readinto(array.reshape(-1).view(np.uint8).data)
        except OSError as error:
            raise AttnvizError(f"model weights {quoted(str(self.path))}: {name!r} cannot be read: {error}") from error
        if done != end - begin:
            raise AttnvizError(f"model weights {quoted(str(self.path))}: {name!r} is cut short")
        return array

    def _as_run_dtype(self, array: np.ndarray) -> np.ndarray:
        if array.dtype == np.dtype("<u2"):  # bfloat16: the top half of a float32
            array = (array.astype(np.uint32) << 16).view(np.float32)
        return array if array.dtype == self.dtype else array.astype(self.dtype)

    def _finite(self, name: str, array: np.ndarray) -> np.ndarray:
        if not np.isfinite(array).all():
            raise AttnvizError(f"model weights {quoted(str(self.path))}: {name!r} holds NaN or infinite values")
        return array


def read_header(path: Path) -> tuple[dict[str, Any], int]:
    """A safetensors file's header (name -> dtype, shape, data_offsets) and where its data starts:
    8 bytes of header length, little-endian, then the JSON header, then the data."""
    with open(path, "rb") as file:
        (length,) = struct.unpack("<Q", file.read(8))
        header = json.loads(file.read(length))
    header.pop("__metadata__", None)
    unknown = sorted({entry["dtype"] for entry in header.values()} - set(STORED))
    if unknown:
        raise ValueError(f"tensors of dtype {', '.join(unknown)}, which attnviz does not read")
    return header, 8 + length
