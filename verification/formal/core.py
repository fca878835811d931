"""A small systolic core (:class:`~accelerator.hw.core.SystolicCore`, 2×2, output-stationary)
computes the sum of products.

The harness keeps its own running sums: every operand beat taken adds ``a[r]·b[c]`` to
``C[r][c]`` (wrapping in ``acc_width`` bits, as the reference model does), and a tile's ``last``
beat queues the finished tile. Each row the core delivers must be the next expected row, with
``last`` on a tile's row R-1, under any valid/ready pattern on both streams (bubbles, back-
pressure, tiles back to back). ``dsp_pes`` is the core's own parameter (0: the PEs' LUT
multipliers, :func:`~accelerator.hw.pe.lut_product`); the registered set uses the default.
"""

from __future__ import annotations

from amaranth.hdl import Array, Assert, Cat, Cover, Module, Mux, Signal, signed

from ...config import AcceleratorConfig
from ...hw.core import SystolicCore
from .harness import FormalHarness

__all__ = ["core_harness"]

#: Tiles the harness can hold between their last operand and their last result row.
QUEUE = 4


def core_harness(rows: int = 2, cols: int = 2, *, in_width: int = 4,
                 dsp_pes: int | None = None) -> FormalHarness:
    config = AcceleratorConfig(rows=rows, cols=cols, dataflow="os", in_width=in_width,
                               acc_width=max(8, 2 * in_width))
    acc = signed(config.acc_width)

    def properties(m: Module, dut: SystolicCore, h: FormalHarness) -> None:
        ops, res = dut.operands, dut.results
        o_hs = ops.valid & ops.ready
        r_hs = res.valid & res.ready
        sums = [[Signal(acc, name=f"f_sum_{r}_{c}") for c in range(cols)] for r in range(rows)]
        fresh = Signal(init=1, name="f_fresh")  # the next operand beat starts a tile
        # the queue of finished tiles (row-major: R·C values each)
        tiles = Array(Signal(rows * cols * config.acc_width, name=f"f_tile_{i}")
                      for i in range(QUEUE))
        head = Signal(range(QUEUE), name="f_head")
        tail = Signal(range(QUEUE), name="f_tail")
        count = Signal(range(QUEUE + 1), name="f_count")
        row = Signal(range(rows), name="f_row")
        finished = Signal(rows * cols * config.acc_width, name="f_finished")
        parts = []
        with m.If(o_hs):
            m.d.sync += fresh.eq(ops.payload.last)
            for r in range(rows):
                for c in range(cols):
                    product = ops.payload.a[r] * ops.payload.b[c]
                    new = Mux(fresh, product, sums[r][c] + product)
                    m.d.sync += sums[r][c].eq(new)
                    parts.append(new[:config.acc_width])
        m.d.comb += finished.eq(Cat(*parts))
        push = o_hs & ops.payload.last
        pop = r_hs & (row == rows - 1)
        with m.If(push):
            m.d.sync += [tiles[tail].eq(finished), tail.eq(tail + 1)]
        with m.If(r_hs):
            m.d.sync += row.eq(Mux(row == rows - 1, 0, row + 1))
        with m.If(pop):
            m.d.sync += head.eq(head + 1)
        m.d.sync += count.eq(count + push - pop)

        expected = tiles[head]
        with m.If(res.valid):
            m.d.sync += Assert(count != 0, "no result row without a finished tile")
            for c in range(cols):
                lane = Signal(acc, name=f"f_expected_{c}")
                m.d.comb += lane.eq(expected.word_select(row * cols + c, config.acc_width))
                m.d.sync += Assert(res.payload.c[c] == lane,
                                   "each result is the sum of its products")
            m.d.sync += Assert(res.payload.last == (row == rows - 1), "last on a tile's last row")
        m.d.sync += Assert(count < QUEUE, f"fewer than {QUEUE} tiles in the core")
        m.d.comb += Cover(pop & (count == 2), "a tile leaves while the next is finished")

    dut = SystolicCore(config, dsp_pes=dsp_pes)
    return FormalHarness(dut, properties)
