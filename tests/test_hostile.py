"""Hostile input, full disks and signals (issue 13): one line and a non-zero exit, never a hang or a
traceback. Fast and small: /dev/full stands in for a full disk."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import run

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


# ---- untrusted text never reaches a terminal raw --------------------------------------------------

CONTROL = "\x1b]52;c;aGk=\x07\x1b[31m\u202e"  # OSC 52 (set the clipboard), CSI (colour), BEL, RLO


def test_csv_escapes_control_characters():
    # Issue 13.9: CSV is read in terminals too.
    result = run("inspect", f"the river {CONTROL} bank", "-f", "csv")
    assert result.exit_code == 0
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout and "\u202e" not in result.stdout
    assert "the river \\x1b]52;c;aGk=\\x07\\x1b[31m\\u202e bank" in result.stdout


def test_file_names_in_messages_and_headers_are_escaped(tmp_path, glove_txt):
    # Issue 13.8: the vectors file's name reached stderr raw in --oov error, and compare's header.
    hostile = tmp_path / f"v{CONTROL}.txt"
    hostile.write_bytes(glove_txt.read_bytes())
    error = run("inspect", "the qqq", "--vectors", str(hostile), "--oov", "error")
    assert error.exit_code == 1 and "\\x1b]52" in error.stderr
    compared = run("compare", "the river bank", "the money bank", "--focus", "bank", "--vectors", str(hostile))
    assert compared.exit_code == 0
    for text in (error.stderr, compared.stdout, compared.stderr):
        assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text


def test_a_figure_of_control_characters_is_well_formed_and_quiet(tmp_path):
    # Issue 13.10: matplotlib warned with raw ESC/BEL on stderr, and the SVG did not parse.
    import warnings
    import xml.etree.ElementTree as ET

    path = tmp_path / "c.svg"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a glyph warning would fail the run
        result = run("inspect", f"the {CONTROL}river bank", "--save", str(path), "-f", "json", "--fields", "tokens")
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr
    texts = ["".join(t.itertext()) for t in ET.parse(path).getroot().iter("{http://www.w3.org/2000/svg}text")]
    assert any("\\x1b" in t for t in texts)  # the title shows the escape, as text


# ---- clean errors instead of internal ones --------------------------------------------------------


def test_invalid_utf8_in_argv_becomes_the_replacement_character():
    # Issue 13.12: "surrogates not allowed" internal error. argv's bytes reach Python as lone surrogates.
    done = subprocess.run([*ATTN, "inspect", b"the river \xff bank", "-f", "json", "--fields", "sentence,tokens"],
                          capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    import json

    record = json.loads(done.stdout)
    assert record["sentence"] == "the river \ufffd bank" and record["tokens"] == ["the", "river", "bank"]
    assert done.stderr.decode() == "attn: unknown word '\ufffd' (position 2) skipped\n"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--projections", "random", "--seed", "-5"], 2, "-5 is not in the range 0<=x<=9223372036854775807"),
        (["--projections", "random", "--seed", str(2**70)], 2, "is not in the range"),
        (["--focus", "²"], 1, "--focus '²' is not one of the tokens"),
        (["--focus", "bank@²"], 1, "use bank@1 to bank@1"),
        (["--save", "a" * 300 + ".svg"], 2, "cannot be used: File name too long"),
        (["--vectors", "a" * 300 + ".txt"], 1, "cannot be used: File name too long"),
        (["--weights", "a" * 300 + ".npz"], 1, "cannot be used: File name too long"),
    ],
    ids=["negative-seed", "huge-seed", "superscript-focus", "superscript-occurrence", "long-save", "long-vectors", "long-weights"],
)
def test_odd_options_are_clean_errors(args, code, message):
    # Issue 13.13: each was an internal error or a traceback.
    result = run("inspect", "the river bank", *args)
    assert result.exit_code == code
    assert message in result.stderr and "internal error" not in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("command", [["vectors", "info"], ["vectors", "convert", "IN", "out"]])
def test_long_vectors_paths_in_vectors_commands(command, tmp_path):
    args = [a.replace("IN", "a" * 300 + ".txt") for a in command]
    if command[1] == "info":
        args.append("a" * 300 + ".txt")
    result = run(*args)
    assert result.exit_code == 1 and "cannot be used: File name too long" in result.stderr


# ---- time and memory bounded by what a person can read ------------------------------------------------


def test_a_billion_neighbours_are_clamped_to_the_vocabulary_and_a_table_lists_50(glove):
    # Issue 13.6: killed after 300 s (a quadratic set rebuild while rendering).
    record = run("inspect", "river bank", "--neighbors", "1000000000", "-f", "json", "--fields", "neighbors")
    import json

    neighbors = json.loads(record.stdout)["neighbors"]
    assert [len(t["before"]) for t in neighbors] == [len(glove.words) - 1] * 2  # all but the word itself
    table = run("inspect", "river bank", "--neighbors", "1000000000")
    assert table.exit_code == 0
    assert "the first 50 of 49,999 per token: a table shows no more; -f json has all of them" in table.stdout
    moved = table.stdout.split("where the meaning moved")[1]
    row = next(line for line in moved.splitlines() if line.startswith("0 river"))
    assert row.split()[2] == neighbors[0]["before"][0]["word"] + ","  # the nearest first, as in JSON


def test_long_inputs_leave_the_matrix_tables_out_and_say_what_helps(glove):
    # Issue 13.7: 512 tokens took 44 s as a table, 3,000 minutes and 3 GB.
    words = [w for w in glove.words[:3000] if w.isalpha()]
    sentence = " ".join(words[(i * 37) % len(words)] for i in range(200))
    result = run("inspect", sentence)
    assert result.exit_code == 0
    assert "200 tokens: the 200 × 200 score and weight tables are left out past 60 tokens" in result.stdout
    assert "scores (q·k" not in result.stdout and "weights (softmax" not in result.stdout
    assert "head 0 of 1 summary: mean entropy" in result.stdout and "199 " in result.stdout  # every query's row
    short = run("inspect", " ".join(words[:60]))
    assert "left out" not in short.stdout and "weights (softmax" in short.stdout


def test_one_huge_line_is_refused_as_soon_as_it_cannot_fit(tmp_path):
    # Issue 13.4: 100 MB on stdin as one line took 7.4 GB and 27 s before "more than 512 tokens".
    big = b"word " * 2_000_000  # 10 MB; the limit for --max-tokens 512 is 64 KiB
    for fmt in ("json", "jsonl"):
        done = subprocess.run([*ATTN, "inspect", "-", "-f", fmt], input=big, capture_output=True, timeout=60, check=False)
        assert done.returncode == 1 and done.stdout == b""
        assert done.stderr.decode().endswith("the input is longer than 65,536 bytes, more than --max-tokens 512 can take; "
                                             "raise --max-tokens or split it into sentences\n")


def test_a_huge_line_in_a_stream_is_skipped_in_its_place():
    data = b"the river bank\n" + b"," * 300_000 + b"\nthe money bank\n"
    result = run("inspect", "-", "-f", "jsonl", "--fields", "tokens", "--on-error", "skip", input=data)
    import json

    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r.get("tokens") for r in records] == [["the", "river", "bank"], None, ["the", "money", "bank"]]
    assert records[1]["line"] == 2 and records[1]["sentence"] == "," * 200 + "…"
    assert "line 2 skipped: the input is longer than 65,536 bytes" in result.stderr


def test_reading_lines_in_any_chunks_keeps_them_and_bounds_the_long_ones():
    import io

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from attnviz_cli.lines import TooLong, numbered_pieces

    class Chunked(io.RawIOBase):  # hands out the data in the given chunk sizes
        def __init__(self, data: bytes, sizes: list[int]) -> None:
            self.data, self.sizes = data, sizes

        def readable(self) -> bool:
            return True

        def read1(self, n: int = -1) -> bytes:
            size = self.sizes.pop(0) if self.sizes else len(self.data)
            out, self.data = self.data[:size], self.data[size:]
            return out

    @settings(max_examples=150, deadline=None)
    @given(st.lists(st.text("ab, ", max_size=30), max_size=12), st.lists(st.integers(1, 17), max_size=40))
    def check(lines, sizes):
        data = "\n".join(lines).encode()
        got = [entry for piece in numbered_pieces(Chunked(data, sizes), lambda: None, max_line=20) for entry in piece]
        assert [n for n, _ in got] == [n for n, line in enumerate(lines, 1) if line.strip()]  # every line, in order
        for number, text in got:
            raw = lines[number - 1]
            if len(raw.encode()) > 20:  # too long: refused, whatever the chunks
                assert isinstance(text, TooLong)
            else:
                assert text == raw.strip() and not isinstance(text, TooLong)

    check()


def test_large_numbers_are_never_cut_in_tables(tmp_path):
    # Issue 13.17: cells near 1e4 showed "2064…".
    import numpy as np

    from attnviz_cli.render_parts import format_score, format_value

    assert [format_score(s) for s in (1.234, -12.34, 123.4, -9999.4, 20640.0, -20640.0)] == ["1.23", "-12.3", "123", "-9999", "2e+04", "-2e+04"]
    assert [format_value(v) for v in (0.4182, -12.345, 1234.5, -99999.4, 2.5e6)] == ["0.418", "-12.35", "1234", "-99999", "2e+06"]
    weights = tmp_path / "w.npz"
    np.savez(weights, wq=np.eye(50) * 30, wk=np.eye(50) * 30, wv=np.eye(50) * 3000, wo=np.eye(50) * 10)
    result = run("inspect", "the river bank", "--weights", str(weights), "--dims", "4")
    assert result.exit_code == 0
    numbers = [line for line in result.stdout.splitlines() if line[:1].isdigit()]
    assert numbers and not any("…" in line for line in numbers)
    assert "0 the      3141  2323  2301" in result.stdout  # q·k/√50 of 30-fold vectors, whole


# ---- numbers that overflow, data of the wrong type ------------------------------------------------------


def test_weights_that_overflow_are_an_error_not_null(tmp_path):
    # Issue 13.15: exit 0 with null in "output" (which fails the schema), and a RuntimeWarning.
    import numpy as np

    path = tmp_path / "w.npz"
    np.savez(path, wq=np.eye(50), wk=np.eye(50), wv=np.eye(50) * 1e20, wo=np.eye(50) * 1e20)
    for fmt in ("json", "table"):
        result = run("inspect", "the river bank", "--weights", str(path), "-f", fmt)
        assert result.exit_code == 1 and result.stdout == ""
        assert result.stderr.startswith("attn: error: the output overflowed float32") and result.stderr.count("\n") == 1


@pytest.mark.parametrize("blocked", [False, True], ids=["plain", "blocks-on-threads"])
def test_the_core_refuses_an_overflow_on_either_path(blocked, monkeypatch):
    import warnings

    import numpy as np

    from attnviz_cli import engine
    from attnviz_cli.analysis import attention_summary
    from attnviz_cli.core import AttentionInputError, self_attention

    if blocked:
        monkeypatch.setattr(engine, "BLOCK_ELEMENTS", 4)
        monkeypatch.setattr(engine, "THREADED_ELEMENTS", 1)
    x = np.full((6, 4), 1e18, np.float32)  # scores 2e36: finite; values 1e18 x 1e21: not
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning on the way
        with pytest.raises(AttentionInputError, match="overflowed float32"):
            self_attention(x, wv=np.eye(4, dtype=np.float32) * 1e21, threads=2)
        with pytest.raises(AttentionInputError, match="overflowed float32"):
            attention_summary(x, wv=np.eye(4, dtype=np.float32) * 1e21, threads=2)


@pytest.mark.parametrize("dtype", ["bool", "datetime64[s]", "int32"])
def test_a_set_of_non_float_vectors_is_refused(dtype, tmp_path, glove_txt):
    # Issue 13.15: a bool or datetime64 vectors.npy gave true or "1970-01-01..." as inputs.
    import numpy as np

    from attnviz_cli.store import convert

    convert(glove_txt, tmp_path / "set")
    np.save(tmp_path / "set" / "vectors.npy", np.zeros((6, 4), dtype=dtype))
    result = run("inspect", "the river", "--vectors", str(tmp_path / "set"))
    assert result.exit_code == 1 and f"holds {np.dtype(dtype)} values, not floating-point numbers" in result.stderr


# ---- vectors files that lie about themselves --------------------------------------------------------------


def _cut_after_vocabulary_start(source: Path, target: Path) -> None:
    """``source``'s bytes up to inside its last vocabulary word: that word never ends."""
    import struct

    data = source.read_bytes()
    vocab_size = struct.unpack_from("<i", data, 64)[0]
    at = 64 + 12 + 8 + 8  # the counts, ntokens and pruneidx_size of the new format
    for _ in range(vocab_size):
        at = data.index(b"\0", at) + 10
    target.write_bytes(data[: at - 12])


