"""The PEs and a small core in Amaranth's own simulator (fast tier)."""

from __future__ import annotations

import itertools
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from amaranth.hdl import Module, Signal, signed
from amaranth.sim import Simulator

from accelerator.config import AcceleratorConfig
from accelerator.flow.rtl import ice40_cell_models
from accelerator.hw.core import SystolicCore, core_layouts
from accelerator.hw.payload import pack, unpack
from accelerator.hw.pe import (
    OutputStationaryPE,
    ProductPair,
    WeightStationaryPE,
    lut_product,
    pes_per_dsp,
)
from accelerator.model.perf import core_cycles
from accelerator.model.tiles import random_operands, tile_stream


def run(dut, testbenches, *, deadline=100_000):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    for tb in testbenches:
        sim.add_testbench(tb)
    sim.run_until(deadline * 1e-6)


async def prime(ctx, pe, a, b):
    """One idle enabled cycle that loads the first beat's product: an OS PE multiplies the
    values its inputs take next (``a_next``, ``b_next``), a cycle ahead."""
    ctx.set(pe.valid_in, 0)
    ctx.set(pe.a_next, a)
    ctx.set(pe.b_next, b)
    await ctx.tick()


def test_os_pe_accumulates_restarts_and_wraps():
    cfg = AcceleratorConfig()
    pe = OutputStationaryPE(cfg)
    seen = []

    async def bench(ctx):
        ctx.set(pe.en, 1)
        # tile 1: 3·4 + (-128)·(-128) ; tile 2 starts from its first product
        beats = [(3, 4, 1, 0), (-128, -128, 0, 1), (5, -6, 1, 1), (0, 0, 0, 0)]
        await prime(ctx, pe, beats[0][0], beats[0][1])
        for (a, b, first, last), upcoming in itertools.pairwise(beats):
            ctx.set(pe.a_in, a)
            ctx.set(pe.b_in, b)
            ctx.set(pe.a_next, upcoming[0])
            ctx.set(pe.b_next, upcoming[1])
            ctx.set(pe.valid_in, 1)
            ctx.set(pe.first_in, first)
            ctx.set(pe.last_in, last)
            await ctx.tick()
            seen.append(ctx.get(pe.chain_out))
            # a bottom PE drains right after loading, so the slot is free for the next tile
            ctx.set(pe.drain, ctx.get(pe.valid_out) & ctx.get(pe.last_out))
        assert ctx.get(pe.a_out) == 5 and ctx.get(pe.b_out) == -6

    run(pe, [bench], deadline=100)
    assert seen[1] == 3 * 4 + 128 * 128
    assert seen[2] == -30


def test_os_pe_product_comes_from_the_next_operands():
    # the product register is loaded from a_next·b_next: a PE fed a_in·b_in alone computes 0
    pe = OutputStationaryPE(AcceleratorConfig())

    async def bench(ctx):
        ctx.set(pe.en, 1)
        ctx.set(pe.a_next, 7)
        ctx.set(pe.b_next, -3)
        await ctx.tick()
        ctx.set(pe.a_in, 7)
        ctx.set(pe.b_in, -3)
        ctx.set(pe.a_next, 0)
        ctx.set(pe.valid_in, 1)
        ctx.set(pe.first_in, 1)
        ctx.set(pe.last_in, 1)
        await ctx.tick()
        assert ctx.get(pe.chain_out) == -21

    run(pe, [bench], deadline=100)


def test_os_pe_wraps_like_int32():
    cfg = AcceleratorConfig(acc_width=16)
    pe = OutputStationaryPE(cfg)

    async def bench(ctx):
        ctx.set(pe.en, 1)
        await prime(ctx, pe, -128, -128)
        ctx.set(pe.valid_in, 1)
        for k in range(3):
            ctx.set(pe.a_in, -128)
            ctx.set(pe.b_in, -128)
            ctx.set(pe.first_in, k == 0)
            ctx.set(pe.last_in, k == 2)
            await ctx.tick()
        # 3·16384 = 49152 wraps to 49152 - 65536 in 16 bits
        assert ctx.get(pe.chain_out) == 49152 - 65536

    run(pe, [bench], deadline=100)


