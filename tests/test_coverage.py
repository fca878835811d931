"""The functional coverage model of `accel verify` (accelerator/model/coverage.py): bins derived
from the config and the register map, sampling, merging, the database, the report, the directed
cases, and `accel coverage` / `accel verify --coverage`'s input checks (fast: no simulator)."""

from __future__ import annotations

import asyncio
import json
from itertools import pairwise

import pytest

from accelerator.config import AXI_DATA_WIDTHS, DATAFLOWS, AcceleratorConfig
from accelerator.driver.driver import Accelerator
from accelerator.model.cases import (
    BENCH_MEMORY,
    MAX_DIM_GEMMS,
    Directed,
    GemmCase,
    adjust,
    directed_cases,
    make_data,
    max_dim_cases,
)
from accelerator.model.coverage import (
    Coverage,
    CoverageError,
    CoverageModel,
    command_of,
    format_table,
)
from accelerator.model.geometry import AXI4_MAX_BURST, Geometry
from accelerator.model.regmap import MAX_DIM, ErrorCode, id_values, offset, register


def assert_usage_error(result, fragment: str) -> None:
    """Bad input: exit status 2 and one line on stderr that contains ``fragment``."""
    code, out, err = result
    assert "Traceback" not in out + err
    assert len(err.splitlines()) == 1 and fragment in err, err
    assert code == 2


class FakeRegisters:
    """A transport whose STATUS reads done at once: the driver's writes of a command, no
    hardware (the ID block answers for ``config``)."""

    def __init__(self, config: AcceleratorConfig):
        self.values = {offset(name): v for name, v in id_values(config).items()}

    async def read32(self, addr: int) -> int:
        if addr == offset("STATUS"):
            return register("STATUS").encode(done=1)
        return self.values.get(addr, 0)

    async def write32(self, addr: int, value: int) -> None:
        self.values[addr] = value


def written(config: AcceleratorConfig, check: bool = False, **args) -> dict[str, int]:
    """The register writes the host driver makes for a GEMM command (name → value); ``check``:
    the driver's checks first (a ValueError for an illegal command)."""
    driver = Accelerator(FakeRegisters(config))
    log: dict[str, int] = {}
    write = driver.write

    async def logged(name: str, value: int) -> None:
        log[name] = value
        await write(name, value)

    driver.write = logged
    asyncio.run(driver.gemm(**args, check=check))
    return log


def gemm_record(config: AcceleratorConfig, case: GemmCase, directed: Directed | None = None,
                **extra) -> dict:
    """The record the bench writes for ``case`` had it passed (no counters, no data ranges)."""
    data = make_data(config, case)
    if directed is not None:
        data = adjust(config, directed, data)
    args = {"a": data.addr["a"], "b": data.addr["b"], "c": data.addr["c"], "m": case.m,
            "k": case.k, "n": case.n, "lda": data.ld["a"], "ldb": data.ld["b"],
            "ldc": data.ld["c"], "requant": data.requant}
    if case.accumulate:
        args.update(c_in=data.addr["c_in"], ldcin=data.ld["c_in"])
    return {"kind": "gemm", "passed": True, "m": case.m, "k": case.k, "n": case.n,
            "command": command_of(written(config, **args)), "backpressure": case.backpressure,
            "latency": list(directed.latency if directed else (0, 0)), **extra}


# -- the bins come from the config and the register map -------------------------------------------

def test_error_bins_are_the_register_maps_codes():
    for unit in (True, False):
        model = CoverageModel.of(AcceleratorConfig(requant_unit=unit))
        point = model.point("error")
        assert point.bins == tuple(code.name for code in ErrorCode)
        assert ("NO_REQUANT" in point.excluded) is unit
        illegal = model.point("illegal")
        # every dimension, stride and address register of the command group is somewhere
        for reg in ("M", "K", "N", "LDA", "LDB", "LDC", "LDCIN", "A_ADDR", "B_ADDR", "C_ADDR",
                    "CIN_ADDR"):
            assert any(b.endswith(f"by {reg}") for b in illegal.bins), reg


