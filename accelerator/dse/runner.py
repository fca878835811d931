"""Evaluating sweep points at three fidelities, on a local process pool or a Dask cluster.

* ``model``: the analytic model (:func:`accelerator.model.perf.estimate`) on every layer.
* ``rtl``: every layer simulated on the accelerator in Verilator with the compiled harness
  (:mod:`accelerator.flow.harness`; cycles from its performance counters, results checked
  against NumPy), plus the model's numbers for the model's error.
* ``synth``: yosys and nextpnr on a board (LUTs, FFs, BRAM, DSP, Fmax), plus the model's cycles.

Work goes out as *tasks*: a chunk of model points, all the RTL points of one config (so that one
worker builds each harness, under a file lock besides, and one harness runs every distinct layer
shape once), or all the synth points of one build. A worker writes each finished point to the
store at once (when the store's directory is visible to it; otherwise the sweep's process writes
it on receipt). Anything a point raises becomes a failed record with the error and a log file; a
task that dies as a whole (a crashed worker) fails its points, and the other tasks go on.

Two environment variables exist for tests: ``ACCEL_SWEEP_DELAY=SECONDS`` makes every point wait
that long first (so that a test can kill a sweep part-way), and ``ACCEL_SWEEP_FAIL=NAME=VALUE,...``
makes the points whose config matches all of them fail with an injected error.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import queue
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..config import AcceleratorConfig
from ..driver.harness import run_case
from ..flow.files import GATEWARE_GLOBS, sources_digest
from ..model.cases import BENCH_MEMORY, GemmCase, bench_layout, memory_bound
from ..model.perf import estimate
from ..model.regmap import MAX_DIM
from .space import ConfigPoint
from .store import Store, point_key
from .workloads import Workload

__all__ = [
    "FIDELITIES",
    "RTL_MAX_PES",
    "SWEEP_VERSION",
    "PointSpec",
    "SchedulerError",
    "SweepResult",
    "Task",
    "evaluate_model",
    "make_tasks",
    "plan_points",
    "rtl_memory_needed",
    "run_sweep",
    "run_task",
]

FIDELITIES = ("model", "rtl", "synth")
#: Bumped when a record's fields change meaning, so that older records are not reused.
SWEEP_VERSION = 1
#: How long to keep trying to reach a Dask scheduler before the sweep fails.
DASK_CONNECT_TIMEOUT = "10s"


#: The sources whose change invalidates a stored point of each fidelity. Every fidelity carries
#: the model's numbers, so the model's sources are in all three.
_SOURCES = {
    "model": ("config.py", "model/*.py"),
    "rtl": ("config.py", "model/*.py", *GATEWARE_GLOBS, "flow/harness.py",
            "flow/harness/*.cpp", "driver/driver.py", "driver/harness.py"),
    "synth": ("config.py", "model/*.py", *GATEWARE_GLOBS, "flow/build.py", "flow/synth_top.py"),
}


@dataclass(frozen=True)
class PointSpec:
    """Everything that defines one point of a sweep; ``key`` is its digest."""

    fidelity: str
    values: dict[str, Any]            # the swept fields
    config: dict[str, Any]            # every field (base config + swept values)
    config_error: str | None          # why ``config`` is not a valid config, if it is not
    workload: Workload
    seed: int | None = None           # rtl (data) and synth (placement)
    board: str | None = None          # synth
    top: str | None = None            # synth
    freq_mhz: float | None = None     # synth: the timing constraint
    key: str = ""

    def identity(self) -> dict[str, Any]:
        ident: dict[str, Any] = {
            "version": SWEEP_VERSION, "fidelity": self.fidelity, "config": self.config,
            "workload": self.workload.to_dict(), "sources": sources_digest(
                *_SOURCES[self.fidelity]),
        }
        if self.fidelity in ("rtl", "synth"):
            ident["seed"] = self.seed
        if self.fidelity == "synth":
            ident.update(board=self.board, top=self.top, freq_mhz=self.freq_mhz)
        return ident

    def with_key(self) -> PointSpec:
        return PointSpec(**{**self.__dict__, "key": point_key(self.identity())})

    def accelerator_config(self) -> AcceleratorConfig:
        return AcceleratorConfig.from_dict(self.config)


def plan_points(base: AcceleratorConfig, configs: Sequence[ConfigPoint],
                workloads: Sequence[Workload], fidelities: Sequence[str], *, seed: int = 1,
                board: str | None = None, top: str = "core",
                freq_mhz: float | None = None) -> list[PointSpec]:
    """Every (fidelity, config, workload) point, keyed; configs vary fastest within a fidelity."""
    points = []
    for fidelity in fidelities:
        if fidelity not in FIDELITIES:
            raise ValueError(f"unknown fidelity {fidelity!r} (known: {', '.join(FIDELITIES)})")
        for workload in workloads:
            for cp in configs:
                full = cp.config.to_dict() if cp.config else {**base.to_dict(), **cp.values}
                points.append(PointSpec(
                    fidelity=fidelity, values=dict(cp.values), config=full,
                    config_error=cp.error, workload=workload,
                    seed=seed if fidelity != "model" else None,
                    board=board if fidelity == "synth" else None,
                    top=top if fidelity == "synth" else None,
                    freq_mhz=freq_mhz if fidelity == "synth" else None).with_key())
    return points


# -- evaluation ---------------------------------------------------------------------------------


class SchedulerError(RuntimeError):
    """The Dask scheduler of ``--scheduler`` cannot be reached. ``str()`` is one line."""


def evaluate_model(config: AcceleratorConfig, workload: Workload, *,
                   bench_seed: int | None = None) -> dict[str, Any]:
    """The model's totals over a workload's layers (each distinct shape estimated once).

    ``bench_seed``: estimate each layer for the matrices where the RTL bench puts them with that
    seed (:func:`accelerator.model.cases.bench_layout`), so that the model's error against the
    RTL is the model's, not the spread of alignment costs over placements.
    """
    totals = {"cycles": 0, "compute_cycles": 0, "memory_read_cycles": 0,
              "memory_write_cycles": 0, "read_bytes": 0, "write_bytes": 0}
    layers = []
    cache: dict[tuple[int, int, int], Any] = {}
    for layer in workload.layers:
        e = cache.get(layer.shape)
        if e is None:
            layout = None if bench_seed is None else bench_layout(
                config, GemmCase(m=layer.m, k=layer.k, n=layer.n, seed=bench_seed))
            e = cache[layer.shape] = estimate(config, layer.m, layer.k, layer.n, layout=layout)
        for name in totals:
            totals[name] += getattr(e, name) * layer.count
        layers.append({"name": layer.name, "m": layer.m, "k": layer.k, "n": layer.n,
                       "count": layer.count, "model_cycles": e.cycles})
    memory = max(totals["memory_read_cycles"], totals["memory_write_cycles"])
    return {**totals, "bound": "compute" if totals["compute_cycles"] >= memory else "memory",
            "layers": layers}


def rtl_memory_needed(m: int, k: int, n: int) -> int:
    """At most the bytes of bench memory :func:`accelerator.model.cases.make_data` lays a GEMM
    out in (int32 C, no C_in): :func:`~accelerator.model.cases.memory_bound`."""
    return memory_bound(GemmCase(m=m, k=k, n=n))


@dataclass
class Task:
    """One unit of work for a worker: points of one fidelity (and one build, for rtl/synth)."""

    fidelity: str
    points: list[PointSpec]
    store_root: str
    build_root: str
    threads: int = 1      # rtl: harnesses simulating layers side by side (one thread each)


@dataclass
class Outcome:
    """A finished point as a worker returns it: the record, and whether it is already stored."""

    record: dict[str, Any]
    log_text: str | None = None
    written: bool = False


class _Recorder:
    """Turns results and exceptions into records and stores them as soon as they exist."""

    def __init__(self, task: Task):
        self.store = Store(task.store_root)
        # A remote worker does not see the sweep's directory: then the sweep's process writes.
        self.local = self.store.root.is_dir()
        self.outcomes: list[Outcome] = []

    def _base(self, spec: PointSpec, started: float) -> dict[str, Any]:
        return {
            "key": spec.key, "version": SWEEP_VERSION, "fidelity": spec.fidelity,
            "workload": spec.workload.name, "workload_digest": spec.workload.digest,
            "values": spec.values, "config": spec.config, "seed": spec.seed,
            "board": spec.board, "top": spec.top, "freq_mhz": spec.freq_mhz,
            "macs": spec.workload.macs, "layers": None, "model": None, "rtl": None,
            "synth": None, "status": "ok", "error": None, "log": None, "tool_log": None,
            "seconds": round(time.monotonic() - started, 6),
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "host": socket.gethostname(), "pid": os.getpid(),
        }

    def ok(self, spec: PointSpec, started: float, **parts: Any) -> None:
        record = self._base(spec, started)
        record.update(parts)
        self._finish(Outcome(record))

    def failed(self, spec: PointSpec, started: float, error: str, *, log_text: str = "",
               tool_log: str | None = None, **parts: Any) -> None:
        record = self._base(spec, started)
        record.update(parts, status="failed", error=error, tool_log=tool_log)
        text = (f"point {spec.key}: {spec.fidelity} of {spec.workload.name} on "
                f"{json.dumps(spec.config, sort_keys=True)}\nerror: {error}\n")
        if tool_log:
            text += f"tool log: {tool_log}\n"
        if log_text:
            text += "\n" + log_text
        self._finish(Outcome(record, log_text=text))

    def _finish(self, outcome: Outcome) -> None:
        if self.local:
            store_outcome(self.store, outcome)
        self.outcomes.append(outcome)


def store_outcome(store: Store, outcome: Outcome) -> None:
    """Write a point's log (if it failed) and then its record, each atomically."""
    if outcome.written:
        return
    if outcome.log_text is not None:
        outcome.record["log"] = str(store.write_log(outcome.record["key"], outcome.log_text))
    store.write(outcome.record)
    outcome.written = True


