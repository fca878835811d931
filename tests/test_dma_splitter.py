"""The DMA's burst splitter in Amaranth's simulator: every burst against a reference, and its
timing (a command's first burst three cycles after it is taken, then one burst per cycle)."""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from accelerator.config import AcceleratorConfig
from accelerator.hw.dma import BurstSplitter, burst_limit
from accelerator.model.geometry import AXI4_BOUNDARY

Burst = tuple[int, int, bool, bool, bool, bool, int, int]


def reference(cmd: tuple[int, int, int, int], bus: int, max_burst: int) -> list[Burst]:
    """(addr, len, row_first, row_last, last_row, end, offset, row_bytes) of each burst."""
    addr, rows, row_bytes, stride = cmd
    out: list[Burst] = []
    if rows == 0 or row_bytes == 0:
        return out
    for r in range(rows):
        a = (addr + r * stride) % (1 << 32)
        cur = a - a % bus
        left = (a % bus + row_bytes + bus - 1) // bus
        first = True
        while left:
            length = min(left, max_burst, (AXI4_BOUNDARY - cur % AXI4_BOUNDARY) // bus)
            left -= length
            last_row = r == rows - 1
            out.append((cur, length, first, left == 0, last_row, left == 0 and last_row,
                        a % bus, row_bytes))
            cur = (cur + length * bus) % (1 << 32)
            first = False
    return out


def run(commands, bus: int, max_burst: int, ready_p: float, seed: int, **limits):
    """Each burst with the cycle it was taken, and the cycle each command was taken."""
    dut = BurstSplitter(AcceleratorConfig(axi_data_width=8 * bus), max_burst, **limits)
    rng = random.Random(seed)
    bursts: list[tuple[int, Burst]] = []
    taken: list[int] = []
    total = sum(len(reference(c, bus, max_burst)) for c in commands)

    async def bench(ctx):
        cycle = 0
        pending = list(commands)
        p = dut.burst.payload
        while len(bursts) < total or pending:
            ready = rng.random() < ready_p
            ctx.set(dut.burst.ready, ready)
            if pending:
                addr, rows, row_bytes, stride = pending[0]
                ctx.set(dut.cmd.valid, 1)
                ctx.set(dut.cmd.payload, {"addr": addr, "rows": rows, "row_bytes": row_bytes,
                                          "stride": stride % (1 << 32)})
            else:
                ctx.set(dut.cmd.valid, 0)
            cmd_go = pending and ctx.get(dut.cmd.ready)
            if ctx.get(dut.burst.valid) and ready:
                bursts.append((cycle, (
                    ctx.get(p.addr), ctx.get(p.len), bool(ctx.get(p.row_first)),
                    bool(ctx.get(p.row_last)), bool(ctx.get(p.last_row)),
                    bool(ctx.get(p.end)), ctx.get(p.offset), ctx.get(p.row_bytes))))
            if cmd_go:
                taken.append(cycle)
                pending.pop(0)
            await ctx.tick()
            cycle += 1
            assert cycle < 100_000

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return bursts, taken


def commands(rng: random.Random, bus: int, count: int):
    out = []
    for _ in range(count):
        page = rng.choice([0, AXI4_BOUNDARY - rng.randrange(1, 3 * bus), 0xFFFF_F000])
        addr = (page + rng.randrange(0, 2 * AXI4_BOUNDARY)) % (1 << 32) if rng.random() < 0.3 \
            else rng.randrange(1 << 32)
        rows = rng.choice([0, 1, 1, 2, 3, 5])
        row_bytes = rng.choice([0, 1, bus - 1, bus, bus + 1, rng.randrange(1, 40 * bus),
                                rng.randrange(1, 5000)])
        stride = rng.choice([row_bytes, -row_bytes, rng.randrange(-9000, 9000), AXI4_BOUNDARY])
        out.append((addr, rows, row_bytes, stride))
    return out


@pytest.mark.parametrize("bus,max_burst", [(4, 256), (8, 256), (8, 3), (16, 256), (32, 256),
                                           (4, 1)])
def test_splitter_cuts_every_burst_as_the_reference(bus, max_burst):
    rng = random.Random(bus * 1000 + max_burst)
    cmds = commands(rng, bus, 40)
    want = [burst for c in cmds for burst in reference(c, bus, max_burst)]
    got, _ = run(cmds, bus, max_burst, ready_p=0.6, seed=bus)
    assert [burst for _, burst in got] == want


@pytest.mark.parametrize("bus,max_burst,max_rows,max_row_bytes", [
    (8, 256, 512, 512),    # the 4×4 engine's: a row never needs more than one burst a page
    (8, 3, 512, 512),      # rows still cut by the AXI limit
    (4, 256, 3, 37),
    (32, 256, 7, 4096),
])
def test_splitter_sized_for_smaller_commands_cuts_the_same(bus, max_burst, max_rows,
                                                           max_row_bytes):
    """A splitter built for at most ``max_rows`` rows of ``max_row_bytes`` cuts every command
    within those bounds as the full one does (rows across pages at every offset among them)."""
    rng = random.Random(max_row_bytes)
    cmds = [(addr, min(rows, max_rows), min(row_bytes, max_row_bytes), stride)
            for addr, rows, row_bytes, stride in commands(rng, bus, 60)]
    cmds += [(AXI4_BOUNDARY - back, max_rows, max_row_bytes, AXI4_BOUNDARY + 2 * bus + 1)
             for back in (1, bus, bus + 1, max_row_bytes - 1, max_row_bytes // 2)]
    want = [burst for c in cmds for burst in reference(c, bus, max_burst)]
    got, _ = run(cmds, bus, max_burst, ready_p=0.6, seed=bus, max_rows=max_rows,
                 max_row_bytes=max_row_bytes)
    assert [burst for _, burst in got] == want
    assert max(length for _, (_, length, *_) in got) <= burst_limit(
        AcceleratorConfig(axi_data_width=8 * bus), max_burst, max_row_bytes)


@pytest.mark.parametrize("bus", [4, 8])
def test_splitter_cuts_rows_of_more_than_4096_beats(bus):
    """The full splitter's rows run to 1 MiB: a row counter sized by beats up to one page
    (4,096 on a 64-bit bus is 32 KiB) would wrap."""
    cmds = [(AXI4_BOUNDARY - 3, 2, 70_000, 80_001), (0x1234_5678, 1, (1 << 20) - 1, 0)]
    want = [burst for c in cmds for burst in reference(c, bus, 256)]
    got, _ = run(cmds, bus, 256, ready_p=1.0, seed=0)
    assert [burst for _, burst in got] == want


@pytest.mark.parametrize("bus", [4, 32])
def test_splitter_gives_a_burst_per_cycle(bus):
    """With ``ready`` high: a command's first burst three cycles after it is taken, the rest on
    every following cycle."""
    rng = random.Random(bus)
    cmds = [c for c in commands(rng, bus, 30) if reference(c, bus, 256)]
    got, taken = run(cmds, bus, 256, ready_p=1.0, seed=0)
    i = 0
    for cmd, t in zip(cmds, taken, strict=True):
        n = len(reference(cmd, bus, 256))
        assert [cycle for cycle, _ in got[i:i + n]] == list(range(t + 3, t + 3 + n)), cmd
        i += n