def test_os_pe_holds_when_disabled():
    pe = OutputStationaryPE(AcceleratorConfig())

    async def bench(ctx):
        ctx.set(pe.en, 1)
        await prime(ctx, pe, 2, 3)
        ctx.set(pe.valid_in, 1)
        ctx.set(pe.first_in, 1)
        ctx.set(pe.a_in, 2)
        ctx.set(pe.b_in, 3)
        ctx.set(pe.a_next, 5)
        await ctx.tick()
        ctx.set(pe.en, 0)
        ctx.set(pe.a_in, 7)
        ctx.set(pe.a_next, 9)
        ctx.set(pe.first_in, 0)
        ctx.set(pe.last_in, 1)
        await ctx.tick().repeat(3)
        assert ctx.get(pe.a_out) == 2
        assert ctx.get(pe.chain_valid_out) == 0
        # enabled again: the held product is 5·3 (loaded before the stall), not 9·3
        ctx.set(pe.en, 1)
        ctx.set(pe.a_in, 5)
        ctx.set(pe.first_in, 0)
        await ctx.tick()
        assert ctx.get(pe.chain_out) == 2 * 3 + 5 * 3

    run(pe, [bench], deadline=100)


def test_ws_pe_switches_weights_on_first():
    pe = WeightStationaryPE(AcceleratorConfig())

    async def bench(ctx):
        ctx.set(pe.en, 1)
        # load 5 through the chain, capture it, then a tile starts and uses it
        ctx.set(pe.w_in, 5)
        ctx.set(pe.w_shift, 1)
        await ctx.tick()
        ctx.set(pe.w_shift, 0)
        ctx.set(pe.capture, 1)
        # the product is loaded a cycle ahead: the next beat is a=3, first (the weight captured
        # in this very cycle)
        ctx.set(pe.a_next, 3)
        ctx.set(pe.first_next, 1)
        await ctx.tick()
        ctx.set(pe.capture, 0)
        # the next weight is already loading while tile 1 runs
        ctx.set(pe.w_in, -7)
        ctx.set(pe.w_shift, 1)
        ctx.set(pe.valid_in, 1)
        ctx.set(pe.first_in, 1)
        ctx.set(pe.a_in, 3)
        ctx.set(pe.psum_in, 100)
        ctx.set(pe.a_next, -2)
        ctx.set(pe.first_next, 0)
        await ctx.tick()
        assert ctx.get(pe.psum_out) == 115
        ctx.set(pe.first_in, 0)
        ctx.set(pe.w_shift, 0)
        ctx.set(pe.capture, 1)      # shadow takes -7, active keeps 5
        ctx.set(pe.a_in, -2)
        ctx.set(pe.psum_in, 0)
        ctx.set(pe.a_next, 4)
        ctx.set(pe.first_next, 1)
        await ctx.tick()
        assert ctx.get(pe.psum_out) == -10
        ctx.set(pe.capture, 0)
        ctx.set(pe.first_in, 1)     # tile 2 switches to -7
        ctx.set(pe.a_in, 4)
        ctx.set(pe.a_next, 0)
        ctx.set(pe.first_next, 0)
        await ctx.tick()
        assert ctx.get(pe.psum_out) == -28

    run(pe, [bench], deadline=100)