@pytest.mark.parametrize("command", [["inspect", "the river"], ["vectors", "info"], ["vectors", "convert"]])
def test_a_fasttext_word_without_its_end_is_refused_not_spun_on(command, fasttext_bin, tmp_path):
    # Issue 13.2: gensim read b'' at EOF in a loop, at 100% CPU, forever.
    cut = tmp_path / "cut.bin"
    _cut_after_vocabulary_start(fasttext_bin, cut)
    if command[0] == "inspect":
        args = [*command, "--vectors", str(cut)]
    elif command[1] == "info":
        args = [*command, str(cut)]
    else:
        args = [*command, str(cut), str(tmp_path / "out")]
    done = subprocess.run([*ATTN, *args], capture_output=True, timeout=60, check=False)
    assert done.returncode == 1
    assert done.stderr.decode().endswith("is not a whole fastText file: word 7 of 7 has no end (the vocabulary is cut off or damaged)\n")
    assert not (tmp_path / "out").exists()


def test_a_fasttext_matrix_larger_than_the_file_is_refused(fasttext_bin, tmp_path):
    from attnviz_cli.errors import AttnvizError
    from attnviz_cli.vector_files import check_fasttext

    short = tmp_path / "short.bin"
    short.write_bytes(fasttext_bin.read_bytes()[: fasttext_bin.stat().st_size // 2])  # inside the first matrix
    with pytest.raises(AttnvizError, match=r"its vector matrix \(2,007 x 8\) does not fit in the file"):
        check_fasttext(short)
    check_fasttext(fasttext_bin)  # a whole file passes


def test_a_word2vec_header_that_the_rows_contradict_is_refused(tmp_path):
    # Issue 13.16: read silently as binary (a vocabulary of '242973230216'), exit 0.
    path = tmp_path / "lie.txt"
    path.write_text("4 2\nthe 0.1 0.2 0.3 0.4\nriver 0.5 0.6 0.7 0.8\nbank 0.1 0.1 0.1 0.1\nmoney 0.2 0.2 0.2 0.2\n")
    result = run("vectors", "info", str(path))
    assert result.exit_code == 1
    assert "says 2 values a word in its header, but its first row has 4" in result.stderr


# ---- bad data: each one line, exit 1 (issue 13.14) --------------------------------------------------------


def _pickle_file(path: Path) -> Path:
    import pickle

    path.write_bytes(pickle.dumps({"a": 1}))
    return path


@pytest.mark.parametrize(
    ("make", "args", "message"),
    [
        (lambda d: (d / "dup.txt").write_text("the 0.1 0.2\nriver 0.3 0.4\nthe 0.5 0.6\n") and d / "dup.txt",
         [], "lists a word a second time (vector 3); each word must come once"),
        (lambda d: (d / "g.txt").write_text("the 0.1 0.2\nriver 0.3 0.4\n") and d / "g.txt",
         ["--vectors-format", "word2vec"], "has no word2vec header (a word count and a dimension) on its first line"),
        (lambda d: _pickle_file(d / "p.pkl"), ["--vectors-format", "word2vec"], "has no word2vec header"),
    ],
    ids=["duplicate-words", "word2vec-format-on-glove", "word2vec-format-on-a-pickle"],
)
def test_bad_vectors_files(make, args, message, tmp_path):
    path = make(tmp_path)
    result = run("inspect", "the river", "--vectors", str(path), *args)
    assert result.exit_code == 1 and message in result.stderr and "internal error" not in result.stderr


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: f.write_bytes(b""), "cannot be read: No data left in file"),
        (lambda f: f.write_bytes(f.read_bytes()[:90]), "cannot be read: EOF: reading array header"),
    ],
    ids=["empty", "truncated-header"],
)
def test_a_damaged_vectors_npy_is_one_line(damage, message, glove_txt, tmp_path):
    from attnviz_cli.store import convert

    convert(glove_txt, tmp_path / "set")
    damage(tmp_path / "set" / "vectors.npy")
    result = run("inspect", "the river", "--vectors", str(tmp_path / "set"))
    assert result.exit_code == 1 and message in result.stderr


