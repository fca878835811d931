"""The performance model against the RTL's cycles: `tools/validate_model.py`, reduced (slower tier).

Each dataflow's 4×4 model is built once (cached by digest under the build root) and one
simulation runs a handful of shapes: tiny, odd, a K walked in steps, accumulate and requantize.
The estimate with the bench's layout must be within the model's tolerance on every one, and the
estimate without a layout wherever :func:`accelerator.model.perf.covered` says it holds.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from accelerator.model.perf import TOLERANCE

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import validate_model

pytestmark = pytest.mark.verilator

#: Small enough for CI (about 20,000 simulated cycles per dataflow), and each shape exercises a
#: different part of the timeline: the fixed latencies and set-up, odd sizes, B panels of
#: unaligned rows, K walked in steps, the C_in port conflict, the requantizer's pipeline, and
#: the C-claim loop of a short K.
SHAPES = ["1x1x1", "37x29x41", "5x300x7", "5x520x6", "32x64x32+acc", "37x29x41+acc+rq",
          "256x16x8"]


@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_model_within_tolerance_of_rtl(build_root, dataflow):
    config = validate_model.parse_config(f"4x4:{dataflow}:64")
    points = validate_model.validate([config], SHAPES, build_root, log=lambda text: None)
    assert [p.shape for p in points] == SHAPES
    assert all(p.passed for p in points), [p.shape for p in points if not p.passed]
    table = validate_model.table(points)
    assert max(abs(p.error) for p in points) <= TOLERANCE, table
    assert not [p for p in points if p.bad], table


#: The compact engine's model is exact (docs/performance-model.md, "The compact engine"): one
#: tile, tiles at the edges of M and N, K longer than the array, accumulate, two bus widths.
COMPACT_SHAPES = ["1x1x1", "4x10x4", "5x10x5+acc", "37x29x41", "7x9x5+acc", "3x70x2"]


@pytest.mark.parametrize("spec", ["4x4:os:32:engine=compact:requant_unit=false",
                                  "3x2:os:64:engine=compact:requant_unit=false"])
def test_compact_model_exact(build_root, spec):
    config = validate_model.parse_config(spec)
    points = validate_model.validate([config], COMPACT_SHAPES, build_root, log=lambda text: None)
    assert all(p.passed for p in points), [p.shape for p in points if not p.passed]
    assert [(p.shape, p.model) for p in points] == [(p.shape, p.rtl) for p in points], \
        validate_model.table(points)
