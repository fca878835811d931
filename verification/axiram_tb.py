"""cocotb testbench of the on-chip RAM (``accelerator.hw.axiram.AxiRam`` as Verilog top ``axiram``).

cocotbext-axi's ``AxiMaster`` drives the AXI4 port and its ``AxiLiteMaster`` the host port, with
random pauses on every channel of both. Several tasks run at once (AXI4 write and read bursts of
random, unaligned spans, so their first and last beats have partial strobes, some of them with
narrow beats; host writes and reads of 1 to 8 bytes), on address ranges that do not overlap while
in flight, and every read is checked byte by byte against a Python copy of the RAM; before them,
writes across each eighth of the RAM (every block of a tiled RAM); at the end the whole RAM is
read back.
Two directed tests: writes go on while the master holds ``rready`` low (no dependence of the
write channel on the read channel), and the beats per cycle of lone and simultaneous bursts.

Configuration: ``ACCEL_CONFIG`` (the AXI data width) and ``ACCEL_AXIRAM`` (JSON: ``base``,
``size``, ``single_port``); the seed is cocotb's ``RANDOM_SEED`` (``ACCEL_SEED`` of the pytest run).
"""

from __future__ import annotations

import json
import logging
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles, with_timeout
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster, AxiMaster, AxiResp
from streams import random_pauses

from accelerator.config import AcceleratorConfig

PERIOD_NS = 10


def resume(channel) -> None:
    """No more pauses (not None: that would freeze the channel's last pause value)."""
    channel.set_pause_generator(random_pauses(random.Random(), 0))