@pytest.mark.parametrize("dataflow", DATAFLOWS)
def test_the_other_dataflow_is_excluded(dataflow):
    point = CoverageModel.of(AcceleratorConfig(dataflow=dataflow)).point("dataflow")
    assert point.bins == DATAFLOWS
    assert set(point.excluded) == set(DATAFLOWS) - {dataflow}


@pytest.mark.parametrize("width", AXI_DATA_WIDTHS)
def test_alignment_bins_are_the_bus_lanes(width):
    config = AcceleratorConfig(axi_data_width=width)
    bus = width // 8
    bins = CoverageModel.of(config).point("alignment").bins
    # int8 A, B and C (requantized): every lane; int32 C_in: every fourth
    assert len(bins) == 3 * bus + bus // 4
    assert f"a at +{bus - 1}" in bins and f"c_in at +{bus - 4}" in bins
    assert f"c_in at +{bus - 3}" not in bins and f"a at +{bus}" not in bins
    doc = CoverageModel.of(config).point("row bytes").doc
    assert f"{bus} bytes" in doc and f"{AXI4_MAX_BURST * bus} bytes" in doc


def test_shape_bins_follow_the_array_and_scratchpads():
    config = AcceleratorConfig(rows=2, cols=7, spad_a_depth=64, spad_b_depth=64)
    model = CoverageModel.of(config)
    k_step = Geometry.of(config).k_step
    assert "(2)" in model.point("m").doc and "(7)" in model.point("n").doc
    assert f"({k_step}" in model.point("k").doc and str(MAX_DIM) in model.point("k").doc
    # rows = 2: no M (or K) strictly between 1 and rows; cols = 7 has such an N
    assert "below" in model.point("m").excluded and "below" in model.point("k").excluded
    assert "below" not in model.point("n").excluded
    assert "1 × below" in model.point("m × n").bins
    assert "below × 1" in model.point("m × n").excluded
    # a K past one scratchpad step hits "past", exactly one step "step"
    rec = {"kind": "gemm", "passed": True, "m": 3, "k": k_step, "n": 7,
           "command": {"requant": False, "accumulate": False, "relu": False}}
    assert set(model.point("k").sample(rec)) == {"step", "multiple" if k_step % 2 == 0
                                                 else "ragged"}
    assert "past" in model.point("k").sample(dict(rec, k=k_step + 1))


def test_requant_bins_split_the_register_fields():
    model = CoverageModel.of(AcceleratorConfig())
    top = (1 << register("RQ_SHIFT").fields[0].width) - 1
    assert model.point("rq_shift").bins[0] == "0" and model.point("rq_shift").bins[-1] == str(top)
    assert model.point("rq_zp").bins == ("-128", "negative", "0", "positive", "127")
    no_unit = CoverageModel.of(AcceleratorConfig(requant_unit=False))
    for name in ("rq_shift", "rq_zp", "rq_mult", "rq_saturation"):
        assert set(no_unit.point(name).excluded) == set(no_unit.point(name).bins)
    assert "int8" in no_unit.point("mode").excluded and "int32" not in \
        no_unit.point("mode").excluded


# -- sampling ---------------------------------------------------------------------------------

def test_command_of_decodes_the_drivers_writes():
    config = AcceleratorConfig()
    from accelerator.model.reference import RequantParams
    writes = written(config, a=0x1003, b=0x2000, c=0x3001, m=5, k=9, n=4, lda=9, ldb=6,
                     ldc=4, requant=RequantParams(1 << 30, 31, -128, True))
    command = command_of(writes)
    assert command["a"] == 0x1003 and command["c"] == 0x3001 and command["ldb"] == 6
    assert (command["m"], command["k"], command["n"]) == (5, 9, 4)
    assert command["rq_shift"] == 31 and command["rq_zp"] == -128
    assert command["requant"] and command["relu"] and not command["accumulate"]


