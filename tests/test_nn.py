"""accelerator.nn on the model backend: every operator and the demo networks bit-exact against
onnxruntime (the model backend is the NumPy reference, so equal there proves the lowering),
the requantizer choice, ResNet-18's per-layer cycles against `accel sweep`, unsupported
models named node by node."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxruntime import quantization

from accelerator import AcceleratorConfig, connect
from accelerator.model.reference import RequantParams
from accelerator.nn import UnsupportedModel, kernels, load
from accelerator.nn.demo import build_demo, quantize_model

CONFIG = AcceleratorConfig(rows=4, cols=4)
QINT8, QUINT8 = quantization.QuantType.QInt8, quantization.QuantType.QUInt8
QDQ, QOP = quantization.QuantFormat.QDQ, quantization.QuantFormat.QOperator


def ort_run(model: onnx.ModelProto | Path, x: np.ndarray) -> np.ndarray:
    data = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def ours(model: onnx.ModelProto | Path, x: np.ndarray, config: AcceleratorConfig = CONFIG):
    with connect(config, backend="model") as dev:
        outputs, stats = load(model).run(x, dev)
    return outputs[0], stats


def float_model(nodes: list, inits: list, shape: list, out_shape: list | None = None
                ) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, *shape[1:]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def weight(name: str, shape: tuple, rng: np.random.Generator, scale: float = 0.3):
    return numpy_helper.from_array((rng.normal(size=shape) * scale).astype(np.float32), name)


def quantized(tmp_path: Path, model: onnx.ModelProto, shape: tuple, rng: np.random.Generator,
              activation: object, fmt: object = QDQ) -> Path:
    src, dst = tmp_path / "f.onnx", tmp_path / "q.onnx"
    onnx.save(model, str(src))
    calibration = rng.normal(size=shape).astype(np.float32)
    return quantize_model(src, dst, calibration, input_name="x", activation_type=activation,
                          quant_format=fmt)


# One small graph per operator (each also has a quantized GEMM in front, as networks do).
def _cases(rng: np.random.Generator) -> dict[str, tuple[list, list, tuple]]:
    conv_w = weight("W", (8, 4, 3, 3), rng)
    mm = weight("M", (20, 12), rng)
    return {
        "matmul": ([helper.make_node("MatMul", ["x", "M"], ["y"])], [mm], (96, 20)),
        "gemm": ([helper.make_node("Gemm", ["x", "G", "g"], ["y"], transB=1)],
                 [weight("G", (12, 20), rng), weight("g", (12,), rng)], (96, 20)),
        "gemm_relu": ([helper.make_node("Gemm", ["x", "G", "g"], ["h"]),
                       helper.make_node("Relu", ["h"], ["y"])],
                      [weight("G", (20, 12), rng), weight("g", (12,), rng)], (96, 20)),
        "conv": ([helper.make_node("Conv", ["x", "W", "b"], ["y"], pads=[1, 1, 1, 1])],
                 [conv_w, weight("b", (8,), rng)], (12, 4, 7, 7)),
        "conv_stride_pad": ([helper.make_node("Conv", ["x", "W"], ["y"], strides=[2, 2],
                                              pads=[0, 1, 2, 1])], [conv_w], (12, 4, 9, 8)),
        "conv_dilated": ([helper.make_node("Conv", ["x", "W"], ["y"], dilations=[2, 2],
                                           pads=[2, 2, 2, 2])], [conv_w], (12, 4, 7, 7)),
        "conv_depthwise": ([helper.make_node("Conv", ["x", "D"], ["y"], group=4,
                                             pads=[1, 1, 1, 1])],
                           [weight("D", (8, 1, 3, 3), rng)], (12, 4, 6, 6)),
        "add": ([helper.make_node("Conv", ["x", "W"], ["a"], pads=[1, 1, 1, 1]),
                 helper.make_node("Conv", ["a", "P"], ["c"]),
                 helper.make_node("Add", ["a", "c"], ["y"])],
                [conv_w, weight("P", (8, 8, 1, 1), rng)], (12, 4, 6, 6)),
        # x read twice: with int8, onnxruntime keeps it int8 but moves r and y to uint8 and
        # runs this Add unfused (DequantizeLinear, float Add, QuantizeLinear)
        "add_shared_input": ([helper.make_node("MaxPool", ["x"], ["r"], kernel_shape=[1, 1]),
                              helper.make_node("Add", ["x", "r"], ["y"])], [], (12, 4, 6, 6)),
        "relu": ([helper.make_node("MatMul", ["x", "M"], ["a"]),
                  helper.make_node("Relu", ["a"], ["y"])], [mm], (96, 20)),
        "maxpool": ([helper.make_node("Conv", ["x", "W"], ["a"], pads=[1, 1, 1, 1]),
                     helper.make_node("MaxPool", ["a"], ["y"], kernel_shape=[3, 3],
                                      strides=[2, 2], pads=[1, 1, 1, 1])], [conv_w],
                    (12, 4, 7, 7)),
        "averagepool": ([helper.make_node("Conv", ["x", "W"], ["a"], pads=[1, 1, 1, 1]),
                         helper.make_node("AveragePool", ["a"], ["y"], kernel_shape=[2, 2],
                                          strides=[2, 2])], [conv_w], (12, 4, 6, 6)),
        "globalaveragepool": ([helper.make_node("Conv", ["x", "W"], ["a"], pads=[1, 1, 1, 1]),
                               helper.make_node("GlobalAveragePool", ["a"], ["y"])], [conv_w],
                              (12, 4, 6, 6)),
        "softmax": ([helper.make_node("MatMul", ["x", "M"], ["a"]),
                     helper.make_node("Softmax", ["a"], ["y"])], [mm], (96, 20)),
        "flatten": ([helper.make_node("Conv", ["x", "W"], ["a"]),
                     helper.make_node("Flatten", ["a"], ["y"])], [conv_w], (12, 4, 5, 5)),
        # a ResNet basic block behind a stem: the block's input is read by its first Conv and
        # by the residual Add; then the network's tail
        "resblock": ([helper.make_node("Conv", ["x", "W"], ["s"], pads=[1, 1, 1, 1]),
                      helper.make_node("Relu", ["s"], ["r"]),
                      helper.make_node("Conv", ["r", "R1", "rb1"], ["h"], pads=[1, 1, 1, 1]),
                      helper.make_node("Relu", ["h"], ["hr"]),
                      helper.make_node("Conv", ["hr", "R2", "rb2"], ["c"], pads=[1, 1, 1, 1]),
                      helper.make_node("Add", ["r", "c"], ["a"]),
                      helper.make_node("Relu", ["a"], ["ar"]),
                      helper.make_node("GlobalAveragePool", ["ar"], ["g"]),
                      helper.make_node("Flatten", ["g"], ["f"]),
                      helper.make_node("Gemm", ["f", "F", "fb"], ["y"], transB=1)],
                     [conv_w, weight("R1", (8, 8, 3, 3), rng, 0.2), weight("rb1", (8,), rng),
                      weight("R2", (8, 8, 3, 3), rng, 0.2), weight("rb2", (8,), rng),
                      weight("F", (5, 8), rng), weight("fb", (5,), rng)], (12, 4, 6, 6)),
        "transpose_reshape": ([helper.make_node("MatMul", ["x", "M"], ["a"]),
                               helper.make_node("Transpose", ["a"], ["t"], perm=[1, 0]),
                               helper.make_node("Reshape", ["t", "s"], ["y"])],
                              [mm, numpy_helper.from_array(np.array([6, -1], np.int64), "s")],
                              (96, 20)),
    }


OPERATORS = list(_cases(np.random.default_rng(0)))
#: Input batches per operator test.
TRIALS = 50


@pytest.mark.parametrize("activation", [QINT8, QUINT8], ids=["int8", "uint8"])
@pytest.mark.parametrize("case", OPERATORS)
def test_operator_bit_exact_qdq(tmp_path, seed, case, activation):
    rng = np.random.default_rng(seed)
    nodes, inits, shape = _cases(rng)[case]
    path = quantized(tmp_path, float_model(nodes, inits, list(shape)), shape, rng, activation)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    network = load(path)
    with connect(CONFIG, backend="model") as dev:
        # many inputs and ranges: ties and near-ties of a rounding show up only on some
        for trial in range(TRIALS):
            x = (rng.normal(size=shape) * (0.5 + 0.05 * trial)).astype(np.float32)
            expected = session.run(None, {"x": x})[0]
            got = network.run(x, dev)[0][0]
            assert got.dtype == expected.dtype and got.shape == expected.shape
            assert np.array_equal(got, expected), \
                f"{case}, input {trial}: {np.sum(got != expected)} differ"


@pytest.mark.parametrize("activation", [QINT8, QUINT8], ids=["int8", "uint8"])
@pytest.mark.parametrize("case", ["matmul", "gemm", "conv", "conv_stride_pad"])
def test_qoperator_bit_exact(tmp_path, seed, case, activation):
    """QLinearMatMul, QGemm and QLinearConv (quantize_static's QOperator form)."""
    rng = np.random.default_rng(seed)
    nodes, inits, shape = _cases(rng)[case]
    path = quantized(tmp_path, float_model(nodes, inits, list(shape)), shape, rng, activation,
                     QOP)
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert ops & {"QLinearMatMul", "QGemm", "QLinearConv"}
    x = (rng.normal(size=shape) * 1.5).astype(np.float32)
    got, stats = ours(path, x)
    assert np.array_equal(got, ort_run(path, x))
    assert len(stats) == 1 and stats[0].macs > 0


@pytest.mark.parametrize("activation", [QINT8, QUINT8], ids=["int8", "uint8"])
@pytest.mark.parametrize("case", ["add", "averagepool", "globalaveragepool", "resblock"])
def test_qoperator_host_ops_bit_exact(tmp_path, seed, case, activation):
    """QLinearAdd, QLinearAveragePool, QLinearGlobalAveragePool (quantize_static's QOperator
    form of a residual Add and the pools), alone and in a ResNet basic block."""
    rng = np.random.default_rng(seed)
    nodes, inits, shape = _cases(rng)[case]
    path = quantized(tmp_path, float_model(nodes, inits, list(shape)), shape, rng, activation,
                     QOP)
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    want = {"add": "QLinearAdd", "averagepool": "QLinearAveragePool",
            "globalaveragepool": "QLinearGlobalAveragePool", "resblock": "QLinearAdd"}[case]
    assert want in ops, ops
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    network = load(path)
    with connect(CONFIG, backend="model") as dev:
        for trial in range(TRIALS):
            x = (rng.normal(size=shape) * (0.5 + 0.05 * trial)).astype(np.float32)
            expected = session.run(None, {"x": x})[0]
            got = network.run(x, dev)[0][0]
            assert got.dtype == expected.dtype and got.shape == expected.shape
            assert np.array_equal(got, expected), \
                f"{case}, input {trial}: {np.sum(got != expected)} differ"


def _dq_weight_conv(x_shape, wq, w_scale, bias, pads, strides):
    """A float Conv whose weights come from a DequantizeLinear (as in a QDQ model, where
    onnxruntime does not fold them into a constant and runs MLAS's im2col SGEMM)."""
    inits = [numpy_helper.from_array(wq, "Wq"), numpy_helper.from_array(np.float32(w_scale), "ws"),
             numpy_helper.from_array(np.int8(0), "wz"), numpy_helper.from_array(bias, "B")]
    nodes = [helper.make_node("DequantizeLinear", ["Wq", "ws", "wz"], ["W"]),
             helper.make_node("Conv", ["x", "W", "B"], ["y"], pads=list(pads),
                              strides=list(strides))]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                         list(x_shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize(("shape", "oc", "kernel", "pads", "strides"), [
    ((1, 4, 6, 6), 8, 3, (1, 1, 1, 1), (1, 1)),          # K = 36: one chunk
    ((1, 3, 9, 9), 16, 7, (3, 3, 3, 3), (2, 2)),         # K = 147, N = 25: a deeper chunk
    ((1, 64, 8, 8), 16, 3, (1, 1, 1, 1), (1, 1)),        # K = 576 split over two threads
    ((1, 64, 20, 20), 16, 3, (1, 1, 1, 1), (1, 1)),      # K = 576 in chunks of 128
    ((2, 64, 8, 8), 16, 3, (1, 1, 1, 1), (1, 1)),        # a batch: one segment per image
    ((1, 64, 4, 4), 128, 3, (1, 1, 1, 1), (1, 1)),       # more filters than pixels
    ((1, 256, 14, 14), 64, 1, (0, 0, 0, 0), (1, 1)),     # 1×1: the GEMM on the input
    ((1, 64, 8, 8), 32, 1, (0, 0, 0, 0), (2, 2)),        # 1×1 with a stride: im2col
], ids=["k36", "k147", "k576-threads", "k576-chunks", "batch", "filters", "direct", "strided"])
def test_mlas_float_conv_bit_exact(seed, shape, oc, kernel, pads, strides):
    """kernels.mlas_conv against onnxruntime's float Conv (weights through DequantizeLinear),
    every output bit for bit, on this machine's default thread count."""
    rng = np.random.default_rng(seed)
    x = (rng.integers(-128, 128, shape) * np.float32(0.0173)).astype(np.float32)
    wq = rng.integers(-127, 128, (oc, shape[1], kernel, kernel)).astype(np.int8)
    bias = (rng.integers(-2000, 2000, oc) * np.float32(0.0173 * 0.00311)).astype(np.float32)
    expected = ort_run(_dq_weight_conv(shape, wq, 0.00311, bias, pads, strides), x)
    w = (wq.astype(np.float32) * np.float32(0.00311)).astype(np.float32)
    got = kernels.mlas_conv(x, w, bias, strides, pads, (1, 1))
    assert got.shape == expected.shape
    assert int(np.sum(got.view(np.int32) != expected.view(np.int32))) == 0


def test_int8_residual_network_bit_exact(tmp_path, seed):
    """A ResNet-style network quantized with int8 activations (quantize_static's default):
    onnxruntime keeps each residual tensor int8 and runs the convolutions next to it in float;
    those layers run on the accelerator and are corrected near ties on the host."""
    rng = np.random.default_rng(seed)
    w = {name: weight(name, shape, rng, 0.1) for name, shape in (
        ("S", (32, 3, 3, 3)), ("A1", (32, 32, 3, 3)), ("A2", (32, 32, 3, 3)),
        ("B1", (64, 32, 3, 3)), ("B2", (64, 64, 3, 3)), ("BD", (64, 32, 1, 1)),
        ("F", (10, 64)))}
    bias = {name: weight(name, (size,), rng) for name, size in (
        ("s", 32), ("a1", 32), ("a2", 32), ("b1", 64), ("b2", 64), ("bd", 64), ("f", 10))}
    node = helper.make_node
    nodes = [node("Conv", ["x", "S", "s"], ["s0"], pads=[1, 1, 1, 1]),
             node("Relu", ["s0"], ["r0"]),
             node("Conv", ["r0", "A1", "a1"], ["a"], pads=[1, 1, 1, 1]),
             node("Relu", ["a"], ["ar"]),
             node("Conv", ["ar", "A2", "a2"], ["a2o"], pads=[1, 1, 1, 1]),
             node("Add", ["r0", "a2o"], ["s1"]), node("Relu", ["s1"], ["r1"]),
             node("Conv", ["r1", "B1", "b1"], ["b"], pads=[1, 1, 1, 1], strides=[2, 2]),
             node("Relu", ["b"], ["br"]),
             node("Conv", ["br", "B2", "b2"], ["b2o"], pads=[1, 1, 1, 1]),
             node("Conv", ["r1", "BD", "bd"], ["d"], strides=[2, 2]),
             node("Add", ["d", "b2o"], ["s2"]), node("Relu", ["s2"], ["r2"]),
             node("GlobalAveragePool", ["r2"], ["g"]), node("Flatten", ["g"], ["f0"]),
             node("Gemm", ["f0", "F", "f"], ["y"], transB=1)]
    shape = (1, 3, 16, 16)
    path = quantized(tmp_path, float_model(nodes, [*w.values(), *bias.values()], list(shape)),
                     (16, 3, 16, 16), rng, QINT8)
    network = load(path)
    assert any(step.float_conv for step in network.layers)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with connect(CONFIG, backend="model") as dev:
        for trial in range(20):
            x = (rng.normal(size=shape) * (0.5 + 0.1 * trial)).astype(np.float32)
            got, stats = network.run(x, dev)
            expected = session.run(None, {"x": x})[0]
            assert np.array_equal(got[0], expected), f"input {trial}"
    assert {s.requant for s in stats} >= {"host (float)"}
    float_outputs = sum(s.m * s.n for s in stats if s.requant == "host (float)")
    assert 0 < sum(s.host_outputs for s in stats) < float_outputs
    assert all(s.cycles > 0 for s in stats)


def _qlinear_add_session(dtype: type, params: tuple, a_shape: list, b_shape: list):
    elem = TensorProto.INT8 if dtype == np.int8 else TensorProto.UINT8
    names = ["sa", "za", "sb", "zb", "sc", "zc"]
    inits = [numpy_helper.from_array(np.array(v, np.float32 if i % 2 == 0 else dtype), n)
             for i, (n, v) in enumerate(zip(names, params, strict=True))]
    node = helper.make_node("QLinearAdd", ["a", "sa", "za", "b", "sb", "zb", "sc", "zc"], ["c"],
                            domain="com.microsoft")
    graph = helper.make_graph([node], "t", [helper.make_tensor_value_info("a", elem, a_shape),
                                            helper.make_tensor_value_info("b", elem, b_shape)],
                              [helper.make_tensor_value_info("c", elem, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.microsoft", 1)])
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
@pytest.mark.parametrize("layout", ["full", "scalar_a", "scalar_b", "channel_b"])
def test_qlinear_add_kernel_every_input(seed, dtype, layout):
    """kernels.qlinear_add against onnxruntime's QLinearAdd on every (a, b) pair, for 40 random
    scale/zero-point sets and directed ones whose sums fall on or next to .5 (ties)."""
    rng = np.random.default_rng(seed)
    lo, hi = kernels.QRANGE[np.dtype(dtype)]
    values = np.arange(lo, hi + 1).astype(dtype)
    a_all, b_all = np.repeat(values, 256), np.tile(values, 256)
    params = [(np.float32(0.02), 3, np.float32(0.01), -5, np.float32(0.04), 1),    # ratios 2⁻¹, 2⁻²
              (np.float32(0.1), 0, np.float32(0.1), 0, np.float32(0.2), 0),        # every sum/2
              (np.float32(0.3), 7, np.float32(0.1), 2, np.float32(0.6), 1),
              (np.float32(1.0), 1, np.float32(3.0), 1, np.float32(2.0), 0)]
    params = [(s1, z1 + (128 if dtype == np.uint8 else 0), s2,
               z2 + (128 if dtype == np.uint8 else 0), s3, z3 + (128 if dtype == np.uint8 else 0))
              for s1, z1, s2, z2, s3, z3 in params]
    for _ in range(40):
        scales = np.exp(rng.uniform(-5, 0, size=3)).astype(np.float32)
        zps = rng.integers(lo, hi + 1, size=3)
        params.append((scales[0], int(zps[0]), scales[1], int(zps[1]), scales[2], int(zps[2])))
    for sa, za, sb, zb, sc, zc in params:
        if layout == "full":
            pairs = [(a_all, b_all)]
        elif layout == "scalar_a":
            pairs = [(np.array([v], dtype), values) for v in values]
        elif layout == "scalar_b":
            pairs = [(values, np.array([v], dtype)) for v in values]
        else:  # b broadcast along the innermost axis: a one-element span per row
            pairs = [(a_all.reshape(256, 256), values.reshape(256, 1))]
        session = _qlinear_add_session(dtype, (sa, za, sb, zb, sc, zc), list(pairs[0][0].shape),
                                       list(pairs[0][1].shape))
        for a, b in pairs:
            expected = session.run(None, {"a": a, "b": b})[0]
            got = kernels.qlinear_add(a, sa, za, b, sb, zb, sc, zc, np.dtype(dtype))
            differ = int(np.sum(got != expected))
            assert differ == 0, f"scales {sa}, {sb}, {sc}, zero points {za}, {zb}, {zc}: {differ}"


def test_fma32_single_rounding():
    """fma32 rounds once: x·y + z where the float32 product alone would round away the tie."""
    x, y = np.float32(1 + 2.0**-12), np.float32(1 + 2.0**-12)   # x·y = 1 + 2⁻¹¹ + 2⁻²⁴
    z = np.float32(-1.0)
    assert kernels.fma32(x, y, z) == np.float32(2.0**-11 + 2.0**-24)
    assert np.float32(x * y) + z != np.float32(2.0**-11 + 2.0**-24)
    # x·y = 2⁻²⁴ − 2⁻⁷⁰: z + x·y lies just below a float32 tie; a float64 sum would round onto
    # the tie and then to even (1 + 2⁻²²), one rounding gives 1 + 2⁻²³
    x, y = np.float32(2.0**-24 * (1 - 2.0**-23)), np.float32(1 + 2.0**-23)
    z = np.float32(1 + 2.0**-23)
    assert np.float32(np.float64(z) + np.float64(x) * np.float64(y)) == np.float32(1 + 2.0**-22)
    assert kernels.fma32(x, y, z) == z


def _integer_model(op: str, a_type: int, b: np.ndarray, za: int, zb: int, shape: list):
    inits = [numpy_helper.from_array(b, "B"),
             numpy_helper.from_array(np.array(za, helper.tensor_dtype_to_np_dtype(a_type)),
                                     "za"),
             numpy_helper.from_array(np.array(zb, b.dtype), "zb")]
    node = helper.make_node(op, ["x", "B", "za", "zb"], ["y"],
                            **({"pads": [1, 1, 1, 1]} if op == "ConvInteger" else {}))
    graph = helper.make_graph([node], "t", [helper.make_tensor_value_info("x", a_type, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.INT32, None)],
                              inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


# onnxruntime's ConvInteger takes uint8 inputs only
@pytest.mark.parametrize(("op", "a_type"), [("MatMulInteger", TensorProto.UINT8),
                                            ("MatMulInteger", TensorProto.INT8),
                                            ("ConvInteger", TensorProto.UINT8)],
                         ids=["matmulinteger-u8", "matmulinteger-s8", "convinteger-u8"])
def test_integer_ops_zero_points(seed, op, a_type):
    """int32 out, nonzero zero points on both operands (row and column sums into C_in)."""
    rng = np.random.default_rng(seed)
    a_dtype = helper.tensor_dtype_to_np_dtype(a_type)
    lo, hi = (0, 256) if a_dtype == np.uint8 else (-128, 128)
    if op == "MatMulInteger":
        shape, b = [37, 29], rng.integers(-128, 128, size=(29, 11), dtype=np.int8)
        za = 200 if a_dtype == np.uint8 else -77
        zb = 0 if a_dtype == np.uint8 else 3
    else:
        shape, b = [3, 2, 6, 5], rng.integers(0, 256, size=(4, 2, 3, 3), dtype=np.uint8)
        za, zb = (128 if a_dtype == np.uint8 else 5), 100
    model = _integer_model(op, a_type, b, za, zb, shape)
    x = rng.integers(lo, hi, size=shape).astype(a_dtype)
    got, stats = ours(model, x)
    assert got.dtype == np.int32
    assert np.array_equal(got, ort_run(model, x))
    assert stats[0].requant == "none (int32 out)"


# -- the requantizer choice ----------------------------------------------------------------------


def test_ort_requant_is_float_round_half_even():
    """MLAS: float32(acc)·scale rounded half to even (2.5 → 2, 3.5 → 4), zero point after."""
    scale = np.float32(0.5)
    got = kernels.ort_requant(np.array([5, 7, -5, -7, 1000, -1000]), scale, 3, np.dtype(np.int8))
    assert got.tolist() == [5, 7, 1, -1, 127, -128]


def test_hardware_and_onnxruntime_rounding_differ_on_near_ties():
    """The documented difference: gemmlowp rounds twice, so acc·scale = -137.49993 goes to
    -138 on the hardware with TFLite's multiplier and to -137 in onnxruntime."""
    scale = np.float32(0.005167034)
    params = RequantParams.from_scale(float(scale), zero_point=10)
    acc = np.array([-26611])
    assert int(params.apply(acc)[0]) == -128      # -138 + 10, saturated
    assert int(kernels.ort_requant(acc, scale, 10, np.dtype(np.int8))[0]) == -127


@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
def test_hardware_requant_chosen_only_when_equal(seed, dtype):
    rng = np.random.default_rng(seed)
    chosen = 0
    for _ in range(40):
        scale = np.float32(2.0 ** rng.uniform(-12, -1))
        zp = int(rng.integers(-20, 20)) + (128 if dtype == np.uint8 else 0)
        relu = bool(rng.integers(0, 2))
        params = kernels.hardware_requant_exact(scale, zp, np.dtype(dtype), relu)
        acc = rng.integers(-(1 << 31), 1 << 31, size=20000)
        acc[:10000] = rng.integers(-int(200 / scale), int(200 / scale), size=10000)
        expected = kernels.ort_requant(acc, scale, zp, np.dtype(dtype), relu)
        if params is None:
            continue
        chosen += 1
        offset = 128 if dtype == np.uint8 else 0
        got = params.apply(acc).astype(np.int32) + offset
        assert np.array_equal(got, expected.astype(np.int32))
    assert chosen > 0  # the hardware path is taken for some scales


def test_layers_use_hardware_requant_and_stay_exact(tmp_path, seed):
    """A layer whose scale lets the requantizer match is requantized by the hardware."""
    rng = np.random.default_rng(seed)
    nodes, inits, shape = _cases(rng)["conv"]
    for trial in range(8):
        path = quantized(tmp_path, float_model(nodes, inits, list(shape)), shape, rng,
                         QUINT8 if trial % 2 else QINT8)
        x = rng.normal(size=shape).astype(np.float32)
        got, stats = ours(path, x)
        assert np.array_equal(got, ort_run(path, x))
        if stats[0].requant == "hardware":
            return
        inits = [weight("W", (8, 4, 3, 3), rng, 0.05 + 0.2 * trial), weight("b", (8,), rng)]
    pytest.fail("no layer took the hardware requantizer in 8 tries")


def test_no_requant_unit_still_exact(tmp_path, seed):
    rng = np.random.default_rng(seed)
    nodes, inits, shape = _cases(rng)["gemm"]
    path = quantized(tmp_path, float_model(nodes, inits, list(shape)), shape, rng, QINT8)
    x = rng.normal(size=shape).astype(np.float32)
    got, stats = ours(path, x, AcceleratorConfig(rows=4, cols=4, requant_unit=False))
    assert np.array_equal(got, ort_run(path, x))
    assert stats[0].requant == "host"


# -- unsupported models ------------------------------------------------------------------------


def test_unsupported_operator_named(tmp_path):
    model = float_model([helper.make_node("Sigmoid", ["x"], ["y"], name="act")], [], [4, 8])
    with pytest.raises(UnsupportedModel) as info:
        load(model)
    assert str(info.value).startswith("node 'act' (Sigmoid): operator Sigmoid is not supported")


def test_float_gemm_named():
    rng = np.random.default_rng(0)
    model = float_model([helper.make_node("MatMul", ["x", "M"], ["y"], name="mm")],
                        [weight("M", (8, 3), rng)], [4, 8])
    with pytest.raises(UnsupportedModel) as info:
        load(model)
    assert str(info.value) == (
        "node 'mm' (MatMul): operator MatMul on float input A 'x' is not supported (quantize "
        "the model: its inputs must come from DequantizeLinear)")


def test_unsupported_data_type_named():
    b = np.ones((4, 3), np.int16)
    node = helper.make_node("MatMulInteger", ["x", "B"], ["y"], name="mmi")
    graph = helper.make_graph([node], "t",
                              [helper.make_tensor_value_info("x", TensorProto.UINT8, [2, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.INT32, None)],
                              [numpy_helper.from_array(b, "B")])
    with pytest.raises(UnsupportedModel) as info:
        load(helper.make_model(graph))
    assert str(info.value) == ("node 'mmi' (MatMulInteger): weight data type int16 is not "
                               "supported (int8, uint8)")


# -- the demo networks and ResNet-18 -----------------------------------------------------------


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return {name: build_demo(name, out / name) for name in ("digits-mlp", "digits-cnn")}


@pytest.mark.parametrize("name", ["digits-mlp", "digits-cnn"])
def test_demo_bit_exact_and_accurate(demos, name):
    data = demos[name]
    expected = ort_run(data.int8_model, data.x_test)
    got, stats = ours(data.int8_model, data.x_test, AcceleratorConfig(rows=8, cols=8))
    assert np.array_equal(got, expected)
    float_acc = np.mean(ort_run(data.float_model, data.x_test).argmax(1) == data.y_test)
    int8_acc = np.mean(got.argmax(1) == data.y_test)
    assert float_acc > 0.9
    assert abs(float_acc - int8_acc) <= 0.01
    assert len(data.y_test) == 539
    assert all(s.cycles == s.model_cycles > 0 for s in stats)
    assert stats[0].m == (539 if name == "digits-mlp" else 539 * 64)


def test_resnet18_layers_match_sweep():
    """The ResNet-18-shaped model's GEMMs are accel sweep's, and each layer's cycles on the model
    backend are the sweep's performance model of that layer run as the network runs it (the
    device API's placement, C_in for the bias, int8 out where the hardware requantizes:
    device.model_cycles); the sweep's default (bare GEMMs, rows anywhere in a bus word) is the
    ``estimate_cycles`` column."""
    from accelerator.device import model_cycles
    from accelerator.dse.runner import evaluate_model
    from accelerator.dse.workloads import resnet18 as resnet18_workload
    from accelerator.nn.zoo import resnet18

    config = AcceleratorConfig(rows=8, cols=8)
    model = resnet18()
    x = np.random.default_rng(0).normal(size=(1, 3, 224, 224)).astype(np.float32)
    got, stats = ours(model, x, config)
    assert np.array_equal(got, ort_run(model, x))
    workload = resnet18_workload()
    sweep = evaluate_model(config, workload)["layers"]
    assert sum(layer["count"] for layer in sweep) == len(stats) == 21
    for layer, swept in zip(workload.layers, sweep, strict=True):
        mine = [s for s in stats if (s.m, s.k, s.n) == layer.shape]
        assert len(mine) == layer.count, layer.name
        for s in mine:
            assert s.accumulate  # every layer has a bias
            assert s.cycles == model_cycles(config, *layer.shape, accumulate=s.accumulate,
                                            requant=s.requant == "hardware"), layer.name
            assert s.estimate_cycles == swept["model_cycles"], layer.name


def test_resnet18_int8_activations_bit_exact(seed):
    """ResNet-18 with int8 activations (64×64 input, to stay small): every block's first
    convolution and downsample read a residual onnxruntime keeps int8 and run in float there;
    the whole network equals onnxruntime's output."""
    from accelerator.nn.zoo import resnet18

    model = resnet18(seed=seed % 1000, size=64, activations="int8")
    network = load(model)
    assert sum(1 for step in network.layers if step.float_conv) == 11
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    with connect(AcceleratorConfig(rows=8, cols=8), backend="model") as dev:
        for trial in range(2):
            x = (rng.normal(size=(1, 3, 64, 64)) * (1 + trial)).astype(np.float32)
            got, stats = network.run(x, dev)
            assert np.array_equal(got[0], session.run(None, {"image": x})[0]), f"input {trial}"
    assert len(stats) == 21


@pytest.mark.parametrize("fmt", [QDQ, QOP], ids=["qdq", "qoperator"])
@pytest.mark.parametrize("case", ["gemm", "conv", "conv_depthwise"])
def test_per_channel_weights(tmp_path, seed, case, fmt):
    """quantize_static(per_channel=True): a scale (and zero point) per output channel."""
    rng = np.random.default_rng(seed)
    nodes, inits, shape = _cases(rng)[case]
    src, dst = tmp_path / "f.onnx", tmp_path / "q.onnx"
    onnx.save(float_model(nodes, inits, list(shape)), str(src))
    quantize_model(src, dst, rng.normal(size=shape).astype(np.float32), input_name="x",
                   quant_format=fmt, per_channel=True)
    x = rng.normal(size=shape).astype(np.float32)
    got, stats = ours(dst, x)
    assert np.array_equal(got, ort_run(dst, x))
    assert stats[0].requant == "host"  # one requantizer setting per tensor in the hardware


def test_matmulinteger_per_column_zero_points(seed):
    rng = np.random.default_rng(seed)
    b = rng.integers(0, 256, size=(19, 7), dtype=np.uint8)
    zb = rng.integers(0, 256, size=7, dtype=np.uint8)
    inits = [numpy_helper.from_array(b, "B"), numpy_helper.from_array(np.array(90, np.uint8),
                                                                      "za"),
             numpy_helper.from_array(zb, "zb")]
    node = helper.make_node("MatMulInteger", ["x", "B", "za", "zb"], ["y"])
    graph = helper.make_graph([node], "t",
                              [helper.make_tensor_value_info("x", TensorProto.UINT8, [23, 19])],
                              [helper.make_tensor_value_info("y", TensorProto.INT32, None)],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = rng.integers(0, 256, size=(23, 19)).astype(np.uint8)
    got, _ = ours(model, x)
    assert np.array_equal(got, ort_run(model, x))


def test_board_backend_small_ram(tmp_path, seed):
    """The same lowering through the board backend (a software board top with 16 KiB of RAM,
    tests/fake_board.py), whose device API tiles each layer to fit."""
    from fake_board import FakeBoard

    rng = np.random.default_rng(seed)
    nodes, inits, shape = _cases(rng)["conv"]
    path = quantized(tmp_path, float_model(nodes, inits, list(shape)), shape, rng, QUINT8)
    x = rng.normal(size=shape).astype(np.float32)
    board = FakeBoard(AcceleratorConfig())
    with connect(transport=board) as dev:
        outputs, stats = load(path).run(x, dev)
    assert np.array_equal(outputs[0], ort_run(path, x))
    assert stats[0].commands == len(board.commands) > 1


@pytest.mark.parametrize("config", [
    AcceleratorConfig(rows=3, cols=5, dataflow="ws"),
    AcceleratorConfig(rows=1, cols=1, axi_data_width=256),
    AcceleratorConfig(rows=8, cols=2, engine="compact", requant_unit=False, axi_data_width=32),
], ids=["ws-3x5", "1x1-axi256", "compact"])
def test_other_configs(tmp_path, seed, config):
    rng = np.random.default_rng(seed)
    nodes, inits, shape = _cases(rng)["conv_stride_pad"]
    path = quantized(tmp_path, float_model(nodes, inits, list(shape)), shape, rng, QINT8)
    x = rng.normal(size=shape).astype(np.float32)
    got, stats = ours(path, x, config)
    assert np.array_equal(got, ort_run(path, x))
    assert stats[0].cycles > 0


@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
def test_quantize_dequantize_linear(seed, dtype):
    """Q then DQ alone, on ties (k + 0.5 steps), extremes, infinities and NaN."""
    rng = np.random.default_rng(seed)
    zp = np.array(3 if dtype == np.int8 else 130, dtype)
    tensor_type = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    graph = helper.make_graph(
        [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
         helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])], "qdq",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None])],
        [numpy_helper.from_array(np.array(0.1, np.float32), "s"),
         numpy_helper.from_array(zp, "z")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert tensor_type in (TensorProto.INT8, TensorProto.UINT8)
    x = np.concatenate([rng.normal(size=2000) * 8, (np.arange(-300, 300) + 0.5) * 0.1,
                        [np.inf, -np.inf, np.nan, 1e30, -1e30]]).astype(np.float32)
    got, _ = ours(model, x)
    assert np.array_equal(got, ort_run(model, x))


@pytest.mark.parametrize("zero_point", [0, 128])
def test_relu_folded_only_where_onnxruntime_drops_it(seed, zero_point):
    """Conv → Relu → Q(uint8): onnxruntime fuses it into QLinearConv when the zero point is 0
    (the Relu is then a no-op); with 128 it runs the layer in float, which is refused."""
    from accelerator.nn.zoo import QdqBuilder

    b = QdqBuilder(seed)
    x = b.quantize("image", 0.02, 128)
    w = b._weight("c", (16, 3, 3, 3), 0.01)
    bias = b._bias("c", 16, x, 0.01)
    b.nodes.append(helper.make_node("Conv", [x, w, bias], ["c"], name="c", pads=[1, 1, 1, 1]))
    b.nodes.append(helper.make_node("Relu", ["c"], ["r"], name="r"))
    y = b.quantize("r", 0.05, zero_point)
    model = b.model("t", "image", [None, 3, 16, 16], y, [None, 16, 16, 16])
    if zero_point == 128:
        with pytest.raises(UnsupportedModel) as info:
            load(model)
        assert str(info.value) == (
            "node 'c' (Conv): a Relu before a QuantizeLinear with zero point 128 (not 0) is "
            "not supported (onnxruntime computes that layer in float)")
        return
    image = np.random.default_rng(seed).normal(size=(8, 3, 16, 16)).astype(np.float32) * 2
    got, stats = ours(model, image)
    assert stats[0].name == "c"
    assert np.array_equal(got, ort_run(model, image))
