"""The documentation's promises: every ``accel`` command it shows parses."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from accelerator.cli import cli
from accelerator.config import FIELDS, AcceleratorConfig

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def documented_commands(path: Path) -> list[tuple[int, str]]:
    """``(line, command)`` for every ``accel ...`` line of a code block (indented by four
    spaces or fenced), continuation lines joined, comments cut. A line with ``...`` or a
    template (``${{ }}``) elides arguments on purpose and is left out."""
    commands: list[tuple[int, str]] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    fenced = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("```"):
            fenced = not fenced
        in_block = fenced or line.startswith("    ")
        # a shell line may chain commands (`pip install . && accel flow`)
        match = re.search(r"(?:^|&&\s*)(accel\s.*)$", line.strip()) if in_block else None
        start = i
        if match:
            text = match.group(1)
            while text.rstrip().endswith("\\") and i + 1 < len(lines):
                i += 1
                text = text.rstrip()[:-1] + " " + lines[i].strip()
            text = re.sub(r"\s#.*$", "", text)
            if "..." not in text and "${{" not in text:
                commands.append((start + 1, text))
        i += 1
    return commands


def parse(command: str) -> None:
    """Parse ``command`` as ``accel`` would, without running it: click checks the options
    (unknown, missing, wrong type or choice), then the config fields build a config (bad values
    are caught as the command would catch them). Raises on any error."""
    name, *args = shlex.split(command)[1:]
    sub = cli.commands.get(name)
    if sub is None:
        raise click.UsageError(f"no such command {name!r}")
    with click.Context(cli, info_name="accel") as parent, \
            sub.make_context(name, args, parent=parent) as ctx:
        fields = {f.name: ctx.params[f.name] for f in FIELDS
                  if ctx.params.get(f.name) is not None}
        if fields:
            AcceleratorConfig().replace(**fields)


COMMANDS = [pytest.param(cmd, id=f"{path.name}:{line}")
            for path in DOCS for line, cmd in documented_commands(path)]


def test_the_docs_show_commands():
    names = {cmd.split()[1] for cmd in (p.values[0] for p in COMMANDS)}
    # every command of the CLI appears at least once in README.md or docs/
    assert names >= {"doctor", "sim", "verify", "build", "run", "estimate", "rtl", "sweep",
                     "flow"} & set(cli.commands), names


@pytest.mark.parametrize("command", COMMANDS)
def test_documented_command_parses(command):
    parse(command)


@pytest.mark.parametrize("command,error", [
    ("accel build --board icebreaker --rows 2", click.MissingParameter),  # no --out
    ("accel rtl --rows 2 -o out --no-such-option", click.NoSuchOption),
    ("accel estimate --rows two --m 1 --k 1 --n 1", click.BadParameter),
    ("accel nosuchcommand --rows 2", click.UsageError),
])
def test_parse_rejects_what_would_fail(command, error):
    """The check above would catch a broken command."""
    with pytest.raises(error):
        parse(command)


def test_parse_rejects_a_bad_config_value():
    from accelerator.config import ConfigError
    with pytest.raises(ConfigError):
        parse("accel estimate --rows 0 --m 1 --k 1 --n 1")
