# amaranth: UnusedElaboratable=no
"""RegisterBlock in the Amaranth simulator, driven by a small AXI4-Lite master written here."""

from __future__ import annotations

import random
import re

import pytest
from amaranth.back import verilog
from amaranth.hdl import Shape, unsigned
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from accelerator.config import AcceleratorConfig
from accelerator.hw.axil import AXI4LiteSignature, AxiResp
from accelerator.hw.registers import (
    ADDR_WIDTH,
    COUNTERS,
    ID_BLOCK,
    MAP_SIZE,
    REGISTERS,
    ErrorCode,
    RegisterBlock,
    field,
    id_values,
    memory_backed,
    offset,
    register,
)

OKAY, SLVERR = AxiResp.OKAY, AxiResp.SLVERR
RW = [r for r in REGISTERS if r.access == "rw"]
START = register("CTRL").encode(start=1)
RESET = register("CTRL").encode(reset=1)
DONE = register("STATUS").encode(done=1)
LIMIT = 100  # cycles any handshake may take before the test calls it a hang


# -- a minimal AXI4-Lite master ------------------------------------------------------------------


async def axil_write(ctx, dut, addr, data, strb=0xF, *, aw_delay=0, w_delay=0, b_delay=0,
                     during=None):
    """One write. AW is offered from cycle ``aw_delay``, W from ``w_delay``; ``bready`` stays
    low for ``b_delay`` cycles after ``bvalid`` rises (checking that B and the slave's state hold).
    ``during(ctx)`` runs right after the edge that completes both AW and W.
    Returns ``(bresp, {"aw": cycle, "w": cycle})``, the cycles at which AW and W were accepted.
    """
    bus = dut.s_axil
    ctx.set(bus.awaddr, addr)
    ctx.set(bus.wdata, data)
    ctx.set(bus.wstrb, strb)
    ctx.set(bus.bready, 0)
    accepted = {}
    cycle = 0
    while len(accepted) < 2:
        ctx.set(bus.awvalid, "aw" not in accepted and cycle >= aw_delay)
        ctx.set(bus.wvalid, "w" not in accepted and cycle >= w_delay)
        aw_fire = ctx.get(bus.awvalid) and ctx.get(bus.awready)
        w_fire = ctx.get(bus.wvalid) and ctx.get(bus.wready)
        await ctx.tick()
        if aw_fire:
            accepted["aw"] = cycle
        if w_fire:
            accepted["w"] = cycle
        cycle += 1
        assert cycle < LIMIT, "AW/W handshake hangs"
    ctx.set(bus.awvalid, 0)
    ctx.set(bus.wvalid, 0)
    if during is not None:
        await during(ctx)
    for _ in range(LIMIT):
        if ctx.get(bus.bvalid):
            break
        await ctx.tick()
    else:
        raise AssertionError("bvalid never rises")
    resp = ctx.get(bus.bresp)
    for _ in range(b_delay):  # back-pressure: B and the one-outstanding rule must hold
        await ctx.tick()
        assert ctx.get(bus.bvalid) and ctx.get(bus.bresp) == resp
        assert not ctx.get(bus.awready) and not ctx.get(bus.wready)
    ctx.set(bus.bready, 1)
    await ctx.tick()
    ctx.set(bus.bready, 0)
    assert not ctx.get(bus.bvalid)
    return resp, accepted


async def axil_read(ctx, dut, addr, *, ar_delay=0, r_delay=0, while_held=None):
    """One read; ``rready`` stays low for ``r_delay`` cycles after ``rvalid`` rises, during which
    ``while_held(ctx)`` may change the hardware inputs. Returns ``(rdata, rresp)``."""
    bus = dut.s_axil
    ctx.set(bus.araddr, addr)
    ctx.set(bus.rready, 0)
    for _ in range(ar_delay):
        await ctx.tick()
    ctx.set(bus.arvalid, 1)
    for _ in range(LIMIT):
        fire = ctx.get(bus.arready)
        await ctx.tick()
        if fire:
            break
    else:
        raise AssertionError("AR handshake hangs")
    ctx.set(bus.arvalid, 0)
    for _ in range(LIMIT):
        if ctx.get(bus.rvalid):
            break
        await ctx.tick()
    else:
        raise AssertionError("rvalid never rises")
    data, resp = ctx.get(bus.rdata), ctx.get(bus.rresp)
    for i in range(r_delay):
        if while_held is not None:
            await while_held(ctx, i)
        await ctx.tick()
        assert ctx.get(bus.rvalid) and ctx.get(bus.rdata) == data and ctx.get(bus.rresp) == resp
        assert not ctx.get(bus.arready)
    ctx.set(bus.rready, 1)
    await ctx.tick()
    ctx.set(bus.rready, 0)
    assert not ctx.get(bus.rvalid)
    return data, resp


