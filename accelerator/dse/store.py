"""Where a sweep keeps its finished points: one JSON file per point, each written atomically.

Layout under the sweep's output directory::

    points/<key>.json     one record per finished point (ok or failed)
    logs/<key>.log        what went wrong, for a failed point (traceback, tool log paths)

A point's key is a digest of everything that defines its result (:func:`point_key`), so a
sweep started again with the same points finds them here and skips them, and a changed point
(another config, workload, seed, hardware or model source) gets a new key and is computed. A
file is written to a temporary name in the same directory and renamed over the final name, so
a sweep killed at any moment leaves whole records or none; the loader ignores the temporaries.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..flow.files import write_atomic

__all__ = ["Store", "point_key"]


def point_key(identity: Mapping[str, Any]) -> str:
    """A stable 16-hex-digit key of a point's identity (any JSON-serializable mapping)."""
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class Store:
    """The finished points of a sweep under ``root`` (the sweep's ``--out`` directory)."""

    def __init__(self, root: Path | str):
        self.root = Path(root)
        self.points_dir = self.root / "points"
        self.logs_dir = self.root / "logs"

    def path(self, key: str) -> Path:
        return self.points_dir / f"{key}.json"

    def log_path(self, key: str) -> Path:
        return self.logs_dir / f"{key}.log"

    def write(self, record: Mapping[str, Any]) -> Path:
        """Write one point's record (it must have a ``key``) atomically; return its path."""
        path = self.path(record["key"])
        write_atomic(path, json.dumps(record, sort_keys=True, default=str) + "\n")
        return path

    def write_log(self, key: str, text: str) -> Path:
        path = self.log_path(key)
        write_atomic(path, text)
        return path

    def load(self) -> dict[str, dict[str, Any]]:
        """Every whole record, by key. Temporaries and unreadable files are skipped (and those
        points computed again), never trusted."""
        records: dict[str, dict[str, Any]] = {}
        if not self.points_dir.is_dir():
            return records
        for path in self.points_dir.glob("*.json"):
            if path.name.startswith("."):
                continue
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(record, dict) and record.get("key") == path.stem:
                records[path.stem] = record
        return records

    def clear(self) -> None:
        """Forget every point (``accel sweep --fresh``)."""
        for directory in (self.points_dir, self.logs_dir):
            shutil.rmtree(directory, ignore_errors=True)
