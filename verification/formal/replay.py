"""Replaying a counterexample in the Amaranth simulator: the witness's inputs, cycle by cycle,
into the same harness, whose ``Assert`` s the simulator checks as it runs.

A replay that fails the same assertion SBY reported shows the counterexample is real on the
design as simulated (not an artefact of the formal flow), and gives a testbench case to debug
with (``vcd=`` writes the simulation's own waveform).
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from pathlib import Path

from amaranth.sim import Simulator

from .harness import FormalHarness
from .witness import read_initial, read_witness

__all__ = ["ReplayResult", "replay"]


@dataclass
class ReplayResult:
    """``failed``: an assertion fired; ``message`` its text, ``where`` its ``file:line``,
    ``cycle`` the clock edge (0-based) at which it fired; ``cycles`` the steps replayed."""

    failed: bool
    message: str
    where: str
    cycle: int
    cycles: int


def replay(harness: FormalHarness, witness: str | Path, *, vcd: str | Path | None = None
           ) -> ReplayResult:
    """Drive ``harness``'s inputs with the values of ``witness`` and report the first failure."""
    steps = read_witness(witness)
    ports = harness.ports()
    missing = sorted(set().union(*steps) - set(ports) - {"clk", "rst"}) if steps else []
    if missing:
        harness._MustUse__silence = True  # not simulated: refused
        raise ValueError(f"{witness}: inputs {', '.join(missing)} are not the harness's "
                         f"(a witness of another property set?)")
    sim = Simulator(harness)
    sim.add_clock(1e-6)
    reached = [0]

    initial = read_initial(witness)

    async def bench(ctx):
        # the registers the solver chose the initial values of (the harness's free_initial)
        for path, sig in harness.free_signals.items():
            ctx.set(sig, initial.get(path, 0))
        for t, values in enumerate(steps):
            reached[0] = t
            for name, sig in ports.items():
                ctx.set(sig, values.get(name, 0))
            await ctx.tick()

    sim.add_testbench(bench)
    try:
        if vcd is not None:
            with sim.write_vcd(str(vcd)):
                sim.run()
        else:
            sim.run()
    except AssertionError as exc:
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        message = str(exc).removeprefix("Assertion violated: ")
        return ReplayResult(True, message, f"{frame.filename}:{frame.lineno}", reached[0],
                            len(steps))
    return ReplayResult(False, "", "", -1, len(steps))
