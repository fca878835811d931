"""The GEMM engine: scratchpads, the tiled sequencer and the result path around the core.

It runs one ``C[m×n] (+)= A[m×k] · B[k×n]`` per start pulse and talks to memory only through the
DMA's streams (``rd_cmd``/``rd_data``, ``wr_cmd``/``wr_data``). The walk and the scratchpads are
those of docs/performance-model.md ("Tiling") and :class:`~accelerator.model.geometry.Geometry`:

* B panels (k rows × C columns) outermost, double-buffered in the B scratchpad;
* chunks of A rows inside a panel: R rows (os) or as many as half the A scratchpad holds (ws),
  double-buffered in the A scratchpad;
* each chunk's results accumulate in half of the C scratchpad (preloaded with C_in when
  accumulating), and are then stored, requantized or not.

Five stages run at once. Each walks the same chunks with its own :class:`ChunkWalker` and hands
buffers on through flags (``busy``: claimed by the loader; ``full``: its data has arrived):

    loader ─► A, B, C_in ─► feeder(s) ─► core ─► accumulator ─► C scratchpad ─► store

A bad command sets ``error`` and ends at once. An AXI error response sets ``error`` and the GEMM
runs to its end (the bus still answers every beat), so the engine never hangs.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..config import AcceleratorConfig
from ..model.geometry import STORE_FIFO_DEPTH, Geometry
from ..model.regmap import COMMAND, DIM_WIDTH
from .core import SystolicCore
from .dma import CMD_LAYOUT, data_layout
from .registers import MAX_DIM, ErrorCode
from .requant import Requantizer
from .serialmul import SerialMulAdd
from .walker import ChunkWalker

__all__ = ["EngineError", "GemmEngine", "command_layout", "error_priority", "out_row_bytes"]


#: The error codes of a command: the register map's, so software and hardware agree.
EngineError = ErrorCode


def command_layout() -> data.StructLayout:
    """The command as the engine latches it: a member per field of the register map's
    :data:`~accelerator.model.regmap.COMMAND`, with its register field's width and sign."""
    return data.StructLayout({f.name: signed(f.width) if f.signed else unsigned(f.width)
                              for f in COMMAND})


def _log2(x: int) -> int:
    assert x & (x - 1) == 0, x
    return x.bit_length() - 1


class _Flags:
    """A pair of flags per double-buffer half, set and cleared by different stages."""

    def __init__(self, m: Module, name: str, restart):
        self.value = Signal(2, name=name)
        self.set = Signal(2, name=f"{name}_set")
        self.clr = Signal(2, name=f"{name}_clr")
        with m.If(restart):
            m.d.sync += self.value.eq(0)
        with m.Else():
            m.d.sync += self.value.eq((self.value | self.set) & ~self.clr)

    def __getitem__(self, half):
        return self.value.bit_select(half, 1)


class _KStep:
    """The walk over K in steps of ``step`` bytes (one step when K fits the scratchpads).

    ``len``, ``len_m1`` and ``last`` are registers, loaded with the next step's values when the
    walk restarts or advances: computed from ``k - kc0`` combinationally they were the longest
    path of the design (a 32-bit subtraction, then a comparison, then the feeder's control).
    ``k`` must not change between a restart and the end of the walk.
    """

    def __init__(self, m: Module, name: str, k, step: int, restart, advance):
        self.kc0 = Signal(32, name=f"{name}_kc0")      # first k of this step
        self.len = Signal(32, name=f"{name}_len")      # k values in this step
        self.len_m1 = Signal(32, name=f"{name}_len_m1")  # len - 1
        self.last = Signal(name=f"{name}_last", init=1)
        left = Signal(32, name=f"{name}_left")          # k - kc0

        def load(value):
            length = Mux(value < step, value, step)
            return [left.eq(value), self.last.eq(value <= step), self.len.eq(length),
                    self.len_m1.eq(length - 1)]

        # the value kc0 takes at the next edge
        self.kc0_next = Signal(32, name=f"{name}_kc0_next")
        m.d.comb += self.kc0_next.eq(self.kc0)
        with m.If(restart | (advance & self.last)):
            m.d.sync += [self.kc0.eq(0), *load(k)]
            m.d.comb += self.kc0_next.eq(0)
        with m.Elif(advance):
            m.d.sync += [self.kc0.eq(self.kc0 + step), *load(left - step)]
            m.d.comb += self.kc0_next.eq(self.kc0 + step)


class _RowAddress:
    """``base + row0·stride + col0·col_bytes`` of a :class:`ChunkWalker`, as running sums.

    A multiplier per address would cost more than the array on a small FPGA; the walk only ever
    moves to the next chunk (``chunk_stride = chunk·stride`` on) or to the next panel
    (``panel_step = C·col_bytes`` on from the panel's first row).
    """

    def __init__(self, m: Module, name: str, walker: ChunkWalker, base, chunk_stride,
                 panel_step, restart):
        self.addr = Signal(32, name=f"{name}_addr")
        self.next = Signal(32, name=f"{name}_next")   # the value addr takes at the next edge
        panel = Signal(32, name=f"{name}_panel")
        m.d.comb += self.next.eq(self.addr)
        with m.If(restart):
            m.d.sync += panel.eq(base)
            m.d.comb += self.next.eq(base)
        with m.Elif(walker.advance):
            with m.If(walker.last_in_panel):
                m.d.sync += panel.eq(panel + panel_step)
                m.d.comb += self.next.eq(panel + panel_step)
            with m.Else():
                m.d.comb += self.next.eq(self.addr + chunk_stride)
        m.d.sync += self.addr.eq(self.next)


