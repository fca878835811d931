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

import itertools
import json
import logging
import os
import random
from dataclasses import replace

import cocotb
import numpy as np
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge, with_timeout
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster, AxiRam

from accelerator.config import AcceleratorConfig
from accelerator.driver.driver import Accelerator, AcceleratorError
from accelerator.driver.sim import AxiLiteTransport
from accelerator.hw.top import abort_bound
from accelerator.model.cases import (
    ABORTS_ON_WRITE,
    BENCH_MEMORY,
    BUS_ERROR_AREAS,
    DIRECTED_ABORTS,
    ILLEGAL_COMMANDS,
    RANDOM_ABORTS,
    Directed,
    GemmCase,
    adjust,
    directed_cases,
    make_data,
    max_dim_cases,
    random_case,
    result_record,
)
from accelerator.model.coverage import command_of
from accelerator.model.perf import estimate
from accelerator.model.regmap import ErrorCode, register

PERIOD_NS = 10
MEMORY_SIZE = BENCH_MEMORY["cocotb"]
#: The bench memory's latency (cocotbext-axi's AxiRam: a request's first beat, a write's
#: response) that abort bounds are checked with (:func:`accelerator.hw.top.abort_bound`).
BUS_LATENCY = 8
#: The longest back-pressure pause on any channel in the abort cases.
ABORT_WAIT = 3
#: The longest pause of the AW channel in the aborts as a write is requested (ABORTS_ON_WRITE).
AW_WAIT = 8


