"""Many sentences -> records (JSON Lines, CSV rows or Markdown sections), in input order, on every core,
with flat memory.

stdin is read in whatever pieces are already there (``read1``), so a slow producer gets each record as
soon as its line arrives, and a fast one gets bulk throughput: a large piece is split across worker
processes (forked, so they share the vectors rather than copying them), while a small one is done at
once in this process. At most a few pieces are in flight, so memory stays flat on an endless stream.
Before any read that could wait, everything finished is written and stdout is flushed.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, BinaryIO

from .engine import usable_cpus
from .errors import AttnvizError, output_failed
from .lines import Numbered, TooLong, bad_line, error_record, numbered_pieces
from .pipeline import inspect_batches, max_input_bytes, too_long_error
from .projections import Projections
from .render_json import dumps
from .render_records import RecordRenderer
from .results import InspectOptions
from .vectors import Embeddings
from .workers import lifeline, start_worker, starting_workers

if TYPE_CHECKING:  # the process machinery is imported by the streams that use it, not by one record
    from concurrent.futures import Future, ProcessPoolExecutor
    from multiprocessing.connection import Connection

BULK_LINES = 256  # a piece with fewer lines is done in this process, with no hand-off
TASK_LINES = 128  # lines per task handed to a worker
IN_FLIGHT_PER_WORKER = 8  # tasks queued per worker before we wait for the oldest


@dataclass(frozen=True, slots=True)
class OutputOptions:
    """How each record is written."""

    fmt: str = "jsonl"  # "jsonl", "csv" or "markdown"
    fields: tuple[str, ...] = ()  # jsonl: keep only these keys (see render_json.inspection_record); () for all
    dims: int = 6  # markdown: vector components shown
    on_error: str = "fail"  # a bad line: "fail" stops the stream, "skip" reports it and goes on


@dataclass(frozen=True, slots=True)
class Job:
    """What every line of a stream is run through and how it is written."""

    embeddings: Embeddings
    projections: Projections
    options: InspectOptions
    output: OutputOptions = OutputOptions()


@dataclass(frozen=True, slots=True)
class Rendered:
    """A run of lines rendered: the records, the notes for stderr, how many lines were done, and the
    error that stopped the run (with its line number), if one did."""

    data: tuple[bytes, ...]  # the records, one piece each: written with one writev, never joined
    notes: tuple[str, ...]
    count: int = 0  # lines rendered (records or skipped-line reports)
    error: str | None = None
    broken_pipe: bool = False  # the reader of stdout went away while a worker wrote


class Renderer:
    """Renders runs of a stream's lines as ``job`` says. One per process: its JSON Lines writer
    remembers the text of input vectors from record to record."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self._records = RecordRenderer(job.output.fmt, job.output.fields, job.output.dims)

    def header(self) -> bytes:
        """What the stream writes once before its records (CSV's header)."""
        return self._records.header()

    def lines(self, lines: Numbered) -> Rendered:
        """Records for ``lines``; a bad line stops the run, or with on_error "skip" is reported and passed."""
        job = self.job
        kept = [i for i, (_, sentence) in enumerate(lines) if not isinstance(sentence, TooLong)]
        try:
            batches, found = inspect_batches([lines[i][1] for i in kept], job.embeddings, job.projections, job.options)
        except AttnvizError as error:  # options that fail for every sentence
            return Rendered((), (), 0, f"line {lines[0][0]}: {error}")
        errors = {kept[i]: error for i, error in found.items()}  # by position in ``lines``
        errors |= {i: too_long_error(job.options.max_tokens) for i in set(range(len(lines))) - set(kept)}
        batches = [replace(batch, positions=tuple(kept[p] for p in batch.positions)) for batch in batches]
        records: list[bytes | None] = [None] * len(lines)
        notes: list[tuple[str, ...]] = [()] * len(lines)
        for batch in batches:
            numbers = [lines[i][0] for i in batch.positions]
            for i, made in zip(batch.positions, self._records.records(batch, numbers), strict=True):
                records[i] = made
            for i, sentence_notes in zip(batch.positions, batch.notes, strict=True):
                notes[i] = sentence_notes
        written: list[bytes] = []
        told: list[str] = []
        for done, (number, sentence) in enumerate(lines):
            failed = errors.get(done)
            if failed is not None:
                try:
                    told.append(bad_line(number, failed, job.output.on_error))
                except AttnvizError as stop:  # handed back: the records before it are written first
                    return Rendered(tuple(written), tuple(told), done, str(stop))
                if job.output.fmt == "jsonl":
                    written.append(dumps(error_record(number, sentence, failed)))
                continue
            told += (f"line {number}: {note}" for note in notes[done])
            written.append(records[done])  # type: ignore[arg-type]  # every sentence without an error has one
        return Rendered(tuple(written), tuple(told), len(lines))

# ---- workers -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Turns:
    """Lets workers write to stdout themselves, in input order: task n writes once ``next_task`` is n.

    Shared with the workers by fork. Tasks leave the queue in order, so a worker only ever waits for
    tasks that other workers already hold, and the lowest of those is never waiting: no deadlock.
    """

    fd: int  # stdout's file descriptor
    condition: Any  # multiprocessing Condition guarding next_task
    next_task: Any  # multiprocessing Value("q"): the task whose turn it is to write
    stopped: Any  # multiprocessing Value("b"): set once a task failed or the pipe broke; later ones stay silent

    @classmethod
    def create(cls, fd: int) -> Turns:
        from multiprocessing import get_context

        context = get_context("fork")
        return cls(fd, context.Condition(), context.Value("q", 0, lock=False), context.Value("b", 0, lock=False))

    def write_in_turn(self, task: int, rendered: Rendered) -> Rendered:
        """Write ``rendered`` once every earlier task has written; return what is left for the parent."""
        with self.condition:
            self.condition.wait_for(lambda: self.next_task.value == task)
        broken, error = False, rendered.error
        try:
            if not self.stopped.value:
                try:
                    _write_all(self.fd, rendered.data)
                except BrokenPipeError:
                    broken = True
                except OSError as failure:  # a full disk, say: the stream ends with this error
                    error = str(output_failed(failure))
                if broken or error:
                    self.stopped.value = 1
        finally:  # whatever happened, the next task gets its turn: nobody waits forever
            with self.condition:
                self.next_task.value = task + 1
                self.condition.notify_all()
        return Rendered((), rendered.notes, rendered.count, error, broken)


