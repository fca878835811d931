"""`accel sim` (one GEMM on the accelerator in Verilator) and `accel verify` (a regression)."""

from __future__ import annotations

import json
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..config import AcceleratorConfig
from ..flow.files import write_atomic
from ..flow.rtl import ACCEL_TOP
from ..model.cases import VALUE_KINDS, GemmCase, bench_layout, verify_summary, verify_total
from ..model.perf import estimate
from . import cli
from .coverage import check_goal, coverage_options, load_databases, print_report
from .options import (
    check_accelerator,
    check_dimensions,
    check_seed,
    config_options,
    fail_usage,
    writable_dir,
    writable_file,
)
from .progress import Progress as _LineProgress

__all__ = ["sim", "verify"]


def _build(config: AcceleratorConfig, build_root: Path, waves: bool, console: Console):
    from ..flow.sim import build_model

    with _LineProgress(click.get_current_context().command_path, console) as progress:
        progress.step(f"building the {config.name} accelerator in Verilator (cached after the "
                      "first time)")
        try:
            model = build_model(config, top=ACCEL_TOP, root=build_root, waves=waves)
        except RuntimeError as exc:
            raise click.ClickException(str(exc)) from None
    return model


_RTL_OPTION = click.option(
    "--rtl", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="Verilog of the accelerator top to run instead of the emitted one (hand-edited RTL, or "
         "accel build's netlist; FPGA primitives get their simulation models)")


def _check_rtl(config: AcceleratorConfig, rtl: Path) -> None:
    from ..mutation import check_rtl_file
    problem = check_rtl_file(config, rtl)
    if problem:
        fail_usage(problem)


def _verify_rtl(config: AcceleratorConfig, rtl: Path, count: int, seed: int,
                junit: Path | None, build_root: Path) -> None:
    """``accel verify --rtl``: the regression of ``accel mutate`` on the harness around the
    user's Verilog (random GEMMs against NumPy, scattered addresses, requantization over its
    range, bytes around C untouched, registers, illegal commands; counters equal to the emitted
    design's)."""
    from ..flow.harness import HarnessError
    from ..mutation import MutationError, verify_rtl

    _check_rtl(config, rtl)
    if junit is not None:
        fail_usage("--junit is not available with --rtl")
    console = Console(highlight=False)
    start = time.monotonic()
    with console.status(f"building {rtl} and the emitted {config.name} with the C++ harness, "
                        f"running {count} GEMMs on each ..."):
        try:
            outcome, reason = verify_rtl(config, rtl, count=count, seed=seed, root=build_root)
        except (MutationError, HarnessError) as exc:
            raise click.ClickException(str(exc)) from None
    seconds = time.monotonic() - start
    if outcome != "passed":
        console.print(f"[red]FAIL[/red] {rtl} ({outcome}): {reason}")
        raise SystemExit(1)
    console.print(f"[green]PASS[/green] {rtl}: {count} random GEMMs and the illegal commands "
                  f"on {config.name}, counters equal to the emitted design's ({seconds:.0f} s)")


def _check_dims(config: AcceleratorConfig, m: int, k: int, n: int, requant: bool) -> None:
    check_dimensions(m=m, k=k, n=n)
    if requant and not config.requant_unit:
        fail_usage("--requant needs hardware generated with requant_unit = true")


#: The default of ``accel sim --max-cycles``: about 15 minutes on the harness at 1 M cycles/s.
DEFAULT_MAX_CYCLES = 1_000_000_000


def _check_size(config: AcceleratorConfig, case: GemmCase, bench: str, max_cycles: int) -> int:
    """Refuse, before any build, a case the bench cannot hold or that would run too long;
    return the model's estimate of its cycles."""
    from ..model.cases import BENCH_MEMORY, memory_bound
    from ..model.perf import estimate

    need = memory_bound(case)
    if need > BENCH_MEMORY[bench]:
        hint = "" if bench == "harness" else " (the harness, --bench harness, has 4 GiB)"
        fail_usage(f"{case.m}×{case.k}×{case.n} needs up to {need:,} bytes of memory, more than "
                   f"the {bench} bench's {BENCH_MEMORY[bench]:,}{hint}")
    cycles = estimate(config, case.m, case.k, case.n, accumulate=case.accumulate,
                      requant=case.requant).cycles
    if cycles > max_cycles:
        fail_usage(f"{case.m}×{case.k}×{case.n} needs about {cycles:,} cycles by the performance "
                   f"model, more than --max-cycles = {max_cycles:,} (raise it with "
                   f"--max-cycles N)")
    return cycles


