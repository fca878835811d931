"""The bit-exact golden model of the accelerator: integer GEMM and TFLite-style requantization.

Everything the hardware computes is defined here first. The gateware, the Verilator testbenches
and the host driver are all checked against these functions, so they are written for exactness
and readability rather than speed, and every rounding or wrapping rule is stated below.

GEMM
====

``gemm(a, b, c_in)`` computes ``C = C_in + A·B`` with signed ``in_width``-bit operands and a
signed ``acc_width``-bit accumulator that wraps around (two's complement), exactly as the PE's
adder does: no saturation anywhere. Because wrapping is arithmetic modulo ``2**acc_width``, it
does not matter whether the model wraps after every multiply-accumulate (as the hardware does)
or once at the end (as :func:`gemm` does): the result is the same for any K. For
``acc_width = 32`` this is exactly NumPy's ``int32`` matmul behaviour.

:func:`gemm` is exact for *any* K: it multiplies and sums in ``uint64``, whose wrap-around at
``2**64`` is defined behaviour, and ``2**acc_width`` divides ``2**64``, so the final wrap to
``acc_width`` bits loses nothing. (Summing in ``int64`` would be exact only while
``K * 2**(2*in_width - 2) < 2**63``, i.e. ``K < 2**49`` for 8-bit operands, and signed overflow
beyond that is undefined in C, which is what NumPy's integer matmul loops are written in.)

Requantization
==============

:func:`requantize` turns an ``int32`` accumulator into an ``int8`` activation exactly as TFLite's
reference kernels do with gemmlowp's fixed-point primitives (the "double rounding" path, i.e.
TFLite built *without* ``TFLITE_SINGLE_ROUNDING``). The real scale ``M`` is given as a Q31
``multiplier`` in ``[0, 2**31 - 1]`` and a right ``shift`` in ``[0, 31]``, so that
``M = multiplier / 2**31 / 2**shift``. The steps, each in exact integer arithmetic:

1. ``x = SaturatingRoundingDoublingHighMul(acc, multiplier)``: ``acc · multiplier / 2**31``
   rounded to nearest, **ties toward +infinity** (gemmlowp adds a nudge of ``2**30`` for
   non-negative products and ``1 - 2**30`` for negative ones, then divides with C's truncating
   ``/``; that is the same as ``floor((acc·multiplier + 2**30) / 2**31)``). The one overflow,
   ``INT32_MIN · INT32_MIN``, saturates to ``INT32_MAX``; it cannot occur here because
   ``multiplier >= 0``.
2. ``y = RoundingDivideByPOT(x, shift)``: ``x / 2**shift`` rounded to nearest, **ties away
   from zero** (gemmlowp compares the shifted-out remainder against a threshold that is one
   larger for negative ``x``).
3. ``z = y + zero_point``, computed exactly. (TFLite adds in ``int32``, where an overflow is
   undefined behaviour; it can only happen when ``shift = 0``, ``multiplier`` is close to
   ``2**31`` and ``|acc|`` is close to ``2**31``. The model does not wrap, so such a value
   saturates in step 5 like every other out-of-range value.)
4. With ``relu``, ``z = max(z, zero_point)``: TFLite's fused ReLU is a lower clamp at the
   quantized zero.
5. Saturate ``z`` to the signed ``out_width``-bit range, ``[-128, 127]`` by default.

Rounding twice (steps 1 and 2) is not the same as rounding ``acc · M`` once, and the two ties
rules make it asymmetric between positive and negative accumulators. Worked example with
``multiplier = 2**30`` (0.5) and ``shift = 1``, i.e. ``M = 0.25``:

* ``acc = 5``: step 1 gives 2.5, a tie, rounded toward +infinity to 3; step 2 gives 1.5, a tie,
  rounded away from zero to **2**, although ``5 · 0.25 = 1.25``.
* ``acc = -5``: step 1 gives -2.5, rounded toward +infinity to -2; step 2 gives -1 exactly:
  **-1**.
* ``acc = 3``: step 1 gives 1.5, rounded to 2; step 2 gives 1 exactly: **1** (``0.75``).
* ``acc = -3``: step 1 gives -1.5, rounded to -1; step 2 gives -0.5, rounded away from zero to
  **-1** (``-0.75``).

>>> requantize(np.array([5, -5, 3, -3]), 1 << 30, 1, 0)
array([ 2, -1,  1, -1], dtype=int8)

With ``zero_point = -100``, ``relu`` and saturation, for ``M = 0.25``:

>>> requantize(np.array([-1000, 300, 1000]), 1 << 30, 1, -100, relu=True)
array([-100,  -25,  127], dtype=int8)

(-1000 → -250 → -350, clamped at the zero point to -100; 300 → 75 → -25; 1000 → 250 → 150,
saturated to 127.) :func:`quantize_multiplier` turns a real scale into ``(multiplier, shift)``
the way TFLite's ``QuantizeMultiplier`` does:

>>> quantize_multiplier(0.1)
(1717986918, 3)

Oracles
=======

:func:`gemm_py` and :func:`requantize_scalar` are independent re-implementations in plain Python
integers, with no NumPy: :func:`gemm_py` wraps after every multiply-accumulate like the hardware,
and :func:`requantize_scalar` transcribes gemmlowp's C code line by line (nudge and truncating
division, mask and threshold), whereas the NumPy versions use the equivalent closed forms above.
The tests check one against the other.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "INT32_MAX",
    "INT32_MIN",
    "RequantParams",
    "gemm",
    "gemm_py",
    "gemm_requant",
    "quantize_multiplier",
    "requantize",
    "requantize_scalar",
    "rounding_divide_by_pot",
    "rounding_divide_by_pot_scalar",
    "saturating_rounding_doubling_high_mul",
    "saturating_rounding_doubling_high_mul_scalar",
    "wrap",
    "wrap_int",
]

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1

# The operand and accumulator widths the hardware supports; the same bounds as the config's
# in_width and acc_width fields, so the model accepts exactly what can be built.
IN_WIDTH_RANGE = (2, 16)
ACC_WIDTH_RANGE = (8, 64)
OUT_WIDTH_RANGE = (2, 16)
SHIFT_RANGE = (0, 31)
MULTIPLIER_RANGE = (0, INT32_MAX)


# -- argument checking ------------------------------------------------------------------------


def _check_int(func: str, name: str, value: Any, lo: int, hi: int, note: str = "") -> int:
    """Return ``value`` as a Python int, or raise a one-line ValueError naming it.

    The wording follows :class:`accelerator.config.Field` so that the config, the CLI and the
    model report a bad value the same way.
    """
    allowed = f"allowed: {lo} to {hi}{note}"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{func}: {name} = {value!r} is not an integer ({allowed})")
    value = int(value)
    if not lo <= value <= hi:
        raise ValueError(f"{func}: {name} = {value} is out of range ({allowed})")
    return value


def _check_bool(func: str, name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{func}: {name} = {value!r} is not a boolean (allowed: true, false)")
    return bool(value)


def _signed_range(width: int) -> tuple[int, int]:
    return -(1 << (width - 1)), (1 << (width - 1)) - 1


def _as_int_array(func: str, name: str, value: ArrayLike) -> NDArray[Any]:
    """``value`` as an integer ndarray; a float or bool array is a caller bug, never rounded."""
    array = np.asarray(value)
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{func}: {name} has dtype {array.dtype}, expected an integer dtype")
    return array


def _check_values(func: str, name: str, array: NDArray[Any], width: int) -> NDArray[np.int64]:
    """``array`` as int64 after checking it fits ``width`` signed bits.

    The check is on values, not on the dtype, so an int64 array of small numbers is as good as an
    int8 one, and a uint8 array holding 200 is rejected even though its dtype "looks" 8-bit.
    """
    lo, hi = _signed_range(width)
    if array.size and (array.min() < lo or array.max() > hi):
        raise ValueError(f"{func}: {name} holds values outside the signed {width}-bit range "
                         f"[{lo}, {hi}]")
    return array.astype(np.int64)


def _check_shape(func: str, name: str, array: NDArray[Any], dims: str) -> None:
    if array.ndim != 2:
        raise ValueError(f"{func}: {name} has shape {array.shape}, expected a 2-D array {dims}")


# -- wrap-around ------------------------------------------------------------------------------


def wrap(x: ArrayLike, width: int) -> NDArray[np.int64]:
    """Two's complement wrap of integers to ``width`` signed bits, as an int64 array.

    This is what a ``width``-bit register does with a value that does not fit: keep the low
    ``width`` bits and read them as signed. Unsigned inputs are taken modulo ``2**64`` first,
    so a ``uint64`` sum that wrapped is read back correctly.
    """
    width = _check_int("wrap", "width", width, 1, 64)
    array = _as_int_array("wrap", "x", x)
    if array.dtype.kind == "u":
        bits = array.astype(np.uint64)
    else:
        bits = array.astype(np.int64).view(np.uint64)
    if width == 64:
        return bits.view(np.int64)
    low = bits & np.uint64((1 << width) - 1)
    # Flipping the sign bit maps [0, 2**w) onto [-2**(w-1), 2**(w-1)) after the subtraction.
    sign = 1 << (width - 1)
    return (low ^ np.uint64(sign)).astype(np.int64) - sign


def wrap_int(value: int, width: int) -> int:
    """The plain-Python-int version of :func:`wrap`, for the oracles (any size of ``value``)."""
    half = 1 << (width - 1)
    return (value + half) % (1 << width) - half


# -- GEMM -------------------------------------------------------------------------------------


def gemm(a: ArrayLike, b: ArrayLike, c_in: ArrayLike | None = None, *, acc_width: int = 32,
         in_width: int = 8) -> NDArray[np.int32] | NDArray[np.int64]:
    """``C_in + A·B`` with ``in_width``-bit operands and a wrapping ``acc_width``-bit accumulator.

    ``a`` is (M, K), ``b`` is (K, N) and ``c_in`` (M, N); any integer dtype is accepted as long as
    the values fit (operands in ``in_width`` bits, ``c_in`` in ``acc_width`` bits), because the
    hardware has no way to represent anything else and silently truncating would hide a bug in
    the caller. Exact for any K (see the module docstring). Returns ``int32`` when
    ``acc_width <= 32``, else ``int64``.
    """
    func = "gemm"
    in_width = _check_int(func, "in_width", in_width, *IN_WIDTH_RANGE)
    acc_width = _check_int(func, "acc_width", acc_width, *ACC_WIDTH_RANGE)
    a_arr = _as_int_array(func, "a", a)
    b_arr = _as_int_array(func, "b", b)
    _check_shape(func, "a", a_arr, "(M, K)")
    _check_shape(func, "b", b_arr, "(K, N)")
    if a_arr.shape[1] != b_arr.shape[0]:
        raise ValueError(f"{func}: a has shape {a_arr.shape} and b has shape {b_arr.shape}: "
                         f"inner dimensions differ ({a_arr.shape[1]} != {b_arr.shape[0]})")
    a64 = _check_values(func, "a", a_arr, in_width)
    b64 = _check_values(func, "b", b_arr, in_width)
    # Reinterpreting two's complement int64 as uint64 and multiplying/adding there is arithmetic
    # modulo 2**64 with defined overflow; reading the bits back as signed gives the exact result
    # modulo 2**64, from which the wrap to acc_width bits is exact.
    total = a64.view(np.uint64) @ b64.view(np.uint64)
    if c_in is not None:
        c_arr = _as_int_array(func, "c_in", c_in)
        expected = (a_arr.shape[0], b_arr.shape[1])
        if c_arr.shape != expected:
            raise ValueError(f"{func}: c_in has shape {c_arr.shape}, expected {expected} "
                             f"(rows of a, columns of b)")
        total = total + _check_values(func, "c_in", c_arr, acc_width).view(np.uint64)
    result = wrap(total, acc_width)
    return result.astype(np.int32) if acc_width <= 32 else result


def gemm_py(a: Sequence[Sequence[int]], b: Sequence[Sequence[int]],
            c_in: Sequence[Sequence[int]] | None = None, *, acc_width: int = 32
            ) -> list[list[int]]:
    """The oracle for :func:`gemm`: nested lists of Python ints, wrapped after every MAC.

    Wrapping at each step is what the PE's accumulator register does, so this follows the
    hardware literally and shares no code with :func:`gemm`, which wraps once at the end. It
    trusts its inputs' ranges (it is a test oracle, not an entry point); only the shapes are
    checked, to turn a mistake in a test into an error instead of a silently short sum.
    """
    rows, depth = len(a), len(b)
    cols = len(b[0]) if depth else (len(c_in[0]) if c_in else 0)
    if any(len(row) != depth for row in a) or any(len(row) != cols for row in b):
        raise ValueError("gemm_py: a must be M×K and b K×N")
    result: list[list[int]] = []
    for i in range(rows):
        out_row: list[int] = []
        for j in range(cols):
            acc = wrap_int(c_in[i][j], acc_width) if c_in is not None else 0
            for k in range(depth):
                acc = wrap_int(acc + a[i][k] * b[k][j], acc_width)
            out_row.append(acc)
        result.append(out_row)
    return result


# -- requantization: the gemmlowp primitives ----------------------------------------------------


def saturating_rounding_doubling_high_mul(a: ArrayLike, b: ArrayLike) -> NDArray[np.int32]:
    """gemmlowp's ``SaturatingRoundingDoublingHighMul`` (ARM ``VQRDMULH``), elementwise.

    ``round(a·b / 2**31)`` with ties toward +infinity, and ``INT32_MIN·INT32_MIN`` (the only
    product whose result does not fit) saturated to ``INT32_MAX``. Exposed on its own so that a
    testbench can check the hardware's multiplier stage in isolation.
    """
    func = "saturating_rounding_doubling_high_mul"
    a64 = _check_values(func, "a", _as_int_array(func, "a", a), 32)
    b64 = _check_values(func, "b", _as_int_array(func, "b", b), 32)
    return _srdhm(a64, b64)


def _srdhm(a64: NDArray[np.int64], b64: NDArray[np.int64] | int) -> NDArray[np.int32]:
    # |a·b| <= 2**62, so neither the product nor the nudged sum overflows int64. gemmlowp's
    # "nudge by 2**30 or 1 - 2**30, then truncate" equals this floor of (a·b + 2**30) / 2**31
    # (the arithmetic right shift floors); the scalar oracle keeps gemmlowp's form.
    product = a64 * b64
    high = (product + (1 << 30)) >> 31
    overflow = (a64 == INT32_MIN) & (np.asarray(b64) == INT32_MIN)
    return np.where(overflow, INT32_MAX, high).astype(np.int32)


def rounding_divide_by_pot(x: ArrayLike, exponent: int) -> NDArray[np.int32]:
    """gemmlowp's ``RoundingDivideByPOT``: ``x / 2**exponent`` rounded, ties away from zero."""
    func = "rounding_divide_by_pot"
    exponent = _check_int(func, "exponent", exponent, *SHIFT_RANGE)
    x64 = _check_values(func, "x", _as_int_array(func, "x", x), 32)
    return _rdbpot(x64, exponent)