async def write_ok(ctx, dut, name, value, **kwargs):
    resp, _ = await axil_write(ctx, dut, offset(name), value, **kwargs)
    assert resp == OKAY, f"write {name}"


async def read_ok(ctx, dut, name, **kwargs):
    data, resp = await axil_read(ctx, dut, offset(name), **kwargs)
    assert resp == OKAY, f"read {name}"
    return data


def simulate(dut, bench, monitor=None):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    if monitor is not None:
        sim.add_testbench(monitor, background=True)
    sim.run()


class PulseMonitor:
    """Records the cycles (counted from 0) in which each watched output is high."""

    def __init__(self, dut, *names):
        self.dut = dut
        self.names = names
        self.high = {name: [] for name in names}
        self.cycle = 0

    async def run(self, ctx):
        while True:
            await ctx.tick()
            self.cycle += 1
            for name in self.names:
                if ctx.get(getattr(self.dut, name)):
                    self.high[name].append(self.cycle)


@pytest.fixture
def dut():
    return RegisterBlock(AcceleratorConfig())


# -- the interface ------------------------------------------------------------------------------


def test_axil_signature():
    sig = AXI4LiteSignature(addr_width=12)
    assert sig == AXI4LiteSignature(12, data_width=32)
    assert sig != AXI4LiteSignature(addr_width=13)
    assert sig != AXI4LiteSignature(addr_width=12, data_width=64)
    assert repr(sig) == "AXI4LiteSignature(addr_width=12, data_width=32)"
    assert list(sig.members) == [
        "awaddr", "awprot", "awvalid", "awready", "wdata", "wstrb", "wvalid", "wready",
        "bresp", "bvalid", "bready", "araddr", "arprot", "arvalid", "arready",
        "rdata", "rresp", "rvalid", "rready"]
    from_master = {"awaddr", "awprot", "awvalid", "wdata", "wstrb", "wvalid", "bready",
                   "araddr", "arprot", "arvalid", "rready"}
    for name, member in sig.members.items():
        assert member.flow == (In if name in from_master else Out), name
    assert Shape.cast(sig.members["wstrb"].shape).width == 4
    assert Shape.cast(sig.members["awaddr"].shape).width == 12
    wide = AXI4LiteSignature(addr_width=32, data_width=64)
    assert Shape.cast(wide.members["wstrb"].shape).width == 8
    assert Shape.cast(wide.members["rdata"].shape).width == 64
    with pytest.raises(ValueError, match=r"addr_width = 2 is out of range"):
        AXI4LiteSignature(addr_width=2)
    with pytest.raises(ValueError, match=r"data_width = 16 is not allowed"):
        AXI4LiteSignature(addr_width=8, data_width=16)


def test_ports_and_verilog_names(dut):
    members = dut.signature.members

    def port(name):
        return members[name].flow, Shape.cast(members[name].shape)

    assert members["s_axil"] == Out(AXI4LiteSignature(addr_width=ADDR_WIDTH))
    for reg in RW:
        assert port(reg.port) == (Out, unsigned(32)), reg.name
    for name in COUNTERS:
        assert port(name.lower()) == (In, unsigned(32)), name
    assert port("busy") == port("set_done") == (In, unsigned(1))
    assert port("error_code") == (In, unsigned(max(ErrorCode).bit_length()))  # 3 bits
    assert port("start") == port("abort") == port("irq") == (Out, unsigned(1))
    assert len(members) == 1 + len(RW) + len(COUNTERS) + 6
    text = verilog.convert(dut, name="regs")
    ports = set(re.findall(r"^\s*(?:input|output)\s+(?:\[\d+:0\]\s+)?(\w+)", text, re.M))
    for name in AXI4LiteSignature(addr_width=ADDR_WIDTH).members:
        assert f"s_axil__{name}" in ports
    assert {"a_addr", "mode", "cycles", "start", "set_done", "irq"} <= ports