class SlvErrRam(AxiRam):
    """AxiRam that answers SLVERR to every beat that touches ``error_region`` (a range of byte
    addresses, or None): such reads return zeros, such writes change nothing. cocotbext-axi
    answers SLVERR when its ``_read``/``_write`` hook raises, so the hooks are wrapped."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.error_region: range | None = None
        #: (address, bytes, is a write) of every access answered SLVERR (coverage samples it)
        self.faults: list[tuple[int, int, bool]] = []
        for side, hook in ((self.read_if, "_read"), (self.write_if, "_write")):
            setattr(side, hook, self._guard(getattr(side, hook), side is self.write_if))

    def _guard(self, inner, write: bool):
        async def guarded(address, arg):
            length = arg if isinstance(arg, int) else len(arg)
            region = self.error_region
            if region is not None and address < region.stop and region.start < address + length:
                self.faults.append((address, length, write))
                raise OSError(f"SLVERR region {region.start:#x}-{region.stop:#x}")
            return await inner(address, arg)
        return guarded


def _pauses(rng: random.Random, probability: float, longest: int | None = None):
    """Pause (True) with ``probability`` each cycle; never more than ``longest`` in a row."""
    if probability <= 0:
        return itertools.repeat(False)

    def pauses():
        run = 0
        while True:
            pause = rng.random() < probability and (longest is None or run < longest)
            run = run + 1 if pause else 0
            yield pause
    return pauses()


class AccelTB:
    """Clock, reset, memory, register master and driver around the accelerator."""

    def __init__(self, dut):
        self.dut = dut
        self.config = AcceleratorConfig.from_dict(json.loads(os.environ["ACCEL_CONFIG"]))
        self.rng = random.Random(cocotb.RANDOM_SEED)
        cocotb.start_soon(Clock(dut.clk, PERIOD_NS, unit="ns").start())
        self.ram = SlvErrRam(AxiBus.from_prefix(dut, "m_axi", bus_separator="__"), dut.clk,
                             dut.rst, size=MEMORY_SIZE)
        self.master = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil", bus_separator="__"),
                                    dut.clk, dut.rst)
        self.driver = Accelerator(AxiLiteTransport(self.master, irq=dut.irq))
        #: register name → the last value the driver wrote (a record's command comes from it)
        self.writes: dict[str, int] = {}
        write = self.driver.write

        async def logged(name: str, value: int) -> None:
            self.writes[name] = value
            await write(name, value)

        self.driver.write = logged
        # cocotbext-axi logs every transaction at INFO: thousands of lines, and slow
        for bus in ("m_axi", "s_axil"):
            logging.getLogger(f"cocotb.{dut._name}.{bus}").setLevel(logging.WARNING)
        self.report_path = os.environ.get("ACCEL_REPORT")
        memory = json.loads(os.environ.get("ACCEL_MEMORY") or "{}")
        self.read_latency = self.write_latency = 0
        self._latency_hooks = False
        self.latency(memory.get("read_latency", 0), memory.get("write_latency", 0))

    def latency(self, read: int, write: int) -> None:
        """The read process waits ``read`` cycles after taking a burst before it produces the
        data; the write process waits ``write`` cycles after a burst's last beat before it
        answers. AxiRam has no latency of its own: the channel methods its processes call are
        wrapped (on this instance) with a wait, as the C++ harness waits."""
        clk = self.dut.clk
        self.read_latency, self.write_latency = read, write
        if self._latency_hooks or not (read or write):
            return  # the wrappers read the latencies at every burst
        self._latency_hooks = True
        ar = self.ram.read_if.ar_channel
        recv = type(ar).recv.__get__(ar)

        async def delayed_recv():
            item = await recv()
            if self.read_latency:
                await ClockCycles(clk, self.read_latency)
            return item

        ar.recv = delayed_recv
        b = self.ram.write_if.b_channel
        send = type(b).send.__get__(b)

        async def delayed_send(obj):
            if self.write_latency:
                await ClockCycles(clk, self.write_latency)
            await send(obj)

        b.send = delayed_send

    async def reset(self) -> None:
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 4)
        self.dut.rst.value = 0
        await ClockCycles(self.dut.clk, 2)
        self.driver.config = None  # read the hardware's ID again: it was reset

    def backpressure(self, probability: float, longest: int | None = None,
                     channels: str = "aw w b ar r") -> None:
        """Pauses on the named channels (none on the others), at most ``longest`` in a row."""
        sides = {"aw": self.ram.write_if.aw_channel, "w": self.ram.write_if.w_channel,
                 "b": self.ram.write_if.b_channel, "ar": self.ram.read_if.ar_channel,
                 "r": self.ram.read_if.r_channel}
        for name, channel in sides.items():
            chance = probability if name in channels.split() else 0.0
            channel.set_pause_generator(_pauses(self.rng, chance, longest))

    def report(self, record: dict) -> None:
        if self.report_path:
            with open(self.report_path, "a") as f:
                f.write(json.dumps(record, default=int) + "\n")

    def _timeout_ns(self, case: GemmCase) -> int:
        """A bound far above any legal run: 4× the model plus set-up, and more under stalls."""
        model = estimate(self.config, case.m, case.k, case.n, accumulate=case.accumulate,
                         requant=case.requant).cycles
        return int((model * 4 + 20_000) / (1 - case.backpressure) ** 2) * PERIOD_NS

    def lay_out(self, case: GemmCase, keep_backpressure: bool = False,
                directed: Directed | None = None):
        """Write the case's operands into memory and poison its result area; its data
        (``directed``: with its requantization, addresses and strides)."""
        data = make_data(self.config, case)
        if directed is not None:
            data = adjust(self.config, directed, data)
        if data.memory_size > MEMORY_SIZE:
            raise ValueError(f"case needs {data.memory_size} bytes of memory, the bench has "
                             f"{MEMORY_SIZE}")
        if not keep_backpressure:
            self.backpressure(case.backpressure)
        for name, matrix, dtype in (("a", data.a, np.int8), ("b", data.b, np.int8),
                                    ("c_in", data.c_in, np.int32)):
            if matrix is None:
                continue
            for r, row in enumerate(np.asarray(matrix, dtype=dtype)):
                self.ram.write(data.addr[name] + r * data.ld[name], row.tobytes())
        # poison the result area, so that a row never written cannot pass by accident
        c_bytes = case.m * data.ld["c"]
        self.ram.write(data.addr["c"], bytes([0xA5]) * c_bytes)
        return data

    @staticmethod
    def gemm_args(case: GemmCase, data) -> dict:
        return {"a": data.addr["a"], "b": data.addr["b"], "c": data.addr["c"], "m": case.m,
                "k": case.k, "n": case.n, "lda": data.ld["a"], "ldb": data.ld["b"],
                "ldc": data.ld["c"], "c_in": data.addr["c_in"] if case.accumulate else None,
                "ldcin": data.ld["c_in"] if case.accumulate else None, "requant": data.requant}

    async def run_case(self, case: GemmCase, keep_backpressure: bool = False,
                       directed: Directed | None = None) -> dict:
        """Lay out the case in memory, run it with the driver, compare; return a record.
        ``keep_backpressure``: the pauses set before, not the case's; ``directed``: a directed
        case's requantization, layout and memory latency."""
        data = self.lay_out(case, keep_backpressure, directed)
        out_dtype = np.int8 if data.requant else np.int32
        saved = (self.read_latency, self.write_latency)
        # a directed case brings its own latency; any other runs with the bench's (ACCEL_MEMORY)
        latency = directed.latency if directed is not None else saved
        self.latency(*latency)
        self.writes.clear()
        start = cocotb.utils.get_sim_time("ns")
        try:
            counters = await with_timeout(
                self.driver.gemm(**self.gemm_args(case, data), irq=True),
                self._timeout_ns(case) * (1 + max(latency)), "ns")
        finally:
            self.latency(*saved)
        wall_cycles = round((cocotb.utils.get_sim_time("ns") - start) / PERIOD_NS)
        size = np.dtype(out_dtype).itemsize
        got = np.stack([
            np.frombuffer(self.ram.read(data.addr["c"] + r * data.ld["c"], case.n * size),
                          dtype=out_dtype) for r in range(case.m)])
        return {
            **result_record(self.config, case, data, got, counters, wall_cycles),
            # what ran, for coverage (accelerator/model/coverage.py)
            "command": command_of(self.writes), "latency": list(latency),
            "backpressure": case.backpressure,
            "a_range": [int(data.a.min()), int(data.a.max())],
            "b_range": [int(data.b.min()), int(data.b.max())],
            "c_range": [int(got.min()), int(got.max())],
        }


    def _bus(self, name: str) -> int:
        return int(getattr(self.dut, f"m_axi__{name}").value)

    async def _watch_abort(self) -> dict:
        """From the register block's abort pulse until STATUS.busy falls, every cycle: the
        handshakes on the memory port, and whether a request, once valid, stayed valid until
        taken (AXI). Requests (AR, AW) from the pulse on may only be the one already valid in its
        cycle (``waiting``) and one the DMA took in it (``late``: it sees the pulse a cycle late,
        docs/registers.md, "Abort"); R and W beats and B responses are of bursts requested
        before."""
        regs, clk = self.dut.regs, self.dut.clk
        await RisingEdge(regs.abort)
        await FallingEdge(clk)       # the abort's cycle, settled
        waiting = {"ar": self._bus("arvalid"), "aw": self._bus("awvalid")}
        late = {"ar": 0, "aw": 0}    # requests first valid in the cycle after the pulse
        counts = dict.fromkeys(("ar", "aw", "r", "w", "w_strobed", "b"), 0)
        held = {"ar": 0, "aw": 0, "w": 0}   # valid and not taken in the cycle before
        dropped = []
        cycles = 0
        while True:
            for ch, ready in (("ar", "arready"), ("aw", "awready"), ("r", "rready"),
                              ("w", "wready"), ("b", "bready")):
                valid = self._bus(f"{ch}valid")
                if cycles == 1 and ch in late and valid and not held[ch]:
                    late[ch] = 1
                if ch in held:
                    if held[ch] and not valid:
                        dropped.append(f"{ch}valid fell before its handshake")
                    held[ch] = valid and not self._bus(ready)
                if valid and self._bus(ready):
                    counts[ch] += 1
                    if ch == "w" and self._bus("wstrb"):
                        counts["w_strobed"] += 1
            if not int(regs.busy.value):
                break
            await RisingEdge(clk)
            await FallingEdge(clk)
            cycles += 1
        return {"abort_cycles": cycles, "waiting": waiting, "late": late, "after": counts,
                "dropped": dropped}

    async def abort_case(self, case: GemmCase, delay: int, on_write: bool = False) -> dict:
        """Start ``case``, write CTRL.reset ``delay`` cycles after STATUS.busy rises (under
        back-pressure of at most ABORT_WAIT cycles), check the abort, then run a GEMM.
        ``on_write``: write it as the first write burst is requested instead, the back-pressure
        on AW only (at most AW_WAIT cycles), so that the abort finds writes in flight."""
        data = self.lay_out(case)
        before = np.frombuffer(self.ram.read(0, MEMORY_SIZE), dtype=np.uint8).copy()
        wait = AW_WAIT if on_write else ABORT_WAIT
        self.backpressure(case.backpressure, wait, channels="aw" if on_write else "aw w b ar r")
        gemm = cocotb.start_soon(self.driver.gemm(**self.gemm_args(case, data),
                                                  timeout_polls=1 << 30))
        await RisingEdge(self.dut.regs.busy)
        await ClockCycles(self.dut.clk, delay)
        while on_write and not self._bus("awvalid") and int(self.dut.regs.busy.value):
            await RisingEdge(self.dut.clk)
        watch = cocotb.start_soon(self._watch_abort())
        bound = abort_bound(self.config, latency=BUS_LATENCY,
                            wait=wait if case.backpressure else 0)
        problems = []
        if int(self.dut.regs.busy.value) == 0:
            problems.append(f"the command ended before the abort ({delay} cycles)")
        await self.driver.abort()
        seen = await with_timeout(watch, (bound + 1000) * PERIOD_NS, "ns")
        gemm.cancel()
        await ClockCycles(self.dut.clk, 20)
        if any(seen["after"][ch] > seen["waiting"][ch] + seen["late"][ch]
               for ch in ("ar", "aw")):
            problems.append("a request was issued after the abort")
        problems += seen.pop("dropped")
        problems += self._abort_writes(case, data, before)
        if self._bus("rvalid") or self._bus("bvalid"):
            problems.append("a read beat or write response was left untaken")
        if seen["abort_cycles"] > bound:
            problems.append(f"abort took {seen['abort_cycles']} cycles, bound {bound}")
        status = await self.driver.status()
        if status["busy"] or status["done"] or status["error"]:
            problems.append(f"STATUS after the abort: {status}")
        # the next command is correct (its own data: the aborted one may have written C; a
        # smaller shape, with edge tiles, keeps the regression short)
        rows, cols = self.config.rows, self.config.cols
        after = await self.run_case(GemmCase(
            m=min(case.m, 3 * rows + 1), k=min(case.k, 37), n=min(case.n, 2 * cols + 1),
            seed=case.seed + 1, accumulate=case.accumulate))
        if not after["passed"]:
            problems.append(f"the next GEMM: {after['mismatches']} elements differ")
        return {"passed": not problems, "problems": problems, "delay": delay,
                "bound": bound, **seen, "case": case.to_json(), "seed": case.seed,
                "backpressure": case.backpressure}

    def _abort_writes(self, case: GemmCase, data, before: np.ndarray) -> list[str]:
        """docs/registers.md, "Abort": only the aborted command's C area may have changed, each
        byte either unchanged or already the result's; nothing else is written."""
        after = np.frombuffer(self.ram.read(0, MEMORY_SIZE), dtype=np.uint8)
        result = before.copy()  # memory as it would be had the command finished
        rows = np.asarray(data.expected, dtype=np.int8 if data.requant else "<i4")
        for r, row in enumerate(rows):
            start = data.addr["c"] + r * data.ld["c"]
            result[start:start + row.nbytes] = np.frombuffer(row.tobytes(), dtype=np.uint8)
        changed = np.flatnonzero(after != before)
        wrong = changed[after[changed] != result[changed]]
        if len(wrong):
            return [(f"the abort left {len(wrong)} bytes that are neither the old ones nor the "
                     f"result's (first at {int(wrong[0]):#x})")]
        return []

    async def idle_abort_case(self, case: GemmCase) -> dict:
        """CTRL.reset with no command running, after a GEMM left STATUS.done set: STATUS is
        cleared, nothing moves on the memory port, and the next GEMM is correct."""
        data = self.lay_out(case)
        args = self.gemm_args(case, data)
        # start and wait for done without the driver's final clear of STATUS.done
        await self.driver.gemm(**args)
        await self.driver.write("CTRL", register("CTRL").encode(start=1))  # done left set
        while not (await self.driver.status())["done"]:
            await ClockCycles(self.dut.clk, 10)
        problems = []
        watch = cocotb.start_soon(self._watch_abort())
        await self.driver.abort()
        seen = await with_timeout(watch, 1000 * PERIOD_NS, "ns")
        problems += seen.pop("dropped")
        if any(seen["after"].values()) or any(seen["waiting"].values()) \
                or any(seen["late"].values()):
            problems.append(f"the memory port moved after an idle abort: {seen}")
        status = await self.driver.status()
        if status["busy"] or status["done"] or status["error"]:
            problems.append(f"STATUS after an idle abort: {status}")
        after = await self.run_case(replace(case, seed=case.seed + 1))
        if not after["passed"]:
            problems.append(f"the next GEMM: {after['mismatches']} elements differ")
        return {"passed": not problems, "problems": problems, "idle": True, **seen,
                "case": case.to_json(), "seed": case.seed}

    async def bus_error_case(self, case: GemmCase, area: str) -> dict:
        """Run ``case`` with the first row of ``area`` (a, b, c_in or c) answering SLVERR:
        expect ErrorCode.BUS_ERROR, then a correct GEMM."""
        data = self.lay_out(case)
        row = {"a": case.k, "b": case.n, "c_in": 4 * case.n,
               "c": case.n * (1 if data.requant else 4)}[area]
        self.ram.error_region = range(data.addr[area], data.addr[area] + row)
        self.ram.faults.clear()
        logging.getLogger(f"cocotb.{self.dut._name}.m_axi").setLevel(logging.ERROR)
        try:
            await with_timeout(self.driver.gemm(**self.gemm_args(case, data)),
                               self._timeout_ns(case), "ns")
            got = "NONE"
        except AcceleratorError as exc:
            got = ErrorCode(exc.code).name
        finally:
            self.ram.error_region = None
            logging.getLogger(f"cocotb.{self.dut._name}.m_axi").setLevel(logging.WARNING)
        faults = list(self.ram.faults)
        after = await self.run_case(GemmCase(m=case.m, k=case.k, n=case.n, seed=case.seed + 1))
        passed = got == "BUS_ERROR" and after["passed"]
        slverr = None
        if faults:  # the matrix whose rows the first access answered SLVERR overlaps
            address, length, write = faults[0]
            rows = {"a": (case.m, case.k), "b": (case.k, case.n),
                    "c_in": (case.m, 4 * case.n) if case.accumulate else (0, 0),
                    "c": (case.m, case.n * (1 if data.requant else 4))}
            for name, (count, nbytes) in rows.items():
                start = data.addr[name]
                if any(address < start + r * data.ld[name] + nbytes
                       and start + r * data.ld[name] < address + length for r in range(count)):
                    slverr = {"address": address, "write": write, "matrix": name}
                    break
        return {"passed": passed, "expected": "BUS_ERROR", "got": got, "area": area,
                "next_passed": after["passed"], "case": case.to_json(), "seed": case.seed,
                "slverr": slverr}


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
async def sim_gemm_paused(dut):
    """Each case of ACCEL_PAUSED ({"cases": [GemmCase dicts], "channels": [names]}) with its
    back-pressure on the named AXI channels only (the stall counters' tests), a record each."""
    _needs("ACCEL_PAUSED", "tests/test_accel_verilator.py's stall counter test")
    spec = json.loads(os.environ["ACCEL_PAUSED"])
    tb = AccelTB(dut)
    await tb.reset()
    for fields, channels in zip(spec["cases"], spec["channels"], strict=True):
        case = GemmCase(**fields)
        tb.backpressure(case.backpressure, channels=channels)
        record = await tb.run_case(case, keep_backpressure=True)
        record.update(channels=channels)
        tb.report(record)


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

    # directed GEMMs: what random cases rarely reach (accelerator/model/coverage.py)
    directed_list = directed_cases(tb.config, spec["seed"])
    if spec.get("max_dims"):
        directed_list += max_dim_cases(tb.config, spec["seed"])
    for index, directed in enumerate(directed_list):
        case = directed.case
        try:
            record = await tb.run_case(case, directed=directed)
        except Exception as exc:
            record = {"passed": False, "error": f"{type(exc).__name__}: {exc}",
                      "case": case.to_json(), "seed": case.seed}
            await tb.reset()
        record.update(kind="gemm", name=f"directed {index}: {case.m}x{case.k}x{case.n}",
                      directed=directed.to_json())
        failures += not record["passed"]
        tb.report(record)

    # illegal commands: each sets its error code and the accelerator stays usable
    good = GemmCase(m=3, k=5, n=4, seed=spec["seed"])
    data = make_data(tb.config, good)
    base = {"a": data.addr["a"], "b": data.addr["b"], "c": data.addr["c"],
            "m": 3, "k": 5, "n": 4,
            "lda": data.ld["a"], "ldb": data.ld["b"], "ldc": data.ld["c"]}
    good_writes = []  # the register writes of legal commands, without and with C_in
    for extra in ({}, {"c_in": 0x9000, "ldcin": 16}):
        tb.writes.clear()
        await with_timeout(tb.driver.gemm(**base, **extra, check=False), 100_000, "ns")
        good_writes.append(dict(tb.writes))
    for name, change, code in ILLEGAL_COMMANDS:
        args = dict(base, **change)
        tb.writes.clear()
        try:
            await with_timeout(tb.driver.gemm(**args, check=False), 100_000, "ns")
            got = "NONE"
        except AcceleratorError as exc:
            got = ErrorCode(exc.code).name
        except Exception as exc:
            got = f"{type(exc).__name__}: {exc}"
        passed = got == code
        failures += not passed
        changed = min((sorted(reg for reg, value in tb.writes.items()
                              if reg != "CTRL" and good.get(reg) != value)
                       for good in good_writes), key=len)
        tb.report({"kind": "illegal", "name": name, "passed": passed, "expected": code,
                   "got": got, "changed": changed})

    # AXI error responses: on a read of A, B or C_in, or on a write of C
    for index, area in enumerate(BUS_ERROR_AREAS):
        case = GemmCase(m=2 * tb.config.rows + 1, k=9, n=tb.config.cols + 3,
                        seed=spec["seed"] + index, accumulate=area == "c_in")
        try:
            record = await tb.bus_error_case(case, area)
        except Exception as exc:
            record = {"passed": False, "error": f"{type(exc).__name__}: {exc}", "area": area}
            await tb.reset()
        record.update(kind="bus_error", name=f"SLVERR on {area}")
        failures += not record["passed"]
        tb.report(record)

    # CTRL.reset: a 64x64x64 GEMM aborted 50, 700 and 3,000 cycles in, then some at random
    # points of random GEMMs, under back-pressure (mid-burst); the next GEMM must be correct
    aborts = [(GemmCase(m=64, k=64, n=64, seed=spec["seed"], backpressure=bp), delay)
              for delay, bp in DIRECTED_ABORTS]
    for _ in range(RANDOM_ABORTS):
        for _attempt in range(50):   # a GEMM long enough to be caught running
            case = replace(random_case(tb.config, rng),
                           backpressure=float(rng.choice([0.0, 0.5])))
            model = estimate(tb.config, case.m, case.k, case.n, accumulate=case.accumulate,
                             requant=case.requant).cycles
            if model >= 400:
                break
        aborts.append((case, int(rng.integers(1, model // 2))))
    aborts += [(GemmCase(m=64, k=64, n=64, seed=spec["seed"], backpressure=bp), -1)
               for bp in ABORTS_ON_WRITE]
    for case, delay in aborts:
        try:
            record = await tb.abort_case(case, max(delay, 0), on_write=delay < 0)
        except Exception as exc:
            record = {"passed": False, "error": f"{type(exc).__name__}: {exc}",
                      "case": case.to_json(), "delay": delay}
            await tb.reset()
        record.update(kind="abort", name=(f"CTRL.reset {delay} cycles into " if delay >= 0 else
                                          "CTRL.reset at the first write request of ")
                      + f"{case.m}x{case.k}x{case.n}")
        failures += not record["passed"]
        tb.report(record)

    # CTRL.reset with nothing running
    case = GemmCase(m=tb.config.rows + 1, k=7, n=tb.config.cols + 1, seed=spec["seed"])
    try:
        record = await tb.idle_abort_case(case)
    except Exception as exc:
        record = {"passed": False, "error": f"{type(exc).__name__}: {exc}"}
        await tb.reset()
    record.update(kind="abort", name="CTRL.reset while idle")
    failures += not record["passed"]
    tb.report(record)

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
