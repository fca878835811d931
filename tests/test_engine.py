"""The GEMM engine in Amaranth's simulator, with a behavioural DMA over a Python memory.

This checks the sequencer, scratchpads, accumulator and store against the reference model without
the AXI bus; the Verilator tests run the same engine behind the real DMA and registers.
"""

from __future__ import annotations

import collections

import numpy as np
import pytest
from amaranth.sim import Simulator

from accelerator.config import AcceleratorConfig
from accelerator.hw.dma import data_layout
from accelerator.hw.engine import EngineError, GemmEngine, dma_command_layout
from accelerator.hw.payload import pack, unpack
from accelerator.model import reference


class Memory:
    def __init__(self, size: int):
        self.bytes = bytearray(size)

    def put(self, addr: int, matrix: np.ndarray, ld: int, dtype) -> None:
        for r, row in enumerate(np.asarray(matrix, dtype=dtype)):
            raw = row.tobytes()
            self.bytes[addr + r * ld: addr + r * ld + len(raw)] = raw

    def get(self, addr: int, rows: int, cols: int, ld: int, dtype) -> np.ndarray:
        size = np.dtype(dtype).itemsize
        rows_bytes = [bytes(self.bytes[addr + r * ld: addr + r * ld + cols * size])
                      for r in range(rows)]
        return np.stack([np.frombuffer(raw, dtype=dtype) for raw in rows_bytes])


def run_engine(config, mem, command, rng, *, stall=0.0, deadline=50_000, bus_error=False):
    eng = GemmEngine(config)
    B = config.axi_bytes
    cmd_l, data_l = dma_command_layout(config), data_layout(config)
    reads, writes = collections.deque(), collections.deque()
    result = {}

    def accept(port, queue):
        async def bench(ctx):
            while True:
                ctx.set(port.ready, int(rng.random() >= stall))
                _, _, valid, ready, payload = await ctx.tick().sample(
                    port.valid, port.ready, port.payload.as_value())
                if valid and ready:
                    queue.append(unpack(cmd_l, payload))
        return bench

    async def read_data(ctx):
        while True:
            if not reads:
                await ctx.tick()
                continue
            cmd = reads.popleft()
            for r in range(cmd["rows"]):
                base = cmd["addr"] + r * cmd["stride"]
                for b0 in range(0, cmd["row_bytes"], B):
                    n = min(B, cmd["row_bytes"] - b0)
                    chunk = list(mem.bytes[base + b0: base + b0 + n]) + [0] * (B - n)
                    last = b0 + B >= cmd["row_bytes"]
                    while rng.random() < stall:
                        ctx.set(eng.rd_data.valid, 0)
                        await ctx.tick()
                    ctx.set(eng.rd_data.payload.as_value(), pack(data_l, {
                        "data": chunk, "bytes": n, "first": b0 == 0, "last": last,
                        "end": last and r == cmd["rows"] - 1}))
                    ctx.set(eng.rd_data.valid, 1)
                    await ctx.tick().until(eng.rd_data.ready)
                    ctx.set(eng.rd_data.valid, 0)

    async def write_data(ctx):
        cmd, r, offset = None, 0, 0
        while True:
            ctx.set(eng.wr_data.ready, int(rng.random() >= stall))
            _, _, valid, ready, payload = await ctx.tick().sample(
                eng.wr_data.valid, eng.wr_data.ready, eng.wr_data.payload.as_value())
            if not (valid and ready):
                continue
            beat = unpack(data_l, payload)
            if cmd is None:
                assert writes, "write data before its command"
                cmd, r, offset = writes.popleft(), 0, 0
            # framed by the command, as the DMA writer does: only `data` is the store's
            n = min(B, cmd["row_bytes"] - offset)
            addr = cmd["addr"] + r * cmd["stride"] + offset
            mem.bytes[addr: addr + n] = bytes(b & 0xFF for b in beat["data"][:n])
            offset += n
            if offset == cmd["row_bytes"]:
                r, offset = r + 1, 0
                if r == cmd["rows"]:
                    cmd = None

    async def control(ctx):
        # a DMA that saw an error response raises dma_error for the rest of the command
        ctx.set(eng.dma_error, int(bus_error))
        ctx.set(eng.cmd, command)
        ctx.set(eng.start, 1)
        await ctx.tick()
        ctx.set(eng.start, 0)
        for _ in range(deadline):
            if (await ctx.tick().sample(eng.done))[2]:
                break
        else:
            raise AssertionError(f"the engine did not finish in {deadline} cycles")
        result["error"] = ctx.get(eng.error)
        result["cycles"] = ctx.get(eng.cycles)
        result["mac_cycles"] = ctx.get(eng.mac_cycles)

    async def results_taken(ctx):
        # the core has no back-pressure: a result the accumulator refused would be lost
        async for _, _, refused in ctx.tick().sample(eng.results_refused):
            assert not refused, "the array showed a result the accumulator did not take"

    sim = Simulator(eng)
    sim.add_clock(1e-6)
    for bench in (accept(eng.rd_cmd, reads), accept(eng.wr_cmd, writes), read_data, write_data,
                  results_taken, control):
        sim.add_testbench(bench, background=bench is not control)
    sim.run()
    return result


