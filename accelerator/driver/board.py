"""Running a GEMM on a board: matrices into its on-chip RAM, the driver, results back.

The same function serves ``accel run`` (over a serial port) and the Verilator test of the board
top (over the simulated UART pins), so the host code a board sees is the code the tests ran.
Where the RAM is and how big it is, the board says (its information words,
:data:`accelerator.model.protocol.BOARD_INFO`): nobody passes them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config import AcceleratorConfig
from ..model.cases import GemmCase, make_data
from ..model.protocol import board_info_addr
from .driver import Accelerator
from .transport import Transport

__all__ = ["read_board_ram", "read_bytes", "run_gemm_on_board", "write_bytes"]


async def write_bytes(transport: Transport, addr: int, data: bytes) -> None:
    """Write ``data`` at ``addr`` with 32-bit writes, merging partial words with what is there."""
    start, end = addr & ~3, (addr + len(data) + 3) & ~3
    image = bytearray(end - start)
    if start != addr or end != addr + len(data):
        image[:4] = (await transport.read32(start)).to_bytes(4, "little")
        image[-4:] = (await transport.read32(end - 4)).to_bytes(4, "little")
    image[addr - start:addr - start + len(data)] = data
    for offset in range(0, len(image), 4):
        await transport.write32(start + offset,
                                int.from_bytes(image[offset:offset + 4], "little"))


async def read_bytes(transport: Transport, addr: int, count: int) -> bytes:
    """``count`` bytes from ``addr`` with 32-bit reads."""
    start, end = addr & ~3, (addr + count + 3) & ~3
    out = bytearray()
    for word in range(start, end, 4):
        out += (await transport.read32(word)).to_bytes(4, "little")
    return bytes(out[addr - start:addr - start + count])


async def read_board_ram(transport: Transport) -> tuple[int, int]:
    """``(ram_base, ram_bytes)``: where the board's on-chip RAM is and its size, as it says."""
    return (await transport.read32(board_info_addr("RAM_BASE")),
            await transport.read32(board_info_addr("RAM_BYTES")))


async def run_gemm_on_board(driver: Accelerator, transport: Transport,
                            config: AcceleratorConfig, case: GemmCase) -> dict[str, Any]:
    """Lay ``case`` out in the board's RAM, run it, read C back and compare with NumPy.

    Returns a record like ``accel sim``'s: ``passed``, ``mismatches``, ``first`` (the first
    differing elements), ``cycles``, ``utilization``, the ``counters``, and the RAM used
    (``ram_base``, ``ram_bytes``).
    """
    ram_base, ram_bytes = await read_board_ram(transport)
    data = make_data(config, case)
    if data.memory_size > ram_bytes:
        raise ValueError(f"{case.m}×{case.k}×{case.n} needs {data.memory_size} bytes of board "
                         f"RAM, the board has {ram_bytes}")
    image = bytearray(data.memory_size)
    matrices = [("a", data.a, np.int8), ("b", data.b, np.int8)]
    if data.c_in is not None:
        matrices.append(("c_in", data.c_in, np.int32))
    for name, matrix, dtype in matrices:
        for r, row in enumerate(np.asarray(matrix, dtype=dtype)):
            start = data.addr[name] + r * data.ld[name]
            image[start:start + row.nbytes] = row.tobytes()
    c_bytes = case.m * data.ld["c"]
    image[data.addr["c"]:data.addr["c"] + c_bytes] = bytes([0xA5]) * c_bytes  # poison
    await write_bytes(transport, ram_base, bytes(image))

    counters = await driver.gemm(
        a=ram_base + data.addr["a"], b=ram_base + data.addr["b"], c=ram_base + data.addr["c"],
        m=case.m, k=case.k, n=case.n, lda=data.ld["a"], ldb=data.ld["b"], ldc=data.ld["c"],
        c_in=ram_base + data.addr["c_in"] if case.accumulate else None,
        ldcin=data.ld["c_in"] if case.accumulate else None, requant=data.requant)

    dtype = np.dtype("<i1") if data.requant else np.dtype("<i4")
    raw = await read_bytes(transport, ram_base + data.addr["c"], c_bytes)
    got = np.stack([np.frombuffer(raw[r * data.ld["c"]:r * data.ld["c"] + case.n * dtype.itemsize],
                                  dtype=dtype) for r in range(case.m)])
    bad = np.argwhere(got != data.expected)
    cycles = counters["cycles"]
    macs = case.m * case.k * case.n
    return {
        "passed": len(bad) == 0, "mismatches": len(bad),
        "first": [{"row": int(r), "col": int(c), "got": int(got[r, c]),
                   "expected": int(data.expected[r, c])} for r, c in bad[:5]],
        "m": case.m, "k": case.k, "n": case.n, "seed": case.seed, "macs": macs,
        "cycles": cycles, "utilization": macs / (cycles * config.pes) if cycles else 0.0,
        "counters": counters, "ram_base": ram_base, "ram_bytes": ram_bytes,
    }
