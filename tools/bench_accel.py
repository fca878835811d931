#!/usr/bin/env python3
"""Benchmark the whole accelerator in Verilator: MAC utilization, model error, speed.

    python tools/bench_accel.py                        # 256x256x256 on 8x8, os/ws, 64/128-bit AXI
    python tools/bench_accel.py --size 4x4 --gemm 64x64x64 --axi 64

Each configuration runs `accel sim`'s test (the real driver over AXI4-Lite, AxiRam as memory, the
result checked against NumPy) and reports the RTL's cycles next to the performance model's.
Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from accelerator.config import AcceleratorConfig
from accelerator.flow.rtl import ACCEL_TOP
from accelerator.flow.sim import build_model, run_tests
from accelerator.model.cases import GemmCase, bench_layout
from accelerator.model.perf import estimate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="8x8")
    parser.add_argument("--gemm", default="256x256x256", help="MxKxN")
    parser.add_argument("--dataflows", default="os,ws")
    parser.add_argument("--axi", default="64,128", help="AXI data widths")
    parser.add_argument("--root", type=Path, default=Path("build"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows, cols = (int(x) for x in args.size.split("x"))
    m, k, n = (int(x) for x in args.gemm.split("x"))
    results = []
    for dataflow in args.dataflows.split(","):
        for width in (int(w) for w in args.axi.split(",")):
            config = AcceleratorConfig(rows=rows, cols=cols, dataflow=dataflow,
                                       axi_data_width=width)
            print(f"{config.name} {width}-bit ...", file=sys.stderr, flush=True)
            model = build_model(config, top=ACCEL_TOP, root=args.root)
            report = model.build_dir / "bench_accel.jsonl"
            report.unlink(missing_ok=True)
            case = GemmCase(m=m, k=k, n=n, seed=1)
            start = time.monotonic()
            outcome = run_tests(model, "accel_tb", seed=1, testcase="sim_gemm",
                                results_name="bench_accel",
                                extra_env={"ACCEL_GEMM": case.to_json(),
                                           "ACCEL_REPORT": str(report)})
            wall = time.monotonic() - start
            record = json.loads(report.read_text().splitlines()[-1])
            if not (outcome.ok and record["passed"]):
                raise SystemExit(f"{config.name}: FAILED, see {outcome.log}")
            # the model for the matrices where the bench put them, and over all placements
            placed = estimate(config, m, k, n, layout=bench_layout(config, case)).cycles
            average = estimate(config, m, k, n).cycles
            results.append({
                "config": config.name, "dataflow": dataflow, "axi": width,
                "cycles": record["cycles"], "utilization": record["utilization"],
                "model_cycles": placed, "model_error": (placed - record["cycles"])
                / record["cycles"], "average_model_cycles": average,
                "average_model_error": (average - record["cycles"]) / record["cycles"],
                "wall_seconds": round(wall, 1),
                "cycles_per_second": round(record["wall_cycles"] / wall),
                "counters": record["counters"], "build_seconds": round(model.build_seconds, 1),
            })
    print(f"| {m}×{k}×{n} on {rows}×{cols} | AXI | RTL cycles | MAC utilization | model cycles "
          "| model error | model, any placement | stall_load | wall time (s) "
          "| simulated cycles/s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(f"| {r['dataflow']} | {r['axi']}-bit | {r['cycles']:,} | {r['utilization']:.1%} | "
              f"{r['model_cycles']:,} | {r['model_error']:+.2%} | "
              f"{r['average_model_cycles']:,} ({r['average_model_error']:+.1%}) | "
              f"{r['counters']['stall_load']:,} | {r['wall_seconds']} | "
              f"{r['cycles_per_second']:,} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
