"""The requantizer's partial products add up to the product: ``Σ part << shift = acc·multiplier``.

The ``requant-product`` set proves that the product register S3 holds
:func:`~.requant.summed_partial_products` of the row's operands, and ``requant`` that the
output is the reference formula of what S3 holds; this set closes the chain: for every
accumulator and multiplier, that sum, as the S3 register keeps it, is ``acc·multiplier``.

Handed to a bit-blasting solver whole, the identity is a multiplier equivalence (a 32×31
product against four partial products added), which none of the PyPI solvers finished
(docs/verification.md has the times). It is proved here in three parts that each is easy, on
the Amaranth expressions the hardware is built from (:func:`~accelerator.hw.requant.
partial_products`, the operand shapes and the S3 register's shape read from the elaborated
:class:`~accelerator.hw.requant.Requantizer`):

1. **No wrap anywhere** (interval arithmetic, in Python): each operator node's value range,
   computed from its operands' ranges, lies within the node's Amaranth shape, and both sides'
   ranges lie within the S3 register's. An Amaranth operator's value is its exact integer
   result wrapped into its shape, and a value already in range wraps to itself, so every node,
   and the register, holds the exact integer: the bit-vector identity is an integer one.
2. **The slices recombine** (Z3, linear integer arithmetic): each operand cut into slices (the
   low ones unsigned, the top one reinterpreted with the operand's sign) equals
   ``Σ slice·2^start``. Each slice is defined by the bits it takes, ``bits = q·2^stop +
   slice·2^start + r``, with a signed value's bits its two's complement.
3. **The ring identity** (Z3, over all integers, no ranges): with the operands replaced by their
   recombinations, ``Σ part·2^shift`` and ``acc·multiplier`` are the same polynomial in the
   slices.

A failure of part 3 is checked against the real ranges (the slices as the operands define
them), and the counterexample's operands are reported.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import z3
from amaranth.hdl import Shape, Signal, Value, _ast

from ...config import AcceleratorConfig
from ...hw.requant import PIECE_WIDTH, Requantizer
from .requant import summed_partial_products
from .runner import FormalResult

__all__ = ["IntegerModel", "check_identity", "requant_identity"]


def _range(shape: Shape) -> tuple[int, int]:
    width = shape.width
    if shape.signed:
        return -(1 << (width - 1)), (1 << (width - 1)) - 1
    return 0, (1 << width) - 1


@dataclass
class _Slice:
    """An operand's bits ``start:stop``, as an integer ``term`` (signed: reinterpreted)."""

    signal: Signal
    start: int
    stop: int
    signed: bool
    term: z3.ArithRef


