"""An int8 ONNX model as a list of steps: accelerator GEMMs and host operators.

:class:`Network` reads a model (QDQ, as ``onnxruntime.quantization.quantize_static`` writes it,
or QOperator), checks every node before anything runs, and lowers it:

* a quantized MatMul, Gemm or Conv (QDQ: DequantizeLinear on its inputs and QuantizeLinear on
  its output, the pattern onnxruntime fuses into QLinearMatMul / QGemm / QLinearConv; or those
  QOperator nodes, MatMulInteger and ConvInteger) becomes one accelerator GEMM per group
  (convolutions by im2col, the whole batch in M), with zero points, bias and requantization as
  in :meth:`GemmStep.run`;
* every other supported operator runs on the host in NumPy, in the arithmetic onnxruntime's
  CPU kernels use.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import numpy_helper

from ..model.perf import estimate
from . import kernels

__all__ = ["GEMM_OPS", "HOST_OPS", "QOPERATOR_HOST_OPS", "QOPERATOR_OPS", "LayerStats", "Network",
           "UnsupportedModel", "check_config"]

#: Float operators lowered to accelerator GEMMs when quantized (QDQ form).
GEMM_OPS = ("MatMul", "Gemm", "Conv")
#: QOperator nodes lowered to accelerator GEMMs.
QOPERATOR_OPS = ("QLinearMatMul", "QGemm", "QLinearConv", "MatMulInteger", "ConvInteger")
#: QOperator nodes run on the host, with the arithmetic of onnxruntime's kernels (:mod:`.kernels`).
QOPERATOR_HOST_OPS = ("QLinearAdd", "QLinearAveragePool", "QLinearGlobalAveragePool")
#: Operators run on the host.
HOST_OPS = ("QuantizeLinear", "DequantizeLinear", "Relu", "Add", "Reshape", "Flatten",
            "Transpose", "MaxPool", "AveragePool", "GlobalAveragePool", "Softmax")

_QTYPES = {onnx.TensorProto.INT8: np.dtype(np.int8), onnx.TensorProto.UINT8: np.dtype(np.uint8)}


class UnsupportedModel(ValueError):
    """The model has an operator, a data type or an attribute the lowering does not take.
    ``str()`` is one line naming the node and its operator."""


@dataclass
class LayerStats:
    """What one accelerator layer did: its GEMM shape and the device's counters."""

    name: str
    op: str
    m: int
    k: int
    n: int
    groups: int
    macs: int
    commands: int = 0
    cycles: int = 0
    model_cycles: int = 0
    estimate_cycles: int = 0
    requant: str = "hardware"
    seconds: float = 0.0
    #: Whether its commands read C_in (the bias and the zero points' corrections).
    accumulate: bool = False
    #: Outputs recomputed on the host in onnxruntime's float arithmetic (near a rounding tie,
    #: in a layer onnxruntime runs in float: :func:`_float_conv_output`).
    host_outputs: int = 0

    def utilization(self, pes: int) -> float:
        return self.macs / (self.cycles * pes) if self.cycles else 0.0

    def to_dict(self, pes: int) -> dict[str, Any]:
        return {"name": self.name, "op": self.op, "m": self.m, "k": self.k, "n": self.n,
                "groups": self.groups, "macs": self.macs, "commands": self.commands,
                "cycles": self.cycles, "utilization": self.utilization(pes),
                "model_cycles": self.model_cycles,
                "model_error": ((self.model_cycles - self.cycles) / self.cycles
                                if self.cycles else None),
                "estimate_cycles": self.estimate_cycles, "requant": self.requant,
                "seconds": self.seconds}


def check_config(config: Any) -> None:
    """Raise ``ValueError`` (one line) when the hardware cannot run int8 networks exactly: its
    operands must hold int8 and its accumulator must wrap like onnxruntime's int32."""
    if config.in_width < 8:
        raise ValueError(f"networks need in_width >= 8 (int8 operands), the hardware has "
                         f"in_width = {config.in_width}")
    if config.acc_width != 32:
        raise ValueError(f"networks need acc_width = 32 (onnxruntime accumulates in int32), "
                         f"the hardware has acc_width = {config.acc_width}")


def _fail(node: onnx.NodeProto, message: str) -> UnsupportedModel:
    return UnsupportedModel(f"node {node.name or node.output[0]!r} ({node.op_type}): {message}")


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


# -- the GEMM layer -------------------------------------------------------------------------------


@dataclass
class _QTensor:
    """Where a quantized operand's parameters come from: constants, or names in the env."""

    scale: Any
    zero_point: Any
    dtype: np.dtype | None = None


@dataclass
class GemmStep:
    """A quantized MatMul / Gemm / Conv on the accelerator.

    ``Σ (a − za)(w − zw)`` is computed as the hardware's signed int8 GEMM: a uint8 operand is
    moved into int8 by subtracting 128 (exact), the zero points move with it (``za' = za − 128``),
    and ``Σ (a' − za')(w' − zw') = Σ a'w' − za'·colsum(w') − zw'·rowsum(a') + K·za'·zw'``: the
    three correction terms and the bias go into C_in, so the hardware's accumulator holds exactly
    onnxruntime's int32 accumulator. The output is then requantized by the hardware when
    :func:`kernels.hardware_requant_exact` proves it equal to onnxruntime's float requantization
    for this layer, else the accelerator returns int32 and the host requantizes like MLAS.
    """

    node: onnx.NodeProto
    kind: str                     # "matmul", "gemm" or "conv"
    x: str
    w: str
    x_q: _QTensor
    w_q: _QTensor
    bias: str | None
    output: str
    out_q: _QTensor | None        # None: int32 output (MatMulInteger, ConvInteger)
    relu: bool = False
    trans_a: bool = False
    trans_b: bool = False
    conv: dict[str, Any] = field(default_factory=dict)
    skip: tuple[str, ...] = ()    # nodes folded into this one (its Q, a Relu)
    #: onnxruntime computes this convolution in float (MLAS's SGEMM), which the lowering then
    #: reproduces (:func:`_float_conv_output`).
    float_conv: bool = False
    bias_scale: Any = None        # the bias's DequantizeLinear scale (QDQ)

    @property
    def name(self) -> str:
        return self.node.name or self.node.output[0]


