"""The formats each command's help promises, written as promised (issue 27, items 9-11): Markdown of
compare, demo and heads compared exactly, model CSV parsed with the csv module, and `attn heads` at a
terminal with nothing piped in."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

MODELS = Path(__file__).parent / "models"
TINY_BERT = str(MODELS / "tiny-bert")


def _run_with_terminal_stdin(argv: list[str], typed: bytes = b"", seconds: float = 60) -> tuple[int | None, bytes, bytes]:
    """Run ``argv`` with stdin on a pseudo-terminal (a person at a terminal, nothing piped), type
    ``typed`` there, and return its exit code (None if it still waits after ``seconds``: it is then
    killed), stdout and stderr."""
    primary, secondary = pty.openpty()
    child = subprocess.Popen(argv, stdin=secondary, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.close(secondary)
    try:
        os.write(primary, typed)  # a few bytes: the terminal's echo of them fits its buffer unread
        try:
            out, err = child.communicate(timeout=seconds)
            return child.returncode, out, err
        except subprocess.TimeoutExpired:
            child.kill()
            out, err = child.communicate(timeout=60)
            return None, out, err
    finally:
        os.close(primary)


def test_heads_with_no_file_at_a_terminal_says_it_reads_stdin_instead_of_waiting():
    code, out, err = _run_with_terminal_stdin([sys.executable, "-m", "attnviz_cli", "heads", "--model", TINY_BERT], seconds=20)
    assert code == 2, (code, err)
    assert out == b""
    text = " ".join(err.decode().split())  # Click frames the message in a box that wraps it
    assert "give a FILE of texts, one per line, or pipe them in: attn heads reads stdin when no FILE is given" in text
    assert text.startswith("Usage: ")


def test_heads_minus_at_a_terminal_says_so_then_reads_what_is_typed():
    typed = b"the river bank\n\x04"  # a line, then Ctrl-D (end of input at a terminal)
    code, out, err = _run_with_terminal_stdin([sys.executable, "-m", "attnviz_cli", "heads", "-", "--model", TINY_BERT, "-f", "json"], typed)
    assert code == 0, err
    assert err.decode().splitlines()[0] == "attn: reading texts from stdin, one per line; end with Ctrl-D"
    import json

    record = json.loads(out)
    assert (record["texts"], len(record["heads"])) == (1, 8)  # tiny-bert: 2 layers of 4 heads

