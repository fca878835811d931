#!/usr/bin/env python3
"""Validate the analytic performance model against the RTL: cycles of whole GEMMs in Verilator.

    python tools/validate_model.py                              # the default configs and shapes
    python tools/validate_model.py --configs 4x4:os:64,4x4:ws:64 --shapes 37x29x41,64x64x64
    python tools/validate_model.py --json build/validate.json   # keep the measurements ...
    python tools/validate_model.py --reuse build/validate.json  # ... and re-check the model only

For each configuration the accelerator's Verilator model is built (cached by digest) and one
simulation runs every shape through `verification/accel_tb.py::sim_gemms`: the real host driver,
cocotbext-axi's AxiRam as memory, every result checked against NumPy. The RTL's cycles are the
accelerator's own CYCLES counter (start to done). The model is
:func:`accelerator.model.perf.estimate` for the same GEMM, twice: with the bench's placement of
the matrices (``layout=``, the same seed gives the same addresses and strides) and without one
(the mean over placements). Prints a Markdown table (config, shape, RTL, both estimates and
their errors) and the largest |error| per config, and exits with status 1 if a GEMM computed a
wrong result, or if the model is off by more than :data:`accelerator.model.perf.TOLERANCE`
where it claims to be accurate: with the layout everywhere, without it where
:func:`accelerator.model.perf.covered` says so.

``--reuse`` takes the RTL cycles from an earlier ``--json`` file instead of simulating, for the
points measured with the same gateware source (the cycles depend on nothing else): iterating on
the model then takes a second.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from accelerator.config import AcceleratorConfig
from accelerator.flow.rtl import ACCEL_TOP
from accelerator.flow.sim import build_model, run_gemms, source_digest
from accelerator.model.cases import GemmCase, bench_layout
from accelerator.model.geometry import Geometry
from accelerator.model.perf import TOLERANCE, covered, estimate

#: rows×cols:dataflow:axi_data_width
DEFAULT_CONFIGS = ("2x2:os:64,2x2:ws:64,4x4:os:64,4x4:ws:64,4x4:os:128,4x4:ws:128,"
                   "8x8:os:64,8x8:ws:64,8x8:os:128,8x8:ws:128")

#: A simulation runs at 4,000–8,000 cycles/s; shapes the model puts above this many cycles are
#: left out of the default list (``--max-cycles`` changes it).
MAX_CYCLES = 300_000


def parse_config(text: str) -> AcceleratorConfig:
    """``8x8:os:128`` (rows×cols, dataflow, AXI data width), then optionally ``:field=value`` for
    any other config field (``4x4:ws:64:spad_a_depth=64``, ``4x4:os:32:engine=compact``); the
    rest at their defaults."""
    try:
        size, dataflow, width, *extra = text.split(":")
        rows, cols = (int(x) for x in size.split("x"))
    except ValueError:
        raise ValueError(f"{text!r} is not ROWSxCOLS:DATAFLOW:AXI_WIDTH[:FIELD=VALUE...]") from None
    fields: dict[str, Any] = {}
    for item in extra:
        name, _, value = item.partition("=")
        if value.lower() in ("true", "false"):
            fields[name] = value.lower() == "true"
        else:
            fields[name] = int(value) if value.lstrip("-").isdigit() else value
    return AcceleratorConfig(rows=rows, cols=cols, dataflow=dataflow, axi_data_width=int(width),
                             **fields)


def parse_shape(text: str) -> GemmCase:
    """``MxKxN`` with optional suffixes ``+acc`` (accumulate) and ``+rq`` (requantize)."""
    dims, *flags = text.split("+")
    m, k, n = (int(x) for x in dims.split("x"))
    unknown = set(flags) - {"acc", "rq"}
    if unknown:
        raise ValueError(f"unknown shape flag(s) {sorted(unknown)} in {text!r} (allowed: acc, rq)")
    return GemmCase(m=m, k=k, n=n, seed=1, accumulate="acc" in flags, requant="rq" in flags)


def shape_name(case: GemmCase) -> str:
    return (f"{case.m}x{case.k}x{case.n}" + ("+acc" if case.accumulate else "")
            + ("+rq" if case.requant else ""))


def default_shapes(config: AcceleratorConfig, max_cycles: int = MAX_CYCLES) -> list[GemmCase]:
    """Small and odd shapes, squares, tall and skinny ones, a K walked in steps, N and M not
    multiples of the array, accumulate and requantize; those the model puts above
    ``max_cycles`` are left out (they take minutes to simulate on small arrays)."""
    R, C = config.rows, config.cols
    walked = Geometry.of(config).k_step + 88      # K past the scratchpads: walked in steps
    names = [
        "1x1x1", "3x5x2", f"{R}x{R}x{C}", "37x29x41", "5x300x7", "16x16x16",
        "64x64x64", "67x64x67", "128x128x128", "256x256x256",
        "512x16x8", "8x512x8", "16x64x300", f"40x{walked}x24", f"{2 * R + 1}x{walked}x{3 * C}",
        "64x64x64+acc", "37x29x41+acc",
    ]
    if config.requant_unit:
        names += ["64x64x64+rq", "37x29x41+acc+rq", "128x128x128+rq"]
    cases = []
    for name in names:
        case = parse_shape(name)
        if estimate(config, case.m, case.k, case.n).cycles <= max_cycles and case not in cases:
            cases.append(case)
    return cases


@dataclass
class Point:
    """One GEMM on one configuration: the RTL's cycles and the model's, with the bench's layout
    of the matrices (``model``) and without one (``blind``: the mean over placements)."""

    config: str
    shape: str
    case: dict[str, Any]
    rtl: int
    model: int
    error: float          # (model - rtl) / rtl
    blind: int
    blind_error: float
    covered: bool         # the layout-free estimate claims TOLERANCE here (perf.covered)
    passed: bool
    counters: dict[str, int]

    @property
    def bad(self) -> bool:
        """Outside the model's claim: the estimate with the layout always, without it where
        :func:`~accelerator.model.perf.covered` says it holds."""
        return abs(self.error) > TOLERANCE or (self.covered and abs(self.blind_error) > TOLERANCE)


def config_label(config: AcceleratorConfig) -> str:
    """The inverse of :func:`parse_config`."""
    defaults = AcceleratorConfig()
    extra = "".join(f":{f}={getattr(config, f)}" for f in ("spad_a_depth", "spad_b_depth",
                                                            "spad_c_depth", "requant_unit")
                    if getattr(config, f) != getattr(defaults, f))
    return f"{config.rows}x{config.cols}:{config.dataflow}:{config.axi_data_width}{extra}"


def measure(config: AcceleratorConfig, cases: list[GemmCase], root: Path) -> list[dict]:
    """Run ``cases`` in one simulation of ``config``; return their records (in order)."""
    model = build_model(config, top=ACCEL_TOP, root=root)
    records, outcome = run_gemms(model, cases, seed=1, name="validate")
    if len(records) != len(cases):
        raise RuntimeError(f"{config_label(config)}: {len(records)} of {len(cases)} GEMMs "
                           f"reported; see {outcome.log}")
    return records


def compare(config: AcceleratorConfig, case: GemmCase, record: dict) -> Point:
    kw = {"accumulate": case.accumulate, "requant": case.requant}
    model = estimate(config, case.m, case.k, case.n, layout=bench_layout(config, case), **kw)
    blind = estimate(config, case.m, case.k, case.n, **kw)
    rtl = int(record["cycles"])
    return Point(config=config_label(config), shape=shape_name(case), case=asdict(case),
                 rtl=rtl, model=model.cycles, error=(model.cycles - rtl) / rtl,
                 blind=blind.cycles, blind_error=(blind.cycles - rtl) / rtl,
                 covered=covered(config, case.m, case.k, case.n, **kw),
                 passed=bool(record["passed"]), counters=record.get("counters", {}))


def validate(configs: list[AcceleratorConfig], shapes: list[str] | None, root: Path, *,
             max_cycles: int = MAX_CYCLES, reuse: dict[tuple[str, str], dict] | None = None,
             log=print) -> list[Point]:
    """Measure (or reuse) every shape on every config and compare with the model."""
    points: list[Point] = []
    for config in configs:
        cases = ([parse_shape(s) for s in shapes] if shapes
                 else default_shapes(config, max_cycles))
        if not config.requant_unit:
            cases = [c for c in cases if not c.requant]
        label = config_label(config)
        known = reuse or {}
        todo = [c for c in cases if (label, c.to_json()) not in known]
        if todo:
            start = time.monotonic()
            log(f"{label}: simulating {len(todo)} GEMMs ...")
            for case, record in zip(todo, measure(config, todo, root), strict=True):
                known[(label, case.to_json())] = record
            log(f"{label}: {time.monotonic() - start:.0f} s")
        points += [compare(config, c, known[(label, c.to_json())]) for c in cases]
    return points


def load_reuse(path: Path) -> dict[tuple[str, str], dict]:
    """RTL records of an earlier ``--json`` run, if they were measured on this gateware."""
    saved = json.loads(path.read_text())
    if saved.get("source") != source_digest():
        print(f"{path}: measured on gateware {saved.get('source')}, not {source_digest()}: "
              "simulating again", file=sys.stderr)
        return {}
    return {(p["config"], GemmCase(**p["case"]).to_json()):
            {"cycles": p["rtl"], "passed": p["passed"], "counters": p["counters"]}
            for p in saved["points"]}


def table(points: list[Point]) -> str:
    lines = ["| config | shape | RTL | model | error | no layout | error | covered |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    lines += [f"| {p.config} | {p.shape} | {p.rtl:,} | {p.model:,} | {p.error:+.2%} | "
              f"{p.blind:,} | {p.blind_error:+.2%} | {'yes' if p.covered else 'no'}"
              f"{'' if p.passed else ' (WRONG RESULT)'}{' **OFF**' if p.bad else ''} |"
              for p in points]
    return "\n".join(lines)


def summary(points: list[Point]) -> str:
    lines = [("| config | points | max \\|error\\| | no layout: max \\|error\\| | covered | "
              "covered: max \\|error\\| |"), "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for label in dict.fromkeys(p.config for p in points):
        mine = [p for p in points if p.config == label]
        cov = [abs(p.blind_error) for p in mine if p.covered]
        lines.append(f"| {label} | {len(mine)} | {max(abs(p.error) for p in mine):.2%} | "
                     f"{max(abs(p.blind_error) for p in mine):.2%} | {len(cov)} | "
                     f"{f'{max(cov):.2%}' if cov else '–'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default=DEFAULT_CONFIGS,
                        help="comma-separated ROWSxCOLS:DATAFLOW:AXI_WIDTH")
    parser.add_argument("--shapes", help="comma-separated MxKxN[+acc][+rq] (default: a list "
                        "per config, see default_shapes)")
    parser.add_argument("--max-cycles", type=int, default=MAX_CYCLES,
                        help="leave out default shapes the model puts above this")
    parser.add_argument("--root", type=Path, default=Path("build"), help="build root")
    parser.add_argument("--json", type=Path, help="write the points here")
    parser.add_argument("--reuse", type=Path, help="RTL cycles from an earlier --json file")
    args = parser.parse_args(argv)
    try:
        configs = [parse_config(c) for c in args.configs.split(",")]
        shapes = args.shapes.split(",") if args.shapes else None
        for shape in shapes or []:
            parse_shape(shape)
    except ValueError as exc:
        parser.error(str(exc))
    reuse = load_reuse(args.reuse) if args.reuse and args.reuse.is_file() else None
    points = validate(configs, shapes, args.root, max_cycles=args.max_cycles, reuse=reuse,
                      log=lambda text: print(text, file=sys.stderr, flush=True))
    print(table(points))
    print()
    print(summary(points))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"source": source_digest(), "tolerance": TOLERANCE,
                                         "points": [asdict(p) for p in points]}, indent=1) + "\n")
    bad = [p for p in points if p.bad]
    wrong = [p for p in points if not p.passed]
    for p in bad:
        print(f"model off by {p.error:+.2%} (no layout: {p.blind_error:+.2%}) on {p.config} "
              f"{p.shape}", file=sys.stderr)
    for p in wrong:
        print(f"wrong result on {p.config} {p.shape}", file=sys.stderr)
    return 1 if bad or wrong else 0


if __name__ == "__main__":
    sys.exit(main())
