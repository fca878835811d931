"""Design-space exploration: ``accel sweep`` over config parameters × workloads × fidelities.

* :mod:`.space`: ``--param NAME=VALUES`` parsing and the cartesian product of configs.
* :mod:`.workloads`: GEMM shapes, workload files and bundled networks as lists of GEMM layers.
* :mod:`.store`: one JSON file per finished point, written atomically; what makes a sweep resume.
* :mod:`.runner`: evaluating points (``model``, ``rtl``, ``synth``) and running them on a local
  process pool or a Dask cluster, each failure caught and recorded.
* :mod:`.table`: the records as one table (CSV and JSON); :mod:`.plots`: the figures.
"""

from __future__ import annotations

from .runner import FIDELITIES, PointSpec, SweepResult, plan_points, run_sweep
from .space import Param, SpaceError, expand, parse_param
from .store import Store
from .workloads import BUNDLED, Layer, Workload, WorkloadError, load_workload, parse_gemm

__all__ = [
    "BUNDLED",
    "FIDELITIES",
    "Layer",
    "Param",
    "PointSpec",
    "SpaceError",
    "Store",
    "SweepResult",
    "Workload",
    "WorkloadError",
    "expand",
    "load_workload",
    "parse_gemm",
    "parse_param",
    "plan_points",
    "run_sweep",
]
