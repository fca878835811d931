"""The AXI4-Lite slave of the register block (:class:`~accelerator.hw.registers.RegisterBlock`).

The master is assumed to follow AXI (a valid request, with its address and data, is held until
its ready); the slave is then checked, black-box, through its ports:

* every request is answered exactly once: at most one write and one read in flight, a response
  within a fixed number of cycles of its request, and no response without an outstanding request;
* a response is held, unchanged, until it is taken;
* SLVERR exactly for an address past the register map (and a read of one returns 0);
* STATUS.done is write-1-to-clear (set by ``set_done``, which wins; cleared by a write of 1 with
  its byte strobed, by CTRL.start and by CTRL.reset), seen through ``irq`` and through reads;
  STATUS.busy and STATUS.error read as the hardware set them;
* CTRL.start and CTRL.reset are one-cycle pulses exactly after a write of 1 to them (start only
  while not busy, and not when reset is written with it), and CTRL reads as 0.

The expected values come from the register map (:data:`MAP_SIZE`, :func:`offset`,
:func:`field`), not from the gateware.
"""

from __future__ import annotations

from amaranth.hdl import Assert, Assume, Cat, Cover, Module, Mux, Signal

from ...config import AcceleratorConfig
from ...hw.axil import AxiResp
from ...hw.registers import MAP_SIZE, RegisterBlock, field, memory_backed, offset
from .harness import FormalHarness, past

__all__ = ["axil_harness"]


def _count(m: Module, name: str, up, down, width: int = 3) -> Signal:
    """Handshakes of ``up`` minus those of ``down`` so far."""
    count = Signal(width, name=name)
    m.d.sync += count.eq(count + up - down)
    return count


