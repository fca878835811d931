"""The golden model (accelerator.model.reference) against plain-Python-int oracles and hand sums.

Three independent descriptions are compared: the NumPy model, the plain-int oracles
(``gemm_py``, which wraps after every MAC like the hardware, and ``requantize_scalar``, which
transcribes gemmlowp's C code), and the exact mathematical definitions written here with
``fractions.Fraction``. The hand-computed cases spell out every rounding step in comments.
"""

from __future__ import annotations

import doctest
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from accelerator.config import AcceleratorConfig
from accelerator.model import reference
from accelerator.model.reference import (
    INT32_MAX,
    INT32_MIN,
    RequantParams,
    gemm,
    gemm_py,
    gemm_requant,
    quantize_multiplier,
    requantize,
    requantize_scalar,
    rounding_divide_by_pot,
    rounding_divide_by_pot_scalar,
    saturating_rounding_doubling_high_mul,
    saturating_rounding_doubling_high_mul_scalar,
    wrap,
    wrap_int,
)

FAST = settings(max_examples=150, deadline=None)


# -- strategies and exact definitions -----------------------------------------------------------


def signed_range(width: int) -> tuple[int, int]:
    return -(1 << (width - 1)), (1 << (width - 1)) - 1


def ints_with_extremes(lo: int, hi: int) -> st.SearchStrategy[int]:
    """Integers in [lo, hi], with the ends and the values around zero drawn often."""
    special = sorted({v for v in (lo, lo + 1, -1, 0, 1, hi - 1, hi) if lo <= v <= hi})
    return st.one_of(st.sampled_from(special), st.integers(lo, hi))


INT32S = ints_with_extremes(INT32_MIN, INT32_MAX)
MULTIPLIERS = st.one_of(
    st.sampled_from([0, 1, 1 << 30, (1 << 30) + 1, INT32_MAX - 1, INT32_MAX]),
    st.integers(1 << 30, INT32_MAX),  # the normalized range quantize_multiplier produces
    st.integers(0, INT32_MAX),
)


