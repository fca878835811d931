"""The arithmetic of the lowering: onnxruntime's requantization, the hardware's, im2col, host ops.

onnxruntime's CPU kernels (MLAS) requantize an int32 accumulator in float32:
``y = saturate(round_half_even(clamp(float32(acc) · scale, qmin − zp, qmax − zp)) + zp)``, with
``scale`` a float32 computed from the tensors' scales (:func:`ort_scale`). The accelerator's
requantizer is gemmlowp's fixed-point pipeline (:mod:`accelerator.model.reference`): a Q31
multiplier with round-half-up, then a rounding right shift with ties away from zero. The two
agree on most accumulators but not on all (ties and near-ties of ``acc · scale``), so
:func:`hardware_requant_exact` decides per layer, by checking every accumulator value whose output
is not saturated in both (both are monotonic, so that settles all int32 values).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..model.reference import RequantParams, quantize_multiplier

__all__ = ["HOST_CHECK_LIMIT", "QRANGE", "dequantize", "hardware_requant_exact", "im2col",
           "ort_requant", "ort_scale", "quantize"]

#: Integer range of each quantized ONNX element type.
QRANGE = {np.dtype(np.int8): (-128, 127), np.dtype(np.uint8): (0, 255)}

#: At most this many accumulator values are compared to prove the hardware requantizer equal
#: to onnxruntime's for a layer; a layer whose unsaturated range is wider requantizes on the host.
HOST_CHECK_LIMIT = 1 << 24


def ort_scale(*factors: Any, divide: Any) -> NDArray[np.float32]:
    """``f1 · f2 · … / divide`` in float32, left to right: how onnxruntime's QLinear kernels form
    the requantization scale (``a_scale * b_scale / y_scale``)."""
    value = np.float32(factors[0])
    for factor in factors[1:]:
        value = np.asarray(value, dtype=np.float32) * np.asarray(factor, dtype=np.float32)
    return (np.asarray(value, dtype=np.float32) / np.asarray(divide, dtype=np.float32)).astype(
        np.float32)


def ort_requant(acc: NDArray[Any], scale: NDArray[np.float32] | np.float32, zero_point: int,
                dtype: np.dtype, relu: bool = False) -> NDArray[Any]:
    """MLAS's ``MlasRequantizeOutput``: int32 → float32, times ``scale`` (per tensor, or per
    output column when ``scale`` is a vector), clamped, rounded half to even, plus the zero
    point. ``relu`` clamps at the zero point as well (a fused ReLU)."""
    qmin, qmax = QRANGE[np.dtype(dtype)]
    if relu:
        qmin = max(qmin, zero_point)
    value = np.asarray(acc, dtype=np.int32).astype(np.float32) * np.asarray(scale, np.float32)
    value = np.clip(value, np.float32(qmin - zero_point), np.float32(qmax - zero_point))
    return (np.rint(value).astype(np.int32) + np.int32(zero_point)).astype(dtype)


def quantize(x: NDArray[Any], scale: Any, zero_point: Any, dtype: np.dtype,
             axis: int = 1) -> NDArray[Any]:
    """ONNX QuantizeLinear as MLAS computes it: ``x / scale`` in float32, rounded half to even."""
    qmin, qmax = QRANGE[np.dtype(dtype)]
    scale, zero_point = _broadcast(np.asarray(scale, np.float32), x.ndim, axis), _broadcast(
        np.asarray(zero_point).astype(np.int32), x.ndim, axis)
    value = np.asarray(x, np.float32) / scale
    value = np.rint(value).astype(np.float64) + zero_point
    return np.clip(value, qmin, qmax).astype(dtype)


def dequantize(q: NDArray[Any], scale: Any, zero_point: Any, axis: int = 1) -> NDArray[np.float32]:
    """ONNX DequantizeLinear: ``(q − zero_point) · scale`` in float32."""
    scale, zero_point = _broadcast(np.asarray(scale, np.float32), q.ndim, axis), _broadcast(
        np.asarray(zero_point).astype(np.int32), q.ndim, axis)
    return ((q.astype(np.int32) - zero_point).astype(np.float32) * scale).astype(np.float32)


def _broadcast(param: NDArray[Any], ndim: int, axis: int) -> NDArray[Any]:
    if param.ndim == 0 or param.size == 1:
        return param.reshape(())
    shape = [1] * ndim
    shape[axis % ndim] = param.size
    return param.reshape(shape)


def _candidates(scale: float) -> list[tuple[int, int]]:
    """(multiplier, shift) pairs worth checking, best first: a right shift of 0 where the float32
    scale times 2**31 is an integer (one rounding, like the float path's single rounding), then
    the smallest shifts whose multiplier is exact, then TFLite's ``quantize_multiplier``."""
    pairs = []
    for shift in range(0, 32):
        real = math.ldexp(scale, 31 + shift)
        if real >= 1 << 31:
            break
        if real == math.floor(real) and real >= 1:
            pairs.append((int(real), shift))
    near = math.floor(math.ldexp(scale, 31) + 0.5)
    if 0 < near < 1 << 31:
        pairs.append((near, 0))
    pairs.append(quantize_multiplier(scale))
    unique: list[tuple[int, int]] = []
    for pair in pairs:
        if pair not in unique and pair[0] > 0:
            unique.append(pair)
    return unique[:6]


def hardware_requant_exact(scale: np.float32, zero_point: int, dtype: np.dtype, relu: bool
                           ) -> RequantParams | None:
    """Requantizer registers that give exactly :func:`ort_requant`'s result for every int32
    accumulator, or ``None`` when none of the candidates does (the layer then requantizes on the
    host).

    The candidates are ``(multiplier, shift)`` pairs for the float32 scale (:func:`_candidates`);
    the zero point is moved into int8 (``zp − 128`` for a uint8 output, whose values the host
    shifts back by 128), with the ReLU flag. Both requantizers are monotonic in the accumulator,
    so comparing them on every accumulator from where both saturate low to where both saturate
    high proves them equal on all int32 values.
    """
    scale = float(scale)
    if not 0.0 < scale < 1.0 or not math.isfinite(scale):
        return None
    qmin, qmax = QRANGE[np.dtype(dtype)]
    offset = 128 if qmin == 0 else 0
    low_out = max(qmin, zero_point) if relu else qmin
    lo = max(math.floor((qmin - zero_point - 2) / scale) - 2, -(1 << 31))
    hi = min(math.ceil((qmax - zero_point + 2) / scale) + 2, (1 << 31) - 1)
    if hi - lo > HOST_CHECK_LIMIT:
        return None
    acc = np.arange(lo, hi + 1, dtype=np.int64)
    theirs = ort_requant(acc, np.float32(scale), zero_point, dtype, relu).astype(np.int32)
    for multiplier, shift in _candidates(scale):
        params = RequantParams(multiplier, shift, zero_point - offset, relu)
        ours = params.apply(acc).astype(np.int32) + offset
        ends = ((lo == -(1 << 31) or theirs[0] == ours[0] == low_out)
                and (hi == (1 << 31) - 1 or theirs[-1] == ours[-1] == qmax))
        if ends and np.array_equal(ours, theirs):
            return params
    return None


def im2col(x: NDArray[Any], kernel: tuple[int, int], strides: tuple[int, int],
           pads: tuple[int, int, int, int], dilations: tuple[int, int], pad_value: int
           ) -> tuple[NDArray[Any], int, int]:
    """NCHW ``x`` as a patch matrix (N·OH·OW, C·KH·KW), rows in (n, oh, ow) order and columns in
    (c, kh, kw) order (the order of an ONNX weight reshaped to (OC, C·KH·KW)). Padding takes
    ``pad_value`` (the input's zero point: the real 0). Returns the matrix, OH and OW."""
    n, c, h, w = x.shape
    kh, kw = kernel
    top, left, bottom, right = pads
    padded = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)),
                    constant_values=pad_value)
    eff_h, eff_w = (kh - 1) * dilations[0] + 1, (kw - 1) * dilations[1] + 1
    oh = (h + top + bottom - eff_h) // strides[0] + 1
    ow = (w + left + right - eff_w) // strides[1] + 1
    windows = np.lib.stride_tricks.sliding_window_view(padded, (eff_h, eff_w), axis=(2, 3))
    windows = windows[:, :, ::strides[0], ::strides[1], ::dilations[0], ::dilations[1]]
    windows = windows[:, :, :oh, :ow]           # (n, c, oh, ow, kh, kw)
    cols = windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, c * kh * kw)
    return np.ascontiguousarray(cols), oh, ow
