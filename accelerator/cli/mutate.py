"""`accel mutate`: mutation testing of the regression on the compiled harness."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..config import AcceleratorConfig
from . import cli
from .options import config_options, fail_usage

__all__ = ["mutate"]


@cli.command()
@config_options
@click.option("--count", type=int, default=100, show_default=True,
              help="mutants to sample (yosys mutate -list)")
@click.option("--seed", type=int, default=1, show_default=True,
              help="seed of the sampling and of the regression's random GEMMs")
@click.option("--cases", type=int, default=24, show_default=True,
              help="random GEMMs each mutant runs (plus a large one, the illegal commands)")
@click.option("--extra", multiple=True, metavar="FILTERS",
              help="one more mutant chosen by yosys mutate -list's filter options, e.g. "
                   "'-mode inv -wire engine.core.pe_0_0.acc -wirebit 3' (repeatable)")
@click.option("--only", metavar="N[,N...]", default="",
              help="run only these mutants of the sample (their numbers in the report)")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
@click.option("--build-root", type=click.Path(file_okay=False, path_type=Path),
              default=Path("build"), show_default=True)
def mutate(config: AcceleratorConfig, count: int, seed: int, cases: int,
           extra: tuple[str, ...], only: str, as_json: bool, build_root: Path) -> None:
    """Mutants of the accelerator (yosys mutate) run through the regression on the C++
    harness: killed, survived and timed-out mutants per area, survivors with their source."""
    from ..flow.harness import HarnessError
    from ..mutation import Mutant, MutationError, format_table

    if not 1 <= count <= 100_000:
        fail_usage(f"--count {count} is out of range (allowed: 1 to 100000)")
    if not 0 <= seed < 2**31:
        fail_usage(f"--seed {seed} is out of range (allowed: 0 to 2147483647)")
    if not 1 <= cases <= 10_000:
        fail_usage(f"--cases {cases} is out of range (allowed: 1 to 10000)")
    try:
        chosen = tuple(int(x) for x in only.split(",") if x.strip())
    except ValueError:
        fail_usage(f"--only {only!r}: expected mutant numbers separated by commas")
    if any(not 1 <= i <= count + len(extra) for i in chosen):
        fail_usage(f"--only {only}: mutant numbers are 1 to {count + len(extra)}")
    if config.engine != "pipelined":
        fail_usage("accel mutate runs the pipelined engine only (the harness's regression)")
    from ..mutation import run_mutation

    def progress(line: str) -> None:
        click.echo(line, err=True)

    try:
        report = run_mutation(config, count=count, seed=seed, cases=cases, root=build_root,
                              extra=extra, only=chosen, progress=progress)
    except (MutationError, HarnessError) as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    mutants = [Mutant(**{k: v for k, v in m.items() if k != "location"})
               for m in report["mutants"]]
    click.echo(f"accel mutate: {len(mutants)} mutants of {config.name}, seed {seed}, "
               f"{report['regression_cases']} GEMMs + illegal commands each, "
               f"{report['seconds']:.0f} s")
    click.echo(format_table(mutants))
