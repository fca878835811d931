"""The package's version, in a module of its own at the bottom of the layers: the register map's
VERSION register and the Verilog manifests read it without importing the package's top level
(which offers ``connect`` and so reaches every layer)."""

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("accelerator")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"
