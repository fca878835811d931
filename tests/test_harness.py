"""The compiled C++ harness (accelerator/flow/harness.py): the accelerator with its AXI memory,
register master and clock loop in C++, the host driver over ctypes.

The Verilator-marked tests share one 4×4 build (cached by digest under the build root)."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import numpy as np
import pytest

from accelerator.config import AcceleratorConfig
from accelerator.driver.driver import Accelerator, AcceleratorError
from accelerator.driver.harness import HarnessTransport, run_case
from accelerator.driver.transport import Transport
from accelerator.flow import harness as harness_module
from accelerator.flow.harness import (
    CycleLimitError,
    Harness,
    HarnessBusError,
    HarnessError,
    build_harness,
    harness_key,
)
from accelerator.hw.registers import ErrorCode, register
from accelerator.model import reference
from accelerator.model.cases import GemmCase, make_data

CONFIG = AcceleratorConfig()  # 4×4, os, 64-bit AXI


# -- fast: no build ------------------------------------------------------------------------------


def test_the_waves_build_traces_as_accel_doctor_checks():
    """`accel sim --waves` builds the harness with the tracing `accel doctor` tries (VCD: the
    wheel's FST writer needs lz4.h), not a list of its own."""
    from accelerator.flow.toolchain import TRACE_ARGS

    traced = harness_module.harness_build_args(True)
    assert traced == harness_module.harness_build_args(False) + list(TRACE_ARGS)
    assert "--trace-fst" not in traced


def test_missing_library_is_a_clear_error(tmp_path):
    with pytest.raises(HarnessError, match=r"cannot load the harness .*nothing\.so"):
        Harness(tmp_path / "nothing.so")


@pytest.mark.parametrize("bad", [0, -1, True, 1.5])
def test_transport_rejects_bad_cycle_limit(bad):
    with pytest.raises(ValueError, match="max_cycles"):
        HarnessTransport(object(), max_cycles=bad)


def test_every_build_option_changes_the_cache_key(monkeypatch):
    base = harness_key(CONFIG)
    changed = {
        "waves": harness_key(CONFIG, waves=True),
        "compiler_opt": harness_key(CONFIG, compiler_opt="-O3"),
        "config": harness_key(AcceleratorConfig(rows=4, cols=4, axi_data_width=128)),
    }
    monkeypatch.setattr(harness_module, "YOSYS_PASSES", ("proc",))
    changed["yosys passes"] = harness_key(CONFIG)
    monkeypatch.undo()
    original = harness_module.harness_build_args
    monkeypatch.setattr(harness_module, "harness_build_args",
                        lambda waves: [*original(waves), "--noassert"])
    changed["verilator args"] = harness_key(CONFIG)
    monkeypatch.undo()
    for tool in ("_compiler_version", "_yosys_version"):
        monkeypatch.setattr(harness_module, tool, lambda program: "another version")
        changed[tool] = harness_key(CONFIG)
        monkeypatch.undo()
    assert harness_key(CONFIG) == base
    for what, key in changed.items():
        assert key != base, what


class _FakeTools:
    """Stands in for Verilator and make: records each command line; make "compiles" the runtime
    objects only when they are not in obj/ already."""

    def __init__(self):
        self.calls: list[list[str]] = []
        self.compiled: list[str] = []

    def run(self, argv, **kwargs):
        self.calls.append(list(argv))
        if argv[0] == "verilator":
            obj = Path(argv[argv.index("--Mdir") + 1])
            obj.mkdir(parents=True)
            (obj / "Vaccelerator.mk").write_text("")
        else:
            obj = Path(argv[argv.index("-C") + 1])
            for name in ("verilated.o", "verilated_threads.o"):
                if not (obj / name).is_file():
                    (obj / name).write_text("runtime")
                    self.compiled.append(name)
            (obj / "libharness.so").write_text("")
        return subprocess.CompletedProcess(argv, 0)


@pytest.fixture
def fake_tools(monkeypatch):
    harness_key(CONFIG)  # the tools' versions are cached from here on
    tools = _FakeTools()

    def fake_verilog(config, build_dir, env):
        build_dir.mkdir(parents=True, exist_ok=True)
        return build_dir / "accelerator.v"

    monkeypatch.setattr(harness_module, "harness_verilog", fake_verilog)
    monkeypatch.setattr(harness_module.subprocess, "run", tools.run)
    return tools


def test_the_build_uses_only_options_in_the_cache_key(fake_tools, tmp_path):
    """Every flag on the Verilator and make command lines (including those Verilator passes to
    the compiler) comes from the key, so a build cannot change without its key."""
    key = harness_key(CONFIG)
    build_harness(CONFIG, root=tmp_path)
    verilator, make = fake_tools.calls
    fixed = {"verilator", "--cc", "--exe", "-j", "--top-module", "accelerator", "--prefix",
             "Vaccelerator", "--Mdir", "-o", "libharness.so", "-CFLAGS", "-LDFLAGS", "make", "-C",
             "-f", "Vaccelerator.mk"}
    from_key = {*key["args"], *key["cflags"], *key["ldflags"], *key["make"].split()}
    options = [a for a in verilator[1:] + make[1:]
               if a not in fixed and not a.isdigit() and "/" not in a[1:]]
    assert options and set(options) <= from_key, set(options) - from_key
    assert from_key <= set(verilator) | set(make)


def test_runtime_objects_are_compiled_once_per_tools_and_flags(fake_tools, tmp_path):
    first = build_harness(CONFIG, root=tmp_path)
    assert fake_tools.compiled == ["verilated.o", "verilated_threads.o"]
    other = build_harness(AcceleratorConfig(rows=2, cols=2), root=tmp_path)  # same flags
    assert other != first and len(fake_tools.compiled) == 2
    assert "runtime objects reused" in (other.parent / "build.log").read_text()
    build_harness(CONFIG, root=tmp_path, compiler_opt="-O1")  # other flags: compiled again
    assert len(fake_tools.compiled) == 4
    assert len(list((tmp_path / "harness").glob("runtime_*"))) == 2


# -- Verilator -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def library(build_root):
    return build_harness(CONFIG, root=build_root)


@pytest.fixture
def harness(library):
    with Harness(library) as h:
        h.reset()
        yield h


@pytest.mark.verilator
def test_build_is_cached(library, build_root):
    assert build_harness(CONFIG, root=build_root) == library
    assert library.name == "libharness.so" and CONFIG.digest in library.parent.name


@pytest.mark.verilator
def test_input_checks(harness):
    with pytest.raises(ValueError, match=r"addr = 0x100000000 is out of range"):
        harness.mem_write(1 << 32, b"x")
    with pytest.raises(ValueError, match="end past the 32-bit address space"):
        harness.mem_write(0xFFFF_FFFF, b"xy")
    with pytest.raises(ValueError, match=r"n = 0x2 is out of range"):
        harness.mem_read(0xFFFF_FFFF, 2)
    with pytest.raises(ValueError, match="addr = -1"):
        harness.reg_read(-1)
    with pytest.raises(ValueError, match="value = 0x100000000"):
        harness.reg_write(0, 1 << 32)
    with pytest.raises(ValueError, match="probability = 1"):
        harness.set_backpressure(1)
    with pytest.raises(ValueError, match="channel = 'x'"):
        harness.set_pause_pattern("x", [True])
    with pytest.raises(ValueError, match="hi = 0x0 is out of range"):
        harness.set_error_range(16, 0)
    with pytest.raises(ValueError, match="cycles = -1 is out of range"):
        harness.set_register_wait(-1)
    with pytest.raises(ValueError, match="cycles = 0x10001 is out of range"):
        harness.set_register_wait((1 << 16) + 1)
    with pytest.raises(ValueError, match="limit = 0"):
        harness.run_until_irq(0)
    with pytest.raises(HarnessError, match="built without waveforms"):
        harness.open_waves("x.vcd")


@pytest.mark.verilator
def test_transport_is_a_transport_and_identifies(harness):
    transport = HarnessTransport(harness)
    assert isinstance(transport, Transport)
    assert asyncio.run(Accelerator(transport).identify()) == CONFIG
    assert harness.data_bytes == CONFIG.axi_bytes


@pytest.mark.verilator
def test_memory_far_apart(harness):
    """Pages allocated on touch: near 1 GiB, near 0xF000_0000 and the last byte of the space."""
    for addr in (0x3FFF_FFF0, 0xF000_0000 - 3, 0xFFFF_FFF0):
        payload = bytes(range(16, 32))
        harness.mem_write(addr, payload)
        assert harness.mem_read(addr, 16) == payload
    assert harness.mem_read(0x8000_0000, 8) == bytes(8)  # never written: zeros


@pytest.mark.verilator
@pytest.mark.parametrize("case", [
    GemmCase(m=1, k=1, n=1, seed=3),
    GemmCase(m=37, k=29, n=41, seed=7),
    GemmCase(m=9, k=70, n=6, seed=11, accumulate=True, requant=True, values="extreme"),
], ids=["1x1x1", "37x29x41", "acc_requant"])
def test_gemm_bit_exact(harness, case):
    record = run_case(harness, CONFIG, case)
    data = make_data(CONFIG, case)
    acc = reference.gemm(data.a, data.b, data.c_in, acc_width=CONFIG.acc_width,
                         in_width=CONFIG.in_width)
    expected = data.requant.apply(acc) if data.requant else acc
    np.testing.assert_array_equal(record["result"], expected)
    assert record["passed"] and record["mismatches"] == 0
    assert record["counters"]["cycles"] == record["cycles"] > 0
    assert record["counters"]["mac_cycles"] >= -(-case.m * case.k * case.n // CONFIG.pes)
    assert record["wall_cycles"] > record["cycles"]


def _gemm_at(harness, a, b, c, m=5, k=7, n=6, seed=5):
    rng = np.random.default_rng(seed)
    A = rng.integers(-128, 128, (m, k), dtype=np.int8)
    B = rng.integers(-128, 128, (k, n), dtype=np.int8)
    harness.mem_write(a, A.tobytes())
    harness.mem_write(b, B.tobytes())
    driver = Accelerator(HarnessTransport(harness))
    counters = asyncio.run(driver.gemm(a=a, b=b, c=c, m=m, k=k, n=n, lda=k, ldb=n, ldc=4 * n,
                                       irq=True))
    got = np.frombuffer(harness.mem_read(c, 4 * m * n), dtype=np.int32).reshape(m, n)
    return got, reference.gemm(A, B), counters


@pytest.mark.verilator
def test_gemm_far_apart_in_the_address_space(harness):
    got, expected, _ = _gemm_at(harness, a=0x3FFF_FF00, b=0x4000_1003, c=0xF000_0000)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.verilator
@pytest.mark.parametrize("wait", [0, 1, 5, 1000])
def test_register_answers_held(harness, wait):
    """RREADY and BREADY raised in the ``wait``-th cycle that RVALID or BVALID is seen: the
    same values, each access ``wait - 1`` cycles longer (the slave holds its answer), and an
    unmapped offset still answers SLVERR."""
    start = harness.cycle
    harness.reg_write(0x20, 0x1234_5678)   # A_ADDR
    assert harness.reg_read(0x20) == 0x1234_5678
    plain = harness.cycle - start
    harness.set_register_wait(wait)
    start = harness.cycle
    harness.reg_write(0x20, 0x0BAD_CAFE)
    assert harness.reg_read(0x20) == 0x0BAD_CAFE
    assert harness.cycle - start == plain + 2 * max(wait - 1, 0)
    assert harness.reg_read_resp(0x70)[1] == 2 and harness.reg_write_resp(0x70, 1) == 2


@pytest.mark.verilator
def test_write_beats_ahead_of_their_addresses(harness):
    """Two writes with their W beats first: the slave holds the second beat off until the first
    write is answered, so each register gets its own value; an unmapped one answers SLVERR."""
    a_addr, b_addr = register("A_ADDR").offset, register("B_ADDR").offset
    assert harness.reg_write_pair_resp((a_addr, 0x1234_5678), (b_addr, 0x9ABC_DEF0)) == (0, 0)
    assert (harness.reg_read(a_addr), harness.reg_read(b_addr)) == (0x1234_5678, 0x9ABC_DEF0)
    assert harness.reg_write_pair_resp((0x70, 1), (a_addr, 7)) == (2, 0)
    assert harness.reg_read(a_addr) == 7


@pytest.mark.verilator
def test_write_address_ahead_of_its_beat(harness):
    """A write whose W beat comes cycles after its address: answered after the beat, with the
    beat's value."""
    a_addr = register("A_ADDR").offset
    harness.reg_write(register("B_ADDR").offset, 0x0BAD_0BAD)
    for delay in (0, 1, 5):
        assert harness.reg_write_late_w_resp(a_addr, 0x1234_0000 + delay, delay) == 0
        assert harness.reg_read(a_addr) == 0x1234_0000 + delay
    assert harness.reg_write_late_w_resp(0x70, 1, 3) == 2


@pytest.mark.verilator
def test_partial_strobes(harness):
    """docs/registers.md: a byte whose strobe is low is not written in an rw register and is
    written as 0 in a w1c or wp field."""
    a_addr = register("A_ADDR").offset
    harness.reg_write(a_addr, 0x1122_3344)
    for strb, expected in ((0x1, 0x1122_33DD), (0x6, 0x11BB_CCDD), (0x8, 0xAABB_CCDD),
                           (0x0, 0xAABB_CCDD)):
        harness.reg_write(a_addr, 0xAABB_CCDD if strb != 0x1 else 0x5566_77DD, strb)
        assert harness.reg_read(a_addr) == expected, hex(strb)
    ctrl, status = register("CTRL"), register("STATUS")
    for name in ("M", "K", "N"):
        harness.reg_write(register(name).offset, 0)
    harness.reg_write(ctrl.offset, ctrl.encode(start=1), 0xE)  # start's byte not strobed
    harness.tick(200)
    assert harness.reg_read(status.offset) == 0
    harness.reg_write(ctrl.offset, ctrl.encode(start=1), 0x1)  # M = 0: ZERO_DIM
    harness.tick(200)
    ended = status.encode(done=1, error=ErrorCode.ZERO_DIM)
    assert harness.reg_read(status.offset) == ended
    harness.reg_write(status.offset, status.encode(done=1), 0xE)  # done's byte not strobed
    assert harness.reg_read(status.offset) == ended
    harness.reg_write(status.offset, status.encode(done=1), 0x1)
    assert status.decode(harness.reg_read(status.offset))["done"] == 0


@pytest.mark.verilator
def test_slverr_range_gives_bus_error_and_the_accelerator_stays_usable(harness):
    harness.set_error_range(0x2_0000, 0x2_1000)
    driver = Accelerator(HarnessTransport(harness))
    harness.mem_write(0x1000, bytes(64))
    with pytest.raises(AcceleratorError) as info:  # B read from the error range
        asyncio.run(driver.gemm(a=0x1000, b=0x2_0000, c=0x4000, m=4, k=4, n=4, lda=4, ldb=4,
                                ldc=16, irq=True))
    assert info.value.code == ErrorCode.BUS_ERROR
    # a write into the range is not committed (the poison stays) and is an error too
    harness.mem_write(0x2_0800, b"\xa5" * 64)
    with pytest.raises(AcceleratorError) as info:
        asyncio.run(driver.gemm(a=0x1000, b=0x1000, c=0x2_0800, m=4, k=4, n=4, lda=4, ldb=4,
                                ldc=16, irq=True))
    assert info.value.code == ErrorCode.BUS_ERROR
    assert harness.mem_read(0x2_0800, 64) == b"\xa5" * 64
    assert asyncio.run(driver.status())["busy"] is False
    got, expected, _ = _gemm_at(harness, a=0x8000, b=0x9000, c=0xA000)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.verilator
def test_cycle_limit_raises_a_clear_error(harness):
    transport = HarnessTransport(harness, max_cycles=50)
    driver = Accelerator(transport)
    with pytest.raises(CycleLimitError, match="did not raise irq within 50 cycles"):
        asyncio.run(driver.gemm(a=0x1000, b=0x2000, c=0x4000, m=64, k=64, n=64, lda=64,
                                ldb=64, ldc=256, irq=True))
    assert harness.run_until_irq(1_000_000) > 0  # the GEMM was still running, and finishes
    asyncio.run(driver.write("STATUS", register("STATUS").encode(done=1)))
    assert not harness.irq


@pytest.mark.verilator
def test_register_errors(harness):
    with pytest.raises(HarnessBusError) as info:
        harness.reg_write(0xFFC, 0)  # past the register map
    assert info.value.resp in (2, 3)


@pytest.mark.verilator
def test_backpressure_and_latency_keep_results_right(harness):
    base = run_case(harness, CONFIG, GemmCase(m=21, k=19, n=23, seed=9))
    slow = run_case(harness, CONFIG, GemmCase(m=21, k=19, n=23, seed=9, backpressure=0.5))
    assert base["passed"] and slow["passed"]
    assert slow["cycles"] > base["cycles"]
    harness.set_backpressure(0.0)
    harness.set_latency(read=20, write=15)
    late = run_case(harness, CONFIG, GemmCase(m=21, k=19, n=23, seed=9))
    assert late["passed"] and late["cycles"] > base["cycles"]
    # the same seed gives the same pauses, so the same cycles
    harness.set_latency(0, 0)
    again = run_case(harness, CONFIG, GemmCase(m=21, k=19, n=23, seed=9, backpressure=0.5))
    assert again["cycles"] == slow["cycles"]


@pytest.mark.verilator
@pytest.mark.parametrize("width", [32, 128, 256])
def test_every_axi_width(build_root, width):
    """The memory at every data width the config allows (above 64 bits Verilator's ports are
    arrays of words): a GEMM with unaligned rows and strided C, bit-exact."""
    config = AcceleratorConfig(axi_data_width=width)
    with Harness(build_harness(config, root=build_root)) as h:
        h.reset()
        assert h.data_bytes == width // 8
        record = run_case(h, config, GemmCase(m=11, k=37, n=13, seed=width, accumulate=True))
        assert record["passed"] and record["mismatches"] == 0
        assert record["counters"]["dma_wr_bytes"] == 11 * 13 * 4
        got, expected, _ = _gemm_at(h, a=0x3FFF_FFF1, b=0xF000_0003, c=0xF000_1000)
        np.testing.assert_array_equal(got, expected)
