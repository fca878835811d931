"""Progress in a log (output that is not a terminal): a line per step with the time since the
command started, and a heartbeat line when a step runs long; the real commands print them."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time

from rich.console import Console

from accelerator.cli.progress import (
    HEARTBEAT,
    Progress,
    heartbeat_seconds,
    tool_report_seconds,
)
from accelerator.config import AcceleratorConfig
from accelerator.flow.build import _run_script


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def log_console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=False, width=200), out


def test_a_log_gets_a_line_per_step_and_a_heartbeat():
    console, out = log_console()
    clock = Clock()
    progress = Progress("accel x", console, heartbeat=30, clock=clock)
    assert not progress.live
    progress.step("synthesis")
    clock.now += 10
    progress.note("1/3 done")   # within the heartbeat: no line
    progress.beat()             # nor here
    clock.now += 25
    progress.note("2/3 done")   # 35 s since the last line
    clock.now += 29
    progress.beat()             # 29 s: quiet
    clock.now += 1.5
    progress.beat()             # 30.5 s: the heartbeat says what is running
    clock.now += 3
    progress.step("placement")  # a step: a line at once
    assert out.getvalue().splitlines() == [
        "accel x [    0.0 s] synthesis",
        "accel x [   35.0 s] 2/3 done",
        "accel x [   65.5 s] 2/3 done (still running)",
        "accel x [   68.5 s] placement"]


def test_a_terminal_gets_no_lines():
    out = io.StringIO()
    progress = Progress("accel x", Console(file=out, force_terminal=True), heartbeat=30)
    assert progress.live
    progress.step("synthesis")  # outside a `with`: nothing; inside, rich's live status
    progress.beat()
    assert out.getvalue() == ""


def test_the_heartbeat_thread_speaks_while_a_step_runs():
    console, out = log_console()
    with Progress("accel x", console, heartbeat=0.05) as progress:
        progress.step("a long step")
        deadline = time.monotonic() + 30
        while "(still running)" not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
    lines = out.getvalue().splitlines()
    assert re.fullmatch(r"accel x \[ +\d+\.\d s\] a long step", lines[0])
    assert re.fullmatch(r"accel x \[ +\d+\.\d s\] a long step \(still running\)", lines[1])


def test_the_heartbeat_is_30_s_unless_set(monkeypatch):
    monkeypatch.delenv("ACCEL_PROGRESS_SECONDS", raising=False)
    assert heartbeat_seconds() == HEARTBEAT == 30.0
    for value, seconds in (("5", 5.0), ("0.25", 0.25), ("0", 30.0), ("x", 30.0)):
        monkeypatch.setenv("ACCEL_PROGRESS_SECONDS", value)
        assert heartbeat_seconds() == seconds
        # a tool's report comes before the heartbeat would, so the heartbeat stays quiet
        assert 0 < tool_report_seconds() < heartbeat_seconds()


def test_a_build_script_ticks_while_it_runs(tmp_path):
    ticks = []
    run = _run_script(["sh", "-c", "echo start; sleep 1; echo end"], tmp_path, os.environ,
                      tick=lambda: ticks.append(1), tick_seconds=0.1)
    assert run.returncode == 0 and run.stdout == "start\nend\n"
    assert len(ticks) >= 1  # a second of a script, ticked every tenth of one


def _stderr_lines(args: list[str], cwd, **env: str) -> tuple[int, list[str]]:
    proc = subprocess.run([sys.executable, "-m", "accelerator", *args], cwd=cwd,
                          env=dict(os.environ, **env), capture_output=True, text=True,
                          timeout=600)
    return proc.returncode, proc.stderr.splitlines()


def test_a_sweep_in_a_log_reports_progress(tmp_path):
    code, lines = _stderr_lines(
        ["sweep", "--rows", "2..5", "--gemm", "8x8x8", "--jobs", "1", "--no-plots", "--out",
         str(tmp_path / "s")], tmp_path, ACCEL_SWEEP_DELAY="0.3", ACCEL_PROGRESS_SECONDS="0.2")
    assert code == 0, lines
    assert lines[0] == "sweep: 4 points (4 rows × 1 workload × 1 fidelity)"
    steps = [line for line in lines if line.startswith("accel sweep [")]
    assert re.fullmatch(r"accel sweep \[ +\d+\.\d s\] 4 points on 1 local worker", steps[0])
    # (--jobs 1 evaluates in this process: the heartbeat thread says how far it is)
    counts = [re.fullmatch(r"accel sweep \[ +\d+\.\d s\] (\d)/4 points, 0 failed"
                           r"( \(still running\))?", line) for line in steps[1:]]
    assert counts and all(counts), steps  # at least one, every point of 1.2 s of delays
    done = [int(match.group(1)) for match in counts]
    assert done == sorted(done)


def test_a_build_in_a_log_reports_each_step_and_the_running_tool(tmp_path):
    """A stub yosys (Amaranth runs the one YOSYS names) that takes a second and fails: the
    build's steps and the heartbeat of the running tool show in the log, then the failure."""
    stub = tmp_path / "yosys"
    stub.write_text('#!/bin/sh\nif [ "$1" = "--version" ]; then echo "Yosys 0.0 (stub)"; '
                    'exit 0; fi\nsleep 1\necho "ERROR: stub yosys" >&2\nexit 1\n')
    stub.chmod(0o755)
    code, lines = _stderr_lines(
        ["build", "--board", "icebreaker", "--rows", "1", "--cols", "1", "--out", "o"],
        tmp_path, YOSYS=str(stub), ACCEL_BUILD_ROOT=str(tmp_path / "b"),
        ACCEL_PROGRESS_SECONDS="0.2")
    assert code == 1
    steps = [re.sub(r"\[ +\d+\.\d s\]", "[t]", line) for line in lines
             if line.startswith("accel build [") and not line.endswith("(still running)")]
    name = AcceleratorConfig(rows=1, cols=1).name
    assert steps[:3] == [
        f"accel build [t] icebreaker, the core top of {name}",
        "accel build [t] elaborating the core top for icebreaker",
        "accel build [t] running yosys and nextpnr for icebreaker (ice40)"]
    assert any(re.fullmatch(r"accel build \[t\] yosys running, \d+ s into yosys and nextpnr, "
                            r"its log [\d,]+ KiB", line) for line in steps[3:]), steps
    assert lines[-1].startswith("accel build: error: yosys failed: ERROR: stub yosys")
