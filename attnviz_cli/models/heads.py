"""What each head does, in numbers: the patterns of Clark et al. (2019), "What Does BERT Look At?", and
attention rollout (Abnar and Zuidema, 2020). Pure NumPy over attention weights: arrays in, arrays out.

Every function works over any leading axes: (L, h, T, T) for one run, (B, L, h, T, T) for a batch.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..analysis import entropy_bits

if TYPE_CHECKING:
    from .model import ModelRun

PATTERNS = ("previous", "next", "self", "first", "last", "punctuation")  # in this order when shares tie
SINK_TOKENS = 4  # the sink's second measure: the weight on the first this many tokens (StreamingLLM keeps 4)
LABEL_SHARE = 0.5  # a head is named after a pattern whose keys get at least half its weight...
BROAD_SPREAD = 0.5  # ...else "broad" if its rows spread at least this far towards uniform, else "other"
DECIMALS = 2  # the tables print shares and spreads to this many places; labels are earned by the printed number


@dataclass(frozen=True, slots=True)
class HeadPatterns:
    """Per head (any leading axes), averaged over its queries.

    shares: (..., 6) the mean weight a query gives the keys of each of :data:`PATTERNS`: the token just
        before it, the one just after, itself, the first token ([CLS], <s>), the last ([SEP], </s>), and
        the punctuation tokens. Queries with no such key (the first has no previous) are left out.
    entropy_bits: (...,) the mean entropy of its rows, in bits.
    spread: (...,) the mean of each row's entropy over the most it could have (log2 of the keys the
        query sees): 0 when every query looks at one key, 1 when each spreads evenly over all it sees.
    distance: (...,) the mean distance, in tokens, between a query and the keys it looks at (|i - j|,
        weighted).
    sink: (...,) the mean weight the queries after the first token give it (an attention sink, Xiao
        et al. 2023, when at least 0.5); NaN for a one-token text.
    sink_k: (...,) the mean weight the queries after the first :data:`SINK_TOKENS` tokens give those;
        NaN for a text of no more tokens.
    """

    shares: np.ndarray
    entropy_bits: np.ndarray
    spread: np.ndarray
    distance: np.ndarray
    sink: np.ndarray
    sink_k: np.ndarray


def head_patterns(weights: np.ndarray, punctuation: np.ndarray, causal: bool = False) -> HeadPatterns:
    """The patterns of attention ``weights`` (..., T, T), rows summing to 1.

    ``punctuation`` is True in the key columns of punctuation tokens and broadcasts against ``weights``
    ((T,) for one sentence, (B, 1, 1, 1, T) for a batch of (B, L, h, T, T)). ``causal``: each query sees
    only the keys up to itself (GPT-2), which changes how far its rows can spread.
    """
    T = weights.shape[-1]

    def diagonal(offset: int) -> np.ndarray:
        if T - abs(offset) <= 0:  # no query has that key: a one-token text has no previous or next
            return np.zeros(weights.shape[:-2], weights.dtype)
        return np.diagonal(weights, offset=offset, axis1=-2, axis2=-1).mean(axis=-1)

    shares = np.stack([
        diagonal(-1), diagonal(1), diagonal(0),
        weights[..., :, 0].mean(axis=-1), weights[..., :, -1].mean(axis=-1),
        np.where(punctuation, weights, 0).sum(axis=-1).mean(axis=-1),
    ], axis=-1)
    entropy = entropy_bits(weights)  # (..., T)
    seen = np.arange(1, T + 1) if causal else np.full(T, T)  # keys each query sees
    most = np.log2(seen.astype(weights.dtype))  # 0 for a query that sees one key: it cannot spread
    counted = most > 0
    spread = (entropy[..., counted] / most[counted]).mean(axis=-1) if counted.any() else np.zeros(weights.shape[:-2], weights.dtype)
    offsets = np.abs(np.arange(T)[:, None] - np.arange(T)[None, :]).astype(weights.dtype)  # (T, T): |i - j|
    distance = (weights * offsets).sum(axis=-1).mean(axis=-1)
    return HeadPatterns(shares, entropy.mean(axis=-1), spread, distance, *sinks(weights))


def sinks(weights: np.ndarray, k: int = SINK_TOKENS) -> tuple[np.ndarray, np.ndarray]:
    """(...,) twice: the mean weight the queries after the first token give it, and the mean weight the
    queries after the first ``k`` give those ``k`` (NaN where no query comes after them)."""
    T = weights.shape[-1]
    missing = np.full(weights.shape[:-2], np.nan, weights.dtype)
    first = weights[..., 1:, 0].mean(axis=-1) if T > 1 else missing
    first_k = weights[..., k:, :k].sum(axis=-1).mean(axis=-1) if k < T else missing
    return first, first_k


def run_patterns(run: ModelRun, text: str, causal: bool) -> HeadPatterns:
    """The (L, h) patterns of a model's run of ``text``."""
    return head_patterns(run.attentions, punctuation_tokens(text, run.offsets, run.special), causal)


