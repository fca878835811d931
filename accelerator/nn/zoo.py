"""Int8 QDQ models built directly with ``onnx.helper`` (random weights, fixed scales): no
calibration, no download. :func:`resnet18` has ResNet-18's layers at 224×224, the GEMMs of
``accel sweep --workload resnet18`` (:func:`accelerator.dse.workloads.resnet18`)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = ["QdqBuilder", "resnet18"]


class QdqBuilder:
    """Writes a QDQ graph node by node: uint8 activations (per-tensor scale and zero point),
    int8 symmetric weights, int32 biases, as ``quantize_static`` lays them out. (uint8, not
    int8: onnxruntime's x86 graph moves int8 activations to uint8 pair by pair, and a tensor
    left int8 next to a moved one keeps it from fusing the layers around it.)"""

    def __init__(self, seed: int = 0, activations: str = "uint8"):
        if activations not in ("uint8", "int8"):
            raise ValueError(f"activations = {activations!r} (allowed: uint8, int8)")
        #: int8: every activation zero point given as uint8 is stored moved by −128 (what
        #: quantize_static's default QInt8 activations look like).
        self.activations = activations
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.scales: dict[str, float] = {}
        self.zps: dict[str, int] = {}
        self._count = 0

    def _name(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}_{self._count}"

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(value, name))
        return name

    def quantize(self, x: str, scale: float, zero_point: int) -> str:
        """Q then DQ of a float tensor: returns the DQ output (float)."""
        q = f"{x}_q"
        s = self.const(f"{x}_scale", np.array(scale, np.float32))
        z = self.const(f"{x}_zp", np.array(zero_point, np.uint8) if self.activations == "uint8"
                       else np.array(zero_point - 128, np.int8))
        self.nodes.append(helper.make_node("QuantizeLinear", [x, s, z], [q], name=f"{x}_Q"))
        self.nodes.append(helper.make_node("DequantizeLinear", [q, s, z], [f"{q}_dq"],
                                           name=f"{x}_DQ"))
        self.scales[f"{q}_dq"], self.zps[f"{q}_dq"] = scale, zero_point
        return f"{q}_dq"

    def _weight(self, name: str, shape: tuple[int, ...], scale: float) -> str:
        w = self.rng.integers(-127, 128, size=shape, dtype=np.int8)
        q = self.const(f"{name}.w_q", w)
        s = self.const(f"{name}.w_scale", np.array(scale, np.float32))
        z = self.const(f"{name}.w_zp", np.array(0, np.int8))
        self.nodes.append(helper.make_node("DequantizeLinear", [q, s, z], [f"{name}.w"],
                                           name=f"{name}.w_DQ"))
        return f"{name}.w"

    def _bias(self, name: str, size: int, x: str, w_scale: float) -> str:
        scale = self.scales[x] * w_scale
        b = self.rng.integers(-2000, 2000, size=size).astype(np.int32)
        q = self.const(f"{name}.b_q", b)
        s = self.const(f"{name}.b_scale", np.array(scale, np.float32))
        z = self.const(f"{name}.b_zp", np.array(0, np.int32))
        self.nodes.append(helper.make_node("DequantizeLinear", [q, s, z], [f"{name}.b"],
                                           name=f"{name}.b_DQ"))
        return f"{name}.b"

    def conv(self, name: str, x: str, in_ch: int, out_ch: int, kernel: int, stride: int = 1,
             pad: int = 0, relu: bool = True, out_scale: float = 0.05) -> str:
        """Conv (+ ReLU folded into the output's zero point, as the quantizer does) + Q/DQ."""
        w_scale = 1.0 / (127 * np.sqrt(in_ch * kernel * kernel))
        w = self._weight(name, (out_ch, in_ch, kernel, kernel), w_scale)
        b = self._bias(name, out_ch, x, w_scale)
        self.nodes.append(helper.make_node("Conv", [x, w, b], [name], name=name,
                                           kernel_shape=[kernel, kernel],
                                           strides=[stride, stride], pads=[pad] * 4))
        return self.quantize(name, out_scale, 0 if relu else 128)

    def gemm(self, name: str, x: str, k: int, n: int, out_scale: float = 0.05) -> str:
        w_scale = 1.0 / (127 * np.sqrt(k))
        w = self._weight(name, (n, k), w_scale)
        b = self._bias(name, n, x, w_scale)
        self.nodes.append(helper.make_node("Gemm", [x, w, b], [name], name=name, transB=1))
        return self.quantize(name, out_scale, 128)

    def op(self, op_type: str, inputs: list[str], out_scale: float, out_zp: int,
           **attrs: object) -> str:
        name = self._name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [name], name=name, **attrs))
        return self.quantize(name, out_scale, out_zp)

    def model(self, name: str, x: str, shape: list[int | None], y: str,
              y_shape: list[int | None]) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, name,
                                  [helper.make_tensor_value_info(x, TensorProto.FLOAT, shape)],
                                  [helper.make_tensor_value_info(y, TensorProto.FLOAT, y_shape)],
                                  self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        onnx.checker.check_model(model)
        return model


def resnet18(seed: int = 0, size: int = 224, classes: int = 1000,
             activations: str = "uint8") -> onnx.ModelProto:
    """ResNet-18 in QDQ int8 with random weights: conv1 7×7/2, max pool 3×3/2, four stages of
    two basic blocks (3×3 convolutions, a 1×1/2 downsample where the stage halves the size, the
    residual Add), global average pool, the 512×1000 classifier. ``activations="int8"``:
    int8 activations, where onnxruntime runs the convolutions next to each residual in float."""
    b = QdqBuilder(seed, activations)
    x = b.quantize("image", 0.02, 128)
    x = b.conv("conv1", x, 3, 64, 7, stride=2, pad=3)
    x = b.op("MaxPool", [x], 0.05, 0, kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    channels = 64
    for stage, width in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            stride = 2 if stage > 1 and block == 0 else 1
            prefix = f"layer{stage}.{block}"
            h = b.conv(f"{prefix}.conv1", x, channels, width, 3, stride=stride, pad=1)
            h = b.conv(f"{prefix}.conv2", h, width, width, 3, pad=1, relu=False)
            shortcut = x
            if stride != 1 or channels != width:
                shortcut = b.conv(f"{prefix}.downsample", x, channels, width, 1, stride=stride,
                                  relu=False)
            s = b.op("Add", [h, shortcut], 0.05, 128)
            x = b.op("Relu", [s], 0.05, 0)
            channels = width
    x = b.op("GlobalAveragePool", [x], 0.02, 0)
    x = b.op("Flatten", [x], 0.02, 0)
    y = b.gemm("fc", x, 512, classes)
    return b.model("resnet18_int8", "image", [None, 3, size, size], y, [None, classes])
