"""The board top: a UART bridge, the accelerator and an on-chip RAM, for a real FPGA.

::

    uart_rx ─► UartBridge ─(AXI4-Lite)─► AxiLiteDecoder ─┬─► Accelerator.s_axil (registers)
    uart_tx ◄─┘                                          ├─► AxiRam.s_axil (host port)
                                                         └─► DECERR
               Accelerator.m_axi ─(AXI4)─► AxiRam.s_axi

On an FPGA other than an iCE40 each of these links goes through a register slice (``slices``):
the host's AXI4-Lite links through :class:`~accelerator.hw.axil.AxiLiteSlice`, the R and W
channels through :class:`~accelerator.hw.axi.AxiSlice`.

Host address map (the addresses of the serial protocol's requests, :mod:`accelerator.hw.uart`):

=============================================  ==============================================
``0x0000_0000`` – ``0x0000_0FFF``               accelerator registers
                                                (:mod:`accelerator.hw.registers`; the driver's
                                                ``base`` is 0; offsets past the map: SLVERR)
``0x0000_1000`` – ``0x0000_1007``               board information, read-only (answered by the
                                                decoder; writes: DECERR): ``RAM_BASE``,
                                                ``RAM_BYTES`` (:data:`BOARD_INFO`)
``ram_base`` – ``ram_base + ram_bytes - 1``     the on-chip RAM (default ``ram_base`` =
                                                ``0x1000_0000``)
anything else                                   DECERR (status 2 in the serial response)
=============================================  ==============================================

The accelerator sees the RAM at the same addresses (its ``m_axi`` reaches only the RAM; other
addresses answer DECERR, which the accelerator reports as a DMA error), so the host puts a
matrix at ``ram_base + offset`` and passes that same address in ``A_ADDR`` and friends.

The RAM (:func:`board_ram` decides; it is the only place that does): on an iCE40 UltraPlus
(the iCEBreaker's UP5K) it is the device's four ``SB_SPRAM256KA`` single-port blocks, 128 KiB,
with a 32-bit bus (2 × 2 blocks) or a 64-bit one (4 × 1), and no block RAM; the AXI4 and host
ports take turns on its one port (:mod:`accelerator.hw.axiram`). A 128- or 256-bit bus would need
8 or 16 blocks side by side, so there, and on every other device, it is 16 KiB of simple
dual-port block RAM. The host does not need to be told: it reads ``RAM_BASE`` and ``RAM_BYTES``
from the board information words (:func:`accelerator.driver.board.read_board_ram`), as it reads the
accelerator's configuration from its ID block.

LEDs: ``leds[0]`` heartbeat (about 1 Hz), ``leds[1]`` activity (a request on the UART or a memory
burst of the accelerator, stretched to be visible), ``leds[2]`` the accelerator's ``irq``
(``STATUS.done`` with ``MODE.irq_enable``), ``leds[3]`` fault (a bad frame or bus error; stays on
until the next request that completes with status OK).
"""

from dataclasses import dataclass

from amaranth.build import ResourceError
from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import io, wiring
from amaranth.lib.wiring import In, Out
from amaranth.vendor import LatticeICE40Platform

from ..config import AcceleratorConfig
from ..model.protocol import (
    BOARD_INFO,
    BOARD_INFO_BASE,
    DEFAULT_RAM_BASE,
    REGISTER_WINDOW,
    board_info_addr,
)
from ..model.regmap import accelerator_width_error
from .axi import AxiSlice
from .axil import AXI4LiteSignature, AxiLiteSlice, AxiResp
from .axiram import AxiRam, check_geometry, in_window
from .spram import SPRAM_DEPTH, spram_blocks, spram_tiles
from .top import Accelerator
from .uart import UartBridge, uart_divisor

__all__ = ["BOARD_INFO", "BOARD_INFO_BASE", "DEFAULT_RAM_BASE", "DEFAULT_RAM_BYTES",
           "AxiLiteDecoder", "BoardRam", "BoardTop", "board_info_addr", "board_ram"]

#: The on-chip RAM's size where it is block RAM and ``ram_bytes`` is not given.
DEFAULT_RAM_BYTES = 16384


@dataclass(frozen=True)
class BoardRam:
    """The board top's on-chip RAM: its size and whether it is single-port (``SB_SPRAM256KA``)."""

    bytes: int
    single_port: bool


