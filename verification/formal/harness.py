"""What every property set is built from: a wrapper around the design under test whose free
inputs are top-level ports (so a counterexample's ``.yw`` witness names them and the Amaranth
simulator can replay them), plus helpers for the properties themselves.

Amaranth 0.5 has no ``Past``: :func:`past` registers a value, and :class:`FormalHarness` gives
every property set a ``past_valid`` bit (0 in the first cycle, then 1), as SVA's ``$past`` needs.
"""

from __future__ import annotations

from collections.abc import Callable

from amaranth.hdl import Assume as _Assume
from amaranth.hdl import Elaboratable, Module, ResetSignal, Signal, Value
from amaranth.lib import wiring

__all__ = ["FormalHarness", "past"]


def past(m: Module, value, name: str, cycles: int = 1) -> Signal:
    """``value`` as it was ``cycles`` clock cycles ago (its init value before that).

    Call it outside any ``m.If``: its register would otherwise sample only while the condition
    holds.
    """
    value = Value.cast(value)
    for n in range(cycles):
        reg = Signal(value.shape(), name=f"past_{name}_{n + 1}", reset_less=True)
        m.d.sync += reg.eq(value)
        value = reg
    return value


class FormalHarness(Elaboratable):
    """The design under test with its ``In`` members as free inputs and properties around it.

    ``dut`` is a :class:`wiring.Component`; its ``In`` members become the top-level inputs (the
    solver chooses them every cycle, within the ``Assume`` s of ``properties``) and its ``Out``
    members are observed. ``extra_inputs`` are further free inputs the properties use (a free
    choice that a property tracks, say). ``properties(m, dut, h)`` adds the asserts, assumes and
    covers to the module ``m``; ``h`` is this harness (``h.past_valid``, ``h.extra``).

    The reset is held low: the solver starts from the registers' init values, which are the
    reset state, so a reset in the middle is not explored (a property of the reset itself
    would need it driven).
    """

    def __init__(self, dut: wiring.Component,
                 properties: Callable[[Module, wiring.Component, FormalHarness], None], *,
                 extra_inputs: dict[str, int] | None = None, platform=None):
        self.dut = dut
        # The harness elaborates the design itself (not through Fragment.get), and warns of
        # its own if it is never used.
        dut._MustUse__silence = True
        self._platform = platform  # what the design is elaborated for (None: the default)
        self.properties = properties
        self.extra = {name: Signal(width, name=f"f_{name}")
                      for name, width in (extra_inputs or {}).items()}
        self.past_valid = Signal(name="f_past_valid")
        #: Registers whose initial value the solver chooses (``module/wire`` selections of the
        #: netlist, made free by the SBY script): see :meth:`free_initial`.
        self.free_init: list[str] = []
        #: The same registers by their witness path (``("dut", submodule, name)``), for a replay.
        self.free_signals: dict[tuple[str, ...], Signal] = {}
        self._module: Module | None = None

    def internal(self, name: str) -> Signal:
        """The design's own signal called ``name`` (driven in its top module), for white-box
        invariants that let induction converge. Raises ``KeyError`` if it has none or several,
        so a renamed signal fails loudly rather than silently checking nothing."""
        if self._module is None:
            raise RuntimeError("internal() is available while the harness elaborates")
        found = [sig for sig in self._module._driving if sig.name == name]
        if len(found) != 1:
            raise KeyError(f"{type(self.dut).__name__} drives {len(found)} signals named "
                           f"{name!r} in its top module (expected one)")
        return found[0]

    def submodule(self, name: str):
        """The design's submodule called ``name`` (as its ``elaborate`` added it)."""
        if self._module is None:
            raise RuntimeError("submodule() is available while the harness elaborates")
        return self._module._named_submodules[name][0]

    def free_initial(self, submodule: str, names: list[str]) -> None:
        """Let the solver choose the initial value of the registers ``names`` of the design's
        submodule ``submodule`` (its ports, say): a state software could have written before
        the check begins, which ``Assume`` s in the first cycle (``~past_valid``) narrow. A
        replay sets them to the witness's initial values."""
        self.free_init += [f"top.dut.{submodule}/w:{name}" for name in names]
        design = self.submodule(submodule)
        self.free_signals.update({("dut", submodule, name): getattr(design, name)
                                  for name in names})

    def ports(self) -> dict[str, Signal | Value]:
        """The top-level inputs, by the name the netlist (and so the witness) gives them."""
        ports: dict[str, Value] = {}
        for path, member, value in self.dut.signature.flatten(self.dut):
            if member.flow == wiring.In:
                ports["__".join(map(str, path))] = Value.cast(value)
        for name, sig in self.extra.items():
            ports[f"f_{name}"] = sig
        return ports

    def elaborate(self, platform) -> Module:
        m = Module()
        # The design's module itself (not the component) is the submodule, so that
        # `internal()` can find its signals.
        self._module = self.dut.elaborate(self._platform or platform)
        m.submodules.dut = self._module
        m.d.sync += self.past_valid.eq(1)
        m.d.comb += _Assume(~ResetSignal(), "no reset")
        self.properties(m, self.dut, self)
        return m
