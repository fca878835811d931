"""`accel coverage`: merge functional-coverage databases of `accel verify --coverage FILE` and
report them; the report and the options `accel verify` shares."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from . import cli
from .options import fail_usage, writable_file

__all__ = ["coverage", "coverage_options", "load_databases", "print_report"]


def coverage_options(command: Callable) -> Callable:
    """``--coverage [FILE]``, ``--coverage-merge FILE`` and ``--coverage-goal PCT``."""
    for option in reversed((
        click.option("--coverage", "coverage_file", is_flag=False, flag_value="-",
                     default=None, metavar="[FILE]",
                     help="functional coverage of what ran: each coverpoint's bins hit and its "
                          "holes; with FILE, the database too (JSON, for --coverage-merge and "
                          "accel coverage)"),
        click.option("--coverage-merge", type=click.Path(dir_okay=False, path_type=Path),
                     multiple=True, metavar="FILE",
                     help="add an earlier run's database (another seed, the other dataflow) "
                          "to this run's coverage (repeatable)"),
        click.option("--coverage-goal", type=float, default=None, metavar="PCT",
                     help="fail (exit status 1) when fewer than PCT percent of the bins are "
                          "hit"),
    )):
        command = option(command)
    return command


def check_goal(goal: float | None) -> None:
    if goal is not None and not 0 <= goal <= 100:  # `not` also refuses nan
        fail_usage(f"--coverage-goal {goal} is out of range (allowed: 0 to 100)")


def load_databases(paths: tuple[Path, ...] | list[Path], option: str,
                   signature: dict | None = None) -> list:
    """Read the databases (one line, exit status 2, for a missing, unreadable or foreign one;
    ``signature``: the coverpoints and bins they must have)."""
    from ..model.coverage import Coverage, CoverageError

    out = []
    for path in paths:
        if not path.is_file():
            fail_usage(f"{option} {path}: no such file")
        try:
            db = Coverage.read(path)
        except CoverageError as exc:
            fail_usage(f"{option} {exc}")
        if signature is not None and {p: list(b) for p, b in db.hits.items()} != signature:
            fail_usage(f"{option} {path}: a different coverage model (other coverpoints or "
                       f"bins) than this config's")
        out.append(db)
    return out


def print_report(console: Console, db: Any, title: str) -> None:
    """The table: coverpoint, bins hit of bins, percent, excluded bins, holes; then the total."""
    table = Table(title=title)
    for name, justify in (("coverpoint", "left"), ("hit", "right"), ("%", "right"),
                          ("excluded", "right"), ("holes", "left")):
        table.add_column(name, justify=justify, overflow="fold")
    for point in db.hits:
        hit, total = db.counts(point)
        table.add_row(point, f"{hit}/{total}", f"{100 * hit / total:.0f}" if total else "-",
                      str(len(db.excluded[point])), ", ".join(db.holes(point)))
    console.print(table)
    hit, total = db.total
    excluded = sum(len(e) for e in db.excluded.values())
    console.print(f"coverage: {hit} of {total} bins hit ({db.percent:.1f}%), {excluded} bins "
                  f"excluded (unreachable on this config; the JSON says why), "
                  f"{len(db.runs)} run{'s' * (len(db.runs) != 1)}")


@cli.command()
@click.argument("databases", nargs=-1, required=True,
                type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="write the merged database here")
@click.option("--goal", type=float, default=None, metavar="PCT",
              help="fail (exit status 1) when fewer than PCT percent of the bins are hit")
@click.option("--json", "as_json", is_flag=True, help="print the merged report as JSON")
def coverage(databases: tuple[Path, ...], output: Path | None, goal: float | None,
             as_json: bool) -> None:
    """Merge coverage databases of `accel verify --coverage FILE` (runs of other seeds, the
    other dataflow) and report the coverpoints, their bins hit and their holes."""
    if goal is not None and not 0 <= goal <= 100:
        fail_usage(f"--goal {goal} is out of range (allowed: 0 to 100)")
    if output is not None:
        writable_file(output, "--output")
    dbs = load_databases(databases, "DATABASE")
    merged = dbs[0]
    for db in dbs[1:]:
        if {p: list(b) for p, b in db.hits.items()} != \
                {p: list(b) for p, b in merged.hits.items()}:
            fail_usage("the databases have different coverage models (other coverpoints or "
                       "bins): merge runs of the same model")
        merged = merged.merge(db)
    if output is not None:
        merged.write(output)
    if as_json:
        click.echo(json.dumps(merged.to_dict(), indent=1))
    else:
        print_report(Console(highlight=False), merged,
                     f"accel coverage: {len(databases)} database"
                     f"{'s' * (len(databases) != 1)}")
    if goal is not None and merged.percent < goal:
        raise click.ClickException(f"coverage {merged.percent:.1f}% is below the goal of "
                                   f"{goal}%")
