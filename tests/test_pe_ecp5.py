"""PEs on registered DSP blocks (``registered_dsp``, accelerator/hw/pe_ecp5.py): the Amaranth
model of the registered multiplier against the MULT18X18D's simulation model, the block yosys
keeps, and the core in both dataflows against the reference and the performance model."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from amaranth.back import rtlil
from test_core_amaranth import stream_through_core

from accelerator.config import DATAFLOWS, AcceleratorConfig
from accelerator.flow.rtl import cell_models
from accelerator.hw.core import ENABLE_LEVELS, SystolicCore
from accelerator.hw.pe import OutputStationaryPE, WeightStationaryPE
from accelerator.hw.pe_ecp5 import (
    MULT18X18D_REGISTERS,
    RegisteredOutputStationaryPE,
    RegisteredProduct,
    RegisteredWeightStationaryPE,
    pe_class,
)
from accelerator.model.perf import core_cycles, core_latency
from accelerator.model.tiles import random_operands, tile_stream


def _ecp5():
    from amaranth_boards.ulx3s import ULX3S_85F_Platform
    return ULX3S_85F_Platform()


def _yosys(tmp_path: Path, script: str) -> subprocess.CompletedProcess:
    from accelerator.flow.toolchain import setup_environment
    env = setup_environment(dict(os.environ))
    return subprocess.run([env["YOSYS"], "-q", "-p", script], cwd=tmp_path, capture_output=True,
                          text=True, env=env)


def _prove(tmp_path: Path, width: int, model_latency: int, depth: int = 6
           ) -> subprocess.CompletedProcess:
    """Prove, for every input and enable sequence of ``depth`` cycles from power-up, that the
    MULT18X18D instance (on our simulation model, the one Verilator runs) gives the same ``p``
    in every cycle as the Amaranth model of ``model_latency``.

    Narrow operands: the SAT problem grows with the unrolled multipliers (8 bits, 4 cycles took
    10 s); the registers and enables are the same at any width, and 8-bit products go through
    the block's model in the netlist regression (test_registered_netlist_passes_the_regression).
    """
    (tmp_path / "block.il").write_text(rtlil.convert(
        RegisteredProduct(width, 2, site="X4/Y10/MULT18_0"), name="block", platform=_ecp5()))
    (tmp_path / "model.il").write_text(rtlil.convert(
        RegisteredProduct(width, model_latency), name="model"))
    (tmp_path / "mult.v").write_text(cell_models("ecp5", ["MULT18X18D"]))
    assert (tmp_path / "block.il").read_text().count("cell \\MULT18X18D") == 1
    # `hierarchy` before `proc`, so that the instance's parameters apply
    script = ("read_verilog -sv mult.v; read_rtlil block.il; hierarchy -check -top block; "
              "proc; flatten; select -assert-count 0 t:MULT18X18D; "
              "read_rtlil model.il; proc; "
              "miter -equiv -flatten -make_assert -ignore_gold_x block model miter; "
              "hierarchy -top miter; opt -fast; "
              f"sat -verify -prove-asserts -set-init-zero -seq {depth} miter")
    return _yosys(tmp_path, script)


@pytest.mark.parametrize("width", [2, 3])
def test_the_amaranth_model_is_cycle_identical_to_the_registered_block(tmp_path, width):
    result = _prove(tmp_path, width, 2)
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_block_proof_catches_a_model_a_cycle_short(tmp_path):
    result = _prove(tmp_path, 3, 1)
    assert result.returncode != 0
    assert "proof did fail" in result.stderr


def test_the_block_keeps_its_registers_through_synthesis(tmp_path):
    # synth_ecp5 leaves the block as instantiated: every register in it, on the clock and
    # the PE's enable; no flip-flop in the fabric
    (tmp_path / "top.il").write_text(rtlil.convert(
        RegisteredProduct(8, 2, site="X4/Y10/MULT18_0"), name="top", platform=_ecp5()))
    result = _yosys(tmp_path, "read_rtlil top.il; synth_ecp5 -top top; write_json top.json")
    assert result.returncode == 0, result.stderr[-2000:]
    module = json.loads((tmp_path / "top.json").read_text())["modules"]["top"]
    types = [cell["type"] for cell in module["cells"].values()]
    assert types.count("MULT18X18D") == 1 and "TRELLIS_FF" not in types
    cell = next(c for c in module["cells"].values() if c["type"] == "MULT18X18D")
    for reg in MULT18X18D_REGISTERS:
        assert cell["parameters"][f"{reg}_CLK"] == "CLK0"
        assert cell["parameters"][f"{reg}_CE"] == "CE0"
    assert "REG_INPUTC_CLK" not in cell["parameters"]  # C unused: the default, NONE
    assert cell["attributes"]["BEL"] == "X4/Y10/MULT18_0"
    ports = module["ports"]
    assert cell["connections"]["CLK0"] == ports["clk"]["bits"]
    assert cell["connections"]["CE0"] == ports["en"]["bits"]


def test_registered_product_refuses_what_the_block_cannot_do():
    with pytest.raises(ValueError, match="latency = 0 is out of range"):
        RegisteredProduct(8, 0)
    with pytest.raises(ValueError, match="does not fit a MULT18X18D"):
        RegisteredProduct(19, 2)
    with pytest.raises(ValueError, match="more than latency = 1"):
        rtlil.convert(RegisteredProduct(8, 1), name="top", platform=_ecp5())


def test_the_config_selects_the_registered_pes():
    on = AcceleratorConfig(registered_dsp=True)
    assert pe_class(OutputStationaryPE, on) is RegisteredOutputStationaryPE
    assert pe_class(WeightStationaryPE, on) is RegisteredWeightStationaryPE
    for base in (OutputStationaryPE, WeightStationaryPE):
        assert pe_class(base, AcceleratorConfig()) is base


def test_an_ecp5_core_puts_every_product_in_a_registered_block(tmp_path):
    cfg = AcceleratorConfig(rows=2, cols=3, registered_dsp=True)
    il = rtlil.convert(SystolicCore(cfg), name="top", platform=_ecp5())
    assert il.count("cell \\MULT18X18D") == cfg.pes
    assert il.count('parameter \\REG_PIPELINE_CLK "CLK0"') == cfg.pes
    # the default core keeps its unregistered blocks
    plain = rtlil.convert(SystolicCore(cfg.replace(registered_dsp=False)), name="top",
                          platform=_ecp5())
    assert plain.count('parameter \\REG_PIPELINE_CLK "CLK0"') == 0


def test_a_registered_core_needs_a_pipelined_core():
    cfg = AcceleratorConfig(rows=2, cols=2, registered_dsp=True)
    with pytest.raises(ValueError, match="registered_dsp needs a pipelined core"):
        rtlil.convert(SystolicCore(cfg, pipelined=False), name="top")


@pytest.mark.parametrize("dataflow", ["os", "ws"])
@pytest.mark.parametrize("rows,cols,dsp_pes", [(2, 3, None), (3, 2, 2)])
def test_registered_core_matches_reference_and_model(dataflow, rows, cols, dsp_pes):
    # the model's cycles include the added latency; results with pauses on both sides too
    # (the stall must hold the blocks' pipelines); dsp_pes: the rest multiply in LUTs
    cfg = AcceleratorConfig(rows=rows, cols=cols, dataflow=dataflow, registered_dsp=True)
    assert core_latency(cfg) == rows + cols + cfg.result_latency
    rng = np.random.default_rng(5)
    lengths = [1, 5, 2, 3, 7, 1, rows, rows + 1]
    tiles = [random_operands(cfg, rng, n) for n in lengths]
    tiles.append(random_operands(cfg, rng, 4, kind="extreme"))
    lengths.append(4)
    stream = tile_stream(cfg, tiles)
    got, cycles = stream_through_core(cfg, stream, rng, dsp_pes=dsp_pes)
    assert [beat["c"] for beat in got] == stream.results
    assert cycles == core_cycles(cfg, lengths)
    assert cycles == core_cycles(cfg.replace(registered_dsp=False), lengths) + cfg.result_latency
    got, _ = stream_through_core(cfg, stream, rng, in_pause=0.3, out_pause=0.3,
                                 dsp_pes=dsp_pes)
    expected = [{"c": row, "last": last}
                for row, last in zip(stream.results, stream.last, strict=True)]
    assert got == expected


@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_registered_core_keeps_every_result_when_the_output_stalls(dataflow):
    # the output ready one cycle in four: the PEs learn of it ENABLE_LEVELS cycles late, and
    # the buffer behind the de-skew must keep every result the array makes meanwhile, none
    # lost or repeated, `last` with its row
    cfg = AcceleratorConfig(rows=3, cols=2, dataflow=dataflow, registered_dsp=True)
    rng = np.random.default_rng(7)
    lengths = [4, 1, 6, 3, 3, 2]
    stream = tile_stream(cfg, [random_operands(cfg, rng, n) for n in lengths])
    got, cycles = stream_through_core(cfg, stream, rng, in_pause=0.2, out_pause=0.75)
    assert got == [{"c": row, "last": last}
                   for row, last in zip(stream.results, stream.last, strict=True)]
    assert cycles > core_cycles(cfg, lengths)


def test_registered_core_enables_come_through_a_tree_of_copies():
    # every enable is a copy of a region's copy of one root register (ENABLE_LEVELS of them
    # in a row), so no net of the flow control reaches more than a region of the array
    cfg = AcceleratorConfig(rows=6, cols=8, dataflow="os", registered_dsp=True)
    il = rtlil.convert(SystolicCore(cfg), name="core", platform=_ecp5())
    assert ENABLE_LEVELS == 3
    # the root and one copy per region: 3 bands of rows × 4 of columns, and the control's
    assert il.count("cell \\TRELLIS_FF \\en_root_ff") == 1
    assert len(set(re.findall(r"cell \\TRELLIS_FF \\(en_region_\w+_ff)", il))) == 3 * 4 + 1


def test_registered_os_buffer_control_resets_as_units_and_reads_its_regions_valid():
    # output-stationary: the buffer's control and its replica per region of columns take the
    # reset from copies of the reset's root register, not from its source (a net across the
    # die), and each replica reads a column of its own region: the columns' valid flags
    # through a de-skew, lane j delayed C-1-j
    cfg = AcceleratorConfig(rows=6, cols=8, dataflow="os", registered_dsp=True)
    il = rtlil.convert(SystolicCore(cfg), name="core", platform=_ecp5())
    for unit in ["buffer_ctl", *(f"buffer_ctl_{q}" for q in range(4))]:
        assert il.count(f"cell \\TRELLIS_FF \\rst_group_{unit}_ff") == 1
        assert il.count(f"cell \\TRELLIS_FF \\rst_{unit}_ff") == 1
    module = il.split("module \\core.deskew_valid\n")[1].split("\nend\n")[0]
    for j in range(cfg.cols):
        stages = set(re.findall(rf"wire width 1 \\lane{j}_d(\d+)\b", module))
        assert stages == {str(k + 1) for k in range(cfg.cols - 1 - j)}


def test_weight_stationary_registered_pes_take_one_cycle_more():
    # its PEs give the block the weight they hold, not the next one
    assert AcceleratorConfig(registered_dsp=True, dataflow="ws").product_latency == 4
    assert AcceleratorConfig(registered_dsp=True, dataflow="os").product_latency == 3


def test_registered_results_add_the_slot_or_the_input_register():
    # os: the slot takes the accumulator's register, not the adder's sum; ws: every lane of
    # the skews has a register, column 0's too. Either is a cycle after the products' latency
    os_cfg = AcceleratorConfig(registered_dsp=True, dataflow="os")
    ws_cfg = AcceleratorConfig(registered_dsp=True, dataflow="ws")
    assert (os_cfg.slot_latency, os_cfg.input_latency, os_cfg.result_latency) == (1, 0, 4)
    assert (ws_cfg.slot_latency, ws_cfg.input_latency, ws_cfg.result_latency) == (0, 1, 5)
    for dataflow in DATAFLOWS:
        plain = AcceleratorConfig(dataflow=dataflow)
        assert (plain.slot_latency, plain.input_latency, plain.result_latency) == (0, 0, 0)


def test_registered_ws_column_0_takes_its_weight_control_from_a_register():
    # no lane of the weight control's skew is combinational: column 0's copies of `shift`
    # and `capture` read a register, not `w_accept` and `capture`'s logic
    cfg = AcceleratorConfig(rows=3, cols=2, dataflow="ws", registered_dsp=True)
    core = SystolicCore(cfg)
    il = rtlil.convert(core, name="core", platform=_ecp5())
    module = il.split("module \\core.skew_wctl\n")[1].split("\nend\n")[0]
    assert len(re.findall(r"wire width 2 \\lane\d_d\d\b", module)) == 1 + 2


def test_an_ecp5_block_feeds_its_pe_through_fabric_registers():
    # the MULT18X18D's two product stages, then product_latency - 2 fabric registers of the
    # product (os; ws one fewer, its block takes the weight a cycle late), enabled with it
    for dataflow in DATAFLOWS:
        cfg = AcceleratorConfig(rows=2, cols=2, dataflow=dataflow, registered_dsp=True)
        il = rtlil.convert(SystolicCore(cfg), name="top", platform=_ecp5())
        assert len(re.findall(r"wire width 16 signed \\fabric0\b", il)) == cfg.pes
        assert "fabric1" not in il


def _ecp5_netlist(tmp_path: Path, config: AcceleratorConfig) -> Path:
    """yosys's coarse synthesis of the accelerator elaborated for the ULX3S-85F (the PEs'
    MULT18X18D and the TRELLIS_FF copies instantiated, as `accel build` has them), flattened,
    as a Verilog netlist: what `accel verify --rtl` runs on the blocks' simulation models."""
    from amaranth.back import verilog

    from accelerator.flow.rtl import ACCEL_TOP, build_component

    text = verilog.convert(build_component(config, ACCEL_TOP), name=ACCEL_TOP, emit_src=False,
                           platform=_ecp5())
    (tmp_path / "rtl.v").write_text(text)
    result = _yosys(tmp_path, "read_verilog -lib +/ecp5/cells_bb.v +/ecp5/cells_sim.v; "
                              f"read_verilog rtl.v; synth -flatten -noalumacc -top {ACCEL_TOP} "
                              "-run begin:fine; opt_clean; write_verilog -noattr synth.v")
    assert result.returncode == 0, result.stderr[-2000:]
    return tmp_path / "synth.v"


