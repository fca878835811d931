"""PEs on registered DSP blocks (``registered_dsp``): the ECP5 MULT18X18D with its registers on.

yosys maps a ``*`` onto a MULT18X18D with every register off, so a pipelined PE's product
register sits in the fabric behind the block's 3.9 ns multiplier (speed 6), and the route
between them decides the clock. The block has registers of its own on both sides of the
multiplier: input (A and B), pipeline (the product) and output. Here all three are on, each
clocked by the core's clock and enabled by the PE's ``en`` (the array's stall), so the block
holds its pipeline exactly when the PE holds its registers.

The input registers take the place of a pipelined PE's product register (they take the PE's
``a_next``/``b_next`` at the same edge); the pipeline and output registers, and a fabric
register behind the block, are ``config.product_latency`` more cycles, after which the product
meets the accumulator: the core delays the flags that go with it by as much
(:class:`~accelerator.hw.core.SystolicCore`), and the performance model reads the same property
(through ``config.result_latency``).

:class:`RegisteredProduct` is the block on an ECP5; elsewhere (Amaranth's simulator, the
emitted Verilog, other devices) it is the same register pipeline in Amaranth, cycle for cycle
(tests/test_pe_ecp5.py runs both through Verilator, the primitive on its simulation model).
"""

from __future__ import annotations

import itertools

from amaranth.hdl import ClockSignal, Instance, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..config import AcceleratorConfig
from .pe import OutputStationaryPE, WeightStationaryPE, _data_register, _is_ecp5, lut_product

__all__ = ["MULT18X18D_REGISTERS", "RegisteredOutputStationaryPE", "RegisteredProduct",
           "RegisteredWeightStationaryPE", "pe_class"]

#: The MULT18X18D parameters that put a register on, each on clock 0, clock enable 0 and reset 0
#: (the names of yosys's cells_bb.v and Lattice's library); C is unused.
MULT18X18D_REGISTERS = ("REG_INPUTA", "REG_INPUTB", "REG_PIPELINE", "REG_OUTPUT")


class RegisteredProduct(wiring.Component):
    """``p`` is ``a·b`` (signed) of the operands taken ``1 + latency`` enabled edges ago.

    Stages: the operands' registers, ``latency`` registers of the product (``latency`` =
    :attr:`AcceleratorConfig.product_latency`, or one less in a weight-stationary PE). Every
    register advances only when ``en`` is high and has no reset (a product means something only
    when the flags that travel with it say so).

    On an ECP5 with ``dsp``, a MULT18X18D at ``site`` (a nextpnr BEL, or None: anywhere), whose
    pipeline and output registers are the first two of the product's, and the rest fabric
    registers after it: the route from the block to the PE's adder is then a path of its own
    (4.2 ns of routing before the 32-bit carry chain was the 12×13 core's longest path). Else
    Amaranth registers around a ``*`` (``dsp``) or :func:`~accelerator.hw.pe.lut_product`.
    """

    def __init__(self, in_width: int, latency: int, *, dsp: bool = True,
                 site: str | None = None):
        problem = (f"latency = {latency} is out of range (allowed: 1 or more)" if latency < 1
                   else f"in_width = {in_width} does not fit a MULT18X18D (at most 18)"
                   if in_width > 18 else None)
        if problem:
            self._MustUse__silence = True  # never built: no unused-elaboratable warning
            raise ValueError(problem)
        self._width = in_width
        self._latency = latency
        self._dsp = dsp
        self._site = site
        super().__init__({"en": In(1), "a": In(signed(in_width)), "b": In(signed(in_width)),
                          "p": Out(signed(2 * in_width))})

    def elaborate(self, platform) -> Module:
        if self._dsp and _is_ecp5(platform):
            return self._primitive()
        m = Module()
        a = Signal(signed(self._width), reset_less=True)
        b = Signal(signed(self._width), reset_less=True)
        stages = [Signal(signed(2 * self._width), reset_less=True, name=f"stage{k}")
                  for k in range(self._latency)]
        product = a * b if self._dsp else lut_product(a, b)
        with m.If(self.en):
            m.d.sync += [a.eq(self.a), b.eq(self.b), stages[0].eq(product)]
            m.d.sync += [later.eq(earlier) for earlier, later in itertools.pairwise(stages)]
        m.d.comb += self.p.eq(stages[-1])
        return m

    def _primitive(self) -> Module:
        if self._latency < 2:
            raise ValueError(f"a MULT18X18D has two register stages after its inputs, more "
                             f"than latency = {self._latency}")
        m = Module()
        a, b = Signal(signed(18)), Signal(signed(18))   # sign-extended, as yosys's mapping
        out = Signal(36)
        block_p = Signal(signed(2 * self._width))
        m.d.comb += [a.eq(self.a), b.eq(self.b), block_p.eq(out[:2 * self._width].as_signed())]
        fabric = [Signal(signed(2 * self._width), reset_less=True, name=f"fabric{k}")
                  for k in range(self._latency - 2)]
        with m.If(self.en):
            m.d.sync += [later.eq(earlier)
                         for earlier, later in itertools.pairwise([block_p, *fabric])]
        m.d.comb += self.p.eq(fabric[-1] if fabric else block_p)
        ports = {f"i_A{i}": a[i] for i in range(18)}
        ports |= {f"i_B{i}": b[i] for i in range(18)}
        ports |= {f"i_C{i}": 0 for i in range(18)}
        ports |= {f"o_P{i}": out[i] for i in range(36)}
        params = {}
        for reg in MULT18X18D_REGISTERS:
            params |= {f"p_{reg}_CLK": "CLK0", f"p_{reg}_CE": "CE0", f"p_{reg}_RST": "RST0"}
        placed = {"a_BEL": self._site} if self._site is not None else {}
        m.submodules.mult = Instance(
            "MULT18X18D", **placed, **params, p_GSR="DISABLED", p_RESETMODE="SYNC",
            i_SIGNEDA=1, i_SIGNEDB=1, i_SOURCEA=0, i_SOURCEB=0,
            i_CLK0=ClockSignal("sync"), i_CE0=self.en, i_RST0=0,
            **ports)
        return m


