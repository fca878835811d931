"""`accel build`: board table, log parsing, baseline comparison, CLI input checks (fast), and real
iCEBreaker builds through yosys / nextpnr (``synth`` marker)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from amaranth.vendor import LatticeECP5Platform, LatticeICE40Platform

from accelerator.config import AcceleratorConfig
from accelerator.flow import build as flow
from accelerator.flow.build import (
    BOARDS,
    DEVICES,
    BuildReport,
    compare_baseline,
    parse_nextpnr_log,
    parse_yosys_log,
)
from accelerator.hw.clocking import plan_pll

SMALL = AcceleratorConfig(rows=2, cols=2, requant_unit=False)
SMALL_ARGS = ("--rows", "2", "--cols", "2", "--no-requant-unit")


# --------------------------------------------------------------------------------------------
# Board table


def test_board_table():
    assert set(BOARDS) >= {"icebreaker", "ulx3s-85f", "ulx3s-25f", "orangecrab-25f"}
    for name, platform_class in BOARDS.items():
        platform = platform_class()
        device = DEVICES[platform.device]
        family = "ice40" if isinstance(platform, LatticeICE40Platform) else "ecp5"
        assert isinstance(platform, (LatticeICE40Platform, LatticeECP5Platform)), name
        assert device.family == family, name
        assert platform.resources[(platform.default_clk, 0)].clock.frequency > 0, name
        assert min(device.luts, device.ffs, device.bram, device.dsp) > 0, name
    assert DEVICES["iCE40UP5K"].luts == 5280 and DEVICES["iCE40UP5K"].dsp == 8
    assert DEVICES["LFE5U-85F"].dsp == 156 and DEVICES["LFE5U-25F"].bram == 56


# --------------------------------------------------------------------------------------------
# Log parsing

NEXTPNR_ICE40 = """\
Info: Packing constants..
Info: Device utilisation:
Info: \t         ICESTORM_LC:     700/   5280    13%
Info: \t        ICESTORM_RAM:       0/     30     0%
Info: \t        ICESTORM_DSP:       2/      8    25%

Info: Max frequency for clock 'cd_sync.clk': 41.78 MHz (PASS at 30.00 MHz)
Info: Device utilisation:
Info: \t         ICESTORM_LC:     660/   5280    12%
Info: \t        ICESTORM_RAM:       1/     30     3%
Info: \t               SB_IO:       4/     39    10%
Info: \t        ICESTORM_DSP:       4/      8    50%

Info: Routing..
Info: Max frequency for clock 'cd_sync.clk': 58.22 MHz (PASS at 30.00 MHz)
"""

NEXTPNR_ECP5_FAIL = """\
Info: Device utilisation:
Info: \t          MULT18X18D:      40/     28   142%
Info: \t          TRELLIS_FF:     491/  24288     2%
Info: \t        TRELLIS_COMB:     433/  24288     1%
Info: Max frequency for clock '$glbnet$cd_sync.clk': 89.07 MHz (FAIL at 100.00 MHz)
ERROR: Unable to place cell 'x', no BELs remaining to implement cell type 'MULT18X18D'
"""

YOSYS_NEW = """\
2.59. Printing statistics.

=== top ===

        +----------Local Count, excluding submodules.
        |
      462 wires
       25 cells
        4   SB_MAC16
      874 submodules
        7   SB_CARRY
        1   SB_LUT4

=== design hierarchy ===

        +----------Count including submodules.
        |
      462 wires
       25 cells
       17   $scopeinfo
        4   SB_MAC16
        7   SB_CARRY
       10   SB_DFFE
      389   SB_DFFESR
      100   SB_DFFSR
      368   SB_LUT4

2.60. Executing CHECK pass (checking for obvious problems).
"""

YOSYS_OLD = """\
2.50. Printing statistics.

=== top ===

   Number of wires:                462
   Number of cells:               1234
     $scopeinfo                     17
     LUT4                          287
     MULT18X18D                      4
     TRELLIS_FF                    491

