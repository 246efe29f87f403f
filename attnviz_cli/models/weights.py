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
import math
import os
import struct
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, overload

import numpy as np

from ..errors import AttnvizError, quoted
from ..small_files import open_regular
from .architecture import Linear, Norm, Params, RMSNorm

STORED: dict[str, np.dtype] = {  # safetensors dtype -> how its bytes are read (little-endian, as the format stores them)
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U8": np.dtype("u1"), "BOOL": np.dtype("?"),
}
STORED_NAMES = {dtype: name for name, dtype in STORED.items()}
HEADER_BYTES = 100_000_000  # the largest header the safetensors library reads (its MAX_HEADER_SIZE)


TILE = (64, 256)  # rows and columns of a matrix per step of its transposed copy (the fastest measured)
Size = int | str  # a size config.json gives, or a name for one the checkpoint chooses ("ff", "vocab")


class Source(Protocol):
    """Where a :class:`Checkpoint` reads tensors from, by their Hugging Face names and in Hugging Face's
    layout (a Linear's weight (out, in)): safetensors files (:class:`SafetensorsFiles`) or a GGUF file
    (:mod:`.gguf_file`), which dequantizes."""

    path: Path  # what messages name
    names: set[str]

    def shape(self, name: str) -> tuple[int, ...]: ...

    def load(self, name: str, out: np.ndarray) -> None:
        """The tensor's values cast into ``out`` (its shape, a float dtype)."""

    def rows(self, name: str, ids: np.ndarray) -> np.ndarray:
        """Rows ``ids`` (any shape of integers) of a 2-D tensor, in a float dtype: (*ids.shape, d)."""


class SafetensorsFiles:
    """A model's ``model.safetensors``, or the shards a ``model.safetensors.index.json`` names, as one
    :class:`Source`. Hugging Face's safetensors reader checks each file (its header's names, dtypes,
    shapes and offsets, and that they fit the file); tensors are then read straight into the arrays
    that hold them, and embedding rows through a memory map."""

    def __init__(self, paths: list[Path]) -> None:
        from safetensors import SafetensorError, safe_open

        self.path = paths[0] if len(paths) == 1 else paths[0].parent
        self._entries: dict[str, tuple[Path, np.dtype, tuple[int, ...], int, int]] = {}
        for path in paths:
            os.close(open_regular(path, "model weights")[0])  # a FIFO or a device would block or never end
            try:
                with safe_open(str(path), framework="numpy") as checked:  # refuses a header that lies
                    names = set(checked.keys())
                header, data_start = read_header(path)
            except (SafetensorError, OSError, ValueError) as error:
                raise AttnvizError(f"model weights {quoted(str(path))} cannot be read: {error}") from error
            for name in names:
                entry = header[name]
                begin, end = entry["data_offsets"]
                self._entries[name] = (path, STORED[entry["dtype"]], tuple(entry["shape"]), data_start + begin, data_start + end)
        self.names = set(self._entries)
        self._maps: dict[Path, np.memmap] = {}  # mapped for the embedding tables

    def shape(self, name: str) -> tuple[int, ...]:
        return self._entries[name][2]

    def stored_dtype(self, name: str) -> str:
        """The dtype tensor ``name`` is stored in, as safetensors names it ("F32", "BF16"...)."""
        return STORED_NAMES[self._entries[name][1]]

    def load(self, name: str, out: np.ndarray) -> None:
        _, stored_dtype, shape, _, _ = self._entries[name]
        if stored_dtype == out.dtype and out.flags.c_contiguous:
            self._read(name, out)
        else:
            out[...] = as_dtype(self._read(name, np.empty(shape, stored_dtype)), out.dtype)

    def rows(self, name: str, ids: np.ndarray) -> np.ndarray:
        path, stored_dtype, shape, begin, end = self._entries[name]
        if path not in self._maps:
            try:
                self._maps[path] = np.memmap(path, dtype=np.uint8, mode="r")
            except OSError as error:  # the file went away (or changed) since its header was read
                raise AttnvizError(f"model weights {quoted(str(path))}: {name!r} cannot be read: {error.strerror or error}") from None
        rows = self._maps[path][begin:end].view(stored_dtype).reshape(shape)[ids]
        return rows if stored_dtype.itemsize >= 4 else as_dtype(rows, np.dtype(np.float32))  # float16 and bfloat16 made float32

    def _read(self, name: str, array: np.ndarray) -> np.ndarray:
        """The tensor as the file holds it, read into ``array`` (C-ordered, of its stored dtype and shape)."""
        path, _, _, begin, end = self._entries[name]
        try:
            with open(path, "rb") as file:
                file.seek(begin)
                done = file.readinto(array.reshape(-1).view(np.uint8).data)
        except OSError as error:
            raise AttnvizError(f"model weights {quoted(str(path))}: {name!r} cannot be read: {error}") from error
        if done != end - begin:
            raise AttnvizError(f"model weights {quoted(str(path))}: {name!r} is cut short")
        return array


