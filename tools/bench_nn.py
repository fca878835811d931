#!/usr/bin/env python3
"""Benchmark networks on the accelerator: the digits demos at RTL fidelity, ResNet-18 on the model.

    python tools/bench_nn.py                       # digits-mlp and digits-cnn on 8x8 rtl, resnet18
    python tools/bench_nn.py --demos digits-mlp --no-resnet
    python tools/bench_nn.py --demos "" --resnet-layers   # ResNet-18's layers against the sweep
    python tools/bench_nn.py --demos "" --resnet-activations int8   # quantize_static's default

For each demo: train and quantize (not timed), then run the whole held-out set (539 images, one
batch: a few large GEMMs) on the RTL backend; the harness is built first (cached under --root,
its time reported apart). Prints wall times, cycles, utilization, the model's cycle error and
whether every logit equals onnxruntime's, as a Markdown table.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from accelerator import AcceleratorConfig, connect
from accelerator.nn import load
from accelerator.nn.demo import build_demo
from accelerator.nn.zoo import resnet18


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="8x8")
    parser.add_argument("--demos", default="digits-mlp,digits-cnn")
    parser.add_argument("--backend", default="rtl", choices=["model", "rtl"])
    parser.add_argument("--no-resnet", action="store_true")
    parser.add_argument("--resnet-backend", default="model", choices=["model", "rtl"])
    parser.add_argument("--root", type=Path, default=Path("build"))
    parser.add_argument("--resnet-activations", default="uint8", choices=["uint8", "int8"],
                        help="int8: the convolutions next to each residual run in float in "
                             "onnxruntime, reproduced on the host near ties")
    parser.add_argument("--resnet-layers", action="store_true",
                        help="after the run, ResNet-18's cycles per layer against accel sweep's "
                             "model of the same GEMM: its default and as the network runs it")
    args = parser.parse_args()
    rows, cols = (int(x) for x in args.size.split("x"))
    config = AcceleratorConfig(rows=rows, cols=cols)
    print("| network | backend | images | build s | run s | cycles | utilization | model error "
          "| equal to onnxruntime |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        for name in filter(None, args.demos.split(",")):
            data = build_demo(name, Path(tmp) / name)
            session = ort.InferenceSession(str(data.int8_model),
                                           providers=["CPUExecutionProvider"])
            expected = session.run(None, {"image": data.x_test})[0]
            net = load(data.int8_model)
            started = time.perf_counter()
            device = connect(config, backend=args.backend, build_root=args.root)
            built = time.perf_counter() - started
            with device, connect(config, backend="model") as shadow:
                started = time.perf_counter()
                outputs, stats = net.run(data.x_test, device,
                                         shadow=shadow if args.backend == "rtl" else None)
                seconds = time.perf_counter() - started
            _row(name, args.backend, len(data.x_test), built, seconds, stats, config,
                 bool(np.array_equal(outputs[0], expected)))
    if not args.no_resnet:
        model = resnet18(activations=args.resnet_activations)
        x = np.random.default_rng(0).normal(size=(1, 3, 224, 224)).astype(np.float32)
        session = ort.InferenceSession(model.SerializeToString(),
                                       providers=["CPUExecutionProvider"])
        expected = session.run(None, {"image": x})[0]
        started = time.perf_counter()
        device = connect(config, backend=args.resnet_backend, build_root=args.root)
        built = time.perf_counter() - started
        with device, connect(config, backend="model") as shadow:
            started = time.perf_counter()
            outputs, stats = load(model).run(
                x, device, shadow=shadow if args.resnet_backend == "rtl" else None)
            seconds = time.perf_counter() - started
        _row(f"resnet18 ({args.resnet_activations})", args.resnet_backend, 1, built, seconds,
             stats, config, bool(np.array_equal(outputs[0], expected)))
        floats = [s for s in stats if s.requant == "host (float)"]
        if floats:
            total = sum(s.m * s.n * s.groups for s in floats)
            near = sum(s.host_outputs for s in floats)
            print(f"\n{len(floats)} layers run in float by onnxruntime: {near:,} of their "
                  f"{total:,} outputs ({near / total:.2%}) recomputed on the host near a tie")
        if args.resnet_layers:
            _layers(config, stats)
    return 0


def _layers(config: AcceleratorConfig, stats: list) -> None:
    """Each distinct ResNet-18 layer: the sweep's default model (bare GEMM, rows anywhere in a
    bus word), the device API's placement for the bare GEMM, with C_in (the bias), and the
    cycles the network's run reported."""
    from accelerator.device import model_cycles
    from accelerator.dse.runner import evaluate_model
    from accelerator.dse.workloads import resnet18 as workload

    mean = {(r["m"], r["k"], r["n"]): r["model_cycles"]
            for r in evaluate_model(config, workload())["layers"]}
    bare = {shape: model_cycles(config, *shape) for shape in mean}
    biased = {shape: model_cycles(config, *shape, accumulate=True) for shape in mean}
    print("\n| layer | M×K×N | sweep default | device placement | + C_in (bias) | run | requant |")
    print("| --- | --- | ---: | ---: | ---: | ---: | --- |")
    seen = set()
    totals = [0, 0, 0, 0]
    for s in stats:
        shape = (s.m, s.k, s.n)
        row = [mean[shape], bare[shape], biased[shape], s.cycles]
        totals = [t + r for t, r in zip(totals, row, strict=True)]
        if shape not in seen:
            seen.add(shape)
            print(f"| {s.name} | {s.m}×{s.k}×{s.n} | " + " | ".join(f"{r:,}" for r in row)
                  + f" | {s.requant} |")
    print("| all 21 layers | | " + " | ".join(f"{t:,}" for t in totals) + " | |")


def _row(name: str, backend: str, images: int, built: float, seconds: float, stats: list,
         config: AcceleratorConfig, equal: bool) -> None:
    cycles = sum(s.cycles for s in stats)
    model = sum(s.model_cycles for s in stats)
    macs = sum(s.macs for s in stats)
    print(f"| {name} | {backend} | {images} | {built:.1f} | {seconds:.1f} | {cycles:,} | "
          f"{macs / (cycles * config.rows * config.cols):.1%} | "
          f"{(model - cycles) / cycles:+.2%} | {'yes' if equal else 'NO'} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
