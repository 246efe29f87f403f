"""A GGUF model's tensors dequantized once and kept in the user's cache, so that its next runs read float32
weights rather than dequantize them again (SmolLM2-135M's Q4_1 file: 0.76 s of dequantizing a run,
against 0.15 s to read the copy).

The copy is a safetensors file of every tensor under Hugging Face's names, in Hugging Face's layout, with
the GGUF fix-ups made (:class:`.gguf_hf.GGUFTensors`): exactly the float32 values a run from the file
itself reads, so a run gives the same numbers either way. It is named by the GGUF file's path, size,
modification time and inode, so a file replaced or changed gets a new copy; it is written beside its
final name and renamed into place whole, so an interrupted write leaves nothing a later run reads. A
copy is made only when it would take at most ``$ATTN_GGUF_CACHE_BYTES`` (default 2 GiB: a model of
about 500M parameters) and the disk keeps twice that free; a larger model is dequantized as it runs.
The copies live in ``<cache>/gguf/`` (``$ATTN_CACHE_DIR``, else ``~/.cache/attnviz``): delete that
folder to reclaim the space.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
from pathlib import Path

import numpy as np

from .weights import Source

FORMAT = "attnviz-gguf-float32/1"  # what a copy holds: changed if the fix-ups or the layout ever change
DEFAULT_LIMIT = 2 * 2**30  # bytes of float32 a copy may take


def limit() -> int:
    """The largest copy to make, in bytes: ``$ATTN_GGUF_CACHE_BYTES`` (0: none), else DEFAULT_LIMIT."""
    given = os.environ.get("ATTN_GGUF_CACHE_BYTES", "")
    return int(given) if given.isdigit() else DEFAULT_LIMIT


def copy_path(gguf: Path) -> Path:
    """Where the copy of GGUF file ``gguf`` is kept: named by what identifies the file's contents."""
    from ..store import cache_dir

    status = os.stat(gguf)
    identity = f"{FORMAT}\0{os.path.realpath(gguf)}\0{status.st_size}\0{status.st_mtime_ns}\0{status.st_ino}"
    return cache_dir() / "gguf" / f"{hashlib.sha256(identity.encode()).hexdigest()[:32]}.safetensors"


def converted_copy(gguf: Path, source: Source) -> Path | None:
    """The float32 copy of ``source`` (the tensors of GGUF file ``gguf``) in the cache: made now, the
    first time, if it fits (see the module's docstring); None if it does not, or cannot be written (the
    cache is a convenience: a run then reads the GGUF file itself)."""
    target = copy_path(gguf)
    if target.is_file():
        return target
    names = sorted(source.names)
    size = sum(math.prod(source.shape(name)) * 4 for name in names)
    if size > limit():
        return None
    staging = target.with_name(f".{target.stem}-{os.getpid()}.partial")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if shutil.disk_usage(target.parent).free < 2 * size:
            return None
        write(staging, names, source, {"format": FORMAT, "source": str(gguf)})
        os.replace(staging, target)
    except OSError:
        return None
    finally:
        with contextlib.suppress(OSError):  # its folder could not be made
            staging.unlink(missing_ok=True)
    return target


def write(path: Path, names: list[str], source: Source, metadata: dict[str, str]) -> None:
    """Every tensor of ``source`` as float32 into a safetensors file at ``path`` (8 bytes of header
    length, the JSON header, the data), a tensor at a time: the memory it takes is one tensor's, where
    the safetensors library's writer holds them all."""
    header: dict[str, object] = {"__metadata__": metadata}
    offset = 0
    for name in names:
        shape = source.shape(name)
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + math.prod(shape) * 4]}
        offset += math.prod(shape) * 4
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # the data aligned to 8 bytes, as the library writes it
    with open(path, "wb") as file:
        file.write(len(raw).to_bytes(8, "little") + raw)
        for name in names:
            values = np.empty(source.shape(name), np.float32)
            source.load(name, values)
            file.write(values.data)
        file.flush()
        os.fsync(file.fileno())  # whole on disk before it is renamed into place
