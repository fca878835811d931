"""Processing elements: one multiply-accumulate each, for the two dataflows.

Both PEs advance only when ``en`` is high (the array's single stall) and register every value they
pass on, so a signal crosses at most one PE per cycle and the array's critical path is one
multiply-add, whatever its size.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..config import AcceleratorConfig

__all__ = ["OutputStationaryPE", "WeightStationaryPE", "lut_product"]


def lut_product(a, b):
    """``a·b`` of two signed values, as a sum of shifted partial products.

    Synthesis maps a ``*`` to a DSP block; a device with fewer DSP blocks than PEs builds the
    rest of the multipliers from this, which yosys keeps in LUTs and carry chains. Two's
    complement: ``b = -b[w-1]·2^(w-1) + Σ b[i]·2^i``, so the top partial product is subtracted.
    """
    width = len(a) + len(b)
    wide = a.as_signed()
    terms = [Mux(b[i], wide << i, 0) for i in range(len(b) - 1)]
    total = terms[0] if terms else 0
    for term in terms[1:]:
        total = total + term
    top = Mux(b[len(b) - 1], wide << (len(b) - 1), 0)
    return (total - top)[:width].as_signed()


class OutputStationaryPE(wiring.Component):
    """Output-stationary PE: accumulates one element of C while A passes right and B passes down.

    The control flags travel down with B: ``valid`` (the beat carries data), ``first`` (the beat
    starts a new tile: the accumulator restarts from the product) and ``last`` (the beat ends the
    tile: the sum moves to the output slot so that the accumulator can take the next tile at once).

    The output slots of a column form a shift chain towards the bottom. A slot loaded with a result
    holds it (``held``) until the column's ``drain`` pulse, which comes when the bottom PE has
    loaded too; from then the slot shifts, so a column drains one result per cycle, bottom first,
    while the accumulators already work on the next tile. Results enter the chain one row apart in
    time, so a slot must not shift before every slot has loaded: that is what ``held`` is for.

    Members
    -------
    en : In(1)
        Advance one cycle.
    a_in, a_out : In / Out(signed(in_width))
        The A operand from the left and to the right.
    b_in, b_out : In / Out(signed(in_width))
        The B operand from above and to below.
    valid_in, first_in, last_in; valid_out, first_out, last_out : In / Out(1)
        The flags travelling with B.
    chain_in, chain_out : In / Out(signed(acc_width))
        The output slot of the PE above, and this PE's output slot.
    chain_valid_in, chain_valid_out : In / Out(1)
        Whether those slots hold a result.
    drain : In(1)
        The column starts to shift its results out.
    """

    def __init__(self, config: AcceleratorConfig, *, dsp: bool = True):
        self._config = config
        self._dsp = dsp
        op = signed(config.in_width)
        acc = signed(config.acc_width)
        super().__init__({
            "en": In(1),
            "a_in": In(op), "a_out": Out(op),
            "b_in": In(op), "b_out": Out(op),
            "valid_in": In(1), "first_in": In(1), "last_in": In(1),
            "valid_out": Out(1), "first_out": Out(1), "last_out": Out(1),
            "chain_in": In(acc), "chain_out": Out(acc),
            "chain_valid_in": In(1), "chain_valid_out": Out(1),
            "drain": In(1),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        acc_shape = signed(self._config.acc_width)
        acc = Signal(acc_shape)
        acc_next = Signal(acc_shape)
        held = Signal()
        # Truncation to acc_width is the two's-complement wrap of the reference model.
        product = self.a_in * self.b_in if self._dsp else lut_product(self.a_in, self.b_in)
        m.d.comb += acc_next.eq(Mux(self.first_in, 0, acc) + product)

        with m.If(self.en):
            m.d.sync += [
                self.a_out.eq(self.a_in),
                self.b_out.eq(self.b_in),
                self.valid_out.eq(self.valid_in),
                self.first_out.eq(self.first_in),
                self.last_out.eq(self.last_in),
            ]
            with m.If(self.valid_in):
                m.d.sync += acc.eq(acc_next)
            with m.If(self.valid_in & self.last_in):
                m.d.sync += [
                    self.chain_out.eq(acc_next),
                    self.chain_valid_out.eq(1),
                    held.eq(1),
                ]
            with m.Elif(~held | self.drain):
                m.d.sync += [
                    self.chain_out.eq(self.chain_in),
                    self.chain_valid_out.eq(self.chain_valid_in),
                    held.eq(0),
                ]
        return m


class WeightStationaryPE(wiring.Component):
    """Weight-stationary PE: holds one weight, adds its product into the partial sum passing down.

    Three weight registers let the next tile's weights arrive while the current ones are in use:
    ``pass`` is a stage of the column's load chain (``w_in`` to ``w_out`` when ``w_shift``),
    ``shadow`` takes a copy of ``pass`` on ``capture``, and ``active`` takes ``shadow`` when a
    beat flagged ``first`` arrives, so each PE switches weights exactly when the new tile's first
    activation reaches it, one diagonal of the array per cycle.

    Members
    -------
    en : In(1)
        Advance one cycle.
    a_in, a_out : In / Out(signed(in_width))
        The activation from the left and to the right.
    valid_in, first_in, last_in; valid_out, first_out, last_out : In / Out(1)
        The flags travelling with the activation.
    psum_in, psum_out : In / Out(signed(acc_width))
        The partial sum from above and to below.
    w_in, w_out : In / Out(signed(in_width))
        The weight load chain.
    w_shift, capture : In(1)
        Shift the load chain; copy it into the shadow weight.
    """

    def __init__(self, config: AcceleratorConfig, *, dsp: bool = True):
        self._config = config
        self._dsp = dsp
        op = signed(config.in_width)
        acc = signed(config.acc_width)
        super().__init__({
            "en": In(1),
            "a_in": In(op), "a_out": Out(op),
            "valid_in": In(1), "first_in": In(1), "last_in": In(1),
            "valid_out": Out(1), "first_out": Out(1), "last_out": Out(1),
            "psum_in": In(acc), "psum_out": Out(acc),
            "w_in": In(op), "w_out": Out(op),
            "w_shift": In(1), "capture": In(1),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        op = signed(self._config.in_width)
        shadow = Signal(op)
        active = Signal(op)
        weight = Signal(op)
        m.d.comb += weight.eq(Mux(self.first_in, shadow, active))
        product = self.a_in * weight if self._dsp else lut_product(self.a_in, weight)

        with m.If(self.en):
            m.d.sync += [
                self.a_out.eq(self.a_in),
                self.valid_out.eq(self.valid_in),
                self.first_out.eq(self.first_in),
                self.last_out.eq(self.last_in),
                # Truncation to acc_width is the two's-complement wrap of the reference model.
                self.psum_out.eq(self.psum_in + product),
            ]
            with m.If(self.w_shift):
                m.d.sync += self.w_out.eq(self.w_in)
            with m.If(self.capture):
                m.d.sync += shadow.eq(self.w_out)
            with m.If(self.valid_in & self.first_in):
                m.d.sync += active.eq(shadow)
        return m
