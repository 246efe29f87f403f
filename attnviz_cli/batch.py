"""Many sentences -> JSON Lines, in input order, on every core, with flat memory.

stdin is read in whatever pieces are already there (``read1``), so a slow producer gets each record as
soon as its line arrives, and a fast one gets bulk throughput: a large piece is split across worker
processes (forked, so they share the vectors rather than copying them), while a small one is done at
once in this process. At most a few pieces are in flight, so memory stays flat on an endless stream.
Before any read that could wait, everything finished is written and stdout is flushed.
"""

from __future__ import annotations

import os
import select
import signal
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from typing import BinaryIO

from .errors import AttnvizError
from .pipeline import inspect_sentence
from .projections import Projections
from .render_json import dumps, inspection_record
from .vectors import Embeddings

READ_SIZE = 1 << 16  # bytes per read: about a thousand ten-word lines
BULK_LINES = 256  # a piece with fewer lines is done in this process, with no hand-off
TASK_LINES = 128  # lines per task handed to a worker
IN_FLIGHT_PER_WORKER = 8  # tasks queued per worker before we wait for the oldest


@dataclass(frozen=True)
class Job:
    """What every line of a stream is run through."""

    embeddings: Embeddings
    projections: Projections
    heads: int
    scale: bool
    causal: bool
    oov: str
    max_tokens: int


@dataclass(frozen=True)
class Rendered:
    """A run of lines turned into JSON Lines: the records, the notes for stderr, and the error that
    stopped the run (with its line number), if one did."""

    data: bytes
    notes: tuple[str, ...]
    error: str | None = None


Numbered = list[tuple[int, str]]  # (1-based line number, sentence)


def render_lines(job: Job, lines: Numbered) -> Rendered:
    """JSON lines for ``lines``, stopping at the first line that cannot be inspected."""
    records: list[bytes] = []
    notes: list[str] = []
    for number, sentence in lines:
        try:
            inspection = inspect_sentence(
                sentence, job.embeddings, job.projections, heads=job.heads, scale=job.scale,
                causal=job.causal, oov=job.oov, max_tokens=job.max_tokens,
            )
        except AttnvizError as error:
            return Rendered(b"".join(records), tuple(notes), f"line {number}: {error}")
        notes += (f"line {number}: {note}" for note in inspection.notes)
        records.append(dumps(inspection_record(inspection)))
    return Rendered(b"".join(records), tuple(notes))


# ---- reading -----------------------------------------------------------------------------------------


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


def numbered_pieces(stream: BinaryIO, before_wait: Callable[[], None]) -> Iterator[Numbered]:
    """Non-blank lines of ``stream`` with their line numbers, in pieces of what could be read at once.

    ``before_wait`` is called before any read that may block, so the caller can write what it has.
    """
    pending = b""
    number = 0
    while True:
        if _would_wait(stream):
            before_wait()
        chunk = stream.read1(READ_SIZE) if hasattr(stream, "read1") else stream.read(READ_SIZE)
        if not chunk:
            break
        *complete, pending = (pending + chunk).split(b"\n")
        piece: Numbered = []
        for raw in complete:
            number += 1
            line = raw.decode("utf-8", errors="replace").strip()
            if line:
                piece.append((number, line))
        if piece:
            yield piece
    line = pending.decode("utf-8", errors="replace").strip()
    if line:
        yield [(number + 1, line)]


# ---- workers -----------------------------------------------------------------------------------------

_worker_job: Job | None = None  # set once in each worker process by _start_worker, read by _work


def _start_worker(job: Job) -> None:
    global _worker_job
    _worker_job = job
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle


def _work(lines: Numbered) -> Rendered:
    assert _worker_job is not None
    return render_lines(_worker_job, lines)


def worker_count() -> int:
    """The cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


# ---- the stream --------------------------------------------------------------------------------------


def stream_jsonl(
    job: Job, source: BinaryIO, sink: BinaryIO, report: Callable[[str], None], *, workers: int | None = None
) -> None:
    """Read sentences from ``source``, write one JSON record per non-blank line to ``sink`` in order.

    Bulk input is rendered by one worker process per core while this process reads, hands out and
    writes. Notes go to ``report``. The first bad line raises :class:`AttnvizError` naming it, after
    every record before it was written and none after.
    """
    workers = worker_count() if workers is None else workers
    pool: ProcessPoolExecutor | None = None
    in_flight: deque[Future[Rendered]] = deque()  # in input order

    def emit(rendered: Rendered) -> None:
        sink.write(rendered.data)
        for note in rendered.notes:
            report(note)
        if rendered.error:
            raise AttnvizError(rendered.error)

    def drain(keep: int = 0) -> None:
        while len(in_flight) > keep:
            emit(in_flight.popleft().result())

    def before_wait() -> None:
        drain()
        sink.flush()

    try:
        for piece in numbered_pieces(source, before_wait):
            if workers < 2 or len(piece) < BULK_LINES:
                drain()
                emit(render_lines(job, piece))
                continue
            if pool is None:
                pool = ProcessPoolExecutor(workers, mp_context=get_context("fork"), initializer=_start_worker, initargs=(job,))
            for start in range(0, len(piece), TASK_LINES):
                in_flight.append(pool.submit(_work, piece[start : start + TASK_LINES]))
            drain(keep=workers * IN_FLIGHT_PER_WORKER)
        drain()
        sink.flush()
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
