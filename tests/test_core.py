"""The attention core against hand-computed cases, a plain-loop reference, PyTorch, and properties."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose, assert_array_equal

from attnviz_cli import engine
from attnviz_cli.analysis import attention_summary, head_summary
from attnviz_cli.attention_types import Attention, AttentionOutputs
from attnviz_cli.core import AttentionInputError, causal_mask, plain_softmax, row_sums, self_attention, softmax

from .conftest import need_module
from .reference import masked_to_inf, reference_attention

# The worked example of seeds/003 ("Illustrated self-attention"): three 4-d inputs, 4x3 projections.
X3 = np.array([[1, 0, 1, 0], [0, 2, 0, 2], [1, 1, 1, 1]], dtype=np.float64)
WK3 = np.array([[0, 0, 1], [1, 1, 0], [0, 1, 0], [1, 1, 0]], dtype=np.float64)
WQ3 = np.array([[1, 0, 1], [1, 0, 0], [0, 0, 1], [0, 1, 1]], dtype=np.float64)
WV3 = np.array([[0, 2, 0], [0, 3, 0], [1, 0, 3], [1, 1, 0]], dtype=np.float64)


# ---- hand-computed cases -------------------------------------------------------------------------


def test_softmax_of_known_rows():
    # softmax([0, ln 3]) = [1/4, 3/4]; softmax([1, 1, 1]) = 1/3 each; -inf gets exactly 0
    weights = softmax(np.array([[0.0, math.log(3.0)], [1.0, 1.0]]))
    assert_allclose(weights, [[0.25, 0.75], [0.5, 0.5]], rtol=1e-15)
    masked = softmax(np.array([[2.0, -np.inf, 2.0]]))
    assert masked[0, 1] == 0.0
    assert_allclose(masked, [[0.5, 0.0, 0.5]], rtol=1e-15)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-13), (np.float32, 1e-6)])  # BLAS sums in another order
def test_the_fast_softmax_is_the_plain_one(dtype, rtol):
    rng = np.random.default_rng(11)
    for shape in [(1, 2), (7, 3), (2, 5, 40), (3, 4, 130, 130)]:
        scores = (rng.standard_normal(shape) * 8).astype(dtype)
        scores[..., 0, -1] = -np.inf  # a masked key
        fast = softmax(scores)
        assert fast.dtype == dtype
        assert_allclose(fast, plain_softmax(scores), rtol=rtol, atol=0)
    assert_allclose(plain_softmax(np.array([0.0, math.log(3)])), [0.25, 0.75], rtol=1e-15)


def test_softmax_of_integers_and_lists_is_float64():
    weights = softmax([[0, 0], [1, 1]])
    assert weights.dtype == np.float64 and weights.tolist() == [[0.5, 0.5], [0.5, 0.5]]


def test_softmax_is_stable_for_huge_scores():
    weights = softmax(np.array([[1000.0, 1000.0 + math.log(3.0)], [-1e308, -1e308]]))
    assert_allclose(weights, [[0.25, 0.75], [0.5, 0.5]], rtol=1e-12)


def test_softmax_refuses_a_fully_masked_row():
    with pytest.raises(AttentionInputError, match="fully masked"):
        softmax(np.array([[0.0, 1.0], [-np.inf, -np.inf]]))


def test_softmax_refuses_nan():
    with pytest.raises(AttentionInputError, match="NaN"):
        softmax(np.array([[0.0, np.nan]]))


def test_worked_example_of_the_seed_article():
    # By hand: q1 = x1 @ WQ = [1, 0, 2]; keys [0,1,1], [4,4,0], [2,3,1]; scores [2, 4, 4] (unscaled).
    # softmax([2, 4, 4]) = [1, e^2, e^2] / (1 + 2e^2); values [1,2,3], [2,8,0], [2,6,3].
    result = self_attention(X3, wq=WQ3, wk=WK3, wv=WV3, scale=False)
    assert_array_equal(result.queries[0], [[1, 0, 2], [2, 2, 2], [2, 1, 3]])
    assert_array_equal(result.keys[0], [[0, 1, 1], [4, 4, 0], [2, 3, 1]])
    assert_array_equal(result.values[0], [[1, 2, 3], [2, 8, 0], [2, 6, 3]])
    assert_array_equal(result.scores[0, 0], [2, 4, 4])
    e2 = math.exp(2.0)
    w = np.array([1.0, e2, e2]) / (1.0 + 2.0 * e2)
    assert_allclose(result.weights[0, 0], w, rtol=1e-15)
    expected_out = w[0] * np.array([1, 2, 3]) + w[1] * np.array([2, 8, 0]) + w[2] * np.array([2, 6, 3])
    assert_allclose(result.output[0], expected_out, rtol=1e-14)
    assert_allclose(result.output[0], [1.9366, 6.6831, 1.5951], atol=1e-4)  # as the article rounds them


def test_scaling_divides_by_sqrt_d_k():
    scaled = self_attention(X3, wq=WQ3, wk=WK3, wv=WV3, scale=True)
    assert_allclose(scaled.scores[0, 0], np.array([2, 4, 4]) / math.sqrt(3), rtol=1e-15)


def test_causal_mask_is_minus_inf_above_the_diagonal():
    assert_array_equal(causal_mask(3), [[0, -np.inf, -np.inf], [0, 0, -np.inf], [0, 0, 0]])
    result = self_attention(X3, wq=WQ3, wk=WK3, wv=WV3, scale=False, causal=True)
    assert_array_equal(result.weights[0, 0], [1, 0, 0])  # the first token sees only itself
    assert result.scores[0, 0, 1] == -np.inf
    # the second query sees keys 1 and 2 only: q2 = [2, 2, 2], scores [4, 16]
    assert_allclose(result.weights[0, 1, :2], softmax(np.array([4.0, 16.0])), rtol=1e-15)


def test_two_identity_heads_each_attend_over_their_own_slice():
    x = np.array([[1.0, 0.0, 0.0, 2.0], [0.0, 1.0, 1.0, 0.0]])
    result = self_attention(x, heads=2, scale=False)
    # head 0 sees components 0-1: q = k = v = [[1,0],[0,1]]; scores = I; head 1 sees [[0,2],[1,0]]
    assert_array_equal(result.scores[0], [[1, 0], [0, 1]])
    assert_array_equal(result.scores[1], [[4, 0], [0, 1]])
    a = 1 / (1 + math.e)
    assert_allclose(result.weights[0], [[1 - a, a], [a, 1 - a]], rtol=1e-15)
    assert result.output.shape == (2, 4)
    assert_allclose(result.output[:, :2], result.head_outputs[0], rtol=0)
    assert_allclose(result.output[:, 2:], result.head_outputs[1], rtol=0)


def test_output_projection_maps_the_concatenated_heads():
    wo = np.arange(12, dtype=np.float64).reshape(3, 4) / 10
    result = self_attention(X3, wq=WQ3, wk=WK3, wv=WV3, wo=wo)
    assert result.output.shape == (3, 4)
    assert_allclose(result.output, result.head_outputs[0] @ wo, rtol=1e-15)


# ---- against the plain-loop reference on seeded random inputs ------------------------------------


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 8 scores, projections 3 rows at a time, threads for any input: every path of the
    blocked, threaded engine runs on inputs small enough for the plain-loop reference."""
    monkeypatch.setattr(engine, "BLOCK_ELEMENTS", 8)
    monkeypatch.setattr(engine, "MATMUL_ROWS", 3)
    monkeypatch.setattr(engine, "THREADED_ELEMENTS", 1)


