"""A model's tensors from ``model.safetensors``: no pickle, and only what a run uses is read.

Hugging Face's safetensors reader checks the file (its header's names, dtypes, shapes and offsets,
and that they fit the file). Embedding tables are then read through a memory map, so a run reads only
the rows of its tokens (of MiniLM's 30,522 x 384 table, 47 MB, a few pages). Every other tensor is
read straight into an array of its own, once, when the model is loaded: matrices read through the map
made the forward pass 25% slower on this project's machine (measured: 90 against 70 ms at 128 tokens).
Each architecture's page says which tensor becomes which parameter (``bert_params``, ``gpt2_params``...),
through a :class:`Checkpoint`.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AttnvizError, quoted
from .architecture import Linear, Norm

STORED: dict[str, np.dtype] = {  # safetensors dtype -> how its bytes are read (little-endian, as the format stores them)
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U8": np.dtype("u1"), "BOOL": np.dtype("?"),
}


TILE = (64, 256)  # rows and columns of a matrix per step of its transposed copy (the fastest measured)
Size = int | str  # a size config.json gives, or a name for one the checkpoint chooses ("ff", "vocab")


class Checkpoint:
    """``model.safetensors`` opened for a page's mapping from checkpoint names to parameters: each tensor
    is checked against the shape config.json implies, then read once, in the run's dtype and the layout
    the forward pass wants. Names are given without the base model's prefix ("bert.", "roberta.",
    "transformer." or none), found once here."""

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
        self._map: np.memmap | None = None  # mapped for the first embedding table
        found = [p for p in prefixes if p + marker in self.names]
        if not found:
            raise AttnvizError(f"model weights {quoted(str(path))} have no {marker!r}: not the architecture config.json names")
        self.prefix = found[0]
        self._sizes: dict[str, int] = {}  # what each named size ("ff", "vocab"...) turned out to be
        self._buffer = np.empty(0, np.uint8)  # what tensors are read through when they are converted or transposed

    def tensor(self, name: str, *shape: Size) -> np.ndarray:
        """The whole tensor ``name``, of ``shape``, in the run's dtype."""
        full = self._checked(name, shape)
        return self._load(full, np.empty(self._entry(full)[1], self.dtype))

    def norm(self, name: str, d: int, eps: float) -> Norm:
        """A LayerNorm's gain and bias (``name``.weight and .bias, (d,) each), with its epsilon."""
        return {"g": self.tensor(name + ".weight", d), "b": self.tensor(name + ".bias", d), "eps": eps}

    def linear(self, name: str, d_in: Size, d_out: Size) -> Linear:
        """A PyTorch Linear (``name``.weight stored (out, in), and .bias) as w (in, out), to apply as x @ w.

        Copied once into (in, out) row by row when it has at least as many outputs as inputs: OpenBLAS
        multiplies by a matrix laid out so 9-27% faster when the weights come from memory rather than
        the caches, as a forward pass's do, and such a matrix transposes quickly (0.4 ms for MiniLM's
        largest). One with more inputs than outputs (the feed-forward block's second) stays a view of
        the stored matrix: its product gains 2-8%, and the copy would cost 1.5 ms.
        """
        full = self._checked(name + ".weight", (d_out, d_in))
        outs, ins = self._entry(full)[1]
        if outs >= ins:
            w = self._load(full, np.empty((ins, outs), self.dtype), transpose=True)
        else:
            w = self._load(full, np.empty((outs, ins), self.dtype)).T
        return {"w": w, "b": self.tensor(name + ".bias", d_out)}

    def conv1d(self, name: str, d_in: Size, d_out: Size) -> Linear:
        """GPT-2's Conv1D, a Linear whose weight is stored (in, out) already."""
        return {"w": self.tensor(name + ".weight", d_in, d_out), "b": self.tensor(name + ".bias", d_out)}

    def linears(self, names: list[str], d_in: int, d_out: int) -> Linear:
        """Linears of ``d_out`` outputs each that read the same input (a layer's query, key and value),
        side by side: one (in, sum of outs) matrix, row by row as in :meth:`linear`, and one bias, read
        once. One product makes all three: fewer, larger BLAS calls, and for a long text one pass of
        the thread pool rather than three."""
        fulls = [self._checked(name + ".weight", (d_out, d_in)) for name in names]
        w = np.empty((d_in, d_out * len(names)), self.dtype)
        b = np.empty(w.shape[1], self.dtype)
        for i, (name, full) in enumerate(zip(names, fulls, strict=True)):
            self._load(full, w[:, i * d_out:(i + 1) * d_out], transpose=True)
            self._load(self._checked(name + ".bias", (d_out,)), b[i * d_out:(i + 1) * d_out])
        return {"w": w, "b": b}

    def table(self, name: str, rows: Size, d: int, skip: int = 0) -> Table:
        """An embedding table (rows, d), left in the file: a :class:`Table` reads the rows a text uses.
        ``skip``: rows at its start that no position uses (RoBERTa's, before its padding id)."""
        full = self._checked(name, (rows, d))
        dtype, shape, begin, end = self._entry(full)
        if self._map is None:
            self._map = np.memmap(self.path, dtype=np.uint8, mode="r")
        return Table(self._map[begin:end].view(dtype).reshape(shape)[skip:], full, self.path, self.dtype)

    def _checked(self, name: str, want: tuple[Size, ...]) -> str:
        """The full name of tensor ``name``, which the file must hold with shape ``want`` (from its
        header: nothing is read). A name in a shape stands for a size the checkpoint chooses, the same
        wherever it appears. A missing tensor, or one of another shape, is an error naming it."""
        full = self.prefix + name
        got = self._entry(full)[1]
        if len(got) != len(want) or not all(self._sizes.setdefault(w, g) == g if isinstance(w, str) else w == g for w, g in zip(want, got, strict=True)):
            shown = tuple(self._sizes.get(w, w) if isinstance(w, str) else w for w in want)
            raise AttnvizError(f"model weights {quoted(str(self.path))}: {full!r} has shape {got}, where config.json and the other weights make it {shown}")
        return full

    def _load(self, name: str, out: np.ndarray, transpose: bool = False) -> np.ndarray:
        """Tensor ``name`` (its transpose, with ``transpose``) into ``out``, in the run's dtype, checked
        finite. Read straight into ``out`` when it can be; else through one buffer kept for the
        purpose, so that a tensor's memory is touched once: a page touched first costs about 3.5 µs
        here, and MiniLM's weights are 10,000 pages."""
        stored_dtype, shape, begin, end = self._entry(name)  # the shape _checked accepted
        if not transpose and stored_dtype == out.dtype and out.flags.c_contiguous:
            self._read(name, out)
        else:
            if self._buffer.nbytes < end - begin:
                self._buffer = np.empty(end - begin, np.uint8)
            stored = as_dtype(self._read(name, self._buffer[:end - begin].view(stored_dtype).reshape(shape)), self.dtype)
            if transpose:
                transposed(stored, out)
            else:
                out[...] = stored
        return finite(out, name, self.path)

    def _entry(self, name: str) -> tuple[np.dtype, tuple[int, ...], int, int]:
        """The stored dtype, shape, and first and last byte in the file of tensor ``name``."""
        if name not in self.names:
            raise AttnvizError(f"model weights {quoted(str(self.path))} lack {name!r}")
        entry = self._entries[name]
        begin, end = entry["data_offsets"]
        return STORED[entry["dtype"]], tuple(entry["shape"]), self._data_start + begin, self._data_start + end

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