@dataclass
class IntegerModel:
    """Amaranth expressions as Z3 integer terms equal to their values, with the facts that
    define the slices and the obligations that no operator wraps (see the module docstring)."""

    facts: list = field(default_factory=list)
    wraps: list[str] = field(default_factory=list)   # operator nodes whose range escapes
    signals: dict[int, tuple[Signal, z3.ArithRef]] = field(default_factory=dict)
    slices: dict[tuple[int, int, int, bool], _Slice] = field(default_factory=dict)

    def _fresh(self, name: str, low: int, high: int) -> z3.ArithRef:
        var = z3.Int(f"{name}_{len(self.facts)}")
        self.facts += [var >= low, var <= high]
        return var

    def signal(self, sig: Signal) -> z3.ArithRef:
        if id(sig) not in self.signals:
            self.signals[id(sig)] = (sig, self._fresh(sig.name, *_range(sig.shape())))
        return self.signals[id(sig)][1]

    def _slice(self, node: _ast.Slice, signed: bool) -> tuple[z3.ArithRef, tuple[int, int]]:
        if not isinstance(node.value, _ast.Signal):
            raise NotImplementedError(f"a slice of {node.value!r} (only of a signal)")
        sig, start, stop = node.value, node.start, node.stop
        key = (id(sig), start, stop, signed)
        width = stop - start
        bounds = _range(Shape(width, signed))
        if key not in self.slices:
            value = self.signal(sig)
            total = sig.shape().width
            bits = value + (1 << total) * z3.If(value < 0, 1, 0) if sig.shape().signed else value
            high = self._fresh("q", 0, (1 << (total - stop)) - 1)
            piece = self._fresh("slice", 0, (1 << width) - 1)
            low = self._fresh("r", 0, (1 << start) - 1)
            self.facts.append(bits == high * (1 << stop) + piece * (1 << start) + low)
            term = z3.If(piece >= 1 << (width - 1), piece - (1 << width), piece) if signed \
                else piece
            self.slices[key] = _Slice(sig, start, stop, signed, term)
        return self.slices[key].term, bounds

    def term(self, value: Value) -> tuple[z3.ArithRef, tuple[int, int]]:
        """The integer term of ``value`` and its range; records a wrap obligation per node."""
        if isinstance(value, _ast.Const):
            return z3.IntVal(value.value), (value.value, value.value)
        if isinstance(value, _ast.Signal):
            return self.signal(value), _range(value.shape())
        if isinstance(value, _ast.Slice):
            return self._slice(value, False)
        if not isinstance(value, _ast.Operator):
            raise NotImplementedError(f"{type(value).__name__} {value!r}")
        op, operands = value.operator, value.operands
        if op in ("s", "u"):
            (inner,) = operands
            if isinstance(inner, _ast.Slice):
                return self._slice(inner, op == "s")
            if inner.shape().signed != (op == "s"):
                raise NotImplementedError(f"{op}() of a {inner.shape()} that is not a slice")
            return self.term(inner)
        if op == "<<" and isinstance(operands[1], _ast.Const):
            x, (low, high) = self.term(operands[0])
            k = 1 << operands[1].value
            result, bounds = x * k, (low * k, high * k)
        elif op in ("+", "-", "*") and len(operands) == 2:
            (x, (a, b)), (y, (c, d)) = self.term(operands[0]), self.term(operands[1])
            if op == "+":
                result, bounds = x + y, (a + c, b + d)
            elif op == "-":
                result, bounds = x - y, (a - d, b - c)
            else:
                corners = (a * c, a * d, b * c, b * d)
                result, bounds = x * y, (min(corners), max(corners))
        else:
            raise NotImplementedError(f"operator {op!r}")
        low, high = _range(value.shape())
        if not low <= bounds[0] <= bounds[1] <= high:
            self.wraps.append(f"{value!r}: range {bounds} outside {value.shape()}")
        return result, bounds

    def recombination(self, sig: Signal) -> z3.ArithRef:
        """``sig`` as ``Σ slice·2^start`` over the slices taken of it, which must tile its bits
        (the top one with the signal's sign)."""
        pieces = sorted((s for s in self.slices.values() if s.signal is sig),
                        key=lambda s: s.start)
        width, signed = sig.shape().width, sig.shape().signed
        tiling = []
        at = 0
        while at < width:
            here = [s for s in pieces if s.start == at
                    and s.signed == (signed and s.stop == width)]
            if not here:
                raise NotImplementedError(f"the slices of {sig.name} do not tile it at bit {at}")
            tiling.append(here[0])
            at = here[0].stop
        return sum(s.term * (1 << s.start) for s in tiling)


@dataclass
class IdentityOutcome:
    result: str                     # pass, fail, unknown
    steps: list[str]                # what was proved, with its CPU seconds
    counterexample: dict[str, int] | None = None