def random_case(seed: int) -> dict:
    """Seeded inputs of random shapes: head count, d_k != d_v, some projections absent, causal or not."""
    rng = np.random.default_rng(seed)
    T = int(rng.integers(1, 9))
    heads = int(rng.choice([1, 2, 3]))
    d_model = int(rng.integers(1, 5)) * heads
    d_k, d_v = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    x = rng.standard_normal((T, d_model))
    use = rng.random(4) < 0.7
    wq = rng.standard_normal((d_model, heads * d_k)) if use[0] else None
    wk = rng.standard_normal((d_model, heads * d_k)) if use[0] else None  # wq, wk share a width
    wv = rng.standard_normal((d_model, heads * d_v)) if use[1] else None
    v_width = heads * d_v if use[1] else d_model
    wo = rng.standard_normal((v_width, int(rng.integers(1, 5)))) if use[2] else None
    causal, scale = bool(rng.random() < 0.5), bool(use[3])
    return {"x": x, "heads": heads, "wq": wq, "wk": wk, "wv": wv, "wo": wo, "scale": scale, "causal": causal}


@pytest.fixture(params=[(seed, blocked) for blocked in (False, True) for seed in range(12)],
                ids=lambda p: f"seed{p[0]}-{'small-blocks-on-threads' if p[1] else 'as-is'}")
