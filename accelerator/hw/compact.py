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
* the core is an :class:`~accelerator.hw.core.InPlaceCore`: once the tile's last beat has
  crossed the array, each result is read from its PE's accumulator, a 32-bit word per element
  (sign-extended from ``acc_width``): with ``MODE.accumulate``, a read of C_in and a wrapping
  add first; then one single-beat write, and its response, before the next element;
* the next tile starts once the last write of this one is answered.

The command is in the register block's block RAM
(:func:`~accelerator.hw.registers.memory_backed`); the engine reads it as it starts, with the
pipelined engine's checks, error codes and priority
(:func:`~accelerator.hw.engine.error_priority`), walked with one adder instead of a multiplier
(:class:`CommandCheck`). The control and the counters are the same interfaces
(:mod:`accelerator.hw.engine.signatures`), counted by the same
:class:`~accelerator.hw.engine.control.PerfCounters`. Its cycles are in
:func:`accelerator.model.perf.estimate` (docs/performance-model.md, "The compact engine").
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import fifo, wiring
from amaranth.lib.wiring import In, Out

from ..config import AcceleratorConfig
from ..model.regmap import DIM_WIDTH, ERROR_WIDTH, command_fields
from .axi import BURST_INCR, RESP_OKAY, AXI4Signature
from .core import InPlaceCore
from .engine import EngineError, const_mul, error_priority, out_row_bytes
from .engine.control import PerfCounters
from .engine.signatures import (
    ControlSignature,
    CountersSignature,
    EngineMembers,
    TrafficSignature,
    _alias,
    _Named,
)
from .registers import INDEX_WIDTH, field, offset

__all__ = ["READS_IN_FLIGHT", "CommandCheck", "CommandReadSignature", "CompactEngine"]

#: Operand reads the engine keeps in flight: enough for one read per cycle behind an AXI RAM
#: that answers two cycles after the address.
READS_IN_FLIGHT = 4

# AxCACHE "normal non-cacheable bufferable", as the DMA drives it.
_AXCACHE = 0b0011


class CommandReadSignature(_Named):
    """The register block's read port of the command (its block RAM:
    :func:`~accelerator.hw.registers.memory_backed`), from the reader: the word at ``index``
    arrives on ``data`` a cycle after ``read``."""

    def __init__(self):
        super().__init__({"read": Out(1), "index": Out(INDEX_WIDTH), "data": In(32)})


