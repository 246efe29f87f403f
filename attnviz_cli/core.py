"""Scaled dot-product self-attention in plain NumPy: arrays in, arrays out, no I/O.

Conventions (shared with the CLI's weight files): row vectors, ``Q = x @ wq``. ``wq`` and ``wk`` have
shape (d_model, h*d_k) and ``wv`` (d_model, h*d_v); head i uses columns i*d_k to (i+1)*d_k. ``wo`` has
shape (h*d_v, d_out). An absent ``wq``/``wk``/``wv`` is the identity, so each head attends over its own
slice of d_model/h embedding components. The computation runs in the dtype of ``x`` (float32 stays
float32, float64 stays float64; other input is taken as float64).

The maths is :func:`attention`, a few plain lines, and :func:`self_attention` runs ordinary sentences
through it in five numbered steps (project, split, attend, concat, project). Long inputs go to
:mod:`attnviz_cli.engine` instead, which computes the same numbers in blocks of rows on threads (tested
against this plain path); ``benchmarks/attention.py`` measures it against PyTorch.
Which path runs depends on the input's size alone. :func:`summarized_attention` hands the weights to a
caller's summary (:func:`attnviz_cli.analysis.attention_summary`'s) a block of rows at a time and, asked
to, keeps no (h, T, T) matrix: its memory then grows as O(T x block) rather than O(h x T x T), and its
numbers are still :func:`self_attention`'s, to the last bit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np

from . import engine
from .attention_types import Attention, AttentionOutputs
from .engine import Block, Projected, Runner, Scratch, blocks, split_heads
from .errors import counted

__all__ = [
    "AttentionInputError", "BlockSummary", "attention", "attention_in_blocks", "causal_mask", "check_projections", "compute_dtype",
    "merge_heads", "plain_softmax", "row_sums", "self_attention", "sinusoidal_positions", "softmax", "softmax_into", "split_heads",
    "summarized_attention",
]


_A = TypeVar("_A", bound=AttentionOutputs)


class AttentionInputError(ValueError):
    """Inputs that self-attention cannot run on: wrong shapes, non-finite values, bad head count."""


def plain_softmax(x: np.ndarray) -> np.ndarray:
    """exp(x) / Σ exp(x) over the last axis, as a paper writes it; the row maximum is taken out first (it
    cancels) so exp cannot overflow. :func:`softmax` computes the same, faster and more carefully."""
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax(scores: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, stable for any finite or -inf score: :func:`plain_softmax`, with the
    row sums by BLAS (:func:`row_sums`) and in place.

    The row maximum is subtracted before ``exp`` so large scores cannot overflow; -inf (a mask) gives a
    weight of exactly 0. A row with nothing to attend to (all -inf) is an error, not NaN.
    """
    scores = np.asarray(scores)
    scores = scores.astype(compute_dtype(scores), copy=False)  # integers: float64, as self_attention
    weights = np.empty_like(scores)
    softmax_into(scores, weights)
    return weights


def softmax_into(scores: np.ndarray, out: np.ndarray) -> None:
    """:func:`softmax` of ``scores`` written into ``out`` (which may be ``scores`` itself)."""
    row_max = scores.max(axis=-1, keepdims=True)  # (..., 1)
    if not np.isfinite(row_max).all():
        if np.isnan(scores).any() or np.isposinf(scores).any():
            raise AttentionInputError("scores hold NaN or +inf")
        raise AttentionInputError("a row of scores is fully masked: that query has nothing to attend to")
    np.subtract(scores, row_max, out=out)
    np.exp(out, out=out)  # masked (-inf) scores give exactly 0
    out /= row_sums(out)


def row_sums(x: np.ndarray) -> np.ndarray:
    """x.sum(axis=-1, keepdims=True), as a product with a column of ones: BLAS sums a (12, 128, 128)
    stack of weights 4x faster than NumPy's reduction along a short last axis."""
    return x @ np.ones((x.shape[-1], 1), x.dtype)


