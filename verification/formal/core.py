"""A small systolic core (:class:`~accelerator.hw.core.SystolicCore`, 2×2) computes the sum of
products, for either dataflow.

Output-stationary: the harness keeps its own running sums: every operand beat taken adds
``a[r]·b[c]`` to ``C[r][c]`` (wrapping in ``acc_width`` bits, as the reference model does), and
a tile's ``last`` beat queues the finished tile. Each row the core delivers must be the next
expected row, with ``last`` on a tile's row R-1, under any valid/ready pattern on both streams
(bubbles, back-pressure, tiles back to back).

Weight-stationary: the harness collects every R weight beats into a tile of W (row ``k`` of W
from beat ``k``) and queues it; an operand beat (a row of A) is computed against the oldest
queued tile, whose ``last`` operand beat retires it, and queues its expected row
``Σ_k a[k]·W[k][c]`` (wrapping) with its ``last``. Each row the core delivers must be the next
expected one, under any valid/ready pattern on all three streams, and no operand beat is taken
without a complete tile of weights. ``dsp_pes`` is the core's own parameter (0: the PEs' LUT
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


class _ColumnCopied(SystolicCore):
    """A deliberately broken core: column 0 of every result row repeats column 1 (its last
    statement overrides the core's own)."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.comb += self.results.payload.c[0].eq(self.results.payload.c[1])
        return m


def core_harness(rows: int = 2, cols: int = 2, *, in_width: int = 4,
                 dsp_pes: int | None = None, dataflow: str = "os",
                 broken: bool = False) -> FormalHarness:
    config = AcceleratorConfig(rows=rows, cols=cols, dataflow=dataflow, in_width=in_width,
                               acc_width=max(8, 2 * in_width))
    acc = signed(config.acc_width)
    if dataflow == "ws":
        dut = (_ColumnCopied if broken else SystolicCore)(config, dsp_pes=dsp_pes)
        return FormalHarness(dut, _ws_properties(config))

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


#: Result rows the weight-stationary harness can hold between their operand beat and their
#: delivery (more than the core's pipeline holds: an assert checks the queue never fills).
ROWS_QUEUE = 8


def _ws_properties(config: AcceleratorConfig):
    rows, cols, width = config.rows, config.cols, config.acc_width
    acc = signed(width)

    def properties(m: Module, dut: SystolicCore, h: FormalHarness) -> None:
        w, ops, res = dut.weights, dut.operands, dut.results
        w_hs = w.valid & w.ready
        o_hs = ops.valid & ops.ready
        r_hs = res.valid & res.ready
        # -- weights: R beats make a tile, queued until its last operand beat -----------------
        loading = [Signal(cols * config.in_width, name=f"f_wrow_{k}") for k in range(rows - 1)]
        k = Signal(range(rows), name="f_wk")       # rows of the tile being loaded
        wtiles = Array(Signal(rows * cols * config.in_width, name=f"f_wtile_{i}")
                       for i in range(QUEUE))
        w_head = Signal(range(QUEUE), name="f_w_head")
        w_tail = Signal(range(QUEUE), name="f_w_tail")
        w_count = Signal(range(QUEUE + 1), name="f_w_count")
        beat = w.payload.w.as_value()
        w_push = w_hs & (k == rows - 1)
        with m.If(w_hs):
            m.d.sync += k.eq(Mux(k == rows - 1, 0, k + 1))
            for i in range(rows - 1):
                with m.If(k == i):
                    m.d.sync += loading[i].eq(beat)
        with m.If(w_push):
            m.d.sync += [wtiles[w_tail].eq(Cat(*loading, beat)), w_tail.eq(w_tail + 1)]
        w_pop = o_hs & ops.payload.last
        with m.If(w_pop):
            m.d.sync += w_head.eq(w_head + 1)
        m.d.sync += w_count.eq(w_count + w_push - w_pop)
        # -- operands: each beat's expected row against the oldest tile -----------------------
        tile = wtiles[w_head]
        expected_row = []
        for c in range(cols):
            total = 0
            for r in range(rows):
                weight = tile.word_select(r * cols + c, config.in_width).as_signed()
                total = total + ops.payload.a[r] * weight
            expected_row.append(total[:width])
        q = Array(Signal(cols * width + 1, name=f"f_row_{i}") for i in range(ROWS_QUEUE))
        head = Signal(range(ROWS_QUEUE), name="f_head")
        tail = Signal(range(ROWS_QUEUE), name="f_tail")
        count = Signal(range(ROWS_QUEUE + 1), name="f_count")
        with m.If(o_hs):
            m.d.sync += [q[tail].eq(Cat(*expected_row, ops.payload.last)), tail.eq(tail + 1)]
            m.d.sync += Assert(w_count != 0, "no operand beat without a complete tile of weights")
        with m.If(r_hs):
            m.d.sync += head.eq(head + 1)
        m.d.sync += count.eq(count + o_hs - r_hs)
        expected = q[head]
        with m.If(res.valid):
            m.d.sync += Assert(count != 0, "no result row without an operand beat")
            for c in range(cols):
                lane = Signal(acc, name=f"f_expected_{c}")
                m.d.comb += lane.eq(expected.word_select(c, width))
                m.d.sync += Assert(res.payload.c[c] == lane,
                                   "each result is the sum of its products")
            m.d.sync += Assert(res.payload.last == expected[-1], "last on a tile's last row")
        m.d.sync += [Assert(count < ROWS_QUEUE, f"fewer than {ROWS_QUEUE} rows in the core"),
                     Assert(w_count < QUEUE, f"fewer than {QUEUE} weight tiles queued")]
        m.d.comb += Cover(r_hs & res.payload.last & (w_count != 0),
                          "a tile's last row leaves with the next tile's weights loaded")

    return properties
