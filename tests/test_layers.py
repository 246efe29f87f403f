"""attnviz_cli.models.layers: the functions the pages call against the plain maths beside them, on seeded
random inputs, short (all rows at once) and long (blocks of rows on threads); and whole layers against
the same layer written with the plain functions, head by head."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from attnviz_cli.core import plain_softmax, softmax
from attnviz_cli.models.bert import bert_layer
from attnviz_cli.models.gpt2 import gpt2_block
from attnviz_cli.models.layers import (
    _BUFFERS,
    ROW_BLOCK,
    THREADED_ROWS,
    balanced,
    buffer,
    by_rows,
    causal_attention,
    ffn,
    gated_ffn,
    gelu,
    gelu_tanh,
    grouped_attention,
    heads_of,
    layer_norm,
    linear,
    on_threads,
    plain_gelu,
    plain_gelu_tanh,
    plain_layer_norm,
    plain_rotary,
    plain_silu,
    rotary,
    rotary_tables,
    silu,
    silu_times,
    window_mask,
)

ROWS = [(5,), (3, 40), (2 * ROW_BLOCK + 7,), (3, ROW_BLOCK + 1)]  # leading shapes: all rows at once, and in blocks


def _threads(leading):
    """Two threads for inputs of THREADED_ROWS rows and more (as a forward pass has them)."""
    return on_threads(2, int(np.prod(leading)))


@pytest.mark.parametrize("leading", ROWS)
def test_layer_norm_is_the_plain_one(leading):
    rng = np.random.default_rng(len(leading) * 1000 + leading[-1])
    d = 48
    x = rng.standard_normal((*leading, d)) * 3 + 1
    g, b = rng.standard_normal(d), rng.standard_normal(d)
    with _threads(leading):
        got = layer_norm(x, g, b, 1e-12)
        got32 = layer_norm(x.astype(np.float32), g.astype(np.float32), b.astype(np.float32), 1e-12)
    expected = plain_layer_norm(x, g, b, 1e-12)
    assert got.shape == x.shape and got32.dtype == np.float32
    assert_allclose(got, expected, rtol=1e-12, atol=1e-12)  # float64: the row sums by BLAS, in another order
    assert_allclose(got32, expected, rtol=2e-5, atol=2e-5)  # float32 (ε 6e-8): 48-term sums, then a division by √σ²


@pytest.mark.parametrize("leading", ROWS)
def test_the_gelus_are_the_plain_ones(leading):
    x = np.random.default_rng(leading[-1]).standard_normal((*leading, 32)) * 4  # past erf's near piece (|x / √2| > 2.5) too
    with _threads(leading):
        exact, approximate = gelu(x), gelu_tanh(x)
        exact32, approximate32 = gelu(x.astype(np.float32)), gelu_tanh(x.astype(np.float32))
    assert_allclose(exact, plain_gelu(x), rtol=0, atol=1e-14)  # the same erf, rearranged: a few roundings of 1e-16 x |x|
    assert_allclose(approximate, plain_gelu_tanh(x), rtol=0, atol=1e-14)
    assert exact32.dtype == approximate32.dtype == np.float32
    assert_allclose(exact32, plain_gelu(x.astype(np.float32).astype(np.float64)), rtol=0, atol=2e-6)  # float32 of |x| up to ~16: ulp 2e-6
    assert_allclose(approximate32, plain_gelu_tanh(x.astype(np.float32).astype(np.float64)), rtol=0, atol=2e-6)
    assert abs(plain_gelu(np.array([1.0]))[0] - 0.5 * (1 + math.erf(1 / math.sqrt(2)))) < 1e-15  # Φ(1), by math.erf


@pytest.mark.parametrize("leading", ROWS)
def test_linear_is_x_w_plus_b(leading):
    rng = np.random.default_rng(leading[-1] + 1)
    x, w, b = rng.standard_normal((*leading, 24)), rng.standard_normal((24, 40)), rng.standard_normal(40)
    with _threads(leading):
        got = linear(x, w, b)
    assert got.shape == (*leading, 40)
    assert_allclose(got, np.einsum("...i,io->...o", x, w) + b, rtol=1e-12, atol=1e-12)  # 24-term sums in another order


@pytest.mark.parametrize("leading", ROWS)
def test_the_feed_forward_block_is_its_three_steps(leading):
    rng = np.random.default_rng(leading[-1] + 2)
    x = rng.standard_normal((*leading, 16))
    up = {"w": rng.standard_normal((16, 64)) / 4, "b": rng.standard_normal(64)}
    down = {"w": rng.standard_normal((64, 16)) / 8, "b": rng.standard_normal(16)}
    with _threads(leading):
        got = ffn(x, up, down, gelu)
    assert got.shape == x.shape
    assert_allclose(got, plain_gelu(x @ up["w"] + up["b"]) @ down["w"] + down["b"], rtol=1e-12, atol=1e-12)  # sums in another order


def test_the_attentions_softmax_is_the_plain_one():
    scores = np.random.default_rng(3).standard_normal((4, 30, 30)) * 10
    scores[..., 5] = -np.inf  # masked: weight 0
    assert_allclose(softmax(scores), plain_softmax(scores), rtol=1e-13, atol=0)  # its sums by BLAS, in another order
    assert (softmax(scores)[..., 5] == 0).all()
    assert_allclose(plain_softmax(np.array([0.0, math.log(3)])), [0.25, 0.75], rtol=1e-15)


def test_row_blocks_on_any_number_of_threads_give_the_bits_of_one_and_of_all_rows_at_once():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    w = np.full((6, 3), 0.5)

    def kernel(x, out):
        np.matmul(np.tanh(x), w, out=out)
        out += x[:, :1]

    @settings(max_examples=25, deadline=None)
    @given(st.integers(1, 3), st.integers(1, 5 * ROW_BLOCK), st.integers(1, 3))
    def check(batch, rows, threads):
        x = np.random.default_rng(rows).standard_normal((batch, rows, 6))
        with on_threads(threads, THREADED_ROWS):
            got = by_rows(kernel, x, width=3)
        with on_threads(1, THREADED_ROWS):
            one = by_rows(kernel, x, width=3)
        assert got.shape == (batch, rows, 3)
        assert_array_equal(got, one)  # the blocks depend on the row count alone
        assert_allclose(got, np.tanh(x) @ w + x[..., :1], rtol=1e-13, atol=1e-13)

    check()


# ---- whole layers against the plain maths, head by head ------------------------------------------------------


def _params(rng, d, ff):
    def lin(i, o):
        return {"w": rng.standard_normal((i, o)) / math.sqrt(i), "b": rng.standard_normal(o) * 0.1}

    def norm():
        return {"g": 1 + 0.1 * rng.standard_normal(d), "b": 0.1 * rng.standard_normal(d), "eps": 1e-5}

    return {"attn": lin(d, 3 * d), "attn_out": lin(d, d), "ln_1": norm(), "in": lin(d, ff), "out": lin(ff, d), "ln_2": norm()}


def _plain_attention(x, attn, n_head, causal):
    """Each head alone: softmax(q kᵀ / √d_k + mask) v, then the heads side by side."""
    T, d = x.shape
    q, k, v = np.split(x @ attn["w"] + attn["b"], 3, axis=-1)
    d_k = d // n_head
    mask = np.triu(np.full((T, T), -np.inf), 1) if causal else np.zeros((T, T))
    heads = []
    for i in range(n_head):
        part = slice(i * d_k, (i + 1) * d_k)
        heads.append(plain_softmax(q[:, part] @ k[:, part].T / math.sqrt(d_k) + mask) @ v[:, part])
    return np.concatenate(heads, axis=1)


@pytest.mark.parametrize("T", [9, 300])  # 300 rows: blocks of rows, on two threads
def test_bert_layer_is_the_plain_post_ln_layer(T):
    rng = np.random.default_rng(T)
    p = _params(rng, 32, 64)
    x = rng.standard_normal((T, 32))
    with on_threads(2, T):
        got, attended = bert_layer(x, p["attn"], p["attn_out"], p["ln_1"], p["in"], p["out"], p["ln_2"], n_head=4)
    h = plain_layer_norm(x + _plain_attention(x, p["attn"], 4, False) @ p["attn_out"]["w"] + p["attn_out"]["b"], **p["ln_1"])
    expected = plain_layer_norm(h + plain_gelu(h @ p["in"]["w"] + p["in"]["b"]) @ p["out"]["w"] + p["out"]["b"], **p["ln_2"])
    assert_allclose(got, expected, rtol=1e-10, atol=1e-10)  # float64: sums in other orders, over two norms
    assert attended.weights.shape == (4, T, T)
    assert_allclose(attended.weights.sum(axis=-1), 1.0, rtol=1e-12)


@pytest.mark.parametrize("T", [9, 300])
def test_gpt2_block_is_the_plain_pre_ln_block(T):
    rng = np.random.default_rng(T + 1)
    p = _params(rng, 32, 128)
    x = rng.standard_normal((T, 32))
    with on_threads(2, T):
        got, attended = gpt2_block(x, p["attn"], p["attn_out"], p["ln_1"], p["in"], p["out"], p["ln_2"], n_head=4)
    h = x + _plain_attention(plain_layer_norm(x, **p["ln_1"]), p["attn"], 4, True) @ p["attn_out"]["w"] + p["attn_out"]["b"]
    m = plain_layer_norm(h, **p["ln_2"])
    expected = h + plain_gelu_tanh(m @ p["in"]["w"] + p["in"]["b"]) @ p["out"]["w"] + p["out"]["b"]
    assert_allclose(got, expected, rtol=1e-10, atol=1e-10)
    assert np.triu(attended.weights, k=1).max() == 0.0  # causal


# ---- a decoder's causal attention, in blocks of query rows ------------------------------------------------


def _plain_grouped(q, k, v, scale, window, softcap):
    """Each query head alone against its key/value head i // group: softmax(s + mask) v, s = scale q kᵀ,
    soft-capped, the mask -inf where k > q or k <= q - window."""
    h, T, _ = q.shape
    group = h // k.shape[0]
    rows, cols = np.arange(T)[:, None], np.arange(T)[None, :]
    hidden = (cols > rows) | ((cols <= rows - window) if window else False)
    scores, weights, outputs = [], [], []
    for i in range(h):
        s = scale * q[i] @ k[i // group].T
        if softcap:
            s = softcap * np.tanh(s / softcap)
        s = np.where(hidden, -np.inf, s)
        scores.append(s)
        weights.append(plain_softmax(s))
        outputs.append(weights[-1] @ v[i // group])
    return np.stack(scores), np.stack(weights), np.stack(outputs)


@pytest.mark.parametrize(("T", "h", "h_kv", "window", "softcap"), [
    (5, 4, 2, None, None),  # one block
    (64, 3, 3, None, None),  # one block, exactly
    (200, 6, 2, None, None),  # 64, 64, 64 and 8 rows: blocks seeing 64 to 200 keys
    (200, 6, 3, 50, None),  # a window shorter than the text: keys hidden on both sides
    (130, 4, 1, 7, 5.0),  # Gemma 2's soft-cap, one key/value head for all
])
def test_causal_attention_is_each_head_alone_under_its_mask(T, h, h_kv, window, softcap):
    rng = np.random.default_rng(T + h)
    q, k, v = rng.standard_normal((h, T, 8)) * 2, rng.standard_normal((h_kv, T, 8)), rng.standard_normal((h_kv, T, 8))
    scale = 8**-0.5
    expected = _plain_grouped(q, k, v, scale, window, softcap)
    with on_threads(2, THREADED_ROWS):  # two workers, each taking every other block
        attended, merged = causal_attention(q, k, v, window, scale, softcap)
    with on_threads(1, THREADED_ROWS):
        one = causal_attention(q, k, v, window, scale, softcap)
    for got, want in zip((attended.scores, attended.weights, attended.head_outputs), expected, strict=True):
        assert got.shape == want.shape
        assert_allclose(got, want, rtol=1e-12, atol=1e-12)  # float64 sums in another order
    assert np.isneginf(attended.scores[np.isneginf(expected[0])]).all() and (attended.weights[expected[1] == 0] == 0).all()
    assert_allclose(merged, np.concatenate(list(expected[2]), axis=1), rtol=1e-12, atol=1e-12)  # heads side by side
    group = h // h_kv
    assert_array_equal(attended.keys, k[np.arange(h) // group])  # per query head, as transformers' repeat_kv
    assert_array_equal(attended.values, v[np.arange(h) // group])
    for a, b in zip(attended, one[0], strict=True):
        assert_array_equal(a, b)  # the blocks depend on T and h alone, not on the threads
    plain, plain_merged = grouped_attention(q, k, v, window_mask(T, window, q.dtype), scale, softcap)
    assert_allclose(attended.weights, plain.weights, rtol=1e-12, atol=1e-12)
    assert_allclose(merged, plain_merged, rtol=1e-12, atol=1e-12)


def test_causal_attention_keeps_float32_and_runs_a_batch_as_each_text_alone():
    rng = np.random.default_rng(7)
    q, k, v = (rng.standard_normal((2, n, 150, 16)).astype(np.float32) for n in (6, 2, 2))
    attended, merged = causal_attention(q, k, v, None, 0.25)
    assert attended.weights.dtype == merged.dtype == np.float32
    assert attended.weights.shape == (2, 6, 150, 150) and merged.shape == (2, 150, 96)
    for b in range(2):
        alone, alone_merged = causal_attention(q[b], k[b], v[b], None, 0.25)
        assert_array_equal(attended.weights[b], alone.weights)
        assert_array_equal(merged[b], alone_merged)
    expected = _plain_grouped(q[0].astype(np.float64), k[0].astype(np.float64), v[0].astype(np.float64), 0.25, None, None)
    assert_allclose(attended.weights[0], expected[1], rtol=0, atol=1e-6)  # float32: weights below 1, ulp 6e-8


def test_blocks_of_growing_cost_are_shared_evenly_by_two_workers():
    cut = list(range(8))
    order = balanced(cut)  # type: ignore[arg-type]  # any list: only the order matters
    assert order == [0, 1, 3, 2, 4, 5, 7, 6]
    assert sum(c + 1 for c in order[0::2]) == sum(c + 1 for c in order[1::2]) == 18
    assert balanced(list(range(3))) == [0, 1, 2]  # type: ignore[arg-type]


@pytest.mark.parametrize("leading", ROWS)
@pytest.mark.parametrize("bias", [True, False])
def test_the_gated_feed_forward_block_is_down_of_silu_gate_times_up(leading, bias):
    rng = np.random.default_rng(leading[-1] + 3)
    x = rng.standard_normal((*leading, 16))
    gate_up = {"w": rng.standard_normal((16, 2 * 40)) / 4, "b": rng.standard_normal(80) if bias else None}
    down = {"w": rng.standard_normal((40, 16)) / 6, "b": rng.standard_normal(16) if bias else None}
    with _threads(leading):
        got = gated_ffn(x, gate_up, down, silu)
    both = x @ gate_up["w"] + (gate_up["b"] if bias else 0)
    expected = plain_silu(both[..., :40]) * both[..., 40:] @ down["w"] + (down["b"] if bias else 0)
    assert got.shape == x.shape
    assert_allclose(got, expected, rtol=1e-12, atol=1e-12)  # sums in another order
    assert_allclose(plain_silu(np.array([0.0, 1.0, -40.0])), [0.0, 1 / (1 + math.exp(-1)), -40 / (1 + math.exp(40))], rtol=1e-15)


def test_rotary_tables_are_the_cosines_and_sines_of_t_theta_made_once():
    inv_freq = 10000.0 ** -(np.arange(0, 8, 2) / 8)  # (4,)
    cos, sin = rotary_tables(inv_freq, 6, np.dtype(np.float64))
    angles = np.arange(6)[:, None] * np.concatenate([inv_freq, inv_freq])  # each θ twice: the two halves
    assert_allclose(cos, np.cos(angles), rtol=1e-15)
    assert_allclose(sin, np.sin(angles), rtol=1e-15)
    assert rotary_tables(inv_freq.copy(), 6, np.dtype(np.float64))[0] is cos  # the same frequencies: the same tables
    assert not cos.flags.writeable and not sin.flags.writeable  # shared, so read only
    cos32, _ = rotary_tables(inv_freq, 6, np.dtype(np.float32))
    assert cos32.dtype == np.float32
    assert_array_equal(cos32, np.cos(np.arange(6, dtype=np.float32)[:, None] * np.concatenate([inv_freq, inv_freq]).astype(np.float32)))


@pytest.mark.parametrize("rotated", [8, 4])  # every dim, and Phi-3's partial rotation (the rest pass unchanged)
def test_rotary_is_the_plain_rotate_half_of_strided_heads(rotated):
    rng = np.random.default_rng(rotated)
    qkv = rng.standard_normal((2, 11, 3 * 8 + 2 * 8))  # a batch of two texts, three query heads, one key/value head
    q, k, _ = heads_of(qkv, 3, 1)  # (2, 3, 11, 8) and (2, 1, 11, 8): views, strided as a page gets them
    cos, sin = rotary_tables(10000.0 ** -(np.arange(0, rotated, 2) / rotated), 11, np.dtype(np.float64))
    for x in (q, k):
        assert_array_equal(rotary(x, cos, sin), plain_rotary(x, cos, sin))  # the same products and sums: the same bits
    turned = rotary(q, cos, sin)[0, 1, 3]  # head 1 at t = 3: pair (i, i + r/2) turned by 3 θ_i
    x, theta = q[0, 1, 3], 3 * 10000.0 ** -(np.arange(0, rotated, 2) / rotated)
    h = rotated // 2
    assert_allclose(turned[:h], x[:h] * np.cos(theta) - x[h:rotated] * np.sin(theta), rtol=1e-14)
    assert_allclose(turned[h:rotated], x[h:rotated] * np.cos(theta) + x[:h] * np.sin(theta), rtol=1e-14)
    assert_array_equal(turned[rotated:], x[rotated:])


def test_silu_times_is_silu_of_the_gate_times_up_written_into_up():
    rng = np.random.default_rng(11)
    gate, up = rng.standard_normal((7, 30)) * 6, rng.standard_normal((7, 30))
    gate[0, :3] = [-800.0, 0.0, 800.0]  # e^800 overflows to inf: the product goes to 0, as x σ(x) does
    with np.errstate(over="ignore"):
        expected = plain_silu(gate) * up
        got = silu_times(gate.copy(), written := up.copy())
    assert got is written
    assert_allclose(got, expected, rtol=1e-14, atol=1e-300)
    assert got[0, 0] == 0 and got[0, 1] == 0 and got[0, 2] == 800.0 * up[0, 2]


def test_a_forward_pass_reuses_its_buffers_and_no_result_shares_them():
    rng = np.random.default_rng(12)
    gate_up = {"w": rng.standard_normal((16, 2 * 24)) / 4, "b": None}
    down = {"w": rng.standard_normal((24, 16)) / 5, "b": None}
    x, y = rng.standard_normal((2, 9, 16))
    with on_threads(1, 9):
        first = gated_ffn(x, gate_up, down, silu)
        kept = first.copy()
        second = gated_ffn(y, gate_up, down, silu)  # the same buffers, new numbers in them
        assert_array_equal(first, kept)
        assert buffer(_BUFFERS.get(), "gate_up", (2, 9, 24), np.dtype(np.float64)) is buffer(_BUFFERS.get(), "gate_up", (2, 9, 24), np.dtype(np.float64))
    for inputs, got in ((x, first), (y, second)):
        both = inputs @ gate_up["w"]
        assert_allclose(got, plain_silu(both[:, :24]) * both[:, 24:] @ down["w"], rtol=1e-12, atol=1e-12)
    assert _BUFFERS.get() is None  # dropped with the pass
    assert buffer(None, "gate_up", (2, 9, 24), np.dtype(np.float64)) is not buffer(None, "gate_up", (2, 9, 24), np.dtype(np.float64))
