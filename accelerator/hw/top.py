"""The complete accelerator: registers, GEMM engine and DMA behind two AXI ports.

This is the block a chip team drops into an SoC: an AXI4-Lite slave for software (the register
map of :mod:`accelerator.hw.registers`), an AXI4 master to memory, and an interrupt line.
"""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from ..config import AcceleratorConfig
from .axi import AXI4Signature
from .axil import AXI4LiteSignature
from .compact import CompactEngine
from .dma import DMA
from .engine import GemmEngine
from .registers import ADDR_WIDTH, RegisterBlock, field

__all__ = ["Accelerator"]


class Accelerator(wiring.Component):
    """Registers + :class:`GemmEngine` + :class:`DMA`, or registers + :class:`CompactEngine`.

    The config's ``engine`` chooses: the compact engine drives ``m_axi`` itself.

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
        if self._config.engine == "compact":
            m.submodules.engine = engine = CompactEngine(self._config, dsp_pes=self._dsp_pes,
                                                           paired_pes=self._paired_pes)
            wiring.connect(m, wiring.flipped(self.m_axi), engine.m_axi)
            m.d.comb += [regs.dma_rd_bytes.eq(engine.rd_bytes),
                         regs.dma_wr_bytes.eq(engine.wr_bytes),
                         regs.cmd_read.eq(engine.cmd_read), regs.cmd_index.eq(engine.cmd_index),
                         engine.cmd_data.eq(regs.cmd_data), engine.mode.eq(regs.mode)]
        else:
            m.submodules.engine = engine = GemmEngine(self._config, dsp_pes=self._dsp_pes,
                                                        paired_pes=self._paired_pes)
            m.submodules.dma = dma = DMA(self._config)
            wiring.connect(m, wiring.flipped(self.m_axi), dma.m_axi)
            for name in ("rd_cmd", "rd_data", "wr_cmd", "wr_data"):
                wiring.connect(m, getattr(engine, name), getattr(dma, name))
            m.d.comb += [
                engine.dma_busy.eq(dma.wr_busy),
                engine.dma_error.eq(dma.rd_error | dma.wr_error),
                dma.clear.eq(regs.start),
                regs.dma_rd_bytes.eq(dma.rd_bytes),
                regs.dma_wr_bytes.eq(dma.wr_bytes),
            ]

        if self._config.engine != "compact":
            cmd = engine.cmd
            for name in ("a_addr", "b_addr", "c_addr", "cin_addr", "m", "k", "n",
                         "lda", "ldb", "ldc", "ldcin"):
                m.d.comb += getattr(cmd, name).eq(getattr(regs, name))
            m.d.comb += [
                cmd.accumulate.eq(field("MODE", "accumulate").extract(regs.mode)),
                cmd.requant.eq(field("MODE", "requant").extract(regs.mode)),
                cmd.relu.eq(field("MODE", "relu").extract(regs.mode)),
                cmd.rq_mult.eq(regs.rq_mult),
                cmd.rq_shift.eq(regs.rq_shift),
                cmd.rq_zp.eq(regs.rq_zp),
            ]
        m.d.comb += [
            engine.start.eq(regs.start),
            regs.busy.eq(engine.busy),
            regs.set_done.eq(engine.done),
            regs.error_code.eq(engine.error),
            regs.cycles.eq(engine.cycles),
            regs.mac_cycles.eq(engine.mac_cycles),
            regs.stall_load.eq(engine.stall_load),
            regs.stall_store.eq(engine.stall_store),
            self.irq.eq(regs.irq),
        ]
        return m