class Table:
    """An embedding table (rows, d) left in the file, memory-mapped: ``table[ids]`` reads the rows of
    ``ids`` alone (of MiniLM's 30,522 x 384 table, 47 MB, a few pages), in the run's dtype, checked."""

    def __init__(self, stored: np.ndarray, name: str, path: Path, dtype: np.dtype) -> None:
        self.stored, self.name, self.path, self.dtype = stored, name, path, dtype

    @property
    def shape(self) -> tuple[int, ...]:
        return self.stored.shape

    def __getitem__(self, ids: np.ndarray) -> np.ndarray:
        """Rows ``ids`` (any shape of integers) of the table: (*ids.shape, d)."""
        if ids.size and (ids.min() < 0 or ids.max() >= self.stored.shape[0]):
            raise AttnvizError(f"model weights {quoted(str(self.path))}: {self.name!r} of shape {self.stored.shape} has no row {int(ids.max())}")
        return finite(as_dtype(self.stored[ids], self.dtype), self.name, self.path)


def as_dtype(array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """A stored array in the run's ``dtype``; bfloat16 (read as uint16) is the top half of a float32."""
    if array.dtype == np.dtype("<u2"):
        array = (array.astype(np.uint32) << 16).view(np.float32)
    return array if array.dtype == dtype else array.astype(dtype)


def finite(array: np.ndarray, name: str, path: Path) -> np.ndarray:
    """``array``, refused if it holds NaN or an infinity."""
    if not np.isfinite(array).all():
        raise AttnvizError(f"model weights {quoted(str(path))}: {name!r} holds NaN or infinite values")
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