@dataclass
class QHostStep:
    """A host operator between DequantizeLinear and QuantizeLinear, which onnxruntime fuses into
    its QLinear kernel (QLinearAdd, QLinearAveragePool, QLinearGlobalAveragePool,
    QLinearSoftmax): run on the integers with that kernel's arithmetic (:mod:`.kernels`)."""

    node: onnx.NodeProto
    inputs: list[tuple[str, Any, int]]     # (quantized tensor, scale, zero point)
    output: str
    out_scale: Any
    out_zp: int
    dtype: np.dtype
    skip: tuple[str, ...] = ()
    #: For int8: which of the inputs and the output (in that order) onnxruntime's x86 graph
    #: moves to uint8 (``QDQS8ToU8Transformer``), see :meth:`Network._moved_to_uint8`.
    moved: tuple[bool, ...] = ()

    @property
    def op_type(self) -> str:
        """The float operator whose quantized form this is (QLinearAdd: Add, ...)."""
        op = self.node.op_type
        return op[len("QLinear"):] if op in QOPERATOR_HOST_OPS else op


#: Host operators onnxruntime fuses with their DequantizeLinear inputs and QuantizeLinear output.
_QLINEAR_HOST = ("Add", "AveragePool", "GlobalAveragePool", "Softmax")


def _value(env: Mapping[str, NDArray[Any]], ref: Any) -> NDArray[Any]:
    return env[ref] if isinstance(ref, str) else np.asarray(ref)


def _to_int8(q: NDArray[Any]) -> NDArray[np.int64]:
    """A uint8/int8 tensor as the hardware's signed operand (uint8 shifted by −128)."""
    shift = 128 if q.dtype == np.uint8 else 0
    return q.astype(np.int64) - shift


# -- the network ----------------------------------------------------------------------------------


