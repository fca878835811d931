"""Shared fixtures: the random seed of the Verilator benches and their build root."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from accelerator.cli import main

ROOT = Path(__file__).resolve().parents[1]

#: One seed per pytest run (all xdist workers agree on it through the environment), printed in
#: the header and in every failure; ACCEL_SEED=N replays a run.
if "ACCEL_SEED" not in os.environ:
    os.environ["ACCEL_SEED"] = str(random.SystemRandom().randrange(1, 2**31))
SEED = int(os.environ["ACCEL_SEED"])


#: Tiers that run only when a ``-m`` expression names them: the largest arrays, and the formal
#: property sets that take longer than the regular tier allows.
NAMED_ONLY = ("slow", "formal")


def pytest_collection_modifyitems(config, items):
    """A test of a :data:`NAMED_ONLY` tier runs only when ``-m`` names its marker (``-m slow``,
    ``-m "formal and not slow"``): every other selection, the default run and the other tiers'
    expressions included, leaves it out and counts it as deselected."""
    expression = config.option.markexpr or ""
    left_out = [name for name in NAMED_ONLY if name not in expression]
    dropped = [item for item in items
               if any(item.get_closest_marker(name) for name in left_out)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item not in dropped]


def pytest_report_header(config):
    return f"accelerator: ACCEL_SEED={SEED} (set it to replay the random tests)"


@pytest.fixture(scope="session")
def seed() -> int:
    return SEED


@pytest.fixture(scope="session")
def build_root() -> Path:
    """Models are cached here by digest, so a second test run does not rebuild them."""
    return Path(os.environ.get("ACCEL_BUILD_ROOT", ROOT / "build"))


@pytest.fixture
def accel(capsys):
    """Run ``accel ARGS...`` in-process: return (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        try:
            code = main(list(args))
        except SystemExit as exc:
            code = exc.code
        out, err = capsys.readouterr()
        return code, out, err

    return run