def case(request) -> dict:
    """A :func:`random_case`, run as-is and again with the engine cut into small blocks on threads."""
    seed, blocked = request.param
    if blocked:
        request.getfixturevalue("small_blocks")
    return random_case(seed)


def test_matches_plain_loop_reference(case):
    got = self_attention(**case)
    scores, weights, head_outputs, output = reference_attention(**case)
    assert_allclose(got.scores, masked_to_inf(scores), rtol=1e-12, atol=1e-12)
    assert_allclose(got.weights, weights, rtol=1e-12, atol=1e-15)
    assert_allclose(got.head_outputs, head_outputs, rtol=1e-12, atol=1e-12)
    assert_allclose(got.output, output, rtol=1e-12, atol=1e-12)


def test_summary_matches_the_full_matrices_bit_for_bit_kept_or_not(case):
    # One computation per question (issue 26): whether the (h, T, T) matrices are kept changes what is
    # given back, never a bit of it; the path (plain or in row blocks) depends on the input alone.
    full = self_attention(**case)
    expected = head_summary(full.weights, np.isneginf(full.scores), 2)
    attention, summary = attention_summary(**case, top_k=2)
    assert type(attention) is AttentionOutputs and not hasattr(attention, "scores")  # no (h, T, T) matrix kept
    kept, kept_summary = attention_summary(**case, top_k=2, keep_matrices=True)
    assert type(kept) is Attention
    for name in ("queries", "keys", "values", "head_outputs", "output"):
        assert_array_equal(getattr(attention, name), getattr(full, name), err_msg=name)
        assert_array_equal(getattr(kept, name), getattr(full, name), err_msg=name)
    for name in ("scores", "weights"):
        assert_array_equal(getattr(kept, name), getattr(full, name), err_msg=name)
    for name in ("entropy_bits", "top_keys", "top_weights", "top_counts"):
        assert_array_equal(getattr(kept_summary, name), getattr(summary, name), err_msg=name)
    assert_array_equal(summary.top_keys, expected.top_keys)
    assert_array_equal(summary.top_counts, expected.top_counts)
    assert_array_equal(summary.top_weights, expected.top_weights)  # picked from the same weights
    # in row blocks, a block's entropies are summed by einsum over a block, not over the whole stack:
    assert_allclose(summary.entropy_bits, expected.entropy_bits, rtol=1e-12, atol=1e-12)


def test_summary_of_a_batch_is_each_sequence_alone(small_blocks):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 7, 4))
    together, summaries = attention_summary(x, heads=2, causal=True, top_k=3)
    for b in range(3):
        alone, summary = attention_summary(x[b], heads=2, causal=True, top_k=3)
        assert_allclose(together.select(b).output, alone.output, rtol=1e-12, atol=1e-12)
        assert_array_equal(summaries.top_keys[b], summary.top_keys)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 300), st.integers(1, 12), st.integers(1, 3), st.booleans())