def gemm_case(config, m, k, n, rng, *, accumulate=False, requant=None, pad=3):
    A = rng.integers(-128, 128, size=(m, k))
    Bm = rng.integers(-128, 128, size=(k, n))
    Cin = rng.integers(-2**31, 2**31, size=(m, n)) if accumulate else None
    lda, ldb = k + pad, n + pad + 1
    out_size = 1 if requant else 4
    ldc = (n * out_size + 7) // 4 * 4 + 4
    ldcin = 4 * n + 8
    a_addr, b_addr = 0x100 + 1, 0x4000 + 3
    c_addr, cin_addr = 0x10000, 0x20000
    mem = Memory(0x40000)
    mem.put(a_addr, A, lda, np.int8)
    mem.put(b_addr, Bm, ldb, np.int8)
    if accumulate:
        mem.put(cin_addr, Cin, ldcin, np.int32)
    cmd = {"a_addr": a_addr, "b_addr": b_addr, "c_addr": c_addr, "cin_addr": cin_addr,
           "m": m, "k": k, "n": n, "lda": lda, "ldb": ldb, "ldc": ldc, "ldcin": ldcin,
           "accumulate": int(accumulate), "requant": int(requant is not None),
           "relu": int(bool(requant and requant.relu)),
           "rq_mult": requant.multiplier if requant else 0,
           "rq_shift": requant.shift if requant else 0,
           "rq_zp": requant.zero_point if requant else 0}
    acc = reference.gemm(A, Bm, Cin)
    expected = requant.apply(acc) if requant else acc
    return mem, cmd, expected, (c_addr, ldc, np.int8 if requant else np.int32)


@pytest.mark.parametrize("dataflow", ["os", "ws"])
@pytest.mark.parametrize("rows,cols,m,k,n", [(2, 2, 5, 7, 9), (2, 3, 1, 1, 1), (3, 2, 7, 4, 3)])
def test_engine_gemm(dataflow, rows, cols, m, k, n):
    config = AcceleratorConfig(rows=rows, cols=cols, dataflow=dataflow, axi_data_width=32)
    rng = np.random.default_rng(rows * 100 + m)
    mem, cmd, expected, (c_addr, ldc, dtype) = gemm_case(config, m, k, n, rng)
    result = run_engine(config, mem, cmd, rng, stall=0.2)
    assert result["error"] == 0
    got = mem.get(c_addr, m, n, ldc, dtype)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_engine_accumulate_and_requant(dataflow):
    config = AcceleratorConfig(rows=2, cols=2, dataflow=dataflow, axi_data_width=64)
    rng = np.random.default_rng(5)
    params = reference.RequantParams(multiplier=1 << 30, shift=9, zero_point=-3, relu=True)
    for accumulate, requant in [(True, None), (False, params), (True, params)]:
        mem, cmd, expected, (c_addr, ldc, dtype) = gemm_case(
            config, 5, 6, 3, rng, accumulate=accumulate, requant=requant)
        result = run_engine(config, mem, cmd, rng, stall=0.1)
        assert result["error"] == 0
        np.testing.assert_array_equal(mem.get(c_addr, 5, 3, ldc, dtype), expected)


@pytest.mark.parametrize("change,code", [
    ({"m": 0}, EngineError.ZERO_DIM),
    ({"lda": 3}, EngineError.STRIDE),
    ({"c_addr": 0x10002}, EngineError.MISALIGNED),
    ({"a_addr": 0xFFFFFFF0}, EngineError.ADDR_RANGE),
    ({"k": 70000}, EngineError.TOO_LARGE),
])
def test_engine_rejects_bad_commands(change, code):
    config = AcceleratorConfig(rows=2, cols=2, axi_data_width=32)
    rng = np.random.default_rng(0)
    mem, cmd, _, _ = gemm_case(config, 3, 5, 3, rng)
    cmd.update(change)
    result = run_engine(config, mem, cmd, rng, deadline=2000)
    assert result["error"] == code


@pytest.mark.parametrize("dataflow", ["os", "ws"])
@pytest.mark.parametrize("accumulate", [False, True])
def test_engine_walks_a_long_k_in_steps(dataflow, accumulate):
    # 16-entry scratchpads hold 8 values of K per half: K = 21 takes three steps (8, 8, 5)
    config = AcceleratorConfig(rows=2, cols=2, dataflow=dataflow, axi_data_width=32,
                               spad_a_depth=16, spad_b_depth=16, spad_c_depth=16)
    rng = np.random.default_rng(9)
    mem, cmd, expected, (c_addr, ldc, dtype) = gemm_case(config, 5, 21, 3, rng,
                                                         accumulate=accumulate)
    result = run_engine(config, mem, cmd, rng, stall=0.1)
    assert result["error"] == 0
    np.testing.assert_array_equal(mem.get(c_addr, 5, 3, ldc, dtype), expected)


