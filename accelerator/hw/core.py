"""The systolic-array core: skew, R×C PE array, de-skew and flow control, for either dataflow.

The core's boundary takes whole vectors per cycle; every skew and de-skew register is inside.

Output-stationary (``dataflow="os"``): one tile computes ``C[R×C] = A[R×K] · B[K×C]``.
    ``operands``: beat ``k`` carries column ``k`` of A (``a``, R values), row ``k`` of B (``b``,
    C values) and ``last`` on the tile's final beat. ``results``: R beats per tile, row 0 first,
    each a row of C (``c``) with ``last`` on row R-1. Tiles follow each other with no bubble as long
    as K ≥ R; a tile's ``last`` beat is held back until R cycles after the previous one, because
    the output chain drains one row per cycle.
Weight-stationary (``dataflow="ws"``): one tile computes ``C[M×C] = A[M×R] · W[R×C]``.
    ``weights``: R beats per tile, row ``k = 0 … R-1`` of W. ``operands``: beat ``m`` carries row
    ``m`` of A (``a``, R values) and ``last`` on the tile's final row. ``results``: one beat per
    operand beat, row ``m`` of C. The next tile's weights load while the current ones are in use;
    tiles follow each other with no bubble as long as M ≥ R.

Flow control: all registers of the core advance together when ``results`` can move
(``en = ~results.valid | results.ready``). An input beat that is not valid enters the array as a
bubble, so the core never waits for a complete tile. See docs/architecture.md for timing.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import AcceleratorConfig
from .pe import OutputStationaryPE, ProductPair, WeightStationaryPE
from .skew import Skew

__all__ = ["SystolicCore", "core_layouts"]


def core_layouts(config: AcceleratorConfig) -> dict[str, data.StructLayout]:
    """The payload layout of each stream of the core, keyed by stream name."""
    op = signed(config.in_width)
    acc = signed(config.acc_width)
    layouts = {
        "results": data.StructLayout({"c": data.ArrayLayout(acc, config.cols), "last": 1}),
    }
    if config.dataflow == "os":
        layouts["operands"] = data.StructLayout({
            "a": data.ArrayLayout(op, config.rows),
            "b": data.ArrayLayout(op, config.cols),
            "last": 1,
        })
    else:
        layouts["weights"] = data.StructLayout({"w": data.ArrayLayout(op, config.cols)})
        layouts["operands"] = data.StructLayout({
            "a": data.ArrayLayout(op, config.rows),
            "last": 1,
        })
    return layouts


class SystolicCore(wiring.Component):
    """An R×C systolic array with its skew, de-skew and flow control.

    Members (see the module docstring for the meaning of each beat)
    -------
    operands : In(stream.Signature(...))
        A (and, output-stationary, B) vectors.
    weights : In(stream.Signature(...))
        Weight-stationary only: rows of the stationary operand.
    results : Out(stream.Signature(...))
        Rows of C.
    busy : Out(1)
        A tile is in the array (for the performance counters of the accelerator).

    Parameters
    ----------
    dsp_pes : int or None
        How many PEs multiply with ``*`` (a DSP block on an FPGA); the others build their
        multiplier from LUTs (:func:`~accelerator.hw.pe.lut_product`). None: all of them. The
        behaviour is the same either way; this only decides where synthesis puts the multipliers.
    paired_pes : int
        How many of the DSP PEs (the first ones) get their products two by two from a
        :class:`~accelerator.hw.pe.ProductPair` (row-major neighbours), which packs both into one
        SB_MAC16 on an iCE40. A PE alone in its block is faster (yosys also moves its accumulator
        into the block), so a build pairs only the PEs that would otherwise have no block
        (:func:`accelerator.flow.build.multiplier_plan`).
    pipelined : bool or None
        The PEs register their products (:mod:`accelerator.hw.pe`); None: everywhere but on an
        iCE40. The core's cycle behaviour is the same either way.
    """

    def __init__(self, config: AcceleratorConfig, *, dsp_pes: int | None = None,
                 paired_pes: int = 0, pipelined: bool | None = None):
        if dsp_pes is not None and not dsp_pes >= 0:
            raise ValueError(f"dsp_pes = {dsp_pes} is out of range (allowed: 0 or more)")
        self._config = config
        self._dsp_pes = config.pes if dsp_pes is None else min(dsp_pes, config.pes)
        if not (0 <= paired_pes <= self._dsp_pes and paired_pes % 2 == 0):
            raise ValueError(f"paired_pes = {paired_pes} is out of range (allowed: an even "
                             f"number from 0 to dsp_pes = {self._dsp_pes})")
        self._paired_pes = paired_pes
        self._pipelined = pipelined
        members = {name: (Out if name == "results" else In)(stream.Signature(layout))
                   for name, layout in core_layouts(config).items()}
        members["busy"] = Out(1)
        super().__init__(members)

    @property
    def config(self) -> AcceleratorConfig:
        return self._config

    @property
    def dsp_pes(self) -> int:
        """PEs whose multiplier is a ``*`` (the first ones in row-major order)."""
        return self._dsp_pes

    def _make_pes(self, m: Module, pe_class) -> list[list]:
        """The R×C PEs, added to ``m``; the first ``paired_pes`` on :class:`ProductPair` units."""
        cfg = self._config
        R, C = cfg.rows, cfg.cols
        paired = self._paired_pes
        flat = [pe_class(cfg, dsp=i < self._dsp_pes, product_port=i < paired,
                         pipelined=self._pipelined) for i in range(R * C)]
        for i, pe in enumerate(flat):
            m.submodules[f"pe_{i // C}_{i % C}"] = pe
        for i in range(0, paired, 2):
            m.submodules[f"mul_{i // 2}"] = pair = ProductPair(cfg.in_width)
            first, second = flat[i], flat[i + 1]
            m.d.comb += [
                pair.a0.eq(first.mul_a), pair.b0.eq(first.mul_b), first.product.eq(pair.p0),
                pair.a1.eq(second.mul_a), pair.b1.eq(second.mul_b), second.product.eq(pair.p1),
            ]
        return [flat[p * C:(p + 1) * C] for p in range(R)]

    def elaborate(self, platform) -> Module:
        if self._config.dataflow == "os":
            return self._elaborate_os()
        return self._elaborate_ws()

    # -- shared pieces --------------------------------------------------------------------------

    def _stall_and_deskew(self, m: Module, column_values, column_valid, column_last):
        """Realign the columns' results, drive ``results``, and return the array's enable."""
        cfg = self._config
        en = Signal()
        m.d.comb += en.eq(~self.results.valid | self.results.ready)
        # Column j reaches the bottom j cycles after column 0: delay it by C-1-j.
        m.submodules.deskew = deskew = Skew(signed(cfg.acc_width),
                                            [cfg.cols - 1 - j for j in range(cfg.cols)])
        m.d.comb += deskew.en.eq(en)
        for j in range(cfg.cols):
            m.d.comb += deskew.i[j].eq(column_values[j])
        # The last column needs no delay, so its flags are already aligned with the output.
        m.d.comb += [
            self.results.payload.c.eq(deskew.o),
            self.results.payload.last.eq(column_last),
            self.results.valid.eq(column_valid),
        ]
        return en

    # -- output-stationary ------------------------------------------------------------------------

    def _elaborate_os(self) -> Module:
        cfg = self._config
        R, C = cfg.rows, cfg.cols
        m = Module()

        pes = self._make_pes(m, OutputStationaryPE)

        # Results leave the bottom of each column first, so logical row i sits in physical row
        # R-1-i: then row 0 of C is the first to come out.
        bottom = pes[R - 1]
        drains = [Signal(name=f"drain_{j}") for j in range(C)]
        for j in range(C):
            m.d.comb += drains[j].eq(bottom[j].valid_out & bottom[j].last_out)

        out_row = Signal(range(max(R, 2)))  # a 1-bit counter even for R = 1: no [-1:0] ports
        en = self._stall_and_deskew(
            m,
            [bottom[j].chain_out for j in range(C)],
            bottom[C - 1].chain_valid_out,
            out_row == R - 1,
        )
        with m.If(self.results.valid & self.results.ready):
            m.d.sync += out_row.eq(Mux(out_row == R - 1, 0, out_row + 1))

        # Input: a beat is registered once, then skewed: physical row p and column j by p and j.
        first = Signal(init=1)          # the next beat starts a tile
        gap = Signal(range(R + 1), init=R)  # enabled cycles since the last `last` beat
        hazard = Signal()
        accept = Signal()
        op = self.operands
        # Results of consecutive tiles share the output chain: a tile's `last` beat must come
        # R cycles after the previous one or the chain would still be draining.
        m.d.comb += [
            hazard.eq(op.payload.last & (gap < R - 1) if R > 1 else Const(0)),
            op.ready.eq(en & ~hazard),
            accept.eq(op.valid & op.ready),
        ]
        in_a = Signal(data.ArrayLayout(signed(cfg.in_width), R))
        in_b = Signal(data.ArrayLayout(signed(cfg.in_width), C))
        in_flags = Signal(data.StructLayout({"valid": 1, "first": 1, "last": 1}))
        with m.If(en):
            m.d.sync += [
                in_a.eq(op.payload.a),
                in_b.eq(op.payload.b),
                in_flags.valid.eq(accept),
                in_flags.first.eq(first),
                in_flags.last.eq(op.payload.last),
            ]
            with m.If(accept):
                m.d.sync += first.eq(op.payload.last)
            with m.If(accept & op.payload.last):
                m.d.sync += gap.eq(0)
            with m.Elif(gap < R):
                m.d.sync += gap.eq(gap + 1)

        m.submodules.skew_a = skew_a = Skew(signed(cfg.in_width), list(range(R)))
        m.submodules.skew_b = skew_b = Skew(signed(cfg.in_width), list(range(C)))
        m.submodules.skew_flags = skew_f = Skew(in_flags.shape(), list(range(C)))
        m.d.comb += [skew_a.en.eq(en), skew_b.en.eq(en), skew_f.en.eq(en)]
        for p in range(R):
            m.d.comb += skew_a.i[p].eq(in_a[R - 1 - p])
        m.d.comb += skew_b.i.eq(in_b)
        for j in range(C):
            m.d.comb += skew_f.i[j].eq(in_flags)
        # what in_a and in_b take at the next enabled edge (the PEs multiply a cycle ahead)
        for p in range(R):
            m.d.comb += skew_a.i_next[p].eq(op.payload.a[R - 1 - p])
        m.d.comb += skew_b.i_next.eq(op.payload.b)

        for p in range(R):
            for j in range(C):
                pe = pes[p][j]
                m.d.comb += pe.en.eq(en)
                m.d.comb += pe.a_in.eq(skew_a.o[p] if j == 0 else pes[p][j - 1].a_out)
                m.d.comb += pe.a_next.eq(skew_a.o_next[p] if j == 0 else pes[p][j - 1].a_in)
                m.d.comb += pe.b_next.eq(skew_b.o_next[j] if p == 0 else pes[p - 1][j].b_in)
                if p == 0:
                    flags = skew_f.o[j]
                    m.d.comb += [
                        pe.b_in.eq(skew_b.o[j]),
                        pe.valid_in.eq(flags.valid),
                        pe.first_in.eq(flags.first),
                        pe.last_in.eq(flags.last),
                        pe.chain_in.eq(0),
                        pe.chain_valid_in.eq(0),
                    ]
                else:
                    above = pes[p - 1][j]
                    m.d.comb += [
                        pe.b_in.eq(above.b_out),
                        pe.valid_in.eq(above.valid_out),
                        pe.first_in.eq(above.first_out),
                        pe.last_in.eq(above.last_out),
                        pe.chain_in.eq(above.chain_out),
                        pe.chain_valid_in.eq(above.chain_valid_out),
                    ]
                m.d.comb += pe.drain.eq(drains[j])

        m.d.comb += self.busy.eq(
            in_flags.valid | ~first | self.results.valid
            | _any(pes[p][j].valid_in for p in range(R) for j in range(C))
            | _any(pes[p][j].chain_valid_out for p in range(R) for j in range(C)))
        return m

    # -- weight-stationary ------------------------------------------------------------------------

    def _elaborate_ws(self) -> Module:
        cfg = self._config
        R, C = cfg.rows, cfg.cols
        m = Module()

        pes = self._make_pes(m, WeightStationaryPE)
        bottom = pes[R - 1]

        en = self._stall_and_deskew(
            m,
            [bottom[j].psum_out for j in range(C)],
            bottom[C - 1].valid_out,
            bottom[C - 1].last_out,
        )

        # Weights: a row shifted in R times ends at the bottom, so row k of W sits in physical
        # row R-1-k, and so must element k of each activation vector.
        w = self.weights
        op = self.operands
        loaded = Signal(range(R + 1))        # rows in the load chain since the last capture
        shadow_full = Signal()               # captured weights not yet taken by a tile
        since_first = Signal(range(R + 1), init=R)  # cycles since the last tile started
        first = Signal(init=1)               # the next operand beat starts a tile
        capture = Signal()
        w_accept = Signal()
        a_accept = Signal()
        # The shadow registers of a column may change only once a tile has taken them and its
        # first activation has passed the column's bottom row, R-1 cycles after the top. With
        # one row that is the very cycle the tile starts.
        taken = ~shadow_full | (a_accept & first) if R == 1 else ~shadow_full
        m.d.comb += [
            op.ready.eq(en & (~first | shadow_full)),
            a_accept.eq(op.valid & op.ready),
            capture.eq(en & (loaded == R) & taken
                       & (since_first >= R - 1 if R > 1 else Const(1))),
            w.ready.eq(en & ((loaded < R) | capture)),
            w_accept.eq(w.valid & w.ready),
        ]
        with m.If(en):
            with m.If(capture):
                m.d.sync += loaded.eq(w_accept)
            with m.Elif(w_accept):
                m.d.sync += loaded.eq(loaded + 1)
            with m.If(capture):
                m.d.sync += shadow_full.eq(1)
            with m.Elif(a_accept & first):
                m.d.sync += shadow_full.eq(0)
            with m.If(a_accept & first):
                m.d.sync += since_first.eq(1)
            with m.Elif(since_first < R):
                m.d.sync += since_first.eq(since_first + 1)
            with m.If(a_accept):
                m.d.sync += first.eq(op.payload.last)

        in_w = Signal(data.ArrayLayout(signed(cfg.in_width), C))
        in_wctl = Signal(data.StructLayout({"shift": 1, "capture": 1}))
        in_a = Signal(data.ArrayLayout(signed(cfg.in_width), R))
        in_flags = Signal(data.StructLayout({"valid": 1, "first": 1, "last": 1}))
        with m.If(en):
            m.d.sync += [
                in_w.eq(w.payload.w),
                in_wctl.shift.eq(w_accept),
                in_wctl.capture.eq(capture),
                in_a.eq(op.payload.a),
                in_flags.valid.eq(a_accept),
                in_flags.first.eq(first),
                in_flags.last.eq(op.payload.last),
            ]

        m.submodules.skew_w = skew_w = Skew(signed(cfg.in_width), list(range(C)))
        m.submodules.skew_wctl = skew_wctl = Skew(in_wctl.shape(), list(range(C)))
        m.submodules.skew_a = skew_a = Skew(signed(cfg.in_width), list(range(R)))
        m.submodules.skew_flags = skew_f = Skew(in_flags.shape(), list(range(R)))
        m.d.comb += [skew_w.en.eq(en), skew_wctl.en.eq(en), skew_a.en.eq(en), skew_f.en.eq(en)]
        m.d.comb += skew_w.i.eq(in_w)
        for j in range(C):
            m.d.comb += skew_wctl.i[j].eq(in_wctl)
        for p in range(R):
            m.d.comb += [skew_a.i[p].eq(in_a[R - 1 - p]), skew_f.i[p].eq(in_flags)]
        # what in_a and in_flags take at the next enabled edge (the PEs multiply a cycle ahead)
        for p in range(R):
            m.d.comb += [
                skew_a.i_next[p].eq(op.payload.a[R - 1 - p]),
                skew_f.i_next[p].valid.eq(a_accept),
                skew_f.i_next[p].first.eq(first),
                skew_f.i_next[p].last.eq(op.payload.last),
            ]

        for p in range(R):
            for j in range(C):
                pe = pes[p][j]
                ctl = skew_wctl.o[j]
                m.d.comb += [pe.en.eq(en), pe.w_shift.eq(ctl.shift), pe.capture.eq(ctl.capture)]
                if j == 0:
                    flags = skew_f.o[p]
                    m.d.comb += [
                        pe.a_next.eq(skew_a.o_next[p]),
                        pe.first_next.eq(skew_f.o_next[p].first),
                        pe.a_in.eq(skew_a.o[p]),
                        pe.valid_in.eq(flags.valid),
                        pe.first_in.eq(flags.first),
                        pe.last_in.eq(flags.last),
                    ]
                else:
                    left = pes[p][j - 1]
                    m.d.comb += [
                        pe.a_next.eq(left.a_in),
                        pe.first_next.eq(left.first_in),
                        pe.a_in.eq(left.a_out),
                        pe.valid_in.eq(left.valid_out),
                        pe.first_in.eq(left.first_out),
                        pe.last_in.eq(left.last_out),
                    ]
                if p == 0:
                    m.d.comb += [pe.psum_in.eq(0), pe.w_in.eq(skew_w.o[j])]
                else:
                    above = pes[p - 1][j]
                    m.d.comb += [pe.psum_in.eq(above.psum_out), pe.w_in.eq(above.w_out)]

        m.d.comb += self.busy.eq(
            in_flags.valid | self.results.valid
            | _any(pes[p][j].valid_in for p in range(R) for j in range(C)))
        return m


def _any(values) -> Signal:
    result = Const(0)
    for v in values:
        result = result | v
    return result

