"""--truncate (issue 27, item 15): a text longer than a model's positions keeps its first tokens, its
special tokens where the tokenizer puts them, and says how many were cut; without it the text is still
refused. The tiny models of tests/models have 64 positions; transformers' own tokenizer, truncating to
the same length, is the reference for the tokens kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from attnviz_cli.models import load_model

from .conftest import need_module, run

MODELS = Path(__file__).resolve().parent / "models"
SCHEMAS = Path(__file__).resolve().parent.parent / "attnviz_cli" / "schemas"
POSITIONS = 64  # of the tiny models but RoBERTa
ROBERTA_POSITIONS = 65  # its 66 rows of positions less the one its padding id (0) stands for
LONG = " ".join(["the bank by the river raised its rates again"] * 12)  # 108 words: over 64 tokens in every tiny model
SHORT = "the river bank"
MONEY = "the money bank"


def reference_ids(name: str, text: str, max_length: int | None) -> list[int]:
    """transformers' tokenizer's ids of ``text``, truncated to ``max_length`` as transformers does it."""
    transformers = need_module("transformers")
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_file=str(MODELS / name / "tokenizer.json"))
    if max_length is None:
        return tokenizer(text)["input_ids"]
    return tokenizer(text, truncation=True, max_length=max_length)["input_ids"]


def schema(name: str) -> dict:
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text())


@pytest.mark.parametrize("name", ["tiny-bert", "tiny-roberta", "tiny-distilbert", "tiny-gpt2"])
def test_truncate_keeps_the_first_tokens_as_transformers_truncates(name):
    jsonschema = need_module("jsonschema")
    positions = ROBERTA_POSITIONS if name == "tiny-roberta" else POSITIONS
    full = reference_ids(name, LONG, None)
    assert len(full) > positions  # the text is too long for the model
    refused = run("inspect", LONG, "--model", str(MODELS / name), "-f", "json")
    assert refused.exit_code == 1
    assert refused.stderr == (
        f"attn: error: the text has {len(full)} tokens, more than the {positions} positions of '{MODELS / name}' "
        f"(--truncate keeps the first {positions})\n"
    )
    done = run("inspect", LONG, "--model", str(MODELS / name), "--truncate", "-f", "json")
    assert done.exit_code == 0, done.output
    record = json.loads(done.stdout)
    jsonschema.validate(record, schema("model-1"))
    assert record["token_ids"] == reference_ids(name, LONG, positions)
    assert len(record["tokens"]) == positions
    assert record["truncated"] == len(full) - positions
    assert len(record["layers"][0]["heads"][0]["weights"]) == positions
    if name != "tiny-gpt2":  # an encoder's text still ends in its closing special token, as the tokenizer places it
        assert record["special"][0] and record["special"][-1] and not any(record["special"][1:-1])
        assert record["token_ids"][:-1] == full[: positions - 1] and record["token_ids"][-1] == full[-1]
    else:
        assert record["token_ids"] == full[:positions]


def test_the_run_of_a_truncated_text_is_the_run_of_the_tokens_kept():
    model = load_model(MODELS / "tiny-bert", dtype="float64")
    truncated = model.run(LONG, truncate=True)
    _, attended = model.forward(truncated.token_ids)
    for layer, a in enumerate(attended):
        assert (a.weights == truncated.attentions[layer]).all()
    assert truncated.truncated == len(reference_ids("tiny-bert", LONG, None)) - POSITIONS


def test_a_text_that_fits_is_not_changed_by_truncate():
    plain = json.loads(run("inspect", SHORT, "--model", str(MODELS / "tiny-bert"), "-f", "json").stdout)
    truncated = json.loads(run("inspect", SHORT, "--model", str(MODELS / "tiny-bert"), "--truncate", "-f", "json").stdout)
    assert plain["truncated"] == 0
    assert truncated == plain
    table = run("inspect", SHORT, "--model", str(MODELS / "tiny-bert"), "--truncate", env={"COLUMNS": "200"}).stdout
    assert "truncated" not in table


def test_the_table_header_says_what_was_cut():
    cut = len(reference_ids("tiny-bert", LONG, None)) - POSITIONS
    table = run("inspect", LONG, "--model", str(MODELS / "tiny-bert"), "--truncate", env={"COLUMNS": "200"}).stdout
    line = next(line for line in table.splitlines() if line.startswith("truncated"))
    assert line.split(None, 1)[1] == f"{cut} tokens cut (--truncate): the first {POSITIONS} kept, the model's positions"


def test_compare_truncates_each_text_and_says_so():
    jsonschema = need_module("jsonschema")
    model = str(MODELS / "tiny-bert")
    cut = len(reference_ids("tiny-bert", "money " + LONG, None)) - POSITIONS
    refused = run("compare", "money " + LONG, MONEY, "--focus", "money", "--model", model, "-f", "json")
    assert refused.exit_code == 1 and "positions" in refused.stderr
    done = run("compare", "money " + LONG, MONEY, "--focus", "money", "--model", model, "--truncate", "-f", "json")
    assert done.exit_code == 0, done.output
    record = json.loads(done.stdout)
    jsonschema.validate(record, schema("model-compare-1"))
    assert [s["truncated"] for s in record["sentences"]] == [cut, 0]
    table = run("compare", "money " + LONG, MONEY, "--focus", "money", "--model", model, "--truncate", env={"COLUMNS": "200"}).stdout
    line = next(line for line in table.splitlines() if line.startswith("truncated"))
    assert line.split(None, 1)[1] == f"first text: {cut} tokens cut (--truncate): the first {POSITIONS} kept, the model's positions"


def test_heads_truncates_each_long_line_and_counts_what_was_cut():
    jsonschema = need_module("jsonschema")
    model = str(MODELS / "tiny-bert")
    cut = len(reference_ids("tiny-bert", LONG, None)) - POSITIONS
    texts = f"{LONG}\n{SHORT}\n{LONG}\n"
    refused = run("heads", "-", "--model", model, "-f", "json", input=texts)
    assert refused.exit_code == 1 and "positions" in refused.stderr
    done = run("heads", "-", "--model", model, "--truncate", "-f", "json", input=texts)
    assert done.exit_code == 0, done.output
    record = json.loads(done.stdout)
    jsonschema.validate(record, schema("heads-1"))
    assert (record["texts"], record["tokens"], record["truncated"]) == (3, 2 * POSITIONS + len(reference_ids("tiny-bert", SHORT, None)), 2 * cut)
    assert done.stderr == f"attn: --truncate cut {2 * cut} tokens from the ends of texts longer than the model's {POSITIONS} positions\n"
    plain = json.loads(run("heads", "-", "--model", model, "-f", "json", input=f"{SHORT}\n").stdout)
    assert plain["truncated"] == 0
