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

from accelerator.config import AcceleratorConfig
from accelerator.flow.rtl import ACCEL_TOP, CORE_TOP, emit


def _pe_instances(verilog: Path) -> set[str]:
    return set(re.findall(r"^\s+\\\S+\s+(pe_\d+_\d+) \(", verilog.read_text(), re.MULTILINE))


def _rtl(accel, tmp_path: Path, rows: int, cols: int, dataflow: str) -> Path:
    out = tmp_path / f"{dataflow}_{rows}x{cols}"
    code, stdout, err = accel("rtl", "--rows", str(rows), "--cols", str(cols),
                              "--dataflow", dataflow, "-o", str(out))
    assert (code, err) in ((0, ""), (None, "")), err
    verilog = out / f"{CORE_TOP}.v"
    assert stdout.splitlines()[0].startswith(f"{verilog} (")
    manifest = json.loads((out / f"{CORE_TOP}.json").read_text())
    assert (manifest["config"]["rows"], manifest["config"]["cols"]) == (rows, cols)
    assert manifest["config"]["dataflow"] == dataflow
    return verilog


def test_accel_rtl_18x18(accel, tmp_path):
    """The smallest size that failed, through the CLI: every PE is in the Verilog."""
    verilog = _rtl(accel, tmp_path, 18, 18, "os")
    assert _pe_instances(verilog) == {f"pe_{p}_{j}" for p in range(18) for j in range(18)}


@pytest.mark.slow
@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_accel_rtl_64x64(accel, tmp_path, dataflow):
    verilog = _rtl(accel, tmp_path, 64, 64, dataflow)
    assert _pe_instances(verilog) == {f"pe_{p}_{j}" for p in range(64) for j in range(64)}


@pytest.mark.slow
@pytest.mark.parametrize("config", [
    AcceleratorConfig(rows=64, cols=64, dataflow="os"),
    AcceleratorConfig(rows=64, cols=64, dataflow="ws"),
    AcceleratorConfig(rows=64, cols=64, engine="compact", requant_unit=False),
], ids=["os", "ws", "compact"])
def test_accelerator_top_64x64(tmp_path, config):
    verilog, manifest = emit(config, tmp_path, top=ACCEL_TOP)
    text = verilog.read_text()
    assert "module accelerator(" in text
    # the core's PEs, one module each (pe_0_0 … pe_63_63)
    assert len(set(re.findall(r"^module \\\S+\.pe_(\d+_\d+) ", text, re.MULTILINE))) == 64 * 64
    assert json.loads(manifest.read_text())["config"] == config.to_dict()


@pytest.mark.slow
@pytest.mark.verilator
@pytest.mark.parametrize(("size", "dataflow"), [(24, "os"), (24, "ws"), (32, "os"), (32, "ws")])
def test_large_array_gemm_in_verilator(accel, build_root, size, dataflow):
    """A GEMM of several tiles in each direction, with ragged edges, through ``accel sim`` (the
    accelerator's cocotb bench), bit-exact against NumPy."""
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
