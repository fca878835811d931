"""`accel estimate`: the analytic performance model's prediction for one GEMM."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table

from ..config import AcceleratorConfig
from ..model.perf import estimate
from ..model.regmap import MAX_DIM
from . import cli
from .options import check_dimensions, config_options, fail_usage

__all__ = ["estimate_command"]


def dimension(name: str):
    return click.option(f"--{name}", name, type=int, required=True, metavar="N",
                        help=f"GEMM dimension {name.upper()} (1 to {MAX_DIM}: what one hardware "
                             "command takes)")


@cli.command("estimate")
@config_options
@dimension("m")
@dimension("k")
@dimension("n")
@click.option("--accumulate", is_flag=True, help="C = C_in + A·B (reads C_in)")
@click.option("--requant", "requant_out", is_flag=True,
              help="store int8 requantized results instead of int32")
@click.option("--json", "as_json", is_flag=True, help="print the estimate as JSON")
def estimate_command(config: AcceleratorConfig, m: int, k: int, n: int, accumulate: bool,
                     requant_out: bool, as_json: bool) -> None:
    """Predict cycles, MAC utilization and traffic of an M×K×N GEMM, without simulating."""
    check_dimensions(m=m, k=k, n=n)
    try:
        result = estimate(config, m, k, n, accumulate=accumulate, requant=requant_out)
    except ValueError as exc:
        fail_usage(str(exc))
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    table = Table(title=f"{m}×{k}×{n} GEMM on {config.rows}×{config.cols} "
                        f"{config.dataflow.upper()}, {config.axi_data_width}-bit AXI",
                  show_header=False)
    rows = [
        ("cycles", f"{result.cycles:,}"),
        ("MAC utilization", f"{result.utilization:.1%}"),
        ("bound by", result.bound),
        ("tiles", f"{result.tiles:,}"),
        ("compute cycles", f"{result.compute_cycles:,}"),
        ("memory read / write cycles",
         f"{result.memory_read_cycles:,} / {result.memory_write_cycles:,}"),
        ("fill and drain cycles", f"{result.fill_drain_cycles:,}"),
        ("AXI bytes read / written", f"{result.read_bytes:,} / {result.write_bytes:,}"),
    ]
    for key, value in rows:
        table.add_row(key, value)
    Console().print(table)