def stream_through_core(cfg, stream, rng, *, in_pause=0.0, out_pause=0.0, deadline=20_000,
                        dsp_pes=None, paired_pes=0, pipelined=None):
    """Drive a TileStream through the core with random pauses on both sides.

    Returns the result beats and the cycle count from the first input handshake to the last
    output handshake, inclusive.
    """
    dut = SystolicCore(cfg, dsp_pes=dsp_pes, paired_pes=paired_pes, pipelined=pipelined)
    layouts = core_layouts(cfg)
    got = []
    handshakes = []   # cycle numbers of every input and output handshake

    def driver(port, beats, layout):
        async def bench(ctx):
            stream_port = getattr(dut, port)
            for beat in beats:
                while rng.random() < in_pause:
                    await ctx.tick()
                ctx.set(stream_port.payload.as_value(), pack(layout, beat))
                ctx.set(stream_port.valid, 1)
                await ctx.tick().until(stream_port.ready)
                ctx.set(stream_port.valid, 0)
        return bench

    async def collector(ctx):
        cycle = 0
        while len(got) < len(stream.results):
            ctx.set(dut.results.ready, int(rng.random() >= out_pause))
            _, _, valid, ready, payload, *accepted = await ctx.tick().sample(
                dut.results.valid, dut.results.ready, dut.results.payload.as_value(),
                *(getattr(dut, p).valid & getattr(dut, p).ready for p in inputs))
            if valid and ready:
                got.append(unpack(layouts["results"], payload))
                handshakes.append(cycle)
            if any(accepted):
                handshakes.append(cycle)
            cycle += 1

    inputs = ["operands"] + (["weights"] if cfg.dataflow == "ws" else [])
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(driver("operands", stream.operands, layouts["operands"]))
    if cfg.dataflow == "ws":
        sim.add_testbench(driver("weights", stream.weights, layouts["weights"]))
    sim.add_testbench(collector)
    sim.run_until(deadline * 1e-6)
    cycles = max(handshakes) - min(handshakes) + 1 if handshakes else 0
    return got, cycles


@pytest.mark.parametrize("dataflow", ["os", "ws"])
@pytest.mark.parametrize("rows,cols,dsp_pes,paired_pes,pipelined", [
    (1, 1, None, 0, None), (2, 2, None, 0, None), (2, 3, None, 6, None), (2, 3, 0, 0, None),
    (2, 2, 3, 2, None), (1, 1, None, 0, False), (2, 3, 3, 2, False)])
def test_small_core_matches_reference(dataflow, rows, cols, dsp_pes, paired_pes, pipelined):
    # dsp_pes: some or all of the PEs multiply with LUT partial products instead of `*`;
    # paired_pes: some get their products two by two from a ProductPair; pipelined: False is
    # the iCE40's PE, whose product is not registered
    cfg = AcceleratorConfig(rows=rows, cols=cols, dataflow=dataflow)
    rng = np.random.default_rng(1)
    lengths = [1, 5, 2, 3, 7, 1]
    tiles = [random_operands(cfg, rng, n) for n in lengths]
    tiles.append(random_operands(cfg, rng, 3, kind="max"))
    tiles.append(random_operands(cfg, rng, 4, kind="extreme"))
    stream = tile_stream(cfg, tiles)
    got, _ = stream_through_core(cfg, stream, rng, in_pause=0.3, out_pause=0.3,
                                 dsp_pes=dsp_pes, paired_pes=paired_pes, pipelined=pipelined)
    expected = [{"c": row, "last": last}
                for row, last in zip(stream.results, stream.last, strict=True)]
    assert got == expected


@pytest.mark.parametrize("dataflow", ["os", "ws"])
@pytest.mark.parametrize("rows,cols,pipelined", [(1, 1, None), (2, 3, None), (3, 2, None),
                                                 (3, 2, False)])
def test_small_core_cycles_match_model(dataflow, rows, cols, pipelined):
    cfg = AcceleratorConfig(rows=rows, cols=cols, dataflow=dataflow)
    rng = np.random.default_rng(2)
    lengths = [1, 5, 2, 3, 7, 1, rows, rows + 1]
    stream = tile_stream(cfg, [random_operands(cfg, rng, n) for n in lengths])
    got, cycles = stream_through_core(cfg, stream, rng, pipelined=pipelined)
    assert [beat["c"] for beat in got] == stream.results
    assert cycles == core_cycles(cfg, lengths)


@pytest.mark.parametrize("width", [2, 5, 8])
def test_lut_product_is_exact_for_every_pair(width):
    # exhaustive: every pair of signed operands, the multiplier that replaces a DSP block
    a, b = Signal(signed(width)), Signal(signed(width))
    out = Signal(signed(2 * width))
    m = Module()
    m.d.comb += out.eq(lut_product(a, b))
    values = range(-(1 << (width - 1)), 1 << (width - 1))
    wrong = []

    async def bench(ctx):
        for x in values:
            ctx.set(a, x)
            for y in values:
                ctx.set(b, y)
                if ctx.get(out) != x * y:
                    wrong.append((x, y, ctx.get(out)))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert wrong == []