def _rdbpot(x64: NDArray[np.int64], exponent: int) -> NDArray[np.int32]:
    # Round the magnitude half up and restore the sign: ties go away from zero. gemmlowp's
    # mask-and-threshold form computes the same thing; the scalar oracle keeps that form.
    if exponent == 0:
        return x64.astype(np.int32)
    magnitude = (np.abs(x64) + (1 << (exponent - 1))) >> exponent
    return np.where(x64 < 0, -magnitude, magnitude).astype(np.int32)


def saturating_rounding_doubling_high_mul_scalar(a: int, b: int) -> int:
    """gemmlowp's C code for ``SaturatingRoundingDoublingHighMul``, transcribed to Python ints."""
    overflow = a == b == INT32_MIN
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    high = _c_divide(ab + nudge, 1 << 31)
    return INT32_MAX if overflow else high


def rounding_divide_by_pot_scalar(x: int, exponent: int) -> int:
    """gemmlowp's C code for ``RoundingDivideByPOT``, transcribed to Python ints.

    Python's ``&`` and ``>>`` on negative ints act on an infinite two's complement, which agrees
    with C's on int32 (``>>`` being the arithmetic shift every compiler TFLite supports uses).
    """
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def _c_divide(numerator: int, denominator: int) -> int:
    """C's integer ``/``: truncates toward zero (Python's ``//`` floors)."""
    quotient = abs(numerator) // abs(denominator)
    return quotient if (numerator >= 0) == (denominator > 0) else -quotient


