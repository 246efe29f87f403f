"""The pieces every transformer page is built of: linear maps, layer norm, GELU, the feed-forward block and
multi-head self-attention.

Read the plain maths first (the ``plain_*`` functions): each is the line a paper writes. The functions
the pages call compute the same numbers (tests/test_layers.py holds them to the plain ones), with the
speed machinery beneath them, so that no page has to pass it on: in-place steps where they save a pass
over the data, and, for inputs of more than ROW_BLOCK rows, the products and GELU a block of rows at a
time on the threads of the forward pass's :class:`~attnviz_cli.engine.Runner` (:func:`on_threads`
opens it; BLAS is held to one thread each meanwhile). The blocks depend on the row count alone, never
on the thread count, so neither does a bit of the result.

Parameters arrive as the plain dicts of :mod:`.architecture` (:class:`~.architecture.Linear`,
:class:`~.architecture.Norm`), named for the maths: a page applies them as ``linear(x, **ffn_in)`` and
``layer_norm(x, **ln_1)``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from ..core import attention, attention_in_blocks, causal_mask, merge_heads, row_sums, softmax_into, split_heads
from ..engine import BLOCK_ELEMENTS, Block, Runner, Scratch
from .architecture import Linear
from .erf import erf, gelu_erf
from .rope import Rope

ROW_BLOCK = 128  # rows per block of row-wise work at least: a (128, 4d) feed-forward middle stays in a core's caches
MAX_ROW_BLOCK = 256  # and at most: two blocks of 256 rows run a 512-token decoder layer 10-15% faster than four of 128
THREADED_ROWS = 2 * ROW_BLOCK  # from this many rows (a batch's texts together), the work uses every core


# ---- the maths, plainly -----------------------------------------------------------------------------------


def plain_layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    """(x - μ) / √(σ² + ε) · g + b, with μ and σ² the mean and variance of each row (..., d)."""
    mean = x.mean(axis=-1, keepdims=True)
    variance = x.var(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + eps) * g + b


def plain_rms_norm(x: np.ndarray, g: np.ndarray, eps: float) -> np.ndarray:
    """x / √(mean(x²) + ε) · g over each row (..., d): layer norm without the centring or a bias."""
    return x / np.sqrt(np.mean(x**2, axis=-1, keepdims=True) + eps) * g


def plain_silu(x: np.ndarray) -> np.ndarray:
    """SiLU (swish): x σ(x) = x / (1 + e⁻ˣ)."""
    return x / (1 + np.exp(-x))


def plain_rotary(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """Rotary positions (Su et al. 2021) as Hugging Face applies them ("rotate half"): the first
    ``r = cos.shape[-1]`` dims of each row of x (..., T, d_k) turned, pair (i, i + r/2) by position t's
    angle θ_i t, x·cos + rotate_half(x)·sin; dims past r (a partial rotation: Phi-3) pass unchanged."""
    r = cos.shape[-1]
    turned, kept = x[..., :r], x[..., r:]
    half = np.concatenate([-turned[..., r // 2:], turned[..., :r // 2]], axis=-1)  # rotate_half
    return np.concatenate([turned * cos + half * sin, kept], axis=-1)


def plain_gelu(x: np.ndarray) -> np.ndarray:
    """BERT's GELU, exact: x Φ(x) = x (1 + erf(x / √2)) / 2, Φ the normal distribution's CDF."""
    return x * (1 + erf(x / math.sqrt(2))) / 2


def plain_gelu_tanh(x: np.ndarray) -> np.ndarray:
    """GPT-2's GELU, the tanh approximation: x (1 + tanh(√(2/π) (x + 0.044715 x³))) / 2."""
    return x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))) / 2


# ---- what the pages call --------------------------------------------------------------------------------


