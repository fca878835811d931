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
import os
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..model.reference import RequantParams, quantize_multiplier

__all__ = ["HOST_CHECK_LIMIT", "QRANGE", "dequantize", "fma32", "hardware_requant_exact", "im2col",
           "mlas_conv", "mlas_conv_chunks", "mlas_dot", "ort_requant", "ort_scale", "ort_threads",
           "quantize"]

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
    value = (np.asarray(x, np.float32) / scale).astype(np.float32)
    # MLAS clamps with MAXPS first, which returns the bound for a NaN: NaN quantizes to qmin
    value = np.where(np.isnan(value), np.float32(-np.inf), value)
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


# -- onnxruntime's fused quantized host operators (QDQ pairs it replaces with QLinear* kernels) --


def _f32(value: Any) -> np.float32:
    return np.float32(np.asarray(value, dtype=np.float32).reshape(-1)[0])


def _saturate(value: NDArray[Any], dtype: np.dtype) -> NDArray[Any]:
    qmin, qmax = QRANGE[np.dtype(dtype)]
    return np.clip(value, qmin, qmax).astype(dtype)


def fma32(x: Any, y: Any, z: Any) -> NDArray[np.float32]:
    """float32 ``x·y + z`` with one rounding (an FMA instruction), elementwise: the product is
    exact in float64, the float64 sum is rounded to odd (so the final rounding to float32 is not
    a double rounding)."""
    product = np.asarray(x, np.float64) * np.asarray(y, np.float64)
    addend = np.asarray(z, np.float64)
    total = product + addend
    back = total - addend
    error = (product - back) + (addend - (total - back))   # TwoSum: total + error is exact
    odd = (np.atleast_1d(total).view(np.int64) & 1).reshape(total.shape) == 1
    total = np.where((error != 0) & ~odd,
                     np.nextafter(total, np.where(error > 0, np.inf, -np.inf)), total)
    return np.asarray(total).astype(np.float32)


def _span_scalar(a_shape: tuple[int, ...], b_shape: tuple[int, ...]) -> str | None:
    """Which operand onnxruntime's broadcaster hands MLAS as a one-element span: ``"a"`` or
    ``"b"`` when it is one element, or broadcast along the innermost dimension that is not 1
    in the output; ``None`` when both are full spans."""
    if int(np.prod(a_shape)) == 1:
        return "a"
    if int(np.prod(b_shape)) == 1:
        return "b"
    out = np.broadcast_shapes(a_shape, b_shape)
    a_full = (1,) * (len(out) - len(a_shape)) + tuple(a_shape)
    b_full = (1,) * (len(out) - len(b_shape)) + tuple(b_shape)
    for axis in reversed(range(len(out))):
        if out[axis] != 1:
            return "a" if a_full[axis] == 1 else "b" if b_full[axis] == 1 else None
    return None


def qlinear_add(a: NDArray[Any], sa: Any, za: int, b: NDArray[Any], sb: Any, zb: int,
                sc: Any, zc: int, dtype: np.dtype) -> NDArray[Any]:
    """MLAS's QLinearAdd as onnxruntime's x86-64 build runs it (the AVX2 kernel, FMA):
    ``fma(a, sa/sc, fma(b, sb/sc, fixed))`` in float32 on the raw integers, with
    ``fixed = zc − fma(sa/sc, za, sb/sc·zb)``, so B is folded in first; when A is the operand
    that is one element per span, onnxruntime swaps the operands (A becomes MLAS's B). Rounded
    half to
    even (``cvtps2dq``: out-of-range gives INT32_MIN), saturated (the packs). Checked against
    onnxruntime on every (a, b) pair for many scales and zero points (tests/test_nn.py)."""
    if _span_scalar(a.shape, b.shape) == "a":
        return qlinear_add(b, sb, zb, a, sa, za, sc, zc, dtype)
    rac, rbc = np.float32(_f32(sa) / _f32(sc)), np.float32(_f32(sb) / _f32(sc))
    fixed = np.float32(np.float32(zc) - fma32(rac, np.float32(za),
                                              np.float32(rbc * np.float32(zb))))
    fa = a.astype(np.float32)
    fb = b.astype(np.float32)
    # B one element per span (folded into fixed) or not: the same arithmetic per element
    value = fma32(fa, rac, fma32(fb, rbc, fixed))
    rounded = np.rint(value.astype(np.float64))
    rounded = np.where(np.isnan(rounded) | (rounded < -2.0**31) | (rounded >= 2.0**31),
                       -2.0**31, rounded)
    return _saturate(rounded, dtype)


