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

from amaranth.hdl import Array, Assert, Assume, Cover, Module, Mux, Signal

from ...config import AcceleratorConfig
from ...hw.engine import EngineError, GemmEngine
from ...hw.registers import MAX_DIM
from ...model.perf import _CONTROL, _setup_cycles
from .harness import FormalHarness, past

__all__ = ["ENGINE_CONFIG", "engine_bound", "engine_gemm_harness", "engine_harness", "gemm_bound"]

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


def gemm_bound(config: AcceleratorConfig = ENGINE_CONFIG) -> int:
    """The performance model's cycles for a 1×1×1 GEMM: a bound for an ideal DMA."""
    from ...model.perf import estimate

    return estimate(config, 1, 1, 1).cycles


def engine_gemm_harness(config: AcceleratorConfig = ENGINE_CONFIG, *,
                        fair: bool = False) -> FormalHarness:
    """A legal 1×1×1 GEMM ends: from reset, one start in the first cycle with M = K = N = 1,
    no accumulate or requant, any addresses and strides below 1 MiB that pass the checks
    (C and its stride 4-byte aligned, strides at least a row); the DMA is ideal (takes every
    command and write beat at once, returns each read command's beats, realigned as
    :class:`~accelerator.hw.dma.DMAReader` does, back to back from the next cycle). Asserted:
    ``done`` with no error within the performance model's cycles (:func:`gemm_bound`), and the
    accumulator takes every result of the array in the cycle it shows
    (``GemmEngine.results_refused`` stays low).

    ``fair=True``: the DMA may stall each of its four handshakes (read command, read beat,
    write command, write beat), but never two cycles in a row; the bound is then twice the
    model's."""
    bound = gemm_bound(config) * (2 if fair else 1)
    b = config.axi_bytes
    depth = 4  # read commands the model holds (the engine's route FIFO has 4 entries)

    def properties(m: Module, dut: GemmEngine, h: FormalHarness) -> None:
        cmd = dut.cmd
        m.d.comb += Assume(dut.start == ~h.past_valid, "one start, in the first cycle")
        small = [cmd.a_addr, cmd.b_addr, cmd.c_addr, cmd.lda, cmd.ldb, cmd.ldc]
        with m.If(dut.start):
            m.d.comb += [
                Assume((cmd.m == 1) & (cmd.k == 1) & (cmd.n == 1), "a 1×1×1 GEMM"),
                Assume(~cmd.accumulate & ~cmd.requant, "C = A·B, int32"),
                Assume((cmd.lda >= 1) & (cmd.ldb >= 1) & (cmd.ldc >= 4), "strides of a row"),
                Assume((cmd.c_addr[:2] == 0) & (cmd.ldc[:2] == 0), "C aligned"),
            ]
            for v in small:
                m.d.comb += Assume(v < (1 << 20), "below 1 MiB")
        # -- the ideal DMA -----------------------------------------------------------------
        m.d.comb += Assume(~dut.dma_busy & ~dut.dma_error, "writes complete at once")
        stalls = [(dut.rd_cmd.valid & ~dut.rd_cmd.ready, "read command"),
                  (dut.wr_cmd.valid & ~dut.wr_cmd.ready, "write command"),
                  (dut.wr_data.valid & ~dut.wr_data.ready, "write beat")]
        rows_q = Array(Signal(16, name=f"f_rows_{i}") for i in range(depth))
        bytes_q = Array(Signal(20, name=f"f_bytes_{i}") for i in range(depth))
        head = Signal(range(depth), name="f_rd_head")
        tail = Signal(range(depth), name="f_rd_tail")
        count = Signal(range(depth + 1), name="f_rd_count")
        row = Signal(16, name="f_rd_row")
        offset = Signal(20, name="f_rd_offset")   # bytes of the row already returned
        push = dut.rd_cmd.valid & dut.rd_cmd.ready & (dut.rd_cmd.payload.rows != 0) \
            & (dut.rd_cmd.payload.row_bytes != 0)
        with m.If(push):
            m.d.sync += [rows_q[tail].eq(dut.rd_cmd.payload.rows),
                         bytes_q[tail].eq(dut.rd_cmd.payload.row_bytes), tail.eq(tail + 1)]
        rd = dut.rd_data
        left = Signal(20, name="f_rd_left")
        m.d.comb += left.eq(bytes_q[head] - offset)
        last = left <= b
        end = last & (row == rows_q[head] - 1)
        stalls.append(((count != 0) & ~rd.valid, "read beat"))
        for stall, what in stalls:
            if fair:
                before = past(m, stall, what.replace(" ", "_"))
                m.d.comb += Assume(~(stall & before), f"a {what} stalls one cycle at most")
            else:
                m.d.comb += Assume(~stall, f"a {what} never stalls")
        m.d.comb += [
            Assume(~rd.valid | (count != 0), "beats only for a command"),
            Assume(rd.payload.bytes == Mux(last, left, b), "the beat's bytes"),
            Assume(rd.payload.first == (offset == 0), "a row's first beat"),
            Assume(rd.payload.last == last, "a row's last beat"),
            Assume(rd.payload.end == end, "the command's last beat"),
        ]
        pop = rd.valid & rd.ready & end
        with m.If(rd.valid & rd.ready):
            with m.If(last):
                m.d.sync += [offset.eq(0), row.eq(Mux(end, 0, row + 1))]
            with m.Else():
                m.d.sync += offset.eq(offset + b)
        with m.If(pop):
            m.d.sync += head.eq(head + 1)
        m.d.sync += count.eq(count + push - pop)
        m.d.sync += Assert(count <= depth, f"at most {depth} read commands outstanding")
        # the core is built without back-pressure: the accumulator must take every result
        m.d.comb += Assert(~dut.results_refused, "every result of the array is taken at once")
        # -- the command ends ------------------------------------------------------------------
        ended = Signal(name="f_ended")
        elapsed = Signal(range(bound + 2), name="f_elapsed")
        with m.If(~ended):
            m.d.sync += [elapsed.eq(elapsed + 1),
                         Assert(elapsed < bound, f"done within {bound} cycles of start")]
        with m.If(dut.done):
            m.d.sync += [ended.eq(1), Assert(dut.error == 0, "a legal command ends without error")]
        m.d.comb += Cover(dut.done, "the GEMM ends")

    return FormalHarness(GemmEngine(config), properties)