class Network:
    """An int8 ONNX model lowered for the accelerator (see the module docstring)."""

    def __init__(self, model: onnx.ModelProto | str | Path):
        if not isinstance(model, onnx.ModelProto):
            try:
                model = onnx.load(str(model))
            except Exception as exc:  # onnx raises DecodeError, OSError, ...
                raise UnsupportedModel(f"{model}: not an ONNX model ({exc})") from None
        self.model = model
        graph = model.graph
        self.constants: dict[str, NDArray[Any]] = {
            init.name: numpy_helper.to_array(init) for init in graph.initializer}
        for node in graph.node:
            if node.op_type == "Constant":
                value = _attrs(node).get("value")
                if value is None:
                    raise _fail(node, "only a Constant with a tensor 'value' is supported")
                self.constants[node.output[0]] = numpy_helper.to_array(value)
        self.inputs = [i for i in graph.input if i.name not in self.constants]
        self.outputs = [o.name for o in graph.output]
        self._consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in graph.node:
            for name in node.input:
                self._consumers.setdefault(name, []).append(node)
        self._producer = {out: node for node in graph.node for out in node.output}
        self.steps: list[GemmStep | QHostStep | onnx.NodeProto] = []
        skipped: set[str] = set()
        fused: dict[str, GemmStep] = {}
        for node in graph.node:
            if node.op_type == "Constant":
                continue
            if node.op_type in GEMM_OPS:
                fused[node.output[0]] = self._fuse_qdq(node)
        for node in graph.node:
            if node.op_type == "Constant" or id(node) in skipped:
                continue
            if node.op_type in GEMM_OPS:
                step = fused[node.output[0]]
                skipped.update(id(n) for n in self._folded(step))
                self.steps.append(step)
            elif node.op_type in QOPERATOR_OPS:
                self.steps.append(self._qoperator(node))
            elif node.op_type in QOPERATOR_HOST_OPS:
                self.steps.append(self._qoperator_host(node))
            elif node.op_type in HOST_OPS:
                self._check_host(node)
                fused_host = self._fuse_host(node)
                if fused_host is not None:
                    skipped.update(id(n) for n in self._folded(fused_host))
                    self.steps.append(fused_host)
                else:
                    self.steps.append(node)
            else:
                supported = GEMM_OPS + QOPERATOR_OPS + QOPERATOR_HOST_OPS + HOST_OPS
                raise _fail(node, f"operator {node.op_type} is not supported (supported: "
                                  f"{', '.join(supported)})")
        # A DequantizeLinear whose only consumers were folded into a GEMM need not run.
        needed = set(self.outputs)
        kept: list[GemmStep | QHostStep | onnx.NodeProto] = []
        for step in reversed(self.steps):
            outs = [step.output] if not isinstance(step, onnx.NodeProto) else list(step.output)
            if isinstance(step, GemmStep) or any(o in needed for o in outs):
                needed.update(self._inputs_of(step))
                kept.append(step)
        self.steps = kept[::-1]

    def _folded(self, step: GemmStep | QHostStep) -> list[onnx.NodeProto]:
        return [n for n in self.model.graph.node if (n.name and n.name in step.skip)
                or (not n.name and n.output[0] in step.skip)]

    @staticmethod
    def _inputs_of(step: GemmStep | QHostStep | onnx.NodeProto) -> list[str]:
        if isinstance(step, QHostStep):
            return [name for name, _, _ in step.inputs]
        if isinstance(step, GemmStep):
            refs = [step.x, step.w, step.bias]
            for q in (step.x_q, step.w_q, step.out_q):
                if q is not None:
                    refs += [q.scale, q.zero_point]
            return [r for r in refs if isinstance(r, str)]
        return [i for i in step.input if i]

    # -- recognizing the layers ---------------------------------------------------------------

    def _const(self, node: onnx.NodeProto, name: str, what: str) -> NDArray[Any]:
        if name not in self.constants:
            raise _fail(node, f"{what} {name!r} must be a constant (an initializer)")
        return self.constants[name]

    def _dq_source(self, node: onnx.NodeProto, name: str, what: str
                   ) -> tuple[str, _QTensor]:
        producer = self._producer.get(name)
        if producer is None or producer.op_type != "DequantizeLinear":
            raise _fail(node, f"operator {node.op_type} on float input {what} {name!r} is not "
                              f"supported (quantize the model: its inputs must come from "
                              f"DequantizeLinear)")
        scale = self._const(producer, producer.input[1], "scale")
        zp = (self._const(producer, producer.input[2], "zero point")
              if len(producer.input) > 2 and producer.input[2] else np.array(0, np.uint8))
        return producer.input[0], _QTensor(scale, zp, zp.dtype)

    def _fuse_qdq(self, node: onnx.NodeProto) -> GemmStep:
        kind = {"MatMul": "matmul", "Gemm": "gemm", "Conv": "conv"}[node.op_type]
        x, x_q = self._dq_source(node, node.input[0], "A" if kind != "conv" else "X")
        w, w_q = self._dq_source(node, node.input[1], "B" if kind != "conv" else "W")
        for q, what in ((x_q, "input"), (w_q, "weight")):
            if q.dtype not in kernels.QRANGE:
                raise _fail(node, f"{what} data type {q.dtype} is not supported (int8, uint8)")
        bias = bias_scale = None
        if len(node.input) > 2 and node.input[2]:
            bias_src, bias_q = self._dq_source(node, node.input[2], "bias")
            bias_value = self._const(node, bias_src, "bias")
            if bias_value.dtype != np.int32 or np.any(np.asarray(bias_q.zero_point) != 0):
                raise _fail(node, f"bias data type {bias_value.dtype} is not supported (int32 "
                                  f"with zero point 0)")
            bias, bias_scale = bias_src, bias_q.scale
        skip: list[str] = []
        out = node.output[0]
        relu = False
        consumers = self._consumers.get(out, [])
        if len(consumers) == 1 and consumers[0].op_type == "Relu" and out not in self.outputs:
            relu_node = consumers[0]
            skip.append(relu_node.name or relu_node.output[0])
            out = relu_node.output[0]
            consumers = self._consumers.get(out, [])
            relu = True
        if len(consumers) != 1 or consumers[0].op_type != "QuantizeLinear" or out in self.outputs:
            raise _fail(node, "a quantized layer's output must go to one QuantizeLinear only "
                              "(onnxruntime runs anything else in float)")
        qnode = consumers[0]
        skip.append(qnode.name or qnode.output[0])
        y_scale = self._const(qnode, qnode.input[1], "scale")
        y_zp = (self._const(qnode, qnode.input[2], "zero point")
                if len(qnode.input) > 2 and qnode.input[2] else np.array(0, np.uint8))
        if y_zp.dtype not in kernels.QRANGE or y_scale.size != 1:
            raise _fail(qnode, f"output data type {y_zp.dtype} / per-axis output scale is not "
                               f"supported (int8, uint8, per tensor)")
        if relu and int(y_zp.reshape(-1)[0]) != kernels.QRANGE[y_zp.dtype][0]:
            # onnxruntime drops such a Relu only when the zero point is the type's minimum;
            # otherwise it runs the layer and the Relu in float (MLAS's convolution), whose
            # rounding the integer lowering cannot reproduce.
            raise _fail(node, f"a Relu before a QuantizeLinear with zero point "
                              f"{int(y_zp.reshape(-1)[0])} (not "
                              f"{kernels.QRANGE[y_zp.dtype][0]}) is not supported "
                              f"(onnxruntime computes that layer in float)")
        step = GemmStep(node=node, kind=kind, x=x, w=w, x_q=x_q, w_q=w_q, bias=bias,
                        output=qnode.output[0], out_q=_QTensor(y_scale, y_zp, y_zp.dtype),
                        relu=relu, skip=tuple(skip), bias_scale=bias_scale)
        self._layer_attrs(node, step, _attrs(node))
        # onnxruntime's x86 graph keeps an int8 tensor read by several nodes (a residual) int8
        # while it moves its neighbours to uint8; a layer between the two types is not fused and
        # runs in float: DequantizeLinear, MLAS's float convolution, QuantizeLinear.
        unmoved = [name for name, dtype in ((x, x_q.dtype), (qnode.output[0], y_zp.dtype))
                   if dtype == np.int8 and not self._moved_to_uint8(name)]
        if unmoved:
            if kind != "conv" or len(unmoved) != 1 or \
                    self.constants[w].shape[0] == step.conv["group"]:   # one filter per group
                raise _fail(node, f"int8 activation {unmoved[0]!r} is read by more than one "
                                  f"node (or is a graph input/output): onnxruntime computes "
                                  f"this layer in float, which is reproduced for convolutions "
                                  f"(more than one filter per group) between an int8 and a "
                                  f"uint8 tensor only; quantize with uint8 activations")
            step.float_conv = True
        return step

    def _fuse_host(self, node: onnx.NodeProto) -> QHostStep | None:
        """The QDQ pattern onnxruntime fuses into a QLinear kernel, or ``None`` (then the
        operator runs in float, as onnxruntime runs it)."""
        if node.op_type not in _QLINEAR_HOST:
            return None
        data = [i for i in node.input if i][:2 if node.op_type == "Add" else 1]
        inputs = []
        dtypes = set()
        for name in data:
            producer = self._producer.get(name)
            if producer is None or producer.op_type != "DequantizeLinear":
                return None
            scale = self.constants.get(producer.input[1])
            zp = (self.constants.get(producer.input[2]) if len(producer.input) > 2
                  and producer.input[2] else np.array(0, np.uint8))
            if scale is None or zp is None or scale.size != 1 or zp.size != 1:
                return None
            inputs.append((producer.input[0], scale, int(zp.reshape(-1)[0])))
            dtypes.add(zp.dtype)
        consumers = self._consumers.get(node.output[0], [])
        if len(consumers) != 1 or consumers[0].op_type != "QuantizeLinear" or \
                node.output[0] in self.outputs:
            return None
        qnode = consumers[0]
        scale = self.constants.get(qnode.input[1])
        zp = (self.constants.get(qnode.input[2]) if len(qnode.input) > 2 and qnode.input[2]
              else np.array(0, np.uint8))
        if scale is None or zp is None or scale.size != 1 or zp.size != 1:
            return None
        dtypes.add(zp.dtype)
        if len(dtypes) != 1 or zp.dtype not in kernels.QRANGE:
            return None
        names = [name for name, _, _ in inputs] + [qnode.output[0]]
        moved = tuple(self._moved_to_uint8(name) for name in names) if zp.dtype == np.int8 else ()
        if len(set(moved)) > 1 and node.op_type != "Add":
            # a mixed int8/uint8 group is not fused: onnxruntime runs the operator in float
            # (MLAS's float pooling or softmax), which the host does not reproduce bit for bit
            raise _fail(node, f"{node.op_type} between an int8 tensor read by more than one "
                              f"node and a uint8-moved one is not supported (onnxruntime "
                              f"computes it in float; quantize with uint8 activations)")
        return QHostStep(node, inputs, qnode.output[0], scale, int(zp.reshape(-1)[0]),
                         zp.dtype, skip=(qnode.name or qnode.output[0],), moved=moved)

    def _moved_to_uint8(self, name: str) -> bool:
        """Whether onnxruntime's x86 graph moves the int8 tensor ``name`` to uint8: it does so
        for a QuantizeLinear whose output goes to one DequantizeLinear only, after giving every
        consumer of a shared DequantizeLinear its own copy (so a tensor read by two nodes, a
        residual connection, stays int8)."""
        producer = self._producer.get(name)
        if producer is None or producer.op_type != "QuantizeLinear" or name in self.outputs:
            return False
        consumers = self._consumers.get(name, [])
        return (len(consumers) == 1 and consumers[0].op_type == "DequantizeLinear"
                and len(self._consumers.get(consumers[0].output[0], [])) <= 1)

    def _qoperator(self, node: onnx.NodeProto) -> GemmStep:
        op, ins = node.op_type, list(node.input) + [""] * 9
        attrs = _attrs(node)

        def q(scale: str, zp: str, data: str) -> _QTensor:
            s = self._const(node, scale, "scale") if scale else np.float32(1)
            z = (self._const(node, zp, "zero point") if zp
                 else np.array(0, self._dtype_of(node, data)))
            return _QTensor(s, z, z.dtype)

        if op == "QLinearMatMul":
            x_q, w_q, out_q = q(ins[1], ins[2], ins[0]), q(ins[4], ins[5], ins[3]), \
                q(ins[6], ins[7], ins[0])
            step = GemmStep(node, "matmul", ins[0], ins[3], x_q, w_q, None, node.output[0],
                            out_q)
        elif op == "QLinearConv":
            x_q, w_q, out_q = q(ins[1], ins[2], ins[0]), q(ins[4], ins[5], ins[3]), \
                q(ins[6], ins[7], ins[0])
            step = GemmStep(node, "conv", ins[0], ins[3], x_q, w_q, ins[8] or None,
                            node.output[0], out_q)
        elif op == "QGemm":
            x_q, w_q = q(ins[1], ins[2], ins[0]), q(ins[4], ins[5], ins[3])
            if not ins[7]:
                raise _fail(node, "QGemm with a float output (no y_scale) is not supported")
            out_q = q(ins[7], ins[8], ins[0])
            if attrs.get("alpha", 1.0) != 1.0:
                raise _fail(node, f"alpha = {attrs['alpha']} is not supported (1)")
            step = GemmStep(node, "gemm", ins[0], ins[3], x_q, w_q, ins[6] or None,
                            node.output[0], out_q)
        elif op == "MatMulInteger":
            step = GemmStep(node, "matmul", ins[0], ins[1], q("", ins[2], ins[0]),
                            q("", ins[3], ins[1]), None, node.output[0], None)
        else:  # ConvInteger
            step = GemmStep(node, "conv", ins[0], ins[1], q("", ins[2], ins[0]),
                            q("", ins[3], ins[1]), None, node.output[0], None)
        for qt, what in ((step.x_q, "input"), (step.w_q, "weight"), (step.out_q, "output")):
            if qt is not None and qt.dtype not in kernels.QRANGE:
                raise _fail(node, f"{what} data type {qt.dtype} is not supported (int8, uint8)")
        if step.out_q is not None and np.asarray(step.out_q.scale).size != 1:
            raise _fail(node, "a per-axis output scale is not supported")
        if step.bias is not None and self._const(node, step.bias, "bias").dtype != np.int32:
            raise _fail(node, "bias data type is not supported (int32)")
        self._layer_attrs(node, step, attrs)
        return step

    def _qoperator_host(self, node: onnx.NodeProto) -> QHostStep:
        """QLinearAdd (com.microsoft: A, its scale and zero point, B, ..., C's), and
        QLinearAveragePool / QLinearGlobalAveragePool (X, x_scale, x_zp, y_scale, y_zp): the
        quantized tensors keep their types (no uint8 move: that is QDQ's), so each runs as
        onnxruntime's kernel runs on them."""
        ins = list(node.input) + [""] * 8
        attrs = _attrs(node)
        if attrs.get("channels_last", 0):
            raise _fail(node, "channels_last = 1 is not supported (NCHW)")
        if node.op_type == "QLinearAveragePool":
            if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
                raise _fail(node, "auto_pad is not supported (give pads)")
            if attrs.get("ceil_mode", 0):
                raise _fail(node, "ceil_mode = 1 is not supported")
            if len(attrs.get("kernel_shape", ())) != 2:
                raise _fail(node, "only 2-D pooling is supported")
        groups = [(0, 1, 2), (3, 4, 5)] if node.op_type == "QLinearAdd" else [(0, 1, 2)]
        out = (6, 7) if node.op_type == "QLinearAdd" else (3, 4)
        dtypes = set()
        inputs = []
        for data, scale, zp in groups:
            z = (self._const(node, ins[zp], "zero point") if ins[zp]
                 else np.array(0, self._dtype_of(node, ins[data])))
            dtype = z.dtype
            sc = self._const(node, ins[scale], "scale")
            if sc.size != 1 or z.size != 1:
                raise _fail(node, "a per-axis scale or zero point is not supported")
            inputs.append((ins[data], sc, int(z.reshape(-1)[0])))
            dtypes.update((dtype, z.dtype))
        y_scale = self._const(node, ins[out[0]], "scale")
        y_zp = (self._const(node, ins[out[1]], "zero point") if ins[out[1]]
                else np.array(0, next(iter(dtypes))))
        dtypes.add(y_zp.dtype)
        if len(dtypes) != 1 or y_zp.dtype not in kernels.QRANGE or y_scale.size != 1 \
                or y_zp.size != 1:
            raise _fail(node, f"data types {', '.join(sorted(map(str, dtypes)))} / per-axis "
                              f"output scale are not supported (one of int8, uint8, per tensor)")
        return QHostStep(node, inputs, node.output[0], y_scale, int(y_zp.reshape(-1)[0]),
                         y_zp.dtype)

    def _dtype_of(self, node: onnx.NodeProto, name: str) -> np.dtype:
        if name in self.constants:
            return self.constants[name].dtype
        for value in (*self.model.graph.input, *self.model.graph.value_info):
            if value.name == name:
                elem = value.type.tensor_type.elem_type
                if elem in _QTYPES:
                    return _QTYPES[elem]
                raise _fail(node, f"input {name!r} has data type "
                                  f"{onnx.TensorProto.DataType.Name(elem)}, not supported "
                                  f"(INT8, UINT8)")
        producer = self._producer.get(name)
        if producer is not None and producer.op_type == "QuantizeLinear" and \
                len(producer.input) > 2 and producer.input[2] in self.constants:
            return self.constants[producer.input[2]].dtype
        return np.dtype(np.uint8)  # ONNX's default when the zero point is omitted

    def _layer_attrs(self, node: onnx.NodeProto, step: GemmStep, attrs: dict[str, Any]) -> None:
        if step.kind == "gemm":
            if attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0:
                raise _fail(node, "alpha and beta other than 1 are not supported")
            step.trans_a, step.trans_b = bool(attrs.get("transA", 0)), bool(
                attrs.get("transB", 0))
        for qt, what in ((step.x_q, "input"), (step.out_q, "output")):
            if qt is not None and np.asarray(qt.zero_point).size != 1:
                raise _fail(node, f"a per-axis {what} zero point is not supported")
        if step.kind == "conv":
            w = self.constants.get(step.w)
            if w is None or w.ndim != 4:
                raise _fail(node, "only 2-D convolutions with constant weights are supported")
            if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
                raise _fail(node, "auto_pad is not supported (give pads)")
            step.conv = {"kernel": tuple(w.shape[2:]),
                         "strides": tuple(attrs.get("strides", (1, 1))),
                         "pads": tuple(attrs.get("pads", (0, 0, 0, 0))),
                         "dilations": tuple(attrs.get("dilations", (1, 1))),
                         "group": int(attrs.get("group", 1))}

    def _check_host(self, node: onnx.NodeProto) -> None:
        attrs = _attrs(node)
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            if len(node.input) < 2 or node.input[1] not in self.constants:
                raise _fail(node, "the scale must be a constant")
            if len(node.input) > 2 and node.input[2]:
                zp = self._const(node, node.input[2], "zero point")
                if zp.dtype not in kernels.QRANGE and not (
                        node.op_type == "DequantizeLinear" and zp.dtype == np.int32):
                    raise _fail(node, f"data type {zp.dtype} is not supported (int8, uint8)")
        if node.op_type in ("MaxPool", "AveragePool"):
            if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
                raise _fail(node, "auto_pad is not supported (give pads)")
            if attrs.get("ceil_mode", 0):
                raise _fail(node, "ceil_mode = 1 is not supported")
            if len(attrs.get("kernel_shape", ())) != 2:
                raise _fail(node, "only 2-D pooling is supported")
        if node.op_type == "Reshape" and node.input[1] not in self.constants:
            raise _fail(node, "the shape must be a constant")

    # -- running ------------------------------------------------------------------------------

    @property
    def layers(self) -> list[GemmStep]:
        return [s for s in self.steps if isinstance(s, GemmStep)]

    def run(self, inputs: Mapping[str, NDArray[Any]] | NDArray[Any], device: Any,
            shadow: Any = None) -> tuple[list[NDArray[Any]], list[LayerStats]]:
        """Run the model on ``device`` (:func:`accelerator.connect`'s): its outputs in the
        graph's order and one :class:`LayerStats` per accelerator layer. ``shadow``, a model
        backend device, predicts the cycles of the same commands (the model's error)."""
        check_config(device.config)
        if not isinstance(inputs, Mapping):
            if len(self.inputs) != 1:
                raise ValueError(f"the model has {len(self.inputs)} inputs; give them by name")
            inputs = {self.inputs[0].name: inputs}
        env: dict[str, NDArray[Any]] = dict(self.constants)
        for value in self.inputs:
            if value.name not in inputs:
                raise ValueError(f"input {value.name!r} is missing")
            env[value.name] = np.asarray(inputs[value.name])
        stats: list[LayerStats] = []
        for step in self.steps:
            if isinstance(step, GemmStep):
                stats.append(_run_gemm(step, env, device, shadow))
            elif isinstance(step, QHostStep):
                env[step.output] = _run_qhost(step, env)
            else:
                outputs = _HOST[step.op_type](step, [env[i] if i else None for i in step.input],
                                              _attrs(step))
                env.update(zip(step.output, outputs, strict=False))
        return [env[name] for name in self.outputs], stats