IOV_MAX = 1024  # buffers per writev call that every POSIX system accepts


def _write_all(fd: int, pieces: tuple[bytes, ...]) -> None:
    """Write ``pieces`` in order with as few system calls as the kernel allows, without joining them."""
    views = [memoryview(piece) for piece in pieces if piece]
    first = 0
    while first < len(views):
        written = os.writev(fd, views[first : first + IOV_MAX])
        while written:  # drop what was written: whole pieces, then the front of a partly written one
            if written >= len(views[first]):
                written -= len(views[first])
                first += 1
            else:
                views[first] = views[first][written:]
                written = 0


_worker_state: tuple[Renderer, Turns | None] | None = None  # set once in each worker process by _start_worker


def _start_worker(reader: Connection, job: Job, turns: Turns | None) -> None:
    """Set up a worker process: bound to the parent's life by ``reader``, its lifeline, and Ctrl-C left
    to the parent (see :mod:`attnviz_cli.workers`). There is one per core, so it runs attention on one thread (and BLAS
    has one thread already: see :mod:`attnviz_cli.main`)."""
    global _worker_state  # noqa: PLW0603  # a pool initializer's way to give each worker process its state
    start_worker(reader)
    _worker_state = (Renderer(replace(job, options=job.options._replace(threads=1))), turns)


def _work(task: int, lines: Numbered) -> Rendered:
    assert _worker_state is not None
    renderer, turns = _worker_state
    rendered = renderer.lines(lines)
    return rendered if turns is None else turns.write_in_turn(task, rendered)


def _fileno(stream: BinaryIO) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None


# ---- the stream --------------------------------------------------------------------------------------


def stream_records(
    job: Job, source: BinaryIO, sink: BinaryIO, report: Callable[[str], None], *,
    progress: Callable[[int], None] | None = None, workers: int | None = None,
) -> None:
    """Read sentences from ``source``, write one record per non-blank line to ``sink`` in order.

    ``progress`` (if given) hears how many lines are done so far, as records are written.

    Bulk input is rendered by one worker process per core, which write to ``sink``'s file descriptor
    themselves, in turn (or, when it has none, hand their bytes back to be written here). Notes go to
    ``report``. The first bad line raises :class:`AttnvizError` naming it, after every record before
    it was written and none after.
    """
    workers = usable_cpus() if workers is None else workers
    renderer = Renderer(job)
    pool: ProcessPoolExecutor | None = None
    turns: Turns | None = None
    tasks = 0
    in_flight: deque[Future[Rendered]] = deque()  # in input order

    done = 0

    def write(data: bytes) -> None:
        try:
            sink.write(data)
        except BrokenPipeError:
            raise
        except OSError as error:
            raise output_failed(error) from error

    def flush() -> None:
        try:
            sink.flush()
        except BrokenPipeError:
            raise
        except OSError as error:
            raise output_failed(error) from error

    def emit(rendered: Rendered) -> None:
        nonlocal done
        for piece in rendered.data:
            write(piece)
        for note in rendered.notes:
            report(note)
        done += rendered.count
        if progress is not None:
            progress(done)
        if rendered.broken_pipe:
            raise BrokenPipeError
        if rendered.error:
            raise AttnvizError(rendered.error)

    def drain(keep: int = 0) -> None:
        while len(in_flight) > keep:
            emit(in_flight.popleft().result())

    def before_wait() -> None:
        drain()
        flush()

    with ExitStack() as stack:  # the pool and its lifeline, once started, are let go on the way out
        write(renderer.header())
        for piece in numbered_pieces(source, before_wait, max_input_bytes(job.options.max_tokens)):
            if workers < 2 or len(piece) < BULK_LINES:
                drain()
                emit(renderer.lines(piece))
                if turns is not None:
                    flush()  # before any worker writes after us
                continue
            if pool is None:
                job.embeddings.prepare_for_many()  # once here, shared with the workers by fork
                if job.options.neighbors:
                    _ = job.embeddings.unit_vectors  # computed once here, shared with the workers by fork
                fd = _fileno(sink)
                if fd is not None:
                    flush()
                    turns = Turns.create(fd)
                from concurrent.futures import ProcessPoolExecutor
                from multiprocessing import get_context

                pool = ProcessPoolExecutor(
                    workers, mp_context=get_context("fork"), initializer=_start_worker,
                    initargs=(stack.enter_context(lifeline()).reader, job, turns),
                )
                stack.callback(pool.shutdown, wait=True, cancel_futures=True)  # before the lifeline goes
            for start in range(0, len(piece), TASK_LINES):
                with starting_workers():  # the first submit forks the workers
                    in_flight.append(pool.submit(_work, tasks, piece[start : start + TASK_LINES]))
                tasks += 1
            drain(keep=workers * IN_FLIGHT_PER_WORKER)
        drain()
        flush()
