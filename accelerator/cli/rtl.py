"""`accel rtl`: write the Verilog of the hardware and a JSON manifest."""

from __future__ import annotations

from pathlib import Path

import click

from ..config import AcceleratorConfig
from ..flow.rtl import CORE_TOP, emit
from . import cli
from .options import config_options, writable_dir

__all__ = ["rtl"]


@cli.command()
@config_options
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              required=True, help="directory for <top>.v and <top>.json")
@click.option("--top", type=click.Choice([CORE_TOP]), default=CORE_TOP, show_default=True,
              help="which design to emit")
def rtl(config: AcceleratorConfig, out_dir: Path, top: str) -> None:
    """Write the Verilog of the design and its manifest (config, digest, versions, ports)."""
    writable_dir(out_dir, "--out")
    try:
        verilog, manifest = emit(config, out_dir, top=top)
    except OSError as exc:
        raise click.ClickException(f"cannot write to {out_dir}: {exc.strerror}") from None
    click.echo(f"{verilog} ({verilog.stat().st_size:,} bytes)")
    click.echo(f"{manifest} (config digest {config.digest})")
