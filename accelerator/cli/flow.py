"""`accel flow`: the whole path on one configuration, ending in a summary and a report."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from ..config import AcceleratorConfig
from ..flow.files import write_atomic
from . import cli
from .options import check_accelerator, check_seed, config_options, writable_dir
from .progress import Progress, tool_report_seconds

__all__ = ["flow"]


@dataclass
class Step:
    name: str
    ok: bool = False
    seconds: float = 0.0
    summary: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    log: str | None = None


def _doctor(config: AcceleratorConfig, out: Path) -> Step:
    from ..flow.toolchain import discover, verilator_smoke_test

    tools = discover()
    smoke = verilator_smoke_test(out / "doctor")
    bad = [t for t in [*tools, smoke] if not t.ok]
    versions = {t.name: t.version for t in tools}
    return Step("doctor", ok=not bad,
                summary=("; ".join(t.error or t.name for t in bad) if bad else
                         f"verilator {versions.get('verilator')}, yosys {versions.get('yosys')}, "
                         f"nextpnr-ice40 {versions.get('nextpnr-ice40')}, "
                         f"nextpnr-ecp5 {versions.get('nextpnr-ecp5')}"),
                details={t.name: t.as_dict() for t in [*tools, smoke]})


def _rtl(config: AcceleratorConfig, out: Path) -> Step:
    from ..flow.rtl import ACCEL_TOP, CORE_TOP, emit

    written = {top: emit(config, out / "rtl", top=top) for top in (CORE_TOP, ACCEL_TOP)}
    summary = ", ".join(f"{v.name} ({v.stat().st_size:,} bytes)" for v, _ in written.values())
    return Step("rtl", ok=True, summary=f"{out / 'rtl'}: {summary}",
                details={top: {"verilog": str(v), "manifest": str(mf)}
                         for top, (v, mf) in written.items()})


def _accel_sim(config: AcceleratorConfig, out: Path, seed: int, m: int, k: int,
               n: int) -> Step:
    from ..flow.rtl import ACCEL_TOP
    from ..flow.sim import build_model, run_tests
    from ..model.cases import GemmCase

    model = build_model(config, top=ACCEL_TOP, root=Path("build"))
    report = out / "accel_sim.jsonl"
    report.unlink(missing_ok=True)
    case = GemmCase(m=m, k=k, n=n, seed=seed)
    outcome = run_tests(model, "accel_tb", seed=seed, testcase="sim_gemm",
                        results_name="flow_sim",
                        extra_env={"ACCEL_GEMM": case.to_json(), "ACCEL_REPORT": str(report)})
    record = json.loads(report.read_text().splitlines()[-1]) if report.is_file() else {}
    ok = outcome.ok and record.get("passed", False)
    summary = (f"{m}×{k}×{n}: {'PASS' if ok else 'FAIL'} against NumPy, "
               f"{record.get('cycles', 0):,} cycles, "
               f"{record.get('utilization', 0):.1%} MAC utilization")
    return Step("GEMM in Verilator", ok=ok, summary=summary,
                details={k_: v for k_, v in record.items() if k_ != "first"},
                log=str(outcome.log))


def _verify(config: AcceleratorConfig, out: Path, seed: int, count: int) -> Step:
    from ..flow.rtl import ACCEL_TOP
    from ..flow.sim import build_model, run_tests
    from ..model.cases import verify_summary, verify_total

    model = build_model(config, top=ACCEL_TOP, root=Path("build"))
    report = out / "verify.jsonl"
    report.unlink(missing_ok=True)
    outcome = run_tests(model, "accel_tb", seed=seed, testcase="verify_regression",
                        results_name="flow_verify",
                        extra_env={"ACCEL_VERIFY": json.dumps({"count": count, "seed": seed}),
                                   "ACCEL_REPORT": str(report)})
    records = [json.loads(line) for line in report.read_text().splitlines()] \
        if report.is_file() else []
    total = verify_total(count)
    passed = sum(r["passed"] for r in records)
    ok = outcome.ok and passed == total
    return Step("regression", ok=ok,
                summary=f"{passed} of {total} passed ({verify_summary(count)})",
                details={"passed": passed, "total": total}, log=str(outcome.log))


def _core_sim(config: AcceleratorConfig, out: Path, seed: int) -> Step:
    from ..flow.sim import build_model, run_tests

    model = build_model(config, root=Path("build"))
    outcome = run_tests(model, "core_tb", seed=seed,
                        extra_env={"ACCEL_REPORT": str(out / "core_sim.json")})
    measured = {}
    report = out / "core_sim.json"
    if report.is_file():
        measured = json.loads(report.read_text()).get("utilization_stream", {})
    summary = (f"{outcome.passed} passed, {outcome.failed} failed against NumPy (seed {seed})")
    if measured:
        summary += (f"; 64 tiles of K=64: {measured['cycles']} cycles = model, "
                    f"utilization {measured['utilization']:.2%}")
    return Step("core in Verilator", ok=outcome.ok, summary=summary,
                details={"passed": outcome.passed, "failed": outcome.failed,
                         "failures": outcome.failures, "seed": seed, **measured,
                         "build_dir": str(model.build_dir), "rebuilt": model.rebuilt},
                log=str(outcome.log))


def _bitstream(config: AcceleratorConfig, out: Path, board: str, freq_mhz: float,
               say: Callable[[str], None]) -> Step:
    from ..flow import build as fpga

    # the core top: the whole board top needs an ECP5 (docs/performance.md, "FPGA")
    report = fpga.build(config, board, top="core", freq_mhz=freq_mhz, out_dir=out / board,
                        progress=say, progress_seconds=tool_report_seconds())
    how = "cached" if report.cached else f"built in {report.build_seconds:.0f} s"
    return Step(f"{board} bitstream", ok=True,
                summary=f"core top, {report.resources_text()}; Fmax {report.fmax_mhz:.1f} MHz "
                        f"at {report.freq_mhz_actual:g} MHz; {report.multipliers_text()} "
                        f"({how}); {report.files['bitstream']}",
                details=report.to_dict(), log=report.nextpnr_log)


def _estimate(config: AcceleratorConfig, out: Path, m: int, k: int, n: int) -> Step:
    from ..model.perf import estimate

    e = estimate(config, m, k, n)
    return Step("estimate", ok=True,
                summary=f"{m}×{k}×{n}: {e.cycles:,} cycles, {e.utilization:.1%} MAC utilization, "
                        f"{e.bound}-bound",
                details=e.to_dict())


@cli.command()
@config_options
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("build/flow"), show_default=True, help="where the report goes")
@click.option("--seed", type=int, default=1, show_default=True, help="seed of the simulations")
def flow(config: AcceleratorConfig, out_dir: Path, seed: int) -> None:
    """Run the whole path: doctor, RTL, the core and the accelerator verified in Verilator
    against NumPy, a short regression, an iCEBreaker bitstream and the performance model."""
    check_accelerator(config)
    check_seed(seed)
    writable_dir(out_dir, "--out")
    console = Console(highlight=False)
    out_dir = out_dir.resolve()  # the simulator runs in its own directory
    progress = Progress("accel flow", console)
    plan: list[tuple[str, Callable[[], Step]]] = [
        ("doctor: tools and a Verilator smoke build", lambda: _doctor(config, out_dir)),
        ("rtl: Verilog of the core", lambda: _rtl(config, out_dir)),
        ("sim: the core in Verilator against NumPy", lambda: _core_sim(config, out_dir, seed)),
        ("sim: one GEMM on the accelerator in Verilator",
         lambda: _accel_sim(config, out_dir, seed, 128, 96, 64)),
        ("verify: a short regression", lambda: _verify(config, out_dir, seed, 20)),
        ("build: an iCEBreaker bitstream of the core",
         lambda: _bitstream(config, out_dir, "icebreaker", 30.0, progress.step)),
        ("estimate: performance model", lambda: _estimate(config, out_dir, 128, 96, 64)),
    ]
    steps: list[Step] = []
    for index, (title, run) in enumerate(plan, 1):
        start = time.monotonic()
        with progress:
            progress.step(f"[{index}/{len(plan)}] {title} ...")
            try:
                step = run()
            except Exception as exc:  # a failing step is reported, the rest still run
                step = Step(title.split(":")[0], ok=False, summary=" ".join(str(exc).split()))
        step.seconds = time.monotonic() - start
        steps.append(step)
        mark = "[green]ok[/green]" if step.ok else "[red]FAILED[/red]"
        console.print(f"[{index}/{len(plan)}] {title}: {mark} ({step.seconds:.1f} s)")

    table = Table(title=f"accel flow: {config.name}", title_justify="left")
    for column in ("step", "result", "seconds", "summary"):
        table.add_column(column, overflow="fold")
    for step in steps:
        table.add_row(step.name, "ok" if step.ok else "FAILED", f"{step.seconds:.1f}",
                      step.summary)
    console.print(table)
    report = out_dir / "report.json"
    write_atomic(report, json.dumps({
        "config": config.to_dict(), "digest": config.digest, "ok": all(s.ok for s in steps),
        "steps": [s.__dict__ for s in steps]}, indent=2, default=str) + "\n")
    console.print(f"report: {report}")
    failed = [s for s in steps if not s.ok]
    if failed:
        where = "; ".join(f"{s.name}: {s.log or report}" for s in failed)
        raise click.ClickException(f"{len(failed)} step(s) failed ({where})")
