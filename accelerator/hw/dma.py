"""The DMA engine of the memory controller: 2-D reads and writes over one AXI4 master port.

A command moves a *2-D block*: ``rows`` rows of ``row_bytes`` bytes each, row ``r`` starting at
byte address ``addr + r·stride`` (mod 2**32). ``addr`` and ``stride`` may have any byte
alignment, so a command can fetch or store a tile of a row-major int8/int32 matrix with any
leading dimension. On the stream side every row is *realigned*: beat ``k`` of a row carries the
row's bytes ``k·B … k·B+B-1`` with byte ``k·B`` in lane 0, B = ``config.axi_bytes``.

Burst splitting (:class:`BurstSplitter`, shared by both directions)
    A row at address ``a`` is covered by the bus-aligned beats ``⌊a/B⌋ … ⌊(a+row_bytes-1)/B⌋``.
    These are cut into INCR bursts of full-width beats (AxSIZE = log2 B), each as long as
    possible but no longer than ``max_burst`` beats (AXI4: ≤ 256) and never past a 4 KiB
    boundary (AXI4 forbids a burst that crosses one: the slave may be a different device on the
    other side). A burst never spans two rows, since rows are generally not contiguous. The
    splitter produces one burst descriptor per cycle, so even a block of one-beat rows keeps the
    address channel busy every cycle.

Reads (:class:`DMAReader`)
    AR requests are issued as soon as the slave takes them, up to ``outstanding`` bursts whose
    data has not fully returned, so the R channel streams one beat per cycle across burst and
    row boundaries. The beats of a row at offset ``o = a mod B`` are realigned by keeping the
    previous beat: output beat ``k`` = bytes ``o … o+B-1`` of (beat ``k`` ‖ beat ``k+1``). Bytes
    outside the row are dropped.

Writes (:class:`DMAWriter`)
    The inverse: W beat ``j`` of a row at offset ``o`` takes lanes ``0 … o-1`` from the upper
    bytes of input beat ``j-1`` and lanes ``o … B-1`` from input beat ``j``; WSTRB enables only
    the row's bytes, so memory around the row is untouched. The AW and W channels are driven
    independently (W does not wait for AWREADY, AW does not wait for W), so any slave ordering
    works; B responses are counted, a command is done when the last one arrives.

:class:`DMA` holds one reader and one writer behind one AXI4 master port; they run concurrently.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO, SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from ..config import AcceleratorConfig

# AXI4's longest INCR burst and the boundary no burst may cross: the coverage bins need them too
from ..model.geometry import AXI4_BOUNDARY, AXI4_MAX_BURST
from .axi import BURST_INCR, RESP_OKAY, AXI4Signature, connect_part

__all__ = [
    "CMD_LAYOUT",
    "DMA",
    "MAX_ROWS",
    "MAX_ROW_BYTES",
    "OUTSTANDING",
    "BurstSplitter",
    "DMAReader",
    "DMAWriter",
    "burst_layout",
    "burst_limit",
    "cmd_layout",
    "data_layout",
    "dma_layouts",
]

#: The most rows and the longest row of a command, unless a DMA is built for smaller ones.
MAX_ROWS = (1 << 16) - 1
MAX_ROW_BYTES = (1 << 20) - 1


def cmd_layout(max_rows: int = MAX_ROWS, max_row_bytes: int = MAX_ROW_BYTES) -> data.StructLayout:
    """A 2-D transfer: ``rows`` rows of ``row_bytes`` bytes, row r at ``addr + r*stride``.

    Addresses wrap mod 2**32 (a "negative" stride walks rows downwards). A command with
    ``rows == 0`` or ``row_bytes == 0`` is accepted and ignored: no beat, no ``end``, no
    ``done`` (do not wait for one). A DMA built for at most ``max_rows`` rows of at most
    ``max_row_bytes`` bytes has counters no wider than those need: a client that never asks
    for more (the GEMM engine) gets no logic that nothing can reach.
    """
    if max_rows < 1 or max_row_bytes < 1:
        raise ValueError(f"a command needs at least one row of one byte, not {max_rows} rows "
                         f"of {max_row_bytes} bytes")
    return data.StructLayout({"addr": 32, "rows": range(max_rows + 1),
                              "row_bytes": range(max_row_bytes + 1), "stride": 32})


CMD_LAYOUT = cmd_layout()


#: Bursts a reader or a writer has requested and not finished, at most (the default).
OUTSTANDING = 8

# AxCACHE "normal non-cacheable bufferable": lets an interconnect merge and buffer DMA traffic.
_AXCACHE = 0b0011


def _log2(value: int) -> int:
    return value.bit_length() - 1


def _is_zero(value):
    # Not `value == 0`: yosys writes that as `!value`, which Verilator lints as WIDTHTRUNC.
    return ~value.any()


def _shift_bytes(m: Module, name: str, value, amount, width: int):
    """``width`` bits of ``value`` from byte ``amount`` on: a byte-granular barrel shifter.

    The shift goes into a signal as wide as ``value`` and is sliced afterwards, so the Verilog
    has no truncating assignment (which Verilator lints as WIDTHTRUNC)."""
    wide = Signal(len(value), name=f"{name}_wide")
    m.d.comb += wide.eq(value >> Cat(Const(0, 3), amount))
    return wide[:width]


def data_layout(config: AcceleratorConfig) -> data.StructLayout:
    """One beat of a realigned row (the reader's output, the writer's input).

    ``data`` lane ``j`` of a row's beat ``k`` is the row's byte ``k·B + j``; ``bytes`` is the
    number of valid lanes (B, except possibly on the row's last beat); ``first``/``last`` mark a
    row's first/last beat; ``end`` marks the last beat of the whole command.
    """
    b = config.axi_bytes
    return data.StructLayout({
        "data": data.ArrayLayout(8, b),
        "bytes": range(b + 1),
        "first": 1,
        "last": 1,
        "end": 1,
    })


def dma_layouts(config: AcceleratorConfig, max_rows: int = MAX_ROWS,
                max_row_bytes: int = MAX_ROW_BYTES) -> dict[str, data.StructLayout]:
    """The payload layout of each stream of :class:`DMA`, keyed by member name."""
    cmd = cmd_layout(max_rows, max_row_bytes)
    return {"rd_cmd": cmd, "rd_data": data_layout(config),
            "wr_cmd": cmd, "wr_data": data_layout(config)}


def _row_beats(config: AcceleratorConfig, max_row_bytes: int) -> int:
    """The most beats a row covers: ``n`` bytes at an address ``o`` past a bus word cover
    ⌈(o + n) / B⌉ beats, o < B."""
    b = config.axi_bytes
    return (max_row_bytes + 2 * b - 2) // b


def burst_limit(config: AcceleratorConfig, max_burst: int, max_row_bytes: int) -> int:
    """The longest burst a DMA makes: ``max_burst`` beats, or fewer if no row covers more."""
    return min(max_burst, _row_beats(config, max_row_bytes))


def burst_layout(config: AcceleratorConfig, max_burst: int,
                 max_row_bytes: int = MAX_ROW_BYTES) -> data.StructLayout:
    """One burst of a command, as :class:`BurstSplitter` produces it."""
    return data.StructLayout({
        "addr": 32,                      # bus-aligned start address
        "len": range(1, burst_limit(config, max_burst, max_row_bytes) + 1),  # AxLEN + 1
        "row_first": 1,                  # the row's first burst
        "row_last": 1,                   # the row's last burst
        "last_row": 1,                   # in the command's last row
        "end": 1,                        # the command's last burst
        "offset": max(1, _log2(config.axi_bytes)),  # the row's address mod B
        "row_bytes": range(max_row_bytes + 1),  # the row's length in bytes
    })


def _check_params(max_burst: int, outstanding: int) -> None:
    if not 1 <= max_burst <= AXI4_MAX_BURST:
        raise ValueError(f"max_burst must be 1 to {AXI4_MAX_BURST}, not {max_burst}")
    if outstanding < 1:
        raise ValueError(f"outstanding must be at least 1, not {outstanding}")


class BurstSplitter(wiring.Component):
    """Cuts 2-D commands into AXI4 INCR bursts of full-width beats (see the module docstring).

    Members
    -------
    cmd : In(stream.Signature(cmd_layout(max_rows, max_row_bytes)))
        Commands; the next one is taken after the last burst of the current one is produced.
    burst : Out(stream.Signature(burst_layout(config, max_burst)))
        Burst descriptors in address order, one per cycle when ``ready`` (registered outputs).
    busy : Out(1)
        A command is being split or a descriptor waits.
    abort : In(1)
        Level: drop the command being split and any descriptor not yet taken; take no command.
    """

    def __init__(self, config: AcceleratorConfig, max_burst: int = AXI4_MAX_BURST, *,
                 max_rows: int = MAX_ROWS, max_row_bytes: int = MAX_ROW_BYTES):
        _check_params(max_burst, 1)
        self._config = config
        self._max_burst = burst_limit(config, max_burst, max_row_bytes)
        self._limits = (max_rows, max_row_bytes)
        super().__init__({
            "cmd": In(stream.Signature(cmd_layout(max_rows, max_row_bytes))),
            "burst": Out(stream.Signature(burst_layout(config, max_burst, max_row_bytes))),
            "busy": Out(1),
            "abort": In(1),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        b = self._config.axi_bytes
        s = _log2(b)
        max_burst = self._max_burst

        active = Signal()
        cur = Signal(32)                    # bus-aligned address of the next burst
        max_rows, max_row_bytes = self._limits
        max_beats = _row_beats(self._config, max_row_bytes)
        # Rows that never need more beats than a burst takes are cut at a page only: the AXI
        # limit's cut would be logic that nothing reaches (a DMA sized for the engine's rows).
        fits = max_beats <= max_burst
        beats_left = Signal(range(max_beats + 1))  # beats of the current row still to cut
        page_left = Signal(range(AXI4_BOUNDARY // b + 1))  # beats from `cur` to the 4 KiB page
        rows_left = Signal(range(max_rows + 1))  # rows including the current one
        last_row = Signal()                 # rows_left == 1
        next_addr = Signal(32)              # start address of the row after the current one
        row_bytes = Signal(range(max_row_bytes + 1))
        stride = Signal(32)
        offset = Signal(max(1, s))
        row_first = Signal()

        def start_row(addr, nbytes):
            """The row starting at ``addr`` becomes current."""
            return [
                cur.eq(Cat(Const(0, s), addr[s:])),
                offset.eq(addr[:s]),
                # covering beats: ⌈(addr mod B + nbytes) / B⌉
                beats_left.eq((addr[:s] + nbytes + (b - 1)) >> s),
                page_left.eq((AXI4_BOUNDARY >> s) - addr[s:12]),
                row_first.eq(1),
            ]

        # Each value a burst decides is a register or comes from registers through one adder or
        # compare: the burst length was `min` of the row, 256 beats and the 4 KiB page chained
        # into the row's end and from there into the next row's start (the board tops' longest
        # path). A burst that does not end its row is as long as the AXI limit and the page
        # allow, whatever the row; the row ends when its rest fits both. The page's beats left
        # and the next row's address are kept, not derived from `cur` and the current row.
        mid = Signal(range(max_burst + 1))  # the burst's length if the row goes on after it
        row_done = Signal()
        if fits:  # the row goes on after a burst only across a page
            m.d.comb += [mid.eq(page_left), row_done.eq(beats_left <= page_left)]
        else:
            page_short = Signal()
            m.d.comb += [
                page_short.eq(page_left <= max_burst),
                mid.eq(Mux(page_short, page_left, max_burst)),
                row_done.eq((beats_left <= max_burst) & (beats_left <= page_left)),
            ]

        out = self.burst.payload
        with m.If(self.burst.ready | ~self.burst.valid):
            m.d.sync += self.burst.valid.eq(0)
            with m.If(active):
                m.d.sync += [
                    self.burst.valid.eq(1),
                    out.addr.eq(cur),
                    out.len.eq(Mux(row_done, beats_left, mid)),
                    out.row_first.eq(row_first),
                    out.row_last.eq(row_done),
                    out.last_row.eq(last_row),
                    out.end.eq(row_done & last_row),
                    out.offset.eq(offset),
                    out.row_bytes.eq(row_bytes),
                ]
                with m.If(row_done):
                    # the next row even after the last: a command loads its own first row, so
                    # no multiplexer keeps values nothing reads any more
                    m.d.sync += start_row(next_addr, row_bytes)
                    m.d.sync += [next_addr.eq(next_addr + stride),
                                 rows_left.eq(rows_left - 1),
                                 last_row.eq(rows_left == 2)]
                    with m.If(last_row):
                        m.d.sync += active.eq(0)
                with m.Else():
                    m.d.sync += [cur.eq(cur + (mid << s)),
                                 beats_left.eq(beats_left - mid),
                                 page_left.eq(AXI4_BOUNDARY >> s if fits else
                                              Mux(page_short, AXI4_BOUNDARY >> s,
                                                  page_left - max_burst)),
                                 row_first.eq(0)]

        # A command is registered as it is taken and split from the register: computed from the
        # stream, a row's first beats ended a path through the engine's address and length
        # muxes (the board tops' longest path once the engine's addresses were registers).
        # One cycle of latency per command; the next is taken once this one is split.
        pending = Signal()
        cmd = Signal(self.cmd.payload.shape())
        m.d.comb += self.cmd.ready.eq(~active & ~pending & ~self.abort)
        with m.If(self.cmd.valid & self.cmd.ready):
            m.d.sync += [pending.eq(1), cmd.eq(self.cmd.payload)]
        with m.If(pending):
            m.d.sync += pending.eq(0)
            with m.If((cmd.rows != 0) & (cmd.row_bytes != 0)):
                m.d.sync += start_row(cmd.addr, cmd.row_bytes)
                m.d.sync += [active.eq(1), next_addr.eq(cmd.addr + cmd.stride),
                             rows_left.eq(cmd.rows), last_row.eq(cmd.rows == 1),
                             row_bytes.eq(cmd.row_bytes), stride.eq(cmd.stride)]

        with m.If(self.abort):
            m.d.sync += [active.eq(0), pending.eq(0), self.burst.valid.eq(0)]
        m.d.comb += self.busy.eq(pending | active | self.burst.valid)
        return m


class DMAReader(wiring.Component):
    """Reads 2-D blocks from AXI4 memory and streams their rows realigned to lane 0.

    Members
    -------
    cmd : In(stream.Signature(cmd_layout(max_rows, max_row_bytes)))
        2-D read commands, executed in order.
    data : Out(stream.Signature(data_layout(config)))
        The rows, realigned (see :func:`data_layout`); ``end`` on a command's last beat.
    m_axi : Out(AXI4Signature(32, 8·B, id_width, write=False))
        The read half of an AXI4 master: AR and R. ARID is 0, so data returns in order.
    busy : Out(1)
        A command is in progress (accepted and not yet fully delivered).
    error : Out(1)
        Sticky: some R beat had RRESP != OKAY (its data is delivered anyway). Cleared by ``clear``.
    bytes_read : Out(32)
        Payload bytes delivered on ``data`` (wraps). Cleared by ``clear``.
    clear : In(1)
        Clears ``error`` and ``bytes_read``.
    abort : In(1)
        Level: drop the commands (see :class:`DMA`); issue no AR, take and discard every R beat
        of the bursts already requested, deliver nothing on ``data``.

    Throughput: one beat per cycle on R and on ``data`` for long rows. An unaligned row whose
    last output beat lies entirely in its last input beat costs one extra cycle (the realigner
    emits it from the kept beat while R waits).
    """

    def __init__(self, config: AcceleratorConfig, *, max_burst: int = AXI4_MAX_BURST,
                 outstanding: int = OUTSTANDING, id_width: int = 1, max_rows: int = MAX_ROWS,
                 max_row_bytes: int = MAX_ROW_BYTES):
        _check_params(max_burst, outstanding)
        self._config = config
        self._max_burst = max_burst
        self._outstanding = outstanding
        self._limits = {"max_rows": max_rows, "max_row_bytes": max_row_bytes}
        super().__init__({
            "cmd": In(stream.Signature(cmd_layout(max_rows, max_row_bytes))),
            "data": Out(stream.Signature(data_layout(config))),
            "m_axi": Out(AXI4Signature(32, config.axi_data_width, id_width, write=False)),
            "busy": Out(1),
            "error": Out(1),
            "bytes_read": Out(32),
            "clear": In(1),
            "abort": In(1),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        b = self._config.axi_bytes
        s = _log2(b)
        axi = self.m_axi
        limit = self._outstanding

        m.submodules.split = split = BurstSplitter(self._config, self._max_burst,
                                                   **self._limits)
        wiring.connect(m, wiring.flipped(self.cmd), split.cmd)
        m.d.comb += split.abort.eq(self.abort)

        # -- AR: one request per burst, registered, up to `limit` bursts awaiting data ---------
        # What the R side needs of each row, pushed with the row's first burst. Every row in the
        # FIFO has a burst in flight or is being finished, so `limit + 2` entries never stall AR.
        # `fits` and `short` are the row's first `fits` and `last` (below), compared here so that
        # the FIFO's output reaches `rready` through no carry chain.
        row_shape = range(self._limits["max_row_bytes"] + 1)
        row_layout = data.StructLayout({"offset": max(1, s), "row_bytes": row_shape, "end": 1,
                                        "fits": 1, "short": 1})
        m.submodules.rows = rows = SyncFIFOBuffered(width=row_layout.size, depth=limit + 2)
        pending = Signal(range(limit + 1))  # bursts requested whose last beat has not arrived
        d = split.burst.payload
        take = Signal()
        m.d.comb += [
            take.eq(split.burst.valid & (~axi.arvalid | axi.arready) & (pending < limit)
                    & (~d.row_first | rows.w_rdy) & ~self.abort),
            split.burst.ready.eq(take),
            rows.w_en.eq(take & d.row_first),
            rows.w_data.eq(Cat(d.offset, d.row_bytes, d.last_row,
                               _is_zero(d.offset) | (d.row_bytes + d.offset <= b),
                               d.row_bytes <= b)),
            axi.arid.eq(0),
            axi.arsize.eq(s),
            axi.arburst.eq(BURST_INCR),
            axi.arlock.eq(0),
            axi.arcache.eq(_AXCACHE),
            axi.arprot.eq(0),
        ]
        with m.If(take):
            m.d.sync += [axi.arvalid.eq(1), axi.araddr.eq(d.addr), axi.arlen.eq(d.len - 1)]
        with m.Elif(axi.arready):
            m.d.sync += axi.arvalid.eq(0)
        burst_done = axi.rvalid & axi.rready & axi.rlast
        m.d.sync += pending.eq(pending + take - burst_done)

        # -- R: realign each row to lane 0 ----------------------------------------------------
        row = row_layout(rows.r_data)
        have = rows.r_rdy
        offset = row.offset
        bytes_left = Signal(row_shape)  # the row's bytes not yet emitted, valid once `started`
        started = Signal()
        primed = Signal()           # `prev` holds the row's previous input beat
        # ... but its byte 0: a kept beat is used only past a row's offset, which is not 0
        prev = Signal(8 * (b - 1))
        left = Signal(row_shape)
        m.d.comb += left.eq(Mux(started, bytes_left, row.row_bytes))
        # The rest of the row lies in one input beat from lane `offset` on: emit it from that
        # beat alone. (Aligned rows never need a second beat.) Once the row has started, `fits`
        # and `last` (the rest is one output beat) are registers set with `bytes_left`.
        fits = Signal()
        fits_left = Signal()
        last = Signal()
        last_left = Signal()
        m.d.comb += [fits.eq(Mux(started, fits_left, row.fits)),
                     last.eq(Mux(started, last_left, row.short))]
        lo = Cat(axi.rdata[:8], Mux(primed, prev, axi.rdata[8:]))
        # Output lane j = byte offset+j of (lo ‖ rdata).
        window = _shift_bytes(m, "realign", Cat(lo, axi.rdata), offset, 8 * b)

        can_emit = ~self.data.valid | self.data.ready
        emit = Signal()
        consume = Signal()
        with m.If(have):
            with m.If(primed & fits):
                # Flush: the kept beat holds the row's remaining bytes; no new input needed.
                m.d.comb += emit.eq(can_emit)
            with m.Elif(primed | fits):
                m.d.comb += [emit.eq(axi.rvalid & can_emit), consume.eq(emit)]
            with m.Else():
                # First beat of an unaligned row that continues past it: keep it, emit nothing.
                m.d.comb += consume.eq(axi.rvalid)
        m.d.comb += axi.rready.eq(consume)

        with m.If(consume):
            m.d.sync += prev.eq(axi.rdata[8:])
        out = self.data.payload
        with m.If(emit):
            m.d.sync += [
                self.data.valid.eq(1),
                out.data.as_value().eq(window),
                out.bytes.eq(Mux(last, left, b)),
                out.first.eq(left == row.row_bytes),
                out.last.eq(last),
                out.end.eq(last & row.end),
            ]
            with m.If(last):
                m.d.comb += rows.r_en.eq(1)
                m.d.sync += [primed.eq(0), started.eq(0)]
            with m.Else():  # `left - b` bytes are left: does that fit, is it the last beat?
                m.d.sync += [bytes_left.eq(left - b), started.eq(1),
                             fits_left.eq(_is_zero(offset) | (left + offset <= 2 * b)),
                             last_left.eq(left <= 2 * b)]
        with m.Else():
            with m.If(self.data.ready):
                m.d.sync += self.data.valid.eq(0)
            with m.If(consume):  # priming
                m.d.sync += [primed.eq(1), bytes_left.eq(left), started.eq(1),
                             fits_left.eq(fits), last_left.eq(last)]

        # abort: the requested bursts' beats are taken and dropped, the rows forgotten
        with m.If(self.abort):
            m.d.comb += [emit.eq(0), axi.rready.eq(1), rows.r_en.eq(rows.r_rdy)]
            m.d.sync += [self.data.valid.eq(0), primed.eq(0), started.eq(0)]

        # -- status -------------------------------------------------------------------------
        with m.If(self.clear):
            m.d.sync += [self.error.eq(0), self.bytes_read.eq(0)]
        with m.Else():
            with m.If(self.data.valid & self.data.ready):
                m.d.sync += self.bytes_read.eq(self.bytes_read + out.bytes)
        with m.If(axi.rvalid & axi.rready & (axi.rresp != RESP_OKAY)):
            m.d.sync += self.error.eq(1)
        m.d.comb += self.busy.eq(split.busy | axi.arvalid | (pending != 0)
                                 | (rows.r_level != 0) | self.data.valid)
        return m


class DMAWriter(wiring.Component):
    """Writes rows streamed from lane 0 into 2-D blocks of AXI4 memory.

    Members
    -------
    cmd : In(stream.Signature(cmd_layout(max_rows, max_row_bytes)))
        2-D write commands, executed in order.
    data : In(stream.Signature(data_layout(config)))
        The rows, realigned to lane 0 as :class:`DMAReader` delivers them: each row is exactly
        ⌈row_bytes / B⌉ beats, beat k holding the row's bytes k·B … k·B+B-1. Only ``data`` is
        used; ``bytes``, ``first``, ``last`` and ``end`` are implied by the command and ignored.
    m_axi : Out(AXI4Signature(32, 8·B, id_width, read=False))
        The write half of an AXI4 master: AW, W, B. AWID is 0; BREADY is always high.
    busy : Out(1)
        A command is in progress (accepted and not all of its B responses received).
    done : Out(1)
        One-cycle pulse when the last B response of a command arrives.
    error : Out(1)
        Sticky: some B response had BRESP != OKAY. Cleared by ``clear``.
    bytes_written : Out(32)
        Bytes enabled by WSTRB in W beats the slave has accepted (wraps). Cleared by ``clear``.
    clear : In(1)
        Clears ``error`` and ``bytes_written``.
    abort : In(1)
        Level: drop the commands (see :class:`DMA`); issue no AW, send the remaining W beats of
        the bursts already requested with WSTRB 0 (no byte written), take their B responses.

    Throughput: one W beat per cycle; an unaligned row whose tail spills into one more bus word
    than it has input beats takes that extra W beat from the kept input beat, without a bubble.
    """

    def __init__(self, config: AcceleratorConfig, *, max_burst: int = AXI4_MAX_BURST,
                 outstanding: int = OUTSTANDING, id_width: int = 1, max_rows: int = MAX_ROWS,
                 max_row_bytes: int = MAX_ROW_BYTES):
        _check_params(max_burst, outstanding)
        self._config = config
        self._max_burst = max_burst
        self._outstanding = outstanding
        self._limits = {"max_rows": max_rows, "max_row_bytes": max_row_bytes}
        super().__init__({
            "cmd": In(stream.Signature(cmd_layout(max_rows, max_row_bytes))),
            "data": In(stream.Signature(data_layout(config))),
            "m_axi": Out(AXI4Signature(32, config.axi_data_width, id_width, read=False)),
            "busy": Out(1),
            "done": Out(1),
            "error": Out(1),
            "bytes_written": Out(32),
            "clear": In(1),
            "abort": In(1),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        b = self._config.axi_bytes
        s = _log2(b)
        axi = self.m_axi
        limit = self._outstanding
        max_burst = self._max_burst

        m.submodules.split = split = BurstSplitter(self._config, max_burst, **self._limits)
        max_burst = burst_limit(self._config, max_burst, self._limits["max_row_bytes"])
        wiring.connect(m, wiring.flipped(self.cmd), split.cmd)
        m.d.comb += split.abort.eq(self.abort)

        # -- AW: one request per burst; its W-side description goes into `wq` at the same time.
        # W never waits for AWREADY and AW never waits for W data, so neither a slave that wants
        # AW first nor one that wants W first can deadlock the two.
        # The W side's decisions on a descriptor are made as it enters the queue, so that the
        # queue's output reaches the W beat's enable through no carry chain: the burst's last
        # beat index (an equality with `beat`, not `len - 1`) and whether the row's last bus word
        # is only the kept input beat's (`tail <= offset`).
        w_layout = data.StructLayout({
            "last_beat": range(max_burst),  # len - 1 (AxLEN)
            "row_first": 1,
            "row_last": 1,
            "offset": max(1, s),        # the row's address mod B
            "tail": range(1, b + 1),    # valid lanes of the row's last bus word
            "spill": 1,                 # tail <= offset: that word takes no new input beat
        })
        m.submodules.wq = wq = SyncFIFOBuffered(width=w_layout.size, depth=limit)
        # One bit per burst awaiting its B response: "last burst of its command" (B is in order).
        m.submodules.ends = ends = SyncFIFO(width=1, depth=limit)
        pending = Signal(range(limit + 1))
        d = split.burst.payload
        take = Signal()
        tail = Signal(range(1, b + 1))
        desc = Signal(w_layout)
        m.d.comb += [
            take.eq(split.burst.valid & (~axi.awvalid | axi.awready) & (pending < limit)
                    & wq.w_rdy & ends.w_rdy & ~self.abort),
            split.burst.ready.eq(take),
            tail.eq(((d.offset + d.row_bytes - 1) & (b - 1)) + 1),
            desc.last_beat.eq(d.len - 1),
            desc.row_first.eq(d.row_first),
            desc.row_last.eq(d.row_last),
            desc.offset.eq(d.offset),
            desc.tail.eq(tail),
            desc.spill.eq(tail <= d.offset),
            wq.w_en.eq(take),
            wq.w_data.eq(desc),
            ends.w_en.eq(take),
            ends.w_data.eq(d.end),
            axi.awid.eq(0),
            axi.awsize.eq(s),
            axi.awburst.eq(BURST_INCR),
            axi.awlock.eq(0),
            axi.awcache.eq(_AXCACHE),
            axi.awprot.eq(0),
        ]
        with m.If(take):
            m.d.sync += [axi.awvalid.eq(1), axi.awaddr.eq(d.addr), axi.awlen.eq(d.len - 1)]
        with m.Elif(axi.awready):
            m.d.sync += axi.awvalid.eq(0)

        # -- B: count responses, flag errors, report commands done --------------------------
        response = axi.bvalid & axi.bready
        m.d.comb += [
            axi.bready.eq(1),
            ends.r_en.eq(response),
            self.done.eq(response & ends.r_data[0]),
        ]
        m.d.sync += pending.eq(pending + take - response)

        # -- W: shift each row to its address alignment --------------------------------------
        w = w_layout(wq.r_data)
        have = wq.r_rdy
        beat = Signal(range(max_burst))           # beat within the current burst
        prev = Signal(8 * (b - 1))                # the previous input beat but its byte 0
        first = Signal()                          # the row's first bus word
        last_in_burst = Signal()
        last = Signal()                           # the row's last bus word
        flush = Signal()
        m.d.comb += [
            first.eq(w.row_first & _is_zero(beat)),
            last_in_burst.eq(beat == w.last_beat),
            last.eq(w.row_last & last_in_burst),
            # The row's last bus word holds only bytes of the previous input beat
            # (tail ≤ offset): emit it from `prev` without taking a new input beat.
            flush.eq(last & ~first & w.spill),
        ]
        can_load = ~axi.wvalid | axi.wready
        step = Signal()
        m.d.comb += [
            step.eq(have & can_load & (flush | self.data.valid)),
            self.data.ready.eq(have & can_load & ~flush),
            wq.r_en.eq(step & last_in_burst),
        ]
        # Lane j of the bus word = byte j + B - offset of (prev ‖ input): lanes below `offset`
        # come from the previous input beat, the rest from this one (offset 0: this one only).
        # The previous beat's byte 0 is never among them (offset < B), so it is not kept: the
        # bytes are those from j + B - 1 - offset of (prev[1:] ‖ input).
        shift = Signal(range(b))
        m.d.comb += shift.eq(b - 1 - w.offset)
        window = _shift_bytes(m, "align", Cat(prev, self.data.payload.data), shift, 8 * b)
        strobe = Signal(b)
        count = Signal(range(b + 1))
        # (lane B-1 is never below the offset: no comparison, which would be constant.)
        m.d.comb += [
            strobe.eq(Cat(*[(~first | (lane >= w.offset if lane < b - 1 else 1))
                            & (~last | (lane < w.tail)) for lane in range(b)])),
            count.eq(Mux(last, w.tail, b) - Mux(first, w.offset, 0)),
        ]
        # abort: the requested bursts' remaining beats go out without data or strobes
        with m.If(self.abort):
            m.d.comb += [step.eq(have & can_load), self.data.ready.eq(0), strobe.eq(0),
                         count.eq(0)]
        w_count = Signal(range(b + 1))
        with m.If(step):
            m.d.sync += [
                axi.wvalid.eq(1),
                axi.wdata.eq(window),
                axi.wstrb.eq(strobe),
                axi.wlast.eq(last_in_burst),
                w_count.eq(count),
                beat.eq(Mux(last_in_burst, 0, beat + 1)),
            ]
            with m.If(~flush):
                m.d.sync += prev.eq(self.data.payload.data.as_value()[8:])
        with m.Elif(axi.wready):
            m.d.sync += axi.wvalid.eq(0)

        # -- status -------------------------------------------------------------------------
        with m.If(self.clear):
            m.d.sync += [self.error.eq(0), self.bytes_written.eq(0)]
        with m.Else():
            with m.If(axi.wvalid & axi.wready):
                m.d.sync += self.bytes_written.eq(self.bytes_written + w_count)
        with m.If(response & (axi.bresp != RESP_OKAY)):
            m.d.sync += self.error.eq(1)
        m.d.comb += self.busy.eq(split.busy | axi.awvalid | (pending != 0) | (wq.r_level != 0)
                                 | axi.wvalid)
        return m


class DMA(wiring.Component):
    """A :class:`DMAReader` and a :class:`DMAWriter` sharing one AXI4 master port.

    The reader owns AR/R and the writer AW/W/B, so reads and writes run concurrently.
    ``max_rows`` and ``max_row_bytes`` bound the commands it takes (:func:`cmd_layout`); a
    burst is no longer than a row of ``max_row_bytes`` can cover (:func:`burst_limit`).

    Members
    -------
    m_axi : Out(AXI4Signature(32, config.axi_data_width, id_width))
        The memory port (Verilog ``m_axi__awaddr`` …).
    rd_cmd : In(stream.Signature(cmd_layout(max_rows, max_row_bytes)))
        Read commands (see :class:`DMAReader`).
    rd_data : Out(stream.Signature(data_layout(config)))
        Rows read, realigned to lane 0.
    wr_cmd : In(stream.Signature(cmd_layout(max_rows, max_row_bytes)))
        Write commands (see :class:`DMAWriter`).
    wr_data : In(stream.Signature(data_layout(config)))
        Rows to write, from lane 0.
    rd_busy, rd_error, rd_bytes : Out(1), Out(1), Out(32)
        The reader's ``busy``, ``error`` and ``bytes_read``.
    wr_busy, wr_done, wr_error, wr_bytes : Out(1), Out(1), Out(1), Out(32)
        The writer's ``busy``, ``done``, ``error`` and ``bytes_written``.
    clear : In(1)
        Clears both error flags and both byte counters.
    abort : In(1)
        Pulse: from the next cycle, drop every command, taken or not, and finish the AXI bursts
        already requested (reads: every R beat taken and dropped; writes: the remaining W beats
        with WSTRB 0, every B response taken), requesting no new one. In the pulse's cycle the
        DMA still works as before it (it sees the abort through a register of its own), so a
        burst taken then is requested in the next cycle, and a W beat taken then keeps its
        strobes. ``aborting`` is high from the next cycle until the last of them is done; give
        no command meanwhile. The bursts in flight are at most ``outstanding`` reads and
        ``outstanding`` writes, so this takes a bounded time
        (:func:`accelerator.hw.top.abort_bound`).
    aborting : Out(1)
    """

    def __init__(self, config: AcceleratorConfig, *, max_burst: int = AXI4_MAX_BURST,
                 outstanding: int = OUTSTANDING, id_width: int = 1, max_rows: int = MAX_ROWS,
                 max_row_bytes: int = MAX_ROW_BYTES):
        _check_params(max_burst, outstanding)
        self._config = config
        self._params = {"max_burst": max_burst, "outstanding": outstanding, "id_width": id_width,
                        "max_rows": max_rows, "max_row_bytes": max_row_bytes}
        layouts = dma_layouts(config, max_rows, max_row_bytes)
        super().__init__({
            "m_axi": Out(AXI4Signature(32, config.axi_data_width, id_width)),
            "rd_cmd": In(stream.Signature(layouts["rd_cmd"])),
            "rd_data": Out(stream.Signature(layouts["rd_data"])),
            "wr_cmd": In(stream.Signature(layouts["wr_cmd"])),
            "wr_data": In(stream.Signature(layouts["wr_data"])),
            "rd_busy": Out(1),
            "rd_error": Out(1),
            "rd_bytes": Out(32),
            "wr_busy": Out(1),
            "wr_done": Out(1),
            "wr_error": Out(1),
            "wr_bytes": Out(32),
            "clear": In(1),
            "abort": In(1),
            "aborting": Out(1),
        })

    @property
    def config(self) -> AcceleratorConfig:
        return self._config

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.reader = reader = DMAReader(self._config, **self._params)
        m.submodules.writer = writer = DMAWriter(self._config, **self._params)
        wiring.connect(m, wiring.flipped(self.rd_cmd), reader.cmd)
        wiring.connect(m, reader.data, wiring.flipped(self.rd_data))
        wiring.connect(m, wiring.flipped(self.wr_cmd), writer.cmd)
        wiring.connect(m, wiring.flipped(self.wr_data), writer.data)
        connect_part(m, reader.m_axi, self.m_axi)
        connect_part(m, writer.m_axi, self.m_axi)
        m.d.comb += [
            self.rd_busy.eq(reader.busy),
            self.rd_error.eq(reader.error),
            self.rd_bytes.eq(reader.bytes_read),
            self.wr_busy.eq(writer.busy),
            self.wr_done.eq(writer.done),
            self.wr_error.eq(writer.error),
            self.wr_bytes.eq(writer.bytes_written),
            reader.clear.eq(self.clear),
            writer.clear.eq(self.clear),
        ]
        # The reader and the writer drain on `aborting`, the DMA's own register of the abort,
        # not on the register block's pulse: from there, across the die, through `take` into
        # the splitters' next row and address, it was the ULX3S-25F board top's longest path.
        # A command or a burst may so still be taken in the pulse's cycle, and is drained.
        m.d.comb += [reader.abort.eq(self.aborting), writer.abort.eq(self.aborting)]
        with m.If(self.abort):
            m.d.sync += self.aborting.eq(1)
        with m.Elif(~reader.busy & ~writer.busy):
            m.d.sync += self.aborting.eq(0)
        return m
