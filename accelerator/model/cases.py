"""GEMM test cases for the accelerator's testbench: one seed determines everything.

``accel sim`` runs one case, ``accel verify`` many; a failing case of the regression prints the
``accel sim`` command line that replays it, because the data, strides, addresses and bus
back-pressure all follow from the case's fields.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from itertools import product
from typing import Any

import numpy as np

from ..config import FIELDS, AcceleratorConfig
from . import reference
from .geometry import AXI4_BOUNDARY, AXI4_MAX_BURST, Geometry
from .perf import Layout
from .regmap import MAX_DIM, element_bytes, register

__all__ = [
    "BENCH_MEMORY",
    "ILLEGAL_COMMANDS",
    "VALUE_KINDS",
    "Directed",
    "GemmCase",
    "GemmData",
    "adjust",
    "directed_cases",
    "make_data",
    "max_dim_cases",
    "memory_bound",
    "random_case",
]

#: Bytes of memory each bench gives a case (the cocotb bench's AxiRam is a bytearray; the C++
#: harness's memory is the whole 32-bit address space, allocated on touch).
BENCH_MEMORY = {"cocotb": 1 << 22, "harness": 1 << 32}

#: Values the operands are drawn from.
VALUE_KINDS = ("random", "extreme", "max")


@dataclass(frozen=True)
class GemmCase:
    """One GEMM: its shape, mode, operand values and bus back-pressure, all from ``seed``."""

    m: int
    k: int
    n: int
    seed: int = 1
    accumulate: bool = False
    requant: bool = False
    values: str = "random"
    backpressure: float = 0.0    # probability that an AXI channel pauses in a cycle

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> GemmCase:
        return cls(**json.loads(text))

    def command_line(self, config: AcceleratorConfig) -> str:
        """The ``accel sim`` command that replays this case."""
        opts = []
        for f in FIELDS:
            value = getattr(config, f.name)
            if value == f.default:
                continue
            name = f.name.replace("_", "-")
            if f.kind is bool:
                opts.append(f"--{name}" if value else f"--no-{name}")
            else:
                opts.append(f"--{name} {value}")
        line = ["accel sim", *opts, f"--m {self.m} --k {self.k} --n {self.n} --seed {self.seed}"]
        if self.accumulate:
            line.append("--accumulate")
        if self.requant:
            line.append("--requant")
        if self.values != "random":
            line.append(f"--values {self.values}")
        if self.backpressure:
            line.append(f"--backpressure {self.backpressure}")
        return " ".join(line)


@dataclass
class GemmData:
    """The matrices of a case and where they live in memory (byte addresses and strides)."""

    a: np.ndarray
    b: np.ndarray
    c_in: np.ndarray | None
    requant: reference.RequantParams | None
    expected: np.ndarray
    addr: dict[str, int] = field(default_factory=dict)
    ld: dict[str, int] = field(default_factory=dict)
    memory_size: int = 0


def _draw(rng: np.random.Generator, shape, kind: str, lo: int, hi: int) -> np.ndarray:
    if kind == "max":
        return np.full(shape, lo, dtype=np.int64)
    if kind == "extreme":
        return rng.choice(np.array([lo, hi, 0, -1, 1]), size=shape)
    return rng.integers(lo, hi + 1, size=shape, dtype=np.int64)


def make_data(config: AcceleratorConfig, case: GemmCase) -> GemmData:
    """The operands, expected result and memory layout of ``case``.

    Leading dimensions are wider than the rows by a seeded amount (0 to 17 bytes), A and B start
    at any byte, and C and C_in at multiples of 4 (int32), so the DMA's realignment and 2-D
    strides are exercised by every case.
    """
    rng = np.random.default_rng(case.seed)
    lo, hi = config.in_min, config.in_max
    a = _draw(rng, (case.m, case.k), case.values, lo, hi)
    b = _draw(rng, (case.k, case.n), case.values, lo, hi)
    c_bits = min(config.acc_width, 32)  # C_in must fit the accumulator (and its int32)
    c_in = (rng.integers(-2**(c_bits - 1), 2**(c_bits - 1), size=(case.m, case.n),
                         dtype=np.int64)
            if case.accumulate else None)
    params = None
    if case.requant:
        scale = float(rng.uniform(1e-5, 2e-3))
        params = reference.RequantParams.from_scale(
            scale, zero_point=int(rng.integers(-20, 21)), relu=bool(rng.integers(0, 2)))
    acc = reference.gemm(a, b, c_in, acc_width=config.acc_width, in_width=config.in_width)
    expected = params.apply(acc) if params else acc
    out_bytes = 1 if params else 4
    ld = {
        "a": case.k + int(rng.integers(0, 18)),
        "b": case.n + int(rng.integers(0, 18)),
        "c": (case.n * out_bytes + int(rng.integers(0, 18)) + 3) // 4 * 4,
        "c_in": 4 * case.n + 4 * int(rng.integers(0, 5)),
    }
    sizes = {"a": case.m * ld["a"], "b": case.k * ld["b"], "c": case.m * ld["c"],
             "c_in": case.m * ld["c_in"] if case.accumulate else 0}
    addr, cursor = {}, 0x100
    for name in ("a", "b", "c", "c_in"):
        start = cursor + (int(rng.integers(0, 64)) if name in ("a", "b") else 0)
        addr[name] = start
        cursor = (start + sizes[name] + 0xFF) // 0x100 * 0x100 + 0x100
    return GemmData(a=a, b=b, c_in=c_in, requant=params, expected=expected, addr=addr, ld=ld,
                    memory_size=cursor)


def result_record(config: AcceleratorConfig, case: GemmCase, data: GemmData, got: np.ndarray,
                  counters: Mapping[str, int], wall_cycles: int) -> dict[str, Any]:
    """The record every bench returns for a GEMM it ran: C's digest, the first mismatches
    against the reference, the case, and the cycles and counters the hardware reported."""
    mismatches = np.argwhere(got != data.expected)
    first = [{"row": int(r), "col": int(c), "got": int(got[r, c]),
              "expected": int(data.expected[r, c])} for r, c in mismatches[:5]]
    macs = case.m * case.k * case.n
    cycles = counters["cycles"]
    return {
        "c_sha256": hashlib.sha256(got.tobytes()).hexdigest(),
        "passed": len(mismatches) == 0, "mismatches": len(mismatches), "first": first,
        "m": case.m, "k": case.k, "n": case.n, "seed": case.seed, "case": case.to_json(),
        "cycles": cycles, "wall_cycles": wall_cycles, "macs": macs,
        "utilization": macs / (cycles * config.pes) if cycles else 0.0,
        "counters": counters,
    }


def memory_bound(case: GemmCase) -> int:
    """An upper bound of ``make_data(config, case).memory_size`` that draws no data (a case too
    large for a bench is refused before its matrices are made): the widest leading dimensions
    and start offsets :func:`make_data` can draw."""
    out_bytes = 1 if case.requant else 4
    ld = {"a": case.k + 17, "b": case.n + 17, "c": (case.n * out_bytes + 17 + 3) // 4 * 4,
          "c_in": 4 * case.n + 16}
    sizes = {"a": case.m * ld["a"], "b": case.k * ld["b"], "c": case.m * ld["c"],
             "c_in": case.m * ld["c_in"] if case.accumulate else 0}
    cursor = 0x100
    for name in ("a", "b", "c", "c_in"):
        start = cursor + (63 if name in ("a", "b") else 0)
        cursor = (start + sizes[name] + 0xFF) // 0x100 * 0x100 + 0x100
    return cursor


def random_case(config: AcceleratorConfig, rng: np.random.Generator, *,
                max_dim: int = 40) -> GemmCase:
    """A constrained-random case: sizes favour 1, the array's edges and non-multiples, and a
    few have a K larger than the scratchpads hold."""
    R, C = config.rows, config.cols

    def dim(edge: int) -> int:
        pick = rng.random()
        if pick < 0.15:
            return 1
        if pick < 0.35:
            return int(max(1, edge * rng.integers(1, 4) + rng.integers(-1, 2)))
        return int(rng.integers(1, max_dim + 1))

    k = dim(R)
    if rng.random() < 0.04:
        # now and then a K past the scratchpads, which the engine walks in steps
        k = int(Geometry.of(config).k_step + rng.integers(1, 100))
    return GemmCase(
        m=dim(R), k=k, n=dim(C), seed=int(rng.integers(1, 2**31)),
        accumulate=bool(rng.random() < 0.3),
        requant=bool(config.requant_unit and rng.random() < 0.3),
        values=str(rng.choice(VALUE_KINDS, p=[0.7, 0.2, 0.1])),
        backpressure=float(rng.choice([0.0, 0.0, 0.2, 0.5])),
    )


#: CTRL.reset in the regression: a 64x64x64 GEMM aborted (cycles after it starts, bus
#: back-pressure) at each of these points, then ``RANDOM_ABORTS`` random GEMMs at random points;
#: each abort is followed by a GEMM that must be correct.
DIRECTED_ABORTS: tuple[tuple[int, float], ...] = ((0, 0.0), (50, 0.0), (700, 0.5), (3000, 0.3))
RANDOM_ABORTS = 3
#: CTRL.reset of a 64x64x64 GEMM as its first write burst is requested, with the AW channel
#: pausing with each of these probabilities (so the abort finds writes in flight).
ABORTS_ON_WRITE: tuple[float, ...] = (0.0, 0.9)

#: The regression's commands answered with AXI SLVERR: one whose first row of A, of B, of C_in
#: (reads) or of C (writes) is in the error region; each must end with ErrorCode.BUS_ERROR.
BUS_ERROR_AREAS: tuple[str, ...] = ("a", "b", "c_in", "c")


#: Illegal commands for the regression: (name, changes to a good command, expected error code
#: name). Addresses and strides are bytes; the base command is a small good GEMM.
ILLEGAL_COMMANDS: tuple[tuple[str, dict, str], ...] = (
    ("zero m", {"m": 0}, "ZERO_DIM"),
    ("zero k", {"k": 0}, "ZERO_DIM"),
    ("zero n", {"n": 0}, "ZERO_DIM"),
    ("lda smaller than the row", {"lda": 2}, "STRIDE"),
    ("ldc smaller than the row", {"ldc": 4}, "STRIDE"),
    ("int32 C misaligned", {"c": 0x8002}, "MISALIGNED"),
    ("A past the end of the address space", {"a": 0xFFFFFFFF}, "ADDR_RANGE"),
    ("k beyond the scratchpads", {"k": 70000, "lda": 70000}, "TOO_LARGE"),
    # each area's range check one byte (C, C_in: one word) past 2^32, and A's by its stride
    ("B one byte past the end", {"b": 2**32 - 35, "ldb": 8}, "ADDR_RANGE"),
    ("C one word past the end", {"c": 2**32 - 44, "ldc": 16}, "ADDR_RANGE"),
    ("C of wide rows one word past the end", {"c": 2**32 - 308, "n": 26, "ldb": 26,
                                              "ldc": 104}, "ADDR_RANGE"),
    ("C_in one word past the end", {"c_in": 2**32 - 44, "ldcin": 16}, "ADDR_RANGE"),
    ("A past the end by its stride", {"lda": 2**31}, "ADDR_RANGE"),
    ("ldb smaller than the row", {"ldb": 3}, "STRIDE"),
    ("ldcin smaller than the row", {"c_in": 0x9000, "ldcin": 12}, "STRIDE"),
    ("int32 C_in misaligned", {"c_in": 0x9002, "ldcin": 16}, "MISALIGNED"),
    ("ldc not a multiple of 4", {"ldc": 18}, "MISALIGNED"),
    ("m past the largest", {"m": 65536}, "TOO_LARGE"),
    ("n past the largest", {"n": 65536, "ldb": 65536, "ldc": 262144}, "TOO_LARGE"),
    ("ldcin not a multiple of 4", {"c_in": 0x9000, "ldcin": 18}, "MISALIGNED"),
)


def verify_total(count: int, max_dims: bool = False) -> int:
    """The records the regression (``accel_tb.verify_regression``) reports for ``count`` random
    GEMMs: those, every illegal command, the bus errors, the aborts and a reset mid-GEMM."""
    return (count + _directed() + MAX_DIM_GEMMS * max_dims + len(ILLEGAL_COMMANDS)
            + len(BUS_ERROR_AREAS) + len(DIRECTED_ABORTS) + RANDOM_ABORTS + len(ABORTS_ON_WRITE)
            + IDLE_ABORTS + 1)


#: CTRL.reset with no command running, in the regression.
IDLE_ABORTS = 1

#: GEMMs of ``accel verify --max-dims``: M, K and N at MAX_DIM in turn.
MAX_DIM_GEMMS = 3


def _directed() -> int:
    """The directed GEMMs of the regression (as many for every config)."""
    return len(directed_cases(AcceleratorConfig(), 0))


def verify_summary(count: int, max_dims: bool = False) -> str:
    """What the regression runs, in words."""
    return (f"{count} random GEMMs, {_directed() + MAX_DIM_GEMMS * max_dims} directed GEMMs, "
            f"{len(ILLEGAL_COMMANDS)} illegal commands, {len(BUS_ERROR_AREAS)} bus errors, "
            f"{len(DIRECTED_ABORTS) + RANDOM_ABORTS + len(ABORTS_ON_WRITE) + IDLE_ABORTS} "
            f"aborts, a reset mid-GEMM")


def bench_layout(config: AcceleratorConfig, case: GemmCase) -> Layout:
    """Where the Verilator bench puts the case's matrices (:func:`make_data`: the same seed, the
    same place), for an estimate exact to the DMA's per-row alignment costs."""
    data = make_data(config, case)
    return Layout(a=data.addr["a"], b=data.addr["b"], c=data.addr["c"], c_in=data.addr["c_in"],
                  lda=data.ld["a"], ldb=data.ld["b"], ldc=data.ld["c"], ldcin=data.ld["c_in"])


