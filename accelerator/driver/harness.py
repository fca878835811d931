"""A transport for the compiled harness: the host driver on the fast RTL path.

    from accelerator.flow.harness import Harness, build_harness
    with Harness(build_harness(config)) as h:
        h.reset()
        acc = Accelerator(HarnessTransport(h))
        counters = asyncio.run(acc.gemm(..., irq=True))

The harness is any object with ``reg_read_resp``, ``reg_write_resp`` and ``run_until_irq``
(:class:`accelerator.flow.harness.Harness`); this module imports no gateware.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from ..model.cases import make_data, result_record
from .driver import Accelerator
from .transport import TransportError

__all__ = ["DEFAULT_IRQ_CYCLES", "HarnessTransport", "run_case"]

#: How many cycles :meth:`HarnessTransport.wait_interrupt` runs before giving up.
DEFAULT_IRQ_CYCLES = 1 << 32

_RESP = {1: "EXOKAY", 2: "SLVERR", 3: "DECERR"}


class HarnessTransport:
    """:class:`~accelerator.driver.transport.Transport` over a harness: every access is one
    AXI4-Lite transaction run in C++; an answer other than OKAY (or none) raises
    :class:`~accelerator.driver.transport.TransportError`. :meth:`wait_interrupt` runs the clock
    in C++ until ``irq`` rises, at most ``max_cycles`` cycles (then the harness's
    ``CycleLimitError``, a ``TimeoutError``)."""

    def __init__(self, harness: Any, *, max_cycles: int = DEFAULT_IRQ_CYCLES):
        if isinstance(max_cycles, bool) or not isinstance(max_cycles, int) or max_cycles < 1:
            raise ValueError(f"max_cycles = {max_cycles!r} is out of range (allowed: at least 1)")
        self.harness = harness
        self.max_cycles = max_cycles

    async def read32(self, addr: int) -> int:
        value, resp = self.harness.reg_read_resp(addr)
        if resp != 0:
            raise TransportError(f"AXI4-Lite read of {addr:#010x} answered {_name(resp)}")
        return value

    async def write32(self, addr: int, value: int) -> None:
        resp = self.harness.reg_write_resp(addr, value)
        if resp != 0:
            raise TransportError(f"AXI4-Lite write of {value:#010x} to {addr:#010x} answered "
                                 f"{_name(resp)}")

    async def wait_interrupt(self) -> None:
        """Run until the interrupt line is high."""
        self.harness.run_until_irq(self.max_cycles)


def _name(resp: int) -> str:
    return _RESP.get(resp, "no answer" if resp < 0 else str(resp))


def write_operands(harness: Any, data: Any, addr: dict[str, int]) -> None:
    """Write A, B and C_in (if any) of a :class:`~accelerator.model.cases.GemmData` into the
    harness's memory at ``addr``, row by row at their strides (in one write where the rows are
    contiguous)."""
    for name, matrix, dtype in (("a", data.a, np.int8), ("b", data.b, np.int8),
                                ("c_in", data.c_in, np.int32)):
        if matrix is None:
            continue
        rows = np.asarray(matrix, dtype=dtype)
        ld = data.ld[name]
        if ld == rows.shape[1] * rows.itemsize:
            harness.mem_write(addr[name], rows.tobytes())
        else:
            for r, row in enumerate(rows):
                harness.mem_write(addr[name] + r * ld, row.tobytes())


def run_case(harness: Any, config: Any, case: Any, *, max_cycles: int = DEFAULT_IRQ_CYCLES
             ) -> dict:
    """Run a :class:`~accelerator.model.cases.GemmCase` on a reset harness through the driver,
    as the cocotb bench's ``run_case`` does (same layout, same poisoned C, same record): lay out
    the matrices, run the GEMM with ``irq``, read C back and compare it with the reference.
    ``case.backpressure`` becomes the harness's random pauses, seeded with ``case.seed``.
    """
    data = make_data(config, case)
    harness.set_backpressure(case.backpressure, case.seed)
    write_operands(harness, data, data.addr)
    out_dtype = np.int8 if data.requant else np.int32
    # poison the result area, so that a row never written cannot pass by accident
    harness.mem_write(data.addr["c"], bytes([0xA5]) * (case.m * data.ld["c"]))
    driver = Accelerator(HarnessTransport(harness, max_cycles=max_cycles))
    start = harness.cycle
    counters = asyncio.run(driver.gemm(
        a=data.addr["a"], b=data.addr["b"], c=data.addr["c"], m=case.m, k=case.k, n=case.n,
        lda=data.ld["a"], ldb=data.ld["b"], ldc=data.ld["c"],
        c_in=data.addr["c_in"] if case.accumulate else None,
        ldcin=data.ld["c_in"] if case.accumulate else None,
        requant=data.requant, irq=True))
    wall_cycles = harness.cycle - start
    size = np.dtype(out_dtype).itemsize
    raw = np.frombuffer(harness.mem_read(data.addr["c"], case.m * data.ld["c"]), dtype=np.uint8)
    got = raw.reshape(case.m, data.ld["c"])[:, :case.n * size].copy().view(out_dtype)
    return {**result_record(config, case, data, got, counters, wall_cycles), "result": got}
