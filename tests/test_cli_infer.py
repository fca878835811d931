"""`accel infer`: the output as onnxruntime's, the report (table, --json, --out), bad input in
one line with exit status 2 before anything runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from accelerator import AcceleratorConfig
from accelerator.nn.demo import quantize_model
from accelerator.nn.report import COLUMNS

SUPPORTED = ("MatMul, Gemm, Conv, QLinearMatMul, QGemm, QLinearConv, MatMulInteger, "
             "ConvInteger, QLinearAdd, QLinearAveragePool, QLinearGlobalAveragePool, "
             "QuantizeLinear, DequantizeLinear, Relu, Add, Reshape, Flatten, Transpose, MaxPool, "
             "AveragePool, GlobalAveragePool, Softmax")


@pytest.fixture(scope="module")
def mlp(tmp_path_factory) -> tuple[Path, Path, np.ndarray]:
    """A quantized two-layer MLP, an input file and onnxruntime's output for it."""
    tmp = tmp_path_factory.mktemp("infer")
    rng = np.random.default_rng(1)
    inits = [numpy_helper.from_array((rng.normal(size=s) * 0.3).astype(np.float32), n)
             for n, s in (("W1", (16, 24)), ("b1", (24,)), ("W2", (24, 5)), ("b2", (5,)))]
    nodes = [helper.make_node("Gemm", ["x", "W1", "b1"], ["h"], name="fc1"),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("Gemm", ["r", "W2", "b2"], ["y"], name="fc2")]
    graph = helper.make_graph(nodes, "mlp",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 5])],
                              inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
              str(tmp / "mlp.onnx"))
    model = quantize_model(tmp / "mlp.onnx", tmp / "mlp_int8.onnx",
                           rng.normal(size=(128, 16)).astype(np.float32), input_name="x")
    x = rng.normal(size=(50, 16)).astype(np.float32)
    np.save(tmp / "x.npy", x)
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return model, tmp / "x.npy", session.run(None, {"x": x})[0]


def test_output_equals_onnxruntime(accel, mlp, tmp_path):
    model, x, expected = mlp
    out = tmp_path / "y.npy"
    code, stdout, stderr = accel("infer", str(model), "--input", str(x), "--output", str(out),
                                 "--rows", "4", "--cols", "4", "--in-width", "16")
    assert code == 0, stderr
    y = np.load(out)
    assert y.dtype == expected.dtype and np.array_equal(y, expected)
    assert "fc1" in stdout and "fc2" in stdout and "model error" in stdout


def test_json_fields(accel, mlp, tmp_path):
    model, x, _ = mlp
    code, stdout, stderr = accel("infer", str(model), "--input", str(x), "--json",
                                 "--rows", "2", "--cols", "8")
    assert code == 0, stderr
    report = json.loads(stdout)
    assert report["backend"] == "model"
    assert (report["rows_pe"], report["cols_pe"]) == (2, 8)
    assert report["outputs"] == [{"name": "y", "shape": [50, 5], "dtype": "float32"}]
    layers = report["layers"]
    assert [layer["name"] for layer in layers] == ["fc1", "fc2"]
    assert [(layer["m"], layer["k"], layer["n"]) for layer in layers] == [(50, 16, 24),
                                                                           (50, 24, 5)]
    for layer in layers:
        assert set(COLUMNS) <= set(layer)
        assert layer["cycles"] == layer["model_cycles"] > 0
        assert layer["model_error"] == 0
        assert layer["utilization"] == pytest.approx(
            layer["macs"] / (layer["cycles"] * 16))
        assert layer["requant"] in ("hardware", "host")
    assert report["total"]["cycles"] == sum(layer["cycles"] for layer in layers)


def test_out_dir(accel, mlp, tmp_path):
    model, x, _ = mlp
    code, _, stderr = accel("infer", str(model), "--input", str(x), "--out", str(tmp_path / "r"))
    assert code == 0, stderr
    for name in ("layers.csv", "layers.json", "utilization.png", "utilization.svg"):
        assert (tmp_path / "r" / name).stat().st_size > 0
    rows = json.loads((tmp_path / "r" / "layers.json").read_text())["rows"]
    assert [r["name"] for r in rows] == ["fc1", "fc2", "total"]
    header = (tmp_path / "r" / "layers.csv").read_text().splitlines()[0]
    assert header == ",".join(COLUMNS)


