"""An on-chip RAM with an AXI4 slave port (for the accelerator's ``m_axi``) and an AXI4-Lite port
for the host.

Address map (the same in both ports' address spaces)::

    base .. base + size_bytes - 1     the RAM (byte addresses; little-endian words)
    anything else                     DECERR (AXI4 port: per beat; AXI4-Lite port: per access)

With the board's default ``base = 0x1000_0000`` the host writes a matrix at ``0x1000_0100``
through the UART bridge and passes that same number to the accelerator as ``A_ADDR``.

Storage: bus-wide words, in one of two forms (``single_port``).

Dual-port (the default): one :class:`amaranth.lib.memory.Memory` with one byte-granular write
port and one synchronous read port, so it maps to simple dual-port block RAM (iCE40 EBR, ECP5
DP16KD, …). The AXI4 port and the host port share those two ports:

* writes: a host write takes the write port for one cycle, during which the AXI4 ``wready`` is
  low;
* reads: a host read is issued only when the AXI4 read side is idle (no burst being read and no
  beat waiting in ``rdata``); while it waits, ``arready`` is low. Host traffic arrives at UART
  speed, so neither port is slowed noticeably.

Single-port (``single_port=True``): a :class:`~accelerator.hw.spram.SinglePortRam`, one access
(a read or a write) per cycle: the iCE40 UltraPlus's ``SB_SPRAM256KA`` blocks on such a device
(the board top's choice on the iCEBreaker: 128 KiB and no block RAM), a ``Memory`` elsewhere.
Each cycle the port goes to the first of:

1. a host write (AW and W both received), 2. a host read: one cycle each; the AXI4-Lite
   handshakes around them leave at least two cycles between two host accesses, and they come
   at UART speed, so the AXI4 side hardly notices;
3. / 4. the AXI4 write beat and the AXI4 read beat, in turns: after a write beat the read side,
   if it has a burst, has the next cycle (``wready`` is low in it); a read beat takes every
   cycle that no host access and no write beat takes. So with both directions busy the beats
   alternate (one per cycle in total, half each), and alone each streams one beat per cycle.

``wready`` comes from registers only (a burst, no host request, the turn), never from ``rready``
or a valid, so a master that holds ``rready`` low still gets every other cycle for its writes:
the two channels do not depend on each other. The R channel holds one beat: it is in the RAM's
output on the cycle after its read; if the master does not take it then, it moves to a register
(the port's next access changes the RAM's output) and ``rvalid`` stays up. The next beat is read
when that place is free or being freed (``~rvalid | rready``), as with the dual-port storage,
whose read port holds its output instead. Latency as with the dual-port storage: R follows the
AR handshake by two cycles, B the last W beat by one; plus the cycles a beat waits for its turn.

AXI4 port (slave): INCR bursts of 1 to 256 beats (FIXED and WRAP are treated as INCR), any
``AxSIZE`` up to the bus width (the address advances by ``2**AxSIZE`` per beat, aligned; a wider
``AxSIZE``, which AXI does not allow, counts as the bus width), WSTRB byte enables, one beat per
cycle on each channel when not back-pressured. One burst is in flight per direction (no
interleaving, so the IDs are simply echoed: each R beat carries its own burst's ID, also when
the next burst has started). The burst length comes from ``AxLEN``; ``WLAST`` is not checked.
A beat outside the RAM writes nothing / reads 0 and makes the response DECERR (for a write
burst: if any beat was outside).

Host port (AXI4-Lite, 32-bit data): one access at a time; ``addr[1:0]`` are ignored; the word is
the 32-bit lane of the bus-wide memory word that holds ``addr``.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import Out
from amaranth.utils import ceil_log2, exact_log2

from ..config import AcceleratorConfig
from .axi import AXI4Signature
from .axil import AXI4LiteSignature, AxiResp
from .spram import SinglePortRam

__all__ = ["AxiRam", "check_geometry", "in_window"]


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


def in_window(addr: Value, base: int, size: int) -> Value:
    """Whether the 32-bit ``addr`` is in ``base`` .. ``base + size - 1``.

    When the window lies in one aligned block of ``2**ceil_log2(size)`` bytes (a power-of-two
    window at a multiple of its size, like every window of the board top), this compares the
    high bits with a constant instead of subtracting: a few LUTs instead of a 33-bit carry chain.
    """
    span = ceil_log2(size)
    if span < 32 and base % (1 << span) == 0:
        inside = addr[span:32] == base >> span
        return inside if size == 1 << span else inside & (addr[:span] < size)
    return (addr - Const(base, 32))[:33] < size  # unsigned: below base wraps to a large number


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
    single_port : bool
        Store the data in a :class:`~accelerator.hw.spram.SinglePortRam` (``SB_SPRAM256KA`` on an
        iCE40 UltraPlus) and arbitrate its one port (see the module docstring); the default is a
        simple dual-port block RAM.

    Members
    -------
    s_axi : Out(AXI4Signature(32, axi_data_width, 1).flip())
        The memory port the accelerator's ``m_axi`` connects to.
    s_axil : Out(AXI4LiteSignature(32, 32))
        The host port.
    """

    def __init__(self, config: AcceleratorConfig, size_bytes: int, *, base: int = 0,
                 single_port: bool = False):
        check_geometry(config, size_bytes, base)
        width = config.axi_data_width
        nbytes = width // 8
        self._config = config
        self._size = size_bytes
        self._base = base
        self._width = width
        self._depth = size_bytes // nbytes
        self._single_port = bool(single_port)
        if self._single_port:
            self._ram = SinglePortRam(width, self._depth)
        else:
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

    @property
    def single_port(self) -> bool:
        return self._single_port

    @property
    def storage(self) -> SinglePortRam | Memory:
        """What holds the data: a :class:`~accelerator.hw.spram.SinglePortRam` or a ``Memory``."""
        return self._ram if self._single_port else self._mem

    def elaborate(self, platform) -> Module:
        m = Module()
        axi, host = self.s_axi, self.s_axil
        nbytes = self._width // 8
        shift = exact_log2(nbytes)
        index_bits = max(1, ceil_log2(self._depth))
        lanes = max(1, nbytes // 4)
        base = Const(self._base, 32)
        if self._single_port:
            m.submodules.mem = ram = self._ram
            # the RAM's output, 0 unless ``read_ok`` (a beat outside the RAM reads 0); the host's
            # reads go through it too (with ``read_ok`` set), so that the bits share their LUTs
            read_ok = Signal()
            read_data = Signal(self._width)
            m.d.comb += read_data.eq(Mux(read_ok, ram.rdata, 0))
        else:
            m.submodules.mem = self._mem
            wp, rp = self._wp, self._rp
            read_data = rp.data

        span = ceil_log2(self._size)  # the RAM is inside one aligned block of 2**span bytes?
        aligned = span < 32 and self._base % (1 << span) == 0

        def in_range(addr):
            return in_window(addr, self._base, self._size)

        def index(addr):
            # (in an aligned block the low address bits are the offset: no subtraction)
            return (addr if aligned else addr - base)[shift:shift + index_bits]

        # A burst's address advances by 2**AxSIZE per beat (aligned). With an aligned block only
        # its low ``span`` bits count: a carry out of them sets ``past`` (the burst has left the
        # block, so no later beat of it is in the RAM), and the incrementer is that narrow.
        def burst_in_range(addr, past):
            return in_range(addr) & ~past

        def burst_step(addr, past, size_code):
            # (an AxSIZE wider than the bus is not AXI; it counts as the bus width here)
            size_code = Mux(size_code > shift, shift, size_code)
            if not aligned:
                step = Signal(33)
                m.d.comb += step.eq(Const(1, 33) << size_code)
                return [addr.eq(((addr & ~(step - 1)[:32]) + step)[:32])]
            step = Signal(shift + 1)
            m.d.comb += step.eq(Const(1, shift + 1) << size_code)
            aligned_down = Cat(addr[:shift] & ~(step - 1)[:shift], addr[shift:span])
            following = aligned_down + step
            return [addr[:span].eq(following[:span]), past.eq(past | following[span])]

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
        # the host write's byte enables and data on the bus-wide word
        if lanes > 1:
            h_be = (h_wstrb << (h_addr_w[2:shift] * 4))[:nbytes]
        else:
            h_be = h_wstrb[:nbytes]
        h_data = h_wdata.replicate(lanes)[:self._width]

        # reads: AR latched, then the read port (h_rd_go: when the storage's arbitration allows)
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
            lane_words = [read_data[32 * i:32 * (i + 1)] for i in range(lanes)]
            data = lane_words[0] if lanes == 1 else Cat(*lane_words).word_select(h_lane, 32)
            m.d.sync += [host.rvalid.eq(1), host.rdata.eq(data),
                         host.rresp.eq(Const(AxiResp.OKAY, 2))]

        # -- AXI4 write channel: the burst (the beats go to the storage below) --------------------
        w_active = Signal()
        w_addr = Signal(32)
        w_past = Signal()       # the burst has left the RAM's aligned block
        w_size = Signal(3)
        w_count = Signal(8)
        w_err = Signal()
        w_beat = Signal()
        w_ok = Signal()
        m.d.comb += [axi.awready.eq(~w_active & ~axi.bvalid),
                     w_beat.eq(axi.wvalid & axi.wready),
                     w_ok.eq(burst_in_range(w_addr, w_past))]
        with m.If(axi.awvalid & axi.awready):
            m.d.sync += [w_active.eq(1), w_addr.eq(axi.awaddr), w_past.eq(0),
                         w_size.eq(axi.awsize), w_count.eq(axi.awlen), w_err.eq(0),
                         axi.bid.eq(axi.awid)]
        with m.If(axi.bvalid & axi.bready):
            m.d.sync += axi.bvalid.eq(0)
        with m.If(w_beat):
            m.d.sync += [*burst_step(w_addr, w_past, w_size), w_count.eq(w_count - 1)]
            with m.If(~w_ok):
                m.d.sync += w_err.eq(1)
            with m.If(w_count == 0):
                m.d.sync += [w_active.eq(0), axi.bvalid.eq(1),
                             axi.bresp.eq(Mux(w_err | ~w_ok, AxiResp.DECERR, AxiResp.OKAY))]
        w_be = axi.wstrb & w_ok.replicate(nbytes)

        # -- AXI4 read channel: the burst ---------------------------------------------------------
        r_active = Signal()
        r_addr = Signal(32)
        r_past = Signal()       # the burst has left the RAM's aligned block
        r_size = Signal(3)
        r_count = Signal(8)
        r_id = Signal(len(axi.rid))  # (goes to rid with each beat: the previous burst's last
        r_go = Signal()              # beat may still be waiting when this burst starts)
        with m.If(axi.arvalid & axi.arready):
            m.d.sync += [r_active.eq(1), r_addr.eq(axi.araddr), r_past.eq(0),
                         r_size.eq(axi.arsize), r_count.eq(axi.arlen), r_id.eq(axi.arid)]
        with m.If(r_go):
            m.d.sync += [*burst_step(r_addr, r_past, r_size), r_count.eq(r_count - 1)]
            with m.If(r_count == 0):
                m.d.sync += r_active.eq(0)

        if self._single_port:
            # (each: request, grant, word index; writes: byte enables, data; reads: in range,
            # last beat, ID)
            self._single_port_arbiter(
                m, ram, read_ok, read_data,
                host_write=(h_wr_req, index(h_addr_w), h_be, h_data),
                host_read=(h_rd_req, h_rd_go, index(h_addr_r)),
                axi_write=(w_active, w_beat, index(w_addr), w_be),
                axi_read=(r_active, r_go, index(r_addr), burst_in_range(r_addr, r_past),
                          r_count == 0, r_id))
            return m

        # -- dual-port storage --------------------------------------------------------------------
        m.d.comb += axi.wready.eq(w_active & ~h_wr_req)
        with m.If(h_wr_req):
            m.d.comb += [wp.en.eq(h_be), wp.addr.eq(index(h_addr_w)), wp.data.eq(h_data)]
        with m.Elif(w_beat):
            m.d.comb += [wp.addr.eq(index(w_addr)), wp.data.eq(axi.wdata), wp.en.eq(w_be)]

        # rdata is the read port's output; the port's enable holds it while rvalid & ~rready.
        r_ok = Signal()          # the beat in rdata was in range
        advance = Signal()
        m.d.comb += [
            advance.eq(~axi.rvalid | axi.rready),
            axi.arready.eq(~r_active & ~h_rd_req),
            h_rd_go.eq(h_rd_req & ~r_active & ~axi.rvalid),
            axi.rdata.eq(Mux(r_ok, rp.data, 0)),
        ]
        m.d.comb += rp.en.eq(0)  # (a read port's enable is 1 unless driven)
        with m.If(h_rd_go):
            m.d.comb += [rp.en.eq(1), rp.addr.eq(index(h_addr_r))]
        with m.Elif(advance):
            with m.If(r_active):
                ok = burst_in_range(r_addr, r_past)
                m.d.comb += [rp.en.eq(1), rp.addr.eq(index(r_addr)), r_go.eq(1)]
                m.d.sync += [axi.rvalid.eq(1), axi.rlast.eq(r_count == 0), r_ok.eq(ok),
                             axi.rresp.eq(Mux(ok, AxiResp.OKAY, AxiResp.DECERR)),
                             axi.rid.eq(r_id)]
            with m.Else():
                m.d.sync += axi.rvalid.eq(0)
        return m

    def _single_port_arbiter(self, m, ram, f_ok, f_data, *, host_write, host_read, axi_write,
                             axi_read):
        """The single-port storage: who gets the port each cycle, and the R channel's buffer."""
        axi = self.s_axi
        h_wr_req, h_addr_w, h_be, h_wdata = host_write
        h_rd_req, h_rd_go, h_addr_r = host_read
        w_active, w_beat, w_addr, w_be = axi_write
        r_active, r_go, r_index, r_ok, r_last, r_id = axi_read

        # R channel: a beat is in the RAM's output on the cycle after its read ("fresh"); if the
        # master does not take it then, it moves to the hold register ("held"), because the
        # port's next access will change the RAM's output. At most one beat is fresh or held: the
        # next beat is read when the channel is empty or its beat is being taken (as with the
        # dual-port storage, whose read port holds its output instead).
        fresh, held = Signal(), Signal()
        f_last = Signal()
        f_id = Signal(len(axi.rid))
        hold_ok, hold_last = Signal(), Signal()
        hold_id = Signal(len(axi.rid))
        hold_data = Signal(self._width)

        m.d.comb += axi.arready.eq(~r_active)
        m.d.comb += [
            axi.rvalid.eq(fresh | held),
            axi.rdata.eq(Mux(held, hold_data, f_data)),
            axi.rresp.eq(Mux(Mux(held, hold_ok, f_ok), AxiResp.OKAY, AxiResp.DECERR)),
            axi.rlast.eq(Mux(held, hold_last, f_last)),
            axi.rid.eq(Mux(held, hold_id, f_id)),
        ]
        pop = axi.rvalid & axi.rready
        with m.If(fresh & ~pop):
            m.d.sync += [held.eq(1), hold_data.eq(f_data), hold_ok.eq(f_ok), hold_last.eq(f_last),
                         hold_id.eq(f_id)]
        with m.Elif(pop):
            m.d.sync += held.eq(0)
        m.d.sync += fresh.eq(r_go)
        with m.If(r_go):
            m.d.sync += [f_ok.eq(r_ok), f_last.eq(r_last), f_id.eq(r_id)]
        with m.Elif(h_rd_go):
            m.d.sync += f_ok.eq(1)

        # The port: a host write, else a host read, else the AXI4 write and read sides, in turns.
        # wready does not look at the read channel's handshake (rready): when the read side has
        # a burst, the write gets every other cycle (and every cycle the read does not use).
        host_busy = h_wr_req | h_rd_req
        write_turn = Signal()
        m.d.comb += [
            axi.wready.eq(w_active & ~host_busy & (~r_active | write_turn)),
            h_rd_go.eq(h_rd_req & ~h_wr_req),
            r_go.eq(r_active & (~axi.rvalid | axi.rready) & ~host_busy & ~w_beat),
        ]
        m.d.sync += write_turn.eq(~w_beat)

        m.d.comb += ram.en.eq(0)  # (its init is 1)
        with m.If(h_wr_req):
            m.d.comb += [ram.en.eq(1), ram.we.eq(1), ram.addr.eq(h_addr_w), ram.be.eq(h_be),
                         ram.wdata.eq(h_wdata)]
        with m.Elif(h_rd_go):
            m.d.comb += [ram.en.eq(1), ram.addr.eq(h_addr_r)]
        with m.Elif(w_beat):
            m.d.comb += [ram.en.eq(1), ram.we.eq(1), ram.addr.eq(w_addr), ram.be.eq(w_be),
                         ram.wdata.eq(axi.wdata)]
        with m.Elif(r_go):
            m.d.comb += [ram.en.eq(1), ram.addr.eq(r_index)]
