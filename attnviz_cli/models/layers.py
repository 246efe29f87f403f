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
    return x * (1 + erf(x / np.sqrt(x.dtype.type(2)))) / 2


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    """GPT-2's GELU, the tanh approximation: x (1 + tanh(√(2/π) (x + 0.044715 x³))) / 2."""
    c = np.sqrt(x.dtype.type(2 / np.pi))
    return x * (1 + np.tanh(c * (x + x.dtype.type(0.044715) * x**3))) / 2


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
    """Multi-head self-attention of x (T, d) with (d, d) projections applied as x @ W + b.

    Returns every head's intermediates and the heads side by side (T, d), before the output projection.
    """
    q, k, v = (split_heads(x @ w + b, heads) for w, b in ((wq, bq), (wk, bk), (wv, bv)))  # (h, T, d_k)
    mask = causal_mask(x.shape[0], x.dtype) if causal else None
    attend = attention if heads * x.shape[0] ** 2 <= BLOCK_ELEMENTS else attention_in_blocks  # long texts: on every core
    scores, weights, out = attend(q, k, v, mask)  # (h, T, T), (h, T, T), (h, T, d_k)
    return Attended(scores, weights, q, k, v, out), merge_heads(out)  # (T, d)
