#!/usr/bin/env python3
"""Benchmark the fast RTL path: the C++ harness against the cocotb bench and SCALE-Sim 3.0.

    python tools/bench_harness.py                          # 8x8, 256x256x256, all three
    python tools/bench_harness.py --skip-cocotb --skip-scalesim --repeat 5
    python tools/bench_harness.py --opts=-O1,-O2,-O3       # build time against run time
    python tools/bench_harness.py --library build/harness/<dir>/obj/libharness.so  # rebuilt

One GEMM (``accel sim``'s case: the real driver, the result checked against NumPy) on a built
model: the harness's simulated cycles per second and wall time; the cocotb bench on the same
GEMM; SCALE-Sim 3.0's analytic run of the same GEMM on an array of the same size. Times are wall
and CPU (this process and its children): on a shared machine the CPU time is the steadier one,
so the table gives simulated cycles per wall second and per CPU second, and the load average
around the run. Prints a Markdown table; ``--json`` writes the numbers.

SCALE-Sim is not a dependency of the project: ``pip install scalesim==3.0.0`` for this script.
"""

from __future__ import annotations

import argparse
import builtins
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from accelerator.config import AcceleratorConfig
from accelerator.driver.harness import run_case
from accelerator.flow.harness import Harness, build_harness, build_seconds
from accelerator.flow.rtl import ACCEL_TOP
from accelerator.flow.sim import build_model, run_tests
from accelerator.model.cases import GemmCase


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class Clock:
    def __enter__(self) -> Clock:
        self.wall, self.cpu = time.perf_counter(), _cpu()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, _cpu() - self.cpu


def bench_harness(config: AcceleratorConfig, case: GemmCase, root: Path, opt: str | None,
                  library: Path | None = None, repeat: int = 1) -> dict:
    kwargs = {"compiler_opt": opt} if opt else {}
    with Clock() as build:
        if library is None:
            library = build_harness(config, root=root, **kwargs)
    runs = []
    for _ in range(repeat):  # a fresh harness each time; the first run also warms the process
        with Harness(library) as h:
            h.reset()
            with Clock() as run:
                record = run_case(h, config, case)
        if not record["passed"]:
            raise SystemExit(f"harness: {record['mismatches']} elements differ")
        runs.append(run)
    run = min(runs, key=lambda r: r.cpu)
    return {"bench": "harness", "opt": opt or "default", "cycles": record["cycles"],
            "sim_cycles": record["wall_cycles"], "wall": run.wall, "cpu": run.cpu,
            "cpu_runs": [r.cpu for r in runs], "wall_runs": [r.wall for r in runs],
            "build_seconds": build_seconds(library) if (library.parent / "harness.json").is_file()
            else None, "build_wall_now": build.wall}


def bench_cocotb(config: AcceleratorConfig, case: GemmCase, root: Path) -> dict:
    model = build_model(config, top=ACCEL_TOP, root=root)
    report = model.build_dir / "bench_harness.jsonl"
    report.unlink(missing_ok=True)
    with Clock() as run:
        outcome = run_tests(model, "accel_tb", seed=case.seed, testcase="sim_gemm",
                            results_name="bench_harness",
                            extra_env={"ACCEL_GEMM": case.to_json(),
                                       "ACCEL_REPORT": str(report)})
    record = json.loads(report.read_text().splitlines()[-1])
    if not (outcome.ok and record["passed"]):
        raise SystemExit(f"cocotb: FAILED, see {outcome.log}")
    # the run includes the simulator's start (about a second); the cycles are the GEMM's own
    return {"bench": "cocotb", "cycles": record["cycles"], "sim_cycles": record["wall_cycles"],
            "wall": run.wall, "cpu": run.cpu, "build_seconds": model.build_seconds}


_SCALESIM_CONFIG = """\
[general]
run_name = accel_gemm

[run_presets]
InterfaceBandwidth = CALC
UseRamulatorTrace = False

[architecture_presets]
ArrayHeight = {rows}
ArrayWidth = {cols}
ifmapsramszkB = {a_kb}
filtersramszkB = {b_kb}
ofmapsramszkB = {c_kb}
IfmapOffset = 0
FilterOffset = 10000000
OfmapOffset = 20000000
Dataflow = {dataflow}
ReadRequestBuffer = 32
WriteRequestBuffer = 32

[layout]
IfmapCustomLayout = False
FilterCustomLayout = False
IfmapSRAMBankBandwidth = {bank}
IfmapSRAMBankNum = 1
IfmapSRAMBankPort = 2
FilterSRAMBankBandwidth = {bank}
FilterSRAMBankNum = 1
FilterSRAMBankPort = 2

[sparsity]
SparsitySupport = false
"""