def _quantize_value(y: NDArray[np.float32], scale: Any, zero_point: int,
                    dtype: np.dtype) -> NDArray[Any]:
    """onnxruntime's QLinear pool ``quantize_value``: ``nearbyint(y / scale + zp)``, the zero
    point added before rounding (unlike QuantizeLinear)."""
    value = (y.astype(np.float32) / _f32(scale)).astype(np.float32) + np.float32(zero_point)
    return _saturate(np.rint(value.astype(np.float32)), dtype)


def qlinear_average_pool(x: NDArray[Any], sx: Any, zx: int, sy: Any, zy: int, dtype: np.dtype,
                         attrs: dict[str, Any]) -> NDArray[Any]:
    """onnxruntime's QLinearAveragePool: each input dequantized to float32, summed in window
    order (rows, then columns), divided by the count, quantized by :func:`_quantize_value`."""
    kernel = tuple(attrs["kernel_shape"])
    strides = tuple(attrs.get("strides", (1, 1)))
    pads = tuple(attrs.get("pads", (0, 0, 0, 0)))
    include_pad = bool(attrs.get("count_include_pad", 0))
    values = (_f32(sx) * (x.astype(np.int32) - zx).astype(np.float32)).astype(np.float32)
    n, c, h, w = values.shape
    oh = (h + pads[0] + pads[2] - kernel[0]) // strides[0] + 1
    ow = (w + pads[1] + pads[3] - kernel[1]) // strides[1] + 1
    out = np.zeros((n, c, oh, ow), np.float32)
    for i in range(oh):
        h0 = i * strides[0] - pads[0]
        hs, he = max(h0, 0), min(h0 + kernel[0], h)
        for j in range(ow):
            w0 = j * strides[1] - pads[1]
            ws, we = max(w0, 0), min(w0 + kernel[1], w)
            total = np.zeros((n, c), np.float32)
            for hh in range(hs, he):
                for ww in range(ws, we):
                    total = (total + values[:, :, hh, ww]).astype(np.float32)
            count = kernel[0] * kernel[1] if include_pad else (he - hs) * (we - ws)
            out[:, :, i, j] = total / np.float32(count)
    return _quantize_value(out, sy, zy, dtype)


def qlinear_global_average_pool(x: NDArray[Any], sx: Any, zx: int, sy: Any, zy: int,
                                dtype: np.dtype) -> NDArray[Any]:
    """MLAS's QLinearGlobalAveragePool (x86): the int32 sum minus ``zx·size``, requantized by
    ``MlasRequantizeOutput`` with ``scale = sx / (sy · size)`` in float32."""
    size = x.shape[2] * x.shape[3]
    total = x.astype(np.int64).sum(axis=(2, 3), keepdims=True) - zx * size
    scale = np.float32(_f32(sx) / np.float32(_f32(sy) * np.float32(size)))
    return ort_requant(total, scale, zy, dtype)


