"""Scaled dot-product self-attention in plain NumPy: arrays in, arrays out, no I/O.

Conventions (shared with the CLI's weight files): row vectors, ``Q = x @ wq``. ``wq`` and ``wk`` have
shape (d_model, h*d_k) and ``wv`` (d_model, h*d_v); head i uses columns i*d_k to (i+1)*d_k. ``wo`` has
shape (h*d_v, d_out). An absent ``wq``/``wk``/``wv`` is the identity, so each head attends over its own
slice of d_model/h embedding components. The computation runs in the dtype of ``x`` (float32 stays
float32, float64 stays float64; other input is taken as float64).
"""

from __future__ import annotations

import numpy as np

from .results import Attention


class AttentionInputError(ValueError):
    """Inputs that self-attention cannot run on: wrong shapes, non-finite values, bad head count."""


def softmax(scores: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, stable for any finite or -inf score.

    The row maximum is subtracted before ``exp`` so large scores cannot overflow; -inf (a mask) gives a
    weight of exactly 0. A row with nothing to attend to (all -inf) is an error, not NaN.
    """
    row_max = scores.max(axis=-1, keepdims=True)  # (..., 1)
    if not np.isfinite(row_max).all():
        if np.isnan(scores).any() or np.isposinf(scores).any():
            raise AttentionInputError("scores hold NaN or +inf")
        raise AttentionInputError("a row of scores is fully masked: that query has nothing to attend to")
    weights = np.exp(scores - row_max)  # (..., T); masked (-inf) scores give exactly 0
    weights /= weights.sum(axis=-1, keepdims=True)
    return weights


def causal_mask(T: int, dtype: np.dtype | type = np.float64) -> np.ndarray:
    """(T, T) additive mask: 0 where key j <= query i, -inf where j > i."""
    mask = np.zeros((T, T), dtype=dtype)
    mask[np.triu_indices(T, k=1)] = -np.inf
    return mask


def compute_dtype(x: np.ndarray) -> np.dtype:
    """The dtype attention runs in for input ``x``: its own if floating, else float64."""
    return x.dtype if np.issubdtype(x.dtype, np.floating) else np.dtype(np.float64)


def check_projections(
    d_model: int,
    heads: int,
    wq: np.ndarray | None = None,
    wk: np.ndarray | None = None,
    wv: np.ndarray | None = None,
    wo: np.ndarray | None = None,
) -> tuple[int, int]:
    """Validate head count and projection shapes for inputs of width ``d_model``; return (d_k, d_v)."""
    if heads < 1:
        raise AttentionInputError(f"heads must be at least 1, got {heads}")
    widths = {}
    for name, w in (("wq", wq), ("wk", wk), ("wv", wv)):
        if w is None:
            widths[name] = d_model
            continue
        if w.ndim != 2 or w.shape[0] != d_model:
            raise AttentionInputError(f"{name} must have shape ({d_model}, h*d), got {w.shape}")
        widths[name] = w.shape[1]
    if widths["wq"] != widths["wk"]:
        raise AttentionInputError(f"wq and wk must have the same width, got {widths['wq']} and {widths['wk']}")
    for name, w in (("wq", wq if wq is not None else wk), ("wv", wv)):
        if widths[name] % heads:
            what = "the embedding dimension" if w is None else f"{name}'s width"
            raise AttentionInputError(f"{heads} heads do not divide {what} ({widths[name]})")
    d_k, d_v = widths["wq"] // heads, widths["wv"] // heads
    if wo is not None and (wo.ndim != 2 or wo.shape[0] != heads * d_v):
        raise AttentionInputError(f"wo must have shape ({heads * d_v}, d_out), got {wo.shape}")
    for name, w in (("wq", wq), ("wk", wk), ("wv", wv), ("wo", wo)):
        if w is not None and not np.isfinite(w).all():
            raise AttentionInputError(f"{name} holds NaN or infinite values")
    return d_k, d_v


def split_heads(m: np.ndarray, heads: int) -> np.ndarray:
    """(..., T, h*d) -> (..., h, T, d): head i gets columns i*d to (i+1)*d."""
    *lead, T, width = m.shape
    return m.reshape(*lead, T, heads, width // heads).swapaxes(-3, -2)


def self_attention(
    x: np.ndarray,
    *,
    heads: int = 1,
    wq: np.ndarray | None = None,
    wk: np.ndarray | None = None,
    wv: np.ndarray | None = None,
    wo: np.ndarray | None = None,
    scale: bool = True,
    causal: bool = False,
) -> Attention:
    """Multi-head scaled dot-product self-attention of ``x`` (T, d_model) over itself.

    Returns an :class:`Attention` with scores and weights (h, T, T), per-head outputs (h, T, d_v) and
    the output (T, d_out), where d_out = h*d_v without ``wo`` and ``wo.shape[1]`` with it. Leading
    batch dimensions are allowed: x (..., T, d_model) gives scores (..., h, T, T) and so on, each
    sequence attending only over itself (see :meth:`Attention.select`).
    """
    x = np.asarray(x)
    if x.ndim < 2 or x.shape[-2] < 1 or x.shape[-1] < 1:
        raise AttentionInputError(f"x must have shape (T, d_model) with T, d_model >= 1, got {x.shape}")
    dtype = compute_dtype(x)
    x = x.astype(dtype, copy=False)
    if not np.isfinite(x).all():
        raise AttentionInputError("x holds NaN or infinite values")
    if wq is not None or wk is not None or wv is not None or wo is not None:
        wq, wk, wv, wo = (None if w is None else np.asarray(w).astype(dtype, copy=False) for w in (wq, wk, wv, wo))
    d_k, _ = check_projections(x.shape[-1], heads, wq, wk, wv, wo)
    T = x.shape[-2]

    # 1. project (identity when no matrix is given) and split into heads; the result never aliases x
    own_x = x.copy() if any(w is None for w in (wq, wk, wv)) else x  # (T, d_model)
    q = split_heads(own_x if wq is None else x @ wq, heads)  # (..., h, T, d_k)
    k = split_heads(own_x if wk is None else x @ wk, heads)  # (..., h, T, d_k)
    v = split_heads(own_x if wv is None else x @ wv, heads)  # (..., h, T, d_v)
    # 2. scores: every query against every key, scaled, masked
    scores = q @ k.swapaxes(-1, -2)  # (..., h, T, T)
    if scale:
        scores /= np.sqrt(dtype.type(d_k))
    if causal:
        scores += causal_mask(T, dtype)
    # 3. attend: softmax over keys, mix the values
    weights = softmax(scores)  # (..., h, T, T)
    head_outputs = weights @ v  # (..., h, T, d_v)
    # 4. concatenate the heads and project
    concat = head_outputs.swapaxes(-3, -2).reshape(*x.shape[:-1], -1)  # (..., T, h*d_v)
    output = concat if wo is None else concat @ wo  # (..., T, d_out)
    return Attention(
        queries=q, keys=k, values=v, scores=scores, weights=weights,
        head_outputs=head_outputs, output=output, scale=scale, causal=causal,
    )
