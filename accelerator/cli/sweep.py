"""`accel sweep`: design-space exploration over config parameters × workloads × fidelities."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ..config import FIELDS, AcceleratorConfig, ConfigError
from . import cli
from .options import fail_usage, writable_dir
from .progress import Progress as LineProgress

__all__ = ["sweep"]

_SCHEDULER_RE = re.compile(r"^tcp://[^\s:/]+:\d{1,5}$")

#: Points a sweep runs without --max-points. Each point is planned, evaluated and stored as a
#: file of its own in --out (docs/dse.md, "Size"): a space past this is more likely a typo
#: than a plan.
MAX_POINTS = 100_000
#: Worker processes at most: a pool starts one per task up to --jobs, and a typo (--jobs
#: 100000) would start thousands.
MAX_JOBS = 1024


def _field_option(field) -> Any:
    """``--rows 2,4,8``: the same as ``--param rows=2,4,8`` (for every config field)."""
    return click.option(field.option, f"field_{field.name}", default=None, metavar="VALUES",
                        help=f"{field.help}: values to sweep [{field.allowed()}]")


def _options(command: Any) -> Any:
    for field in reversed(FIELDS):
        command = _field_option(field)(command)
    return command


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM stops a sweep like Ctrl-C: the workers are stopped and the finished points stay
    in the store (a kill -9 keeps them too: they are written as they finish)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _parse_space(config_file: str | None, params: tuple[str, ...],
                 field_values: dict[str, str | None]):
    """The base config and the swept params (not expanded: see :func:`accelerator.dse.space.size`
    for how many configs they make)."""
    from ..dse.space import SpaceError, check_unique, param_from_option, parse_param

    try:
        base = AcceleratorConfig.from_toml(config_file) if config_file else AcceleratorConfig()
    except ConfigError as exc:
        fail_usage(f"invalid config: {exc}")
    try:
        swept = [param_from_option(f, field_values[f.name]) for f in FIELDS
                 if field_values.get(f.name) is not None]
        swept += [parse_param(text) for text in params]
        check_unique(swept)
        return base, swept
    except SpaceError as exc:
        fail_usage(str(exc))


def _parse_workloads(gemms: tuple[str, ...], workloads: tuple[str, ...]):
    from ..dse.workloads import WorkloadError, load_workload, parse_gemm

    try:
        loaded = [parse_gemm(g) for g in gemms] + [load_workload(w) for w in workloads]
    except WorkloadError as exc:
        fail_usage(str(exc))
    if not loaded:
        loaded = [parse_gemm("128x96x64")]
    names: dict[str, str] = {}
    for workload in loaded:
        if names.setdefault(workload.name, workload.digest) != workload.digest:
            fail_usage(f"two different workloads are named {workload.name!r}")
    return list({w.digest: w for w in loaded}.values())


def _parse_fidelities(values: tuple[str, ...]) -> list[str]:
    from ..dse.runner import FIDELITIES

    chosen: list[str] = []
    for value in values:
        for item in value.split(","):
            name = item.strip()
            if name not in FIDELITIES:
                fail_usage(f"--fidelity {value}: unknown fidelity {name!r} "
                           f"(known: {', '.join(FIDELITIES)})")
            if name not in chosen:
                chosen.append(name)
    return chosen or ["model"]


def _check_synth(board: str, top: str, freq_mhz: float | None) -> None:
    from ..flow.build import BOARDS, MAX_FREQ_MHZ, TOPS

    if board not in BOARDS:
        fail_usage(f"--board {board}: unknown board {board!r} (known: {', '.join(BOARDS)})")
    if top not in TOPS:
        fail_usage(f"--top {top}: unknown top {top!r} (known: {', '.join(TOPS)})")
    if freq_mhz is not None and not 0 < freq_mhz <= MAX_FREQ_MHZ:
        fail_usage(f"--freq {freq_mhz:g}: out of range (allowed: more than 0 up to "
                   f"{MAX_FREQ_MHZ:g} MHz)")


def _describe(record: dict[str, Any]) -> str:
    config = record.get("config") or {}
    values = ", ".join(f"{k}={v}" for k, v in (record.get("values") or {}).items())
    return (f"{record['fidelity']} {config.get('rows')}×{config.get('cols')} "
            f"{config.get('dataflow')} {record['workload']}" + (f" ({values})" if values else ""))


@cli.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="TOML file with the base config (the fields not swept)")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUES",
              help="a config field and its values: rows=2,4,8; rows=2..16; rows=2..16:2; "
                   "dataflow=os,ws; rows,cols=2,4,8 ties fields (2×2, 4×4, 8×8). Repeatable: "
                   "the points are the cartesian product")
@_options
@click.option("--gemm", "gemms", multiple=True, metavar="MxKxN",
              help="a GEMM shape to run (repeatable) [default: 128x96x64 without --workload]")
@click.option("--workload", "workloads", multiple=True, metavar="NAME|FILE",
              help="resnet18, bert-base, vit-b16, mlp, or a .toml/.csv/.json file of layers "
                   "(repeatable)")
@click.option("--fidelity", "fidelities", multiple=True, metavar="model|rtl|synth",
              help="model: analytic; rtl: cycles in Verilator; synth: LUT/DSP/BRAM/Fmax after "
                   "place and route (repeatable or a comma list) [default: model]")
@click.option("--board", default="ulx3s-85f", show_default=True, metavar="BOARD",
              help="board for synth (icebreaker, orangecrab-25f/85f, ulx3s-25f/85f)")
@click.option("--top", default="core", show_default=True, metavar="TOP",
              help="synthesis top: core or board")
@click.option("--freq", "freq_mhz", type=float, default=None, metavar="MHZ",
              help="clock of the model and rtl throughput (GOPS) [default: 100], and the synth "
                   "timing constraint [default: the board's oscillator]")
@click.option("--jobs", type=int, default=None, metavar="N",
              help="worker processes [default: the number of CPUs]; 1 runs in this process")
@click.option("--scheduler", default=None, metavar="tcp://HOST:PORT",
              help="run the points on this Dask distributed scheduler instead")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("build/sweep"), show_default=True,
              help="where points, table and plots go; a sweep resumes from what is there")
@click.option("--build-root", type=click.Path(file_okay=False, path_type=Path),
              default=Path("build"), show_default=True,
              help="cache of Verilator models and FPGA builds")
@click.option("--plots/--no-plots", default=True, show_default=True, help="draw the plots")
@click.option("--seed", type=int, default=1, show_default=True,
              help="seed of the rtl data and the synth placement")
@click.option("--fresh", is_flag=True, help="discard the points stored in --out first")
@click.option("--max-points", type=click.IntRange(1), default=MAX_POINTS, show_default=True,
              metavar="N", help="refuse a sweep of more points than this (configs × workloads × "
                                "fidelities), before any work")
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON")
def sweep(config_file: str | None, params: tuple[str, ...], gemms: tuple[str, ...],
          workloads: tuple[str, ...], fidelities: tuple[str, ...], board: str, top: str,
          freq_mhz: float | None, jobs: int | None, scheduler: str | None, out_dir: Path,
          build_root: Path, plots: bool, seed: int, fresh: bool, max_points: int,
          as_json: bool, **field_values: str | None) -> None:
    """Sweep config parameters × workloads at model, rtl or synth fidelity: a table and plots.

    Every finished point is stored in --out at once, so an interrupted sweep resumes where it
    stopped when run again; a failing point is recorded with its error and log, and the others
    go on.
    """
    from ..dse.runner import SchedulerError, plan_points, run_sweep
    from ..dse.space import expand, size
    from ..dse.store import Store
    from ..dse.table import DEFAULT_FREQ_MHZ, rows_from_records, write_csv, write_json

    base, swept = _parse_space(config_file, params,
                               {k.removeprefix("field_"): v for k, v in field_values.items()})
    loaded = _parse_workloads(gemms, workloads)
    chosen = _parse_fidelities(fidelities)
    _check_synth(board, top, freq_mhz)
    if jobs is not None and not 1 <= jobs <= MAX_JOBS:
        fail_usage(f"--jobs {jobs}: out of range (allowed: 1 to {MAX_JOBS})")
    if scheduler is not None and not _SCHEDULER_RE.match(scheduler):
        fail_usage(f"--scheduler {scheduler}: expected tcp://HOST:PORT")
    if not 0 <= seed < 2**31:
        fail_usage(f"--seed {seed}: out of range (allowed: 0 to {2**31 - 1})")
    jobs = jobs or os.cpu_count() or 1
    # counted, not expanded: a mistyped space says so at once, not minutes later
    count = size(swept) * len(loaded) * len(chosen)
    shape = " × ".join([*(f"{len(p.values)} {p.name}" for p in swept),
                        f"{len(loaded)} workload{'s' if len(loaded) > 1 else ''}",
                        f"{len(chosen)} fidelit{'ies' if len(chosen) > 1 else 'y'}"])
    if count > max_points:
        fail_usage(f"{count:,} points ({shape}) is more than --max-points {max_points:,}; give "
                   f"--max-points {count} to run them")

    writable_dir(out_dir, "--out")
    if {"rtl", "synth"} & set(chosen):
        writable_dir(build_root, "--build-root")
    # soft_wrap: paths in messages stay whole lines (a terminal wraps them, not rich)
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    console.print(f"sweep: {count:,} point{'s' if count > 1 else ''} ({shape})")
    points = plan_points(base, expand(base, swept), loaded, chosen, seed=seed, board=board,
                         top=top, freq_mhz=freq_mhz)
    store = Store(out_dir)
    try:
        if fresh:
            store.clear()
        store.points_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail_usage(f"--out {out_dir}: cannot write there ({exc.strerror})")
    where = scheduler or f"{jobs} local worker{'s' if jobs > 1 else ''}"
    progress = Progress(TextColumn("[bold]sweep[/bold]"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[failed]} failed"), TimeElapsedColumn(),
                        TimeRemainingColumn(), console=console, transient=False)
    bar = progress.add_task("sweep", total=len(points), failed=0)
    lines = LineProgress("accel sweep", console)  # a log (not a terminal): lines, not a bar

    def report(done: int, failed: int) -> None:
        progress.update(bar, completed=done, failed=failed)
        lines.note(f"{done:,}/{len(points):,} points, {failed:,} failed")

    start = time.monotonic()
    try:
        with _sigterm_interrupts(), (progress if console.is_terminal else lines):
            lines.step(f"{len(points):,} points on {where}")
            result = run_sweep(points, store, jobs=jobs, scheduler=scheduler,
                               build_root=build_root, progress=report)
    except KeyboardInterrupt:
        done = len(store.load())
        console.print(f"interrupted: {done} points are stored in {store.points_dir}; run the "
                      f"same command again to resume")
        raise
    except SchedulerError as exc:
        raise click.ClickException(str(exc)) from None
    seconds = time.monotonic() - start

    rows = rows_from_records(result.records, freq_mhz=freq_mhz or DEFAULT_FREQ_MHZ)
    meta = {"fidelities": chosen, "freq_mhz": freq_mhz or DEFAULT_FREQ_MHZ,
            "workloads": [w.name for w in loaded], "points": len(rows),
            "failed": len(result.failed), "seconds": round(seconds, 3)}
    csv_path = write_csv(rows, out_dir / "sweep.csv")
    json_path = write_json(rows, out_dir / "sweep.json", meta=meta)
    plot_report = None
    if plots:
        from ..dse.plots import make_plots

        plot_report = make_plots(rows, out_dir / "plots")
    errors = [r for r in rows if r["model_error"] is not None]
    summary: dict[str, Any] = {
        **meta, "ok": len(rows) - len(result.failed), "resumed": result.resumed,
        "computed": result.computed, "executor": where,
        "table": {"csv": str(csv_path), "json": str(json_path)},
        "plots": [str(p) for p in plot_report.written] if plot_report else [],
        "plots_skipped": plot_report.skipped if plot_report else {},
        "max_abs_model_error": max((abs(r["model_error"]) for r in errors), default=None),
        "failures": [{"point": _describe(r), "error": r["error"], "log": r["log"]}
                     for r in result.failed],
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        _print_summary(Console(highlight=False, soft_wrap=True), summary, rows)
    if result.failed:
        raise click.ClickException(f"{len(result.failed)} of {len(rows)} points failed; see "
                                   f"{csv_path} (columns status, error, log)")


def _print_summary(console: Console, summary: dict[str, Any], rows: list[dict]) -> None:
    console.print(f"{summary['points']} points ({', '.join(summary['fidelities'])}; "
                  f"{', '.join(summary['workloads'])}): {summary['ok']} ok, "
                  f"{summary['failed']} failed; {summary['resumed']} resumed from the store, "
                  f"{summary['computed']} computed in {summary['seconds']:.1f} s on "
                  f"{summary['executor']}")
    ok = [r for r in rows if r["status"] == "ok" and r["gops"]]
    for fidelity in summary["fidelities"]:
        mine = [r for r in ok if r["fidelity"] == fidelity]
        if mine:
            best = max(mine, key=lambda r: r["gops"])
            console.print(f"  best {fidelity}: {best['rows']}×{best['cols']} {best['dataflow']} "
                          f"on {best['workload']}: {best['gops']:.2f} GOPS at "
                          f"{best['freq_mhz']:g} MHz, {best['utilization']:.1%} utilization")
    if summary["max_abs_model_error"] is not None:
        console.print(f"  model against RTL: largest |error| "
                      f"{summary['max_abs_model_error']:.2%}")
    for failure in summary["failures"][:10]:
        console.print(f"  [red]failed[/red] {failure['point']}: {failure['error']} "
                      f"(log: {failure['log']})")
    if len(summary["failures"]) > 10:
        console.print(f"  ... and {len(summary['failures']) - 10} more failures")
    console.print(f"table: {summary['table']['csv']}, {summary['table']['json']}")
    if summary["plots"]:
        folder = Path(summary["plots"][0]).parent
        names = sorted({Path(p).stem for p in summary["plots"]})
        console.print(f"plots: {folder}/ ({', '.join(names)}; PNG and SVG)")
    for name, reason in summary["plots_skipped"].items():
        console.print(f"  plot {name} skipped: {reason}")
