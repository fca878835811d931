"""Verilog emission: rtl/ is up to date, the output lints clean, the manifest is right."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from accelerator.cli import main
from accelerator.config import AcceleratorConfig
from accelerator.flow.rtl import (
    ACCEL_TOP,
    BOARD_TOP,
    CORE_TOP,
    DMA_TOP,
    VERILATOR_WAIVERS,
    emit,
    lint_flags,
)
from accelerator.flow.toolchain import setup_environment

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import regen_rtl  # noqa: E402


def test_rtl_directory_is_not_stale():
    assert regen_rtl.stale() == [], "rtl/ is stale: run python tools/regen_rtl.py"


def test_emission_is_deterministic(tmp_path):
    cfg = AcceleratorConfig(rows=2, cols=3, dataflow="ws")
    v1, m1 = emit(cfg, tmp_path / "a")
    v2, m2 = emit(cfg, tmp_path / "b")
    assert v1.read_bytes() == v2.read_bytes()
    assert m1.read_bytes() == m2.read_bytes()


def test_manifest_lists_config_digest_and_ports(tmp_path):
    cfg = AcceleratorConfig(rows=3, cols=2)
    _, manifest = emit(cfg, tmp_path)
    data = json.loads(manifest.read_text())
    assert data["config"] == cfg.to_dict()
    assert data["digest"] == cfg.digest
    assert "amaranth" in data["generator"]
    ports = {p["name"]: p for p in data["ports"]}
    # a column of A (3 × int8), a row of B (2 × int8) and `last`
    assert ports["operands__payload"] == {"name": "operands__payload", "direction": "input",
                                          "width": 3 * 8 + 2 * 8 + 1}
    assert ports["results__payload"]["width"] == 2 * 32 + 1
    assert ports["results__ready"]["direction"] == "input"


@pytest.mark.parametrize("top", [CORE_TOP, ACCEL_TOP])
@pytest.mark.parametrize("dataflow", ["os", "ws"])
@pytest.mark.parametrize("rows,cols", [(1, 1), (2, 3), (4, 4)])
def test_verilator_lint_is_clean_with_the_listed_waivers(tmp_path, top, dataflow, rows, cols):
    env = setup_environment(dict(__import__("os").environ))
    verilog, _ = emit(AcceleratorConfig(rows=rows, cols=cols, dataflow=dataflow), tmp_path,
                      top=top)
    result = subprocess.run(
        ["verilator", "--lint-only", "-Wall", *lint_flags(), "--top-module", top,
         str(verilog)], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "%Warning" not in result.stderr, result.stderr[-2000:]


def test_every_waiver_is_needed(tmp_path):
    """A waiver that Amaranth's output no longer needs is removed, not kept 'just in case'."""
    env = setup_environment(dict(__import__("os").environ))
    warnings = set()
    # the core elaborated for an ECP5 instantiates TRELLIS_FFs (PINMISSING); the DMA alone has
    # an `abort` port (SYMRSVDWORD)
    for top, board in ((CORE_TOP, None), (ACCEL_TOP, None), (DMA_TOP, None),
                       (CORE_TOP, "ulx3s-85f")):
        for dataflow in ("os", "ws"):
            verilog, _ = emit(AcceleratorConfig(rows=2, cols=2, dataflow=dataflow),
                              tmp_path / top / dataflow / str(board), top=top, board=board)
            result = subprocess.run(["verilator", "--lint-only", "-Wall", "--top-module", top,
                                     str(verilog)], capture_output=True, text=True, env=env)
            warnings |= {line.split(":")[0].removeprefix("%Warning-")
                         for line in result.stderr.splitlines() if line.startswith("%Warning-")}
    assert warnings == set(VERILATOR_WAIVERS)


def test_accel_rtl_writes_files(tmp_path, capsys):
    assert main(["rtl", "--rows", "2", "--cols", "2", "--dataflow", "ws", "-o", str(tmp_path)]) == 0
    assert (tmp_path / f"{CORE_TOP}.v").is_file()
    assert json.loads((tmp_path / f"{CORE_TOP}.json").read_text())["config"]["dataflow"] == "ws"


@pytest.mark.parametrize("args,message", [
    (["--rows", "0"], ("accel rtl: error: invalid config: rows = 0 is out of range "
                      "(allowed: 1 to 64)")),
    (["--dataflow", "xy"], ("accel rtl: error: invalid config: dataflow = 'xy' is not allowed "
                           "(allowed: os, ws)")),
    (["--cols", "65"], ("accel rtl: error: invalid config: cols = 65 is out of range "
                       "(allowed: 1 to 64)")),
])
def test_accel_rtl_bad_parameters_exit_2_with_one_line(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["rtl", *args, "-o", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [message]
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("top,params", [
    (ACCEL_TOP, []), (DMA_TOP, []), (CORE_TOP, []),
    (BOARD_TOP, []), (BOARD_TOP, ["--freq", "100", "--baud", "10000000"]),
])
def test_accel_rtl_emits_every_top(tmp_path, capsys, top, params):
    config = AcceleratorConfig(rows=2, cols=2, requant_unit=False)
    assert main(["rtl", "--rows", "2", "--cols", "2", "--no-requant-unit", "--top", top,
                 *params, "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{tmp_path / top}.v (")
    assert out[1].startswith(f"{tmp_path / top}.json")
    verilog = (tmp_path / f"{top}.v").read_text()
    assert re.search(rf"^module {top}\(", verilog, re.MULTILINE)
    manifest = json.loads((tmp_path / f"{top}.json").read_text())
    assert manifest["top"] == top and manifest["config"] == config.to_dict()
    ports = {p["name"] for p in manifest["ports"]}
    assert {"clk", "rst"} <= ports
    # every port of the manifest is a port of the Verilog module
    header = verilog[verilog.index(f"module {top}("):]
    header = header[:header.index(");")]
    assert {name.strip() for name in header[len(f"module {top}("):].split(",")} == ports
    if top == BOARD_TOP:
        assert ports == {"clk", "rst", "uart_rx", "uart_tx", "leds"}
        clk = 100e6 if params else 12e6
        assert manifest["params"] == {"clk_freq": clk, "baud": 10_000_000 if params else 115200}
    elif top == ACCEL_TOP:
        assert {"s_axil__awaddr", "m_axi__arid", "irq"} <= ports


@pytest.mark.parametrize("args,message", [
    (["--top", CORE_TOP, "--freq", "50"], f"--freq apply to --top {BOARD_TOP} only"),
    (["--top", ACCEL_TOP, "--freq", "50", "--baud", "9600"],
     f"--freq and --baud apply to --top {BOARD_TOP} only"),
    (["--top", BOARD_TOP, "--freq", "0"],
     "--freq 0 is out of range (allowed: more than 0 up to 1000 MHz)"),
    (["--top", BOARD_TOP, "--freq", "1", "--baud", "500000"],
     (f"--top {BOARD_TOP}: baud = 500000 is too fast for clk_freq = 1000000.0 (at least 4 "
      "clock cycles per bit are needed)")),
    (["--top", "core"], ("Invalid value for '--top': 'core' is not one of 'systolic_core', "
                         "'accelerator', 'dma_top', 'board_top'.")),
])
def test_accel_rtl_bad_top_options_exit_2_with_one_line(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["rtl", *args, "-o", str(tmp_path)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines() == [f"accel rtl: error: {message}"]
    assert not any(tmp_path.iterdir())
