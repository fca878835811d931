"""The loader: DMA read commands for A, B and C_in, and where the data they return goes."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.memory import WritePort
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ...config import AcceleratorConfig
from ...model.geometry import Geometry
from ..dma import data_layout
from .command import const_mul
from .signatures import CinSignature, LoaderFlags, RunSignature, dma_command_layout
from .walk import RowAddress, StageWalk

__all__ = ["Loader", "a_write_signature", "b_write_signature"]

KIND_A, KIND_B, KIND_CIN = 0, 1, 2


def a_write_signature(config: AcceleratorConfig) -> WritePort.Signature:
    """A write port of the A scratchpad (a bank per row os, one memory ws)."""
    depth = Geometry.of(config).a_words
    return WritePort.Signature(addr_width=ceil_log2(depth),
                               shape=data.ArrayLayout(8, config.axi_bytes))


def b_write_signature(config: AcceleratorConfig) -> WritePort.Signature:
    """The B scratchpad's write port: a row of C bytes, written byte lane by byte lane."""
    return WritePort.Signature(addr_width=ceil_log2(config.spad_b_depth),
                               shape=data.ArrayLayout(8, config.cols), granularity=1)


class Loader(wiring.Component):
    """Walks the chunks (B panel, then A, then C_in) and issues their DMA reads into free
    halves of the double buffers; then writes each returning beat where its command's entry in
    a route queue says.

    A before C_in: the C half is freed only when the store has read the chunk two back, and the
    A load (the long one) must not wait for that.

    Members
    -------
    run : In(RunSignature())
    flags : Out(LoaderFlags())
        Claims halves as it issues their loads and marks them filled when the data is in.
    rd_cmd : Out(stream.Signature(dma_command_layout(config))); rd_data : In(stream.Signature(...))
        The DMA reader.
    a_wr : In(WritePort.Signature(...)) (an array of R output-stationary); b_wr : likewise
        The scratchpads' write ports.
    cin : Out(CinSignature(config))
        C_in rows, for the accumulator's write port of the C scratchpad.
    claims : Out(32)
        Chunks whose C half the loader has claimed: a feeder may start chunk t only once
        t < claims, or it would take the flags of the chunk two back for its own.
    c_wait : Out(1)
        The loader waits for the store to free a C half.
    """

    def __init__(self, config: AcceleratorConfig):
        self._config = config
        self._geo = Geometry.of(config)
        a_wr = In(a_write_signature(config))
        super().__init__({
            "run": In(RunSignature()), "flags": Out(LoaderFlags()),
            "rd_cmd": Out(stream.Signature(dma_command_layout(config))),
            "rd_data": In(stream.Signature(data_layout(config))),
            "a_wr": a_wr.array(config.rows) if config.dataflow == "os" else a_wr,
            "b_wr": In(b_write_signature(config)),
            "cin": Out(CinSignature(config)),
            "claims": Out(32), "c_wait": Out(1),
        })

    def elaborate(self, platform) -> Module:
        cfg, geo = self._config, self._geo
        C = cfg.cols
        m = Module()
        run, c, flags = self.run, self.run.cmd, self.flags
        restart = run.restart
        route_layout = data.StructLayout({"kind": 2, "half": 1})
        m.submodules.route = route = fifo.SyncFIFOBuffered(width=route_layout.size, depth=4)
        m.submodules.load_walk = lw = StageWalk(C, geo.k_step, max_rows=geo.max_chunk(cfg))
        wiring.connect(m, wiring.flipped(run), lw.run)
        a_row = RowAddress(m, "load_a", lw, c.a_addr, run.chunk_lda, 0, restart)
        b_row = RowAddress(m, "load_b", lw, c.b_addr, 0, C, restart)
        cin_row = RowAddress(m, "load_cin", lw, c.cin_addr, run.chunk_ldcin, 4 * C, restart)
        b_koff = Signal(32)          # kc0·ldb, the B rows of earlier K steps
        b_koff_next = Signal(32)
        m.d.comb += b_koff_next.eq(b_koff)
        with m.If(restart):
            m.d.comb += b_koff_next.eq(0)
        with m.Elif(lw.step):
            # not the last step: (kc0 + k_step)·ldb < K·ldb, within B's checked range (32 bits)
            m.d.comb += b_koff_next.eq(Mux(lw.k_last, 0,
                                           b_koff + const_mul(c.ldb, geo.k_step)[:32]))
        m.d.sync += b_koff.eq(b_koff_next)
        # The A and B load addresses are registers, summed from the next values of their parts:
        # summed when issued, they reached through the DMA splitter's start of a row in one
        # cycle (the 25F board tops' longest path once the requantizer was pipelined).
        a_load = Signal(32)          # a_row.addr + kc0
        b_load = Signal(32)          # b_addr + b_koff + col0
        m.d.sync += [a_load.eq(a_row.next + lw.kc0_next), b_load.eq(b_row.next + b_koff_next)]
        l_apar = Signal()            # the A half of the next A load
        l_bpar = Signal()            # the B half of the next B load
        rd_cmd = self.rd_cmd

        def issue(addr, rows, row_bytes, stride, kind, half):
            m.d.comb += [
                rd_cmd.valid.eq(1), rd_cmd.payload.addr.eq(addr), rd_cmd.payload.rows.eq(rows),
                rd_cmd.payload.row_bytes.eq(row_bytes), rd_cmd.payload.stride.eq(stride),
                route.w_data.eq(Cat(Const(kind, 2), half)), route.w_en.eq(rd_cmd.ready),
            ]
            return rd_cmd.ready

        def next_step():
            m.d.comb += lw.step.eq(1)
            with m.If(lw.k_last & lw.last):
                m.next = "IDLE"
            with m.Else():
                m.next = "PANEL"

        with m.FSM(name="loader"):
            with m.State("IDLE"):
                with m.If(run.running & ~lw.done):
                    m.next = "PANEL"
            with m.State("PANEL"):
                # a B panel stays for the whole panel when K fits; else a K step of it per step
                with m.If(~run.split & ~lw.first_in_panel):
                    m.next = "A"
                with m.Elif(~flags.b_busy.bit_select(l_bpar, 1) & route.w_rdy):
                    with m.If(issue(b_load, lw.k_len, lw.cols, c.ldb, KIND_B, l_bpar)):
                        m.d.comb += flags.b_claim.bit_select(l_bpar, 1).eq(1)
                        m.d.sync += l_bpar.eq(~l_bpar)
                        m.next = "A"
            with m.State("A"):
                with m.If(~flags.a_busy.bit_select(l_apar, 1) & route.w_rdy):
                    with m.If(issue(a_load, lw.rows, lw.k_len, c.lda, KIND_A, l_apar)):
                        m.d.comb += flags.a_claim.bit_select(l_apar, 1).eq(1)
                        m.d.sync += l_apar.eq(~l_apar)
                        with m.If(lw.first_step):
                            m.next = "CIN"
                        with m.Else():
                            next_step()
            with m.State("CIN"):
                half = lw.index[0]
                claimed = Signal()
                c_busy = flags.c_busy.bit_select(half, 1)
                m.d.comb += self.c_wait.eq(c_busy)
                with m.If(~c_busy):
                    with m.If(~c.accumulate):
                        m.d.comb += [flags.c_claim.bit_select(half, 1).eq(1),
                                     flags.c_ready.bit_select(half, 1).eq(1), claimed.eq(1)]
                    with m.Elif(route.w_rdy):
                        with m.If(issue(cin_row.addr, lw.rows, lw.cols << 2, c.ldcin, KIND_CIN,
                                        half)):
                            m.d.comb += [flags.c_claim.bit_select(half, 1).eq(1),
                                         claimed.eq(1)]
                with m.If(claimed):
                    m.d.sync += self.claims.eq(self.claims + 1)
                    next_step()
        with m.If(restart):
            m.d.sync += [l_apar.eq(0), l_bpar.eq(0), self.claims.eq(0)]
        self._route_data(m, route, data.View(route_layout, route.r_data))
        return m

    def _route_data(self, m: Module, route, head) -> None:
        """Each command's beats go where the head of ``route`` says."""
        cfg, geo = self._config, self._geo
        R, C, B = cfg.rows, cfg.cols, cfg.axi_bytes
        rd, flags, cin = self.rd_data, self.flags, self.cin
        # sized by the largest read the loader asks for (a row of a command, a beat of a row)
        max_rows, max_row_bytes = geo.dma_limits(cfg)
        row = Signal(range(max_rows))
        beat = Signal(range(-(-max_row_bytes // B)))
        row_base = Signal(range(geo.a_half))  # ws: the current row's first word in its half
        is_cin = Signal()
        beat_ok = Signal()
        m.d.comb += [
            is_cin.eq(head.kind == KIND_CIN),
            rd.ready.eq(route.r_rdy & ~(is_cin & cin.blocked)),
            beat_ok.eq(rd.valid & rd.ready),
        ]
        with m.If(beat_ok):
            with m.If(rd.payload.end):
                m.d.sync += [row.eq(0), beat.eq(0), row_base.eq(0)]
                m.d.comb += route.r_en.eq(1)
                with m.Switch(head.kind):
                    with m.Case(KIND_A):
                        m.d.comb += flags.a_filled.bit_select(head.half, 1).eq(1)
                    with m.Case(KIND_B):
                        m.d.comb += flags.b_filled.bit_select(head.half, 1).eq(1)
                    with m.Case(KIND_CIN):
                        m.d.comb += flags.c_ready.bit_select(head.half, 1).eq(1)
            with m.Elif(rd.payload.last):
                m.d.sync += [row.eq(row + 1), beat.eq(0), row_base.eq(row_base + self.run.words)]
            with m.Else():
                m.d.sync += beat.eq(beat + 1)

        if cfg.dataflow == "os":
            for p in range(R):
                a_wr = self.a_wr[p]
                m.d.comb += [
                    a_wr.addr.eq(head.half * geo.a_half + beat),
                    a_wr.data.eq(rd.payload.data),
                    a_wr.en.eq(beat_ok & (head.kind == KIND_A) & (row == p)),
                ]
        else:
            m.d.comb += [
                self.a_wr.addr.eq(head.half * geo.a_half + row_base + beat),
                self.a_wr.data.eq(rd.payload.data),
                self.a_wr.en.eq(beat_ok & (head.kind == KIND_A)),
            ]
        # row k of a B panel is entry k; a row wider than the bus comes in several beats
        b_wr = self.b_wr
        m.d.comb += b_wr.addr.eq(head.half * geo.b_half + row)
        for lane in range(C):
            src_beat, src_byte = divmod(lane, B)
            m.d.comb += [
                b_wr.data[lane].eq(rd.payload.data[src_byte]),
                b_wr.en[lane].eq(beat_ok & (head.kind == KIND_B) & (beat == src_beat)),
            ]
        # C_in rows: the accumulator writes them when it leaves the port free (``blocked``)
        m.d.comb += cin.addr.eq(head.half * geo.c_half + row)
        per_beat = B // 4
        for lane in range(C):
            src_beat, src_word = divmod(lane, per_beat)
            m.d.comb += [
                cin.data[lane].eq(rd.payload.data.as_value().word_select(src_word, 32)),
                cin.en[lane].eq(beat_ok & is_cin & (beat == src_beat)),
            ]