def _product_register(pe, m: Module, product: Signal, a, b, *,
                      latency: int | None = None) -> list:
    """``product`` is ``a·b`` of ``1 + latency`` (default ``product_latency``) enabled edges
    ago, from a :class:`RegisteredProduct` (which takes the place of the PE's own product
    register, so there is nothing left to load at an enabled edge)."""
    if pe._product_port:
        raise ValueError("a registered-DSP PE has no product port (it pairs no multipliers)")
    if latency is None:
        latency = pe._config.product_latency
    m.submodules.mult = mult = RegisteredProduct(pe._config.in_width, latency,
                                                 dsp=pe._dsp, site=pe._dsp_site)
    m.d.comb += [mult.en.eq(pe.en), mult.a.eq(a), mult.b.eq(b), product.eq(mult.p)]
    return []


class RegisteredOutputStationaryPE(OutputStationaryPE):
    """:class:`~accelerator.hw.pe.OutputStationaryPE` on a :class:`RegisteredProduct`: its
    products come ``product_latency`` cycles late, and so must its flags.

    With the multiplier in the block, the accumulator is the longest path, so it is arranged
    for the fabric (the 12×13 core's longest path, accumulating as the plain PE does, ran from
    the flags of the PE above, through the restart's multiplexer and the 32-bit carry chain,
    into the output slot: 8.4 ns, 3.3 of them routing from the PE above):

    * it accumulates on its own registers of the flags (``valid_out``, ``first_out``,
      ``last_out``, which it passes on anyway), a cycle after they arrive (``flag_lag``): the
      core delays the flags a cycle less and the drain a cycle more, and no route from another
      PE ends at the adder;
    * a new tile's first product replaces the sum after the adder (``first ? p : acc + p``)
      rather than clearing the accumulator in front of it, so the carry chain starts at the
      accumulator's own flip-flops;
    * the output slot loads the finished sum from the accumulator's register a cycle after the
      last product (``config.slot_latency``), as the compact core's PEs do, so the carry chain
      ends at the accumulator alone (with the slot's multiplexers behind it, the 12×13 core's
      longest path was the product, the carry chain and two multiplexers: 108.2 MHz); the core
      drains the column a cycle later.
    """

    #: The PE accumulates on its flags a cycle after they arrive (SystolicCore reads this).
    flag_lag = 1
    _product_register = _product_register

    def elaborate(self, platform) -> Module:
        if not self._slot:
            raise ValueError("a registered-DSP PE has an output slot (no in-place core)")
        m = Module()
        acc_shape = signed(self._config.acc_width)
        acc = Signal(acc_shape, reset_less=True)
        total = Signal(acc_shape)
        acc_next = Signal(acc_shape)
        held = Signal()
        product = Signal(signed(2 * self._config.in_width), reset_less=True)
        a_out, b_out, chain_out = (_data_register(m, port, True)
                                   for port in (self.a_out, self.b_out, self.chain_out))
        m.d.comb += self._product_register(m, product, self.a_next, self.b_next)
        valid, first, last = self.valid_out, self.first_out, self.last_out
        # Truncation to acc_width is the two's-complement wrap of the reference model.
        m.d.comb += [total.eq(acc + product), acc_next.eq(Mux(first, product, total))]
        with m.If(self.en):
            m.d.sync += [
                a_out.eq(self.a_in),
                b_out.eq(self.b_in),
                self.valid_out.eq(self.valid_in),
                self.first_out.eq(self.first_in),
                self.last_out.eq(self.last_in),
            ]
            with m.If(valid):
                m.d.sync += acc.eq(acc_next)
            if self._config.slot_latency:
                # the slot takes the finished sum from the accumulator's register a cycle
                # later (a next tile's first product replaces it only at that same edge)
                load = Signal()
                m.d.sync += load.eq(valid & last)
                slot = acc
            else:
                load, slot = valid & last, acc_next
            with m.If(load):
                m.d.sync += [chain_out.eq(slot), self.chain_valid_out.eq(1), held.eq(1)]
            with m.Elif(~held | self.drain):
                m.d.sync += [
                    chain_out.eq(self.chain_in),
                    self.chain_valid_out.eq(self.chain_valid_in),
                    held.eq(0),
                ]
        return m


