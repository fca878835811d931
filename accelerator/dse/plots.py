"""The figures of a sweep, each as PNG and SVG (matplotlib, Agg backend: no display needed).

=================== =========================================================================
utilization         MAC utilization against array size (rows·cols), per dataflow and workload
cycles              cycles against array size, per dataflow and workload
area                LUTs against array size, per dataflow (needs ``synth`` rows)
pareto              throughput (GOPS at Fmax) against LUTs, with the Pareto front (``synth``)
roofline            GOPS against operational intensity (MACs per AXI byte), with the compute
                    roofs 2·R·C·f and the memory roofs 2·B·f, where B = 2 · bus bytes per
                    cycle (AXI reads and writes on their own channels)
model_vs_rtl        the model's cycles against Verilator's, and its error with the ±2 % band
                    (``rtl`` rows)
=================== =========================================================================

Size plots show every point faintly and a line through the best point of each size (several
shapes have the same number of PEs). A plot whose data is absent is skipped, and the reason
is returned; nothing else is.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import FIELDS

__all__ = ["PLOTS", "PlotReport", "describe", "figures", "make_plots"]

Row = Mapping[str, Any]

#: The plots in the order they are made: name → title.
PLOTS = {
    "utilization": "MAC utilization against array size",
    "cycles": "cycles against array size",
    "area": "area (LUTs) against array size",
    "pareto": "throughput against LUTs, Pareto front",
    "roofline": "roofline",
    "model_vs_rtl": "model against RTL cycles",
}
_COLORS = {"os": "tab:blue", "ws": "tab:orange"}
_MARKERS = "osD^v<>Pp*"
#: Output-stationary points hollow, weight-stationary filled and a little to the right on a log
#: axis, so that neither hides the other where they coincide (they often nearly do).
_HOLLOW = {"os": True, "ws": False}
_OFFSET = {"os": 1 / 1.03, "ws": 1.03}


def _points(ax: Any, xs: Sequence[float], ys: Sequence[float], dataflow: str, marker: str,
            label: str | None = None, *, size: float = 14, alpha: float = 0.55,
            offset: bool = True, **kwargs: Any) -> Any:
    """A scatter of one dataflow's points in its style (:data:`_HOLLOW`, :data:`_OFFSET`)."""
    color = _COLORS.get(dataflow, "tab:gray")
    factor = _OFFSET.get(dataflow, 1.0) if offset else 1.0
    style = ({"facecolors": "none", "edgecolors": color, "linewidths": 0.9}
             if _HOLLOW.get(dataflow, False) else {"color": color, "linewidths": 0})
    if _HOLLOW.get(dataflow, False):  # a ring over a filled marker shows; under, it would not
        kwargs["zorder"] = kwargs.get("zorder", 1) + 0.5
    return ax.scatter([x * factor for x in xs], ys, s=size, alpha=alpha, marker=marker,
                      label=label, **style, **kwargs)


def _label(dataflow: str, workload: str) -> str:
    return f"{dataflow}, {workload}"


def _arrays(rows: Sequence[Row]) -> str:
    shapes = sorted({(r["rows"], r["cols"]) for r in rows})
    if len(shapes) <= 4:
        return ", ".join(f"{r}×{c}" for r, c in shapes)
    return (f"{shapes[0][0]}×{shapes[0][1]} to {shapes[-1][0]}×{shapes[-1][1]} "
            f"({len(shapes)} arrays)")


def describe(rows: Sequence[Row], fidelity: str | None) -> tuple[str, str]:
    """``(workloads, details)`` of the points a figure shows, for its title: the workloads by
    name, then fidelity, arrays, dataflows, bus width and clock (or board)."""
    workloads = ", ".join(sorted({str(r["workload"]) for r in rows}))
    parts = [fidelity] if fidelity else []
    parts.append(_arrays(rows))
    parts.append("/".join(sorted({str(r["dataflow"]) for r in rows})))
    widths = sorted({r["axi_data_width"] for r in rows if r.get("axi_data_width")})
    if widths:
        parts.append("/".join(str(w) for w in widths) + "-bit AXI")
    engines = sorted({r["engine"] for r in rows if r.get("engine")} - {"pipelined"})
    parts += [f"{e} engine" for e in engines]
    boards = sorted({r["board"] for r in rows if r.get("board")})
    tops = sorted({r["top"] for r in rows if r.get("board") and r.get("top")})
    if boards:
        parts.append(", ".join(boards) + (f" ({'/'.join(tops)} top)" if tops else "")
                     + " at Fmax")
    else:
        freqs = sorted({r["freq_mhz"] for r in rows if r.get("freq_mhz")})
        if freqs:
            parts.append("/".join(f"{f:g}" for f in freqs) + " MHz")
    return workloads, " · ".join(parts)