def _run_harness(config: AcceleratorConfig, case: GemmCase, build_root: Path, waves: bool,
                 max_cycles: int, console: Console, rtl: Path | None = None
                 ) -> tuple[dict, Path | None, Path]:
    """One case on the compiled harness (around ``rtl`` if given): (record, waveform, the
    library's build log)."""
    from ..driver.harness import run_case
    from ..flow.harness import CycleLimitError, Harness, HarnessError, build_harness

    with console.status(f"building the {config.name} accelerator with the C++ harness "
                        "(cached after the first time) ..."):
        try:
            if rtl is not None:
                from ..mutation import build_user_harness
                library = build_user_harness(config, rtl, root=build_root)
            else:
                library = build_harness(config, root=build_root, waves=waves)
        except HarnessError as exc:
            raise click.ClickException(str(exc)) from None
    vcd = (library.parent / f"sim_{case.m}x{case.k}x{case.n}_{case.seed}.vcd") if waves else None
    with console.status(f"simulating {case.m}×{case.k}×{case.n} ..."):
        with Harness(library, waves=vcd) as harness:
            harness.reset()
            try:
                record = run_case(harness, config, case, max_cycles=max_cycles)
            except CycleLimitError:
                raise click.ClickException(
                    f"the GEMM did not finish within --max-cycles = {max_cycles:,} cycles "
                    f"(seed {case.seed})") from None
            except Exception as exc:  # the driver's errors: a transport or accelerator error
                raise click.ClickException(f"the GEMM failed: {exc} (seed {case.seed})"
                                           ) from None
    return record, vcd, library.parent / "build.log"


def _run_cocotb(config: AcceleratorConfig, case: GemmCase, build_root: Path, waves: bool,
                console: Console) -> tuple[dict, Path | None, Path]:
    """One case on the cocotb bench: (record, waveform, the simulation's log)."""
    from ..flow.sim import run_tests, waves_file

    model = _build(config, build_root, waves, console)
    report = model.build_dir / f"sim_{case.seed}.jsonl"
    report.unlink(missing_ok=True)
    with console.status(f"simulating {case.m}×{case.k}×{case.n} ..."):
        outcome = run_tests(model, "accel_tb", seed=case.seed, testcase="sim_gemm",
                            results_name=f"sim_{case.seed}",
                            extra_env={"ACCEL_GEMM": case.to_json(), "ACCEL_REPORT": str(report)})
    records = [json.loads(line) for line in report.read_text().splitlines()] \
        if report.is_file() else []
    if not records:
        raise click.ClickException(f"the simulation did not finish the GEMM "
                                   f"({next(iter(outcome.failures.values()), 'no result')!s:.200}"
                                   f"); see {outcome.log}")
    record = records[-1]
    record["passed"] = bool(record["passed"] and outcome.ok)
    return record, waves_file(model) if waves else None, outcome.log


@cli.command()
@config_options
@click.option("--m", "m", type=int, required=True, help="rows of A and C")
@click.option("--k", "k", type=int, required=True, help="columns of A, rows of B")
@click.option("--n", "n", type=int, required=True, help="columns of B and C")
@click.option("--seed", type=int, default=1, show_default=True,
              help="seed of the data, strides and addresses")
@click.option("--accumulate", is_flag=True, help="C = C_in + A·B")
@click.option("--requant", is_flag=True, help="store C requantized to int8")
@click.option("--values", type=click.Choice(VALUE_KINDS), default="random", show_default=True)
@click.option("--backpressure", type=click.FloatRange(0, 0.9), default=0.0, show_default=True,
              help="probability that each AXI channel of the memory pauses in a cycle")
@click.option("--bench", type=click.Choice(["harness", "cocotb"]), default="harness",
              show_default=True,
              help="harness: the C++ harness (fast); cocotb: the cocotb verification bench")
@click.option("--max-cycles", type=click.IntRange(1), default=DEFAULT_MAX_CYCLES,
              show_default=True,
              help="refuse a GEMM the performance model puts above this many cycles, and stop "
                   "the harness there")
@click.option("--waves", is_flag=True,
              help="write a VCD waveform (its path is in the output)")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
@click.option("--build-root", type=click.Path(file_okay=False, path_type=Path),
              default=Path("build"), show_default=True)
