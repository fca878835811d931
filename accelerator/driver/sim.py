"""A transport for cocotb simulations: the registers behind a cocotbext-axi ``AxiLiteMaster``.

    from cocotbext.axi import AxiLiteBus, AxiLiteMaster
    master = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil", bus_separator="__"),
                           dut.clk, dut.rst)
    acc = Accelerator(AxiLiteTransport(master))
    config = await acc.identify()
"""

from __future__ import annotations

from typing import Any

from .transport import TransportError

__all__ = ["AxiLiteTransport"]

_OKAY = 0


class AxiLiteTransport:
    """:class:`~accelerator.driver.transport.Transport` over a cocotbext-axi ``AxiLiteMaster``.

    Uses ``master.read(addr, 4)`` / ``master.write(addr, data)`` (what ``read_dword`` /
    ``write_dword`` call underneath) so that the response code is seen: anything but OKAY raises
    :class:`~accelerator.driver.transport.TransportError`. Words are little-endian, as on AXI.
    """

    def __init__(self, master: Any, irq: Any = None):
        self.master = master
        self.irq = irq

    async def wait_interrupt(self) -> None:
        """Wait for the interrupt line (when the bench passed it), instead of polling."""
        if self.irq is None:
            return
        from cocotb.triggers import RisingEdge

        if not int(self.irq.value):
            await RisingEdge(self.irq)

    async def read32(self, addr: int) -> int:
        resp = await self.master.read(addr, 4)
        if int(resp.resp) != _OKAY:
            raise TransportError(f"AXI4-Lite read of {addr:#010x} answered "
                                 f"{_resp_name(resp.resp)}")
        return int.from_bytes(bytes(resp.data), "little")

    async def write32(self, addr: int, value: int) -> None:
        resp = await self.master.write(addr, int(value).to_bytes(4, "little"))
        if int(resp.resp) != _OKAY:
            raise TransportError(f"AXI4-Lite write of {value:#010x} to {addr:#010x} answered "
                                 f"{_resp_name(resp.resp)}")


def _resp_name(resp: Any) -> str:
    name = getattr(resp, "name", None)
    return name if name else {1: "EXOKAY", 2: "SLVERR", 3: "DECERR"}.get(int(resp), str(resp))
