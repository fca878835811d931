"""Functional coverage of ``accel verify``: coverpoints and crosses, sampled from what ran.

The model is built from the config and the register map (:meth:`CoverageModel.of`): the edges
of the shape bins are the array's rows and columns, the scratchpads' K step and M chunk
(:class:`~accelerator.model.geometry.Geometry`) and ``MAX_DIM``; the error bins are the members
of :class:`~accelerator.model.regmap.ErrorCode`; the requantizer's bins split the ranges of the
``RQ_*`` register fields; the alignment bins are the byte lanes of the AXI data bus, and so on.
A bin the config cannot reach (the other dataflow, requantization without the unit) is
*excluded*, with its reason, and counts neither as hit nor as a hole.

Sampling reads the records the bench reported for the cases it ran (``accel_tb``'s JSON lines:
the command it wrote, the data it placed, the counters it read back, the bus activity it watched
at an abort, the address that answered SLVERR), never the cases it was asked to run; a case
that failed covers nothing. A :class:`Coverage` database (hit counts per bin) is JSON, and
databases of the same model merge: the bins are the same, the counts add, and a bin is excluded
only if it is excluded in every run merged (the os run and the ws run together reach both
dataflows' bins).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any

from ..config import DATAFLOWS, AcceleratorConfig
from .geometry import AXI4_BOUNDARY, AXI4_MAX_BURST, Geometry
from .regmap import COUNTERS, MAX_DIM, REGISTERS, ErrorCode, element_bytes, register

__all__ = ["FORMAT", "MATRICES", "Coverage", "CoverageError", "CoverageModel", "Coverpoint",
           "command_of", "format_table"]

#: The database format's version (a database of another version does not merge).
FORMAT = 1

#: The matrices in memory, in the order the register map lists their addresses.
MATRICES = ("a", "b", "c", "c_in")

Record = Mapping[str, Any]


class CoverageError(ValueError):
    """Databases that cannot be read or merged (one line)."""


@dataclass(frozen=True)
class Coverpoint:
    """A coverpoint (or a cross): its bins, the bins this config excludes, and how a record
    hits bins. ``sample(record)`` returns the bins the record hits (none, one or several)."""

    name: str
    doc: str
    bins: tuple[str, ...]
    sample: Callable[[Record], Iterable[str]] = field(compare=False, repr=False)
    excluded: Mapping[str, str] = field(default_factory=dict)


def _cross(name: str, doc: str, first: Coverpoint, second: Coverpoint,
           excluded: Mapping[str, str] | None = None) -> Coverpoint:
    """Every pair of a bin of ``first`` and a bin of ``second`` (``"x × y"``); a pair with an
    excluded member is excluded."""
    bins = tuple(f"{x} × {y}" for x, y in product(first.bins, second.bins))
    out = dict(excluded or {})
    for x, y in product(first.bins, second.bins):
        reason = first.excluded.get(x) or second.excluded.get(y)
        if reason:
            out.setdefault(f"{x} × {y}", reason)

    def sample(record: Record) -> Iterable[str]:
        return [f"{x} × {y}" for x in first.sample(record) for y in second.sample(record)]

    return Coverpoint(name, doc, bins, sample, out)


# -- what a record says -------------------------------------------------------------------------

def _gemm(record: Record) -> bool:
    """A GEMM that ran to completion and matched NumPy (with the command the bench wrote)."""
    return record.get("kind") in ("gemm", "reset") and bool(record.get("passed")) \
        and "command" in record


def _command(record: Record) -> dict:
    return record["command"]


def _dim_bins(value: int, edge: int, *, big: int | None = None) -> list[str]:
    hits = []
    if value == 1:
        hits.append("1")
    if 1 < value < edge:
        hits.append("below")
    if value == edge:
        hits.append("edge")
    if value > edge:
        hits.append("multiple" if value % edge == 0 else "ragged")
    if big is not None and value > big:
        hits.append("past")
    if value == MAX_DIM:
        hits.append("MAX_DIM")
    return hits


@dataclass(frozen=True)
class CoverageModel:
    """The coverpoints of one config."""

    config: AcceleratorConfig
    points: tuple[Coverpoint, ...]

    @property
    def signature(self) -> dict[str, list[str]]:
        """Point name → bins: what two databases must share to merge."""
        return {p.name: list(p.bins) for p in self.points}

    def point(self, name: str) -> Coverpoint:
        for p in self.points:
            if p.name == name:
                return p
        raise KeyError(name)

    def sample(self, records: Iterable[Record], *, run: dict | None = None) -> Coverage:
        """A database of the hits of ``records`` (the bench's reports of one run)."""
        hits = {p.name: dict.fromkeys(p.bins, 0) for p in self.points}
        records = list(records)
        for record in records:
            for p in self.points:
                for hit in p.sample(record):
                    if hit not in hits[p.name]:
                        raise CoverageError(f"coverpoint {p.name}: record hit {hit!r}, which is "
                                            f"not one of its bins")
                    hits[p.name][hit] += 1
        excluded = {p.name: dict(p.excluded) for p in self.points}
        info = {"config": self.config.to_dict(), "records": len(records), **(run or {})}
        return Coverage(docs={p.name: p.doc for p in self.points}, hits=hits,
                        excluded=excluded, runs=[info])

    @classmethod
    def of(cls, config: AcceleratorConfig) -> CoverageModel:
        return cls(config, tuple(_points(config)))


def _points(config: AcceleratorConfig) -> list[Coverpoint]:
    R, C = config.rows, config.cols
    geo = Geometry.of(config)
    bus = config.axi_bytes
    ebytes = element_bytes(config)
    # A, B and a requantized C may start at any byte; int32 C and C_in on their elements
    c_step = 1 if config.requant_unit else ebytes["c"]
    points: list[Coverpoint] = []

    def add(name: str, doc: str, bins: Iterable[str], sample: Callable[[Record], Iterable[str]],
            excluded: Mapping[str, str] | None = None) -> Coverpoint:
        point = Coverpoint(name, doc, tuple(bins), sample, dict(excluded or {}))
        points.append(point)
        return point

    def gemm_only(fn: Callable[[Record], Iterable[str]]) -> Callable[[Record], Iterable[str]]:
        return lambda r: list(fn(r)) if _gemm(r) else []

    # -- the hardware and the shapes --
    add("dataflow", "the dataflow of the hardware a GEMM passed on", DATAFLOWS,
        gemm_only(lambda r: [config.dataflow]),
        {d: f"the hardware is {config.dataflow}" for d in DATAFLOWS if d != config.dataflow})

    # ws walks A in chunks of rows that half the A and C scratchpads hold; os in R-row blocks
    chunk_note = ({} if config.dataflow == "ws" else
                  {"past": "os walks A in blocks of `rows` rows: no chunk larger than a block"})
    m_point = add(
        "m", f"M against the array's rows ({R}): 1, between, equal, above as a multiple or "
             f"ragged (an edge tile), past one chunk of A rows (ws: what half the A and C "
             f"scratchpads hold at this K), {MAX_DIM} (MAX_DIM)",
        ("1", "below", "edge", "multiple", "ragged", "past", "MAX_DIM"),
        gemm_only(lambda r: _dim_bins(r["m"], R, big=(
            geo.m_chunk(config, r["m"], r["k"]) if config.dataflow == "ws" else None))),
        {**({"below": f"no M between 1 and rows = {R}"} if R <= 2 else {}),
         **({"edge": "rows = 1: M = rows is bin 1"} if R == 1 else {}), **chunk_note})
    n_point = add(
        "n", f"N against the array's columns ({C}): 1, between, equal, above as a multiple or "
             f"ragged (an edge panel), {MAX_DIM} (MAX_DIM)",
        ("1", "below", "edge", "multiple", "ragged", "MAX_DIM"),
        gemm_only(lambda r: _dim_bins(r["n"], C)),
        {**({"below": f"no N between 1 and cols = {C}"} if C <= 2 else {}),
         **({"edge": "cols = 1: N = cols is bin 1"} if C == 1 else {})})
    k_edge = R
    k_point = add(
        "k", f"K against the array's rows ({R}; ws tiles K by rows) and the scratchpads' K "
             f"step ({geo.k_step}: a larger K is walked in steps, B not resident): 1, between, "
             f"equal, multiple, ragged, exactly one step, past one step, {MAX_DIM}",
        ("1", "below", "edge", "multiple", "ragged", "step", "past", "MAX_DIM"),
        gemm_only(lambda r: _dim_bins(r["k"], k_edge, big=geo.k_step)
                  + (["step"] if r["k"] == geo.k_step else [])),
        {**({"below": f"no K between 1 and rows = {R}"} if R <= 2 else {}),
         **({"edge": "rows = 1: K = rows is bin 1"} if R == 1 else {})})

    def small(point: Coverpoint) -> Coverpoint:
        keep = ("1", "below", "edge", "multiple", "ragged")
        return Coverpoint(point.name, point.doc, keep,
                          lambda r: [b for b in point.sample(r) if b in keep],
                          {b: why for b, why in point.excluded.items() if b in keep})

    points.append(_cross("m × n", "edge tiles against edge panels: every pair of M's and N's "
                                  "classes up to ragged", small(m_point), small(n_point)))

    # -- modes --
    def mode(r: Record) -> list[str]:
        c = _command(r)
        name = ("int8" if c["requant"] else "int32") + (" +C_in" if c["accumulate"] else "") \
            + (" +relu" if c["requant"] and c["relu"] else "")
        return [name]

    modes = ("int32", "int32 +C_in", "int8", "int8 +relu", "int8 +C_in", "int8 +C_in +relu")
    no_unit = {b: "no requantization unit (requant_unit = false)" for b in modes
               if b.startswith("int8") and not config.requant_unit}
    mode_point = add("mode", "MODE: accumulate (C_in), requant (int8 output), relu (with "
                             "requant only)", modes, gemm_only(mode), no_unit)
    k_classes = Coverpoint(
        "k", "", ("1", "below", "edge", "ragged", "step", "past"),
        gemm_only(lambda r: [b for b in _dim_bins(r["k"], k_edge, big=geo.k_step)
                             if b in ("1", "below", "edge", "ragged", "past")]
                  + (["step"] if r["k"] == geo.k_step else [])),
        k_point.excluded)
    out_point = Coverpoint("out", "", ("int32", "int8"),
                           gemm_only(lambda r: ["int8" if _command(r)["requant"] else "int32"]),
                           {"int8": no_unit["int8"]} if no_unit else {})
    points.append(_cross("k × output", "K's classes (the K step included) with each output "
                                       "width", k_classes, out_point))
    points.append(_cross("m × mode", "M's edges with each mode", Coverpoint(
        "m", "", ("1", "edge", "ragged"),
        gemm_only(lambda r: [b for b in _dim_bins(r["m"], R) if b in ("1", "edge", "ragged")]),
        {"edge": "rows = 1: M = rows is bin 1"} if R == 1 else {}), mode_point))

    # -- the requantizer's parameters, over their register fields' ranges --
    shift_field = register("RQ_SHIFT").fields[0]
    top_shift = (1 << shift_field.width) - 1
    quarter = (top_shift + 1) // 4
    shift_bins = ["0"]
    for lo in range(0, top_shift + 1, quarter):
        shift_bins.append(f"{max(lo, 1)}-{min(lo + quarter - 1, top_shift - 1)}")
    shift_bins.append(str(top_shift))

    def requant_only(fn: Callable[[dict], Iterable[str]]) -> Callable[[Record], Iterable[str]]:
        return lambda r: list(fn(_command(r))) if _gemm(r) and _command(r)["requant"] else []

    def shift_bin(c: dict) -> list[str]:
        s = c["rq_shift"]
        if s in (0, top_shift):
            return [str(s)]
        for b in shift_bins[1:-1]:
            lo, hi = (int(x) for x in b.split("-"))
            if lo <= s <= hi:
                return [b]
        return []

    unit_note = ({} if config.requant_unit else
                 "no requantization unit (requant_unit = false)")
    add("rq_shift", f"RQ_SHIFT over its field (0 to {top_shift}): the ends and each quarter",
        shift_bins, requant_only(shift_bin), dict.fromkeys(shift_bins, unit_note)
        if unit_note else {})
    zp_field = register("RQ_ZP").fields[0]
    zp_lo, zp_hi = -(1 << (zp_field.width - 1)), (1 << (zp_field.width - 1)) - 1
    zp_bins = (str(zp_lo), "negative", "0", "positive", str(zp_hi))

    def zp_bin(c: dict) -> list[str]:
        z = c["rq_zp"]
        return [str(z) if z in (zp_lo, 0, zp_hi) else "negative" if z < 0 else "positive"]

    add("rq_zp", f"RQ_ZP over its field ({zp_lo} to {zp_hi})", zp_bins, requant_only(zp_bin),
        dict.fromkeys(zp_bins, unit_note) if unit_note else {})
    mult_width = register("RQ_MULT").fields[0].width
    mult_bins = ("0", f"1 to 2^{mult_width - 1} - 1", f"2^{mult_width - 1} and above")

    def mult_bin(c: dict) -> list[str]:
        v = c["rq_mult"]
        return [mult_bins[0] if v == 0 else mult_bins[1] if v < 1 << (mult_width - 1)
                else mult_bins[2]]

    add("rq_mult", f"RQ_MULT (Q{mult_width}): zero, below a half, a half and above", mult_bins,
        requant_only(mult_bin), dict.fromkeys(mult_bins, unit_note) if unit_note else {})
    out_lo, out_hi = -(1 << (8 * ebytes["c_q"] - 1)), (1 << (8 * ebytes["c_q"] - 1)) - 1
    sat_bins = (f"saturates at {out_lo}", f"saturates at {out_hi}")

    def saturation(r: Record) -> list[str]:
        if not (_gemm(r) and _command(r)["requant"] and "c_range" in r):
            return []
        lo, hi = r["c_range"]
        return [b for b, hit in zip(sat_bins, (lo == out_lo, hi == out_hi), strict=True) if hit]

    add("rq_saturation", "requantized results that reach the int8 ends (observed in C)",
        sat_bins, saturation, dict.fromkeys(sat_bins, unit_note) if unit_note else {})

    # -- operand values --
    in_lo, in_hi = config.in_min, config.in_max
    value_bins = tuple(f"{x} holds {v}" for x in ("A", "B") for v in (in_lo, in_hi))

    def values(r: Record) -> list[str]:
        if not _gemm(r) or "a_range" not in r:
            return []
        out = []
        for x, key in (("A", "a_range"), ("B", "b_range")):
            lo, hi = r[key]
            out += [f"{x} holds {v}" for v, hit in ((in_lo, lo == in_lo), (in_hi, hi == in_hi))
                    if hit]
        return out

    add("operands", f"the operands' extremes ({in_lo}, {in_hi}: the products' extremes)",
        value_bins, values)

    # -- the memory's timing --
    bp_bins = ("none", "below 0.3", "0.3 and above")

    def bp(r: Record) -> list[str]:
        p = r.get("backpressure", 0.0)
        return [bp_bins[0] if p == 0 else bp_bins[1] if p < 0.3 else bp_bins[2]]

    bp_point = add("backpressure", "the probability that each memory channel pauses in a cycle",
                   bp_bins, gemm_only(bp))
    stall_counters = tuple(name for name in COUNTERS if name.startswith("STALL_"))
    stall_bins = tuple(f"{name} > 0" for name in stall_counters)
    # the compact engine's array never waits for the writer (register map: STALL_STORE)
    stall_excl = ({"STALL_STORE > 0": "the compact engine never counts STALL_STORE"}
                  if config.engine == "compact" and "STALL_STORE" in stall_counters else {})
    stall_point = add(
        "stalls", "the stall counters the hardware reported (observed back-pressure)",
        stall_bins, gemm_only(lambda r: [f"{n} > 0" for n in stall_counters
                                         if r.get("counters", {}).get(n.lower(), 0) > 0]),
        stall_excl)
    points.append(_cross("backpressure × stalls", "each stall counter counting under each "
                                                  "back-pressure setting", bp_point,
                         stall_point))
    lat_bins = ("read 0", "read > 0", "write 0", "write > 0")

    def latency(r: Record) -> list[str]:
        read, write = r.get("latency", (0, 0))
        return [f"read {'> 0' if read else '0'}", f"write {'> 0' if write else '0'}"]

    add("latency", "the memory's read latency (request to data) and write latency (last beat "
                   "to response), in cycles", lat_bins, gemm_only(latency))

    # -- the matrices in memory: rows against the bus, strides, alignment, 4 KiB pages --
    max_burst = AXI4_MAX_BURST * bus
    row_bins = tuple(f"{x}: {b}" for x in MATRICES for b in
                     ("below a beat", "one beat", "several beats", "several bursts"))

    def rows_of(c: dict) -> dict[str, tuple[int, int, int, int]]:
        """matrix → (address, stride, row bytes, rows) of the matrices the command used."""
        out_bytes = ebytes["c_q"] if c["requant"] else ebytes["c"]
        shapes = {"a": (c["a"], c["lda"], c["k"] * ebytes["a"], c["m"]),
                  "b": (c["b"], c["ldb"], c["n"] * ebytes["b"], c["k"]),
                  "c": (c["c"], c["ldc"], c["n"] * out_bytes, c["m"])}
        if c["accumulate"]:
            shapes["c_in"] = (c["c_in"], c["ldcin"], c["n"] * ebytes["c_in"], c["m"])
        return shapes

    def row_bin(r: Record) -> list[str]:
        if not _gemm(r):
            return []
        out = []
        for x, (_, _, nbytes, _) in rows_of(_command(r)).items():
            name = ("below a beat" if nbytes < bus else "one beat" if nbytes == bus else
                    "several beats" if nbytes <= max_burst else "several bursts")
            out.append(f"{x}: {name}")
        return out

    add("row bytes", f"a row's bytes against the AXI data width ({bus} bytes) and the longest "
                     f"burst ({AXI4_MAX_BURST} beats, {max_burst} bytes)", row_bins, row_bin,
        {f"{x}: below a beat": f"a row of {x} is at least {size} bytes, the bus's width"
         for x, size in (("c", c_step), ("c_in", ebytes["c_in"])) if size >= bus})
    stride_bins = tuple(f"{x}: {b}" for x in MATRICES for b in ("tight", "padded"))

    def stride(r: Record) -> list[str]:
        if not _gemm(r):
            return []
        return [f"{x}: {'tight' if ld == nbytes else 'padded'}"
                for x, (_, ld, nbytes, _) in rows_of(_command(r)).items()]

    add("stride", "row strides equal to the row (tight) or longer (padded)", stride_bins, stride)
    lanes = {"a": 1, "b": 1, "c": c_step, "c_in": ebytes["c_in"]}
    align_bins = tuple(f"{x} at +{off}" for x in MATRICES for off in range(0, bus, lanes[x]))

    def align(r: Record) -> list[str]:
        if not _gemm(r):
            return []
        lanes_hit = set()
        for x, (addr, ld, _, nrows) in rows_of(_command(r)).items():
            lanes_hit |= {f"{x} at +{(addr + row * ld) % bus}" for row in range(min(nrows, bus))}
        return sorted(lanes_hit)

    add("alignment", f"the byte lanes (address modulo the AXI data width, {bus} bytes) at which "
                     f"rows of each matrix start: any for A, B and int8 C, in steps of the "
                     f"element for int32 C and C_in",
        align_bins, align)
    page_bins = tuple(f"{x}: {b}" for x in MATRICES for b in ("a row crosses 4 KiB",
                                                             "a row ends at 4 KiB"))

    def page(r: Record) -> list[str]:
        if not _gemm(r):
            return []
        out = []
        for x, (addr, ld, nbytes, nrows) in rows_of(_command(r)).items():
            crosses = ends = False
            for row in range(nrows):
                start = addr + row * ld
                end = start + nbytes  # one past the row
                crosses |= start // AXI4_BOUNDARY != (end - 1) // AXI4_BOUNDARY \
                    and end % AXI4_BOUNDARY != 0
                ends |= end % AXI4_BOUNDARY == 0
                if crosses and ends:
                    break
            out += [f"{x}: a row crosses 4 KiB"] * crosses + [f"{x}: a row ends at 4 KiB"] * ends
        return out

    add("4 KiB", f"rows across an AXI {AXI4_BOUNDARY}-byte boundary (the DMA splits the burst) "
                 f"and rows ending exactly on one", page_bins, page)

    # -- errors --
    codes = tuple(code.name for code in ErrorCode)

    def error_code(r: Record) -> list[str]:
        if r.get("kind") in ("illegal", "bus_error") and r.get("passed"):
            return [r["got"]]
        return [ErrorCode.NONE.name] if _gemm(r) else []

    add("error", "STATUS.error of the command, as read back (every ErrorCode)", codes,
        error_code, {ErrorCode.NO_REQUANT.name: "the hardware has the requantization unit"}
        if config.requant_unit else {})
    # which register an illegal command broke, for each check (the registers by their fields)
    command_regs = [reg for reg in REGISTERS if reg.group == "command"]
    addr_regs = [reg.name for reg in command_regs if reg.fields[0].name == "addr"]
    stride_regs = [reg.name for reg in command_regs if reg.fields[0].name == "stride"]
    dim_regs = [reg.name for reg in command_regs if reg.name not in addr_regs + stride_regs]
    int32_regs = ["C_ADDR", "CIN_ADDR", "LDC", "LDCIN"]  # ErrorCode.MISALIGNED's doc
    checks = {ErrorCode.ZERO_DIM: dim_regs, ErrorCode.TOO_LARGE: dim_regs,
              ErrorCode.STRIDE: stride_regs, ErrorCode.MISALIGNED: int32_regs,
              ErrorCode.ADDR_RANGE: addr_regs, ErrorCode.NO_REQUANT: ["MODE"]}
    illegal_bins = tuple(f"{code.name} by {reg}" for code, regs in checks.items()
                         for reg in regs)

    def illegal(r: Record) -> list[str]:
        if r.get("kind") != "illegal" or not r.get("passed"):
            return []
        return [f"{r['got']} by {reg}" for reg in r.get("changed", ())
                if f"{r['got']} by {reg}" in illegal_bins]

    add("illegal", "each check of an illegal command, by the register that breaks it",
        illegal_bins, illegal,
        {b: "the hardware has the requantization unit" for b in illegal_bins
         if b.startswith(ErrorCode.NO_REQUANT.name) and config.requant_unit})
    bus_bins = tuple(f"SLVERR on {x}" for x in MATRICES)

    def bus_error(r: Record) -> list[str]:
        if r.get("kind") != "bus_error" or not r.get("passed") or not r.get("slverr"):
            return []
        return [f"SLVERR on {r['slverr']['matrix']}"]

    add("bus error", "an AXI error response observed on a read of A, B, C_in or a write of C",
        bus_bins, bus_error)

    # -- aborts --
    abort_bins = ("idle", "busy, bus quiet", "read request waiting", "read burst in flight",
                  "write request waiting", "write burst in flight", "write response pending",
                  "under back-pressure", "rst during a GEMM")

    def abort(r: Record) -> list[str]:
        if r.get("kind") == "reset" and r.get("passed"):
            return ["rst during a GEMM"]
        if r.get("kind") != "abort" or not r.get("passed") or "after" not in r:
            return []
        if r.get("idle"):
            return ["idle"]
        waiting, after = r["waiting"], r["after"]
        out = [b for b, hit in (
            ("read request waiting", waiting["ar"]), ("read burst in flight", after["r"]),
            ("write request waiting", waiting["aw"]), ("write burst in flight", after["w"]),
            ("write response pending", after["b"])) if hit]
        if not out:
            out.append("busy, bus quiet")
        if r.get("backpressure"):
            out.append("under back-pressure")
        return out

    add("abort", "CTRL.reset by what the memory port was doing at its pulse (observed: requests "
                 "valid, beats and responses that followed), and the rst pin during a GEMM",
        abort_bins, abort)
    return points


# -- what the bench wrote ------------------------------------------------------------------------

def _key(name: str) -> str:
    """A command register's name as the record keys it: ``A_ADDR`` → ``a``, ``CIN_ADDR`` →
    ``c_in``, ``LDA`` → ``lda``, ``M`` → ``m``."""
    key = name.lower()
    if key.endswith("_addr"):
        key = key.removesuffix("_addr").replace("cin", "c_in")
    return key


def command_of(writes: Mapping[str, int]) -> dict:
    """The command of a GEMM from the register writes the driver made for it (name → value, the
    last write of each), decoded with the register map: what a record's ``command`` holds."""
    command = {}
    for reg in REGISTERS:
        if reg.group not in ("command", "requant") or reg.name not in writes:
            continue
        (fld,) = reg.fields
        value = reg.decode(writes[reg.name])[fld.name]
        command[_key(reg.name) if reg.group == "command" else reg.name.lower()] = value
    mode = register("MODE").decode(writes.get("MODE", 0))
    command.update(accumulate=bool(mode["accumulate"]), requant=bool(mode["requant"]),
                   relu=bool(mode["relu"]))
    return command


# -- the database ---------------------------------------------------------------------------------

@dataclass
class Coverage:
    """Hit counts per bin, the excluded bins with their reasons, and the runs merged."""

    docs: dict[str, str]
    hits: dict[str, dict[str, int]]
    excluded: dict[str, dict[str, str]]
    runs: list[dict]

    def holes(self, point: str) -> list[str]:
        return [b for b, n in self.hits[point].items()
                if n == 0 and b not in self.excluded[point]]

    def counts(self, point: str) -> tuple[int, int]:
        """(bins hit, bins) of ``point``, excluded bins left out."""
        live = [b for b in self.hits[point] if b not in self.excluded[point]]
        return sum(self.hits[point][b] > 0 for b in live), len(live)

    @property
    def total(self) -> tuple[int, int]:
        pairs = [self.counts(p) for p in self.hits]
        return sum(h for h, _ in pairs), sum(t for _, t in pairs)

    @property
    def percent(self) -> float:
        hit, total = self.total
        return 100.0 * hit / total if total else 100.0

    def merge(self, other: Coverage) -> Coverage:
        mine = {p: list(b) for p, b in self.hits.items()}
        theirs = {p: list(b) for p, b in other.hits.items()}
        if mine != theirs:
            diff = sorted(set(mine) ^ set(theirs)) or \
                [p for p in mine if mine[p] != theirs.get(p)]
            raise CoverageError(f"the databases have different coverage models (coverpoints "
                                f"differ: {', '.join(diff[:4])}); merge runs of the same model")
        hits = {p: {b: n + other.hits[p][b] for b, n in bins.items()}
                for p, bins in self.hits.items()}
        excluded = {p: {b: why for b, why in self.excluded[p].items()
                        if b in other.excluded[p]} for p in self.hits}
        return Coverage(docs=dict(self.docs), hits=hits, excluded=excluded,
                        runs=self.runs + other.runs)

    def to_dict(self) -> dict:
        hit, total = self.total
        return {
            "format": FORMAT, "bins_hit": hit, "bins": total,
            "percent": round(self.percent, 2), "runs": self.runs,
            "points": {p: {"doc": self.docs[p], "hit": self.counts(p)[0],
                           "bins": self.counts(p)[1], "holes": self.holes(p),
                           "counts": self.hits[p], "excluded": self.excluded[p]}
                       for p in self.hits},
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> Coverage:
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            raise CoverageError(f"not a coverage database of format {FORMAT}")
        points = data["points"]
        return cls(docs={p: v["doc"] for p, v in points.items()},
                   hits={p: dict(v["counts"]) for p, v in points.items()},
                   excluded={p: dict(v["excluded"]) for p, v in points.items()},
                   runs=list(data["runs"]))

    def write(self, path: Path) -> None:
        # written whole or not at all (a merge must never read half a database)
        tmp = Path(path).with_name(f".{Path(path).name}.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        tmp.replace(path)

    @classmethod
    def read(cls, path: Path) -> Coverage:
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            reason = exc if isinstance(exc, CoverageError) else f"{type(exc).__name__}: {exc}"
            raise CoverageError(f"{path}: {reason}") from None


def format_table(coverage: Coverage, *, width: int = 100) -> list[tuple[str, str, str, str]]:
    """Rows of the report: (coverpoint, hit/bins, percent, holes)."""
    rows = []
    for p in coverage.hits:
        hit, total = coverage.counts(p)
        holes = ", ".join(coverage.holes(p))
        rows.append((p, f"{hit}/{total}", f"{100 * hit / total:.0f}%" if total else "-",
                     holes if len(holes) <= width else holes[:width - 1] + "…"))
    return rows
