"""The store: C scratchpad rows, requantized or not, to the DMA writer."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from ...config import AcceleratorConfig
from ...model.geometry import STORE_FIFO_DEPTH, Geometry
from ..dma import data_layout
from ..requant import Requantizer
from .accumulator import c_read_signature
from .command import fifo_gate, log2
from .signatures import RunSignature, StoreFlags, dma_command_layout
from .walk import RowAddress, StageWalk

__all__ = ["Store"]


def _row_tag(config: AcceleratorConfig) -> data.StructLayout:
    """What the serializer needs of a row read from C: the index of its last beat."""
    beats = -(-4 * config.cols // config.axi_bytes)   # an int32 row is the longest
    return data.StructLayout({"last": range(max(2, beats))})


class Store(wiring.Component):
    """Reads finished chunks out of the C scratchpad, row by row, through the requantizer (int8)
    or as they are (int32), and serializes each row into bus beats for the DMA writer.

    Members
    -------
    run : In(RunSignature())
    flags : Out(StoreFlags())
        Waits for a C half's ``done``; frees it once its last row is read.
    c_rd : In(ReadPort.Signature(...))
        The C scratchpad's second read port.
    wr_cmd, wr_data : Out(stream.Signature(dma_command_layout(config))), Out(...)
        The DMA writer: a command per chunk, then its rows' beats (``data`` only: the writer
        frames the rows by the command).
    finished : Out(1)
        Every chunk is read and every row it read has left as write data.
    """

    def __init__(self, config: AcceleratorConfig):
        self._config = config
        super().__init__({
            "run": In(RunSignature()), "flags": Out(StoreFlags()),
            "c_rd": In(c_read_signature(config)),
            "wr_cmd": Out(stream.Signature(dma_command_layout(config))),
            "wr_data": Out(stream.Signature(data_layout(config))),
            "finished": Out(1),
        })

    def elaborate(self, platform) -> Module:
        cfg = self._config
        geo = Geometry.of(cfg)
        C = cfg.cols
        m = Module()
        run, c, flags, c_rd, wr_cmd = self.run, self.run.cmd, self.flags, self.c_rd, self.wr_cmd
        m.submodules.store_walk = sw = StageWalk(C, max_rows=geo.max_chunk(cfg))
        wiring.connect(m, wiring.flipped(run), sw.run)
        row_layout = data.ArrayLayout(signed(32), C)
        half = sw.index[0]
        r = Signal(range(max(2, geo.max_chunk(cfg))))  # 1 bit even for one row
        pending = Signal()
        pending_tag = Signal(_row_tag(cfg))
        m.submodules.rowq = rowq = fifo.SyncFIFO(width=row_layout.size, depth=STORE_FIFO_DEPTH)
        m.submodules.tagq = tagq = fifo.SyncFIFO(width=len(pending_tag.as_value()), depth=16)
        issue = Signal()
        c_row = RowAddress(m, "store_c", sw, c.c_addr, run.chunk_ldc,
                           Mux(c.requant, C, 4 * C), run.restart)
        with m.FSM(name="store"):
            with m.State("IDLE"):
                with m.If(run.running & ~sw.done & flags.c_done.bit_select(half, 1)):
                    m.d.comb += [
                        wr_cmd.valid.eq(1),
                        wr_cmd.payload.addr.eq(c_row.addr),
                        wr_cmd.payload.rows.eq(sw.rows),
                        wr_cmd.payload.row_bytes.eq(Mux(c.requant, sw.cols, sw.cols << 2)),
                        wr_cmd.payload.stride.eq(c.ldc),
                    ]
                    with m.If(wr_cmd.ready):
                        m.next = "READ"
            with m.State("READ"):
                m.d.comb += issue.eq(fifo_gate(rowq, pending) & tagq.w_rdy)
                with m.If(issue):
                    with m.If(r == sw.rows - 1):
                        m.d.sync += r.eq(0)
                        m.d.comb += [flags.c_release.bit_select(half, 1).eq(1), sw.step.eq(1)]
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += r.eq(r + 1)
        with m.If(run.restart):
            m.d.sync += r.eq(0)
        m.d.comb += [c_rd.addr.eq(half * geo.c_half + r), c_rd.en.eq(issue)]
        m.d.sync += pending.eq(issue)
        # a row's tag leaves the queue with the row's last beat
        m.d.comb += self.finished.eq(sw.done & ~tagq.r_rdy & ~tagq.w_en)
        # the row's last beat, decided from the walk's registers as the row is read, so that
        # the serializer's handshake compares a beat counter with a register
        tag_w = data.View(pending_tag.shape(), tagq.w_data)
        nbytes = Signal(range(4 * C + 1))
        m.d.comb += [nbytes.eq(Mux(c.requant, sw.cols, sw.cols << 2)),
                     tag_w.last.eq((nbytes - 1) >> log2(cfg.axi_bytes)), tagq.w_en.eq(issue)]
        m.d.comb += [rowq.w_data.eq(c_rd.data), rowq.w_en.eq(pending)]
        byte_row, byte_valid, byte_ready = self._requantize(m, rowq)
        self._serialize(m, tagq, pending_tag.shape(), byte_row, byte_valid, byte_ready)
        return m

    def _requantize(self, m: Module, rowq):
        """Rows leave through the requantizer (int8) or as they are (int32)."""
        cfg, c = self._config, self.run.cmd
        byte_row = Signal(8 * 4 * cfg.cols)
        byte_valid = Signal()
        byte_ready = Signal()
        passthrough = [byte_row.eq(rowq.r_data), byte_valid.eq(rowq.r_rdy),
                       rowq.r_en.eq(byte_ready)]
        if cfg.requant_unit:
            m.submodules.requant = rq = Requantizer(cfg)
            m.d.comb += [rq.multiplier.eq(c.rq_mult), rq.shift.eq(c.rq_shift),
                         rq.zero_point.eq(c.rq_zp), rq.relu.eq(c.relu)]
            with m.If(c.requant):
                m.d.comb += [
                    rq.i.valid.eq(rowq.r_rdy), rq.i.payload.c.eq(rowq.r_data),
                    rowq.r_en.eq(rq.i.ready),
                    rq.i.payload.last.eq(0),  # rows are framed by the tag queue, not by `last`
                    byte_row.eq(rq.o.payload.c.as_value()), byte_valid.eq(rq.o.valid),
                    rq.o.ready.eq(byte_ready),
                ]
            with m.Else():
                m.d.comb += passthrough
        else:  # the command check refuses `requant`: it never runs with it set
            m.d.comb += passthrough
        return byte_row, byte_valid, byte_ready

    def _serialize(self, m: Module, tagq, tag_layout, byte_row, byte_valid, byte_ready) -> None:
        """A row of cols·out_bytes bytes into bus beats."""
        B = self._config.axi_bytes
        tag_r = data.View(tag_layout, tagq.r_data)
        # Only `data`: the DMA writer frames each row by its command (bytes, first, last and
        # end of `wr_data` are ignored there), so the store computes none of them.
        s_beat = Signal.like(tag_r.last)
        last_beat = s_beat == tag_r.last
        padded = Cat(byte_row, Const(0, 8 * B))
        wr = self.wr_data
        m.d.comb += [
            wr.valid.eq(byte_valid & tagq.r_rdy),
            wr.payload.data.as_value().eq(padded.word_select(s_beat, 8 * B)),
        ]
        with m.If(wr.valid & wr.ready):
            with m.If(last_beat):
                m.d.sync += s_beat.eq(0)
                m.d.comb += [byte_ready.eq(1), tagq.r_en.eq(1)]
            with m.Else():
                m.d.sync += s_beat.eq(s_beat + 1)
