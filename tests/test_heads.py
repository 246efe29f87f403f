"""Head patterns and attention rollout (attnviz_cli.models.heads) on hand-built attention matrices,
whose answers are worked out by hand here, and properties that hold for any attention."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose, assert_array_equal

from attnviz_cli.core import causal_mask, softmax
from attnviz_cli.models.heads import PATTERNS, head_labels, head_patterns, mean_patterns, punctuation_tokens, rollout

NO_PUNCTUATION = np.zeros(5, bool)


def one_hot_rows(keys: list[int]) -> np.ndarray:
    """(T, T) weights: query i puts all its weight on key keys[i]."""
    return np.eye(len(keys))[keys]


def share(patterns, name: str) -> float:
    return float(patterns.shares[..., PATTERNS.index(name)])


def test_a_pure_previous_token_head_is_100_percent_previous():
    weights = one_hot_rows([0, 0, 1, 2, 3])  # query 0 has no previous token: it looks at itself
    p = head_patterns(weights, NO_PUNCTUATION)
    assert share(p, "previous") == 1.0  # queries 1..4, each all on the token before it
    assert share(p, "self") == pytest.approx(1 / 5)  # only query 0
    assert share(p, "first") == pytest.approx(2 / 5)  # queries 0 and 1 look at token 0
    assert share(p, "next") == 0.0 and share(p, "last") == 0.0
    assert p.entropy_bits == 0.0 and p.spread == 0.0
    assert p.distance == pytest.approx(4 / 5)  # |i - j| = 1 for four queries, 0 for the first
    labels, values = head_labels(p)
    assert labels == "previous" and values == 1.0


def test_next_self_first_last_and_punctuation_heads_are_named_by_their_keys():
    cases = {"next": [1, 2, 3, 4, 4], "self": [0, 1, 2, 3, 4], "first": [0] * 5, "last": [4] * 5, "punctuation": [2] * 5}
    punctuation = np.array([False, False, True, False, False])
    for name, keys in cases.items():
        p = head_patterns(one_hot_rows(keys), punctuation)
        labels, _ = head_labels(p)
        assert labels == name, name
    # the exact shares of the next-token head: queries 0..3 all on the next token; query 4 looks at itself
    p = head_patterns(one_hot_rows(cases["next"]), punctuation)
    assert share(p, "next") == 1.0 and share(p, "self") == pytest.approx(1 / 5) and share(p, "last") == pytest.approx(2 / 5)
    assert share(p, "punctuation") == pytest.approx(1 / 5)  # query 1 looks at token 2


def test_a_uniform_head_is_broad_and_its_numbers_are_exact():
    weights = np.full((4, 4), 0.25)
    p = head_patterns(weights, np.zeros(4, bool))
    assert_allclose(p.shares, [0.25, 0.25, 0.25, 0.25, 0.25, 0.0])
    assert p.entropy_bits == pytest.approx(2.0) and p.spread == pytest.approx(1.0)
    assert p.distance == pytest.approx((1.5 + 1 + 1 + 1.5) / 4)  # mean |i - j| of each row, averaged
    labels, values = head_labels(p)
    assert labels == "broad" and values == pytest.approx(1.0)


def test_a_sharp_head_on_no_fixed_position_is_other():
    weights = one_hot_rows([2, 3, 4, 0, 1])  # two ahead, wrapping round: no pattern has half the weight
    labels, values = head_labels(head_patterns(weights, NO_PUNCTUATION))
    assert labels == "other" and math.isnan(values)


def test_a_causal_head_spreads_over_the_keys_it_sees():
    T = 4
    weights = np.tril(np.ones((T, T))) / np.arange(1, T + 1)[:, None]  # each query uniform over keys 0..i
    p = head_patterns(weights, np.zeros(T, bool), causal=True)
    assert p.spread == pytest.approx(1.0)  # query 0 sees one key and is left out
    assert share(p, "next") == 0.0
    bidirectional = head_patterns(weights, np.zeros(T, bool))
    assert bidirectional.spread < 1.0  # judged against all T keys, the same rows look narrower


def test_a_one_token_text_has_no_previous_or_next_and_does_not_spread():
    p = head_patterns(np.ones((1, 1)), np.zeros(1, bool))
    assert_array_equal(p.shares, [0.0, 0.0, 1.0, 1.0, 1.0, 0.0])
    assert p.spread == 0.0 and p.distance == 0.0


def test_rollout_of_three_tokens_and_two_layers_by_hand():
    first, self_, previous = one_hot_rows([0, 0, 0]), one_hot_rows([0, 1, 2]), one_hot_rows([0, 0, 1])
    attentions = np.stack([np.stack([first, self_]), np.stack([previous, previous])])  # (L=2, h=2, 3, 3)
    # layer 0: heads averaged [[1,0,0],[.5,.5,0],[.5,0,.5]], then 0.5 A + 0.5 I
    layer0 = np.array([[1, 0, 0], [0.25, 0.75, 0], [0.25, 0, 0.75]])
    # layer 1: 0.5 previous + 0.5 I = [[1,0,0],[.5,.5,0],[0,.5,.5]]; times layer 0's rollout
    layer1 = np.array([[1, 0, 0], [0.625, 0.375, 0], [0.25, 0.375, 0.375]])
    assert_allclose(rollout(attentions), np.stack([layer0, layer1]), rtol=1e-15)


def test_punctuation_is_found_by_the_tokens_characters_not_their_names():
    text = "Hi, you. ok"
    offsets = ((0, 0), (0, 2), (2, 3), (3, 7), (7, 8), (8, 11), (0, 0))  # GPT-2 style: " ok" keeps its space
    special = (True, False, False, False, False, False, True)
    assert punctuation_tokens(text, offsets, special).tolist() == [False, False, True, False, True, False, False]


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_patterns_of_a_batch_are_each_sentences_own_and_stay_in_range(data):
    B, L, h, T = (data.draw(st.integers(1, n)) for n in (3, 3, 3, 6))
    scores = data.draw(arrays(np.float64, (B, L, h, T, T), elements=st.floats(-8, 8)))
    causal = data.draw(st.booleans())
    weights = softmax(scores + causal_mask(T) if causal else scores)
    punctuation = data.draw(arrays(bool, (B, T)))
    batch = head_patterns(weights, punctuation[:, None, None, None, :], causal)
    for b in range(B):
        one = head_patterns(weights[b], punctuation[b], causal)
        for part in ("shares", "entropy_bits", "spread", "distance"):
            assert_allclose(getattr(batch, part)[b], getattr(one, part), rtol=1e-12, atol=1e-15)
    assert (batch.shares >= 0).all() and (batch.shares <= 1 + 1e-12).all()
    assert (batch.spread >= -1e-12).all() and (batch.spread <= 1 + 1e-12).all()
    assert (batch.distance >= 0).all() and (batch.distance <= T - 1 + 1e-12).all()
    mean = mean_patterns([(batch, B)])
    assert_allclose(mean.shares, batch.shares.mean(axis=0), rtol=1e-12)
    rolled = rollout(weights)
    assert rolled.shape == (B, L, T, T)
    assert_allclose(rolled.sum(axis=-1), 1.0, rtol=1e-12)
    if causal:  # rollout keeps the causal order: no token draws on a later one
        assert np.triu(rolled, k=1).max() == 0.0
