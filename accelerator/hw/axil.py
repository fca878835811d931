"""The AXI4-Lite interface, as a wiring signature.

:class:`AXI4LiteSignature` describes the port *as seen from the slave*: members driven by the
master are ``In``, members driven by the slave are ``Out``. A slave component therefore declares
``s_axil: Out(AXI4LiteSignature(addr_width=...))`` (the signature as written), and a master, an
interconnect or a testbench holding the other end uses ``In(...)`` / ``.flip()``.

The members are flat and named as in the AMBA specification (``awaddr``, ``awvalid``, …), so that
``verilog.convert`` of a component with a member ``s_axil`` emits ``s_axil__awaddr`` and friends,
which cocotbext-axi binds with ``AxiLiteBus.from_prefix(dut, "s_axil", bus_separator="__")``.
"""

from __future__ import annotations

from enum import IntEnum

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["AXI4LiteSignature", "AxiLiteSlice", "AxiResp"]


class AxiResp(IntEnum):
    """The ``bresp`` / ``rresp`` codes."""

    OKAY = 0
    EXOKAY = 1
    SLVERR = 2
    DECERR = 3


class AXI4LiteSignature(wiring.Signature):
    """An AXI4-Lite port seen from the slave (``In`` = driven by the master).

    Parameters
    ----------
    addr_width : int
        Width of ``awaddr`` / ``araddr`` in bits, 3 to 64 (byte addresses).
    data_width : int
        Width of ``wdata`` / ``rdata``: 32 or 64 (the only widths AXI4-Lite allows). ``wstrb`` has
        one bit per byte.

    ``awprot`` / ``arprot`` are present (3 bits) so that masters that drive them bind, and are
    ignored by the slaves in this package.
    """

    def __init__(self, addr_width: int, data_width: int = 32):
        if isinstance(addr_width, bool) or not isinstance(addr_width, int) \
                or not 3 <= addr_width <= 64:
            raise ValueError(f"addr_width = {addr_width!r} is out of range (allowed: 3 to 64)")
        if data_width not in (32, 64):
            raise ValueError(f"data_width = {data_width!r} is not allowed (allowed: 32, 64)")
        self._addr_width = addr_width
        self._data_width = data_width
        super().__init__({
            "awaddr": In(addr_width),
            "awprot": In(3),
            "awvalid": In(1),
            "awready": Out(1),
            "wdata": In(data_width),
            "wstrb": In(data_width // 8),
            "wvalid": In(1),
            "wready": Out(1),
            "bresp": Out(2),
            "bvalid": Out(1),
            "bready": In(1),
            "araddr": In(addr_width),
            "arprot": In(3),
            "arvalid": In(1),
            "arready": Out(1),
            "rdata": Out(data_width),
            "rresp": Out(2),
            "rvalid": Out(1),
            "rready": In(1),
        })

    @property
    def addr_width(self) -> int:
        return self._addr_width

    @property
    def data_width(self) -> int:
        return self._data_width

    def __eq__(self, other) -> bool:
        return (type(other) is type(self) and other.addr_width == self.addr_width
                and other.data_width == self.data_width)

    def __hash__(self) -> int:
        return hash((type(self), self._addr_width, self._data_width))

    def __repr__(self) -> str:
        return f"AXI4LiteSignature(addr_width={self._addr_width}, data_width={self._data_width})"


#: Each AXI4-Lite channel: its valid, its ready, its payload members; whether the master drives it.
_CHANNELS = (("aw", ("awaddr", "awprot"), True), ("w", ("wdata", "wstrb"), True),
             ("b", ("bresp",), False), ("ar", ("araddr", "arprot"), True),
             ("r", ("rdata", "rresp"), False))


class AxiLiteSlice(wiring.Component):
    """A register slice: every channel of an AXI4-Lite link through one register, both ways.

    Each channel's valid, payload and ready are registers on both sides (a channel takes a
    transfer every other cycle), so no path crosses the slice: it cuts a long route in two.
    A host's accesses come at UART speed, so the cycles it adds are not seen.

    Members
    -------
    s_axil : Out(AXI4LiteSignature(addr_width, data_width))
        To the master.
    m_axil : In(AXI4LiteSignature(addr_width, data_width))
        To the slave.
    """

    def __init__(self, addr_width: int = 32, data_width: int = 32):
        sig = AXI4LiteSignature(addr_width, data_width)
        super().__init__({"s_axil": Out(sig), "m_axil": In(sig)})

    def elaborate(self, platform) -> Module:
        m = Module()
        up, down = self.s_axil, self.m_axil
        for channel, payload, forward in _CHANNELS:
            src, dst = (up, down) if forward else (down, up)
            valid, ready = f"{channel}valid", f"{channel}ready"
            full = getattr(dst, valid)  # the register is the receiving side's valid
            m.d.comb += getattr(src, ready).eq(~full)
            with m.If(full & getattr(dst, ready)):
                m.d.sync += full.eq(0)
            with m.If(~full & getattr(src, valid)):
                m.d.sync += full.eq(1)
                for name in payload:
                    m.d.sync += getattr(dst, name).eq(getattr(src, name))
        return m
