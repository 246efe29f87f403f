"""Progress on stderr, for people at a terminal: shown only when stderr is one (and, for streams,
stdout is not), so it never mixes with data or lands in a log. Rich is imported only when shown."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

PROGRESS_BYTES = 8 << 20  # files smaller than this load too fast for a progress bar to help


@contextmanager
def stream_progress() -> Iterator[Callable[[int], None] | None]:
    """A progress line on stderr while a stream runs: only when stderr is a terminal and stdout is not
    (so it never mixes with the records or lands in a log)."""
    if not sys.stderr.isatty() or sys.stdout.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("{task.completed:,} sentences"), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("attn", total=None)
        yield lambda done: progress.update(task, completed=done)


@contextmanager
def corpus_progress(total: int | None) -> Iterator[Callable[[int], None] | None]:
    """While a corpus runs, on stderr when it is a terminal: a bar over ``total`` texts (the lines of
    a file), or a count with no end (stdin); told how many texts are done. Gone when the run ends."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        (TextColumn("texts"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()) if total
        else (SpinnerColumn(), TextColumn("{task.completed:,} texts"), TimeElapsedColumn())
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("heads", total=total or None)
        yield lambda done: progress.update(task, completed=done)


@contextmanager
def reading_progress(spec: str | None) -> Iterator[None]:
    """While a large vectors file is read, a progress bar on a terminal (not for sets or names)."""
    path = Path(spec) if spec else None
    try:
        is_file = path is not None and path.is_file()
    except OSError:  # a name the file system refuses: loading reports it
        is_file = False
    if path is None or not is_file:
        yield
        return
    from .store import watching_reads

    with byte_progress(path) as progress, watching_reads(path, progress):
        yield


@contextmanager
def byte_progress(source: Path) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar over the bytes of ``source`` on stderr, when stderr is a terminal and the file
    is large enough to take a while."""
    if not sys.stderr.isatty() or not source.is_file() or source.stat().st_size < PROGRESS_BYTES:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("reading"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("read", total=source.stat().st_size)
        yield lambda done, total: bar.update(task, completed=done, total=total)
