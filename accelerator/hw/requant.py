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
S2  product register ``p = acc · multiplier`` (the multiplier's output register).
S3  ``x`` = SRDHM result (33-bit add on ``p >> 30``).
S4  ``t = x + r`` (33-bit add; ``r`` chosen by the sign of ``x``).
S5  ``z = (t >> shift) + zero_point`` (arithmetic barrel shift, then a 33-bit add).
S6  output register: ``clamp(z)`` as ``int8``, drives ``o.payload``.

Latency: 6 cycles, i.e. a row offered on ``i`` (and accepted) in cycle ``n`` is on ``o``, with
``o.valid`` high, in cycle ``n + 6`` (it is registered into S1 at the end of cycle ``n`` and into
S6 at the end of cycle ``n + 5``). Throughput: one row per cycle while ``o.ready`` is
high; an idle slot on ``i`` travels through as a bubble.

Flow control: a global-enable pipeline. Every register, including the ``valid`` bit of each stage,
advances only when ``en = ~o.valid | o.ready``, and ``i.ready = en``. When ``o`` is stalled the
whole pipeline holds, so ``o.payload`` is stable and no beat is lost or duplicated. ``i.ready``
does not depend on ``i.valid`` (it does combinationally depend on ``o.ready``).

Parameters: ``multiplier``, ``shift``, ``zero_point`` and ``relu`` are plain inputs read by the
stages as a beat passes them (``multiplier`` in S1, ``shift`` in S3/S4 and S5, ``zero_point`` in S5
and S6, ``relu`` in S6). They must be set no later than the cycle the first beat of a GEMM is
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

__all__ = ["LATENCY", "Requantizer", "requant_layouts"]

#: Clock cycles from a handshake on ``i`` to the same row's ``o.valid``, when never stalled.
LATENCY = REQUANT_LATENCY

ACC_WIDTH = 32
OUT_WIDTH = 8


def requant_layouts(config: AcceleratorConfig) -> dict[str, data.StructLayout]:
    """The payload layouts of the requantizer's streams, keyed by member name (``i``, ``o``)."""
    return {
        "i": data.StructLayout({"c": data.ArrayLayout(signed(ACC_WIDTH), config.cols), "last": 1}),
        "o": data.StructLayout({"c": data.ArrayLayout(signed(OUT_WIDTH), config.cols), "last": 1}),
    }


class Requantizer(wiring.Component):
    """Requantizes one row of ``config.cols`` ``int32`` accumulators to ``int8`` per cycle.

    See the module docstring for the arithmetic, the pipeline stages and the latency
    (:data:`LATENCY` = 6 cycles).

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
        m.d.comb += [
            en.eq(~self.o.valid | self.o.ready),
            self.i.ready.eq(en),
        ]

        # valid and last travel alongside the data, one register per stage S1 … S6.
        valid = [Signal(name=f"s{k}_valid") for k in range(1, LATENCY + 1)]
        last = [Signal(name=f"s{k}_last", reset_less=True) for k in range(1, LATENCY + 1)]
        with m.If(en):
            m.d.sync += [
                valid[0].eq(self.i.valid),
                last[0].eq(self.i.payload.last),
            ]
            for k in range(1, LATENCY):
                m.d.sync += [valid[k].eq(valid[k - 1]), last[k].eq(last[k - 1])]
        m.d.comb += [
            self.o.valid.eq(valid[-1]),
            self.o.payload.last.eq(last[-1]),
        ]

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

        for lane in range(cols):
            s1_acc = Signal(signed(ACC_WIDTH), name=f"s1_acc_{lane}", reset_less=True)
            s1_mul = Signal(unsigned(31), name=f"s1_mul_{lane}", reset_less=True)
            s2_p = Signal(signed(63), name=f"s2_p_{lane}", reset_less=True)
            s3_x = Signal(signed(ACC_WIDTH), name=f"s3_x_{lane}", reset_less=True)
            s4_t = Signal(signed(ACC_WIDTH + 1), name=f"s4_t_{lane}", reset_less=True)
            s5_z = Signal(signed(ACC_WIDTH + 1), name=f"s5_z_{lane}", reset_less=True)
            s6_o = Signal(signed(OUT_WIDTH), name=f"s6_o_{lane}", reset_less=True)
            with m.If(en):
                m.d.sync += [
                    # S1: the multiplier's input registers.
                    s1_acc.eq(self.i.payload.c[lane]),
                    s1_mul.eq(self.multiplier),
                    # S2: its output register. |p| < 2**62, so 63 bits hold it.
                    s2_p.eq(s1_acc * s1_mul),
                    # S3: SRDHM, floor((p + 2**30) / 2**31); the result fits 32 bits.
                    s3_x.eq(((s2_p >> 30) + 1) >> 1),
                    # S4: RoundingDivideByPOT's offset; x + 2**30 needs the 33rd bit.
                    s4_t.eq(s3_x + Mux(s3_x < 0, half_neg, half_pos)),
                    # S5: the arithmetic shift floors; y fits 32 bits, y + zero_point 33.
                    s5_z.eq((s4_t >> self.shift) + self.zero_point),
                ]
                # S6: ReLU and saturation in one clamp.
                with m.If(s5_z > upper):
                    m.d.sync += s6_o.eq(upper)
                with m.Elif(s5_z < lower):
                    m.d.sync += s6_o.eq(lower)
                with m.Else():
                    m.d.sync += s6_o.eq(s5_z)
            m.d.comb += self.o.payload.c[lane].eq(s6_o)

        return m