# -- directed cases: what closes the bins that random cases rarely reach -------------------------

@dataclass(frozen=True)
class Directed:
    """A directed GEMM: a :class:`~accelerator.model.cases.GemmCase` (shape, mode, values,
    back-pressure) and what the random layout does not choose: requantization parameters
    ``(multiplier, shift, zero point, relu)``, addresses and strides per matrix, and the
    memory's latency ``(read, write)`` in cycles."""

    case: GemmCase
    requant: tuple[int, int, int, bool] | None = None
    addr: Mapping[str, int] = field(default_factory=dict)
    ld: Mapping[str, int] = field(default_factory=dict)
    latency: tuple[int, int] = (0, 0)

    def to_json(self) -> dict:
        return {"case": json.loads(self.case.to_json()), "requant": self.requant,
                "addr": dict(self.addr), "ld": dict(self.ld), "latency": list(self.latency)}

    @classmethod
    def from_json(cls, data: Mapping) -> Directed:
        return cls(GemmCase(**data["case"]),
                   tuple(data["requant"]) if data["requant"] else None,
                   dict(data["addr"]), dict(data["ld"]), tuple(data["latency"]))


def adjust(config: AcceleratorConfig, directed: Directed, data: Any) -> Any:
    """``data`` (:func:`~accelerator.model.cases.make_data` of the directed case) with its
    requantization, addresses and strides replaced by the directed ones, the expected result
    recomputed."""
    if directed.requant is not None:
        multiplier, shift, zero_point, relu = directed.requant
        data.requant = reference.RequantParams(multiplier, shift, zero_point, relu)
        acc = reference.gemm(data.a, data.b, data.c_in, acc_width=config.acc_width,
                             in_width=config.in_width)
        data.expected = data.requant.apply(acc)
    data.addr.update(directed.addr)
    data.ld.update(directed.ld)
    return data


