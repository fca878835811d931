"""The AXI4 master of the DMA (:class:`~accelerator.hw.dma.DMAReader`, :class:`DMAWriter`).

The commands are any the stream can carry (any address, stride, row length and row count), and
the AXI slave any that follows AXI: it may hold READY low, answers only bursts it was asked
for, with RLAST on each burst's last beat, and B only for a burst whose address and last data
beat it took. The master is checked to

* hold VALID and the payload until READY (AR, AW, W);
* issue INCR bursts of full-width beats, aligned, of 1 to ``max_burst`` beats, none crossing
  a 4 KiB boundary;
* raise WLAST on a burst's last W beat and on no other (W beats counted against the AW burst
  they belong to, which may be taken before or after them);
* keep at most ``outstanding`` bursts in flight (issued, last beat or B not yet back);
* all of it also while ``abort`` drains the bursts in flight (raised at any time, held until
  the block is idle, as :class:`~accelerator.hw.dma.DMA` drives it);
* with ``fair=True`` (the stream side always ready: ``data.ready`` for reads, ``data.valid``
  for writes), finish every burst it issued: R is never stalled, and a write burst's W beats
  follow each other with at most one idle cycle.
"""

from __future__ import annotations

from amaranth.hdl import Array, Assert, Assume, Cat, Cover, Module, Mux, Signal

from ...config import AcceleratorConfig
from ...hw.axi import BURST_INCR
from ...hw.dma import AXI4_BOUNDARY, DMAReader, DMAWriter
from .harness import FormalHarness, past

__all__ = ["dma_read_harness", "dma_write_harness"]

MAX_BURST = 256
OUTSTANDING = 8


def _held(m: Module, h: FormalHarness, valid, ready, payload: list, what: str, *,
          assume: bool) -> None:
    """VALID and the payload stay until READY (assumed of the other side, asserted of ours)."""
    waiting = past(m, valid & ~ready, f"{what}_wait")
    before = past(m, Cat(*payload), f"{what}_payload")
    with m.If(h.past_valid & waiting):
        if assume:
            m.d.comb += Assume(valid & (Cat(*payload) == before), f"{what} held until ready")
        else:
            m.d.sync += Assert(valid & (Cat(*payload) == before), f"{what} held until ready")


def _abort_held(m: Module, h: FormalHarness, dut) -> None:
    """``abort`` follows :class:`~accelerator.hw.dma.DMA`'s use: a level, raised at any time and
    held until the block is idle (its bursts drained), so the properties hold during the drain."""
    holding = past(m, dut.abort & dut.busy, "abort_busy")
    with m.If(h.past_valid & holding):
        m.d.comb += Assume(dut.abort, "abort held until idle")


def _burst_checks(m: Module, valid, addr, length, size, burst, b: int, what: str) -> None:
    with m.If(valid):
        m.d.sync += [
            Assert(burst == BURST_INCR, f"{what}: INCR bursts"),
            Assert(size == b.bit_length() - 1, f"{what}: full-width beats"),
            Assert(addr[:b.bit_length() - 1] == 0, f"{what}: aligned to the bus width"),
            Assert(length + 1 <= MAX_BURST, f"{what}: at most {MAX_BURST} beats"),
            Assert(addr[:12] + (length + 1) * b <= AXI4_BOUNDARY,
                   f"{what}: no burst across a 4 KiB boundary"),
        ]


class _Lengths:
    """A queue of burst lengths in the harness (``depth`` entries): pushed, popped, head."""

    def __init__(self, m: Module, name: str, depth: int):
        self.entries = Array(Signal(8, name=f"{name}_{i}") for i in range(depth))
        self.head = Signal(range(depth), name=f"{name}_head")
        self.tail = Signal(range(depth), name=f"{name}_tail")
        self.count = Signal(range(depth + 1), name=f"{name}_count")
        self.push = Signal(name=f"{name}_push")
        self.pop = Signal(name=f"{name}_pop")
        self.data = Signal(8, name=f"{name}_data")
        self.first = self.entries[self.head]
        wrap = (1 << len(self.head)) == depth
        with m.If(self.push):
            m.d.sync += [self.entries[self.tail].eq(self.data),
                         self.tail.eq(self.tail + 1 if wrap else
                                      Mux(self.tail == depth - 1, 0, self.tail + 1))]
        with m.If(self.pop):
            m.d.sync += self.head.eq(self.head + 1 if wrap else
                                     Mux(self.head == depth - 1, 0, self.head + 1))
        m.d.sync += self.count.eq(self.count + self.push - self.pop)


