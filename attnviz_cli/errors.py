"""The one error type the CLI turns into a one-line message, and untrusted text made valid and escaped."""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path
from typing import NoReturn

# C0 and C1 controls, DEL, and the format characters that can reorder or hide text on a terminal
# (bidi overrides and isolates, zero-width marks).
UNSAFE_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


class AttnvizError(Exception):
    """A problem with the user's input or data: reported in one line, exit code 1."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, where a run has worker processes to shut down: it ends the run as Ctrl-C does, but
    says "terminated" and exits 143 (128 + SIGTERM), as a process killed by it would."""


def terminate(signum: int, frame: object) -> NoReturn:
    """The SIGTERM handler of a run: raise :class:`Terminated`, so the run ends as Ctrl-C ends it."""
    raise Terminated


def interruption(stop: KeyboardInterrupt) -> tuple[str, int]:
    """The line and exit code for a run stopped by Ctrl-C (130) or by SIGTERM (143)."""
    return ("terminated", 143) if isinstance(stop, Terminated) else ("interrupted", 130)


def usable_path(spec: str | os.PathLike[str], what: str) -> Path:
    """``spec`` as a Path the file system accepts, whether or not it exists yet; a name it refuses
    (too long, a component that is a file) is an error naming ``what`` it was for and the path."""
    path = Path(spec)
    try:
        path.lstat()
    except FileNotFoundError:
        pass
    except OSError as error:
        raise AttnvizError(f"{what} {quoted(str(path))} cannot be used: {error.strerror or error}") from error
    return path


def output_failed(error: OSError) -> AttnvizError:
    """The error to report when stdout cannot be written (a full disk, a closed descriptor); a closed
    pipe (EPIPE) is not one: Unix tools end quietly then."""
    return AttnvizError(f"cannot write the output: {error.strerror or error}")


def valid_text(text: str) -> str:
    """``text`` with any byte that was not UTF-8 (Python keeps those of argv as lone surrogates) as
    U+FFFD, the replacement character: what every later step, and JSON, can hold."""
    if text.isascii():
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def printable(text: str) -> str:
    """``text`` with control and bidi characters shown as ``\\xNN``/``\\uNNNN`` escapes.

    Everything that comes from the user (sentences, tokens, file names) passes through this before it
    reaches a terminal, so it can never move the cursor, change colours or reorder the line.
    """

    def escape(match: re.Match[str]) -> str:
        code = ord(match.group())
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return UNSAFE_CHARACTERS.sub(escape, text)


def counted(n: int, noun: str) -> str:
    """ "1 head", "2 heads": a count with its noun, singular for one."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def quoted(text: str) -> str:
    """``text`` made printable and put in quotes, for messages. Always whole, however long: a path or a
    model id in a message is there to be read and copied, and its middle is often the model's name."""
    return f"'{printable(unicodedata.normalize('NFC', text))}'"


def library_failure(error: BaseException) -> bool:
    """Whether ``error``, caught around a library's call, is that library failing (its own exception, or
    a Rust panic, which the tokenizers library raises as pyo3's PanicException, a BaseException) rather
    than the user interrupting or the program exiting: those pass on."""
    return not isinstance(error, (KeyboardInterrupt, SystemExit, GeneratorExit))