#: Where directed placements put each matrix (1 MiB apart, past what random cases use).
_REGION = {"a": 0x10_0000, "b": 0x18_0000, "c": 0x20_0000, "c_in": 0x28_0000}


def directed_cases(config: AcceleratorConfig, seed: int) -> list[Directed]:
    """The directed GEMMs of the regression, from the same geometry as the bins: every pair of
    M and N classes, M's edges in every mode, K's classes (the scratchpads' K step too) in both
    output widths, the requantizer's fields at their ends, every byte lane of every matrix, rows
    ending on and crossing 4 KiB, tight strides, rows longer than a burst, memory latency."""
    R, C = config.rows, config.cols
    geo = Geometry.of(config)
    bus = config.axi_bytes
    unit = config.requant_unit
    ebytes = element_bytes(config)
    out: list[Directed] = []

    def case(m: int, k: int, n: int, *, accumulate: bool = False, requant: bool = False,
             values: str = "random", backpressure: float = 0.0) -> Any:
        return GemmCase(m=m, k=k, n=n, seed=seed + len(out), accumulate=accumulate,
                        requant=requant and unit, values=values, backpressure=backpressure)

    def classes(edge: int) -> list[int]:
        return [1, max(2, edge - 1), edge, 2 * edge, 2 * edge + 1]

    modes = [(False, False, False), (True, False, False), (False, True, False),
             (False, True, True), (True, True, False), (True, True, True)]
    relu_params = (1 << 30, 6, 3, True)
    for i, (m, n) in enumerate(product(classes(R), classes(C))):
        acc, rq, relu = modes[i % len(modes)]
        out.append(Directed(case(m, 3 + i % (2 * R), n, accumulate=acc, requant=rq),
                            requant=relu_params if rq and relu and unit else None))
    for m in (1, R, 2 * R + 1):
        for acc, rq, relu in modes:  # ReLU as the mode says (make_data draws it at random)
            out.append(Directed(case(m, R + 1, C + 1, accumulate=acc, requant=rq),
                                requant=(*relu_params[:3], relu) if rq and unit else None))
    for k in (1, max(2, R - 1), R, 2 * R + 1, geo.k_step, geo.k_step + R + 1):
        for rq in (False, True):
            out.append(Directed(case(2, k, C + 1, requant=rq)))
    # one more row of A than a chunk holds at a full K step (ws: two chunks; os: two blocks)
    out.append(Directed(case(geo.m_chunk(config, MAX_DIM, geo.k_step) + 1, geo.k_step, 2)))
    # the requantizer's fields: (multiplier, shift, zero point) at and between their ends
    top = (1 << register("RQ_MULT").fields[0].width) - 1
    zp = register("RQ_ZP").fields[0]
    lo, hi = -(1 << (zp.width - 1)), (1 << (zp.width - 1)) - 1
    smax = (1 << register("RQ_SHIFT").fields[0].width) - 1
    for mult, shift, zero in ((top, 0, lo), (1 << 28, 4, -5), (0, 12, 0),
                              ((1 << 30) + 12345, 20, 7), (top, smax - 3, hi), (top, smax, 0)):
        out.append(Directed(case(R + 1, 2 * R, C + 2, requant=True, values="extreme"),
                            requant=(mult, shift, zero, False) if unit else None))
    # rows starting at every byte lane: odd strides (int8), strides of an odd number of
    # int32 (C, C_in), tight (a stride equal to the row), over more rows than the bus has lanes
    m, k, n = bus + 1, bus + 1, C + 1 + C % 2
    out.append(Directed(case(m, k, n, requant=True), addr={x: _REGION[x] for x in "abc"},
                        ld={"a": k, "b": n, "c": n if unit else 4 * n}))
    out.append(Directed(case(m, k, n, accumulate=True), addr=dict(_REGION),
                        ld={"a": k, "b": n, "c": 4 * n, "c_in": 4 * n}))
    # row 0 of every matrix ending exactly on a 4 KiB boundary, then crossing one
    for how in ("ends", "crosses"):
        m, k, n = R + 1, 2 * bus + 3, C + 5
        rows = {"a": k, "b": n, "c": 4 * n, "c_in": 4 * n}
        addr = {x: _REGION[x] + AXI4_BOUNDARY - (rows[x] if how == "ends"
                                                   else rows[x] // 2 // 4 * 4)
                for x in _REGION}
        out.append(Directed(case(m, k, n, accumulate=True), addr=addr,
                            ld={"a": k, "b": n, "c": 4 * n, "c_in": 4 * n}))
    # rows of one bus beat: A and B; C and C_in; rows of B, int8 C, C_in of several beats
    out.append(Directed(case(R + 1, bus, bus)))
    out.append(Directed(case(R + 1, 3, bus // ebytes["c"], accumulate=True)))
    out.append(Directed(case(2, 3, 2 * bus + 1, accumulate=True, requant=True)))
    # rows longer than one burst: A (K), B and C (N)
    burst = AXI4_MAX_BURST * bus
    out.append(Directed(case(2, burst + 1, 2)))
    out.append(Directed(case(1, 2, burst + 1, accumulate=True)))
    # results that wait to be written (STALL_STORE) under back-pressure: long rows of C
    out.append(Directed(case(1, 2, burst + 1, backpressure=0.2)))
    out.append(Directed(case(1, 3, burst + 1, backpressure=0.3)))
    # the memory's latency, with and without back-pressure
    out.append(Directed(case(R + 1, 9, C + 1), latency=(5, 3)))
    out.append(Directed(case(2 * R, 17, 2 * C + 1, requant=True, backpressure=0.5),
                        latency=(2, 7)))
    return out


def max_dim_cases(config: AcceleratorConfig, seed: int) -> list[Directed]:
    """GEMMs with M, K and N at ``MAX_DIM`` in turn, the others 1 (``accel verify --max-dims``:
    some 400,000 cycles on the default config, too many for the default regression)."""
    return [Directed(GemmCase(m=m, k=k, n=n, seed=seed + i))
            for i, (m, k, n) in enumerate(((MAX_DIM, 1, 1), (1, MAX_DIM, 1), (1, 1, MAX_DIM)))]
