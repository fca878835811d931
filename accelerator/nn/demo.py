"""Demo networks that need no download: an MLP and a small CNN on scikit-learn's digits.

Both are trained at run time in NumPy (seconds), written as ONNX with ``onnx.helper`` from the
trained weights, and quantized by ``onnxruntime.quantization.quantize_static`` (QDQ, int8
activations and weights, calibrated on the training images). Needs the ``[nn]`` extra.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper

__all__ = ["DEMOS", "DemoData", "build_demo", "load_digits_split"]

#: The demos ``accel infer --demo`` takes.
DEMOS = ("digits-mlp", "digits-cnn")

_OPSET = 17


@dataclass
class DemoData:
    """A demo's models and data: the float and the int8 ONNX files, test images and labels."""

    name: str
    float_model: Path
    int8_model: Path
    x_test: NDArray[np.float32]
    y_test: NDArray[np.int64]


def load_digits_split(seed: int = 0) -> tuple[NDArray[np.float32], NDArray[np.float32],
                                              NDArray[np.int64], NDArray[np.int64]]:
    """The digits (8×8, values 0–16, scaled to [0, 1]): 70 % training, 30 % held out (540)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    cut = round(0.7 * len(x))
    train, test = order[:cut], order[cut:]
    return x[train], x[test], y[train], y[test]


# -- training in NumPy --------------------------------------------------------------------------


class _Adam:
    def __init__(self, params: list[NDArray[np.float64]], lr: float):
        self.params, self.lr = params, lr
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, grads: list[NDArray[np.float64]]) -> None:
        self.t += 1
        for p, g, m, v in zip(self.params, grads, self.m, self.v, strict=True):
            m *= 0.9
            m += 0.1 * g
            v *= 0.999
            v += 0.001 * g * g
            mh, vh = m / (1 - 0.9 ** self.t), v / (1 - 0.999 ** self.t)
            p -= self.lr * mh / (np.sqrt(vh) + 1e-8)


def _softmax_grad(logits: NDArray[np.float64], y: NDArray[np.int64]) -> NDArray[np.float64]:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1
    return p / len(y)


def _train_mlp(x: NDArray[np.float32], y: NDArray[np.int64], seed: int, epochs: int = 60
               ) -> list[NDArray[np.float64]]:
    rng = np.random.default_rng(seed)
    xf = x.reshape(len(x), -1).astype(np.float64)
    w1 = rng.normal(0, np.sqrt(2 / 64), (64, 64))
    b1 = np.zeros(64)
    w2 = rng.normal(0, np.sqrt(1 / 64), (64, 10))
    b2 = np.zeros(10)
    params = [w1, b1, w2, b2]
    opt = _Adam(params, 0.01)
    for _ in range(epochs):
        for idx in np.array_split(rng.permutation(len(xf)), len(xf) // 64):
            xb = xf[idx]
            h = np.maximum(xb @ w1 + b1, 0)
            g = _softmax_grad(h @ w2 + b2, y[idx])
            gh = (g @ w2.T) * (h > 0)
            opt.step([xb.T @ gh, gh.sum(0), h.T @ g, g.sum(0)])
    return params


def _im2col(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """3×3, stride 1, pad 1: (N, C, H, W) → (N·H·W, C·9)."""
    n, c, h, w = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    win = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(2, 3))
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(n * h * w, c * 9)


def _col2im(cols: NDArray[np.float64], shape: tuple[int, ...]) -> NDArray[np.float64]:
    n, c, h, w = shape
    g = cols.reshape(n, h, w, c, 3, 3)
    out = np.zeros((n, c, h + 2, w + 2))
    for i in range(3):
        for j in range(3):
            out[:, :, i:i + h, j:j + w] += g[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return out[:, :, 1:-1, 1:-1]


def _pool(x: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    n, c, h, w = x.shape
    blocks = x.reshape(n, c, h // 2, 2, w // 2, 2)
    out = blocks.max(axis=(3, 5))
    mask = blocks == out[:, :, :, None, :, None]
    return out, mask


def _unpool(g: NDArray[np.float64], mask: NDArray[np.bool_]) -> NDArray[np.float64]:
    n, c, h2, _, w2, _ = mask.shape
    return (mask * g[:, :, :, None, :, None]).reshape(n, c, h2 * 2, w2 * 2)


def _cnn_forward(params: list[NDArray[np.float64]], x: NDArray[np.float64]) -> tuple:
    k1, b1, k2, b2, wf, bf = params
    n = len(x)
    c1 = (_im2col(x) @ k1.reshape(8, -1).T + b1).reshape(n, 8, 8, 8).transpose(0, 3, 1, 2)
    r1 = np.maximum(c1, 0)
    p1, m1 = _pool(r1)                                     # (n, 8, 4, 4)
    cols2 = _im2col(p1)
    c2 = (cols2 @ k2.reshape(16, -1).T + b2).reshape(n, 4, 4, 16).transpose(0, 3, 1, 2)
    r2 = np.maximum(c2, 0)
    p2, m2 = _pool(r2)                                     # (n, 16, 2, 2)
    flat = p2.reshape(n, -1)
    return flat @ wf + bf, (x, c1, p1, m1, cols2, c2, m2, flat)


def _train_cnn(x: NDArray[np.float32], y: NDArray[np.int64], seed: int, epochs: int = 10
               ) -> list[NDArray[np.float64]]:
    rng = np.random.default_rng(seed)
    xs = x[:, None].astype(np.float64)
    params = [rng.normal(0, np.sqrt(2 / 9), (8, 1, 3, 3)), np.zeros(8),
              rng.normal(0, np.sqrt(2 / 72), (16, 8, 3, 3)), np.zeros(16),
              rng.normal(0, np.sqrt(1 / 64), (64, 10)), np.zeros(10)]
    opt = _Adam(params, 0.01)
    k1, _, k2, _, wf, _ = params
    for _ in range(epochs):
        for idx in np.array_split(rng.permutation(len(xs)), len(xs) // 64):
            logits, (xb, c1, p1, m1, cols2, c2, m2, flat) = _cnn_forward(params, xs[idx])
            n = len(idx)
            g = _softmax_grad(logits, y[idx])
            gwf, gbf = flat.T @ g, g.sum(0)
            gp2 = (g @ wf.T).reshape(n, 16, 2, 2)
            gc2 = _unpool(gp2, m2) * (c2 > 0)
            gc2m = gc2.transpose(0, 2, 3, 1).reshape(-1, 16)
            gk2 = (gc2m.T @ cols2).reshape(k2.shape)
            gb2 = gc2m.sum(0)
            gp1 = _col2im(gc2m @ k2.reshape(16, -1), p1.shape)
            gc1 = _unpool(gp1, m1) * (c1 > 0)
            gc1m = gc1.transpose(0, 2, 3, 1).reshape(-1, 8)
            gk1 = (gc1m.T @ _im2col(xb)).reshape(k1.shape)
            opt.step([gk1, gc1m.sum(0), gk2, gb2, gwf, gbf])
    return params


# -- ONNX ---------------------------------------------------------------------------------------


def _mlp_graph(params: list[NDArray[np.float64]]) -> onnx.ModelProto:
    w1, b1, w2, b2 = (p.astype(np.float32) for p in params)
    nodes = [helper.make_node("Flatten", ["image"], ["x"], name="flatten"),
             helper.make_node("Gemm", ["x", "fc1.weight", "fc1.bias"], ["h"], name="fc1"),
             helper.make_node("Relu", ["h"], ["h_relu"], name="relu1"),
             helper.make_node("Gemm", ["h_relu", "fc2.weight", "fc2.bias"], ["logits"],
                              name="fc2")]
    inits = [numpy_helper.from_array(a, n) for a, n in (
        (w1, "fc1.weight"), (b1, "fc1.bias"), (w2, "fc2.weight"), (b2, "fc2.bias"))]
    return _model("digits_mlp", nodes, inits)


def _cnn_graph(params: list[NDArray[np.float64]]) -> onnx.ModelProto:
    k1, b1, k2, b2, wf, bf = (p.astype(np.float32) for p in params)
    nodes = [helper.make_node("Conv", ["image", "conv1.weight", "conv1.bias"], ["c1"],
                              name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2],
                              strides=[2, 2]),
             helper.make_node("Conv", ["p1", "conv2.weight", "conv2.bias"], ["c2"],
                              name="conv2", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
             helper.make_node("MaxPool", ["r2"], ["p2"], name="pool2", kernel_shape=[2, 2],
                              strides=[2, 2]),
             helper.make_node("Flatten", ["p2"], ["flat"], name="flatten"),
             helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"], name="fc")]
    inits = [numpy_helper.from_array(a, n) for a, n in (
        (k1, "conv1.weight"), (b1, "conv1.bias"), (k2, "conv2.weight"), (b2, "conv2.bias"),
        (wf, "fc.weight"), (bf, "fc.bias"))]
    return _model("digits_cnn", nodes, inits, image_shape=[None, 1, 8, 8])


def _model(name: str, nodes: list, inits: list, image_shape: list | None = None
           ) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, image_shape or [None, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [None, 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _OPSET)])
    onnx.checker.check_model(model)
    return model


def quantize_model(float_path: Path, int8_path: Path, calibration: NDArray[np.float32],
                   input_name: str = "image", **options: Any) -> Path:
    """``quantize_static`` in QDQ form, calibrated on ``calibration`` (batches of 64)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{input_name: calibration[i:i + 64]}
                                 for i in range(0, len(calibration), 64)])

        def get_next(self) -> dict[str, NDArray[np.float32]] | None:
            return next(self.batches, None)

    # quantize_static logs advice (pre-processing) on the root logger at WARNING for every
    # model; it says nothing about this one, so keep it off the demo's output.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_static(str(float_path), str(int8_path), Reader(),
                        quant_format=options.pop("quant_format", QuantFormat.QDQ), **options)
    finally:
        root.setLevel(level)
    return int8_path


def build_demo(name: str, out_dir: Path, seed: int = 0) -> DemoData:
    """Train ``name`` (one of :data:`DEMOS`), write ``name.onnx`` and ``name_int8.onnx`` into
    ``out_dir``, and return them with the held-out images."""
    if name not in DEMOS:
        raise ValueError(f"unknown demo {name!r} (known: {', '.join(DEMOS)})")
    x_train, x_test, y_train, y_test = load_digits_split(seed)
    if name == "digits-mlp":
        model = _mlp_graph(_train_mlp(x_train, y_train, seed))
    else:
        model = _cnn_graph(_train_cnn(x_train, y_train, seed))
        x_train, x_test = x_train[:, None], x_test[:, None]
    out_dir.mkdir(parents=True, exist_ok=True)
    float_path = out_dir / f"{name}.onnx"
    onnx.save(model, str(float_path))
    int8_path = quantize_model(float_path, out_dir / f"{name}_int8.onnx", x_train)
    return DemoData(name, float_path, int8_path, x_test, y_test)
