"""A serial multiply-add: ``result = a·b + addend``, one bit of ``a`` per cycle.

The engine needs a handful of products per command (the address-range check and the row steps
of its running addresses), once, at set-up. Combinational 16×32 multipliers for them cost more
logic cells than the whole systolic array on an iCE40 and every DSP block it has; one shift-add
unit costs about 150 cells and ``1 + bit_length(a)`` cycles per product.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..model.geometry import serial_cycles

__all__ = ["SerialMulAdd", "serial_cycles"]


class SerialMulAdd(wiring.Component):
    """``result = a·b + addend``, unsigned.

    Members
    -------
    start : In(1)
        Take ``a``, ``b`` and ``addend`` (ignored while ``busy``).
    a : In(a_width)
        The multiplier: its bits are consumed LSB first, and the unit stops at its highest set
        bit, so a small ``a`` is fast (:func:`serial_cycles`).
    b : In(b_width)
    addend : In(b_width + 2)
    busy : Out(1)
        High from the cycle after ``start`` until ``result`` is valid.
    result : Out(a_width + b_width + 1)
        Valid while ``busy`` is low after a ``start``; kept until the next one.
    """

    def __init__(self, a_width: int = 16, b_width: int = 32):
        self._a_width, self._b_width = a_width, b_width
        super().__init__({
            "start": In(1), "a": In(a_width), "b": In(b_width), "addend": In(b_width + 2),
            "busy": Out(1), "result": Out(a_width + b_width + 1),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        width = len(self.result)
        multiplicand = Signal(width)
        multiplier = Signal(self._a_width)
        # The start cycle only takes the operands: adding the first bit then put two adders
        # behind the engine's own addend adder, on the board tops' longest path; so `a` of bit
        # length L takes L cycles after it.
        with m.If(self.start & ~self.busy):
            m.d.sync += [self.result.eq(self.addend), multiplicand.eq(self.b),
                         multiplier.eq(self.a), self.busy.eq(1)]
        with m.Elif(self.busy):
            with m.If(multiplier[0]):
                m.d.sync += self.result.eq(self.result + multiplicand)
            m.d.sync += [multiplicand.eq(multiplicand << 1), multiplier.eq(multiplier >> 1),
                         self.busy.eq((multiplier >> 1) != 0)]
        return m
