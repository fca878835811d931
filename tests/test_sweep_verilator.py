"""`accel sweep --fidelity rtl`, reduced: 2×2 (both dataflows), 4×4 ws and 8×8 os on small GEMMs.

One sweep builds the four harnesses (the accelerator in Verilator with the C++ harness, cached by
digest under the build root) two at a time, runs each config's GEMMs on one, checks every result
against NumPy and records the model's error against the measured cycles; the cycles agree with
`accel sim`'s (the cocotb bench).
"""

from __future__ import annotations

import csv
import json

import pytest

from accelerator.config import AcceleratorConfig
from accelerator.dse.plots import make_plots
from accelerator.dse.runner import plan_points, run_sweep
from accelerator.dse.space import ConfigPoint
from accelerator.dse.store import Store
from accelerator.dse.table import rows_from_records
from accelerator.dse.workloads import Layer, Workload, parse_gemm
from accelerator.model.cases import GemmCase, bench_layout
from accelerator.model.perf import estimate

pytestmark = pytest.mark.verilator

CONFIGS = [AcceleratorConfig(rows=2, cols=2, dataflow="os"),
           AcceleratorConfig(rows=2, cols=2, dataflow="ws"),
           AcceleratorConfig(rows=4, cols=4, dataflow="ws"),
           AcceleratorConfig(rows=8, cols=8, dataflow="os")]
TINY = Workload("tiny", (Layer("a", 5, 7, 3, count=2), Layer("b", 37, 29, 41)))


def test_reduced_rtl_sweep(accel, tmp_path, build_root, seed):
    configs = [ConfigPoint(values={"rows": c.rows, "cols": c.cols, "dataflow": c.dataflow},
                           config=c) for c in CONFIGS]
    workloads = [parse_gemm("37x29x41"), parse_gemm("16x24x8"), TINY,
                 parse_gemm("40000x40000x40000")]  # the last does not fit the 4 GiB memory
    points = plan_points(AcceleratorConfig(), configs, workloads, ["rtl"], seed=seed)
    store = Store(tmp_path / "sweep")
    result = run_sweep(points, store, jobs=2, build_root=build_root)
    assert result.computed == 16 and result.resumed == 0

    rows = rows_from_records(result.records)
    by = {(r["rows"], r["dataflow"], r["workload"]): r for r in rows}
    for config in CONFIGS:
        where = f"{config.name}, ACCEL_SEED={seed}"
        big = by[(config.rows, config.dataflow, "40000x40000x40000")]
        assert big["status"] == "failed" and "needs up to" in big["error"], where
        for name in ("37x29x41", "16x24x8", "tiny"):
            row = by[(config.rows, config.dataflow, name)]
            assert row["status"] == "ok", f"{where}: {row['error']} (log {row['log']})"
            assert 0 < row["rtl_utilization"] <= 1
            assert row["cycles"] == row["rtl_cycles"]
            assert row["model_error"] == pytest.approx(
                (row["model_cycles"] - row["rtl_cycles"]) / row["rtl_cycles"])
        # the same GEMM, simulated as a layer of TINY and on its own, takes the same cycles
        record = next(r for r in result.records if r["key"] == by[
            (config.rows, config.dataflow, "tiny")]["key"])
        layer_b = next(entry for entry in record["layers"] if entry["name"] == "b")
        assert layer_b["rtl_cycles"] == by[(config.rows, config.dataflow, "37x29x41")][
            "rtl_cycles"], where
        assert record["rtl"]["cycles"] == sum(entry["rtl_cycles"] * entry["count"]
                                              for entry in record["layers"])
        # rtl rows carry the model for the matrices where the bench put them
        def placed(m, k, n, config=config):
            case = GemmCase(m=m, k=k, n=n, seed=seed)
            return estimate(config, m, k, n, layout=bench_layout(config, case)).cycles

        assert by[(config.rows, config.dataflow, "tiny")]["model_cycles"] == (
            2 * placed(5, 7, 3) + placed(37, 29, 41))
        assert abs(by[(config.rows, config.dataflow, "37x29x41")]["model_error"]) <= 0.02

    # the sweep measures what `accel sim` measures
    row = by[(8, "os", "37x29x41")]
    code, out, err = accel("sim", "--rows", "8", "--cols", "8", "--m", "37", "--k", "29",
                           "--n", "41", "--seed", str(seed), "--json", "--build-root",
                           str(build_root))
    assert code in (0, None), err
    assert json.loads(out)["cycles"] == row["rtl_cycles"]

    report = make_plots(rows, tmp_path / "plots")
    assert {p.name for p in report.written} >= {"model_vs_rtl.png", "model_vs_rtl.svg"}

    # The CLI finds the 2×2 points in the store (same keys) and simulates nothing.
    code, out, err = accel("sweep", "--rows", "2", "--cols", "2", "--dataflow", "os,ws",
                           "--gemm", "37x29x41", "--gemm", "16x24x8", "--fidelity", "rtl",
                           "--seed", str(seed), "--out", str(tmp_path / "sweep"), "--json",
                           "--build-root", str(build_root))
    assert code in (0, None), err
    summary = json.loads(out)
    assert (summary["resumed"], summary["computed"], summary["ok"]) == (4, 0, 4)
    assert summary["max_abs_model_error"] == max(
        abs(by[(2, d, w)]["model_error"]) for d in ("os", "ws") for w in ("37x29x41", "16x24x8"))
    with open(tmp_path / "sweep" / "sweep.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert sorted((r["dataflow"], r["workload"], r["fidelity"]) for r in table) == [
        ("os", "16x24x8", "rtl"), ("os", "37x29x41", "rtl"), ("ws", "16x24x8", "rtl"),
        ("ws", "37x29x41", "rtl")]


def test_an_rtl_sweep_of_one_config_simulates_on_threads(tmp_path, build_root, seed,
                                                         monkeypatch):
    """One config and two workers: its task runs two harnesses side by side, and each layer's
    cycles are those of the layer run alone on a fresh harness."""
    import accelerator.flow.harness as harness_module
    from accelerator.driver.harness import run_case
    from accelerator.flow.harness import Harness, build_harness

    made = []

    class Counting(Harness):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(harness_module, "Harness", Counting)
    config = AcceleratorConfig(rows=2, cols=2, dataflow="os")
    workload = Workload("three", (Layer("a", 5, 7, 3), Layer("b", 37, 29, 41, count=3),
                                  Layer("c", 16, 24, 8), Layer("d", 5, 7, 3)))
    points = plan_points(config, [ConfigPoint(values={}, config=config)], [workload], ["rtl"],
                         seed=seed)
    result = run_sweep(points, Store(tmp_path / "sweep"), jobs=2, build_root=build_root)
    record = result.records[0]
    assert record["status"] == "ok", record["error"]
    assert len(made) == 2
    with Harness(build_harness(config, root=build_root)) as fresh:
        fresh.reset()
        for layer in record["layers"]:
            alone = run_case(fresh, config, GemmCase(m=layer["m"], k=layer["k"], n=layer["n"],
                                                     seed=seed))
            assert alone["passed"] and layer["rtl_cycles"] == alone["cycles"], (layer, seed)
    assert record["rtl"]["cycles"] == sum(layer["rtl_cycles"] * layer["count"]
                                          for layer in record["layers"])
