"""The ``attn`` command: parse -> pipeline -> render, one module of this package per command or
command group. Here: the app, built with just the command a run needs (:func:`app_for`), and the error
policy every command shares: one line on stderr for an error, exit 0 (done), 1 (bad input or data) or
2 (bad usage), and a quiet end when stdout's reader goes away.
"""

import importlib
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from ..errors import AttnvizError, interruption, output_failed, printable
from .output import out, say

COMMANDS = ("inspect", "compare", "demo", "heads", "merge", "generate", "schema", "vectors", "model")  # in --help's order; each a module here with add_to(app)

HELP = "See self-attention over real word embeddings: scores, softmax weights and contextualized vectors."
EPILOG = "Run 'attn inspect --help' for the options and examples. Exit codes: 0 ok, 1 bad input or data, 2 bad usage."


@contextmanager
def reporting_errors() -> Iterator[None]:
    """Turn our errors into one line on stderr and exit 1; end quietly when stdout's reader goes away."""
    try:
        yield
    except AttnvizError as error:
        say(f"error: {error}")
        raise typer.Exit(1) from None
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as Unix tools do
        raise typer.Exit(_quiet_after_closed_pipe()) from None
    except KeyboardInterrupt as stop:
        line, code = interruption(stop)
        say(line)
        raise typer.Exit(code) from None
    except (typer.BadParameter, typer.Exit):  # usage errors (exit 2) and exits: Typer reports them
        raise
    except Exception as error:  # a bug of ours: one line for the user, the traceback on request
        if os.environ.get("ATTN_DEBUG"):
            raise
        say(_internal_error(error))
        raise typer.Exit(1) from None


def _internal_error(error: Exception) -> str:
    return f"internal error: {type(error).__name__}: {printable(str(error))} (set ATTN_DEBUG=1 for a traceback; please report it)"


def _quiet_after_closed_pipe() -> int:
    """stdout's reader went away (``| head``): end quietly with 141, as Unix tools do."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # so the final flush at exit does not fail again
    return 141


def run() -> None:
    """The ``attn`` program: the app, then stdout flushed here, so that output that cannot be written
    (``--help`` to a full disk, say) is one line and exit 1, not a traceback at the interpreter's exit."""
    try:
        app_for(sys.argv[1:])(prog_name="attn")  # ends in SystemExit
        code: int | str | None = 0
    except SystemExit as done:
        code = done.code
        stop = getattr(done.__context__, "__cause__", None)  # Typer's own `raise Exit(130) from` Ctrl-C, outside
        if isinstance(stop, KeyboardInterrupt):  # a command's reporting_errors (while it parses, say): one line too
            line, code = interruption(stop)
            say(line)
    except BrokenPipeError:
        code = _quiet_after_closed_pipe()
    except OSError as error:  # raised where Click writes (help, usage) rather than our commands
        say(f"error: {output_failed(error)}")
        code = 1
    except KeyboardInterrupt as stop:
        line, code = interruption(stop)
        say(line)
    except Exception as error:  # a bug of ours outside a command's own reporting: still one line
        if os.environ.get("ATTN_DEBUG"):
            raise
        say(_internal_error(error))
        code = 1
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        code = _quiet_after_closed_pipe()
    except OSError as error:
        say(f"error: {output_failed(error)}")
        code = 1
    sys.exit(code)


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        with reporting_errors():
            out(f"attn {__version__}\n".encode())
        raise typer.Exit()


def main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """See self-attention over real word embeddings."""


def _app(names: tuple[str, ...]) -> typer.Typer:
    """An ``attn`` app holding the commands (and groups) ``names``."""
    built = typer.Typer(
        name="attn", help=HELP, epilog=EPILOG, no_args_is_help=True, rich_markup_mode=None,
        pretty_exceptions_enable=False,
    )
    built.callback()(main)
    for name in names:
        importlib.import_module(f"{__name__}.{name}").add_to(built)
    return built


_whole: typer.Typer | None = None


def whole_app() -> typer.Typer:
    """The app with every command (built once)."""
    global _whole  # noqa: PLW0603  # built on first use: a run of one command never pays for the others
    if _whole is None:
        _whole = _app(COMMANDS)
    return _whole


def app_for(args: list[str]) -> typer.Typer:
    """The app with only the command that ``args`` run: Typer builds the options of every command it
    holds at each start, and a run needs those of one (each command's module is imported only then).
    The whole app for anything else (no command, ``--help``, ``--version``, a name that is no command),
    so that help lists every command and a misspelt name is told the right ones."""
    name = args[0] if args else None
    return _app((name,)) if name in COMMANDS else whole_app()


def __getattr__(name: str) -> typer.Typer:
    if name == "app":  # ``from attnviz_cli.cli import app``: the whole app, built when first asked for
        return whole_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
