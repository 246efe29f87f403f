"""The model pipeline (models/pipeline.py): text + model + what to show -> a ModelInspection whose
numbers are checked here against plain loops over the run's own weights; and the CLI around it: --fields
only drops keys, and a stream of texts gives the records of the texts run one by one."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from attnviz_cli.models import load_model
from attnviz_cli.models.pipeline import ModelShow, inspect_model

from .conftest import run

MODELS = Path(__file__).resolve().parent / "models"
TEXT = "I deposited money at the riverbank"  # tiny GPT-2 cuts "riverbank" into Ġriver, b, an, k


@pytest.fixture(scope="module")
def gpt2():
    return load_model(MODELS / "tiny-gpt2", dtype="float64")


def plain_rollout(attentions: np.ndarray) -> np.ndarray:
    """Abnar and Zuidema's rollout as the paper says it, one layer at a time."""
    L, _, T, _ = attentions.shape
    out, through = [], np.eye(T)
    for layer in range(L):
        mixed = 0.5 * attentions[layer].mean(axis=0) + 0.5 * np.eye(T)
        mixed = mixed / mixed.sum(axis=1, keepdims=True)
        through = mixed @ through
        out.append(through)
    return np.array(out)


def test_the_rollout_is_the_product_of_the_mixed_layers(gpt2):
    result = inspect_model(TEXT, gpt2, ModelShow(rollout=True))
    assert result.rollout is not None and result.rollout.shape == (2, 9, 9)
    assert_allclose(result.rollout, plain_rollout(result.run.attentions), rtol=1e-12)
    assert np.triu(result.rollout[-1], k=1).max() == 0.0  # causal: no token draws on a later one
    assert inspect_model(TEXT, gpt2, ModelShow()).rollout is None  # computed only when asked for


def test_a_focused_word_sums_its_pieces_as_keys_and_averages_them_as_queries(gpt2):
    result = inspect_model(TEXT, gpt2, ModelShow(focus="riverbank"))
    run = result.run
    assert result.words is not None and result.words.labels == ("I", "deposited", "money", "at", "the", "riverbank")
    (word,) = result.focused
    assert (word.label, word.unit, word.tokens) == ("riverbank", 5, (5, 6, 7, 8))
    units = result.words.tokens
    L, h = run.attentions.shape[:2]
    for layer in range(L):
        for head in range(h):
            a = run.attentions[layer, head]
            by_hand = [sum(a[q, k] for q in word.tokens for k in unit) / len(word.tokens) for unit in units]
            assert_allclose(word.weights[layer, head], by_hand, rtol=1e-12)
            entropy = -sum(w * math.log2(w) for w in by_hand if w > 0)
            assert word.entropy_bits[layer, head] == pytest.approx(entropy, rel=1e-12)
        assert_allclose(word.head_mean[layer], word.weights[layer].sum(axis=0) / h, rtol=1e-12)
    vectors = run.hidden_states[:, 5:9].mean(axis=1)  # (L + 1, d): the word's vector, layer by layer
    drift = [float(v @ vectors[0] / (np.linalg.norm(v) * np.linalg.norm(vectors[0]))) for v in vectors]
    assert_allclose(word.drift, drift, rtol=1e-12) and word.drift[0] == pytest.approx(1.0)


def test_each_head_is_labelled_from_its_own_weights():
    model = load_model(MODELS / "tiny-bert", dtype="float64")
    text = "the bank, by the river."
    result = inspect_model(text, model, ModelShow())
    a, T = result.run.attentions, len(result.run.tokens)
    previous = np.array([[np.mean([a[i, h, q, q - 1] for q in range(1, T)]) for h in range(a.shape[1])] for i in range(a.shape[0])])
    spans = zip(result.run.offsets, result.run.special, strict=True)
    punctuation = [t for t, ((start, end), special) in enumerate(spans) if not special and text[start:end] in (",", ".")]
    assert punctuation == [3, 7]  # tiny BERT's vocabulary has neither: [UNK], found by their characters
    on_punctuation = a[..., punctuation].sum(axis=-1).mean(axis=-1)
    shares = result.heads.patterns.shares
    assert_allclose(shares[..., 0], previous, rtol=1e-12)
    assert_allclose(shares[..., 5], on_punctuation, rtol=1e-12)
    best = shares.max(axis=-1)
    named = best >= 0.5
    assert_array_equal(result.heads.values[named], best[named])  # a named head's number is its share
    assert set(result.heads.labels[~named].tolist()) <= {"broad", "other"}


