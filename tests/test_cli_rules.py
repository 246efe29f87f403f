"""What a combination of options forbids: every rule of the one table (cli/options.py RULES) gives its
one-line usage error and exit 2, before anything is loaded, and what the table allows still runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from attnviz_cli.cli.options import RULES, STATIC_ONLY

from .conftest import run

MODEL = str(Path(__file__).resolve().parent / "models" / "tiny-bert")
STATIC_MESSAGE = "is for static vectors; a model has its own heads, projections and positions (--save, Markdown and CSV take a --layer)"
STATIC_ARGS = {  # a value other than the default for each option only static vectors take
    "vectors": ["--vectors", "x.txt"], "weights": ["--weights", "w.npz"], "projections": ["--projections", "random"],
    "neighbors": ["--neighbors", "3"], "positions": ["--positions", "sinusoidal"], "heads": ["--heads", "2"],
    "causal": ["--causal"], "no_scale": ["--no-scale"], "seed": ["--seed", "3"], "oov": ["--oov", "zero"],
}

INSPECT = [  # (arguments after "inspect", the option the error names, its message), in RULES["inspect"]'s order
    (["x", "--rollout"], "--rollout", "--rollout follows attention through a model's layers: it needs --model"),
    (["x", "--layer", "1"], "--layer", "--layer chooses among a model's heads: it needs --model"),
    (["x", "--head", "1"], "--head", "--head chooses among a model's heads: it needs --model"),
    (["x", "--model", "M", "--layer", "all", "--head", "1"], "--head", "--head needs one --layer L, not all"),
    (["x", "--model", "M", "--head", "1"], "--head", "--head needs --layer: which layer's head"),
    (["x", "--model", "M", "-f", "markdown"], "--layer", "--format markdown with --model shows one layer's heads: say which with --layer"),
    (["x", "--model", "M", "-f", "csv", "--layer", "0", "--focus", "x"], "--focus", "--focus with --model writes table or json, not --format csv"),
    (["x", "--model", "M", "-f", "markdown", "--layer", "0", "--rollout"], "--rollout", "--rollout with --model writes table or json, not --format markdown"),
    (["x", "--model", "M", "--save", "a.png"], "--layer", "--save .png with --model draws a layer's heads (--layer L) or every head (--layer all)"),
    (["-", "--model", "M", "-f", "csv", "--layer", "0"], "SENTENCE", "SENTENCE - with --model streams as jsonl only"),
    *((["x", "--model", "M", *STATIC_ARGS[o]], "--" + o.replace("_", "-"), "--" + o.replace("_", "-") + " " + STATIC_MESSAGE) for o in STATIC_ONLY),
    (["x", "--weights", "w.npz", "--projections", "random"], "--weights", "--weights and --projections random exclude each other"),
    (["x", "--neighbors", "2", "--projections", "random"], "--neighbors",
     "--neighbors compares vectors with the vocabulary, so the outputs must stay in the embedding space: it needs identity projections, not --projections random"),
    (["x", "-f", "csv", "--focus", "x"], "--focus", "--focus has no place in CSV's rows of (head, query, key); use --format table, markdown or json"),
    (["x", "-f", "csv", "--neighbors", "2"], "--neighbors", "--neighbors has no place in CSV's rows of (head, query, key); use --format table, markdown or json"),
]
COMPARE = [  # after "compare a b --focus bank"
    (["-f", "markdown"], "--format", "compare writes table, json or jsonl, not markdown"),
    (["--save", "a.svg"], "--save", "--save draws the word's drift through a model's layers: it needs --model"),
    *((["--model", "M", *STATIC_ARGS[o]], "--" + o.replace("_", "-"), "--" + o.replace("_", "-") + " " + STATIC_MESSAGE) for o in STATIC_ONLY),
    (["--weights", "w.npz", "--projections", "random"], "--weights", "--weights and --projections random exclude each other"),
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
    assert error == "Error: Invalid value for --layer: --format csv with --model shows one layer's heads: say which with --layer"


def test_an_option_set_by_its_environment_variable_counts_as_given():
    result = run("inspect", "x", "--model", "M", env={"ATTN_VECTORS": "x.txt"})
    assert usage_error(result) == f"Error: Invalid value for --vectors: --vectors {STATIC_MESSAGE}"


@pytest.mark.parametrize(
    "args",
    [
        ["--model", MODEL, "--vectors-format", "glove", "--max-tokens", "20", "--dtype", "float64", "-f", "json"],  # taken by both sources
        ["--model", MODEL, "--layer", "all", "--save", "{tmp}/all.png"],  # every head as a thumbnail
        ["--model", MODEL, "--layer", "1", "--head", "0", "-f", "csv"],
        ["--model", MODEL, "--save", "{tmp}/page.html", "-f", "json", "--fields", "tokens"],  # the page needs no --layer
        ["--heads", "2", "--causal", "--neighbors", "2", "-f", "json", "--fields", "tokens"],  # static options over static vectors
        ["--dtype", "float64", "-f", "json", "--fields", "tokens"],  # --dtype is left alone without --model, as before
    ],
)
def test_what_the_table_allows_runs(args, tmp_path):
    result = run("inspect", "the river bank", *(a.replace("{tmp}", str(tmp_path)) for a in args))
    assert result.exit_code == 0, result.stderr
    assert result.stdout