def _title(ax: Any, what: str, rows: Sequence[Row], fidelity: str | None) -> None:
    workloads, details = describe(rows, fidelity)
    ax.set_title(f"{what}: {workloads}\n{details}", fontsize=10)


@dataclass
class PlotReport:
    """What :func:`make_plots` wrote, and which plots it skipped and why."""

    written: list[Path] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    # The same sweep gives the same SVG bytes, so committed figures change only with the data.
    plt.rcParams["svg.hashsalt"] = "accel-sweep"
    return plt


def _save(fig: Any, out_dir: Path, name: str) -> list[Path]:
    paths = []
    for ext, extra in (("png", {"dpi": 110}), ("svg", {"metadata": {"Date": None}})):
        path = out_dir / f"{name}.{ext}"
        fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{name}.", suffix=f".{ext}")
        os.close(fd)
        try:
            fig.savefig(tmp, format=ext, bbox_inches="tight", **extra)
            os.chmod(tmp, 0o644)  # as the store's files: readable by the team
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        paths.append(path)
    return paths


def _primary(rows: Sequence[Row]) -> tuple[str | None, list[Row]]:
    """The rows the size plots use: one fidelity, the most detailed present among model-timed
    ones (rtl, else model, else synth's model cycles), ok only."""
    ok = [r for r in rows if r.get("status") == "ok" and r.get("cycles")]
    for fidelity in ("rtl", "model", "synth"):
        chosen = [r for r in ok if r["fidelity"] == fidelity]
        if chosen:
            return fidelity, chosen
    return None, []


def _groups(rows: Sequence[Row]) -> dict[tuple[str, str], list[Row]]:
    groups: dict[tuple[str, str], list[Row]] = {}
    for r in rows:
        groups.setdefault((r["dataflow"], r["workload"]), []).append(r)
    return dict(sorted(groups.items()))


def _by_size(plt: Any, rows: Sequence[Row], metric: str, best: Callable, ylabel: str,
             what: str, fidelity: str | None, log_y: bool, per_workload: bool = True) -> Any:
    """``per_workload=False``: the metric is the build's (area), the same for every workload,
    so one series per dataflow, labelled "any workload"."""
    fig, ax = plt.subplots(figsize=(7, 4.8))
    shown = rows
    if not per_workload:
        first: dict[tuple, Row] = {}
        for r in rows:  # one row per build: its config
            first.setdefault(tuple(r.get(f.name) for f in FIELDS), r)
        shown = [{**r, "workload": "any workload"} for r in first.values()]
    workloads = sorted({r["workload"] for r in shown})
    for (dataflow, workload), group in _groups(shown).items():
        color = _COLORS.get(dataflow, "tab:gray")
        marker = _MARKERS[workloads.index(workload) % len(_MARKERS)]
        _points(ax, [r["pes"] for r in group], [r[metric] for r in group], dataflow, marker,
                size=12, alpha=0.3)
        sizes = sorted({r["pes"] for r in group})
        line = [best(r[metric] for r in group if r["pes"] == s) for s in sizes]
        hollow = _HOLLOW.get(dataflow, False)
        ax.plot([x * _OFFSET.get(dataflow, 1.0) for x in sizes], line, color=color,
                marker=marker, markersize=5, linewidth=1.2,
                markerfacecolor="white" if hollow else color,
                linestyle="-" if hollow else "--", label=_label(dataflow, workload))
    ax.set_xscale("log", base=2)
    if log_y:
        _log(plt, ax, y=True)
    ax.set_xlabel("array size (rows × cols PEs)")
    ax.set_ylabel(ylabel)
    _title(ax, what, rows, fidelity)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def _tick(value: float, _pos: Any = None) -> str:
    """One format along an axis: 0.5, 20, 500, 2k, 50k, 1M, 2G (not 50000 next to 1e5)."""
    if value >= 1e9:
        return f"{value / 1e9:g}G"
    if value >= 1e6:
        return f"{value / 1e6:g}M"
    if value >= 1e3:
        return f"{value / 1e3:g}k"
    return f"{value:g}" if value >= 1e-3 else f"{value:.0e}"


def _log(plt: Any, ax: Any, *, x: bool = False, y: bool = False) -> None:
    """Log axes labelled at 1, 2 and 5 of each decade in plain numbers: matplotlib's default
    labels every minor tick of a short range (``3×10⁻¹`` into ``4×10⁻¹``) and none of a long one."""
    from matplotlib import ticker

    for flag, axis, set_scale in ((x, ax.xaxis, ax.set_xscale), (y, ax.yaxis, ax.set_yscale)):
        if flag:
            set_scale("log")
            axis.set_major_locator(ticker.LogLocator(base=10))
            axis.set_minor_locator(ticker.LogLocator(base=10, subs=(2.0, 5.0)))
            axis.set_major_formatter(ticker.FuncFormatter(_tick))
            axis.set_minor_formatter(ticker.FuncFormatter(_tick))


