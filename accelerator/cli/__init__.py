"""The ``accel`` command line: one click group, one module per command."""

from __future__ import annotations

import sys

import click

from .. import __version__

__all__ = ["cli", "main"]

# Raised for a bare `accel` by click >= 8.2, with the whole help as its "message".
_NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="accel")
def cli() -> None:
    """Design, verify and build a systolic-array GEMM accelerator."""


def main(argv: list[str] | None = None) -> int:
    """Entry point. Every error ends as one line on stderr: 2 for bad input, 1 for failures."""
    try:
        cli.main(args=argv, prog_name="accel", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("accel: aborted", err=True)
        sys.exit(130)
    except _NO_ARGS_IS_HELP as exc:
        exc.show()  # the help as click formats it, not squeezed into one "error:" line
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        message = " ".join(exc.format_message().split())
        ctx = getattr(exc, "ctx", None)
        command = ctx.command_path if ctx is not None else _command_path(argv)
        click.echo(f"{command}: error: {message}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    return 0


def _command_path(argv: list[str] | None) -> str:
    """``accel <command>`` for an error raised outside a command's own context."""
    args = sys.argv[1:] if argv is None else argv
    name = next((a for a in args if not a.startswith("-")), None)
    return f"accel {name}" if name in cli.commands else "accel"


# Importing the command modules registers them with the group.
from . import build  # noqa: E402,F401,I001
from . import coverage  # noqa: E402,F401
from . import doctor  # noqa: E402,F401
from . import estimate  # noqa: E402,F401
from . import flow  # noqa: E402,F401
from . import formal  # noqa: E402,F401
from . import infer  # noqa: E402,F401
from . import mutate  # noqa: E402,F401
from . import rtl  # noqa: E402,F401
from . import run  # noqa: E402,F401
from . import sim  # noqa: E402,F401
from . import sweep  # noqa: E402,F401
