"""Transports for simulations: the registers behind a cocotbext-axi ``AxiLiteMaster`` (cocotb in
Verilator), or behind the AXI4-Lite port of the gateware in Amaranth's simulator.

    from cocotbext.axi import AxiLiteBus, AxiLiteMaster
    master = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil", bus_separator="__"),
                           dut.clk, dut.rst)
    acc = Accelerator(AxiLiteTransport(master))
    config = await acc.identify()

    async def testbench(ctx):           # amaranth.sim.Simulator(top).add_testbench(testbench)
        acc = Accelerator(AmaranthAxiLiteTransport(ctx, top.s_axil, irq=top.irq))
        config = await acc.identify()

Neither imports its simulator: they drive what they are given.
"""

from __future__ import annotations

from typing import Any

from .transport import TransportError

__all__ = ["AmaranthAxiLiteTransport", "AxiLiteTransport"]

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


class AmaranthAxiLiteTransport:
    """:class:`~accelerator.driver.transport.Transport` over an AXI4-Lite slave in Amaranth's
    simulator, run from an async testbench: ``ctx`` is the testbench's context, ``bus`` the
    slave's AXI4-Lite interface (an ``AXI4LiteSignature`` member, e.g. the accelerator's
    ``s_axil``), ``irq`` an optional interrupt line for :meth:`wait_interrupt`.

    One access at a time, as the driver makes them: AW and W offered together (and ``bready``
    high), or AR (and ``rready`` high); each waits at most ``timeout`` cycles for its handshake
    and its response (``TransportError`` after that, as after a response other than OKAY).
    :meth:`wait_interrupt` runs at most ``irq_cycles`` cycles.
    """

    def __init__(self, ctx: Any, bus: Any, irq: Any = None, *, timeout: int = 10_000,
                 irq_cycles: int = 1_000_000):
        self.ctx = ctx
        self.bus = bus
        self.irq = irq
        self.timeout = timeout
        self.irq_cycles = irq_cycles

    async def _until(self, what: str, *signals: Any) -> tuple:
        """Clock edges until the first of ``signals`` was high at one; the values of all of
        them at that edge."""
        for _ in range(self.timeout):
            values = (await self.ctx.tick().sample(*signals))[2:]
            if values[0]:
                return values
        raise TransportError(f"AXI4-Lite {what}: no answer within {self.timeout} cycles")

    async def read32(self, addr: int) -> int:
        ctx, bus = self.ctx, self.bus
        ctx.set(bus.araddr, addr)
        ctx.set(bus.arvalid, 1)
        ctx.set(bus.rready, 1)
        await self._until(f"read of {addr:#010x}", bus.arready)
        ctx.set(bus.arvalid, 0)
        _, data, resp = await self._until(f"read of {addr:#010x}", bus.rvalid, bus.rdata,
                                          bus.rresp)
        ctx.set(bus.rready, 0)
        if resp != _OKAY:
            raise TransportError(f"AXI4-Lite read of {addr:#010x} answered {_resp_name(resp)}")
        return int(data)

    async def write32(self, addr: int, value: int) -> None:
        ctx, bus = self.ctx, self.bus
        ctx.set(bus.awaddr, addr)
        ctx.set(bus.wdata, value)
        ctx.set(bus.wstrb, 0xF)
        ctx.set(bus.awvalid, 1)
        ctx.set(bus.wvalid, 1)
        ctx.set(bus.bready, 1)
        pending = {"aw", "w"}
        for _ in range(self.timeout):
            _, _, aw, w = await ctx.tick().sample(bus.awready, bus.wready)
            if aw and "aw" in pending:
                pending.discard("aw")
                ctx.set(bus.awvalid, 0)
            if w and "w" in pending:
                pending.discard("w")
                ctx.set(bus.wvalid, 0)
            if not pending:
                break
        else:
            raise TransportError(f"AXI4-Lite write to {addr:#010x}: no answer within "
                                 f"{self.timeout} cycles")
        _, resp = await self._until(f"write to {addr:#010x}", bus.bvalid, bus.bresp)
        ctx.set(bus.bready, 0)
        if resp != _OKAY:
            raise TransportError(f"AXI4-Lite write of {value:#010x} to {addr:#010x} answered "
                                 f"{_resp_name(resp)}")

    async def wait_interrupt(self) -> None:
        """Run the clock until the interrupt line is high (when one was given); ``TimeoutError``
        after ``irq_cycles`` cycles without it."""
        if self.irq is None:
            return
        for _ in range(self.irq_cycles):
            if (await self.ctx.tick().sample(self.irq))[2]:
                return
        raise TimeoutError(f"the interrupt line stayed low for {self.irq_cycles} cycles")


def _resp_name(resp: Any) -> str:
    name = getattr(resp, "name", None)
    return name if name else {1: "EXOKAY", 2: "SLVERR", 3: "DECERR"}.get(int(resp), str(resp))
