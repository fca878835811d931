"""Reading SBY's ``.yw`` witnesses (the Yosys witness format) into values per step.

Only what the replay needs: the top-level signals, by name, as integers, one dict per step. The
format keeps every step's bits as one string whose last character is bit 0 of the first signal
(yosys' ``ywio``); unknown bits (``?``) read as 0.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["read_initial", "read_witness"]


def read_witness(path: str | Path) -> list[dict[str, int]]:
    """The top-level signals' values at each step of the witness at ``path``."""
    data = json.loads(Path(path).read_text())
    if data.get("format") != "Yosys Witness Trace":
        raise ValueError(f"{path}: not a Yosys witness trace")
    steps: list[dict[str, int]] = []
    for t, step in enumerate(data["steps"]):
        bits = step["bits"][::-1]
        pos = 0
        values: dict[str, int] = {}
        for sig in data["signals"]:
            if sig.get("init_only") and t > 0:
                continue
            chunk = bits[pos:pos + sig["width"]]
            pos += sig["width"]
            if len(sig["path"]) != 1 or sig.get("init_only"):
                continue  # inside the hierarchy, or an initial value: not an input
            name = sig["path"][0].lstrip("\\")
            value = values.get(name, 0)
            for i, bit in enumerate(chunk):
                if bit == "1":
                    value |= 1 << (sig["offset"] + i)
            values[name] = value
        steps.append(values)
    return steps


def read_initial(path: str | Path) -> dict[tuple[str, ...], int]:
    """The initial values the witness at ``path`` gives registers inside the hierarchy (those a
    harness left free: :meth:`FormalHarness.free_initial`), by their path of names."""
    data = json.loads(Path(path).read_text())
    if not data["steps"]:
        return {}
    bits = data["steps"][0]["bits"][::-1]
    pos = 0
    values: dict[tuple[str, ...], int] = {}
    for sig in data["signals"]:
        chunk = bits[pos:pos + sig["width"]]
        pos += sig["width"]
        if not sig.get("init_only") or len(sig["path"]) == 1:
            continue
        name = tuple(part.lstrip("\\") for part in sig["path"])
        value = values.get(name, 0)
        for i, bit in enumerate(chunk):
            if bit == "1":
                value |= 1 << (sig["offset"] + i)
        values[name] = value
    return values