@pytest.mark.slow
@pytest.mark.verilator
@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_registered_netlist_passes_the_regression(accel, build_root, tmp_path, dataflow):
    # C against NumPy and the counters (cycles included) equal to the emitted design's, whose
    # PEs multiply in the Amaranth model: the block's model is cycle-identical in the whole
    # accelerator too; a block with its output register off is a cycle early and fails
    config = AcceleratorConfig(rows=2, cols=3, dataflow=dataflow, registered_dsp=True)
    options = ["--rows", "2", "--cols", "3", "--dataflow", dataflow, "--registered-dsp",
               "--count", "4", "--build-root", str(build_root)]
    netlist = _ecp5_netlist(tmp_path, config)
    text = netlist.read_text()
    assert text.count("MULT18X18D ") == config.pes
    assert text.count('.REG_OUTPUT_CLK("CLK0")') == config.pes
    code, out, err = accel("verify", "--rtl", str(netlist), *options)
    assert code in (0, None), out + err
    assert "PASS" in out
    broken = tmp_path / "broken.v"
    broken.write_text(text.replace('.REG_OUTPUT_CLK("CLK0")', '.REG_OUTPUT_CLK("NONE")', 1))
    code, out, err = accel("verify", "--rtl", str(broken), *options)
    assert code == 1, out + err
    assert "FAIL" in out