# -- running a GEMM layer -------------------------------------------------------------------------


def _run_gemm(step: GemmStep, env: dict[str, NDArray[Any]], device: Any, shadow: Any
              ) -> LayerStats:
    started = time.perf_counter()
    x, w = env[step.x], env[step.w]
    zx = int(_value(env, step.x_q.zero_point).reshape(-1)[0])
    # one weight zero point per tensor, or one per output channel (per-axis quantization)
    zw_all = _value(env, step.w_q.zero_point).reshape(-1).astype(np.int64)
    xs, ws = _to_int8(x), _to_int8(w)
    zx -= 128 if x.dtype == np.uint8 else 0
    zw_all = zw_all - (128 if w.dtype == np.uint8 else 0)
    bias = env[step.bias].astype(np.int64) if step.bias else None

    # the operand matrices: A (M, K) per group, B (K, N) per group
    if step.kind == "conv":
        cv = step.conv
        n_img, channels = xs.shape[0], xs.shape[1]
        out_ch = ws.shape[0]
        g = cv["group"]
        a_all, oh, ow = kernels.im2col(xs, cv["kernel"], cv["strides"], cv["pads"],
                                       cv["dilations"], zx)
        kk = cv["kernel"][0] * cv["kernel"][1]
        cg, og = channels // g, out_ch // g
        groups = [(a_all[:, i * cg * kk:(i + 1) * cg * kk],
                   ws[i * og:(i + 1) * og].reshape(og, -1).T) for i in range(g)]
        batch_shape = None
    else:
        a_mat = xs.T if step.trans_a else xs
        b_mat = ws.T if step.trans_b else ws
        if b_mat.ndim != 2:
            raise ValueError(f"{step.name}: only a 2-D weight is supported")
        batch_shape = a_mat.shape[:-1]
        groups = [(a_mat.reshape(-1, a_mat.shape[-1]), b_mat)]
    outs = []
    stats = LayerStats(step.name, step.node.op_type, m=groups[0][0].shape[0],
                       k=groups[0][0].shape[1], n=groups[0][1].shape[1], groups=len(groups),
                       macs=sum(a.shape[0] * a.shape[1] * b.shape[1] for a, b in groups))
    params = None
    scale = None
    if step.out_q is not None:
        scale = kernels.ort_scale(_value(env, step.x_q.scale), _value(env, step.w_q.scale),
                                  divide=_value(env, step.out_q.scale).reshape(-1)[0])
        out_dtype = step.out_q.dtype
        zy = int(_value(env, step.out_q.zero_point).reshape(-1)[0])
        if scale.size == 1 and device.config.requant_unit and not step.float_conv:
            params = kernels.hardware_requant_exact(scale.reshape(-1)[0], zy, out_dtype,
                                                    step.relu)
        stats.requant = ("hardware" if params is not None else "host (float)" if step.float_conv
                         else "host")
    else:
        stats.requant = "none (int32 out)"
    for index, (a, b) in enumerate(groups):
        k = a.shape[1]
        c_in = np.zeros((a.shape[0], b.shape[1]), dtype=np.int64)
        if bias is not None and not step.float_conv:
            c_in += bias.reshape(-1)[index * b.shape[1]:(index + 1) * b.shape[1]][None, :]
        zw = zw_all if zw_all.size == 1 else zw_all[index * b.shape[1]:(index + 1) * b.shape[1]]
        if zx:
            c_in -= zx * b.sum(axis=0)[None, :]
        if zw.any():
            c_in -= a.sum(axis=1)[:, None] * zw[None, :]
            c_in += k * zx * zw[None, :]
        # wrap into int32 like onnxruntime's accumulator (the hardware wraps the same way)
        c_in = ((c_in + (1 << 31)) % (1 << 32)) - (1 << 31)
        cin_arg = c_in if c_in.any() else None
        result = device.matmul(a, b, c_in=cin_arg, requant=params)
        stats.accumulate |= cin_arg is not None
        last = device.last
        stats.commands += last.commands
        stats.cycles += last.cycles
        if shadow is not None:
            shadow.matmul(a, b, c_in=cin_arg, requant=params)
            stats.model_cycles += shadow.last.cycles
        else:
            stats.model_cycles += last.cycles
        stats.estimate_cycles += estimate(device.config, a.shape[0], k, b.shape[1]).cycles
        if params is not None:
            result = (result.astype(np.int32) + (128 if out_dtype == np.uint8 else 0)
                      ).astype(out_dtype)
        elif step.float_conv:
            result, near = _float_conv_output(step, env, a, b, zx, zw, result, images=n_img,
                                              groups=len(groups))
            stats.host_outputs += near
        elif step.out_q is not None:
            col_scale = scale if scale.size == 1 else scale.reshape(-1)[
                index * b.shape[1]:(index + 1) * b.shape[1]]
            result = kernels.ort_requant(result, col_scale, zy, out_dtype, step.relu)
        else:
            result = result.astype(np.int32)
        outs.append(result)
    y = np.concatenate(outs, axis=1) if len(outs) > 1 else outs[0]
    if step.kind == "conv":
        y = y.reshape(n_img, oh, ow, -1).transpose(0, 3, 1, 2)
    else:
        y = y.reshape(*batch_shape, y.shape[-1])
    env[step.output] = np.ascontiguousarray(y)
    stats.seconds = time.perf_counter() - started
    return stats