def test_addr_width_too_small():
    with pytest.raises(ValueError, match="addr_width = 6 is too small"):
        RegisterBlock(AcceleratorConfig(), addr_width=6)


# -- registers ----------------------------------------------------------------------------------


def test_rw_registers(dut):
    rng = random.Random(1)
    values = {reg.name: rng.getrandbits(32) for reg in RW}

    async def bench(ctx):
        for reg in RW:  # reset values
            assert ctx.get(getattr(dut, reg.port)) == reg.reset
            assert await read_ok(ctx, dut, reg.name) == reg.reset
        for reg in RW:
            await write_ok(ctx, dut, reg.name, values[reg.name])
            assert ctx.get(getattr(dut, reg.port)) == values[reg.name] & reg.mask, reg.name
        for reg in RW:  # no register overwrote another
            assert await read_ok(ctx, dut, reg.name) == values[reg.name] & reg.mask, reg.name
            assert ctx.get(getattr(dut, reg.port)) == values[reg.name] & reg.mask, reg.name

    simulate(dut, bench)


def test_memory_backed_registers():
    """With the compact engine the rw registers but MODE are in a block RAM: they read back as
    written (bits outside fields 0, byte strobes honoured, writes while busy too), the engine
    reads them through cmd_read/cmd_index (data a cycle later), and a bus read waits while the
    engine has the read port."""
    config = AcceleratorConfig(engine="compact", requant_unit=False)
    dut = RegisterBlock(config)
    stored = memory_backed(config)
    assert "MODE" not in stored and len(stored) == len(RW) - 1
    assert not hasattr(dut, "a_addr") and hasattr(dut, "mode")
    rng = random.Random(2)
    values = {name: rng.getrandbits(32) for name in stored}

    async def cmd_read(ctx, name):
        ctx.set(dut.cmd_read, 1)
        ctx.set(dut.cmd_index, offset(name) >> 2)
        await ctx.tick()
        ctx.set(dut.cmd_read, 0)
        return ctx.get(dut.cmd_data)

    async def bench(ctx):
        for name in stored:  # reset values
            assert await read_ok(ctx, dut, name) == register(name).reset, name
        ctx.set(dut.busy, 1)
        for name in stored:
            await write_ok(ctx, dut, name, values[name])
        ctx.set(dut.busy, 0)
        for name in stored:
            expected = values[name] & register(name).mask
            assert await read_ok(ctx, dut, name) == expected, name
            assert await cmd_read(ctx, name) == expected, name
        # byte strobes: only byte 1 of A_ADDR changes
        await write_ok(ctx, dut, "A_ADDR", 0xAABBCCDD, strb=0b0010)
        expected = (values["A_ADDR"] & ~0xFF00) | 0xCC00
        assert await read_ok(ctx, dut, "A_ADDR") == expected
        # the engine's read keeps the bus's AR waiting, and each gets its own data
        ctx.set(dut.cmd_read, 1)
        ctx.set(dut.cmd_index, offset("LDB") >> 2)
        ctx.set(dut.s_axil.araddr, offset("K"))
        ctx.set(dut.s_axil.arvalid, 1)
        assert not ctx.get(dut.s_axil.arready)
        await ctx.tick()
        ctx.set(dut.cmd_read, 0)
        assert ctx.get(dut.cmd_data) == values["LDB"]
        ctx.set(dut.s_axil.arvalid, 0)
        assert await read_ok(ctx, dut, "K") == values["K"]
        assert await read_ok(ctx, dut, "ID") == id_values(config)["ID"]
        # MODE is still a port
        await write_ok(ctx, dut, "MODE", register("MODE").encode(accumulate=1))
        assert ctx.get(dut.mode) == register("MODE").encode(accumulate=1)

    simulate(dut, bench)


