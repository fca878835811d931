"""The register slices in Amaranth's simulator (AXI4-Lite, every channel; AXI4, R and W):
every transfer passes in order and unchanged, and no ready or valid depends on the other side
in the same cycle."""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from accelerator.hw.axi import AXI4Signature, AxiSlice
from accelerator.hw.axil import _CHANNELS, AxiLiteSlice


@pytest.mark.parametrize("seed", [1, 2])
def test_slice_passes_every_transfer_in_order(seed):
    dut = AxiLiteSlice()
    rng = random.Random(seed)
    count = 40
    sent = {ch: [] for ch, _, _ in _CHANNELS}
    got = {ch: [] for ch, _, _ in _CHANNELS}

    def ends(forward):
        return (dut.s_axil, dut.m_axil) if forward else (dut.m_axil, dut.s_axil)

    async def bench(ctx):
        todo = {ch: [{name: rng.randrange(1 << len(getattr(dut.s_axil, name)))
                      for name in payload} for _ in range(count)]
                for ch, payload, _ in _CHANNELS}
        for _ in range(20 * count):
            for ch, payload, forward in _CHANNELS:
                src, dst = ends(forward)
                offer = bool(todo[ch]) and rng.random() < 0.7
                ctx.set(getattr(src, f"{ch}valid"), offer)
                if offer:
                    for name in payload:
                        ctx.set(getattr(src, name), todo[ch][0][name])
                ctx.set(getattr(dst, f"{ch}ready"), rng.random() < 0.6)
            # the slice's ready and valid do not follow the other side's within the cycle
            for ch, _, forward in _CHANNELS:
                src, dst = ends(forward)
                outputs = (getattr(src, f"{ch}ready"), getattr(dst, f"{ch}valid"))
                before = [ctx.get(x) for x in outputs]
                for sig in (getattr(dst, f"{ch}ready"), getattr(src, f"{ch}valid")):
                    ctx.set(sig, 1 - ctx.get(sig))
                    assert [ctx.get(x) for x in outputs] == before, ch
                    ctx.set(sig, 1 - ctx.get(sig))
            for ch, payload, forward in _CHANNELS:
                src, dst = ends(forward)
                if ctx.get(getattr(src, f"{ch}valid")) and ctx.get(getattr(src, f"{ch}ready")):
                    sent[ch].append(todo[ch].pop(0))
                if ctx.get(getattr(dst, f"{ch}valid")) and ctx.get(getattr(dst, f"{ch}ready")):
                    got[ch].append({name: ctx.get(getattr(dst, name)) for name in payload})
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    for ch, _, _ in _CHANNELS:
        assert len(sent[ch]) == count, ch
        assert got[ch] == sent[ch], ch


@pytest.mark.parametrize("ready_p", [1.0, 0.5])
@pytest.mark.parametrize("channel", ["r", "w"])
def test_axi_slice_passes_every_beat_in_order_one_per_cycle(channel, ready_p):
    dut = AxiSlice(AXI4Signature(32, 64, 2))
    rng = random.Random(7)
    up, down = dut.s_axi, dut.m_axi
    if channel == "r":  # from the slave (m_axi) to the master (s_axi)
        src, dst = down, up
        beats = [{"rdata": rng.randrange(1 << 64), "rresp": rng.randrange(4),
                  "rlast": rng.randrange(2), "rid": rng.randrange(4)} for _ in range(60)]
    else:
        src, dst = up, down
        beats = [{"wdata": rng.randrange(1 << 64), "wstrb": rng.randrange(256),
                  "wlast": rng.randrange(2)} for _ in range(60)]
    valid, ready = f"{channel}valid", f"{channel}ready"
    got, cycles = [], []

    async def bench(ctx):
        todo = list(beats)
        for cycle in range(400):
            ctx.set(getattr(src, valid), bool(todo))
            if todo:
                for name, value in todo[0].items():
                    ctx.set(getattr(src, name), value)
            ctx.set(getattr(dst, ready), rng.random() < ready_p)
            # each side's ready, valid and data do not follow the other side in the cycle
            outputs = (getattr(src, ready), getattr(dst, valid),
                       getattr(dst, f"{channel}data"))
            before = [ctx.get(x) for x in outputs]
            for sig_ in (getattr(dst, ready), getattr(src, valid)):
                ctx.set(sig_, 1 - ctx.get(sig_))
                assert [ctx.get(x) for x in outputs] == before
                ctx.set(sig_, 1 - ctx.get(sig_))
            # the address channels pass through in the same cycle
            araddr = rng.randrange(1 << 32)
            ctx.set(up.araddr, araddr)
            ctx.set(down.awready, cycle % 2)
            assert ctx.get(down.araddr) == araddr and ctx.get(up.awready) == cycle % 2
            if ctx.get(getattr(src, valid)) and ctx.get(getattr(src, ready)):
                todo.pop(0)
            if ctx.get(getattr(dst, valid)) and ctx.get(getattr(dst, ready)):
                got.append({name: ctx.get(getattr(dst, name)) for name in beats[0]})
                cycles.append(cycle)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert got == beats
    if ready_p == 1.0:  # a beat a cycle, each a cycle after it was offered
        assert cycles == list(range(1, 1 + len(beats)))
