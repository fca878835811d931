#!/usr/bin/env python3
"""Benchmark the systolic core in Verilator: MAC utilization, build time, simulation speed.

    python tools/bench_core.py                     # 8x8 and 16x16, both dataflows, 64 tiles of 64
    python tools/bench_core.py --sizes 4x4 --tiles 16 --length 32 --json out.json

Each configuration is built from scratch in build/bench/ (so the build time is a real one) and
runs the `utilization_stream` test of verification/core_tb.py: a stream of tiles with no stall,
whose cycle count the bench also checks against the performance model. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from accelerator.config import AcceleratorConfig
from accelerator.flow.sim import build_model, run_tests


def parse_size(text: str) -> tuple[int, int]:
    rows, _, cols = text.partition("x")
    return int(rows), int(cols)


def bench(config: AcceleratorConfig, root: Path, tiles: int, length: int, seed: int) -> dict:
    model = build_model(config, root=root)
    report = model.build_dir / "bench.json"
    report.unlink(missing_ok=True)
    start = time.monotonic()
    outcome = run_tests(model, "core_tb", seed=seed, testcase="utilization_stream",
                        results_name="bench",
                        extra_env={"ACCEL_REPORT": str(report), "ACCEL_BENCH_TILES": str(tiles),
                                   "ACCEL_BENCH_LENGTH": str(length)})
    wall = time.monotonic() - start
    if not outcome.ok:
        raise SystemExit(f"{config.name}: the benchmark test failed: {outcome.failures}; "
                         f"see {outcome.log}")
    measured = json.loads(report.read_text())["utilization_stream"]
    case = next(ET.parse(outcome.results_xml).getroot().iter("testcase"))
    test_seconds = float(case.get("time", "nan"))
    return {
        "config": config.name, "rows": config.rows, "cols": config.cols,
        "dataflow": config.dataflow, **measured,
        "build_seconds": round(model.build_seconds, 1),
        "test_seconds": round(test_seconds, 2), "run_seconds": round(wall, 2),
        "cycles_per_second": round(measured["cycles"] / test_seconds),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="8x8,16x16")
    parser.add_argument("--dataflows", default="os,ws")
    parser.add_argument("--tiles", type=int, default=64)
    parser.add_argument("--length", type=int, default=64, help="K (os) or M (ws) of each tile")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--root", type=Path, default=Path("build/bench"))
    parser.add_argument("--keep", action="store_true", help="reuse cached builds")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args()

    if not args.keep and args.root.exists():
        shutil.rmtree(args.root)
    rows = []
    for size in args.sizes.split(","):
        r, c = parse_size(size)
        for dataflow in args.dataflows.split(","):
            config = AcceleratorConfig(rows=r, cols=c, dataflow=dataflow)
            print(f"{config.name} ...", file=sys.stderr, flush=True)
            rows.append(bench(config, args.root, args.tiles, args.length, args.seed))

    print("| array | dataflow | tiles × length | cycles | model cycles | MAC utilization "
          "| Verilator build (s) | simulated cycles/s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print(f"| {row['rows']}×{row['cols']} | {row['dataflow']} | {row['tiles']} × "
              f"{row['length']} | {row['cycles']:,} | {row['model_cycles']:,} | "
              f"{row['utilization']:.2%} | {row['build_seconds']} | "
              f"{row['cycles_per_second']:,} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