def qlinear_softmax(x: NDArray[Any], sx: Any, sy: Any, zy: int, dtype: np.dtype,
                    axis: int) -> NDArray[Any]:
    """onnxruntime's QLinearSoftmax (opset 13): a 256-entry float32 table of
    ``exp((i − 255 + shift)·sx)`` looked up at ``x − max + 255`` (int8: ``x − max + 127``, the
    table's index moved by 128), summed in order in float32, ``nearbyint(t · floor(1/sy) / sum)
    + zy``, saturated above as the kernel does (int8 results past 127 wrap, as they do there)."""
    axis = axis % x.ndim
    moved = np.moveaxis(x, axis, -1)
    reduce_len = moved.shape[-1]
    signed = np.dtype(dtype) == np.int8
    shift = max(0.0, math.log(float(np.finfo(np.float32).max) / reduce_len) - 5) / float(
        _f32(sx))
    table = np.zeros(256, np.float32)
    for i in range(256):
        index = (i - 128) & 0xFF if signed else i
        table[index] = np.float32(math.exp((i - 255 + shift) * float(_f32(sx))))
    y_scale = np.float32(math.floor(np.float32(1.0) / _f32(sy)))
    xi = moved.astype(np.int32)
    xmax = xi.max(axis=-1, keepdims=True)
    if signed:
        index = (127 - xmax + xi) & 0xFF
    else:
        index = 255 - xmax + xi
    values = table[index]
    total = np.zeros(values.shape[:-1], np.float32)
    for j in range(reduce_len):
        total = (total + values[..., j]).astype(np.float32)
    quotient = ((values * y_scale).astype(np.float32) / total[..., None]).astype(np.float32)
    q = np.rint(quotient).astype(np.int64) + zy
    if signed:
        out = np.where(q > 255, -1, q).astype(np.int64).astype(np.uint8).view(np.int8)
    else:
        out = np.minimum(q, 255).astype(np.uint8)
    return np.moveaxis(out, -1, axis)


# -- onnxruntime's float convolution (MLAS), for layers it does not fuse ---------------------

#: MLAS's SGEMM panel strides (``MLAS_SGEMM_STRIDEN``, ``MLAS_SGEMM_STRIDEK``).
SGEMM_STRIDE = 128
#: Multiplies per thread before MLAS uses another (``MLAS_SGEMM_THREAD_COMPLEXITY``).
SGEMM_THREAD_COMPLEXITY = 64 * 1024
#: ``MLAS_MAXIMUM_THREAD_COUNT`` and ``MLAS_SGEMM_STRIDEN_THREAD_ALIGN``.
MLAS_MAX_THREADS, SGEMM_THREAD_ALIGN = 16, 16


def ort_threads() -> int:
    """The threads of onnxruntime's default intra-op pool (one per core): how MLAS splits a
    convolution, and so where its K chunks start, depends on it."""
    return os.cpu_count() or 1


def _stride_k(n: int, k: int) -> int:
    """The K stride MLAS's SGEMM (and its im2col convolution) takes for ``n`` columns and depth
    ``k``: a wider N panel for small K, a deeper K panel for small N."""
    stride_n, stride_k = SGEMM_STRIDE, SGEMM_STRIDE
    if n >= k:
        while stride_k // 2 >= k:
            stride_n, stride_k = stride_n * 2, stride_k // 2
    else:
        while stride_n > 16 and stride_n // 2 >= n:
            stride_n, stride_k = stride_n // 2, stride_k * 2
    return stride_k