def test_a_record_hits_its_bins_and_a_failed_one_none():
    config = AcceleratorConfig()
    model = CoverageModel.of(config)
    case = GemmCase(m=1, k=4, n=9, seed=3, accumulate=True, backpressure=0.5)
    record = gemm_record(config, case, counters={"stall_load": 3, "stall_store": 0},
                         a_range=[-128, 5], b_range=[0, 127], c_range=[0, 0])
    db = model.sample([record])
    assert db.hits["m"]["1"] == 1 and db.hits["k"]["edge"] == 1 and db.hits["n"]["ragged"] == 1
    assert db.hits["m × n"]["1 × ragged"] == 1
    assert db.hits["mode"]["int32 +C_in"] == 1
    assert db.hits["backpressure"]["0.3 and above"] == 1
    assert db.hits["stalls"] == {"STALL_LOAD > 0": 1, "STALL_STORE > 0": 0}
    assert db.hits["operands"]["A holds -128"] == 1 and db.hits["operands"]["B holds 127"] == 1
    assert db.hits["operands"]["A holds 127"] == 0
    assert db.hits["error"]["NONE"] == 1
    failed = model.sample([dict(record, passed=False)])
    assert failed.total[0] == 0
    # what was intended but never ran covers nothing: a record without the command it wrote
    assert model.sample([{k: v for k, v in record.items() if k != "command"}]).total[0] == 0


def test_error_abort_and_bus_error_records():
    model = CoverageModel.of(AcceleratorConfig())
    records = [
        {"kind": "illegal", "passed": True, "got": "STRIDE", "changed": ["LDB"]},
        {"kind": "illegal", "passed": True, "got": "MISALIGNED", "changed": ["CIN_ADDR",
                                                                            "MODE"]},
        {"kind": "illegal", "passed": False, "got": "NONE", "changed": ["LDA"]},
        {"kind": "bus_error", "passed": True, "got": "BUS_ERROR",
         "slverr": {"address": 0x100, "write": False, "matrix": "b"}},
        {"kind": "abort", "passed": True, "waiting": {"ar": 1, "aw": 0},
         "after": {"ar": 1, "aw": 0, "r": 8, "w": 0, "w_strobed": 0, "b": 0},
         "backpressure": 0.5},
        {"kind": "abort", "passed": True, "waiting": {"ar": 0, "aw": 0},
         "after": dict.fromkeys(("ar", "aw", "r", "w", "w_strobed", "b"), 0), "backpressure": 0},
        {"kind": "abort", "passed": True, "idle": True, "waiting": {"ar": 0, "aw": 0},
         "after": dict.fromkeys(("ar", "aw", "r", "w", "w_strobed", "b"), 0)},
    ]
    db = model.sample(records)
    assert db.hits["illegal"]["STRIDE by LDB"] == 1
    assert db.hits["illegal"]["MISALIGNED by CIN_ADDR"] == 1
    assert db.hits["illegal"]["STRIDE by LDA"] == 0  # that one failed
    assert db.hits["error"] == {**dict.fromkeys(db.hits["error"], 0), "STRIDE": 1,
                                "MISALIGNED": 1, "BUS_ERROR": 1}
    assert db.hits["bus error"]["SLVERR on b"] == 1 and db.hits["bus error"]["SLVERR on a"] == 0
    abort = db.hits["abort"]
    assert abort["read request waiting"] == abort["read burst in flight"] == 1
    assert abort["under back-pressure"] == 1 and abort["busy, bus quiet"] == 1
    assert abort["idle"] == 1 and abort["write burst in flight"] == 0


def test_page_bins_see_rows_on_and_across_4k():
    config = AcceleratorConfig()
    model = CoverageModel.of(config)
    case = GemmCase(m=2, k=16, n=4, seed=1)
    ends = gemm_record(config, case, Directed(case, addr={"a": 0x2000 - 16}, ld={"a": 16}))
    crosses = gemm_record(config, case, Directed(case, addr={"a": 0x2000 - 8}, ld={"a": 16}))
    inside = gemm_record(config, case, Directed(case, addr={"a": 0x2000}, ld={"a": 16}))
    assert "a: a row ends at 4 KiB" in model.point("4 KiB").sample(ends)
    assert "a: a row crosses 4 KiB" not in model.point("4 KiB").sample(ends)
    assert "a: a row crosses 4 KiB" in model.point("4 KiB").sample(crosses)
    assert not [b for b in model.point("4 KiB").sample(inside) if b.startswith("a:")]


