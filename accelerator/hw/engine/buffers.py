"""The flags of the GemmEngine's double buffers, set and cleared by different stages."""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from .signatures import (
    AccumulatorFlags,
    FeederFlags,
    LoaderFlags,
    RunSignature,
    StoreFlags,
    WeightFlags,
)

__all__ = ["Buffers"]


class Buffers(wiring.Component):
    """A bit per half of the A, B and C double buffers: ``busy`` (claimed by the loader),
    ``full`` / ``ready`` (its data has arrived) and, for C, ``done`` (the accumulator finished
    the chunk in it). A half is free again when the stage that uses it last releases it: the
    feeder (A; B output-stationary), both feeders (B weight-stationary: the operand feeder can
    be a few beats ahead of the weight feeder, or the other way round), the store (C).

    Members
    -------
    run : In(RunSignature())
        ``restart`` clears every flag.
    loader, feeder, weights, accumulator, store : In(...)
        Each stage's flags (:mod:`~accelerator.hw.engine.signatures`); ``weights`` only
        weight-stationary.
    """

    def __init__(self, dataflow: str):
        self._dataflow = dataflow
        members = {"run": In(RunSignature()), "loader": In(LoaderFlags()),
                   "feeder": In(FeederFlags(dataflow)), "accumulator": In(AccumulatorFlags()),
                   "store": In(StoreFlags())}
        if dataflow == "ws":
            members["weights"] = In(WeightFlags())
        super().__init__(members)

    def elaborate(self, platform) -> Module:
        m = Module()
        restart = self.run.restart

        def flag(name: str, set_, clr) -> Signal:
            value = Signal(2, name=name)
            with m.If(restart):
                m.d.sync += value.eq(0)
            with m.Else():
                m.d.sync += value.eq((value | set_) & ~clr)
            return value

        ld, fd, st = self.loader, self.feeder, self.store
        if self._dataflow == "os":
            b_release = fd.b_release
        else:
            b_release = Signal(2)
            wt = self.weights
            used_o = flag("b_used_o", fd.b_use, b_release)
            used_w = flag("b_used_w", wt.b_use, b_release)
            m.d.comb += [b_release.eq(used_o & used_w), fd.b_used.eq(used_o),
                         wt.b_used.eq(used_w)]
        a_full = flag("a_full", ld.a_filled, fd.a_release)
        b_full = flag("b_full", ld.b_filled, b_release)
        c_ready = flag("c_ready", ld.c_ready, st.c_release)
        c_done = flag("c_done", self.accumulator.c_done, st.c_release)
        m.d.comb += [
            ld.a_busy.eq(flag("a_busy", ld.a_claim, fd.a_release)),
            ld.b_busy.eq(flag("b_busy", ld.b_claim, b_release)),
            ld.c_busy.eq(flag("c_busy", ld.c_claim, st.c_release)),
            fd.a_full.eq(a_full), fd.b_full.eq(b_full), fd.c_ready.eq(c_ready),
            st.c_done.eq(c_done),
        ]
        if self._dataflow == "ws":
            m.d.comb += self.weights.b_full.eq(b_full)
        return m
