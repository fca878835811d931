"""The command line shared by the scripts that generate a page of docs/ from the code."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path


def stale(path: Path, render: Callable[[], str]) -> bool:
    return not path.is_file() or path.read_text(encoding="utf-8") != render()


def main(doc: Path, render: Callable[[], str], script: str, description: str) -> int:
    """Write ``doc`` from ``render()``; with ``--check`` only say (status 1) if it is stale."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--check", action="store_true", help="only report whether it is stale")
    args = parser.parse_args()
    if args.check:
        if stale(doc, render):
            print(f"stale: {doc.relative_to(doc.parents[1])}", file=sys.stderr)
            print(f"run: python tools/{script}", file=sys.stderr)
            return 1
        return 0
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(render(), encoding="utf-8")
    print(doc.relative_to(doc.parents[1]))
    return 0
