"""cocotb testbench of the board top: the real host driver over the serial protocol.

Bytes go in on ``uart_rx`` from a cocotbext-uart ``UartSource`` and come out of ``uart_tx`` into
a ``UartSink``; :class:`~accelerator.driver.serial.UartSimTransport` puts the same protocol code
that runs on hardware (:class:`~accelerator.driver.serial.FramedTransport`) on top. The matrices
are written into the on-chip RAM with ``write32`` and the result is read back with ``read32``.
Configuration: ``ACCEL_CONFIG`` (the accelerator) and ``ACCEL_BOARD`` (JSON: ``clk_freq``,
``baud``, ``ram_base``, ``ram_bytes``, ``timeout_bytes``).
"""

from __future__ import annotations

import json
import logging
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, Timer
from cocotbext.uart import UartSink, UartSource

from accelerator.config import AcceleratorConfig
from accelerator.driver.board import read_board_ram, run_gemm_on_board
from accelerator.driver.driver import Accelerator
from accelerator.driver.serial import UartProtocol, UartSimTransport
from accelerator.driver.transport import TransportError
from accelerator.hw.board import BOARD_INFO, BOARD_INFO_BASE, board_info_addr
from accelerator.hw.registers import MAGIC, register
from accelerator.hw.uart import (
    OP_WRITE,
    STATUS_BAD_CHECKSUM,
    STATUS_BAD_OP,
    STATUS_BUS_ERROR,
    STATUS_OK,
)
from accelerator.model.cases import GemmCase, make_data


class BoardTB:
    def __init__(self, dut):
        self.dut = dut
        self.config = AcceleratorConfig.from_dict(json.loads(os.environ["ACCEL_CONFIG"]))
        board = json.loads(os.environ["ACCEL_BOARD"])
        self.ram_base = board["ram_base"]
        self.ram_bytes = board["ram_bytes"]
        self.baud = board["baud"]
        self.timeout_bytes = board["timeout_bytes"]
        period_ns = round(1e9 / board["clk_freq"])
        cocotb.start_soon(Clock(dut.clk, period_ns, unit="ns").start())
        self.source = UartSource(dut.uart_rx, baud=self.baud)
        self.sink = UartSink(dut.uart_tx, baud=self.baud)
        for name in ("uart_rx", "uart_tx"):
            logging.getLogger(f"cocotb.{dut._name}.{name}").setLevel(logging.WARNING)
        self.transport = UartSimTransport(self.source, self.sink, byte_timeout_ns=200_000)
        self.driver = Accelerator(self.transport)

    @property
    def byte_ns(self) -> int:
        return 10 * 10**9 // self.baud

    async def reset(self) -> None:
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 4)
        self.dut.rst.value = 0
        await ClockCycles(self.dut.clk, 4)

    async def write_bytes(self, addr: int, data: bytes) -> None:
        """Write ``data`` at ``addr`` (both multiples of 4 after padding) with write32."""
        assert addr % 4 == 0
        data = bytes(data) + bytes(-len(data) % 4)
        for i in range(0, len(data), 4):
            await self.transport.write32(addr + i, int.from_bytes(data[i:i + 4], "little"))

    async def read_bytes(self, addr: int, count: int) -> bytes:
        start, end = addr & ~3, (addr + count + 3) & ~3
        out = bytearray()
        for word in range(start, end, 4):
            out += (await self.transport.read32(word)).to_bytes(4, "little")
        return bytes(out[addr - start:addr - start + count])


