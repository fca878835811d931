"""A sweep's pool workers end with it: a `kill -9` of the sweep leaves no worker behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

import psutil  # a dependency of dask.distributed, which the project depends on

#: How long the workers may take to notice (they poll every PARENT_POLL s; on Linux the kernel
#: tells them at once): generous, for a loaded machine.
BOUND = 30


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_killing_a_sweep_ends_its_workers(tmp_path):
    env = dict(os.environ, ACCEL_SWEEP_DELAY="600")  # every point is slow: workers are busy
    args = [sys.executable, "-m", "accelerator", "sweep", "--rows", "2..5", "--gemm", "8x8x8",
            "--jobs", "2", "--no-plots", "--out", str(tmp_path / "s")]
    log = tmp_path / "stderr.log"
    with open(log, "wb") as stderr:
        proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=stderr,
                                start_new_session=True, cwd=tmp_path)
    try:
        sweep = psutil.Process(proc.pid)
        workers: list[psutil.Process] = []
        deadline = time.monotonic() + 120
        while len(workers) < 2 and time.monotonic() < deadline and proc.poll() is None:
            # the pool's workers are the forkserver's children: the sweep's grandchildren
            workers = [p for child in sweep.children() for p in child.children()]
            time.sleep(0.1)
        assert len(workers) == 2, f"no workers started: {log.read_text()[-2000:]}"
        family = {p.pid for p in sweep.children(recursive=True)}

        os.kill(proc.pid, signal.SIGKILL)  # the sweep only, not its process group
        proc.wait(timeout=30)
        deadline = time.monotonic() + BOUND
        while time.monotonic() < deadline and not all(_gone(pid) for pid in family):
            time.sleep(0.1)
        alive = [pid for pid in family if not _gone(pid)]
        assert alive == [], f"still running after the sweep was killed: {alive}"
    finally:  # whatever is left of the sweep's session, should the test fail
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
