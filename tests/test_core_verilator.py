"""The systolic core in Verilator, driven by cocotb and checked against the reference model.

Each parameter set builds in its own directory (cached by digest), so the cases run in parallel
under pytest-xdist. The bench itself is verification/core_tb.py.
"""

from __future__ import annotations

import pytest

from accelerator.config import AcceleratorConfig
from accelerator.flow.sim import build_model, run_tests

SIZES = [(1, 1), (2, 3), (4, 4), (8, 8), (16, 16)]


@pytest.mark.verilator
@pytest.mark.parametrize("dataflow", ["os", "ws"])
@pytest.mark.parametrize("rows,cols", SIZES, ids=[f"{r}x{c}" for r, c in SIZES])
def test_core_in_verilator(rows, cols, dataflow, seed, build_root):
    config = AcceleratorConfig(rows=rows, cols=cols, dataflow=dataflow)
    model = build_model(config, root=build_root)
    outcome = run_tests(model, "core_tb", seed=seed)
    assert outcome.ok, (f"ACCEL_SEED={seed}: {outcome.failed} failed: {outcome.failures}; "
                        f"log: {outcome.log}")
    assert outcome.passed == 7


@pytest.mark.verilator
@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_core_elaborated_for_an_ecp5_in_verilator(dataflow, seed, build_root):
    # there the enable's copies are TRELLIS_FF instances, simulated with yosys's model of the
    # cell: the core the bitstream is built from, back-pressure and all
    config = AcceleratorConfig(rows=4, cols=4, dataflow=dataflow)
    model = build_model(config, root=build_root, board="ulx3s-85f")
    assert "TRELLIS_FF" in model.verilog.read_text()
    outcome = run_tests(model, "core_tb", seed=seed)
    assert outcome.ok, (f"ACCEL_SEED={seed}: {outcome.failed} failed: {outcome.failures}; "
                        f"log: {outcome.log}")
    assert outcome.passed == 7


@pytest.mark.verilator
def test_a_wrong_model_is_caught(seed, build_root, monkeypatch):
    """The bench must fail when the hardware and the model disagree: a 16-bit accumulator
    config checked against a bench that believes in 32 bits wraps differently."""
    config = AcceleratorConfig(rows=2, cols=2, acc_width=16)
    model = build_model(config, root=build_root)
    lying = AcceleratorConfig(rows=2, cols=2, acc_width=32)
    model.config = lying
    outcome = run_tests(model, "core_tb", seed=seed, testcase="long_streams_and_wraparound",
                        results_name="wrong_model")
    assert outcome.failed == 1
    assert "differs" in next(iter(outcome.failures.values()))
