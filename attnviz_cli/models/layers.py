"""The pieces every transformer here is built of, in plain NumPy: layer norm, the two GELUs, linear maps,
and one multi-head self-attention through :func:`attnviz_cli.core.attention`."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..core import attention, attention_in_blocks, causal_mask, merge_heads, split_heads
from ..engine import BLOCK_ELEMENTS
from .erf import erf


def layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    """(T, d) normalised over its last axis to mean 0 and variance 1, then scaled and shifted."""
    mean = x.mean(axis=-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + x.dtype.type(eps)) * gamma + beta


def gelu_erf(x: np.ndarray) -> np.ndarray:
    """BERT's GELU, exactly: x Φ(x) = x (1 + erf(x / √2)) / 2 (erf: :mod:`.erf`, as NumPy has none)."""
    out = erf(x * x.dtype.type(1 / np.sqrt(2)))
    out += 1
    out *= x
    out *= x.dtype.type(0.5)
    return out


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    """GPT-2's GELU, the tanh approximation: x (1 + tanh(√(2/π) (x + 0.044715 x³))) / 2."""
    c = np.sqrt(x.dtype.type(2 / np.pi))
    return x * (1 + np.tanh(c * (x + x.dtype.type(0.044715) * x**3))) / 2


def dense(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """x @ W + b for x (..., d_in) and W (d_in, d_out): a batch's rows as one matrix, so BLAS makes one
    large product rather than one small one per text."""
    return (x.reshape(-1, x.shape[-1]) @ w + b).reshape(*x.shape[:-1], w.shape[1])


class Attended(NamedTuple):
    """One layer's self-attention, head by head: every (h, T, ·) intermediate, as the views show them."""

    scores: np.ndarray  # (h, T, T): q.k/sqrt(d_k), -inf where masked
    weights: np.ndarray  # (h, T, T): their softmax
    queries: np.ndarray  # (h, T, d_k)
    keys: np.ndarray  # (h, T, d_k)
    values: np.ndarray  # (h, T, d_k)
    head_outputs: np.ndarray  # (h, T, d_k): each head's weighted sum of the values


def self_attention_layer(
    x: np.ndarray, wq: np.ndarray, bq: np.ndarray, wk: np.ndarray, bk: np.ndarray, wv: np.ndarray, bv: np.ndarray,
    heads: int, causal: bool = False,
) -> tuple[Attended, np.ndarray]:
    """Multi-head self-attention of x (T, d), or a batch (B, T, d), with (d, d) projections applied as
    x @ W + b.

    Returns every head's intermediates ((h, T, ·), or (B, h, T, ·)) and the heads side by side (T, d),
    before the output projection.
    """
    q, k, v = (split_heads(dense(x, w, b), heads) for w, b in ((wq, bq), (wk, bk), (wv, bv)))  # (h, T, d_k)
    T = x.shape[-2]
    mask = causal_mask(T, x.dtype) if causal else None
    long_text = x.ndim == 2 and heads * T * T > BLOCK_ELEMENTS
    attend = attention_in_blocks if long_text else attention  # a long text: a block of rows on each core
    scores, weights, out = attend(q, k, v, mask)  # (h, T, T), (h, T, T), (h, T, d_k)
    return Attended(scores, weights, q, k, v, out), merge_heads(out)  # (T, d)