def test_one_damaged_cached_set_does_not_hide_the_others(glove_txt, tmp_path):
    import json

    from attnviz_cli.store import convert

    cache = tmp_path / "cache"
    convert(glove_txt, cache / "good")
    convert(glove_txt, cache / "bad")
    (cache / "bad" / "meta.json").write_text("[1]")
    result = run("vectors", "list", "-f", "json", env={"ATTN_CACHE_DIR": str(cache)})
    assert result.exit_code == 0, result.output
    sets = {s["name"]: s["status"] for s in json.loads(result.stdout)["sets"]}
    assert sets["good"] == "cached" and sets["bad"] == "damaged"
    unreadable = run("vectors", "list", env={"ATTN_CACHE_DIR": str(glove_txt)})  # a file, not a folder
    assert unreadable.exit_code == 0 and "glove-6b-50d-50k" in unreadable.stdout


def _npz_with_raw_members(path: Path, payload: bytes) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        for name in ("wq", "wk", "wv"):
            archive.writestr(f"{name}.npy", payload)
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: _np_savez(d / "w.npz", (50, 0)), "wq has no columns (shape (50, 0)): each head needs at least one"),
        (lambda d: _npz_with_raw_members(d / "w.npz", b"not an array"), "wq is not an .npy array"),
        (lambda d: _npz_with_raw_members(d / "w.npz", _npy_header((10**6, 10**6))), "array wq cannot be read"),
    ],
    ids=["no-columns", "not-npy", "claims-a-huge-shape"],
)
def test_bad_weight_archives(make, message, tmp_path):
    result = run("inspect", "the river", "--weights", str(make(tmp_path)))
    assert result.exit_code == 1 and message in result.stderr and "internal error" not in result.stderr


