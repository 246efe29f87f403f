"""Value-weighted attention (--weighting norm, Kobayashi et al. 2020): the norms ||v_j^h W_O^h|| and the
renormalised weights against a plain float64 computation from what transformers recorded
(tests/models/record_weighting.py: each model's values per head, W_O and softmax weights), a hand-computed
case, and the CLI's headers, JSON and tables."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from attnviz_cli.models import load_model
from attnviz_cli.models.weighting import norm_weighted, value_norms
from attnviz_cli.results import NORM_HEADER

from .conftest import need_module, run

MODELS = Path(__file__).resolve().parent / "models"
TEXT = "The old man fixed his nets while the boat rocked"  # as record_weighting.py ran it
FLOAT32 = {"rtol": 1e-5, "atol": 1e-5}  # as test_decoders: torch's and NumPy's float32 forward passes differ by about 1e-6 a weight


@cache
def recorded() -> dict[str, np.ndarray]:
    with np.load(MODELS / "weighting.npz") as z:
        return {k: z[k] for k in z.files}


def expected(name: str) -> tuple[np.ndarray, np.ndarray]:
    """N (L, h, T) and the renormalised weights (L, h, T, T), in float64 from the recorded values, W_O and
    softmax weights alone: a plain loop over layers, heads and keys."""
    z = recorded()
    attentions = z[f"{name}/attentions"].astype(np.float64)  # (L, h, T, T)
    L, h, T, _ = attentions.shape
    norms = np.zeros((L, h, T))
    weights = np.zeros_like(attentions)
    for i in range(L):
        values, w_out = z[f"{name}/values/{i}"].astype(np.float64), z[f"{name}/w_out/{i}"].astype(np.float64)
        h_kv, _, d_k = values.shape
        for head in range(h):
            v = values[head // (h // h_kv)]  # (T, d_k): the key/value head this query head reads
            rows = w_out[head * d_k:(head + 1) * d_k]  # (d_k, d): the head's rows of W_O
            for j in range(T):
                norms[i, head, j] = np.sqrt(((v[j] @ rows) ** 2).sum())
            for q in range(T):
                moved = attentions[i, head, q] * norms[i, head]  # ||α_qj f(x_j)||
                weights[i, head, q] = moved / moved.sum()
    return norms, weights


@pytest.mark.parametrize("name", ["bert", "gpt2", "llama", "gemma3"])
def test_norms_and_weights_match_a_plain_computation_from_transformers_values(name):
    model = load_model(str(MODELS / f"tiny-{name}"))
    result = model.run(TEXT, weighting="norm")
    assert result.token_ids.tolist() == recorded()[f"{name}/ids"].tolist()
    norms, weights = expected(name)
    assert result.weighting == "norm" and result.value_norms is not None
    np.testing.assert_allclose(result.value_norms, norms, **FLOAT32)
    np.testing.assert_allclose(result.attentions, weights, **FLOAT32)
    # the head patterns (and so the labels) are over the shown weights: kept-layer runs take them as each layer runs
    kept = model.run(TEXT, keep=(), weighting="norm")
    np.testing.assert_allclose(kept.value_norms, norms, **FLOAT32)
    first = weights[:, :, 1:, 0].mean(axis=-1)  # each head's mean weight of its queries after the first on the first token
    if model.config.causal:
        np.testing.assert_allclose(kept.patterns.sink, first, rtol=1e-5)


def test_attention_weighting_is_the_softmax_and_keeps_no_norms():
    result = load_model(str(MODELS / "tiny-llama")).run(TEXT)
    assert result.weighting == "attention" and result.value_norms is None
    np.testing.assert_allclose(result.attentions, recorded()["llama/attentions"], **FLOAT32)


def test_a_hand_computed_two_token_head():
    # one head, d_k = 1, d = 2: v = 3 and 1, W_O = [0.6, 0.8], so f(x_0) = [1.8, 2.4] (norm 3), f(x_1) = [0.6, 0.8] (norm 1)
    values = np.array([[[3.0], [1.0]]])  # (h, T, d_k)
    w_out = np.array([[0.6, 0.8]])  # (h d_k, d)
    norms = value_norms(values, w_out)
    np.testing.assert_allclose(norms, [[3.0, 1.0]])
    # causal: query 0 sees itself alone; query 1 gives half to each, 1.5 and 0.5 arrive: 3/4 and 1/4
    weights = np.array([[[1.0, 0.0], [0.5, 0.5]]])
    np.testing.assert_allclose(norm_weighted(weights, norms), [[[1.0, 0.0], [0.75, 0.25]]])


def test_grouped_heads_each_use_their_own_rows_of_w_out():
    # two query heads reading one value head (repeated per query head, as grouped_attention gives it): head 0's
    # rows of W_O double it, head 1's halve it
    values = np.array([[[1.0], [2.0]]]).repeat(2, axis=0)  # (h=2, T=2, d_k=1)
    w_out = np.array([[2.0, 0.0], [0.0, 0.5]])  # (h d_k, d)
    np.testing.assert_allclose(value_norms(values, w_out), [[2.0, 4.0], [0.5, 1.0]])


def test_a_row_whose_keys_all_move_nothing_is_an_error_not_nan():
    norms = np.array([[0.0, 2.0]])
    with pytest.raises(ValueError, match="head 0, query 0: every key it sees moves a zero vector"):
        norm_weighted(np.array([[[1.0, 0.0], [0.5, 0.5]]]), norms)


BERT = str(MODELS / "tiny-bert")


def schema(name: str) -> dict:
    return json.loads((Path(__file__).parent.parent / "attnviz_cli" / "schemas" / f"{name}.schema.json").read_text())


def test_the_table_says_its_weighting_and_shows_the_renormalised_weights():
    result = run("inspect", TEXT, "--model", BERT, "--weighting", "norm", "--layer", "1", "--head", "2")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert f"weighting    {NORM_HEADER}" in out
    assert f"layer 1, head 2 of 4: weights ({NORM_HEADER}, rows sum" in " ".join(out.split())
    _, weights = expected("bert")
    tokens = load_model(BERT).run(TEXT).tokens
    table = out[out.index(": weights ("):]
    for q in (0, 5):
        line = next(x for x in table.splitlines() if x.startswith(f"{q} {tokens[q]} "))
        cells = line.split()[2:2 + len(tokens)]
        assert cells == [f"{w:.2f}" for w in weights[1, 2, q]]


def test_the_overview_and_rollout_say_they_are_over_the_value_weighted_weights():
    result = run("inspect", TEXT, "--model", BERT, "--weighting", "norm", "--rollout")
    assert result.exit_code == 0, result.stderr
    flat = " ".join(result.stdout.split())
    assert f"its entropy in bits ({NORM_HEADER} weights)" in flat
    assert "over the value-weighted weights (Kobayashi et al. 2020)" in flat
    plain = run("inspect", TEXT, "--model", BERT)
    assert "weighting" not in plain.stdout and "Kobayashi" not in plain.stdout


def test_json_has_the_weighting_the_shown_weights_and_the_raw_norms():
    result = run("inspect", TEXT, "--model", BERT, "--weighting", "norm", "-f", "json")
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    norms, weights = expected("bert")
    assert list(record)[:2] == ["schema", "weighting"] and record["weighting"] == "norm"
    np.testing.assert_allclose(record["value_norms"], norms, **FLOAT32)
    np.testing.assert_allclose(record["layers"][1]["heads"][3]["weights"], weights[1, 3], **FLOAT32)
    # --fields keeps the weighting beside the schema: the numbers say what they are
    kept = json.loads(run("inspect", TEXT, "--model", BERT, "--weighting", "norm", "-f", "json", "--fields", "tokens").stdout)
    assert list(kept) == ["schema", "weighting", "tokens"]
    plain = json.loads(run("inspect", TEXT, "--model", BERT, "-f", "json").stdout)
    assert plain["weighting"] == "attention" and "value_norms" not in plain
    jsonschema = need_module("jsonschema")
    for valid in (record, plain):
        jsonschema.validate(valid, schema("model-1"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**record, "weighting": "value"}, schema("model-1"))


def test_compare_follows_the_value_weighted_weights():
    args = ("compare", "the old man", "the old boat", "--focus", "the", "--model", BERT, "--weighting", "norm")
    table = run(*args)
    assert table.exit_code == 0, table.stderr
    assert f"weighting    {NORM_HEADER}" in table.stdout
    record = json.loads(run(*args, "-f", "json").stdout)
    assert record["weighting"] == "norm" and len(record["value_norms"]) == 2
    need_module("jsonschema").validate(record, schema("model-compare-1"))
    model = load_model(BERT)
    first = model.run("the old man", weighting="norm")
    np.testing.assert_allclose(record["value_norms"][0], first.value_norms, rtol=1e-6)
    assert first.tokens[:2] == ("[CLS]", "the") and record["sentences"][0]["unit"] == 1  # the word is token 1, unit 1
    mean = first.attentions[0][:, 1].mean(axis=0)  # layer 0, the word's row, over the heads (one token a unit: tiny-bert knows no pieces)
    np.testing.assert_allclose(record["layers"][0]["first"]["weights"], mean, rtol=1e-5)


def test_static_vectors_refuse_norm_weighting():
    result = run("inspect", "the river bank", "--weighting", "norm")
    assert result.exit_code == 2 and "--weighting norm weighs each weight by the vector a model's head moves (v W_O): it needs --model" in result.stderr
    assert run("inspect", "the river bank", "--weighting", "attention").exit_code == 0


def test_markdown_and_csv_of_a_layer_show_the_value_weighted_weights():
    _, weights = expected("bert")
    norms, _ = expected("bert")
    markdown = run("inspect", TEXT, "--model", BERT, "--weighting", "norm", "--layer", "1", "-f", "markdown").stdout
    assert f"weights {NORM_HEADER}" in markdown and f"Head 0 of 4: weights ({NORM_HEADER}; strongest in bold)" in markdown
    rows = run("inspect", TEXT, "--model", BERT, "--weighting", "norm", "--layer", "1", "-f", "csv").stdout.splitlines()
    assert rows[0].endswith(",score,weight,value_norm")
    fields = next(r for r in rows[1:] if r.startswith(f"1,{TEXT},1,2,3,")).split(",")  # layer 1, head 2, query 3, the first key
    assert fields[6] == "0" and float(fields[9]) == pytest.approx(weights[1, 2, 3, 0], rel=1e-5, abs=1e-5)
    assert float(fields[10]) == pytest.approx(norms[1, 2, 0], rel=1e-5)
    plain = run("inspect", TEXT, "--model", BERT, "--layer", "1", "-f", "csv").stdout.splitlines()
    assert plain[0].endswith(",score,weight")


def test_the_model_page_and_compare_markdown_say_their_weighting():
    from attnviz_cli.models.pipeline import ModelShow, inspect_model
    from attnviz_cli.render_model_html import model_page_record

    result = inspect_model(TEXT, load_model(BERT), ModelShow(page=True, weighting="norm"))
    record = model_page_record(result)
    _, weights = expected("bert")
    assert record["weighting"] == "norm"
    np.testing.assert_allclose(record["layers"][0]["heads"][1]["weights"], weights[0, 1], atol=5e-5)  # the page keeps 4 decimals
    markdown = run("compare", "the old man", "the old boat", "--focus", "the", "--model", BERT, "--weighting", "norm", "-f", "markdown").stdout
    assert f"- Weighting: {NORM_HEADER}: each weight times the norm" in markdown


@pytest.mark.parametrize("name", ["bert", "roberta", "distilbert", "gpt2", "llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3", "phi3", "olmo2"])
def test_every_architecture_weighs_by_its_own_values_and_output_projection(name):
    # each page's values (per query head) and W_O (its attn_out, laid out (in, out)) make the norms, in a float64 loop
    model = load_model(str(MODELS / f"tiny-{name}"))
    plain, weighted = model.run(TEXT), model.run(TEXT, weighting="norm")
    L, h, _, d_k = plain.values.shape
    for i in range(L):
        w_out = np.asarray(model.params["blocks"][i]["attn_out"]["w"], np.float64)
        for head in range(h):
            moved = np.asarray(plain.values[i, head], np.float64) @ w_out[head * d_k:(head + 1) * d_k]  # (T, d)
            norms = np.sqrt((moved**2).sum(axis=-1))
            np.testing.assert_allclose(weighted.value_norms[i, head], norms, rtol=1e-5)
            scaled = plain.attentions[i, head] * norms
            np.testing.assert_allclose(weighted.attentions[i, head], scaled / scaled.sum(axis=-1, keepdims=True), rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(weighted.scores, plain.scores)  # the scores stay the softmax's input, masked where they were


def test_focus_and_rollout_follow_the_value_weighted_weights():
    from attnviz_cli.models.heads import rollout

    record = json.loads(run("inspect", TEXT, "--model", BERT, "--weighting", "norm", "--focus", "the", "--rollout", "-f", "json").stdout)
    _, weights = expected("bert")
    np.testing.assert_allclose(record["layers"][1]["rollout"], rollout(weights)[1], **FLOAT32)
    focus = record["focus"][0]["layers"][0]["heads"][2]["weights"]  # "the" is token 1 and unit 1: one token a unit
    np.testing.assert_allclose(focus, weights[0, 2, 1], **FLOAT32)