def head_labels(patterns: HeadPatterns, causal: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Each head's label and the number behind it: the pattern with the largest share if it reaches
    :data:`LABEL_SHARE` (its share), else "broad" if the head's spread reaches :data:`BROAD_SPREAD`
    (its spread), else "other" (NaN: it looks sharply at words no fixed position names). Each is compared
    as printed to :data:`DECIMALS` places, so a spread of 0.4974, shown as 0.50, is broad.

    In a ``causal`` model (a decoder), a "first" head whose later queries give the first token at least
    :data:`LABEL_SHARE` of their weight (``sink``) is a "sink" instead, with that share: an attention
    sink (Xiao et al. 2023). "first" stays for the rest, whose share the first query's forced 1.0 lifts."""
    best = patterns.shares.argmax(axis=-1)  # the first of equal shares
    share = np.take_along_axis(patterns.shares, best[..., None], axis=-1)[..., 0]
    named = as_printed(share) >= LABEL_SHARE
    broad = ~named & (as_printed(patterns.spread) >= BROAD_SPREAD)
    labels = np.where(named, np.asarray(PATTERNS)[best], np.where(broad, "broad", "other")).astype("<U11")
    values = np.where(named, share, np.where(broad, patterns.spread, np.nan))
    if causal:
        sink = (labels == "first") & (as_printed(np.nan_to_num(patterns.sink)) >= LABEL_SHARE)
        labels = np.where(sink, "sink", labels)
        values = np.where(sink, patterns.sink, values)
    return labels, values


def as_printed(values: np.ndarray) -> np.ndarray:
    """``values`` rounded as ``f"{v:.2f}"`` rounds them (exactly, where np.round can differ at a tie such
    as 0.495, stored a hair below it): what a reader of the tables sees."""
    return np.vectorize(lambda v: float(f"{v:.{DECIMALS}f}"), otypes=[np.float64])(values)


@dataclass(frozen=True, slots=True, eq=False)
class HeadLabels:
    """Each head's patterns and the label they earn (:func:`head_labels`): what every view of a model's
    heads shows, computed once."""

    patterns: HeadPatterns
    labels: np.ndarray  # (...,) str: a pattern of :data:`PATTERNS`, "sink" (causal models), "broad" or "other"
    values: np.ndarray  # (...,) the share (or spread, for "broad") behind each label; NaN for "other"

    @classmethod
    def of(cls, patterns: HeadPatterns, causal: bool = False) -> HeadLabels:
        return cls(patterns, *head_labels(patterns, causal))


def punctuation_tokens(text: str, offsets: tuple[tuple[int, int], ...], special: tuple[bool, ...]) -> np.ndarray:
    """(T,) True where a token is punctuation: not a special token, and its characters in ``text``
    (from the tokenizer's offsets, so GPT-2's "Ġ," counts) all Unicode punctuation (category P)."""
    def is_punctuation(start: int, end: int) -> bool:
        chars = text[start:end].strip()
        return bool(chars) and all(unicodedata.category(c).startswith("P") for c in chars)

    return np.array([not s and is_punctuation(a, b) for (a, b), s in zip(offsets, special, strict=True)], dtype=bool)


def rollout(attentions: np.ndarray) -> np.ndarray:
    """Attention rollout (Abnar and Zuidema, 2020) of (..., L, h, T, T) weights: (..., L, T, T), how much
    each token's representation after layer l draws on each input token.

    Each layer's heads are averaged and mixed half and half with the identity, for the residual path
    (0.5 A + 0.5 I, rows renormalised); the rollout after layer l is the product of those, layer l's on
    the left. Rows sum to 1.
    """
    mixed = 0.5 * attentions.mean(axis=-3) + 0.5 * np.eye(attentions.shape[-1], dtype=attentions.dtype)
    mixed /= mixed.sum(axis=-1, keepdims=True)
    out = np.empty_like(mixed)
    out[..., 0, :, :] = mixed[..., 0, :, :]
    for layer in range(1, mixed.shape[-3]):
        out[..., layer, :, :] = mixed[..., layer, :, :] @ out[..., layer - 1, :, :]
    return out