@cocotb.test()
async def identify_and_gemm(dut):
    """The real driver identifies the board and runs a GEMM on matrices in the on-chip RAM."""
    tb = BoardTB(dut)
    await tb.reset()
    assert await tb.driver.identify() == tb.config
    assert tb.driver.version_matches
    # the board says where its RAM is and how big
    assert await read_board_ram(tb.transport) == (tb.ram_base, tb.ram_bytes)

    # the very function `accel run` uses on a real board
    for case in (GemmCase(m=5, k=7, n=6, seed=cocotb.RANDOM_SEED),
                 GemmCase(m=3, k=4, n=5, seed=cocotb.RANDOM_SEED + 1, accumulate=True)):
        record = await run_gemm_on_board(tb.driver, tb.transport, tb.config, case)
        assert (record["ram_base"], record["ram_bytes"]) == (tb.ram_base, tb.ram_bytes)
        assert record["passed"], record["first"]
        assert record["cycles"] > 0
    # the bytes between rows of C (the stride's padding) are not touched
    data = make_data(tb.config, case)
    raw = await tb.read_bytes(tb.ram_base + data.addr["c"], case.m * data.ld["c"])
    for r in range(case.m):
        pad = raw[r * data.ld["c"] + 4 * case.n:(r + 1) * data.ld["c"]]
        assert pad == bytes([0xA5]) * len(pad), f"row {r}: padding overwritten"
    counters = record["counters"]
    dut._log.info("GEMM %dx%dx%d OK, %d cycles", case.m, case.k, case.n, counters["cycles"])


@cocotb.test()
async def bad_frames_and_recovery(dut):
    """Status 1 / 2 / 3, garbage before a frame, a partial frame: the bridge keeps working."""
    tb = BoardTB(dut)
    await tb.reset()
    t = tb.transport
    id_addr = register("ID").offset

    good = UartProtocol.encode_read(id_addr)
    bad = good[:-1] + bytes([(good[-1] + 1) & 0xFF])
    response = await t.request(bad)
    assert response.status == STATUS_BAD_CHECKSUM and response.data == 0, response

    response = await t.request(UartProtocol.encode_request(0x07, id_addr))
    assert response.status == STATUS_BAD_OP, response

    response = await t.request(UartProtocol.encode_read(0x2000_0000))   # unmapped: DECERR
    assert response.status == STATUS_BUS_ERROR, response
    response = await t.request(UartProtocol.encode_read(tb.ram_base + tb.ram_bytes))
    assert response.status == STATUS_BUS_ERROR, response
    response = await t.request(UartProtocol.encode_write(0x0000_0FF0, 1))  # past the map: SLVERR
    assert response.status == STATUS_BUS_ERROR, response
    info = board_info_addr("RAM_BYTES")
    response = await t.request(UartProtocol.encode_write(info, 1))  # read-only: DECERR
    assert response.status == STATUS_BUS_ERROR, response
    past = BOARD_INFO_BASE + 4 * len(BOARD_INFO)
    response = await t.request(UartProtocol.encode_read(past))  # past the words: DECERR
    assert response.status == STATUS_BUS_ERROR, response
    assert await t.read32(info) == tb.ram_bytes  # (the write did not change it)
    try:
        await t.read32(0x8000_0000)
    except TransportError:
        pass
    else:
        raise AssertionError("read32 of an unmapped address did not raise")

    # garbage (without a 0x55) before a good frame: the bridge resynchronises on the header
    response = await t.request(bytes([0x00, 0xFF, 0x13, 0xAA]) + good)
    assert response == type(response)(STATUS_OK, MAGIC), response

    # a partial frame, then silence longer than the timeout, then a good frame
    await t.send(UartProtocol.encode_write(tb.ram_base, 0x1234_5678)[:6])
    await tb.source.wait()
    await Timer((tb.timeout_bytes + 2) * tb.byte_ns, "ns")
    assert tb.sink.empty(), "a partial frame was answered"
    response = await t.request(UartProtocol.encode_read(id_addr))
    assert response.ok and response.data == MAGIC, response

    # write / read back through each 32-bit lane of the RAM word; the last word of the RAM
    words = {tb.ram_base + 4 * i: 0x0101_0101 * (i + 1) ^ 0xA5A5_0000 for i in range(4)}
    words[tb.ram_base + tb.ram_bytes - 4] = 0xDEAD_BEEF
    for addr, value in words.items():
        await t.write32(addr, value)
    for addr, value in words.items():
        assert await t.read32(addr) == value, hex(addr)
    response = await t.request(UartProtocol.encode_request(OP_WRITE, tb.ram_base + 2, 0x55))
    assert response.ok
    assert await t.read32(tb.ram_base) == 0x55  # addr[1:0] are ignored

    # the driver still works
    assert await tb.driver.identify() == tb.config