End of script.
"""


def test_parse_nextpnr_takes_the_last_table_and_fmax():
    parsed = parse_nextpnr_log(NEXTPNR_ICE40)
    assert parsed["utilisation"] == {"ICESTORM_LC": [660, 5280], "ICESTORM_RAM": [1, 30],
                                     "SB_IO": [4, 39], "ICESTORM_DSP": [4, 8]}
    assert parsed["clocks"] == {"cd_sync.clk": 58.22}
    assert parsed["targets"] == {"cd_sync.clk": 30.0}
    assert parsed["errors"] == []


def test_parse_nextpnr_errors_and_ecp5_names():
    parsed = parse_nextpnr_log(NEXTPNR_ECP5_FAIL)
    assert parsed["utilisation"]["MULT18X18D"] == [40, 28]
    assert parsed["clocks"] == {"$glbnet$cd_sync.clk": 89.07}
    assert parsed["targets"] == {"$glbnet$cd_sync.clk": 100.0}
    assert parsed["errors"] == [("ERROR: Unable to place cell 'x', no BELs remaining to implement "
                                "cell type 'MULT18X18D'")]


def test_parse_yosys_stats_both_layouts():
    assert parse_yosys_log(YOSYS_NEW) == {"SB_MAC16": 4, "SB_CARRY": 7, "SB_DFFE": 10,
                                          "SB_DFFESR": 389, "SB_DFFSR": 100, "SB_LUT4": 368}
    assert parse_yosys_log(YOSYS_OLD) == {"LUT4": 287, "MULT18X18D": 4, "TRELLIS_FF": 491}
    assert parse_yosys_log("no statistics here") == {}


def test_resources_from_logs():
    cells = parse_yosys_log(YOSYS_NEW)
    util = parse_nextpnr_log(NEXTPNR_ICE40)["utilisation"]
    used = flow._resources(DEVICES["iCE40UP5K"], cells, util)
    assert used == {"luts": 368, "ffs": 499, "bram": 1, "dsp": 4, "logic_cells": 660}


# --------------------------------------------------------------------------------------------
# Baseline

BASE = {"board": "icebreaker", "top": "core", "config_digest": "abc", "fmax_mhz": 50.0,
        "used": {"luts": 100, "ffs": 200, "bram": 0, "dsp": 4}}


def _report(**changes):
    report = json.loads(json.dumps(BASE))
    used = changes.pop("used", {})
    report["used"].update(used)
    report.update(changes)
    return report


def test_baseline_within_tolerance():
    assert compare_baseline(_report(), BASE) == []
    assert compare_baseline(_report(fmax_mhz=47.6, used={"luts": 105}), BASE) == []
    assert compare_baseline(_report(fmax_mhz=80.0, used={"luts": 50}), BASE) == []


def test_resources_text_headlines_logic_cells():
    """The UP5K board top's baseline: 98.6 % of the logic cells, although only 80 % of the LUT4s
    (the old headline, "LUT 4206/5280", hid it)."""
    data = json.loads((Path(__file__).resolve().parents[1] / "baselines"
                       / "icebreaker_board_4x4_compact.json").read_text())
    report = BuildReport(**{**dict.fromkeys(BuildReport.__dataclass_fields__), **data})
    text = ("logic cells 5207/5280 (98.6%; LUT4 4206, FF 2421/5280), BRAM 2/30, DSP 8/8")
    assert report.resources_text() == text  # an old report: the device's count
    report.available["logic_cells"] = 5280
    assert report.resources_text() == text
    assert flow._logic_cells_available(DEVICES["LFE5U-25F"], {"utilisation": {
        "TRELLIS_COMB": [13750, 24288]}}) == 24288
    assert flow._logic_cells_available(DEVICES["iCE40UP5K"], parse_nextpnr_log(
        NEXTPNR_ICE40)) == 5280


def test_baseline_regressions():
    problems = compare_baseline(_report(fmax_mhz=47.0, used={"luts": 106, "bram": 1}), BASE)
    assert problems == ["Fmax 47.00 MHz < baseline 50.00 MHz - 5%",
                        "luts 106 > baseline 100 + 5%", "bram 1 > baseline 0 + 5%"]
    assert compare_baseline(_report(used={"luts": 106}), BASE, tolerance=0.10) == []
    assert compare_baseline(_report(used={"logic_cells": 106}),
                            {**BASE, "used": {**BASE["used"], "logic_cells": 100}}) == [
        "logic_cells 106 > baseline 100 + 5%"]
    assert compare_baseline(_report(board="ulx3s-85f"), BASE) == [
        "board ulx3s-85f differs from the baseline's icebreaker"]


# --------------------------------------------------------------------------------------------
# Bad input: one line, exit 2, no tool run


@pytest.mark.parametrize(("args", "line"), [
    (("--board", "nope"),
     ("accel build: error: unknown board 'nope' (known: icebreaker, orangecrab-25f, "
     "orangecrab-85f, ulx3s-25f, ulx3s-85f)")),
    (("--board", "icebreaker", "--freq", "0"),
     "accel build: error: --freq 0 is out of range (allowed: more than 0 up to 1000 MHz)"),
    (("--board", "icebreaker", "--freq", "-5"),
     "accel build: error: --freq -5 is out of range (allowed: more than 0 up to 1000 MHz)"),
    (("--board", "icebreaker", "--freq", "1000.5"),
     "accel build: error: --freq 1000.5 is out of range (allowed: more than 0 up to 1000 MHz)"),
    (("--board", "ulx3s-85f", "--freq", "900"),
     "accel build: error: --freq 900: the ecp5 PLL cannot make 900 MHz from 25 MHz"),
    (("--board", "icebreaker", "--freq", "1"),
     "accel build: error: --freq 1: the ice40 PLL cannot make 1 MHz from 12 MHz"),
    (("--board", "icebreaker", "--max-dsp-pes", "-1"),
     "accel build: error: --max-dsp-pes -1 is out of range (allowed: 0 or more)"),
    (("--board", "icebreaker", "--top", "soc"),
     f"accel build: error: unknown top 'soc' (known: {', '.join(flow.TOPS)})"),
    (("--board", "icebreaker", "--rows", "0"),
     "accel build: error: invalid config: rows = 0 is out of range (allowed: 1 to 64)"),
])
def test_cli_bad_input(accel, tmp_path, monkeypatch, args, line):
    monkeypatch.setenv("ACCEL_BUILD_ROOT", str(tmp_path / "cache"))
    code, out, err = accel("build", *args, "--out", str(tmp_path / "out"))
    assert (code, out, err) == (2, "", line + "\n")
    assert not (tmp_path / "cache").exists()
    assert not (tmp_path / "out").exists()


TOO_BIG = ("accel build: error: the 64×64 array does not fit the iCE40UP5K of icebreaker: with "
           "16 of its 4096 PEs multiplying in DSP blocks and 4080 in LUTs, its PEs alone need "
           "at least 359,552 logic cells (the device has 5,280) and 195,584 flip-flops (the "
           "device has 5,280)")


def test_cli_array_too_big_for_the_device(accel, tmp_path, monkeypatch):
    """Refused in one line before any tool runs (yosys would take hours on 4,096 PEs)."""
    monkeypatch.setenv("ACCEL_BUILD_ROOT", str(tmp_path / "cache"))
    code, out, err = accel("build", "--board", "icebreaker", "--rows", "64", "--cols", "64",
                           "--no-requant-unit", "--out", str(tmp_path / "out"))
    assert (code, out, err) == (2, "", TOO_BIG + "\n")
    assert not (tmp_path / "cache").exists() and not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match=r"^the 64×64 array does not fit the iCE40UP5K"):
        flow.build(AcceleratorConfig(rows=64, cols=64), "icebreaker", cache_root=tmp_path)
    # only the logic cells over (the board top: the requantizer takes every DSP block)
    assert flow.fit_problem(AcceleratorConfig(rows=9, cols=9), "icebreaker", top="board") == (
        "the 9×9 array does not fit the iCE40UP5K of icebreaker: with 0 of its 81 PEs "
        "multiplying in DSP blocks and 81 in LUTs, its PEs alone need at least 7,128 logic "
        "cells (the device has 5,280)")


def test_cli_fitting_array_goes_through_the_check(accel, tmp_path, monkeypatch):
    """A design that may fit passes the check and reaches the flow (here a stub of it)."""
    calls = []

    def fake_build(config, board, **kwargs):
        calls.append((config, board, kwargs["top"], kwargs["max_dsp_pes"]))
        raise flow.BuildError("yosys failed: stub", tmp_path / "top.rpt")

    monkeypatch.setattr(flow, "build", fake_build)
    code, _out, err = accel("build", "--board", "icebreaker", *SMALL_ARGS,
                           "--out", str(tmp_path / "out"))
    assert code == 1 and calls == [(SMALL, "icebreaker", "core", None)]
    assert err.endswith(f"\naccel build: error: yosys failed: stub; see {tmp_path / 'top.rpt'}\n")
    # the largest arrays the check lets through on each device: just below its bounds
    assert flow.fit_problem(AcceleratorConfig(rows=8, cols=8), "icebreaker") is None
    assert flow.fit_problem(AcceleratorConfig(rows=9, cols=9), "icebreaker") is not None
    assert flow.fit_problem(AcceleratorConfig(rows=32, cols=32), "ulx3s-85f") is None
    assert flow.fit_problem(AcceleratorConfig(rows=33, cols=33), "ulx3s-85f") is not None


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[1] / "baselines").glob("*.json")),
                         ids=lambda p: p.stem)
def test_array_floor_is_below_every_measured_build(path):
    """The bounds are lower bounds: every baselined build (real yosys and nextpnr numbers) used
    more logic cells and flip-flops than :func:`array_floor` says its array alone needs."""
    report = json.loads(path.read_text())
    config = AcceleratorConfig.from_dict(report["config"])
    device = DEVICES[report["device"]]
    plan = flow.multiplier_plan(config, device, requantizer=report["top"] != "core")
    floor = flow.array_floor(config, device, plan)
    assert floor["luts"] <= report["used"]["logic_cells"]
    assert 0 < floor["ffs"] <= report["used"]["ffs"]
    assert flow.fit_problem(config, report["board"], top=report["top"]) is None


BASELINES = sorted((Path(__file__).parents[1] / "baselines").glob("*.json"))


@pytest.mark.parametrize("path", BASELINES, ids=lambda p: p.stem)
def test_every_baseline_is_its_own_recipe(path):
    """Each file in baselines/ carries what rebuilding it takes (the slow gate below reads
    nothing else): its config is the recorded one, its multiplier plan is reproduced, and the
    clock it asked for is one the board's PLL makes."""
    baseline = json.loads(path.read_text())
    config, board, options = flow.baseline_build(baseline)
    assert board == baseline["board"] and options["top"] == baseline["top"]
    assert config.digest == baseline["config_digest"]
    assert options["seed"] == baseline["seed"]
    assert options["freq_mhz"] == baseline["freq_mhz_requested"]
    plan = flow.multiplier_plan(config, DEVICES[BOARDS[board].device], options["max_dsp_pes"],
                                requantizer=options["top"] != "core")
    assert {key: plan[key] for key in baseline["multipliers"]} == baseline["multipliers"]
    flow.clock_plan(board, options["freq_mhz"])  # raises for a clock the board cannot make
    assert flow.fit_problem(config, board, top=options["top"],
                            max_dsp_pes=options["max_dsp_pes"]) is None


