"""Scaled dot-product self-attention in plain NumPy: arrays in, arrays out, no I/O.

Conventions (shared with the CLI's weight files): row vectors, ``Q = x @ wq``. ``wq`` and ``wk`` have
shape (d_model, h*d_k) and ``wv`` (d_model, h*d_v); head i uses columns i*d_k to (i+1)*d_k. ``wo`` has
shape (h*d_v, d_out). An absent ``wq``/``wk``/``wv`` is the identity, so each head attends over its own
slice of d_model/h embedding components. The computation runs in the dtype of ``x`` (float32 stays
float32, float64 stays float64; other input is taken as float64).

How it runs fast (see ``benchmarks/attention.py``): Q, K and V come from one fused product; the scores
are computed, softmaxed and mixed into the values one block of rows at a time, so a block is still in
the CPU cache for every pass over it; and the blocks are shared between threads (NumPy releases the GIL
in BLAS and in ufuncs). While our threads run, BLAS is held to one thread each: OpenBLAS's own workers
would otherwise spin on the same cores. :func:`attention_summary` keeps no (h, T, T) matrix at all, so
its memory grows as O(T x block) rather than O(h x T x T).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Self

import numpy as np

from .analysis import entropy_bits, top_keys
from .results import Attention, HeadSummary

BLOCK_ELEMENTS = 1 << 19  # scores per block of rows: 2 MiB in float32, about what a core's caches hold
THREADED_ELEMENTS = 1 << 20  # below this many scores, one thread: starting threads would cost more
MATMUL_ROWS = 256  # rows per BLAS call in the projections of long sequences


class AttentionInputError(ValueError):
    """Inputs that self-attention cannot run on: wrong shapes, non-finite values, bad head count."""


def softmax(scores: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, stable for any finite or -inf score.

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
    out /= out.sum(axis=-1, keepdims=True)


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
    threads: int | None = None,
) -> Attention:
    """Multi-head scaled dot-product self-attention of ``x`` (T, d_model) over itself.

    Returns an :class:`Attention` with scores and weights (h, T, T), per-head outputs (h, T, d_v) and
    the output (T, d_out), where d_out = h*d_v without ``wo`` and ``wo.shape[1]`` with it. Leading
    batch dimensions are allowed: x (..., T, d_model) gives scores (..., h, T, T) and so on, each
    sequence attending only over itself (see :meth:`Attention.select`). ``threads``: how many to use
    on large inputs (default: every CPU this process may run on).
    """
    qkv = _Projected.check(x, heads, wq, wk, wv, wo)
    scores = np.empty((qkv.pairs, qkv.T, qkv.T), qkv.dtype)  # (sequence, head) pairs flattened
    weights = np.empty_like(scores)
    head_outputs = np.empty((qkv.pairs, qkv.T, qkv.d_v), qkv.dtype)

    def attend(block: _Block, scratch: _Scratch) -> None:
        s, w = scores[block.where], weights[block.where]
        qkv.scores_into(block, scale, causal, s)
        softmax_into(s, w)
        np.matmul(w, qkv.v[block.pairs], out=head_outputs[block.where])

    with _Runner(threads, scores.size) as run:
        qkv.project(run)
        run.blocks(_blocks(qkv.pairs, qkv.T), attend)
        output = qkv.output(head_outputs, run)
    return Attention(
        queries=qkv.unflat(qkv.q), keys=qkv.unflat(qkv.k), values=qkv.unflat(qkv.v),
        scores=qkv.unflat(scores), weights=qkv.unflat(weights), head_outputs=qkv.unflat(head_outputs),
        output=output, scale=scale, causal=causal,
    )


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
    threads: int | None = None,
) -> tuple[Attention, HeadSummary]:
    """:func:`self_attention` without the (h, T, T) matrices, for long inputs.

    Rows of scores are made, softmaxed, mixed into the values and summarized one block at a time, then
    dropped, so memory grows as O(T x block) rather than O(h x T x T). Returns the attention (with
    ``scores`` and ``weights`` None) and its :class:`HeadSummary` over (..., h, T): per query, the
    entropy and the ``top_k`` keys, as :func:`attnviz_cli.analysis.head_summary` finds them in full
    weights.
    """
    qkv = _Projected.check(x, heads, wq, wk, wv, wo)
    T, k = qkv.T, max(1, min(top_k, qkv.T))
    head_outputs = np.empty((qkv.pairs, T, qkv.d_v), qkv.dtype)
    entropy = np.empty((qkv.pairs, T), qkv.dtype)
    keys = np.empty((qkv.pairs, T, k), np.intp)
    top_weights = np.empty((qkv.pairs, T, k), qkv.dtype)

    def attend(block: _Block, scratch: _Scratch) -> None:
        w = scratch.take(block.shape(T), qkv.dtype)
        qkv.scores_into(block, scale, causal, w)
        softmax_into(w, w)  # in place: the scores are not kept
        np.matmul(w, qkv.v[block.pairs], out=head_outputs[block.where])
        entropy[block.where] = entropy_bits(w)
        keys[block.where] = top_keys(w, k, block.causal_mask(T) if causal else None)
        top_weights[block.where] = np.take_along_axis(w, keys[block.where], axis=-1)

    with _Runner(threads, qkv.pairs * T * T) as run:
        qkv.project(run)
        run.blocks(_blocks(qkv.pairs, T), attend)
        output = qkv.output(head_outputs, run)
    visible = np.arange(1, T + 1) if causal else np.full(T, T)  # keys each query may attend to
    summary = HeadSummary(
        entropy_bits=qkv.unflat(entropy), strongest_key=qkv.unflat(keys[..., 0].copy()),
        strongest_weight=qkv.unflat(top_weights[..., 0].copy()), top_keys=qkv.unflat(keys),
        top_weights=qkv.unflat(top_weights),
        top_counts=qkv.unflat(np.broadcast_to(np.minimum(visible, k), (qkv.pairs, T)).copy()),
    )
    attention = Attention(
        queries=qkv.unflat(qkv.q), keys=qkv.unflat(qkv.k), values=qkv.unflat(qkv.v), scores=None,
        weights=None, head_outputs=qkv.unflat(head_outputs), output=output, scale=scale, causal=causal,
    )
    return attention, summary


@dataclass(frozen=True)
class _Block:
    """A block of work: query ``rows`` of the scores of the (sequence, head) ``pairs`` it covers."""

    pairs: slice
    rows: slice

    @property
    def where(self) -> tuple[slice, slice]:
        return self.pairs, self.rows

    def shape(self, T: int) -> tuple[int, int, int]:
        return self.pairs.stop - self.pairs.start, self.rows.stop - self.rows.start, T

    def causal_mask(self, T: int) -> np.ndarray:
        """(rows, T) bool: True where key j comes after the query (j > i)."""
        return np.arange(T) > np.arange(self.rows.start, self.rows.stop)[:, None]


def _blocks(pairs: int, T: int) -> list[_Block]:
    """Blocks of about BLOCK_ELEMENTS scores covering ``pairs`` T x T matrices: some rows of one pair
    for long sequences, several whole pairs for short ones."""
    rows = max(1, min(T, BLOCK_ELEMENTS // T))
    per_block = max(1, BLOCK_ELEMENTS // (T * T)) if rows == T else 1
    return [
        _Block(slice(p, min(p + per_block, pairs)), slice(r, min(r + rows, T)))
        for p in range(0, pairs, per_block) for r in range(0, T, rows)
    ]


@dataclass
class _Projected:
    """Checked inputs and, after :meth:`project`, queries, keys and values as (pairs, T, d) arrays:
    one contiguous matrix per (sequence, head) pair, which is what fast BLAS calls want."""

    x: np.ndarray  # (..., T, d_model), in the compute dtype
    heads: int
    d_k: int
    d_v: int
    wq: np.ndarray | None
    wk: np.ndarray | None
    wv: np.ndarray | None
    wo: np.ndarray | None
    q: np.ndarray | None = None  # (pairs, T, d_k)
    k: np.ndarray | None = None
    v: np.ndarray | None = None  # (pairs, T, d_v)

    @classmethod
    def check(cls, x, heads, wq, wk, wv, wo) -> _Projected:
        """Refuse inputs attention cannot run on; cast weights to the dtype of ``x``."""
        x = np.asarray(x)
        if x.ndim < 2 or x.shape[-2] < 1 or x.shape[-1] < 1:
            raise AttentionInputError(f"x must have shape (T, d_model) with T, d_model >= 1, got {x.shape}")
        dtype = compute_dtype(x)
        x = x.astype(dtype, copy=False)
        if not np.isfinite(x).all():
            raise AttentionInputError("x holds NaN or infinite values")
        wq, wk, wv, wo = (None if w is None else np.asarray(w).astype(dtype, copy=False) for w in (wq, wk, wv, wo))
        d_k, d_v = check_projections(x.shape[-1], heads, wq, wk, wv, wo)
        return cls(x, heads, d_k, d_v, wq, wk, wv, wo)

    @property
    def dtype(self) -> np.dtype:
        return self.x.dtype

    @property
    def T(self) -> int:
        return self.x.shape[-2]

    @property
    def lead(self) -> tuple[int, ...]:
        return self.x.shape[:-2]

    @property
    def pairs(self) -> int:
        return int(np.prod(self.lead, dtype=np.int64)) * self.heads

    def unflat(self, a: np.ndarray) -> np.ndarray:
        """(pairs, ...) -> (..., h, ...): the caller's batch dimensions back (a view)."""
        return a.reshape(*self.lead, self.heads, *a.shape[1:])

    def project(self, run: _Runner) -> None:
        """Q, K and V by one fused product x @ [wq | wk | wv] (identity parts taken from x), split into
        heads piece by piece, so that no (T, 3 h d) intermediate is ever whole."""
        heads_of = [self._empty(w) for w in (self.wq, self.wk, self.wv)]
        given = [w for w in (self.wq, self.wk, self.wv) if w is not None]
        if len(given) < 3:  # the identity: x's own components, copied once and shared
            own = split_heads(self.x.reshape(-1, self.T, self.x.shape[-1]), self.heads).copy()
            heads_of = [own.reshape(self.pairs, self.T, -1) if h is None else h for h in heads_of]
        self.q, self.k, self.v = heads_of
        if not given:
            return
        fused = np.concatenate(given, axis=1) if len(given) > 1 else given[0]
        targets = [h for h, w in zip(heads_of, (self.wq, self.wk, self.wv)) if w is not None]
        x3d = self.x.reshape(-1, self.T, self.x.shape[-1])  # (sequences, T, d_model)

        def piece(seqs: slice, rows: slice) -> None:
            projected = np.matmul(x3d[seqs, rows], fused)  # (n, rows, widths of the given matrices)
            start = 0
            for target in targets:
                width = target.shape[-1] * self.heads
                self._by_sequence(target)[seqs, :, rows] = split_heads(projected[..., start : start + width], self.heads)
                start += width

        run.pieces(x3d.shape[0], self.T, piece)

    def _empty(self, w: np.ndarray | None) -> np.ndarray | None:
        return None if w is None else np.empty((self.pairs, self.T, w.shape[1] // self.heads), self.dtype)

    def _by_sequence(self, a: np.ndarray) -> np.ndarray:
        """(pairs, T, d) -> (sequences, h, T, d), a view."""
        return a.reshape(-1, self.heads, *a.shape[1:])

    def scores_into(self, block: _Block, scale: bool, causal: bool, out: np.ndarray) -> None:
        """The block's scores q.k, divided by sqrt(d_k) and masked with -inf, written into ``out``."""
        np.matmul(self.q[block.where], self.k[block.pairs].swapaxes(-1, -2), out=out)
        if scale:
            out /= np.sqrt(self.dtype.type(self.d_k))
        if causal:
            np.copyto(out, -np.inf, where=block.causal_mask(self.T))

    def output(self, head_outputs: np.ndarray, run: _Runner) -> np.ndarray:
        """The heads side by side (..., T, h*d_v), through ``wo`` if there is one; piece by piece."""
        by_sequence = self._by_sequence(head_outputs)  # (sequences, h, T, d_v)
        width = self.heads * self.d_v if self.wo is None else self.wo.shape[1]
        output = np.empty((by_sequence.shape[0], self.T, width), self.dtype)

        def piece(seqs: slice, rows: slice) -> None:
            concat = by_sequence[seqs, :, rows].swapaxes(1, 2)  # (n, rows, h, d_v)
            concat = concat.reshape(*concat.shape[:2], -1)  # (n, rows, h*d_v): a copy
            if self.wo is None:
                output[seqs, rows] = concat
            else:
                np.matmul(concat, self.wo, out=output[seqs, rows])

        run.pieces(by_sequence.shape[0], self.T, piece)
        return output.reshape(*self.lead, self.T, width)


class _Scratch:
    """One thread's buffer for blocks of weights that are not kept, reused block to block."""

    def __init__(self) -> None:
        self._buffers: dict[tuple[int, ...], np.ndarray] = {}

    def take(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        if shape not in self._buffers:
            self._buffers[shape] = np.empty(shape, dtype)
        return self._buffers[shape]


class _Runner:
    """Runs blocks of work on threads, with BLAS held to one thread each while they run.

    Small work (below THREADED_ELEMENTS scores) runs here, on the caller's thread, with BLAS as it is.
    """

    def __init__(self, threads: int | None, work: int) -> None:
        available = threads or _usable_cpus()
        self.workers = available if work >= THREADED_ELEMENTS else 1
        self._pool = None
        self._limits: AbstractContextManager = nullcontext()
        self._stopping = False  # set on an error or Ctrl-C: the other workers stop at their next piece

    def __enter__(self) -> Self:
        if self.workers > 1:
            from concurrent.futures import ThreadPoolExecutor  # only large inputs pay for these imports

            from threadpoolctl import threadpool_limits

            self._limits = threadpool_limits(1)
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="attnviz")
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._pool is not None:
            self._stopping = exc_info[0] is not None
            self._pool.shutdown()
            self._limits.__exit__(*exc_info)

    def blocks(self, blocks: list[_Block], work: Callable[[_Block, _Scratch], None]) -> None:
        """``work(block, scratch)`` for every block: worker i takes blocks i, i + n, i + 2n..."""

        def share(i: int) -> None:
            scratch = _Scratch()
            for block in blocks[i::self.workers]:
                if self._stopping:
                    return
                work(block, scratch)

        self._each(share)

    def pieces(self, sequences: int, T: int, work: Callable[[slice, slice], None]) -> None:
        """``work(seqs, rows)`` over every row of every sequence, in pieces of about MATMUL_ROWS rows:
        whole sequences when they are short, else chunks of rows of one sequence.

        The pieces depend on neither the worker count nor the other sequences in a batch, and NumPy
        makes one BLAS call per sequence in a piece, so a row's last bits never change with either.
        """
        if T <= MATMUL_ROWS:
            group = MATMUL_ROWS // T
            cut = [(slice(s, min(s + group, sequences)), slice(0, T)) for s in range(0, sequences, group)]
        else:
            cut = [(slice(s, s + 1), slice(r, min(r + MATMUL_ROWS, T))) for s in range(sequences) for r in range(0, T, MATMUL_ROWS)]

        def share(i: int) -> None:
            for seqs, rows in cut[i::self.workers]:
                if self._stopping:
                    return
                work(seqs, rows)

        self._each(share)

    def _each(self, work: Callable[[int], None]) -> None:
        if self._pool is None:
            work(0)
            return
        futures = [self._pool.submit(work, i) for i in range(self.workers)]
        try:
            for future in futures:
                future.result()  # re-raises a worker's error here
        except BaseException:
            self._stopping = True
            raise


def _usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
