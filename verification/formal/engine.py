"""The GEMM engine (:class:`~accelerator.hw.engine.GemmEngine`) ends an illegal command in a
bounded number of cycles without touching the bus.

The engine runs on its own (its DMA streams are free inputs: whatever the DMA side does), from
reset, with a small configuration. One ``start`` is given, in the first cycle, with any command
whose M, K or N is 0 or larger than :data:`~accelerator.hw.registers.MAX_DIM` (the other fields
are free). Then:

* ``done`` pulses within the bound, and once;
* ``error`` is ``ZERO_DIM`` when a dimension is 0, else ``TOO_LARGE`` (the register map's
  priority);
* no DMA command is offered (``rd_cmd.valid`` and ``wr_cmd.valid`` stay low) from start to done.

The bound is the performance model's: the start cycle, the set-up products of the longest
possible operands (16-bit, :func:`accelerator.model.perf._setup_cycles`) and the control states.
"""

from __future__ import annotations

from amaranth.hdl import Assert, Assume, Cover, Module, Mux, Signal

from ...config import AcceleratorConfig
from ...hw.engine import EngineError, GemmEngine
from ...hw.registers import MAX_DIM
from ...model.perf import _CONTROL, _setup_cycles
from .harness import FormalHarness

__all__ = ["ENGINE_CONFIG", "engine_bound", "engine_harness"]

#: Small enough for the solver: a 2×2 array, small scratchpads, a 32-bit bus.
ENGINE_CONFIG = AcceleratorConfig(rows=2, cols=2, requant_unit=False, axi_data_width=32,
                                  spad_a_depth=64, spad_b_depth=16, spad_c_depth=16)


def engine_bound(config: AcceleratorConfig = ENGINE_CONFIG) -> int:
    """Cycles from ``start`` to ``done`` an illegal command takes at most: the dimensions the
    set-up multiplier sees are 16 bits wide, so 2**16 is past the longest."""
    return 1 + _setup_cycles(config.dataflow == "os", 1 << 16, 1 << 16, config.rows, True) \
        + _CONTROL


def engine_harness(config: AcceleratorConfig = ENGINE_CONFIG) -> FormalHarness:
    bound = engine_bound(config)

    def properties(m: Module, dut: GemmEngine, h: FormalHarness) -> None:
        cmd = dut.cmd
        zero = (cmd.m == 0) | (cmd.k == 0) | (cmd.n == 0)
        large = (cmd.m > MAX_DIM) | (cmd.k > MAX_DIM) | (cmd.n > MAX_DIM)
        started = Signal(name="f_started")
        ended = Signal(name="f_ended")
        was_zero = Signal(name="f_zero")
        elapsed = Signal(range(bound + 2), name="f_elapsed")
        # The start comes in the first cycle after reset: any later one is the same command
        # from the same idle state, and a fixed start leaves the solver only the command.
        m.d.comb += Assume(dut.start == ~h.past_valid, "one start, in the first cycle")
        with m.If(dut.start):
            m.d.comb += Assume(zero | large, "an illegal command")
            m.d.sync += [started.eq(1), was_zero.eq(zero)]
        m.d.comb += Assume(~dut.dma_busy & ~dut.dma_error, "the DMA is idle")
        with m.If(started & ~ended):
            m.d.sync += elapsed.eq(elapsed + 1)
            m.d.sync += [
                Assert(~dut.rd_cmd.valid & ~dut.wr_cmd.valid, "no DMA command for an illegal one"),
                Assert(elapsed < bound, f"done within {bound} cycles of start"),
            ]
            with m.If(dut.done):
                m.d.sync += [
                    ended.eq(1),
                    Assert(dut.error == Mux(was_zero, EngineError.ZERO_DIM,
                                            EngineError.TOO_LARGE),
                           "the error code of the register map's priority"),
                ]
        with m.If(ended | ~started):
            m.d.sync += Assert(~dut.done, "done only once, and only after start")
        m.d.comb += Cover(dut.done, "an illegal command ends")

    return FormalHarness(GemmEngine(config), properties)
