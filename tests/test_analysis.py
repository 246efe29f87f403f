"""Summaries, the focus steps and nearest-word search, against hand computation and brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from attnviz_cli.analysis import (
    cosine,
    entropy_bits,
    focus_heads,
    head_summary,
    nearest_rows,
    top_keys,
    unit_rows,
)
from attnviz_cli.core import self_attention
from attnviz_cli.errors import AttnvizError
from attnviz_cli.pipeline import focus_positions, inspect_sentence
from attnviz_cli.projections import identity, random_xavier
from attnviz_cli.results import InspectOptions

from .test_core import WK3, WQ3, WV3, X3


def test_entropy_of_known_rows():
    rows = np.array([[0.25, 0.25, 0.25, 0.25], [0.5, 0.5, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.5, 0.25, 0.125, 0.125]])
    assert_allclose(entropy_bits(rows), [2.0, 1.0, 0.0, 1.75], rtol=1e-15)
    assert math.copysign(1, entropy_bits(rows)[2]) == 1  # 0, not -0 (which JSON would print as -0.0)


def test_head_summary_lists_top_keys_and_leaves_masked_ones_out():
    weights = np.array([[1.0, 0.0, 0.0], [0.3, 0.7, 0.0], [0.2, 0.5, 0.3]])
    masked = np.triu(np.ones((3, 3), dtype=bool), k=1)
    summary = head_summary(weights, masked, k=2)
    assert [summary.top(i)[0].tolist() for i in range(3)] == [[0], [1, 0], [1, 2]]
    assert [summary.top(i)[1].tolist() for i in range(3)] == [[1.0], [0.7, 0.3], [0.5, 0.3]]
    assert_array_equal(summary.strongest_key, [0, 1, 1])
    assert_array_equal(summary.strongest_weight, [1.0, 0.7, 0.5])
    assert summary.mean_entropy_bits == pytest.approx((0 + entropy_bits(weights[1]) + entropy_bits(weights[2])) / 3)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 300), st.sampled_from([np.float32, np.float64]))
def test_mean_entropy_is_exactly_numpys_mean(seed, n, dtype):
    entropies = (np.random.default_rng(seed).random(n) * 8).astype(dtype)
    summary = head_summary(np.full((1, 1), 1.0), np.zeros((1, 1), dtype=bool), k=1)
    summary = type(summary)(entropies, *(getattr(summary, f)[:1].repeat(n, axis=0) for f in ("top_keys", "top_weights", "top_counts")))
    assert summary.mean_entropy_bits == float(entropies.mean())


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 4), st.integers(1, 3), st.integers(1, 300), st.sampled_from([np.float32, np.float64]))
def test_the_means_of_a_batch_are_each_rows_own_mean(seed, batch, heads, n, dtype):
    # A stream takes every row's mean in one call; each must be, bit for bit, that row's numpy mean.
    entropies = (np.random.default_rng(seed).random((batch, heads, n)) * 8).astype(dtype)
    summary = head_summary(np.full((1, 1), 1.0), np.zeros((1, 1), dtype=bool), k=1)
    summary = type(summary)(entropies, *(getattr(summary, f) for f in ("top_keys", "top_weights", "top_counts")))
    means = summary.mean_entropy_bits
    assert means.dtype == dtype and means.shape == (batch, heads)
    assert means.tolist() == [[float(row.mean()) for row in sentence] for sentence in entropies]


def test_ties_go_to_the_earlier_key():
    summary = head_summary(np.full((1, 4), 0.25), np.zeros((1, 4), dtype=bool), k=3)
    assert summary.top_keys.tolist() == [[0, 1, 2]]


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 80), st.integers(1, 24), st.booleans())
def test_top_keys_are_a_stable_descending_sort(seed, T, k, with_mask):
    # few distinct weights, so ties are common; masked keys rank below every weight, and show as -1
    rng = np.random.default_rng(seed)
    weights = rng.integers(0, 4, size=(3, 5, T)) / 4
    masked = rng.random((5, T)) < 0.3 if with_mask else None
    ranked = weights if masked is None else np.where(masked, -1.0, weights)
    expected = np.argsort(-ranked, axis=-1, kind="stable")[..., :k]
    if masked is not None:
        expected = np.where(np.take_along_axis(np.broadcast_to(masked, weights.shape), expected, -1), -1, expected)
    assert_array_equal(top_keys(weights, k, masked), expected)


def test_focus_steps_of_the_seed_article_example():
    # seeds/003: q1 = [1, 0, 2]; dots with the keys [2, 4, 4]; unscaled; output [1.9366, 6.6831, 1.5951]
    attention = self_attention(X3, wq=WQ3, wk=WK3, wv=WV3, scale=False)
    (step,) = focus_heads(attention, 0)
    assert_array_equal(step.query, [1, 0, 2])
    assert_array_equal(step.dots, [2, 4, 4])
    assert_array_equal(step.scores, [2, 4, 4])
    e2 = math.exp(2)
    assert_allclose(step.weights, np.array([1, e2, e2]) / (1 + 2 * e2), rtol=1e-15)
    assert_allclose(step.contributions[1], step.weights[1] * np.array([2, 8, 0]), rtol=1e-15)
    assert_allclose(step.output, [1.9366, 6.6831, 1.5951], atol=1e-4)


@pytest.mark.parametrize("seed", range(6))
def test_focus_steps_add_up_in_every_head(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((5, 6))
    attention = self_attention(x, heads=3, causal=True)
    for position in range(5):
        for step in focus_heads(attention, position):
            assert_allclose(step.contributions.sum(axis=0), step.output, rtol=1e-12, atol=1e-12)
            visible = ~step.masked
            assert_allclose(step.scores[visible], step.dots[visible] / math.sqrt(2), rtol=1e-12)
            assert (step.masked == (np.arange(5) > position)).all()
            assert step.weights[step.masked].sum() == 0


def brute_force_nearest(vocabulary, vector, k, exclude):
    """Every cosine by a Python loop, sorted: the reference for nearest_rows."""
    scored = []
    for row, word_vector in enumerate(vocabulary):
        if row == exclude:
            continue
        denominator = math.sqrt(sum(a * a for a in word_vector)) * math.sqrt(sum(b * b for b in vector))
        scored.append((-sum(a * b for a, b in zip(word_vector, vector, strict=True)) / denominator, row))
    return [row for _, row in sorted(scored)[:k]], [-c for c, _ in sorted(scored)[:k]]


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 8))
def test_nearest_rows_matches_a_brute_force_loop(seed, k):
    rng = np.random.default_rng(seed)
    vocabulary = rng.standard_normal((60, 5))
    vectors = rng.standard_normal((3, 5))
    exclude = np.array([int(rng.integers(0, 60)), -1, int(rng.integers(0, 60))])
    rows, cosines = nearest_rows(unit_rows(vocabulary), vectors, k, exclude)
    for i in range(3):
        expected_rows, expected_cosines = brute_force_nearest(vocabulary.tolist(), vectors[i].tolist(), k, exclude[i])
        assert rows[i].tolist() == expected_rows
        assert_allclose(cosines[i], expected_cosines, rtol=1e-12)


def test_unit_rows_and_cosine_handle_zero_vectors():
    assert_array_equal(unit_rows(np.array([[3.0, 4.0], [0.0, 0.0]])), [[0.6, 0.8], [0.0, 0.0]])
    assert cosine(np.zeros(2), np.ones(2)) == 0.0


# ---- --focus and --neighbors through the pipeline ----------------------------------------------------

TOKENS = ("the", "bank", "by", "the", "river", "bank")


@pytest.mark.parametrize(
    ("spec", "positions"),
    [("bank", [1, 5]), ("BANK", [1, 5]), ("bank@2", [5]), ("bank@1", [1]), ("4", [4]), ("0", [0])],
)
def test_focus_names_a_word_an_occurrence_or_a_position(spec, positions):
    assert focus_positions(spec, TOKENS, lowercase=True) == positions


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("money", r"--focus 'money' is not one of the tokens '0:the 1:bank 2:by 3:the 4:river 5:bank'"),
        ("bank@3", r"--focus 'bank@3': 'bank' occurs 2 time\(s\); use bank@1 to bank@2"),
        ("bank@0", "occurs 2 time"),
        ("6", r"--focus 6 is past the last token \(positions 0-5"),
    ],
)
def test_a_focus_that_is_not_there_lists_the_tokens(spec, message):
    with pytest.raises(AttnvizError, match=message):
        focus_positions(spec, TOKENS, lowercase=True)


def test_focus_and_neighbors_through_the_pipeline(glove):
    inspection = inspect_sentence("the river bank", glove, identity(), InspectOptions(heads=2, focus="bank", neighbors=4))
    (focus,) = inspection.focus
    assert (focus.position, focus.token, len(focus.heads)) == (2, "bank", 2)
    (bank,) = inspection.neighbors
    assert [n.word for n in bank.before] == ["banks", "securities", "banking", "investment"]  # GloVe's own
    assert all(n.word != "bank" for n in bank.before + bank.after)
    x, out = inspection.inputs[2].astype(float), inspection.attention.output[2].astype(float)
    assert bank.moved_cosine == pytest.approx(x @ out / np.linalg.norm(x) / np.linalg.norm(out), rel=1e-12)
    unit = glove.unit_vectors[glove.index["banks"]]
    assert float(bank.before[0].cosine) == pytest.approx(float(unit @ x / np.linalg.norm(x)), rel=1e-5)
    every_head = head_summary(inspection.attention.weights, np.isneginf(inspection.attention.scores), 3)
    for h in range(2):  # the pipeline's per-head summaries are those of the full weights
        assert_array_equal(inspection.summaries[h].top_keys, every_head.top_keys[h])
        assert_array_equal(inspection.summaries[h].entropy_bits, every_head.entropy_bits[h])


def test_neighbors_without_focus_cover_every_token(glove):
    inspection = inspect_sentence("the river bank", glove, identity(), InspectOptions(neighbors=2))
    assert [t.token for t in inspection.neighbors] == ["the", "river", "bank"]


def test_neighbors_need_outputs_in_the_embedding_space(glove):
    with pytest.raises(AttnvizError, match=r"--neighbors .* needs identity projections, not random"):
        inspect_sentence("the river bank", glove, random_xavier(50, 0), InspectOptions(neighbors=3))


def test_a_whole_pass_summary_gives_each_heads_mean_entropy():
    # Issue 12.6: attention_summary(...)[1].mean_entropy_bits raised TypeError for more than one head.
    from attnviz_cli.analysis import attention_summary
    from attnviz_cli.core import self_attention

    x = np.random.default_rng(4).standard_normal((5, 6))
    _, summary = attention_summary(x, heads=2)
    means = summary.mean_entropy_bits
    assert means.shape == (2,)
    weights = self_attention(x, heads=2).weights
    assert_allclose(means, [entropy_bits(weights[h]).mean() for h in range(2)], rtol=1e-12)
    assert float(summary.select(1).mean_entropy_bits) == pytest.approx(float(means[1]), rel=0, abs=0)


@pytest.mark.parametrize("blocked", [False, True], ids=["full-matrices", "row-blocks"])
def test_causal_top_keys_never_list_a_masked_key(blocked):
    # Issue 12.6: query 0 sees one key; its other top keys were masked keys padded in, looking real.
    from attnviz_cli.analysis import attention_summary
    from attnviz_cli.core import self_attention

    x = np.random.default_rng(5).standard_normal((4, 6))
    if blocked:
        _, summary = attention_summary(x, causal=True, top_k=3)
        summary = summary.select(0)
    else:
        attention = self_attention(x, causal=True)
        summary = head_summary(attention.weights[0], np.isneginf(attention.scores[0]), 3)
    assert summary.top_counts.tolist() == [1, 2, 3, 3]
    assert summary.top_keys[0].tolist() == [0, -1, -1]
    assert summary.top_weights[0].tolist() == [1.0, 0.0, 0.0]
    assert sorted(summary.top_keys[1].tolist()) == [-1, 0, 1]
    assert (summary.top_keys[2:] >= 0).all()
