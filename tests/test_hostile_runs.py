"""Issue 31, the run itself under hostile conditions: lines that never end, worker processes that fail
to start, signals at any moment, a parent killed outright, and numbers that overflow. Each case runs
`attn` as a person would (a subprocess where signals or stdin matter), with short, bounded waits."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

MODELS = Path(__file__).resolve().parent / "models"
TINY_BERT = MODELS / "tiny-bert"
ATTN = [sys.executable, "-m", "attnviz_cli"]
HANG = 30  # seconds: a guard against a hang, never a timing assertion


def attn(*args: str, **popen) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ATTN, *args], capture_output=True, text=True, timeout=HANG, check=False, **popen)


# ---- cause 1: a line that never ends -----------------------------------------------------------------


@pytest.mark.parametrize("how", ["stdin", "argument"])
def test_a_line_that_never_ends_is_refused_at_once(how):
    """`attn heads - < /dev/zero` and `attn heads /dev/zero`: one line without end, refused as soon as it
    passes the model's limit (it read forever before), for heads and for both inspect streams alike."""
    with open("/dev/zero", "rb") as zeros:
        if how == "stdin":
            runs = [attn("heads", "-", "--model", str(TINY_BERT), stdin=zeros),
                    attn("inspect", "-", "--model", str(TINY_BERT), "-f", "jsonl", stdin=zeros),
                    attn("inspect", "-", "-f", "jsonl", stdin=zeros)]
        else:
            runs = [attn("heads", "/dev/zero", "--model", str(TINY_BERT), stdin=subprocess.DEVNULL)]
    for done in runs:
        assert done.returncode == 1, done.stderr
        assert done.stderr.startswith("attn: error: line 1: the ") and "longer than 65,536 bytes" in done.stderr
        assert len(done.stderr.splitlines()) == 1


def test_a_long_line_is_skipped_and_the_lines_after_it_still_count(tmp_path):
    """--on-error skip: a 200 kB line is left out as soon as it is too long, and the texts around it run."""
    texts = tmp_path / "texts.txt"
    texts.write_bytes(b"the river bank\n" + b"a " * 100_000 + b"\nthe bank raised rates\n")
    for source, stdin in ((str(texts), None), ("-", texts.read_bytes())):
        done = subprocess.run([*ATTN, "heads", source, "--model", str(TINY_BERT), "--on-error", "skip", "-f", "json"],
                              input=stdin, capture_output=True, timeout=HANG, check=False)
        assert done.returncode == 0, done.stderr
        assert done.stderr.decode().startswith("attn: line 2 skipped: the line is longer than 65,536 bytes")
        assert b'"texts": 2' in done.stdout


def test_heads_reads_process_substitution_and_dev_stdin():
    """`attn heads <(printf 'a\\nb\\n')` and `... | attn heads /dev/stdin`: ordinary shell usage."""
    done = subprocess.run(["bash", "-c", f'"$@" heads <(printf "the river bank\\nthe bank raised rates\\n") --model {TINY_BERT} -f json', "-", *ATTN],
                          capture_output=True, text=True, timeout=HANG, check=False)
    assert done.returncode == 0, done.stderr
    assert '"texts": 2' in done.stdout
    done = attn("heads", "/dev/stdin", "--model", str(TINY_BERT), "-f", "json", input="the river bank\n\nthe bank\n")
    assert done.returncode == 0, done.stderr
    assert '"texts": 2' in done.stdout
