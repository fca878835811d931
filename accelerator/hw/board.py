"""The board top: a UART bridge, the accelerator and an on-chip RAM, for a real FPGA.

::

    uart_rx ─► UartBridge ─(AXI4-Lite)─► AxiLiteDecoder ─┬─► Accelerator.s_axil (registers)
    uart_tx ◄─┘                                          ├─► AxiRam.s_axil (host port)
                                                         └─► DECERR
               Accelerator.m_axi ─(AXI4)─► AxiRam.s_axi

Host address map (the addresses of the serial protocol's requests, :mod:`accelerator.hw.uart`):

=============================================  ==============================================
``0x0000_0000`` – ``0x0000_0FFF``               accelerator registers
                                                (:mod:`accelerator.hw.registers`; the driver's
                                                ``base`` is 0; offsets past the map: SLVERR)
``ram_base`` – ``ram_base + ram_bytes - 1``     the on-chip RAM (default ``ram_base`` =
                                                ``0x1000_0000``)
anything else                                   DECERR (status 2 in the serial response)
=============================================  ==============================================

The accelerator sees the RAM at the same addresses (its ``m_axi`` reaches only the RAM; other
addresses answer DECERR, which the accelerator reports as a DMA error), so the host puts a
matrix at ``ram_base + offset`` and passes that same address in ``A_ADDR`` and friends.

LEDs: ``leds[0]`` heartbeat (about 1 Hz), ``leds[1]`` activity (a request on the UART or a memory
burst of the accelerator, stretched to be visible), ``leds[2]`` the accelerator's ``irq``
(``STATUS.done`` with ``MODE.irq_enable``), ``leds[3]`` fault (a bad frame or bus error; stays on
until the next request that completes with status OK).
"""

from amaranth.build import ResourceError
from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..config import AcceleratorConfig
from .axil import AXI4LiteSignature, AxiResp
from .axiram import AxiRam, check_geometry
from .registers import ADDR_WIDTH
from .top import Accelerator
from .uart import UartBridge, uart_divisor

__all__ = ["DEFAULT_RAM_BASE", "AxiLiteDecoder", "BoardTop"]

#: Where the on-chip RAM sits in the host's and the accelerator's address spaces.
DEFAULT_RAM_BASE = 0x1000_0000
#: The accelerator's register window on the host bus.
REGISTER_WINDOW = 1 << ADDR_WIDTH


