"""A network run's per-layer report: a table, CSV and JSON, and a plot of utilization per layer,
in the style of ``accel sweep``'s outputs (:mod:`accelerator.dse.table`, :mod:`.plots`).

Columns (one row per accelerator layer, then ``total``):

================ ==================================================================================
name, op         the ONNX node (the MatMul / Gemm / Conv or QOperator node) and its operator
m, k, n, groups  the GEMM (a convolution's by im2col: M = batch·OH·OW, K = C/g·KH·KW, N = OC/g)
macs             multiply-accumulates of the layer (all groups)
commands         accelerator commands the layer took (the device API tiles)
cycles           the backend's CYCLES counters summed (measured in Verilator on ``rtl``)
utilization      macs / (cycles · rows · cols)
model_cycles     the performance model's cycles for the same commands at the same addresses
model_error      (model_cycles − cycles) / cycles
estimate_cycles  the performance model for the layer's GEMM shape alone (int32 out, no C_in,
                 the mean over placements): ``accel sweep``'s default for that shape
requant          ``hardware`` (the requantizer, proven equal to onnxruntime's for this layer),
                 ``host`` (int32 out, requantized on the host), ``host (float)`` (a layer
                 onnxruntime runs in float: its result reproduced on the host) or
                 ``none (int32 out)``
seconds          wall time of the layer (host work and simulation)
================ ==================================================================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..config import AcceleratorConfig
from ..dse import table
from .graph import LayerStats

__all__ = ["COLUMNS", "layer_rows", "plot_utilization", "render_table", "write_csv",
           "write_json"]

COLUMNS = ("name", "op", "m", "k", "n", "groups", "macs", "commands", "cycles", "utilization",
           "model_cycles", "model_error", "estimate_cycles", "requant", "seconds")


def layer_rows(stats: Sequence[LayerStats], config: AcceleratorConfig) -> list[dict[str, Any]]:
    """One row per layer and a ``total`` row."""
    pes = config.rows * config.cols
    rows = [s.to_dict(pes) for s in stats]
    cycles = sum(s.cycles for s in stats)
    model = sum(s.model_cycles for s in stats)
    macs = sum(s.macs for s in stats)
    rows.append({"name": "total", "op": "", "macs": macs,
                 "commands": sum(s.commands for s in stats), "cycles": cycles,
                 "utilization": macs / (cycles * pes) if cycles else 0.0, "model_cycles": model,
                 "model_error": (model - cycles) / cycles if cycles else None,
                 "estimate_cycles": sum(s.estimate_cycles for s in stats),
                 "seconds": sum(s.seconds for s in stats)})
    return rows


def render_table(rows: Sequence[Mapping[str, Any]], title: str) -> Any:
    """The rows as a rich table."""
    from rich.table import Table

    table = Table(title=title)
    for column in ("layer", "op", "M×K×N", "cmds", "cycles", "util", "model err", "requant"):
        table.add_column(column, justify="left" if column in ("layer", "op", "requant")
                         else "right", overflow="fold")
    for row in rows:
        shape = (f"{row['m']}×{row['k']}×{row['n']}" + (f" ×{row['groups']}" if row.get(
            "groups", 1) > 1 else "")) if "m" in row else ""
        error = row.get("model_error")
        table.add_row(str(row["name"]), row.get("op", ""), shape, f"{row['commands']:,}",
                      f"{row['cycles']:,}", f"{row['utilization']:.1%}",
                      "" if error is None else f"{error:+.2%}", row.get("requant", ""))
    return table


def write_csv(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """The layers as CSV, written atomically, as ``accel sweep``'s sweep.csv."""
    return table.write_csv(rows, path, columns=COLUMNS)


def write_json(rows: Sequence[Mapping[str, Any]], path: Path, *,
               meta: Mapping[str, Any] | None = None) -> Path:
    """``{...meta, "columns": [...], "rows": [...]}``, as ``accel sweep``'s table.json."""
    return table.write_json(rows, path, meta=meta, columns=COLUMNS)


def plot_utilization(rows: Sequence[Mapping[str, Any]], out_dir: Path, title: str
                     ) -> list[Path]:
    """``utilization.png`` and ``.svg``: MAC utilization per layer (bars), the whole network's
    as a line."""
    from ..dse.plots import _pyplot, _save

    plt = _pyplot()
    layers = [r for r in rows if r["name"] != "total"]
    total = next((r for r in rows if r["name"] == "total"), None)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.6 * len(layers) + 2), 3.6))
    ax.bar(range(len(layers)), [100 * r["utilization"] for r in layers], color="tab:blue")
    if total is not None:
        ax.axhline(100 * total["utilization"], color="tab:orange", linestyle="--",
                   label=f"network: {total['utilization']:.1%}")
        ax.legend(loc="upper right")
    ax.set_xticks(range(len(layers)), [str(r["name"]) for r in layers], rotation=45,
                  ha="right", fontsize=8)
    ax.set_ylabel("MAC utilization (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = _save(fig, out_dir, "utilization")
    plt.close(fig)
    return paths