def test_any_cut_of_the_work_gives_the_same_attention(seed, block_elements, matmul_rows, threads, summary):
    # However the engine cuts rows into blocks and pieces, and on however many threads, the numbers are
    # those of the plain run (to rounding: BLAS may add in another order for another matrix shape).
    case = random_case(seed % 12) | {"x": np.random.default_rng(seed).standard_normal((2, 7, 6)), "heads": 2}
    case |= {name: None for name in ("wq", "wk", "wv", "wo")} if seed % 2 else {
        name: np.random.default_rng(seed + 1).standard_normal((6, 6)) for name in ("wq", "wk", "wv", "wo")
    }
    plain = self_attention(**case)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine, "BLOCK_ELEMENTS", block_elements)
        patch.setattr(engine, "MATMUL_ROWS", matmul_rows)
        patch.setattr(engine, "THREADED_ELEMENTS", 1)
        if summary:
            cut, _ = attention_summary(**case, threads=threads)
            names = ("queries", "keys", "values", "head_outputs", "output")
        else:
            cut = self_attention(**case, threads=threads)
            names = ("queries", "keys", "values", "scores", "weights", "head_outputs", "output")
    for name in names:
        assert_allclose(getattr(cut, name), getattr(plain, name), rtol=1e-12, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_thread_count_changes_no_bit(small_blocks, dtype):
    # The work is cut the same way whatever the thread count: only who does each piece changes.
    case = random_case(5) | {"x": np.random.default_rng(5).standard_normal((2, 9, 6)).astype(dtype), "heads": 2}
    case |= {name: None if case[name] is None else np.random.default_rng(6).standard_normal((6, 6)).astype(dtype) for name in ("wq", "wk", "wv", "wo")}
    runs = [self_attention(**case, threads=n) for n in (1, 2, 3)]
    for other in runs[1:]:
        for name in ("queries", "scores", "weights", "head_outputs", "output"):
            assert_array_equal(getattr(other, name), getattr(runs[0], name), err_msg=name)
            assert getattr(other, name).dtype == dtype


@pytest.mark.parametrize("heads", [1, 2], ids=["plain", "in-row-blocks"])
def test_blas_thread_count_changes_no_bit(heads, monkeypatch):
    # OpenBLAS cuts the sums of a (520, 520) @ (520, d) product by its thread count; attention holds it to one.
    from threadpoolctl import threadpool_limits

    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)  # as a library user's process has it
    rng = np.random.default_rng(8)
    x = rng.standard_normal((520, 16)).astype(np.float32)
    w = [rng.standard_normal((16, 16)).astype(np.float32) / 4 for _ in range(4)]
    assert (heads * 520 * 520 > engine.BLOCK_ELEMENTS) == (heads == 2)
    runs = []
    for n in (1, 4):
        with threadpool_limits(n):
            runs.append((self_attention(x, heads=heads, wq=w[0], wk=w[1], wv=w[2], wo=w[3]), attention_summary(x, heads=heads, wv=w[2])))
    (full, (outputs, summary)), (full_4, (outputs_4, summary_4)) = runs
    for name in ("scores", "weights", "head_outputs", "output"):
        assert_array_equal(getattr(full_4, name), getattr(full, name), err_msg=name)
    assert_array_equal(outputs_4.output, outputs.output)
    assert_array_equal(summary_4.entropy_bits, summary.entropy_bits)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy warns of the overflow on the way
def test_an_error_in_a_worker_thread_reaches_the_caller(small_blocks):
    with pytest.raises(AttentionInputError, match="scores hold NaN or \\+inf"):
        self_attention(np.array([[1e200, 0.0], [0.0, 1e200], [1.0, 1.0]]), wq=np.eye(2) * 1e200)


@pytest.mark.slow
def test_matches_pytorch_multihead_attention_in_float32_on_threads():
    # Large enough for the threaded, blocked engine as it runs (no monkeypatching); the bar.
    torch = need_module("torch")
    rng = np.random.default_rng(11)
    T, d_model, heads = 600, 64, 8
    assert heads * T * T >= engine.THREADED_ELEMENTS
    x = rng.standard_normal((T, d_model)).astype(np.float32)
    wq, wk, wv, wo = ((rng.standard_normal((d_model, d_model)) / 8).astype(np.float32) for _ in range(4))
    mha = torch.nn.MultiheadAttention(d_model, heads, bias=False)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.from_numpy(np.concatenate([wq.T, wk.T, wv.T])))
        mha.out_proj.weight.copy_(torch.from_numpy(np.ascontiguousarray(wo.T)))
        t = torch.from_numpy(x)[:, None, :]
        mask = torch.from_numpy(np.triu(np.ones((T, T), dtype=bool), k=1))
        out, weights = mha(t, t, t, need_weights=True, average_attn_weights=False, attn_mask=mask)
    ours = self_attention(x, heads=heads, wq=wq, wk=wk, wv=wv, wo=wo, causal=True, threads=2)
    assert ours.weights.dtype == np.float32
    assert_allclose(ours.weights, weights[0].numpy(), atol=1e-4)
    assert_allclose(ours.output, out[:, 0, :].numpy(), atol=1e-4)
    blocked, _ = attention_summary(x, heads=heads, wq=wq, wk=wk, wv=wv, wo=wo, causal=True, threads=2)
    assert_allclose(blocked.output, out[:, 0, :].numpy(), atol=1e-4)


