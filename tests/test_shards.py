"""Corpus statistics as mergeable sums (models/corpus.py's PatternSums), shards of a corpus
(`attn heads --shard i/n -f partial`), and `attn merge` of their partial files (models/partial.py)."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from attnviz_cli.models.corpus import PatternSums
from attnviz_cli.models.heads import HeadPatterns

L, H, P = 2, 3, 2  # layers, heads, probes of the synthetic texts


def text_patterns(rng: np.random.Generator, n: int) -> tuple[HeadPatterns, np.ndarray]:
    """``n`` random texts' (n, L, h, ...) patterns, some with no sinks (NaN, as a one-token text has),
    and their (n, P, L, h) probe scores."""
    sink = rng.random((n, L, H))
    sink[rng.random(n) < 0.3] = np.nan
    sink_k = np.where(rng.random((n, 1, 1)) < 0.5, np.nan, rng.random((n, L, H)))
    patterns = HeadPatterns(rng.random((n, L, H, 6)), 3 * rng.random((n, L, H)), rng.random((n, L, H)), 5 * rng.random((n, L, H)), sink, sink_k)
    return patterns, rng.random((n, P, L, H))


def summed(patterns: HeadPatterns, scores: np.ndarray, start: int, stop: int) -> PatternSums:
    sums = PatternSums(L, H, ("induction", "previous"))
    if stop > start:
        part = HeadPatterns(*(getattr(patterns, name)[start:stop] for name in HeadPatterns.__slots__))
        sums.add(part, 7 * (stop - start), stop - start, scores[start:stop])
    return sums


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 80), st.lists(st.integers(0, 80), max_size=6), st.integers(0, 2**32 - 1))
def test_sums_merged_from_random_splits_equal_the_sums_of_the_whole(n, cuts, seed):
    rng = np.random.default_rng(seed)
    patterns, scores = text_patterns(rng, n)
    whole = summed(patterns, scores, 0, n)
    edges = [0, *sorted(min(c, n) for c in cuts), n]
    parts = [summed(patterns, scores, a, b) for a, b in itertools.pairwise(edges)]
    merged = PatternSums(L, H, ("induction", "previous"))
    for part in reversed(parts):  # any order
        merged.merge(part)
    assert (merged.texts, merged.tokens, merged.truncated) == (n, 7 * n, n)
    for name, values in whole.arrays.items():
        np.testing.assert_allclose(merged.arrays[name], values, rtol=1e-12, atol=1e-12, err_msg=name)  # float64 sums in another order
    for name in HeadPatterns.__slots__:
        np.testing.assert_allclose(getattr(merged.std(), name), getattr(whole.std(), name), rtol=1e-9, atol=1e-12)


def test_mean_and_std_are_those_of_the_texts_numpy_computes():
    rng = np.random.default_rng(3)
    patterns, scores = text_patterns(rng, 40)
    sums = summed(patterns, scores, 0, 40)
    mean, std = sums.mean(), sums.std()
    for name in HeadPatterns.__slots__:
        values = getattr(patterns, name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a head no text has a sink for: NaN, as ours
            np.testing.assert_allclose(getattr(mean, name), np.nanmean(values, axis=0), rtol=1e-12)
            np.testing.assert_allclose(getattr(std, name), np.nanstd(values, axis=0), rtol=1e-9, atol=1e-12)  # E[x^2]-E[x]^2 cancels a little
    np.testing.assert_allclose(sums.mean_scores(), scores.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(sums.std_scores(), scores.std(axis=0), rtol=1e-9, atol=1e-12)
