"""A GGUF file (llama.cpp's format, what Ollama and LM Studio keep) read lean and bounded: its metadata
as plain Python, its tensors' names, shapes, types and byte ranges, and any tensor dequantized on demand.

The layout (v2 and v3, little-endian): "GGUF", version (u32), tensor count and metadata count (u64), the
metadata (key string, value type u32, value; strings are a u64 length and UTF-8 bytes, arrays an item type,
a u64 count and the items), the tensor infos (name, n_dims u32, dims u64 innermost first, ggml type u32,
offset u64), then the tensors' data from the next multiple of ``general.alignment`` (32 unless given).

Why not ``gguf.GGUFReader``: it makes a memory-mapped view per string, 2 s for SmolLM2's 49,152 tokens and
48,900 merges here. This reads the header through one memory map, each array of strings in a plain loop,
and checks every length, count, dimension and offset against stated limits and the file's size before
using it: a hostile file is a one-line :class:`AttnvizError`, never a huge allocation. What ``gguf`` does
well is used: its ggml type table and its NumPy dequantizers (imported only here, when a GGUF is read).
"""

from __future__ import annotations

import mmap
import os
import stat
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ..errors import AttnvizError, quoted

if TYPE_CHECKING:
    from .gguf_hf import GGUFTensors

MAGIC = b"GGUF"
VERSIONS = (2, 3)
MAX_KEY = 64 * 1024  # bytes of a metadata key or a tensor name
MAX_STRING = 16 * 1024 * 1024  # bytes of one string value (a chat template is a few KB)
MAX_ITEMS = 16 * 1024 * 1024  # items of one array (Gemma 3's vocabulary: 262,144)
MAX_ENTRIES = 1 << 16  # metadata entries, and tensors (SmolLM2: 33 and 272; the largest MoE files, a few thousand)
MAX_DEPTH = 3  # arrays of arrays of ... (llama.cpp writes none deeper than 2)
MAX_DIMS = 4  # GGML_MAX_DIMS
DEFAULT_ALIGNMENT = 32
MIN_KV_BYTES = 8 + 4 + 1  # an empty key, its type, a one-byte value: bounds what a metadata count can claim
MIN_TENSOR_INFO_BYTES = 8 + 1 + 4 + 8 + 4 + 8  # a one-byte name, one dimension, type, offset
CHUNK_BYTES = 1 << 20  # stored bytes dequantized per step: bounds the dequantizer's temporaries

STRING, ARRAY = 8, 9
SCALARS: dict[int, struct.Struct] = {  # GGUF value type -> how one is read
    0: struct.Struct("<B"), 1: struct.Struct("<b"), 2: struct.Struct("<H"), 3: struct.Struct("<h"),
    4: struct.Struct("<I"), 5: struct.Struct("<i"), 6: struct.Struct("<f"), 7: struct.Struct("<?"),
    10: struct.Struct("<Q"), 11: struct.Struct("<q"), 12: struct.Struct("<d"),
}
ITEMS: dict[int, np.dtype] = {  # the same types as NumPy reads an array of them
    0: np.dtype("<u1"), 1: np.dtype("i1"), 2: np.dtype("<u2"), 3: np.dtype("<i2"), 4: np.dtype("<u4"),
    5: np.dtype("<i4"), 6: np.dtype("<f4"), 7: np.dtype("?"), 10: np.dtype("<u8"), 11: np.dtype("<i8"),
    12: np.dtype("<f8"),
}
U32, U64 = SCALARS[4], SCALARS[10]
# the ggml types attnviz reads: those gguf.quants dequantizes in NumPy (others are refused when opened)
DEQUANTIZED = (
    "F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K",
    "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ3_XXS", "IQ3_S", "IQ1_S", "IQ1_M", "IQ4_NL", "IQ4_XS", "TQ1_0", "TQ2_0",
)


class TensorInfo(NamedTuple):
    """One tensor as the file describes it."""

    name: str  # the GGUF name ("blk.0.attn_q.weight")
    shape: tuple[int, ...]  # NumPy order (outermost first): the file's dims reversed
    ggml_type: int  # a gguf.GGMLQuantizationType
    begin: int  # its first byte in the file
    end: int  # one past its last byte

    @property
    def row_bytes(self) -> int:
        """Bytes of one row (the innermost dimension), whole blocks of its type."""
        return (self.end - self.begin) // int(np.prod(self.shape[:-1], dtype=np.int64))


