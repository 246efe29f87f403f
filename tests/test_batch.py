"""The JSON Lines stream: order, line numbers, errors, and the parallel path against the serial one."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest

from attnviz_cli.batch import BULK_LINES, Job, stream_records
from attnviz_cli.errors import AttnvizError
from attnviz_cli.lines import numbered_pieces
from attnviz_cli.projections import identity, random_xavier
from attnviz_cli.results import InspectOptions

from .conftest import readline_within

WORDS = ["the", "river", "bank", "money", "flows", "into", "a", "city", "by", "water"]


def job(embeddings, projections=None):
    return Job(embeddings, projections or identity(), InspectOptions(heads=2, max_tokens=64))


def lines(count: int) -> bytes:
    return "".join(" ".join(WORDS[(i + k) % len(WORDS)] for k in range(1 + i % 9)) + "\n" for i in range(count)).encode()


def run(embeddings, data: bytes, workers: int, projections=None) -> tuple[bytes, list[str]]:
    sink, notes = io.BytesIO(), []
    stream_records(job(embeddings, projections), io.BufferedReader(io.BytesIO(data)), sink, notes.append, workers=workers)
    return sink.getvalue(), notes


def test_pieces_number_lines_and_skip_blank_ones():
    pieces = list(numbered_pieces(io.BufferedReader(io.BytesIO(b"a b\n\n  \nc\nlast")), lambda: None))
    assert [line for piece in pieces for line in piece] == [(1, "a b"), (4, "c"), (5, "last")]


@pytest.mark.parametrize("count", [1, BULK_LINES - 1, 3 * BULK_LINES + 17])
def test_parallel_output_is_byte_identical_to_serial_and_in_order(glove, count):
    data = lines(count)
    serial, _ = run(glove, data, workers=1, projections=random_xavier(50, 5))
    parallel, _ = run(glove, data, workers=2, projections=random_xavier(50, 5))
    assert parallel == serial
    sentences = [json.loads(line)["sentence"] for line in parallel.splitlines()]
    assert sentences == data.decode().splitlines()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_bad_line_stops_the_stream_after_every_earlier_record(glove, workers):
    good = lines(2 * BULK_LINES)
    data = good + b"qqqzx zzqqx\n" + lines(50)
    sink, notes = io.BytesIO(), []
    with pytest.raises(AttnvizError, match=rf"^line {2 * BULK_LINES + 1}: the sentence 'qqqzx zzqqx' has no word"):
        stream_records(job(glove), io.BufferedReader(io.BytesIO(data)), sink, notes.append, workers=workers)
    assert sink.getvalue().count(b"\n") == 2 * BULK_LINES
    assert sink.getvalue() == run(glove, good, workers=1)[0]


def test_notes_carry_line_numbers(glove):
    _, notes = run(glove, b"the river\nthe qqzx bank\n", workers=1)
    assert notes == ["line 2: unknown word 'qqzx' (position 1) skipped"]


def test_a_slow_producer_gets_each_record_as_its_line_arrives():
    attn = subprocess.Popen(
        [sys.executable, "-m", "attnviz_cli", "inspect", "-", "-f", "jsonl"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        for sentence in ("the river bank", "the money bank"):
            attn.stdin.write(sentence.encode() + b"\n")
            attn.stdin.flush()
            record = json.loads(readline_within(attn.stdout))  # arrives while stdin is still open
            assert record["sentence"] == sentence
    finally:
        attn.stdin.close()
        attn.wait(timeout=30)
    assert attn.returncode == 0


@pytest.mark.slow
def test_bulk_stdin_through_the_cli_uses_workers_and_keeps_order(tmp_path):
    data = lines(5 * BULK_LINES)
    source = tmp_path / "in.txt"
    source.write_bytes(data)
    with source.open("rb") as stdin:
        done = subprocess.run(
            [sys.executable, "-m", "attnviz_cli", "inspect", "-", "-f", "jsonl"],
            stdin=stdin, capture_output=True, check=True, env=os.environ | {"PYTHONWARNINGS": "error"},
        )
    assert [json.loads(line)["sentence"] for line in done.stdout.splitlines()] == data.decode().splitlines()
    assert done.stderr == b""


@pytest.mark.parametrize("count", [BULK_LINES + 1, 7 * BULK_LINES + 3])
def test_workers_writing_to_a_real_file_keep_order_byte_for_byte(glove, tmp_path, count):
    data = lines(count)
    serial, _ = run(glove, data, workers=1)
    with (tmp_path / "out.jsonl").open("wb") as sink:  # has a file descriptor: workers write in turn
        stream_records(job(glove), io.BufferedReader(io.BytesIO(data)), sink, lambda note: None, workers=2)
    assert (tmp_path / "out.jsonl").read_bytes() == serial


def test_workers_writing_to_a_file_stop_after_the_records_before_a_bad_line(glove, tmp_path):
    good = lines(3 * BULK_LINES + 5)
    data = lines(BULK_LINES - 10) + good + b"qqqzx\n" + lines(4 * BULK_LINES)
    expected, _ = run(glove, lines(BULK_LINES - 10) + good, workers=1)
    failing_line = BULK_LINES - 10 + 3 * BULK_LINES + 5 + 1
    with (tmp_path / "out.jsonl").open("wb") as sink, pytest.raises(AttnvizError, match=rf"^line {failing_line}: "):
        stream_records(job(glove), io.BufferedReader(io.BytesIO(data)), sink, lambda note: None, workers=2)
    assert (tmp_path / "out.jsonl").read_bytes() == expected


@pytest.mark.parametrize("causal", [False, True])
def test_a_record_is_the_same_byte_for_byte_alone_or_in_a_batch(glove, causal):
    from attnviz_cli.pipeline import inspect_sentence, inspect_sentences
    from attnviz_cli.render_json import dumps, inspection_record

    options = InspectOptions(heads=2, causal=causal)
    sentences = lines(300).decode().splitlines()
    together = inspect_sentences(sentences, glove, random_xavier(50, 2), options)
    for sentence, batched in zip(sentences[::37], together[::37], strict=True):
        alone = inspect_sentence(sentence, glove, random_xavier(50, 2), options)
        assert dumps(inspection_record(batched)) == dumps(inspection_record(alone))


def test_write_all_survives_short_writes(tmp_path, monkeypatch):
    # The kernel may take part of a writev: the rest, from the middle of a piece, must follow in order.
    from attnviz_cli import batch

    real_writev = os.writev
    monkeypatch.setattr(batch.os, "writev", lambda fd, buffers: real_writev(fd, [bytes(buffers[0])[:7]]))
    pieces = tuple(f"record {i} ".encode() * (i % 4) for i in range(40))  # some empty
    with open(tmp_path / "out", "wb") as handle:
        batch._write_all(handle.fileno(), pieces)
    assert (tmp_path / "out").read_bytes() == b"".join(pieces)


@pytest.mark.parametrize("workers", [1, 2])
def test_skipped_lines_and_notes_keep_input_order_across_lengths(glove, workers):
    # Sentences of each length are run as one batch, so records are made out of order: the stream
    # must still write them, the error records of skipped lines and the notes in input order.
    from attnviz_cli.batch import OutputOptions

    good = lines(2 * BULK_LINES).decode().splitlines()
    data = [*good[:100], "qqqzx zzqqx", "the qqzx bank", *good[100:], "river"]
    sink, notes = io.BytesIO(), []
    skipping = Job(glove, identity(), InspectOptions(heads=2, max_tokens=64), OutputOptions(on_error="skip"))
    source = io.BufferedReader(io.BytesIO(("\n".join(data) + "\n").encode()))
    stream_records(skipping, source, sink, notes.append, workers=workers)
    records = [json.loads(line) for line in sink.getvalue().splitlines()]
    assert [r.get("sentence") for r in records] == data
    assert records[100]["schema"] == "attnviz.error/1" and records[100]["line"] == 101
    assert records[101]["tokens"] == ["the", "bank"]
    assert notes == [
        "line 101 skipped: the sentence 'qqqzx zzqqx' has no word that is in the vectors 'glove-6b-50d-50k'",
        "line 102: unknown word 'qqzx' (position 1) skipped",
    ]
