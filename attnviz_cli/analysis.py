"""What attention did, in numbers: per-head summaries, one query step by step, nearest words.

Pure NumPy over results of :mod:`attnviz_cli.core`: arrays in, frozen results out, no I/O.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from .attention_types import Attention, AttentionOutputs, freeze
from .core import summarized_attention
from .results import FocusHead, HeadSummary


def entropy_bits(weights: np.ndarray) -> np.ndarray:
    """Entropy of each row of ``weights`` (..., T) in bits; zero weights (masks) add nothing.

    Weights are raised to the smallest normal float before the log, so 0 * log 0 counts as 0 without a
    mask (and a subnormal weight changes the sum by less than 1e-36).
    """
    logs = np.maximum(weights, np.finfo(weights.dtype).tiny)
    np.log2(logs, out=logs)
    return -np.einsum("...i,...i->...", weights, logs) + 0.0  # + 0.0: an entropy of 0 is 0, not -0


SORTED_TOP_K = 16  # above this many keys per row, sorting whole rows is quicker than picking one by one


def top_keys(weights: np.ndarray, k: int, masked: np.ndarray | None = None) -> np.ndarray:
    """The ``k`` keys of highest weight in each row of ``weights`` (..., T), best first; ties go to the
    earlier key. A masked key (``masked`` broadcasts against ``weights``) is never listed: a row with
    fewer than ``k`` keys left ends in -1s, which no one can take for a real key.

    The same answer as a stable descending sort. For a few keys it picks them one at a time (k passes
    of argmax, which returns the first of equal maxima) instead of sorting each row: O(k T), not
    O(T log T), which matters on long inputs.
    """
    if masked is not None and not masked.any():
        masked = None
    ranked = weights.copy() if masked is None else np.where(masked, -1.0, weights)  # masked: below any weight
    k = min(k, ranked.shape[-1])
    if k > SORTED_TOP_K:
        keys = np.ascontiguousarray(np.argsort(-ranked, axis=-1, kind="stable")[..., :k])
    else:
        keys = np.empty((*ranked.shape[:-1], k), np.intp)
        for i in range(k):
            keys[..., i] = ranked.argmax(axis=-1)
            np.put_along_axis(ranked, keys[..., i : i + 1], -np.inf, axis=-1)  # below any weight or mask
    if masked is not None:
        keys[np.take_along_axis(np.broadcast_to(masked, weights.shape), keys, axis=-1)] = -1
    return keys


def key_weights(weights: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """The weights (..., T, k) of ``keys`` from :func:`top_keys`, 0 where a key is -1 (none)."""
    return np.where(keys >= 0, np.take_along_axis(weights, keys, axis=-1), 0)


def head_summary(weights: np.ndarray, masked: np.ndarray | None, k: int) -> HeadSummary:
    """Summary of (..., T, T) weights: entropies, strongest keys and up to ``k`` top keys per query.
    ``masked`` (True where a key may not be seen) broadcasts against ``weights``; None: nothing is.

    Works over any leading dimensions (heads, a batch of sentences) at once; pick one out with
    :meth:`HeadSummary.select`.
    """
    return HeadSummary(*_summary_parts(weights, masked, k))


def _summary_parts(weights: np.ndarray, masked: np.ndarray | None, k: int) -> tuple[np.ndarray, ...]:
    """:class:`HeadSummary`'s arrays for weights (..., rows, T), in its order."""
    k = min(k, weights.shape[-1])
    top = top_keys(weights, k, masked)  # (..., rows, k)
    seen = weights.shape[-1] if masked is None else (~masked).sum(axis=-1)  # keys each query may attend to
    counts = np.broadcast_to(np.minimum(seen, k), weights.shape[:-1])  # (..., rows)
    return entropy_bits(weights), top, key_weights(weights, top), counts


