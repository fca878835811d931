"""GEMM test cases for the accelerator's testbench: one seed determines everything.

``accel sim`` runs one case, ``accel verify`` many; a failing case of the regression prints the
``accel sim`` command line that replays it, because the data, strides, addresses and bus
back-pressure all follow from the case's fields.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np

from ..config import FIELDS, AcceleratorConfig
from ..model import reference
from ..model.geometry import Geometry
from ..model.perf import Layout

__all__ = ["BENCH_MEMORY", "ILLEGAL_COMMANDS", "VALUE_KINDS", "GemmCase", "GemmData", "make_data",
           "memory_bound", "random_case"]

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
    # every other register each check reads (C_in at 0x9000 with a stride of 16 is legal)
    ("m beyond MAX_DIM", {"m": 70000}, "TOO_LARGE"),
    ("n beyond MAX_DIM", {"n": 70000, "ldb": 70000, "ldc": 280000}, "TOO_LARGE"),
    ("ldb smaller than the row", {"ldb": 2}, "STRIDE"),
    ("ldcin smaller than the row", {"c_in": 0x9000, "ldcin": 8}, "STRIDE"),
    ("int32 C_in misaligned", {"c_in": 0x9002, "ldcin": 16}, "MISALIGNED"),
    ("ldc not a multiple of 4", {"ldc": 18}, "MISALIGNED"),
    ("ldcin not a multiple of 4", {"c_in": 0x9000, "ldcin": 18}, "MISALIGNED"),
    ("B past the end of the address space", {"b": 0xFFFFFFF0}, "ADDR_RANGE"),
    ("C past the end of the address space", {"c": 0xFFFFFFF0}, "ADDR_RANGE"),
    ("C_in past the end of the address space", {"c_in": 0xFFFFFFF0, "ldcin": 16}, "ADDR_RANGE"),
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
    from .coverage import directed_cases
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
