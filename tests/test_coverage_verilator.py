"""`accel verify --coverage` on the cocotb bench in Verilator: the report, the database, merging
runs, a known hole, and the default regression's coverage of the default config (Verilator
tier; the models are cached under the build root and shared with test_accel_verilator.py)."""

from __future__ import annotations

import json

import pytest

from accelerator.config import DATAFLOWS


@pytest.mark.verilator
def test_verify_coverage_reports_merges_and_shows_holes(accel, build_root, tmp_path):
    db = tmp_path / "cov.json"
    args = ["verify", "--rows", "2", "--cols", "2", "--count", "2", "--build-root",
            str(build_root)]
    code, out, err = accel(*args, "--coverage", str(db))
    assert code in (0, None), out + err
    first = json.loads(db.read_text())
    # the terminal report: a row per coverpoint with its holes, and the total
    assert f"coverage: {first['bins_hit']} of {first['bins']} bins hit" in " ".join(out.split())
    for point in first["points"]:
        assert point.split()[0] in out
    # a known hole: no GEMM of the regression reaches MAX_DIM (65535) in M, K or N
    for dim in ("m", "k", "n"):
        assert first["points"][dim]["holes"] == ["MAX_DIM"]
        assert first["points"][dim]["counts"]["1"] > 0
    assert "MAX_DIM" in out
    # rows = 2: no M strictly between 1 and rows, so that bin is excluded, not a hole
    assert "below" in first["points"]["m"]["excluded"]
    # what ran was sampled: every illegal command and error code, the aborts, the bus errors
    assert first["points"]["illegal"]["holes"] == []
    assert first["points"]["error"]["holes"] == []
    assert first["points"]["bus error"]["holes"] == []
    assert first["points"]["abort"]["counts"]["idle"] == 1
    assert first["points"]["abort"]["counts"]["rst during a GEMM"] == 1
    # the same run again, merged with the first: counts add, in the JSON of --json
    code, out, err = accel(*args, "--coverage", "--coverage-merge", str(db), "--json")
    assert code in (0, None), out + err
    result = json.loads(out)
    assert result["failed"] == 0 and result["passed"] == result["cases"]
    merged = result["coverage"]
    assert len(merged["runs"]) == 2
    assert merged["points"]["m"]["counts"]["1"] == 2 * first["points"]["m"]["counts"]["1"]
    assert merged["bins_hit"] == first["bins_hit"]


@pytest.mark.verilator
@pytest.mark.parametrize("dataflow", DATAFLOWS)
def test_default_regression_hits_95_percent_of_the_bins(accel, build_root, dataflow):
    """`accel verify` with its defaults (50 random GEMMs, seed 1, the directed cases) on the
    default config: at least 95% of the bins (docs/verification.md)."""
    code, out, err = accel("verify", "--dataflow", dataflow, "--coverage", "--coverage-goal",
                           "95", "--json", "--build-root", str(build_root))
    assert code in (0, None), out + err
    coverage = json.loads(out)["coverage"]
    assert coverage["percent"] >= 95
    assert coverage["points"]["dataflow"]["excluded"] == {
        other: f"the hardware is {dataflow}" for other in DATAFLOWS if other != dataflow}


@pytest.mark.slow
def test_max_dims_closes_the_known_holes(accel, build_root):
    """`accel verify --max-dims`: M, K and N at MAX_DIM in turn close the default regression's
    MAX_DIM holes (some 400,000 cycles on the cocotb bench: the slow tier)."""
    code, out, err = accel("verify", "--max-dims", "--coverage", "--json", "--build-root",
                           str(build_root))
    assert code in (0, None), out + err
    coverage = json.loads(out)["coverage"]
    for dim in ("m", "k", "n"):
        assert coverage["points"][dim]["holes"] == []
        assert coverage["points"][dim]["counts"]["MAX_DIM"] == 1
