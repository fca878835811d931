"""`accel sweep` and accelerator.dse: the space, workloads, store, table, plots, the CLI, resuming
after a kill, a Dask cluster, and failing points (fast tier: model fidelity, no Verilator)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from accelerator.config import AcceleratorConfig
from accelerator.dse import runner
from accelerator.dse.plots import PLOTS, make_plots
from accelerator.dse.runner import evaluate_model, plan_points, rtl_memory_needed, run_sweep
from accelerator.dse.space import ConfigPoint, SpaceError, expand, parse_param
from accelerator.dse.store import Store, point_key
from accelerator.dse.table import COLUMNS, row_from_record, rows_from_records, write_csv
from accelerator.dse.workloads import (
    BUNDLED,
    Layer,
    WorkloadError,
    bert_base,
    load_workload,
    mlp,
    parse_gemm,
    resnet18,
    vit_b16,
)
from accelerator.model.cases import GemmCase, make_data
from accelerator.model.perf import estimate

KNOWN = ("rows, cols, dataflow, in_width, acc_width, spad_a_depth, spad_b_depth, spad_c_depth, "
         "axi_data_width, requant_unit, engine, registered_dsp")
ROOT = Path(__file__).resolve().parents[1]


def assert_usage_error(result, line: str) -> None:
    code, out, err = result
    assert "Traceback" not in out + err
    assert err.splitlines()[-1] == line
    assert code == 2


def sweep_json(accel, *args: str) -> tuple[int, dict, str]:
    code, out, err = accel("sweep", "--json", "--no-plots", *args)
    return code, json.loads(out), err


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# -- the parameter space ------------------------------------------------------------------------


@pytest.mark.parametrize("text,name,values", [
    ("rows=2,4,8", "rows", (2, 4, 8)),
    ("rows=2..5", "rows", (2, 3, 4, 5)),
    ("cols=2..16:4", "cols", (2, 6, 10, 14)),
    ("rows=4,2..3,4", "rows", (4, 2, 3)),
    ("dataflow=os,ws", "dataflow", ("os", "ws")),
    ("axi-data-width=64,128", "axi_data_width", (64, 128)),
    ("spad_a_depth=256,0x400", "spad_a_depth", (256, 1024)),
    ("requant_unit=true,False", "requant_unit", (True, False)),
])
def test_parse_param(text, name, values):
    param = parse_param(text)
    assert (param.name, param.values) == (name, values)


@pytest.mark.parametrize("args,message", [
    (["--param", "rows"], "--param rows: expected NAME=VALUES, e.g. rows=2,4,8"),
    (["--param", "=4"], "--param =4: expected NAME=VALUES, e.g. rows=2,4,8"),
    (["--param", "depth=4"], f"--param depth=4: unknown config field 'depth' (known: {KNOWN})"),
    (["--param", "rows=2,x"], "--param rows=2,x: 'x' is not an integer"),
    (["--param", "rows=2,,4"], "--param rows=2,,4: empty value in the list"),
    (["--param", "rows=8..2"], "--param rows=8..2: the range '8..2' is empty"),
    (["--param", "rows=2..8:0"], "--param rows=2..8:0: the step of '2..8:0' must be 1 or more"),
    (["--param", "rows=2,128"],
     "--param rows=2,128: rows = 128 is out of range (allowed: 1 to 64)"),
    (["--param", "spad_a_depth=100"], ("--param spad_a_depth=100: spad_a_depth = 100 is not a "
                                      "power of two (allowed: a power of two from 16 to 65536)")),
    (["--param", "dataflow=os,is"],
     "--param dataflow=os,is: dataflow = 'is' is not allowed (allowed: os, ws)"),
    (["--param", "requant_unit=maybe"],
     "--param requant_unit=maybe: 'maybe' is not a boolean (allowed: true, false)"),
    (["--rows", "0"], "--rows 0: rows = 0 is out of range (allowed: 1 to 64)"),
    (["--rows", "2,4", "--param", "rows=8"],
     "--param rows=8: rows is already swept by --rows 2,4"),
    (["--param", "cols=2", "--param", "cols=4"],
     "--param cols=4: cols is already swept by --param cols=2"),
    (["--param", "rows,rows=2"], "--param rows,rows=2: rows is named twice"),
    (["--param", "rows,dataflow=2"],
     "--param rows,dataflow=2: rows and dataflow take different kinds of value"),
    (["--param", "rows,cols=2,100"],
     "--param rows,cols=2,100: rows = 100 is out of range (allowed: 1 to 64)"),
    (["--cols", "4", "--param", "rows,cols=2"],
     "--param rows,cols=2: cols is already swept by --cols 4"),
    (["--gemm", "128x96"], "--gemm 128x96: expected MxKxN, e.g. 128x96x64"),
    (["--gemm", "0x4x4"], "--gemm 0x4x4: m = 0 is out of range (allowed: 1 to 65535)"),
    (["--workload", "alexnet"], ("--workload alexnet: unknown network 'alexnet' (bundled: "
                                "resnet18, bert-base, vit-b16, mlp; or a .toml, .csv or .json "
                                "file)")),
    (["--fidelity", "model,fast"],
     "--fidelity model,fast: unknown fidelity 'fast' (known: model, rtl, synth)"),
    (["--board", "de10"], ("--board de10: unknown board 'de10' (known: icebreaker, "
                          "orangecrab-25f, orangecrab-85f, ulx3s-25f, ulx3s-85f)")),
    (["--top", "soc"], "--top soc: unknown top 'soc' (known: core, board)"),
    (["--freq", "0"], "--freq 0: out of range (allowed: more than 0 up to 1000 MHz)"),
    (["--jobs", "0"], "--jobs 0: out of range (allowed: 1 to 1024)"),
    (["--jobs", "1025"], "--jobs 1025: out of range (allowed: 1 to 1024)"),
    (["--scheduler", "localhost:8786"], "--scheduler localhost:8786: expected tcp://HOST:PORT"),
    (["--seed", "-1"], "--seed -1: out of range (allowed: 0 to 2147483647)"),
])
def test_cli_usage_errors(accel, tmp_path, args, message):
    result = accel("sweep", "--out", str(tmp_path / "out"), *args)
    assert_usage_error(result, f"accel sweep: error: {message}")
    assert not (tmp_path / "out").exists()


def test_cli_unwritable_out(accel, tmp_path):
    (tmp_path / "file").write_text("")
    assert_usage_error(accel("sweep", "--out", str(tmp_path / "file" / "sweep")),
                       f"accel sweep: error: --out {tmp_path / 'file' / 'sweep'}: cannot write "
                       f"there (Not a directory)")


def test_cli_bad_config_file(accel, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("rows = 0\n")
    assert_usage_error(accel("sweep", "--config", str(bad), "--out", str(tmp_path)),
                       f"accel sweep: error: invalid config: {bad}: rows = 0 is out of range "
                       "(allowed: 1 to 64)")


def test_expand_is_the_cartesian_product_with_invalid_combinations_kept():
    base = AcceleratorConfig()
    points = expand(base, [parse_param("in_width=8,16"), parse_param("acc_width=16,32")])
    assert [p.values for p in points] == [
        {"in_width": 8, "acc_width": 16}, {"in_width": 8, "acc_width": 32},
        {"in_width": 16, "acc_width": 16}, {"in_width": 16, "acc_width": 32}]
    assert [p.config is None for p in points] == [False, False, True, False]
    assert points[2].error == ("invalid config: acc_width = 16 is out of range (allowed: 32 to "
                               "64, at least twice in_width = 16)")
    assert points[3].config == base.replace(in_width=16, acc_width=32)
    assert [p.config for p in expand(base, [])] == [base]
    tied = expand(base, [parse_param("rows,cols=2,8"), parse_param("dataflow=os,ws")])
    assert [(p.config.rows, p.config.cols, p.config.dataflow) for p in tied] == [
        (2, 2, "os"), (2, 2, "ws"), (8, 8, "os"), (8, 8, "ws")]
    assert tied[0].values == {"rows": 2, "cols": 2, "dataflow": "os"}
    with pytest.raises(SpaceError, match="rows is already swept"):
        expand(base, [parse_param("rows=2"), parse_param("rows=4")])


# -- workloads ----------------------------------------------------------------------------------


def test_resnet18_is_1_8_gmacs_of_im2col_convolutions():
    w = resnet18()
    assert w.macs == 1_814_073_344  # the published 1.8 G multiply-adds at 224×224
    layers = {layer.name: layer for layer in w.layers}
    # conv1: 7×7×3 → 64 at stride 2: 112×112 outputs
    assert layers["conv1"].shape == (112 * 112, 7 * 7 * 3, 64)
    assert layers["layer1.conv3x3"] == Layer("layer1.conv3x3", 3136, 576, 64, count=4)
    assert layers["layer4.conv3x3"].shape == (49, 4608, 512)
    assert layers["fc"].shape == (1, 512, 1000)
    assert sum(layer.count for layer in w.layers) == 21  # 20 convolutions and the FC layer


def test_transformers_and_mlp():
    bert = bert_base()
    assert bert.macs == 12 * (4 * 128 * 768 * 768 + 2 * 12 * 128 * 128 * 64
                              + 2 * 128 * 768 * 3072)
    assert round(bert.macs / 1e9, 1) == 11.2
    assert {layer.name: layer.shape for layer in bert.layers}["attn_scores"] == (128, 64, 128)
    vit = vit_b16()
    assert vit.layers[0].shape == (196, 768, 768)
    assert {layer.m for layer in vit.layers[1:-1]} == {197}
    assert round(vit.macs / 1e9, 1) == 17.6
    assert mlp().macs == 64 * (784 * 1024 + 1024 * 1024 + 1024 * 10)
    assert sorted(BUNDLED) == ["bert-base", "mlp", "resnet18", "vit-b16"]


def test_gemm_shape():
    w = parse_gemm("128x96×64")
    assert (w.name, w.layers) == ("128x96x64", (Layer("128x96x64", 128, 96, 64),))


@pytest.mark.parametrize("name,text", [
    ("net.toml", ('name = "tiny"\n[[layers]]\nname = "a"\nm = 4\nk = 5\nn = 6\ncount = 2\n'
                 '[[layers]]\nm = 7\nk = 8\nn = 9\n')),
    ("net.csv", "name,m,k,n,count\na,4,5,6,2\n,7,8,9,\n"),
    ("net.json", json.dumps({"name": "tiny", "layers": [
        {"name": "a", "m": 4, "k": 5, "n": 6, "count": 2}, {"m": 7, "k": 8, "n": 9}]})),
])
def test_workload_files(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    w = load_workload(str(path))
    assert w.name == ("net" if name.endswith(".csv") else "tiny")
    assert w.layers == (Layer("a", 4, 5, 6, 2), Layer("layer2", 7, 8, 9, 1))


@pytest.mark.parametrize("name,text,message", [
    ("w.toml", "[[layers]]\nm = 4\nk = 5\n", "{path}: layer 1: n is missing"),
    ("w.toml", "[[layers]]\nm = 4\nk = 5\nn = 0\n",
     "{path}: layer 1: n = 0 is out of range (allowed: 1 or more)"),
    ("w.toml", "m = 4\n", "{path}: expected [[layers]] tables"),
    ("w.toml", "[[layers]]\nm = 4\nk = 5\nn = 6\nbatch = 2\n",
     "{path}: layer 1: unknown key 'batch' (known: name, m, k, n, count)"),
    ("w.csv", "name,m,k\na,1,2\n", "{path}: the header lacks n (expected name,m,k,n,count)"),
    ("w.csv", "m,k,n\n1,2,x\n", "{path}: layer 1: n = 'x' is not an integer"),
    ("w.json", "[]", "{path}: no layers"),
    ("w.json", "{", ("{path}: invalid JSON: Expecting property name enclosed in double quotes: "
                    "line 1 column 2 (char 1)")),
    ("w.yaml", "layers: []", ("{path}: unknown workload format '.yaml' (known: .toml, .csv, "
                             ".json)")),
])
def test_workload_file_errors(accel, tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(WorkloadError) as info:
        load_workload(str(path))
    assert str(info.value) == message.format(path=path)
    assert_usage_error(accel("sweep", "--workload", str(path), "--out", str(tmp_path / "o")),
                       "accel sweep: error: " + message.format(path=path))


def test_missing_workload_file(tmp_path):
    path = tmp_path / "none.toml"
    with pytest.raises(WorkloadError) as info:
        load_workload(str(path))
    assert str(info.value) == f"{path}: cannot read: No such file or directory"


# -- model evaluation, keys, store --------------------------------------------------------------


def test_evaluate_model_sums_layers_times_counts():
    config = AcceleratorConfig(rows=4, cols=4)
    w = mlp()
    result = evaluate_model(config, w)
    expected = sum(estimate(config, layer.m, layer.k, layer.n).cycles * layer.count
                   for layer in w.layers)
    assert result["cycles"] == expected
    assert [entry["model_cycles"] for entry in result["layers"]] == [
        estimate(config, layer.m, layer.k, layer.n).cycles for layer in w.layers]
    assert result["bound"] in ("compute", "memory")


def test_point_keys_depend_on_what_defines_the_point():
    base = AcceleratorConfig()
    configs = expand(base, [parse_param("rows=2,4")])
    w = parse_gemm("8x8x8")
    a = plan_points(base, configs, [w], ["model", "rtl"], seed=1)
    assert len({p.key for p in a}) == 4
    # the model's result does not depend on the seed or the board; the RTL's depends on the seed
    b = plan_points(base, configs, [w], ["model", "rtl"], seed=2, board="icebreaker")
    assert [p.key for p in a[:2]] == [p.key for p in b[:2]]
    assert [p.key for p in a[2:]] != [p.key for p in b[2:]]
    assert point_key({"a": 1, "b": [1, 2]}) == point_key({"b": [1, 2], "a": 1})


def test_store_writes_atomically_and_loads_only_whole_records(tmp_path):
    store = Store(tmp_path)
    store.write({"key": "abc", "status": "ok"})
    assert json.loads((tmp_path / "points" / "abc.json").read_text()) == {"key": "abc",
                                                                         "status": "ok"}
    # what a kill can leave behind: a temporary file, and (after a power loss) a torn record
    (tmp_path / "points" / ".def.json.x1y2.tmp").write_text('{"key": "def"')
    (tmp_path / "points" / "ghi.json").write_text('{"key": "ghi", "sta')
    (tmp_path / "points" / "jkl.json").write_text('{"key": "other"}')
    assert store.load() == {"abc": {"key": "abc", "status": "ok"}}
    assert [p.name for p in (tmp_path / "points").iterdir() if p.name.startswith(".")] == [
        ".def.json.x1y2.tmp"]  # write() leaves no temporaries of its own
    store.clear()
    assert store.load() == {}


# -- table and plots ----------------------------------------------------------------------------


def _record(fidelity: str, rows: int, cols: int, dataflow: str, **parts) -> dict:
    config = AcceleratorConfig(rows=rows, cols=cols, dataflow=dataflow)
    e = evaluate_model(config, parse_gemm("64x64x64"))
    e.pop("layers")
    return {"key": f"{fidelity}{rows}{cols}{dataflow}", "status": "ok", "fidelity": fidelity,
            "workload": "64x64x64", "config": config.to_dict(), "macs": 64 ** 3,
            "layers": [{}], "model": e, "rtl": None, "synth": None, "seed": 1,
            "board": None, "top": None, "seconds": 0.1, "error": None, "log": None, **parts}


def test_row_derives_utilization_gops_and_model_error():
    record = _record("rtl", 4, 4, "os", rtl={"cycles": 20_000})
    model = record["model"]["cycles"]
    row = row_from_record(record, freq_mhz=200)
    assert list(row) == list(COLUMNS)
    assert row["cycles"] == row["rtl_cycles"] == 20_000
    assert row["model_cycles"] == model
    assert row["utilization"] == pytest.approx(64 ** 3 / (20_000 * 16))
    assert row["model_error"] == pytest.approx((model - 20_000) / 20_000)
    assert row["gops"] == pytest.approx(2 * 64 ** 3 * 200 / 20_000 / 1000)
    assert row["pes"] == 16 and row["freq_mhz"] == 200
    synth = _record("synth", 4, 4, "os", synth={"luts": 1000, "ffs": 900, "bram": 2, "dsp": 16,
                                                 "fmax_mhz": 50.0, "timing_met": True})
    row = row_from_record(synth, freq_mhz=200)
    assert row["freq_mhz"] == 50.0 and row["cycles"] == row["model_cycles"]
    assert row["gops"] == pytest.approx(2 * 64 ** 3 * 50 / row["cycles"] / 1000)
    assert row["model_error"] is None
    failed = {**_record("model", 4, 4, "os"), "status": "failed", "error": "boom",
              "log": "/x.log"}
    row = row_from_record(failed)
    assert (row["cycles"], row["gops"], row["error"], row["log"]) == (None, None, "boom",
                                                                      "/x.log")


def test_csv_has_every_column(tmp_path):
    rows = rows_from_records([_record("model", 2, 2, "os"), _record("model", 2, 2, "ws")])
    table = read_csv(write_csv(rows, tmp_path / "t.csv"))
    assert list(table[0]) == list(COLUMNS)
    assert [r["dataflow"] for r in table] == ["os", "ws"]
    assert table[0]["rtl_cycles"] == "" and table[0]["requant_unit"] == "true"


def test_every_plot_when_every_kind_of_data_is_there(tmp_path):
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
    report = make_plots(rows_from_records(records), tmp_path)
    assert report.skipped == {}
    assert sorted(p.name for p in report.written) == sorted(
        f"{name}.{ext}" for name in PLOTS for ext in ("png", "svg"))
    for path in report.written:
        data = path.read_bytes()
        assert data.startswith(b"\x89PNG") if path.suffix == ".png" else b"<svg" in data[:500]


def test_plots_without_data_are_skipped_with_the_reason(tmp_path):
    rows = rows_from_records([_record("model", 2, 2, "os"), _record("model", 4, 2, "ws")])
    report = make_plots(rows, tmp_path)
    assert sorted(p.stem for p in report.written) == ["cycles", "cycles", "roofline",
                                                      "roofline", "utilization", "utilization"]
    assert report.skipped == {"area": "no synth data (run with --fidelity synth)",
                              "pareto": "no synth data (run with --fidelity synth)",
                              "model_vs_rtl": "no rtl data (run with --fidelity rtl)"}
    # the same rows draw the same bytes, so committed figures change only with their data
    again = make_plots(rows, tmp_path / "again")
    assert [p.read_bytes() for p in report.written] == [p.read_bytes() for p in again.written]


# -- the command --------------------------------------------------------------------------------


def test_sweep_writes_table_and_plots_and_resumes(accel, tmp_path):
    out = tmp_path / "sweep"
    args = ["--param", "rows=2,4", "--cols", "2..3", "--dataflow", "os,ws", "--gemm", "32x24x16",
            "--workload", "mlp", "--out", str(out), "--jobs", "1", "--freq", "250"]
    code, out_text, err = accel("sweep", *args)
    assert code in (0, None), err
    assert ("16 points (model; 32x24x16, mlp): 16 ok, 0 failed; 0 resumed from the store, "
            "16 computed") in out_text
    table = read_csv(out / "sweep.csv")
    assert len(table) == 16 and {r["status"] for r in table} == {"ok"}
    assert {(r["rows"], r["cols"], r["dataflow"]) for r in table} == {
        (str(r), str(c), d) for r in (2, 4) for c in (2, 3) for d in ("os", "ws")}
    mine = next(r for r in table if (r["rows"], r["cols"], r["dataflow"], r["workload"])
                == ("4", "3", "ws", "32x24x16"))
    e = estimate(AcceleratorConfig(rows=4, cols=3, dataflow="ws"), 32, 24, 16)
    assert int(mine["cycles"]) == e.cycles
    assert float(mine["gops"]) == pytest.approx(2 * 32 * 24 * 16 * 250 / e.cycles / 1000)
    document = json.loads((out / "sweep.json").read_text())
    assert document["columns"] == list(COLUMNS) and len(document["rows"]) == 16
    assert sorted(p.name for p in (out / "plots").iterdir()) == [
        "cycles.png", "cycles.svg", "roofline.png", "roofline.svg", "utilization.png",
        "utilization.svg"]
    assert len(list((out / "points").glob("*.json"))) == 16

    before = {p.name: p.read_bytes() for p in (out / "points").iterdir()}
    code, summary, err = sweep_json(accel, *args)
    assert code in (0, None), err
    assert (summary["resumed"], summary["computed"], summary["ok"]) == (16, 0, 16)
    assert {p.name: p.read_bytes() for p in (out / "points").iterdir()} == before
    # one more config: only its points are computed
    code, summary, err = sweep_json(accel, *[a if a != "rows=2,4" else "rows=2,4,8"
                                             for a in args])
    assert (summary["resumed"], summary["computed"], summary["points"]) == (16, 8, 24)
    code, summary, err = sweep_json(accel, *args, "--fresh")
    assert (summary["resumed"], summary["computed"]) == (0, 16)


def test_default_workload_and_single_point(accel, tmp_path):
    code, summary, err = sweep_json(accel, "--out", str(tmp_path), "--jobs", "1")
    assert code in (0, None), err
    assert (summary["points"], summary["workloads"], summary["fidelities"]) == (
        1, ["128x96x64"], ["model"])


def test_a_process_pool_gives_the_same_table(accel, tmp_path):
    args = ["--rows", "2..5", "--dataflow", "os,ws", "--gemm", "40x30x20", "--gemm", "8x8x8"]
    code, summary, err = sweep_json(accel, *args, "--jobs", "2", "--out", str(tmp_path / "a"))
    assert code in (0, None), err
    assert summary["executor"] == "2 local workers" and summary["ok"] == 16
    code, _, err = sweep_json(accel, *args, "--jobs", "1", "--out", str(tmp_path / "b"))
    a, b = (read_csv(tmp_path / d / "sweep.csv") for d in "ab")
    drop = ("seconds",)
    assert [{k: v for k, v in r.items() if k not in drop} for r in a] == \
        [{k: v for k, v in r.items() if k not in drop} for r in b]
    # the points were computed in the workers, not in this process
    pids = {json.loads(p.read_text())["pid"] for p in (tmp_path / "a" / "points").iterdir()}
    assert os.getpid() not in pids


def test_failing_points_are_recorded_and_the_others_finish(accel, tmp_path, monkeypatch):
    monkeypatch.setenv("ACCEL_SWEEP_FAIL", "rows=4,dataflow=ws")
    out = tmp_path / "sweep"
    code, out_text, err = accel("sweep", "--rows", "2,4", "--dataflow", "os,ws",
                                "--param", "in_width=8,16", "--param", "acc_width=16,32",
                                "--gemm", "16x16x16", "--jobs", "1", "--out", str(out),
                                "--no-plots")
    assert code == 1
    # per config: in_width=16 with acc_width=16 is invalid (4 points); rows=4 ws injected (3 more)
    assert err.splitlines()[-1] == (f"accel sweep: error: 7 of 16 points failed; see "
                                    f"{out / 'sweep.csv'} (columns status, error, log)")
    table = read_csv(out / "sweep.csv")
    failed = [r for r in table if r["status"] == "failed"]
    assert len(failed) == 7 and sum(r["status"] == "ok" for r in table) == 9
    for row in failed:
        assert row["cycles"] == "" and Path(row["log"]).is_file()
        assert row["error"] in Path(row["log"]).read_text()
        if (row["in_width"], row["acc_width"]) == ("16", "16"):
            assert row["error"] == ("invalid config: acc_width = 16 is out of range (allowed: "
                                    "32 to 64, at least twice in_width = 16)")
        else:
            assert (row["rows"], row["dataflow"]) == ("4", "ws")
            assert row["error"] == ("RuntimeError: injected failure "
                                    "(ACCEL_SWEEP_FAIL=rows=4,dataflow=ws)")
            assert "Traceback" in Path(row["log"]).read_text()
    assert "failed rtl" not in out_text and "failed model 4×4 ws 16x16x16" in out_text
    # A resumed sweep keeps the successes and tries the failures again.
    monkeypatch.delenv("ACCEL_SWEEP_FAIL")
    code, summary, err = sweep_json(accel, "--rows", "2,4", "--dataflow", "os,ws",
                                    "--param", "in_width=8,16", "--param", "acc_width=16,32",
                                    "--gemm", "16x16x16", "--jobs", "1", "--out", str(out))
    assert (summary["resumed"], summary["computed"], summary["failed"]) == (9, 7, 4)


def test_rtl_tasks_share_the_workers_as_threads():
    from accelerator.dse.runner import make_tasks

    base = AcceleratorConfig()
    configs = [ConfigPoint(values={"rows": r}, config=base.replace(rows=r)) for r in (2, 4, 8)]
    w = parse_gemm("8x8x8")

    def threads(n_configs, workers, **kwargs):
        points = plan_points(base, configs[:n_configs], [w], ["model", "rtl"], seed=1)
        tasks = make_tasks(points, workers=workers, store_root=Path("s"), build_root=Path("b"),
                           **kwargs)
        assert all(t.threads == 1 for t in tasks if t.fidelity == "model")
        return sorted(t.threads for t in tasks if t.fidelity == "rtl")

    assert threads(1, 2) == [2]
    assert threads(1, 1) == [1]
    assert threads(2, 2) == [1, 1]
    assert threads(3, 8) == [2, 2, 2]
    assert threads(1, 8, rtl_threads=1) == [1]


def test_an_rtl_point_too_big_for_the_harness_fails_without_building(accel, tmp_path):
    from accelerator.dse.runner import RTL_MEMORY

    code, summary, _err = sweep_json(accel, "--fidelity", "rtl", "--gemm", "40000x40000x40000",
                                    "--jobs", "1", "--out", str(tmp_path),
                                    "--build-root", str(tmp_path / "build"))
    assert code == 1
    need = rtl_memory_needed(40000, 40000, 40000)
    assert RTL_MEMORY == 1 << 32
    assert [f["error"] for f in summary["failures"]] == [
        (f"layer 40000x40000x40000 (40000×40000×40000) needs up to {need:,} bytes of memory; "
         f"the RTL harness has {RTL_MEMORY:,}")]
    row = read_csv(tmp_path / "sweep.csv")[0]
    # the model's numbers are there even though the RTL could not run
    assert int(row["model_cycles"]) == estimate(AcceleratorConfig(), 40000, 40000, 40000).cycles
    # no harness was built (the folder itself may exist: --build-root is checked writable first)
    assert not any((tmp_path / "build").rglob("*.so"))
    assert not (tmp_path / "build" / "harness").exists()


def test_an_rtl_point_with_too_many_pes_fails_without_building(accel, tmp_path):
    """32×32 is the largest array an RTL point simulates; 33×32 and 64×64 fail with the reason
    (and their model numbers), and no Verilator model is built."""
    code, summary, _err = sweep_json(accel, "--fidelity", "rtl", "--param", "rows=33,64",
                                    "--param", "cols=32,64", "--gemm", "64x64x64",
                                    "--jobs", "1", "--out", str(tmp_path),
                                    "--build-root", str(tmp_path / "build"))
    assert code == 1
    assert runner.RTL_MAX_PES == 32 * 32
    errors = sorted(f["error"] for f in summary["failures"])
    assert errors == sorted(
        f"a {r}×{c} array ({r * c:,} PEs) is beyond the RTL sweep's limit of 1,024 PEs: its "
        f"Verilator model would take too long to build (accel sim --rows {r} --cols {c} "
        f"builds it)" for r in (33, 64) for c in (32, 64))
    assert all(row["model_cycles"] for row in read_csv(tmp_path / "sweep.csv"))
    assert not (tmp_path / "build" / "sim").exists()


@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (37, 29, 41), (128, 96, 64), (300, 17, 9)])
def test_rtl_memory_bound_covers_the_bench_layout(m, k, n):
    for seed in range(1, 20):
        data = make_data(AcceleratorConfig(), GemmCase(m=m, k=k, n=n, seed=seed))
        assert data.memory_size <= rtl_memory_needed(m, k, n)


def test_a_crashed_task_fails_its_points_and_the_rest_finish(tmp_path, monkeypatch):
    base = AcceleratorConfig()
    points = plan_points(base, expand(base, [parse_param("rows=2..5")]), [parse_gemm("8x8x8")],
                         ["model"])
    real = runner.run_task

    def crash_on_rows_3(task):
        if any(p.config["rows"] == 3 for p in task.points):
            raise MemoryError("worker died")
        return real(task)

    monkeypatch.setattr(runner, "run_task", crash_on_rows_3)
    monkeypatch.setattr(runner, "make_tasks", lambda pts, **kw: [
        runner.Task("model", [p], kw["store_root"], kw["build_root"]) for p in pts])
    result = run_sweep(points, Store(tmp_path), jobs=1)
    assert [r["status"] for r in result.records] == ["ok", "failed", "ok", "ok"]
    assert result.records[1]["error"] == "the worker failed: MemoryError: worker died"
    assert Path(result.records[1]["log"]).is_file()


@pytest.mark.synth
def test_a_synth_sweep_builds_once_per_config(accel, tmp_path, build_root):
    code, summary, err = sweep_json(accel, "--rows", "2", "--cols", "2", "--gemm", "16x16x16",
                                    "--workload", "mlp", "--fidelity", "synth", "--board",
                                    "icebreaker", "--jobs", "1", "--build-root",
                                    str(build_root), "--out", str(tmp_path), "--plots")
    assert code in (0, None), err
    assert (summary["points"], summary["ok"]) == (2, 2)
    table = read_csv(tmp_path / "sweep.csv")
    # one build serves both workloads: same resources and Fmax, different cycles
    assert table[0]["luts"] == table[1]["luts"] and int(table[0]["luts"]) > 0
    assert table[0]["fmax_mhz"] == table[1]["fmax_mhz"] == table[0]["freq_mhz"]
    assert table[0]["cycles"] != table[1]["cycles"]
    for row in table:
        assert row["board"] == "icebreaker" and row["top"] == "core"
        assert float(row["gops"]) == pytest.approx(
            2 * int(row["macs"]) * float(row["fmax_mhz"]) / int(row["cycles"]) / 1000)
    report = json.loads((Path(table[0]["log"]).parent / "report.json").read_text())
    assert report["used"]["luts"] == int(table[0]["luts"])
    assert {Path(p).name for p in summary["plots"]} >= {"area.png", "pareto.svg"}


# -- killed and resumed, for real ---------------------------------------------------------------


def _points(out: Path) -> dict[str, bytes]:
    folder = out / "points"
    return {p.name: p.read_bytes() for p in folder.glob("*.json")} if folder.is_dir() else {}


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_killed_sweep_resumes_without_recomputing(accel, tmp_path, sig):
    out = tmp_path / "sweep"
    args = ["sweep", "--rows", "2..5", "--cols", "2..4", "--gemm", "24x24x24", "--out",
            str(out), "--no-plots", "--jobs", "2"]
    env = dict(os.environ, ACCEL_SWEEP_DELAY="0.5")
    # A session of its own: the kill reaches the pool's workers too, as Ctrl-C's would.
    proc = subprocess.Popen([sys.executable, "-m", "accelerator", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 120
        while len(_points(out)) < 3 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert proc.poll() is None, "the sweep ended before it could be killed"
        if sig == signal.SIGKILL:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)  # the sweep's own handler stops its workers
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    time.sleep(0.5)  # nothing may still be writing
    stored = _points(out)
    assert 3 <= len(stored) < 12
    assert all(json.loads(data)["status"] == "ok" for data in stored.values())
    if sig == signal.SIGTERM:
        assert proc.returncode == 130
        lines = err.decode().splitlines()
        assert lines[-1] == "accel: aborted"
        assert (f"interrupted: {len(stored)} points are stored in {out / 'points'}; run the "
                f"same command again to resume") in lines
    else:
        assert proc.returncode == -signal.SIGKILL

    code, summary, err = sweep_json(accel, *args[1:])
    assert code in (0, None), err
    assert (summary["resumed"], summary["computed"], summary["ok"]) == (
        len(stored), 12 - len(stored), 12)
    after = _points(out)
    assert len(after) == 12
    assert {name: after[name] for name in stored} == stored  # untouched, not recomputed


# -- Dask ---------------------------------------------------------------------------------------


def test_a_sweep_on_a_dask_cluster(accel, tmp_path, monkeypatch):
    distributed = pytest.importorskip("distributed")
    monkeypatch.setenv("ACCEL_SWEEP_FAIL", "rows=3")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  protocol="tcp", dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://")
        code, summary, _err = sweep_json(accel, "--rows", "2..4", "--dataflow", "os,ws",
                                        "--gemm", "16x8x12", "--scheduler", address,
                                        "--out", str(tmp_path))
    assert code == 1
    assert summary["executor"] == address
    assert (summary["points"], summary["ok"], summary["failed"]) == (6, 4, 2)
    table = read_csv(tmp_path / "sweep.csv")
    for row in table:
        config = AcceleratorConfig(rows=int(row["rows"]), dataflow=row["dataflow"])
        if row["rows"] == "3":
            assert row["error"] == "RuntimeError: injected failure (ACCEL_SWEEP_FAIL=rows=3)"
        else:
            assert int(row["cycles"]) == estimate(config, 16, 8, 12).cycles
    # the cluster's workers (threads of this process here) wrote the points
    records = [json.loads(p.read_text()) for p in (tmp_path / "points").iterdir()]
    assert {r["pid"] for r in records} == {os.getpid()}


def test_an_unreachable_scheduler_is_one_line(accel, tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "DASK_CONNECT_TIMEOUT", "1s")
    code, _out, err = accel("sweep", "--scheduler", "tcp://127.0.0.1:9", "--out", str(tmp_path),
                           "--no-plots", "--jobs", "1")
    assert code == 1 and "Traceback" not in err
    assert err.splitlines()[-1].startswith(
        "accel sweep: error: cannot reach the Dask scheduler at tcp://127.0.0.1:9 (")
