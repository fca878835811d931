"""What the sweep's figures say: titles with workload, fidelity and arrays; legends that name
dataflow and workload; os and ws points that do not hide each other; one tick format."""

from __future__ import annotations

import pytest
from test_sweep import _record

from accelerator.dse.plots import _tick, describe, figures
from accelerator.dse.table import rows_from_records


@pytest.fixture
def every_kind():
    records = []
    for size in (2, 4, 8):
        for dataflow in ("os", "ws"):
            records.append(_record("model", size, size, dataflow))
            cycles = _record("model", size, size, dataflow)["model"]["cycles"]
            records.append(_record("rtl", size, size, dataflow,
                                   rtl={"cycles": int(cycles * 1.01)}))
            records.append(_record("synth", size, size, dataflow, synth={
                "luts": 300 * size * size, "ffs": 100, "bram": 1, "dsp": size * size,
                "fmax_mhz": 60.0 - size, "timing_met": True}))
    rows = rows_from_records(records)
    made, skipped = figures(rows)
    yield made, skipped
    import matplotlib.pyplot as plt
    for fig in made.values():
        plt.close(fig)


def _legend(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_every_title_names_workload_fidelity_and_arrays(every_kind):
    made, skipped = every_kind
    assert skipped == {}
    fidelity = {"utilization": "rtl", "cycles": "rtl", "roofline": "rtl", "area": "synth",
                "pareto": "synth", "model_vs_rtl": "rtl"}
    for name, fig in made.items():
        title = fig._suptitle.get_text() if fig._suptitle else fig.axes[0].get_title()
        what, details = title.split("\n")
        # a single workload's name is in the title, as are the fidelity and the arrays
        assert what.endswith(": 64x64x64"), (name, title)
        assert details.split(" · ")[:3] == [fidelity[name], "2×2, 4×4, 8×8", "os/ws"], title
        assert "64-bit AXI" in details


def test_legends_name_dataflow_and_the_single_workload(every_kind):
    made, _ = every_kind
    for name in ("utilization", "cycles", "roofline"):
        assert _legend(made[name].axes[0]) == ["os, 64x64x64", "ws, 64x64x64"], name
    # a build's area is every workload's: one series per dataflow, said so
    assert _legend(made["area"].axes[0]) == ["os, any workload", "ws, any workload"]
    assert _legend(made["pareto"].axes[0]) == ["os, 64x64x64", "ws, 64x64x64",
                                              "Pareto front, 64x64x64"]
    model, err = made["model_vs_rtl"].axes
    arrays = [f"{s}×{s} {d}" for d in ("os", "ws") for s in (2, 4, 8)]
    assert _legend(model) == ["model = RTL", *arrays]
    assert _legend(err) == ["±2 %", *arrays]
    assert model.get_xlabel() == err.get_xlabel() == "cycles measured in Verilator"
    assert err.get_title().startswith("error; worst -1.0%: ")


def test_os_and_ws_points_differ_in_fill_and_position(every_kind):
    made, _ = every_kind
    ax = made["roofline"].axes[0]
    os_points, ws_points = ax.collections[:2]
    # os hollow (no face), ws filled
    assert os_points.get_facecolors().size == 0 or os_points.get_facecolors()[0][3] == 0
    assert ws_points.get_facecolors()[0][3] > 0
    # the same intensities, drawn apart on the log axis
    xs_os = sorted(p[0] for p in os_points.get_offsets())
    xs_ws = sorted(p[0] for p in ws_points.get_offsets())
    assert len(xs_os) == len(xs_ws)
    assert all(w > o for o, w in zip(xs_os, xs_ws, strict=True))


def test_roofline_label_is_above_the_points(every_kind):
    made, _ = every_kind
    ax = made["roofline"].axes[0]
    label = next(t for t in ax.texts if t.get_text().startswith("memory roof"))
    _, y = label.xy
    top = max(p[1] for c in ax.collections for p in c.get_offsets())
    assert y >= top and label.get_ha() == "right" and label.get_va() == "bottom"


def test_one_tick_format():
    assert [_tick(v) for v in (0.5, 20, 500, 1000, 2000, 50_000, 100_000, 2e6, 5e9)] == [
        "0.5", "20", "500", "1k", "2k", "50k", "100k", "2M", "5G"]


def test_describe_a_large_sweep_and_a_board():
    rows = [{"workload": "resnet18", "rows": r, "cols": c, "dataflow": "ws",
             "axi_data_width": 128, "engine": "pipelined", "freq_mhz": 100, "board": None}
            for r in range(2, 17) for c in range(2, 17)]
    assert describe(rows, "model") == (
        "resnet18", "model · 2×2 to 16×16 (225 arrays) · ws · 128-bit AXI · 100 MHz")
    rows = [{**rows[0], "board": "ulx3s-85f", "engine": "compact"}]
    assert describe(rows, "synth") == (
        "resnet18", "synth · 2×2 · ws · 128-bit AXI · compact engine · ulx3s-85f at Fmax")
    rows = [{**rows[0], "top": "core"}]
    assert describe(rows, "synth")[1].endswith(" · ulx3s-85f (core top) at Fmax")
