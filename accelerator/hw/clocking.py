"""The ``sync`` clock on a board: the oscillator, or the device's PLL when another frequency is
asked for.

:func:`plan_pll` picks the PLL's dividers the way the vendor tools' calculators (``icepll``,
``ecppll``) do: every legal combination, the one closest to the request. :class:`PllClockedTop`
wraps any design that uses ``sync`` and drives that domain from the PLL, holding the design in
reset until the PLL has locked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from amaranth.hdl import ClockDomain, ClockSignal, Elaboratable, Instance, Module, Signal
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer

__all__ = ["PllClockedTop", "PllPlan", "plan_pll"]

#: Requests within this fraction of the oscillator need no PLL.
SAME_CLOCK = 1e-3


@dataclass(frozen=True)
class PllPlan:
    """What the PLL will generate, and the primitive's parameters that make it."""

    family: str                # "ice40" or "ecp5"
    input_hz: float
    output_hz: float
    params: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"family": self.family, "input_mhz": self.input_hz / 1e6,
                "output_mhz": round(self.output_hz / 1e6, 6), "params": dict(self.params)}


def _ice40(input_hz: float, target_hz: float) -> PllPlan | None:
    # SB_PLL40 (simple feedback): fout = fin / (DIVR+1) · (DIVF+1) / 2^DIVQ, with the phase
    # detector at 10–133 MHz and the VCO at 533–1066 MHz (iCE40 sysCLOCK PLL guide).
    best = None
    for divr in range(16):
        pfd = input_hz / (divr + 1)
        if not 10e6 <= pfd <= 133e6:
            continue
        for divf in range(128):
            vco = pfd * (divf + 1)
            if not 533e6 <= vco <= 1066e6:
                continue
            for divq in range(1, 7):
                out = vco / 2 ** divq
                if best is None or abs(out - target_hz) < abs(best[0] - target_hz):
                    best = (out, divr, divf, divq, pfd)
    if best is None:
        return None
    out, divr, divf, divq, pfd = best
    filter_range = next(i for i, top in enumerate((17e6, 26e6, 44e6, 66e6, 101e6, 1e12), 1)
                        if pfd < top)
    return PllPlan("ice40", input_hz, out, {"DIVR": divr, "DIVF": divf, "DIVQ": divq,
                                            "FILTER_RANGE": filter_range})


def _ecp5(input_hz: float, target_hz: float) -> PllPlan | None:
    # EHXPLLL with CLKOP as feedback: fout = fin / CLKI_DIV · CLKFB_DIV, the VCO at
    # fout · CLKOP_DIV in 400–800 MHz, the phase detector at 3.125–400 MHz (ECP5 sysCLOCK guide).
    best = None
    for clki in range(1, 129):
        pfd = input_hz / clki
        if not 3.125e6 <= pfd <= 400e6:
            continue
        for clkfb in range(1, 81):
            out = pfd * clkfb
            if not 3.125e6 <= out <= 400e6:
                continue
            # the VCO nearest the middle of its range
            ops = [op for op in range(1, 129) if 400e6 <= out * op <= 800e6]
            if not ops:
                continue
            op = min(ops, key=lambda d: abs(out * d - 600e6))
            if best is None or abs(out - target_hz) < abs(best[0] - target_hz):
                best = (out, clki, clkfb, op)
    if best is None:
        return None
    out, clki, clkfb, op = best
    return PllPlan("ecp5", input_hz, out, {"CLKI_DIV": clki, "CLKFB_DIV": clkfb,
                                           "CLKOP_DIV": op, "CLKOP_CPHASE": op - 1})


def plan_pll(family: str, input_hz: float, target_hz: float) -> PllPlan | None:
    """The PLL set-up closest to ``target_hz``; None when the oscillator already gives it.

    Raises :class:`ValueError` when the device has no PLL that reaches anywhere near it.
    """
    if abs(target_hz - input_hz) <= SAME_CLOCK * input_hz:
        return None
    planners = {"ice40": _ice40, "ecp5": _ecp5}
    if family not in planners:
        raise ValueError(f"no PLL planner for the {family} family")
    plan = planners[family](input_hz, target_hz)
    if plan is None or abs(plan.output_hz - target_hz) > 0.05 * target_hz:
        raise ValueError(f"the {family} PLL cannot make {target_hz / 1e6:g} MHz from "
                         f"{input_hz / 1e6:g} MHz")
    return plan


class PllClockedTop(Elaboratable):
    """``design`` in a ``sync`` domain clocked by the PLL of ``plan``, from the board's oscillator.

    The design is held in reset until the PLL locks (the reset is released synchronously).
    """

    def __init__(self, design: Elaboratable, plan: PllPlan):
        self.design = design
        self.plan = plan

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.design = self.design
        m.domains.sync = ClockDomain("sync")
        locked = Signal()
        p = self.plan.params
        if self.plan.family == "ice40":
            # the iCE40's PLL sits on the oscillator's pad: it takes the pin itself, not a
            # buffered copy (the pad's input buffer and the PLL cannot both be placed)
            pad = platform.request(platform.default_clk, 0, dir="-")
            m.submodules.pll = Instance(
                "SB_PLL40_PAD",
                p_FEEDBACK_PATH="SIMPLE", p_DIVR=p["DIVR"], p_DIVF=p["DIVF"], p_DIVQ=p["DIVQ"],
                p_FILTER_RANGE=p["FILTER_RANGE"],
                i_PACKAGEPIN=pad.io, i_RESETB=1, i_BYPASS=0,
                o_PLLOUTGLOBAL=ClockSignal("sync"), o_LOCK=locked)
        else:
            pad = platform.request(platform.default_clk, 0, dir="-")
            m.submodules.clk_buffer = clk_buffer = io.Buffer("i", pad)
            clk_in = clk_buffer.i
            m.submodules.pll = Instance(
                "EHXPLLL",
                p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
                p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA",
                p_OUTDIVIDER_MUXB="DIVB", p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD",
                p_CLKI_DIV=p["CLKI_DIV"], p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=p["CLKOP_DIV"],
                p_CLKOP_CPHASE=p["CLKOP_CPHASE"], p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP",
                p_CLKFB_DIV=p["CLKFB_DIV"],
                i_RST=0, i_STDBY=0, i_CLKI=clk_in, o_CLKOP=ClockSignal("sync"),
                i_CLKFB=ClockSignal("sync"), i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1,
                i_PHASESTEP=1, i_PHASELOADREG=1, i_PLLWAKESYNC=0, i_ENCLKOP=0,
                o_LOCK=locked,
                a_FREQUENCY_PIN_CLKI=f"{self.plan.input_hz / 1e6:g}",
                a_FREQUENCY_PIN_CLKOP=f"{self.plan.output_hz / 1e6:g}",
                a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1",
                a_MFG_GMCREF_SEL="2")
        # the PLL's output is not stable before LOCK: keep the design in reset until then
        m.submodules.reset_sync = ResetSynchronizer(~locked, domain="sync")
        return m
