"""The complete accelerator: registers, GEMM engine and DMA behind two AXI ports.

This is the block a chip team drops into an SoC: an AXI4-Lite slave for software (the register
map of :mod:`accelerator.hw.registers`), an AXI4 master to memory, and an interrupt line.
"""

from __future__ import annotations

from amaranth.hdl import Cat, ClockDomain, ClockSignal, DomainRenamer, Module, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from ..config import AcceleratorConfig
from ..model.geometry import Geometry
from ..model.regmap import COMMAND, accelerator_width_error, register
from .axi import AXI4Signature
from .axil import AXI4LiteSignature
from .compact import READS_IN_FLIGHT, CommandReadSignature, CompactEngine
from .dma import AXI4_MAX_BURST, DMA, OUTSTANDING
from .engine import GemmEngine
from .engine.signatures import CountersSignature, TrafficSignature, view
from .pe import pipelined_on
from .registers import ADDR_WIDTH, RegisterBlock

__all__ = ["Accelerator", "abort_bound"]


def abort_bound(config: AcceleratorConfig, *, latency: int, wait: int = 0) -> int:
    """Cycles from a write of ``CTRL.reset`` (the register block's ``abort`` pulse) until
    ``STATUS.busy`` is low, at most, on a bus whose slave answers a request's first beat (a
    read's data, a write's response) at most ``latency`` cycles after it can, and holds any other
    handshake (AR, AW, W ready; R, B valid) at most ``wait`` cycles.

    The abort requests nothing new and finishes what is requested. The pipelined engine's DMA
    has at most :data:`~accelerator.hw.dma.OUTSTANDING` read and as many write bursts in flight,
    each of at most ``beats`` beats (its longest row: a K step of A or 4·C bytes of C or C_in,
    one beat more when unaligned, at most 256); reads and writes finish side by side, each burst
    within ``latency + (wait + 1)·(beats + 1)`` cycles of the one before. The compact engine has
    at most :data:`~accelerator.hw.compact.READS_IN_FLIGHT` single-beat reads, or one C_in read,
    or one write, in flight: each within ``latency + 2·(wait + 1)``. Seven cycles more: the abort
    pulse, the DMA's or the engine's draining flag, the reset and the busy flag, and the three
    the reset is held for a pipelined core (none on an iCE40: the bound is then 3 high); and
    one more for the pipelined engine's DMA, which sees the pulse through a register of its own
    (a burst it takes in the pulse's cycle is requested in the next).
    """
    if config.engine == "compact":
        return 7 + (READS_IN_FLIGHT + 1) * (latency + 2 * (wait + 1))
    longest = max(Geometry.of(config).k_step, 4 * config.cols)
    beats = min(AXI4_MAX_BURST, -(-longest // config.axi_bytes) + 1)
    return 8 + OUTSTANDING * (latency + (wait + 1) * (beats + 1))


class Accelerator(wiring.Component):
    """Registers + :class:`GemmEngine` + :class:`DMA`, or registers + :class:`CompactEngine`.

    The config's ``engine`` chooses: the compact engine drives ``m_axi`` itself.

    ``CTRL.reset`` (the register block's ``abort``) resets the engine: it runs in a clock domain
    of its own, the system clock with the reset or'ed with the abort, so every register of it
    (the core's too, whose pipelined units take their resets from it) goes back to idle. The
    AXI bursts already requested are finished first (the reset lasts four cycles where the core
    is pipelined: see ``elaborate``): the pipelined engine is reset at once while
    the DMA finishes them (``DMA.abort``); the compact engine finishes its own
    and then asks for its reset (``CompactEngine.flush``). ``STATUS.busy`` stays high until
    then, and the aborted command never sets ``STATUS.done``.

    Members
    -------
    s_axil : Out(AXI4LiteSignature(ADDR_WIDTH))
        The control and status registers (Verilog ``s_axil__awaddr`` …).
    m_axi : Out(AXI4Signature(32, axi_data_width))
        The memory port (Verilog ``m_axi__awaddr`` …).
    irq : Out(1)
        ``STATUS.done & MODE.irq_enable``.
    """

    def __init__(self, config: AcceleratorConfig, *, dsp_pes: int | None = None,
                 paired_pes: int = 0):
        problem = accelerator_width_error(config)
        if problem:  # before any submodule exists: one message, nothing left unelaborated
            self._MustUse__used = True  # refused, not forgotten: no "never used" warning
            raise ValueError(problem)
        self._config = config
        self._dsp_pes = dsp_pes  # PEs with a DSP multiplier (SystolicCore); None: all
        self._paired_pes = paired_pes  # of those, sharing a block two by two
        super().__init__({
            "s_axil": Out(AXI4LiteSignature(addr_width=ADDR_WIDTH, data_width=32)),
            "m_axi": Out(AXI4Signature(32, config.axi_data_width, 1)),
            "irq": Out(1),
        })

    @property
    def config(self) -> AcceleratorConfig:
        return self._config

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.regs = regs = RegisterBlock(self._config)
        wiring.connect(m, wiring.flipped(self.s_axil), regs.s_axil)
        engine_reset = Signal()
        m.domains.engine = ClockDomain("engine", local=True)
        # a board's sync domain may have no reset (the ECP5 board tops' PLL domain)
        sync_reset = ResetSignal("sync", allow_reset_less=True)
        m.d.comb += [ClockSignal("engine").eq(ClockSignal("sync")),
                     ResetSignal("engine").eq(sync_reset | engine_reset)]
        abort = regs.abort           # a register: the engine's reset does not start at the bus
        # A pipelined core's units take their reset two cycles after the rest of the engine (see
        # SystolicCore._with_own_reset), and until then results they make land in the engine's
        # reset part (the core's skid buffer): so the abort's reset lasts four cycles, as the
        # system reset does at least, and the engine is idle and clean after the fourth.
        request = Signal()           # the engine is to be reset (the abort, or the compact's flush)
        resetting = Signal()         # the held cycles of the reset
        if pipelined_on(None, platform):
            held = Signal(3)
            m.d.sync += held.eq(Cat(request, held[:-1]))
            m.d.comb += resetting.eq(held.any())
        m.d.comb += engine_reset.eq(request | resetting)
        regs_traffic = view(TrafficSignature().flip(), regs, rd_bytes="dma_rd_bytes",
                            wr_bytes="dma_wr_bytes")
        if self._config.engine == "compact":
            engine = CompactEngine(self._config, dsp_pes=self._dsp_pes,
                                   paired_pes=self._paired_pes)
            m.submodules.engine = DomainRenamer({"sync": "engine"})(engine)
            wiring.connect(m, wiring.flipped(self.m_axi), engine.m_axi)
            wiring.connect(m, engine.traffic, regs_traffic)
            wiring.connect(m, engine.cmd, view(CommandReadSignature().flip(), regs,
                                               read="cmd_read", index="cmd_index",
                                               data="cmd_data"))
            m.d.comb += [engine.mode.eq(regs.mode), engine.abort.eq(abort),
                         request.eq(engine.flush),
                         regs.busy.eq(engine.control.busy | abort | resetting)]
        else:
            engine = GemmEngine(self._config, dsp_pes=self._dsp_pes,
                                paired_pes=self._paired_pes)
            m.submodules.engine = DomainRenamer({"sync": "engine"})(engine)
            max_rows, max_row_bytes = Geometry.of(self._config).dma_limits(self._config)
            m.submodules.dma = dma = DMA(self._config, max_rows=max_rows,
                                         max_row_bytes=max_row_bytes)
            wiring.connect(m, wiring.flipped(self.m_axi), dma.m_axi)
            for name in ("rd_cmd", "rd_data", "wr_cmd", "wr_data"):
                wiring.connect(m, getattr(engine, name), getattr(dma, name))
            wiring.connect(m, view(TrafficSignature(), dma), regs_traffic)
            m.d.comb += [
                engine.dma_busy.eq(dma.wr_busy),
                engine.dma_error.eq(dma.rd_error | dma.wr_error),
                dma.clear.eq(regs.start),
                dma.abort.eq(abort), request.eq(abort),
                regs.busy.eq(engine.control.busy | dma.aborting | abort | resetting),
            ]

        if self._config.engine != "compact":
            # every command field from its register field (the register map's COMMAND table)
            m.d.comb += [getattr(engine.cmd, f.name).eq(
                             f.source.extract(getattr(regs, register(f.register).port)))
                         for f in COMMAND]
        # the register block's ports are flat (named by the register map): seen as the engines'
        # interfaces, flipped
        wiring.connect(m, engine.counters, view(CountersSignature().flip(), regs))
        m.d.comb += [
            engine.control.start.eq(regs.start),
            regs.set_done.eq(engine.control.done & ~abort),
            regs.error_code.eq(engine.control.error),
            self.irq.eq(regs.irq),
        ]
        return m