def _partition(count: int, parts: int) -> list[int]:
    """``MlasPartitionWork``: the sizes of ``parts`` nearly equal ranges, the larger first."""
    base, extra = divmod(count, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def mlas_conv_chunks(batch: int, groups: int, filters: int, pixels: int, k: int,
                     direct: bool, threads: int | None = None) -> NDArray[np.int64] | None:
    """The K chunk length MLAS's float convolution uses for each output pixel of an image (its
    SGEMM sums each chunk from zero, then adds it to the output), as ``MlasConvPrepare`` and
    ``MlasConv`` split the work over ``threads``; ``filters`` per group, ``k`` = channels per
    group × kernel size, ``direct`` for a 1×1 convolution with stride 1 and no padding (the
    GEMM on the input itself). ``None`` where MLAS takes a kernel of another arithmetic (one
    filter per group or a 1×1 output: its M = 1 / N = 1 GEMV kernels)."""
    if filters == 1 or pixels == 1:
        return None
    threads = ort_threads() if threads is None else threads
    chunks = np.empty(pixels, np.int64)
    if direct and batch * groups > 1:
        chunks[:] = _stride_k(pixels, k)            # one SGEMM per image and group
        return chunks
    if direct or filters > pixels:
        # MlasGemm: threads by complexity; N (the pixels) split in blocks of 16 when N > M
        count = min(int(filters * pixels * k / SGEMM_THREAD_COMPLEXITY) + 1, threads)
        if pixels <= filters:
            chunks[:] = _stride_k(pixels, k)
            return chunks
        blocks = -(-pixels // SGEMM_THREAD_ALIGN)
        start = 0
        for size in _partition(blocks, min(count, blocks)):
            width = min(size * SGEMM_THREAD_ALIGN, pixels - start)
            chunks[start:start + width] = _stride_k(width, k)
            start += width
        return chunks
    complexity = filters * pixels * k
    count = (int(complexity / SGEMM_THREAD_COMPLEXITY) + 1
             if complexity < SGEMM_THREAD_COMPLEXITY * MLAS_MAX_THREADS else MLAS_MAX_THREADS)
    count = min(count, threads)
    stride = -(-pixels // count)
    if count > 1:
        stride = -(-stride // SGEMM_THREAD_ALIGN) * SGEMM_THREAD_ALIGN
    if batch * groups > 1 or stride >= pixels:
        chunks[:] = _stride_k(pixels, k)
        return chunks
    for start in range(0, pixels, stride):              # one segment per thread
        width = min(stride, pixels - start)
        chunks[start:start + width] = _stride_k(width, k)
    return chunks


def mlas_dot(x: NDArray[np.float32], w: NDArray[np.float32], bias: NDArray[np.float32],
             chunk: int) -> NDArray[np.float32]:
    """Rows of ``x`` · rows of ``w`` (float32, pair by pair) + ``bias`` as MLAS's SGEMM kernels
    and its convolution compute them: K in chunks of ``chunk``, each summed from zero with FMAs
    (one rounding each) and then added to the sum so far, the bias added last."""
    out = None
    for k0 in range(0, x.shape[1], chunk):
        block = np.zeros(x.shape[0], np.float32)
        for k in range(k0, min(x.shape[1], k0 + chunk)):
            block = fma32(x[:, k], w[:, k], block)
        out = block if out is None else (block + out).astype(np.float32)
    assert out is not None
    return (out + bias.astype(np.float32)).astype(np.float32)


def mlas_conv(x: NDArray[np.float32], w: NDArray[np.float32], bias: NDArray[np.float32] | None,
              strides: tuple[int, int], pads: tuple[int, int, int, int],
              dilations: tuple[int, int], threads: int | None = None) -> NDArray[np.float32]:
    """A whole float32 convolution (NCHW, one group) as onnxruntime's MLAS computes it when its
    weights are not a constant (:func:`mlas_conv_chunks`, :func:`mlas_dot`); ``ValueError``
    where that is not emulated."""
    n, c, _, _ = x.shape
    oc = w.shape[0]
    kh, kw = w.shape[2:]
    cols, oh, ow = im2col(x, (kh, kw), strides, pads, dilations, 0)   # (N·OH·OW, C·KH·KW)
    direct = (kh, kw) == (1, 1) and tuple(strides) == (1, 1) and not any(pads)
    chunks = mlas_conv_chunks(n, 1, oc, oh * ow, c * kh * kw, direct, threads)
    if chunks is None:
        raise ValueError("not emulated: one filter or a 1×1 output")
    rows = np.repeat(np.arange(n * oh * ow), oc)
    cols_o = np.tile(np.arange(oc), n * oh * ow)
    per = np.tile(np.repeat(chunks, oc), n)
    b = np.zeros(oc, np.float32) if bias is None else bias.astype(np.float32)
    out = np.empty(rows.size, np.float32)
    wm = w.reshape(oc, -1).astype(np.float32)
    for chunk in np.unique(per):
        sel = per == chunk
        out[sel] = mlas_dot(cols[rows[sel]].astype(np.float32), wm[cols_o[sel]],
                            b[cols_o[sel]], int(chunk))
    return np.ascontiguousarray(out.reshape(n, oh, ow, oc).transpose(0, 3, 1, 2))
