"""cocotb testbench of the whole accelerator: AXI4 memory, AXI4-Lite registers, the host driver.

The memory is cocotbext-axi's AxiRam (with pause generators for back-pressure and read latency),
the registers are driven by the real host driver over an AxiLiteMaster, and every result is
checked against the reference model. Configuration: ``ACCEL_CONFIG``; the work: ``ACCEL_GEMM``
(one case, for ``accel sim``) or ``ACCEL_VERIFY`` (a regression, for ``accel verify``); results
go as JSON lines to ``ACCEL_REPORT``. ``ACCEL_MEMORY`` (JSON, optional): ``read_latency`` and
``write_latency`` in cycles, the same deterministic memory timing as the C++ harness's
``set_latency`` (accelerator/flow/harness/harness.cpp), so both benches give the same cycles.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import random

import cocotb
import numpy as np
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge, with_timeout
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster, AxiRam

from accelerator.config import AcceleratorConfig
from accelerator.driver.driver import Accelerator, AcceleratorError
from accelerator.driver.sim import AxiLiteTransport
from accelerator.flow.cases import (
    BENCH_MEMORY,
    ILLEGAL_COMMANDS,
    GemmCase,
    make_data,
    random_case,
)
from accelerator.hw.registers import ErrorCode
from accelerator.model.perf import estimate

PERIOD_NS = 10
MEMORY_SIZE = BENCH_MEMORY["cocotb"]


def _pauses(rng: random.Random, probability: float):
    if probability <= 0:
        return itertools.repeat(False)
    return (rng.random() < probability for _ in itertools.count())


class AccelTB:
    """Clock, reset, memory, register master and driver around the accelerator."""

    def __init__(self, dut):
        self.dut = dut
        self.config = AcceleratorConfig.from_dict(json.loads(os.environ["ACCEL_CONFIG"]))
        self.rng = random.Random(cocotb.RANDOM_SEED)
        cocotb.start_soon(Clock(dut.clk, PERIOD_NS, unit="ns").start())
        self.ram = AxiRam(AxiBus.from_prefix(dut, "m_axi", bus_separator="__"), dut.clk, dut.rst,
                          size=MEMORY_SIZE)
        self.master = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil", bus_separator="__"),
                                    dut.clk, dut.rst)
        self.driver = Accelerator(AxiLiteTransport(self.master, irq=dut.irq))
        # cocotbext-axi logs every transaction at INFO: thousands of lines, and slow
        for bus in ("m_axi", "s_axil"):
            logging.getLogger(f"cocotb.{dut._name}.{bus}").setLevel(logging.WARNING)
        self.report_path = os.environ.get("ACCEL_REPORT")
        memory = json.loads(os.environ.get("ACCEL_MEMORY") or "{}")
        self.latency(memory.get("read_latency", 0), memory.get("write_latency", 0))

    def latency(self, read: int, write: int) -> None:
        """The read process waits ``read`` cycles after taking a burst before it produces the
        data; the write process waits ``write`` cycles after a burst's last beat before it
        answers. AxiRam has no latency of its own: the channel methods its processes call are
        wrapped (on this instance) with a wait, as the C++ harness waits."""
        clk = self.dut.clk
        if read:
            ar = self.ram.read_if.ar_channel
            recv = type(ar).recv.__get__(ar)

            async def delayed_recv():
                item = await recv()
                await ClockCycles(clk, read)
                return item

            ar.recv = delayed_recv
        if write:
            b = self.ram.write_if.b_channel
            send = type(b).send.__get__(b)

            async def delayed_send(obj):
                await ClockCycles(clk, write)
                await send(obj)

            b.send = delayed_send

    async def reset(self) -> None:
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 4)
        self.dut.rst.value = 0
        await ClockCycles(self.dut.clk, 2)
        self.driver.config = None  # read the hardware's ID again: it was reset

    def backpressure(self, probability: float) -> None:
        channels = [self.ram.write_if.aw_channel, self.ram.write_if.w_channel,
                    self.ram.write_if.b_channel, self.ram.read_if.ar_channel,
                    self.ram.read_if.r_channel]
        for channel in channels:
            channel.set_pause_generator(_pauses(self.rng, probability))

    def report(self, record: dict) -> None:
        if self.report_path:
            with open(self.report_path, "a") as f:
                f.write(json.dumps(record, default=int) + "\n")

    def _timeout_ns(self, case: GemmCase) -> int:
        """A bound far above any legal run: 4× the model plus set-up, and more under stalls."""
        model = estimate(self.config, case.m, case.k, case.n, accumulate=case.accumulate,
                         requant=case.requant).cycles
        return int((model * 4 + 20_000) / (1 - case.backpressure) ** 2) * PERIOD_NS

    async def run_case(self, case: GemmCase) -> dict:
        """Lay out the case in memory, run it with the driver, compare; return a record."""
        data = make_data(self.config, case)
        if data.memory_size > MEMORY_SIZE:
            raise ValueError(f"case needs {data.memory_size} bytes of memory, the bench has "
                             f"{MEMORY_SIZE}")
        self.backpressure(case.backpressure)
        for name, matrix, dtype in (("a", data.a, np.int8), ("b", data.b, np.int8),
                                    ("c_in", data.c_in, np.int32)):
            if matrix is None:
                continue
            for r, row in enumerate(np.asarray(matrix, dtype=dtype)):
                self.ram.write(data.addr[name] + r * data.ld[name], row.tobytes())
        out_dtype = np.int8 if data.requant else np.int32
        # poison the result area, so that a row never written cannot pass by accident
        c_bytes = case.m * data.ld["c"]
        self.ram.write(data.addr["c"], bytes([0xA5]) * c_bytes)
        start = cocotb.utils.get_sim_time("ns")
        counters = await with_timeout(self.driver.gemm(
            a=data.addr["a"], b=data.addr["b"], c=data.addr["c"], m=case.m, k=case.k, n=case.n,
            lda=data.ld["a"], ldb=data.ld["b"], ldc=data.ld["c"],
            c_in=data.addr["c_in"] if case.accumulate else None,
            ldcin=data.ld["c_in"] if case.accumulate else None,
            requant=data.requant, irq=True), self._timeout_ns(case), "ns")
        wall_cycles = round((cocotb.utils.get_sim_time("ns") - start) / PERIOD_NS)
        size = np.dtype(out_dtype).itemsize
        got = np.stack([
            np.frombuffer(self.ram.read(data.addr["c"] + r * data.ld["c"], case.n * size),
                          dtype=out_dtype) for r in range(case.m)])
        mismatches = np.argwhere(got != data.expected)
        first = [{"row": int(r), "col": int(c), "got": int(got[r, c]),
                  "expected": int(data.expected[r, c])} for r, c in mismatches[:5]]
        macs = case.m * case.k * case.n
        cycles = counters["cycles"]
        return {
            "c_sha256": hashlib.sha256(got.tobytes()).hexdigest(),
            "passed": len(mismatches) == 0, "mismatches": len(mismatches), "first": first,
            "m": case.m, "k": case.k, "n": case.n, "seed": case.seed, "case": case.to_json(),
            "cycles": cycles, "wall_cycles": wall_cycles, "macs": macs,
            "utilization": macs / (cycles * self.config.pes) if cycles else 0.0,
            "counters": counters,
        }


def _needs(variable: str, command: str) -> None:
    """Skip, saying so in the log and in the results, a test whose input is not there (each
    runs what one command asks for, named with the test; cocotb 2 takes pytest's skip)."""
    if variable not in os.environ:
        pytest.skip(f"{variable} is not set: this test runs what {command} asks for")


@cocotb.test()
async def sim_gemm(dut):
    """One GEMM from ACCEL_GEMM (what `accel sim` runs)."""
    _needs("ACCEL_GEMM", "`accel sim`")
    tb = AccelTB(dut)
    await tb.reset()
    case = GemmCase.from_json(os.environ["ACCEL_GEMM"])
    record = await tb.run_case(case)
    tb.report(record)
    assert record["passed"], f"{record['mismatches']} elements differ, first: {record['first']}"


@cocotb.test()
async def verify_regression(dut):
    """A constrained-random regression from ACCEL_VERIFY (what `accel verify` runs)."""
    _needs("ACCEL_VERIFY", "`accel verify`")
    spec = json.loads(os.environ["ACCEL_VERIFY"])
    tb = AccelTB(dut)
    await tb.reset()
    rng = np.random.default_rng(spec["seed"])
    failures = 0
    for index in range(spec["count"]):
        case = random_case(tb.config, rng)
        try:
            record = await tb.run_case(case)
        except Exception as exc:  # a hang (timeout) or a driver error is a failure, not a stop
            record = {"passed": False, "error": f"{type(exc).__name__}: {exc}",
                      "case": case.to_json(), "seed": case.seed}
            await tb.reset()
        record.update(kind="gemm", index=index,
                      replay=case.command_line(tb.config))
        failures += not record["passed"]
        tb.report(record)

    # illegal commands: each sets its error code and the accelerator stays usable
    good = GemmCase(m=3, k=5, n=4, seed=spec["seed"])
    data = make_data(tb.config, good)
    for name, change, code in ILLEGAL_COMMANDS:
        args = {"a": data.addr["a"], "b": data.addr["b"], "c": data.addr["c"],
                "m": 3, "k": 5, "n": 4,
                "lda": data.ld["a"], "ldb": data.ld["b"], "ldc": data.ld["c"]}
        args.update(change)
        try:
            await with_timeout(tb.driver.gemm(**args, check=False), 100_000, "ns")
            got = "NONE"
        except AcceleratorError as exc:
            got = ErrorCode(exc.code).name
        except Exception as exc:
            got = f"{type(exc).__name__}: {exc}"
        passed = got == code
        failures += not passed
        tb.report({"kind": "illegal", "name": name, "passed": passed, "expected": code,
                   "got": got})

    # a reset in the middle of a GEMM, then a correct GEMM
    case = GemmCase(m=3 * tb.config.rows + 1, k=37, n=2 * tb.config.cols + 1, seed=spec["seed"])
    task = cocotb.start_soon(tb.run_case(case))
    await ClockCycles(dut.clk, 300)
    task.cancel()
    await tb.reset()
    record = await tb.run_case(GemmCase(m=case.m, k=case.k, n=case.n, seed=case.seed + 1))
    record.update(kind="reset", name="reset mid-GEMM, then a GEMM")
    failures += not record["passed"]
    tb.report(record)
    assert failures == 0, f"{failures} failing cases; see {tb.report_path}"


@cocotb.test()
async def identify(dut):
    """The ID block describes the hardware this bench was built for."""
    if "ACCEL_GEMM" in os.environ or "ACCEL_VERIFY" in os.environ:
        pytest.skip("ACCEL_GEMM or ACCEL_VERIFY is set: a run of one command, not the bench's "
                    "own tests")
    tb = AccelTB(dut)
    await tb.reset()
    assert await tb.driver.identify() == tb.config
    await RisingEdge(dut.clk)


@cocotb.test()
async def sim_gemms(dut):
    """Many GEMMs in one simulation from ACCEL_GEMMS (a JSON list of GemmCase dicts), one JSON
    line each to ACCEL_REPORT: what model validation and sweeps run, so that a build and a
    simulator start serve a whole list of shapes."""
    _needs("ACCEL_GEMMS", "model validation and `accel sweep --fidelity rtl`")
    tb = AccelTB(dut)
    await tb.reset()
    failures = 0
    for index, fields in enumerate(json.loads(os.environ["ACCEL_GEMMS"])):
        case = GemmCase(**fields)
        try:
            record = await tb.run_case(case)
        except Exception as exc:  # a hang or a driver error fails this case, not the list
            record = {"passed": False, "error": f"{type(exc).__name__}: {exc}",
                      "case": case.to_json(), "seed": case.seed}
            await tb.reset()
        record.update(index=index, replay=case.command_line(tb.config))
        failures += not record["passed"]
        tb.report(record)
    assert failures == 0, f"{failures} failing cases; see {tb.report_path}"