class CompactEngine(EngineMembers, wiring.Component):
    """Runs one GEMM per ``start`` with the core and one AXI4 master (module docstring).

    Members
    -------
    control : Out(ControlSignature()); counters : Out(CountersSignature())
        As :class:`~accelerator.hw.engine.GemmEngine`'s (``stall_store`` stays 0: a tile's
        results are written before the next tile's first beat is read, so the array never
        waits for them).
    cmd : Out(CommandReadSignature())
        The register block's read port of the command. The engine reads the command as it
        starts and keeps what it needs.
    mode : In(32)
        ``MODE``, sampled at ``start``.
    m_axi : Out(AXI4Signature(32, axi_data_width, 1))
        Single-beat reads and writes, one ID.
    traffic : Out(TrafficSignature())
        ``rd_bytes`` and ``wr_bytes``: payload bytes read (an operand byte each, 4 per C_in
        element) and written (4 per C element) by the last command, as the DMA counts them.
    abort : In(1)
        Pulse: stop the command. The engine requests nothing more, finishes what it has
        requested (the reads in flight and their beats; a C_in read, or a write and its
        response, under way) and then raises ``flush``.
    flush : Out(1)
        Nothing is in flight after an abort: reset the engine now (the accelerator ors it into
        the engine's reset, so every register goes back to idle without another gate).
    """

    # the flat names of the command port and the traffic counters, as testbenches name them
    cmd_read = _alias("cmd", "read")
    cmd_index = _alias("cmd", "index")
    cmd_data = _alias("cmd", "data")
    rd_bytes = _alias("traffic", "rd_bytes")
    wr_bytes = _alias("traffic", "wr_bytes")

    def __init__(self, config: AcceleratorConfig, *, dsp_pes: int | None = None,
                 paired_pes: int = 0):
        if config.engine != "compact":
            raise ValueError(f"CompactEngine needs engine = 'compact', not {config.engine!r}")
        self._config = config
        self._dsp_pes = dsp_pes
        self._paired_pes = paired_pes
        super().__init__({
            "control": Out(ControlSignature()), "counters": Out(CountersSignature()),
            "cmd": Out(CommandReadSignature()), "mode": In(32),
            "m_axi": Out(AXI4Signature(32, config.axi_data_width, 1)),
            "traffic": Out(TrafficSignature()),
            "abort": In(1), "flush": Out(1),
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
        m.submodules.counters = perf = PerfCounters()
        operands = core.operands

        # What the run needs of the command, read from the register block as it starts (the
        # check); the base addresses go straight into the tile registers.
        m.submodules.check = c = CommandCheck(cfg)
        wiring.connect(m, wiring.flipped(self.cmd), c.cmd)
        ctl, traffic = self.control, self.traffic
        error = Signal(ERROR_WIDTH)
        m.d.comb += ctl.error.eq(error)

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
        aborting = Signal()            # from an abort until the reset it asks for (``flush``)
        stopping = Signal()            # aborting, or the abort itself
        m.d.comb += stopping.eq(aborting | self.abort)
        with m.If(self.abort):
            m.d.sync += aborting.eq(1)
        tile_written = Signal()        # pulse: the writer has the last response of the tile

        # The AXI4 constants: single beats, one ID, normal non-cacheable bufferable access.
        m.d.comb += [
            axi.arlen.eq(0), axi.arburst.eq(BURST_INCR), axi.arcache.eq(_AXCACHE),
            axi.awlen.eq(0), axi.awburst.eq(BURST_INCR), axi.awcache.eq(_AXCACHE),
            axi.awsize.eq(2), axi.wlast.eq(1),
        ]

        # -- reader: issue the tile's K·(R+C) operand reads -----------------------------------
        # a tag per slot: its byte lane, whether it is skipped, whether its k is the last
        m.submodules.tags = tags = fifo.SyncFIFO(width=2 + lane_bits, depth=READS_IN_FLIGHT)
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
            tags.w_data.eq(Cat(ptr[:lane_bits], skip, k_issue == k_m1)),
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
        # aborting: no read after the one on the bus (an AXI request, once valid, stays valid)
        with m.If(stopping & (~op_arvalid | axi.arready)):
            m.d.sync += issuing.eq(0)

        # -- gather: the bytes of a beat, in slot order, then into the core -------------------
        # ``gather`` is the beat itself: when it is full and the core takes it, the byte arriving
        # in that cycle starts the next one.
        tag_skip = tags.r_data[lane_bits]
        tag_last = tags.r_data[lane_bits + 1]
        count = Signal(range(slots + 1))
        gather = Signal(8 * slots)
        beat_last = Signal()
        full = count == slots
        fed = Signal()                 # the tile's last beat has gone into the core
        take = Signal()
        byte = Signal(8)
        m.d.comb += [
            # aborting: the bytes still arriving are taken whether the core wants them or not
            take.eq(tags.r_rdy & (tag_skip | axi.rvalid) & (~full | operands.ready | stopping)),
            byte.eq(Mux(tag_skip, 0, axi.rdata.word_select(tags.r_data[:lane_bits], 8))),
            tags.r_en.eq(take),
        ]
        with m.If(take):
            m.d.sync += [gather.eq(Cat(gather[8:], byte)), count.eq(Mux(full, 1, count + 1))]
            with m.If(count == slots - 1):
                m.d.sync += beat_last.eq(tag_last)
        with m.Elif(full & operands.ready):
            m.d.sync += count.eq(0)
        with m.If(start_tile):
            m.d.sync += [count.eq(0), fed.eq(0)]
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

        with m.FSM(name="writer") as writer:
            with m.State("IDLE"):
                with m.If(start_tile):
                    tile_col = j0 << 2
                    m.d.sync += [row.eq(0), col.eq(0), w_row.eq(c_tile + tile_col),
                                 r_row.eq(cin_tile + tile_col)]
                    m.next = "ELEMENT"
            with m.State("ELEMENT"):
                # `done` is the last tile's until this tile's first beat: wait for the last one
                with m.If(stopping):
                    m.next = "IDLE"
                with m.Elif(fed & core.done):
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
                    with m.If(stopping):
                        m.next = "IDLE"
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
                with m.If(ctl.start):
                    mode = self.mode
                    m.d.comb += [c.start.eq(1), perf.clear.eq(1)]
                    m.d.sync += [error.eq(0), traffic.rd_bytes.eq(0), traffic.wr_bytes.eq(0),
                                 c.accumulate.eq(field("MODE", "accumulate").extract(mode)),
                                 c.requant.eq(field("MODE", "requant").extract(mode))]
                    m.next = "CHECKING"
            with m.State("CHECKING"):
                with m.If(c.done):
                    m.next = "CHECK"
            with m.State("CHECK"):
                code = c.code
                m.d.sync += [error.eq(code), j0.eq(0), k_m1.eq(c.k - 1)]
                with m.If(code != 0):
                    m.next = "FINISH"
                with m.Else():
                    m.next = "TILE"
            with m.State("TILE"):
                m.d.comb += start_tile.eq(~stopping)
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
                                     a_tile.eq(a_tile + const_mul(c.lda, R)),
                                     c_tile.eq(c_tile + const_mul(c.ldc, R)),
                                     cin_tile.eq(cin_tile + const_mul(c.ldcin, R))]
                    with m.Else():
                        m.d.sync += [j0.eq(j0 + C), b_tile.eq(b_tile + C),
                                     cols_left.eq(cols_left - C)]
            with m.State("FINISH"):
                m.d.comb += ctl.done.eq(~stopping)
                m.next = "IDLE"
        # the check's reads: M and N into the walk's counters, the bases into the tile registers
        with m.If(c.load_m):
            m.d.sync += rows_left.eq(c.word)
        with m.If(c.load_n):
            m.d.sync += cols_left.eq(c.word)
        for i, tile in enumerate((a_tile, b_tile, c_tile, cin_tile)):
            with m.If(c.load_base[i]):
                m.d.sync += tile.eq(c.word)
        m.d.comb += c.m.eq(rows_left)
        m.d.comb += [ctl.busy.eq(~ctrl.ongoing("IDLE") | aborting),
                     self.flush.eq(aborting & ~issuing & ~tags.r_rdy & writer.ongoing("IDLE"))]

        # -- counters and bus errors -------------------------------------------------------------
        with m.If(axi.rvalid & axi.rready & (axi.rresp != RESP_OKAY)):
            m.d.sync += error.eq(EngineError.BUS_ERROR)
        # stall_store stays 0: a tile's results are written before the next tile's first beat
        # is read, so the array never waits for them
        m.d.comb += [perf.busy.eq(ctl.busy), perf.mac.eq(operands.valid & operands.ready),
                     perf.stall_load.eq(ctrl.ongoing("RUN") & ~fed & ~operands.valid)]
        wiring.connect(m, wiring.flipped(self.counters), perf.counters)
        with m.If(axi.rvalid & axi.rready):
            m.d.sync += traffic.rd_bytes.eq(traffic.rd_bytes + Mux(cin_taken, 4, 1))
        with m.If(axi.wvalid & axi.wready):
            m.d.sync += traffic.wr_bytes.eq(traffic.wr_bytes + 4)
        return m


class CommandCheck(wiring.Component):
    """Reads the command from the register block and checks it as it goes, with the pipelined
    engine's checks and priority (:func:`~accelerator.hw.engine.error_priority`).

    From ``start``: DIMS reads M, K and N (M and N out through ``word`` with ``load_m`` and
    ``load_n``, into the engine's walk counters) and notes whether one is zero or too large;
    such a command ends the check at once. Then for each area (A, B, C, and C_in with
    ``accumulate``): BASE reads its base address, STRIDE hands it out (``load_base``, into the
    engine's tile register) and reads its row stride, STRIDE_CHECK keeps the stride and compares
    it with the row's bytes, and WALK adds it once per row after the first, then the row's
    bytes, with one adder for all four areas, and notes whether the area ends past 4 GiB:
    ``rows + 3`` cycles an area, within the GEMM's own cost of a cycle or more per row. Its
    cycles are in :func:`accelerator.model.perf.estimate`.

    Members
    -------
    start : In(1)
        Begin (a pulse; the check is idle).
    cmd : Out(CommandReadSignature())
    accumulate, requant : In(1)
        ``MODE``'s, held from the cycle after ``start``.
    m : In(16)
        M, as the engine holds it once ``load_m`` has passed it on.
    done : Out(1)
        The check is over (a pulse); ``code`` is valid from the next cycle until ``start``.
    code : Out(ERROR_WIDTH)
        The :class:`~accelerator.hw.registers.ErrorCode` of the command (0: none).
    word, load_m, load_n, load_base : Out(32), Out(1), Out(1), Out(4)
        A word read, and which register of the engine takes it: M, N or the base of area A,
        B, C or C_in.
    k, n : Out(DIM_WIDTH); b_addr, lda, ldb, ldc, ldcin : Out(32)
        What the run needs of the command besides (K and N fit DIM_WIDTH bits once checked).
    """

    def __init__(self, config: AcceleratorConfig):
        self._config = config
        super().__init__({
            "start": In(1), "cmd": Out(CommandReadSignature()),
            "accumulate": In(1), "requant": In(1), "m": In(16),
            "done": Out(1), "code": Out(ERROR_WIDTH),
            "word": Out(32), "load_m": Out(1), "load_n": Out(1), "load_base": Out(4),
            "k": Out(DIM_WIDTH), "n": Out(DIM_WIDTH),
            **{name: Out(32) for name in ("b_addr", "lda", "ldb", "ldc", "ldcin")},
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        c = self
        m_rows = self.m
        data = self.cmd.data
        m.d.comb += self.word.eq(data)
        area = Signal(2)
        dim = Signal(2)
        zero, large, misaligned, bad_stride, beyond = (Signal(name=name) for name in (
            "zero", "large", "misaligned", "bad_stride", "beyond"))

        def index(names):
            return Array(offset(name) >> 2 for name in names)

        # the register map's command table: A, B, C, C_in, in that order (the areas' indices)
        bases = tuple(f.register for f in command_fields("address"))
        strides = tuple(f.register for f in command_fields("stride"))
        dims = tuple(f.register for f in command_fields("dimension"))
        assert tuple(f.matrix for f in command_fields("address")) == ("a", "b", "c", "c_in")
        rows = Array([m_rows, c.k, m_rows, m_rows])[area]
        row_bytes = Array([c.k, c.n, out_row_bytes(c.requant, c.n), c.n << 2])[area]
        end = Signal(33)               # where the area ends so far
        over = Signal()                # end passed 2**33 on the way: beyond, whatever follows
        walk = Signal(16)              # rows still to add
        step = Signal(32)              # the area's stride
        last_area = (area == 3) | ((area == 2) & ~c.accumulate)
        total = end + Mux(walk == 0, row_bytes, step)
        no_requant = c.requant & (0 if self._config.requant_unit else 1)
        int32_c = ~c.requant
        with m.FSM(name="check"):
            with m.State("IDLE"):
                with m.If(self.start):
                    m.next = "DIMS"
            with m.State("DIMS"):          # M, K, N read in cycles 0-2, arriving in 1-3
                with m.If(dim != 3):
                    m.d.comb += [self.cmd.read.eq(1),
                                 self.cmd.index.eq(index(dims)[dim])]
                with m.If(dim == 0):
                    m.d.sync += [zero.eq(0), large.eq(0)]
                with m.Else():
                    m.d.sync += [zero.eq(zero | (data == 0)),
                                 large.eq(large | (data[DIM_WIDTH:] != 0))]
                with m.Switch(dim):
                    with m.Case(1):
                        m.d.comb += self.load_m.eq(1)
                    with m.Case(2):
                        m.d.sync += c.k.eq(data)
                    with m.Case(3):
                        m.d.sync += c.n.eq(data)
                        m.d.comb += self.load_n.eq(1)
                        m.next = "PRECHECK"
                m.d.sync += dim.eq(dim + 1)
            with m.State("PRECHECK"):
                m.d.sync += [area.eq(0), bad_stride.eq(0), beyond.eq(0), misaligned.eq(0)]
                with m.If(zero | large | no_requant):
                    m.d.comb += self.done.eq(1)
                    m.next = "IDLE"
                with m.Else():
                    m.next = "BASE"
            with m.State("BASE"):
                m.d.comb += [self.cmd.read.eq(1), self.cmd.index.eq(index(bases)[area])]
                m.next = "STRIDE"
            with m.State("STRIDE"):        # the base arrives
                m.d.comb += [self.cmd.read.eq(1), self.cmd.index.eq(index(strides)[area])]
                m.d.sync += [end.eq(data), over.eq(0), walk.eq(rows - 1)]
                with m.Switch(area):
                    for i, name in enumerate(bases):
                        with m.Case(i):
                            m.d.comb += self.load_base[i].eq(1)
                            if name == "B_ADDR":
                                m.d.sync += c.b_addr.eq(data)
                            if name in ("C_ADDR", "CIN_ADDR"):   # int32 elements
                                with m.If((int32_c if name == "C_ADDR" else 1) & (data[:2] != 0)):
                                    m.d.sync += misaligned.eq(1)
                m.next = "STRIDE_CHECK"
            with m.State("STRIDE_CHECK"):  # the stride arrives
                m.d.sync += step.eq(data)
                with m.Switch(area):
                    for i, name in enumerate(strides):
                        with m.Case(i):
                            m.d.sync += getattr(c, command_fields("stride")[i].name).eq(data)
                            if name in ("LDC", "LDCIN"):
                                with m.If((int32_c if name == "LDC" else 1) & (data[:2] != 0)):
                                    m.d.sync += misaligned.eq(1)
                with m.If(data < row_bytes):
                    m.d.sync += bad_stride.eq(1)
                    m.d.comb += self.done.eq(1)
                    m.next = "IDLE"
                with m.Else():
                    m.next = "WALK"
            with m.State("WALK"):
                m.d.sync += end.eq(total)
                with m.If(total[33]):
                    m.d.sync += over.eq(1)
                with m.If(walk != 0):
                    m.d.sync += walk.eq(walk - 1)
                with m.Else():                # this cycle added the row's bytes: the area's end
                    with m.If(over | total[33] | (total[:33] > (1 << 32))):
                        m.d.sync += beyond.eq(1)
                    m.d.sync += area.eq(area + 1)
                    m.next = "BASE"
                    with m.If(last_area):
                        m.d.comb += self.done.eq(1)
                        m.next = "IDLE"
        m.d.comb += self.code.eq(error_priority(
            m, zero=zero, large=large, no_requant=no_requant, stride=bad_stride,
            misaligned=misaligned, out_range=beyond))
        return m