class GGUFFile:
    """An opened GGUF file (see :func:`open_gguf`).

    ``metadata``: key -> value, as plain Python: str, int, float, bool; arrays of strings are lists of
    str; arrays of numbers or booleans are read-only 1-D NumPy arrays of the stored type (the token
    types, scores); arrays of arrays are lists. ``tensors``: GGUF name -> :class:`TensorInfo`.
    """

    def __init__(self, path: Path, version: int, metadata: dict[str, Any], tensors: dict[str, TensorInfo], size: int) -> None:
        self.path, self.version, self.metadata, self.tensors, self.size = path, version, metadata, tensors, size
        self._map: np.ndarray | None = None  # the file's bytes, mapped when a tensor is first read

    @property
    def architecture(self) -> str:
        """``general.architecture`` ("llama", "qwen2", "gemma3"...)."""
        value = self.metadata.get("general.architecture")
        if not isinstance(value, str):
            raise AttnvizError(f"GGUF file {quoted(str(self.path))} names no architecture (general.architecture)")
        return value

    def config(self) -> dict[str, Any]:
        """What the model's config.json would say, in Hugging Face's names (see :func:`.gguf_hf.hf_config`)."""
        from .gguf_hf import hf_config

        return hf_config(self)

    def tensor_source(self) -> GGUFTensors:
        """The tensors under Hugging Face's names and layout (see :class:`.gguf_hf.GGUFTensors`)."""
        from .gguf_hf import GGUFTensors

        return GGUFTensors(self)

    def read(self, name: str, rows: np.ndarray | None = None) -> np.ndarray:
        """Tensor ``name`` (a GGUF name) dequantized to float32, in its NumPy shape; with ``rows``
        (integers, 1-D; for a tensor of two or more dimensions), only those rows of its outermost axis:
        (len(rows), *shape[1:]), only their blocks dequantized. The values are exactly gguf's
        (``gguf.quants.dequantize``)."""
        from gguf import GGMLQuantizationType
        from gguf.quants import dequantize

        info = self.tensors[name]
        stored = self._bytes(info)
        if rows is not None:
            if not len(rows):  # gguf's block dequantizers cannot reshape nothing
                return np.empty((0, *info.shape[1:]), np.float32)
            stored = stored.reshape(info.shape[0], -1)[rows]  # an outermost row: whole rows of blocks
        qtype = GGMLQuantizationType(info.ggml_type)
        try:
            values = dequantize(stored.reshape(-1, info.row_bytes), qtype)
        except NotImplementedError as error:  # an older gguf package
            raise AttnvizError(f"GGUF file {quoted(str(self.path))}: {name!r} is stored as {qtype.name}, which this gguf package cannot dequantize (upgrade gguf)") from error
        return values.reshape(info.shape if rows is None else (len(rows), *info.shape[1:]))

    def _bytes(self, info: TensorInfo) -> np.ndarray:
        """The stored bytes of a tensor, a view of the memory-mapped file."""
        if self._map is None:
            try:
                mapped = np.memmap(self.path, dtype=np.uint8, mode="r")
            except (OSError, ValueError) as error:
                raise AttnvizError(f"GGUF file {quoted(str(self.path))} cannot be read: {error}") from error
            if len(mapped) != self.size:
                raise AttnvizError(f"GGUF file {quoted(str(self.path))} changed since it was opened")
            self._map = np.asarray(mapped)  # a plain array over the map: what is read from it is plain too
        return self._map[info.begin:info.end]


def open_gguf(path: Path) -> GGUFFile:
    """The GGUF file at ``path``, its header read and checked (no tensor data is read). Anything that is
    not a whole, well-formed GGUF v2/v3 file whose tensors attnviz can dequantize is an AttnvizError."""
    path = Path(path)
    try:
        info = os.stat(path)
    except OSError as error:
        raise AttnvizError(f"GGUF file {quoted(str(path))} cannot be read: {error.strerror or error}") from error
    if not stat.S_ISREG(info.st_mode):
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise AttnvizError(f"GGUF file {quoted(str(path))} is {kind}")
    if info.st_size < 24:
        raise AttnvizError(f"GGUF file {quoted(str(path))} is too short to be a GGUF file ({info.st_size} bytes)")
    try:
        with open(path, "rb") as file:
            if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):  # replaced since the check above
                raise AttnvizError(f"GGUF file {quoted(str(path))} is not a regular file")
            with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                return _Header(mapped, path).read()
    except OSError as error:
        raise AttnvizError(f"GGUF file {quoted(str(path))} cannot be read: {error.strerror or error}") from error