def _pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The (luts, gops) points that no other point beats with as few or fewer LUTs."""
    front: list[tuple[float, float]] = []
    for luts, gops in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or gops > front[-1][1]:
            front.append((luts, gops))
    return front


def figures(rows: Sequence[Row]) -> tuple[dict[str, Any], dict[str, str]]:
    """The figures ``rows`` (table rows, :mod:`.table`) have the data for, by name (open
    matplotlib figures: close them), and the others' names with the reason they are skipped."""
    plt = _pyplot()
    made: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    fidelity, primary = _primary(rows)
    synth = [r for r in rows if r.get("fidelity") == "synth" and r.get("status") == "ok"
             and r.get("luts") is not None]
    rtl = [r for r in rows if r.get("fidelity") == "rtl" and r.get("status") == "ok"
           and r.get("rtl_cycles") and r.get("model_cycles")]

    def emit(name: str, make: Callable[[], Any] | list, reason: str) -> None:
        if not make or not callable(make):  # `rows and (lambda: ...)`: no rows, no plot
            skipped[name] = reason
            return
        made[name] = make()

    emit("utilization", primary and (lambda: _by_size(
        plt, primary, "utilization", max, "MAC utilization", PLOTS["utilization"], fidelity,
        log_y=False)), "no successful point")
    emit("cycles", primary and (lambda: _by_size(
        plt, primary, "cycles", min, "cycles", PLOTS["cycles"], fidelity, log_y=True)),
        "no successful point")
    emit("area", synth and (lambda: _by_size(
        plt, synth, "luts", min, "LUTs (post-route)", PLOTS["area"], "synth", log_y=True,
        per_workload=False)),
        "no synth data (run with --fidelity synth)")
    emit("pareto", synth and (lambda: _pareto(plt, synth)),
         "no synth data (run with --fidelity synth)")
    emit("roofline", primary and (lambda: _roofline(plt, primary, fidelity or "")),
         "no successful point")
    emit("model_vs_rtl", rtl and (lambda: _model_vs_rtl(plt, rtl)),
         "no rtl data (run with --fidelity rtl)")
    return made, skipped


