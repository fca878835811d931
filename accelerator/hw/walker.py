"""The tile walk of a GEMM: C-column panels outermost, then chunks of A rows.

Every stage of the engine (loader, feeder, accumulator, store) walks the same sequence of
chunks at its own pace; each has its own :class:`ChunkWalker`, so no stage waits for another to
compute an address.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["ChunkWalker"]


class ChunkWalker(wiring.Component):
    """Walks ``(panel j, chunk i)`` over an ``m × n`` result, C columns by ``chunk`` rows.

    Members
    -------
    restart : In(1)
        Go back to the first chunk (with ``m``, ``n`` and ``chunk`` stable from now on).
    advance : In(1)
        Move to the next chunk.
    m, n, chunk : In(16), In(16), In(range(max_rows + 1))
        Rows and columns of C, and rows per chunk (1 to ``max_rows``).
    row0, rows : Out(16), Out(range(max_rows + 1))
        First row of the current chunk and how many rows it has (``min(chunk, m - row0)``).
    col0, cols : Out(16), Out(range(cols + 1))
        First column of the current panel and how many columns it has.
    index : Out(32)
        How many chunks came before this one (its half of a double buffer is ``index[0]``).
    first_in_panel, last_in_panel, last : Out(1)
        Where the current chunk stands in its panel and in the whole walk.
    """

    def __init__(self, cols: int, max_rows: int = (1 << 16) - 1):
        self._cols = cols
        super().__init__({
            "restart": In(1), "advance": In(1),
            "m": In(16), "n": In(16), "chunk": In(range(max_rows + 1)),
            "row0": Out(16), "rows": Out(range(max_rows + 1)), "col0": Out(16),
            "cols": Out(range(cols + 1)),
            "index": Out(32),
            "first_in_panel": Out(1), "last_in_panel": Out(1), "last": Out(1),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        C = self._cols
        # row0 < m and col0 < n: the walk never passes the last chunk
        rows_left = Signal(16)
        cols_left = Signal(16)
        m.d.comb += [
            rows_left.eq(self.m - self.row0),
            cols_left.eq(self.n - self.col0),
            self.rows.eq(Mux(rows_left < self.chunk, rows_left, self.chunk)),
            self.cols.eq(Mux(cols_left < C, cols_left, C)),
            self.first_in_panel.eq(self.row0 == 0),
            self.last_in_panel.eq(rows_left <= self.chunk),
            self.last.eq(self.last_in_panel & (cols_left <= C)),
        ]
        with m.If(self.restart):
            m.d.sync += [self.row0.eq(0), self.col0.eq(0), self.index.eq(0)]
        with m.Elif(self.advance):
            m.d.sync += self.index.eq(self.index + 1)
            with m.If(self.last_in_panel):
                m.d.sync += [self.row0.eq(0), self.col0.eq(self.col0 + C)]
            with m.Else():
                m.d.sync += self.row0.eq(self.row0 + self.chunk)
        return m