@pytest.mark.slow
def test_matches_pytorch_multihead_attention():
    torch = need_module("torch")
    rng = np.random.default_rng(7)
    T, d_model, heads = 6, 8, 2
    x = rng.standard_normal((T, d_model))
    wq, wk, wv, wo = (rng.standard_normal((d_model, d_model)) for _ in range(4))
    mha = torch.nn.MultiheadAttention(d_model, heads, bias=False, dtype=torch.float64)
    with torch.no_grad():
        # PyTorch computes x @ W.T; our matrices are the transposes of its weights
        mha.in_proj_weight.copy_(torch.from_numpy(np.concatenate([wq.T, wk.T, wv.T])))
        mha.out_proj.weight.copy_(torch.from_numpy(wo.T))
        t = torch.from_numpy(x)[:, None, :]  # (T, batch=1, d_model)
        mask = torch.from_numpy(np.triu(np.ones((T, T), dtype=bool), k=1))
        out, weights = mha(t, t, t, need_weights=True, average_attn_weights=False, attn_mask=mask)
    ours = self_attention(x, heads=heads, wq=wq, wk=wk, wv=wv, wo=wo, causal=True)
    assert_allclose(ours.weights, weights[0].numpy(), rtol=1e-12, atol=1e-15)
    assert_allclose(ours.output, out[:, 0, :].numpy(), rtol=1e-12, atol=1e-12)


# ---- properties ------------------------------------------------------------------------------------

finite = st.floats(-10, 10, allow_nan=False, allow_infinity=False, width=64)


@st.composite
def inputs(draw, dtype=np.float64):
    T = draw(st.integers(1, 7))
    heads = draw(st.sampled_from([1, 2, 3]))
    d_model = heads * draw(st.integers(1, 4))
    x = draw(arrays(dtype, (T, d_model), elements=st.floats(-10, 10, width=np.dtype(dtype).itemsize * 8)))
    return x, heads


@settings(max_examples=60, deadline=None)
@given(inputs(), st.booleans(), st.booleans())
def test_weight_rows_sum_to_one_and_lie_in_0_1(case, scale, causal):
    x, heads = case
    result = self_attention(x, heads=heads, scale=scale, causal=causal)
    assert_allclose(result.weights.sum(axis=-1), 1.0, rtol=1e-12)
    assert (result.weights >= 0).all() and (result.weights <= 1).all()