def attention(
    q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: np.ndarray | None = None, *, scale: bool | float = True,
    softcap: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scaled dot-product attention: softmax(Q Kᵀ / √d_k + mask) V.

    q (..., T, d_k), k (..., T, d_k), v (..., T, d_v); ``mask`` broadcasts to (..., T, T), 0 where a
    query may look and -inf where it may not. ``scale``: True divides by √d_k, a number multiplies by it
    (Gemma's query_pre_attn_scalar^-½), False leaves the products as they are. ``softcap``: the scaled
    products become cap · tanh(s / cap) before the mask (Gemma 2). Returns (scores, weights, output): the
    scores (..., T, T) as they enter the softmax, the weights (..., T, T), and the output (..., T, d_v).
    """
    scores = q @ k.swapaxes(-1, -2)  # (..., T, T)
    _scaled(scores, scale, q.shape[-1], softcap)
    if mask is not None:
        scores += mask
    weights = softmax(scores)  # (..., T, T)
    return scores, weights, weights @ v  # (..., T, d_v)


def _scaled(scores: np.ndarray, scale: bool | float, d_k: int, softcap: float | None) -> None:
    """:func:`attention`'s scaling and soft-capping of the products, in place."""
    kind = scores.dtype.type
    if scale is True:
        scores /= np.sqrt(kind(d_k))
    elif scale is not False:
        scores *= kind(scale)
    if softcap is not None:
        scores /= kind(softcap)
        np.tanh(scores, out=scores)
        scores *= kind(softcap)


def attention_in_blocks(
    q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: np.ndarray | None = None, *, threads: int | None = None,
    run: Runner | None = None, scale: bool | float = True, softcap: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`attention` of (h, T, d) inputs, the same numbers computed a block of query rows
    at a time, on every core for large inputs: NumPy runs ``exp`` on one core, BLAS runs small
    matrices on one, and rows of different blocks are independent. ``mask`` is (T, T) or None.
    ``run``: the caller's threads, already started (a model's layers share one pool), instead of
    ``threads`` new ones."""
    h, T, d_k = q.shape
    scores = np.empty((h, T, T), q.dtype)
    weights = np.empty_like(scores)
    out = np.empty((h, T, v.shape[-1]), q.dtype)

    def work(block: Block, _: Scratch) -> None:
        pairs, rows = block.where
        block_scores = scores[pairs, rows]  # (pairs, rows, T), a view
        np.matmul(q[pairs, rows], k[pairs].swapaxes(-1, -2), out=block_scores)
        _scaled(block_scores, scale, d_k, softcap)
        if mask is not None:
            block_scores += mask[rows]
        softmax_into(block_scores, weights[pairs, rows])
        np.matmul(weights[pairs, rows], v[pairs], out=out[pairs, rows])

    if run is not None:
        run.blocks(blocks(h, T), work)
    else:
        with Runner(threads, scores.size) as own:
            own.blocks(blocks(h, T), work)
    return scores, weights, out


def sinusoidal_positions(T: int, d_model: int, dtype: np.dtype | type = np.float64) -> np.ndarray:
    """(T, d_model) the original Transformer's positional encoding (Vaswani et al. 2017, section 3.5):

        PE[t, 2i] = sin(t / 10000^(2i / d_model)),  PE[t, 2i+1] = cos(t / 10000^(2i / d_model))

    Added to the embeddings, it makes a token's vector depend on where it stands, so attention can
    tell "dog bites man" from "man bites dog"; without it, reordering the tokens only reorders the
    outputs.
    """
    rates = 1.0 / 10000.0 ** (np.arange(0, d_model, 2) / d_model)  # (ceil(d_model / 2),)
    angles = np.arange(T)[:, None] * rates  # (T, ceil(d_model / 2))
    encoding = np.empty((T, d_model))
    encoding[:, 0::2] = np.sin(angles)
    encoding[:, 1::2] = np.cos(angles[:, : d_model // 2])
    return encoding.astype(dtype)


def merge_heads(m: np.ndarray) -> np.ndarray:
    """(..., h, T, d) -> (..., T, h*d): the heads side by side, the inverse of :func:`split_heads`."""
    *lead, h, T, d = m.shape
    return m.swapaxes(-3, -2).reshape(*lead, T, h * d)


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
        if w.shape[1] == 0:
            raise AttentionInputError(f"{name} has no columns (shape {w.shape}): each head needs at least one")
        widths[name] = w.shape[1]
    if widths["wq"] != widths["wk"]:
        raise AttentionInputError(f"wq and wk must have the same width, got {widths['wq']} and {widths['wk']}")
    for name, w in (("wq", wq if wq is not None else wk), ("wv", wv)):
        if widths[name] % heads:
            what = "the embedding dimension" if w is None else f"{name}'s width"
            raise AttentionInputError(f"{counted(heads, 'head')} do not divide {what} ({widths[name]})")
    d_k, d_v = widths["wq"] // heads, widths["wv"] // heads
    if wo is not None and (wo.ndim != 2 or wo.shape[0] != heads * d_v):
        raise AttentionInputError(f"wo must have shape ({heads * d_v}, d_out), got {wo.shape}")
    for name, w in (("wq", wq), ("wk", wk), ("wv", wv), ("wo", wo)):
        if w is not None and not np.isfinite(w).all():
            raise AttentionInputError(f"{name} holds NaN or infinite values")
    return d_k, d_v


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
    threads: int | None = None,
) -> Attention:
    """Multi-head scaled dot-product self-attention of ``x`` (T, d_model) over itself.

    Returns an :class:`Attention` with scores and weights (h, T, T), per-head outputs (h, T, d_v) and
    the output (T, d_out), where d_out = h*d_v without ``wo`` and ``wo.shape[1]`` with it. Leading
    batch dimensions are allowed: x (..., T, d_model) gives scores (..., h, T, T) and so on, each
    sequence attending only over itself (see :meth:`Attention.select`). ``threads``: how many to use
    on large inputs (default: every CPU this process may run on).
    """
    qkv = _checked(x, heads, wq, wk, wv, wo)
    with np.errstate(over="ignore", invalid="ignore"), engine.one_blas_thread(_multiply_adds(qkv)):  # overflow: refused below
        if _long(qkv):  # the same maths in blocks, on threads
            result, _ = _blocked_self_attention(qkv, scale, causal, threads, keep_matrices=True, summarize=None)
        else:
            result = _plain_self_attention(qkv, scale, causal)
    assert isinstance(result, Attention)  # kept, on either path
    return _finite(result)


def _long(qkv: Projected) -> bool:
    """Whether one sequence's (h, T, T) scores are too many for one block: the blocked path then. The
    choice depends on the input's size alone, never on what is kept or shown, so a question has one
    answer, to the last bit."""
    return qkv.heads * qkv.T * qkv.T > engine.BLOCK_ELEMENTS


def _multiply_adds(qkv: Projected) -> int:
    """A bound on the multiply-adds of any one product of the attention of ``qkv``."""
    d_model, rows = qkv.x.shape[-1], qkv.x.size // qkv.x.shape[-1]
    widths = sum(w.shape[1] for w in (qkv.wq, qkv.wk, qkv.wv, qkv.wo) if w is not None)
    return qkv.pairs * qkv.T * qkv.T * (qkv.d_k + qkv.d_v) + rows * max(d_model, qkv.heads * qkv.d_v) * widths


def _plain_self_attention(qkv: Projected, scale: bool, causal: bool) -> Attention:
    """:func:`self_attention` in five plain steps, for ordinary sentences."""
    x, dtype, heads = qkv.x, qkv.dtype, qkv.heads
    # 1. project: Q = x Wq, K = x Wk, V = x Wv (no matrix: the identity)
    q, k, v = (x if w is None else x @ w for w in (qkv.wq, qkv.wk, qkv.wv))  # (..., T, h*d)
    # 2. split into heads
    q, k, v = (np.array(split_heads(m, heads), order="C") for m in (q, k, v))  # (..., h, T, d_k or d_v): copies
    # 3. attend, every head at once
    mask = causal_mask(qkv.T, dtype) if causal else None
    scores, weights, head_outputs = attention(q, k, v, mask, scale=scale)  # (..., h, T, T), (..., h, T, d_v)
    # 4. concatenate the heads, 5. project the result
    output = merge_heads(head_outputs)  # (..., T, h*d_v)
    if qkv.wo is not None:
        output = output @ qkv.wo  # (..., T, d_out)
    return Attention(
        queries=q, keys=k, values=v, scores=scores, weights=weights, head_outputs=head_outputs,
        output=output, scale=scale, causal=causal,
    )


BlockSummary = Callable[[np.ndarray, np.ndarray | None], tuple[np.ndarray, ...]]
"""What a caller makes of weights (..., rows, T) and where they are masked (bool, True where a key may not
be seen; it broadcasts against the weights, or is None): arrays (..., rows, ...), one row per query."""


def summarized_attention(
    x: np.ndarray,
    summarize: BlockSummary,
    *,
    heads: int = 1,
    wq: np.ndarray | None = None,
    wk: np.ndarray | None = None,
    wv: np.ndarray | None = None,
    wo: np.ndarray | None = None,
    scale: bool = True,
    causal: bool = False,
    keep_matrices: bool = False,
    threads: int | None = None,
) -> tuple[AttentionOutputs, tuple[np.ndarray, ...]]:
    """:func:`self_attention`, and what ``summarize`` makes of its weights, as arrays (..., h, T, ...).

    The numbers are :func:`self_attention`'s, bit for bit, whatever ``keep_matrices`` says: it only
    decides whether the (h, T, T) scores and weights are given back (an :class:`Attention`) or dropped
    (an :class:`AttentionOutputs`). Long inputs are summarized one block of rows at a time, while the
    block is in the cache, and without ``keep_matrices`` each block is dropped once summarized, so
    memory grows as O(T x block) rather than O(h x T x T).
    """
    qkv = _checked(x, heads, wq, wk, wv, wo)
    with np.errstate(over="ignore", invalid="ignore"), engine.one_blas_thread(_multiply_adds(qkv)):  # overflow: refused below
        if _long(qkv):
            attention, parts = _blocked_self_attention(qkv, scale, causal, threads, keep_matrices, summarize)
        else:
            full = _plain_self_attention(qkv, scale, causal)
            parts = summarize(full.weights, np.isneginf(full.scores))
            attention = full if keep_matrices else _outputs(full)
    return _finite(attention), parts


def _blocked_self_attention(
    qkv: Projected, scale: bool, causal: bool, threads: int | None, keep_matrices: bool,
    summarize: BlockSummary | None,
) -> tuple[AttentionOutputs, tuple[np.ndarray, ...]]:
    """:func:`self_attention` by the engine: blocks of rows, on threads, for long inputs; with what
    ``summarize`` makes of each block, if given. A block's numbers are made by the same calls on the
    same shapes whether its scores and weights are kept or written into a scratch buffer and dropped."""
    T, pairs, dtype = qkv.T, qkv.pairs, qkv.dtype
    if keep_matrices:
        scores = np.empty((pairs, T, T), dtype)  # (sequence, head) pairs flattened
        weights = np.empty_like(scores)
    head_outputs = np.empty((pairs, T, qkv.d_v), dtype)
    summaries: list[tuple[Block, tuple[np.ndarray, ...]]] = []  # appended to from every thread

    def attend(block: Block, scratch: Scratch) -> None:
        if keep_matrices:
            s, w = scores[block.where], weights[block.where]
        else:
            s = w = scratch.take(block.shape(T), dtype)  # softmaxed in place: the scores are not kept
        qkv.scores_into(block, scale, causal, s)
        softmax_into(s, w)
        np.matmul(w, v[block.pairs], out=head_outputs[block.where])
        if summarize is not None:
            summaries.append((block, summarize(w, block.causal_mask(T) if causal else None)))

    with Runner(threads, pairs * T * T) as run:
        q, k, v = qkv.project(run)  # (pairs, T, d_k or d_v)
        run.blocks(blocks(pairs, T), attend)
        output = qkv.output(head_outputs, run)
    attention = AttentionOutputs(
        queries=qkv.unflat(q), keys=qkv.unflat(k), values=qkv.unflat(v),
        head_outputs=qkv.unflat(head_outputs), output=output, scale=scale, causal=causal,
    )
    if keep_matrices:
        attention = _with(attention, qkv.unflat(scores), qkv.unflat(weights))
    return attention, tuple(qkv.unflat(part) for part in _assembled(summaries, pairs, T))


def _assembled(summaries: list[tuple[Block, tuple[np.ndarray, ...]]], pairs: int, T: int) -> tuple[np.ndarray, ...]:
    """Each block's summary arrays (pairs, rows, ...) put in place in arrays (pairs, T, ...)."""
    if not summaries:
        return ()
    whole = tuple(np.empty((pairs, T, *a.shape[2:]), a.dtype) for a in summaries[0][1])
    for block, parts in summaries:
        for target, part in zip(whole, parts, strict=True):
            target[block.where] = part
    return whole


def _outputs(attention: Attention) -> AttentionOutputs:
    """``attention`` without its (h, T, T) matrices."""
    a = attention
    return AttentionOutputs(
        queries=a.queries, keys=a.keys, values=a.values, head_outputs=a.head_outputs, output=a.output,
        scale=a.scale, causal=a.causal,
    )


def _with(a: AttentionOutputs, scores: np.ndarray, weights: np.ndarray) -> Attention:
    """``a`` with its (h, T, T) matrices."""
    return Attention(
        queries=a.queries, keys=a.keys, values=a.values, head_outputs=a.head_outputs, output=a.output,
        scale=a.scale, causal=a.causal, scores=scores, weights=weights,
    )


def _finite(attention: _A) -> _A:
    """``attention``, or an error if a number overflowed on the way (weights or inputs too large for
    the dtype): a result is finite or it is not given. The output is enough to look at: an overflow
    in the queries or keys makes the scores non-finite, which the softmax refuses, and one in the
    values or a head's output reaches the output."""
    if not np.isfinite(attention.output).all():
        raise AttentionInputError(
            f"the output overflowed {attention.output.dtype} (the projections or the inputs are too large): "
            "no finite result"
        )
    return attention


def _checked(x, heads, wq, wk, wv, wo) -> Projected:
    """Refuse inputs attention cannot run on; cast weights to the dtype of ``x``; ready to project."""
    x = np.asarray(x)
    if x.ndim < 2 or x.shape[-2] < 1 or x.shape[-1] < 1:
        raise AttentionInputError(f"x must have shape (T, d_model) with T, d_model >= 1, got {x.shape}")
    dtype = compute_dtype(x)
    x = x.astype(dtype, copy=False)
    if not np.isfinite(x).all():
        raise AttentionInputError("x holds NaN or infinite values")
    wq, wk, wv, wo = (None if w is None else np.asarray(w).astype(dtype, copy=False) for w in (wq, wk, wv, wo))
    d_k, d_v = check_projections(x.shape[-1], heads, wq, wk, wv, wo)
    return Projected(x, heads, d_k, d_v, wq, wk, wv, wo)
