"""The requantization stage: rows of ``int32`` accumulators in, rows of ``int8`` activations out.

Bit-exact with :func:`accelerator.model.reference.requantize` (TFLite / gemmlowp "double
rounding") for every ``int32`` accumulator and every parameter value the model accepts. Each lane
computes, in exact integer arithmetic (``acc`` signed 32-bit, ``multiplier`` in ``[0, 2**31-1]``,
``shift`` in ``[0, 31]``, ``zero_point`` in ``[-128, 127]``):

1. ``p = acc · multiplier`` (63-bit signed; ``|p| < 2**62``).
2. SaturatingRoundingDoublingHighMul: ``x = floor((p + 2**30) / 2**31)``, computed as
   ``((p >> 30) + 1) >> 1`` (the low 30 bits of ``p`` cannot carry into bit 31 when ``2**30`` is
   added, so only a 33-bit adder is needed). That floor is gemmlowp's "nudge ``2**30`` or
   ``1 - 2**30``, then truncate" for both signs of ``p``. The one saturating case of SRDHM,
   ``INT32_MIN · INT32_MIN``, cannot occur because ``multiplier >= 0``; ``x`` always fits 32 bits.
3. RoundingDivideByPOT: ``y = floor((x + r) / 2**shift)`` with ``r = 2**(shift-1)`` for
   ``x >= 0`` and ``r = 2**(shift-1) - 1`` for ``x < 0`` (``r = 0`` when ``shift = 0``). This is
   round to nearest with ties away from zero, i.e. gemmlowp's ``(x >> shift) + (remainder >
   threshold)`` with ``threshold = (mask >> 1) + (x < 0)``: for ``x < 0`` the sum is rounded up
   only if the remainder exceeds half, which is what adding one less than half and flooring does.
4. ``z = y + zero_point`` exactly (33 bits, no 32-bit wrap).
5. Clamp to ``[zero_point if relu else -128, 127]`` (``zero_point >= -128``, so ReLU's lower
   clamp at the zero point and the int8 saturation are a single clamp).

Pipeline (one register stage per line; all of them advance together, see flow control below)
--------
S1  input registers: ``acc`` and a per-lane copy of ``multiplier`` (the multiplier's input
    registers, which a DSP block absorbs), ``last``.
S2  partial products: ``acc`` and ``multiplier`` cut at bit 17, four products that each fit one
    18×18 DSP block (ECP5's MULT18X18D), each registered. Summed in the same cycle as their
    products they were the board tops' longest path (14 ns on the LFE5U-25F). On an iCE40,
    whose SB_MAC16 is 16×16, the 17-bit pieces would each take four blocks, so there S2 is
    the whole product and S3 only registers it again.
S3  product register ``p = acc · multiplier``, the sum of the partial products.
S4  ``x`` = SRDHM result (33-bit add on ``p >> 30``).
S5  ``t = x + r`` (33-bit add; ``r`` chosen by the sign of ``x``).
S6  ``z = (t >> shift) + zero_point`` (arithmetic barrel shift, then a 33-bit add).
S7  output register: ``clamp(z)`` as ``int8``, drives ``o.payload``.

Latency: 7 cycles, i.e. a row offered on ``i`` (and accepted) in cycle ``n`` is on ``o``, with
``o.valid`` high, in cycle ``n + 7`` (it is registered into S1 at the end of cycle ``n`` and into
S7 at the end of cycle ``n + 6``). Throughput: one row per cycle while ``o.ready`` is
high; an idle slot on ``i`` travels through as a bubble.

Flow control: a global-enable pipeline with a one-row skid buffer. Every register, including the
``valid`` bit of each stage, advances only when ``en = ~skid_valid``, a register, and
``i.ready = en``. A row on ``o`` that is not taken moves into the skid buffer as the pipeline
advances once more, and the pipeline then holds until ``o`` takes it, so ``o.payload`` is stable,
no beat is lost or duplicated, and a pipeline full to S7 takes one more row than it has stages.
Neither ``i.ready`` nor ``en`` depends combinationally on ``o.ready``: with ``en = ~o.valid |
o.ready``, the AXI write channel's ready reached every register of the requantizer in one cycle,
through the DMA writer and the store's serializer (the board tops' longest path at 68.9 MHz on
the LFE5U-25F). While ``o.ready`` stays high the skid buffer stays empty, so the latency and
throughput are those above.

Parameters: ``multiplier``, ``shift``, ``zero_point`` and ``relu`` are plain inputs read by the
stages as a beat passes them (``multiplier`` in S1, ``shift`` in S4/S5 and S6, ``zero_point`` in S6
and S7, ``relu`` in S7). They must be set no later than the cycle the first beat of a GEMM is
offered on ``i`` and held until its last row has left ``o``; the values they can take are the
values of their shapes, exactly the ranges :class:`~accelerator.model.reference.RequantParams`
accepts for ``out_width = 8``.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import AcceleratorConfig
from ..model.geometry import REQUANT_LATENCY

__all__ = ["LATENCY", "PIECE_WIDTH", "Requantizer", "partial_products", "requant_layouts"]

#: Clock cycles from a handshake on ``i`` to the same row's ``o.valid``, when never stalled.
LATENCY = REQUANT_LATENCY

ACC_WIDTH = 32
OUT_WIDTH = 8


#: Where S2 cuts the accumulator and the multiplier: an unsigned 17-bit piece is a signed 18-bit
#: one, the width of an ECP5 MULT18X18D port.
PIECE_WIDTH = 17


def partial_products(acc, multiplier, piece: int | None) -> list[tuple[int, object]]:
    """``acc · multiplier`` as ``(shift, product)`` pairs whose shifted sum is the product.

    ``acc`` is signed, ``multiplier`` unsigned. Each is cut into a low piece of ``piece`` bits
    (unsigned) and the rest (signed for ``acc``), so every product fits a multiplier of
    ``piece + 1`` signed bits per port. ``piece=None``: one product, uncut.
    """
    if piece is None:
        return [(0, acc * multiplier)]
    acc_lo, acc_hi = acc[:piece], acc[piece:].as_signed()
    mul_lo, mul_hi = multiplier[:piece], multiplier[piece:]
    return [(0, acc_lo * mul_lo), (piece, acc_lo * mul_hi), (piece, acc_hi * mul_lo),
            (2 * piece, acc_hi * mul_hi)]


def requant_layouts(config: AcceleratorConfig) -> dict[str, data.StructLayout]:
    """The payload layouts of the requantizer's streams, keyed by member name (``i``, ``o``)."""
    return {
        "i": data.StructLayout({"c": data.ArrayLayout(signed(ACC_WIDTH), config.cols), "last": 1}),
        "o": data.StructLayout({"c": data.ArrayLayout(signed(OUT_WIDTH), config.cols), "last": 1}),
    }