def test_one_layer_becomes_static_attention_s_result(gpt2):
    result = inspect_model(TEXT, gpt2, ModelShow(layer=1, head=2, top_k=2))
    layer = result.layer
    assert layer is not None
    assert_array_equal(layer.attention.weights, result.run.attentions[1, 2:3])
    assert_array_equal(layer.attention.scores, result.run.scores[1, 2:3])
    assert_array_equal(layer.inputs, result.run.hidden_states[1])
    assert_array_equal(layer.attention.output, result.run.hidden_states[2])
    assert (layer.config.first_head, layer.config.layer_heads, layer.config.causal) == (2, 4, True)
    top = layer.summaries[0].top_keys  # the two keys of most weight for each query, best first
    assert_array_equal(top[:, 0], result.run.attentions[1, 2].argmax(axis=-1))
    assert inspect_model(TEXT, gpt2, ModelShow()).layer is None


# ---- the CLI around it -------------------------------------------------------------------------------------


def model_json(*args: str, input: str | None = None) -> str:
    result = run("inspect", *args, "--model", str(MODELS / "tiny-gpt2"), input=input)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_a_stream_of_texts_gives_the_records_of_each_text_alone():
    lines = model_json("-", "-f", "jsonl", "--fields", "tokens,heads.weights", input="the river bank\n\n  I sat  \n").splitlines()
    alone = [json.loads(model_json(text, "-f", "json", "--fields", "tokens,heads.weights")) for text in ("the river bank", "I sat")]
    assert [json.loads(line) for line in lines] == alone


def test_a_stream_of_texts_is_read_as_a_static_stream_is():
    # one line reader: an over-long line is refused with the same message and the same start of it,
    # and --on-error skip writes the same attnviz.error/1 record over static vectors and a model
    text = "river bank\n" + "x " * 40_000 + "\nthe bank\n"
    records = {}
    for source in ([], ["--model", str(MODELS / "tiny-gpt2")]):
        result = run("inspect", "-", "-f", "jsonl", "--max-tokens", "20", "--on-error", "skip", "--fields", "tokens", *source, input=text)
        assert result.exit_code == 0, result.stderr
        records[bool(source)] = [json.loads(line) for line in result.stdout.splitlines()]
        assert "attn: line 2 skipped: the input is longer than 65,536 bytes, more than --max-tokens 20" in result.stderr
    static, model = records[False], records[True]
    assert len(static) == len(model) == 3 and static[1] == model[1]
    assert model[1]["schema"] == "attnviz.error/1" and model[1]["line"] == 2 and model[1]["sentence"].endswith("x x…")
    failed = run("inspect", "-", "-f", "jsonl", "--max-tokens", "20", "--model", str(MODELS / "tiny-gpt2"), input=text)
    assert failed.exit_code == 1 and failed.stderr.endswith("attn: error: line 2: the input is longer than 65,536 bytes, "
                                                             "more than --max-tokens 20 can take; raise --max-tokens or split it into sentences\n")
    assert len(failed.stdout.splitlines()) == 1  # the record before it, none after


def test_a_skipped_line_s_error_record_holds_the_line_as_read_whatever_the_source():
    # attnviz.error/1 as docs/formats.md shows it: the whole line, neither cut nor escaped (JSON escapes it)
    line = "bank " * 80  # 80 tokens: more than --max-tokens 70, and than tiny-gpt2's 64 positions
    for source in ([], ["--model", str(MODELS / "tiny-gpt2")]):
        result = run("inspect", "-", "-f", "jsonl", "--max-tokens", "70", "--on-error", "skip", *source, input=f"the bank\n{line}\n")
        assert result.exit_code == 0, result.stderr
        record = json.loads(result.stdout.splitlines()[1])
        assert (record["schema"], record["line"], record["sentence"]) == ("attnviz.error/1", 2, line.strip()), source
        assert result.stderr == f"attn: line 2 skipped: {record['error']}\n"


def test_a_saved_page_shows_the_pipeline_s_rollout_and_json_keeps_it_only_when_asked(gpt2, tmp_path):
    """--save page.html asks the pipeline for the rollout (ModelShow.page); the page embeds that one, and
    the JSON printed beside it has no rollout unless --rollout was given."""
    from attnviz_cli.render_model_html import model_page_record

    result = inspect_model(TEXT, gpt2, ModelShow(page=True))
    page = model_page_record(result)
    assert_allclose(page["rollout"], plain_rollout(result.run.attentions), atol=5e-5)  # the page keeps 4 decimals
    page_path = tmp_path / "page.html"
    plain = run("inspect", TEXT, "--model", str(MODELS / "tiny-gpt2"), "-f", "json", "--save", str(page_path))
    assert plain.exit_code == 0, plain.stderr
    assert page_path.stat().st_size > 0
    assert all("rollout" not in layer for layer in json.loads(plain.stdout)["layers"])
    asked = run("inspect", TEXT, "--model", str(MODELS / "tiny-gpt2"), "-f", "json", "--rollout")
    assert all("rollout" in layer for layer in json.loads(asked.stdout)["layers"])