@_RTL_OPTION
def sim(config: AcceleratorConfig, m: int, k: int, n: int, seed: int, accumulate: bool,
        requant: bool, values: str, backpressure: float, bench: str, max_cycles: int,
        waves: bool, as_json: bool, build_root: Path, rtl: Path | None) -> None:
    """Run one GEMM on the accelerator in Verilator and check it against NumPy."""
    check_accelerator(config)
    _check_dims(config, m, k, n, requant)
    check_seed(seed)
    if not 0 <= backpressure <= 0.9:  # click's range lets nan through
        fail_usage(f"--backpressure {backpressure} is out of range (allowed: 0 to 0.9)")
    writable_dir(build_root, "--build-root")
    if rtl is not None:
        _check_rtl(config, rtl)
        if bench != "harness" or waves:
            fail_usage("--rtl runs on the harness, without --waves (--bench harness)")
    console = Console(stderr=as_json, highlight=False)
    case = GemmCase(m=m, k=k, n=n, seed=seed, accumulate=accumulate, requant=requant,
                    values=values, backpressure=backpressure)
    _check_size(config, case, bench, max_cycles)
    if bench == "harness":
        record, waves_path, log = _run_harness(config, case, build_root, waves, max_cycles,
                                               console, rtl)
    else:
        record, waves_path, log = _run_cocotb(config, case, build_root, waves, console)
    # the model's cycles for the matrices where the bench put them (its per-row alignment
    # costs depend on the addresses), so that the error is the model's own
    model_cycles = estimate(config, m, k, n, accumulate=accumulate, requant=requant,
                            layout=bench_layout(config, case)).cycles
    result = {
        "passed": bool(record["passed"]), "bench": bench, "m": m, "k": k, "n": n, "seed": seed,
        "cycles": record["cycles"], "macs": record["macs"],
        "utilization": record["utilization"], "model_cycles": model_cycles,
        "model_error": (model_cycles - record["cycles"]) / record["cycles"],
        "counters": record["counters"], "config": config.to_dict(),
        "mismatches": record["mismatches"], "first_mismatches": record["first"],
        "waves": str(waves_path) if waves_path else None, "log": str(log),
    }
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        verdict = "[green]PASS[/green]" if result["passed"] else "[red]FAIL[/red]"
        table = Table(title=f"accel sim: {m}×{k}×{n} on {config.name} ({bench})",
                      show_header=False)
        table.add_row("result", f"{verdict} against NumPy ({m * n:,} elements)")
        table.add_row("cycles", f"{result['cycles']:,} (model {model_cycles:,}, "
                                f"{result['model_error']:+.1%})")
        table.add_row("MAC utilization", f"{result['utilization']:.1%}")
        for key, value in result["counters"].items():
            table.add_row(key, f"{value:,}")
        if waves_path:
            table.add_row("waveform", f"{waves_path} (VCD)")
        console.print(table)
        for mismatch in result["first_mismatches"]:
            console.print(f"  C[{mismatch['row']}, {mismatch['col']}] = {mismatch['got']}, "
                          f"expected {mismatch['expected']}")
    if not result["passed"]:
        raise click.ClickException(f"{result['mismatches']} of {m * n} elements differ "
                                   f"(seed {seed}); log: {log}")


def _junit(path: Path, records: list[dict], seconds: float) -> None:
    suite = ET.Element("testsuite", name="accel verify", tests=str(len(records)),
                       failures=str(sum(not r["passed"] for r in records)),
                       time=f"{seconds:.1f}")
    for record in records:
        name = record.get("name") or (f"gemm {record.get('index')}: "
                                      f"{record.get('m')}x{record.get('k')}x{record.get('n')}")
        case = ET.SubElement(suite, "testcase", classname=f"accel.{record['kind']}", name=name)
        if not record["passed"]:
            failure = ET.SubElement(case, "failure", message=_failure_text(record))
            failure.text = json.dumps(record, indent=2, default=str)
    write_atomic(path, ET.tostring(suite, encoding="unicode") + "\n")


def _failure_text(record: dict) -> str:
    if record["kind"] == "illegal":
        return f"expected error {record['expected']}, got {record['got']}"
    if record["kind"] == "bus_error" and "got" in record:
        return (f"expected error {record['expected']}, got {record['got']}; the next GEMM "
                f"{'passed' if record['next_passed'] else 'failed'}")
    if record["kind"] == "abort" and record.get("problems"):
        return "; ".join(record["problems"])
    what = record.get("error") or f"{record.get('mismatches')} elements differ"
    return f"{what}; replay: {record.get('replay', '')}"


@cli.command()
@config_options
@click.option("--count", type=click.IntRange(1, 100_000), default=50, show_default=True,
              help="random GEMMs (then every illegal command, bus errors, aborts and a reset "
                   "mid-GEMM)")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="write JUnit XML here")
@click.option("--build-root", type=click.Path(file_okay=False, path_type=Path),
              default=Path("build"), show_default=True)
@_RTL_OPTION
@click.option("--max-dims", is_flag=True,
              help="also GEMMs with M, K and N in turn at MAX_DIM, the largest the hardware "
                   "takes: about 400,000 cycles more on the default config")
@coverage_options
@click.option("--json", "as_json", is_flag=True,
              help="print the result as JSON (with --coverage, the coverage report in it)")