#: Unit roundoff of float32.
_U32 = 2.0 ** -24


def _float_conv_output(step: GemmStep, env: dict[str, NDArray[Any]], a: NDArray[np.int64],
                       b: NDArray[np.int64], zx: int, zw: NDArray[np.int64], acc: NDArray[Any],
                       *, images: int, groups: int) -> tuple[NDArray[Any], int]:
    """A convolution onnxruntime computes in float (:attr:`GemmStep.float_conv`), quantized as
    it is, from the accelerator's exact accumulators ``acc = Σ (a − zx)(b − zw)`` (no bias) of
    one group.

    onnxruntime's float result differs from the exact ``y = sx·sw·acc + bias`` by its
    roundings only: at most ``(2K + 16)·2⁻²⁴·(Σ|x·w| + |bias|)`` (the dequantized operands, K
    FMAs, the chunks' adds and the bias; ``Σ|x·w|`` bounded from the rows' and columns' sums
    and maxima). Where that interval, divided by the output scale, holds no rounding boundary
    (k + ½), the quantized value is ``round(y / sy)``; the other elements (a few near ties) are
    computed as MLAS computes them (:func:`kernels.mlas_dot`, in the K chunks of
    :func:`kernels.mlas_conv_chunks`), then quantized as QuantizeLinear does. Returns the
    quantized outputs and how many of them were recomputed."""
    assert step.out_q is not None
    sx = np.float32(_value(env, step.x_q.scale).reshape(-1)[0])
    sw = _value(env, step.w_q.scale).astype(np.float32).reshape(-1)
    sy = np.float32(_value(env, step.out_q.scale).reshape(-1)[0])
    zy = int(_value(env, step.out_q.zero_point).reshape(-1)[0])
    dtype = step.out_q.dtype
    m, k = a.shape
    n = b.shape[1]
    sw = np.broadcast_to(sw, (n,)) if sw.size == 1 else sw
    bias = (kernels.dequantize(env[step.bias].reshape(-1), _value(env, step.bias_scale), 0)
            if step.bias else np.zeros(n, np.float32))
    da = a - zx                                            # the quantized input's q − z
    db = b - zw.reshape(1, -1)                             # the weights' q − z
    scale = np.float64(sx) * sw.astype(np.float64)
    exact = acc.astype(np.float64) * scale[None, :] + bias.astype(np.float64)[None, :]
    ad, bd = np.abs(da), np.abs(db)
    total = np.minimum(ad.sum(axis=1)[:, None] * bd.max(axis=0)[None, :],
                       ad.max(axis=1)[:, None] * bd.sum(axis=0)[None, :]).astype(np.float64)
    bound = (2 * k + 16) * _U32 * 1.01 * (total * scale[None, :] + np.abs(bias)[None, :])
    value = exact / np.float64(sy)
    tie = np.abs(value - np.floor(value) - 0.5)
    near = tie <= bound / np.float64(sy) + 4 * _U32 * np.abs(value) + 1e-9
    if step.relu:
        value = np.maximum(value, 0.0)
    qmin, qmax = kernels.QRANGE[np.dtype(dtype)]
    out = np.clip(np.rint(value) + zy, qmin, qmax).astype(dtype)
    rows, cols = np.nonzero(near)
    if rows.size:
        cv = step.conv
        pixels = m // images
        direct = (tuple(cv["kernel"]) == (1, 1) and tuple(cv["strides"]) == (1, 1)
                  and not any(cv["pads"]))
        chunks = kernels.mlas_conv_chunks(images, groups, n, pixels, k, direct)
        if chunks is None:
            raise ValueError(f"{step.name}: a 1×1 output of a convolution onnxruntime computes "
                             f"in float is not reproduced (its GEMV kernel)")
        w_hat = (db.astype(np.float32) * sw[None, :]).astype(np.float32)   # DequantizeLinear
        per = chunks[rows % pixels]
        y = np.empty(rows.size, np.float32)
        for chunk in np.unique(per):
            sel = per == chunk
            x_hat = (da[rows[sel]].astype(np.float32) * sx).astype(np.float32)
            y[sel] = kernels.mlas_dot(x_hat, w_hat[:, cols[sel]].T, bias[cols[sel]], int(chunk))
        if step.relu:
            y = np.maximum(y, np.float32(0))
        out[rows, cols] = kernels.quantize(y, sy, np.array(zy), dtype)
    return out, int(rows.size)