def _np_savez(path: Path, shape: tuple[int, int]) -> Path:
    import numpy as np

    np.savez(path, wq=np.zeros(shape), wk=np.zeros(shape), wv=np.zeros(shape))
    return path


def _npy_header(shape: tuple[int, int]) -> bytes:
    """An .npy header that declares ``shape`` float64, and no data after it."""
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f8", "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def test_closed_stdin_and_stdout_are_one_line():
    closed_out = subprocess.run(" ".join([*ATTN, "inspect", "river", "-f", "json"]) + " >&-", shell=True,
                                capture_output=False, stderr=subprocess.PIPE, check=False)
    assert closed_out.returncode == 1
    assert closed_out.stderr == b"attn: error: stdout is closed, and attn writes its results there\n"
    closed_in = subprocess.run(" ".join([*ATTN, "inspect", "-", "-f", "jsonl"]) + " <&-", shell=True,
                               capture_output=True, check=False)
    assert closed_in.returncode == 1
    assert closed_in.stderr == b"attn: error: stdin is closed, and SENTENCE - reads the sentences from it\n"


def test_tables_with_an_ascii_only_stdout_encoding():
    done = subprocess.run([*ATTN, "inspect", "river bank"], capture_output=True, check=False,
                          env={**os.environ, "PYTHONIOENCODING": "ascii"})
    assert done.returncode == 0 and done.stderr == b""
    assert "1/√d_k" in done.stdout.decode("utf-8")  # tables are written as UTF-8 bytes whatever the encoding


