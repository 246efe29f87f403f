"""What every command does with stdin, stdout and stderr: messages on stderr, data written whole to
stdout, Rich renderables drawn for stdout's width, and the parsing of --fields and --save."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import typer

from ..errors import AttnvizError, output_failed, printable

if TYPE_CHECKING:
    from .options import ReportFormat


def say(message: str) -> None:
    """A message line on stderr, made printable here, the one place messages are printed: whatever a
    message holds (a library's own words, a name from a file), it stays one line that cannot move the
    cursor or change colours (text that :func:`quoted` escaped already is left as it is)."""
    sys.stderr.write(f"attn: {printable(message)}\n")


@contextmanager
def writing() -> Iterator[None]:
    """Around a write to stdout: a failure (a full disk) becomes one error line; a closed pipe passes."""
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as error:
        raise output_failed(error) from error


def out(data: bytes) -> None:
    """``data`` to stdout, flushed."""
    with writing():
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()


def show(build: Callable[[int], Any]) -> None:
    """Print the Rich renderable ``build(width)`` makes for stdout's width.

    Rich pads every cell with spaces; where there is no colour (a pipe, a file, NO_COLOR) the lines
    are written without those trailing spaces, as a CI log or ``diff`` wants them.
    """
    from rich.console import Console

    console = Console(highlight=False, markup=False, emoji=False)  # we never use markup: safer and faster
    renderable = build(console.width)
    if console.color_system is not None:
        with writing():
            console.print(renderable)
        return
    text = io.StringIO()  # rendered apart from stdout, then written whole
    Console(file=text, width=console.width, color_system=None, highlight=False, markup=False, emoji=False).print(renderable)
    out("\n".join(line.rstrip() for line in text.getvalue().split("\n")).encode())


def report(record: dict, table_of: Callable[[], object], fmt: ReportFormat) -> None:
    """``record`` as JSON, or the Rich renderable ``table_of()`` makes, on stdout."""
    if fmt.value == "json":
        from ..render_json import dumps

        out(dumps(record, pretty=True))
        return
    show(lambda width: table_of())


def parse_fields(fields: str | None, check: Callable[[tuple[str, ...]], None]) -> tuple[str, ...]:
    """--fields as names, checked by ``check`` (which raises ValueError) before anything is loaded
    (the formats it applies to are a rule of :data:`~.options.RULES`)."""
    if not fields:
        return ()
    names = tuple(name.strip() for name in fields.split(",") if name.strip())
    try:
        check(names)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--fields") from None
    return names


def check_saves(paths: list[Path] | None, formats: tuple[str, ...] | None = None) -> list[Path]:
    """--save paths, or a usage error: an extension we do not write (of ``formats``, if given) or a
    folder (a stream is a rule of :data:`~.options.RULES`)."""
    from ..saving import SAVE_FORMATS, check_save_path

    for path in paths or []:
        problem = check_save_path(path, formats or SAVE_FORMATS)
        if problem:
            raise typer.BadParameter(problem, param_hint="--save")
    return paths or []


def saved(paths: list[Path], write: Callable[[Path], None]) -> None:
    """``write`` each of ``paths``, saying so as each is done."""
    for path in paths:
        write(path)
        say(f"saved {printable(str(path))}")


def stdin_binary(what: str, argument: str = "SENTENCE") -> BinaryIO:
    """stdin's bytes, or an error when stdin is closed (``argument`` - reads ``what`` from it)."""
    if sys.stdin is None:
        raise AttnvizError(f"stdin is closed, and {argument} - reads {what} from it")
    return sys.stdin.buffer


def read_stdin(max_tokens: int) -> str:
    """All of stdin as one sentence, read no further than what ``max_tokens`` tokens can take: more is refused."""
    from ..pipeline import max_input_bytes, too_long_error

    limit = max_input_bytes(max_tokens)
    data = sys.stdin.buffer.read(limit + 1)
    if len(data) > limit:
        raise too_long_error(max_tokens)
    return data.decode("utf-8", errors="replace").strip()
