"""The accumulator: core results into the C scratchpad, adding what is there when needed."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.memory import ReadPort, WritePort
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ...config import AcceleratorConfig
from ...model.geometry import Geometry
from ..core import core_layouts
from .signatures import AccumulatorFlags, CinSignature, RunSignature, pass_layout

__all__ = ["Accumulator", "c_read_signature", "c_write_signature"]


def c_read_signature(config: AcceleratorConfig) -> ReadPort.Signature:
    return ReadPort.Signature(addr_width=ceil_log2(config.spad_c_depth),
                              shape=data.ArrayLayout(signed(32), config.cols))


def c_write_signature(config: AcceleratorConfig) -> WritePort.Signature:
    """The C scratchpad's write port, int32 lane by int32 lane."""
    return WritePort.Signature(addr_width=ceil_log2(config.spad_c_depth),
                               shape=data.ArrayLayout(signed(32), config.cols), granularity=1)


class Accumulator(wiring.Component):
    """Writes each row of the core's results into its C half, a cycle after reading the row
    there when the tile's pass says to add to it; leaves the write port to the loader's C_in
    rows in the other cycles.

    Members
    -------
    run : In(RunSignature())
    passes : In(stream.Signature(pass_layout(config)))
        The feeders' tile descriptors, queued here.
    results : In(stream.Signature(...))
        From the core.
    flags : Out(AccumulatorFlags())
        A pulse when a chunk's last row is written.
    cin : In(CinSignature(config))
        The loader's C_in beats.
    c_rd : In(ReadPort.Signature(...)); c_wr : In(WritePort.Signature(...))
        The C scratchpad's ports.
    """

    def __init__(self, config: AcceleratorConfig):
        self._config = config
        super().__init__({
            "run": In(RunSignature()),
            "passes": In(stream.Signature(pass_layout(config))),
            "results": In(stream.Signature(core_layouts(config)["results"])),
            "flags": Out(AccumulatorFlags()), "cin": In(CinSignature(config)),
            "c_rd": In(c_read_signature(config)), "c_wr": In(c_write_signature(config)),
        })

    def elaborate(self, platform) -> Module:
        cfg = self._config
        geo = Geometry.of(cfg)
        C = cfg.cols
        m = Module()
        results, c_rd, c_wr, cin = self.results, self.c_rd, self.c_wr, self.cin
        layout = pass_layout(cfg)
        m.submodules.passes = passes = fifo.SyncFIFOBuffered(width=layout.size, depth=8)
        m.d.comb += [passes.w_data.eq(self.passes.payload), passes.w_en.eq(self.passes.valid),
                     self.passes.ready.eq(passes.w_rdy)]
        pass_r = data.View(layout, passes.r_data)
        acc_row = Signal(range(max(2, geo.max_chunk(cfg))))  # 1 bit even for one row
        got = Signal()
        m.d.comb += [results.ready.eq(passes.r_rdy), got.eq(results.valid & results.ready)]
        addr = Signal(range(cfg.spad_c_depth))
        m.d.comb += [addr.eq(pass_r.half * geo.c_half + acc_row),
                     c_rd.addr.eq(addr), c_rd.en.eq(got)]
        s1_valid = Signal()
        s1_addr = Signal.like(addr)
        s1_value = Signal(data.ArrayLayout(signed(32), C))
        s1_read = Signal()
        s1_chunk_done = Signal()
        s1_half = Signal()
        # lane by lane: each sign-extends from acc_width (a whole-view copy would move bits
        # across lanes when acc_width is not 32)
        m.d.sync += [s1_value[j].eq(results.payload.c[j]) for j in range(C)]
        m.d.sync += [s1_valid.eq(got), s1_addr.eq(addr),
                     s1_read.eq(pass_r.read_old), s1_half.eq(pass_r.half),
                     s1_chunk_done.eq(got & pass_r.last & (acc_row == pass_r.rows - 1))]
        with m.If(got):
            with m.If(acc_row == pass_r.rows - 1):
                m.d.sync += acc_row.eq(0)
                m.d.comb += passes.r_en.eq(1)
            with m.Else():
                m.d.sync += acc_row.eq(acc_row + 1)
        with m.If(self.run.restart):
            m.d.sync += acc_row.eq(0)
        with m.If(s1_chunk_done):
            m.d.comb += self.flags.c_done.bit_select(s1_half, 1).eq(1)
        m.d.comb += cin.blocked.eq(s1_valid)
        with m.If(s1_valid):
            m.d.comb += [c_wr.addr.eq(s1_addr), c_wr.en.eq((1 << C) - 1)]
            for lane in range(C):
                # the sum wraps in acc_width bits, like the PEs' (a no-op at 32)
                total = s1_value[lane] + Mux(s1_read, c_rd.data[lane], 0)
                m.d.comb += c_wr.data[lane].eq(total[:min(cfg.acc_width, 32)].as_signed())
        with m.Else():
            # C_in rows from the loader take the port when the accumulator leaves it
            m.d.comb += [c_wr.addr.eq(cin.addr), c_wr.data.eq(cin.data), c_wr.en.eq(cin.en)]
        return m