def _test_hooks(spec: PointSpec) -> None:
    """The ACCEL_SWEEP_DELAY / ACCEL_SWEEP_FAIL test hooks (see the module docstring)."""
    delay = os.environ.get("ACCEL_SWEEP_DELAY")
    if delay:
        time.sleep(float(delay))
    fail = os.environ.get("ACCEL_SWEEP_FAIL")
    if fail:
        wanted = dict(item.split("=", 1) for item in fail.split(",") if "=" in item)
        if wanted and all(str(spec.config.get(k)).lower() == v.lower()
                          for k, v in wanted.items()):
            raise RuntimeError(f"injected failure (ACCEL_SWEEP_FAIL={fail})")


def _exception_text(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def _run_model_task(task: Task, rec: _Recorder) -> None:
    for spec in task.points:
        started = time.monotonic()
        try:
            if spec.config_error:
                rec.failed(spec, started, spec.config_error)
                continue
            _test_hooks(spec)
            model = evaluate_model(spec.accelerator_config(), spec.workload)
        except Exception as exc:  # any bug or bad input of one point fails only that point
            rec.failed(spec, started, _exception_text(exc), log_text=traceback.format_exc())
            continue
        layers = model.pop("layers")
        rec.ok(spec, started, model=model, layers=layers)


#: The RTL's memory: the harness's sparse 32-bit address space.
RTL_MEMORY = BENCH_MEMORY["harness"]


#: The most PEs an RTL point simulates: the accelerator's Verilator build grows with the array
#: (docs/performance.md, "Large arrays"), so a larger point fails at once with the reason
#: rather than after hours of C++ compilation (``accel sim`` still builds any size).
RTL_MAX_PES = 32 * 32


def _rtl_problem(spec: PointSpec) -> str | None:
    """Why the RTL harness cannot run the workload as one command per layer, or None."""
    config = spec.accelerator_config()
    if config.pes > RTL_MAX_PES:
        return (f"a {config.rows}×{config.cols} array ({config.pes:,} PEs) is beyond the RTL "
                f"sweep's limit of {RTL_MAX_PES:,} PEs: its Verilator model would take too "
                f"long to build (accel sim --rows {config.rows} --cols {config.cols} builds it)")
    for layer in spec.workload.layers:
        big = [f"{d} = {v}" for d, v in zip("mkn", layer.shape, strict=True) if v > MAX_DIM]
        if big:
            return (f"layer {layer.name} ({layer.m}×{layer.k}×{layer.n}): "
                    f"{', '.join(big)} is beyond the hardware's limit of {MAX_DIM}")
        need = rtl_memory_needed(*layer.shape)
        if need > RTL_MEMORY:
            return (f"layer {layer.name} ({layer.m}×{layer.k}×{layer.n}) needs up to "
                    f"{need:,} bytes of memory; the RTL harness has {RTL_MEMORY:,}")
    return None


def _run_rtl_task(task: Task, rec: _Recorder) -> None:
    """All the points of one config: build its harness once, then run every distinct layer
    shape once on it (:func:`accelerator.driver.harness.run_case`: the matrices where
    :func:`accelerator.model.cases.make_data` puts them for the point's seed, the host driver,
    C read back and compared with NumPy), storing each point as soon as its layers are done."""
    # the flow (and with it Amaranth) only in the workers of an rtl sweep
    from ..flow.harness import Harness, build_harness, build_seconds

    runnable: list[tuple[PointSpec, dict]] = []
    starts: dict[str, float] = {}
    for spec in task.points:
        starts[spec.key] = started = time.monotonic()
        try:
            if spec.config_error:
                rec.failed(spec, started, spec.config_error)
                continue
            _test_hooks(spec)
            problem = _rtl_problem(spec)
            # a point the harness can run is estimated for where its matrices are placed
            model = evaluate_model(spec.accelerator_config(), spec.workload,
                                   bench_seed=None if problem else spec.seed or 1)
            if problem:
                rec.failed(spec, started, problem, model=_totals(model), layers=model["layers"])
                continue
        except Exception as exc:
            rec.failed(spec, started, _exception_text(exc), log_text=traceback.format_exc())
            continue
        runnable.append((spec, model))
    if not runnable:
        return

    config = runnable[0][0].accelerator_config()
    try:
        library = build_harness(config, root=Path(task.build_root))
        harness = Harness(library)
        harness.reset()
    except Exception as exc:  # the build failed (its message names its log): so did every point
        for spec, model in runnable:
            rec.failed(spec, starts[spec.key], _exception_text(exc),
                       log_text=traceback.format_exc(), model=_totals(model),
                       layers=model["layers"])
        return
    build = {"build_dir": str(library.parent),
             "build_seconds": round(build_seconds(library), 2)}
    seed = runnable[0][0].seed or 1
    # every distinct shape once, the longest first (the threads end together)
    cycles: dict[tuple[int, int, int], int] = {}
    for _, model in runnable:
        for layer in model["layers"]:
            cycles[(layer["m"], layer["k"], layer["n"])] = layer["model_cycles"]
    shapes = sorted(cycles, key=cycles.__getitem__, reverse=True)
    threads = max(1, min(task.threads, len(shapes)))
    harnesses = [harness]
    results: dict[tuple[int, int, int], dict] = {}
    pending = list(runnable)
    sim_started = time.monotonic()
    try:
        for _ in range(threads - 1):
            harnesses.append(Harness(library))
            harnesses[-1].reset()
    except Exception:
        threads = len(harnesses)  # fewer threads, then (each harness holds its own model)
    free: queue.Queue = queue.Queue()
    for each in harnesses:
        free.put(each)

    def simulate(shape: tuple[int, int, int]) -> dict:
        # each harness is its own Verilator context, and ctypes releases the GIL while one
        # runs, so the threads simulate in parallel
        local = free.get()
        try:
            result = run_case(local, config, GemmCase(*shape, seed=seed))
            result.pop("result", None)
        except Exception as exc:  # a hardware error, a timeout: this layer fails
            result = {"error": _exception_text(exc)}
            local.reset()
        finally:
            free.put(local)
        return result

    def finish_ready() -> None:
        for spec, model in list(pending):
            if all((layer["m"], layer["k"], layer["n"]) in results for layer in model["layers"]):
                pending.remove((spec, model))
                _finish_rtl_point(rec, spec, starts[spec.key], model, results, build,
                                  time.monotonic() - sim_started)

    try:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            futures = {pool.submit(simulate, shape): shape for shape in shapes}
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                finish_ready()
    finally:
        for each in harnesses:
            each.close()


def _totals(model: dict) -> dict:
    return {k: v for k, v in model.items() if k != "layers"}


def _finish_rtl_point(rec: _Recorder, spec: PointSpec, started: float, model: dict,
                      results: dict, build: dict, sim_seconds: float) -> None:
    layers, problems, cycles = [], [], 0
    for layer in model["layers"]:
        shape = (layer["m"], layer["k"], layer["n"])
        result = results.get(shape)
        what = f"layer {layer['name']} ({shape[0]}×{shape[1]}×{shape[2]})"
        if result is None:
            problems.append(f"{what}: no result")
        elif result.get("error"):
            problems.append(f"{what}: {result['error']}")
        elif not result.get("passed"):
            problems.append(f"{what}: {result.get('mismatches')} elements differ from NumPy")
        else:
            cycles += result["cycles"] * layer["count"]
        layers.append({**layer, "rtl_cycles": result.get("cycles") if result else None})
    rtl = {"cycles": cycles if not problems else None, **build,
           "sim_seconds": round(sim_seconds, 2)}
    if problems:
        rec.failed(spec, started, "; ".join(problems), model=_totals(model), layers=layers,
                   rtl=rtl)
    else:
        rec.ok(spec, started, model=_totals(model), layers=layers, rtl=rtl)


def _run_synth_task(task: Task, rec: _Recorder) -> None:
    """All the points of one build (same config, board, top, frequency and seed)."""
    from ..flow.build import BuildError, build

    starts = {spec.key: time.monotonic() for spec in task.points}
    first = task.points[0]
    models: dict[str, dict] = {}
    for spec in task.points:
        try:
            if spec.config_error:
                rec.failed(spec, starts[spec.key], spec.config_error)
                continue
            _test_hooks(spec)
            models[spec.key] = evaluate_model(spec.accelerator_config(), spec.workload)
        except Exception as exc:
            rec.failed(spec, starts[spec.key], _exception_text(exc),
                       log_text=traceback.format_exc())
    if not models:
        return
    try:
        report = build(first.accelerator_config(), first.board or "ulx3s-85f",
                       top=first.top or "core", freq_mhz=first.freq_mhz, seed=first.seed or 1,
                       allow_timing_fail=True, cache_root=Path(task.build_root) / "fpga")
        synth = {**{k: report.used.get(k) for k in ("luts", "ffs", "bram", "dsp")},
                 "available": report.available, "fmax_mhz": report.fmax_mhz,
                 "timing_met": report.timing_met, "device": report.device,
                 "report": str(Path(report.build_dir) / "report.json"),
                 "build_seconds": report.build_seconds, "cached": report.cached}
        error, tool_log, text = None, report.nextpnr_log, ""
    except BuildError as exc:
        synth, error, tool_log, text = None, str(exc), exc.log, traceback.format_exc()
    except Exception as exc:
        synth, error, tool_log, text = None, _exception_text(exc), None, traceback.format_exc()
    for spec in task.points:
        if spec.key not in models:
            continue
        model = models[spec.key]
        if error is None:
            rec.ok(spec, starts[spec.key], model=_totals(model), layers=model["layers"],
                   synth=synth, tool_log=str(tool_log))
        else:
            rec.failed(spec, starts[spec.key], error, log_text=text,
                       tool_log=str(tool_log) if tool_log else None, model=_totals(model),
                       layers=model["layers"])


_RUNNERS: dict[str, Callable[[Task, _Recorder], None]] = {
    "model": _run_model_task, "rtl": _run_rtl_task, "synth": _run_synth_task,
}


def run_task(task: Task) -> list[Outcome]:
    """Evaluate a task's points (in a worker); each point is stored as soon as it is done."""
    rec = _Recorder(task)
    _RUNNERS[task.fidelity](task, rec)
    return rec.outcomes


# -- scheduling ---------------------------------------------------------------------------------


def make_tasks(points: Sequence[PointSpec], *, workers: int, store_root: Path,
               build_root: Path, rtl_threads: int | None = None) -> list[Task]:
    """Cut points into tasks: model points in chunks (a few per worker, for balance, at most
    64 so that progress moves), rtl points per config, synth points per build. An rtl task
    simulates its layers on ``rtl_threads`` threads (by default the workers' share of each rtl
    task, so that a sweep of one config uses every worker)."""
    tasks: list[Task] = []
    model_points = [p for p in points if p.fidelity == "model"]
    if model_points:
        size = max(1, min(64, math.ceil(len(model_points) / (max(workers, 1) * 8))))
        for start in range(0, len(model_points), size):
            tasks.append(Task("model", model_points[start:start + size], str(store_root),
                              str(build_root)))
    groups: dict[tuple, list[PointSpec]] = {}
    for p in points:
        if p.fidelity == "rtl":
            key: tuple = ("rtl", json.dumps(p.config, sort_keys=True), p.config_error, p.seed)
        elif p.fidelity == "synth":
            key = ("synth", json.dumps(p.config, sort_keys=True), p.config_error, p.board,
                   p.top, p.freq_mhz, p.seed)
        else:
            continue
        groups.setdefault(key, []).append(p)
    rtl_tasks = sum(key[0] == "rtl" for key in groups)
    threads = rtl_threads or max(1, workers // max(1, rtl_tasks))
    for key, group in groups.items():
        tasks.append(Task(key[0], group, str(store_root), str(build_root),
                          threads=threads if key[0] == "rtl" else 1))
    # The slow tasks first, so that a pool does not end on one long build: synth, then rtl,
    # each largest array first (build time grows with it), then the model chunks.
    order = {"synth": 0, "rtl": 1, "model": 2}

    def cost(task: Task) -> tuple[int, int]:
        config = task.points[0].config
        pes = config["rows"] * config["cols"] if task.fidelity != "model" else 0
        return (order[task.fidelity], -pes)

    tasks.sort(key=cost)
    return tasks


def _task_failed(task: Task, exc: BaseException) -> list[Outcome]:
    """A task that died as a whole (its worker crashed, the cluster lost it): every point of it
    that is not in the store yet fails with that error."""
    rec = _Recorder(task)
    done = Store(task.store_root).load() if rec.local else {}
    started = time.monotonic()
    for spec in task.points:
        if done.get(spec.key, {}).get("status") == "ok":
            rec.outcomes.append(Outcome(done[spec.key], written=True))
            continue
        rec.failed(spec, started, f"the worker failed: {_exception_text(exc)}",
                   log_text="".join(traceback.format_exception(exc)))
    return rec.outcomes


@dataclass
class SweepResult:
    """The records of every point of a sweep, in plan order, and how they came about."""

    records: list[dict[str, Any]]
    resumed: int = 0       # points found in the store
    computed: int = 0      # points evaluated by this run
    failed_keys: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r["status"] != "ok"]


#: How often a pool worker checks that the sweep's process is still there (seconds).
PARENT_POLL = 0.2


def _end_worker(*_args: Any) -> None:
    """End this worker and everything it started (its own process group, see _worker_init)."""
    if os.getpgrp() == os.getpid():
        with contextlib.suppress(OSError):
            os.killpg(os.getpid(), signal.SIGKILL)
    os._exit(1)


def _worker_init(sweep_pid: int) -> None:
    """Make a pool worker end with the sweep that started it (a kill -9 of the sweep too).

    The worker takes a process group of its own, so that ending it ends the simulator or the
    build it runs as well; SIGTERM (the sweep stopping its workers) ends that group. The
    sweep's death is seen three ways: on Linux the kernel signals it (PR_SET_PDEATHSIG, at
    once, when the worker's parent goes: the forkserver, which exits with the sweep); and
    everywhere a thread polls whether the worker's parent changed or the sweep is gone.
    """
    parent = os.getppid()
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    signal.signal(signal.SIGTERM, _end_worker)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):  # no libc by that name: the thread still watches
            import ctypes

            pr_set_pdeathsig = 1
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGTERM))

    def sweep_gone() -> bool:
        if os.getppid() != parent:
            return True
        try:
            os.kill(sweep_pid, 0)
        except ProcessLookupError:
            return True
        except OSError:  # it exists (EPERM: not ours to signal)
            pass
        return False

    def watch() -> None:
        while not sweep_gone():
            time.sleep(PARENT_POLL)
        _end_worker()

    if sweep_gone():  # it died before the kernel was asked to tell
        _end_worker()
    threading.Thread(target=watch, name="accel-sweep-watch", daemon=True).start()


