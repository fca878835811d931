"""`accel rtl`: write the Verilog of the hardware and a JSON manifest."""

from __future__ import annotations

from pathlib import Path

import click

from ..config import AcceleratorConfig
from ..flow.rtl import ACCEL_TOP, BOARD_TOP, CORE_TOP, DMA_TOP, emit
from ..model.protocol import uart_divisor
from . import cli
from .options import config_options, fail_usage, writable_dir

__all__ = ["RTL_TOPS", "rtl"]

#: The designs ``accel rtl --top`` emits (the Verilog module names), and what each is.
RTL_TOPS: dict[str, str] = {
    CORE_TOP: "the systolic array alone (operand and result streams)",
    ACCEL_TOP: "the whole accelerator: AXI4-Lite registers, GEMM engine, AXI4 DMA master, irq",
    DMA_TOP: "the DMA alone (AXI4 master, read and write streams)",
    BOARD_TOP: "the accelerator with its UART bridge and on-chip RAM, as simulated "
               "(uart_rx, uart_tx, leds); accel build --top board makes its bitstream",
}

#: The board top's own options, with their defaults: the iCEBreaker's 12 MHz oscillator.
_BOARD_DEFAULTS = {"freq_mhz": 12.0, "baud": 115200}


@cli.command()
@config_options
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              required=True, help="directory for <top>.v and <top>.json")
@click.option("--top", type=click.Choice(list(RTL_TOPS)), default=CORE_TOP, show_default=True,
              help="which design to emit: " + "; ".join(f"{name}: {what}"
                                                        for name, what in RTL_TOPS.items()))
@click.option("--freq", "freq_mhz", type=float, default=None, metavar="MHZ",
              help=f"{BOARD_TOP} only: its clock, which sets the UART's divisor "
                   f"[default: {_BOARD_DEFAULTS['freq_mhz']:g}]")
@click.option("--baud", type=int, default=None, metavar="BAUD",
              help=f"{BOARD_TOP} only: the UART's speed [default: {_BOARD_DEFAULTS['baud']}]")
def rtl(config: AcceleratorConfig, out_dir: Path, top: str, freq_mhz: float | None,
        baud: int | None) -> None:
    """Write the Verilog of the design and its manifest (config, digest, versions, ports)."""
    params = None
    if top == BOARD_TOP:
        freq_mhz = _BOARD_DEFAULTS["freq_mhz"] if freq_mhz is None else freq_mhz
        baud = _BOARD_DEFAULTS["baud"] if baud is None else baud
        if not 0 < freq_mhz <= 1000:
            fail_usage(f"--freq {freq_mhz:g} is out of range (allowed: more than 0 up to "
                       f"1000 MHz)")
        params = {"clk_freq": freq_mhz * 1e6, "baud": baud}
        try:
            uart_divisor(params["clk_freq"], baud)  # checked before the long elaboration
        except ValueError as exc:
            fail_usage(f"--top {BOARD_TOP}: {exc}")
    else:
        given = [name for name, value in (("--freq", freq_mhz), ("--baud", baud))
                 if value is not None]
        if given:
            fail_usage(f"{' and '.join(given)} apply to --top {BOARD_TOP} only")
    writable_dir(out_dir, "--out")
    try:
        verilog, manifest = emit(config, out_dir, top=top, params=params)
    except OSError as exc:
        raise click.ClickException(f"cannot write to {out_dir}: {exc.strerror}") from None
    except ValueError as exc:  # a config the chosen top cannot be built with
        fail_usage(f"--top {top}: {exc}")
    click.echo(f"{verilog} ({verilog.stat().st_size:,} bytes)")
    click.echo(f"{manifest} (config digest {config.digest})")
