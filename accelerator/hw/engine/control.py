"""The control stage (check the command, size the chunks, run, finish) and the counters."""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ...config import AcceleratorConfig
from ...model.geometry import Geometry
from ...model.regmap import DIM_WIDTH, ERROR_WIDTH
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
        error = Signal(ERROR_WIDTH)
        used = Signal(32)            # setup: words of half the A scratchpad given to rows
        beyond = Signal(4)           # the A, B, C and C_in areas end past 4 GiB
        m.d.comb += [ctl.error.eq(error), run.split.eq(c.k > geo.k_step)]
        m.submodules.setup_mul = mul = SerialMulAdd(a_width=DIM_WIDTH, b_width=32)
        # The multiplier's start and operands are registers, set as the FSM enters a product's
        # state: selected in that state, the state's decode fanned out to every operand bit of
        # the multiplier (the OrangeCrab board top's longest path). The cycles are the same.
        launch = Signal()
        op_a, op_b, op_add = Signal(len(mul.a)), Signal(len(mul.b)), Signal(len(mul.addend))
        m.d.comb += [mul.start.eq(launch), mul.a.eq(op_a), mul.b.eq(op_b),
                     mul.addend.eq(op_add)]
        m.d.sync += launch.eq(0)
        operands = {}  # a product's state: its operands from a command, and whether it runs

        def enter(name: str, cmd=c):
            m.next = name
            if name in operands:
                a, b, addend, needed = operands[name](cmd)
                m.d.sync += [op_a.eq(a), op_b.eq(b), op_add.eq(addend), launch.eq(needed)]

        def product(name: str, after: str, sink, needed=None):
            with m.State(name):
                ready = ~launch & ~mul.busy
                with m.If(ready if needed is None else ready | ~needed):
                    if needed is None:
                        m.d.sync += sink(mul.result)
                    else:
                        with m.If(needed):
                            m.d.sync += sink(mul.result)
                    enter(after)

        def ends_beyond(i: int):
            return lambda end: beyond[i].eq(end > (1 << 32))

        operands.update({
            "RANGE_A": lambda x: (x.m - 1, x.lda, x.a_addr + x.k, 1),
            "RANGE_B": lambda x: (x.k - 1, x.ldb, x.b_addr + x.n, 1),
            "RANGE_C": lambda x: (x.m - 1, x.ldc, x.c_addr + out_row_bytes(x.requant, x.n), 1),
            "RANGE_CIN": lambda x: (x.m - 1, x.ldcin, x.cin_addr + (x.n << 2), x.accumulate),
            "STEP_A": lambda x: (chunk, x.lda, 0, 1),
            "STEP_C": lambda x: (chunk, x.ldc, 0, 1),
            "STEP_CIN": lambda x: (chunk, x.ldcin, 0, x.accumulate),
        })
        early = Signal(ERROR_WIDTH)
        m.d.sync += early.eq(check_command(m, c, Const(0, 4), requant_unit=cfg.requant_unit))
        if os_flow:  # the chunk is R rows: constant steps, no set-up cycles
            m.d.comb += [run.chunk_lda.eq(const_mul(c.lda, R)),
                         run.chunk_ldc.eq(const_mul(c.ldc, R)),
                         run.chunk_ldcin.eq(const_mul(c.ldcin, R))]
        with m.FSM(name="control") as fsm:
            with m.State("IDLE"):
                with m.If(ctl.start):
                    m.d.comb += self.started.eq(1)
                    m.d.sync += [c.eq(self.cmd), error.eq(0), beyond.eq(0)]
                    enter("RANGE_A", self.cmd)
            product("RANGE_A", "RANGE_B", ends_beyond(0))
            product("RANGE_B", "RANGE_C", ends_beyond(1))
            product("RANGE_C", "RANGE_CIN", ends_beyond(2))
            product("RANGE_CIN", "CHECK", ends_beyond(3), needed=c.accumulate)
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
                        enter("STEP_A")
                product("STEP_A", "STEP_C", run.chunk_lda.eq)
                product("STEP_C", "STEP_CIN", run.chunk_ldc.eq)
                product("STEP_CIN", "START", run.chunk_ldcin.eq, needed=c.accumulate)
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