def _to_uint8(q: NDArray[Any]) -> NDArray[np.uint8]:
    return (q.astype(np.int16) + 128).astype(np.uint8)


def _run_qhost(step: QHostStep, env: dict[str, NDArray[Any]]) -> NDArray[Any]:
    values = [(env[name], scale, zp) for name, scale, zp in step.inputs]
    attrs = _attrs(step.node)
    x, sx, zx = values[0]
    if step.op_type == "Add" and len(set(step.moved)) > 1:
        # int8 and uint8-moved tensors mixed: onnxruntime does not fuse the group and runs
        # DequantizeLinear, a float32 Add and QuantizeLinear, each exactly reproducible (the
        # move by 128 changes neither the dequantized values nor the quantized result)
        total = None
        for name, scale, zp in step.inputs:
            value = kernels.dequantize(env[name], scale, zp)
            total = value if total is None else (total + value).astype(np.float32)
        return kernels.quantize(total, step.out_scale, np.array(step.out_zp, np.int8), step.dtype)
    if step.op_type in ("Add", "AveragePool") and step.dtype == np.int8 and step.moved and \
            all(step.moved):
        # onnxruntime's x86 CPU graph moves int8 activations of QDQ pairs to uint8 (zero
        # points + 128: QDQS8ToU8Transformer); these two kernels add the zero point in float
        # before rounding, so the move changes ties: compute as they do, in uint8.
        moved = QHostStep(step.node, [(name, scale, zp + 128) for name, scale, zp in
                                      step.inputs], step.output, step.out_scale,
                          step.out_zp + 128, np.dtype(np.uint8))
        shifted = {name: _to_uint8(env[name]) for name, _, _ in step.inputs}
        result = _run_qhost(moved, shifted)
        return (result.astype(np.int16) - 128).astype(np.int8)
    if step.op_type == "Add":
        b, sb, zb = values[1]
        return kernels.qlinear_add(x, sx, zx, b, sb, zb, step.out_scale, step.out_zp, step.dtype)
    if step.op_type == "AveragePool":
        return kernels.qlinear_average_pool(x, sx, zx, step.out_scale, step.out_zp, step.dtype,
                                            attrs)
    if step.op_type == "GlobalAveragePool":
        return kernels.qlinear_global_average_pool(x, sx, zx, step.out_scale, step.out_zp,
                                                   step.dtype)
    return kernels.qlinear_softmax(x, sx, step.out_scale, step.out_zp, step.dtype,
                                   int(attrs.get("axis", -1)))


# -- host operators -------------------------------------------------------------------------------


def _axis_param(inputs: Sequence[Any], attrs: dict[str, Any]) -> int:
    return int(attrs.get("axis", 1))


def _quantize_op(node: onnx.NodeProto, inputs: Sequence[Any], attrs: dict[str, Any]) -> list:
    x, scale = inputs[0], inputs[1]
    zp = inputs[2] if len(inputs) > 2 and inputs[2] is not None else np.array(0, np.uint8)
    return [kernels.quantize(x, scale, zp, zp.dtype, _axis_param(inputs, attrs))]


def _dequantize_op(node: onnx.NodeProto, inputs: Sequence[Any], attrs: dict[str, Any]) -> list:
    q, scale = inputs[0], inputs[1]
    zp = inputs[2] if len(inputs) > 2 and inputs[2] is not None else np.array(0, q.dtype)
    return [kernels.dequantize(q, scale, zp, _axis_param(inputs, attrs))]


def _relu(node: onnx.NodeProto, inputs: Sequence[Any], attrs: dict[str, Any]) -> list:
    x = inputs[0]
    return [np.maximum(x, np.zeros((), x.dtype))]


def _add(node: onnx.NodeProto, inputs: Sequence[Any], attrs: dict[str, Any]) -> list:
    a, b = inputs
    return [(a + b).astype(np.result_type(a, b))]


def _reshape(node: onnx.NodeProto, inputs: Sequence[Any], attrs: dict[str, Any]) -> list:
    x, shape = inputs[0], [int(s) for s in inputs[1]]
    if not attrs.get("allowzero", 0):
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return [x.reshape(shape)]


def _flatten(node: onnx.NodeProto, inputs: Sequence[Any], attrs: dict[str, Any]) -> list:
    x = inputs[0]
    axis = int(attrs.get("axis", 1)) % (x.ndim + 1) if x.ndim else 0
    return [x.reshape(int(np.prod(x.shape[:axis], dtype=np.int64)), -1)]


def _transpose(node: onnx.NodeProto, inputs: Sequence[Any], attrs: dict[str, Any]) -> list:
    perm = attrs.get("perm")
    return [np.ascontiguousarray(np.transpose(inputs[0], perm))]


def _pool_windows(x: NDArray[Any], attrs: dict[str, Any], pad_value: Any) -> NDArray[Any]:
    kernel = tuple(attrs["kernel_shape"])
    strides = tuple(attrs.get("strides", (1, 1)))
    pads = tuple(attrs.get("pads", (0, 0, 0, 0)))
    dil = tuple(attrs.get("dilations", (1, 1)))
    padded = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])),
                    constant_values=pad_value)
    eh, ew = (kernel[0] - 1) * dil[0] + 1, (kernel[1] - 1) * dil[1] + 1
    oh = (padded.shape[2] - eh) // strides[0] + 1
    ow = (padded.shape[3] - ew) // strides[1] + 1
    win = np.lib.stride_tricks.sliding_window_view(padded, (eh, ew), axis=(2, 3))
    return win[:, :, ::strides[0], ::strides[1], ::dil[0], ::dil[1]][:, :, :oh, :ow]


def _maxpool(node: onnx.NodeProto, inputs: Sequence[Any], attrs: dict[str, Any]) -> list:
    x = inputs[0]
    low = np.iinfo(x.dtype).min if x.dtype.kind in "iu" else -np.inf
    return [_pool_windows(x, attrs, low).max(axis=(-2, -1)).astype(x.dtype)]


def _avgpool(node: onnx.NodeProto, inputs: Sequence[Any], attrs: dict[str, Any]) -> list:
    x = inputs[0].astype(np.float32)
    win = _pool_windows(x, attrs, 0.0)
    total = win.sum(axis=(-2, -1), dtype=np.float32)
    if attrs.get("count_include_pad", 0) or not any(attrs.get("pads", (0,))):
        count = np.float32(win.shape[-1] * win.shape[-2])
    else:
        ones = _pool_windows(np.ones_like(x[:1, :1]), attrs, 0.0)
        count = ones.sum(axis=(-2, -1), dtype=np.float32)
    return [(total / count).astype(np.float32)]


def _global_avgpool(node: onnx.NodeProto, inputs: Sequence[Any], attrs: dict[str, Any]) -> list:
    x = inputs[0].astype(np.float32)
    size = np.float32(x.shape[2] * x.shape[3])
    return [(x.sum(axis=(2, 3), keepdims=True, dtype=np.float32) / size).astype(np.float32)]


def _softmax(node: onnx.NodeProto, inputs: Sequence[Any], attrs: dict[str, Any]) -> list:
    x = inputs[0].astype(np.float32)
    axis = int(attrs.get("axis", -1))
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return [(e / e.sum(axis=axis, keepdims=True)).astype(np.float32)]


_HOST: dict[str, Callable[..., list]] = {
    "QuantizeLinear": _quantize_op,
    "DequantizeLinear": _dequantize_op,
    "Relu": _relu,
    "Add": _add,
    "Reshape": _reshape,
    "Flatten": _flatten,
    "Transpose": _transpose,
    "MaxPool": _maxpool,
    "AveragePool": _avgpool,
    "GlobalAveragePool": _global_avgpool,
    "Softmax": _softmax,
}
