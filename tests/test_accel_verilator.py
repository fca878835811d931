"""The whole accelerator in Verilator through `accel sim` and `accel verify` (slower tier).

Both commands run in-process through the `accel` fixture (tests/conftest.py); each
configuration's model is built once (cached by digest under the build root) and shared by the
tests that use it.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

CONFIGS = {"os": ["--rows", "4", "--cols", "4", "--dataflow", "os"],
           "ws": ["--rows", "4", "--cols", "4", "--dataflow", "ws"]}


@pytest.mark.verilator
@pytest.mark.parametrize("requant", [False, True], ids=["int32", "requant"])
@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_accel_sim_37x29x41(accel, build_root, dataflow, requant):
    args = ["sim", *CONFIGS[dataflow], "--m", "37", "--k", "29", "--n", "41", "--seed", "7",
            "--json", "--build-root", str(build_root)] + (["--requant"] if requant else [])
    code, out, err = accel(*args)
    assert code in (0, None), err
    result = json.loads(out)
    assert result["passed"] is True
    assert (result["m"], result["k"], result["n"], result["seed"]) == (37, 29, 41, 7)
    assert result["macs"] == 37 * 29 * 41
    assert 0 < result["utilization"] <= 1
    assert result["cycles"] == result["counters"]["cycles"] > 0
    assert result["config"]["dataflow"] == dataflow
    # int8 results are a quarter of the int32 bytes: 37 rows of 41 elements
    assert result["counters"]["dma_wr_bytes"] == 37 * 41 * (1 if requant else 4)
    for key in ("mac_cycles", "dma_rd_bytes", "stall_load", "stall_store"):
        assert key in result["counters"]
    # docs/hardware.md: DMA_RD_BYTES counts payload bytes, A once per column panel, B once
    # per panel while it fits its scratchpad (it does here)
    from accelerator.config import AcceleratorConfig
    from accelerator.model.perf import tile_grid
    grid = tile_grid(AcceleratorConfig.from_dict(result["config"]), 37, 29, 41)
    assert grid.b_resident
    assert result["counters"]["dma_rd_bytes"] == grid.n_tiles * 37 * 29 + 29 * 41


@pytest.mark.verilator
@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_accel_verify_200(accel, build_root, tmp_path, seed, dataflow):
    junit = tmp_path / "verify.xml"
    code, out, err = accel("verify", *CONFIGS[dataflow], "--count", "200", "--seed", str(seed),
                           "--junit", str(junit), "--build-root", str(build_root))
    assert code in (0, None), f"ACCEL_SEED={seed}: {out}{err}"
    suite = ET.parse(junit).getroot()
    assert suite.get("tests") == "209" and suite.get("failures") == "0"
    names = [case.get("classname") for case in suite.iter("testcase")]
    assert names.count("accel.gemm") == 200
    assert names.count("accel.illegal") == 8
    assert names.count("accel.reset") == 1


@pytest.mark.verilator
@pytest.mark.parametrize("config", [
    ["--axi-data-width", "32"],
    ["--rows", "3", "--cols", "2", "--in-width", "6", "--acc-width", "20"],
], ids=["4x4_32bit", "3x2_acc20"])
def test_accel_verify_compact(accel, build_root, tmp_path, seed, config):
    """The compact engine: random GEMMs (with back-pressure, accumulate, edge tiles), every
    illegal command and a reset mid-GEMM, as for the pipelined engine."""
    junit = tmp_path / "verify.xml"
    code, out, err = accel("verify", "--engine", "compact", "--no-requant-unit", *config,
                           "--count", "60", "--seed", str(seed), "--junit", str(junit),
                           "--build-root", str(build_root))
    assert code in (0, None), f"ACCEL_SEED={seed}: {out}{err}"
    suite = ET.parse(junit).getroot()
    assert suite.get("tests") == "69" and suite.get("failures") == "0"


@pytest.mark.parametrize("args,message", [
    (["--m", "0", "--k", "1", "--n", "1"],
     "accel sim: error: --m = 0 is out of range (allowed: 1 to 65535)"),
    (["--m", "1", "--k", "70000", "--n", "1"],
     "accel sim: error: --k = 70000 is out of range (allowed: 1 to 65535)"),
    (["--m", "1", "--k", "1", "--n", "1", "--requant", "--no-requant-unit"],
     "accel sim: error: --requant needs hardware generated with requant_unit = true"),
    (["--m", "1", "--k", "1", "--n", "1", "--rows", "0"],
     "accel sim: error: invalid config: rows = 0 is out of range (allowed: 1 to 64)"),
    (["--m", "1", "--k", "1", "--n", "1", "--backpressure", "2"],
     "accel sim: error: Invalid value for '--backpressure': 2.0 is not in the range 0<=x<=0.9."),
])
def test_accel_sim_bad_input_exits_2_with_one_line(accel, args, message):
    code, _out, err = accel("sim", *args)
    assert code == 2
    assert err.splitlines() == [message]