# -- the database: merging, JSON, the report ---------------------------------------------------

def test_os_and_ws_merge_and_counts_add(tmp_path):
    dbs = []
    for dataflow in DATAFLOWS:
        config = AcceleratorConfig(dataflow=dataflow)
        dbs.append(CoverageModel.of(config).sample(
            [gemm_record(config, GemmCase(m=4, k=4, n=4, seed=1))], run={"seed": 1}))
    for db in dbs:
        assert db.counts("dataflow") == (1, 1)
    merged = dbs[0].merge(dbs[1])
    assert merged.counts("dataflow") == (2, 2) and merged.excluded["dataflow"] == {}
    assert merged.hits["m"]["edge"] == 2 and len(merged.runs) == 2
    # a database survives JSON, and merging it with itself doubles its counts
    path = tmp_path / "cov.json"
    merged.write(path)
    again = Coverage.read(path)
    assert again.hits == merged.hits and again.excluded == merged.excluded
    assert again.merge(again).hits["m"]["edge"] == 4
    data = json.loads(path.read_text())
    assert data["bins"] == merged.total[1] and data["bins_hit"] == merged.total[0]
    assert data["points"]["m"]["holes"] == merged.holes("m")


def test_different_models_do_not_merge():
    a = CoverageModel.of(AcceleratorConfig()).sample([])
    b = CoverageModel.of(AcceleratorConfig(axi_data_width=32)).sample([])
    with pytest.raises(CoverageError, match="different coverage models"):
        a.merge(b)


def test_bad_databases_are_one_line_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CoverageError, match=r"bad\.json"):
        Coverage.read(bad)
    bad.write_text(json.dumps({"format": 99}))
    with pytest.raises(CoverageError, match="format"):
        Coverage.read(bad)


def test_the_report_lists_holes_and_counts():
    db = CoverageModel.of(AcceleratorConfig()).sample([])
    rows = {row[0]: row for row in format_table(db, width=1000)}
    assert rows["error"][1] == "0/7" and "TOO_LARGE" in rows["error"][3]
    assert "NO_REQUANT" not in rows["error"][3]  # excluded, not a hole
    assert db.percent == 0.0


# -- the directed cases ------------------------------------------------------------------------

CONFIGS = [AcceleratorConfig(), AcceleratorConfig(dataflow="ws"),
           AcceleratorConfig(rows=3, cols=2, in_width=6, acc_width=20, requant_unit=False),
           AcceleratorConfig(rows=5, cols=3, axi_data_width=128, dataflow="ws"),
           AcceleratorConfig(rows=2, cols=2, axi_data_width=256),
           AcceleratorConfig(engine="compact", requant_unit=False, axi_data_width=32)]


@pytest.mark.parametrize("config", CONFIGS, ids=[c.name for c in CONFIGS])
def test_directed_cases_are_legal_and_fit_the_bench(config):
    cases = directed_cases(config, 5)
    assert len(cases) == len(directed_cases(AcceleratorConfig(), 1))  # verify_total relies on it
    for directed in cases + max_dim_cases(config, 5):
        case = directed.case
        data = adjust(config, directed, make_data(config, case))
        args = {"a": data.addr["a"], "b": data.addr["b"], "c": data.addr["c"], "m": case.m,
                "k": case.k, "n": case.n, "lda": data.ld["a"], "ldb": data.ld["b"],
                "ldc": data.ld["c"], "requant": data.requant,
                "c_in": data.addr["c_in"] if case.accumulate else None,
                "ldcin": data.ld["c_in"] if case.accumulate else None}
        written(config, check=True, **args)  # the driver's checks: a legal command
        spans = {}
        for name, rows in (("a", case.m), ("b", case.k), ("c", case.m),
                           ("c_in", case.m if case.accumulate else 0)):
            if rows:
                spans[name] = (data.addr[name], data.addr[name] + rows * data.ld[name])
        assert max(end for _, end in spans.values()) <= BENCH_MEMORY["cocotb"]
        ordered = sorted(spans.values())
        assert all(a[1] <= b[0] for a, b in pairwise(ordered)), spans