@st.composite
def gemm_operands(draw: st.DrawFn, in_width: int, acc_width: int, max_dim: int = 6
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    m, k, n = (draw(st.integers(1, max_dim)) for _ in range(3))
    lo, hi = signed_range(in_width)
    # The model takes any integer dtype whose values fit, so vary it too.
    dtype = draw(st.sampled_from([np.int8 if in_width <= 8 else np.int16, np.int32, np.int64]))
    elements = ints_with_extremes(lo, hi)
    a = draw(hnp.arrays(dtype, (m, k), elements=elements))
    b = draw(hnp.arrays(dtype, (k, n), elements=elements))
    c = None
    if draw(st.booleans()):
        c_elements = ints_with_extremes(*signed_range(acc_width))
        c = draw(hnp.arrays(np.int64, (m, n), elements=c_elements))
    return a, b, c


def oracle(a: np.ndarray, b: np.ndarray, c: np.ndarray | None, acc_width: int) -> list[list[int]]:
    return gemm_py(a.tolist(), b.tolist(), None if c is None else c.tolist(), acc_width=acc_width)


def srdhm_exact(a: int, b: int) -> int:
    """a·b / 2**31 rounded to nearest, ties toward +infinity; INT32_MIN² saturates."""
    if a == b == INT32_MIN:
        return INT32_MAX
    return math.floor(Fraction(a * b, 1 << 31) + Fraction(1, 2))


def rdbpot_exact(x: int, exponent: int) -> int:
    """x / 2**exponent rounded to nearest, ties away from zero."""
    magnitude = math.floor(abs(Fraction(x, 1 << exponent)) + Fraction(1, 2))
    return -magnitude if x < 0 else magnitude


# -- wrap ---------------------------------------------------------------------------------------


@FAST
@given(values=st.lists(st.integers(-(1 << 63), (1 << 63) - 1), min_size=1, max_size=8),
       width=st.integers(1, 64))
def test_wrap_matches_python_ints(values: list[int], width: int) -> None:
    result = wrap(np.array(values, dtype=np.int64), width)
    assert result.dtype == np.int64
    assert result.tolist() == [wrap_int(v, width) for v in values]


@FAST
@given(values=st.lists(st.integers(0, (1 << 64) - 1), min_size=1, max_size=8),
       width=st.integers(1, 64))
def test_wrap_reads_uint64_modulo_2_64(values: list[int], width: int) -> None:
    assert wrap(np.array(values, dtype=np.uint64), width).tolist() == [
        wrap_int(v, width) for v in values]


def test_wrap_hand_cases() -> None:
    assert wrap([127, 128, 255, 256, -129], 8).tolist() == [127, -128, -1, 0, 127]
    assert wrap([1 << 31, (1 << 32) - 1], 32).tolist() == [INT32_MIN, -1]
    assert wrap(np.array([1 << 63], dtype=np.uint64), 64).tolist() == [-(1 << 63)]
    assert wrap_int(1 << 100, 32) == 0
    assert wrap_int((1 << 100) + (1 << 31), 32) == INT32_MIN


# -- gemm against the oracle --------------------------------------------------------------------


@FAST
@given(ops=gemm_operands(in_width=8, acc_width=32))
def test_gemm_int8_int32_matches_oracle(ops: tuple) -> None:
    a, b, c = ops
    result = gemm(a, b, c)
    assert result.dtype == np.int32
    assert result.shape == (a.shape[0], b.shape[1])
    assert result.tolist() == oracle(a, b, c, 32)


@FAST
@given(ops=gemm_operands(in_width=8, acc_width=32))
def test_gemm_acc32_is_numpy_int32_matmul(ops: tuple) -> None:
    a, b, c = ops
    expected = a.astype(np.int32) @ b.astype(np.int32)
    if c is not None:
        expected = expected + c.astype(np.int32)
    np.testing.assert_array_equal(gemm(a, b, c), expected)


@st.composite
def widths_and_operands(draw: st.DrawFn) -> tuple[int, int, tuple]:
    in_width = draw(st.integers(2, 16))
    acc_width = draw(st.one_of(st.sampled_from([16, 24, 32, 48, 64]), st.integers(8, 64)))
    return in_width, acc_width, draw(gemm_operands(in_width, acc_width))


@FAST
@given(case=widths_and_operands())
def test_gemm_any_widths_match_oracle(case: tuple) -> None:
    in_width, acc_width, (a, b, c) = case
    result = gemm(a, b, c, acc_width=acc_width, in_width=in_width)
    assert result.dtype == (np.int32 if acc_width <= 32 else np.int64)
    assert result.tolist() == oracle(a, b, c, acc_width)


@pytest.mark.parametrize("acc_width", [16, 24, 32, 48])
@pytest.mark.parametrize("pattern", ["all_min", "all_max", "min_times_max", "checkerboard"])
def test_gemm_extreme_operands(pattern: str, acc_width: int) -> None:
    m, k, n = 3, 300, 2
    if pattern == "all_min":
        a, b = np.full((m, k), -128), np.full((k, n), -128)
    elif pattern == "all_max":
        a, b = np.full((m, k), 127), np.full((k, n), 127)
    elif pattern == "min_times_max":
        a, b = np.full((m, k), -128), np.full((k, n), 127)
    else:
        a = np.where(np.indices((m, k)).sum(axis=0) % 2, 127, -128)
        b = np.where(np.indices((k, n)).sum(axis=0) % 2, -128, 127)
    assert gemm(a, b, acc_width=acc_width).tolist() == oracle(a, b, None, acc_width)


def test_gemm_wraps_at_narrow_widths_hand_cases() -> None:
    # acc_width 16: 3 · 127 · 127 = 48387 = 65536 - 17149 → -17149.
    assert gemm([[127] * 3], [[127]] * 3, acc_width=16).tolist() == [[-17149]]
    # acc_width 24: 512 · (-128)(-128) = 512 · 16384 = 2**23 → wraps to -2**23.
    assert gemm([[-128] * 512], [[-128]] * 512, acc_width=24).tolist() == [[-(1 << 23)]]
    # acc_width 48: C_in = 2**47 - 1 plus 1·1 → -2**47; the result is int64.
    result = gemm([[1]], [[1]], [[(1 << 47) - 1]], acc_width=48)
    assert result.dtype == np.int64 and result.tolist() == [[-(1 << 47)]]
    # acc_width 64: C_in = 2**63 - 1 plus 1 → -2**63.
    assert gemm([[1]], [[1]], [[(1 << 63) - 1]], acc_width=64).tolist() == [[-(1 << 63)]]
    # in_width 16: 4 · (-32768)**2 = 4 · 2**30 = 2**32 → 0 in 32 bits, exact in 48 bits.
    a, b = [[-32768] * 4], [[-32768]] * 4
    assert gemm(a, b, in_width=16).tolist() == [[0]]
    assert gemm(a, b, in_width=16, acc_width=48).tolist() == [[1 << 32]]


def test_gemm_c_in_accumulates_with_wrap() -> None:
    # INT32_MAX + 1·1 → INT32_MIN; INT32_MIN + (-128)·127 → INT32_MAX - 16255.
    a = np.array([[1], [-128]], dtype=np.int8)
    b = np.array([[1, 127]], dtype=np.int8)
    c = np.array([[INT32_MAX, 0], [0, INT32_MIN]])
    expected = [[INT32_MIN, 127], [-128, INT32_MIN - 128 * 127 + (1 << 32)]]
    assert expected[1][1] == INT32_MAX - 16255
    assert gemm(a, b, c).tolist() == expected == oracle(a, b, c, 32)


def test_gemm_empty_dimensions() -> None:
    assert gemm(np.zeros((2, 0), np.int8), np.zeros((0, 3), np.int8)).tolist() == [[0] * 3] * 2
    c = [[5, -5, INT32_MIN]]
    assert gemm(np.zeros((1, 0), np.int8), np.zeros((0, 3), np.int8), c).tolist() == c
    assert gemm(np.zeros((0, 4), np.int8), np.zeros((4, 2), np.int8)).shape == (0, 2)


# -- long K: int32 wrap-around equals the Python-int sum modulo 2**32 ---------------------------

# Each (-128)·(-128) product is 16384 = 2**14, so a K-long dot product sums to 2**14 · K:
#   K = 4096   → 2**26 = 67108864, no wrap;
#   K = 70000  → 1146880000, still below 2**31 = 2147483648, no wrap;
#   K = 131072 → 2**31, one past INT32_MAX → INT32_MIN;
#   K = 262144 → 2**32 → 0;
#   K = 300000 → 4915200000 - 2**32 = 620232704.
LONG_K = [(4096, 1 << 26), (70000, 1146880000), (131072, INT32_MIN), (262144, 0),
          (300000, 620232704)]


@pytest.mark.parametrize(("k", "expected"), LONG_K)
def test_long_k_all_min_wraps_like_int32(k: int, expected: int) -> None:
    assert expected == wrap_int(16384 * k, 32)  # the hand value is the Python sum mod 2**32
    a = np.full((1, k), -128, dtype=np.int8)
    b = np.full((k, 1), -128, dtype=np.int8)
    assert gemm(a, b).tolist() == [[expected]]
    assert (a.astype(np.int32) @ b.astype(np.int32)).tolist() == [[expected]]
    # The same sum in 4096-long chunks, each fed back as C_in, as the hardware tiles K.
    acc = np.zeros((1, 1), dtype=np.int32)
    for start in range(0, k, 4096):
        acc = gemm(a[:, start:start + 4096], b[start:start + 4096], acc)
    assert acc.tolist() == [[expected]]
    # With a 48-bit accumulator nothing wraps.
    assert gemm(a, b, acc_width=48).tolist() == [[16384 * k]]


@pytest.mark.parametrize("k", [4096, 70000])
def test_long_k_random_chunked_matches_python_sum(k: int) -> None:
    rng = np.random.default_rng(k)
    a = rng.integers(-128, 128, size=(2, k), dtype=np.int8)
    b = rng.integers(-128, 128, size=(k, 2), dtype=np.int8)
    # Bias toward large products of one sign so that the long sums actually wrap.
    a[:, ::2], b[::2, :] = -128, -128
    c = np.array([[INT32_MAX, INT32_MIN], [0, -1]])
    whole = gemm(a, b, c)
    acc = c
    for start in range(0, k, 4096):
        acc = gemm(a[:, start:start + 4096], b[start:start + 4096], acc)
    np.testing.assert_array_equal(acc, whole)
    python_sum = [[wrap_int(int(c[i, j]) + sum(int(x) * int(y) for x, y in zip(a[i], b[:, j],
                                                                               strict=True)), 32)
                   for j in range(2)] for i in range(2)]
    assert whole.tolist() == python_sum == oracle(a, b, c, 32)


# -- the requantization primitives --------------------------------------------------------------


@FAST
@given(a=INT32S, b=INT32S)
def test_srdhm_three_ways(a: int, b: int) -> None:
    expected = srdhm_exact(a, b)
    assert saturating_rounding_doubling_high_mul_scalar(a, b) == expected
    assert saturating_rounding_doubling_high_mul(a, b).item() == expected


@FAST
@given(x=INT32S, exponent=st.integers(0, 31))
def test_rdbpot_three_ways(x: int, exponent: int) -> None:
    expected = rdbpot_exact(x, exponent)
    assert rounding_divide_by_pot_scalar(x, exponent) == expected
    assert rounding_divide_by_pot(x, exponent).item() == expected


@pytest.mark.parametrize(("a", "b", "expected"), [
    # The one overflow: INT32_MIN · INT32_MIN / 2**31 = 2**31 does not fit → INT32_MAX.
    (INT32_MIN, INT32_MIN, INT32_MAX),
    # (2**31 - 1)**2 / 2**31 = 2**31 - 2 + 2**-31 → 2**31 - 2.
    (INT32_MAX, INT32_MAX, INT32_MAX - 1),
    # INT32_MIN · INT32_MAX / 2**31 = -(2**31 - 1) exactly.
    (INT32_MIN, INT32_MAX, -INT32_MAX),
    # Ties go toward +infinity: 1 · 2**30 / 2**31 = 0.5 → 1, -0.5 → 0, 1.5 → 2, -1.5 → -1.
    (1, 1 << 30, 1), (-1, 1 << 30, 0), (3, 1 << 30, 2), (-3, 1 << 30, -1),
    # Just off the tie: (2**30 + 1) / 2**31 > 0.5 → 1; -(2**30 + 1) / 2**31 < -0.5 → -1.
    (1, (1 << 30) + 1, 1), (-1, (1 << 30) + 1, -1),
])
def test_srdhm_hand_cases(a: int, b: int, expected: int) -> None:
    assert saturating_rounding_doubling_high_mul_scalar(a, b) == expected
    assert saturating_rounding_doubling_high_mul(a, b).item() == expected


@pytest.mark.parametrize(("x", "exponent", "expected"), [
    (5, 0, 5), (-5, 0, -5),
    # Ties go away from zero: 1/2 → 1, -1/2 → -1, 3/2 → 2, -3/2 → -2, 2/4 → 1, -2/4 → -1.
    (1, 1, 1), (-1, 1, -1), (3, 1, 2), (-3, 1, -2), (2, 2, 1), (-2, 2, -1),
    # Not ties: 1/4 → 0, -1/4 → 0, 3/4 → 1, -3/4 → -1.
    (1, 2, 0), (-1, 2, 0), (3, 2, 1), (-3, 2, -1),
    # The largest shift: INT32_MIN / 2**31 = -1; INT32_MAX / 2**31 ≈ 1 - 2**-31 → 1;
    # ±2**30 / 2**31 = ±0.5 → ±1.
    (INT32_MIN, 31, -1), (INT32_MAX, 31, 1), (1 << 30, 31, 1), (-(1 << 30), 31, -1),
])
def test_rdbpot_hand_cases(x: int, exponent: int, expected: int) -> None:
    assert rounding_divide_by_pot_scalar(x, exponent) == expected
    assert rounding_divide_by_pot(x, exponent).item() == expected


# -- requantize ---------------------------------------------------------------------------------


@FAST
@given(acc=hnp.arrays(np.int64, st.integers(1, 16), elements=INT32S), multiplier=MULTIPLIERS,
       shift=st.integers(0, 31), zero_point=ints_with_extremes(-128, 127), relu=st.booleans())
def test_requantize_matches_scalar_oracle(acc: np.ndarray, multiplier: int, shift: int,
                                          zero_point: int, relu: bool) -> None:
    result = requantize(acc.astype(np.int32), multiplier, shift, zero_point, relu=relu)
    assert result.dtype == np.int8
    expected = [requantize_scalar(int(x), multiplier, shift, zero_point, relu=relu) for x in acc]
    assert result.tolist() == expected
    params = RequantParams(multiplier, shift, zero_point, relu)
    assert params.apply(acc).tolist() == expected
    assert [params.apply_scalar(int(x)) for x in acc] == expected


@FAST
@given(acc=INT32S, multiplier=MULTIPLIERS, shift=st.integers(0, 31),
       out_width=st.integers(2, 16), data=st.data())
def test_requantize_other_out_widths(acc: int, multiplier: int, shift: int, out_width: int,
                                     data: st.DataObject) -> None:
    lo, hi = signed_range(out_width)
    zero_point = data.draw(ints_with_extremes(lo, hi))
    result = requantize([acc], multiplier, shift, zero_point, out_width=out_width)
    assert result.dtype == (np.int8 if out_width <= 8 else np.int16)
    assert result.tolist() == [
        requantize_scalar(acc, multiplier, shift, zero_point, out_width=out_width)]
    assert lo <= result[0] <= hi


@FAST
@given(acc=st.integers(-(1 << 20), 1 << 20), multiplier=st.integers(1 << 30, INT32_MAX),
       shift=st.integers(0, 31))
def test_requantize_is_within_one_of_the_real_product(acc: int, multiplier: int,
                                                      shift: int) -> None:
    # Two roundings of at most 1/2 each (the first shrunk by 2**shift): never off by more than 1.
    exact = Fraction(acc * multiplier, 1 << (31 + shift))
    scaled = rounding_divide_by_pot_scalar(
        saturating_rounding_doubling_high_mul_scalar(acc, multiplier), shift)
    assert abs(scaled - exact) <= 1
    if -127 <= exact <= 126:
        assert requantize_scalar(acc, multiplier, shift, 0) == scaled


# Hand-computed end to end, multiplier = 2**30 (0.5) unless noted, zero_point 0, no ReLU.
#   step 1 SRDHM:  acc · 2**30 / 2**31 = acc / 2, ties toward +inf;
#   step 2 RDBPOT: / 2**shift, ties away from zero.
REQUANT_HAND_CASES = [
    # acc=3, shift=1: gemmlowp: 3·2**30 + 2**30 = 2**32, / 2**31 = 2 → SRDHM = 2 (1.5 rounded up);
    # RDBPOT(2, 1): mask 1, remainder 0, threshold 0 → 2 >> 1 = 1. Result 1 (real 0.75).
    (3, 1 << 30, 1, 1),
    # acc=-3, shift=1: -3·2**30 + (1 - 2**30) = -2**32 + 1, / 2**31 truncates to -1 → SRDHM = -1
    # (-1.5 rounded toward +inf); RDBPOT(-1, 1): remainder -1 & 1 = 1, threshold 0 + 1 = 1,
    # 1 > 1 is false → -1 >> 1 = -1. Result -1 (real -0.75).
    (-3, 1 << 30, 1, -1),
    # acc=5, shift=1: SRDHM 2.5 → 3; RDBPOT(3, 1) = 1.5 → 2. Result 2 (real 1.25: double rounding).
    (5, 1 << 30, 1, 2),
    # acc=-5, shift=1: SRDHM -2.5 → -2; RDBPOT(-2, 1) = -1 exactly. Result -1 (real -1.25).
    (-5, 1 << 30, 1, -1),
    # acc=1, shift=0: SRDHM 0.5 → 1. acc=-1: -0.5 → 0.
    (1, 1 << 30, 0, 1), (-1, 1 << 30, 0, 0),
    # acc=1, shift=1: SRDHM 0.5 → 1; RDBPOT(1, 1) = 0.5 → 1. Result 1 (real 0.25!).
    (1, 1 << 30, 1, 1),
    # acc=-1, shift=1: SRDHM -0.5 → 0; RDBPOT(0, 1) = 0. Result 0.
    (-1, 1 << 30, 1, 0),
    # acc=4, shift=2: SRDHM 2; RDBPOT(2, 2) = 0.5 → 1 (mask 3, remainder 2 > threshold 1).
    (4, 1 << 30, 2, 1),
    # acc=-4, shift=2: SRDHM -2; RDBPOT(-2, 2): remainder -2 & 3 = 2, threshold 1 + 1 = 2,
    # 2 > 2 is false → -2 >> 2 = -1. Result -1 (-0.5 away from zero).
    (-4, 1 << 30, 2, -1),
    # acc=6, shift=2: SRDHM 3; 3/4 → 1. acc=2, shift=2: SRDHM 1; 1/4 → 0.
    (6, 1 << 30, 2, 1), (2, 1 << 30, 2, 0),
    # multiplier 0 maps everything to the zero point.
    (INT32_MAX, 0, 0, 0), (INT32_MIN, 0, 31, 0),
    # multiplier INT32_MAX, shift 0 (scale 1 - 2**-31): INT32_MAX → 2**31 - 2 → saturates to 127;
    # INT32_MIN → -(2**31 - 1) → -128; 100 → 99.99999995 → 100; -100 → -100.
    (INT32_MAX, INT32_MAX, 0, 127), (INT32_MIN, INT32_MAX, 0, -128),
    (100, INT32_MAX, 0, 100), (-100, INT32_MAX, 0, -100),
    # multiplier 2**30, shift 31 (scale 2**-32): INT32_MIN → SRDHM -2**30 → -0.5 → -1;
    # INT32_MAX → SRDHM 2**30 - 0.5 → 2**30 → 0.5 → 1.
    (INT32_MIN, 1 << 30, 31, -1), (INT32_MAX, 1 << 30, 31, 1),
    # The smallest non-zero multiplier: 1 / 2**31 · 2**30 = 0.5 → 1, then / 2**0.
    (1 << 30, 1, 0, 1), (-(1 << 30), 1, 0, 0),
]


@pytest.mark.parametrize(("acc", "multiplier", "shift", "expected"), REQUANT_HAND_CASES)
def test_requantize_hand_cases(acc: int, multiplier: int, shift: int, expected: int) -> None:
    assert requantize([acc], multiplier, shift, 0).tolist() == [expected]
    assert requantize_scalar(acc, multiplier, shift, 0) == expected


@pytest.mark.parametrize(("acc", "zero_point", "relu", "expected"), [
    # Scale 0.25 (multiplier 2**30, shift 1) throughout.
    # -1000 → -250; + (-100) = -350 → saturates to -128, or with ReLU clamps at -100.
    (-1000, -100, False, -128), (-1000, -100, True, -100),
    # 300 → 75; -100 + 75 = -25, above the zero point: ReLU changes nothing.
    (300, -100, False, -25), (300, -100, True, -25),
    # -400 → -100; + 10 = -90; ReLU → 10.
    (-400, 10, False, -90), (-400, 10, True, 10),
    # 40 → 10; + 10 = 20.
    (40, 10, True, 20),
    # 4 → 1; + 127 = 128 → saturates to 127. -4 → -1; - 128 = -129 → -128, also with ReLU.
    (4, 127, False, 127), (-4, -128, False, -128), (-4, -128, True, -128),
    # 1000 → 250 → 127 whatever the zero point.
    (1000, -100, True, 127), (1000, 0, False, 127),
])
def test_requantize_zero_point_relu_saturation(acc: int, zero_point: int, relu: bool,
                                               expected: int) -> None:
    assert requantize([acc], 1 << 30, 1, zero_point, relu=relu).tolist() == [expected]
    assert requantize_scalar(acc, 1 << 30, 1, zero_point, relu=relu) == expected


def test_requantize_zero_point_add_does_not_wrap() -> None:
    # INT32_MAX at scale 1 - 2**-31 is 2**31 - 2; + 127 exceeds INT32_MAX. TFLite's int32 add is
    # undefined there (a wrapping add would give -128); the model adds exactly and saturates.
    assert requantize([INT32_MAX], INT32_MAX, 0, 127).tolist() == [127]
    assert requantize_scalar(INT32_MAX, INT32_MAX, 0, 127) == 127
    assert requantize([INT32_MIN], INT32_MAX, 0, -128).tolist() == [-128]


def test_requantize_out_width_hand_cases() -> None:
    # 4 bits: [-8, 7]; 100 · 0.25 = 25 → 7; -100 · 0.25 = -25 → -8.
    result = requantize([100, -100, 12], 1 << 30, 1, 0, out_width=4)
    assert result.dtype == np.int8 and result.tolist() == [7, -8, 3]
    # 16 bits: 1_000_000 · 0.25 = 250000 → 32767; 4000 · 0.25 = 1000.
    result = requantize([1_000_000, 4000], 1 << 30, 1, 0, out_width=16)
    assert result.dtype == np.int16 and result.tolist() == [32767, 1000]


def test_requantize_keeps_shape() -> None:
    acc = np.arange(-12, 12, dtype=np.int32).reshape(2, 3, 4) * 1000
    assert requantize(acc, 1 << 30, 4, 3).shape == (2, 3, 4)
    assert requantize(np.int32(7), 1 << 30, 0, 0).shape == ()


# -- quantize_multiplier and RequantParams ------------------------------------------------------


@pytest.mark.parametrize(("real", "expected"), [
    # frexp(0.5) = (0.5, 0): 0.5 · 2**31 = 2**30, shift 0.
    (0.5, (1 << 30, 0)),
    # frexp(0.25) = (0.5, -1) → shift 1.
    (0.25, (1 << 30, 1)),
    # frexp(0.75) = (0.75, 0): 0.75 · 2**31 = 1610612736.
    (0.75, (1610612736, 0)),
    # frexp(0.1) = (0.8, -3): 0.8 · 2**31 = 1717986918.4 → 1717986918, shift 3.
    (0.1, (1717986918, 3)),
    # A tie: (0.5 + 2**-32) · 2**31 = 2**30 + 0.5 → TfLiteRound rounds away from zero to
    # 2**30 + 1 (Python's round() would give 2**30).
    (0.5 + 2.0 ** -32, ((1 << 30) + 1, 0)),
    ((0.5 + 2.0 ** -32) / 8, ((1 << 30) + 1, 3)),
    # The smallest scales: 2**-31 = 0.5 · 2**-30 → shift 30; 2**-32 → shift 31;
    # 2**-33 would need shift 32 → flushed to zero like TFLite.
    (2.0 ** -31, (1 << 30, 30)), (2.0 ** -32, (1 << 30, 31)), (2.0 ** -33, (0, 0)),
    # Just below 1: the mantissa rounds to 2**31 (TFLite: 2**30 with a left shift of 1), clamped.
    (1 - 2.0 ** -40, (INT32_MAX, 0)),
    # The largest value that does not round up: 1 - 2**-31 → 2**31 - 1 exactly.
    (1 - 2.0 ** -31, (INT32_MAX, 0)),
])
def test_quantize_multiplier_hand_cases(real: float, expected: tuple[int, int]) -> None:
    assert quantize_multiplier(real) == expected


@FAST
@given(real=st.floats(2.0 ** -32, 1 - 2.0 ** -31))
def test_quantize_multiplier_is_within_half_an_ulp(real: float) -> None:
    multiplier, shift = quantize_multiplier(real)
    assert 1 << 30 <= multiplier <= INT32_MAX and 0 <= shift <= 31
    error = abs(Fraction(multiplier, 1 << (31 + shift)) - Fraction(real))
    assert error <= Fraction(1, 1 << (32 + shift))
    assert RequantParams(multiplier, shift).scale == pytest.approx(real, rel=2.0 ** -30)


def test_requant_params() -> None:
    params = RequantParams.from_scale(0.1, zero_point=np.int64(-3), relu=True)
    assert params == RequantParams(1717986918, 3, -3, True)
    assert type(params.zero_point) is int
    assert params.scale == 1717986918 / 2 ** 34
    assert params.apply([1000, -1000]).tolist() == [97, -3]  # 1000 · 0.1 = 100 → 97; -100 → -3
    assert hash(params) == hash(RequantParams(1717986918, 3, -3, True))


@FAST
@given(ops=gemm_operands(in_width=8, acc_width=32), multiplier=MULTIPLIERS,
       shift=st.integers(0, 31), zero_point=ints_with_extremes(-128, 127), relu=st.booleans())
def test_gemm_requant_is_gemm_then_requantize(ops: tuple, multiplier: int, shift: int,
                                              zero_point: int, relu: bool) -> None:
    a, b, c = ops
    params = RequantParams(multiplier, shift, zero_point, relu)
    result = gemm_requant(a, b, c, params)
    assert result.dtype == np.int8
    expected = [[requantize_scalar(x, multiplier, shift, zero_point, relu=relu) for x in row]
                for row in oracle(a, b, c, 32)]
    assert result.tolist() == expected


def test_gemm_requant_narrow_accumulator() -> None:
    # acc_width 16: 3 · 127 · 127 wraps to -17149; at scale 2**-7 (2**30, shift 6) that is
    # -133.98 → SRDHM -8574.5 → -8574, / 64 = -133.97 → -134 → saturates to -128.
    params = RequantParams(1 << 30, 6)
    assert gemm_requant([[127] * 3], [[127]] * 3, None, params, acc_width=16).tolist() == [[-128]]
    assert requantize_scalar(-17149, 1 << 30, 6, 0) == -128


def test_default_config_widths_are_the_model_defaults() -> None:
    config = AcceleratorConfig()
    a = np.full((1, 1), config.in_min)
    assert gemm(a, a, in_width=config.in_width, acc_width=config.acc_width).tolist() == [[16384]]


def test_module_docstring_examples() -> None:
    failed, attempted = doctest.testmod(reference, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert attempted >= 3 and failed == 0


# -- error messages, word for word ---------------------------------------------------------------

A34 = np.zeros((3, 4), np.int8)
B42 = np.zeros((4, 2), np.int8)


@pytest.mark.parametrize(("call", "message"), [
    (lambda: gemm(A34, np.zeros((5, 2), np.int8)),
     "gemm: a has shape (3, 4) and b has shape (5, 2): inner dimensions differ (4 != 5)"),
    (lambda: gemm(np.array([[0, 200]]), np.zeros((2, 1), np.int8)),
     "gemm: a holds values outside the signed 8-bit range [-128, 127]"),
    (lambda: gemm(np.array([[-129]]), [[0]]),
     "gemm: a holds values outside the signed 8-bit range [-128, 127]"),
    (lambda: gemm(np.array([[200]], np.uint8), [[0]]),
     "gemm: a holds values outside the signed 8-bit range [-128, 127]"),
    (lambda: gemm([[1]], [[8]], in_width=4),
     "gemm: b holds values outside the signed 4-bit range [-8, 7]"),
    (lambda: gemm([[1]], [[1]], [[1 << 15]], acc_width=16),
     "gemm: c_in holds values outside the signed 16-bit range [-32768, 32767]"),
    (lambda: gemm(np.zeros(3, np.int8), B42),
     "gemm: a has shape (3,), expected a 2-D array (M, K)"),
    (lambda: gemm(A34, np.zeros((4, 2, 2), np.int8)),
     "gemm: b has shape (4, 2, 2), expected a 2-D array (K, N)"),
    (lambda: gemm(A34, B42, np.zeros((2, 3), np.int32)),
     "gemm: c_in has shape (2, 3), expected (3, 2) (rows of a, columns of b)"),
    (lambda: gemm(A34.astype(np.float64), B42),
     "gemm: a has dtype float64, expected an integer dtype"),
    (lambda: gemm(A34, B42.astype(bool)),
     "gemm: b has dtype bool, expected an integer dtype"),
    (lambda: gemm(A34, B42, np.zeros((3, 2), np.float32)),
     "gemm: c_in has dtype float32, expected an integer dtype"),
    (lambda: gemm(A34, B42, in_width=20),
     "gemm: in_width = 20 is out of range (allowed: 2 to 16)"),
    (lambda: gemm(A34, B42, acc_width=70),
     "gemm: acc_width = 70 is out of range (allowed: 8 to 64)"),
    (lambda: gemm(A34, B42, acc_width=32.0),
     "gemm: acc_width = 32.0 is not an integer (allowed: 8 to 64)"),
    (lambda: requantize([0], 1 << 30, 40, 0),
     "requantize: shift = 40 is out of range (allowed: 0 to 31)"),
    (lambda: requantize([0], 1 << 30, -1, 0),
     "requantize: shift = -1 is out of range (allowed: 0 to 31)"),
    (lambda: requantize([0], 1 << 31, 0, 0),
     "requantize: multiplier = 2147483648 is out of range (allowed: 0 to 2147483647)"),
    (lambda: requantize([0], -1, 0, 0),
     "requantize: multiplier = -1 is out of range (allowed: 0 to 2147483647)"),
    (lambda: requantize([0], 0.5, 0, 0),
     "requantize: multiplier = 0.5 is not an integer (allowed: 0 to 2147483647)"),
    (lambda: requantize([0], 1 << 30, 0, 128),
     "requantize: zero_point = 128 is out of range (allowed: -128 to 127)"),
    (lambda: requantize([0], 1 << 30, 0, 8, out_width=4),
     "requantize: zero_point = 8 is out of range (allowed: -8 to 7)"),
    (lambda: requantize([0], 1 << 30, 0, 0, relu=1),
     "requantize: relu = 1 is not a boolean (allowed: true, false)"),
    (lambda: requantize([0], 1 << 30, 0, 0, out_width=32),
     "requantize: out_width = 32 is out of range (allowed: 2 to 16)"),
    (lambda: requantize([INT32_MAX + 1], 1 << 30, 0, 0),
     ("requantize: acc holds values outside the signed 32-bit range "
      "[-2147483648, 2147483647]")),
    (lambda: requantize(np.zeros(2, np.float32), 1 << 30, 0, 0),
     "requantize: acc has dtype float32, expected an integer dtype"),
    (lambda: requantize_scalar(0, 1 << 30, 32, 0),
     "requantize_scalar: shift = 32 is out of range (allowed: 0 to 31)"),
    (lambda: requantize_scalar(INT32_MIN - 1, 1 << 30, 0, 0),
     ("requantize_scalar: acc = -2147483649 is out of range "
      "(allowed: -2147483648 to 2147483647)")),
    (lambda: RequantParams(1 << 30, 32),
     "RequantParams: shift = 32 is out of range (allowed: 0 to 31)"),
    (lambda: RequantParams(1 << 30, 0, zero_point=-129),
     "RequantParams: zero_point = -129 is out of range (allowed: -128 to 127)"),
    (lambda: RequantParams(1 << 30, 0).apply([1.5]),
     "RequantParams.apply: acc has dtype float64, expected an integer dtype"),
    (lambda: gemm_requant([[1]], [[1]], None, RequantParams(1 << 30, 0), acc_width=48),
     ("gemm_requant: acc_width = 48 is out of range "
      "(allowed: 8 to 32; the requantizer takes 32-bit accumulators)")),
    (lambda: quantize_multiplier(1.5),
     "quantize_multiplier: real = 1.5 is out of range (allowed: 0 < real < 1)"),
    (lambda: quantize_multiplier(0),
     "quantize_multiplier: real = 0.0 is out of range (allowed: 0 < real < 1)"),
    (lambda: quantize_multiplier(float("nan")),
     "quantize_multiplier: real = nan is out of range (allowed: 0 < real < 1)"),
    (lambda: quantize_multiplier("0.5"),
     "quantize_multiplier: real = '0.5' is not a number (allowed: 0 < real < 1)"),
    (lambda: wrap([1], 0),
     "wrap: width = 0 is out of range (allowed: 1 to 64)"),
    (lambda: wrap([1.0], 8),
     "wrap: x has dtype float64, expected an integer dtype"),
    (lambda: rounding_divide_by_pot([1], 32),
     "rounding_divide_by_pot: exponent = 32 is out of range (allowed: 0 to 31)"),
    (lambda: saturating_rounding_doubling_high_mul([1 << 31], [1]),
     ("saturating_rounding_doubling_high_mul: a holds values outside the signed 32-bit "
      "range [-2147483648, 2147483647]")),
])
def test_error_messages(call, message: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        call()
    assert str(excinfo.value) == message


def test_gemm_requant_rejects_other_params() -> None:
    with pytest.raises(TypeError) as excinfo:
        gemm_requant([[1]], [[1]], None, {"multiplier": 1, "shift": 0})
    assert str(excinfo.value) == "gemm_requant: params must be a RequantParams, not dict"
