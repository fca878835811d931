"""FPGA measurements for docs/performance.md: the largest array per board, and the cost of a PE.

    python tools/bench_fpga.py [--only NAME ...] [--json build/bench_fpga.json]

Every build goes through `accel build`'s flow (cached by its inputs, so a second run is
instant). For each board it tries the array sizes of ``LARGEST`` from the largest down and
reports the first whose whole board top fits (Fmax, resources, peak int8 GOPS = 2·R·C·Fmax); on
a board where no board top fits it reports the smallest attempt's utilisation, and the largest
core-only top that fits. The cost of a PE is the difference between a core built with every
multiplier in a DSP block and one with every multiplier in LUTs (:func:`pe_cost`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from accelerator.config import AcceleratorConfig
from accelerator.flow import build as flow
from accelerator.flow.files import write_atomic

#: board → (sizes to try for the board top, largest first; clock to ask for in MHz)
LARGEST: dict[str, tuple[list[int], float]] = {
    "ulx3s-85f": ([12, 8], 50.0),
    "ulx3s-25f": ([8, 6, 4], 50.0),
    "orangecrab-25f": ([4], 48.0),
    "icebreaker": ([2], 20.0),
}
#: iCE40: the board top does not fit; the largest core-only array that does
CORE_ONLY = {"icebreaker": ([6, 5, 4], 30.0)}
#: (board, small side, large side) of the PE-cost measurement
PE_COST = [("ulx3s-85f", 2, 4), ("icebreaker", 1, 2)]


def _config(board: str, side: int) -> AcceleratorConfig:
    # the iCE40 has 8 DSP blocks: the requantizer alone would need 4 per column
    requant = not board.startswith("icebreaker")
    return AcceleratorConfig(rows=side, cols=side, requant_unit=requant)


def _row(report: flow.BuildReport) -> dict:
    r, c = report.config["rows"], report.config["cols"]
    return {
        "board": report.board, "device": report.device, "top": report.top,
        "array": f"{r}×{c}", "dataflow": report.config["dataflow"],
        "requant_unit": report.config["requant_unit"],
        "freq_mhz": report.freq_mhz_actual, "fmax_mhz": report.fmax_mhz,
        "timing_met": report.timing_met, "gops": round(2 * r * c * report.fmax_mhz / 1e3, 2),
        "used": report.used, "available": report.available,
        "multipliers": report.multipliers, "build_seconds": report.build_seconds,
    }


def _try(board: str, side: int, top: str, freq: float) -> tuple[dict | None, str]:
    start = time.monotonic()
    try:
        report = flow.build(_config(board, side), board, top=top, freq_mhz=freq,
                            allow_timing_fail=True)
    except flow.BuildError as exc:
        print(f"  {board} {top} {side}×{side}: {exc} ({time.monotonic() - start:.0f} s)",
              file=sys.stderr)
        return None, str(exc)
    print(f"  {board} {top} {side}×{side}: fits, Fmax {report.fmax_mhz:.1f} MHz "
          f"({time.monotonic() - start:.0f} s)", file=sys.stderr)
    return _row(report), ""


def largest(board: str, top: str, sizes: list[int], freq: float) -> dict:
    attempts = []
    for side in sizes:
        row, error = _try(board, side, top, freq)
        if row is not None:
            return {"fits": row, "did_not_fit": attempts}
        attempts.append({"array": f"{side}×{side}", "error": error})
    return {"fits": None, "did_not_fit": attempts}


def pe_cost(board: str, small: int, large: int) -> dict:
    """LUTs, FFs and DSP blocks one PE adds, with its multiplier in a DSP block and in LUTs: the
    slope between a small×small and a large×large core (so the skew and I/O around the array,
    which grow with its sides, are spread over the added PEs)."""
    out: dict = {"board": board, "between": f"{small}×{small} and {large}×{large}"}
    for name, cap in (("with_dsp", None), ("without_dsp", 0)):
        used = {}
        for side in (small, large):
            config = AcceleratorConfig(rows=side, cols=side, requant_unit=False)
            report = flow.build(config, board, allow_timing_fail=True, max_dsp_pes=cap)
            used[side] = report.used
        added = large * large - small * small
        out[name] = {key: round((used[large][key] - used[small][key]) / added, 1)
                     for key in ("luts", "logic_cells", "ffs", "dsp")}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None,
                        help="boards to measure (default: all)")
    parser.add_argument("--json", type=Path, default=Path("build/bench_fpga.json"))
    parser.add_argument("--what", default="largest,pe_cost",
                        help="comma list of measurements: largest (with core_only), pe_cost")
    args = parser.parse_args()
    boards = args.only or list(LARGEST)
    results: dict = {"largest": {}, "core_only": {}, "pe_cost": []}
    if args.json.is_file():  # keep earlier boards' results when measuring only some
        results = json.loads(args.json.read_text())
    what = set(args.what.split(","))
    for board in boards if "largest" in what else []:
        sizes, freq = LARGEST[board]
        results["largest"][board] = largest(board, "board", sizes, freq)
        if board in CORE_ONLY:
            sizes, freq = CORE_ONLY[board]
            results["core_only"][board] = largest(board, "core", sizes, freq)
    costs = [pe_cost(*item) for item in PE_COST if item[0] in boards and "pe_cost" in what]
    results["pe_cost"] = costs or results.get("pe_cost", [])
    write_atomic(args.json, json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
