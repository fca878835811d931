"""The compact GEMM engine: the systolic core fed one operand byte per bus read, for small FPGAs.

The pipelined engine (:mod:`accelerator.hw.engine`) keeps the array busy with scratchpads, a burst
DMA and five stages running at once; on an iCE40UP5K that logic alone is larger than the device.
This engine (``engine = "compact"`` in the config) gives the array one operand beat every
``R + C`` bus reads instead, with a few counters and one running address, and no scratchpad:

* the C tiles (R×C, output-stationary) in row-major order, one at a time;
* for each k of a tile, R + C single-beat reads, one per operand byte: A[i0 + r][k] for each
  row r (``ptr`` steps by ``lda``), then B[k][j0 + c] for each column c (``ptr`` steps by 1).
  Several reads are in flight (:data:`READS_IN_FLIGHT`); an element outside M or N is a 0 that
  takes no read. The bytes collect in ``gather``; every R + C of them are one operand beat,
  ``last`` on k = K - 1, so the PE accumulators run through all of K;
* then the tile's R result rows, a 32-bit word per element (sign-extended from ``acc_width``):
  with ``MODE.accumulate``, a read of C_in and a wrapping add first; then one single-beat write,
  and its response, before the next element;
* the next tile starts once the last write of this one is answered.

The command gets the pipelined engine's checks, with the same error codes and priority
(:func:`~accelerator.hw.engine.command_flags`, :func:`~accelerator.hw.engine.error_priority`),
walked with one adder instead of a multiplier (:meth:`CompactEngine._check_states`), and the
counters mean the same. Its cycles are
in :func:`accelerator.model.perf.estimate` (docs/performance-model.md, "The compact engine").
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import fifo, wiring
from amaranth.lib.wiring import In, Out

from ..config import AcceleratorConfig
from .axi import BURST_INCR, RESP_OKAY, AXI4Signature
from .core import InPlaceCore
from .engine import (
    EngineError,
    _const_mul,
    command_flags,
    command_layout,
    error_priority,
    out_row_bytes,
)

__all__ = ["READS_IN_FLIGHT", "CompactEngine"]

#: Operand reads the engine keeps in flight: enough for one read per cycle behind an AXI RAM
#: that answers two cycles after the address.
READS_IN_FLIGHT = 4

# AxCACHE "normal non-cacheable bufferable", as the DMA drives it.
_AXCACHE = 0b0011


class CompactEngine(wiring.Component):
    """Runs one GEMM per ``start`` with the core and one AXI4 master (module docstring).

    Members
    -------
    start, cmd, busy, done, error, cycles, mac_cycles, stall_load, stall_store
        As :class:`~accelerator.hw.engine.GemmEngine`'s.
    m_axi : Out(AXI4Signature(32, axi_data_width, 1))
        Single-beat reads and writes, one ID.
    rd_bytes, wr_bytes : Out(32)
        Payload bytes read (an operand byte each, 4 per C_in element) and written (4 per C
        element) by the last command, as the DMA counts them.
    """

    def __init__(self, config: AcceleratorConfig, *, dsp_pes: int | None = None,
                 paired_pes: int = 0):
        if config.engine != "compact":
            raise ValueError(f"CompactEngine needs engine = 'compact', not {config.engine!r}")
        self._config = config
        self._dsp_pes = dsp_pes
        self._paired_pes = paired_pes
        super().__init__({
            "start": In(1), "cmd": In(command_layout()),
            "busy": Out(1), "done": Out(1), "error": Out(8),
            "cycles": Out(32), "mac_cycles": Out(32), "stall_load": Out(32),
            "stall_store": Out(32),
            "m_axi": Out(AXI4Signature(32, config.axi_data_width, 1)),
            "rd_bytes": Out(32), "wr_bytes": Out(32),
        })

    def elaborate(self, platform) -> Module:
        cfg = self._config
        R, C, B = cfg.rows, cfg.cols, cfg.axi_bytes
        lane_bits = (B - 1).bit_length()
        slots = R + C                  # operand bytes per beat
        axi = self.m_axi
        m = Module()
        m.submodules.core = core = InPlaceCore(cfg, dsp_pes=self._dsp_pes,
                                                  paired_pes=self._paired_pes)
        operands = core.operands

        # The command is read where it is held: the register block keeps the command registers
        # unchanged while ``busy`` (a copy here would be 400 more flip-flops).
        c = self.cmd
        error = Signal(8)
        m.d.comb += self.error.eq(error)

        # -- the tile: its origin and where its rows start ---------------------------------------
        j0 = Signal(16)                # the tile's first column
        a_tile = Signal(32)            # a_addr + i0·lda
        b_tile = Signal(32)            # b_addr + j0
        c_tile = Signal(32)            # c_addr + i0·ldc
        cin_tile = Signal(32)          # cin_addr + i0·ldcin
        rows_left = Signal(16)         # m - i0
        cols_left = Signal(16)         # n - j0
        tile_rows = Signal(range(R + 1))  # rows of the tile inside C: min(rows_left, R)
        tile_cols = Signal(range(C + 1))
        k_m1 = Signal(16)              # K - 1
        start_tile = Signal()          # pulse: the reader and the writer begin a tile
        tile_written = Signal()        # pulse: the writer has the last response of the tile

        # The AXI4 constants: single beats, one ID, normal non-cacheable bufferable access.
        m.d.comb += [
            axi.arlen.eq(0), axi.arburst.eq(BURST_INCR), axi.arcache.eq(_AXCACHE),
            axi.awlen.eq(0), axi.awburst.eq(BURST_INCR), axi.awcache.eq(_AXCACHE),
            axi.awsize.eq(2), axi.wlast.eq(1),
        ]

        # -- reader: issue the tile's K·(R+C) operand reads -----------------------------------
        m.submodules.tags = tags = fifo.SyncFIFO(width=1 + lane_bits, depth=READS_IN_FLIGHT)
        issuing = Signal()
        slot = Signal(range(slots))
        k_issue = Signal(16)
        a_k = Signal(32)               # a_tile + k
        b_k = Signal(32)               # b_tile + k·ldb
        ptr = Signal(32)               # the address of this slot's byte
        in_rows = slot < R
        # an element outside M or N is a zero that takes no read
        skip = Mux(in_rows, slot >= tile_rows, (slot - R) >= tile_cols)
        advance = Signal()
        op_arvalid = Signal()
        m.d.comb += [
            op_arvalid.eq(issuing & ~skip & tags.w_rdy),
            advance.eq(issuing & tags.w_rdy & (skip | axi.arready)),
            tags.w_en.eq(advance),
            tags.w_data.eq(Cat(ptr[:lane_bits], skip) if lane_bits else skip),
        ]
        with m.If(start_tile):
            m.d.sync += [issuing.eq(1), slot.eq(0), k_issue.eq(0), a_k.eq(a_tile),
                         b_k.eq(b_tile), ptr.eq(a_tile)]
        with m.Elif(advance):
            with m.If(slot == slots - 1):
                m.d.sync += [slot.eq(0), k_issue.eq(k_issue + 1), a_k.eq(a_k + 1),
                             b_k.eq(b_k + c.ldb), ptr.eq(a_k + 1)]
                with m.If(k_issue == k_m1):
                    m.d.sync += issuing.eq(0)
            with m.Else():
                m.d.sync += slot.eq(slot + 1)
                with m.If(slot == R - 1):
                    m.d.sync += ptr.eq(b_k)
                with m.Else():           # one adder: down A's column, or along B's row
                    m.d.sync += ptr.eq(ptr + Mux(in_rows, c.lda, 1))

        # -- gather: the bytes of a beat, in slot order, then into the core -------------------
        # ``gather`` is the beat itself: when it is full and the core takes it, the byte arriving
        # in that cycle starts the next one.
        tag_skip = tags.r_data[lane_bits]
        count = Signal(range(slots + 1))
        k_feed = Signal(16)
        gather = Signal(8 * slots)
        beat_last = Signal()
        full = count == slots
        fed = Signal()                 # the tile's last beat has gone into the core
        take = Signal()
        byte = Signal(8)
        m.d.comb += [
            take.eq(tags.r_rdy & (tag_skip | axi.rvalid) & (~full | operands.ready)),
            byte.eq(Mux(tag_skip, 0, axi.rdata.word_select(tags.r_data[:lane_bits], 8)
                        if lane_bits else axi.rdata[:8])),
            tags.r_en.eq(take),
        ]
        with m.If(take):
            m.d.sync += [gather.eq(Cat(gather[8:], byte)), count.eq(Mux(full, 1, count + 1))]
            with m.If(count == slots - 1):
                m.d.sync += [beat_last.eq(k_feed == k_m1), k_feed.eq(k_feed + 1)]
        with m.Elif(full & operands.ready):
            m.d.sync += count.eq(0)
        with m.If(start_tile):
            m.d.sync += [count.eq(0), k_feed.eq(0), fed.eq(0)]
        with m.Elif(operands.valid & operands.ready & operands.payload.last):
            m.d.sync += fed.eq(1)
        for r in range(R):
            m.d.comb += operands.payload.a[r].eq(gather.word_select(r, 8).as_signed())
        for j in range(C):
            m.d.comb += operands.payload.b[j].eq(gather.word_select(R + j, 8).as_signed())
        m.d.comb += [operands.valid.eq(full), operands.payload.last.eq(beat_last)]

        # -- writer: the tile's result rows, an element at a time -------------------------------
        row = Signal(range(R + 1))     # the row of the tile being written
        col = Signal(range(C))
        w_row = Signal(32)             # c_tile + row·ldc + 4·j0
        r_row = Signal(32)             # cin_tile + row·ldcin + 4·j0
        w_ptr = w_row + (col << 2)
        r_ptr = r_row + (col << 2)
        value = Signal(32)
        aw_done = Signal()
        w_done = Signal()
        cin_read = Signal()            # the writer has the read channels (the reader is idle)
        cin_taken = Signal()
        acc = cfg.acc_width
        element = core.value
        m.d.comb += [core.row.eq(row), core.col.eq(col)]
        inside = (row < tile_rows) & (col < tile_cols)

        def word(addr):
            """The 32-bit lane of the bus word that holds ``addr``."""
            return addr[2:lane_bits] if lane_bits > 2 else Const(0, 1)

        m.d.comb += [
            axi.awaddr.eq(w_ptr),
            axi.wdata.eq(value.replicate(B // 4)),
            axi.wstrb.eq(Const(0xF, B) << (word(w_ptr) * 4)),
            # the read channels: the reader's byte reads, or the writer's C_in word
            axi.arvalid.eq(op_arvalid | cin_read),
            axi.araddr.eq(Mux(cin_read, r_ptr, ptr)),
            axi.arsize.eq(Mux(cin_read, 2, 0)),
            axi.rready.eq((take & ~tag_skip) | cin_taken),
        ]

        def next_element():
            with m.If(col == C - 1):
                m.d.sync += [col.eq(0), row.eq(row + 1), w_row.eq(w_row + c.ldc),
                             r_row.eq(r_row + c.ldcin)]
                with m.If(row == R - 1):
                    m.d.comb += tile_written.eq(1)
                    m.next = "IDLE"
            with m.Else():
                m.d.sync += col.eq(col + 1)

        with m.FSM(name="writer"):
            with m.State("IDLE"):
                with m.If(start_tile):
                    tile_col = j0 << 2
                    m.d.sync += [row.eq(0), col.eq(0), w_row.eq(c_tile + tile_col),
                                 r_row.eq(cin_tile + tile_col)]
                    m.next = "ELEMENT"
            with m.State("ELEMENT"):
                # `done` is the last tile's until this tile's first beat: wait for the last one
                with m.If(fed & core.done):
                    with m.If(~inside):
                        next_element()
                    with m.Elif(c.accumulate):
                        m.next = "CIN_ADDR"
                    with m.Else():
                        m.d.sync += value.eq(element)
                        m.next = "WRITE"
            with m.State("CIN_ADDR"):
                m.d.comb += cin_read.eq(1)
                with m.If(axi.arready):
                    m.next = "CIN_DATA"
            with m.State("CIN_DATA"):
                m.d.comb += cin_taken.eq(1)
                with m.If(axi.rvalid):
                    cin = axi.rdata.word_select(word(r_ptr), 32)
                    m.d.sync += value.eq((cin[:acc] + element)[:acc].as_signed())
                    m.next = "WRITE"
            with m.State("WRITE"):
                m.d.comb += [axi.awvalid.eq(~aw_done), axi.wvalid.eq(~w_done)]
                with m.If(axi.awready):
                    m.d.sync += aw_done.eq(1)
                with m.If(axi.wready):
                    m.d.sync += w_done.eq(1)
                with m.If((aw_done | axi.awready) & (w_done | axi.wready)):
                    m.next = "RESPONSE"
            with m.State("RESPONSE"):
                m.d.comb += axi.bready.eq(1)
                with m.If(axi.bvalid):
                    m.d.sync += [aw_done.eq(0), w_done.eq(0)]
                    with m.If(axi.bresp != RESP_OKAY):
                        m.d.sync += error.eq(EngineError.BUS_ERROR)
                    m.next = "ELEMENT"
                    next_element()

        # -- control ---------------------------------------------------------------------------
        last_col = cols_left <= C
        last_row = rows_left <= R
        with m.FSM(name="control") as ctrl:
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [error.eq(0), self.cycles.eq(0),
                                 self.mac_cycles.eq(0), self.stall_load.eq(0),
                                 self.stall_store.eq(0), self.rd_bytes.eq(0),
                                 self.wr_bytes.eq(0)]
                    m.next = "PRECHECK"
            failed = self._check_states(m, c, "CHECK")
            with m.State("CHECK"):
                code = error_priority(m, **failed)
                m.d.sync += [error.eq(code), j0.eq(0), a_tile.eq(c.a_addr),
                             b_tile.eq(c.b_addr), c_tile.eq(c.c_addr), cin_tile.eq(c.cin_addr),
                             rows_left.eq(c.m), cols_left.eq(c.n), k_m1.eq(c.k - 1)]
                with m.If(code != 0):
                    m.next = "FINISH"
                with m.Else():
                    m.next = "TILE"
            with m.State("TILE"):
                m.d.comb += start_tile.eq(1)
                m.d.sync += [tile_rows.eq(Mux(last_row, rows_left, R)),
                             tile_cols.eq(Mux(last_col, cols_left, C))]
                m.next = "RUN"
            with m.State("RUN"):
                with m.If(tile_written):
                    with m.If(last_col & last_row):
                        m.next = "FINISH"
                    with m.Else():
                        m.next = "TILE"
                    with m.If(last_col):
                        m.d.sync += [j0.eq(0), b_tile.eq(c.b_addr), cols_left.eq(c.n),
                                     rows_left.eq(rows_left - R),
                                     a_tile.eq(a_tile + _const_mul(c.lda, R)),
                                     c_tile.eq(c_tile + _const_mul(c.ldc, R)),
                                     cin_tile.eq(cin_tile + _const_mul(c.ldcin, R))]
                    with m.Else():
                        m.d.sync += [j0.eq(j0 + C), b_tile.eq(b_tile + C),
                                     cols_left.eq(cols_left - C)]
            with m.State("FINISH"):
                m.d.comb += self.done.eq(1)
                m.next = "IDLE"
        m.d.comb += self.busy.eq(~ctrl.ongoing("IDLE"))

        # -- counters and bus errors -------------------------------------------------------------
        with m.If(axi.rvalid & axi.rready & (axi.rresp != RESP_OKAY)):
            m.d.sync += error.eq(EngineError.BUS_ERROR)
        with m.If(self.busy):
            m.d.sync += self.cycles.eq(self.cycles + 1)
        with m.If(operands.valid & operands.ready):
            m.d.sync += self.mac_cycles.eq(self.mac_cycles + 1)
        with m.If(ctrl.ongoing("RUN") & ~fed & ~operands.valid):
            m.d.sync += self.stall_load.eq(self.stall_load + 1)
        # stall_store stays 0: a tile's results are written before the next tile's first beat
        # is read, so the array never waits for them
        with m.If(axi.rvalid & axi.rready):
            m.d.sync += self.rd_bytes.eq(self.rd_bytes + Mux(cin_taken, 4, 1))
        with m.If(axi.wvalid & axi.wready):
            m.d.sync += self.wr_bytes.eq(self.wr_bytes + 4)
        return m

    def _check_states(self, m: Module, c, after: str):
        """The states that check command ``c``, from ``PRECHECK`` on to state ``after``; returns
        the failed checks, valid in state ``after``, as :func:`error_priority` takes them.

        The checks and their priority are the pipelined engine's (:func:`command_flags`,
        :func:`error_priority`), with one adder and one comparator for all four areas instead
        of a serial multiplier and an adder and a comparator per area: for each area (A, B, C,
        then C_in with ``accumulate``) STRIDE compares its row stride with its row's bytes and
        loads its base address, WALK adds the stride once per row after the first, END adds
        the row's bytes and notes whether the area ends past 4 GiB. That is ``rows + 1`` cycles
        an area, within the GEMM's own cost of a cycle or more per row. A command whose
        dimensions are zero or too large goes straight to ``after``, without walking.
        """
        flags = command_flags(c, self._config.requant_unit)
        area = Signal(2)
        # per area: base address, row stride, bytes per row, rows
        base = Array([c.a_addr, c.b_addr, c.c_addr, c.cin_addr])[area]
        stride = Array([c.lda, c.ldb, c.ldc, c.ldcin])[area]
        # `large` has been checked before any of these is used: the dimensions fit 16 bits
        m16, k16, n16 = c.m[:16], c.k[:16], c.n[:16]
        row_bytes = Array([k16, n16, out_row_bytes(c.requant, n16), n16 << 2])[area]
        rows = Array([m16, k16, m16, m16])[area]
        end = Signal(33)               # where the area ends so far
        over = Signal()                # end passed 2**33 on the way: beyond, whatever follows
        rows_left = Signal(16)
        bad_stride = Signal()
        beyond = Signal()
        last_area = (area == 3) | ((area == 2) & ~c.accumulate)
        total = end + Mux(rows_left == 0, row_bytes, stride)
        with m.State("PRECHECK"):
            m.d.sync += [area.eq(0), bad_stride.eq(0), beyond.eq(0)]
            with m.If(flags["zero"] | flags["large"] | flags["no_requant"]):
                m.next = after
            with m.Else():
                m.next = "STRIDE"
        with m.State("STRIDE"):
            m.d.sync += [end.eq(base), over.eq(0), rows_left.eq(rows - 1)]
            with m.If(stride < row_bytes):
                m.d.sync += bad_stride.eq(1)
                m.next = after
            with m.Else():
                m.next = "WALK"
        with m.State("WALK"):
            m.d.sync += end.eq(total)
            with m.If(total[33]):
                m.d.sync += over.eq(1)
            with m.If(rows_left != 0):
                m.d.sync += rows_left.eq(rows_left - 1)
            with m.Else():                # this cycle added the row's bytes: the area's end
                with m.If(over | total[33] | (total[:33] > (1 << 32))):
                    m.d.sync += beyond.eq(1)
                m.d.sync += area.eq(area + 1)
                m.next = "STRIDE"
                with m.If(last_area):
                    m.next = after
        return {**flags, "stride": bad_stride, "out_range": beyond}
