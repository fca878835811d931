"""The package's layers (docs/architecture.md, "Layers"): the driver talks to hardware without
any gateware, and the import contracts in pyproject.toml hold."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Every driver module, and the pure-Python layers below it.
DRIVER_MODULES = ("accelerator.driver", "accelerator.driver.driver", "accelerator.driver.board",
                  "accelerator.driver.harness", "accelerator.driver.serial",
                  "accelerator.driver.sim", "accelerator.driver.transport",
                  "accelerator.model.regmap", "accelerator.model.protocol",
                  "accelerator.model.cases")


def _gateware_imported_by(module: str) -> list[str]:
    """The Amaranth, ``accelerator.hw`` and ``accelerator.flow`` modules that importing
    ``module`` loads, in a fresh interpreter (this one has the gateware loaded for other tests)."""
    code = (f"import sys, {module}\n"
            "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] == 'amaranth'\n"
            "                      or m.startswith(('accelerator.hw', 'accelerator.flow')))))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, check=True)
    return result.stdout.split()


@pytest.mark.parametrize("module", DRIVER_MODULES)
def test_driver_imports_no_gateware(module):
    assert _gateware_imported_by(module) == []


def test_the_gateware_check_sees_gateware():
    loaded = _gateware_imported_by("accelerator.hw.registers")
    assert "amaranth" in loaded and "accelerator.hw.registers" in loaded


def _lint_imports(cwd: Path, config: Path, env: dict | None = None
                  ) -> subprocess.CompletedProcess:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert exe, "lint-imports is not installed (the [test] extra has import-linter)"
    return subprocess.run([exe, "--no-cache", str(config)], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env=env)


def test_import_contracts_hold():
    result = _lint_imports(ROOT, ROOT / "pyproject.toml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
    # every contract of pyproject.toml ran
    for name in ("layers:", "the driver needs no gateware", "no import circles"):
        assert name in result.stdout


def test_import_contracts_catch_a_violation(tmp_path):
    # The same contracts on a copy of the package in which the driver imports the gateware and
    # two flow modules import each other: both contracts must break.
    package = tmp_path / "accelerator"
    shutil.copytree(ROOT / "accelerator", package,
                    ignore=shutil.ignore_patterns("__pycache__", "harness", "cells"))
    with open(package / "driver" / "transport.py", "a") as f:
        f.write("\nfrom ..hw import registers  # noqa: E402,F401\n")
    with open(package / "flow" / "files.py", "a") as f:
        f.write("\nfrom . import build  # noqa: E402,F401\n")
    with open(package / "flow" / "build.py", "a") as f:
        f.write("\nfrom . import files as _files  # noqa: E402,F401\n")
    config = tmp_path / "contracts.toml"
    config.write_text((ROOT / "pyproject.toml").read_text())
    result = _lint_imports(tmp_path, config, env={"PYTHONPATH": str(tmp_path)})
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "accelerator.driver is not allowed to import accelerator.hw" in out
    assert "No cycles are allowed in accelerator.flow" in out