class _Header:
    """The parse of a GGUF header held in ``buf`` (the memory-mapped file), position by position."""

    def __init__(self, buf: mmap.mmap, path: Path) -> None:
        self.buf, self.path, self.pos, self.size = buf, path, 0, len(buf)

    def fail(self, problem: str) -> AttnvizError:
        return AttnvizError(f"GGUF file {quoted(str(self.path))} {problem}")

    def read(self) -> GGUFFile:
        if self.buf[:4] != MAGIC:
            raise self.fail("is not a GGUF file (it does not start with 'GGUF')")
        self.pos = 4
        version = self.u32("its version")
        if version not in VERSIONS:
            if version & 0xFFFF == 0:
                raise self.fail("is big-endian, which attnviz does not read")
            raise self.fail(f"is GGUF version {version}; attnviz reads versions 2 and 3")
        n_tensors, n_kv = self.u64("its tensor count"), self.u64("its metadata count")
        for count, what in ((n_kv, "metadata entries"), (n_tensors, "tensors")):
            if count > MAX_ENTRIES:
                raise self.fail(f"claims {count} {what}, more than the {MAX_ENTRIES} attnviz reads")
        if n_kv * MIN_KV_BYTES > self.size - self.pos:
            raise self.fail(f"claims {n_kv} metadata entries, more than its {self.size} bytes can hold")
        if n_tensors * MIN_TENSOR_INFO_BYTES > self.size - self.pos:
            raise self.fail(f"claims {n_tensors} tensors, more than its {self.size} bytes can describe")
        metadata: dict[str, Any] = {}
        for _ in range(n_kv):
            key = self.string(MAX_KEY, "a metadata key")
            if key in metadata:
                raise self.fail(f"holds metadata {quoted(key)} twice")
            metadata[key] = self.value(self.u32(f"the type of metadata {quoted(key)}"), key, 0)
        alignment = self.alignment(metadata)
        infos = [self.tensor_info() for _ in range(n_tensors)]
        data_start = -(-self.pos // alignment) * alignment
        return GGUFFile(self.path, version, metadata, self.tensors(infos, data_start, alignment), self.size)

    def take(self, n: int, what: str) -> int:
        """Where the next ``n`` bytes start, past which the parse moves; the file must hold them."""
        start = self.pos
        if n > self.size - start:
            raise self.fail(f"is cut short: it ends inside {what}")
        self.pos = start + n
        return start

    def u32(self, what: str) -> int:
        return int(U32.unpack_from(self.buf, self.take(4, what))[0])

    def u64(self, what: str) -> int:
        return int(U64.unpack_from(self.buf, self.take(8, what))[0])

    def string(self, limit: int, what: str) -> str:
        n = self.u64(what)
        if n > limit:
            raise self.fail(f"claims {n} bytes for {what}, more than the {limit} attnviz reads")
        start = self.take(n, what)
        return self.decoded(self.buf[start:start + n], what)

    def decoded(self, raw: bytes, what: str) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise self.fail(f"holds {what} that is not UTF-8 ({error.reason})") from error

    def value(self, kind: int, key: str, depth: int) -> Any:
        """One metadata value of type ``kind``."""
        what = f"metadata {quoted(key)}"
        if kind == STRING:
            return self.string(MAX_STRING, what)
        if kind in SCALARS:
            scalar = SCALARS[kind]
            value = scalar.unpack_from(self.buf, self.take(scalar.size, what))[0]
            return float(value) if kind in (6, 12) else value
        if kind != ARRAY:
            raise self.fail(f"gives {what} a value of unknown type {kind}")
        if depth == MAX_DEPTH:
            raise self.fail(f"nests arrays in {what} deeper than {MAX_DEPTH}")
        item, count = self.u32(what), self.u64(what)
        smallest = ITEMS[item].itemsize if item in ITEMS else 8 if item == STRING else 12 if item == ARRAY else 1
        if count > MAX_ITEMS:
            raise self.fail(f"claims {count} items for {what}, more than the {MAX_ITEMS} attnviz reads")
        if count * smallest > self.size - self.pos:
            raise self.fail(f"claims {count} items for {what}, more than the rest of the file holds")
        if item in ITEMS:
            start = self.take(count * ITEMS[item].itemsize, what)
            return np.frombuffer(self.buf[start:self.pos], ITEMS[item])  # read-only: over bytes of its own
        if item == STRING:
            return self.strings(count, what)
        return [self.value(item, key, depth + 1) for _ in range(count)]

    def strings(self, count: int, what: str) -> list[str]:
        """``count`` strings in a row, each checked, then decoded: the vocabulary's tokens and merges."""
        buf, pos, size, unpack = self.buf, self.pos, self.size, U64.unpack_from
        raw: list[bytes] = []
        append = raw.append
        try:
            for _ in range(count):
                n = unpack(buf, pos)[0]
                end = pos + 8 + n
                if n > MAX_STRING or end > size:
                    break
                append(buf[pos + 8:end])
                pos = end
        except struct.error:  # fewer than 8 bytes left for a length
            pass
        self.pos = pos
        if len(raw) < count:
            self.string(MAX_STRING, f"item {len(raw)} of {what}")  # raises the error that stopped the loop
        try:
            return list(map(bytes.decode, raw))  # UTF-8
        except UnicodeDecodeError:
            for i, item in enumerate(raw):  # which one: its error names it
                self.decoded(item, f"item {i} of {what}")
            raise

    def alignment(self, metadata: dict[str, Any]) -> int:
        value = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
        if type(value) is not int or value <= 0 or value & (value - 1) or value > 1 << 20:
            raise self.fail(f"gives general.alignment {value!r}, not a power of two up to 1 MiB")
        return value

    def tensor_info(self) -> tuple[str, tuple[int, ...], int, int]:
        """One tensor's name, dims (innermost first), ggml type and offset."""
        name = self.string(MAX_KEY, "a tensor name")
        what = f"tensor {quoted(name)}"
        n_dims = self.u32(what)
        if not 1 <= n_dims <= MAX_DIMS:
            raise self.fail(f"gives {what} {n_dims} dimensions (1 to {MAX_DIMS} are possible)")
        dims = tuple(self.u64(what) for _ in range(n_dims))
        return name, dims, self.u32(what), self.u64(what)

    def tensors(self, infos: list[tuple[str, tuple[int, ...], int, int]], data_start: int, alignment: int) -> dict[str, TensorInfo]:
        """The tensor infos checked: known types, whole blocks, data aligned and inside the file."""
        from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

        readable = {int(GGMLQuantizationType[name]) for name in DEQUANTIZED if name in GGMLQuantizationType.__members__}
        tensors: dict[str, TensorInfo] = {}
        for name, dims, ggml_type, offset in infos:
            what = f"tensor {quoted(name)}"
            if name in tensors:
                raise self.fail(f"holds {what} twice")
            if ggml_type not in readable:
                try:
                    known = GGMLQuantizationType(ggml_type).name
                except ValueError:
                    known = "an unknown type"
                raise self.fail(f"stores {what} as ggml type {ggml_type} ({known}), which attnviz cannot dequantize")
            block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(ggml_type)]
            if min(dims) < 1 or dims[0] % block:
                raise self.fail(f"gives {what} dims {list(dims)}: each must be at least 1 and the first a multiple of {block}")
            n_bytes = int(np.prod(dims, dtype=object)) // block * type_size
            if offset % alignment:
                raise self.fail(f"places {what} at offset {offset}, not a multiple of its alignment {alignment}")
            begin = data_start + offset
            if n_bytes > self.size or begin > self.size - n_bytes:
                raise self.fail(f"places {what} ({n_bytes} bytes at {begin}) past its end ({self.size} bytes)")
            tensors[name] = TensorInfo(name, tuple(reversed(dims)), ggml_type, begin, begin + n_bytes)
        return tensors
