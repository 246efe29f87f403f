"""Worker processes that live and die with the run that started them, whether forked (the static
stream) or spawned (``attn heads``).

- Ctrl-C is the parent's to handle: it shuts its pool down and prints one line. A worker ignores SIGINT,
  and while workers start, SIGINT and SIGTERM are held back in the parent (blocked, so a worker inherits
  them blocked until it has set itself up, and the parent gets them just after: never lost).
- SIGTERM to the parent ends the run as SIGINT does (:class:`~attnviz_cli.errors.Terminated`), so its
  pool is shut down and nothing is left behind, not even a "leaked semaphore" warning.
- A worker whose parent is gone, however it ended (SIGKILL included), exits at once: each watches a
  pipe whose write end only the parent holds (its :func:`lifeline`). When the parent ends the kernel
  closes that end, and the worker's read sees end of file. This works for forked and spawned workers
  alike, on every POSIX system (Linux's PR_SET_PDEATHSIG would not: it follows the parent *thread* that
  started the worker, and macOS has none).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, NamedTuple

from .errors import terminate

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

HELD_BACK = {signal.SIGINT, signal.SIGTERM}  # while workers start

_write_ends: list[Connection] = []  # of the lifelines this process holds (a forked worker closes its copies)


class Lifeline(NamedTuple):
    """A pipe whose write end only this process holds: its read end goes to each worker."""

    reader: Connection  # for each worker's :func:`start_worker`
    writer: Connection  # closed (by this process ending, or on purpose), it ends every worker


@contextmanager
def lifeline() -> Iterator[Lifeline]:
    """A :class:`Lifeline` for a pool's whole life; SIGTERM meanwhile raises
    :class:`~attnviz_cli.errors.Terminated` here, as SIGINT raises KeyboardInterrupt, so the pool is
    shut down on the way out."""
    from multiprocessing import Pipe

    reader, writer = Pipe(duplex=False)
    _write_ends.append(writer)
    handling = _main_thread()
    previous = signal.signal(signal.SIGTERM, terminate) if handling else None
    try:
        yield Lifeline(reader, writer)
    finally:
        if handling:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
        _write_ends.remove(writer)
        writer.close()
        reader.close()


def _main_thread() -> bool:
    """Whether this is the main thread, the only one that may set signal handlers (a library user may
    run a stream in another: then only the signal mask is used)."""
    return threading.current_thread() is threading.main_thread()


@contextmanager
def starting_workers() -> Iterator[None]:
    """Around whatever may start a worker (a pool's ``submit``): SIGINT and SIGTERM blocked in this
    thread (a worker starts with them blocked) and, should another thread take one, only noted; either
    way it is raised here once the workers have started."""
    came: list[int] = []
    noted = {number: signal.signal(number, lambda signum, frame: came.append(signum)) for number in HELD_BACK} if _main_thread() else {}
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, HELD_BACK)
    try:
        yield
    finally:
        for number, handler in noted.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # one held back meanwhile is raised now
    if came:
        signal.raise_signal(came[0])


def start_worker(reader: Connection) -> None:
    """A worker's first step (in its pool's initializer): SIGINT ignored and SIGTERM fatal again (a
    forked worker inherits the parent's handlers), then both let through; the copies of the parent's
    write ends a fork brought closed; and a thread that ends this process when ``reader`` ends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, HELD_BACK)
    for writer in _write_ends:
        writer.close()
    _write_ends.clear()
    threading.Thread(target=_exit_with_parent, args=(reader,), name="attn-lifeline", daemon=True).start()


def _exit_with_parent(reader: Connection) -> None:
    with suppress(EOFError, OSError):
        reader.recv_bytes()  # nothing is ever sent: this returns only when the parent is gone
    os._exit(1)