@pytest.mark.parametrize("config", CONFIGS, ids=[c.name for c in CONFIGS])
def test_directed_cases_alone_hit_the_layout_and_mode_bins(config):
    """The commands of the directed cases, had they all passed, hit every bin of the points
    that depend only on the command (the bench's observations aside), on every config: a bin
    no command can reach there would have to be excluded."""
    for seed in (2, 3):  # what the directed cases hit may not depend on the seed
        records = [gemm_record(config, d.case, d) for d in directed_cases(config, seed)]
        for point in ("m × n", "mode", "m × mode", "k × output"):
            assert CoverageModel.of(config).sample(records).holes(point) == [], (seed, point)
    records = [gemm_record(config, d.case, d) for d in directed_cases(config, 1)]
    db = CoverageModel.of(config).sample(records)
    for point in ("m × n", "mode", "k × output", "m × mode", "rq_shift", "rq_zp", "rq_mult",
                  "row bytes", "stride", "alignment", "4 KiB", "latency"):
        assert db.holes(point) == [], point
    # the MAX_DIM bins are the default regression's known holes; --max-dims closes them
    assert db.holes("m") == db.holes("n") == db.holes("k") == ["MAX_DIM"]
    more = [gemm_record(config, d.case, d) for d in max_dim_cases(config, 1)]
    db = db.merge(CoverageModel.of(config).sample(more))
    assert db.holes("m") == db.holes("n") == db.holes("k") == []
    assert len(more) == MAX_DIM_GEMMS


# -- the command line's input checks (before any build) -----------------------------------------

def test_verify_coverage_options_need_coverage(accel):
    assert_usage_error(accel("verify", "--coverage-goal", "90", "--build-root", "b"),
                       "--coverage-merge and --coverage-goal need --coverage")


@pytest.mark.parametrize("goal", ["-1", "100.5", "nan"])
def test_verify_coverage_goal_range(accel, goal):
    assert_usage_error(accel("verify", "--coverage", "--coverage-goal", goal),
                       f"--coverage-goal {float(goal)} is out of range")


def test_verify_coverage_merge_checks_its_files(accel, tmp_path):
    assert_usage_error(accel("verify", "--coverage", "--coverage-merge", str(tmp_path / "no")),
                       "no such file")
    other = tmp_path / "other.json"
    CoverageModel.of(AcceleratorConfig(axi_data_width=32)).sample([]).write(other)
    assert_usage_error(accel("verify", "--coverage", "--coverage-merge", str(other)),
                       "a different coverage model")
    assert_usage_error(accel("verify", "--coverage", "--rtl", str(other)),
                       "--coverage, --json and --max-dims are not available with --rtl")


def test_accel_coverage_merges_and_reports(accel, tmp_path):
    config = AcceleratorConfig()
    model = CoverageModel.of(config)
    one = tmp_path / "one.json"
    two = tmp_path / "two.json"
    model.sample([gemm_record(config, GemmCase(m=1, k=1, n=1))]).write(one)
    model.sample([gemm_record(config, GemmCase(m=4, k=4, n=4))]).write(two)
    merged = tmp_path / "merged.json"
    code, out, err = accel("coverage", str(one), str(two), "-o", str(merged), "--json")
    assert code in (0, None), err
    report = json.loads(out)
    assert report["points"]["m"]["counts"]["1"] == 1 and report["points"]["m"]["counts"][
        "edge"] == 1
    assert json.loads(merged.read_text()) == report
    assert "MAX_DIM" in report["points"]["m"]["holes"]
    code, out, err = accel("coverage", str(one))
    assert code in (0, None) and "coverage:" in out and "MAX_DIM" in out
    code, out, err = accel("coverage", str(one), "--goal", "99")
    assert code == 1 and "below the goal of 99.0%" in err
    assert_usage_error(accel("coverage", str(one), "--goal", "101"), "--goal 101.0 is out")
    other = tmp_path / "other.json"
    CoverageModel.of(AcceleratorConfig(axi_data_width=32)).sample([]).write(other)
    assert_usage_error(accel("coverage", str(one), str(other)), "different coverage models")
    assert_usage_error(accel("coverage", str(tmp_path / "none.json")), "no such file")