# -- requantization: the whole stage ------------------------------------------------------------


def _check_requant(func: str, multiplier: Any, shift: Any, zero_point: Any, relu: Any,
                   out_width: Any) -> tuple[int, int, int, bool, int]:
    out_width = _check_int(func, "out_width", out_width, *OUT_WIDTH_RANGE)
    multiplier = _check_int(func, "multiplier", multiplier, *MULTIPLIER_RANGE)
    shift = _check_int(func, "shift", shift, *SHIFT_RANGE)
    zero_point = _check_int(func, "zero_point", zero_point, *_signed_range(out_width))
    relu = _check_bool(func, "relu", relu)
    return multiplier, shift, zero_point, relu, out_width


def requantize(acc: ArrayLike, multiplier: int, shift: int, zero_point: int, *,
               relu: bool = False, out_width: int = 8) -> NDArray[np.int8] | NDArray[np.int16]:
    """Scale ``int32`` accumulators to ``out_width``-bit activations, bit-exact with TFLite.

    The five steps and their rounding are in the module docstring. ``acc`` must hold values in
    the signed 32-bit range: that is the accumulator the TFLite primitives are defined on, and
    a wider one would need a different multiplier stage in the hardware. Returns ``int8`` for
    ``out_width <= 8``, else ``int16``, with the shape of ``acc``.
    """
    func = "requantize"
    multiplier, shift, zero_point, relu, out_width = _check_requant(
        func, multiplier, shift, zero_point, relu, out_width)
    acc64 = _check_values(func, "acc", _as_int_array(func, "acc", acc), 32)
    return _requantize(acc64, multiplier, shift, zero_point, relu, out_width)


