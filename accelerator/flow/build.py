"""`accel build`: synthesis, place and route and bitstream for a board, with a JSON report.

The flow goes through the amaranth-boards platform of the board (yosys, nextpnr, icepack or
ecppack, found by :func:`accelerator.flow.toolchain.setup_environment`), parses the tools' logs
into ``report.json`` and caches the whole build by its inputs.

Clock: without ``freq_mhz`` the design runs from the board's oscillator (12 MHz on the iCEBreaker,
25 MHz on the ULX3S, 48 MHz on the OrangeCrab). With it, the device's PLL makes the nearest
frequency it can (:mod:`accelerator.hw.clocking`; the report has both, and the PLL's dividers),
nextpnr derives that clock's constraint from the PLL, and ``timing_met`` compares Fmax with it.

Multipliers: the requantizer's go to DSP blocks, then the PEs' (two per SB_MAC16 on iCE40); the
other PEs multiply in LUTs (:func:`multiplier_plan`, reported as ``multipliers`` in
``report.json``).
iCE40 builds synthesize with ``synth_opts="-dsp"`` (SB_MAC16 multipliers); ECP5 builds route with
``--router router2`` (the default router stalls on large DSP arrays). nextpnr gets ``--seed`` and
``--timing-allow-fail`` (the flow checks timing itself, so that a miss still gives a report).

Cache: ``<cache_root>/<board>_<top>_<config digest>_<key>``, where the key hashes the tool
versions, the frequency, the seed and the gateware sources. A build directory appears only
complete (it is built under a temporary name, then renamed). A second build with the same inputs
returns the cached report without running any tool.

Public API: :data:`BOARDS`, :data:`DEVICES`, :data:`TOPS`, :func:`build`, :class:`BuildReport`,
:class:`BuildError`, :func:`fit_problem`, :func:`parse_nextpnr_log`, :func:`parse_yosys_log`,
:func:`compare_baseline`, :func:`baseline_build`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

from ..config import AcceleratorConfig
from ..hw.clocking import PllClockedTop, PllPlan, plan_pll
from ..hw.pe import pes_per_dsp
from . import toolchain
from .boards import BOARDS
from .files import GATEWARE_GLOBS, sources_digest, write_atomic

__all__ = [
    "BOARDS",
    "DEVICES",
    "DSP_PER_REQUANT_LANE",
    "MAX_FREQ_MHZ",
    "TOPS",
    "BuildError",
    "BuildReport",
    "DeviceResources",
    "array_floor",
    "baseline_build",
    "build",
    "clock_plan",
    "compare_baseline",
    "fit_problem",
    "multiplier_plan",
    "parse_nextpnr_log",
    "parse_yosys_log",
]

#: Highest ``freq_mhz`` accepted: beyond it the request is a typo, not a constraint.
MAX_FREQ_MHZ = 1000.0
#: Seconds allowed for the whole tool script (yosys + nextpnr + pack) of one build.
BUILD_TIMEOUT = 3600
#: Seconds between progress reports (``progress``) while yosys and nextpnr run: a CI log that
#: is silent for the minutes of a placement looks like a hang.
TICK_SECONDS = 30.0
#: Bumped when the flow changes what it produces, to invalidate old cache entries.
FLOW_VERSION = 2
#: The Amaranth design name: files in the build directory are ``top.*``.
_NAME = "top"


@dataclass(frozen=True)
class DeviceResources:
    """What one FPGA device offers (from the vendors' data sheets)."""

    family: str  # "ice40" or "ecp5"
    luts: int  # LUT4s
    ffs: int  # flip-flops
    bram: int  # block RAMs (iCE40 SB_RAM40_4K 4 kbit, ECP5 DP16KD 18 kbit)
    dsp: int  # multiplier blocks (iCE40 SB_MAC16, ECP5 MULT18X18D)
    bram_cell: str  # nextpnr's name of a BRAM block
    dsp_cell: str  # nextpnr's name of a DSP block


#: Resources per device, keyed by the platform's ``device`` attribute: written down once, shared
#: by every board with that device.
DEVICES: dict[str, DeviceResources] = {
    "iCE40UP5K": DeviceResources("ice40", 5280, 5280, 30, 8, "ICESTORM_RAM", "ICESTORM_DSP"),
    "LFE5U-25F": DeviceResources("ecp5", 24288, 24288, 56, 28, "DP16KD", "MULT18X18D"),
    "LFE5U-85F": DeviceResources("ecp5", 83640, 83640, 208, 156, "DP16KD", "MULT18X18D"),
}

#: DSP blocks one lane of the requantizer takes: its int32 × Q31 product is four 16×16 SB_MAC16
#: or four 18×18 MULT18X18D (yosys splits a wide ``*`` into the device's block size).
DSP_PER_REQUANT_LANE = 4


def multiplier_plan(config: AcceleratorConfig, device: DeviceResources,
                    max_dsp_pes: int | None = None, *, requantizer: bool = True
                    ) -> dict[str, int]:
    """Where the multipliers go: the requantizer's in DSP blocks first (they are 32 bits wide,
    a LUT version would be larger than a PE), then the PEs, as many per remaining block as it
    holds (:func:`accelerator.hw.pe.pes_per_dsp`: two per iCE40 SB_MAC16 for int8), at most
    ``max_dsp_pes``; the other PEs build theirs from LUTs (:func:`accelerator.hw.pe.lut_product`).
    ``requantizer``: the top has the requantizer (the core-only top has not).
    """
    requant = DSP_PER_REQUANT_LANE * config.cols if config.requant_unit and requantizer else 0
    blocks = max(0, device.dsp - requant)
    wanted = config.pes if max_dsp_pes is None else min(config.pes, max_dsp_pes)
    # A PE alone in a block is faster and smaller (yosys moves its accumulator into the block
    # too), so PEs share blocks only as far as that keeps PEs out of LUTs.
    if pes_per_dsp(device.family, config.in_width) == 2 and wanted > blocks:
        pe_dsp = min(wanted, 2 * blocks)
        paired = 2 * (pe_dsp - blocks)
    else:
        pe_dsp = min(wanted, blocks)
        paired = 0
    return {"pe_dsp": pe_dsp, "pe_lut": config.pes - pe_dsp, "requant_dsp": requant,
            "pe_paired": paired, "pe_dsp_blocks": pe_dsp - paired // 2}


def array_floor(config: AcceleratorConfig, device: DeviceResources, plan: dict[str, int]
                ) -> dict[str, int]:
    """Lower bounds of the logic cells (``luts``) and flip-flops (``ffs``) the PE array alone
    takes on ``device`` with the multipliers placed as ``plan`` (:func:`multiplier_plan`).

    Counted are only parts no mapping can leave out, each at its smallest:

    * the operand registers between neighbouring PEs (A to the right, B or the weights down):
      each also feeds a neighbour, so no DSP block absorbs it — ``in_width`` flip-flops per
      link;
    * an accumulator (``acc_width`` flip-flops and an adder of one logic cell per bit) per PE
      whose accumulator is not inside a DSP block: yosys moves it into an iCE40 SB_MAC16 only
      for a PE alone in its block, and never into an ECP5 MULT18X18D;
    * a multiplier in LUTs: ``in_width - 1`` additions of ``in_width`` bits.

    A PE measured (docs/performance.md, "The cost of a PE") takes 3–5 times more, so a design
    beyond these bounds cannot fit, while one within them may still not.
    """
    R, C, w = config.rows, config.cols, config.in_width
    links = R * (C - 1) + C * (R - 1)
    fabric_acc = config.pes if device.family == "ecp5" else plan["pe_lut"] + plan["pe_paired"]
    return {"luts": fabric_acc * config.acc_width + plan["pe_lut"] * w * (w - 1),
            "ffs": links * w + fabric_acc * config.acc_width}


def fit_problem(config: AcceleratorConfig, board: str, *, top: str = "core",
                max_dsp_pes: int | None = None) -> str | None:
    """Why ``config`` cannot fit ``board``'s device (one line), or None when it may.

    Checked before any tool runs, so that an array far too large fails at once rather than
    after hours of yosys and nextpnr; the bounds are :func:`array_floor`'s.
    """
    device_name = BOARDS[board].device
    device = DEVICES[device_name]
    plan = multiplier_plan(config, device, max_dsp_pes, requantizer=top != "core")
    floor = array_floor(config, device, plan)
    over = [f"{floor[key]:,} {what} (the device has {getattr(device, key):,})"
            for key, what in (("luts", "logic cells"), ("ffs", "flip-flops"))
            if floor[key] > getattr(device, key)]
    if not over:
        return None
    return (f"the {config.rows}×{config.cols} array does not fit the {device_name} of {board}: "
            f"with {plan['pe_dsp']} of its {config.pes} PEs multiplying in DSP blocks and "
            f"{plan['pe_lut']} in LUTs, its PEs alone need at least {' and '.join(over)}")


def _core_top(config: AcceleratorConfig, *, clk_freq: float, dsp_pes: int | None = None,
              paired_pes: int = 0):
    from .synth_top import CoreSynthTop
    return CoreSynthTop(config, clk_freq=clk_freq, dsp_pes=dsp_pes, paired_pes=paired_pes)


def _board_top(config: AcceleratorConfig, *, clk_freq: float, dsp_pes: int | None = None,
               paired_pes: int = 0):
    from ..hw.board import BoardTop
    return BoardTop(config, clk_freq=clk_freq, dsp_pes=dsp_pes, paired_pes=paired_pes)


#: The synthesis tops: name → ``factory(config, *, clk_freq, dsp_pes, paired_pes)
#: -> Elaboratable``.
#: ``"core"`` is the systolic core behind serial shift registers
#: (:mod:`accelerator.flow.synth_top`); ``"board"`` is the real board design
#: (:class:`accelerator.hw.board.BoardTop`).
TOPS: dict[str, Callable[..., Any]] = {"core": _core_top, "board": _board_top}

#: What the cache key hashes besides versions and options: every source of the gateware.
_SOURCE_GLOBS = (*GATEWARE_GLOBS, "config.py", "flow/build.py", "flow/synth_top.py")

#: Tools whose versions go into the report and the cache key.
_TOOLS = ("yosys", "nextpnr-ice40", "icepack", "nextpnr-ecp5", "ecppack", "amaranth")


class BuildError(RuntimeError):
    """A build failed. ``str()`` is one line; ``log`` is the log to read, when there is one."""

    def __init__(self, message: str, log: Path | str | None = None):
        super().__init__(message + (f"; see {log}" if log else ""))
        self.log = Path(log) if log else None


@dataclass
class BuildReport:
    """The result of one build, as written to ``report.json``."""

    board: str
    device: str
    top: str
    config: dict
    config_digest: str
    seed: int
    freq_mhz_requested: float
    freq_mhz_actual: float  # the clock the design runs at: the PLL's nearest, or the oscillator
    oscillator_mhz: float
    pll: dict[str, Any] | None  # the PLL's set-up (PllPlan.to_dict), None when none is needed
    fmax_mhz: float | None
    timing_met: bool  # fmax_mhz ≥ freq_mhz_actual
    clocks: dict[str, float]  # Fmax per clock, after routing
    used: dict[str, int]  # luts, ffs, bram, dsp, logic_cells
    available: dict[str, int]  # luts, ffs, bram, dsp, logic_cells
    # pe_dsp, pe_lut (the DSP fallback), requant_dsp, pe_paired (of pe_dsp, two per block),
    # pe_dsp_blocks (the blocks the pe_dsp PEs fill)
    multipliers: dict[str, int]
    utilisation: dict[str, list[int]]  # nextpnr's table: cell → [used, available]
    tool_versions: dict[str, str]
    cache_key: str
    build_dir: str
    bitstream: str
    bitstream_sha256: str
    yosys_log: str
    nextpnr_log: str
    build_seconds: float
    cached: bool = False  # True when this build was served from the cache
    files: dict[str, str] = field(default_factory=dict)  # copies in the --out directory

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> BuildReport:
        return cls(**values)

    def resources_text(self) -> str:
        """``logic cells used/available (pct; LUT4 n, FF n), BRAM …, DSP …``: one line for the
        CLIs.

        Logic cells (nextpnr's ``ICESTORM_LC`` on an iCE40, ``TRELLIS_COMB`` on an ECP5) are
        what fills the device: a LUT4 and a flip-flop that cannot share a cell take two, and
        carries and route-throughs take cells of their own, so the LUT4 count alone (yosys's)
        can read 80 % on a device that is 99 % full.
        """
        cells = self.used.get("logic_cells", 0)
        total = self.available.get("logic_cells") or self.available["luts"]
        pct = f"{100 * cells / total:.1f}%" if total else "n/a"
        return (f"logic cells {cells}/{total} ({pct}; LUT4 {self.used['luts']}, "
                f"FF {self.used['ffs']}/{self.available['ffs']}), "
                f"BRAM {self.used['bram']}/{self.available['bram']}, "
                f"DSP {self.used['dsp']}/{self.available['dsp']}")

    def multipliers_text(self) -> str:
        """Where the multipliers went, in words (``multipliers``)."""
        mults = self.multipliers
        pairs = f" ({mults['pe_paired']} of them two per block)" if mults["pe_paired"] else ""
        return (f"{mults['pe_dsp']} PEs in {mults['pe_dsp_blocks']} DSP blocks{pairs}, "
                f"{mults['pe_lut']} in LUTs, {mults['requant_dsp']} DSP blocks for the "
                f"requantizer")


# --------------------------------------------------------------------------------------------
# Log parsing

_UTIL_RE = re.compile(r"^Info:\s+([A-Za-z0-9_]+):\s+(\d+)/\s*(\d+)")
_FMAX_RE = re.compile(r"Max frequency for clock\s+'([^']+)':\s+([0-9.]+) MHz"
                      r"(?:\s+\((PASS|FAIL) at ([0-9.]+) MHz\))?")
_CELL_RE = re.compile(r"^\s+(?:(\d+)\s+([A-Za-z_$][\w$]*)|([A-Za-z_$][\w$]*)\s+(\d+))\s*$")


def parse_nextpnr_log(text: str) -> dict[str, Any]:
    """The last ``Device utilisation`` table and the last Fmax of each clock in a nextpnr log.

    Returns ``{"utilisation": {cell: [used, available]}, "clocks": {clock: mhz},
    "targets": {clock: mhz}, "errors": [lines]}``.
    """
    utilisation: dict[str, list[int]] = {}
    clocks: dict[str, float] = {}
    targets: dict[str, float] = {}
    errors: list[str] = []
    in_table = False
    for line in text.splitlines():
        if "Device utilisation:" in line:
            in_table, utilisation = True, {}
            continue
        if in_table:
            match = _UTIL_RE.match(line)
            if match:
                utilisation[match.group(1)] = [int(match.group(2)), int(match.group(3))]
                continue
            in_table = False
        match = _FMAX_RE.search(line)
        if match:
            clocks[match.group(1)] = float(match.group(2))
            if match.group(4):
                targets[match.group(1)] = float(match.group(4))
        if line.startswith("ERROR:"):
            errors.append(line.strip())
    return {"utilisation": utilisation, "clocks": clocks, "targets": targets, "errors": errors}


def parse_yosys_log(text: str) -> dict[str, int]:
    """Cell counts of the last statistics table in a yosys log (the whole flattened design).

    Accepts both the ``<count> <cell>`` layout of yosys ≥ 0.5x and the older ``<cell> <count>``.
    Returns ``{cell type: count}`` (internal ``$`` cells excluded).
    """
    start = text.rfind("Printing statistics")
    if start < 0:
        return {}
    cells: dict[str, int] = {}
    for line in text[start:].splitlines()[1:]:
        if re.match(r"^\d+\.\d+", line) or line.startswith("End of script"):
            break  # the next pass
        if "design hierarchy" in line:
            cells = {}  # the totals including submodules follow: keep only those
            continue
        match = _CELL_RE.match(line)
        if not match:
            continue
        count, name = (match.group(1), match.group(2)) if match.group(1) else (
            match.group(4), match.group(3))
        if name.startswith("$") or name in ("wires", "ports", "cells", "submodules", "memories",
                                            "processes"):
            continue
        cells[name] = int(count)
    return cells


def _resources(device: DeviceResources, cells: dict[str, int],
               utilisation: dict[str, list[int]]) -> dict[str, int]:
    def nextpnr(cell: str) -> int:
        return utilisation.get(cell, [0, 0])[0]

    luts = sum(n for c, n in cells.items() if c in ("SB_LUT4", "LUT4"))
    ffs = sum(n for c, n in cells.items() if c.startswith("SB_DFF") or c == "TRELLIS_FF")
    logic = "ICESTORM_LC" if device.family == "ice40" else "TRELLIS_COMB"
    return {"luts": luts, "ffs": ffs, "bram": nextpnr(device.bram_cell),
            "dsp": nextpnr(device.dsp_cell), "logic_cells": nextpnr(logic)}


def _logic_cells_available(device: DeviceResources, pnr: dict[str, Any]) -> int:
    """The device's logic cells as nextpnr counts them (one per LUT4 on both families)."""
    cell = "ICESTORM_LC" if device.family == "ice40" else "TRELLIS_COMB"
    return pnr["utilisation"].get(cell, [0, device.luts])[1]


# --------------------------------------------------------------------------------------------
# Baseline


def compare_baseline(report: dict[str, Any], baseline: dict[str, Any], *,
                     tolerance: float = 0.05) -> list[str]:
    """The regressions of ``report`` against ``baseline`` (both ``report.json`` dicts).

    Fmax may be lower than the baseline's by at most ``tolerance`` (a fraction), and each used
    resource (luts, ffs, bram, dsp) higher by at most ``tolerance``. A baseline for another board
    or config is a regression too. Returns one short phrase per regression; empty when none.
    """
    problems: list[str] = []
    for key in ("board", "config_digest", "top"):
        if key in baseline and baseline[key] != report.get(key):
            problems.append(f"{key} {report.get(key)} differs from the baseline's {baseline[key]}")
    pct = f"{tolerance * 100:g}%"
    base_fmax, fmax = baseline.get("fmax_mhz"), report.get("fmax_mhz")
    if base_fmax is not None:
        if fmax is None:
            problems.append(f"no Fmax (baseline {base_fmax:.2f} MHz)")
        elif fmax < base_fmax * (1 - tolerance):
            problems.append(f"Fmax {fmax:.2f} MHz < baseline {base_fmax:.2f} MHz - {pct}")
    base_used, used = baseline.get("used", {}), report.get("used", {})
    for name in ("luts", "ffs", "bram", "dsp", "logic_cells"):
        if name in base_used and used.get(name, 0) > base_used[name] * (1 + tolerance):
            problems.append(f"{name} {used.get(name, 0)} > baseline {base_used[name]} + {pct}")
    return problems


def baseline_build(baseline: dict[str, Any]) -> tuple[AcceleratorConfig, str, dict[str, Any]]:
    """How to build ``baseline`` (a ``report.json`` dict) again: ``(config, board, options)``,
    where ``options`` are :func:`build`'s ``top``, ``freq_mhz``, ``seed`` and ``max_dsp_pes``.

    A baseline is its own recipe: the board, the top, the whole config, the clock asked and the
    seed are fields of the report, and ``max_dsp_pes`` is the cap that reproduces its
    ``multipliers`` (None when the default plan does). Raises :class:`ValueError` naming what
    is missing or does not agree (a config whose digest is not the recorded one, a multiplier
    plan no cap reproduces).
    """
    missing = [key for key in ("board", "top", "config", "config_digest", "seed",
                               "freq_mhz_requested", "multipliers") if key not in baseline]
    if missing:
        raise ValueError(f"the baseline lacks {', '.join(missing)}")
    board, top = baseline["board"], baseline["top"]
    if board not in BOARDS:
        raise ValueError(f"unknown board {board!r} in the baseline")
    if top not in TOPS:
        raise ValueError(f"unknown top {top!r} in the baseline")
    config = AcceleratorConfig.from_dict(baseline["config"], source="the baseline")
    if config.digest != baseline["config_digest"]:
        raise ValueError(f"the baseline's config has digest {config.digest}, not the recorded "
                         f"{baseline['config_digest']}")
    device = DEVICES[BOARDS[board].device]
    recorded = baseline["multipliers"]
    max_dsp_pes = None
    for cap in (None, recorded.get("pe_dsp")):
        plan = multiplier_plan(config, device, cap, requantizer=top != "core")
        if all(plan.get(key) == value for key, value in recorded.items()):
            max_dsp_pes = cap
            break
    else:
        raise ValueError(f"no DSP cap gives the baseline's multipliers {recorded}")
    return config, board, {"top": top, "freq_mhz": float(baseline["freq_mhz_requested"]),
                           "seed": baseline["seed"], "max_dsp_pes": max_dsp_pes}


# --------------------------------------------------------------------------------------------
# The flow


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _sources_digest() -> str:
    return sources_digest(*_SOURCE_GLOBS)


def _versions(env) -> dict[str, str]:
    found = toolchain.tool_versions(env)
    versions = {name: found.get(name, "missing") for name in _TOOLS}
    try:
        versions["amaranth-boards"] = package_version("amaranth-boards")
    except PackageNotFoundError:  # pragma: no cover
        versions["amaranth-boards"] = "missing"
    return versions


def _copy_atomic(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp")
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_json_atomic(path: Path, values: dict) -> None:
    write_atomic(path, json.dumps(values, indent=2, sort_keys=True) + "\n")


def _default_cache_root() -> Path:
    root = os.environ.get("ACCEL_BUILD_ROOT")
    return (Path(root) if root else Path("build")) / "fpga"


def _resolve_top(top: str | Callable[..., Any]) -> tuple[str, Callable[..., Any]]:
    if callable(top):
        return getattr(top, "__name__", "custom").lower(), top
    if top not in TOPS:
        if top == "board":
            raise ValueError("top 'board' is not available: accelerator/hw/board.py has no "
                             "BoardTop")
        raise ValueError(f"unknown top {top!r} (known: {', '.join(TOPS)})")
    return top, TOPS[top]


def clock_plan(board: str, freq_mhz: float) -> PllPlan | None:
    """The PLL that makes ``freq_mhz`` on ``board`` (None: its oscillator already runs at it).

    Raises :class:`ValueError` for a bad board or a frequency the board cannot make.
    """
    if board not in BOARDS:
        raise ValueError(f"unknown board {board!r} (known: {', '.join(BOARDS)})")
    if not 0 < freq_mhz <= MAX_FREQ_MHZ:
        raise ValueError(f"frequency {freq_mhz:g} MHz is out of range "
                         f"(allowed: more than 0 up to {MAX_FREQ_MHZ:g} MHz)")
    platform = BOARDS[board]
    family = DEVICES[platform.device].family
    return plan_pll(family, platform().default_clk_frequency, freq_mhz * 1e6)


def _check(report: BuildReport, allow_timing_fail: bool) -> None:
    """Raise :class:`BuildError` for a design that does not fit or misses its clock."""
    log = report.nextpnr_log
    over = [f"{name} {report.used[name]}/{report.available[name]}"
            for name in ("luts", "ffs", "bram", "dsp")
            if report.used.get(name, 0) > report.available[name]]
    if over:
        raise BuildError(f"the design does not fit the {report.device}: {', '.join(over)}", log)
    if not report.timing_met and not allow_timing_fail:
        fmax = f"{report.fmax_mhz:.2f} MHz" if report.fmax_mhz is not None else "no Fmax"
        raise BuildError(f"timing not met: {fmax} < {report.freq_mhz_actual:g} MHz requested "
                         f"(--allow-timing-fail to accept)", log)


def _publish(report: BuildReport, out_dir: Path | None) -> BuildReport:
    """Copy the bitstream, the logs and the report into ``out_dir`` (each file atomically)."""
    if out_dir is None:
        return report
    out_dir = Path(out_dir)
    files = {}
    for key in ("bitstream", "yosys_log", "nextpnr_log"):
        src = Path(getattr(report, key))
        dst = out_dir / src.name
        _copy_atomic(src, dst)
        files[key] = str(dst.resolve())
    report.files = files
    files["report"] = str((out_dir / "report.json").resolve())
    _write_json_atomic(out_dir / "report.json", report.to_dict())
    return report


def build(config: AcceleratorConfig, board: str, *, top: str | Callable[..., Any] = "core",
          freq_mhz: float | None = None, seed: int = 1, out_dir: Path | str | None = None,
          allow_timing_fail: bool = False, cache_root: Path | str | None = None,
          progress: Callable[[str], None] | None = None,
          max_dsp_pes: int | None = None,
          progress_seconds: float = TICK_SECONDS) -> BuildReport:
    """Synthesize, place and route ``top`` for ``board``; return (and write) the report.

    ``top`` is a name from :data:`TOPS` or a factory ``f(config, *, clk_freq, dsp_pes,
    paired_pes)`` that requests its pins from the platform it is elaborated with. ``freq_mhz``
    is the timing constraint (the board's oscillator frequency when None; no PLL is added, see
    the module docstring). ``out_dir`` receives the bitstream, the two logs and ``report.json``.
    ``cache_root`` defaults to ``$ACCEL_BUILD_ROOT/fpga`` or ``build/fpga``.

    ``max_dsp_pes`` caps the PEs given a DSP block (0: every PE multiplies in LUTs).

    ``progress(message)`` hears of each step, and every ``progress_seconds`` while yosys and
    nextpnr run, which of them and how long its log is.

    Raises :class:`ValueError` for a bad board, top, frequency or seed, or an array that cannot
    fit the board's device (:func:`fit_problem`), and :class:`BuildError`
    (with the log path) when a tool fails, the design does not fit, or it misses the requested
    frequency (unless ``allow_timing_fail``). The report of a timing miss is still written.
    """
    say = progress or (lambda _msg: None)
    if board not in BOARDS:
        raise ValueError(f"unknown board {board!r} (known: {', '.join(BOARDS)})")
    top_name, factory = _resolve_top(top)
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**31:
        raise ValueError(f"seed {seed!r} is out of range (allowed: 0 to {2**31 - 1})")

    problem = fit_problem(config, board, top=top_name, max_dsp_pes=max_dsp_pes)
    if problem:
        raise ValueError(problem)

    platform = BOARDS[board]()
    device = DEVICES[platform.device]
    osc_hz = platform.default_clk_frequency
    if freq_mhz is None:
        freq_mhz = osc_hz / 1e6
    freq_mhz = float(freq_mhz)
    pll = clock_plan(board, freq_mhz)

    env = toolchain.setup_environment(dict(os.environ))
    versions = _versions(env)
    plan_mul = multiplier_plan(config, device, max_dsp_pes, requantizer=top_name != "core")
    key_data = {"flow": FLOW_VERSION, "board": board, "top": top_name,
                "config": config.to_dict(), "freq_mhz": freq_mhz, "seed": seed,
                "tools": versions, "sources": _sources_digest(), "multipliers": plan_mul}
    key = hashlib.sha256(json.dumps(key_data, sort_keys=True).encode()).hexdigest()[:16]
    root = Path(cache_root) if cache_root is not None else _default_cache_root()
    build_dir = (root / f"{board}_{top_name}_{config.digest}_{key}").resolve()

    cached_report = build_dir / "report.json"
    if cached_report.is_file():
        say("using the cached build")
        report = BuildReport.from_dict(json.loads(cached_report.read_text()))
        report.cached = True
        _publish(report, out_dir)
        _check(report, allow_timing_fail)
        return report

    start = time.monotonic()
    say(f"elaborating the {top_name} top for {board}")
    actual_hz = pll.output_hz if pll is not None else osc_hz
    nextpnr_opts = ["--seed", str(seed), "--freq", f"{actual_hz / 1e6:g}", "--timing-allow-fail"]
    overrides: dict[str, Any] = {}
    if device.family == "ice40":
        overrides["synth_opts"] = "-dsp"
    else:
        nextpnr_opts += ["--router", "router2"]
    overrides["nextpnr_opts"] = " ".join(nextpnr_opts)
    design = factory(config, clk_freq=actual_hz, dsp_pes=plan_mul["pe_dsp"],
                     paired_pes=plan_mul["pe_paired"])
    if pll is not None:
        design = PllClockedTop(design, pll)
    plan = platform.prepare(design, name=_NAME, **overrides)

    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=root, prefix=f".{build_dir.name}."))
    try:
        plan.extract(work)
        yosys_log, nextpnr_log = work / f"{_NAME}.rpt", work / f"{_NAME}.tim"
        say(f"running yosys and nextpnr for {board} ({device.family})")
        tools_start = time.monotonic()

        def tick() -> None:  # which tool runs, by its log: yosys writes one, then nextpnr
            tool, log = (("nextpnr", nextpnr_log) if nextpnr_log.exists() else
                         ("yosys", yosys_log))
            size = log.stat().st_size if log.exists() else 0
            say(f"{tool} running, {time.monotonic() - tools_start:.0f} s into yosys and "
                f"nextpnr, its log {size / 1024:,.0f} KiB")

        try:
            run = _run_script(["sh", f"build_{_NAME}.sh"], work, env, tick=tick,
                              tick_seconds=progress_seconds)
        except subprocess.TimeoutExpired:
            raise BuildError(f"the build did not finish within {BUILD_TIMEOUT} s",
                             nextpnr_log if nextpnr_log.exists() else yosys_log) from None
        (work / "tools.log").write_text(run.stdout + run.stderr)
        bitstream = work / (f"{_NAME}.bin" if device.family == "ice40" else f"{_NAME}.bit")
        pnr = parse_nextpnr_log(nextpnr_log.read_text(errors="replace")
                                if nextpnr_log.exists() else "")
        if run.returncode != 0 or not bitstream.exists():
            hint = ""
            if platform.device == "iCE40UP5K" and top_name == "board" \
                    and config.engine != "compact":
                hint = (" (the board top fits it with --engine compact --no-requant-unit "
                         "--axi-data-width 32)")
            _raise_tool_failure(work, build_dir, run, pnr, yosys_log, nextpnr_log,
                                platform.device, hint)
        cells = parse_yosys_log(yosys_log.read_text(errors="replace"))
        if not pnr["clocks"]:
            raise BuildError("nextpnr reported no Fmax", _moved(nextpnr_log, work, build_dir))
        fmax = min(pnr["clocks"].values())
        available = {"luts": device.luts, "ffs": device.ffs, "bram": device.bram,
                     "dsp": device.dsp, "logic_cells": _logic_cells_available(device, pnr)}
        report = BuildReport(
            board=board, device=platform.device, top=top_name, config=config.to_dict(),
            config_digest=config.digest, seed=seed, freq_mhz_requested=freq_mhz,
            freq_mhz_actual=actual_hz / 1e6, oscillator_mhz=osc_hz / 1e6,
            pll=pll.to_dict() if pll is not None else None,
            fmax_mhz=fmax, timing_met=fmax >= actual_hz / 1e6, clocks=pnr["clocks"],
            used=_resources(device, cells, pnr["utilisation"]), available=available,
            multipliers=plan_mul,
            utilisation=pnr["utilisation"], tool_versions=versions, cache_key=key,
            build_dir=str(build_dir), bitstream=str(build_dir / bitstream.name),
            bitstream_sha256=_sha256(bitstream), yosys_log=str(build_dir / yosys_log.name),
            nextpnr_log=str(build_dir / nextpnr_log.name),
            build_seconds=round(time.monotonic() - start, 2))
        _write_json_atomic(work / "report.json", report.to_dict())
        try:
            os.replace(work, build_dir)  # the cache entry appears complete or not at all
        except OSError:
            if not cached_report.is_file():  # pragma: no cover - nothing else to do
                raise
            # Another build of the same inputs finished first; its result is equivalent.
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    _publish(report, out_dir)
    _check(report, allow_timing_fail)
    return report


def _run_script(argv: list[str], cwd: Path, env, *, tick: Callable[[], None] | None = None,
                tick_seconds: float = TICK_SECONDS) -> subprocess.CompletedProcess:
    """Run the build script in its own process group, so that a timeout (or Ctrl-C) stops the
    tools it started too, not only the shell. ``tick()`` is called every ``tick_seconds`` while
    it runs."""
    deadline = time.monotonic() + BUILD_TIMEOUT
    with subprocess.Popen(argv, cwd=cwd, env=dict(env), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, errors="replace",
                          start_new_session=True) as proc:
        try:
            while True:
                left = deadline - time.monotonic()
                try:  # a communicate() that timed out loses no output when called again
                    out, err = proc.communicate(timeout=max(0.0, min(tick_seconds, left)))
                    break
                except subprocess.TimeoutExpired:
                    if time.monotonic() >= deadline:
                        raise
                    if tick is not None:
                        tick()
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def _moved(path: Path, work: Path, build_dir: Path) -> Path:
    """Keep a failed build's logs: move them next to where the build would have been."""
    failed = build_dir.with_name(build_dir.name + ".failed")
    failed.parent.mkdir(parents=True, exist_ok=True)
    if failed.exists():
        shutil.rmtree(failed, ignore_errors=True)
    if work.exists():
        shutil.copytree(work, failed)
    return failed / path.name


def _raise_tool_failure(work: Path, build_dir: Path, run: subprocess.CompletedProcess,
                        pnr: dict[str, Any], yosys_log: Path, nextpnr_log: Path,
                        device: str, hint: str = "") -> None:
    output = (run.stdout + "\n" + run.stderr).splitlines()
    errors = [line.strip() for line in output if "ERROR" in line] or pnr["errors"]
    reason = errors[-1] if errors else (next((s for s in reversed(output) if s.strip()), "")
                                        or f"exit status {run.returncode}")
    reason = re.sub(r"cell '[^']*'", "cell '…'", " ".join(reason.split()))[:200]
    if not (work / f"{_NAME}.json").exists() or not nextpnr_log.exists():
        tool, log = "yosys", yosys_log
    else:
        tool, log = "nextpnr", nextpnr_log
    over = [f"{cell} {used}/{avail}" for cell, (used, avail) in pnr["utilisation"].items()
            if used > avail]
    if tool == "nextpnr" and (over or "no BELs remaining" in reason):
        detail = ", ".join(over) if over else reason
        raise BuildError(f"the design does not fit the {device}: {detail}{hint}",
                         _moved(log, work, build_dir))
    if not log.exists():
        log = work / "tools.log"
    raise BuildError(f"{tool} failed: {reason}", _moved(log, work, build_dir))
