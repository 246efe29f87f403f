"""Pipelines and CI demos: Markdown, CSV, --fields, --on-error, attn schema, determinism, progress."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from attnviz_cli.pipeline import inspect_sentence
from attnviz_cli.projections import identity
from attnviz_cli.render_markdown import inspection_markdown, md_escape
from attnviz_cli.results import InspectOptions

from .conftest import run, run_with_terminal_stderr
from .test_batch import lines


def attn(*args, stdin: bytes | None = None) -> bytes:
    done = subprocess.run([sys.executable, "-m", "attnviz_cli", *args], input=stdin, capture_output=True, check=True)
    return done.stdout


# ---- Markdown ----------------------------------------------------------------------------------------

GOLDEN_MARKDOWN = """\
### River bank!

Vectors tiny (2d, 4 words) · 1 head · d_k 2 · unscaled · causal · identity projections

Dropped (not in the vocabulary): ! at 2

#### Head 0 of 1: scores (q·k)

| query \\\\ key | river | bank |
| --- | ---: | ---: |
| 0 river | 1.00 | · |
| 1 bank | 1.00 | 2.00 |

#### Head 0 of 1: weights (softmax; strongest in bold)

| query \\\\ key | river | bank | strongest (entropy) |
| --- | ---: | ---: | --- |
| 0 river | **1.00** | · | river (0.00 bits) |
| 1 bank | 0.27 | **0.73** | bank (0.84 bits) |

#### Contextualized vectors (2 of 2 components)

| token | [0] | [1] | norm |
| --- | ---: | ---: | ---: |
| 0 river | 1.000 | 0.000 | 1.000 |
| 1 bank | 1.000 | 0.731 | 1.239 |

