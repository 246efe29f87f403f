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


TILE = (64, 256)  # rows and columns of a matrix per step of its transposed copy (the fastest measured)


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
        self._linear: dict[str, np.ndarray] = {}  # Linear weights as (in, out), by layer name
        self._side_by_side: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # linears(): weights and biases, by "a+b+c"
        self._buffer = np.empty(0, np.uint8)  # what tensors are read through when they are converted or transposed

    def __getitem__(self, name: str) -> np.ndarray:
        """The whole tensor ``name`` in the run's dtype, read once."""
        if name not in self._cache:
            _, shape, _, _ = self._entry(name)
            self._cache[name] = self._load(name, np.empty(shape, self.dtype))
        return self._cache[name]

    def check_shapes(self, expected: dict[str, tuple[int | str, ...]]) -> None:
        """Every tensor of ``expected`` is in the file with that shape (from its header: nothing is
        read). A name in a shape stands for a size the checkpoint chooses, the same wherever it
        appears. A missing tensor, or one of another shape, is an error naming it."""
        sizes: dict[str, int] = {}
        for name, want in expected.items():
            got = self._entry(name)[1]
            if len(got) == len(want) and all(sizes.setdefault(w, g) == g if isinstance(w, str) else w == g for w, g in zip(want, got, strict=True)):
                continue
            shown = tuple(sizes.get(w, w) if isinstance(w, str) else w for w in want)
            raise AttnvizError(f"model weights {quoted(str(self.path))}: {name!r} has shape {got}, where config.json and the other weights make it {shown}")

    def rows(self, name: str, ids: np.ndarray) -> np.ndarray:
        """Rows ``ids`` of the table ``name`` (an embedding table): only their pages are read."""
        table = self._mapped(name)
        if table.ndim != 2 or (ids.size and (ids.min() < 0 or ids.max() >= table.shape[0])):
            raise AttnvizError(f"model weights {quoted(str(self.path))}: {name!r} of shape {table.shape} has no row {int(ids.max())}")
        return self._finite(name, self._as_run_dtype(table[ids]))

    def linear(self, name: str) -> np.ndarray:
        """A Linear layer's weight as (in, out), to apply as x @ W (PyTorch stores it (out, in)).

        Copied once into (in, out) row by row when it has at least as many outputs as inputs: OpenBLAS
        multiplies by a matrix laid out so 9-27% faster when the weights come from memory rather than
        the caches, as a forward pass's do, and such a matrix transposes quickly (0.4 ms for MiniLM's
        largest). One with more inputs than outputs (the feed-forward block's second) stays a view of
        the stored matrix: its product gains 2-8%, and the copy would cost 1.5 ms.
        """
        if name not in self._linear:
            outs, ins = self._entry(name + ".weight")[1]  # as check_shapes found them
            if outs >= ins:
                self._linear[name] = self._load(name + ".weight", np.empty((ins, outs), self.dtype), transpose=True)
            else:
                self._linear[name] = self._load(name + ".weight", np.empty((outs, ins), self.dtype)).T
        return self._linear[name]

    def linears(self, *names: str) -> tuple[np.ndarray, np.ndarray]:
        """Linear layers that read the same input (a layer's query, key and value), side by side: their
        weights as one (in, sum of outs) matrix, row by row as in :meth:`linear`, and their biases as
        one vector, read once. One product makes all three: fewer, larger BLAS calls, and for a long
        text one pass of the thread pool rather than three."""
        key = "+".join(names)
        if key not in self._side_by_side:
            shapes = [self._entry(name + ".weight")[1] for name in names]  # (out, in) each
            weights = np.empty((shapes[0][1], sum(outs for outs, _ in shapes)), self.dtype)
            biases = np.empty(weights.shape[1], self.dtype)
            start = 0
            for name, (outs, _) in zip(names, shapes, strict=True):
                self._load(name + ".weight", weights[:, start:start + outs], transpose=True)
                self._load(name + ".bias", biases[start:start + outs])
                start += outs
            self._side_by_side[key] = weights, biases
        return self._side_by_side[key]

    def _load(self, name: str, out: np.ndarray, transpose: bool = False) -> np.ndarray:
        """Tensor ``name`` (its transpose, with ``transpose``) into ``out``, in the run's dtype, checked
        finite. Read straight into ``out`` when it can be; else through one buffer kept for the
        purpose, so that a tensor's memory is touched once: a page touched first costs about 3.5 µs
        here, and MiniLM's weights are 10,000 pages."""
        stored_dtype, shape, begin, end = self._entry(name)  # the shape check_shapes accepted
        if not transpose and stored_dtype == out.dtype and out.flags.c_contiguous:
            self._read(name, out)
        else:
            if self._buffer.nbytes < end - begin:
                self._buffer = np.empty(end - begin, np.uint8)
            stored = self._as_run_dtype(self._read(name, self._buffer[:end - begin].view(stored_dtype).reshape(shape)))
            if transpose:
                transposed(stored, out)
            else:
                out[...] = stored
        return self._finite(name, out)

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

    def _read(self, name: str, array: np.ndarray) -> np.ndarray:
        """The tensor as the file holds it, read into ``array`` (C-ordered, of its stored dtype and shape)."""
        _, _, begin, end = self._entry(name)
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


def transposed(a: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``a.T`` copied into ``out`` a tile at a time, so that both sides of each step stay in the
    caches: 3.5x faster than NumPy's one-step copy here (0.38 against 1.3 ms for a (1536, 384) matrix)."""
    rows, cols = a.shape
    for i in range(0, rows, TILE[0]):
        for j in range(0, cols, TILE[1]):
            out[j:j + TILE[1], i:i + TILE[0]] = a[i:i + TILE[0], j:j + TILE[1]].T
    return out


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
