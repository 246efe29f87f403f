"""Value-weighted attention (Kobayashi et al. 2020, "Attention is Not Only a Weight"): a weight α_ij says
how much query i takes of key j, but what it takes is the vector f_h(x_j) = v_j^h W_O^h that head h moves
from j into the residual stream, so ||α_ij f_h(x_j)|| = α_ij ||f_h(x_j)|| is what actually arrives.
W_O^h is the head's d_k rows of the output projection (h d_k, d). The output projection's bias is left
out: it is added once per query, not per key. A norm after the projection (Gemma's post-attention norm,
OLMo 2's) acts on the sum over heads and keys, not per key, and is left out too. Pure NumPy, no I/O."""

from __future__ import annotations

import numpy as np


def value_norms(values: np.ndarray, w_out: np.ndarray) -> np.ndarray:
    """||v_j^h W_O^h|| for every head h and key j: ``values`` (..., h, T, d_k), the values each query head
    reads (grouped-query attention's shared heads repeated per query head), ``w_out`` (h d_k, d), the
    output projection laid out (in, out) -> (..., h, T). A head at a time: its (T, d) vectors, never all
    heads' at once."""
    h, d_k = values.shape[-3], values.shape[-1]
    per_head = [
        np.linalg.norm(values[..., head, :, :] @ w_out[head * d_k:(head + 1) * d_k], axis=-1)  # (..., T, d) -> (..., T)
        for head in range(h)
    ]
    return np.stack(per_head, axis=-2)  # (..., h, T)


def norm_weighted(weights: np.ndarray, norms: np.ndarray) -> np.ndarray:
    """``weights`` (..., h, T_q, T_k), each scaled by its key's norm ``norms`` (..., h, T_k) and every row
    renormalised to sum to 1 over its keys: α_ij N_hj / Σ_j' α_ij' N_hj'. A masked key (weight 0) stays
    0. A row whose every key it sees moves a zero vector is a ValueError naming it, not NaN."""
    scaled = weights * norms[..., None, :]  # (..., h, T_q, T_k)
    totals = scaled.sum(axis=-1, keepdims=True)  # (..., h, T_q, 1)
    empty = np.argwhere(~(totals[..., 0] > 0))
    if len(empty):
        *_, head, query = empty[0]
        raise ValueError(f"head {head}, query {query}: every key it sees moves a zero vector (v W_O), so value-weighted attention is undefined there")
    return scaled / totals