class AxiLiteDecoder(wiring.Component):
    """One AXI4-Lite master to several slaves by address window; unmapped addresses get DECERR.

    ``windows`` is a list of ``(base, size)``; slave ``i`` is member ``m{i}`` and receives the full
    32-bit address. One write and one read are in flight at a time: the decoder picks the window
    when a request arrives (one cycle), then connects the channels of that slave until the
    response has been accepted.
    """

    def __init__(self, windows: list[tuple[int, int]]):
        for i, (base, size) in enumerate(windows):
            if size <= 0 or base < 0 or base + size > 1 << 32:
                raise ValueError(f"window {i}: base {base:#x} size {size:#x} is not valid")
            for j, (b2, s2) in enumerate(windows[:i]):
                if base < b2 + s2 and b2 < base + size:
                    raise ValueError(f"windows {j} and {i} overlap")
        self._windows = list(windows)
        sig = AXI4LiteSignature(addr_width=32, data_width=32)
        members = {"s_axil": Out(sig)}
        for i in range(len(windows)):
            members[f"m{i}"] = In(sig)
        super().__init__(members)

    def elaborate(self, platform) -> Module:
        m = Module()
        up = self.s_axil
        n = len(self._windows)
        downs = [getattr(self, f"m{i}") for i in range(n)]

        def decode(addr):
            sel = Signal(range(n + 1), init=n)  # n: no slave (DECERR)
            for i, (base, size) in reversed(list(enumerate(self._windows))):
                with m.If((addr - base)[:33] < size):  # below base wraps around
                    m.d.comb += sel.eq(i)
            return sel

        # -- writes -------------------------------------------------------------------------------
        w_busy = Signal()
        w_sel = Signal(range(n + 1))
        err_aw, err_w = Signal(), Signal()
        err_b = Signal()
        aw_sel = decode(up.awaddr)
        with m.If(~w_busy & up.awvalid):
            m.d.sync += [w_busy.eq(1), w_sel.eq(aw_sel), err_aw.eq(0), err_w.eq(0)]
        for i, down in enumerate(downs):
            on = w_busy & (w_sel == i)
            m.d.comb += [down.awaddr.eq(up.awaddr), down.awprot.eq(up.awprot),
                         down.wdata.eq(up.wdata), down.wstrb.eq(up.wstrb),
                         down.awvalid.eq(on & up.awvalid), down.wvalid.eq(on & up.wvalid),
                         down.bready.eq(on & up.bready)]
            with m.If(on):
                m.d.comb += [up.awready.eq(down.awready), up.wready.eq(down.wready),
                             up.bvalid.eq(down.bvalid), up.bresp.eq(down.bresp)]
                with m.If(down.bvalid & up.bready):
                    m.d.sync += w_busy.eq(0)
        with m.If(w_busy & (w_sel == n)):
            m.d.comb += [up.awready.eq(~err_aw), up.wready.eq(~err_w), up.bvalid.eq(err_b),
                         up.bresp.eq(AxiResp.DECERR)]
            with m.If(up.awvalid & ~err_aw):
                m.d.sync += err_aw.eq(1)
            with m.If(up.wvalid & ~err_w):
                m.d.sync += err_w.eq(1)
            m.d.sync += err_b.eq(err_aw & err_w)
            with m.If(err_b & up.bready):
                m.d.sync += [w_busy.eq(0), err_b.eq(0)]

        # -- reads --------------------------------------------------------------------------------
        r_busy = Signal()
        r_sel = Signal(range(n + 1))
        err_ar, err_r = Signal(), Signal()
        ar_sel = decode(up.araddr)
        with m.If(~r_busy & up.arvalid):
            m.d.sync += [r_busy.eq(1), r_sel.eq(ar_sel), err_ar.eq(0)]
        for i, down in enumerate(downs):
            on = r_busy & (r_sel == i)
            m.d.comb += [down.araddr.eq(up.araddr), down.arprot.eq(up.arprot),
                         down.arvalid.eq(on & up.arvalid), down.rready.eq(on & up.rready)]
            with m.If(on):
                m.d.comb += [up.arready.eq(down.arready), up.rvalid.eq(down.rvalid),
                             up.rdata.eq(down.rdata), up.rresp.eq(down.rresp)]
                with m.If(down.rvalid & up.rready):
                    m.d.sync += r_busy.eq(0)
        with m.If(r_busy & (r_sel == n)):
            m.d.comb += [up.arready.eq(~err_ar), up.rvalid.eq(err_r), up.rdata.eq(0),
                         up.rresp.eq(AxiResp.DECERR)]
            with m.If(up.arvalid & ~err_ar):
                m.d.sync += [err_ar.eq(1), err_r.eq(1)]
            with m.If(err_r & up.rready):
                m.d.sync += [r_busy.eq(0), err_r.eq(0)]
        return m


