"""The package's layers (docs/architecture.md, "Layers"): the driver talks to hardware without
any gateware, and the import contracts in pyproject.toml hold."""

from __future__ import annotations

import subprocess
import sys

import pytest

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
