#!/usr/bin/env python3
"""Regenerate rtl/: the Verilog and manifest of each reference configuration.

    python tools/regen_rtl.py            # rewrite rtl/
    python tools/regen_rtl.py --check    # exit 1 if rtl/ is stale (what the test does)
"""

from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
from pathlib import Path

from accelerator.config import AcceleratorConfig
from accelerator.flow.rtl import ACCEL_TOP, CORE_TOP, emit

ROOT = Path(__file__).resolve().parents[1] / "rtl"

#: The configurations whose Verilog is kept in the repository, by directory name.
REFERENCE_CONFIGS: dict[str, AcceleratorConfig] = {
    "os_4x4": AcceleratorConfig(rows=4, cols=4, dataflow="os"),
    "ws_4x4": AcceleratorConfig(rows=4, cols=4, dataflow="ws"),
    "os_8x8": AcceleratorConfig(rows=8, cols=8, dataflow="os"),
    "ws_8x8": AcceleratorConfig(rows=8, cols=8, dataflow="ws"),
}


#: The configurations whose whole accelerator (registers, engine, DMA) is kept too.
ACCELERATOR_CONFIGS = ("os_4x4", "ws_4x4")


def regenerate(root: Path) -> list[Path]:
    written = []
    for name, config in REFERENCE_CONFIGS.items():
        written.extend(emit(config, root / name, top=CORE_TOP))
        if name in ACCELERATOR_CONFIGS:
            written.extend(emit(config, root / name, top=ACCEL_TOP))
    return written


def stale(root: Path = ROOT) -> list[str]:
    """The files under ``root`` that differ from freshly emitted ones (or are missing)."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = regenerate(Path(tmp))
        problems = []
        for path in fresh:
            kept = root / path.relative_to(tmp)
            if not kept.is_file() or not filecmp.cmp(path, kept, shallow=False):
                problems.append(str(kept.relative_to(root.parent)))
        return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale files")
    args = parser.parse_args()
    if args.check:
        problems = stale()
        for p in problems:
            print(f"stale: {p}", file=sys.stderr)
        if problems:
            print("run: python tools/regen_rtl.py", file=sys.stderr)
        return 1 if problems else 0
    for path in regenerate(ROOT):
        print(path.relative_to(ROOT.parent))
    return 0


if __name__ == "__main__":
    sys.exit(main())
