"""cocotb testbench of the systolic core, checked against the NumPy reference model.

The configuration comes from ``ACCEL_CONFIG`` (JSON) and the random seed from cocotb's
``RANDOM_SEED``, both set by ``accelerator.flow.sim.run_tests``; a failing run prints the seed
that replays it. Every test checks every result row; the streaming tests also check the cycle
count against the performance model, exactly.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge, with_timeout
from streams import StreamSink, StreamSource, random_pauses

from accelerator.config import AcceleratorConfig
from accelerator.hw.core import core_layouts
from accelerator.model.perf import core_cycles
from accelerator.model.tiles import random_operands, tile_stream

PERIOD_NS = 10


class CoreTB:
    """Clock, reset, one driver per input stream, a sink for results, and the scoreboard."""

    def __init__(self, dut):
        self.dut = dut
        self.config = AcceleratorConfig.from_dict(json.loads(os.environ["ACCEL_CONFIG"]))
        # cocotb derives each test's seed from the run's seed: the run's seed replays them all.
        self.run_seed = int(os.environ.get("COCOTB_RANDOM_SEED", cocotb.RANDOM_SEED))
        self.seed = cocotb.RANDOM_SEED
        self.rng = random.Random(self.seed)
        self.np_rng = np.random.default_rng(self.seed)
        layouts = core_layouts(self.config)
        self.sources = {name: StreamSource(dut, name, layouts[name], dut.clk, PERIOD_NS)
                        for name in layouts if name != "results"}
        self.sink = StreamSink(dut, "results", layouts["results"], dut.clk, PERIOD_NS)
        cocotb.start_soon(Clock(dut.clk, PERIOD_NS, unit="ns").start())
        dut._log.info("config %s, run seed %d (replay: ACCEL_SEED=%d)", self.config.name,
                      self.run_seed, self.run_seed)

    async def reset(self) -> None:
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 3)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)

    def set_pauses(self, inputs: float, outputs: float) -> None:
        for source in self.sources.values():
            source.set_pause_generator(random_pauses(self.rng, inputs))
        self.sink.set_pause_generator(random_pauses(self.rng, outputs))

    def tiles(self, lengths, kind="random"):
        return [random_operands(self.config, self.np_rng, n, kind=kind) for n in lengths]

    async def run(self, tiles, *, timeout_cycles: int | None = None):
        """Stream the tiles through the core, check every row; return (stream, cycles)."""
        stream = tile_stream(self.config, tiles)
        if stream.weights:
            self.sources["weights"].send(stream.weights)
        self.sources["operands"].send(stream.operands)
        self.sink.expect(len(stream.results))
        budget = timeout_cycles or 20 * (len(stream.operands) + len(stream.weights)) + 2000
        await with_timeout(self.sink.done.wait(), budget * PERIOD_NS, "ns")
        got = self.sink.received[-len(stream.results):]
        for index, (beat, expected) in enumerate(zip(got, stream.results, strict=False)):
            if beat["c"] != expected:
                raise AssertionError(
                    f"result row {index} differs (run seed {self.run_seed}): got {beat['c']}, "
                    f"expected {expected}")
        for index, (beat, last) in enumerate(zip(got, stream.last, strict=False)):
            if beat["last"] != last:
                raise AssertionError(f"result row {index}: last = {beat['last']}, expected {last}")
        starts = [s.first_cycle for s in self.sources.values() if s.first_cycle is not None]
        cycles = self.sink.last_cycle - min(starts) + 1
        return stream, cycles

    def report(self, name: str, **values) -> None:
        """Add measurements to the JSON file named by ACCEL_REPORT (for tools/ benchmarks)."""
        path = os.environ.get("ACCEL_REPORT")
        if not path:
            return
        data = json.loads(Path(path).read_text()) if os.path.exists(path) else {}
        data[name] = values
        with open(path + ".tmp", "w") as f:
            json.dump(data, f, indent=2)
        os.replace(path + ".tmp", path)


def _lengths(tb: CoreTB, count: int, longest: int) -> list[int]:
    return [tb.rng.randint(1, longest) for _ in range(count)]


@cocotb.test()
async def random_tiles_with_stalls(dut):
    """Seeded random tiles of random lengths, random stalls on both sides."""
    tb = CoreTB(dut)
    await tb.reset()
    tb.set_pauses(0.2, 0.2)
    await tb.run(tb.tiles(_lengths(tb, 24, 3 * tb.config.rows + 2)))


@cocotb.test()
async def extreme_values(dut):
    """Only the ends of the operand range, and the largest products over and over."""
    tb = CoreTB(dut)
    await tb.reset()
    tiles = tb.tiles([1, 7, 2 * tb.config.rows], kind="extreme")
    tiles += tb.tiles([3, tb.config.rows + 1], kind="max")
    await tb.run(tiles)


@cocotb.test()
async def length_one_tiles(dut):
    """K = 1 (os) or M = 1 (ws) tiles back to back: the shortest tile, the hardest hazard."""
    tb = CoreTB(dut)
    await tb.reset()
    lengths = [1] * 16
    _stream, cycles = await tb.run(tb.tiles(lengths))
    assert cycles == core_cycles(tb.config, lengths), (cycles, core_cycles(tb.config, lengths))


@cocotb.test()
async def long_streams_and_wraparound(dut):
    """A long K (os) or M (ws) stream; os also sums -128·-128 past 2**31 to show the wrap."""
    tb = CoreTB(dut)
    await tb.reset()
    cfg = tb.config
    tiles = tb.tiles([1024])
    if cfg.dataflow == "os":
        # 16384 · K > 2**(acc_width-1) for K past this: the accumulator must wrap like NumPy.
        k_wrap = (1 << (cfg.acc_width - 1)) // (cfg.in_min * cfg.in_min) + 7
        if k_wrap <= 200_000:
            tiles += tb.tiles([k_wrap], kind="max")
    await tb.run(tiles, timeout_cycles=10 * sum(t[0].size for t in tiles) + 10_000)


@cocotb.test()
async def back_to_back_cycles_match_model(dut):
    """Tiles of mixed lengths with no stall: the cycle count is the model's, to the cycle."""
    tb = CoreTB(dut)
    await tb.reset()
    r = tb.config.rows
    lengths = [r, 1, 2 * r + 1, max(1, r - 1), 3, r + 2, 5 * r, 1, r]
    _stream, cycles = await tb.run(tb.tiles(lengths))
    expected = core_cycles(tb.config, lengths)
    assert cycles == expected, f"{cycles} cycles, the model says {expected}"


@cocotb.test()
async def heavy_back_pressure(dut):
    """Half the cycles idle on the inputs and half refused on the output."""
    tb = CoreTB(dut)
    await tb.reset()
    tb.set_pauses(0.5, 0.5)
    await tb.run(tb.tiles(_lengths(tb, 12, 2 * tb.config.rows + 1)))


@cocotb.test()
async def utilization_stream(dut):
    """The benchmark: a stream of tiles of one length (default 64 tiles, K or M = 64)."""
    tb = CoreTB(dut)
    await tb.reset()
    count = int(os.environ.get("ACCEL_BENCH_TILES", "64"))
    length = int(os.environ.get("ACCEL_BENCH_LENGTH", "64"))
    lengths = [length] * count
    stream, cycles = await tb.run(tb.tiles(lengths))
    expected = core_cycles(tb.config, lengths)
    utilization = stream.macs / (cycles * tb.config.pes)
    dut._log.info("%d tiles of %d: %d cycles (model %d), utilization %.4f",
                  count, length, cycles, expected, utilization)
    tb.report("utilization_stream", tiles=count, length=length, cycles=cycles,
              model_cycles=expected, macs=stream.macs, utilization=utilization)
    assert cycles == expected, f"{cycles} cycles, the model says {expected}"