"""


def test_golden_markdown_of_the_hand_computed_case(tiny):
    inspection = inspect_sentence("River bank!", tiny, identity(), InspectOptions(scale=False, causal=True))
    assert inspection_markdown(inspection) == GOLDEN_MARKDOWN


def test_markdown_escapes_what_could_become_markup():
    assert md_escape("a|b *c* _d_ `e` [f](g) <h> &amp; \x1b") == "a\\|b \\*c\\* \\_d\\_ \\`e\\` \\[f\\](g) \\<h\\> &amp;amp; \\\\x1b"


def test_markdown_tables_have_one_cell_per_token():
    result = run("inspect", "the bank | the * river", "-f", "markdown", "--heads", "2")
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ") and "---" not in line]
    tokens = 6  # the bank | the * river
    score_rows = [r for r in rows if r.count(" | ") == tokens]  # label + 6 cells -> 6 separators
    assert len(score_rows) >= 2 * (tokens + 1)
    assert all(r.count("\\|") <= 2 for r in rows)  # the | token is escaped, never a cell boundary


# ---- CSV ---------------------------------------------------------------------------------------------


def test_csv_is_long_form_with_exact_numbers(glove):
    result = run("inspect", "-", "-f", "csv", "--causal", "--heads", "2", input="the river, bank\nmoney bank\n")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == ["line", "sentence", "head", "query", "query_token", "key", "key_token", "score", "weight"]
    assert len(rows) == 2 * 4 * 4 + 2 * 2 * 2  # heads x T x T per sentence
    assert rows[0]["sentence"] == "the river, bank" and any(r["key_token"] == "," for r in rows)
    record = json.loads(run("inspect", "the river, bank", "-f", "json", "--causal", "--heads", "2").stdout)
    for row in rows[:32]:
        h, i, j = int(row["head"]), int(row["query"]), int(row["key"])
        expected_score = record["heads"][h]["scores"][i][j]
        assert (row["score"] == "") == (expected_score is None)
        if expected_score is not None:
            assert float(row["score"]) == expected_score  # the very same number, not rounded
        assert float(row["weight"]) == record["heads"][h]["weights"][i][j]
    assert {r["line"] for r in rows} == {"1", "2"}


def test_csv_of_a_sentence_argument_has_its_header():
    lines_ = run("inspect", "river bank", "-f", "csv").stdout.splitlines()
    assert lines_[0].startswith("line,sentence,head") and len(lines_) == 1 + 4


# ---- --fields and --on-error --------------------------------------------------------------------------


def test_fields_keep_records_small():
    full = json.loads(run("inspect", "river bank", "-f", "jsonl").stdout)
    small = json.loads(run("inspect", "river bank", "-f", "jsonl", "--fields", "tokens,weights").stdout)
    assert small == {"schema": "attnviz.inspect/1", "tokens": full["tokens"], "heads": [{"head": 0, "weights": full["heads"][0]["weights"]}]}
    outputs = json.loads(run("inspect", "river bank", "-f", "json", "--fields", "heads.output,output").stdout)
    assert outputs["heads"] == [{"head": 0, "output": full["heads"][0]["output"]}] and outputs["output"] == full["output"]


def valid_fields(*args: str) -> list[str]:
    """Every name --fields takes for ``attn ARGS``, as its usage error lists them ("...; choose from a, b")."""
    refused = run(*args, "--fields", "bogus")
    assert refused.exit_code == 2, refused.output
    listing = " ".join(refused.stderr.split()).rpartition("; ")[2].split(", ")
    return [listing[0].split()[-1], *listing[1:]]  # the first name after the words that introduce them


def assert_shared_values_agree(part, whole, where: str = "record") -> None:
    """Every key of ``part`` is in ``whole`` with the very same value: numbers as the text JSON wrote
    (float32's shortest round-trip form), so equal means the same bits."""
    if isinstance(part, dict):
        assert isinstance(whole, dict), where
        for key, value in part.items():
            assert key in whole, f"{where}.{key} is not in the full record"
            assert_shared_values_agree(value, whole[key], f"{where}.{key}")
    elif isinstance(part, list):
        assert isinstance(whole, list) and len(part) == len(whole), where
        for i, (a, b) in enumerate(zip(part, whole, strict=True)):
            assert_shared_values_agree(a, b, f"{where}[{i}]")
    else:
        assert part == whole, f"{where}: {part!r} with --fields, {whole!r} without"


def long_paragraph(glove, tokens: int) -> str:
    words = [w for w in glove.words[:3000] if w.isalpha()]
    return " ".join(words[(i * 7919) % len(words)] for i in range(tokens))


def assert_every_fields_subset_agrees_with_the_full_record(args: tuple[str, ...], combinations: list[str]) -> int:
    """``attn ARGS`` with each valid field alone and with each of ``combinations``: the values each
    keeps are those of the record with every field, bit for bit, and so are the default record's (which
    leaves out the opt-in heads.queries, heads.keys, heads.values). Returns how many subsets were checked."""
    every = run(*args, "--fields", ",".join(valid_fields(*args)))
    assert every.exit_code == 0, every.output
    whole = json.loads(every.stdout, parse_float=str)
    full = run(*args)
    assert full.exit_code == 0, full.output
    assert_shared_values_agree(json.loads(full.stdout, parse_float=str), whole, "the default record")
    subsets = [*valid_fields(*args), *combinations]
    for fields in subsets:
        kept = run(*args, "--fields", fields)
        assert kept.exit_code == 0, kept.output
        part = json.loads(kept.stdout, parse_float=str)
        assert part["schema"] == whole["schema"]
        assert_shared_values_agree(part, whole, f"--fields {fields}")
    return len(subsets)


FIELD_COMBINATIONS = ["tokens,weights", "heads.output,output", "summary,output", "scores,summary,heads.output", "inputs,output,config"]


@pytest.mark.parametrize(
    "options",
    [
        ("--neighbors", "3", "--focus", "bank"),  # focus and neighbours are in the record too
        ("--heads", "5", "--causal", "--projections", "random", "--seed", "3"),
        ("--heads", "10", "--positions", "sinusoidal"),
    ],
    ids=["one-head-focus-neighbors", "five-causal-heads", "ten-heads-positions"],
)
def test_fields_only_drop_keys_never_change_a_number(options):
    # Issue 26: --fields sent a run down another code path (row blocks) whose last bits differed.
    args = ("inspect", "I sat on the river bank", "-f", "json", *options)
    assert assert_every_fields_subset_agrees_with_the_full_record(args, FIELD_COMBINATIONS) >= 17


@pytest.mark.slow
def test_fields_only_drop_keys_on_the_blocked_path_too(glove):
    # 520 tokens, 2 causal heads of random projections: 2 x 520 x 520 scores, past one block, so attention
    # runs in row blocks on threads, with the matrices kept or, when no field needs them, dropped block by block.
    from attnviz_cli import analysis, engine

    assert engine.BLOCK_ELEMENTS < 2 * 520 * 520
    args = ("inspect", long_paragraph(glove, 520), "-f", "json", "--max-tokens", "1000", "--heads", "2", "--causal", "--projections", "random")
    assert assert_every_fields_subset_agrees_with_the_full_record(args, FIELD_COMBINATIONS[1:3]) >= 19
    kept = []
    spy = analysis.attention_summary
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("attnviz_cli.pipeline.attention_summary", lambda *a, **k: kept.append(k["keep_matrices"]) or spy(*a, **k))
        run(*args, "--fields", "tokens,summary,output")
        run(*args, "--fields", "tokens,summary,output,weights")
    assert kept == [False, True]  # no 2 x 520 x 520 matrix is kept unless a field shows it


@pytest.mark.parametrize("model", ["tiny-bert", "tiny-distilbert", "tiny-roberta", "tiny-gpt2"])
def test_fields_only_drop_keys_of_a_model_record(model):
    base = ("inspect", "the river bank flows", "--model", str(Path(__file__).parent / "models" / model), "-f", "json")
    combinations = ["tokens,heads.weights", "layers.output,layers.rollout", "heads.scores,heads.patterns,embeddings"]
    for options in [(), ("--rollout", "--focus", "bank"), ("--layer", "1", "--head", "2")]:
        assert assert_every_fields_subset_agrees_with_the_full_record((*base, *options), combinations) >= 18


@pytest.mark.parametrize(
    ("args", "message"),
    [(["-f", "json", "--fields", "tokens,bogus"], "unknown field 'bogus'"), (["--fields", "tokens"], "--fields applies to --format json and jsonl")],
)
def test_bad_fields_are_usage_errors(args, message):
    result = run("inspect", "river bank", *args)
    assert result.exit_code == 2 and message in result.stderr


def test_on_error_skip_writes_an_error_record_and_goes_on():
    result = run("inspect", "-", "-f", "jsonl", "--on-error", "skip", input="river bank\nqqzzx\n\nmoney bank\n")
    assert result.exit_code == 0
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["schema"] for r in records] == ["attnviz.inspect/1", "attnviz.error/1", "attnviz.inspect/1"]
    error_schema = json.loads((resources.files("attnviz_cli") / "schemas" / "error-1.schema.json").read_text())
    jsonschema.validate(records[1], error_schema)
    assert records[1] == {"schema": "attnviz.error/1", "line": 2, "sentence": "qqzzx",
                          "error": "the sentence 'qqzzx' has no word that is in the vectors 'glove-6b-50d-50k'"}
    assert "line 2 skipped" in result.stderr


