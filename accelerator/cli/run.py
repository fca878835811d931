"""`accel run`: a GEMM on a board through its UART bridge, checked against NumPy."""

from __future__ import annotations

import asyncio
import json

import click

from ..config import AcceleratorConfig
from ..model.cases import GemmCase
from . import cli
from .options import board_options, check_dimensions, check_seed, config_options, fail_usage

__all__ = ["run"]


@cli.command()
@config_options
@board_options(required=True)
@click.option("--m", "m", type=int, required=True)
@click.option("--k", "k", type=int, required=True)
@click.option("--n", "n", type=int, required=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--accumulate", is_flag=True, help="C = C_in + A·B")
@click.option("--requant", is_flag=True, help="store C requantized to int8")
@click.option("--json", "as_json", is_flag=True)
def run(config: AcceleratorConfig, port: str, baud: int, m: int, k: int, n: int, seed: int,
        accumulate: bool, requant: bool, as_json: bool) -> None:
    """Run one GEMM on a board (built by `accel build --top board`) and check it.

    The matrices go into the board's on-chip RAM, whose address and size the board reports."""
    from ..driver.board import run_gemm_on_board
    from ..driver.driver import Accelerator, AcceleratorError, IdentificationError
    from ..driver.serial import SerialTransport
    from ..driver.transport import TransportError

    check_dimensions(m=m, k=k, n=n)
    check_seed(seed)

    async def go() -> dict:
        transport = SerialTransport(port, baud)
        try:
            driver = Accelerator(transport)
            hardware = await driver.identify()
            if hardware != config:
                raise click.ClickException(
                    f"{port}: the board holds {hardware.name}, not {config.name}: give the "
                    "options it was built with")
            if requant and not hardware.requant_unit:
                fail_usage("--requant needs hardware generated with requant_unit = true")
            case = GemmCase(m=m, k=k, n=n, seed=seed, accumulate=accumulate, requant=requant)
            return await run_gemm_on_board(driver, transport, hardware, case)
        finally:
            transport.close()

    try:
        record = asyncio.run(go())
    except (ImportError, OSError, TransportError, IdentificationError, AcceleratorError,
            ValueError, TimeoutError) as exc:
        raise click.ClickException(f"{port}: {' '.join(str(exc).split())}") from None
    if as_json:
        click.echo(json.dumps(record, indent=2))
    else:
        verdict = "PASS" if record["passed"] else "FAIL"
        click.echo(f"{verdict}: {m}×{k}×{n} on {config.name} at {port}, {record['cycles']:,} "
                   f"cycles, {record['utilization']:.1%} MAC utilization")
        for bad in record["first"]:
            click.echo(f"  C[{bad['row']}, {bad['col']}] = {bad['got']}, expected "
                       f"{bad['expected']}")
    if not record["passed"]:
        raise click.ClickException(f"{record['mismatches']} of {m * n} elements differ")