def test_byte_strobes(dut):
    async def bench(ctx):
        await write_ok(ctx, dut, "LDA", 0x11223344)
        await write_ok(ctx, dut, "LDA", 0xAABBCCDD, strb=0b0101)
        assert await read_ok(ctx, dut, "LDA") == 0x11BB33DD
        await write_ok(ctx, dut, "LDA", 0x55667788, strb=0)
        assert await read_ok(ctx, dut, "LDA") == 0x11BB33DD
        ctx.set(dut.set_done, 1)
        await ctx.tick()
        ctx.set(dut.set_done, 0)
        await write_ok(ctx, dut, "STATUS", DONE, strb=0b1110)  # done's byte not strobed
        assert field("STATUS", "done").extract(await read_ok(ctx, dut, "STATUS"))
        await write_ok(ctx, dut, "STATUS", DONE, strb=0b0001)
        assert not field("STATUS", "done").extract(await read_ok(ctx, dut, "STATUS"))

    simulate(dut, bench)


@pytest.mark.parametrize("config", [AcceleratorConfig(),
                                    AcceleratorConfig(rows=8, cols=2, dataflow="ws",
                                                      requant_unit=False)],
                         ids=lambda c: c.name)
def test_id_block(config):
    dut = RegisterBlock(config)
    expected = id_values(config)

    async def bench(ctx):
        for name in ID_BLOCK:
            assert await read_ok(ctx, dut, name) == expected[name], name

    simulate(dut, bench)


def test_ro_registers_read_the_hardware(dut):
    async def bench(ctx):
        for i, name in enumerate(COUNTERS):
            ctx.set(getattr(dut, name.lower()), 0x1000_0001 * (i + 1))
        for i, name in enumerate(COUNTERS):
            assert await read_ok(ctx, dut, name) == 0x1000_0001 * (i + 1)
        ctx.set(dut.busy, 1)
        assert await read_ok(ctx, dut, "STATUS") == register("STATUS").encode(busy=1)
        ctx.set(dut.busy, 0)
        assert await read_ok(ctx, dut, "STATUS") == 0
        assert await read_ok(ctx, dut, "CTRL") == 0  # write-pulse registers read as 0

    simulate(dut, bench)


def test_writes_to_ro_registers_are_ignored(dut):
    async def bench(ctx):
        ctx.set(dut.cycles, 1234)
        ctx.set(dut.busy, 1)
        for name in (*ID_BLOCK, *COUNTERS, "STATUS"):
            before = await read_ok(ctx, dut, name)
            await write_ok(ctx, dut, name, 0xFFFF_FFFD)  # every bit but STATUS.done
            assert await read_ok(ctx, dut, name) == before, name
        for reg in RW:
            assert ctx.get(getattr(dut, reg.port)) == 0, reg.name
        assert await read_ok(ctx, dut, "CYCLES") == 1234

    simulate(dut, bench)


# -- start, abort, done, irq --------------------------------------------------------------------


def test_start_and_abort_are_one_cycle_pulses(dut):
    mon = PulseMonitor(dut, "start", "abort")

    async def bench(ctx):
        await write_ok(ctx, dut, "CTRL", START)
        await ctx.tick().repeat(3)
        assert len(mon.high["start"]) == 1 and mon.high["abort"] == []
        await write_ok(ctx, dut, "CTRL", 0)  # writing 0 starts nothing
        await write_ok(ctx, dut, "MODE", 0xF)  # nor does another register
        await ctx.tick().repeat(3)
        assert len(mon.high["start"]) == 1
        ctx.set(dut.busy, 1)
        await write_ok(ctx, dut, "CTRL", START)  # dropped while busy
        await ctx.tick().repeat(3)
        assert len(mon.high["start"]) == 1
        await write_ok(ctx, dut, "CTRL", RESET)  # abort works while busy
        await ctx.tick().repeat(3)
        assert len(mon.high["abort"]) == 1 and len(mon.high["start"]) == 1
        ctx.set(dut.busy, 0)
        # both at once: the abort, and no start (the engine is reset as it would start)
        await write_ok(ctx, dut, "CTRL", START | RESET)
        await ctx.tick().repeat(3)
        assert len(mon.high["start"]) == 1 and len(mon.high["abort"]) == 2

    simulate(dut, bench, mon.run)


