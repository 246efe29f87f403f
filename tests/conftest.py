"""Shared fixtures: the shipped vectors, tiny hand-made embeddings, and small files in every format."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from attnviz_cli.cli import app_for
from attnviz_cli.vectors import Embeddings, load_default

# A vocabulary small enough to compute attention over by hand (2-d, float64).
TINY_WORDS = ["river", "bank", "money", "the"]
TINY_VECTORS = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.5, 0.5]])

# Vectors for the file-format tests: values exactly representable in float32 and in short decimals.
FILE_WORDS = ["the", "river", "bank", "money", "flows", "Paris"]
FILE_VECTORS = (np.arange(24, dtype=np.float32).reshape(6, 4) - 11.5) / 8


def run(*args: str, input: str | bytes | None = None, env: dict[str, str] | None = None):
    """``attn ARGS`` in this process, as Typer's CliRunner runs it (stdout and stderr apart), with the
    app ``attn`` builds for those arguments."""
    return CliRunner(env=env).invoke(app_for(list(args)), list(args), input=input)


@pytest.fixture(scope="session")
def glove():
    return load_default()


@pytest.fixture
def tiny() -> Embeddings:
    return Embeddings(
        name="tiny", vectors=TINY_VECTORS, words=TINY_WORDS,
        index={w: i for i, w in enumerate(TINY_WORDS)}, lowercase=True,
    )


def _text_lines(words, vectors) -> list[str]:
    return [f"{w} " + " ".join(repr(float(v)) for v in row) for w, row in zip(words, vectors, strict=True)]


@pytest.fixture
def glove_txt(tmp_path: Path) -> Path:
    path = tmp_path / "small.glove.txt"
    path.write_text("\n".join(_text_lines(FILE_WORDS, FILE_VECTORS)) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def word2vec_txt(tmp_path: Path) -> Path:
    path = tmp_path / "small.w2v.txt"
    header = f"{len(FILE_WORDS)} {FILE_VECTORS.shape[1]}"
    path.write_text("\n".join([header, *_text_lines(FILE_WORDS, FILE_VECTORS)]) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def word2vec_bin(tmp_path: Path) -> Path:
    path = tmp_path / "small.w2v.bin"
    with path.open("wb") as handle:  # the word2vec binary layout, written by hand, not by gensim
        handle.write(f"{len(FILE_WORDS)} {FILE_VECTORS.shape[1]}\n".encode())
        for word, row in zip(FILE_WORDS, FILE_VECTORS, strict=True):
            handle.write(word.encode() + b" " + row.astype("<f4").tobytes() + b"\n")
    return path


@pytest.fixture(scope="session")
def fasttext_bin(tmp_path_factory) -> Path:
    from gensim.models import FastText
    from gensim.models.fasttext import save_facebook_model

    corpus = [["the", "river", "bank", "flows"], ["the", "money", "bank"], ["river", "banks", "flow"]] * 20
    model = FastText(vector_size=8, window=2, min_count=1, epochs=2, seed=1, workers=1, min_n=2, max_n=4, bucket=2000)
    model.build_vocab(corpus)
    model.train(corpus, total_examples=len(corpus), epochs=2)
    path = tmp_path_factory.mktemp("ft") / "small.bin"
    save_facebook_model(model, str(path))
    return path


def readline_within(stream, seconds: float = 60) -> bytes:
    """One line from a child's pipe, or a test failure after ``seconds``: never a hung test run."""
    fd, line = stream.fileno(), b""
    deadline = time.monotonic() + seconds
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise AssertionError(f"no whole line within {seconds} s (got {line!r})")
        byte = os.read(fd, 1)  # one byte at a time: nothing past the line is taken from the pipe
        if not byte:
            break
        line += byte
    return line


def run_with_terminal_stderr(argv: list[str], **popen) -> tuple[int, bytes]:
    """Run ``argv`` with stderr on a pseudo-terminal (as a person at a terminal has it); return its
    exit code and everything it wrote there."""
    primary, secondary = pty.openpty()
    child = subprocess.Popen(argv, stderr=secondary, **popen)
    os.close(secondary)
    seen = b""
    while select.select([primary], [], [], 60)[0]:
        try:
            chunk = os.read(primary, 4096)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        seen += chunk
    os.close(primary)
    return child.wait(timeout=60), seen


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that open a real browser are marked ``browser`` (and ``slow``), by the fixture they use, so
    ``pytest -m "not slow"`` runs the rest in seconds."""
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.slow)