class _OkayForUnmapped(RegisterBlock):
    """A deliberately broken register block: BRESP is OKAY for every write (the bug
    ``accel formal --inject-bug`` shows). Its last statement overrides the block's own."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.sync += self.s_axil.bresp.eq(AxiResp.OKAY)
        return m


def axil_harness(config: AcceleratorConfig, *, cover: bool = False,
                 broken: bool = False) -> FormalHarness:
    """The properties above around a :class:`RegisterBlock` of ``config`` (``cover``: with
    covers; ``broken``: around :class:`_OkayForUnmapped`)."""
    read_latency = 2 if memory_backed(config) else 1  # AR handshake to RVALID

    def properties(m: Module, dut: RegisterBlock, h: FormalHarness) -> None:
        bus = dut.s_axil
        pv = h.past_valid
        aw_hs = bus.awvalid & bus.awready
        w_hs = bus.wvalid & bus.wready
        b_hs = bus.bvalid & bus.bready
        ar_hs = bus.arvalid & bus.arready
        r_hs = bus.rvalid & bus.rready

        # -- the master follows AXI ------------------------------------------------------------
        for valid, ready, payload in ((bus.awvalid, bus.awready, [bus.awaddr]),
                                      (bus.wvalid, bus.wready, [bus.wdata, bus.wstrb]),
                                      (bus.arvalid, bus.arready, [bus.araddr])):
            waiting = past(m, valid & ~ready, f"{valid.name}_wait")
            before = [past(m, p, p.name) for p in payload]  # (not under an If: always sampled)
            with m.If(pv & waiting):
                m.d.comb += Assume(valid, "master holds valid")
                for p, was in zip(payload, before, strict=True):
                    m.d.comb += Assume(p == was, "master holds its payload")

        # -- responses are held until taken ------------------------------------------------------
        b_before = past(m, Cat(bus.bvalid & ~bus.bready, bus.bresp), "b")
        r_before = past(m, Cat(bus.rvalid & ~bus.rready, bus.rresp, bus.rdata), "r")
        with m.If(pv & b_before[0]):
            m.d.sync += Assert(bus.bvalid & (bus.bresp == b_before[1:]), "B held until taken")
        with m.If(pv & r_before[0]):
            m.d.sync += Assert(bus.rvalid & (Cat(bus.rresp, bus.rdata) == r_before[1:]),
                               "R held until taken")

        # -- every request answered exactly once -------------------------------------------------
        aw_out = _count(m, "f_aw_out", aw_hs, b_hs)
        w_out = _count(m, "f_w_out", w_hs, b_hs)
        ar_out = _count(m, "f_ar_out", ar_hs, r_hs)
        m.d.sync += [
            Assert((aw_out <= 1) & (w_out <= 1) & (ar_out <= 1), "one request of each in flight"),
            Assert(~bus.bvalid | ((aw_out == 1) & (w_out == 1)), "no B without AW and W"),
            Assert(~bus.rvalid | (ar_out == 1), "no R without AR"),
        ]
        b_wait = Signal(3, name="f_b_wait")   # cycles a complete write has gone unanswered
        r_wait = Signal(3, name="f_r_wait")
        m.d.sync += [
            b_wait.eq(Mux((aw_out == 1) & (w_out == 1) & ~bus.bvalid, b_wait + 1, 0)),
            r_wait.eq(Mux((ar_out == 1) & ~bus.rvalid, r_wait + 1, 0)),
            Assert(b_wait <= 1, "B within 2 cycles of AW and W"),
            Assert(r_wait <= read_latency - 1, f"R within {read_latency} cycles of AR"),
        ]

        # -- the request each response answers --------------------------------------------------
        aw_addr = Signal.like(bus.awaddr, name="f_aw_addr")
        w_data = Signal.like(bus.wdata, name="f_w_data")
        w_strb = Signal.like(bus.wstrb, name="f_w_strb")
        ar_addr = Signal.like(bus.araddr, name="f_ar_addr")
        with m.If(aw_hs):
            m.d.sync += aw_addr.eq(bus.awaddr)
        with m.If(w_hs):
            m.d.sync += [w_data.eq(bus.wdata), w_strb.eq(bus.wstrb)]
        with m.If(ar_hs):
            m.d.sync += ar_addr.eq(bus.araddr)

        def resp(addr):
            return Mux(addr < MAP_SIZE, AxiResp.OKAY, AxiResp.SLVERR)

        with m.If(bus.bvalid):
            m.d.sync += Assert(bus.bresp == resp(aw_addr), "BRESP: SLVERR exactly when unmapped")
        with m.If(bus.rvalid):
            m.d.sync += Assert(bus.rresp == resp(ar_addr), "RRESP: SLVERR exactly when unmapped")
            with m.If(ar_addr >= MAP_SIZE):
                m.d.sync += Assert(bus.rdata == 0, "an unmapped read returns 0")

        # -- CTRL's write pulses and STATUS's w1c bit, from the write that was applied ----------
        # A write is applied in the cycle before BVALID rises (the slave's registers change at
        # that edge), so `applied` looks back one cycle from the rise.
        applied = bus.bvalid & ~past(m, bus.bvalid, "bvalid")
        prev_w_data = past(m, w_data, "w_data")
        prev_w_strb = past(m, w_strb, "w_strb")
        prev_aw_addr = past(m, aw_addr, "aw_addr")

        def wrote_one(reg: str, name: str):
            f = field(reg, name)
            return (applied & (prev_aw_addr[2:] == offset(reg) >> 2)
                    & prev_w_data[f.lsb] & prev_w_strb[f.lsb // 8])

        busy_before = past(m, dut.busy, "busy")
        m.d.sync += [
            Assert(dut.start == (wrote_one("CTRL", "start") & ~wrote_one("CTRL", "reset")
                                 & ~busy_before),
                   "CTRL.start pulses exactly after a write of 1 (without reset) while idle"),
            Assert(dut.abort == wrote_one("CTRL", "reset"),
                   "CTRL.reset pulses exactly after a write of 1"),
        ]
        # STATUS.done and STATUS.error as the register map describes them.
        done = Signal(name="f_done")
        error = Signal(8, name="f_error")
        ended = past(m, dut.set_done, "set_done")
        cleared = past(m, dut.start | dut.abort, "start_abort")
        m.d.comb += [
            done.eq(ended | (past(m, done, "done") & ~cleared & ~wrote_one("STATUS", "done"))),
            error.eq(Mux(ended, past(m, dut.error_code, "error_code"),
                         Mux(cleared, 0, past(m, error, "error")))),
        ]
        m.d.sync += Assert(dut.irq == (done & field("MODE", "irq_enable").extract(dut.mode)),
                           "irq is STATUS.done & MODE.irq_enable")
        # A read samples STATUS at its AR handshake (one cycle later from a block RAM).
        sample = ar_hs if read_latency == 1 else past(m, ar_hs, "ar_hs")
        now = Signal(32, name="f_status_now")  # every bit driven: the others are 0
        m.d.comb += [field("STATUS", "done").extract(now).eq(done),
                     field("STATUS", "error").extract(now).eq(error),
                     field("STATUS", "busy").extract(now).eq(dut.busy)]
        status = Signal(32, name="f_status")
        with m.If(sample):
            m.d.sync += status.eq(now)
        rose_r = bus.rvalid & ~past(m, bus.rvalid, "rvalid")
        with m.If(rose_r & (ar_addr[2:] == offset("STATUS") >> 2) & (ar_addr < MAP_SIZE)):
            m.d.sync += Assert(bus.rdata == status, "STATUS reads busy, done, error as set")
        with m.If(rose_r & (ar_addr[2:] == offset("CTRL") >> 2) & (ar_addr < MAP_SIZE)):
            m.d.sync += Assert(bus.rdata == 0, "CTRL reads as 0")

        # -- white-box: the slave's state is what the requests so far imply (for induction) ----
        aw_full, w_full = h.internal("aw_full"), h.internal("w_full")
        m.d.sync += [
            Assert(aw_full == ((aw_out == 1) & ~bus.bvalid), "AW latched iff outstanding"),
            Assert(w_full == ((w_out == 1) & ~bus.bvalid), "W latched iff outstanding"),
            Assert(h.internal("done") == done, "STATUS.done as modelled"),
            Assert(h.internal("error") == error, "STATUS.error as modelled"),
        ]
        with m.If(aw_full):
            m.d.sync += [
                Assert(h.internal("aw_index") == aw_addr[2:2 + len(h.internal("aw_index"))],
                       "the latched write index"),
                Assert(h.internal("aw_mapped") == (aw_addr < MAP_SIZE), "the latched decode"),
            ]
        with m.If(w_full):
            m.d.sync += Assert((h.internal("w_data") == w_data) & (h.internal("w_strb") == w_strb),
                               "the latched write data")
        if read_latency == 2:
            m.d.sync += Assert(h.internal("pending") == (ar_out == 1) & ~bus.rvalid,
                               "a read pending iff outstanding and unanswered")
            with m.If(h.internal("pending")):
                m.d.sync += Assert(Cat(h.internal("r_index"), h.internal("r_upper_zero"))
                                   == Cat(ar_addr[2:2 + len(h.internal("r_index"))],
                                          ar_addr[2 + len(h.internal("r_index")):] == 0),
                                   "the latched read address")

        if cover:
            m.d.comb += [
                Cover(b_hs & (bus.bresp == AxiResp.SLVERR), "an unmapped write answered"),
                Cover(dut.start, "a start pulse"),
                Cover(r_hs & done, "a read while done"),
            ]

    return FormalHarness((_OkayForUnmapped if broken else RegisterBlock)(config), properties)