def test_on_error_skip_in_csv_reports_on_stderr_only():
    result = run("inspect", "-", "-f", "csv", "--on-error", "skip", input="river bank\nqqzzx\n")
    assert result.exit_code == 0 and "qqzzx" not in result.stdout and "line 2 skipped" in result.stderr


# ---- attn schema ---------------------------------------------------------------------------------------


def test_schema_prints_every_schema_and_each_is_valid():
    every = json.loads(run("schema").stdout)
    assert sorted(every) == ["attnviz.compare/1", "attnviz.error/1", "attnviz.generate/1", "attnviz.heads/1", "attnviz.inspect/1", "attnviz.model-compare/1", "attnviz.model/1", "attnviz.models/1", "attnviz.vectors/1"]
    for schema in every.values():
        jsonschema.Draft202012Validator.check_schema(schema)
    assert json.loads(run("schema", "inspect").stdout) == every["attnviz.inspect/1"]
    assert run("schema", "nope").exit_code == 2


# ---- determinism ---------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["table", "json", "jsonl", "markdown", "csv"])
def test_every_format_is_byte_for_byte_deterministic(fmt):
    args = ["inspect", "The bank raised rates after the river flooded", "-f", fmt, "--projections", "random", "--seed", "7", "--heads", "2"]
    first, again = attn(*args), attn(*args)
    assert first == again and len(first) > 200


@pytest.mark.slow
@pytest.mark.parametrize("heads", [1, 2], ids=["plain", "in-row-blocks"])
def test_blas_thread_count_changes_no_byte(glove, heads):
    # OpenBLAS cuts a (520, 520) @ (520, d) product's sums by its thread count: attention holds it to one.
    args = ["inspect", long_paragraph(glove, 520), "-f", "json", "--max-tokens", "1000", "--projections", "random", "--heads", str(heads), "--fields", "output,summary"]
    outputs = {n: subprocess.run([sys.executable, "-m", "attnviz_cli", *args], capture_output=True, check=True, env={**os.environ, "OPENBLAS_NUM_THREADS": n}).stdout for n in ("1", "3")}
    assert outputs["1"] == outputs["3"] and len(outputs["1"]) > 500_000


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["jsonl", "csv", "markdown"])
def test_streams_are_deterministic_and_equal_serial_output(fmt, tmp_path):
    data = lines(1500)  # bulk: worker processes write in turn
    args = ["inspect", "-", "-f", fmt, "--projections", "random", "--seed", "3"]
    first, again = attn(*args, stdin=data), attn(*args, stdin=data)
    assert first == again
    serial = b"".join(attn("inspect", sentence, "-f", fmt, "--projections", "random", "--seed", "3") for sentence in data.decode().splitlines()[:3])
    if fmt == "csv":  # each single run has its header and calls its sentence line 1
        header = serial.split(b"\n", 1)[0] + b"\n"
        assert first.startswith(header)
    else:
        assert first.startswith(serial)


# ---- progress ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_progress_shows_on_a_terminal_stderr_only(tmp_path):
    source = tmp_path / "in.txt"
    source.write_bytes(lines(2000))
    with source.open("rb") as stdin, (tmp_path / "out.jsonl").open("wb") as stdout:
        argv = [sys.executable, "-m", "attnviz_cli", "inspect", "-", "-f", "jsonl"]
        code, seen = run_with_terminal_stderr(argv, stdin=stdin, stdout=stdout)
    assert code == 0
    assert b"sentences" in seen  # the progress line, on the terminal
    assert (tmp_path / "out.jsonl").read_bytes().count(b"\n") == 2000  # and nothing of it in the data
    quiet = subprocess.run([sys.executable, "-m", "attnviz_cli", "inspect", "-", "-f", "jsonl"], input=lines(10), capture_output=True, check=False)
    assert quiet.stderr == b""  # stderr a pipe: no progress
