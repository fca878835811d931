"""Build Verilator models of the gateware and run cocotb testbenches on them.

A model is built once per (top, config, gateware source, tool versions) and kept under
``build/sim/``: a second run with the same hardware reuses it without regenerating the Verilog or
calling Verilator.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from ..config import AcceleratorConfig
from .files import VERIFICATION_DIR, file_lock, source_digest, sources_digest, write_atomic
from .rtl import CORE_TOP, emit, lint_flags
from .toolchain import TRACE_ARGS, setup_environment

__all__ = [
    "VERIFICATION_DIR",
    "SimModel",
    "TestOutcome",
    "build_model",
    "run_gemms",
    "run_tests",
    "source_digest",
    "sources_digest",
    "waves_file",
]



@functools.lru_cache(maxsize=4)
def _verilator_version(verilator_root: str | None, path: str | None) -> str:
    env = dict(os.environ, **({"VERILATOR_ROOT": verilator_root} if verilator_root else {}))
    if path:
        env["PATH"] = path
    try:
        out = subprocess.run(["verilator", "--version"], capture_output=True, text=True,
                             env=env, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise RuntimeError(f"verilator does not run: {exc}") from None
    return out.split()[1] if len(out.split()) > 1 else out.strip()


@dataclass
class SimModel:
    """A built Verilator model and where it lives."""

    config: AcceleratorConfig
    top: str
    build_dir: Path
    verilog: Path
    manifest: Path
    waves: bool
    rebuilt: bool
    build_seconds: float = 0.0
    build_log: Path | None = None


#: What cocotb's Verilator main (share/lib/verilator/verilator.cpp) names its VCD.
_WAVES_NAME = "dump.vcd"


def _build_args(waves: bool) -> list[str]:
    args = [*lint_flags(), "-O3", "--x-assign", "fast", "--x-initial", "fast", "--assert"]
    if waves:
        args += TRACE_ARGS
    return args


def waves_file(model: SimModel) -> Path | None:
    """The waveform of the model's last run (cocotb's Verilator main writes ``dump.vcd`` in the
    run's directory), or None when it was built without waves or wrote none."""
    path = model.build_dir / _WAVES_NAME
    return path if model.waves and path.is_file() else None


