"""The control stage (check the command, size the chunks, run, finish) and the counters."""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ...config import AcceleratorConfig
from ...model.geometry import Geometry
from ...model.regmap import DIM_WIDTH
from ..serialmul import SerialMulAdd
from .command import EngineError, check_command, command_layout, const_mul, log2, out_row_bytes
from .signatures import ControlSignature, CountersSignature, RunSignature

__all__ = ["Control", "PerfCounters"]


class Control(wiring.Component):
    """Latches the command on ``start``, checks it, computes the chunk and the address steps
    per chunk, restarts every stage, runs until the store has finished and the DMA's writes
    are answered, and ends with ``done``.

    The set-up products go through one serial multiplier, a state each (its cycles are in
    docs/performance-model.md): first where the four areas end, for the range check, then (ws,
    where the chunk is known only after SETUP) the address steps per chunk.

    Members
    -------
    cmd : In(command_layout())
    control : Out(ControlSignature())
    run : Out(RunSignature())
        To every other stage.
    started : Out(1)
        The cycle a command is accepted (the counters clear).
    finished : In(1)
        The store's: the last row has left.
    dma_busy, dma_error : In(1)
        The DMA still has writes in flight; an AXI response was an error.
    """

    def __init__(self, config: AcceleratorConfig):
        self._config = config
        super().__init__({
            "cmd": In(command_layout()), "control": Out(ControlSignature()),
            "run": Out(RunSignature()), "started": Out(1), "finished": In(1),
            "dma_busy": In(1), "dma_error": In(1),
        })

    def elaborate(self, platform) -> Module:
        cfg = self._config
        geo = Geometry.of(cfg)
        R, B = cfg.rows, cfg.axi_bytes
        lb = log2(B)
        os_flow = cfg.dataflow == "os"
        m = Module()
        run, ctl = self.run, self.control
        c, chunk = run.cmd, run.chunk
        error = Signal(8)
        used = Signal(32)            # setup: words of half the A scratchpad given to rows
        beyond = Signal(4)           # the A, B, C and C_in areas end past 4 GiB
        m.d.comb += [ctl.error.eq(error), run.split.eq(c.k > geo.k_step)]
        m.submodules.setup_mul = mul = SerialMulAdd(a_width=DIM_WIDTH, b_width=32)
        launched = Signal()

        def product(name: str, after: str, a, b, addend, sink, needed=None):
            def go():
                with m.If(~launched):
                    m.d.comb += [mul.start.eq(1), mul.a.eq(a), mul.b.eq(b),
                                 mul.addend.eq(addend)]
                    m.d.sync += launched.eq(1)
                with m.Elif(~mul.busy):
                    m.d.sync += [sink(mul.result), launched.eq(0)]
                    m.next = after

            with m.State(name):
                if needed is None:
                    go()
                else:
                    with m.If(needed):
                        go()
                    with m.Else():
                        m.next = after

        def ends_beyond(i: int):
            return lambda end: beyond[i].eq(end > (1 << 32))

        out_row = out_row_bytes(c.requant, c.n)
        early = Signal(8)
        m.d.sync += early.eq(check_command(m, c, Const(0, 4), requant_unit=cfg.requant_unit))
        if os_flow:  # the chunk is R rows: constant steps, no set-up cycles
            m.d.comb += [run.chunk_lda.eq(const_mul(c.lda, R)),
                         run.chunk_ldc.eq(const_mul(c.ldc, R)),
                         run.chunk_ldcin.eq(const_mul(c.ldcin, R))]
        with m.FSM(name="control") as fsm:
            with m.State("IDLE"):
                with m.If(ctl.start):
                    m.d.comb += self.started.eq(1)
                    m.d.sync += [c.eq(self.cmd), error.eq(0), beyond.eq(0), launched.eq(0)]
                    m.next = "RANGE_A"
            product("RANGE_A", "RANGE_B", c.m - 1, c.lda, c.a_addr + c.k, ends_beyond(0))
            product("RANGE_B", "RANGE_C", c.k - 1, c.ldb, c.b_addr + c.n, ends_beyond(1))
            product("RANGE_C", "RANGE_CIN", c.m - 1, c.ldc, c.c_addr + out_row, ends_beyond(2))
            product("RANGE_CIN", "CHECK", c.m - 1, c.ldcin, c.cin_addr + (c.n << 2),
                    ends_beyond(3), needed=c.accumulate)
            with m.State("CHECK"):
                # The checks of the command alone are registers, decoded while the range
                # products run (the command is latched at least as many cycles before CHECK):
                # decoded here, its compares and their priority ended the board tops' longest
                # path. Only the range check, the lowest priority, is decided in CHECK.
                code = Mux(early != 0, early,
                           Mux(beyond.any(), EngineError.ADDR_RANGE, 0))
                k_fit = Mux(run.split, geo.k_step, c.k)
                m.d.sync += [error.eq(code), run.words.eq((k_fit + B - 1) >> lb), used.eq(0),
                             chunk.eq(R if os_flow else 0)]
                with m.If(code != 0):
                    m.next = "FINISH"
                with m.Else():
                    m.next = "START" if os_flow else "SETUP"
            if not os_flow:
                with m.State("SETUP"):
                    # the rows half the A scratchpad holds, by counting (no divider)
                    room = ((used + run.words <= geo.a_half) & (chunk < c.m)
                            & (chunk < geo.c_half))
                    with m.If(room):
                        m.d.sync += [used.eq(used + run.words), chunk.eq(chunk + 1)]
                    with m.Else():
                        m.next = "STEP_A"
                product("STEP_A", "STEP_C", chunk, c.lda, 0, run.chunk_lda.eq)
                product("STEP_C", "STEP_CIN", chunk, c.ldc, 0, run.chunk_ldc.eq)
                product("STEP_CIN", "START", chunk, c.ldcin, 0, run.chunk_ldcin.eq,
                        needed=c.accumulate)
            with m.State("START"):
                m.d.comb += run.restart.eq(1)
                m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += run.running.eq(1)
                with m.If(self.dma_error):
                    m.d.sync += error.eq(EngineError.BUS_ERROR)
                with m.If(self.finished & ~self.dma_busy):
                    m.next = "FINISH"
            with m.State("FINISH"):
                m.d.comb += ctl.done.eq(1)
                m.next = "IDLE"
        m.d.comb += ctl.busy.eq(~fsm.ongoing("IDLE"))
        return m


class PerfCounters(wiring.Component):
    """The counters of :class:`CountersSignature`, for both engines: cleared on ``clear``, then
    each counts the cycles its event is high in (an event in the clearing cycle counts).

    Members
    -------
    clear, busy, mac, stall_load, stall_store : In(1)
    counters : Out(CountersSignature())
    """

    def __init__(self):
        super().__init__({"clear": In(1), "busy": In(1), "mac": In(1), "stall_load": In(1),
                          "stall_store": In(1), "counters": Out(CountersSignature())})

    def elaborate(self, platform) -> Module:
        m = Module()
        for event, counter in ((self.busy, self.counters.cycles),
                               (self.mac, self.counters.mac_cycles),
                               (self.stall_load, self.counters.stall_load),
                               (self.stall_store, self.counters.stall_store)):
            with m.If(self.clear):
                m.d.sync += counter.eq(0)
            with m.If(event):
                m.d.sync += counter.eq(counter + 1)
        return m