def attention_summary(
    x: np.ndarray,
    *,
    heads: int = 1,
    wq: np.ndarray | None = None,
    wk: np.ndarray | None = None,
    wv: np.ndarray | None = None,
    wo: np.ndarray | None = None,
    scale: bool = True,
    causal: bool = False,
    top_k: int = 3,
    keep_matrices: bool = False,
    threads: int | None = None,
) -> tuple[AttentionOutputs, HeadSummary]:
    """:func:`attnviz_cli.core.self_attention` and its :class:`HeadSummary` over (..., h, T): per query,
    the entropy and the ``top_k`` keys, as :func:`head_summary` finds them in full weights.

    The numbers are :func:`self_attention`'s, bit for bit, whatever ``keep_matrices`` says: it only
    decides whether the (h, T, T) scores and weights are given back (an :class:`Attention`) or dropped
    (an :class:`AttentionOutputs`). Long inputs are summarized one block of rows at a time, and without
    ``keep_matrices`` each block is dropped once summarized, so memory grows as O(T x block) rather than
    O(h x T x T).
    """
    attention, parts = summarized_attention(
        x, partial(_summary_parts, k=top_k), heads=heads, wq=wq, wk=wk, wv=wv, wo=wo, scale=scale, causal=causal,
        keep_matrices=keep_matrices, threads=threads,
    )
    return attention, HeadSummary(*parts)


def focus_heads(attention: Attention, position: int) -> tuple[FocusHead, ...]:
    """Query ``position`` worked through in every head: q, keys, q.k, scaled, softmax, weighted sum."""
    steps = []
    for h in range(attention.heads):
        q = attention.queries[h, position]  # (d_k,)
        keys = attention.keys[h]  # (T, d_k)
        values = attention.values[h]  # (T, d_v)
        weights = attention.weights[h, position]  # (T,)
        contributions = weights[:, None] * values  # (T, d_v)
        dots, masked = keys @ q, np.isneginf(attention.scores[h, position])
        freeze(dots, masked, contributions)  # the rest are views of the attention's read-only arrays
        steps.append(FocusHead(
            head=h, query=q, keys=keys, dots=dots, scores=attention.scores[h, position], masked=masked,
            weights=weights, values=values, contributions=contributions, output=attention.head_outputs[h, position],
        ))
    return tuple(steps)


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), for cosines by one matrix product."""
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    return matrix / np.where(norms > 0, norms, 1)


def nearest_rows(unit_vocabulary: np.ndarray, vectors: np.ndarray, k: int, exclude: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``vectors`` (n, d), the ``k`` rows of ``unit_vocabulary`` (V, d) of highest cosine.

    One (n, d) x (d, V) product, then a partial sort; ``exclude`` (n,) is a row per vector to leave out
    (the token's own word, or -1). Returns (rows, cosines), each (n, k), best first.
    """
    cosines = unit_rows(vectors).astype(unit_vocabulary.dtype, copy=False) @ unit_vocabulary.T  # (n, V)
    has_own = exclude >= 0
    cosines[np.flatnonzero(has_own), exclude[has_own]] = -np.inf
    k = min(k, cosines.shape[1] - int(has_own.any()))
    best = np.argpartition(-cosines, k - 1, axis=1)[:, :k]  # (n, k), unordered
    best_cosines = np.take_along_axis(cosines, best, axis=1)
    order = np.lexsort((best, -best_cosines), axis=1)  # by cosine, ties by row: deterministic
    return np.take_along_axis(best, order, axis=1), np.take_along_axis(best_cosines, order, axis=1)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of two vectors; 0 when either is zero, and exactly 1 for equal vectors (where rounding
    would give 0.9999999999999998: the same word in two sentences goes in as the same vector)."""
    norms = float(np.linalg.norm(a) * np.linalg.norm(b))
    if not norms:
        return 0.0
    return 1.0 if np.array_equal(a, b) else float(np.clip(float(a @ b) / norms, -1.0, 1.0))