# -- the iCE40's two 8×8 multipliers per SB_MAC16 ------------------------------------------------

def _prove_pair(tmp_path: Path, width: int, reference: str) -> subprocess.CompletedProcess:
    """SAT-prove the iCE40 ProductPair equal to ``reference`` (a Verilog module ``refmul``)."""
    from amaranth.back import rtlil
    from amaranth_boards.icebreaker import ICEBreakerPlatform

    from accelerator.flow.toolchain import setup_environment

    env = setup_environment(dict(os.environ))
    (tmp_path / "pair.il").write_text(
        rtlil.convert(ProductPair(width), name="pair", platform=ICEBreakerPlatform()))
    (tmp_path / "ref.v").write_text(reference)
    (tmp_path / "sb_mac16.v").write_text(ice40_cell_models(["SB_MAC16"]))
    # `hierarchy` before `proc`, so that the instance's parameters (MODE_8x8, signedness) apply
    script = ("read_verilog -sv sb_mac16.v; read_rtlil pair.il; "
              "hierarchy -top pair; proc; "
              "flatten; async2sync; select -assert-count 0 t:SB_MAC16; "
              "read_verilog ref.v; proc; miter -equiv -flatten -make_assert pair refmul miter; "
              "hierarchy -top miter; opt; sat -verify -prove-asserts miter")
    il = (tmp_path / "pair.il").read_text()
    assert il.count("cell \\SB_MAC16") == 1
    return subprocess.run([env["YOSYS"], "-q", "-p", script], cwd=tmp_path, capture_output=True,
                          text=True, env=env)


def _reference(width: int, p1: str = "a1 * b1") -> str:
    return (f"module refmul(input signed [{width - 1}:0] a0, b0, a1, b1,\n"
            f"              output signed [{2 * width - 1}:0] p0, p1);\n"
            f"  assign p0 = a0 * b0;\n  assign p1 = {p1};\nendmodule\n")


@pytest.mark.parametrize("width", [8, 5])
def test_ice40_product_pair_is_one_mac16_with_two_exact_products(tmp_path, width):
    # a proof over every input, against yosys's model of the block (the one nextpnr packs)
    result = _prove_pair(tmp_path, width, _reference(width))
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_product_pair_proof_catches_a_wrong_product(tmp_path):
    result = _prove_pair(tmp_path, 8, _reference(8, p1="a1 * b0"))
    assert result.returncode != 0
    assert "proof did fail" in result.stderr


def test_pes_per_dsp_block():
    assert pes_per_dsp("ice40", 8) == 2 and pes_per_dsp("ice40", 4) == 2
    assert pes_per_dsp("ice40", 9) == 1  # a 9-bit operand needs the 16×16 mode
    assert pes_per_dsp("ecp5", 8) == 1


def test_paired_pes_share_product_pairs():
    # the first paired_pes PEs pair up (row-major neighbours); the other DSP PEs multiply alone
    from amaranth.hdl import Fragment

    cfg = AcceleratorConfig(rows=2, cols=3)
    fragment = Fragment.get(SystolicCore(cfg, dsp_pes=5, paired_pes=4), None)
    names = {name for _, name, _ in fragment.subfragments}
    assert {n for n in names if n.startswith("mul_")} == {"mul_0", "mul_1"}
    fragment = Fragment.get(SystolicCore(cfg, dsp_pes=5), None)
    assert not any(name.startswith("mul_") for _, name, _ in fragment.subfragments)


@pytest.mark.parametrize("paired", [3, -2, 6])
def test_paired_pes_must_be_even_and_within_the_dsp_pes(paired):
    with pytest.raises(ValueError, match=r"^paired_pes = -?\d+ is out of range \(allowed: an "
                                         r"even number from 0 to dsp_pes = 5\)$"):
        SystolicCore(AcceleratorConfig(rows=2, cols=3), dsp_pes=5, paired_pes=paired)
