"""An open toolchain for a systolic-array GEMM accelerator: gateware, models, flow and driver."""

from importlib.metadata import PackageNotFoundError, version

from .config import AcceleratorConfig, ConfigError

try:
    __version__ = version("accelerator")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["AcceleratorConfig", "ConfigError", "__version__"]