def linear(x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """x @ w + b for x (..., d_in): a batch's rows as one matrix, so BLAS makes one large product
    rather than one small one per text; the bias added in place."""

    def rows(x: np.ndarray, out: np.ndarray) -> None:
        np.matmul(x, w, out=out)
        if b is not None:
            out += b

    return by_rows(rows, x, width=w.shape[1])


def layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    """:func:`plain_layer_norm` of x (..., d) in about half its time: the rows' sums by BLAS
    (:func:`~attnviz_cli.core.row_sums`), every other step in place. All rows at once, on the caller's
    thread, however many there are: its passes are too short to share (in blocks of rows on two
    threads, handing the GIL between them, a (512, 384) norm took 1.4x as long)."""
    width = x.shape[-1]
    mean = row_sums(x)
    mean /= width
    out = x - mean  # centred
    variance = row_sums(np.square(out))
    variance /= width
    variance += x.dtype.type(eps)
    usable_scale(variance)
    out /= np.sqrt(variance, out=variance)
    out *= g
    out += b
    return out


def rms_norm(x: np.ndarray, g: np.ndarray, eps: float) -> np.ndarray:
    """:func:`plain_rms_norm` of x (..., d): the mean squares by BLAS, the rest in place."""
    mean_square = row_sums(np.square(x))
    mean_square /= x.shape[-1]
    mean_square += x.dtype.type(eps)
    usable_scale(mean_square)
    out = x / np.sqrt(mean_square, out=mean_square)
    out *= g
    return out


def usable_scale(variance: np.ndarray) -> None:
    """Refuse a norm's variance (plus epsilon) that is not a positive finite number: one that overflowed
    would divide its row to zeros, the output collapsing to the bias with no sign of it (a finite,
    wrong answer); a negative or NaN one gives NaN. :func:`.model.run_layers` names the layer."""
    if not ((variance > 0) & (variance < np.inf)).all():
        raise FloatingPointError("a norm's variance overflowed or is not positive")


def silu(x: np.ndarray) -> np.ndarray:
    """:func:`plain_silu` in one array of scratch: x / (1 + e⁻ˣ), e⁻ˣ made in place."""
    out = np.negative(x)
    np.exp(out, out=out)
    out += x.dtype.type(1)
    np.divide(x, out, out=out)
    return out


def gated_ffn(x: np.ndarray, gate_up: Linear, down: Linear, activation: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """A gated feed-forward block (SwiGLU with SiLU, GeGLU with GELU: Shazeer 2020), x (..., d) -> (..., d):
    down(activation(gate(x)) · up(x)), the gate and up maps one (d, 2 d_ff) matrix side by side, a block
    of rows at a time. Its halves make two products, into the two rows of one (2, rows, d_ff) buffer the
    forward pass reuses layer to layer (:func:`buffer`): the activation's passes run over whole rows
    (over every other half-row of one (rows, 2 d_ff) product, SiLU took 1.3x as long), and SiLU's
    product is made in place (:func:`silu_times`)."""
    w, b = gate_up["w"], gate_up["b"]
    half = w.shape[1] // 2
    buffers = _BUFFERS.get()  # the forward pass's, taken on its thread for the workers too

    def rows(x: np.ndarray, out: np.ndarray) -> None:
        both = buffer(buffers, "gate_up", (2, x.shape[0], half), x.dtype)
        for i, part in enumerate((slice(None, half), slice(half, None))):
            np.matmul(x, w[:, part], out=both[i])  # (rows, d_ff)
            if b is not None:
                both[i] += b[part]
        gate, up = both
        if activation is silu:
            middle = silu_times(gate, up)
        else:
            middle = activation(gate)
            middle *= up
        np.matmul(middle, down["w"], out=out)
        if down["b"] is not None:
            out += down["b"]

    return by_rows(rows, x, width=down["w"].shape[1])


def silu_times(gate: np.ndarray, up: np.ndarray) -> np.ndarray:
    """:func:`plain_silu` (gate) · up as (gate · up) / (1 + e⁻ᵍᵃᵗᵉ), written into ``up`` (``gate`` is
    overwritten): SwiGLU's middle in five passes and no array of its own."""
    up *= gate
    np.negative(gate, out=gate)
    np.exp(gate, out=gate)
    gate += gate.dtype.type(1)
    up /= gate
    return up


def rotary(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """:func:`plain_rotary` of x (..., T, d_k) in three passes and one array of scratch: x·cos, then the
    halves of each row read swapped (a view) times sin with rotate_half's signs, added (the same bits;
    four passes over half-rows took 1.3x as long)."""
    r = cos.shape[-1]
    half = r // 2
    signed = sin.reshape(*sin.shape[:-1], 2, half) * np.array([[-1], [1]], sin.dtype)  # (T, 2, r/2): -sin, sin
    out = np.empty_like(x)
    np.multiply(x[..., :r], cos, out=out[..., :r])
    swapped = x[..., :r].reshape(*x.shape[:-1], 2, half)[..., ::-1, :]  # (..., T, 2, r/2): the second half first
    out[..., :r] += np.multiply(swapped, signed).reshape(*x.shape[:-1], r)
    out[..., r:] = x[..., r:]
    return out


def rotary_tables(inv_freq: np.ndarray, T: int, dtype: np.dtype, start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin (T, r) of the angles t θ_i at positions start <= t < start + T, each θ twice (for the two halves a
    :func:`rotary` turns together). The angles are products in the run's dtype, as transformers makes
    them in float32 (so a float32 run turns by its very angles, whose rounding grows with t). A whole
    run's (start 0) are made once for the layers that share them (read only): a model's 30 layers made
    the same tables 30 times; a decoding step's rows past a start are made afresh (each step's start
    differs, so kept ones would only push a whole run's out)."""
    inv = np.asarray(inv_freq, np.float64).tobytes()
    return _rotary_tables(inv, T, np.dtype(dtype).str) if start == 0 else _tables(inv, T, np.dtype(dtype).str, start)


@lru_cache(maxsize=2)  # a model's rotations (Gemma 3 has two) at the length of the text it runs
def _rotary_tables(inv_freq: bytes, T: int, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    return _tables(inv_freq, T, dtype, 0)


def _tables(inv_freq: bytes, T: int, dtype: str, start: int) -> tuple[np.ndarray, np.ndarray]:
    angles = np.arange(start, start + T, dtype=dtype)[:, None] * np.frombuffer(inv_freq).astype(dtype)  # (T, r/2)
    angles = np.concatenate([angles, angles], axis=-1)
    cos, sin = np.cos(angles), np.sin(angles)
    cos.flags.writeable = sin.flags.writeable = False
    return cos, sin


def window_mask(T: int, window: int | None, dtype: np.dtype) -> np.ndarray:
    """(T, T) additive mask of a decoder: 0 where query q may see key k, -inf elsewhere: k <= q, and with
    a sliding ``window`` W, also k > q - W (the W latest keys, itself included), as transformers'
    masking_utils keeps them."""
    q, k = np.arange(T)[:, None], np.arange(T)[None, :]
    seen = k <= q
    if window is not None:
        seen &= k > q - window
    return np.where(seen, dtype.type(0), dtype.type(-np.inf))


def gelu(x: np.ndarray) -> np.ndarray:
    """:func:`plain_gelu` by :func:`attnviz_cli.models.erf.gelu_erf`, which rearranges it to save
    passes over the data (NumPy has no erf)."""
    return by_rows(gelu_erf, x, width=x.shape[-1])


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    """:func:`plain_gelu_tanh` in place on one array (x³ as x·x·x: NumPy's x**3 calls pow, which made
    this 3.6x slower)."""
    kind = x.dtype.type

    def rows(x: np.ndarray, out: np.ndarray) -> None:
        np.multiply(x, x, out=out)
        out *= x
        out *= kind(0.044715)
        out += x
        out *= np.sqrt(kind(2 / np.pi))
        np.tanh(out, out=out)
        out += kind(1)
        out *= x
        out *= kind(0.5)

    return by_rows(rows, x, width=x.shape[-1])


def ffn(x: np.ndarray, up: Linear, down: Linear, activation: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """The feed-forward block, linear(activation(linear(x, **up)), **down), x (..., d) -> (..., d),
    a block of rows at a time through all three, so that its (rows, d_ff) middle stays in the caches."""

    def rows(x: np.ndarray, out: np.ndarray) -> None:
        np.matmul(activation(linear(x, **up)), down["w"], out=out)  # the second linear, into its rows of the output
        out += down["b"]

    return by_rows(rows, x, width=down["w"].shape[1])


class Attended(NamedTuple):
    """One layer's self-attention, head by head: every (h, T, ·) intermediate, as the views show them."""

    scores: np.ndarray  # (h, T, T): q.k/sqrt(d_k), -inf where masked
    weights: np.ndarray  # (h, T, T): their softmax
    queries: np.ndarray  # (h, T, d_k)
    keys: np.ndarray  # (h, T, d_k)
    values: np.ndarray  # (h, T, d_k)
    head_outputs: np.ndarray  # (h, T, d_k): each head's weighted sum of the values


def heads_of(qkv: np.ndarray, n_head: int, n_kv_head: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A decoder's queries, keys and values, side by side in ``qkv`` (..., T, (h + 2 h_kv) d_k), split
    into heads: (..., h, T, d_k), (..., h_kv, T, d_k), (..., h_kv, T, d_k)."""
    d_k = qkv.shape[-1] // (n_head + 2 * n_kv_head)
    q = split_heads(qkv[..., : n_head * d_k], n_head)
    k = split_heads(qkv[..., n_head * d_k:(n_head + n_kv_head) * d_k], n_kv_head)
    v = split_heads(qkv[..., (n_head + n_kv_head) * d_k:], n_kv_head)
    return q, k, v


def grouped_attention(
    q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: np.ndarray, scale: float, softcap: float | None = None,
) -> tuple[Attended, np.ndarray]:
    """Grouped-query attention (Ainslie et al. 2023): h query heads (..., h, T, d_k) share h_kv key and
    value heads (..., h_kv, T, d_k), query head i reading key/value head i // (h / h_kv), as
    transformers' repeat_kv arranges them. softmax(scale · Q Kᵀ, soft-capped, + mask) V by
    :func:`attnviz_cli.core.attention`.

    Returns every head's intermediates, keys and values given per query head ((h, T, ·), or
    (B, h, T, ·)), and the heads side by side (T, h d_k), before the output projection."""
    group = q.shape[-3] // k.shape[-3]
    if group > 1:
        k, v = np.repeat(k, group, axis=-3), np.repeat(v, group, axis=-3)  # (..., h, T, d_k)
    T = q.shape[-2]
    if q.ndim == 3 and q.shape[0] * T * T > BLOCK_ELEMENTS:  # a long text: a block of query rows on each core
        scores, weights, out = attention_in_blocks(q, k, v, mask, run=_runner(), scale=scale, softcap=softcap)
    else:
        scores, weights, out = attention(q, k, v, mask, scale=scale, softcap=softcap)
    return Attended(scores, weights, q, k, v, out), merge_heads(out)


def causal_attention(
    q: np.ndarray, k: np.ndarray, v: np.ndarray, window: int | None, scale: float, softcap: float | None = None,
) -> tuple[Attended, np.ndarray]:
    """:func:`grouped_attention` under :func:`window_mask` (causal, the latest ``window`` keys if given),
    the same numbers made a block of :func:`causal_rows` query rows at a time. A block's scores are
    computed only for the keys up to its last query (the rest are -inf, their weights 0), so a T-token
    text makes about (T + rows) / 2T of the products, exponentials and passes of the whole (T, T) square;
    each key/value head is read as it is, for its group of query heads (one broadcast product, not a
    repeated copy); and each head's outputs are written where the heads side by side hold them.

    The blocks (a text's rows) run on the runner's threads; they depend on T and h alone, so no bit of
    the result changes with the thread count."""
    *lead, h, T, d_k = q.shape
    h_kv, texts = k.shape[-3], math.prod(lead)
    group = h // h_kv
    kind = q.dtype.type
    scores = np.empty((texts, h_kv, group, T, T), q.dtype)  # query head i: key/value head i // group
    weights = np.empty_like(scores)
    merged = np.empty((texts, T, h_kv, group, v.shape[-1]), q.dtype)  # the heads side by side
    outputs = merged.transpose(0, 2, 3, 1, 4)  # (texts, h_kv, group, T, d_v): a view of them
    qs = q.reshape(texts, h_kv, group, T, d_k)
    ks, vs = k.reshape(texts, h_kv, 1, T, d_k), v.reshape(texts, h_kv, 1, T, -1)

    def work(block: Block, _: Scratch) -> None:
        text, rows, seen = block.pairs.start, block.rows, block.rows.stop  # its queries see the keys before seen
        block_scores = scores[text, :, :, rows, :seen]  # (h_kv, group, rows, seen): views, as are the others
        np.matmul(qs[text, :, :, rows] * kind(scale), ks[text, :, :, :seen].swapaxes(-1, -2), out=block_scores)
        if softcap is not None:
            block_scores /= kind(softcap)
            np.tanh(block_scores, out=block_scores)
            block_scores *= kind(softcap)
        start, hidden = hidden_keys(rows, window)  # (rows, seen - start): the keys masked, from start on
        np.copyto(block_scores[..., start:], kind(-np.inf), where=hidden)
        scores[text, :, :, rows, seen:] = -np.inf
        block_weights = weights[text, :, :, rows, :seen]
        softmax_into(block_scores, block_weights)
        weights[text, :, :, rows, seen:] = 0
        np.matmul(block_weights, vs[text, :, :, :seen], out=outputs[text, :, :, rows])

    rows = causal_rows(T, h)
    cut = [Block(slice(n, n + 1), slice(r, min(r + rows, T))) for n in range(texts) for r in range(0, T, rows)]
    _runner().blocks(balanced(cut), work)
    keys, values = (np.repeat(a, group, axis=-3) if group > 1 else a for a in (k, v))  # (..., h, T, ·): per query head
    shape = (*lead, h, T)
    attended = Attended(
        scores.reshape(*shape, T), weights.reshape(*shape, T), q, keys, values, outputs.reshape(*shape, -1),
    )
    return attended, merged.reshape(*lead, T, -1)


def causal_rows(T: int, h: int) -> int:
    """Query rows per block of :func:`causal_attention`: 64 (the smaller, the fewer masked scores are
    made), fewer for long texts, so that a block's scores (h, rows, T) stay within BLOCK_ELEMENTS."""
    return max(16, min(64, BLOCK_ELEMENTS // (h * T)))


def hidden_keys(rows: slice, window: int | None) -> tuple[int, np.ndarray]:
    """Which keys k < rows.stop :func:`window_mask` hides from queries q in ``rows``: the first key
    that can be hidden, and (rows, rows.stop - first) True where k > q, or k <= q - window."""
    start = rows.start if window is None else 0
    q, k = np.arange(rows.start, rows.stop)[:, None], np.arange(start, rows.stop)[None, :]
    hidden = k > q
    if window is not None:
        hidden |= k <= q - window
    return start, hidden


def balanced(cut: list[Block]) -> list[Block]:
    """Blocks of growing cost in turns of four as 0 1 3 2, so that two workers taking every other one
    (i, i + 2, ...) get about equal shares: 1 + 4 against 2 + 3."""
    order = list(range(len(cut)))
    for i in range(2, len(cut) - 1, 4):
        order[i], order[i + 1] = order[i + 1], order[i]
    return [cut[i] for i in order]


def rotated_attention(
    q: np.ndarray, k: np.ndarray, v: np.ndarray, rope: Rope, window: int | None, scale: float | None = None,
    softcap: float | None = None, cache: KeyValues | None = None,
) -> tuple[Attended, np.ndarray]:
    """A decoder's causal attention over its heads ((..., h, T, d_k) queries, (..., h_kv, T, d_k) keys and
    values): queries and keys turned by their positions (:func:`rotary`), each query seeing the keys up
    to itself (the latest ``window`` of them, if given), by :func:`grouped_attention` (its blocked form,
    :func:`causal_attention`). ``scale``: the products' factor, d_k^-½ if None. ``cache``: the tokens
    before these, whose keys and values it holds (:func:`cached_attention`)."""
    if cache is not None:
        return cached_attention(q, k, v, rope, window, scale, softcap, cache)
    T, d_k = q.shape[-2], q.shape[-1]
    cos, sin = rotary_tables(rope.inv_freq, T, q.dtype)  # (T, r)
    q, k = rotary(q, cos, sin), rotary(k, cos, sin)
    return causal_attention(q, k, v, window, d_k**-0.5 if scale is None else scale, softcap)


class KeyValues:
    """One decoder layer's keys (rotated) and values of the tokens run so far, (h_kv, T, d_k) each: what
    a token decoded after them attends to, kept so that each new token's step computes its own alone."""

    def __init__(self) -> None:
        self.length = 0  # tokens held
        self._keys = self._values = np.empty((0, 0, 0))  # (h_kv, capacity, d_k): the first ``length`` rows used

    def extend(self, k: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Appends the keys and values (h_kv, T, d_k) of T more tokens; returns all held, (h_kv, length, d_k)
        each (views of the store, whose room doubles as it fills)."""
        end = self.length + k.shape[-2]
        if end > self._keys.shape[-2]:
            room = max(end, 2 * self._keys.shape[-2], 16)
            keys, values = np.empty((*k.shape[:-2], room, k.shape[-1]), k.dtype), np.empty((*v.shape[:-2], room, v.shape[-1]), v.dtype)
            if self.length:
                keys[..., :self.length, :], values[..., :self.length, :] = self.keys, self.values
            self._keys, self._values = keys, values
        self._keys[..., self.length:end, :], self._values[..., self.length:end, :] = k, v
        self.length = end
        return self.keys, self.values

    @property
    def keys(self) -> np.ndarray:
        return self._keys[..., :self.length, :]

    @property
    def values(self) -> np.ndarray:
        return self._values[..., :self.length, :]


def window_rows(start: int, T: int, window: int | None, dtype: np.dtype) -> np.ndarray:
    """The rows of :func:`window_mask` (start + T, start + T) for queries at positions start to start + T - 1:
    (T, start + T), what T tokens decoded after ``start`` others may see."""
    q, k = np.arange(start, start + T)[:, None], np.arange(start + T)[None, :]
    seen = k <= q
    if window is not None:
        seen &= k > q - window
    return np.where(seen, dtype.type(0), dtype.type(-np.inf))


def cached_attention(
    q: np.ndarray, k: np.ndarray, v: np.ndarray, rope: Rope, window: int | None, scale: float | None, softcap: float | None,
    cache: KeyValues,
) -> tuple[Attended, np.ndarray]:
    """:func:`rotated_attention` of T tokens (h, T, d_k) that follow the ``cache.length`` held in ``cache``:
    positions go on from there; the new keys, turned, and values join the cache, and the queries see all
    it holds (the latest ``window``, as :func:`window_mask` keeps them). Scores and weights: (h, T, start + T).
    The prefill (an empty cache) is :func:`causal_attention`, a block of rows at a time, as a whole run's."""
    start, T, d_k = cache.length, q.shape[-2], q.shape[-1]
    cos, sin = rotary_tables(rope.inv_freq, T, q.dtype, start)  # (T, r): the rows of a whole run's tables
    q, k = rotary(q, cos, sin), rotary(k, cos, sin)
    scale = d_k**-0.5 if scale is None else scale
    keys, values = cache.extend(k, v)  # (h_kv, start + T, d_k)
    if start == 0:
        return causal_attention(q, k, v, window, scale, softcap)
    return grouped_attention(q, keys, values, window_rows(start, T, window, q.dtype), scale, softcap)


def self_attention(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, n_head: int, causal: bool = False, cache: KeyValues | None = None,
) -> tuple[Attended, np.ndarray]:
    """Multi-head self-attention of x (T, d), or of a batch (B, T, d), by
    :func:`attnviz_cli.core.attention`: softmax(Q Kᵀ / √d_k + mask) V. The query, key and value maps
    are one (d, 3d) :class:`Linear` side by side (one product for the three, GPT-2's layout).
    ``cache`` (causal only): the keys and values of the tokens before these, which it keeps.

    Returns every head's intermediates ((h, T, ·), or (B, h, T, ·)) and the heads side by side (T, d),
    before the output projection.
    """
    qkv = linear(x, w, b)  # (T, 3d)
    d = qkv.shape[-1] // 3
    q, k, v = (split_heads(qkv[..., i * d:(i + 1) * d], n_head) for i in range(3))  # (h, T, d_k): views
    if cache is not None:
        start = cache.length
        keys, values = cache.extend(k, v)  # (h, start + T, d_k)
        if start:  # the prefill (an empty cache) runs as a whole run does, below
            return grouped_attention(q, keys, values, window_rows(start, q.shape[-2], None, x.dtype), q.shape[-1] ** -0.5)
    T = x.shape[-2]
    mask = causal_mask(T, x.dtype) if causal else None
    if x.ndim == 2 and n_head * T * T > BLOCK_ELEMENTS:  # a long text: a block of query rows on each core
        scores, weights, out = attention_in_blocks(q, k, v, mask, run=_runner())
    else:
        scores, weights, out = attention(q, k, v, mask)  # (h, T, T), (h, T, T), (h, T, d_k)
    return Attended(scores, weights, q, k, v, out), merge_heads(out)  # (T, d)


# ---- the machinery beneath ------------------------------------------------------------------------------

_RUNNER: ContextVar[Runner | None] = ContextVar("attnviz_runner", default=None)
_BUFFERS: ContextVar[dict[tuple, np.ndarray] | None] = ContextVar("attnviz_buffers", default=None)


@contextmanager
def on_threads(threads: int | None, rows: int) -> Iterator[Runner]:
    """A forward pass's threads for the functions above, while the ``with`` lasts: ``threads`` of
    them (None: every usable core) from THREADED_ROWS ``rows`` (tokens, over a batch's texts) on,
    else one; and the pass's arrays of scratch (:func:`buffer`). Without it, they run on the caller's
    thread alone, with new arrays."""
    with Runner(threads, rows, threaded_from=THREADED_ROWS) as run:
        token, buffers = _RUNNER.set(run), _BUFFERS.set({})
        try:
            yield run
        finally:
            _BUFFERS.reset(buffers)
            _RUNNER.reset(token)


def _runner() -> Runner:
    return _RUNNER.get() or Runner(1, 0)


def buffer(buffers: dict[tuple, np.ndarray] | None, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An array of scratch for ``name``, on this thread: the same one for every layer of a forward pass
    (``buffers``: :func:`on_threads`'s, dropped when it ends), else a new one. A new array of a layer's
    size comes, with glibc, from pages just handed back to the system, and each costs a page fault when
    first touched: SmolLM2 at 128 tokens took 15,000 faults a pass, 14,000 of them in the feed-forward
    block's three (128, 1536) arrays. Nothing made in one must outlive the call that takes it."""
    if buffers is None:
        return np.empty(shape, dtype)
    key = (name, threading.get_ident(), shape, np.dtype(dtype).str)
    if key not in buffers:
        buffers[key] = np.empty(shape, dtype)
    return buffers[key]


def block_rows(rows: int) -> int:
    """Rows per block for ``rows`` rows: half of them (two blocks, one for each of two cores), in steps
    of 64, between ROW_BLOCK and MAX_ROW_BLOCK. Fewer, larger products stream each weight matrix from
    memory fewer times (a decoder's gate and up maps are 7 MB); the count depends on the rows alone,
    never on the threads, so neither does a bit of the result."""
    half = -(-rows // 2)
    return min(MAX_ROW_BLOCK, max(ROW_BLOCK, -(-half // 64) * 64))


def by_rows(kernel: Callable[[np.ndarray, np.ndarray], object], x: np.ndarray, width: int) -> np.ndarray:
    """``kernel(rows, out)`` writes into ``out`` (n, width) what the rows (n, d) of x (..., d) make, each
    output row from its own input row alone: all rows at once when they are few, else blocks of
    :func:`block_rows` rows on the runner's threads, each block in its own rows of the output. On two cores, BLAS
    held to one thread each, this runs a 512-token layer about twice as fast as BLAS's own threads,
    and it shares the elementwise passes, which NumPy runs on one core."""
    flat = x.reshape(-1, x.shape[-1])
    out = np.empty((flat.shape[0], width), x.dtype)
    rows = flat.shape[0]
    if rows <= ROW_BLOCK:
        kernel(flat, out)
        return out.reshape(*x.shape[:-1], width)

    def block(rows: slice) -> None:
        kernel(flat[rows], out[rows])

    _runner().row_blocks(rows, block_rows(rows), block)
    return out.reshape(*x.shape[:-1], width)
