"""accelerator.nn on the RTL backend (the Verilog in Verilator through the compiled harness):
a small CNN and a slice of the digits MLP's test set, bit-exact against onnxruntime."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from accelerator import AcceleratorConfig, connect
from accelerator.nn import load
from accelerator.nn.demo import build_demo
from accelerator.nn.zoo import QdqBuilder

pytestmark = pytest.mark.verilator

CONFIG = AcceleratorConfig(rows=8, cols=8)


def run_both(model, x, build_root):
    session = ort.InferenceSession(model.SerializeToString() if hasattr(
        model, "SerializeToString") else str(model), providers=["CPUExecutionProvider"])
    expected = session.run(None, {session.get_inputs()[0].name: x})[0]
    net = load(model)
    with connect(CONFIG, backend="rtl", build_root=build_root) as dev, \
            connect(CONFIG, backend="model") as shadow:
        outputs, stats = net.run(x, dev, shadow=shadow)
    return outputs[0], expected, stats


def test_small_cnn_rtl(build_root, seed):
    b = QdqBuilder(seed)
    x = b.quantize("image", 0.02, 128)
    x = b.conv("conv1", x, 3, 8, 3, pad=1)
    x = b.op("MaxPool", [x], 0.05, 0, kernel_shape=[2, 2], strides=[2, 2])
    x = b.conv("conv2", x, 8, 12, 3, stride=2, pad=1, relu=False)
    x = b.op("GlobalAveragePool", [x], 0.02, 128)
    x = b.op("Flatten", [x], 0.02, 128)
    y = b.gemm("fc", x, 12, 10, out_scale=0.01)
    model = b.model("small_cnn", "image", [None, 3, 12, 12], y, [None, 10])
    image = np.random.default_rng(seed).normal(size=(6, 3, 12, 12)).astype(np.float32)
    got, expected, stats = run_both(model, image, build_root)
    assert np.array_equal(got, expected)
    assert [s.name for s in stats] == ["conv1", "conv2", "fc"]
    # fc's scale (0.02 · w / 0.01 ≥ 2⁻⁸) has an exact register setting: the RTL's requantizer
    assert [s.requant for s in stats] == ["host", "host", "hardware"]
    for s in stats:
        assert s.cycles > 0 and s.commands >= 1
        assert abs(s.model_cycles - s.cycles) <= 0.02 * s.cycles


def test_digits_mlp_slice_rtl(build_root, tmp_path):
    data = build_demo("digits-mlp", tmp_path)
    images = data.x_test[:96]
    got, expected, stats = run_both(data.int8_model, images, build_root)
    assert np.array_equal(got, expected)
    assert [(s.m, s.k, s.n) for s in stats] == [(96, 64, 64), (96, 64, 10)]
    assert sum(s.cycles for s in stats) > 0


def test_cli_infer_rtl(accel, build_root, tmp_path):
    """accel infer --backend rtl: the output file equals onnxruntime's, cycles measured."""
    import json

    b = QdqBuilder(3)
    x = b.quantize("x", 0.05, 128)
    y = b.gemm("fc", x, 20, 7, out_scale=0.02)
    model = b.model("fc", "x", [None, 20], y, [None, 7])
    path = tmp_path / "fc.onnx"
    path.write_bytes(model.SerializeToString())
    inputs = np.random.default_rng(3).normal(size=(33, 20)).astype(np.float32)
    np.save(tmp_path / "x.npy", inputs)
    code, stdout, stderr = accel("infer", str(path), "--input", str(tmp_path / "x.npy"),
                                 "--output", str(tmp_path / "y.npy"), "--backend", "rtl",
                                 "--rows", "8", "--cols", "8", "--build-root", str(build_root),
                                 "--json")
    assert code == 0, stderr
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert np.array_equal(np.load(tmp_path / "y.npy"), session.run(None, {"x": inputs})[0])
    report = json.loads(stdout)
    assert report["backend"] == "rtl"
    (layer,) = report["layers"]
    assert (layer["m"], layer["k"], layer["n"]) == (33, 20, 7)
    assert layer["cycles"] > 0 and abs(layer["model_error"]) <= 0.02


def test_int8_residual_block_rtl(build_root, tmp_path, seed):
    """quantize_static's default int8 activations on a ResNet basic block: the convolutions
    onnxruntime runs in float (next to the residual it keeps int8) run on the RTL and are
    corrected near ties on the host, bit-exact."""
    from test_nn import QINT8, _cases, float_model, quantized

    rng = np.random.default_rng(seed)
    nodes, inits, shape = _cases(rng)["resblock"]
    path = quantized(tmp_path, float_model(nodes, inits, list(shape)), shape, rng, QINT8)
    x = (rng.normal(size=shape) * 1.5).astype(np.float32)
    got, expected, stats = run_both(path, x, build_root)
    assert np.array_equal(got, expected)
    assert "host (float)" in {s.requant for s in stats}
    assert all(s.cycles > 0 and abs(s.model_cycles - s.cycles) <= 0.02 * s.cycles for s in stats)