# ---- memory bounded by file sizes, not by what a file claims (issue 13.5) -----------------------------------


def test_a_gzip_bomb_of_one_row_is_refused_as_it_is_read(tmp_path):
    import gzip

    bomb = tmp_path / "bomb.txt.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as out:
        out.write(b"the")
        for _ in range(40):  # 40 MB of " 0" in one row, a few dozen KB on disk
            out.write(b" 0" * 500_000)
    done = subprocess.run([*ATTN, "inspect", "the", "--vectors", str(bomb)], capture_output=True, timeout=60, check=False)
    assert done.returncode == 1
    assert done.stderr.decode().endswith(f"line 1 is longer than {1 << 20:,} bytes\n")


def test_a_gzip_bomb_of_many_rows_is_refused_by_its_growth(tmp_path):
    import gzip

    bomb = tmp_path / "rows.txt.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as out:
        out.write(b"".join(b"w%d 0 0 0\n" % i for i in range(10)))
        out.write(b"zz 0 0 0\n" * 3_000_000)  # 27 MB of one row again and again
    result = run("inspect", "w1 w2", "--vectors", str(bomb))
    assert result.exit_code == 1 and "expands to more than 20 times its size on disk" in result.stderr


def test_devices_are_not_read_as_vectors(tmp_path, glove_txt):
    from attnviz_cli.store import convert

    zero = Path("/dev/zero")
    if not zero.exists():
        pytest.skip("no /dev/zero")
    result = run("inspect", "the", "--vectors", str(zero), "--vectors-format", "glove")
    assert result.exit_code == 1 and "is not a regular file" in result.stderr
    convert(glove_txt, tmp_path / "set")
    (tmp_path / "set" / "vocab.txt").unlink()
    (tmp_path / "set" / "vocab.txt").symlink_to(zero)
    linked = run("inspect", "the", "--vectors", str(tmp_path / "set"))
    assert linked.exit_code == 1 and "vocab.txt is not a regular file" in linked.stderr