@settings(max_examples=60, deadline=None)
@given(inputs(), st.data())
def test_permuting_tokens_permutes_the_outputs(case, data):
    x, heads = case
    perm = np.array(data.draw(st.permutations(range(x.shape[0]))))
    plain = self_attention(x, heads=heads)
    permuted = self_attention(x[perm], heads=heads)
    assert_allclose(permuted.output, plain.output[perm], rtol=1e-9, atol=1e-9)
    assert_allclose(permuted.weights, plain.weights[:, perm][:, :, perm], rtol=1e-9, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(inputs())
def test_masked_weights_are_exactly_zero(case):
    x, heads = case
    result = self_attention(x, heads=heads, causal=True)
    above = np.triu(np.ones(result.weights.shape[1:], dtype=bool), k=1)
    assert (result.weights[:, above] == 0).all()
    assert (result.scores[:, above] == -np.inf).all()
    assert np.isfinite(result.scores[:, ~above]).all()


@settings(max_examples=60, deadline=None)
@given(inputs())
def test_one_identity_head_is_softmax_of_x_xT_over_sqrt_d_times_x(case):
    x, _ = case
    d = x.shape[1]
    s = x @ x.T / math.sqrt(d)
    e = np.exp(s - s.max(axis=1, keepdims=True))
    expected = (e / e.sum(axis=1, keepdims=True)) @ x
    assert_allclose(self_attention(x).output, expected, rtol=1e-9, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(inputs(np.float32), st.booleans())
def test_dtype_is_preserved(case, causal):
    x32, heads = case
    r32 = self_attention(x32, heads=heads, causal=causal)
    r64 = self_attention(x32.astype(np.float64), heads=heads, causal=causal)
    for name in ("queries", "scores", "weights", "head_outputs", "output"):
        assert getattr(r32, name).dtype == np.float32, name
        assert getattr(r64, name).dtype == np.float64, name
    assert_allclose(r32.output, r64.output, rtol=1e-4, atol=1e-4)


def test_integer_input_runs_in_float64():
    result = self_attention(np.array([[1, 0], [0, 1]]))
    assert result.output.dtype == np.float64


def test_results_are_read_only_and_do_not_alias_the_input():
    x = np.eye(3)
    result = self_attention(x)
    x[0, 0] = 99.0
    assert result.queries[0, 0, 0] == 1.0
    with pytest.raises(ValueError):
        result.weights[0, 0, 0] = 0.5


# ---- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"heads": 3}, r"3 heads do not divide the embedding dimension \(4\)"),
        ({"heads": 0}, "heads must be at least 1"),
        ({"wq": np.ones((4, 3)), "wk": np.ones((4, 2))}, "wq and wk must have the same width"),
        ({"wq": np.ones((5, 4)), "wk": np.ones((5, 4))}, r"wq must have shape \(4, h\*d\)"),
        ({"wv": np.ones((4, 3)), "heads": 2}, r"2 heads do not divide wv's width \(3\)"),
        ({"wo": np.ones((3, 2))}, r"wo must have shape \(4, d_out\)"),
        ({"wq": np.full((4, 4), np.nan), "wk": np.ones((4, 4))}, "wq holds NaN"),
    ],
)
def test_bad_shapes_and_values_are_refused(kwargs, message):
    with pytest.raises(AttentionInputError, match=message):
        self_attention(np.ones((2, 4)), **kwargs)


@pytest.mark.parametrize("x", [np.ones(4), np.ones((0, 4)), np.array([[1.0, np.inf]])])
def test_bad_inputs_are_refused(x):
    with pytest.raises(AttentionInputError):
        self_attention(x)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 4), st.sampled_from([1, 2]), st.booleans(), st.booleans())
def test_a_batch_equals_each_sequence_on_its_own(seed, batch, heads, causal, project):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, 5, 4))
    w = {name: rng.standard_normal((4, 4)) for name in ("wq", "wk", "wv", "wo")} if project else {}
    together = self_attention(x, heads=heads, causal=causal, **w)
    for b in range(batch):
        alone = self_attention(x[b], heads=heads, causal=causal, **w)
        picked = together.select(b)
        assert not picked.weights.flags.writeable and not picked.output.flags.writeable  # views stay read-only
        for name in ("queries", "keys", "values", "scores", "weights", "head_outputs", "output"):
            assert_allclose(getattr(picked, name), getattr(alone, name), rtol=1e-12, atol=1e-12, err_msg=name)


# ---- positional encoding -------------------------------------------------------------------------------


def test_sinusoidal_positions_by_hand():
    from attnviz_cli.core import sinusoidal_positions

    pe = sinusoidal_positions(3, 4)
    # d_model 4: rates 1 and 1/10000^(2/4) = 0.01; PE[t] = [sin t, cos t, sin .01t, cos .01t]
    assert_allclose(pe[0], [0, 1, 0, 1], atol=0)
    assert_allclose(pe[1], [math.sin(1), math.cos(1), math.sin(0.01), math.cos(0.01)], rtol=1e-15)
    assert_allclose(pe[2], [math.sin(2), math.cos(2), math.sin(0.02), math.cos(0.02)], rtol=1e-15)
    odd = sinusoidal_positions(2, 5, np.float32)  # an odd width ends on a sine
    assert odd.dtype == np.float32 and odd.shape == (2, 5)
    assert_allclose(odd[1], [math.sin(1), math.cos(1), math.sin(10000**-0.4), math.cos(10000**-0.4), math.sin(10000**-0.8)], rtol=1e-6)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 40), st.integers(1, 64))