def _float_model(path: Path, op: str) -> Path:
    nodes = [helper.make_node(op, ["x"], ["y"], name="act")]
    graph = helper.make_graph(nodes, "f",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])])
    onnx.save(helper.make_model(graph), str(path))
    return path


@pytest.mark.parametrize(("args", "message"), [
    ((), "give a MODEL (an int8 .onnx file) or --demo"),
    (("{model}",), "--input X.npy is required with a MODEL"),
    (("missing.onnx", "--input", "{x}"), "missing.onnx: no such file"),
    (("{model}", "--input", "{x}", "--demo", "digits-mlp"),
     "--demo runs its own model and data: give no MODEL, --input or --output"),
    (("{model}", "--input", "{x64}"),
     "--input {x64}: dtype float64, the model's input 'x' takes float32"),
    (("{model}", "--input", "{x3d}"),
     "--input {x3d}: shape (2, 16, 1), the model's input 'x' has 2 dimensions"),
    (("{model}", "--input", "{x}", "--backend", "fpga"),
     "Invalid value for '--backend': 'fpga' is not one of 'model', 'rtl'."),
    (("{model}", "--input", "{x}", "--in-width", "4"),
     "networks need in_width >= 8 (int8 operands), the hardware has in_width = 4"),
    (("{model}", "--input", "{x}", "--acc-width", "24"),
     ("networks need acc_width = 32 (onnxruntime accumulates in int32), the hardware has "
     "acc_width = 24")),
    (("{model}", "--input", "{x}", "--rows", "0"),
     "invalid config: rows = 0 is out of range (allowed: 1 to 64)"),
    (("{sigmoid}", "--input", "{x}"),
     f"node 'act' (Sigmoid): operator Sigmoid is not supported (supported: {SUPPORTED})"),
    (("{float}", "--input", "{x}"),
     ("node 'act' (Gemm): operator Gemm on float input A 'x' is not supported (quantize the "
      "model: its inputs must come from DequantizeLinear)")),
])
def test_errors_word_for_word(accel, mlp, tmp_path, args, message):
    model, x, _ = mlp
    np.save(tmp_path / "x64.npy", np.zeros((2, 16)))
    np.save(tmp_path / "x3d.npy", np.zeros((2, 16, 1), np.float32))
    gemm = helper.make_graph(
        [helper.make_node("Gemm", ["x", "W"], ["y"], name="act")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
        [numpy_helper.from_array(np.ones((16, 3), np.float32), "W")])
    onnx.save(helper.make_model(gemm), str(tmp_path / "float.onnx"))
    names = {"model": str(model), "x": str(x), "x64": str(tmp_path / "x64.npy"),
             "x3d": str(tmp_path / "x3d.npy"),
             "sigmoid": str(_float_model(tmp_path / "s.onnx", "Sigmoid")),
             "float": str(tmp_path / "float.onnx")}
    code, stdout, stderr = accel("infer", *(a.format(**names) for a in args))
    assert code == 2
    assert stderr == f"accel infer: error: {message.format(**names)}\n"
    assert stdout == ""


def test_demo_mlp(accel, tmp_path):
    code, stdout, stderr = accel("infer", "--demo", "digits-mlp", "--rows", "8", "--cols", "8",
                                 "--json", "--out", str(tmp_path))
    assert code == 0, stderr
    report = json.loads(stdout)
    assert report["demo"] == "digits-mlp" and report["images"] == 539
    assert report["identical"] is True and report["logits_equal"] == report["logits"] == 5390
    accuracy = report["accuracy"]
    assert accuracy["int8_onnxruntime"] == accuracy["int8_model"]
    assert abs(accuracy["float"] - accuracy["int8_model"]) <= 0.01
    assert [layer["name"] for layer in report["layers"]] == ["fc1", "fc2"]
    assert (tmp_path / "digits-mlp_int8.onnx").is_file()
    code, stdout, _ = accel("infer", "--demo", "digits-mlp")
    assert code == 0
    assert "int8 model equals onnxruntime in every logit: yes (5,390 of 5,390)" in stdout


@pytest.mark.parametrize("baud", ["300", "12000000"])
def test_board_over_a_serial_port(accel, mlp, tmp_path, baud):
    """--port: the model on a (software) board behind a real serial port, tiled to its RAM; the
    output is onnxruntime's, the cycles are the board's counters, the model's are the shadow's."""
    from fake_board import FakeBoard, serve_on_pty

    model, x, expected = mlp
    board = FakeBoard(AcceleratorConfig(), ram_bytes=2048)
    out = tmp_path / "y.npy"
    with serve_on_pty(board) as port:
        code, stdout, stderr = accel("infer", str(model), "--input", str(x), "--port", port,
                                     "--baud", baud, "--output", str(out), "--json")
    assert code == 0, stderr
    assert np.array_equal(np.load(out), expected)
    report = json.loads(stdout)
    assert (report["backend"], report["port"]) == ("board", port)
    layers = report["layers"]
    assert [layer["name"] for layer in layers] == ["fc1", "fc2"]
    # the board's CYCLES is M·K·N per command: the sums say which commands ran, and the RAM
    # (2 KiB) made the device API split the first layer
    assert sum(layer["commands"] for layer in layers) == len(board.commands) > 2
    assert sum(layer["cycles"] for layer in layers) == sum(
        c["m"] * c["k"] * c["n"] for c in board.commands)
    assert all(layer["model_cycles"] > 0 and layer["model_error"] != 0 for layer in layers)


def test_board_refuses_other_options(accel, mlp):
    from fake_board import FakeBoard, serve_on_pty

    model, x, _ = mlp
    board = FakeBoard(AcceleratorConfig())
    with serve_on_pty(board) as port:
        code, stdout, stderr = accel("infer", str(model), "--input", str(x), "--port", port,
                                     "--rows", "8")
    assert (code, stdout) == (1, "")
    assert stderr == (f"accel infer: error: cannot start the board at {port}: connect: the "
                      f"board holds "
                      f"{AcceleratorConfig().name}, not {AcceleratorConfig(rows=8).name} (its ID "
                      f"block differs from the config given)\n")
    assert board.commands == []


@pytest.mark.parametrize(("args", "message"), [
    (("--backend", "rtl", "--port", "/dev/null"),
     "--backend rtl and --port are given: give one (--port runs on the board)"),
    (("--backend", "model", "--port", "/dev/null"),
     "--backend model and --port are given: give one (--port runs on the board)"),
    (("--port", "/dev/null", "--baud", "299"),
     "Invalid value for '--baud': 299 is not in the range 300<=x<=12000000."),
    (("--port", "/dev/null", "--baud", "12000001"),
     "Invalid value for '--baud': 12000001 is not in the range 300<=x<=12000000."),
])
def test_board_option_errors(accel, mlp, args, message):
    model, x, _ = mlp
    code, stdout, stderr = accel("infer", str(model), "--input", str(x), *args)
    assert (code, stdout) == (2, "")
    assert stderr == f"accel infer: error: {message}\n"


def test_int8_layer_onnxruntime_runs_in_float_refused(accel, tmp_path):
    """A MatMul next to a residual tensor onnxruntime keeps int8 runs in float there (MLAS's
    SGEMM of a Gemm is not reproduced): one line naming the node and its operator, status 2."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array((rng.normal(size=(8, 8)) * 0.3).astype(np.float32), n)
             for n in ("M1", "M2")]
    nodes = [helper.make_node("MatMul", ["x", "M1"], ["a"], name="mm1"),
             helper.make_node("MatMul", ["a", "M2"], ["c"], name="mm2"),
             helper.make_node("Add", ["a", "c"], ["y"], name="add")]
    graph = helper.make_graph(nodes, "res",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 8])],
                              inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
              str(tmp_path / "f.onnx"))
    model = quantize_model(tmp_path / "f.onnx", tmp_path / "q.onnx",
                           rng.normal(size=(64, 8)).astype(np.float32), input_name="x")
    np.save(tmp_path / "x.npy", np.zeros((2, 8), np.float32))
    code, stdout, stderr = accel("infer", str(model), "--input", str(tmp_path / "x.npy"))
    assert (code, stdout) == (2, "")
    assert stderr == (
        "accel infer: error: node 'mm1' (MatMul): int8 activation 'a_QuantizeLinear_Output' is "
        "read by more than one node (or is a graph input/output): onnxruntime computes this "
        "layer in float, which is reproduced for convolutions (more than one filter per group) "
        "between an int8 and a uint8 tensor only; quantize with uint8 activations\n")