async def finish(ctx, dut, code):
    ctx.set(dut.error_code, code)
    ctx.set(dut.set_done, 1)
    await ctx.tick()
    ctx.set(dut.set_done, 0)
    ctx.set(dut.error_code, 0)  # sampled only with set_done


def decode_status(value):
    return register("STATUS").decode(value)


def test_done_error_and_w1c(dut):
    async def bench(ctx):
        await finish(ctx, dut, 5)
        assert decode_status(await read_ok(ctx, dut, "STATUS")) == \
            {"busy": 0, "done": 1, "error": 5}
        await write_ok(ctx, dut, "STATUS", ~DONE & 0xFFFF_FFFF)  # writing 0 to done: no effect
        assert decode_status(await read_ok(ctx, dut, "STATUS"))["done"] == 1
        await write_ok(ctx, dut, "STATUS", DONE)  # write 1 to clear; error stays
        assert decode_status(await read_ok(ctx, dut, "STATUS")) == \
            {"busy": 0, "done": 0, "error": 5}
        await finish(ctx, dut, 3)
        await write_ok(ctx, dut, "CTRL", START)  # start clears done and error
        assert decode_status(await read_ok(ctx, dut, "STATUS")) == \
            {"busy": 0, "done": 0, "error": 0}
        await finish(ctx, dut, 0)
        assert decode_status(await read_ok(ctx, dut, "STATUS")) == \
            {"busy": 0, "done": 1, "error": 0}
        await finish(ctx, dut, 6)
        await write_ok(ctx, dut, "CTRL", RESET)  # so does reset
        assert decode_status(await read_ok(ctx, dut, "STATUS")) == \
            {"busy": 0, "done": 0, "error": 0}

    simulate(dut, bench)


def test_set_done_wins_over_a_clear_in_the_same_cycle(dut):
    async def bench(ctx):
        await finish(ctx, dut, 1)

        async def during(ctx):  # the cycle in which the write is applied
            await finish(ctx, dut, 2)

        await write_ok(ctx, dut, "STATUS", DONE, during=during)
        assert decode_status(await read_ok(ctx, dut, "STATUS")) == \
            {"busy": 0, "done": 1, "error": 2}

    simulate(dut, bench)


def test_irq(dut):
    async def bench(ctx):
        assert not ctx.get(dut.irq)
        await finish(ctx, dut, 0)
        assert not ctx.get(dut.irq)  # irq_enable is 0
        await write_ok(ctx, dut, "MODE", register("MODE").encode(irq_enable=1))
        assert ctx.get(dut.irq)
        await write_ok(ctx, dut, "STATUS", DONE)
        assert not ctx.get(dut.irq)
        await finish(ctx, dut, 4)
        assert ctx.get(dut.irq)
        await write_ok(ctx, dut, "MODE", 0)
        assert not ctx.get(dut.irq)

    simulate(dut, bench)


# -- the bus ------------------------------------------------------------------------------------


def test_unmapped_addresses(dut):
    async def bench(ctx):
        for addr in (MAP_SIZE, MAP_SIZE + 4, (1 << ADDR_WIDTH) - 4):
            assert await axil_read(ctx, dut, addr) == (0, SLVERR)
            resp, _ = await axil_write(ctx, dut, addr, 0xFFFF_FFFF)
            assert resp == SLVERR
        for reg in RW:
            assert ctx.get(getattr(dut, reg.port)) == 0, reg.name
        # Address bits [1:0] are ignored.
        resp, _ = await axil_write(ctx, dut, offset("M") + 3, 77)
        assert resp == OKAY and ctx.get(dut.m) == 77

    simulate(dut, bench)


