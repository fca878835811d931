#!/usr/bin/env python3
"""Benchmark a model-fidelity `accel sweep` of 10,800 points: how long the whole command takes.

    python tools/bench_sweep.py                  # 2..16 × 2..16 × os,ws × 64/128-bit AXI × 12 GEMMs
    python tools/bench_sweep.py --jobs 1 --json build/bench_sweep.json

Runs the real command in a subprocess, from a fresh output directory (nothing to resume), twice:
once without plots (the sweep: planning, the model on every point, one JSON file per point, the
table) and once resuming the finished sweep with plots (loading 10,800 stored points, the table
and the figures). Prints a Markdown table of the wall-clock times and the sweep's own count.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: 12 shapes from a GEMV to 256³, with non-multiples of the array: 15·15·2·2·12 = 10,800 points.
GEMMS = ("32x32x32", "37x29x41", "64x64x64", "100x100x100", "128x96x64", "128x64x128",
         "16x256x16", "1x1024x1024", "512x128x64", "256x64x256", "256x256x256", "64x576x64")
SPACE = ("--rows", "2..16", "--cols", "2..16", "--dataflow", "os,ws",
         "--axi-data-width", "64,128")


def run(args: list[str]) -> tuple[float, dict]:
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "accelerator", "sweep", *args, "--json"],
                          capture_output=True, text=True, check=False)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"accel sweep failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return seconds, json.loads(proc.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", type=Path, help="write the measurements here too")
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="bench_sweep."))
    try:
        common = [*SPACE, *(a for g in GEMMS for a in ("--gemm", g)), "--out", str(out),
                  "--jobs", str(args.jobs)]
        sweep_s, summary = run([*common, "--no-plots"])
        resume_s, resumed = run([*common, "--plots"])
    finally:
        shutil.rmtree(out, ignore_errors=True)
    assert summary["computed"] == summary["points"] == resumed["resumed"], (summary, resumed)
    result = {"points": summary["points"], "jobs": args.jobs, "sweep_seconds": round(sweep_s, 1),
              "sweep_inner_seconds": summary["seconds"], "resume_with_plots_seconds":
              round(resume_s, 1), "points_per_second": round(summary["points"] / sweep_s)}
    print("| points | jobs | sweep, no plots (s) | of which evaluating (s) | points/s "
          "| resume + table + plots (s) |")
    print("| --- | --- | --- | --- | --- | --- |")
    print(f"| {result['points']:,} | {args.jobs} | {result['sweep_seconds']} | "
          f"{result['sweep_inner_seconds']:.1f} | {result['points_per_second']:,} | "
          f"{result['resume_with_plots_seconds']} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
