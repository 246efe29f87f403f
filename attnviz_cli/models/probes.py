"""Head detectors: how much of a head's attention follows a detection pattern, as TransformerLens'
``head_detector`` scores it (its default "mul" measure, with ``exclude_bos``), so numbers can be compared
with it. Pure NumPy over token ids and attention weights: arrays in, arrays out, any leading axes.

A detection pattern ``P`` (..., T, T) is True (1) where a query should look and False (0) elsewhere,
lower-triangular:
- previous: each token looks at the one before it, ``P[i, i-1] = 1``;
- duplicate: at the earlier tokens with its own id, ``P[i, j] = 1`` for j < i where ``ids[j] == ids[i]``;
- induction: at the token just after an earlier copy of itself, ``P[i, j] = 1`` for 1 <= j <= i where
  ``ids[j-1] == ids[i]`` and j-1 < i (the duplicate pattern shifted one key to the right).

A head's score is ``sum(A * P) / sum(A)`` over its whole (T, T) pattern ``A`` once the first token's column
is set to 0 (``exclude_bos``): the share of its weight, outside the first token, that the pattern names.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

PROBES = ("induction", "previous", "duplicate")  # in this order in every view, whatever order they were asked in
REPEATS = 2  # a random sequence is shown this many times: the second copy is where induction can act


def duplicate_pattern(ids: np.ndarray) -> np.ndarray:
    """(..., T, T) bool: True where key j < query i holds the same token id, for ``ids`` (..., T)."""
    T = ids.shape[-1]
    same = ids[..., :, None] == ids[..., None, :]  # (..., T, T)
    return same & np.tri(T, k=-1, dtype=bool)


def induction_pattern(ids: np.ndarray) -> np.ndarray:
    """(..., T, T) bool: True where key j follows (j-1) an earlier copy of query i's token."""
    shifted = np.zeros(ids.shape + ids.shape[-1:], dtype=bool)  # (..., T, T)
    shifted[..., 1:] = duplicate_pattern(ids)[..., :-1]  # key j gets what key j-1 had; column 0 stays 0
    return shifted


def previous_pattern(ids: np.ndarray) -> np.ndarray:
    """(..., T, T) bool: True at each query's previous key (the one-below diagonal)."""
    T = ids.shape[-1]
    return np.broadcast_to(np.eye(T, k=-1, dtype=bool), (*ids.shape[:-1], T, T)).copy()


PATTERN_OF = {"induction": induction_pattern, "previous": previous_pattern, "duplicate": duplicate_pattern}


def detection_pattern(probe: str, ids: np.ndarray) -> np.ndarray:
    """The (..., T, T) detection pattern of ``probe`` (one of :data:`PROBES`) for token ``ids`` (..., T)."""
    return PATTERN_OF[probe](ids)


def probe_scores(weights: np.ndarray, pattern: np.ndarray) -> np.ndarray:
    """(...,) the "mul" score of each head: ``sum(A * P) / sum(A)`` with the first key's column of ``A``
    left out (TransformerLens' ``exclude_bos``). ``weights`` (..., T, T) and ``pattern`` (bool, or 0 and
    1) broadcast: (B, L, h, T, T) against (B, 1, 1, T, T). Both sums run in float64, and ``A * P`` is
    never made whole: einsum multiplies and adds a buffer at a time. A head with no weight outside the
    first key (a one-token text) scores 0: there is nothing for the pattern to name."""
    kept = weights[..., :, 1:]  # (..., T, T-1): every key but the first
    total = kept.sum(axis=(-2, -1), dtype=np.float64)
    matched = np.einsum("...qk,...qk->...", kept, pattern[..., :, 1:], dtype=np.float64)
    return np.divide(matched, total, out=np.zeros_like(total), where=total > 0)


def repeated_sequences(vocabulary: np.ndarray, sequences: int, length: int, seed: int, prefix: np.ndarray) -> np.ndarray:
    """(sequences, len(prefix) + REPEATS * length) token ids: ``sequences`` random sequences of ``length``
    ids drawn uniformly (with replacement, as TransformerLens' ``torch.randint``) from ``vocabulary``,
    each shown :data:`REPEATS` times after ``prefix`` (the model's BOS, or nothing). The draws
    come from ``np.random.default_rng(seed)``: the same seed gives the same ids on any machine. The plain
    version, all rows at once, that the tests compare against: attnviz itself draws them with
    :func:`repeated_chunks`."""
    return np.concatenate(list(repeated_chunks(vocabulary, sequences, length, seed, prefix)))


def repeated_chunks(
    vocabulary: np.ndarray, sequences: int, length: int, seed: int, prefix: np.ndarray, chunk: int = 64,
) -> Iterator[np.ndarray]:
    """:func:`repeated_sequences` ``chunk`` rows at a time, drawn as they are needed (the same ids: one
    generator's draws in order), so many long sequences are never all in memory."""
    rng = np.random.default_rng(seed)
    for start in range(0, sequences, chunk):
        n = min(chunk, sequences - start)
        drawn = vocabulary[rng.integers(0, len(vocabulary), size=(n, length))]  # (n, K)
        first = np.broadcast_to(prefix.astype(np.int64), (n, len(prefix)))
        yield np.concatenate([first, *([drawn] * REPEATS)], axis=1).astype(np.int64)