class Checkpoint:
    """A model's tensors opened for a page's mapping from checkpoint names to parameters: each tensor
    is checked against the shape config.json implies, then read once, in the run's dtype and the layout
    the forward pass wants. Names are given without the base model's prefix ("bert.", "model.",
    "transformer." or none), found once here.

    A model's layers are read when they run (:meth:`blocks`) unless ``keep``: then all at load, and
    kept. A model too large to hold in the run's dtype (a 1.5B model in float32 is 6 GB) is so held to
    its file (mapped) and one layer, converted."""

    def __init__(self, source: Source, dtype: np.dtype, prefixes: tuple[str, ...], marker: str, keep: bool = True) -> None:
        self.source, self.path, self.dtype, self.keep = source, source.path, np.dtype(dtype), keep
        found = [p for p in prefixes if p + marker in source.names]
        if not found:
            raise AttnvizError(f"model weights {quoted(str(self.path))} have no {marker!r}: not the architecture config.json names")
        self.prefix = found[0]
        self._sizes: dict[str, int] = {}  # what each named size ("ff", "vocab"...) turned out to be
        self._buffer = np.empty(0, self.dtype)  # what tensors to transpose are read through
        self._checking = False  # while set, tensors are checked against their shapes and not read

    def tensor(self, name: str, *shape: Size) -> np.ndarray:
        """The whole tensor ``name``, of ``shape``, in the run's dtype."""
        full = self._checked(name, shape)
        return self._load(full, np.empty(self.source.shape(full), self.dtype))

    def outside(self, name: str, *shape: Size) -> np.ndarray | None:
        """Tensor ``name``, named in full (outside the base model: a GGUF file's ``rope_freqs``), in the
        run's dtype, or None if the checkpoint has none."""
        if name not in self.source.names:
            return None
        prefix, self.prefix = self.prefix, ""
        try:
            return self.tensor(name, *shape)
        finally:
            self.prefix = prefix

    def has(self, name: str) -> bool:
        """Whether the checkpoint holds tensor ``name`` (a bias some checkpoints have, an untied head)."""
        return self.prefix + name in self.source.names

    def norm(self, name: str, d: int, eps: float) -> Norm:
        """A LayerNorm's gain and bias (``name``.weight and .bias, (d,) each), with its epsilon."""
        return {"g": self.tensor(name + ".weight", d), "b": self.tensor(name + ".bias", d), "eps": eps}

    def rms_norm(self, name: str, d: int, eps: float, plus_one: bool = False) -> RMSNorm:
        """An RMSNorm's gain (``name``.weight, (d,)), with its epsilon; ``plus_one``: stored as g - 1
        (Gemma's), so 1 is added here, once."""
        g = self.tensor(name + ".weight", d)
        if plus_one and not self._checking:  # while checking, g is unread memory
            g += 1
        return {"g": g, "eps": eps}

    def linear(self, name: str, d_in: Size, d_out: Size, bias: bool = True) -> Linear:
        """A PyTorch Linear (``name``.weight stored (out, in), and .bias) as w (in, out), to apply as x @ w;
        without ``bias``, b is None.

        Copied once into (in, out) row by row when it has at least as many outputs as inputs and is
        kept: OpenBLAS multiplies by a matrix laid out so 9-27% faster when the weights come from memory
        rather than the caches, as a forward pass's do, and such a matrix transposes quickly (0.4 ms for
        MiniLM's largest). One with more inputs than outputs (the feed-forward block's second), or read
        for one run of its layer, stays a view of the stored matrix: the copy would cost more than it
        saves (SmolLM2's layers: 0.38 s a run).
        """
        full = self._checked(name + ".weight", (d_out, d_in))
        outs, ins = self.source.shape(full)
        if outs >= ins and self.keep:
            w = self._load(full, np.empty((ins, outs), self.dtype), transpose=True)
        else:
            w = self._load(full, np.empty((outs, ins), self.dtype)).T
        return {"w": w, "b": self.tensor(name + ".bias", d_out) if bias else None}

    def conv1d(self, name: str, d_in: Size, d_out: Size) -> Linear:
        """GPT-2's Conv1D, a Linear whose weight is stored (in, out) already."""
        return {"w": self.tensor(name + ".weight", d_in, d_out), "b": self.tensor(name + ".bias", d_out)}

    def linears(self, names: list[str], d_in: int, d_outs: int | list[int], bias: bool = True) -> Linear:
        """Linears that read the same input (a layer's query, key and value; ``d_outs`` outputs each),
        side by side: one (in, sum of outs) matrix, row by row as in :meth:`linear`, and one bias, read
        once (None without ``bias``). One product makes all three: fewer, larger BLAS calls, and for a
        long text one pass of the thread pool rather than three."""
        outs = d_outs if isinstance(d_outs, list) else [d_outs] * len(names)
        fulls = [self._checked(name + ".weight", (d_out, d_in)) for name, d_out in zip(names, outs, strict=True)]
        stacked = np.empty((sum(outs), d_in), self.dtype) if not self.keep else None  # read as stored, used as its transpose
        w = stacked.T if stacked is not None else np.empty((d_in, sum(outs)), self.dtype)
        b = np.empty(w.shape[1], self.dtype) if bias else None
        start = 0
        for name, full, d_out in zip(names, fulls, outs, strict=True):
            if stacked is not None:
                self._load(full, stacked[start:start + d_out])
            else:
                self._load(full, w[:, start:start + d_out], transpose=True)
            if b is not None:
                self._load(self._checked(name + ".bias", (d_out,)), b[start:start + d_out])
            start += d_out
        return {"w": w, "b": b}

    def table(self, name: str, rows: Size, d: int, skip: int = 0) -> Table:
        """An embedding table (rows, d), left in the file: a :class:`Table` reads the rows a text uses.
        ``skip``: rows at its start that no position uses (RoBERTa's, before its padding id)."""
        full = self._checked(name, (rows, d))
        return Table(self.source, full, self.source.shape(full), self.dtype, skip)

    def blocks(self, block: Callable[[int], Params], layers: int) -> Sequence[Params]:
        """Each of ``layers`` layers' parameters, ``block(i)``: all read now if ``keep``, else each read
        when the layer runs (:class:`Layers`). Either way every tensor is checked against its shape now."""
        if self.keep:
            return [block(i) for i in range(layers)]
        self._checking = True
        try:
            for i in range(layers):
                block(i)
        finally:
            self._checking = False
        return Layers(block, layers)

    def _checked(self, name: str, want: tuple[Size, ...]) -> str:
        """The full name of tensor ``name``, which the file must hold with shape ``want`` (from its
        header: nothing is read). A name in a shape stands for a size the checkpoint chooses, the same
        wherever it appears. A missing tensor, or one of another shape, is an error naming it."""
        full = self.prefix + name
        if full not in self.source.names:
            raise AttnvizError(f"model weights {quoted(str(self.path))} lack {full!r}")
        got = self.source.shape(full)
        if any(isinstance(w, str) and g == 0 for w, g in zip(want, got, strict=False)):  # a feed-forward (or vocabulary) of width 0
            raise AttnvizError(f"model weights {quoted(str(self.path))}: {full!r} has shape {got}: a width of 0")
        if len(got) != len(want) or not all(self._sizes.setdefault(w, g) == g if isinstance(w, str) else w == g for w, g in zip(want, got, strict=True)):
            shown = tuple(self._sizes.get(w, w) if isinstance(w, str) else w for w in want)
            raise AttnvizError(f"model weights {quoted(str(self.path))}: {full!r} has shape {got}, where config.json and the other weights make it {shown}")
        return full

    def _load(self, name: str, out: np.ndarray, transpose: bool = False) -> np.ndarray:
        """Tensor ``name`` (its transpose, with ``transpose``) into ``out``, in the run's dtype, checked
        finite. Read straight into ``out`` when it can be; a transpose through one buffer kept for the
        purpose, so that a tensor's memory is touched once: a page touched first costs about 3.5 µs
        here, and MiniLM's weights are 10,000 pages."""
        if self._checking:
            return out
        if transpose:
            shape = self.source.shape(name)
            size = math.prod(shape)
            if self._buffer.size < size:
                self._buffer = np.empty(size, self.dtype)
            stored = self._buffer[:size].reshape(shape)
            self.source.load(name, stored)
            transposed(stored, out)
        elif out.flags.c_contiguous:
            self.source.load(name, out)
        else:
            staged = np.empty(out.shape, self.dtype)
            self.source.load(name, staged)
            out[...] = staged
        return finite(out, name, self.path)


