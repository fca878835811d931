"""The config options shared by every command (one set, declared once, from the config's fields),
and the checks of paths and numbers that several commands make before any long work."""

from __future__ import annotations

import errno
import functools
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..config import FIELDS, AcceleratorConfig, ConfigError
from ..model.regmap import MAX_DIM, accelerator_width_error

__all__ = ["MAX_SEED", "board_options", "check_accelerator", "check_dimensions", "check_seed",
           "config_options",
           "fail_usage", "writable_dir", "writable_file"]

#: Seeds are 31-bit: what every random source seeded from them (NumPy, cocotb, nextpnr) takes.
MAX_SEED = 2**31 - 1


def fail_usage(message: str) -> None:
    """Report bad input: one line, exit status 2 (see :func:`accelerator.cli.main`)."""
    raise click.UsageError(message)


def check_dimensions(**dims: int) -> None:
    """GEMM dimensions (``m=..., k=..., n=...``) within what one hardware command takes."""
    for name, value in dims.items():
        if not 1 <= value <= MAX_DIM:
            fail_usage(f"--{name} = {value} is out of range (allowed: 1 to {MAX_DIM})")


def check_accelerator(config: AcceleratorConfig) -> None:
    """A command that builds the whole accelerator refuses, before any work, widths that only
    the systolic core takes."""
    problem = accelerator_width_error(config)
    if problem:
        fail_usage(problem)


def check_seed(seed: int, option: str = "--seed") -> None:
    if not 0 <= seed <= MAX_SEED:
        fail_usage(f"{option} {seed} is out of range (allowed: 0 to {MAX_SEED})")


def _cannot_write(folder: Path) -> str | None:
    """Why files cannot be written into ``folder`` (created if missing), or None."""
    try:
        if folder.exists() and not folder.is_dir():
            return os.strerror(errno.ENOTDIR)
        folder.mkdir(parents=True, exist_ok=True)
        # os.access says yes to root and on read-only mounts: only a real file tells
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".accel-write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def writable_dir(path: Path, option: str) -> Path:
    """Make sure the command can write into the directory ``path`` (created if missing), before
    any long work: otherwise one line naming the option, exit status 2.

    Call it after every other check of the command's input: it creates the directory.
    """
    reason = _cannot_write(path)
    if reason:
        fail_usage(f"{option} {path}: cannot write there ({reason})")
    return path


def writable_file(path: Path, option: str) -> Path:
    """Like :func:`writable_dir` for a file the command writes at the end (its folder is
    created if missing; the file itself is written later, atomically)."""
    reason = (os.strerror(errno.EISDIR) if path.is_dir()
              else _cannot_write(path.parent))
    if reason:
        fail_usage(f"{option} {path}: cannot write there ({reason})")
    return path


def board_options(*, required: bool) -> Callable[[Callable], Callable]:
    """``--port`` (a board's serial port) and ``--baud``, as every command that talks to a board
    over its UART bridge takes them; the command gets ``port`` and ``baud``."""

    def add(command: Callable) -> Callable:
        command = click.option("--baud", type=click.IntRange(300, 12_000_000), default=115200,
                               show_default=True, help="the serial port's baud rate")(command)
        return click.option("--port", required=required, default=None,
                            help="serial port of the board, e.g. /dev/ttyUSB0")(command)

    return add


def _option_for(field) -> Callable:
    if field.kind is bool:
        flag = field.option
        return click.option(f"{flag}/--no-{flag[2:]}", field.name, default=None,
                            help=f"{field.help} [default: {str(field.default).lower()}]")
    # Deliberately untyped beyond int/str: the config object does the range checks, so the CLI,
    # a TOML file and the Python API give the same message for the same bad value.
    kind = click.INT if field.kind is int else click.STRING
    return click.option(field.option, field.name, type=kind, default=None, metavar=field.kind
                        .__name__.upper(), help=f"{field.help} [default: {field.default}; "
                                                f"{field.allowed()}]")


def config_options(command: Callable) -> Callable:
    """Add ``--config FILE`` and one option per config field; pass the result as ``config``.

    Values from options override those from the file, which override the defaults.
    """

    @functools.wraps(command)
    def wrapper(*args: Any, config_file: str | None, **kwargs: Any) -> Any:
        overrides = {f.name: kwargs.pop(f.name) for f in FIELDS}
        overrides = {k: v for k, v in overrides.items() if v is not None}
        try:
            base = (AcceleratorConfig.from_toml(config_file) if config_file
                    else AcceleratorConfig())
            config = base.replace(**overrides)
        except ConfigError as exc:
            fail_usage(f"invalid config: {exc}")
        return command(*args, config=config, **kwargs)

    for field in reversed(FIELDS):
        wrapper = _option_for(field)(wrapper)
    wrapper = click.option("--config", "config_file", type=click.Path(dir_okay=False),
                           default=None, help="TOML file with config fields")(wrapper)
    return wrapper
