"""The config options shared by every command (one set, declared once, from the config's fields)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from ..config import FIELDS, AcceleratorConfig, ConfigError

__all__ = ["config_options", "fail_usage"]


def fail_usage(message: str) -> None:
    """Report bad input: one line, exit status 2 (see :func:`accelerator.cli.main`)."""
    raise click.UsageError(message)


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