class RegisteredWeightStationaryPE(WeightStationaryPE):
    """:class:`~accelerator.hw.pe.WeightStationaryPE` on a :class:`RegisteredProduct`: its
    partial sum meets a product ``product_latency`` cycles late, as does the one from above
    (each PE of a column adds the same delay), so the column's sums leave that much later.

    The block's input registers take the activation and the weight it meets as the PE holds
    them (``a_in``; ``first_in ? shadow : active``), not a cycle ahead as the pipelined PE: a
    cycle ahead, the shadow weight had to be loaded on ``capture_next``, which the core decides
    in the cycle before from the weight chain's fill, and that decision's route down a column
    was the 12×13 core's longest path (three LUTs and 4.2 ns of routing, 111.6 MHz on an
    LFE5U-85F). The product then comes one cycle later (``product_latency`` is one more than
    the output-stationary core's), and the PE loads ``shadow`` on ``capture``, which the core
    gives each PE as a register of its own.
    """

    _product_register = _product_register

    def elaborate(self, platform) -> Module:
        m = Module()
        op = signed(self._config.in_width)
        a_out, psum_out, w_out = (_data_register(m, port, True)
                                  for port in (self.a_out, self.psum_out, self.w_out))
        shadow = Signal(op, reset_less=True)
        active = Signal(op, reset_less=True)
        product = Signal(signed(2 * self._config.in_width), reset_less=True)
        weight = Signal(op)
        m.d.comb += weight.eq(Mux(self.first_in, shadow, active))
        # the block's input registers are the first of the latency's stages here
        m.d.comb += self._product_register(m, product, self.a_in, weight,
                                           latency=self._config.product_latency - 1)
        with m.If(self.en):
            m.d.sync += [
                a_out.eq(self.a_in),
                self.valid_out.eq(self.valid_in),
                self.first_out.eq(self.first_in),
                self.first_next_out.eq(self.first_next),
                self.last_out.eq(self.last_in),
                # Truncation to acc_width is the two's-complement wrap of the reference model.
                psum_out.eq(self.psum_in + product),
            ]
            with m.If(self.w_shift):
                m.d.sync += w_out.eq(self.w_in)
            with m.If(self.capture):
                m.d.sync += shadow.eq(w_out)
            with m.If(self.valid_in & self.first_in):
                m.d.sync += active.eq(shadow)
        return m


def pe_class(base: type, config: AcceleratorConfig) -> type:
    """The PE class to build for ``base`` (an output- or weight-stationary PE) under ``config``:
    its registered-DSP variant when ``config.registered_dsp``."""
    if not config.registered_dsp:
        return base
    return {OutputStationaryPE: RegisteredOutputStationaryPE,
            WeightStationaryPE: RegisteredWeightStationaryPE}[base]