def check_identity(lhs: Value, rhs: Value, register: Shape, *,
                   timeout_ms: int = 60_000) -> IdentityOutcome:
    """Prove ``lhs == rhs`` (their values kept in a register of shape ``register``) for every
    value of their signals, by the three parts of the module docstring."""
    model = IntegerModel()
    left, left_bounds = model.term(lhs)
    right, right_bounds = model.term(rhs)
    steps = []
    low, high = _range(register)
    for side, bounds in (("sum", left_bounds), ("product", right_bounds)):
        if not low <= bounds[0] <= bounds[1] <= high:
            model.wraps.append(f"the {side}'s range {bounds} outside the register's {register}")
    if model.wraps:
        return IdentityOutcome("unknown", ["wraps: " + "; ".join(model.wraps)])
    steps.append(f"1. no wrap: every node's range within its shape, both sides within "
                 f"{register} (sum {left_bounds}, product {right_bounds})")

    def solve(query, name: str):
        solver = z3.Solver()
        solver.set("timeout", timeout_ms)
        solver.add(*query)
        begin = time.process_time()
        answer = solver.check()
        steps.append(f"{name}: {answer} in {time.process_time() - begin:.3f} s CPU")
        return answer, solver

    # Part 2: each signal of the product equals the recombination of its slices.
    substitution = []
    for sig, var in model.signals.values():
        combined = model.recombination(sig)
        answer, _ = solve([*model.facts, var != combined], f"2. {sig.name} = Σ its slices·2^start")
        if answer != z3.unsat:
            return IdentityOutcome("unknown", steps)
        substitution.append((var, combined))
    # Part 3: the ring identity, over all integers.
    answer, _ = solve([z3.substitute(left, *substitution)
                       != z3.substitute(right, *substitution)],
                      "3. Σ part·2^shift = product, as polynomials in the slices")
    if answer == z3.unsat:
        return IdentityOutcome("pass", steps)
    # A polynomial counterexample may lie outside the slices' ranges: look for a real one.
    answer, solver = solve([*model.facts, left != right], "3'. a counterexample in range")
    if answer == z3.sat:
        found = solver.model()
        values = {sig.name: found.eval(var).as_long() for sig, var in model.signals.values()}
        return IdentityOutcome("fail", steps, values)
    return IdentityOutcome("unknown", steps)


def requant_identity(name: str, workdir: Path, *, broken: bool = False,
                     timeout: float | None = None) -> FormalResult:
    """The ``requant-identity`` set: :func:`check_identity` of the hardware's sum of partial
    products against ``acc·multiplier``, with the requantizer's own operand and S3 shapes.
    ``broken``: the sum with its second partial product one bit too low."""
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "identity.log"
    dut = Requantizer(AcceleratorConfig(rows=1, cols=1))
    dut._MustUse__silence = True
    module = dut.elaborate(None)
    module._MustUse__silence = True  # elaborated only to read the S3 register's shape
    (register,) = [sig.shape() for sig in module._driving if sig.name == "s3_p_0"]
    acc = Signal(dut.i.payload.c[0].shape(), name="acc")
    multiplier = Signal(dut.multiplier.shape(), name="multiplier")
    lhs = summed_partial_products(acc, multiplier, PIECE_WIDTH, misplaced=broken)
    begin = time.monotonic()
    outcome = check_identity(lhs, acc * multiplier, register,
                             timeout_ms=int(1000 * timeout) if timeout else 600_000)
    seconds = round(time.monotonic() - begin, 2)
    failed = []
    if outcome.counterexample is not None:
        failed.append("Σ partial products = acc·multiplier: counterexample "
                      + ", ".join(f"{k} = {v}" for k, v in outcome.counterexample.items()))
    log.write_text(f"requant-identity{' (broken)' if broken else ''}: {outcome.result}\n"
                   f"sum: {lhs!r}\nproduct: {(acc * multiplier)!r}\nregister: {register}\n"
                   + "".join(f"{step}\n" for step in outcome.steps) + "".join(
                       f"failed: {f}\n" for f in failed))
    return FormalResult(name=name, method="ring", depth=0, solver="z3", result=outcome.result,
                        seconds=seconds, log=str(log.resolve()), failed=failed)