def bench_scalesim(config: AcceleratorConfig, case: GemmCase) -> dict:
    try:
        import numpy as np
        import scalesim.memory.double_buffered_scratchpad_mem as dbm
        from scalesim.scale_sim import scalesim
    except ImportError:
        raise SystemExit("SCALE-Sim is not installed: pip install scalesim==3.0.0 "
                         "(or run with --skip-scalesim)") from None

    # SCALE-Sim 3.0.0 calls int(max(list of one-element arrays)), which NumPy 2 refuses; this
    # max returns the same value as a scalar (the cycles it computes are unchanged).
    def _max(*args):
        return np.asarray(args[0]).max() if len(args) == 1 else builtins.max(args)

    dbm.max = _max
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        # scratchpads the size of ours (kB), the bus width as the SRAM bank's
        (work / "scale.cfg").write_text(_SCALESIM_CONFIG.format(
            rows=config.rows, cols=config.cols, dataflow=config.dataflow,
            a_kb=max(1, config.spad_a_depth * config.rows // 1024),
            b_kb=max(1, config.spad_b_depth * config.cols // 1024),
            c_kb=max(1, config.spad_c_depth * config.cols * 4 // 1024),
            bank=config.axi_bytes))
        (work / "gemm.csv").write_text(f"Layer, M, N, K,\nGEMM, {case.m}, {case.n}, {case.k},\n")
        (work / "layout.csv").write_text("Layer, a, b, c, d, e, f, g,\n"
                                         "GEMM, 1, 1, 1, 1, 1, 1, 1,\n")
        with Clock() as run:
            sim = scalesim(save_disk_space=True, verbose=False, config=str(work / "scale.cfg"),
                           topology=str(work / "gemm.csv"), layout=str(work / "layout.csv"),
                           input_type_gemm=True)
            sim.run_scale(top_path=str(work / "out"))
        report = sim.runner.single_layer_sim_object_list[0].get_compute_report_items()
    return {"bench": "scalesim", "cycles": int(report[0]), "wall": run.wall, "cpu": run.cpu}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="8x8")
    parser.add_argument("--dataflow", default="os")
    parser.add_argument("--gemm", default="256x256x256", help="MxKxN")
    parser.add_argument("--root", type=Path, default=Path("build"))
    parser.add_argument("--opts", default="",
                        help="compiler optimizations to compare (e.g. -O1,-O2,-O3): each is "
                             "built afresh in a temporary root and timed")
    parser.add_argument("--library", type=Path,
                        help="bench this built library (e.g. the model's obj/ directory rebuilt "
                             "with other compiler flags) instead of the cached default build")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run the harness's GEMM this many times (a fresh harness each) and "
                             "report the run with the least CPU; every run's times go to --json")
    parser.add_argument("--skip-cocotb", action="store_true")
    parser.add_argument("--skip-scalesim", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows, cols = (int(x) for x in args.size.split("x"))
    m, k, n = (int(x) for x in args.gemm.split("x"))
    config = AcceleratorConfig(rows=rows, cols=cols, dataflow=args.dataflow)
    case = GemmCase(m=m, k=k, n=n, seed=1)
    load_before = os.getloadavg()[0]
    results = []
    print(f"harness {config.name} ...", file=sys.stderr, flush=True)
    results.append(bench_harness(config, case, args.root, None, args.library, args.repeat))
    for opt in filter(None, args.opts.split(",")):
        print(f"harness built with {opt} ...", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            results.append(bench_harness(config, case, Path(tmp), opt, repeat=args.repeat))
    if not args.skip_cocotb:
        print("cocotb ...", file=sys.stderr, flush=True)
        results.append(bench_cocotb(config, case, args.root))
    if not args.skip_scalesim:
        print("SCALE-Sim ...", file=sys.stderr, flush=True)
        results.append(bench_scalesim(config, case))
    base = results[0]
    load = (load_before, os.getloadavg()[0])
    print(f"Load average (1 min) {load[0]:.2f} before, {load[1]:.2f} after; CPU is user + system "
          "of this process and its children.\n")
    print(f"| {m}×{k}×{n} on {rows}×{cols} {args.dataflow} | cycles | wall (s) | CPU (s) "
          "| simulated cycles/s (wall, CPU) | harness faster by (wall, CPU) | build (s) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        name = r["bench"] + (f" {r['opt']}" if r["bench"] == "harness" else "")
        rate = (f"{r['sim_cycles'] / r['wall']:,.0f}, {r['sim_cycles'] / r['cpu']:,.0f}"
                if "sim_cycles" in r else "—")
        faster = f"{r['wall'] / base['wall']:,.1f}×, {r['cpu'] / base['cpu']:,.1f}×"
        build = f"{r['build_seconds']:.0f}" if r.get("build_seconds") else "—"
        print(f"| {name} | {r['cycles']:,} | {r['wall']:.2f} | {r['cpu']:.2f} | {rate} "
              f"| {faster} | {build} |")
    if args.json:
        args.json.write_text(json.dumps({"load_average": load, "results": results}, indent=2)
                             + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
