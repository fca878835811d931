"""A sweep's records as one table: a row per point, every parameter and metric, as CSV and JSON.

Records (:mod:`.runner`) keep what was measured; the rows add what follows from it, so that a
change of ``--freq`` or of a formula here needs no point computed again. The columns, in order:

=================== ============================================================================
key, status         the point's store key; ``ok`` or ``failed``
fidelity, workload  ``model`` / ``rtl`` / ``synth``; the workload's name, ``layers`` its GEMMs
<config fields>     every field of the config (rows, cols, dataflow, …), then ``pes`` = rows·cols
macs                multiply-accumulates of the whole workload
cycles              the fidelity's cycles: measured in Verilator for ``rtl``, the model's otherwise
utilization         macs / (cycles · pes)
model_cycles        the analytic model's cycles (every fidelity), ``model_utilization`` likewise
rtl_cycles          cycles measured in Verilator (``rtl`` rows), ``rtl_utilization`` likewise
model_error         (model_cycles − rtl_cycles) / rtl_cycles (``rtl`` rows)
bound               ``compute`` or ``memory``: what the model says limits the workload
read_bytes, ...     AXI bytes read and written (model); ``intensity`` = macs / bytes
freq_mhz            the clock the throughput is at: Fmax for ``synth`` rows, ``--freq`` otherwise
gops                2 · macs / (cycles / freq): giga-operations per second (a MAC is 2 ops)
luts, ffs, bram,    post-route resources and the Fmax (``synth`` rows); ``board``, ``top``
dsp, fmax_mhz
seed, seconds       the seed (rtl data, synth placement); seconds the point took to evaluate
error, log          why a point failed; the log with the details (or the simulation's or
                    nextpnr's log of a point that passed)
=================== ============================================================================
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..config import FIELDS
from ..flow.files import write_atomic

__all__ = ["COLUMNS", "DEFAULT_FREQ_MHZ", "row_from_record", "rows_from_records", "write_csv",
           "write_json"]

#: The clock that model and RTL throughput is quoted at when ``--freq`` is not given.
DEFAULT_FREQ_MHZ = 100.0

COLUMNS: tuple[str, ...] = (
    "key", "status", "fidelity", "workload", "layers",
    *(f.name for f in FIELDS), "pes",
    "macs", "cycles", "utilization", "model_cycles", "model_utilization", "rtl_cycles",
    "rtl_utilization", "model_error", "bound", "read_bytes", "write_bytes", "intensity",
    "freq_mhz", "gops", "luts", "ffs", "bram", "dsp", "fmax_mhz", "timing_met", "board", "top",
    "seed", "seconds", "error", "log",
)


def _ratio(num: float | None, den: float | None) -> float | None:
    return num / den if num is not None and den else None


def row_from_record(record: Mapping[str, Any], *, freq_mhz: float = DEFAULT_FREQ_MHZ
                    ) -> dict[str, Any]:
    """One table row (every column of :data:`COLUMNS`) from one point's record."""
    config = record.get("config") or {}
    model = record.get("model") or {}
    rtl = record.get("rtl") or {}
    synth = record.get("synth") or {}
    rows, cols = config.get("rows"), config.get("cols")
    pes = rows * cols if isinstance(rows, int) and isinstance(cols, int) else None
    macs = record.get("macs")
    model_cycles = model.get("cycles")
    rtl_cycles = rtl.get("cycles")
    cycles = rtl_cycles if record.get("fidelity") == "rtl" else model_cycles
    if record.get("status") != "ok":
        cycles = None  # a failed point has no result; the model's numbers stay in model_*
    read_bytes, write_bytes = model.get("read_bytes"), model.get("write_bytes")
    traffic = (read_bytes or 0) + (write_bytes or 0) if model else None
    fmax = synth.get("fmax_mhz")
    clock = fmax if record.get("fidelity") == "synth" else freq_mhz
    row: dict[str, Any] = {
        "key": record.get("key"), "status": record.get("status"),
        "fidelity": record.get("fidelity"), "workload": record.get("workload"),
        "layers": len(record.get("layers") or []) or None,
        **{f.name: config.get(f.name) for f in FIELDS}, "pes": pes,
        "macs": macs, "cycles": cycles,
        "utilization": _ratio(macs, cycles * pes if cycles and pes else None),
        "model_cycles": model_cycles,
        "model_utilization": _ratio(macs, model_cycles * pes if model_cycles and pes else None),
        "rtl_cycles": rtl_cycles,
        "rtl_utilization": _ratio(macs, rtl_cycles * pes if rtl_cycles and pes else None),
        "model_error": (_ratio(model_cycles - rtl_cycles, rtl_cycles)
                        if model_cycles is not None and rtl_cycles else None),
        "bound": model.get("bound"), "read_bytes": read_bytes, "write_bytes": write_bytes,
        "intensity": _ratio(macs, traffic),
        "freq_mhz": clock if cycles else None,
        "gops": (2 * macs * clock / cycles / 1000 if macs and cycles and clock else None),
        **{name: synth.get(name) for name in ("luts", "ffs", "bram", "dsp")},
        "fmax_mhz": fmax, "timing_met": synth.get("timing_met"),
        "board": record.get("board"), "top": record.get("top"), "seed": record.get("seed"),
        "seconds": record.get("seconds"), "error": record.get("error"),
        "log": record.get("log") or record.get("tool_log"),
    }
    return row


def rows_from_records(records: Iterable[Mapping[str, Any]], *,
                      freq_mhz: float = DEFAULT_FREQ_MHZ) -> list[dict[str, Any]]:
    return [row_from_record(r, freq_mhz=freq_mhz) for r in records]


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def write_csv(rows: Sequence[Mapping[str, Any]], path: Path, *,
              columns: Sequence[str] = COLUMNS) -> Path:
    """The table as CSV (empty cells for absent values), written atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: _cell(row.get(c)) for c in columns})
    write_atomic(path, buffer.getvalue())
    return path


def write_json(rows: Sequence[Mapping[str, Any]], path: Path, *,
               meta: Mapping[str, Any] | None = None, columns: Sequence[str] = COLUMNS) -> Path:
    """The table as JSON: ``{"columns": [...], "rows": [{column: value}], ...meta}``."""
    document = {**(meta or {}), "columns": list(columns),
                "rows": [{c: row.get(c) for c in columns} for row in rows]}
    write_atomic(path, json.dumps(document, indent=1, default=str) + "\n")
    return path
