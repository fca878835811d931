"""cocotb testbench of the DMA engine (``accelerator.hw.dma.DMA`` as Verilog top ``dma_top``).

The memory is cocotbext-axi's AxiRam on the one AXI4 master port, with random pauses on every
AXI channel and on the DMA's streams. Reads are checked beat by beat against the RAM's contents
(realigned rows, ``bytes``/``first``/``last``/``end``); writes by comparing the whole RAM with a
Python model afterwards, so a byte written outside a row is caught too. A monitor on the RAM's
AR and AW queues checks every burst: INCR, full-width, bus-aligned, ≤ 256 beats, inside one
4 KiB page.

The configuration comes from ``ACCEL_CONFIG`` (JSON), the seed from cocotb's ``RANDOM_SEED``
(set from ``ACCEL_SEED`` by the pytest wrapper); every test logs both.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge, SimTimeoutError, with_timeout
from cocotbext.axi import AxiBus, AxiRam
from streams import StreamSink, StreamSource, random_pauses

from accelerator.config import AcceleratorConfig
from accelerator.hw.dma import CMD_LAYOUT, data_layout

PERIOD_NS = 10
RAM_SIZE = 1 << 18
PAGE = 4096


@dataclass(frozen=True)
class Cmd:
    addr: int
    rows: int
    row_bytes: int
    stride: int

    @property
    def empty(self) -> bool:
        """Zero rows or zero bytes: the DMA accepts the command and does nothing."""
        return self.rows == 0 or self.row_bytes == 0

    def row_addrs(self) -> list[int]:
        # The stride is added modulo 2**32: a "negative" stride walks rows downwards.
        return [(self.addr + r * self.stride) % (1 << 32) for r in range(self.rows)]

    def payload(self) -> dict:
        return {"addr": self.addr, "rows": self.rows, "row_bytes": self.row_bytes,
                "stride": self.stride}

    @property
    def span(self) -> int:
        return (self.rows - 1) * self.stride + self.row_bytes

    def descending(self) -> Cmd:
        """The same rows, issued last row first (stride ≡ -stride mod 2**32)."""
        top = self.addr + (self.rows - 1) * self.stride
        return Cmd(top, self.rows, self.row_bytes, (-self.stride) % (1 << 32))


class DmaTB:
    """Clock, reset, AxiRam with a burst monitor, stream drivers, and the scoreboards."""

    def __init__(self, dut):
        self.dut = dut
        self.config = AcceleratorConfig.from_dict(json.loads(os.environ["ACCEL_CONFIG"]))
        self.B = self.config.axi_bytes
        self.run_seed = int(os.environ.get("COCOTB_RANDOM_SEED", cocotb.RANDOM_SEED))
        self.seed = cocotb.RANDOM_SEED
        self.rng = random.Random(self.seed)
        beat = data_layout(self.config)
        self.rd_cmd = StreamSource(dut, "rd_cmd", CMD_LAYOUT, dut.clk, PERIOD_NS)
        self.rd_data = StreamSink(dut, "rd_data", beat, dut.clk, PERIOD_NS)
        self.wr_cmd = StreamSource(dut, "wr_cmd", CMD_LAYOUT, dut.clk, PERIOD_NS)
        self.wr_data = StreamSource(dut, "wr_data", beat, dut.clk, PERIOD_NS)
        bus = AxiBus.from_prefix(dut, "m_axi", bus_separator="__")
        self.ram = AxiRam(bus, dut.clk, dut.rst, size=RAM_SIZE)
        self.bursts: dict[str, list[tuple[int, int]]] = {"AR": [], "AW": []}
        self.violations: list[str] = []
        self._monitor(self.ram.read_if.ar_channel, "AR", "ar")
        self._monitor(self.ram.write_if.aw_channel, "AW", "aw")
        self.done_count = 0
        self.b_cycles: list[int] = []
        dut.clear.value = 0
        dut.abort.value = 0   # (the abort is the accelerator's: accel verify tests it)
        cocotb.start_soon(Clock(dut.clk, PERIOD_NS, unit="ns").start())
        cocotb.start_soon(self._count_done())
        dut._log.info("axi_data_width %d (B = %d), test seed %d, run seed %d "
                      "(replay: ACCEL_SEED=%d)", self.config.axi_data_width, self.B, self.seed,
                      self.run_seed, self.run_seed)

    # -- monitors -----------------------------------------------------------------------------

    def _monitor(self, channel, name: str, p: str) -> None:
        """Check every burst where the RAM receives it (wrapping the sink's ``recv``)."""
        recv = channel.recv
        size_log2 = self.B.bit_length() - 1

        async def checked_recv():
            tr = await recv()
            addr, length = int(getattr(tr, f"{p}addr")), int(getattr(tr, f"{p}len")) + 1
            size, burst = int(getattr(tr, f"{p}size")), int(getattr(tr, f"{p}burst"))
            self.bursts[name].append((addr, length))
            problems = []
            if burst != 1:
                problems.append(f"burst type {burst}, not INCR")
            if size != size_log2:
                problems.append(f"size {size}, not {size_log2}")
            if addr % self.B:
                problems.append("address not bus-aligned")
            if length > 256:
                problems.append(f"{length} beats > 256")
            if addr // PAGE != (addr + length * self.B - 1) // PAGE:
                problems.append("crosses a 4 KiB boundary")
            if problems:
                self.violations.append(f"{name} addr {addr:#x} len {length}: "
                                       + ", ".join(problems))
            return tr

        channel.recv = checked_recv

    async def _count_done(self) -> None:
        edge = RisingEdge(self.dut.clk)
        while True:
            await edge
            if self.dut.wr_done.value:
                self.done_count += 1

    def check_bursts(self) -> None:
        assert not self.violations, "burst rule broken: " + "; ".join(self.violations[:5])

    # -- set-up -------------------------------------------------------------------------------

    async def reset(self) -> None:
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 3)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)

    def set_pauses(self, axi: float, streams: float) -> None:
        for channel in (self.ram.write_if.aw_channel, self.ram.write_if.w_channel,
                        self.ram.write_if.b_channel, self.ram.read_if.ar_channel,
                        self.ram.read_if.r_channel):
            # (Not None for no pauses: that would freeze the channel's last pause value.)
            channel.set_pause_generator(random_pauses(self.rng, axi))
        for stream in (self.rd_cmd, self.rd_data, self.wr_cmd, self.wr_data):
            stream.set_pause_generator(random_pauses(self.rng, streams))

    def fill_ram(self) -> bytes:
        contents = self.rng.randbytes(RAM_SIZE)
        self.ram.write(0, contents)
        return contents

    async def clear(self) -> None:
        self.dut.clear.value = 1
        await RisingEdge(self.dut.clk)
        self.dut.clear.value = 0
        await RisingEdge(self.dut.clk)

    # -- random commands ----------------------------------------------------------------------

    def random_cmd(self, lo: int, hi: int, *, max_rows: int = 8, max_bytes: int = 600) -> Cmd:
        """A random command inside [lo, hi): any alignment, stride ≥ row_bytes."""
        rng = self.rng
        rows = rng.randint(1, max_rows)
        row_bytes = rng.choice([rng.randint(1, max_bytes), rng.randint(1, 2 * self.B),
                                rng.randint(1, max_bytes)])
        gap = rng.choice([0, rng.randint(0, self.B), rng.randint(0, 300), self.B - 1])
        stride = row_bytes + gap
        span = (rows - 1) * stride + row_bytes
        if rng.random() < 0.3 and hi - lo > 2 * PAGE + span:
            # Put a row across a 4 KiB boundary on purpose.
            page = rng.randrange((lo + span) // PAGE + 1, (hi - span) // PAGE)
            row = rng.randrange(rows)
            addr = page * PAGE - row * stride - rng.randint(1, row_bytes)
            addr = min(max(addr, lo), hi - span)
        else:
            addr = rng.randrange(lo, hi - span)
        cmd = Cmd(addr, rows, row_bytes, stride)
        return cmd.descending() if rows > 1 and rng.random() < 0.15 else cmd

    # -- reads --------------------------------------------------------------------------------

    def expected_read(self, memory: bytes, cmds: list[Cmd]) -> list[dict]:
        beats = []
        for cmd in cmds:
            if cmd.empty:
                continue
            for r, addr in enumerate(cmd.row_addrs()):
                row = memory[addr:addr + cmd.row_bytes]
                for k in range(0, len(row), self.B):
                    chunk = row[k:k + self.B]
                    last = k + self.B >= len(row)
                    beats.append({"data": list(chunk), "bytes": len(chunk), "first": int(k == 0),
                                  "last": int(last), "end": int(last and r == cmd.rows - 1)})
        return beats

    async def read(self, memory: bytes, cmds: list[Cmd]) -> int:
        """Run read commands, check every delivered beat; return the number of beats."""
        expected = self.expected_read(memory, cmds)
        start = len(self.rd_data.received)
        self.rd_data.expect(len(expected))
        self.rd_cmd.send([c.payload() for c in cmds])
        budget = 50 * len(expected) + 400 * len(cmds) + 2000
        try:
            await with_timeout(self.rd_data.done.wait(), budget * PERIOD_NS, "ns")
        except SimTimeoutError:
            raise AssertionError(
                f"reads stalled after {len(self.rd_data.received) - start} of {len(expected)} "
                f"beats (run seed {self.run_seed}, B={self.B}); commands {cmds}") from None
        got = self.rd_data.received[start:]
        for i, (beat, want) in enumerate(zip(got, expected, strict=True)):
            n = want["bytes"]
            have = {**beat, "data": beat["data"][:n]}
            if have != want:
                raise AssertionError(
                    f"read beat {i} differs (run seed {self.run_seed}, B={self.B}): "
                    f"got {have}, expected {want}; commands {cmds}")
        return len(expected)

    # -- writes -------------------------------------------------------------------------------

    def write_beats(self, cmd: Cmd, rows: list[bytes]) -> list[dict]:
        """The realigned beats of a write, with junk in the lanes past ``bytes``."""
        beats = []
        for r, row in enumerate(rows):
            for k in range(0, len(row), self.B):
                chunk = row[k:k + self.B]
                last = k + self.B >= len(row)
                lanes = list(chunk) + list(self.rng.randbytes(self.B - len(chunk)))
                beats.append({"data": lanes, "bytes": len(chunk), "first": int(k == 0),
                              "last": int(last), "end": int(last and r == cmd.rows - 1)})
        return beats

    async def write(self, model: bytearray, cmds: list[Cmd]) -> int:
        """Run write commands (applying them to ``model``); return the bytes written."""
        done_before = self.done_count
        total = 0
        beats = []
        for cmd in cmds:
            if cmd.empty:
                continue
            rows = [self.rng.randbytes(cmd.row_bytes) for _ in range(cmd.rows)]
            for addr, row in zip(cmd.row_addrs(), rows, strict=True):
                model[addr:addr + len(row)] = row
                total += len(row)
            beats += self.write_beats(cmd, rows)
        self.wr_cmd.send([c.payload() for c in cmds])
        self.wr_data.send(beats)
        budget = 50 * len(beats) + 400 * len(cmds) + 2000
        dones = sum(not c.empty for c in cmds)  # an empty command has no `done` pulse
        try:
            await with_timeout(self._until_done(done_before + dones), budget * PERIOD_NS, "ns")
        except SimTimeoutError:
            raise AssertionError(
                f"writes stalled: {self.done_count - done_before} of {dones} commands done, "
                f"{self.wr_data.count} beats taken (run seed {self.run_seed}, B={self.B}); "
                f"commands {cmds}") from None
        return total

    async def _until_done(self, count: int) -> None:
        edge = RisingEdge(self.dut.clk)
        while self.done_count < count:
            await edge

    def check_ram(self, model: bytes, what: str) -> None:
        actual = self.ram.read(0, RAM_SIZE)
        if actual != model:
            bad = [i for i in range(RAM_SIZE) if actual[i] != model[i]]
            raise AssertionError(
                f"{what}: RAM differs at {len(bad)} bytes, first at {bad[0]:#x} "
                f"(got {actual[bad[0]]:#04x}, expected {model[bad[0]]:#04x}; run seed "
                f"{self.run_seed}, B={self.B})")

    async def idle(self) -> None:
        for _ in range(10):
            await RisingEdge(self.dut.clk)
        assert not self.dut.rd_busy.value, "rd_busy still high after the reads"
        assert not self.dut.wr_busy.value, "wr_busy still high after the writes"

    def report(self, name: str, **values) -> None:
        """Add measurements to the JSON file named by ACCEL_REPORT (for the pytest wrapper)."""
        path = os.environ.get("ACCEL_REPORT")
        if not path:
            return
        data = json.loads(Path(path).read_text()) if os.path.exists(path) else {}
        data[name] = values
        with open(path + ".tmp", "w") as f:
            json.dump(data, f, indent=2)
        os.replace(path + ".tmp", path)


#: (AXI channels, DMA streams) pause probabilities of the batches of the random tests.
PAUSES = [(0.3, 0.3), (0.6, 0.1), (0.0, 0.5), (0.1, 0.0), (0.5, 0.5)]


@cocotb.test()
async def random_reads(dut):
    """Random 2-D reads in batches, each with other random pauses on every AXI channel and on
    the streams; every beat is checked, and the byte counter at the end."""
    tb = DmaTB(dut)
    memory = tb.fill_ram()
    await tb.reset()
    total = 0
    for axi, streams in PAUSES:
        tb.set_pauses(axi, streams)
        cmds = [tb.random_cmd(0, RAM_SIZE) for _ in range(8)]
        await tb.read(memory, cmds)
        total += sum(c.rows * c.row_bytes for c in cmds)
    await tb.idle()
    tb.check_bursts()
    assert int(dut.rd_bytes.value) == total, (int(dut.rd_bytes.value), total)
    assert not dut.rd_error.value


@cocotb.test()
async def random_writes(dut):
    """Random 2-D writes in batches with random pauses; the whole RAM is compared afterwards
    (so a byte written outside a row is caught), and the byte counter and ``done`` count."""
    tb = DmaTB(dut)
    model = bytearray(tb.fill_ram())
    await tb.reset()
    total = count = 0
    for axi, streams in PAUSES:
        tb.set_pauses(axi, streams)
        cmds = [tb.random_cmd(0, RAM_SIZE) for _ in range(8)]
        total += await tb.write(model, cmds)
        count += len(cmds)
    await tb.idle()
    tb.check_ram(bytes(model), "random writes")
    tb.check_bursts()
    assert tb.done_count == count, (tb.done_count, count)
    assert int(dut.wr_bytes.value) == total, (int(dut.wr_bytes.value), total)
    assert not dut.wr_error.value


@cocotb.test()
async def short_rows(dut):
    """Rows of 1 … 2B+1 bytes at every offset: the realignment corner cases, both directions."""
    tb = DmaTB(dut)
    model = bytearray(tb.fill_ram())
    memory = bytes(model)
    await tb.reset()
    tb.set_pauses(0.2, 0.2)
    b = tb.B
    reads, writes = [], []
    for n in range(1, 2 * b + 2):
        for offset in tb.rng.sample(range(b), min(b, 4)):
            stride = n + tb.rng.randint(0, 2 * b)
            reads.append(Cmd(tb.rng.randrange(0, RAM_SIZE // 2, b) + offset, 3, n, stride))
            writes.append(Cmd(RAM_SIZE // 2 + tb.rng.randrange(0, RAM_SIZE // 2 - 4096, b)
                              + offset, 2, n, stride))
    # Empty commands are dropped without a beat, an `end` or a `done`.
    reads += [Cmd(64, 0, 5, 8), Cmd(64, 3, 0, 8)]
    writes += [Cmd(RAM_SIZE // 2, 0, 5, 8), Cmd(RAM_SIZE // 2, 3, 0, 8)]
    tb.rng.shuffle(reads)
    tb.rng.shuffle(writes)
    await tb.read(memory, reads)
    await tb.write(model, writes)
    await tb.idle()
    tb.check_ram(bytes(model), "short rows")
    tb.check_bursts()


@cocotb.test()
async def concurrent_read_write(dut):
    """Reads of the lower half while writes go to the upper half, both streams paused."""
    tb = DmaTB(dut)
    model = bytearray(tb.fill_ram())
    memory = bytes(model)
    await tb.reset()
    tb.set_pauses(0.25, 0.25)
    reads = [tb.random_cmd(0, RAM_SIZE // 2) for _ in range(8)]
    writes = [tb.random_cmd(RAM_SIZE // 2, RAM_SIZE) for _ in range(8)]
    reading = cocotb.start_soon(tb.read(memory, reads))
    await tb.write(model, writes)
    await reading
    await tb.idle()
    tb.check_ram(bytes(model), "concurrent writes")
    tb.check_bursts()
    assert tb.bursts["AR"] and tb.bursts["AW"]


@cocotb.test()
async def long_rows(dut):
    """Rows longer than 256 beats, unaligned, across 4 KiB pages: full 256-beat bursts."""
    tb = DmaTB(dut)
    model = bytearray(tb.fill_ram())
    memory = bytes(model)
    await tb.reset()
    tb.set_pauses(0.1, 0.1)
    b = tb.B
    row_bytes = 300 * b + tb.rng.randint(1, b - 1)
    stride = row_bytes + tb.rng.randint(1, 3 * b)
    read = Cmd(PAGE - tb.rng.randint(1, b - 1) + PAGE, 2, row_bytes, stride)
    write = Cmd(RAM_SIZE // 2 + 3 * PAGE + tb.rng.randint(1, b - 1), 2, row_bytes, stride)
    assert read.addr + read.span < RAM_SIZE // 2 and write.addr + write.span < RAM_SIZE
    await tb.read(memory, [read])
    await tb.write(model, [write])
    await tb.idle()
    tb.check_ram(bytes(model), "long rows")
    tb.check_bursts()
    for name in ("AR", "AW"):
        longest = max(n for _, n in tb.bursts[name])
        dut._log.info("%s: %d bursts, longest %d beats", name, len(tb.bursts[name]), longest)
        if b <= 16:  # a page holds ≥ 256 beats: some burst must be the full 256
            assert longest == 256, f"{name}: longest burst {longest}, expected 256"


@cocotb.test()
async def error_responses(dut):
    """SLVERR on a read and on a write sets the sticky flags; clear resets flags and counts."""
    tb = DmaTB(dut)
    model = bytearray(tb.fill_ram())
    memory = bytes(model)
    await tb.reset()
    bad = 0x2000

    async def failing_read(address, length):
        if address == bad:
            raise ValueError("injected read error")
        return tb.ram.read(address % RAM_SIZE, length)

    async def failing_write(address, data):
        if address // tb.B == (bad + 0x8000) // tb.B:
            raise ValueError("injected write error")
        tb.ram.write(address % RAM_SIZE, data)

    tb.ram.read_if._read = failing_read
    tb.ram.write_if._write = failing_write
    # A good read first: no error.
    await tb.read(memory, [Cmd(0x100, 2, 40, 64)])
    assert not dut.rd_error.value
    beats = len(tb.rd_data.received)
    tb.rd_data.expect(4 * tb.B // tb.B)
    tb.rd_cmd.send([Cmd(bad, 1, 4 * tb.B, 0).payload()])
    await with_timeout(tb.rd_data.done.wait(), 2000 * PERIOD_NS, "ns")
    assert len(tb.rd_data.received) == beats + 4
    assert tb.rd_data.received[-1]["end"] == 1
    await tb.idle()
    assert dut.rd_error.value, "rd_error not set by SLVERR"
    assert not dut.wr_error.value
    await tb.write(model, [Cmd(bad + 0x8000 - 3, 1, 3 * tb.B, 0)])
    await tb.idle()
    assert dut.wr_error.value, "wr_error not set by SLVERR"
    assert dut.rd_error.value, "rd_error is not sticky"
    assert int(dut.rd_bytes.value) != 0 and int(dut.wr_bytes.value) != 0
    await tb.clear()
    for name in ("rd_error", "wr_error", "rd_bytes", "wr_bytes"):
        assert int(getattr(dut, name).value) == 0, f"{name} not cleared"


@cocotb.test()
async def throughput(dut):
    """No pauses: beats per cycle on the data streams, from their first beat to their last.

    A long aligned read (must reach 0.9), a long unaligned read, a block of one-beat rows
    (one burst each: shows how well AR requests are pipelined) and a long aligned write.
    """
    tb = DmaTB(dut)
    model = bytearray(tb.fill_ram())
    memory = bytes(model)
    await tb.reset()
    b = tb.B
    beats = 2048

    def rate(stream, count: int) -> float:
        return count / (stream.last_cycle - stream.first_cycle + 1)

    async def read_rate(cmd: Cmd) -> float:
        tb.rd_data.first_cycle = None
        count = await tb.read(memory, [cmd])
        return rate(tb.rd_data, count)

    t0 = round(cocotb.utils.get_sim_time("ns") / PERIOD_NS)
    aligned = await read_rate(Cmd(0, 1, beats * b, beats * b))
    latency = tb.rd_data.first_cycle - t0
    unaligned = await read_rate(Cmd(3, 1, beats * b - 5, beats * b))
    short = await read_rate(Cmd(0, 256, b, 2 * b))
    await tb.write(model, [Cmd(RAM_SIZE // 2, 1, beats * b, beats * b)])
    write = rate(tb.wr_data, beats)
    dut._log.info("B = %d: aligned read %.4f beats/cycle (first data %d cycles after the "
                  "command), unaligned read %.4f, 256 one-beat rows %.4f, aligned write %.4f",
                  b, aligned, latency, unaligned, short, write)
    await tb.idle()
    tb.check_ram(bytes(model), "throughput write")
    tb.check_bursts()
    tb.report("throughput", bus_bytes=b, beats=beats, read_beats_per_cycle=aligned,
              read_latency_cycles=latency, unaligned_read_beats_per_cycle=unaligned,
              one_beat_rows_beats_per_cycle=short, write_beats_per_cycle=write)
    assert aligned >= 0.9, f"an aligned read streams at {aligned:.3f} beats/cycle"
    assert unaligned >= 0.9, f"an unaligned read streams at {unaligned:.3f} beats/cycle"
