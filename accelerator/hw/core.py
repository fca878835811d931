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

Flow control: all registers of the core advance together when ``results`` can move. An input
beat that is not valid enters the array as a bubble, so the core never waits for a complete tile.
Pipelined (the default but on an iCE40) the enable is registered and copied per PE, with a skid
buffer on ``results`` (:meth:`SystolicCore._flow_control`); the cycles are the same unless
``results`` is held up. See docs/architecture.md for timing.
"""

from __future__ import annotations

import itertools

from amaranth.hdl import (
    Array,
    Cat,
    ClockDomain,
    ClockSignal,
    Const,
    DomainRenamer,
    Instance,
    Module,
    Mux,
    ResetInserter,
    ResetSignal,
    Signal,
    Value,
    signed,
)
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import AcceleratorConfig
from .floorplan import dsp_floorplan
from .pe import OutputStationaryPE, ProductPair, WeightStationaryPE, _is_ecp5, pipelined_on
from .pe_ecp5 import pe_class as registered_pe_class
from .skew import Skew

#: Registers between the registered-DSP core's flow control and a PE's enable
#: (:meth:`SystolicCore._enable_tree`): the results its output buffer keeps.
ENABLE_LEVELS = 3

__all__ = ["ENABLE_LEVELS", "InPlaceCore", "SystolicCore", "core_layouts", "register_copy",
           "trellis_ff_params"]


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
        The PEs register their products (:mod:`accelerator.hw.pe`), and the array's enable is a
        register with a copy per PE and a skid buffer on ``results`` (:meth:`_flow_control`);
        None: everywhere but on an iCE40. The cycles are the same either way as long as
        ``results`` is not held up.
    backpressure : bool
        ``results.ready`` may be low when a result is valid. False: the consumer takes every
        result in the cycle it is valid (the GEMM engine's accumulator, a proved property:
        ``accel formal``'s ``engine-gemm-fair``), ``results.ready`` is not read, and the core has
        no enable, skid buffer or result buffer: the array advances every cycle.
    """

    def __init__(self, config: AcceleratorConfig, *, dsp_pes: int | None = None,
                 paired_pes: int = 0, pipelined: bool | None = None, backpressure: bool = True):
        # A core refused here was never built: not an elaboratable left unused (Amaranth's
        # warning for one is silenced per object by this flag of its MustUse base).
        if dsp_pes is not None and not dsp_pes >= 0:
            self._MustUse__silence = True
            raise ValueError(f"dsp_pes = {dsp_pes} is out of range (allowed: 0 or more)")
        self._config = config
        self._dsp_pes = config.pes if dsp_pes is None else min(dsp_pes, config.pes)
        if not (0 <= paired_pes <= self._dsp_pes and paired_pes % 2 == 0):
            self._MustUse__silence = True
            raise ValueError(f"paired_pes = {paired_pes} is out of range (allowed: an even "
                             f"number from 0 to dsp_pes = {self._dsp_pes})")
        self._paired_pes = paired_pes
        self._pipelined = pipelined
        self._backpressure = backpressure
        super().__init__(self._members(config))

    def _members(self, config: AcceleratorConfig) -> dict:
        members = {name: (Out if name == "results" else In)(stream.Signature(layout))
                   for name, layout in core_layouts(config).items()}
        members["busy"] = Out(1)
        return members

    @property
    def config(self) -> AcceleratorConfig:
        return self._config

    @property
    def dsp_pes(self) -> int:
        """PEs whose multiplier is a ``*`` (the first ones in row-major order)."""
        return self._dsp_pes

    def _make_pes(self, m: Module, pe_class, platform, **pe_options) -> list[list]:
        """The R×C PEs, added to ``m``; the first ``paired_pes`` on :class:`ProductPair` units.

        On an ECP5 whose DSP sites are known, an array with every PE in a DSP block is
        floorplanned (:func:`~accelerator.hw.floorplan.dsp_floorplan`).
        """
        cfg = self._config
        R, C = cfg.rows, cfg.cols
        paired = self._paired_pes
        pe_class = registered_pe_class(pe_class, cfg)
        sites = None
        if (_is_ecp5(platform) and self._dsp_pes == R * C and not paired
                and cfg.in_width <= 18):
            sites = dsp_floorplan(platform.device, R, C)
        flat = [pe_class(cfg, dsp=i < self._dsp_pes, product_port=i < paired,
                         pipelined=self._pipelined,
                         dsp_site=sites[i // C][i % C] if sites else None, **pe_options)
                for i in range(R * C)]
        for i, pe in enumerate(flat):
            name = f"pe_{i // C}_{i % C}"
            m.submodules[name] = self._with_own_reset(m, platform, name, pe,
                                                      group=f"row_{i // C}")
        for i in range(0, paired, 2):
            m.submodules[f"mul_{i // 2}"] = pair = ProductPair(cfg.in_width)
            first, second = flat[i], flat[i + 1]
            m.d.comb += [
                pair.a0.eq(first.mul_a), pair.b0.eq(first.mul_b), first.product.eq(pair.p0),
                pair.a1.eq(second.mul_a), pair.b1.eq(second.mul_b), second.product.eq(pair.p1),
            ]
        return [flat[p * C:(p + 1) * C] for p in range(R)]

    def elaborate(self, platform) -> Module:
        if self._config.registered_dsp and not (self.is_pipelined(platform)
                                                and not self._paired_pes):
            raise ValueError("registered_dsp needs a pipelined core without paired PEs "
                             "(not an iCE40's)")
        self._reset_groups: dict[str, Signal] = {}
        self._reset_root: Signal | None = None
        if self._config.dataflow == "os":
            return self._elaborate_os(platform)
        return self._elaborate_ws(platform)

    # -- shared pieces --------------------------------------------------------------------------

    def _flow_control(self, m: Module, platform, column_values, column_valid, column_last, *,
                      stored_last: bool = True, column_valids=None,
                      control_reset: bool = False, valid_ahead=None):
        """Realign the columns' results, drive ``results``; return the enables.

        Returns ``enable(name)``, which gives a signal that is high when the array advances.
        Without a pipelined core that is ``~results.valid | results.ready``, one net reaching
        every register of the array, and each call returns it.

        Pipelined, the enable is a register, and each call makes another copy of it, so that no
        net reaches more than one PE: on a 12×12 array on an ECP5 the single enable was the
        longest path (1 ns of logic, 15 ns of routing to 17,700 flip-flops). The enable learns
        of back-pressure a cycle late, so a skid buffer keeps the one result the array makes in
        that cycle; when ``results`` is never held up, the skid stays empty, the enable stays
        high and every cycle is as without it.
        """
        cfg = self._config
        results = self.results
        no_reset = self.is_pipelined(platform)
        # Column j reaches the bottom j cycles after column 0: delay it by C-1-j.
        m.submodules.deskew = deskew = Skew(signed(cfg.acc_width),
                                            [cfg.cols - 1 - j for j in range(cfg.cols)],
                                            lane_enables=True, reset_less=no_reset)
        for j in range(cfg.cols):
            m.d.comb += deskew.i[j].eq(column_values[j])
        # The last column needs no delay, so its flags are already aligned with the output.
        out = Signal(results.payload.shape())
        m.d.comb += [out.c.eq(deskew.o), out.last.eq(column_last)]

        if not self._backpressure:   # every result is taken: the array never stops
            m.d.comb += [results.payload.eq(out), results.valid.eq(column_valid),
                         deskew.en.eq((1 << cfg.cols) - 1)]
            return lambda name, near=None: Const(1)

        if not no_reset:             # not pipelined
            en = Signal()
            m.d.comb += [
                en.eq(~results.valid | results.ready),
                results.payload.eq(out),
                results.valid.eq(column_valid),
                deskew.en.eq(en.replicate(cfg.cols)),
            ]
            return lambda name, near=None: en

        if cfg.registered_dsp:
            valids = None
            if column_valids is not None:
                # each column's valid flag realigned as its results: column j's flags are the
                # last column's, C-1-j enabled cycles early, so lane j equals `column_valid`
                valids = Skew(1, [cfg.cols - 1 - j for j in range(cfg.cols)], lane_enables=True)
                m.submodules.deskew_valid = self._with_own_reset(m, platform, "deskew_valid",
                                                                 valids, group="deskew_valid")
                for j in range(cfg.cols):
                    m.d.comb += valids.i[j].eq(column_valids[j])
            return self._enable_tree(m, platform, deskew, out, column_valid,
                                     stored_last=stored_last, valids=valids,
                                     control_reset=control_reset, valid_ahead=valid_ahead)

        skid = Signal.like(out, reset_less=no_reset)
        skid_valid = Signal()
        held = Signal()              # a result waits at the next edge: the array must stop
        m.d.comb += [
            results.valid.eq(skid_valid | column_valid),
            results.payload.last.eq(Mux(skid_valid, skid.last, out.last)),
            held.eq(results.valid & ~results.ready),
        ]
        m.d.sync += skid_valid.eq(held)
        with m.If(~skid_valid):
            m.d.sync += skid.last.eq(out.last)
        # Each column's lane of the skid selects and loads on its own copy of skid_valid (the
        # single one reached 385 flip-flops and multiplexers: 9.3 ns of routing). A copy lags
        # the reset by a cycle, in which no result can be valid yet.
        for j in range(cfg.cols):
            full = register_copy(m, platform, held, f"skid_valid_{j}", init=0)
            m.d.comb += results.payload.c[j].eq(Mux(full, skid.c[j], out.c[j]))
            with m.If(~full):
                m.d.sync += skid.c[j].eq(out.c[j])

        def enable(name: str, near: tuple[int, int] | None = None) -> Signal:
            return register_copy(m, platform, ~held, name, init=1)

        m.d.comb += deskew.en.eq(_copies(enable, "en_deskew", cfg.cols))
        return enable

    def _enable_tree(self, m: Module, platform, deskew: Skew, out, column_valid, *,
                     stored_last: bool, valids: Skew | None = None,
                     control_reset: bool = False, valid_ahead=None):
        """The registered-DSP core's flow control: the enable through ``ENABLE_LEVELS``
        registers (a root, a copy per region of the array, a copy per PE or lane), and a
        buffer of as many results behind the de-skew. Returns ``enable(name, near)``.

        At 112 MHz the one-level copies were the 12×13 core's longest path on an LFE5U-85F:
        the bottom-right PE's valid flag, through ``results.ready``'s LUT, to a copy across the
        die (6.3 ns of routing in 8.9 ns). Here the enable a PE sees in cycle t was decided in
        cycle t - ENABLE_LEVELS, from the buffer's fill alone: it is high when the buffer would
        be empty after that cycle, so the results the array can make before the decision
        arrives (at most one per cycle, ENABLE_LEVELS of them) always find a slot. Each route
        of the tree ends at flip-flops with no logic in between, and the buffer's slots load
        whatever the columns show at their write slot (the pointers advance only on a result
        that stays), so no signal of the control reaches the data lanes but a copy per column.
        When ``results`` is always ready the buffer stays empty, every enable stays high and
        the cycles are the core's without it.

        ``stored_last``: the column's ``last`` goes through the buffer with its results
        (weight-stationary); otherwise (output-stationary) it counts the rows handed out
        already, so it stays what the output shows. ``control_reset``: the buffer's control
        and its replicas are units with a reset of their own (:meth:`_with_own_reset`).
        ``valid_ahead``: what ``column_valid`` (a flag with a reset) is in the next enabled
        cycle; each replica then reads a register of it of its own region (equal to
        ``column_valid``).
        """
        cfg = self._config
        results = self.results
        levels = ENABLE_LEVELS
        slots = levels + 1                     # the write slot never holds a waiting result
        count = Signal(range(levels + 1))      # results waiting in the buffer
        wptr = Signal(range(slots))
        rptr = Signal(range(slots))
        roots: dict[object, Signal] = {}

        def enable(name: str, near: tuple[int, int] | None = None) -> Signal:
            group = ("ctl" if near is None
                     else (near[0] * 3 // cfg.rows, near[1] * 4 // cfg.cols))
            if group not in roots:
                label = "ctl" if near is None else f"{group[0]}_{group[1]}"
                roots[group] = register_copy(m, platform, root, f"en_region_{label}", init=1)
            return register_copy(m, platform, roots[group], name, init=1)

        go = Signal()
        root = register_copy(m, platform, go, "en_root", init=1)

        def control(suffix: str, en_here, count, wptr, rptr, column_valid=column_valid):
            """The buffer's pointers and fill, next: (waiting, count_next, wptr_next,
            rptr_next)."""
            waiting, direct, push, pop = (Signal(name=f"{n}{suffix}")
                                          for n in ("waiting", "direct", "push", "pop"))
            count_next = Signal.like(count, name=f"count_next{suffix}")
            m.d.comb += [
                waiting.eq(count != 0),
                pop.eq(waiting & results.ready),
                direct.eq(~waiting & results.ready),
                push.eq(en_here & column_valid & ~direct),
                count_next.eq(count + push - pop),
            ]
            wptr_next = Mux(push, Mux(wptr == slots - 1, 0, wptr + 1), wptr)
            rptr_next = Mux(pop, Mux(rptr == slots - 1, 0, rptr + 1), rptr)
            # A unit with a reset of its own: from the reset's source, the route to a
            # replica's pointer crossed the die (os: 6.4 ns of routing, 135.7 MHz; ws, with a
            # replica per column: 6.1 ns, 141.7 MHz).
            unit = Module() if control_reset else m
            unit.d.sync += [count.eq(count_next), wptr.eq(wptr_next), rptr.eq(rptr_next)]
            if control_reset:
                name = f"buffer_ctl{suffix}"
                m.submodules[name] = self._with_own_reset(m, platform, name, unit, group=name)
            return waiting, count_next, wptr_next, rptr_next

        en_here = enable("en_buffer")
        enable.ahead = roots["ctl"]           # what every enable is in the next cycle
        waiting, count_next, _, _ = control("", en_here, count, wptr, rptr)
        m.d.comb += [results.valid.eq(waiting | (column_valid & en_here)),
                     go.eq(count_next == 0)]
        # A replica of the pointers and the fill per region of columns, on the region's own
        # copy of the enable (so yosys keeps them apart), for that region's copies: from the
        # one control, the read pointer reached copies across the die (5.5 ns of routing,
        # 125.3 MHz, os). They see the same inputs from the same reset, so they stay equal.
        # With `valids`, each reads the valid flag of a column of its own region: the last
        # column's, read by every replica, crossed the die instead (3.6 ns, 123.8 MHz, os).
        # With `valid_ahead`, each reads a register of the flag of its own, beside it: the one
        # flag, read by every replica, was 2.3 ns of routing from region 0's (145.9 MHz, ws).
        # Weight-stationary (`valid_ahead`), a replica per column, each with its own register
        # of the flag (148.4 MHz, with the control on resets of its own, against 145.9);
        # output-stationary the same was slower (143.0 MHz against 146.8).
        def region(j: int) -> int:
            return j if valid_ahead is not None else j * 4 // cfg.cols

        regions = {}
        for j in range(cfg.cols):
            q = region(j)
            if q not in regions:
                valid_q = column_valid if valids is None else valids.o[j]
                if valids is None and valid_ahead is not None:
                    valid_q, _ = self._delayed(
                        m, platform, enable(f"en_valid_{q}", (cfg.rows - 1, j)),
                        valid_ahead, 1, f"valid_{q}")
                regions[q] = control(f"_{q}", enable(f"en_buffer_{q}", (cfg.rows - 1, j)),
                                     Signal.like(count, name=f"count_{q}"),
                                     Signal.like(wptr, name=f"wptr_{q}"),
                                     Signal.like(rptr, name=f"rptr_{q}"),
                                     valid_q)

        def copies(value, name: str) -> Value:
            """A copy of the register ``value`` will be next, per bit, for one column."""
            return Cat(register_copy(m, platform, value[k], f"{name}_{k}", init=0)
                       for k in range(len(value)))

        last_slots = [Signal(name=f"buffer_last_{e}") for e in range(slots)]
        if stored_last:
            for e in range(slots):
                with m.If(wptr == e):
                    m.d.sync += last_slots[e].eq(out.last)
            m.d.comb += results.payload.last.eq(
                Mux(waiting, Array(last_slots)[rptr], out.last))
        else:
            m.d.comb += results.payload.last.eq(out.last)
        for j in range(cfg.cols):
            _, count_q, wptr_q, rptr_q = regions[region(j)]
            # per byte of the lane: with a copy per column, one copy of the read pointer
            # reached its 32 read multiplexers through 3.3 ns of routing (134.9 MHz, ws)
            for lo in range(0, cfg.acc_width, 8):
                hi = min(lo + 8, cfg.acc_width)
                name = f"{j}_{lo // 8}"
                w_j = copies(wptr_q, f"buffer_wptr_{name}")
                r_j = copies(rptr_q, f"buffer_rptr_{name}")
                full_j = register_copy(m, platform, count_q != 0, f"buffer_waiting_{name}",
                                       init=0)
                lane = [Signal(hi - lo, name=f"buffer_{name}_{e}", reset_less=True)
                        for e in range(slots)]
                for e in range(slots):
                    with m.If(w_j == e):
                        m.d.sync += lane[e].eq(out.c[j][lo:hi])
                m.d.comb += results.payload.c[j][lo:hi].eq(
                    Mux(full_j, Array(lane)[r_j], out.c[j][lo:hi]))
        m.d.comb += deskew.en.eq(Cat(enable(f"en_deskew_{j}", (cfg.rows - 1, j))
                                     for j in range(cfg.cols)))
        if valids is not None:
            m.d.comb += valids.en.eq(Cat(enable(f"en_deskew_valid_{j}", (cfg.rows - 1, j))
                                         for j in range(cfg.cols)))
        return enable

    def _with_own_reset(self, m: Module, platform, name: str, unit, *, group: str):
        """``unit`` with a reset of its own, pipelined: a copy of the core's reset registered
        beside it, from a copy per ``group`` (a row of PEs).

        Once the data registers had no reset and the enable was copied, the reset of the flags
        of every PE, one net across the die, was the 12×12 core's longest path (10.2 ns of
        routing on an LFE5U-85F); with a copy per PE, the net from the core's reset to the
        copies was (11.1 ns in the weight-stationary core), hence the copy per group in between.
        A unit is released two cycles after the rest of the core (three on registered DSPs,
        whose groups take a root copy); :meth:`_released` keeps the
        inputs closed for the first of them, so no valid beat reaches a unit still in reset.
        """
        if not self.is_pipelined(platform):
            return unit
        # One reset-less domain for all of them, each unit's reset inserted into its own logic:
        # a domain per unit, defined here, was copied into every other unit's fragment as
        # Amaranth propagates domains down (quadratic: minutes of elaboration at 64×64).
        domain = "units_sync"
        if not self._reset_groups:   # the first unit
            m.domains += ClockDomain(domain, local=True, reset_less=True)
            m.d.comb += ClockSignal(domain).eq(ClockSignal("sync"))
        if group not in self._reset_groups:
            source = ResetSignal("sync", allow_reset_less=True)
            if self._config.registered_dsp:
                # one register more in front of the groups: from the reset's source (beside the
                # PLL), the route to a group's copy was the 12×13 core's longest path (8.6 ns of
                # routing, 110.0 MHz, ws)
                if self._reset_root is None:
                    self._reset_root = register_copy(m, platform, source, "rst_root", init=1)
                source = self._reset_root
            self._reset_groups[group] = register_copy(m, platform, source,
                                                      f"rst_group_{group}", init=1)
        reset = register_copy(m, platform, self._reset_groups[group], f"rst_{name}", init=1)
        return DomainRenamer({"sync": domain})(ResetInserter({"sync": reset})(unit))

    def _delayed(self, m: Module, platform, en, value, latency: int,
                 name: str) -> tuple[Value, list[Signal]]:
        """``value`` delayed by ``latency`` cycles in which ``en`` is high, and the registers of
        the delay (reset: they carry flags), a unit with a reset of its own
        (:meth:`_with_own_reset`): from the reset's source, the route to the weight-stationary
        core's delayed flags was its longest path (7.0 ns of routing, 126.6 MHz)."""
        if not latency:
            return value, []
        line = _DelayLine(value.shape(), latency, name)
        m.submodules[name] = self._with_own_reset(m, platform, name, line, group=name)
        m.d.comb += [line.en.eq(en), line.i.eq(value)]
        return line.stages[-1], line.stages

    def _released(self, m: Module, platform):
        """High from the second cycle after a reset: the inputs may take a beat.

        A beat taken in cycle ``c`` after the reset reaches the first PE and the flags skew's
        registers at the end of cycle ``c + 1``, which must be at least 2 (3 on registered DSPs),
        when the units'
        two-level reset copies (:meth:`_with_own_reset`) have released them.
        """
        if not self.is_pipelined(platform):
            return Const(1)
        released = Signal()
        if self._config.registered_dsp:   # the units' reset has a root register more
            early = Signal()
            m.d.sync += [early.eq(1), released.eq(early)]
        else:
            m.d.sync += released.eq(1)
        return released

    def is_pipelined(self, platform) -> bool:
        """Whether the core elaborated for ``platform`` is pipelined (see ``pipelined``)."""
        return pipelined_on(self._pipelined, platform)

    # -- output-stationary ------------------------------------------------------------------------

    def _elaborate_os(self, platform) -> Module:
        cfg = self._config
        R, C = cfg.rows, cfg.cols
        m = Module()
        no_reset = self.is_pipelined(platform)  # data registers (see _flow_control)

        pes = self._make_pes(m, OutputStationaryPE, platform)

        # Results leave the bottom of each column first, so logical row i sits in physical row
        # R-1-i: then row 0 of C is the first to come out.
        bottom = pes[R - 1]
        drains = [Signal(name=f"drain_{j}") for j in range(C)]
        # A PE that accumulates on its own copy of the flags (flag_lag) loads its output slot
        # in the cycle they show `last`, not the cycle after: the drain comes a cycle later.
        flag_lag = getattr(bottom[0], "flag_lag", 0)
        for j in range(C):
            if not flag_lag:
                m.d.comb += drains[j].eq(bottom[j].valid_out & bottom[j].last_out)

        out_row = Signal(range(max(R, 2)))  # a 1-bit counter even for R = 1: no [-1:0] ports
        enable = self._flow_control(
            m, platform,
            [bottom[j].chain_out for j in range(C)],
            bottom[C - 1].chain_valid_out,
            out_row == R - 1,
            stored_last=False,
            column_valids=[bottom[j].chain_valid_out for j in range(C)],
            control_reset=True,
        )
        taken = self.results.ready if self._backpressure else 1
        with m.If(self.results.valid & taken):
            m.d.sync += out_row.eq(Mux(out_row == R - 1, 0, out_row + 1))
        en = enable("en")
        # A registered PE's drain is a register of its own, a copy of its column's: one
        # register per column reached the 12 output slots' multiplexers of the column.
        drain_copies = flag_lag and cfg.registered_dsp
        # A PE whose slot loads slot_latency cycles after its last sum drains a cycle later
        # again: the copies then take a register of the bottom PE's flags.
        for j in range(C):
            if flag_lag and (cfg.slot_latency or not drain_copies):
                with m.If(enable(f"en_drain_{j}", (R - 1, j))):
                    m.d.sync += drains[j].eq(bottom[j].valid_out & bottom[j].last_out)

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
            op.ready.eq(en & ~hazard & self._released(m, platform)),
            accept.eq(op.valid & op.ready),
        ]
        in_a = Signal(data.ArrayLayout(signed(cfg.in_width), R), reset_less=no_reset)
        in_b = Signal(data.ArrayLayout(signed(cfg.in_width), C), reset_less=no_reset)
        in_flags = Signal(data.StructLayout({"valid": 1, "first": 1, "last": 1}))
        _lanes(m, enable, "en_in_a", in_a, op.payload.a, lambda k: (R - 1 - k, 0))
        _lanes(m, enable, "en_in_b", in_b, op.payload.b, lambda k: (0, k))
        with m.If(en):
            m.d.sync += [
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

        m.submodules.skew_a = skew_a = Skew(signed(cfg.in_width), list(range(R)),
                                            lane_enables=True, reset_less=no_reset)
        m.submodules.skew_b = skew_b = Skew(signed(cfg.in_width), list(range(C)),
                                            lane_enables=True, reset_less=no_reset)
        skew_f = Skew(in_flags.shape(), list(range(C)))
        m.submodules.skew_flags = self._with_own_reset(m, platform, "skew_flags", skew_f,
                                                           group="skew_flags")
        m.d.comb += [skew_a.en.eq(_copies(enable, "en_skew_a", R, lambda k: (k, 0))),
                     skew_b.en.eq(_copies(enable, "en_skew_b", C, lambda k: (0, k))),
                     skew_f.en.eq(enable("en_skew_flags"))]
        for p in range(R):
            m.d.comb += skew_a.i[p].eq(in_a[R - 1 - p])
        m.d.comb += skew_b.i.eq(in_b)
        # A registered DSP's products come product_latency cycles late: so do their flags.
        late_flags, flag_stages = self._delayed(m, platform, en, in_flags,
                                                cfg.product_latency - flag_lag, "flags")
        for j in range(C):
            m.d.comb += skew_f.i[j].eq(late_flags)
        # what in_a and in_b take at the next enabled edge (the PEs multiply a cycle ahead)
        for p in range(R):
            m.d.comb += skew_a.i_next[p].eq(op.payload.a[R - 1 - p])
        m.d.comb += skew_b.i_next.eq(op.payload.b)

        for p in range(R):
            for j in range(C):
                pe = pes[p][j]
                pe_en = enable(f"en_pe_{p}_{j}", (p, j))
                m.d.comb += pe.en.eq(pe_en)
                if j == 0:
                    m.d.comb += [pe.a_in.eq(skew_a.o[p]), pe.a_next.eq(skew_a.o_next[p])]
                else:
                    _link(m, pes, p, j, "west")
                if p == 0:
                    flags = skew_f.o[j]
                    m.d.comb += [
                        pe.b_next.eq(skew_b.o_next[j]),
                        pe.b_in.eq(skew_b.o[j]),
                        pe.valid_in.eq(flags.valid),
                        pe.first_in.eq(flags.first),
                        pe.last_in.eq(flags.last),
                        pe.chain_in.eq(0),
                        pe.chain_valid_in.eq(0),
                    ]
                else:
                    _link(m, pes, p, j, "north")
                drain = drains[j]
                if drain_copies:
                    source = (drains[j] if cfg.slot_latency
                              else bottom[j].valid_out & bottom[j].last_out)
                    drain = register_copy(m, platform, source, f"drain_{p}_{j}", init=0,
                                          enable=pe_en)
                m.d.comb += pe.drain.eq(drain)

        busy = (in_flags.valid | ~first | self.results.valid
                | _any(pes[p][j].valid_in for p in range(R) for j in range(C))
                | _any(pes[p][j].chain_valid_out for p in range(R) for j in range(C)))
        if flag_stages:
            busy = busy | _any(stage.valid for stage in flag_stages)
        if cfg.slot_latency:  # a finished sum on its way to the slots
            busy = busy | _any(drains)
        m.d.comb += self.busy.eq(busy)
        return m

    # -- weight-stationary ------------------------------------------------------------------------

    def _elaborate_ws(self, platform) -> Module:
        cfg = self._config
        R, C = cfg.rows, cfg.cols
        m = Module()
        no_reset = self.is_pipelined(platform)  # data registers (see _flow_control)

        pes = self._make_pes(m, WeightStationaryPE, platform)
        bottom = pes[R - 1]

        # A registered DSP's sums leave product_latency cycles after their flags.
        column_valid, column_last = bottom[C - 1].valid_out, bottom[C - 1].last_out
        flag_stages = []
        valid_ahead = None
        if cfg.product_latency:
            late_en = Signal(name="en_late_flags")
            valid_ahead = column_valid
            late, flag_stages = self._delayed(m, platform, late_en,
                                              Cat(column_valid, column_last),
                                              cfg.product_latency, "late_flags")
            column_valid, column_last = late[0], late[1]
            if len(flag_stages) > 1:
                valid_ahead = flag_stages[-2][0]
        enable = self._flow_control(
            m, platform,
            [bottom[j].psum_out for j in range(C)],
            column_valid,
            column_last,
            valid_ahead=valid_ahead if cfg.registered_dsp else None,
            control_reset=True,
        )
        en = enable("en")
        if flag_stages:
            m.d.comb += late_en.eq(enable("en_late_flags"))

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
        released = self._released(m, platform)
        # Registered DSPs: `capture` is a register, loaded with what the rule below gives in
        # the next cycle (the next values of its inputs, and the enable a cycle ahead); as a
        # comb of `loaded` it reached each PE's shadow weights (a 12×13 core's longest path).
        ahead = getattr(enable, "ahead", None) if R > 1 else None
        m.d.comb += [
            op.ready.eq(en & (~first | shadow_full) & released),
            a_accept.eq(op.valid & op.ready),
        ]
        if ahead is None:
            m.d.comb += capture.eq(en & (loaded == R) & taken
                                   & (since_first >= R - 1 if R > 1 else Const(1)))
        m.d.comb += [
            # loaded never exceeds R: `!=` is one LUT where `<` was a carry chain
            w.ready.eq(en & ((loaded != R) | capture) & released),
            w_accept.eq(w.valid & w.ready),
        ]
        if ahead is not None:
            starts = a_accept & first
            full_next = Mux(en & capture, 1, Mux(en & starts, 0, shadow_full))
            # `loaded_next == R` and `since_next >= R - 1` of the next values, as compares of
            # the registers with constants (LUTs, not the adders' and compares' carry chains:
            # those were the weight-stationary core's longest path, 7.0-7.5 ns, all local);
            # both counters stay at most R
            loaded_full = Mux(en, ~capture & Mux(w_accept, loaded == R - 1, loaded == R),
                              loaded == R)
            since_late = Mux(en & starts, Const(int(R <= 2)),
                             Mux(en, _among(since_first, range(R - 2, R + 1)),
                                 _among(since_first, (R - 1, R))))
            m.d.sync += capture.eq(ahead & loaded_full & ~full_next & since_late)
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

        in_w = Signal(data.ArrayLayout(signed(cfg.in_width), C), reset_less=no_reset)
        in_wctl = Signal(data.StructLayout({"shift": 1, "capture": 1}))
        in_a = Signal(data.ArrayLayout(signed(cfg.in_width), R), reset_less=no_reset)
        in_flags = Signal(data.StructLayout({"valid": 1, "first": 1, "last": 1}))
        _lanes(m, enable, "en_in_w", in_w, w.payload.w, lambda k: (0, k))
        _lanes(m, enable, "en_in_a", in_a, op.payload.a, lambda k: (R - 1 - k, 0))
        with m.If(en):
            m.d.sync += [
                in_wctl.shift.eq(w_accept),
                in_wctl.capture.eq(capture),
                in_flags.valid.eq(a_accept),
                in_flags.first.eq(first),
                in_flags.last.eq(op.payload.last),
            ]

        # input_latency: every lane one register more, so that column 0's copies of `shift`
        # and `capture` take a register (from the handshake's logic and `capture`'s fan-out,
        # they were a 12×13 core's longest path), and the activations follow
        extra = cfg.input_latency
        columns, rows = list(range(extra, C + extra)), list(range(extra, R + extra))
        m.submodules.skew_w = skew_w = Skew(signed(cfg.in_width), columns,
                                            lane_enables=True, reset_less=no_reset)
        m.submodules.skew_wctl = skew_wctl = Skew(in_wctl.shape(), columns)
        m.submodules.skew_a = skew_a = Skew(signed(cfg.in_width), rows,
                                            lane_enables=True, reset_less=no_reset)
        skew_f = Skew(in_flags.shape(), rows)
        m.submodules.skew_flags = self._with_own_reset(m, platform, "skew_flags", skew_f,
                                                           group="skew_flags")
        m.d.comb += [skew_w.en.eq(_copies(enable, "en_skew_w", C, lambda k: (0, k))),
                     skew_wctl.en.eq(enable("en_skew_wctl")),
                     skew_a.en.eq(_copies(enable, "en_skew_a", R, lambda k: (k, 0))),
                     skew_f.en.eq(enable("en_skew_flags"))]
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

        # the value in_wctl takes when the array advances (the skew's lane 0 has no register)
        m.d.comb += [skew_wctl.i_next[j].shift.eq(w_accept) for j in range(C)]
        m.d.comb += [skew_wctl.i_next[j].capture.eq(capture) for j in range(C)]
        for p in range(R):
            for j in range(C):
                pe = pes[p][j]
                pe_en = enable(f"en_pe_{p}_{j}", (p, j))
                ctl = skew_wctl.o[j]
                shift = ctl.shift
                if no_reset:  # pipelined
                    # A copy of the column's `shift` per PE, advancing with the PE: one register
                    # drove the load chain of a whole column (with `capture`, which the PEs now
                    # read a cycle ahead, the 12×12 weight-stationary core's longest path).
                    shift = register_copy(m, platform, skew_wctl.o_next[j].shift,
                                          f"shift_{p}_{j}", init=0, enable=pe_en)
                pe_capture = ctl.capture
                if cfg.registered_dsp:
                    # a copy of the column's `capture` per PE too (the PE loads its shadow
                    # weight on it: pe_ecp5.RegisteredWeightStationaryPE)
                    pe_capture = register_copy(m, platform, skew_wctl.o_next[j].capture,
                                               f"capture_{p}_{j}", init=0, enable=pe_en)
                m.d.comb += [pe.en.eq(pe_en), pe.w_shift.eq(shift), pe.capture.eq(pe_capture),
                             pe.capture_next.eq(skew_wctl.o_next[j].capture)]
                if j == 0:
                    flags = skew_f.o[p]
                    m.d.comb += [
                        pe.a_next.eq(skew_a.o_next[p]),
                        pe.first_next.eq(skew_f.o_next[p].first),
                        pe.valid_next.eq(skew_f.o_next[p].valid),
                        pe.a_in.eq(skew_a.o[p]),
                        pe.valid_in.eq(flags.valid),
                        pe.first_in.eq(flags.first),
                        pe.last_in.eq(flags.last),
                    ]
                else:
                    _link(m, pes, p, j, "west")
                if p == 0:
                    m.d.comb += [pe.psum_in.eq(0), pe.w_in.eq(skew_w.o[j])]
                else:
                    _link(m, pes, p, j, "north")

        busy = (in_flags.valid | self.results.valid
                | _any(pes[p][j].valid_in for p in range(R) for j in range(C)))
        if flag_stages:
            busy = busy | _any(stage[0] for stage in flag_stages)
        m.d.comb += self.busy.eq(busy)
        return m


def register_copy(m: Module, platform, value, name: str, *, init: int,
                  enable=None) -> Signal:
    """A register of the sync domain, without reset, that takes ``value`` at every edge (or at
    every edge where ``enable`` is high).

    Copies of one register are there to split its fan-out, but yosys merges flip-flops with the
    same input. On an ECP5 the copy is therefore a TRELLIS_FF instance, which yosys leaves alone,
    with the parameters of yosys's own mapping of such a register (``$_DFF_P_`` in
    ``cells_map_trellis.v``; a test compares them). No reset: the copies follow ``value``, which
    the core's reset settles, one cycle later; and a reset reaching every copy was itself the
    next longest path.
    """
    reg = Signal(init=init, name=name, reset_less=True)
    if enable is not None:
        value = Mux(enable, value, reg)
    if not _is_ecp5(platform):
        m.d.sync += reg.eq(value)
        return reg
    d = Signal(name=f"{name}_d")
    m.d.comb += d.eq(value)
    m.submodules[f"{name}_ff"] = Instance("TRELLIS_FF", **trellis_ff_params(init),
                                          i_CLK=ClockSignal("sync"), i_LSR=0, i_DI=d, o_Q=reg)
    return reg


def trellis_ff_params(init: int) -> dict[str, str]:
    """The TRELLIS_FF parameters of a rising-edge flip-flop, no reset, starting at ``init``."""
    return {"p_GSR": "AUTO", "p_CEMUX": "1", "p_CLKMUX": "CLK", "p_LSRMUX": "LSR",
            "p_REGSET": "SET" if init else "RESET"}


def _copies(enable, name: str, count: int, near=lambda k: None):
    """``count`` copies of the array's enable, one per lane (lane ``k`` next to the PE
    ``near(k)``), as a vector."""
    return Cat(enable(f"{name}_{k}", near(k)) for k in range(count))


def _lanes(m: Module, enable, name: str, target, source, near=lambda k: None) -> None:
    """``target[k] <= source[k]`` on lane ``k``'s own copy of the enable (``near(k)``: the PE
    the lane feeds)."""
    for k in range(len(target)):
        with m.If(enable(f"{name}_{k}", near(k))):
            m.d.sync += target[k].eq(source[k])


class _DelayLine(wiring.Component):
    """``i`` delayed by ``latency`` cycles in which ``en`` is high: ``stages`` are the
    registers (reset: they carry flags)."""

    def __init__(self, shape, latency: int, name: str):
        self.stages = [Signal(shape, name=f"{name}_d{k + 1}") for k in range(latency)]
        super().__init__({"en": In(1), "i": In(shape)})

    def elaborate(self, platform) -> Module:
        m = Module()
        with m.If(self.en):
            m.d.sync += [stage.eq(earlier)
                         for earlier, stage in itertools.pairwise([self.i, *self.stages])]
        return m


def _link(m: Module, pes: list[list], p: int, j: int, side: str) -> None:
    """PE ``(p, j)`` takes its row link from its left neighbour (``side="west"``) or its column
    link from the one above (``"north"``): :class:`~accelerator.hw.pe.RowLink`,
    :class:`~accelerator.hw.pe.ColumnLink`."""
    source = pes[p][j - 1].link("east") if side == "west" else pes[p - 1][j].link("south")
    wiring.connect(m, source, pes[p][j].link(side))


def _among(value, constants) -> Value:
    """``value`` equals one of ``constants`` (equality compares: LUTs, never a carry chain)."""
    return Cat(value == k for k in constants).any()


def _any(values) -> Value:
    """The OR of 1-bit ``values`` as one reduction: a chain ``a | b | …`` over the R·C PEs
    of a large array nests deeper than Python's recursion limit in Amaranth's passes."""
    return Cat(*values).any()



class InPlaceCore(SystolicCore):
    """An output-stationary R×C array whose results stay in the accumulators, read one at a time.

    The compact engine's core (:mod:`accelerator.hw.compact`): its tiles never overlap, so the
    PEs need no output slots, the columns no de-skew and the array no flow control. Operands
    flow as in :class:`SystolicCore` (skew, A right and B down with the flags), every cycle; a
    beat is taken whenever it is valid, straight into the skew (no input register). Once a
    tile's last beat has reached the bottom-right PE, ``done`` rises and every element of the
    tile can be read, until the next beat is taken. Not pipelined (the PEs multiply their
    inputs as they arrive), on any device.

    Members
    -------
    operands : In(stream.Signature(...))
        A and B vectors with ``last``, as :class:`SystolicCore`'s; ``ready`` is always high.
    done : Out(1)
        The last tile's results are in the accumulators.
    row, col : In(range(rows)), In(range(cols))
        The element of the tile to read.
    value : Out(signed(acc_width))
        C[row][col] of the tile, valid while ``done``.
    busy : Out(1)
        A beat is in the array.
    """

    def __init__(self, config: AcceleratorConfig, *, dsp_pes: int | None = None,
                 paired_pes: int = 0):
        if config.dataflow != "os":
            raise ValueError(f"InPlaceCore is output-stationary, not {config.dataflow!r}")
        super().__init__(config, dsp_pes=dsp_pes, paired_pes=paired_pes, pipelined=False)

    def _members(self, config: AcceleratorConfig) -> dict:
        return {
            "operands": In(stream.Signature(core_layouts(config)["operands"])),
            "done": Out(1),
            "row": In(range(config.rows)), "col": In(range(config.cols)),
            "value": Out(signed(config.acc_width)),
            "busy": Out(1),
        }

    def elaborate(self, platform) -> Module:
        cfg = self._config
        R, C = cfg.rows, cfg.cols
        m = Module()
        pes = self._make_pes(m, OutputStationaryPE, platform, slot=False)
        op = self.operands
        first = Signal(init=1)          # the next beat starts a tile
        # No input register: the beat enters the skew (whose first lane has no delay) in the
        # cycle it is taken, so the source must hold it only in that cycle.
        in_a, in_b = op.payload.a, op.payload.b
        in_flags = Signal(data.StructLayout({"valid": 1, "first": 1, "last": 1}))
        m.d.comb += [op.ready.eq(1), in_flags.valid.eq(op.valid), in_flags.first.eq(first),
                     in_flags.last.eq(op.payload.last)]
        with m.If(op.valid):
            m.d.sync += first.eq(op.payload.last)
        # Physical row p takes A's row R-1-p, as in SystolicCore (its results leave the bottom
        # first); `value` undoes it.
        m.submodules.skew_a = skew_a = Skew(signed(cfg.in_width), list(range(R)))
        m.submodules.skew_b = skew_b = Skew(signed(cfg.in_width), list(range(C)))
        m.submodules.skew_flags = skew_f = Skew(in_flags.shape(), list(range(C)))
        m.d.comb += [skew_a.en.eq(1), skew_b.en.eq(1), skew_f.en.eq(1), skew_b.i.eq(in_b)]
        m.d.comb += [skew_a.i[p].eq(in_a[R - 1 - p]) for p in range(R)]
        m.d.comb += [skew_f.i[j].eq(in_flags) for j in range(C)]
        for p in range(R):
            for j in range(C):
                pe = pes[p][j]
                m.d.comb += pe.en.eq(1)
                # (the links' next values and output chain go unused: no pipelining, no slots)
                if j == 0:
                    m.d.comb += pe.a_in.eq(skew_a.o[p])
                else:
                    _link(m, pes, p, j, "west")
                if p == 0:
                    flags = skew_f.o[j]
                    m.d.comb += [pe.b_in.eq(skew_b.o[j]), pe.valid_in.eq(flags.valid),
                                 pe.first_in.eq(flags.first), pe.last_in.eq(flags.last)]
                else:
                    _link(m, pes, p, j, "north")
        # The bottom-right PE is the last to take a beat: once it has taken the last one of a
        # tile, every accumulator holds its result.
        corner = pes[R - 1][C - 1]
        with m.If(op.valid):
            m.d.sync += self.done.eq(0)
        with m.Elif(corner.valid_out & corner.last_out):
            m.d.sync += self.done.eq(1)
        values = Array(Array(pes[R - 1 - i][j].chain_out for j in range(C)) for i in range(R))
        m.d.comb += [
            self.value.eq(values[self.row][self.col]),
            self.busy.eq(~first | _any(pes[p][j].valid_in for p in range(R) for j in range(C))),
        ]
        return m