def test_sinusoidal_positions_follow_the_formula(T, d):
    from attnviz_cli.core import sinusoidal_positions

    expected = [[(math.sin if i % 2 == 0 else math.cos)(t / 10000 ** ((i - i % 2) / d)) for i in range(d)] for t in range(T)]
    assert_allclose(sinusoidal_positions(T, d), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype, tolerance", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("causal", [False, True])
def test_attention_in_blocks_gives_what_attention_gives(dtype, tolerance, causal, monkeypatch):
    """The models' path for long texts (blocks of rows, on two threads) against the plain formula, with
    blocks small enough that a head is cut into several."""
    from attnviz_cli.core import attention, attention_in_blocks

    monkeypatch.setattr(engine, "BLOCK_ELEMENTS", 64 * 10)
    monkeypatch.setattr(engine, "THREADED_ELEMENTS", 1)
    rng = np.random.default_rng(3)
    q, k, v = (rng.normal(size=(3, 64, 8)).astype(dtype) for _ in range(3))
    mask = causal_mask(64, dtype) if causal else None
    plain = attention(q, k, v, mask)
    blocked = attention_in_blocks(q, k, v, mask, threads=2)
    for ours, theirs in zip(blocked, plain, strict=True):
        assert ours.dtype == dtype
        assert_allclose(ours, theirs, rtol=0, atol=tolerance)
    assert np.isneginf(blocked[0][:, 0, 1:]).all() == causal


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (12, 128, 128), (2, 5, 3000), (3000, 2)])
def test_row_sums_are_the_sums_along_the_last_axis_whatever_blas_thread_count(shape, dtype):
    # Softmax and layer norm sum their rows as a product with a column of ones (BLAS): the sums of
    # NumPy's reduction to rounding, in the input's dtype, and the same bits on one BLAS thread or two.
    from threadpoolctl import threadpool_limits

    x = np.random.default_rng(len(shape)).random(shape).astype(dtype)
    with threadpool_limits(1):
        one = row_sums(x)
    with threadpool_limits(2):
        two = row_sums(x)
    assert one.shape == (*shape[:-1], 1) and one.dtype == dtype
    assert_array_equal(one, two)
    exact = x.astype(np.float64).sum(axis=-1, keepdims=True)
    assert_allclose(one, exact, rtol=4 * np.finfo(dtype).eps * math.log2(shape[-1] + 1) + np.finfo(dtype).eps)


def test_core_imports_nothing_above_it():
    # The dependency runs one way: analysis and results build on core, never the other way round.
    code = "import sys, attnviz_cli.core; print(sorted(m for m in sys.modules if m.startswith('attnviz_cli.')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == str(["attnviz_cli.attention_types", "attnviz_cli.core", "attnviz_cli.engine", "attnviz_cli.errors"])


def test_one_blas_thread_trusts_openblas_variables_only_for_openblas(monkeypatch):
    # OPENBLAS_NUM_THREADS=1 (as attn sets it) and OpenBLAS's serial bound say nothing about MKL or BLIS:
    # with another BLAS, threadpoolctl holds it to one thread.
    from threadpoolctl import threadpool_info

    def holds(work):  # whether threadpoolctl is asked to hold BLAS (a limiter), else nothing is done
        with engine.one_blas_thread(work) as limiter:  # a limiter is undone on leaving
            return limiter is not None

    assert engine.numpy_blas_is_openblas() == any(lib["internal_api"] == "openblas" for lib in threadpool_info())
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    monkeypatch.setattr(engine, "numpy_blas_is_openblas", lambda: True)
    assert not holds(10**9) and not holds(engine.BLAS_SERIAL_WORK)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "4")
    assert holds(10**9) and not holds(engine.BLAS_SERIAL_WORK)
    monkeypatch.setattr(engine, "numpy_blas_is_openblas", lambda: False)  # MKL, BLIS, Accelerate
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    assert holds(10**9) and holds(engine.BLAS_SERIAL_WORK)
