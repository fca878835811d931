"""An on-chip RAM with an AXI4 slave port (for the accelerator's ``m_axi``) and an AXI4-Lite port
for the host.

Address map (the same in both ports' address spaces)::

    base .. base + size_bytes - 1     the RAM (byte addresses; little-endian words)
    anything else                     DECERR (AXI4 port: per beat; AXI4-Lite port: per access)

With the board's default ``base = 0x1000_0000`` the host writes a matrix at ``0x1000_0100``
through the UART bridge and passes that same number to the accelerator as ``A_ADDR``.

The storage is one :class:`amaranth.lib.memory.Memory` of bus-wide words with one byte-granular
write port and one synchronous read port, so it maps to simple dual-port block RAM (iCE40 EBR,
ECP5 DP16KD, …). The AXI4 port and the host port share those two ports:

* writes: a host write takes the write port for one cycle, during which the AXI4 ``wready`` is
  low;
* reads: a host read is issued only when the AXI4 read side is idle (no burst being read and no
  beat waiting in ``rdata``); while it waits, ``arready`` is low. Host traffic arrives at UART
  speed, so neither port is slowed noticeably.

AXI4 port (slave): INCR bursts of 1 to 256 beats (FIXED and WRAP are treated as INCR), any
``AxSIZE`` up to the bus width (the address advances by ``2**AxSIZE`` per beat, aligned), WSTRB
byte enables, one beat per cycle on each channel when not back-pressured, reads and writes
independent. One burst is in flight per direction (no interleaving, so the IDs are simply
echoed). The burst length comes from ``AxLEN``; ``WLAST`` is not checked. A beat outside the
RAM writes nothing / reads 0 and makes the response DECERR (for a write burst: if any beat was
outside).

Host port (AXI4-Lite, 32-bit data): one access at a time; ``addr[1:0]`` are ignored; the word is
the 32-bit lane of the bus-wide memory word that holds ``addr``.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import Out
from amaranth.utils import ceil_log2, exact_log2

from ..config import AcceleratorConfig
from .axi import AXI4Signature
from .axil import AXI4LiteSignature, AxiResp

__all__ = ["AxiRam", "check_geometry"]


def check_geometry(config: AcceleratorConfig, size_bytes: int, base: int) -> None:
    """Raise ``ValueError`` unless ``size_bytes`` and ``base`` suit an :class:`AxiRam`."""
    width = config.axi_data_width
    nbytes = width // 8
    if isinstance(size_bytes, bool) or not isinstance(size_bytes, int) or size_bytes <= 0 \
            or size_bytes % max(nbytes, 4):
        raise ValueError(f"size_bytes = {size_bytes!r} is not a positive multiple of the bus "
                         f"width ({max(nbytes, 4)} bytes)")
    if not 0 <= base < 1 << 32 or base % max(nbytes, 4) or base + size_bytes > 1 << 32:
        raise ValueError(f"base = {base!r} is not aligned to the bus width or the RAM does "
                         f"not fit the 32-bit address space")



class AxiRam(wiring.Component):
    """``size_bytes`` of RAM at ``base``, reached by an AXI4 slave and an AXI4-Lite slave.

    Parameters
    ----------
    config : AcceleratorConfig
        Gives the data width of the AXI4 port (``config.axi_data_width``).
    size_bytes : int
        A positive multiple of the bus width in bytes (and of 4).
    base : int
        Byte address of the first byte, a multiple of the bus width in bytes (and of 4).

    Members
    -------
    s_axi : Out(AXI4Signature(32, axi_data_width, 1).flip())
        The memory port the accelerator's ``m_axi`` connects to.
    s_axil : Out(AXI4LiteSignature(32, 32))
        The host port.
    """

    def __init__(self, config: AcceleratorConfig, size_bytes: int, *, base: int = 0):
        check_geometry(config, size_bytes, base)
        width = config.axi_data_width
        nbytes = width // 8
        self._config = config
        self._size = size_bytes
        self._base = base
        self._width = width
        self._depth = size_bytes // nbytes
        self._mem = Memory(shape=width, depth=self._depth, init=[])
        self._wp = self._mem.write_port(granularity=8)
        self._rp = self._mem.read_port()
        super().__init__({
            "s_axi": Out(AXI4Signature(32, width, 1).flip()),
            "s_axil": Out(AXI4LiteSignature(addr_width=32, data_width=32)),
        })

    @property
    def size_bytes(self) -> int:
        return self._size

    @property
    def base(self) -> int:
        return self._base

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.mem = self._mem
        wp, rp = self._wp, self._rp
        axi, host = self.s_axi, self.s_axil
        nbytes = self._width // 8
        shift = exact_log2(nbytes)
        index_bits = max(1, ceil_log2(self._depth))
        lanes = max(1, nbytes // 4)
        base, size = Const(self._base, 32), Const(self._size, 33)

        def in_range(addr):
            return (addr - base)[:33] < size  # unsigned: below base wraps to a large number

        def index(addr):
            return (addr - base)[shift:shift + index_bits]

        def aligned_step(addr, size_code):
            step = Signal(33)
            m.d.comb += step.eq(Const(1, 33) << size_code)
            return ((addr & ~(step - 1)[:32]) + step)[:32]

        # -- host port (AXI4-Lite): requests to share the memory ports ----------------------------
        h_wr_req = Signal()      # a host write waits for the write port
        h_rd_req = Signal()      # a host read waits for the read port
        h_addr_w = Signal(32)
        h_addr_r = Signal(32)
        h_wdata = Signal(32)
        h_wstrb = Signal(4)
        h_aw, h_w = Signal(), Signal()
        h_rd_go = Signal()
        h_rd_wait = Signal()     # the read port delivers the host's word this cycle
        h_lane = Signal(range(lanes))

        # writes: AW and W latched independently, then one cycle on the write port
        m.d.comb += [
            host.awready.eq(~h_aw & ~host.bvalid),
            host.wready.eq(~h_w & ~host.bvalid),
        ]
        with m.If(host.awvalid & host.awready):
            m.d.sync += [h_aw.eq(1), h_addr_w.eq(host.awaddr)]
        with m.If(host.wvalid & host.wready):
            m.d.sync += [h_w.eq(1), h_wdata.eq(host.wdata), h_wstrb.eq(host.wstrb)]
        with m.If(host.bvalid & host.bready):
            m.d.sync += host.bvalid.eq(0)
        m.d.comb += h_wr_req.eq(h_aw & h_w & in_range(h_addr_w))
        with m.If(h_aw & h_w):
            m.d.sync += [h_aw.eq(0), h_w.eq(0), host.bvalid.eq(1),
                         host.bresp.eq(Const(AxiResp.OKAY, 2))]
            with m.If(~in_range(h_addr_w)):
                m.d.sync += host.bresp.eq(Const(AxiResp.DECERR, 2))

        # reads: AR latched, then the read port when the AXI4 read side is idle
        m.d.comb += host.arready.eq(~h_rd_req & ~h_rd_wait & ~host.rvalid)
        with m.If(host.rvalid & host.rready):
            m.d.sync += host.rvalid.eq(0)
        with m.If(host.arvalid & host.arready):
            with m.If(in_range(host.araddr)):
                m.d.sync += [h_rd_req.eq(1), h_addr_r.eq(host.araddr)]
            with m.Else():
                m.d.sync += [host.rvalid.eq(1), host.rdata.eq(0),
                             host.rresp.eq(Const(AxiResp.DECERR, 2))]
        m.d.sync += h_rd_wait.eq(h_rd_go)
        with m.If(h_rd_go):
            m.d.sync += h_rd_req.eq(0)
            if lanes > 1:
                m.d.sync += h_lane.eq(h_addr_r[2:shift])
        with m.If(h_rd_wait):
            lane_words = [rp.data[32 * i:32 * (i + 1)] for i in range(lanes)]
            data = lane_words[0] if lanes == 1 else Cat(*lane_words).word_select(h_lane, 32)
            m.d.sync += [host.rvalid.eq(1), host.rdata.eq(data),
                         host.rresp.eq(Const(AxiResp.OKAY, 2))]

        # -- AXI4 write channel -------------------------------------------------------------------
        w_active = Signal()
        w_addr = Signal(32)
        w_size = Signal(3)
        w_count = Signal(8)
        w_err = Signal()
        m.d.comb += axi.awready.eq(~w_active & ~axi.bvalid)
        with m.If(axi.awvalid & axi.awready):
            m.d.sync += [w_active.eq(1), w_addr.eq(axi.awaddr), w_size.eq(axi.awsize),
                         w_count.eq(axi.awlen), w_err.eq(0), axi.bid.eq(axi.awid)]
        with m.If(axi.bvalid & axi.bready):
            m.d.sync += axi.bvalid.eq(0)

        m.d.comb += axi.wready.eq(w_active & ~h_wr_req)
        w_beat = Signal()
        m.d.comb += w_beat.eq(axi.wvalid & axi.wready)
        with m.If(h_wr_req):
            if lanes > 1:
                lane = h_addr_w[2:shift]
                m.d.comb += wp.en.eq(h_wstrb << (lane * 4))
            else:
                m.d.comb += wp.en.eq(h_wstrb[:nbytes])
            m.d.comb += [wp.addr.eq(index(h_addr_w)),
                         wp.data.eq(h_wdata.replicate(max(1, nbytes // 4))[:self._width])]
        with m.Elif(w_beat):
            ok = in_range(w_addr)
            m.d.comb += [wp.addr.eq(index(w_addr)), wp.data.eq(axi.wdata),
                         wp.en.eq(axi.wstrb & ok.replicate(nbytes))]
            m.d.sync += [w_addr.eq(aligned_step(w_addr, w_size)), w_count.eq(w_count - 1)]
            with m.If(~ok):
                m.d.sync += w_err.eq(1)
            with m.If(w_count == 0):
                m.d.sync += [w_active.eq(0), axi.bvalid.eq(1),
                             axi.bresp.eq(Mux(w_err | ~ok, AxiResp.DECERR, AxiResp.OKAY))]

        # -- AXI4 read channel --------------------------------------------------------------------
        # rdata is the read port's output; the port's enable holds it while rvalid & ~rready.
        r_active = Signal()
        r_addr = Signal(32)
        r_size = Signal(3)
        r_count = Signal(8)
        r_ok = Signal()          # the beat in rdata was in range
        advance = Signal()
        m.d.comb += [
            advance.eq(~axi.rvalid | axi.rready),
            axi.arready.eq(~r_active & ~h_rd_req),
            h_rd_go.eq(h_rd_req & ~r_active & ~axi.rvalid),
            axi.rdata.eq(Mux(r_ok, rp.data, 0)),
        ]
        m.d.comb += rp.en.eq(0)  # (a read port's enable is 1 unless driven)
        with m.If(axi.arvalid & axi.arready):
            m.d.sync += [r_active.eq(1), r_addr.eq(axi.araddr), r_size.eq(axi.arsize),
                         r_count.eq(axi.arlen), axi.rid.eq(axi.arid)]
        with m.If(h_rd_go):
            m.d.comb += [rp.en.eq(1), rp.addr.eq(index(h_addr_r))]
        with m.Elif(advance):
            with m.If(r_active):
                ok = in_range(r_addr)
                m.d.comb += [rp.en.eq(1), rp.addr.eq(index(r_addr))]
                m.d.sync += [axi.rvalid.eq(1), axi.rlast.eq(r_count == 0), r_ok.eq(ok),
                             axi.rresp.eq(Mux(ok, AxiResp.OKAY, AxiResp.DECERR)),
                             r_addr.eq(aligned_step(r_addr, r_size)), r_count.eq(r_count - 1)]
                with m.If(r_count == 0):
                    m.d.sync += r_active.eq(0)
            with m.Else():
                m.d.sync += axi.rvalid.eq(0)
        return m

