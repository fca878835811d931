"""`accel sweep` counts its points before any work: it says how many at once, and a space past
--max-points is refused with one line (exit 2) without being expanded."""

from __future__ import annotations

import json

import pytest

from accelerator.cli.sweep import MAX_POINTS
from accelerator.config import FIELDS
from accelerator.dse import space

BIG = ["--rows", "1..64", "--cols", "1..64", "--acc-width", "8..64", "--in-width", "2..16"]
BIG_SHAPE = "64 rows × 64 cols × 15 in_width × 57 acc_width × 1 workload × 1 fidelity"


@pytest.fixture
def no_expand(monkeypatch):
    """Expanding the space is what would take minutes: refusing must not need it."""
    def refuse(*args, **kwargs):
        raise AssertionError("the space was expanded")

    monkeypatch.setattr(space, "expand", refuse)


def test_a_huge_space_is_refused_at_once_without_expanding_it(accel, tmp_path, no_expand):
    code, out, err = accel("sweep", *BIG, "--out", str(tmp_path / "s"))
    assert code == 2 and out == ""
    assert err.splitlines() == [
        (f"accel sweep: error: 3,502,080 points ({BIG_SHAPE}) is more than --max-points "
         f"{MAX_POINTS:,}; give --max-points 3502080 to run them")]
    assert not (tmp_path / "s").exists()


def test_size_counts_without_expanding(no_expand):
    by_name = {f.name: f for f in FIELDS}
    params = [space.param_from_option(by_name[name], values) for name, values in
              (("rows", "1..64"), ("cols", "1..64"), ("acc_width", "8..64"),
               ("in_width", "2..16"))]
    assert space.size(params) == 64 * 64 * 57 * 15 == 3_502_080
    assert space.size([]) == 1  # no swept field: the base config alone


@pytest.mark.parametrize("fidelities,workloads,points,shape", [
    (["--fidelity", "model"], ["--gemm", "8x8x8"], 3, "3 rows × 1 workload × 1 fidelity"),
    (["--fidelity", "model,rtl"], ["--gemm", "8x8x8", "--gemm", "4x4x4"], 12,
     "3 rows × 2 workloads × 2 fidelities")])
def test_the_limit_counts_workloads_and_fidelities(accel, tmp_path, fidelities, workloads,
                                                   points, shape):
    code, _out, err = accel("sweep", "--rows", "2..4", *fidelities, *workloads, "--max-points",
                            str(points - 1), "--out", str(tmp_path / "s"))
    assert code == 2
    assert err.splitlines() == [
        (f"accel sweep: error: {points} points ({shape}) is more than --max-points "
         f"{points - 1}; give --max-points {points} to run them")]


def test_a_sweep_at_the_limit_runs_and_says_its_size_first(accel, tmp_path):
    code, out, err = accel("sweep", "--rows", "2..4", "--dataflow", "os,ws", "--gemm", "8x8x8",
                           "--max-points", "6", "--no-plots", "--json", "--jobs", "1",
                           "--out", str(tmp_path / "s"))
    assert code in (0, None), err
    assert err.splitlines()[0] == "sweep: 6 points (3 rows × 2 dataflow × 1 workload × 1 fidelity)"
    assert json.loads(out)["points"] == 6


def test_max_points_must_be_positive(accel, tmp_path):
    code, _out, err = accel("sweep", "--max-points", "0", "--out", str(tmp_path / "s"))
    assert code == 2
    assert err.splitlines() == [("accel sweep: error: Invalid value for '--max-points': 0 is "
                                 "not in the range x>=1.")]
