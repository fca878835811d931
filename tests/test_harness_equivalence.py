"""The two benches agree: the same GEMMs through the cocotb bench (AxiRam, AxiLiteMaster,
Python on every edge) and through the C++ harness give the same C, the same CYCLES and the same
performance counters, with the memory answering at once and with a fixed read and write latency
(the deterministic setting both benches implement; random back-pressure cannot match across two
random generators)."""

from __future__ import annotations

import pytest

from accelerator.config import AcceleratorConfig
from accelerator.driver.harness import run_case
from accelerator.flow.harness import Harness, build_harness
from accelerator.flow.rtl import ACCEL_TOP
from accelerator.flow.sim import build_model, run_gemms
from accelerator.model.cases import GemmCase
from accelerator.model.geometry import Geometry

CONFIGS = {"os": AcceleratorConfig(), "ws": AcceleratorConfig(dataflow="ws")}
MEMORY = {"none": {}, "latency": {"read_latency": 7, "write_latency": 5}}


def _cases(config: AcceleratorConfig) -> list[GemmCase]:
    k_long = Geometry.of(config).k_step + 9  # K walked in two steps
    return [
        GemmCase(m=1, k=1, n=1, seed=1),
        GemmCase(m=config.rows + 1, k=13, n=2 * config.cols - 1, seed=2),
        GemmCase(m=37, k=29, n=41, seed=7),
        GemmCase(m=9, k=70, n=6, seed=11, accumulate=True, requant=True, values="extreme"),
        GemmCase(m=6, k=23, n=5, seed=12, requant=True),
        GemmCase(m=5, k=31, n=7, seed=13, accumulate=True),
        GemmCase(m=3, k=k_long, n=5, seed=14),
    ]


@pytest.mark.verilator
@pytest.mark.parametrize("memory", list(MEMORY))
@pytest.mark.parametrize("dataflow", list(CONFIGS))
def test_cocotb_and_harness_agree(build_root, dataflow, memory):
    config = CONFIGS[dataflow]
    cases = _cases(config)
    model = build_model(config, top=ACCEL_TOP, root=build_root)
    records, outcome = run_gemms(model, cases, seed=1, name=f"equivalence_{memory}",
                                 memory=MEMORY[memory])
    assert outcome.ok, outcome.failures
    assert len(records) == len(cases)
    with Harness(build_harness(config, root=build_root)) as h:
        h.reset()
        h.set_latency(MEMORY[memory].get("read_latency", 0),
                      MEMORY[memory].get("write_latency", 0))
        fast = [run_case(h, config, case) for case in cases]
        if memory != "none":  # the setting is in effect: the same GEMMs take longer
            h.set_latency(0, 0)
            prompt = [run_case(h, config, case)["cycles"] for case in cases]
            assert all(r["cycles"] > c for r, c in zip(fast, prompt, strict=True))
    for case, slow, quick in zip(cases, records, fast, strict=True):
        assert slow["passed"] and quick["passed"], case
        assert quick["c_sha256"] == slow["c_sha256"], case
        assert quick["cycles"] == slow["cycles"], case
        assert quick["counters"] == slow["counters"], case