def _requantize(acc64: NDArray[np.int64], multiplier: int, shift: int, zero_point: int,
                relu: bool, out_width: int) -> NDArray[np.int8] | NDArray[np.int16]:
    scaled = _rdbpot(_srdhm(acc64, multiplier).astype(np.int64), shift)
    out = scaled.astype(np.int64) + zero_point
    lo, hi = _signed_range(out_width)
    if relu:
        lo = max(lo, zero_point)
    return np.clip(out, lo, hi).astype(np.int8 if out_width <= 8 else np.int16)


def requantize_scalar(acc: int, multiplier: int, shift: int, zero_point: int, *,
                      relu: bool = False, out_width: int = 8) -> int:
    """The oracle for :func:`requantize`: one accumulator, plain Python ints, gemmlowp's C form.

    Validates its arguments like :func:`requantize` (so a test cannot feed it nonsense and
    "agree"), but shares none of its arithmetic.
    """
    func = "requantize_scalar"
    multiplier, shift, zero_point, relu, out_width = _check_requant(
        func, multiplier, shift, zero_point, relu, out_width)
    acc = _check_int(func, "acc", acc, INT32_MIN, INT32_MAX)
    x = saturating_rounding_doubling_high_mul_scalar(acc, multiplier)
    y = rounding_divide_by_pot_scalar(x, shift)
    z = y + zero_point
    lo, hi = _signed_range(out_width)
    if relu:
        z = max(z, zero_point)
    return min(max(z, lo), hi)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite's ``QuantizeMultiplier`` for a scale in (0, 1): ``(Q31 multiplier, right shift)``.

    ``real ≈ multiplier / 2**31 / 2**shift`` with ``multiplier`` in ``[2**30, 2**31 - 1]``, so the
    Q31 mantissa keeps 31 significant bits whatever the scale's magnitude. Like TFLite, the
    mantissa is rounded half away from zero (``TfLiteRound``), and a scale below ``2**-32``, whose
    shift would exceed 31, is flushed to ``(0, 0)``. One deviation: a ``real`` just below 1 whose
    mantissa rounds up to 1.0 would be ``(2**30, left shift 1)`` in TFLite, which a right-shift-only
    requantizer cannot express; it becomes ``(2**31 - 1, 0)``, off by ``2**-31``.
    """
    func = "quantize_multiplier"
    allowed = "allowed: 0 < real < 1"
    if isinstance(real, (bool, np.bool_)) or not isinstance(real, numbers.Real):
        raise ValueError(f"{func}: real = {real!r} is not a number ({allowed})")
    real = float(real)
    if not 0.0 < real < 1.0:  # also rejects NaN
        raise ValueError(f"{func}: real = {real!r} is out of range ({allowed})")
    mantissa, exponent = math.frexp(real)  # real = mantissa · 2**exponent, 0.5 <= mantissa < 1
    # mantissa · 2**31 lies in [2**30, 2**31) and has 53 significant bits, so adding 0.5 is exact
    # and floor(· + 0.5) is round-half-up, i.e. half away from zero for this positive value.
    q_fixed = math.floor(mantissa * (1 << 31) + 0.5)
    if q_fixed == 1 << 31:
        q_fixed //= 2
        exponent += 1
    if exponent < -SHIFT_RANGE[1]:
        return 0, 0
    if exponent > 0:
        return INT32_MAX, 0
    return q_fixed, -exponent


# -- requantization parameters and the fused GEMM -----------------------------------------------


@dataclass(frozen=True)
class RequantParams:
    """One requantization setting (what the hardware's requant registers hold), validated.

    Frozen and validated on construction so that a bad shift or zero point is reported where it
    is made, not deep inside a simulation that produced wrong numbers.
    """

    multiplier: int
    shift: int
    zero_point: int = 0
    relu: bool = False
    out_width: int = 8

    def __post_init__(self) -> None:
        values = _check_requant("RequantParams", self.multiplier, self.shift, self.zero_point,
                                self.relu, self.out_width)
        # Store plain Python ints/bools even if given NumPy scalars, so equality, hashing and
        # repr do not depend on where the numbers came from.
        for name, value in zip(("multiplier", "shift", "zero_point", "relu", "out_width"),
                               values, strict=True):
            object.__setattr__(self, name, value)

    @classmethod
    def from_scale(cls, scale: float, zero_point: int = 0, relu: bool = False,
                   out_width: int = 8) -> RequantParams:
        """Parameters for a real scale in (0, 1), via :func:`quantize_multiplier`."""
        multiplier, shift = quantize_multiplier(scale)
        return cls(multiplier, shift, zero_point, relu, out_width)

    @property
    def scale(self) -> float:
        """The real scale these parameters approximate."""
        return math.ldexp(self.multiplier, -31 - self.shift)

    def apply(self, acc: ArrayLike) -> NDArray[np.int8] | NDArray[np.int16]:
        """:func:`requantize` with these parameters."""
        acc64 = _check_values("RequantParams.apply", "acc",
                              _as_int_array("RequantParams.apply", "acc", acc), 32)
        return _requantize(acc64, self.multiplier, self.shift, self.zero_point, self.relu,
                           self.out_width)

    def apply_scalar(self, acc: int) -> int:
        """:func:`requantize_scalar` with these parameters."""
        return requantize_scalar(acc, self.multiplier, self.shift, self.zero_point,
                                 relu=self.relu, out_width=self.out_width)


def gemm_requant(a: ArrayLike, b: ArrayLike, c_in: ArrayLike | None, params: RequantParams,
                 acc_width: int = 32, *, in_width: int = 8
                 ) -> NDArray[np.int8] | NDArray[np.int16]:
    """:func:`gemm` followed by :func:`requantize`: what the accelerator with ``requant`` emits.

    ``acc_width`` is limited to 32 here because the TFLite requantizer is defined on ``int32``
    accumulators; a narrower accumulator is sign-extended into it, as the hardware does.
    """
    func = "gemm_requant"
    if not isinstance(params, RequantParams):
        raise TypeError(f"{func}: params must be a RequantParams, not {type(params).__name__}")
    acc_width = _check_int(func, "acc_width", acc_width, ACC_WIDTH_RANGE[0], 32,
                           "; the requantizer takes 32-bit accumulators")
    acc = gemm(a, b, c_in, acc_width=acc_width, in_width=in_width)
    return _requantize(acc.astype(np.int64), params.multiplier, params.shift, params.zero_point,
                       params.relu, params.out_width)
