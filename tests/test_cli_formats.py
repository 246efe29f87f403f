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


# ---- item 10: a model's CSV, long form with layer and head, one layer or all -------------------------

def _csv_rows(text: str) -> tuple[list[str], list[dict[str, str]]]:
    import csv
    import io

    reader = csv.DictReader(io.StringIO(text))
    rows = list(reader)
    return list(reader.fieldnames or []), rows


def test_model_csv_of_every_layer_has_each_head_of_each_layer_with_transformers_weights():
    import numpy as np
    from numpy.testing import assert_allclose

    from .conftest import run

    text = "I sat on the river bank"  # tests/models/make_tiny.py's first text: reference.npz has its attentions
    with np.load(MODELS / "tiny-gpt2" / "reference.npz") as recorded:
        expected = recorded["0/float64/attentions"]  # (L, h, T, T) from transformers
    L, H, T, _ = expected.shape
    result = run("inspect", text, "--model", str(MODELS / "tiny-gpt2"), "--layer", "all", "-f", "csv", "--dtype", "float64")
    assert result.exit_code == 0, result.stderr
    header, rows = _csv_rows(result.stdout)
    assert header == ["line", "sentence", "layer", "head", "query", "query_token", "key", "key_token", "score", "weight"]
    assert len(rows) == L * H * T * T
    assert [(int(r["layer"]), int(r["head"]), int(r["query"]), int(r["key"])) for r in rows] == [
        (i, h, q, k) for i in range(L) for h in range(H) for q in range(T) for k in range(T)
    ]
    weights = np.array([float(r["weight"]) for r in rows]).reshape(L, H, T, T)
    assert_allclose(weights, expected, rtol=1e-9, atol=1e-12)  # float64 NumPy against float64 PyTorch
    masked = np.array([r["score"] == "" for r in rows]).reshape(L, H, T, T)
    assert (masked == np.triu(np.ones((T, T), bool), 1)).all()  # GPT-2 is causal: a later key is masked...
    assert (weights[masked] == 0).all()  # ...its weight 0
    assert {r["sentence"] for r in rows} == {text} and {r["line"] for r in rows} == {"1"}


def test_model_csv_of_one_layer_or_one_head_carries_its_layer_and_head_numbers():
    from .conftest import run

    base = ("inspect", "the river bank", "--model", TINY_BERT, "-f", "csv")
    _, every = _csv_rows(run(*base, "--layer", "all").stdout)
    header, layer1 = _csv_rows(run(*base, "--layer", "1").stdout)
    assert header[:4] == ["line", "sentence", "layer", "head"]
    assert layer1 == [r for r in every if r["layer"] == "1"] and len(layer1) > 0
    _, head2 = _csv_rows(run(*base, "--layer", "1", "--head", "2").stdout)
    assert head2 == [r for r in every if r["layer"] == "1" and r["head"] == "2"] and len(head2) > 0