def _const_mul(x, constant: int):
    """``x·constant`` as shifts and adds: yosys would put a constant ``*`` in DSP blocks."""
    terms = [x << i for i in range(constant.bit_length()) if constant >> i & 1]
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


def out_row_bytes(requant, n):
    """Bytes of a row of C: ``n`` int8 with ``MODE.requant``, else ``n`` int32."""
    return Mux(requant, n, n << 2)


def error_priority(m: Module, *, zero, large, no_requant, stride, misaligned, out_range):
    """The :class:`ErrorCode` of a command from its failed checks, in priority order (0: none).

    Both engines check the same things, each its own way; this is the one order.
    """
    code = Signal(8)
    failed = [(zero, EngineError.ZERO_DIM), (large, EngineError.TOO_LARGE),
              (no_requant, EngineError.NO_REQUANT), (stride, EngineError.STRIDE),
              (misaligned, EngineError.MISALIGNED), (out_range, EngineError.ADDR_RANGE)]
    for i, (check, error) in enumerate(failed):
        with (m.If if i == 0 else m.Elif)(check):
            m.d.comb += code.eq(error)
    return code


def _fifo_gate(queue, pending):
    """Issue a synchronous read only if its data will find room in ``queue``."""
    return queue.level + pending < queue.depth - 1