def test_a_word2vec_binary_header_larger_than_its_file_is_refused(tmp_path):
    lie = tmp_path / "lie.bin"
    lie.write_bytes(b"1000000000 300\n" + b"the " + b"\x00" * 1200 + b"\n")
    result = run("inspect", "the", "--vectors", str(lie))
    assert result.exit_code == 1
    assert "claims 1,000,000,000 vectors of 300 values, more than its 1,220 bytes can hold" in result.stderr


def test_an_npz_bomb_is_refused_before_it_is_unpacked(tmp_path):
    import zipfile

    bomb = tmp_path / "bomb.npz"
    payload = _npy_header((50, 100_000)) + bytes(8 * 50 * 100_000)  # 40 MB of zeros: a few KB compressed
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in ("wq", "wk", "wv"):
            archive.writestr(f"{name}.npy", payload)
    assert bomb.stat().st_size < 500_000
    result = run("inspect", "the", "--weights", str(bomb))
    assert result.exit_code == 1 and "wq.npy unpacks to 40,000,128 bytes, more than projections for d_model 50" in result.stderr


# ---- interrupted and concurrent converts (issue 13.3) ------------------------------------------------------


def _dead_pid() -> int:
    """The PID of a process that has ended."""
    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


def test_a_staging_folder_left_by_a_killed_convert_is_never_listed_nor_loaded_and_is_cleaned(glove_txt, tmp_path):
    import json
    import shutil

    from attnviz_cli.store import convert

    cache = tmp_path / "cache"
    convert(glove_txt, cache / "whole")
    staging = cache / f".out.partial-{_dead_pid()}"
    shutil.copytree(cache / "whole", staging)  # killed after its meta.json was written
    listed = json.loads(run("vectors", "list", "-f", "json", env={"ATTN_CACHE_DIR": str(cache)}).stdout)
    assert [s["name"] for s in listed["sets"] if s["status"] == "cached"] == ["whole"]
    assert run("inspect", "the river", "--vectors", str(staging)).exit_code == 1
    convert(glove_txt, cache / "out")  # the next write into that name tidies up after the dead one
    assert not staging.exists() and (cache / "out" / "meta.json").is_file()


