"""How the driver reaches the registers: any object with ``read32`` and ``write32``.

A transport moves one aligned 32-bit word at a byte address. It knows nothing of the register
map; :class:`~accelerator.driver.driver.Accelerator` adds the base address and the offsets.
Implementations: :class:`~accelerator.driver.sim.AxiLiteTransport` (a cocotbext-axi master in a
simulation); the tests use an in-memory fake.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["Transport", "TransportError"]


class TransportError(OSError):
    """The bus answered an access with an error (e.g. an AXI SLVERR / DECERR response)."""


@runtime_checkable
class Transport(Protocol):
    """One 32-bit register access at a time, at a byte address that is a multiple of 4."""

    async def read32(self, addr: int) -> int:
        """The word at ``addr``, as an unsigned int in ``[0, 2**32)``."""
        ...

    async def write32(self, addr: int, value: int) -> None:
        """Write ``value`` (an unsigned int in ``[0, 2**32)``) to ``addr``; return when done."""
        ...