class GemmEngine(wiring.Component):
    """Runs one tiled GEMM per ``start`` (see the module docstring).

    Members
    -------
    start : In(1)
        Begin the command on ``cmd`` (ignored while ``busy``).
    cmd : In(command_layout())
        Addresses, dimensions, strides (bytes), mode and requantization parameters.
    busy : Out(1)
    done : Out(1)
        One cycle when a command ends, with or without an error.
    error : Out(8)
        The :class:`EngineError` of the last command.
    cycles, mac_cycles, stall_load, stall_store : Out(32)
        Performance counters of the last command (cleared on start): cycles busy, cycles the
        array took an operand beat, cycles it had none to take for want of loaded data, cycles
        it waited for the store (no operand because its chunk's C half is not yet stored, or a
        result that could not leave). A cycle counts in at most one of the two stall counters.
    rd_cmd, wr_cmd : Out(stream.Signature(dma.CMD_LAYOUT))
        2-D transfers: ``rows`` rows of ``row_bytes`` bytes, ``stride`` bytes apart.
    rd_data : In(stream.Signature(dma.data_layout(config)))
    wr_data : Out(stream.Signature(dma.data_layout(config)))
        Row data, realigned so that byte 0 of a row is byte 0 of its first beat.
    dma_busy, dma_error : In(1)
        The DMA still has writes in flight; an AXI response was an error.
    """

    def __init__(self, config: AcceleratorConfig, *, dsp_pes: int | None = None,
                 paired_pes: int = 0):
        self._config = config
        self._dsp_pes = dsp_pes
        self._paired_pes = paired_pes
        self.geometry = Geometry.of(config)
        super().__init__({
            "start": In(1), "cmd": In(command_layout()),
            "busy": Out(1), "done": Out(1), "error": Out(8),
            "cycles": Out(32), "mac_cycles": Out(32), "stall_load": Out(32),
            "stall_store": Out(32),
            "rd_cmd": Out(stream.Signature(CMD_LAYOUT)),
            "rd_data": In(stream.Signature(data_layout(config))),
            "wr_cmd": Out(stream.Signature(CMD_LAYOUT)),
            "wr_data": Out(stream.Signature(data_layout(config))),
            "dma_busy": In(1), "dma_error": In(1),
        })

    def elaborate(self, platform) -> Module:
        cfg = self._config
        geo = self.geometry
        R, C, B = cfg.rows, cfg.cols, cfg.axi_bytes
        lb = _log2(B)
        os_flow = cfg.dataflow == "os"
        m = Module()
        m.submodules.core = core = SystolicCore(cfg, dsp_pes=self._dsp_pes,
                                                   paired_pes=self._paired_pes)
        self._core = core

        # -- the command, latched at start -----------------------------------------------------
        c = Signal(command_layout())
        chunk = Signal(16)           # rows of A per chunk
        words = Signal(16)           # ws: bus words per row of A in the scratchpad
        split = Signal()             # K does not fit the scratchpads: walk it in steps
        running = Signal()
        restart = Signal()
        m.d.comb += split.eq(c.k > geo.k_step)
        # products the serial multiplier computes at set-up (see the control FSM)
        chunk_lda = Signal(32)       # chunk·lda: the A address step from chunk to chunk
        chunk_ldc = Signal(32)
        chunk_ldcin = Signal(32)
        beyond = Signal(4)           # the A, B, C and C_in areas end past 4 GiB

        def walker(name: str) -> ChunkWalker:
            w = ChunkWalker(C)
            m.submodules[name] = w
            m.d.comb += [w.m.eq(c.m), w.n.eq(c.n), w.chunk.eq(chunk), w.restart.eq(restart)]
            return w

        # -- scratchpads -----------------------------------------------------------------------
        word = data.ArrayLayout(8, B)
        if os_flow:
            a_mems = [Memory(shape=word, depth=geo.a_words, init=[]) for _ in range(R)]
            for p, mem in enumerate(a_mems):
                m.submodules[f"spad_a{p}"] = mem
            a_wr = [mem.write_port() for mem in a_mems]
            a_rd = [mem.read_port() for mem in a_mems]
        else:
            a_mem = Memory(shape=word, depth=geo.a_words, init=[])
            m.submodules.spad_a = a_mem
            a_wr = [a_mem.write_port()]
            a_rd = [a_mem.read_port() for _ in range(geo.a_ports)]
        b_mem = Memory(shape=data.ArrayLayout(8, C), depth=cfg.spad_b_depth, init=[])
        m.submodules.spad_b = b_mem
        b_wr = b_mem.write_port(granularity=1)  # per byte lane
        b_rd = b_mem.read_port()
        c_mem = Memory(shape=data.ArrayLayout(signed(32), C), depth=cfg.spad_c_depth, init=[])
        m.submodules.spad_c = c_mem
        c_wr = c_mem.write_port(granularity=1)  # per int32 lane
        c_rd_acc = c_mem.read_port()
        c_rd_store = c_mem.read_port()

        a_busy, a_full = _Flags(m, "a_busy", restart), _Flags(m, "a_full", restart)
        b_busy, b_full = _Flags(m, "b_busy", restart), _Flags(m, "b_full", restart)
        c_busy, c_ready = _Flags(m, "c_busy", restart), _Flags(m, "c_ready", restart)
        c_done = _Flags(m, "c_done", restart)
        # ws: a B half is free when both feeders are done with it; the operand feeder can be a
        # few beats ahead of the weights feeder, or the other way round
        b_used_w = _Flags(m, "b_used_w", restart)
        b_used_o = _Flags(m, "b_used_o", restart)
        if cfg.dataflow == "ws":
            both = Signal(2)
            m.d.comb += [both.eq(b_used_w.value & b_used_o.value),
                         b_full.clr.eq(both), b_busy.clr.eq(both),
                         b_used_w.clr.eq(both), b_used_o.clr.eq(both)]

        # ==========================================================================================
        # Loader: DMA read commands, and where the data they return goes.
        # ==========================================================================================
        KIND_A, KIND_B, KIND_CIN = 0, 1, 2
        route_layout = data.StructLayout({"kind": 2, "half": 1})
        m.submodules.route = route = fifo.SyncFIFOBuffered(width=route_layout.size, depth=4)
        lw = walker("load_walk")
        l_step = Signal()            # advance K step (and the walker after the last one)
        lk = _KStep(m, "load_k", c.k, geo.k_step, restart, l_step)
        a_row = _RowAddress(m, "load_a", lw, c.a_addr, chunk_lda, 0, restart)
        b_row = _RowAddress(m, "load_b", lw, c.b_addr, 0, C, restart)
        cin_row = _RowAddress(m, "load_cin", lw, c.cin_addr, chunk_ldcin, 4 * C, restart)
        b_koff = Signal(32)          # kc0·ldb, the B rows of earlier K steps
        b_koff_next = Signal(32)
        m.d.comb += b_koff_next.eq(b_koff)
        with m.If(restart):
            m.d.comb += b_koff_next.eq(0)
        with m.Elif(l_step):
            m.d.comb += b_koff_next.eq(Mux(lk.last, 0, b_koff + _const_mul(c.ldb, geo.k_step)))
        m.d.sync += b_koff.eq(b_koff_next)
        # The A and B load addresses are registers, summed from the next values of their parts:
        # summed when issued, they reached through the DMA splitter's start of a row in one
        # cycle (the 25F board tops' longest path once the requantizer was pipelined).
        a_load = Signal(32)          # a_row.addr + lk.kc0
        b_load = Signal(32)          # b_addr + b_koff + col0
        m.d.sync += [a_load.eq(a_row.next + lk.kc0_next), b_load.eq(b_row.next + b_koff_next)]
        l_apar = Signal()            # the A half of the next A load
        l_bpar = Signal()            # the B half of the next B load
        l_done = Signal()
        # chunks whose C half the loader has claimed: a feeder may start chunk t only once
        # t < c_claims, or it would take the flags of the chunk two back for its own
        c_claims = Signal(32)
        self._c_claims = c_claims
        c_wait = Signal()            # the loader waits for the store to free a C half
        rd_cmd = self.rd_cmd

        def issue(addr, rows, row_bytes, stride, kind, half):
            m.d.comb += [
                rd_cmd.valid.eq(1), rd_cmd.payload.addr.eq(addr), rd_cmd.payload.rows.eq(rows),
                rd_cmd.payload.row_bytes.eq(row_bytes), rd_cmd.payload.stride.eq(stride),
                route.w_data.eq(Cat(Const(kind, 2), half)), route.w_en.eq(rd_cmd.ready),
            ]
            return rd_cmd.ready

        def next_step():
            m.d.comb += l_step.eq(1)
            with m.If(lk.last):
                m.d.comb += lw.advance.eq(1)
                with m.If(lw.last):
                    m.d.sync += l_done.eq(1)
                    m.next = "IDLE"
                with m.Else():
                    m.next = "PANEL"
            with m.Else():
                m.next = "PANEL"

        with m.FSM(name="loader"):
            with m.State("IDLE"):
                with m.If(running & ~l_done):
                    m.next = "PANEL"
            with m.State("PANEL"):
                # a B panel stays for the whole panel when K fits; else a K step of it per step
                with m.If(~split & ~lw.first_in_panel):
                    m.next = "A"
                with m.Elif(~b_busy[l_bpar] & route.w_rdy):
                    with m.If(issue(b_load, lk.len, lw.cols, c.ldb,
                                    KIND_B, l_bpar)):
                        m.d.comb += b_busy.set.bit_select(l_bpar, 1).eq(1)
                        m.d.sync += l_bpar.eq(~l_bpar)
                        m.next = "A"
            # A before C_in: the C half is freed only when the store has read the chunk two
            # back, and the A load (the long one) must not wait for that.
            with m.State("A"):
                with m.If(~a_busy[l_apar] & route.w_rdy):
                    with m.If(issue(a_load, lw.rows, lk.len, c.lda,
                                    KIND_A, l_apar)):
                        m.d.comb += a_busy.set.bit_select(l_apar, 1).eq(1)
                        m.d.sync += l_apar.eq(~l_apar)
                        with m.If(lk.kc0 == 0):
                            m.next = "CIN"
                        with m.Else():
                            next_step()
            with m.State("CIN"):
                half = lw.index[0]
                claimed = Signal()
                m.d.comb += c_wait.eq(c_busy[half])
                with m.If(~c_busy[half]):
                    with m.If(~c.accumulate):
                        m.d.comb += [c_busy.set.bit_select(half, 1).eq(1),
                                     c_ready.set.bit_select(half, 1).eq(1), claimed.eq(1)]
                    with m.Elif(route.w_rdy):
                        with m.If(issue(cin_row.addr,
                                        lw.rows, lw.cols << 2, c.ldcin, KIND_CIN, half)):
                            m.d.comb += [c_busy.set.bit_select(half, 1).eq(1), claimed.eq(1)]
                with m.If(claimed):
                    m.d.sync += c_claims.eq(c_claims + 1)
                    next_step()
        with m.If(restart):
            m.d.sync += [l_apar.eq(0), l_bpar.eq(0), l_done.eq(0), c_claims.eq(0)]

        # the data: each command's beats go where the head of `route` says
        head = data.View(route_layout, route.r_data)
        rd = self.rd_data
        row = Signal(16)
        beat = Signal(16)
        row_base = Signal(16)        # ws: the current row's first word in the A scratchpad
        acc_writes = Signal()        # the accumulator owns the C write port this cycle
        is_cin = Signal()
        beat_ok = Signal()
        m.d.comb += [
            is_cin.eq(head.kind == KIND_CIN),
            rd.ready.eq(route.r_rdy & ~(is_cin & acc_writes)),
            beat_ok.eq(rd.valid & rd.ready),
        ]
        with m.If(beat_ok):
            with m.If(rd.payload.end):
                m.d.sync += [row.eq(0), beat.eq(0), row_base.eq(0)]
                m.d.comb += route.r_en.eq(1)
                with m.Switch(head.kind):
                    with m.Case(KIND_A):
                        m.d.comb += a_full.set.bit_select(head.half, 1).eq(1)
                    with m.Case(KIND_B):
                        m.d.comb += b_full.set.bit_select(head.half, 1).eq(1)
                    with m.Case(KIND_CIN):
                        m.d.comb += c_ready.set.bit_select(head.half, 1).eq(1)
            with m.Elif(rd.payload.last):
                m.d.sync += [row.eq(row + 1), beat.eq(0), row_base.eq(row_base + words)]
            with m.Else():
                m.d.sync += beat.eq(beat + 1)

        if os_flow:
            for p in range(R):
                m.d.comb += [
                    a_wr[p].addr.eq(head.half * geo.a_half + beat),
                    a_wr[p].data.eq(rd.payload.data),
                    a_wr[p].en.eq(beat_ok & (head.kind == KIND_A) & (row == p)),
                ]
        else:
            m.d.comb += [
                a_wr[0].addr.eq(head.half * geo.a_half + row_base + beat),
                a_wr[0].data.eq(rd.payload.data),
                a_wr[0].en.eq(beat_ok & (head.kind == KIND_A)),
            ]
        # row k of a B panel is entry k; a row wider than the bus comes in several beats
        m.d.comb += b_wr.addr.eq(head.half * geo.b_half + row)
        for lane in range(C):
            src_beat, src_byte = divmod(lane, B)
            m.d.comb += [
                b_wr.data[lane].eq(rd.payload.data[src_byte]),
                b_wr.en[lane].eq(beat_ok & (head.kind == KIND_B) & (beat == src_beat)),
            ]

        # ==========================================================================================
        # Feeder(s): scratchpads to the core, and a pass descriptor per tile for the accumulator.
        # ==========================================================================================
        pass_layout = data.StructLayout({"half": 1, "rows": 16, "read_old": 1, "last": 1})
        m.submodules.passes = passes = fifo.SyncFIFOBuffered(width=pass_layout.size, depth=8)
        f_done = Signal()
        if os_flow:
            self._os_feeder(m, c, walker("feed_walk"), running, restart, f_done, passes,
                            pass_layout, a_rd, b_rd, a_full, a_busy, b_full, b_busy, c_ready,
                            split)
        else:
            self._ws_feeder(m, c, walker, running, restart, f_done, passes, pass_layout, a_rd,
                            b_rd, a_full, a_busy, b_full, b_used_o, b_used_w, c_ready, words,
                            split)

        # ==========================================================================================
        # Accumulator: core results into the C scratchpad, adding what is there when needed.
        # ==========================================================================================
        results = core.results
        pass_r = data.View(pass_layout, passes.r_data)
        acc_row = Signal(16)
        got = Signal()
        m.d.comb += [results.ready.eq(passes.r_rdy), got.eq(results.valid & results.ready)]
        addr = Signal(range(cfg.spad_c_depth))
        m.d.comb += [addr.eq(pass_r.half * geo.c_half + acc_row),
                     c_rd_acc.addr.eq(addr), c_rd_acc.en.eq(got)]
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
        with m.If(restart):
            m.d.sync += acc_row.eq(0)
        with m.If(s1_chunk_done):
            m.d.comb += c_done.set.bit_select(s1_half, 1).eq(1)
        m.d.comb += acc_writes.eq(s1_valid)
        with m.If(s1_valid):
            m.d.comb += [c_wr.addr.eq(s1_addr), c_wr.en.eq((1 << C) - 1)]
            for lane in range(C):
                # the sum wraps in acc_width bits, like the PEs' (a no-op at 32)
                total = s1_value[lane] + Mux(s1_read, c_rd_acc.data[lane], 0)
                m.d.comb += c_wr.data[lane].eq(total[:min(cfg.acc_width, 32)].as_signed())
        with m.Else():
            # C_in rows from the loader take the port when the accumulator leaves it
            m.d.comb += c_wr.addr.eq(head.half * geo.c_half + row)
            per_beat = B // 4
            for lane in range(C):
                src_beat, src_word = divmod(lane, per_beat)
                m.d.comb += [
                    c_wr.data[lane].eq(rd.payload.data.as_value().word_select(src_word, 32)),
                    c_wr.en[lane].eq(beat_ok & is_cin & (beat == src_beat)),
                ]

        # ==========================================================================================
        # Store: C scratchpad rows, requantized or not, to the DMA writer.
        # ==========================================================================================
        s_done = Signal()
        s_drained = Signal()         # every row the store read has left as write data
        self._store(m, c, walker("store_walk"), running, restart, s_done, s_drained, c_rd_store,
                    c_done, c_busy, c_ready, chunk_ldc)

        # ==========================================================================================
        # Control: check the command, size the chunks, run, finish.
        # ==========================================================================================
        error = Signal(8)
        used = Signal(32)            # setup: words of half the A scratchpad given to rows
        m.d.comb += self.error.eq(error)
        # The set-up products go through one serial multiplier, a state each (its cycles are
        # in docs/performance-model.md): first where the four areas end, for the range check,
        # then (ws, where the chunk is known only after SETUP) the address steps per chunk.
        m.submodules.setup_mul = mul = SerialMulAdd(a_width=DIM_WIDTH, b_width=32)
        launched = Signal()

        def product(name: str, after: str, a, b, addend, sink, needed=None):
            def run():
                with m.If(~launched):
                    m.d.comb += [mul.start.eq(1), mul.a.eq(a), mul.b.eq(b),
                                 mul.addend.eq(addend)]
                    m.d.sync += launched.eq(1)
                with m.Elif(~mul.busy):
                    m.d.sync += [sink(mul.result), launched.eq(0)]
                    m.next = after

            with m.State(name):
                if needed is None:
                    run()
                else:
                    with m.If(needed):
                        run()
                    with m.Else():
                        m.next = after

        def ends_beyond(i: int):
            return lambda end: beyond[i].eq(end > (1 << 32))

        out_row = out_row_bytes(c.requant, c.n)
        if os_flow:  # the chunk is R rows: constant steps, no set-up cycles
            m.d.comb += [chunk_lda.eq(_const_mul(c.lda, R)), chunk_ldc.eq(_const_mul(c.ldc, R)),
                         chunk_ldcin.eq(_const_mul(c.ldcin, R))]
        with m.FSM(name="control") as ctrl:
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [c.eq(self.cmd), error.eq(0), self.cycles.eq(0),
                                 self.mac_cycles.eq(0), self.stall_load.eq(0),
                                 self.stall_store.eq(0), beyond.eq(0), launched.eq(0)]
                    m.next = "RANGE_A"
            product("RANGE_A", "RANGE_B", c.m - 1, c.lda, c.a_addr + c.k, ends_beyond(0))
            product("RANGE_B", "RANGE_C", c.k - 1, c.ldb, c.b_addr + c.n, ends_beyond(1))
            product("RANGE_C", "RANGE_CIN", c.m - 1, c.ldc, c.c_addr + out_row, ends_beyond(2))
            product("RANGE_CIN", "CHECK", c.m - 1, c.ldcin, c.cin_addr + (c.n << 2),
                    ends_beyond(3), needed=c.accumulate)
            with m.State("CHECK"):
                code = self._check(m, c, beyond)
                k_fit = Mux(split, geo.k_step, c.k)
                m.d.sync += [error.eq(code), words.eq((k_fit + B - 1) >> lb), used.eq(0),
                             chunk.eq(R if os_flow else 0)]
                with m.If(code != 0):
                    m.next = "FINISH"
                with m.Else():
                    m.next = "START" if os_flow else "SETUP"
            if not os_flow:
                with m.State("SETUP"):
                    # the rows half the A scratchpad holds, by counting (no divider)
                    room = (used + words <= geo.a_half) & (chunk < c.m) & (chunk < geo.c_half)
                    with m.If(room):
                        m.d.sync += [used.eq(used + words), chunk.eq(chunk + 1)]
                    with m.Else():
                        m.next = "STEP_A"
                product("STEP_A", "STEP_C", chunk, c.lda, 0, chunk_lda.eq)
                product("STEP_C", "STEP_CIN", chunk, c.ldc, 0, chunk_ldc.eq)
                product("STEP_CIN", "START", chunk, c.ldcin, 0, chunk_ldcin.eq,
                        needed=c.accumulate)
            with m.State("START"):
                m.d.comb += restart.eq(1)
                m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += running.eq(1)
                with m.If(self.dma_error):
                    m.d.sync += error.eq(EngineError.BUS_ERROR)
                with m.If(s_done & s_drained & ~self.dma_busy):
                    m.next = "FINISH"
            with m.State("FINISH"):
                m.d.comb += self.done.eq(1)
                m.next = "IDLE"
        m.d.comb += self.busy.eq(~ctrl.ongoing("IDLE"))
        with m.If(self.busy):
            m.d.sync += self.cycles.eq(self.cycles + 1)
        with m.If(core.operands.valid & core.operands.ready):
            m.d.sync += self.mac_cycles.eq(self.mac_cycles + 1)
        # The array waits for the store when it has no operand because its chunk's C half still
        # holds a chunk the store has not read out (the loader cannot claim it), or when it has a
        # result that cannot leave; it waits for the loads when it has no operand otherwise.
        starved = Signal()
        waits_store = Signal()
        m.d.comb += [
            starved.eq(running & ~f_done & ~core.operands.valid),
            waits_store.eq((starved & c_wait & (self._feed_walk.index >= c_claims))
                           | (results.valid & ~results.ready)),
        ]
        with m.If(starved & ~waits_store):
            m.d.sync += self.stall_load.eq(self.stall_load + 1)
        with m.If(waits_store):
            m.d.sync += self.stall_store.eq(self.stall_store + 1)
        return m

    # ------------------------------------------------------------------------------------------

    def _check(self, m: Module, c, beyond):
        """The error code of the latched command (0 when it is good), in priority order.

        ``beyond`` has a bit per area (A, B, C, C_in): it ends past 4 GiB.
        """
        cfg = self._config
        zero = (c.m == 0) | (c.k == 0) | (c.n == 0)
        large = (c.m > MAX_DIM) | (c.n > MAX_DIM) | (c.k > MAX_DIM)
        no_requant = c.requant & (0 if cfg.requant_unit else 1)
        stride = ((c.lda < c.k) | (c.ldb < c.n) | (c.ldc < out_row_bytes(c.requant, c.n))
                  | (c.accumulate & (c.ldcin < (c.n << 2))))
        misaligned = ((~c.requant & ((c.c_addr[:2] != 0) | (c.ldc[:2] != 0)))
                      | (c.accumulate & ((c.cin_addr[:2] != 0) | (c.ldcin[:2] != 0))))
        return error_priority(m, zero=zero, large=large, no_requant=no_requant, stride=stride,
                              misaligned=misaligned, out_range=beyond.any())

    def _os_feeder(self, m, c, fw, running, restart, f_done, passes, pass_layout, a_rd, b_rd,
                   a_full, a_busy, b_full, b_busy, c_ready, split):
        """Output-stationary: beat k of a step is byte k of each A bank and entry k of B.

        The core sees one tile per chunk: the K steps follow each other with ``last`` only on
        the final beat, so the accumulators run through all of K.
        """
        cfg, geo, core = self._config, self.geometry, self._core
        R, B = cfg.rows, cfg.axi_bytes
        lb = _log2(B)
        self._feed_walk = fw
        operands = core.operands
        m.submodules.opq = opq = fifo.SyncFIFO(width=len(operands.payload.as_value()), depth=4)
        step_done = Signal()
        fk = _KStep(m, "feed_k", c.k, geo.k_step, restart, step_done)
        apar = Signal()              # A half of this step
        bpar = Signal()              # B half of this step
        k_idx = Signal(16)           # beat within the step
        pending = Signal()
        meta_last = Signal()
        meta_sel = Signal(range(B))
        issue = Signal()
        go = (running & ~f_done & a_full[apar] & b_full[bpar] & c_ready[fw.index[0]]
              & (fw.index < self._c_claims))
        first_beat = (k_idx == 0) & (fk.kc0 == 0)
        m.d.comb += issue.eq(go & _fifo_gate(opq, pending) & (~first_beat | passes.w_rdy))
        m.d.sync += pending.eq(issue)
        step_end = k_idx == fk.len_m1
        with m.If(issue):
            m.d.sync += [meta_last.eq(step_end & fk.last), meta_sel.eq(k_idx[:lb] if lb else 0)]
        for p in range(R):
            m.d.comb += [a_rd[p].addr.eq(apar * geo.a_half + (k_idx >> lb)),
                         a_rd[p].en.eq(issue)]
        m.d.comb += [b_rd.addr.eq(bpar * geo.b_half + k_idx), b_rd.en.eq(issue)]
        payload = data.View(operands.payload.shape(), opq.w_data)
        for p in range(R):
            m.d.comb += payload.a[p].eq(a_rd[p].data.as_value().word_select(meta_sel, 8))
        # lane by lane: the scratchpad holds bytes, the operands in_width bits each (a whole-view
        # copy would move bits across lanes when in_width is not 8)
        m.d.comb += [payload.b[j].eq(b_rd.data[j]) for j in range(cfg.cols)]
        m.d.comb += [payload.last.eq(meta_last), opq.w_en.eq(pending),
                     operands.valid.eq(opq.r_rdy), operands.payload.as_value().eq(opq.r_data),
                     opq.r_en.eq(operands.ready)]
        pass_w = data.View(pass_layout, passes.w_data)
        with m.If(issue):
            with m.If(first_beat):
                m.d.comb += [passes.w_en.eq(1), pass_w.half.eq(fw.index[0]), pass_w.rows.eq(R),
                             pass_w.read_old.eq(c.accumulate), pass_w.last.eq(1)]
            with m.If(step_end):
                m.d.sync += [k_idx.eq(0), apar.eq(~apar)]
                m.d.comb += [step_done.eq(1), a_full.clr.bit_select(apar, 1).eq(1),
                             a_busy.clr.bit_select(apar, 1).eq(1)]
                with m.If(split | (fw.last_in_panel & fk.last)):
                    m.d.comb += [b_full.clr.bit_select(bpar, 1).eq(1),
                                 b_busy.clr.bit_select(bpar, 1).eq(1)]
                    m.d.sync += bpar.eq(~bpar)
                with m.If(fk.last):
                    m.d.comb += fw.advance.eq(1)
                    with m.If(fw.last):
                        m.d.sync += f_done.eq(1)
            with m.Else():
                m.d.sync += k_idx.eq(k_idx + 1)
        with m.If(restart):
            m.d.sync += [apar.eq(0), bpar.eq(0), k_idx.eq(0), f_done.eq(0)]

    def _ws_feeder(self, m, c, walker, running, restart, f_done, passes, pass_layout, a_rd,
                   b_rd, a_full, a_busy, b_full, b_used_o, b_used_w, c_ready, words, split):
        """Weight-stationary: R weight rows per tile from B, and row slices of A per beat.

        For each chunk and K step, tile t takes weight rows tR … tR+R-1 of the step (rows past
        the step read as zero) and, for each row m of the chunk, the bytes A[m, tR … tR+R-1].
        """
        cfg, geo, core = self._config, self.geometry, self._core
        R, C, B = cfg.rows, cfg.cols, cfg.axi_bytes
        lb = _log2(B)

        # -- operands ---------------------------------------------------------------------------
        fw = walker("feed_walk")
        self._feed_walk = fw
        operands = core.operands
        m.submodules.opq = opq = fifo.SyncFIFO(width=len(operands.payload.as_value()), depth=4)
        step_done = Signal()
        fk = _KStep(m, "feed_k", c.k, geo.k_step, restart, step_done)
        apar = Signal()
        bpar = Signal()
        kr = Signal(32)              # first k of the tile within the step
        m_idx = Signal(16)
        row_word = Signal(16)        # m_idx·words
        pending = Signal()
        meta_last = Signal()
        meta_off = Signal(range(B))
        issue = Signal()
        go = (running & ~f_done & a_full[apar] & b_full[bpar] & ~b_used_o[bpar]
              & c_ready[fw.index[0]] & (fw.index < self._c_claims))
        m.d.comb += issue.eq(go & _fifo_gate(opq, pending) & ((m_idx != 0) | passes.w_rdy))
        m.d.sync += pending.eq(issue)
        last_row = m_idx == fw.rows - 1
        last_tile = kr + R >= fk.len
        with m.If(issue):
            m.d.sync += [meta_last.eq(last_row), meta_off.eq(kr[:lb] if lb else 0)]
        first_word = Signal(range(geo.a_words))
        m.d.comb += first_word.eq(apar * geo.a_half + row_word + (kr >> lb))
        for i, port in enumerate(a_rd):
            m.d.comb += [port.addr.eq(first_word + i), port.en.eq(issue)]
        window = Cat(*(port.data.as_value() for port in a_rd))
        shifted = Signal(len(window))
        m.d.comb += shifted.eq(window >> (meta_off * 8))
        payload = data.View(operands.payload.shape(), opq.w_data)
        # lane by lane: bytes in the scratchpad, in_width bits in the operands (see _os_feeder)
        m.d.comb += [payload.a[r].eq(shifted.word_select(r, 8)) for r in range(R)]
        m.d.comb += [
            payload.last.eq(meta_last), opq.w_en.eq(pending),
            operands.valid.eq(opq.r_rdy), operands.payload.as_value().eq(opq.r_data),
            opq.r_en.eq(operands.ready),
        ]
        pass_w = data.View(pass_layout, passes.w_data)
        with m.If(issue):
            with m.If(m_idx == 0):
                m.d.comb += [passes.w_en.eq(1), pass_w.half.eq(fw.index[0]),
                             pass_w.rows.eq(fw.rows),
                             pass_w.read_old.eq(c.accumulate | (kr != 0) | (fk.kc0 != 0)),
                             pass_w.last.eq(last_tile & fk.last)]
            with m.If(last_row):
                m.d.sync += [m_idx.eq(0), row_word.eq(0)]
                with m.If(last_tile):
                    m.d.sync += [kr.eq(0), apar.eq(~apar)]
                    m.d.comb += [step_done.eq(1), a_full.clr.bit_select(apar, 1).eq(1),
                                 a_busy.clr.bit_select(apar, 1).eq(1)]
                    with m.If(split | (fw.last_in_panel & fk.last)):
                        m.d.sync += bpar.eq(~bpar)
                        m.d.comb += b_used_o.set.bit_select(bpar, 1).eq(1)
                    with m.If(fk.last):
                        m.d.comb += fw.advance.eq(1)
                        with m.If(fw.last):
                            m.d.sync += f_done.eq(1)
                with m.Else():
                    m.d.sync += kr.eq(kr + R)
            with m.Else():
                m.d.sync += [m_idx.eq(m_idx + 1), row_word.eq(row_word + words)]
        with m.If(restart):
            m.d.sync += [apar.eq(0), bpar.eq(0), kr.eq(0), m_idx.eq(0), row_word.eq(0),
                         f_done.eq(0)]

        # -- weights ----------------------------------------------------------------------------
        ww = walker("weight_walk")
        weights = core.weights
        m.submodules.wq = wq = fifo.SyncFIFO(width=len(weights.payload.as_value()), depth=4)
        w_step_done = Signal()
        wk = _KStep(m, "weight_k", c.k, geo.k_step, restart, w_step_done)
        w_bpar = Signal()
        w_kr = Signal(32)            # first row of the tile within the step
        w_r = Signal(range(R + 1))
        w_k = Signal(32)             # w_kr + w_r
        w_done = Signal()
        w_pending = Signal()
        w_zero = Signal()
        w_issue = Signal()
        w_go = running & ~w_done & b_full[w_bpar] & ~b_used_w[w_bpar]
        m.d.comb += w_issue.eq(w_go & _fifo_gate(wq, w_pending))
        m.d.sync += w_pending.eq(w_issue)
        with m.If(w_issue):
            m.d.sync += w_zero.eq(w_k >= wk.len)   # rows past the step: zero weights pad it
        m.d.comb += [b_rd.addr.eq(w_bpar * geo.b_half + w_k), b_rd.en.eq(w_issue)]
        w_payload = data.View(weights.payload.shape(), wq.w_data)
        for lane in range(C):
            m.d.comb += w_payload.w[lane].eq(Mux(w_zero, 0, b_rd.data[lane]))
        m.d.comb += [wq.w_en.eq(w_pending), weights.valid.eq(wq.r_rdy),
                     weights.payload.as_value().eq(wq.r_data), wq.r_en.eq(weights.ready)]
        with m.If(w_issue):
            with m.If(w_r == R - 1):
                m.d.sync += w_r.eq(0)
                with m.If(w_kr + R >= wk.len):
                    m.d.sync += [w_kr.eq(0), w_k.eq(0)]
                    m.d.comb += w_step_done.eq(1)
                    with m.If(split | (ww.last_in_panel & wk.last)):
                        m.d.comb += b_used_w.set.bit_select(w_bpar, 1).eq(1)
                        m.d.sync += w_bpar.eq(~w_bpar)
                    with m.If(wk.last):
                        m.d.comb += ww.advance.eq(1)
                        with m.If(ww.last):
                            m.d.sync += w_done.eq(1)
                with m.Else():
                    m.d.sync += [w_kr.eq(w_kr + R), w_k.eq(w_k + 1)]
            with m.Else():
                m.d.sync += [w_r.eq(w_r + 1), w_k.eq(w_k + 1)]
        with m.If(restart):
            m.d.sync += [w_bpar.eq(0), w_kr.eq(0), w_r.eq(0), w_k.eq(0), w_done.eq(0)]

    def _store(self, m, c, sw, running, restart, s_done, s_drained, c_rd, c_done, c_busy,
               c_ready, chunk_ldc):
        """Read finished chunks out of the C scratchpad into the DMA writer, row by row."""
        cfg, geo = self._config, self.geometry
        C, B = cfg.cols, cfg.axi_bytes
        row_layout = data.ArrayLayout(signed(32), C)
        wr_cmd = self.wr_cmd
        half = sw.index[0]
        r = Signal(16)
        pending = Signal()
        pending_tag = Signal(data.StructLayout({"cols": range(C + 1), "end": 1}))
        m.submodules.rowq = rowq = fifo.SyncFIFO(width=row_layout.size, depth=STORE_FIFO_DEPTH)
        m.submodules.tagq = tagq = fifo.SyncFIFO(width=len(pending_tag.as_value()), depth=16)
        issue = Signal()
        c_row = _RowAddress(m, "store_c", sw, c.c_addr, chunk_ldc, Mux(c.requant, C, 4 * C),
                            restart)
        with m.FSM(name="store"):
            with m.State("IDLE"):
                with m.If(running & ~s_done & c_done[half]):
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
                m.d.comb += issue.eq(_fifo_gate(rowq, pending) & tagq.w_rdy)
                with m.If(issue):
                    with m.If(r == sw.rows - 1):
                        m.d.sync += r.eq(0)
                        m.d.comb += [c_done.clr.bit_select(half, 1).eq(1),
                                     c_busy.clr.bit_select(half, 1).eq(1),
                                     c_ready.clr.bit_select(half, 1).eq(1), sw.advance.eq(1)]
                        with m.If(sw.last):
                            m.d.sync += s_done.eq(1)
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += r.eq(r + 1)
        with m.If(restart):
            m.d.sync += [s_done.eq(0), r.eq(0)]
        m.d.comb += [c_rd.addr.eq(half * geo.c_half + r), c_rd.en.eq(issue)]
        m.d.sync += pending.eq(issue)
        # a row's tag leaves the queue with the row's last beat
        m.d.comb += s_drained.eq(~tagq.r_rdy & ~tagq.w_en)
        tag_w = data.View(pending_tag.shape(), tagq.w_data)
        m.d.comb += [tag_w.cols.eq(sw.cols), tag_w.end.eq(r == sw.rows - 1),
                     tagq.w_en.eq(issue)]
        m.d.comb += [rowq.w_data.eq(c_rd.data), rowq.w_en.eq(pending)]

        # rows leave through the requantizer (int8) or as they are (int32)
        row_bytes_max = 4 * C
        byte_row = Signal(8 * row_bytes_max)
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

        # serializer: a row of cols·out_bytes bytes into bus beats
        tag_r = data.View(pending_tag.shape(), tagq.r_data)
        nbytes = Signal(range(row_bytes_max + 1))
        m.d.comb += nbytes.eq(Mux(c.requant, tag_r.cols, tag_r.cols << 2))
        s_beat = Signal(range(max(2, (row_bytes_max + B - 1) // B + 1)))
        sent = Signal(range(row_bytes_max + B + 1))
        m.d.comb += sent.eq(s_beat * B)
        remaining = Signal.like(sent)
        m.d.comb += remaining.eq(nbytes - sent)
        last_beat = remaining <= B
        padded = Cat(byte_row, Const(0, 8 * B))
        wr = self.wr_data
        m.d.comb += [
            wr.valid.eq(byte_valid & tagq.r_rdy),
            wr.payload.data.as_value().eq(padded.word_select(s_beat, 8 * B)),
            wr.payload.bytes.eq(Mux(last_beat, remaining, B)),
            wr.payload.first.eq(s_beat == 0),
            wr.payload.last.eq(last_beat),
            wr.payload.end.eq(last_beat & tag_r.end),
        ]
        with m.If(wr.valid & wr.ready):
            with m.If(last_beat):
                m.d.sync += s_beat.eq(0)
                m.d.comb += [byte_ready.eq(1), tagq.r_en.eq(1)]
            with m.Else():
                m.d.sync += s_beat.eq(s_beat + 1)