def test_baseline_recipe_checks():
    baseline = json.loads((Path(__file__).parents[1] / "baselines"
                           / "icebreaker_core_2x2.json").read_text())
    config, board, options = flow.baseline_build(baseline)
    assert (config, board) == (SMALL, "icebreaker")
    assert options == {"top": "core", "freq_mhz": 30.0, "seed": 1, "max_dsp_pes": None}
    # a capped plan is found again: 3 of the 4 PEs in SB_MAC16 blocks
    capped = {**baseline, "multipliers": {"pe_dsp": 3, "pe_lut": 1, "requant_dsp": 0}}
    assert flow.baseline_build(capped)[2]["max_dsp_pes"] == 3
    for broken, message in [
        ({k: v for k, v in baseline.items() if k not in ("seed", "top")},
         "the baseline lacks top, seed"),
        ({**baseline, "board": "nexys"}, "unknown board 'nexys' in the baseline"),
        ({**baseline, "top": "soc"}, "unknown top 'soc' in the baseline"),
        ({**baseline, "config": {**baseline["config"], "rows": 3}},
         "the baseline's config has digest"),
        ({**baseline, "multipliers": {"pe_dsp": 4, "pe_lut": 1}}, "no DSP cap gives"),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            flow.baseline_build(broken)
    with pytest.raises(ValueError, match="unknown config field 'colour' in the baseline"):
        flow.baseline_build({**baseline, "config": {**baseline["config"], "colour": 1}})


@pytest.mark.slow
@pytest.mark.parametrize("path", BASELINES, ids=lambda p: p.stem)
def test_baseline_rebuilds_within_tolerance(path, tmp_path):
    """The QoR gate: every baseline rebuilt from its own record (:func:`flow.baseline_build`)
    on today's gateware, its Fmax and resources within 5% (:func:`compare_baseline`). Minutes
    to most of an hour each (docs/ci.md); the build cache (``build/fpga``) serves a rebuild of
    unchanged sources at once."""
    baseline = json.loads(path.read_text())
    config, board, options = flow.baseline_build(baseline)
    report = flow.build(config, board, out_dir=tmp_path, allow_timing_fail=True, **options)
    assert compare_baseline(report.to_dict(), baseline) == []


def test_cache_keys_hash_every_gateware_source(tmp_path, monkeypatch):
    """A bitstream's and a model's cache keys change with any source of the gateware, the
    engine's package (``hw/engine/``) included: ``hw/*.py`` alone missed it."""
    import accelerator
    from accelerator.flow import files

    package = Path(accelerator.__file__).parent
    sources = sorted((package / "hw").rglob("*.py"))
    assert any(p.parent.name == "engine" for p in sources)
    copy = tmp_path / "accelerator"
    for path in [*sources, *(package / "model").glob("*.py"), package / "config.py",
                 *(package / "flow").glob("*.py"), *(package / "flow" / "cells").glob("*.v")]:
        target = copy / path.relative_to(package)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    monkeypatch.setattr(files, "_PACKAGE", copy)
    for source in (copy / "hw" / "engine" / "control.py", copy / "model" / "regmap.py"):
        files.sources_digest.cache_clear()
        before = (files.source_digest(), flow._sources_digest())
        source.write_text(source.read_text() + "\n# changed\n")
        files.sources_digest.cache_clear()
        after = (files.source_digest(), flow._sources_digest())
        assert before[0] != after[0] and before[1] != after[1], source
    files.sources_digest.cache_clear()


def test_cli_missing_baseline(accel, tmp_path):
    code, _out, err = accel("build", "--board", "icebreaker", "--out", str(tmp_path),
                            "--baseline", str(tmp_path / "none.json"))
    assert code == 2
    assert err.startswith("accel build: error: Invalid value for '--baseline'")
    assert len(err.splitlines()) == 1


def test_api_bad_input(tmp_path):
    with pytest.raises(ValueError, match=r"^unknown board 'nope' \(known: icebreaker"):
        flow.build(SMALL, "nope", cache_root=tmp_path)
    with pytest.raises(ValueError, match=r"^frequency 2000 MHz is out of range"):
        flow.build(SMALL, "icebreaker", freq_mhz=2000, cache_root=tmp_path)
    with pytest.raises(ValueError, match=r"^unknown top 'soc'"):
        flow.build(SMALL, "icebreaker", top="soc", cache_root=tmp_path)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------
# Real builds (yosys + nextpnr-ice40 through YoWASP)


@pytest.fixture(scope="module")
def first_build(tmp_path_factory):
    """One 2×2 iCEBreaker build at 30 MHz, timed."""
    root = tmp_path_factory.mktemp("fpga")
    start = time.monotonic()
    report = flow.build(SMALL, "icebreaker", freq_mhz=30, seed=1, out_dir=root / "out",
                        cache_root=root / "build" / "fpga")
    return root, report, time.monotonic() - start


@pytest.mark.synth
def test_icebreaker_report(first_build):
    root, report, _seconds = first_build
    assert not report.cached
    on_disk = json.loads((root / "out" / "report.json").read_text())
    assert on_disk == report.to_dict()
    assert on_disk["board"] == "icebreaker" and on_disk["device"] == "iCE40UP5K"
    assert on_disk["config_digest"] == SMALL.digest and on_disk["config"] == SMALL.to_dict()
    assert on_disk["seed"] == 1 and on_disk["freq_mhz_requested"] == 30.0
    assert on_disk["timing_met"] and on_disk["fmax_mhz"] >= 30.0
    # 30 MHz from the 12 MHz oscillator: the PLL, with icepll's dividers
    assert on_disk["oscillator_mhz"] == 12.0 and on_disk["freq_mhz_actual"] == 30.0
    assert on_disk["pll"]["params"] == {"DIVR": 0, "DIVF": 79, "DIVQ": 5, "FILTER_RANGE": 1}
    assert on_disk["multipliers"] == {"pe_dsp": 4, "pe_lut": 0, "requant_dsp": 0,
                                      "pe_paired": 0, "pe_dsp_blocks": 4}
    assert on_disk["available"] == {"luts": 5280, "ffs": 5280, "bram": 30, "dsp": 8,
                                    "logic_cells": 5280}
    used = on_disk["used"]
    assert used["dsp"] == 4  # one SB_MAC16 per PE: the whole array was synthesized
    assert used["bram"] == 0
    assert 100 < used["luts"] < 5280 and 100 < used["ffs"] < 5280
    assert used["logic_cells"] >= max(used["luts"], used["ffs"])
    for tool in ("yosys", "nextpnr-ice40", "icepack", "amaranth", "amaranth-boards"):
        assert on_disk["tool_versions"][tool] not in ("", "missing"), tool
    build_dir = root / "build" / "fpga" / f"icebreaker_core_{SMALL.digest}_{on_disk['cache_key']}"
    assert on_disk["build_dir"] == str(build_dir.resolve())
    for key in ("bitstream", "yosys_log", "nextpnr_log"):
        assert (root / "out" / on_disk["files"][key].rsplit("/", 1)[1]).is_file()
    assert (root / "out" / "top.bin").read_bytes() == (build_dir / "top.bin").read_bytes()
    assert "Max frequency" in (root / "out" / "top.tim").read_text()


@pytest.mark.synth
def test_icebreaker_cached_and_reproducible(first_build, tmp_path):
    root, report, _seconds = first_build
    # Same inputs, same cache: served from the cache, and said so; copied to the new --out.
    again = flow.build(SMALL, "icebreaker", freq_mhz=30, seed=1, out_dir=tmp_path / "out",
                       cache_root=root / "build" / "fpga")
    assert again.cached
    assert again.build_dir == report.build_dir and again.bitstream_sha256 == report.bitstream_sha256
    assert json.loads((tmp_path / "out" / "report.json").read_text())["cached"] is True
    # Same inputs, another cache directory: a real second build, byte for byte the same.
    other = flow.build(SMALL, "icebreaker", freq_mhz=30, seed=1, cache_root=tmp_path / "cache")
    assert not other.cached and other.build_dir != report.build_dir
    assert (tmp_path / "cache" / other.build_dir.rsplit("/", 1)[1] / "top.bin").read_bytes() == (
        root / "out" / "top.bin").read_bytes()
    assert other.bitstream_sha256 == report.bitstream_sha256


@pytest.mark.synth
def test_cli_build_cached_baseline_and_timing_failure(first_build, accel, tmp_path, monkeypatch):
    root, report, _seconds = first_build
    monkeypatch.setenv("ACCEL_BUILD_ROOT", str(root / "build"))
    base = ("build", "--board", "icebreaker", *SMALL_ARGS, "--freq", "30")
    code, out, err = accel(*base, "--out", str(tmp_path / "a"))
    assert code == 0, err
    assert out.splitlines()[0].startswith("icebreaker iCE40UP5K (cached): logic cells ")
    assert out.splitlines()[1] == ("multipliers: 4 PEs in 4 DSP blocks, 0 in LUTs, 0 DSP blocks "
                                   "for the requantizer")
    # Its own report as baseline: no regression. A faster baseline: one line, exit 1.
    code, out, err = accel(*base, "--out", str(tmp_path / "b"),
                           "--baseline", str(root / "out" / "report.json"))
    assert code == 0, err
    assert "no regression against" in out
    better = report.to_dict()
    better["fmax_mhz"] = report.fmax_mhz * 2
    (tmp_path / "better.json").write_text(json.dumps(better))
    code, out, err = accel(*base, "--out", str(tmp_path / "c"),
                           "--baseline", str(tmp_path / "better.json"))
    assert code == 1
    # the last line (progress lines come before it when stderr is not a terminal)
    assert err.splitlines()[-1] == (
        f"accel build: error: 1 regression(s) against {tmp_path / 'better.json'}: "
        f"Fmax {report.fmax_mhz:.2f} MHz < baseline {better['fmax_mhz']:.2f} MHz - 5%")
    # A clock the design cannot make: exit 1 naming the nextpnr log; accepted when allowed.
    fast = ("build", "--board", "icebreaker", *SMALL_ARGS, "--freq", "200")
    code, out, err = accel(*fast, "--out", str(tmp_path / "d"))
    assert code == 1
    error = err.splitlines()[-1]  # after the progress lines
    assert error.startswith("accel build: error: timing not met: ")
    assert error.endswith("/top.tim")
    assert [line for line in err.splitlines() if "error" in line] == [error]
    log = error.rsplit("see ", 1)[1]
    # nextpnr derives the PLL's output (201 MHz, the nearest the iCE40's dividers make)
    assert re.search(r"FAIL at 20\d\.\d\d MHz", Path(log).read_text())
    code, out, err = accel(*fast, "--out", str(tmp_path / "e"), "--allow-timing-fail")
    assert code == 0, err
    assert "NOT met" in out


@pytest.mark.parametrize("board", ["icebreaker", "orangecrab-25f", "ulx3s-25f"])
@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_core_synth_top_elaborates(board, dataflow):
    """Both dataflows, on boards with an LED or only an RGB LED: files to build, no tool run."""
    from accelerator.flow.synth_top import CoreSynthTop

    config = SMALL.replace(dataflow=dataflow)
    top = CoreSynthTop(config)
    assert top.output_width() == 2 * config.acc_width + 1
    plan = BOARDS[board]().prepare(top, name="top")
    assert "top.il" in plan.files


@pytest.mark.parametrize("registered", [False, True])
def test_core_synth_top_stages_the_registered_cores_results(registered):
    # the registered-DSP core's results pass a staging register and a copy of the accepted
    # flag per 32 bits of the output register; the others load straight from the core
    from amaranth.back import rtlil
    from amaranth_boards.ulx3s import ULX3S_85F_Platform

    from accelerator.flow.synth_top import CoreSynthTop

    config = SMALL.replace(rows=2, cols=3, registered_dsp=registered)
    il = rtlil.convert(CoreSynthTop(config), platform=ULX3S_85F_Platform(), ports=[])
    copies = set(re.findall(r"cell \\TRELLIS_FF \\(results_taken_\d+)_ff", il))
    assert len(copies) == (-(-(3 * config.acc_width + 1) // 32) if registered else 0)
    assert ("wire width 97 \\staged_again" in il) == registered


# --------------------------------------------------------------------------------------------
# Clocks and multipliers


@pytest.mark.parametrize(("family", "osc", "want", "got", "params"), [
    # the same dividers as the vendors' calculators (icepll -i 12 -o 30, ecppll -i 25 -o 100)
    ("ice40", 12e6, 30e6, 30e6, {"DIVR": 0, "DIVF": 79, "DIVQ": 5, "FILTER_RANGE": 1}),
    ("ice40", 12e6, 20e6, 19.875e6, {"DIVR": 0, "DIVF": 52, "DIVQ": 5, "FILTER_RANGE": 1}),
    ("ecp5", 25e6, 100e6, 100e6, {"CLKI_DIV": 1, "CLKFB_DIV": 4, "CLKOP_DIV": 6,
                                  "CLKOP_CPHASE": 5}),
    ("ecp5", 48e6, 100e6, 100e6, {"CLKI_DIV": 12, "CLKFB_DIV": 25, "CLKOP_DIV": 6,
                                  "CLKOP_CPHASE": 5}),
])
def test_pll_plans(family, osc, want, got, params):
    plan = plan_pll(family, osc, want)
    assert plan.output_hz == got and plan.params == params


def test_no_pll_at_the_oscillators_frequency():
    assert plan_pll("ecp5", 25e6, 25e6) is None
    assert flow.clock_plan("icebreaker", 12) is None
    with pytest.raises(ValueError, match=r"^the ecp5 PLL cannot make 2 MHz from 25 MHz$"):
        plan_pll("ecp5", 25e6, 2e6)


@pytest.mark.parametrize(("config", "board", "plan"), [
    # one PE per SB_MAC16 while there are blocks enough (yosys moves the accumulator in too)
    (AcceleratorConfig(rows=2, cols=2, requant_unit=False), "icebreaker",
     {"pe_dsp": 4, "pe_lut": 0, "requant_dsp": 0, "pe_paired": 0, "pe_dsp_blocks": 4}),
    # then two 8×8 products per block, only as many as keep PEs out of LUTs
    (AcceleratorConfig(rows=3, cols=3, requant_unit=False), "icebreaker",
     {"pe_dsp": 9, "pe_lut": 0, "requant_dsp": 0, "pe_paired": 2, "pe_dsp_blocks": 8}),
    (AcceleratorConfig(rows=4, cols=4, requant_unit=False), "icebreaker",
     {"pe_dsp": 16, "pe_lut": 0, "requant_dsp": 0, "pe_paired": 16, "pe_dsp_blocks": 8}),
    (AcceleratorConfig(rows=5, cols=4, requant_unit=False), "icebreaker",
     {"pe_dsp": 16, "pe_lut": 4, "requant_dsp": 0, "pe_paired": 16, "pe_dsp_blocks": 8}),
    # a 12-bit operand needs the 16×16 mode: one per block
    (AcceleratorConfig(rows=3, cols=3, in_width=12, requant_unit=False), "icebreaker",
     {"pe_dsp": 8, "pe_lut": 1, "requant_dsp": 0, "pe_paired": 0, "pe_dsp_blocks": 8}),
    (AcceleratorConfig(rows=4, cols=4), "icebreaker",       # the requantizer alone needs 16
     {"pe_dsp": 0, "pe_lut": 16, "requant_dsp": 16, "pe_paired": 0, "pe_dsp_blocks": 0}),
    (AcceleratorConfig(rows=16, cols=16), "ulx3s-85f",
     {"pe_dsp": 92, "pe_lut": 164, "requant_dsp": 64, "pe_paired": 0, "pe_dsp_blocks": 92}),
    (AcceleratorConfig(rows=8, cols=8), "ulx3s-85f",
     {"pe_dsp": 64, "pe_lut": 0, "requant_dsp": 32, "pe_paired": 0, "pe_dsp_blocks": 64}),
])
def test_multiplier_plan(config, board, plan):
    device = flow.DEVICES[BOARDS[board].device]
    assert flow.multiplier_plan(config, device) == plan
    capped = flow.multiplier_plan(config, device, max_dsp_pes=0)
    assert capped == {**plan, "pe_dsp": 0, "pe_lut": config.pes, "pe_paired": 0,
                      "pe_dsp_blocks": 0}


def test_multiplier_plan_pairs_only_past_the_cap():
    device = flow.DEVICES["iCE40UP5K"]
    config = AcceleratorConfig(rows=4, cols=4, requant_unit=False)
    assert flow.multiplier_plan(config, device, max_dsp_pes=10) == {
        "pe_dsp": 10, "pe_lut": 6, "requant_dsp": 0, "pe_paired": 4, "pe_dsp_blocks": 8}
    assert flow.multiplier_plan(config, device, max_dsp_pes=7)["pe_paired"] == 0


@pytest.mark.synth
def test_pes_share_mac16_blocks_and_the_rest_multiply_in_luts(tmp_path):
    # 5×4 = 20 PEs on 8 SB_MAC16: 16 PEs two by two in 8×8 mode, the other 4 in LUTs
    config = AcceleratorConfig(rows=5, cols=4, requant_unit=False)
    report = flow.build(config, "icebreaker", cache_root=tmp_path)
    assert report.multipliers == {"pe_dsp": 16, "pe_lut": 4, "requant_dsp": 0,
                                  "pe_paired": 16, "pe_dsp_blocks": 8}
    assert report.used["dsp"] == 8
    assert report.pll is None and report.freq_mhz_actual == 12.0


@pytest.mark.parametrize("board", list(BOARDS))
def test_board_top_elaborates_on_every_board(board):
    """Every board has the pins the board top asks for (the OrangeCrab's UART is on its Feather
    header), with and without a PLL: files to build, no tool run."""
    from accelerator.hw.board import BoardTop
    from accelerator.hw.clocking import PllClockedTop

    platform = BOARDS[board]()
    config = AcceleratorConfig(rows=2, cols=2)
    plan = platform.prepare(BoardTop(config, clk_freq=platform.default_clk_frequency),
                            name="top")
    assert "top.il" in plan.files
    pll = flow.clock_plan(board, 40.0)
    plan = BOARDS[board]().prepare(PllClockedTop(BoardTop(config, clk_freq=pll.output_hz), pll),
                                   name="top")
    assert ("SB_PLL40_PAD" if board == "icebreaker" else "EHXPLLL") in plan.files["top.il"]
