"""Every array size the config accepts generates and simulates: up to 64×64.

Arrays from 18×18 up once ended in a RecursionError (an OR over every PE built as a chain),
and Amaranth's domain propagation made a 64×64 core take minutes (a clock domain per PE,
copied into every other PE). The 18×18 core is the fast check; the largest arrays (64×64
generation, 24×24 and 32×32 GEMMs in Verilator) are the ``slow`` tier: minutes each
(docs/performance.md, "Large arrays").
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from accelerator.flow.rtl import ACCEL_TOP, CORE_TOP


def _pe_instances(verilog: Path) -> set[str]:
    return set(re.findall(r"^\s+\\\S+\s+(pe_\d+_\d+) \(", verilog.read_text(), re.MULTILINE))


def _rtl(accel, tmp_path: Path, rows: int, cols: int, *args: str, top: str = CORE_TOP) -> Path:
    out = tmp_path / f"{top}_{rows}x{cols}"
    code, stdout, err = accel("rtl", "--rows", str(rows), "--cols", str(cols), *args,
                              "--top", top, "-o", str(out))
    assert (code, err) in ((0, ""), (None, "")), err
    verilog = out / f"{top}.v"
    assert stdout.splitlines()[0].startswith(f"{verilog} (")
    manifest = json.loads((out / f"{top}.json").read_text())
    assert (manifest["config"]["rows"], manifest["config"]["cols"]) == (rows, cols)
    return verilog


def _pe_modules(verilog: Path) -> set[str]:
    """The PEs' modules (``<path>.pe_P_J``), wherever the core sits in the hierarchy."""
    return set(re.findall(r"^module \\\S+\.(pe_\d+_\d+) ", verilog.read_text(),
                          re.MULTILINE))


def _all_pes(rows: int, cols: int) -> set[str]:
    return {f"pe_{p}_{j}" for p in range(rows) for j in range(cols)}


def test_accel_rtl_18x18(accel, tmp_path):
    """The smallest size that failed, through the CLI: every PE is in the Verilog."""
    verilog = _rtl(accel, tmp_path, 18, 18, "--dataflow", "os")
    assert _pe_instances(verilog) == _pe_modules(verilog) == _all_pes(18, 18)


@pytest.mark.slow
@pytest.mark.parametrize("args", [
    ("--dataflow", "os"),
    ("--dataflow", "ws"),
], ids=["os", "ws"])
def test_accel_rtl_64x64_core(accel, tmp_path, args):
    verilog = _rtl(accel, tmp_path, 64, 64, *args)
    assert _pe_instances(verilog) == _pe_modules(verilog) == _all_pes(64, 64)


@pytest.mark.slow
@pytest.mark.parametrize("args", [
    ("--dataflow", "os"),
    ("--dataflow", "ws"),
    ("--engine", "compact", "--no-requant-unit"),
], ids=["os", "ws", "compact"])
def test_accel_rtl_64x64_accelerator(accel, tmp_path, args):
    verilog = _rtl(accel, tmp_path, 64, 64, *args, top=ACCEL_TOP)
    assert "\nmodule accelerator(" in verilog.read_text()
    assert _pe_modules(verilog) == _all_pes(64, 64)


@pytest.mark.slow
@pytest.mark.verilator
@pytest.mark.parametrize(("size", "dataflow"), [(24, "os"), (24, "ws"), (32, "os"), (32, "ws")])
def test_large_array_gemm_in_verilator(accel, build_root, size, dataflow):
    """A GEMM of several tiles in each direction, with ragged edges, through ``accel sim`` (the
    C++ harness, its default bench), bit-exact against NumPy."""
    m, k, n = 2 * size + 3, size + 5, 2 * size - 1
    code, out, err = accel("sim", "--rows", str(size), "--cols", str(size),
                           "--dataflow", dataflow, "--m", str(m), "--k", str(k), "--n", str(n),
                           "--seed", "5", "--json", "--build-root", str(build_root))
    assert code in (0, None), err
    result = json.loads(out)
    assert result["passed"] is True
    assert (result["m"], result["k"], result["n"]) == (m, k, n)
    assert result["config"]["rows"] == result["config"]["cols"] == size
    assert result["macs"] == m * k * n
    assert result["counters"]["dma_wr_bytes"] == m * n * 4
