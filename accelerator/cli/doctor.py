"""`accel doctor`: which tools the flow will use, their versions, and a Verilator build test."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from ..flow.toolchain import SmokeResult, Tool, discover, verilator_smoke_test
from . import cli
from .options import writable_dir

__all__ = ["doctor"]


def _table(tools: list[Tool]) -> Table:
    table = Table(title="accel doctor: toolchain", title_justify="left")
    table.add_column("tool", no_wrap=True)
    table.add_column("version", overflow="fold")
    table.add_column("path", overflow="fold")
    table.add_column("source", no_wrap=True)
    table.add_column("ok", no_wrap=True, justify="center")
    for tool in tools:
        status = "[green]yes[/green]" if tool.ok else "[red]NO[/red]"
        table.add_row(tool.name, tool.version or "-", tool.path or "-", tool.source or "-", status)
    return table


@cli.command()
@click.option("--json", "as_json", is_flag=True,
              help="print a JSON list (one entry per tool, plus verilator-smoke and "
                   "verilator-waves), no table")
@click.option("--build-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="where the Verilator tests build [default: build/doctor]")
@click.option("--no-smoke", is_flag=True,
              help="skip the Verilator build-and-run tests (plain and with waveforms)")
def doctor(as_json: bool, build_dir: Path | None, no_smoke: bool) -> None:
    """Check that Verilator, yosys, nextpnr and the Python packages are usable.

    Reports each tool's version, path and where it came from (a variable the user set, PATH, or
    the pip-installed wheels), then builds and runs a tiny Verilator model, and once more with
    VCD tracing (what `accel sim --waves` needs), checking the waveform. Exit status 1 when
    anything is missing or broken, with one line on stderr per problem.
    """
    console = Console(highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(highlight=False, width=160)  # piped: do not fold paths at 80 columns
    tools = discover()
    if not as_json:
        console.print(_table(tools))

    results: list[Tool] = list(tools)
    if not no_smoke:
        verilator = next(t for t in tools if t.name == "verilator")
        root = writable_dir(build_dir or Path("build") / "doctor", "--build-dir")
        for waves, folder, what in ((False, "verilator-smoke", "smoke test"),
                                    (True, "verilator-waves", "waveform build")):
            if verilator.ok:
                if not as_json:
                    console.print(f"Verilator {what}: building a counter in {root / folder}"
                                  + (" with VCD tracing" if waves else "") + " ...")
                smoke = verilator_smoke_test(root / folder, waves=waves)
            else:
                smoke = SmokeResult(name=folder, source=verilator.source,
                                    error=f"{folder}: not run, verilator is not usable")
            results.append(smoke)
            if not as_json:
                if smoke.ok:
                    console.print(f"Verilator {what}: [green]ok[/green], Verilator "
                                  f"{smoke.version} built and ran it in {smoke.seconds:.1f} s "
                                  f"({smoke.output})")
                else:
                    console.print(f"Verilator {what}: [red]FAILED[/red]: {smoke.error}")

    if as_json:
        click.echo(json.dumps([r.as_dict() for r in results], indent=2))

    failed = [r for r in results if not r.ok]
    if failed:
        for result in failed:
            click.echo(f"accel doctor: {result.error}", err=True)
        names = ", ".join(r.name for r in failed)
        error = click.ClickException(f"{len(failed)} of {len(results)} checks failed: {names}")
        error.ctx = click.get_current_context()  # so main() names the command: "accel doctor:"
        raise error
