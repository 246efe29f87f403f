"""Lines of text from a stream, numbered: the one reader of every stream of texts, for static vectors
and models alike. Blank lines are passed over (their numbers still count); a line longer than a limit
is not kept but marked, so memory stays bounded whatever the input."""

from __future__ import annotations

import select
from collections.abc import Callable, Iterator
from typing import BinaryIO

from .errors import AttnvizError

READ_SIZE = 1 << 16  # bytes per read: about a thousand ten-word lines
ERROR_SCHEMA = "attnviz.error/1"

Numbered = list[tuple[int, str]]  # (1-based line number, text)


def _would_wait(stream: BinaryIO) -> bool:
    """Whether the next read of ``stream`` may block (nothing ready on its file descriptor).

    Only ``read1`` reads the stream, and it leaves nothing in the buffer, so the descriptor tells all.
    """
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return False  # an in-memory stream never blocks
    ready, _, _ = select.select([fd], [], [], 0)
    return not ready


class TooLong(str):
    """A line longer than any sentence --max-tokens allows: only its start was kept, and it is refused."""


def numbered_pieces(stream: BinaryIO, before_wait: Callable[[], None], max_line: int = 1 << 62) -> Iterator[Numbered]:
    """Non-blank lines of ``stream`` with their line numbers, in pieces of what could be read at once.

    ``before_wait`` is called before any read that may block, so the caller can write what it has. A
    line longer than ``max_line`` bytes is not kept: it comes as a :class:`TooLong` holding its start
    as soon as it has been read that far (a caller that refuses it stops there: a line that never ends,
    as of ``/dev/zero``, is refused at once), and the rest of it is read past in bounded memory.
    """
    pending: list[bytes] = []  # the unfinished line, in pieces (joined once: no quadratic rebuild)
    pending_bytes, overflow, number = 0, False, 0
    while True:
        if _would_wait(stream):
            before_wait()
        chunk = stream.read1(READ_SIZE) if hasattr(stream, "read1") else stream.read(READ_SIZE)
        if not chunk:
            break
        *complete, rest = chunk.split(b"\n")
        piece: Numbered = []
        for end in complete:
            number += 1
            if overflow:  # the end of a line already given as too long
                pending, pending_bytes, overflow = [], 0, False
                continue
            raw = b"".join([*pending, end]) if pending else end
            entry = _line(raw, pending_bytes + len(end) > max_line)
            pending, pending_bytes = [], 0
            if entry:
                piece.append((number, entry))
        if not overflow:
            pending.append(rest)
            pending_bytes += len(rest)
            if pending_bytes > max_line:  # given now, from its start; the rest is dropped as it comes
                piece.append((number + 1, _line(b"".join(pending)[:200], True)))
                pending, overflow = [], True
        if piece:
            yield piece
    if not overflow:
        entry = _line(b"".join(pending), pending_bytes > max_line)
        if entry:
            yield [(number + 1, entry)]


def _line(raw: bytes, too_long: bool) -> str:
    """A line's text, stripped ('' for a blank one); a :class:`TooLong` of its start when too long."""
    if too_long:
        return TooLong(raw[:200].decode("utf-8", errors="replace").strip() + "…")
    return raw.decode("utf-8", errors="replace").strip()


def numbered_lines(stream: BinaryIO, max_line: int = 1 << 62, before_wait: Callable[[], None] = lambda: None) -> Iterator[tuple[int, str]]:
    """The non-blank lines of ``stream`` one at a time, as :func:`numbered_pieces` reads them."""
    for piece in numbered_pieces(stream, before_wait, max_line):
        yield from piece


def bad_line(number: int, error: Exception, on_error: str) -> str:
    """--on-error for a stream's bad line, whatever the source: with "skip", the note that it was
    passed over; with "fail", the error that stops the stream, naming the line (raised)."""
    if on_error != "skip":
        raise AttnvizError(f"line {number}: {error}")
    return f"line {number} skipped: {error}"


def error_record(number: int, line: str, error: Exception) -> dict[str, object]:
    """The ``attnviz.error/1`` record a jsonl stream writes in a bad line's place (--on-error skip),
    whatever the source: its number, the line as read (of an over-long one, its start) and the error."""
    return {"schema": ERROR_SCHEMA, "line": number, "sentence": line, "error": str(error)}
