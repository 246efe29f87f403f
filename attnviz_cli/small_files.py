"""Small files read as untrusted (a model's config.json and tokenizer.json, the cache's refs, stores'
manifests, a vectors set's meta.json): the one reader of them all. A file must be a regular file, opened
without blocking (a FIFO would hang a plain open; a device or /proc file never ends), no bigger than the
stated bound of its kind, UTF-8 where it is text, and JSON no deeper than JSON_DEPTH levels."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from .errors import AttnvizError, quoted

# bytes each kind of file may hold (docs/formats.md, "What attn guarantees", names them)
CONFIG_BYTES = 1 << 20  # config.json (a few KB; with a label table, tens of KB)
TOKENIZER_BYTES = 64 << 20  # tokenizer.json (Gemma 3's, the largest known, is 33 MB)
INDEX_BYTES = 16 << 20  # model.safetensors.index.json (a 70B model's is 70 KB)
REF_BYTES = 4096  # refs/main and the other refs of the Hugging Face cache: a 40-digit commit hash
META_BYTES = 1 << 20  # a vectors set's meta.json
JSON_DEPTH = 64  # levels of nested arrays and objects a JSON file may have (a config has 3 or 4)


class FileProblem(AttnvizError):
    """A file that cannot be used: the one-line message, and ``status``, the few words a listing
    (``attn model list``) shows for it."""

    def __init__(self, what: str, path: Path, status: str) -> None:
        super().__init__(f"{what} {quoted(str(path))} is {status}")
        self.path, self.status = path, status


def open_regular(path: Path, what: str) -> tuple[int, os.stat_result]:
    """``path`` opened for reading without blocking, and its status (taken on the open descriptor, so
    what was checked is what is read); anything but a regular file (a device, a FIFO, a folder, what a
    link points to) is refused."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError as error:
        raise FileProblem(what, path, "missing") from error
    except OSError as error:
        raise FileProblem(what, path, f"unreadable: {error.strerror or error}") from error
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise FileProblem(what, path, "not a regular file")
    return fd, info


def read_bounded(path: Path, limit: int, what: str) -> bytes:
    """The whole of a small file, refused before reading when it is over ``limit`` bytes (and read no
    further than ``limit`` + 1 bytes whatever its size says: a /proc file says 0)."""
    fd, info = open_regular(path, what)
    try:
        if info.st_size > limit:
            raise FileProblem(what, path, f"{info.st_size:,} bytes, over the {limit:,} it may be")
        data = _read_up_to(fd, limit + 1, info.st_size + 1)
    except OSError as error:
        raise FileProblem(what, path, f"unreadable: {error.strerror or error}") from error
    finally:
        os.close(fd)
    if len(data) > limit:  # it grew since fstat, or its size was not its length
        raise FileProblem(what, path, f"over the {limit:,} bytes it may be")
    return data


def _read_up_to(fd: int, most: int, expected: int) -> bytes:
    """At most ``most`` bytes of ``fd``, to its end: first as many as its size says (one buffer of the
    file's size, never of the bound's: a 1 KB config never costs 64 MiB), then in 64 KiB steps for a
    file whose size says less than it holds (a /proc file says 0)."""
    parts: list[bytes] = []
    total = 0
    step = min(expected, most)
    while total < most:
        chunk = os.read(fd, min(max(step - total, 1 << 16), most - total))
        if not chunk:
            break
        parts.append(chunk)
        total += len(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def read_text(path: Path, limit: int, what: str) -> str:
    """A small UTF-8 text file (see :func:`read_bounded`); bytes that are not UTF-8 are refused."""
    data = read_bounded(path, limit, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise FileProblem(what, path, f"not UTF-8 (byte {error.start:,})") from error


def read_json(path: Path, limit: int, what: str) -> Any:
    """A small JSON file (see :func:`read_text`), nested no deeper than JSON_DEPTH levels."""
    import json

    text = read_text(path, limit, what)
    try:
        value = json.loads(text)
    except RecursionError as error:
        raise FileProblem(what, path, f"nested deeper than the {JSON_DEPTH} levels it may be") from error
    except ValueError as error:
        raise FileProblem(what, path, f"not JSON ({error})") from error
    if json_depth(value) > JSON_DEPTH:
        raise FileProblem(what, path, f"nested deeper than the {JSON_DEPTH} levels it may be")
    return value


def json_depth(value: Any) -> int:
    """How many levels of arrays and objects ``value`` nests (0 for a number or a string), counted
    without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest
