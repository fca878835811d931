"""Int8 ONNX models on the accelerator: ``accel infer`` and this API.

::

    from accelerator import AcceleratorConfig, connect
    from accelerator.nn import load

    net = load("model_int8.onnx")          # checks every node; UnsupportedModel names the first
    with connect(AcceleratorConfig(rows=8, cols=8), backend="rtl") as dev:
        outputs, layers = net.run(x, dev)  # outputs as onnxruntime's; per-layer cycles

The lowering is in :mod:`.graph`, its arithmetic in :mod:`.kernels`, the report in
:mod:`.report`, the digits demos in :mod:`.demo`; docs/networks.md says why it is bit-exact.
"""

from __future__ import annotations

from pathlib import Path

import onnx

from .graph import (
    GEMM_OPS,
    HOST_OPS,
    QOPERATOR_HOST_OPS,
    QOPERATOR_OPS,
    LayerStats,
    Network,
    UnsupportedModel,
)

__all__ = ["GEMM_OPS", "HOST_OPS", "QOPERATOR_HOST_OPS", "QOPERATOR_OPS", "LayerStats", "Network",
           "UnsupportedModel", "load"]


def load(model: onnx.ModelProto | str | Path) -> Network:
    """A model (a path or an ``onnx.ModelProto``) lowered for the accelerator; raises
    :class:`UnsupportedModel` (one line naming the node and its operator) before anything runs."""
    return Network(model)