def test_a_replace_killed_between_its_renames_keeps_the_old_set(glove_txt, tmp_path):
    import shutil

    from attnviz_cli.store import convert

    convert(glove_txt, tmp_path / "made")
    old = tmp_path / f".out.old-{_dead_pid()}"
    shutil.move(tmp_path / "made", old)  # the old set moved aside; the new one never arrived
    result = run("inspect", "the river", "--vectors", str(tmp_path / "out"), "-f", "json", "--fields", "tokens")
    assert result.exit_code == 0, result.output  # put back, and loaded
    assert (tmp_path / "out" / "meta.json").is_file() and not old.exists()


def test_a_second_writer_is_refused_while_the_first_runs(glove_txt, tmp_path):
    from attnviz_cli.errors import AttnvizError
    from attnviz_cli.store import convert

    (tmp_path / ".out.lock").write_text(str(os.getpid()))  # a writer that is alive: this test
    with pytest.raises(AttnvizError, match=r"another attn \(pid \d+\) is writing '.*out'; wait for it"):
        convert(glove_txt, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    (tmp_path / ".out.lock").write_text(str(_dead_pid()))  # its writer is gone: taken over
    convert(glove_txt, tmp_path / "out")
    assert (tmp_path / "out" / "meta.json").is_file() and not (tmp_path / ".out.lock").exists()


def test_a_set_that_appears_during_a_write_is_not_replaced_without_force(glove_txt, tmp_path, monkeypatch):
    from attnviz_cli import store
    from attnviz_cli.errors import AttnvizError

    real, raced = store._swap_in, []

    def racing(staging, folder, replace):
        if not raced:  # once: another convert finishes first, then this one reaches its rename
            raced.append(True)
            store.convert(glove_txt, folder)
        real(staging, folder, replace)

    monkeypatch.setattr(store, "_swap_in", racing)
    monkeypatch.setattr(store, "_writing_lock", lambda folder: __import__("contextlib").nullcontext())
    with pytest.raises(AttnvizError, match="appeared while it was being written; pass --force to replace it"):
        store.convert(glove_txt, tmp_path / "out")
    assert (tmp_path / "out" / "meta.json").is_file()  # the first writer's set stands
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging left


def test_a_page_too_large_to_open_is_refused_and_says_what_helps(glove, tmp_path):
    # Issue 13.7: --save HTML of 512 tokens x 50 heads wrote 320 MB.
    words = [w for w in glove.words[:3000] if w.isalpha()]
    sentence = " ".join(words[(i * 37) % len(words)] for i in range(300))
    page = tmp_path / "p.html"
    result = run("inspect", sentence, "--heads", "25", "--save", str(page), "-f", "json", "--fields", "tokens")
    assert result.exit_code == 1 and not page.exists()
    assert "a page of 25 heads x 300 x 300 weights (2,250,000 cells) would be too large to open" in result.stderr
    assert run("inspect", sentence, "--heads", "2", "--save", str(page), "-f", "json", "--fields", "tokens").exit_code == 0


def test_a_tokenizer_that_panics_is_one_escaped_line_not_a_traceback(tmp_path):
    """The tokenizers library panics (pyo3's PanicException, a BaseException) on a template that names
    a special token the tokenizer lacks: one line, exit 1, for inspect and heads alike."""
    import json
    import shutil

    folder = shutil.copytree(Path(__file__).resolve().parent / "models" / "tiny-bert", tmp_path / "m")
    tokenizer = json.loads((folder / "tokenizer.json").read_text())
    tokenizer["post_processor"]["single"][0] = {"SpecialToken": {"id": "[NO\x1b[2JPE]", "type_id": 0}}
    (folder / "tokenizer.json").write_text(json.dumps(tokenizer))
    for args in (("inspect", "the bank", "--model", str(folder)), ("heads", "-", "--model", str(folder))):
        result = run(*args, input="the bank\n")
        assert result.exit_code == 1, result.output
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("attn: error: ") and "Traceback" not in result.output
        assert "\x1b" not in result.stderr


def test_every_message_is_printed_escaped_whatever_put_it_there(capsys):
    from attnviz_cli.cli.output import say

    say("a library said \x1b]0;PWN\x07 and\nmore")
    assert capsys.readouterr().err == "attn: a library said \\x1b]0;PWN\\x07 and\\x0amore\n"


def test_heads_reads_a_fifo_as_a_stream_without_counting_it_first(tmp_path):
    """Only a regular file is counted for the progress bar (a device or a FIFO would never end)."""
    import json
    import os
    import threading

    fifo = tmp_path / "texts"
    os.mkfifo(fifo)

    def writer() -> None:
        with open(fifo, "w") as stream:
            stream.write("the river bank\nthe bank raised rates\n")

    thread = threading.Thread(target=writer)
    thread.start()
    result = run("heads", str(fifo), "--model", str(Path(__file__).resolve().parent / "models" / "tiny-bert"), "-f", "json")
    thread.join()
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["texts"] == 2


def test_a_models_layer_tables_leave_out_the_matrices_of_a_long_text_as_static_ones_do():
    """--model M --layer L past 60 tokens: each query's entropy and top keys, not T x T tables."""
    text = " ".join(["the river bank flows by the water"] * 20)  # 141 tokens with BOS in tiny-llama
    result = run("inspect", text, "--model", str(Path(__file__).resolve().parent / "models" / "tiny-llama"), "--layer", "1", "--head", "2",
                 env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert any(line.startswith("141 tokens: the 141 × 141 score and weight tables are left out past 60 tokens") for line in lines)
    assert "head 2 of 4 summary: mean entropy" in result.stdout and "scores (q·k/√d_k)" not in result.stdout
    assert len(lines) < 141 + 60  # the header and a line a query, not runs of 141 columns (5,000 lines)


def test_names_from_stores_and_gguf_files_are_never_read_as_rich_markup(tmp_path, monkeypatch):
    """A model list cell like "[link=...]" stays those characters (Rich would write a terminal hyperlink),
    and "[/]" does not stop the listing."""
    from attnviz_cli.render_vectors import titled_table

    from .test_names import rendered

    table = titled_table("models", ("model", "left"), ("status", "left"))
    table.add_row("[link=https://evil.example]click[/link]", "[/]")
    shown = rendered(table, 80)
    assert "[link=https://evil.example]click[/link]" in shown and "[/]" in shown and "\x1b]8" not in shown


def test_a_store_file_of_deeply_nested_json_is_a_status_not_a_traceback(tmp_path, monkeypatch):
    from attnviz_cli.models.stores import gguf_models

    store = tmp_path / "ollama"
    manifest = store / "manifests" / "registry.ollama.ai" / "library" / "deep" / "latest"
    manifest.parent.mkdir(parents=True)
    manifest.write_text("[" * 200_000)
    (store / "blobs").mkdir()
    monkeypatch.setenv("OLLAMA_MODELS", str(store))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (found,) = gguf_models()
    assert found.name == "ollama:deep:latest" and "not a manifest" in found.status