def dma_read_harness(config: AcceleratorConfig, *, fair: bool = False) -> FormalHarness:
    b = config.axi_bytes

    def properties(m: Module, dut: DMAReader, h: FormalHarness) -> None:
        axi = dut.m_axi
        ar_hs = axi.arvalid & axi.arready
        r_hs = axi.rvalid & axi.rready
        # -- the slave and the command stream follow their protocols ------------------------
        _held(m, h, axi.rvalid, axi.rready, [axi.rdata, axi.rresp, axi.rlast], "R",
              assume=True)
        _held(m, h, dut.cmd.valid, dut.cmd.ready, [dut.cmd.payload], "cmd", assume=True)
        _abort_held(m, h, dut)
        lengths = _Lengths(m, "f_ar_len", OUTSTANDING + 1)
        beat = Signal(8, name="f_r_beat")   # beats of the oldest burst already returned
        m.d.comb += [lengths.push.eq(ar_hs), lengths.data.eq(axi.arlen),
                     lengths.pop.eq(r_hs & axi.rlast)]
        with m.If(r_hs):
            m.d.sync += beat.eq(Mux(axi.rlast, 0, beat + 1))
        m.d.comb += [
            Assume(~axi.rvalid | (lengths.count != 0), "R only for a burst asked for"),
            Assume(~axi.rvalid | (axi.rlast == (beat == lengths.first)),
                   "RLAST on each burst's last beat"),
            Assume(axi.rid == 0, "R of ID 0"),
        ]
        if fair:
            m.d.comb += Assume(dut.data.ready, "the stream takes every beat")
        # -- the master ------------------------------------------------------------------------
        _held(m, h, axi.arvalid, axi.arready,
              [axi.araddr, axi.arlen, axi.arsize, axi.arburst], "AR", assume=False)
        _burst_checks(m, axi.arvalid, axi.araddr, axi.arlen, axi.arsize, axi.arburst, b, "AR")
        m.d.sync += Assert(lengths.count <= OUTSTANDING,
                           f"at most {OUTSTANDING} read bursts outstanding")
        if fair:
            m.d.sync += Assert(~axi.rvalid | axi.rready | ~past(m, axi.rvalid & ~axi.rready,
                                                               "r_stall"),
                               "R is never stalled two cycles in a row")
        m.d.comb += Cover(r_hs & axi.rlast & (lengths.count == 2), "a burst completes while "
                          "another is outstanding")

    dut = DMAReader(config, max_burst=MAX_BURST, outstanding=OUTSTANDING)
    return FormalHarness(dut, properties)


class _WlastAlways(DMAWriter):
    """A deliberately broken writer: WLAST on every W beat (its last statement overrides the
    writer's own)."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.sync += self.m_axi.wlast.eq(1)
        return m


def dma_write_harness(config: AcceleratorConfig, *, fair: bool = False,
                      broken: bool = False) -> FormalHarness:
    b = config.axi_bytes

    def properties(m: Module, dut: DMAWriter, h: FormalHarness) -> None:
        axi = dut.m_axi
        aw_hs = axi.awvalid & axi.awready
        w_hs = axi.wvalid & axi.wready
        b_hs = axi.bvalid & axi.bready
        _held(m, h, dut.cmd.valid, dut.cmd.ready, [dut.cmd.payload], "cmd", assume=True)
        _held(m, h, dut.data.valid, dut.data.ready, [dut.data.payload], "data", assume=True)
        _held(m, h, axi.bvalid, axi.bready, [axi.bresp], "B", assume=True)
        _abort_held(m, h, dut)
        # A burst is presented when AWVALID rises or a new one follows a handshake; its W beats
        # are counted against it, whichever of AW and W the slave takes first.
        presented = axi.awvalid & (~past(m, axi.awvalid, "awvalid")
                                   | past(m, axi.awvalid & axi.awready, "aw_hs"))
        lengths = _Lengths(m, "f_aw_len", OUTSTANDING + 2)
        beat = Signal(8, name="f_w_beat")
        m.d.comb += [lengths.push.eq(presented), lengths.data.eq(axi.awlen),
                     lengths.pop.eq(w_hs & axi.wlast)]
        with m.If(w_hs):
            m.d.sync += beat.eq(Mux(axi.wlast, 0, beat + 1))
        aw_out = Signal(5, name="f_aw_out")    # AW taken, B not yet
        w_done = Signal(5, name="f_w_done")    # bursts whose last W beat was taken, B not yet
        m.d.sync += [aw_out.eq(aw_out + aw_hs - b_hs),
                     w_done.eq(w_done + (w_hs & axi.wlast) - b_hs)]
        m.d.comb += [
            Assume(~axi.bvalid | ((aw_out != 0) & (w_done != 0)),
                   "B only for a burst whose AW and last W beat were taken"),
            Assume(axi.bid == 0, "B of ID 0"),
        ]
        if fair:
            m.d.comb += Assume(dut.data.valid, "the stream always has the next beat")
        # -- the master ------------------------------------------------------------------------
        _held(m, h, axi.awvalid, axi.awready,
              [axi.awaddr, axi.awlen, axi.awsize, axi.awburst], "AW", assume=False)
        _held(m, h, axi.wvalid, axi.wready, [axi.wdata, axi.wstrb, axi.wlast], "W",
              assume=False)
        _burst_checks(m, axi.awvalid, axi.awaddr, axi.awlen, axi.awsize, axi.awburst, b, "AW")
        with m.If(axi.wvalid):
            m.d.sync += [
                Assert(lengths.count != 0, "no W beat before its burst's AW"),
                Assert(axi.wlast == (beat == lengths.first),
                       "WLAST on a burst's last beat and no other"),
            ]
        m.d.sync += [
            Assert(aw_out <= OUTSTANDING, f"at most {OUTSTANDING} write bursts outstanding"),
            Assert(lengths.count <= OUTSTANDING + 1, "bursts presented are bounded"),
        ]
        if fair:
            # W beats of a presented burst follow each other: never two idle cycles in a row.
            idle = (lengths.count != 0) & ~axi.wvalid
            m.d.sync += Assert(~(idle & past(m, idle, "w_idle")),
                               "a presented burst's W beats are never two cycles apart")
        m.d.comb += Cover(b_hs & (aw_out == 2), "a B with another burst outstanding")

    dut = (_WlastAlways if broken else DMAWriter)(config, max_burst=MAX_BURST,
                                                  outstanding=OUTSTANDING)
    return FormalHarness(dut, properties)
