"""The walk every stage of the GemmEngine repeats: chunks of the tiling, and K in steps.

Every stage (loader, feeders, store) walks the same sequence at its own pace, each with its own
:class:`StageWalk`, so no stage waits for another to compute an address.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ...model.regmap import DIM_WIDTH
from ..walker import ChunkWalker
from .signatures import RunSignature

__all__ = ["RowAddress", "StageWalk"]


class StageWalk(wiring.Component):
    """The chunks of :class:`~accelerator.hw.walker.ChunkWalker` and, with ``k_step``, the walk
    over K in steps of ``k_step`` bytes (one step when K fits the scratchpads).

    Members
    -------
    run : In(RunSignature())
        The command (M, N, K), the chunk size and ``restart``.
    step : In(1)
        The stage has finished this K step (without ``k_step``: this chunk).
    advance : Out(1)
        The walk moves to the next chunk (``step`` on the chunk's last K step).
    done : Out(1)
        The walk has passed its last chunk (until ``restart``).
    index, rows, cols, row0, col0, first_in_panel, last_in_panel, last
        The current chunk, as :class:`~accelerator.hw.walker.ChunkWalker`'s (chunks of at most
        ``max_rows`` rows).
    first_step, kc0, k_len, k_len_m1, k_last : Out(1), Out(DIM_WIDTH), Out(range(k_step + 1)),
        ..., Out(1)
        With ``k_step``: whether this step is the first, its first k (only with ``offsets``: a
        stage that needs no address of a step, a feeder, has no adder for it), its length (and
        less one), whether it is the last (sized by the largest K the command check accepts,
        and by ``k_step``). Registers,
        loaded with the next step's values when the walk restarts or advances:
        computed from ``k - kc0`` combinationally they were the longest path of the design (a
        32-bit subtraction, then a comparison, then the feeder's control). K must not change
        between a restart and the end of the walk.
    kc0_next : Out(DIM_WIDTH)
        The value ``kc0`` takes at the next edge (with ``offsets``).
    """

    def __init__(self, cols: int, k_step: int | None = None, *, max_rows: int = (1 << 16) - 1,
                 offsets: bool = True):
        self._cols = cols
        self._k_step = k_step
        self._max_rows = max_rows
        self._offsets = offsets
        members = {
            "run": In(RunSignature()), "step": In(1),
            "advance": Out(1), "done": Out(1),
            "index": Out(32), "rows": Out(range(max_rows + 1)), "cols": Out(range(cols + 1)),
            "row0": Out(16), "col0": Out(16),
            "first_in_panel": Out(1), "last_in_panel": Out(1), "last": Out(1),
        }
        if k_step is not None:
            members |= {"first_step": Out(1, init=1),
                        "k_len": Out(range(k_step + 1)), "k_len_m1": Out(range(k_step)),
                        "k_last": Out(1, init=1)}
            if offsets:
                members |= {"kc0": Out(DIM_WIDTH), "kc0_next": Out(DIM_WIDTH)}
        super().__init__(members)

    def elaborate(self, platform) -> Module:
        m = Module()
        run = self.run
        m.submodules.chunks = chunks = ChunkWalker(self._cols, self._max_rows)
        m.d.comb += [chunks.m.eq(run.cmd.m), chunks.n.eq(run.cmd.n), chunks.chunk.eq(run.chunk),
                     chunks.restart.eq(run.restart), chunks.advance.eq(self.advance)]
        for name in ("index", "rows", "cols", "row0", "col0", "first_in_panel",
                     "last_in_panel", "last"):
            m.d.comb += getattr(self, name).eq(getattr(chunks, name))
        if self._k_step is None:
            m.d.comb += self.advance.eq(self.step)
        else:
            self._k_walk(m)
        with m.If(self.advance & chunks.last):
            m.d.sync += self.done.eq(1)
        with m.If(run.restart):
            m.d.sync += self.done.eq(0)
        return m

    def _k_walk(self, m: Module) -> None:
        # the command check refuses a K above MAX_DIM before any walk restarts
        step, k = self._k_step, self.run.cmd.k[:DIM_WIDTH]
        left = Signal(DIM_WIDTH)     # k - kc0

        def load(value):
            length = Mux(value < step, value, step)
            return [left.eq(value), self.k_last.eq(value <= step), self.k_len.eq(length),
                    self.k_len_m1.eq(length - 1)]

        m.d.comb += self.advance.eq(self.step & self.k_last)
        with m.If(self.run.restart | (self.step & self.k_last)):
            m.d.sync += [self.first_step.eq(1), *load(k)]
        with m.Elif(self.step):
            m.d.sync += [self.first_step.eq(0), *load(left - step)]
        if not self._offsets:
            return
        m.d.comb += self.kc0_next.eq(self.kc0)
        with m.If(self.run.restart | (self.step & self.k_last)):
            m.d.sync += self.kc0.eq(0)
            m.d.comb += self.kc0_next.eq(0)
        with m.Elif(self.step):
            m.d.sync += self.kc0.eq(self.kc0 + step)
            m.d.comb += self.kc0_next.eq(self.kc0 + step)


class RowAddress:
    """``base + row0·stride + col0·col_bytes`` of a :class:`StageWalk`, as running sums.

    A multiplier per address would cost more than the array on a small FPGA; the walk only ever
    moves to the next chunk (``chunk_stride = chunk·stride`` on) or to the next panel
    (``panel_step = C·col_bytes`` on from the panel's first row).
    """

    def __init__(self, m: Module, name: str, walk: StageWalk, base, chunk_stride, panel_step,
                 restart):
        self.addr = Signal(32, name=f"{name}_addr")
        self.next = Signal(32, name=f"{name}_next")   # the value addr takes at the next edge
        panel = Signal(32, name=f"{name}_panel")
        m.d.comb += self.next.eq(self.addr)
        with m.If(restart):
            m.d.sync += panel.eq(base)
            m.d.comb += self.next.eq(base)
        with m.Elif(walk.advance):
            with m.If(walk.last_in_panel):
                m.d.sync += panel.eq(panel + panel_step)
                m.d.comb += self.next.eq(panel + panel_step)
            with m.Else():
                m.d.comb += self.next.eq(self.addr + chunk_stride)
        m.d.sync += self.addr.eq(self.next)
