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

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["AXI4LiteSignature", "AxiResp"]


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
