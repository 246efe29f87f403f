"""The pieces every transformer here is built of, in plain NumPy: layer norm, GPT-2's GELU (BERT's is in
:mod:`.erf`), linear maps, one multi-head self-attention through :func:`attnviz_cli.core.attention`, and
:func:`by_rows`, which runs the row-wise rest of a layer a block of rows at a time on every core."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import numpy as np

from ..core import attention, attention_in_blocks, causal_mask, merge_heads, row_sums, split_heads
from ..engine import BLOCK_ELEMENTS, Runner

ROW_BLOCK = 128  # rows per block of row-wise work: its (128, 4d) feed-forward middle stays in a core's caches
THREADED_ROWS = 2 * ROW_BLOCK  # from this many rows (a batch's texts together), row-wise work uses every core


def layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    """(T, d) normalised over its last axis to mean 0 and variance 1, then scaled and shifted."""
    width = x.shape[-1]
    mean = row_sums(x)
    mean /= width
    centred = x - mean
    variance = row_sums(np.square(centred))
    variance /= width
    variance += x.dtype.type(eps)
    centred /= np.sqrt(variance, out=variance)
    centred *= gamma
    centred += beta
    return centred  # the textbook line, (x - μ) / √(σ² + ε) γ + β, in 55% of its time (its sums by BLAS)


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    """GPT-2's GELU, the tanh approximation: x (1 + tanh(√(2/π) (x + 0.044715 x³))) / 2, in place on one
    array (x³ as x·x·x: NumPy's x**3 calls pow, which made this 3.6x slower)."""
    kind = x.dtype.type
    out = x * x
    out *= x
    out *= kind(0.044715)
    out += x
    out *= np.sqrt(kind(2 / np.pi))
    np.tanh(out, out=out)
    out += kind(1)
    out *= x
    out *= kind(0.5)
    return out


def by_rows(run: Runner | None, fn: Callable[..., np.ndarray], *xs: np.ndarray, width: int) -> np.ndarray:
    """``fn`` over the rows of ``xs`` (each (..., d), the same rows), ROW_BLOCK rows at a time on
    ``run``'s threads (one thread without it): for the parts of a layer in which an output row depends
    on its own input rows alone (linear maps, residual sums, norms, GELU). ``width``: the last axis of
    what ``fn`` returns. On two cores, BLAS held to one thread each, this runs a 512-token layer about
    twice as fast as BLAS's own threads, and it shares the elementwise work that NumPy runs on one
    core. The blocks do not depend on the thread count, so neither does a bit of the result."""
    flat = [x.reshape(-1, x.shape[-1]) for x in xs]
    rows = flat[0].shape[0]
    if rows <= ROW_BLOCK:
        return fn(*xs)
    out = np.empty((rows, width), xs[0].dtype)

    def work(block: slice) -> None:  # each block lands in its rows on its own thread: no serial gathering after
        out[block] = fn(*(x[block] for x in flat))

    (run or Runner(1, 0)).row_blocks(rows, ROW_BLOCK, work)
    return out.reshape(*xs[0].shape[:-1], width)


def dense(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """x @ W + b for x (..., d_in) and W (d_in, d_out): a batch's rows as one matrix, so BLAS makes one
    large product rather than one small one per text."""
    out = x.reshape(-1, x.shape[-1]) @ w
    out += b  # in place: no second (T, d_out) array
    return out.reshape(*x.shape[:-1], w.shape[1])


class Attended(NamedTuple):
    """One layer's self-attention, head by head: every (h, T, ·) intermediate, as the views show them."""

    scores: np.ndarray  # (h, T, T): q.k/sqrt(d_k), -inf where masked
    weights: np.ndarray  # (h, T, T): their softmax
    queries: np.ndarray  # (h, T, d_k)
    keys: np.ndarray  # (h, T, d_k)
    values: np.ndarray  # (h, T, d_k)
    head_outputs: np.ndarray  # (h, T, d_k): each head's weighted sum of the values


def self_attention_layer(
    x: np.ndarray, w_qkv: np.ndarray, b_qkv: np.ndarray, heads: int, causal: bool = False, run: Runner | None = None,
) -> tuple[Attended, np.ndarray]:
    """Multi-head self-attention of x (T, d), or a batch (B, T, d). Its query, key and value maps are
    one (d, 3d) matrix side by side, applied as x @ W + b (on ``run``'s threads): one product for the
    three, GPT-2's layout.

    Returns every head's intermediates ((h, T, ·), or (B, h, T, ·)) and the heads side by side (T, d),
    before the output projection.
    """
    qkv = by_rows(run, partial(dense, w=w_qkv, b=b_qkv), x, width=w_qkv.shape[1])  # (T, 3d)
    d = qkv.shape[-1] // 3
    q, k, v = (split_heads(qkv[..., i * d:(i + 1) * d], heads) for i in range(3))  # (h, T, d_k): views
    T = x.shape[-2]
    mask = causal_mask(T, x.dtype) if causal else None
    if x.ndim == 2 and heads * T * T > BLOCK_ELEMENTS:  # a long text: a block of rows on each core
        scores, weights, out = attention_in_blocks(q, k, v, mask, run=run)
    else:
        scores, weights, out = attention(q, k, v, mask)  # (h, T, T), (h, T, T), (h, T, d_k)
    return Attended(scores, weights, q, k, v, out), merge_heads(out)  # (T, d)