def _run_local(tasks: list[Task], jobs: int, on_done: Callable[[Task, list[Outcome]], None]
               ) -> None:
    if jobs <= 1 or len(tasks) <= 1:
        for task in tasks:
            try:
                outcomes = run_task(task)
            except Exception as exc:  # pragma: no cover - run_task catches per point
                outcomes = _task_failed(task, exc)
            on_done(task, outcomes)
        return
    import multiprocessing

    # forkserver, not fork: the sweep's process has threads (the progress bar's, Dask's), and a
    # forked child can inherit a lock one of them held.
    pool = ProcessPoolExecutor(max_workers=min(jobs, len(tasks)),
                               mp_context=multiprocessing.get_context("forkserver"),
                               initializer=_worker_init, initargs=(os.getpid(),))
    futures: dict[Future, Task] = {pool.submit(run_task, task): task for task in tasks}
    try:
        for future in as_completed(futures):
            task = futures[future]
            try:
                outcomes = future.result()
            except Exception as exc:  # a worker died (BrokenProcessPool) or could not unpickle
                outcomes = _task_failed(task, exc)
            on_done(task, outcomes)
    except BaseException:
        # Interrupted: stop the workers now rather than letting them finish their tasks (an
        # RTL task runs for minutes). Every point they finished is in the store already.
        # (ProcessPoolExecutor has no public way to before Python 3.14's terminate_workers.)
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            with contextlib.suppress(Exception):
                process.terminate()
        for process in processes:  # dead before the caller counts what is stored
            with contextlib.suppress(Exception):
                process.join(timeout=10)
        raise
    pool.shutdown(wait=True)