class RamTB:
    def __init__(self, dut):
        self.dut = dut
        self.config = AcceleratorConfig.from_dict(json.loads(os.environ["ACCEL_CONFIG"]))
        params = json.loads(os.environ["ACCEL_AXIRAM"])
        self.base, self.size = params["base"], params["size"]
        self.single_port = params["single_port"]
        self.B = self.config.axi_bytes
        self.rng = random.Random(cocotb.RANDOM_SEED)
        cocotb.start_soon(Clock(dut.clk, PERIOD_NS, unit="ns").start())
        self.axi = AxiMaster(AxiBus.from_prefix(dut, "s_axi", bus_separator="__"), dut.clk,
                             dut.rst)
        self.host = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil", bus_separator="__"),
                                  dut.clk, dut.rst)
        for name in ("s_axi", "s_axil"):
            logging.getLogger(f"cocotb.{dut._name}.{name}").setLevel(logging.WARNING)
        self.shadow = bytearray(self.size)
        self.known = bytearray(self.size)  # 1 where the RAM's byte has been written
        self.in_flight: list[tuple[int, int]] = []
        dut._log.info("axi_data_width %d, %d bytes at %#x, %s storage, seed %d",
                      self.config.axi_data_width, self.size, self.base,
                      "single-port" if self.single_port else "dual-port", cocotb.RANDOM_SEED)

    def channels(self):
        a, h = self.axi, self.host
        return [a.write_if.aw_channel, a.write_if.w_channel, a.write_if.b_channel,
                a.read_if.ar_channel, a.read_if.r_channel, h.write_if.aw_channel,
                h.write_if.w_channel, h.write_if.b_channel, h.read_if.ar_channel,
                h.read_if.r_channel]

    def random_pauses(self) -> None:
        for channel in self.channels():
            channel.set_pause_generator(random_pauses(random.Random(self.rng.random()),
                                                      self.rng.choice([0.05, 0.2, 0.5])))

    def no_pauses(self) -> None:
        for channel in self.channels():
            resume(channel)

    async def reset(self) -> None:
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 4)
        self.dut.rst.value = 0
        await ClockCycles(self.dut.clk, 2)

    # -- the scoreboard ------------------------------------------------------------------------

    async def claim(self, length: int) -> int:
        """A random offset of ``length`` bytes overlapping no range in flight (then in flight)."""
        while True:
            start = self.rng.randrange(self.size - length + 1)
            if all(start + length <= s or e <= start for s, e in self.in_flight):
                self.in_flight.append((start, start + length))
                return start
            await ClockCycles(self.dut.clk, 1)

    def release(self, start: int, length: int) -> None:
        self.in_flight.remove((start, start + length))

    def written(self, start: int, data: bytes) -> None:
        self.shadow[start:start + len(data)] = data
        self.known[start:start + len(data)] = b"\1" * len(data)

    def check(self, start: int, data: bytes, what: str) -> None:
        for i, byte in enumerate(data):
            if self.known[start + i]:
                assert byte == self.shadow[start + i], (
                    f"{what}: byte at {self.base + start + i:#x} is {byte:#04x}, expected "
                    f"{self.shadow[start + i]:#04x}")

    # -- workers -------------------------------------------------------------------------------

    def span(self) -> int:
        """Up to 4 bursts' worth, mostly short."""
        if self.rng.random() < 0.2:
            return self.rng.randrange(1, min(4 * 256 * self.B, self.size // 4))
        return self.rng.randrange(1, 16 * self.B)

    async def axi_worker(self, count: int) -> None:
        full = self.B.bit_length() - 1
        for _ in range(count):
            length = self.span()
            start = await self.claim(length)
            # mostly full-width beats; sometimes narrow ones (AxSIZE < the bus width)
            size = full if self.rng.random() < 0.8 else self.rng.randrange(full)
            if self.rng.random() < 0.5:
                data = self.rng.randbytes(length)
                resp = await self.axi.write(self.base + start, data, size=size)
                assert resp.resp == AxiResp.OKAY, resp
                self.written(start, data)
            else:
                resp = await self.axi.read(self.base + start, length, size=size)
                assert resp.resp == AxiResp.OKAY, resp
                self.check(start, resp.data, f"AXI4 read of {length} at {start:#x} (size {size})")
            self.release(start, length)

    async def edges(self) -> None:
        """A write across each eighth of the RAM's boundaries (so every block of a tiled RAM
        gets partial words too), read back."""
        for k in range(1, 8):
            start = k * self.size // 8 - self.B - 1
            data = self.rng.randbytes(2 * self.B + 3)
            await self.axi.write(self.base + start, data)
            self.written(start, data)
            self.check(start, (await self.axi.read(self.base + start, len(data))).data,
                       f"edge {k}")

    async def host_worker(self, count: int) -> None:
        for _ in range(count):
            length = self.rng.randrange(1, 9)
            start = await self.claim(length)
            if self.rng.random() < 0.5:
                data = self.rng.randbytes(length)
                resp = await self.host.write(self.base + start, data)
                assert resp.resp == AxiResp.OKAY, resp
                self.written(start, data)
            else:
                resp = await self.host.read(self.base + start, length)
                assert resp.resp == AxiResp.OKAY, resp
                self.check(start, resp.data, f"host read of {length} at {start:#x}")
            self.release(start, length)

    async def read_back(self) -> None:
        chunk = 256 * self.B
        for start in range(0, self.size, chunk):
            resp = await self.axi.read(self.base + start, min(chunk, self.size - start))
            self.check(start, resp.data, f"read-back at {start:#x}")


@cocotb.test()
async def random_traffic(dut):
    """AXI4 and host reads and writes at once, random pauses everywhere, then a full read-back."""
    tb = RamTB(dut)
    await tb.reset()
    tb.random_pauses()
    await tb.edges()
    workers = [cocotb.start_soon(tb.axi_worker(40)) for _ in range(3)]
    workers += [cocotb.start_soon(tb.host_worker(40)) for _ in range(2)]
    for worker in workers:
        await worker
    written = sum(tb.known)
    dut._log.info("%d bytes of %d written", written, tb.size)
    tb.no_pauses()
    await tb.read_back()
    # past the end: DECERR on both ports
    resp = await tb.axi.read(tb.base + tb.size - tb.B, 2 * tb.B)
    assert resp.resp == AxiResp.DECERR, resp
    resp = await tb.host.read(tb.base + tb.size, 4)
    assert resp.resp == AxiResp.DECERR, resp


@cocotb.test()
async def writes_pass_stalled_reads(dut):
    """With rready held low on a read burst, a write burst still completes."""
    tb = RamTB(dut)
    await tb.reset()
    beats = 64
    data = tb.rng.randbytes(beats * tb.B)
    await tb.axi.write(tb.base, data)
    tb.axi.read_if.r_channel.set_pause_generator(iter(lambda: True, None))
    read = cocotb.start_soon(tb.axi.read(tb.base, beats * tb.B))
    await ClockCycles(dut.clk, 20)
    other = tb.rng.randbytes(beats * tb.B)
    await with_timeout(tb.axi.write(tb.base + beats * tb.B, other), 4 * beats * PERIOD_NS, "ns")
    resp = await with_timeout(tb.host.write(tb.base + 2 * beats * tb.B, b"abcd"), 400, "ns")
    assert resp.resp == AxiResp.OKAY
    resume(tb.axi.read_if.r_channel)
    assert (await read).data == data
    assert (await tb.axi.read(tb.base + beats * tb.B, beats * tb.B)).data == other
    assert (await tb.host.read(tb.base + 2 * beats * tb.B, 4)).data == b"abcd"


@cocotb.test()
async def beats_per_cycle(dut):
    """Lone bursts stream one beat per cycle; a read and a write at once share the port."""
    tb = RamTB(dut)
    await tb.reset()
    beats = 256
    data = tb.rng.randbytes(beats * tb.B)

    async def timed(*coroutines) -> float:
        start = get_sim_time("ns")
        tasks = [cocotb.start_soon(c) for c in coroutines]
        for task in tasks:
            await task
        return (get_sim_time("ns") - start) / PERIOD_NS

    write = await timed(tb.axi.write(tb.base, data))
    read = await timed(tb.axi.read(tb.base, beats * tb.B))
    both = await timed(tb.axi.write(tb.base + beats * tb.B, data),
                       tb.axi.read(tb.base, beats * tb.B))
    dut._log.info("%d-beat bursts: write %d cycles, read %d, both at once %d",
                  beats, write, read, both)
    overhead = 16  # the masters' and the RAM's latencies
    assert write <= beats + overhead and read <= beats + overhead, (write, read)
    assert both <= (2 if tb.single_port else 1) * beats + overhead, both
    assert (await tb.axi.read(tb.base + beats * tb.B, beats * tb.B)).data == data