class Layers(Sequence[Params]):
    """A model's layers' parameters, each read from its checkpoint when asked for (``layers[i]``, as
    :func:`.model.run_layers` does when layer i runs), and held only while it runs."""

    def __init__(self, block: Callable[[int], Params], count: int) -> None:
        self._block, self._count = block, count

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, i: int) -> Params: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[Params]: ...

    def __getitem__(self, i: int | slice) -> Params | Sequence[Params]:
        if isinstance(i, slice):
            return [self[j] for j in range(self._count)[i]]
        if not -self._count <= i < self._count:
            raise IndexError(i)
        return self._block(i % self._count)


class Table:
    """An embedding table (rows, d) left in its file: ``table[ids]`` reads the rows of ``ids`` alone (of
    MiniLM's 30,522 x 384 table, 47 MB, a few pages), in the run's dtype, checked."""

    def __init__(self, source: Source, name: str, shape: tuple[int, ...], dtype: np.dtype, skip: int = 0) -> None:
        self.source, self.name, self.dtype, self.skip = source, name, dtype, skip
        self.shape = (shape[0] - skip, *shape[1:])

    def __getitem__(self, ids: np.ndarray) -> np.ndarray:
        """Rows ``ids`` (any shape of integers) of the table: (*ids.shape, d)."""
        ids = np.asarray(ids)
        if ids.size and (ids.min() < 0 or ids.max() >= self.shape[0]):
            raise AttnvizError(f"model weights {quoted(str(self.source.path))}: {self.name!r} of shape {self.shape} has no row {int(ids.max())}")
        return finite(as_dtype(self.source.rows(self.name, ids + self.skip), self.dtype), self.name, self.source.path)

    def whole(self) -> np.ndarray:
        """Every row, in the run's dtype (for a model whose output head is its embedding table)."""
        return self[np.arange(self.shape[0])]


def as_dtype(array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """A stored array in the run's ``dtype``; bfloat16 (read as uint16) is the top half of a float32."""
    if array.dtype == np.dtype("<u2"):
        array = (array.astype(np.uint32) << 16).view(np.float32)
    if array.dtype == dtype:
        return array
    with np.errstate(over="ignore"):  # a float64 value past float32's range becomes inf, which finite() refuses
        return array.astype(dtype)


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
        if length > HEADER_BYTES:
            raise ValueError(f"a header of {length:,} bytes, over the {HEADER_BYTES:,} safetensors reads")
        header = json.loads(file.read(length))
    header.pop("__metadata__", None)
    unknown = sorted({entry["dtype"] for entry in header.values()} - set(STORED))
    if unknown:
        raise ValueError(f"tensors of dtype {', '.join(unknown)}, which attnviz does not read")
    return header, 8 + length
