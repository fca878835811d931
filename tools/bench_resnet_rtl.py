#!/usr/bin/env python3
"""Benchmark `accel sweep --fidelity rtl --workload resnet18 --rows 16 --cols 16`: every
ResNet-18 layer (batch 1, convolutions as im2col GEMMs, conv1 included) in the RTL.

    python tools/bench_resnet_rtl.py                     # 16×16, the default config otherwise
    python tools/bench_resnet_rtl.py --jobs 1 --json build/bench_resnet_rtl.json

First builds the harness (or finds it cached) and reports its build time on its own; then runs
the real command in a subprocess from a fresh output directory, and reports its wall-clock time,
the CPU time of the command and its workers (user + system: what the run costs whatever else
shares the machine), the load average around it, and per layer the RTL's cycles, the model's
cycles and the model's error. Prints Markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--cols", type=int, default=16)
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--build-root", type=Path, default=Path("build"))
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args()

    from accelerator import AcceleratorConfig
    from accelerator.flow.harness import build_harness, build_seconds

    config = AcceleratorConfig(rows=args.rows, cols=args.cols)
    start = time.monotonic()
    library = build_harness(config, root=args.build_root)
    found = time.monotonic() - start
    built = build_seconds(library)

    with tempfile.TemporaryDirectory() as tmp:
        command = ["sweep", "--fidelity", "rtl", "--workload", "resnet18",
                   "--rows", str(args.rows), "--cols", str(args.cols), "--out", tmp,
                   "--build-root", str(args.build_root), "--fresh", "--no-plots", "--json"]
        if args.jobs:
            command += ["--jobs", str(args.jobs)]
        load_before = os.getloadavg()[0]
        cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "accelerator", *command],
                              capture_output=True, text=True, check=False)
        wall = time.monotonic() - start
        cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        load_after = os.getloadavg()[0]
        if proc.returncode != 0:
            raise SystemExit(f"accel sweep failed ({proc.returncode}): {proc.stderr[-2000:]}")
        summary = json.loads(proc.stdout)
        record = next(json.loads(p.read_text()) for p in (Path(tmp) / "points").glob("*.json"))
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    rtl_cycles = record["rtl"]["cycles"]
    simulated = sum(layer["rtl_cycles"] for layer in record["layers"])  # each shape once
    result = {
        "command": "accel " + " ".join(command[:9]),
        "config": config.name, "status": record["status"], "executor": summary["executor"],
        "build_seconds": round(built, 1), "build_found_seconds": round(found, 2),
        "wall_seconds": round(wall, 1), "cpu_seconds": round(cpu, 1),
        "load_average": [round(load_before, 2), round(load_after, 2)],
        "rtl_cycles": rtl_cycles, "model_cycles": record["model"]["cycles"],
        "simulated_cycles": simulated,
        "layers": [{k: layer[k] for k in ("name", "m", "k", "n", "count", "rtl_cycles",
                                          "model_cycles")} for layer in record["layers"]],
    }
    print(f"`{result['command']}` on {config.name} ({summary['executor']}): "
          f"{record['status']}")
    print()
    print(f"- harness build: {built:.1f} s (cached: found in {found:.2f} s)")
    print(f"- sweep: {wall:.1f} s wall, {cpu:.1f} s CPU (user + system, the command and its "
          f"workers); load average {load_before:.2f} before, {load_after:.2f} after")
    print(f"- {simulated:,} cycles simulated (each distinct layer once), "
          f"{simulated / cpu:,.0f} per CPU second; the network: {rtl_cycles:,} RTL cycles, "
          f"{record['model']['cycles']:,} model cycles")
    print()
    print("| layer | M×K×N | count | RTL cycles | model cycles | model error |")
    print("| --- | --- | --- | --- | --- | --- |")
    for layer in record["layers"]:
        error = (layer["model_cycles"] - layer["rtl_cycles"]) / layer["rtl_cycles"]
        print(f"| {layer['name']} | {layer['m']}×{layer['k']}×{layer['n']} | {layer['count']} "
              f"| {layer['rtl_cycles']:,} | {layer['model_cycles']:,} | {error:+.2%} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