class BoardTop(wiring.Component):
    """Everything a board needs around the accelerator: UART bridge, address decoder, RAM.

    Parameters
    ----------
    config : AcceleratorConfig
    clk_freq : float
        Frequency of the ``sync`` clock in Hz (on a platform: the board's default clock).
    baud : int
        Serial speed; ``clk_freq / baud`` must be at least 4 and within 2 % of an integer.
    ram_bytes : int
        Size of the on-chip RAM (a multiple of the AXI bus width in bytes).
    ram_base : int
        Where the RAM sits (host and accelerator addresses); must not overlap the registers.
    timeout_bytes : int
        The UART bridge's partial-frame timeout in byte times.
    dsp_pes : int or None; paired_pes : int
        PEs with a DSP multiplier, the rest in LUTs; how many of them share a block two by two
        (:class:`~accelerator.hw.core.SystolicCore`).

    Ports (simulation, ``platform is None``): ``uart_rx`` In(1), ``uart_tx`` Out(1), ``leds``
    Out(4). On an amaranth-boards platform the ports are left unused and the design requests
    ``uart`` 0 (``rx.i``, ``tx.o``) and ``led`` 0–3 (as many as the board has).
    """

    uart_rx: In(1, init=1)
    uart_tx: Out(1, init=1)
    leds: Out(4)

    def __init__(self, config: AcceleratorConfig, *, clk_freq: float, baud: int = 115200,
                 ram_bytes: int = 16384, ram_base: int = DEFAULT_RAM_BASE,
                 timeout_bytes: int = 4, dsp_pes: int | None = None, paired_pes: int = 0):
        if ram_base < REGISTER_WINDOW:
            raise ValueError(f"ram_base = {ram_base:#x} overlaps the register window "
                             f"(0 to {REGISTER_WINDOW - 1:#x})")
        self._config = config
        self._clk_freq = clk_freq
        self._baud = baud
        self._divisor = uart_divisor(clk_freq, baud)
        self._ram_bytes = ram_bytes
        self._ram_base = ram_base
        self._timeout_bytes = timeout_bytes
        self._dsp_pes = dsp_pes
        self._paired_pes = paired_pes
        check_geometry(config, ram_bytes, ram_base)
        super().__init__()

    @property
    def config(self) -> AcceleratorConfig:
        return self._config

    @property
    def divisor(self) -> int:
        return self._divisor

    @property
    def ram_base(self) -> int:
        return self._ram_base

    @property
    def ram_bytes(self) -> int:
        return self._ram_bytes

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.bridge = bridge = UartBridge(self._divisor,
                                                  timeout_bytes=self._timeout_bytes)
        m.submodules.decoder = decoder = AxiLiteDecoder(
            [(0, REGISTER_WINDOW), (self._ram_base, self._ram_bytes)])
        m.submodules.accel = accel = Accelerator(self._config, dsp_pes=self._dsp_pes,
                                                  paired_pes=self._paired_pes)
        m.submodules.ram = ram = AxiRam(self._config, self._ram_bytes, base=self._ram_base)

        wiring.connect(m, bridge.m_axil, decoder.s_axil)
        wiring.connect(m, decoder.m1, ram.s_axil)
        wiring.connect(m, accel.m_axi, ram.s_axi)
        regs, down = accel.s_axil, decoder.m0
        for name, member in down.signature.members.items():
            ours, theirs = getattr(down, name), getattr(regs, name)
            if member.flow == Out:  # driven by the decoder (a master member of a flipped port)
                m.d.comb += theirs.eq(ours[:len(theirs)])
            else:
                m.d.comb += ours.eq(theirs)

        # LEDs
        heartbeat = Signal(max(1, int(self._clk_freq).bit_length()))
        m.d.sync += heartbeat.eq(heartbeat + 1)
        stretch = Signal(max(1, int(self._clk_freq // 20).bit_length()))  # ~50 ms
        axi = accel.m_axi
        with m.If(bridge.busy | axi.arvalid | axi.awvalid):
            m.d.sync += stretch.eq((1 << len(stretch)) - 1)
        with m.Elif(stretch != 0):
            m.d.sync += stretch.eq(stretch - 1)
        fault = Signal()
        with m.If(bridge.fault):
            m.d.sync += fault.eq(1)
        with m.Elif(bridge.m_axil.bvalid & bridge.m_axil.bready
                    & (bridge.m_axil.bresp == AxiResp.OKAY)):
            m.d.sync += fault.eq(0)
        with m.Elif(bridge.m_axil.rvalid & bridge.m_axil.rready
                    & (bridge.m_axil.rresp == AxiResp.OKAY)):
            m.d.sync += fault.eq(0)
        leds = Signal(4)
        m.d.comb += leds.eq(Cat(heartbeat[-1], stretch != 0, accel.irq, fault))

        if platform is None:
            m.d.comb += [bridge.rx.eq(self.uart_rx), self.uart_tx.eq(bridge.tx),
                         self.leds.eq(leds)]
        else:
            uart = platform.request("uart", 0)
            m.d.comb += [bridge.rx.eq(uart.rx.i), uart.tx.o.eq(bridge.tx)]
            for i in range(4):
                try:
                    led = platform.request("led", i)
                except ResourceError:  # the board has fewer LEDs
                    break
                m.d.comb += led.o.eq(leds[i])
        return m
