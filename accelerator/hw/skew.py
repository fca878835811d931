"""Per-lane delay lines: the skew in front of a systolic array and the de-skew behind it."""

from __future__ import annotations

from collections.abc import Sequence

from amaranth.hdl import Module, ShapeLike, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Skew"]


class Skew(wiring.Component):
    """Delays lane ``k`` of a vector by ``delays[k]`` enabled clock cycles.

    A systolic array meets operand ``k`` of a beat ``k`` cycles late, so the lanes of a beat must
    enter ``k`` cycles apart (skew) and the results must be realigned on the way out (de-skew).
    Every register advances only when ``en`` is high, so a stalled array keeps its wavefront.

    Members
    -------
    en : In(1), or In(len(delays)) with ``lane_enables``
        Advance all delay lines by one step; with ``lane_enables``, bit ``k`` advances lane ``k``
        (copies of one enable, so that no single net reaches every register of a wide skew).

    ``reset_less``: the delay lines carry data, whose flags travel in another skew; no reset
    (its fan-out limits the clock of a large array).
    i : In(ArrayLayout(shape, len(delays)))
        The vector entering, all lanes in the same cycle.
    o : Out(ArrayLayout(shape, len(delays)))
        The vector leaving; lane ``k`` is ``i[k]`` from ``delays[k]`` steps ago (0: combinational).
    i_next : In(ArrayLayout(shape, len(delays)))
        What ``i`` will be after the next step (only lanes without delay use it).
    o_next : Out(ArrayLayout(shape, len(delays)))
        What ``o`` will be after the next step: a PE registers its product a cycle ahead with it.
    """

    def __init__(self, shape: ShapeLike, delays: Sequence[int], *, lane_enables: bool = False,
                 reset_less: bool = False):
        if not delays:
            raise ValueError("Skew needs at least one lane")
        if any(d < 0 for d in delays):
            raise ValueError(f"Skew delays must be non-negative, not {list(delays)}")
        self._shape = shape
        self._delays = tuple(delays)
        self._lane_enables = lane_enables
        self._reset_less = reset_less
        layout = data.ArrayLayout(shape, len(delays))
        super().__init__({"en": In(len(delays) if lane_enables else 1),
                          "i": In(layout), "o": Out(layout),
                          "i_next": In(layout), "o_next": Out(layout)})

    @property
    def delays(self) -> tuple[int, ...]:
        return self._delays

    def elaborate(self, platform) -> Module:
        m = Module()
        for lane, delay in enumerate(self._delays):
            value, upcoming = self.i[lane], self.i_next[lane]
            en = self.en[lane] if self._lane_enables else self.en
            for stage in range(delay):
                reg = Signal(self._shape, name=f"lane{lane}_d{stage + 1}",
                             reset_less=self._reset_less)
                with m.If(en):
                    m.d.sync += reg.eq(value)
                value, upcoming = reg, value
            m.d.comb += [self.o[lane].eq(value), self.o_next[lane].eq(upcoming)]
        return m
