"""attnviz_cli.models.erf against the standard library's math.erf (libm's, an independent implementation)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from attnviz_cli.models.erf import erf, gelu_erf
from attnviz_cli.models.layers import gelu_tanh

exact = np.vectorize(math.erf)


def test_float64_matches_math_erf_on_a_dense_grid_across_every_piece():
    x = np.concatenate([np.linspace(-8, 8, 200_001), [0.0, -0.0, 2.5, -2.5, 6.0, -6.0, 1e-300, 1e300, -1e300]])
    assert np.abs(erf(x) - exact(x)).max() < 5e-15


def test_float32_matches_math_erf_to_a_few_units_in_the_last_place():
    x = np.linspace(-8, 8, 100_001, dtype=np.float32)
    got = erf(x)
    assert got.dtype == np.float32
    assert np.abs(got.astype(np.float64) - exact(x.astype(np.float64))).max() < 2e-7


@given(st.floats(min_value=-50, max_value=50, allow_nan=False))
def test_any_float64_is_within_5e_15_and_odd(value):
    got = erf(np.array([value, -value]))
    assert abs(got[0] - math.erf(value)) < 5e-15
    assert got[1] == -got[0]


def test_known_values():
    assert erf(np.array([0.0]))[0] == 0.0
    assert abs(erf(np.array([1.0]))[0] - 0.8427007929497149) < 5e-15  # erf(1)
    assert np.isnan(erf(np.array([np.nan]))[0])
    assert erf(np.array([np.inf, -np.inf])).tolist() == [1.0, -1.0]


def test_gelu_is_x_times_the_normal_cdf():
    x = np.array([-3.0, -1.0, 0.0, 0.5, 2.0])
    cdf = np.array([0.5 * (1 + math.erf(v / math.sqrt(2))) for v in x])
    np.testing.assert_allclose(gelu_erf(x), x * cdf, rtol=0, atol=2e-14)  # 3 x erf's 5e-15


def exact_gelu(x: np.ndarray) -> np.ndarray:
    return np.array([v * 0.5 * (1 + math.erf(v / math.sqrt(2))) for v in x.astype(np.float64)])


def test_gelu_float64_matches_math_erf_across_both_pieces():
    x = np.concatenate([np.linspace(-12, 12, 120_001), [0.0, -0.0, 3.5355339059327378, -3.5355339059327378, 1e300]])
    got = gelu_erf(x)
    assert got.dtype == np.float64
    assert np.abs(got - exact_gelu(x)).max() < 2e-14  # x (1 + erf) / 2: |x| / 2 times erf's 5e-15, and a rounding
    assert got[-1] == 1e300 and got[-4] == 0.0


def test_gelu_float32_is_within_half_a_unit_of_10_in_the_last_place():
    x = np.linspace(-10, 10, 100_001, dtype=np.float32)
    got = gelu_erf(x)
    assert got.dtype == np.float32
    assert np.abs(got.astype(np.float64) - exact_gelu(x)).max() < 4.8e-7  # ulp(10) = 9.5e-7


@given(st.floats(min_value=-30, max_value=30, allow_nan=False))
def test_gelu_of_any_float64_is_x_times_the_normal_cdf(value):
    assert abs(gelu_erf(np.array([value]))[0] - exact_gelu(np.array([value]))[0]) < 2e-14 * max(1.0, abs(value))


def test_gelu_keeps_nan_and_infinity():
    got = gelu_erf(np.array([np.nan, np.inf], dtype=np.float32))
    assert np.isnan(got[0]) and got[1] == np.inf


def test_gpt2_gelu_is_the_tanh_formula():
    x64 = np.linspace(-12, 12, 24_001)
    exact = np.array([v * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v**3))) / 2 for v in x64])
    assert np.abs(gelu_tanh(x64) - exact).max() < 4e-15
    got32 = gelu_tanh(x64.astype(np.float32))
    assert got32.dtype == np.float32
    assert np.abs(got32.astype(np.float64) - exact).max() < 9.5e-7  # a unit in the last place of 12


def test_gelu_writes_into_the_array_it_is_given():
    x = np.linspace(-8, 8, 1_001).reshape(7, 143)  # past the near piece at both ends
    out = np.full_like(x, np.nan)
    assert gelu_erf(x, out=out) is out
    np.testing.assert_array_equal(out, gelu_erf(x))  # the same steps, into another array