@pytest.mark.parametrize("aw_delay, w_delay", [(0, 0), (0, 6), (6, 0), (3, 4)],
                         ids=["together", "aw-first", "w-first", "aw-then-w"])
def test_aw_and_w_in_either_order(dut, aw_delay, w_delay):
    async def bench(ctx):
        for i, reg in enumerate(RW[:3]):
            value = 0x0101_0101 * (i + 1)
            resp, accepted = await axil_write(ctx, dut, reg.offset, value,
                                              aw_delay=aw_delay, w_delay=w_delay)
            assert resp == OKAY
            # Each channel is accepted as soon as it is offered, without waiting for the other.
            assert accepted == {"aw": aw_delay, "w": w_delay}
            assert ctx.get(getattr(dut, reg.port)) == value & reg.mask

    simulate(dut, bench)


def test_write_waits_for_both_channels(dut):
    async def bench(ctx):
        bus = dut.s_axil
        ctx.set(bus.awaddr, offset("K"))
        ctx.set(bus.awvalid, 1)
        await ctx.tick()  # AW accepted
        ctx.set(bus.awvalid, 0)
        for _ in range(5):
            await ctx.tick()
            assert not ctx.get(bus.bvalid) and ctx.get(dut.k) == 0
            assert not ctx.get(bus.awready)  # one write at a time
            assert ctx.get(bus.wready)
        ctx.set(bus.wdata, 99)
        ctx.set(bus.wstrb, 0xF)
        ctx.set(bus.wvalid, 1)
        await ctx.tick()
        ctx.set(bus.wvalid, 0)
        await ctx.tick()
        assert ctx.get(bus.bvalid) and ctx.get(dut.k) == 99
        ctx.set(bus.bready, 1)
        await ctx.tick()
        ctx.set(bus.bready, 0)
        assert not ctx.get(bus.bvalid)

    simulate(dut, bench)


def test_b_back_pressure(dut):
    async def bench(ctx):
        resp, _ = await axil_write(ctx, dut, offset("N"), 7, b_delay=6)
        assert resp == OKAY
        resp, _ = await axil_write(ctx, dut, MAP_SIZE, 7, b_delay=3)
        assert resp == SLVERR
        assert await read_ok(ctx, dut, "N") == 7

    simulate(dut, bench)


def test_r_back_pressure(dut):
    async def change_inputs(ctx, i):
        ctx.set(dut.cycles, 1000 + i)

    async def bench(ctx):
        ctx.set(dut.cycles, 42)
        data = await read_ok(ctx, dut, "CYCLES", r_delay=6, while_held=change_inputs)
        assert data == 42  # the value at the AR handshake, held while rready is low
        assert await read_ok(ctx, dut, "CYCLES", ar_delay=2) == 1005
        data, resp = await axil_read(ctx, dut, MAP_SIZE, r_delay=3)
        assert (data, resp) == (0, SLVERR)

    simulate(dut, bench)


def test_read_and_write_at_the_same_time(dut):
    async def bench(ctx):
        bus = dut.s_axil
        await write_ok(ctx, dut, "LDB", 5)
        ctx.set(bus.araddr, offset("LDB"))
        ctx.set(bus.arvalid, 1)
        ctx.set(bus.awaddr, offset("LDB"))
        ctx.set(bus.awvalid, 1)
        ctx.set(bus.wdata, 6)
        ctx.set(bus.wstrb, 0xF)
        ctx.set(bus.wvalid, 1)
        assert ctx.get(bus.arready) and ctx.get(bus.awready) and ctx.get(bus.wready)
        await ctx.tick()
        ctx.set(bus.arvalid, 0)
        ctx.set(bus.awvalid, 0)
        ctx.set(bus.wvalid, 0)
        assert ctx.get(bus.rvalid) and ctx.get(bus.rdata) == 5  # read before the write
        ctx.set(bus.rready, 1)
        ctx.set(bus.bready, 1)
        await ctx.tick()
        assert ctx.get(bus.bvalid)
        await ctx.tick()
        ctx.set(bus.rready, 0)
        ctx.set(bus.bready, 0)
        assert await read_ok(ctx, dut, "LDB") == 6

    simulate(dut, bench)