def build_model(config: AcceleratorConfig, *, top: str = CORE_TOP, root: Path = Path("build"),
                waves: bool = False, quiet: bool = True,
                params: dict | None = None, board: str | None = None) -> SimModel:
    """Generate the Verilog and build the Verilator model, or reuse the cached one.

    ``params`` are the top's constructor arguments beyond the config (the board top's clock,
    baud rate and RAM); ``board`` elaborates for a board's platform with its primitives'
    simulation models (:func:`accelerator.flow.rtl.emit`). Both are part of the cache key.
    """
    import time

    import cocotb
    from cocotb_tools.runner import get_runner

    env = setup_environment()
    key = {
        "top": top,
        "config": config.to_dict(),
        "params": params or {},
        **({"board": board} if board else {}),
        "source": source_digest(),
        "verilator": _verilator_version(env.get("VERILATOR_ROOT"), env.get("PATH")),
        "cocotb": cocotb.__version__,
        "python": sys.version.split()[0],
        "waves": waves,
        "args": _build_args(waves),
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    build_dir = (root / "sim" / f"{top}_{config.name}_{digest}").resolve()
    stamp = build_dir / "model.json"
    verilog = build_dir / f"{top}.v"
    manifest = build_dir / f"{top}.json"
    log = build_dir / "build.log"
    model = SimModel(config=config, top=top, build_dir=build_dir, verilog=verilog,
                     manifest=manifest, waves=waves, rebuilt=False, build_log=log)
    # another process (a sweep's workers, a second `accel sim`) may be building the same model
    with file_lock(build_dir.with_name(f".{build_dir.name}.lock")):
        if stamp.is_file() and (build_dir / top).is_file():
            model.build_seconds = json.loads(stamp.read_text()).get("build_seconds", 0.0)
            return model

        start = time.monotonic()
        emit(config, build_dir, top=top, params=params, board=board)
        runner = get_runner("verilator")
        try:
            runner.build(sources=[verilog], hdl_toplevel=top, build_dir=build_dir,
                         build_args=_build_args(waves), waves=waves, always=True,
                         timescale=("1ns", "1ps"), log_file=log if quiet else None)
        except (SystemExit, subprocess.CalledProcessError, RuntimeError) as exc:
            raise RuntimeError(f"Verilator build of {top} failed ({exc}); see {log}") from None
        model.rebuilt = True
        model.build_seconds = time.monotonic() - start
        write_atomic(stamp, json.dumps({**key, "build_seconds": model.build_seconds}, indent=2))
    return model


@dataclass
class TestOutcome:
    """What a cocotb run reported."""

    passed: int = 0
    failed: int = 0
    skipped: int = 0
    failures: dict[str, str] = field(default_factory=dict)
    results_xml: Path | None = None
    log: Path | None = None

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.passed > 0


def run_tests(model: SimModel, test_module: str, *, seed: int, testcase: str | list[str] | None
              = None, extra_env: dict[str, str] | None = None, results_name: str = "results",
              quiet: bool = True) -> TestOutcome:
    """Run the cocotb tests of ``test_module`` (in ``verification/``) on a built model."""
    from cocotb_tools.runner import get_runner

    setup_environment()
    runner = get_runner("verilator")
    # cocotb 2.1's runner keeps its state from build(): an up-to-date build is a no-op.
    runner.build(sources=[model.verilog], hdl_toplevel=model.top, build_dir=model.build_dir,
                 build_args=_build_args(model.waves), waves=model.waves, always=False,
                 timescale=("1ns", "1ps"), log_file=model.build_dir / "rebuild.log")
    results = model.build_dir / f"{results_name}.xml"
    log = model.build_dir / f"{results_name}.log"
    env = {"ACCEL_CONFIG": json.dumps(model.config.to_dict()), **(extra_env or {})}
    # The runner passes this process's sys.path to the simulator as its PYTHONPATH.
    if str(VERIFICATION_DIR) not in sys.path:
        sys.path.insert(0, str(VERIFICATION_DIR))
    results.unlink(missing_ok=True)
    (model.build_dir / _WAVES_NAME).unlink(missing_ok=True)  # never report an old run's waves
    # A failing run raises; the results file says what failed, and a missing one is a failure.
    with contextlib.suppress(SystemExit, subprocess.CalledProcessError, RuntimeError):
        runner.test(hdl_toplevel=model.top, test_module=test_module, testcase=testcase,
                    test_dir=model.build_dir, build_dir=model.build_dir, seed=seed,
                    extra_env=env, results_xml=str(results), waves=model.waves,
                    log_file=log if quiet else None)
    outcome = TestOutcome(results_xml=results, log=log)
    if not results.is_file():
        outcome.failed = 1
        outcome.failures["<simulation>"] = f"no results written; see {log}"
        return outcome
    for case in ET.parse(results).getroot().iter("testcase"):
        name = case.get("name", "?")
        failure = case.find("failure")
        if failure is None:
            failure = case.find("error")
        if failure is not None:
            outcome.failed += 1
            outcome.failures[name] = (failure.get("message") or failure.text or "").strip()
        elif case.find("skipped") is not None:
            outcome.skipped += 1
        else:
            outcome.passed += 1
    return outcome


def run_gemms(model: SimModel, cases: list, *, seed: int, name: str,
              memory: dict | None = None) -> tuple[list[dict], TestOutcome]:
    """Run ``cases`` (:class:`~accelerator.model.cases.GemmCase`) in one simulation of the
    accelerator (``accel_tb.sim_gemms``: one build and one simulator start for a whole list).

    ``memory``: the memory's deterministic timing (``read_latency``, ``write_latency`` in
    cycles; ``accel_tb``'s ``ACCEL_MEMORY``). Returns the records that were reported, each with
    its ``index`` in ``cases`` (a torn last line, the simulator killed mid-write, is skipped),
    and the run's outcome.
    """
    report = model.build_dir / f"{name}.jsonl"
    report.unlink(missing_ok=True)
    outcome = run_tests(model, "accel_tb", seed=seed, testcase="sim_gemms", results_name=name,
                        extra_env={"ACCEL_GEMMS": json.dumps([json.loads(c.to_json())
                                                              for c in cases]),
                                   "ACCEL_REPORT": str(report),
                                   "ACCEL_MEMORY": json.dumps(memory or {})})
    records = []
    if report.is_file():
        for line in report.read_text().splitlines():
            with contextlib.suppress(ValueError):
                records.append(json.loads(line))
    return records, outcome