def board_ram(config: AcceleratorConfig, platform, ram_bytes: int | None = None) -> BoardRam:
    """The on-chip RAM the board top builds on ``platform`` (``None``: simulation).

    Where the device has ``SB_SPRAM256KA`` blocks (:func:`~accelerator.hw.spram.spram_blocks`),
    enough of them side by side to make the AXI data width, the RAM is single-port SPRAM, as
    big as the blocks allow (128 KiB on the UP5K with a 32- or 64-bit bus) or ``ram_bytes`` if
    that fits. Otherwise it is dual-port block RAM of ``ram_bytes`` (default
    :data:`DEFAULT_RAM_BYTES`).
    """
    width = config.axi_data_width
    columns, _ = spram_tiles(width, 1)
    spram_bytes = (spram_blocks(platform) // columns) * SPRAM_DEPTH * (width // 8)
    if ram_bytes is None:
        if spram_bytes:
            return BoardRam(spram_bytes, True)
        return BoardRam(DEFAULT_RAM_BYTES, False)
    return BoardRam(ram_bytes, ram_bytes <= spram_bytes)


class AxiLiteDecoder(wiring.Component):
    """One AXI4-Lite master to several slaves by address window; unmapped addresses get DECERR.

    ``windows`` is a list of ``(base, size)``; slave ``i`` is member ``m{i}`` and receives the full
    32-bit address. One write and one read are in flight at a time: the decoder picks the window
    when a request arrives (one cycle), then connects the channels of that slave until the
    response has been accepted.

    ``words`` maps addresses outside the windows (multiples of 4) to read-only 32-bit constants
    that the decoder answers itself, OKAY (a write there gets DECERR, as anywhere unmapped):
    cheaper than a slave behind a window of its own.
    """

    def __init__(self, windows: list[tuple[int, int]], words: dict[int, int] | None = None):
        for i, (base, size) in enumerate(windows):
            if size <= 0 or base < 0 or base + size > 1 << 32:
                raise ValueError(f"window {i}: base {base:#x} size {size:#x} is not valid")
            for j, (b2, s2) in enumerate(windows[:i]):
                if base < b2 + s2 and b2 < base + size:
                    raise ValueError(f"windows {j} and {i} overlap")
        words = dict(words or {})
        for addr, value in words.items():
            if addr % 4 or not 0 <= addr < 1 << 32 or not 0 <= value < 1 << 32 \
                    or any(base <= addr < base + size for base, size in windows):
                raise ValueError(f"word at {addr:#x} = {value!r}: not an aligned address "
                                 f"outside the windows with a 32-bit value")
        self._windows = list(windows)
        self._words = words
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
                with m.If(in_window(addr, base, size)):
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
        word_hit = Signal()          # the unmapped read is one of ``words``
        word = Signal(32)            # (bits that no word sets are constant 0: yosys drops them)
        with m.If(~r_busy & up.arvalid):
            m.d.sync += [r_busy.eq(1), r_sel.eq(ar_sel), err_ar.eq(0), word_hit.eq(0),
                         word.eq(0)]
            for addr, value in self._words.items():
                with m.If(up.araddr[2:32] == addr >> 2):
                    m.d.sync += [word_hit.eq(1), word.eq(value)]
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
            m.d.comb += [up.arready.eq(~err_ar), up.rvalid.eq(err_r), up.rdata.eq(word),
                         up.rresp.eq(Mux(word_hit, AxiResp.OKAY, AxiResp.DECERR))]
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
    ram_bytes : int or None
        Size of the on-chip RAM (a multiple of the AXI bus width in bytes); ``None``: what
        :func:`board_ram` gives on the platform (128 KiB of SPRAM on an iCE40UP5K with a 32- or
        64-bit bus, else :data:`DEFAULT_RAM_BYTES`). The host reads it from the board.
    ram_base : int
        Where the RAM sits (host and accelerator addresses); must not overlap the registers or
        the board information words.
    timeout_bytes : int
        The UART bridge's partial-frame timeout in byte times.
    dsp_pes : int or None; paired_pes : int
        PEs with a DSP multiplier, the rest in LUTs; how many of them share a block two by two
        (:class:`~accelerator.hw.core.SystolicCore`).
    slices : bool or None
        Register slices on the long routes: an :class:`~accelerator.hw.axil.AxiLiteSlice`
        between the UART bridge and the decoder and between the decoder and each of its slaves,
        and an :class:`~accelerator.hw.axi.AxiSlice` on the accelerator's R and W channels, so
        that the DMA reader's ``rready`` does not reach the RAM's read port in the same cycle,
        nor the RAM's ``wready`` the store's pipeline (the board tops' longest paths).
        ``None``: on, except on an iCE40, which is full without them.

    Ports (simulation, ``platform is None``): ``uart_rx`` In(1), ``uart_tx`` Out(1), ``leds``
    Out(4). On an amaranth-boards platform the ports are left unused and the design requests
    ``uart`` 0 (``rx.i``, ``tx.o``) and ``led`` 0–3 (as many as the board has).
    """

    uart_rx: In(1, init=1)
    uart_tx: Out(1, init=1)
    leds: Out(4)

    def __init__(self, config: AcceleratorConfig, *, clk_freq: float, baud: int = 115200,
                 ram_bytes: int | None = None, ram_base: int = DEFAULT_RAM_BASE,
                 timeout_bytes: int = 4, dsp_pes: int | None = None, paired_pes: int = 0,
                 slices: bool | None = None):
        problem = accelerator_width_error(config)
        if problem:  # the accelerator inside is made at elaboration: say it now
            self._MustUse__used = True  # refused, not forgotten: no "never used" warning
            raise ValueError(problem)
        reserved = BOARD_INFO_BASE + 4 * len(BOARD_INFO)
        if ram_base < reserved:
            raise ValueError(f"ram_base = {ram_base:#x} overlaps the register window or the "
                             f"board information (0 to {reserved - 1:#x})")
        self._config = config
        self._clk_freq = clk_freq
        self._baud = baud
        self._divisor = uart_divisor(clk_freq, baud)
        self._ram_bytes = ram_bytes
        self._ram_base = ram_base
        self._timeout_bytes = timeout_bytes
        self._dsp_pes = dsp_pes
        self._paired_pes = paired_pes
        self._slices = slices
        check_geometry(config, DEFAULT_RAM_BYTES if ram_bytes is None else ram_bytes, ram_base)
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
    def ram_bytes(self) -> int | None:
        """The RAM size asked for (``None``: the platform's choice, :meth:`ram`)."""
        return self._ram_bytes

    def ram(self, platform) -> BoardRam:
        """The on-chip RAM this top builds on ``platform``."""
        return board_ram(self._config, platform, self._ram_bytes)

    def elaborate(self, platform) -> Module:
        m = Module()
        plan = self.ram(platform)
        m.submodules.bridge = bridge = UartBridge(self._divisor,
                                                  timeout_bytes=self._timeout_bytes)
        info = {"RAM_BASE": self._ram_base, "RAM_BYTES": plan.bytes}
        m.submodules.decoder = decoder = AxiLiteDecoder(
            [(0, REGISTER_WINDOW), (self._ram_base, plan.bytes)],
            words={board_info_addr(name): info[name] for name in BOARD_INFO})
        m.submodules.accel = accel = Accelerator(self._config, dsp_pes=self._dsp_pes,
                                                  paired_pes=self._paired_pes)
        m.submodules.ram = ram = AxiRam(self._config, plan.bytes, base=self._ram_base,
                                        single_port=plan.single_port)

        slices = self._slices
        if slices is None:
            slices = not isinstance(platform, LatticeICE40Platform)

        def sliced(name: str, master):
            """``master``, through a register slice if the top has them."""
            if not slices:
                return master
            m.submodules[name] = cut = AxiLiteSlice()
            wiring.connect(m, master, cut.s_axil)
            return cut.m_axil

        wiring.connect(m, sliced("host_slice", bridge.m_axil), decoder.s_axil)
        wiring.connect(m, sliced("ram_slice", decoder.m1), ram.s_axil)
        if slices:
            m.submodules.data_slice = r_slice = AxiSlice(accel.m_axi.signature)
            wiring.connect(m, accel.m_axi, r_slice.s_axi)
            wiring.connect(m, r_slice.m_axi, ram.s_axi)
        else:
            wiring.connect(m, accel.m_axi, ram.s_axi)
        regs, down = accel.s_axil, sliced("regs_slice", decoder.m0)
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
            # the pins as ports (dir="-") with buffers of our own: Amaranth 0.5's way
            uart = platform.request("uart", 0, dir="-")
            m.submodules.uart_rx = rx = io.Buffer("i", uart.rx)
            m.submodules.uart_tx = tx = io.Buffer("o", uart.tx)
            m.d.comb += [bridge.rx.eq(rx.i), tx.o.eq(bridge.tx)]
            for i in range(4):
                try:
                    led = platform.request("led", i, dir="-")
                except ResourceError:  # the board has fewer LEDs
                    break
                m.submodules[f"led_{i}"] = buffer = io.Buffer("o", led)
                m.d.comb += buffer.o.eq(leds[i])
        return m
