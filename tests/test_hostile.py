"""Hostile input, full disks and signals (issue 13): one line and a non-zero exit, never a hang or a
traceback. Fast and small: /dev/full stands in for a full disk."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ATTN = [sys.executable, "-m", "attnviz_cli"]
FULL = Path("/dev/full")
needs_dev_full = pytest.mark.skipif(not FULL.exists(), reason="no /dev/full on this system")


def lines(count: int) -> bytes:
    words = ["the", "river", "bank", "money", "flows", "past", "old", "town", "at", "night"]
    return b"".join(" ".join(words[(i + j) % 10] for j in range(10)).encode() + b"\n" for i in range(count))


def session_members(session: int) -> list[int]:
    """Processes still alive in the session ``session`` leads (a stream's workers would be there)."""
    alive = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == session and fields[0] != "Z":
                alive.append(int(entry.name))
    return alive


def to_full_disk(args: list[str], stdin: bytes = b"") -> tuple[int, str, list[int]]:
    """``attn ARGS`` with stdout on /dev/full: its exit code, its stderr, and what of it is left."""
    with FULL.open("wb") as full:
        child = subprocess.Popen([*ATTN, *args], stdin=subprocess.PIPE, stdout=full, stderr=subprocess.PIPE, start_new_session=True)
        _, stderr = child.communicate(stdin, timeout=120)
    return child.returncode, stderr.decode(), session_members(child.pid)


@needs_dev_full
@pytest.mark.parametrize(
    "args",
    [["schema"], ["--version"], ["--help"], ["inspect", "river bank", "-f", "json"], ["inspect", "river bank"],
     ["vectors", "list"], ["inspect", "river bank", "-f", "csv"], ["demo"]],
    ids=" ".join,
)
def test_a_full_disk_is_one_line_and_exit_1(args):
    code, stderr, left = to_full_disk(args)
    assert code == 1
    assert stderr == "attn: error: cannot write the output: No space left on device\n"
    assert left == []


@needs_dev_full
@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["jsonl", "csv", "markdown"])
def test_a_stream_to_a_full_disk_stops_with_every_worker_gone(fmt):
    # Issue 13.1: the parent and two workers waited on each other forever; SIGINT did nothing.
    code, stderr, left = to_full_disk(["inspect", "-", "-f", fmt], lines(5000))  # bulk: the worker path
    assert code == 1
    assert stderr.endswith("attn: error: cannot write the output: No space left on device\n")
    assert stderr.count("\n") == 1 and "Traceback" not in stderr
    assert left == []  # no worker outlives the run


def test_a_worker_whose_write_fails_passes_the_turn(tmp_path):
    # The mechanism behind the hang: a write error other than a closed pipe must still let the next
    # task write (or stay silent), and come back as the stream's error.
    from attnviz_cli.batch import Rendered, Turns

    read, write = os.pipe()
    os.close(read)
    bad = os.open(os.devnull, os.O_RDONLY)  # writing to a read-only descriptor: EBADF, not EPIPE
    turns = Turns.create(bad)
    first = turns.write_in_turn(0, Rendered((b"x\n",), (), 1))
    assert first.error == "cannot write the output: Bad file descriptor"
    assert turns.next_task.value == 1 and turns.stopped.value == 1
    second = turns.write_in_turn(1, Rendered((b"y\n",), (), 1))
    assert second.error is None and turns.next_task.value == 2  # stayed silent, passed on
    os.close(bad)
    os.close(write)


def test_interrupt_while_loading_is_one_line(monkeypatch, capsys):
    # Issue 13.17: Ctrl-C in the first 0.2 s gave a KeyboardInterrupt traceback.
    import builtins

    from attnviz_cli import main as entry

    real_import = builtins.__import__

    def interrupted(name, *args, **kwargs):
        if name == "cli" or name.endswith(".cli"):
            raise KeyboardInterrupt
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", interrupted)
    with pytest.raises(SystemExit) as done:
        entry.main()
    assert done.value.code == 130
    assert capsys.readouterr().err == "attn: interrupted\n"
