"""`accel formal`: the formal property sets (SymbiYosys from PyPI), and replays of their traces."""

from __future__ import annotations

import json
from pathlib import Path

import click

from . import cli
from .options import fail_usage

__all__ = ["formal"]


@cli.command()
@click.option("--only", "only", multiple=True, metavar="NAME",
              help="run this property set (repeatable; default: all; see --list)")
@click.option("--ci", "ci_only", is_flag=True,
              help="only the sets CI runs (those measured to take at most 5 minutes in all)")
@click.option("--list", "list_sets", is_flag=True, help="list the property sets and exit")
@click.option("--json", "as_json", is_flag=True,
              help="print the results as JSON: name, method, depth, result, seconds, trace …")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("build/formal"), show_default=True,
              help="directory for each set's SBY job, log and traces")
@click.option("--inject-bug", is_flag=True,
              help="run the deliberately broken variant of each selected set that has one "
                   "(shows a counterexample, its trace and its replay; exits 1)")
@click.option("--replay", "witness", type=click.Path(dir_okay=False, path_type=Path),
              help="replay this .yw witness of the one --only set in the Amaranth simulator")
@click.option("--timeout", type=click.FloatRange(min=1), default=None, metavar="SECONDS",
              help="give up on a set after this long (its result is then 'error')")
def formal(only: tuple[str, ...], ci_only: bool, list_sets: bool, as_json: bool, out_dir: Path,
           inject_bug: bool, witness: Path | None, timeout: float | None) -> None:
    """Prove the blocks' properties: the AXI4-Lite slave, the DMA's AXI4 master, the engine,
    the requantizer and a small PE array (docs/verification.md).

    A failed property prints its counterexample as a VCD waveform and the command that replays
    it in the Amaranth simulator. Exit status: 0 when every set passes, 1 otherwise.
    """
    from ..verification.formal import PROPERTY_SETS
    from ..verification.formal.runner import ToolError, sby_env

    names = [s.name for s in PROPERTY_SETS]
    unknown = [n for n in only if n not in names]
    if unknown:
        fail_usage(f"no property set {unknown[0]!r} (sets: {', '.join(names)})")
    chosen = [s for s in PROPERTY_SETS if (not only or s.name in only) and (s.ci or not ci_only)]
    if inject_bug:
        chosen = [s for s in chosen if s.has_bug]
        if not chosen:
            fail_usage("--inject-bug: none of the chosen sets has a broken variant (sets with "
                       f"one: {', '.join(s.name for s in PROPERTY_SETS if s.has_bug)})")
    if list_sets:
        for s in chosen:
            flags = ("" if s.ci else ", not in CI") + (", has a broken variant" if s.has_bug
                                                       else "")
            click.echo(f"{s.name:16} {s.method} depth {s.depth}{flags}: {s.doc}")
        return
    if witness is not None:
        if len(chosen) != 1:
            fail_usage("--replay needs exactly one --only NAME (the set whose trace it is)")
        if chosen[0].build is None:
            fail_usage(f"--replay: {chosen[0].name} has no trace to replay (its counterexample "
                       "is the values it prints)")
        if not witness.exists():
            fail_usage(f"--replay: {witness} does not exist")
        _replay(chosen[0], witness, inject_bug)
        return
    if not chosen:
        fail_usage("no property set selected")
    try:
        if any(s.check is None for s in chosen):  # the sets SBY runs
            sby_env()
    except ToolError as exc:
        raise click.ClickException(str(exc)) from None

    results = []
    for s in chosen:
        tag = f"{s.name}{'-bug' if inject_bug else ''}"
        click.echo(f"formal: {tag}: {s.method}, depth {s.depth} …", err=as_json)
        try:
            result = s.run(tag, out_dir / tag, broken=inject_bug, timeout=timeout)
        except ToolError as exc:
            raise click.ClickException(str(exc)) from None
        results.append(result)
        click.echo(f"formal: {tag}: {result.result.upper()} in {result.seconds:.1f} s",
                   err=as_json)
        for failure in result.failed:
            click.echo(f"  failed: {failure}", err=as_json)
        if result.result == "fail" and result.trace:
            click.echo(f"  trace: {result.trace}", err=as_json)
            if result.witness:
                bug = " --inject-bug" if inject_bug else ""
                click.echo(f"  replay: accel formal --only {s.name}{bug} --replay "
                           f"{result.witness}", err=as_json)
        if result.result not in ("pass", "fail"):
            click.echo(f"  log: {result.log}", err=as_json)
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in results], indent=2))
    bad = [r for r in results if r.result != "pass"]
    if bad:
        raise click.ClickException(
            f"{len(bad)} of {len(results)} property sets did not pass: "
            + ", ".join(f"{r.name} ({r.result}, log {r.log})" for r in bad))


def _replay(s, witness: Path, broken: bool) -> None:
    from ..verification.formal.replay import replay

    try:
        result = replay(s.build(broken), witness, vcd=witness.with_name("replay.vcd"))
    except (ValueError, KeyError) as exc:
        raise click.UsageError(f"--replay: {exc}") from None
    click.echo(f"replay: {result.cycles} cycles of {witness}; waveform "
               f"{witness.with_name('replay.vcd')}")
    if result.failed:
        raise click.ClickException(f"assertion failed at cycle {result.cycle}: "
                                   f"{result.message} ({result.where})")
    click.echo("replay: no assertion failed")