def _run_dask(tasks: list[Task], scheduler: str, on_done: Callable[[Task, list[Outcome]], None]
              ) -> None:
    from distributed import Client
    from distributed import as_completed as dask_completed

    try:
        client = Client(scheduler, timeout=DASK_CONNECT_TIMEOUT, set_as_default=False)
    except OSError as exc:  # refused, unresolvable, timed out (TimeoutError is an OSError)
        raise SchedulerError(f"cannot reach the Dask scheduler at {scheduler} "
                             f"({' '.join(str(exc).split())})") from None
    try:
        futures = {client.submit(run_task, task, pure=False): task for task in tasks}
        try:
            # The loop given, or as_completed looks for a default client (there is none).
            for future in dask_completed(list(futures), loop=client.loop):
                task = futures[future]
                try:
                    outcomes = future.result()
                except Exception as exc:  # KilledWorker, a lost connection, ...
                    outcomes = _task_failed(task, exc)
                on_done(task, outcomes)
        except BaseException:
            client.cancel(list(futures))
            raise
    finally:
        client.close()


def run_sweep(points: Sequence[PointSpec], store: Store, *, jobs: int = 1,
              scheduler: str | None = None, build_root: Path = Path("build"),
              progress: Callable[[int, int], None] | None = None) -> SweepResult:
    """Evaluate the points not already in ``store`` and return every point's record.

    ``progress(done, failed)`` is called as points finish (``done`` counts resumed points too).
    A stored point is reused when it succeeded; a stored failure is tried again.
    """
    store.points_dir.mkdir(parents=True, exist_ok=True)
    existing = store.load()
    records: dict[str, dict[str, Any]] = {}
    todo: list[PointSpec] = []
    plan = list({spec.key: spec for spec in points}.values())  # a point twice runs once
    for spec in plan:
        record = existing.get(spec.key)
        if record is not None and record.get("status") == "ok":
            records[spec.key] = record
        else:
            todo.append(spec)
    result = SweepResult(records=[], resumed=len(records))
    failed = 0
    if progress:
        progress(len(records), failed)
    # on a cluster, a task's threads would share one worker's core: one each there
    tasks = make_tasks(todo, workers=jobs if scheduler is None else 8,
                       store_root=store.root, build_root=build_root,
                       rtl_threads=None if scheduler is None else 1)

    def on_done(task: Task, outcomes: list[Outcome]) -> None:
        nonlocal failed
        for outcome in outcomes:
            store_outcome(store, outcome)  # when the worker could not
            records[outcome.record["key"]] = outcome.record
            result.computed += 1
            failed += outcome.record["status"] != "ok"
        if progress:
            progress(len(records), failed)

    if scheduler is None:
        _run_local(tasks, jobs, on_done)
    else:
        _run_dask(tasks, scheduler, on_done)
    result.records = [records[spec.key] for spec in plan]
    result.failed_keys = [r["key"] for r in result.records if r["status"] != "ok"]
    return result