class Requantizer(wiring.Component):
    """Requantizes one row of ``config.cols`` ``int32`` accumulators to ``int8`` per cycle.

    See the module docstring for the arithmetic, the pipeline stages and the latency
    (:data:`LATENCY` = 7 cycles).

    Members
    -------
    i : In(stream.Signature(StructLayout({"c": ArrayLayout(signed(32), cols), "last": 1})))
        Rows of accumulators. A core with ``acc_width < 32`` sign-extends into ``c``.
    o : Out(stream.Signature(StructLayout({"c": ArrayLayout(signed(8), cols), "last": 1})))
        The requantized rows, in order; ``last`` is passed through unchanged.
    multiplier : In(unsigned(31))
        The Q31 multiplier, ``0 … 2**31 - 1``.
    shift : In(range(32))
        The right shift, ``0 … 31``.
    zero_point : In(signed(8))
        The output zero point, ``-128 … 127``.
    relu : In(1)
        Clamp the output at ``zero_point`` from below (fused ReLU).
    """

    def __init__(self, config: AcceleratorConfig):
        if config.acc_width > ACC_WIDTH:
            raise ValueError(
                f"Requantizer: acc_width = {config.acc_width} is out of range (allowed: 8 to "
                f"{ACC_WIDTH}; the requantizer takes {ACC_WIDTH}-bit accumulators)")
        self._config = config
        layouts = requant_layouts(config)
        super().__init__({
            "i": In(stream.Signature(layouts["i"])),
            "o": Out(stream.Signature(layouts["o"])),
            "multiplier": In(unsigned(31)),
            "shift": In(range(32)),
            "zero_point": In(signed(OUT_WIDTH)),
            "relu": In(1),
        })

    @property
    def config(self) -> AcceleratorConfig:
        return self._config

    def elaborate(self, platform) -> Module:
        m = Module()
        cols = self._config.cols

        en = Signal()
        skid_valid = Signal()
        skid_last = Signal(reset_less=True)
        m.d.comb += [
            en.eq(~skid_valid),
            self.i.ready.eq(en),
        ]

        # valid and last travel alongside the data, one register per stage S1 … S7.
        valid = [Signal(name=f"s{k}_valid") for k in range(1, LATENCY + 1)]
        last = [Signal(name=f"s{k}_last", reset_less=True) for k in range(1, LATENCY + 1)]
        with m.If(en):
            m.d.sync += [
                valid[0].eq(self.i.valid),
                last[0].eq(self.i.payload.last),
            ]
            for k in range(1, LATENCY):
                m.d.sync += [valid[k].eq(valid[k - 1]), last[k].eq(last[k - 1])]
        # the skid buffer fills when S7's row is not taken, and empties when its row is
        capture = Signal()
        m.d.comb += [
            capture.eq(~skid_valid & valid[-1] & ~self.o.ready),
            self.o.valid.eq(skid_valid | valid[-1]),
            self.o.payload.last.eq(Mux(skid_valid, skid_last, last[-1])),
        ]
        with m.If(capture):
            m.d.sync += [skid_valid.eq(1), skid_last.eq(last[-1])]
        with m.Elif(self.o.ready):
            m.d.sync += skid_valid.eq(0)

        # Rounding offsets of RoundingDivideByPOT, from the (stable) shift: registered once for
        # all lanes, off the data path. half = 2**(shift-1), or 0 when shift = 0.
        half = Signal(unsigned(31))
        half_pos = Signal(unsigned(31))   # added to x >= 0
        half_neg = Signal(unsigned(31))   # added to x < 0: one less (ties away from zero)
        m.d.comb += half.eq(Const(1, 32) << self.shift >> 1)
        m.d.sync += [
            half_pos.eq(half),
            half_neg.eq(Mux(self.shift == 0, 0, half - 1)),
        ]
        lower = Signal(signed(OUT_WIDTH))  # the clamp's lower bound, from relu and zero_point
        m.d.comb += lower.eq(Mux(self.relu, self.zero_point, -(1 << (OUT_WIDTH - 1))))
        upper = (1 << (OUT_WIDTH - 1)) - 1

        # 17-bit pieces fit an 18×18 signed block; an iCE40's 16×16 SB_MAC16 takes the whole
        # product better than four 17-bit pieces (see S2 in the module docstring)
        split = None if getattr(platform, "family", None) == "iCE40" else PIECE_WIDTH
        for lane in range(cols):
            s1_acc = Signal(signed(ACC_WIDTH), name=f"s1_acc_{lane}", reset_less=True)
            s1_mul = Signal(unsigned(31), name=f"s1_mul_{lane}", reset_less=True)
            s3_p = Signal(signed(63), name=f"s3_p_{lane}", reset_less=True)
            s4_x = Signal(signed(ACC_WIDTH), name=f"s4_x_{lane}", reset_less=True)
            s5_t = Signal(signed(ACC_WIDTH + 1), name=f"s5_t_{lane}", reset_less=True)
            s6_z = Signal(signed(ACC_WIDTH + 1), name=f"s6_z_{lane}", reset_less=True)
            s7_o = Signal(signed(OUT_WIDTH), name=f"s7_o_{lane}", reset_less=True)
            s2_parts = []
            for k, (shift, product) in enumerate(partial_products(s1_acc, s1_mul, split)):
                part = Signal(product.shape(), name=f"s2_p{k}_{lane}", reset_less=True)
                s2_parts.append((shift, part))
                with m.If(en):
                    m.d.sync += part.eq(product)
            with m.If(en):
                m.d.sync += [
                    # S1: the multiplier's input registers.
                    s1_acc.eq(self.i.payload.c[lane]),
                    s1_mul.eq(self.multiplier),
                    # S3: the product. |p| < 2**62, so 63 bits hold it.
                    s3_p.eq(sum(part << shift for shift, part in s2_parts)),
                    # S4: SRDHM, floor((p + 2**30) / 2**31); the result fits 32 bits.
                    s4_x.eq(((s3_p >> 30) + 1) >> 1),
                    # S5: RoundingDivideByPOT's offset; x + 2**30 needs the 33rd bit.
                    s5_t.eq(s4_x + Mux(s4_x < 0, half_neg, half_pos)),
                    # S6: the arithmetic shift floors; y fits 32 bits, y + zero_point 33.
                    s6_z.eq((s5_t >> self.shift) + self.zero_point),
                ]
                # S7: ReLU and saturation in one clamp.
                with m.If(s6_z > upper):
                    m.d.sync += s7_o.eq(upper)
                with m.Elif(s6_z < lower):
                    m.d.sync += s7_o.eq(lower)
                with m.Else():
                    m.d.sync += s7_o.eq(s6_z)
            skid_o = Signal(signed(OUT_WIDTH), name=f"skid_o_{lane}", reset_less=True)
            with m.If(capture):
                m.d.sync += skid_o.eq(s7_o)
            m.d.comb += self.o.payload.c[lane].eq(Mux(skid_valid, skid_o, s7_o))

        return m
