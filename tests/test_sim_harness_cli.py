"""`accel sim` on both benches: the C++ harness (the default) and the cocotb bench
(`--bench cocotb`); its checks before any build; the harness's VCD waveform."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from accelerator.config import AcceleratorConfig
from accelerator.model.cases import GemmCase, bench_layout
from accelerator.model.perf import TOLERANCE, estimate

CONFIGS = {"os": ["--rows", "4", "--cols", "4", "--dataflow", "os"],
           "ws": ["--rows", "4", "--cols", "4", "--dataflow", "ws"]}


def _sim(accel, build_root, *args):
    code, out, err = accel("sim", *args, "--json", "--build-root", str(build_root))
    assert code in (0, None), err
    return json.loads(out)


@pytest.mark.verilator
@pytest.mark.parametrize("extra", [[], ["--requant"], ["--accumulate", "--values", "extreme"]],
                         ids=["int32", "requant", "accumulate"])
@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_sim_harness_and_cocotb_agree(accel, build_root, dataflow, extra):
    args = [*CONFIGS[dataflow], "--m", "11", "--k", "13", "--n", "9", "--seed", "3", *extra]
    fast = _sim(accel, build_root, *args)
    slow = _sim(accel, build_root, *args, "--bench", "cocotb")
    assert (fast["bench"], slow["bench"]) == ("harness", "cocotb")
    for result in (fast, slow):
        assert result["passed"] is True and result["mismatches"] == 0
        assert result["cycles"] == result["counters"]["cycles"] > 0
        assert result["counters"]["dma_wr_bytes"] == 11 * 9 * (1 if extra == ["--requant"]
                                                                else 4)
    assert fast["cycles"] == slow["cycles"]
    assert fast["counters"] == slow["counters"]
    # the model's cycles are its estimate for the matrices where the bench put them
    case = GemmCase(m=11, k=13, n=9, seed=3, accumulate="--accumulate" in extra,
                    requant="--requant" in extra, values="extreme" if "extreme" in extra
                    else "random")
    config = AcceleratorConfig(rows=4, cols=4, dataflow=dataflow)
    assert fast["model_cycles"] == estimate(config, 11, 13, 9, accumulate=case.accumulate,
                                            requant=case.requant,
                                            layout=bench_layout(config, case)).cycles
    assert abs(fast["model_error"]) <= TOLERANCE


@pytest.mark.verilator
@pytest.mark.parametrize("bench", ["harness", "cocotb"])
def test_sim_backpressure(accel, build_root, bench):
    args = ["--m", "13", "--k", "17", "--n", "11", "--seed", "5", "--bench", bench]
    calm = _sim(accel, build_root, *args)
    busy = _sim(accel, build_root, *args, "--backpressure", "0.5")
    assert calm["passed"] and busy["passed"]
    assert busy["cycles"] > calm["cycles"]


@pytest.mark.verilator
def test_sim_harness_writes_a_vcd(accel, build_root):
    result = _sim(accel, build_root, "--m", "5", "--k", "6", "--n", "7", "--waves")
    assert result["passed"]
    path = result["waves"]
    assert path and path.endswith(".vcd")
    text = Path(path).read_text()
    header, _, body = text.partition("$enddefinitions")
    ident = re.search(r"\$var wire 1 (\S+) m_axi__arvalid \$end", header).group(1)
    changes = re.findall(rf"^([01]){re.escape(ident)}$", body, re.MULTILINE)
    # the DMA raised and dropped arvalid: at least one read burst, as a value change
    assert "1" in changes and "0" in changes
    assert re.search(r"^#\d+$", body, re.MULTILINE)


@pytest.mark.verilator
def test_sim_harness_cycle_limit_is_an_error_not_a_hang(accel, build_root):
    # the model (no back-pressure) says about 1,200 cycles; heavy back-pressure needs more
    code, _out, err = accel("sim", "--m", "8", "--k", "40", "--n", "8", "--backpressure", "0.9",
                            "--max-cycles", "2000", "--build-root", str(build_root))
    assert code == 1
    assert "did not finish within --max-cycles = 2,000 cycles" in err


def _model(m: int, k: int, n: int) -> str:
    return f"{estimate(AcceleratorConfig(), m, k, n).cycles:,}"


@pytest.mark.parametrize("args,message", [
    (["--m", "60000", "--k", "60000", "--n", "64"],
     (f"accel sim: error: 60000×60000×64 needs about {_model(60000, 60000, 64)} cycles by the "
     "performance model, more than --max-cycles = 1,000,000,000 (raise it with --max-cycles N)")),
    (["--m", "64", "--k", "64", "--n", "64", "--max-cycles", "1000"],
     (f"accel sim: error: 64×64×64 needs about {_model(64, 64, 64)} cycles by the performance "
     "model, more than --max-cycles = 1,000 (raise it with --max-cycles N)")),
    (["--m", "60000", "--k", "600", "--n", "64", "--bench", "cocotb"],
     ("accel sim: error: 60000×600×64 needs up to 53,630,464 bytes of memory, more than the "
     "cocotb bench's 4,194,304 (the harness, --bench harness, has 4 GiB)")),
    (["--m", "1", "--k", "1", "--n", "1", "--max-cycles", "0"],
     "accel sim: error: Invalid value for '--max-cycles': 0 is not in the range x>=1."),
    (["--m", "1", "--k", "1", "--n", "1", "--bench", "fpga"],
     "accel sim: error: Invalid value for '--bench': 'fpga' is not one of 'harness', 'cocotb'."),
])
def test_sim_refuses_before_building(accel, tmp_path, args, message):
    code, _out, err = accel("sim", *args, "--build-root", str(tmp_path))
    assert code == 2
    assert err.splitlines() == [message]
    assert not any(tmp_path.iterdir())  # nothing was built


def test_1024_cubed_fits_the_harness_not_the_cocotb_bench():
    """1024³ runs on the harness (4 GiB, under the default cycle limit); the cocotb bench's
    4 MiB AxiRam cannot hold it, and says so before building."""
    from click import UsageError

    from accelerator.cli.sim import DEFAULT_MAX_CYCLES, _check_size
    from accelerator.model.cases import GemmCase

    config, case = AcceleratorConfig(), GemmCase(m=1024, k=1024, n=1024)
    assert _check_size(config, case, "harness", DEFAULT_MAX_CYCLES) == \
        estimate(config, 1024, 1024, 1024).cycles
    with pytest.raises(UsageError, match="more than the cocotb bench's 4,194,304"):
        _check_size(config, case, "cocotb", DEFAULT_MAX_CYCLES)
