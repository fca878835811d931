"""`accel build`: synthesize, place and route for a board; write the bitstream and report.json."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..config import AcceleratorConfig
from ..flow import build as flow
from . import cli
from .options import check_accelerator, check_seed, config_options, fail_usage, writable_dir
from .progress import Progress, tool_report_seconds

__all__ = ["build"]


@cli.command()
@config_options
@click.option("--board", required=True, metavar="BOARD",
              help=f"target board: {', '.join(flow.BOARDS)}")
@click.option("--top", default="core", show_default=True, metavar="TOP",
              help="core: the systolic core behind serial shift registers; board: the "
                   "accelerator with its UART bridge and on-chip RAM (accelerator/hw/board.py)")
@click.option("--freq", "freq_mhz", type=float, default=None, metavar="MHZ",
              help="clock of the design, made by the device's PLL (the nearest it can) "
                   "[default: the board's oscillator, no PLL]")
@click.option("--seed", type=int, default=1, show_default=True, help="nextpnr placement seed")
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              required=True, help="directory for the bitstream, the logs and report.json")
@click.option("--allow-timing-fail", is_flag=True,
              help="accept a design that misses the --freq constraint")
@click.option("--baseline", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="report.json to compare with: fail on Fmax or resource "
                                 "regressions beyond --tolerance")
@click.option("--tolerance", type=float, default=5.0, show_default=True, metavar="PCT",
              help="allowed regression against --baseline, in percent")
@click.option("--max-dsp-pes", type=int, default=None, metavar="N",
              help="give at most N PEs a DSP block, the rest multiply in LUTs [default: as "
                   "many as the device has blocks for]")
def build(config: AcceleratorConfig, board: str, top: str, freq_mhz: float | None, seed: int,
          out_dir: Path, allow_timing_fail: bool, baseline: Path | None,
          tolerance: float, max_dsp_pes: int | None) -> None:
    """Build a bitstream for a board and report resources and Fmax (cached by inputs)."""
    if board not in flow.BOARDS:
        fail_usage(f"unknown board {board!r} (known: {', '.join(flow.BOARDS)})")
    if top not in flow.TOPS:
        fail_usage(f"unknown top {top!r} (known: {', '.join(flow.TOPS)})")
    if freq_mhz is not None:
        if not 0 < freq_mhz <= flow.MAX_FREQ_MHZ:
            fail_usage(f"--freq {freq_mhz:g} is out of range "
                       f"(allowed: more than 0 up to {flow.MAX_FREQ_MHZ:g} MHz)")
        try:
            flow.clock_plan(board, freq_mhz)
        except ValueError as exc:
            fail_usage(f"--freq {freq_mhz:g}: {exc}")
    check_seed(seed)
    if max_dsp_pes is not None and max_dsp_pes < 0:
        fail_usage(f"--max-dsp-pes {max_dsp_pes} is out of range (allowed: 0 or more)")
    if not 0 <= tolerance <= 100:
        fail_usage(f"--tolerance {tolerance:g} is out of range (allowed: 0 to 100)")
    if top == "board":  # the core alone takes every width; the board top holds the accelerator
        check_accelerator(config)
    problem = flow.fit_problem(config, board, top=top, max_dsp_pes=max_dsp_pes)
    if problem:
        fail_usage(problem)
    reference = None
    if baseline is not None:
        try:
            reference = json.loads(baseline.read_text())
        except (OSError, ValueError) as exc:
            fail_usage(f"cannot read baseline {baseline}: {exc}")
        if not isinstance(reference, dict):
            fail_usage(f"baseline {baseline} is not a JSON object")
    writable_dir(out_dir, "--out")

    from rich.console import Console

    console = Console(stderr=True)
    try:
        with Progress("accel build", console) as progress:
            progress.step(f"{board}, the {top} top of {config.name}")
            report = flow.build(config, board, top=top, freq_mhz=freq_mhz, seed=seed,
                                out_dir=out_dir, allow_timing_fail=allow_timing_fail,
                                max_dsp_pes=max_dsp_pes, progress=progress.step,
                                progress_seconds=tool_report_seconds())
    except flow.BuildError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot write to {out_dir}: {exc.strerror or exc}") from None

    how = "cached" if report.cached else f"{report.build_seconds:.1f} s"
    click.echo(f"{board} {report.device} ({how}): {report.resources_text()}")
    timing = "met" if report.timing_met else "NOT met"
    clock = (f"PLL {report.freq_mhz_actual:g} MHz from {report.oscillator_mhz:g} MHz"
             if report.pll else f"oscillator {report.oscillator_mhz:g} MHz")
    click.echo(f"multipliers: {report.multipliers_text()}")
    click.echo(f"Fmax {report.fmax_mhz:.2f} MHz (clock: {clock}, "
               f"{timing}); seed {report.seed}")
    click.echo(f"{report.files['bitstream']}")
    click.echo(f"{report.files['report']}")
    if reference is not None:
        problems = flow.compare_baseline(report.to_dict(), reference,
                                         tolerance=tolerance / 100)
        if problems:
            raise click.ClickException(f"{len(problems)} regression(s) against {baseline}: "
                                       + "; ".join(problems))
        click.echo(f"no regression against {baseline} (tolerance {tolerance:g}%)")