def make_plots(rows: Sequence[Row], out_dir: Path) -> PlotReport:
    """Write every plot whose data ``rows`` (table rows, :mod:`.table`) hold into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plt = _pyplot()
    made, skipped = figures(rows)
    report = PlotReport(skipped=skipped)
    try:
        for name, fig in made.items():
            report.written += _save(fig, out_dir, name)
    finally:
        for fig in made.values():
            plt.close(fig)
    return report


def _pareto(plt: Any, rows: Sequence[Row]) -> Any:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    workloads = sorted({r["workload"] for r in rows})
    for index, workload in enumerate(workloads):
        group = [r for r in rows if r["workload"] == workload and r.get("gops")]
        marker = _MARKERS[index % len(_MARKERS)]
        for dataflow in sorted({r["dataflow"] for r in group}):
            mine = [r for r in group if r["dataflow"] == dataflow]
            _points(ax, [r["luts"] for r in mine], [r["gops"] for r in mine], dataflow, marker,
                    _label(dataflow, workload), size=22, alpha=0.8, offset=False)
        front = _pareto_front([(r["luts"], r["gops"]) for r in group])
        if front:
            label = f"Pareto front, {workload}"
            ax.step([p[0] for p in front], [p[1] for p in front], where="post", color="black",
                    linewidth=1, label=label, linestyle=("-", "--", ":", "-.")[index % 4])
    _log(plt, ax, x=True, y=True)
    ax.set_xlabel("LUTs (post-route)")
    ax.set_ylabel("GOPS at Fmax")
    _title(ax, PLOTS["pareto"], rows, "synth")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def _roofline(plt: Any, rows: Sequence[Row], fidelity: str) -> Any:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    rows = [r for r in rows if r.get("intensity") and r.get("gops")]
    # One clock (--freq) for model and rtl rows; synth rows are each at their own Fmax, and
    # the roofs are then drawn at the highest.
    freqs = {r["freq_mhz"] for r in rows}
    freq = max(freqs)
    xs = [r["intensity"] for r in rows]
    lo, hi = min(xs) / 2, max(xs) * 2
    workloads = sorted({r["workload"] for r in rows})
    for (dataflow, workload), group in _groups(rows).items():
        _points(ax, [r["intensity"] for r in group], [r["gops"] for r in group], dataflow,
                _MARKERS[workloads.index(workload) % len(_MARKERS)],
                _label(dataflow, workload), size=12, alpha=0.5)
    # Memory roofs: AXI's read and write channels each move a bus width per cycle, and the
    # intensity counts the bytes of both, so the bound is 2·bus bytes per cycle (2 ops a MAC).
    # The points lie under the memory roof, so its label goes above the line: ending at a
    # point of the line, up and to the left of it, where the roof is already higher.
    top = max(r["gops"] for r in rows)
    for width in sorted({r["axi_data_width"] for r in rows}):
        roof = 2 * 2 * (width // 8) * freq / 1000
        ax.plot([lo, hi], [roof * lo, roof * hi], linestyle="--", color="tab:green",
                linewidth=1)
        at = min(hi, max(lo, top / roof))
        ax.annotate(f"memory roof, {width}-bit AXI (read + write)", (at, roof * at),
                    fontsize=7, color="tab:green", ha="right", va="bottom",
                    xytext=(-6, 6), textcoords="offset points")
    # Compute roofs 2·R·C·f: the smallest and largest arrays (more would hide the points).
    sizes = sorted({r["pes"] for r in rows})
    for pes in sorted({sizes[0], sizes[-1]}):
        roof = 2 * pes * freq / 1000
        ax.axhline(roof, color="tab:red", linewidth=1, linestyle=":")
        ax.annotate(f"compute roof, {pes} PEs", (hi, roof), fontsize=7, color="tab:red",
                    ha="right", va="bottom")
    _log(plt, ax, x=True, y=True)
    ax.set_xlim(lo, hi)
    ax.set_xlabel("operational intensity (MACs per AXI byte read or written)")
    ax.set_ylabel(f"GOPS at {freq:g} MHz" if len(freqs) == 1 else
                  f"GOPS at each point's Fmax (roofs at {freq:g} MHz)")
    _title(ax, PLOTS["roofline"], rows, fidelity)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def _model_vs_rtl(plt: Any, rows: Sequence[Row]) -> Any:
    """Left: model against RTL cycles (log-log, the diagonal). Right: the error against the RTL
    cycles with the ±2 % band, which a log-log plot over decades would make invisible."""
    fig, (ax, err) = plt.subplots(1, 2, figsize=(10, 4.5))
    lo = min(min(r["rtl_cycles"], r["model_cycles"]) for r in rows) / 1.5
    hi = max(max(r["rtl_cycles"], r["model_cycles"]) for r in rows) * 1.5
    ax.plot([lo, hi], [lo, hi], color="black", linewidth=1, label="model = RTL")
    err.axhspan(-2, 2, color="gray", alpha=0.25, label="±2 %")
    err.axhline(0, color="black", linewidth=1)
    shapes = sorted({(r["rows"], r["cols"]) for r in rows})
    for dataflow in sorted({r["dataflow"] for r in rows}):
        for shape in shapes:
            mine = [r for r in rows if r["dataflow"] == dataflow
                    and (r["rows"], r["cols"]) == shape]
            if not mine:
                continue
            marker = _MARKERS[shapes.index(shape) % len(_MARKERS)]
            label = f"{shape[0]}×{shape[1]} {dataflow}"
            for axis, ys in ((ax, [r["model_cycles"] for r in mine]),
                             (err, [100 * r["model_error"] for r in mine])):
                _points(axis, [r["rtl_cycles"] for r in mine], ys, dataflow, marker, label,
                        size=26, alpha=0.85, offset=False, zorder=3)
    worst = max(rows, key=lambda r: abs(r["model_error"]))
    for axis in (ax, err):
        _log(plt, axis, x=True)
        axis.set_xlim(lo, hi)
        axis.set_xlabel("cycles measured in Verilator")
        axis.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    err.legend(*err.get_legend_handles_labels(), fontsize=7, ncol=2)
    _log(plt, ax, y=True)
    ax.set_ylim(lo, hi)
    ax.set_ylabel("cycles predicted by the model")
    ax.set_title("cycles, model against RTL", fontsize=10)
    err.set_ylabel("model error (model − RTL) / RTL, %")
    err.set_title(f"error; worst {worst['model_error']:+.1%}: {worst['rows']}×{worst['cols']} "
                  f"{worst['dataflow']}, {worst['workload']}", fontsize=10)
    workloads, details = describe(rows, "rtl")
    fig.suptitle(f"{PLOTS['model_vs_rtl']}: {workloads}\n{details}", fontsize=10)
    fig.tight_layout()
    return fig
