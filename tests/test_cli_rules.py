"""What a combination of options forbids: every rule of the one table (cli/options.py RULES) gives its
one-line usage error and exit 2, before anything is loaded, and what the table allows still runs."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from attnviz_cli.cli.options import RULES, STATIC_ONLY

from .conftest import run

MODEL = str(Path(__file__).resolve().parent / "models" / "tiny-bert")
STATIC_MESSAGE = "is for static vectors; a model has its own heads, projections and positions (--save, Markdown and CSV take a --layer)"
STATIC_ARGS = {  # a value other than the default for each option only static vectors take
    "vectors": ["--vectors", "x.txt"], "vectors_format": ["--vectors-format", "glove"], "trust_pickle": ["--trust-pickle"], "weights": ["--weights", "w.npz"], "projections": ["--projections", "random"],
    "neighbors": ["--neighbors", "3"], "positions": ["--positions", "sinusoidal"], "heads": ["--heads", "2"],
    "causal": ["--causal"], "no_scale": ["--no-scale"], "seed": ["--seed", "3"], "oov": ["--oov", "zero"],
}

HIDE_SPECIAL_IN_DATA = "--hide-special is for tables, Markdown, figures and pages; --format {} is data and keeps every token (JSON's 'special' list marks them)"
INSPECT = [  # (arguments after "inspect", the option the error names, its message), in RULES["inspect"]'s order
    (["x", "--rollout"], "--rollout", "--rollout follows attention through a model's layers: it needs --model"),
    (["x", "--layer", "1"], "--layer", "--layer chooses among a model's heads: it needs --model"),
    (["x", "--head", "1"], "--head", "--head chooses among a model's heads: it needs --model"),
    (["x", "--dtype", "float64"], "--dtype", "--dtype chooses the precision a model runs in: it needs --model"),
    (["x", "--revision", "v1.0"], "--revision", "--revision chooses the version of a model's Hub id: it needs --model"),
    (["x", "--truncate"], "--truncate", "--truncate cuts a text to a model's positions: it needs --model"),
    (["x", "--hide-special"], "--hide-special", "--hide-special leaves out a model's special tokens (static vectors have none): it needs --model"),
    (["x", "--weighting", "norm"], "--weighting", "--weighting norm weighs each weight by the vector a model's head moves (v W_O): it needs --model"),
    (["x", "--model", "M", "--layer", "all", "--head", "1"], "--head", "--head needs one --layer L, not all"),
    (["x", "--model", "M", "--head", "1"], "--head", "--head needs --layer: which layer's head"),
    (["x", "--model", "M", "-f", "markdown", "--layer", "all"], "--layer", "--format markdown with --model shows one layer's heads: say which with --layer L (every layer is for csv and json)"),
    (["x", "--model", "M", "-f", "csv"], "--layer", "--format csv with --model writes one layer's heads or every layer's: say which with --layer L or --layer all"),
    (["x", "--model", "M", "-f", "csv", "--layer", "0", "--focus", "x"], "--focus", "--focus with --model writes table or json, not --format csv"),
    (["x", "--model", "M", "-f", "markdown", "--layer", "0", "--rollout"], "--rollout", "--rollout with --model writes table or json, not --format markdown"),
    (["x", "--model", "M", "--save", "a.png"], "--layer", "--save .png with --model draws a layer's heads (--layer L) or every head (--layer all)"),
    (["-", "--model", "M", "-f", "csv", "--layer", "0"], "SENTENCE", "SENTENCE - with --model streams as jsonl only"),
    (["x", "--model", "M", "-f", "json", "--hide-special"], "--hide-special", HIDE_SPECIAL_IN_DATA.format("json")),
    (["x", "--model", "M", "--layer", "0", "--save", "a.html", "--hide-special"], "--hide-special",
     "--hide-special leaves special tokens out of figures and the model page, but one layer's page (--layer L --save .html) shows every token: "
     "save the model page (no --layer) or a .svg/.png/.pdf"),
    *((["x", "--model", "M", *STATIC_ARGS[o]], "--" + o.replace("_", "-"), "--" + o.replace("_", "-") + " " + STATIC_MESSAGE) for o in STATIC_ONLY),
    (["x", "--model", "M", "--qkv"], "--qkv", "--qkv " + STATIC_MESSAGE),
    (["x", "--weights", "w.npz", "--projections", "random"], "--weights", "--weights and --projections random exclude each other"),
    (["x", "--neighbors", "2", "--projections", "random"], "--neighbors",
     "--neighbors compares vectors with the vocabulary, so the outputs must stay in the embedding space: it needs identity projections, not --projections random"),
    (["x", "-f", "csv", "--focus", "x"], "--focus", "--focus has no place in CSV's rows of (head, query, key); use --format table, markdown or json"),
    (["x", "-f", "csv", "--neighbors", "2"], "--neighbors", "--neighbors has no place in CSV's rows of (head, query, key); use --format table, markdown or json"),
    (["x", "--qkv", "-f", "markdown"], "--qkv", "--qkv adds tables; --format markdown keeps them with --fields heads.queries,heads.keys,heads.values (json, jsonl)"),
    (["x", "--fields", "tokens"], "--fields", "--fields applies to --format json and jsonl"),
    (["-", "-f", "jsonl", "--save", "a.svg"], "--save", "--save draws one sentence; it cannot follow a stream (SENTENCE -)"),
]
COMPARE = [  # after "compare a b --focus bank"
    (["--save", "a.svg"], "--save", "--save draws the word's drift through a model's layers: it needs --model"),
    (["--top-k", "4"], "--top-k", "--top-k lists the words a model's layers look at: it needs --model"),
    (["--dtype", "float64"], "--dtype", "--dtype chooses the precision a model runs in: it needs --model"),
    (["--revision", "v1.0"], "--revision", "--revision chooses the version of a model's Hub id: it needs --model"),
    (["--truncate"], "--truncate", "--truncate cuts a text to a model's positions: it needs --model"),
    (["--hide-special"], "--hide-special", "--hide-special leaves out a model's special tokens (static vectors have none): it needs --model"),
    (["--weighting", "norm"], "--weighting", "--weighting norm weighs each weight by the vector a model's head moves (v W_O): it needs --model"),
    *((["--model", "M", *STATIC_ARGS[o]], "--" + o.replace("_", "-"), "--" + o.replace("_", "-") + " " + STATIC_MESSAGE) for o in STATIC_ONLY),
    (["--weights", "w.npz", "--projections", "random"], "--weights", "--weights and --projections random exclude each other"),
    (["--neighbors", "2", "--weights", "w.npz"], "--neighbors",
     "--neighbors compares vectors with the vocabulary, so the outputs must stay in the embedding space: it needs identity projections, not --weights"),
    (["--model", "M", "-f", "jsonl", "--hide-special"], "--hide-special", HIDE_SPECIAL_IN_DATA.format("jsonl")),
]


def usage_error(result) -> str:
    """The one line of a usage error that says what is wrong (Click puts usage and a hint above it)."""
    assert result.exit_code == 2 and result.stdout == "", (result.exit_code, result.stdout, result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


@pytest.mark.parametrize(("args", "option", "message"), INSPECT)
def test_each_forbidden_combination_of_inspect_is_one_line_and_exit_2(args, option, message):
    # "M" names no model and x.txt, w.npz no file: the usage error comes before anything is loaded
    assert usage_error(run("inspect", *args)) == f"Error: Invalid value for {option}: {message}"


@pytest.mark.parametrize(("args", "option", "message"), COMPARE)
def test_each_forbidden_combination_of_compare_is_one_line_and_exit_2(args, option, message):
    assert usage_error(run("compare", "a bank", "the bank", "--focus", "bank", *args)) == f"Error: Invalid value for {option}: {message}"


def test_every_rule_of_the_table_is_tested_here():
    # one case per rule, in the table's order: a rule added to RULES needs its case above
    assert len(INSPECT) == len(RULES["inspect"]) and len(COMPARE) == len(RULES["compare"])
    assert [r.option for r in RULES["inspect"]] == [option for _, option, _ in INSPECT]
    assert [r.option for r in RULES["compare"]] == [option for _, option, _ in COMPARE]


def test_the_first_rule_that_applies_is_the_one_reported():
    # --layer without --model, and a static option: the table's order decides
    error = usage_error(run("inspect", "x", "--layer", "0", "--heads", "2"))
    assert error == "Error: Invalid value for --layer: --layer chooses among a model's heads: it needs --model"
    error = usage_error(run("inspect", "x", "--model", "M", "--heads", "2", "-f", "csv"))
    assert error == "Error: Invalid value for --layer: --format csv with --model writes one layer's heads or every layer's: say which with --layer L or --layer all"


def test_an_option_set_by_its_environment_variable_counts_as_given():
    result = run("inspect", "x", "--model", "M", env={"ATTN_VECTORS": "x.txt"})
    assert usage_error(result) == f"Error: Invalid value for --vectors: --vectors {STATIC_MESSAGE}"


TOKENS = ["[CLS]", "the", "river", "bank", "[SEP]"]  # "the river bank" in tiny-bert's vocabulary


def allowed(*args: str):
    result = run("inspect", "the river bank", *args)
    assert result.exit_code == 0, result.stderr
    return result


def test_what_the_table_allows_runs_with_a_model(tmp_path):
    # --max-tokens is taken by both sources, --dtype by the model's
    record = json.loads(allowed("--model", MODEL, "--max-tokens", "20", "--dtype", "float64", "-f", "json").stdout)
    assert record["tokens"] == TOKENS and record["config"]["model"]["dtype"] == "float64" and len(record["layers"]) == 2
    # the page needs no --layer; the JSON beside it keeps just --fields
    page = tmp_path / "page.html"
    assert json.loads(allowed("--model", MODEL, "--save", str(page), "-f", "json", "--fields", "tokens").stdout) == {"schema": "attnviz.model/1", "tokens": TOKENS}
    html = page.read_text()
    assert html.startswith("<!doctype html>") and '{"text":"the river bank","tokens":["[CLS]","the","river","bank","[SEP]"]' in html
    # every head as a thumbnail
    picture = tmp_path / "all.png"
    assert f"attn: saved {picture}" in allowed("--model", MODEL, "--layer", "all", "--save", str(picture)).stderr
    assert picture.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_one_head_of_a_model_as_csv():
    rows = list(csv.DictReader(io.StringIO(allowed("--model", MODEL, "--layer", "1", "--head", "0", "-f", "csv").stdout)))
    assert len(rows) == 25 and {row["head"] for row in rows} == {"0"}
    assert [row["key_token"] for row in rows[:5]] == TOKENS
    for query in range(5):  # each query's weights are a softmax: they sum to 1 (float32 and 7 digits)
        assert sum(float(row["weight"]) for row in rows if row["query"] == str(query)) == pytest.approx(1, abs=1e-6)


def test_static_options_over_static_vectors():
    record = json.loads(allowed("--heads", "2", "--causal", "--neighbors", "2", "-f", "json", "--fields", "tokens").stdout)
    assert record == {"schema": "attnviz.inspect/1", "tokens": ["the", "river", "bank"]}
