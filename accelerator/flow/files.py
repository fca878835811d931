"""Files the flow writes, and what its caches are keyed by: written whole or not at all
(:func:`write_atomic`), locked across processes (:func:`file_lock`), digests of the sources a
cached result depends on (:func:`sources_digest`).

The modules of ``flow/`` (Verilog, Verilator models, the harness, FPGA builds) and the layers
above it (``dse/``, ``nn/``, the CLI) share these; this module imports no gateware and nothing
else of the flow, so every module can use it without an import circle.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["GATEWARE_GLOBS", "VERIFICATION_DIR", "file_lock", "source_digest", "sources_digest",
           "write_atomic"]

#: The cocotb testbench modules (verification/ in the source tree, ``accelerator.verification``
#: when installed): found, not imported, since the testbenches sit above the flow.
VERIFICATION_DIR = Path(
    importlib.util.find_spec("accelerator.verification").submodule_search_locations[0]).resolve()

_PACKAGE = Path(__file__).resolve().parents[1]


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) so that ``path`` holds the old content or the new, never a mix.

    No fsync: a killed process cannot leave half a file behind a rename; after a power loss a
    reader may find an empty or torn file (the sweep's store then computes that point again).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide results from the rest of a team
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


#: The gateware's sources: ``hw/`` with its packages (``hw/*.py`` alone missed the engine's,
#: ``hw/engine/``, so a cached model or bitstream outlived a change to it) and the model's
#: modules the gateware is built from.
GATEWARE_GLOBS = ("hw/**/*.py", "model/regmap.py", "model/geometry.py", "model/protocol.py")


@functools.lru_cache(maxsize=16)
def sources_digest(*globs: str) -> str:
    """A digest of the sources matching ``globs`` (relative to the package; ``verification/…``
    is the testbenches'): what a cached result (a model, a bitstream, a sweep point) depends on.
    """
    h = hashlib.sha256()
    for pattern in globs:
        root, rest = ((VERIFICATION_DIR, pattern.removeprefix("verification/"))
                      if pattern.startswith("verification/") else (_PACKAGE, pattern))
        paths = sorted(root.glob(rest))
        if not paths:  # a pattern that matches nothing would silently stop invalidating
            raise FileNotFoundError(f"no source matches {pattern!r} under {root}")
        for path in paths:
            h.update(pattern.encode() + b"\0" + path.name.encode() + b"\0")
            h.update(path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def source_digest() -> str:
    """A digest of the gateware's source and of our primitive models: a change to either
    invalidates cached models."""
    return sources_digest(*GATEWARE_GLOBS, "flow/cells/*.v")


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock across processes on one machine (``flock``; none where there is no
    ``fcntl``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not on POSIX
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