def verify(config: AcceleratorConfig, count: int, seed: int, junit: Path | None,
           build_root: Path, rtl: Path | None, max_dims: bool, coverage_file: str | None,
           coverage_merge: tuple[Path, ...], coverage_goal: float | None,
           as_json: bool) -> None:
    """A constrained-random regression of the accelerator in Verilator, against NumPy."""
    from ..flow.sim import run_tests
    from ..model.coverage import CoverageModel

    check_accelerator(config)
    check_seed(seed)
    if coverage_file is None and (coverage_merge or coverage_goal is not None):
        fail_usage("--coverage-merge and --coverage-goal need --coverage")
    check_goal(coverage_goal)
    model_cov = CoverageModel.of(config) if coverage_file is not None else None
    earlier = load_databases(coverage_merge, "--coverage-merge",
                             model_cov.signature) if model_cov else []
    if coverage_file not in (None, "-"):
        writable_file(Path(coverage_file), "--coverage")
    if junit is not None:
        writable_file(junit, "--junit")
    writable_dir(build_root, "--build-root")
    if rtl is not None:
        if coverage_file is not None or as_json or max_dims:
            fail_usage("--coverage, --json and --max-dims are not available with --rtl")
        _verify_rtl(config, rtl, count, seed, junit, build_root)
        return
    console = Console(highlight=False, stderr=as_json)
    model = _build(config, build_root, False, console)
    report = model.build_dir / f"verify_{seed}.jsonl"
    report.unlink(missing_ok=True)
    total = verify_total(count, max_dims)
    holder: dict = {}

    def work() -> None:
        holder["outcome"] = run_tests(
            model, "accel_tb", seed=seed, testcase="verify_regression",
            results_name=f"verify_{seed}",
            extra_env={"ACCEL_VERIFY": json.dumps({"count": count, "seed": seed,
                                                   "max_dims": max_dims}),
                       "ACCEL_REPORT": str(report)})

    start = time.monotonic()
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    columns = (TextColumn("verify"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[failed]} failed"))
    bar = Progress(*columns, console=console, transient=False)
    lines_progress = _LineProgress("accel verify", console)  # a log: lines, not a bar
    with (bar if console.is_terminal else lines_progress):
        task = bar.add_task("verify", total=total, failed=0)
        lines_progress.step(f"{total} cases ({verify_summary(count, max_dims)})")
        while thread.is_alive():
            thread.join(0.5)
            text = report.read_text() if report.is_file() else ""
            # the bench may be writing its last line: count the complete ones
            lines = text.splitlines()[:text.count("\n")]
            failed = sum(not json.loads(line)["passed"] for line in lines)
            bar.update(task, completed=len(lines), failed=failed)
            lines_progress.note(f"{len(lines)}/{total} cases, {failed} failed")
    seconds = time.monotonic() - start
    records = [json.loads(line) for line in report.read_text().splitlines()] \
        if report.is_file() else []
    outcome = holder.get("outcome")
    if len(records) < total:
        records.append({"kind": "simulation", "name": "simulation ended early", "passed": False,
                        "error": f"only {len(records)} of {total} cases reported; "
                                 f"see {outcome.log if outcome else model.build_dir}"})
    if junit:
        _junit(junit, records, seconds)
    failures = [r for r in records if not r["passed"]]
    cycles = sum(r.get("cycles", 0) for r in records)
    cov = None
    if model_cov is not None:
        cov = model_cov.sample(records, run={"seed": seed, "count": count})
        for db in earlier:
            cov = cov.merge(db)
        if coverage_file != "-":
            cov.write(Path(coverage_file))
    if as_json:
        click.echo(json.dumps({
            "passed": len(records) - len(failures), "failed": len(failures),
            "cases": len(records), "summary": verify_summary(count, max_dims), "seed": seed,
            "seconds": round(seconds, 1), "cycles": cycles, "config": config.to_dict(),
            "junit": str(junit) if junit else None,
            "failures": [{"name": r.get("name") or r.get("index"), "why": _failure_text(r)}
                         for r in failures],
            **({"coverage": cov.to_dict()} if cov is not None else {})}, indent=1))
    elif cov is not None:
        print_report(console, cov, f"accel verify --coverage: {config.name}, seed {seed}"
                     + (f", merged with {len(earlier)}" if earlier else ""))
    console.print(f"{len(records) - len(failures)} passed, {len(failures)} failed "
                  f"({verify_summary(count, max_dims)}) in {seconds:.1f} s, "
                  f"{cycles:,} accelerator cycles"
                  + (f"; JUnit XML: {junit}" if junit else ""))
    for record in failures:
        console.print(f"[red]FAIL[/red] {record.get('name') or record.get('index')}: "
                      f"{_failure_text(record)}")
    if failures:
        raise click.ClickException(f"{len(failures)} of {len(records)} cases failed")
    if cov is not None and coverage_goal is not None and cov.percent < coverage_goal:
        raise click.ClickException(f"coverage {cov.percent:.1f}% is below --coverage-goal "
                                   f"{coverage_goal}%")