@pytest.mark.parametrize("dataflow", ["os", "ws"])
@pytest.mark.parametrize("m,k,n", [(9, 5, 1), (6, 7, 9), (11, 1, 3)])
def test_engine_reuses_a_c_half_only_after_its_preload(dataflow, m, k, n):
    # three or more chunks: the third reuses the first's C half; a feeder that trusted the
    # half's flags before the loader claimed it again added the first chunk's C_in
    config = AcceleratorConfig(rows=4, cols=4, dataflow=dataflow, axi_data_width=64)
    rng = np.random.default_rng(1)
    mem, cmd, expected, (c_addr, ldc, dtype) = gemm_case(config, m, k, n, rng, accumulate=True)
    result = run_engine(config, mem, cmd, rng, stall=0.0)
    assert result["error"] == 0
    np.testing.assert_array_equal(mem.get(c_addr, m, n, ldc, dtype), expected)


def test_engine_rejects_requant_without_the_unit():
    config = AcceleratorConfig(rows=2, cols=2, axi_data_width=32, requant_unit=False)
    rng = np.random.default_rng(0)
    mem, cmd, _, _ = gemm_case(config, 3, 5, 3, rng)
    cmd.update(requant=1, ldc=8)
    assert run_engine(config, mem, cmd, rng, deadline=2000)["error"] == EngineError.NO_REQUANT


def test_engine_reports_a_bus_error_and_still_finishes():
    config = AcceleratorConfig(rows=2, cols=2, axi_data_width=32)
    rng = np.random.default_rng(0)
    mem, cmd, _, _ = gemm_case(config, 3, 5, 3, rng)
    result = run_engine(config, mem, cmd, rng, bus_error=True)
    assert result["error"] == EngineError.BUS_ERROR


def check_command(config, command, *, deadline=400):
    """The engine's verdict on a command: its error code, or 0 once it issues its first load."""
    eng = GemmEngine(config)
    verdict = {}

    async def bench(ctx):
        ctx.set(eng.cmd, command)
        ctx.set(eng.start, 1)
        await ctx.tick()
        ctx.set(eng.start, 0)
        for _ in range(deadline):
            _, _, done, error, loading = await ctx.tick().sample(eng.done, eng.error,
                                                                 eng.rd_cmd.valid)
            if done:
                verdict["code"] = error
                return
            if loading:
                verdict["code"] = 0
                return
        raise AssertionError(f"no verdict in {deadline} cycles")

    sim = Simulator(eng)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return verdict["code"]


def _range_case(area: str, end: int, *, requant: bool = False) -> dict:
    """A command whose ``area`` ends exactly at byte ``end`` (exclusive) of the address space."""
    m, k, n = 5, 6, 3
    cmd = {"a_addr": 0x100, "b_addr": 0x4000, "c_addr": 0x10000, "cin_addr": 0x20000,
           "m": m, "k": k, "n": n, "lda": 40, "ldb": 24, "ldc": 64, "ldcin": 48,
           "accumulate": int(area == "cin"), "requant": int(requant), "relu": 0,
           "rq_mult": 1 << 30, "rq_shift": 0, "rq_zp": 0}
    rows, stride, row_bytes = {
        "a": (m, "lda", k), "b": (k, "ldb", n), "c": (m, "ldc", n if requant else 4 * n),
        "cin": (m, "ldcin", 4 * n)}[area]
    cmd[f"{area}_addr"] = end - (rows - 1) * cmd[stride] - row_bytes
    return cmd


@pytest.mark.parametrize("dataflow", ["os", "ws"])
@pytest.mark.parametrize("area", ["a", "b", "c", "cin"])
def test_engine_address_range_check_is_exact(dataflow, area):
    # the range check multiplies serially; an area ending at the last byte is legal, one byte
    # more is not
    config = AcceleratorConfig(rows=2, cols=2, dataflow=dataflow, axi_data_width=32)
    assert check_command(config, _range_case(area, 1 << 32)) == 0
    assert check_command(config, _range_case(area, (1 << 32) + 4)) == EngineError.ADDR_RANGE


def test_engine_address_range_of_requantized_c_counts_bytes():
    config = AcceleratorConfig(rows=2, cols=2, axi_data_width=32)
    assert check_command(config, _range_case("c", 1 << 32, requant=True)) == 0
    assert check_command(config, _range_case("c", (1 << 32) + 1, requant=True)) \
        == EngineError.ADDR_RANGE
