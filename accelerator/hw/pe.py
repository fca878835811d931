"""Processing elements: one multiply-accumulate each, for the two dataflows.

Both PEs advance only when ``en`` is high (the array's single stall) and register every value they
pass on, so a signal crosses at most one PE per cycle, whatever the array's size.

The product is registered too, without a cycle of latency: a PE multiplies its operands' *next*
values (``a_next``, ``b_next``: what ``a_in`` and ``b_in`` will hold after the next enabled
edge, i.e. its neighbours' inputs), so that its product register always equals ``a_in·b_in``.
The multiplier and the accumulator's adder are then in different cycles; in one cycle they were
the longest path of a board top (ECP5: MULT18X18D, then a 32-bit carry chain, 19 ns). On an
iCE40 the register costs more than it gains (yosys can no longer move the accumulator into the
SB_MAC16), so there ``pipelined`` defaults to off; the cycle behaviour is the same either way.
"""

from __future__ import annotations

from typing import ClassVar

from amaranth.hdl import Cat, Instance, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..config import AcceleratorConfig

__all__ = ["OutputStationaryPE", "PlacedProduct", "ProcessingElement", "ProductPair",
           "WeightStationaryPE", "lut_product", "pes_per_dsp", "pipelined_on"]


def _is_ice40(platform) -> bool:
    return getattr(platform, "family", None) == "iCE40"


def _is_ecp5(platform) -> bool:
    return getattr(platform, "family", None) == "ecp5"


def pipelined_on(pipelined: bool | None, platform) -> bool:
    """A ``pipelined`` parameter's meaning for ``platform``: None is on everywhere but an iCE40.

    The PEs and the core (:class:`~accelerator.hw.core.SystolicCore`) decide by this one rule.
    """
    return pipelined if pipelined is not None else not _is_ice40(platform)


def pes_per_dsp(family: str, in_width: int) -> int:
    """How many PE multipliers one DSP block of ``family`` holds.

    An iCE40 SB_MAC16 splits into two independent signed 8×8 multipliers (``MODE_8x8``), so two
    PEs share one when the operands are at most 8 bits wide; an ECP5 MULT18X18D holds one (the
    open tools do not support its 9×9 halves).
    """
    return 2 if family == "ice40" and in_width <= 8 else 1


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


def _product_members(config: AcceleratorConfig, product_port: bool) -> dict:
    if not product_port:
        return {}
    op = signed(config.in_width)
    return {"mul_a": Out(op), "mul_b": Out(op), "product": In(signed(2 * config.in_width))}


def _data_register(m: Module, port, reset_less: bool) -> Signal:
    """The register that drives ``port``, without reset when ``reset_less``.

    Only the flags travelling with the data need a reset (an operand or a sum means something
    only when its ``valid`` says so). Pipelined PEs leave it out: the reset of every PE's data
    reached 17,700 flip-flops of a 12×12 array and was its longest path on an ECP5 (17.4 ns of
    routing). On an iCE40 (not pipelined) the small arrays there place better with it.
    """
    reg = Signal.like(port, reset_less=reset_less, name=f"{port.name}_reg")
    m.d.comb += port.eq(reg)
    return reg


def _product(pe, m: Module, a, b):
    """The PE's product of ``a`` and ``b``: through its product port, a ``*`` or LUTs."""
    if pe._product_port:
        m.d.comb += [pe.mul_a.eq(a), pe.mul_b.eq(b)]
        return pe.product
    if pe._dsp and pe._dsp_site is not None:
        m.submodules.mult = mult = PlacedProduct(pe._config.in_width, pe._dsp_site)
        m.d.comb += [mult.a.eq(a), mult.b.eq(b)]
        return mult.p
    return a * b if pe._dsp else lut_product(a, b)


class PlacedProduct(wiring.Component):
    """``p = a·b`` (signed) in the ECP5 MULT18X18D at ``site`` (a nextpnr BEL name).

    yosys maps a ``*`` to a MULT18X18D that nextpnr may put anywhere; on a device whose DSP
    blocks the array nearly fills, nextpnr put PEs' flip-flops up to 100 columns from their
    multipliers. Here the block is the same one, wired as yosys's own mapping of the ``*`` (a
    test compares them), with its place fixed by the floorplan (:mod:`accelerator.hw.floorplan`).
    Elsewhere (simulation, other devices) it is the ``*``.
    """

    def __init__(self, in_width: int, site: str):
        if in_width > 18:
            raise ValueError(f"in_width = {in_width} does not fit a MULT18X18D (at most 18)")
        self._width = in_width
        self._site = site
        super().__init__({"a": In(signed(in_width)), "b": In(signed(in_width)),
                          "p": Out(signed(2 * in_width))})

    @property
    def site(self) -> str:
        return self._site

    def elaborate(self, platform) -> Module:
        m = Module()
        if not _is_ecp5(platform):
            m.d.comb += self.p.eq(self.a * self.b)
            return m
        a, b = Signal(signed(18)), Signal(signed(18))   # sign-extended, as yosys's mapping
        out = Signal(36)
        m.d.comb += [a.eq(self.a), b.eq(self.b), self.p.eq(out[:2 * self._width].as_signed())]
        ports = {f"i_A{i}": a[i] for i in range(18)}
        ports |= {f"i_B{i}": b[i] for i in range(18)}
        ports |= {f"i_C{i}": 0 for i in range(18)}
        ports |= {f"o_P{i}": out[i] for i in range(36)}
        m.submodules.mult = Instance("MULT18X18D", a_BEL=self._site, i_SIGNEDA=1, i_SIGNEDB=1,
                                     i_SOURCEA=0, i_SOURCEB=0, **ports)
        return m


class ProductPair(wiring.Component):
    """Two independent signed products, ``p0 = a0·b0`` and ``p1 = a1·b1``, for two PEs.

    On an iCE40 with operands of at most 8 bits both products come from one SB_MAC16 in its
    two-8×8 mode (:func:`pes_per_dsp`), so 8 blocks serve 16 PEs; elsewhere (simulation, ECP5)
    they are two ``*``, which synthesis maps to one DSP block each. Combinational either way, so
    the PEs' timing does not depend on where their multiplier lives.
    """

    def __init__(self, in_width: int):
        self._width = in_width
        op = signed(in_width)
        prod = signed(2 * in_width)
        super().__init__({
            "a0": In(op), "b0": In(op), "p0": Out(prod),
            "a1": In(op), "b1": In(op), "p1": Out(prod),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        w = self._width
        if not (_is_ice40(platform) and w <= 8):
            m.d.comb += [self.p0.eq(self.a0 * self.b0), self.p1.eq(self.a1 * self.b1)]
            return m

        def byte(v):  # sign-extended to the 8-bit half of a MAC16 input
            wide = Signal(signed(8))
            m.d.comb += wide.eq(v)
            return wide

        # Port A/B bits 7:0 feed the bottom 8×8 multiplier and bits 15:8 the top one; with
        # MODE_8x8 and A/B_SIGNED both halves are signed (yosys's ice40 cells_sim.v, which
        # follows Lattice's simulation library). Output select 2 is each 8×8 product unregistered.
        out = Signal(32)
        zero16 = Signal(16)
        m.submodules.mac = Instance(
            "SB_MAC16",
            p_NEG_TRIGGER=0, p_C_REG=0, p_A_REG=0, p_B_REG=0, p_D_REG=0,
            p_TOP_8x8_MULT_REG=0, p_BOT_8x8_MULT_REG=0,
            p_PIPELINE_16x16_MULT_REG1=0, p_PIPELINE_16x16_MULT_REG2=0,
            p_TOPOUTPUT_SELECT=2, p_TOPADDSUB_LOWERINPUT=0, p_TOPADDSUB_UPPERINPUT=0,
            p_TOPADDSUB_CARRYSELECT=0,
            p_BOTOUTPUT_SELECT=2, p_BOTADDSUB_LOWERINPUT=0, p_BOTADDSUB_UPPERINPUT=0,
            p_BOTADDSUB_CARRYSELECT=0,
            p_MODE_8x8=1, p_A_SIGNED=1, p_B_SIGNED=1,
            i_CLK=0, i_CE=0,
            i_A=Cat(byte(self.a0), byte(self.a1)), i_B=Cat(byte(self.b0), byte(self.b1)),
            i_C=zero16, i_D=zero16,
            i_AHOLD=0, i_BHOLD=0, i_CHOLD=0, i_DHOLD=0,
            i_IRSTTOP=0, i_IRSTBOT=0, i_ORSTTOP=0, i_ORSTBOT=0,
            i_OLOADTOP=0, i_OLOADBOT=0, i_ADDSUBTOP=0, i_ADDSUBBOT=0,
            i_OHOLDTOP=0, i_OHOLDBOT=0, i_CI=0, i_ACCUMCI=0, i_SIGNEXTIN=0,
            o_O=out,
        )
        m.d.comb += [
            self.p0.eq(out[0:16].as_signed()),
            self.p1.eq(out[16:32].as_signed()),
        ]
        return m


class _Link(wiring.Signature):
    """A link between neighbouring PEs (or from the skew into the first PE): what one side
    passes on and the other takes, member by member. Compared by class and members."""

    def __init__(self, members: dict):
        super().__init__({name: Out(shape) for name, shape in members.items()})

    def __eq__(self, other):
        return type(self) is type(other) and self.members == other.members

    def __hash__(self):
        return hash(type(self))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class RowLink(_Link):
    """Along a row, left to right: the operand (``a``) and the value it takes at the next
    enabled edge (``a_next``); weight-stationary, the flags travel with it too (and their next
    values, for the pipelined PEs' weight choice)."""

    def __init__(self, config: AcceleratorConfig):
        op = signed(config.in_width)
        if config.dataflow == "os":
            super().__init__({"a": op, "a_next": op})
        else:
            super().__init__({"a_next": op, "first_next": 1, "valid_next": 1, "a": op,
                              "valid": 1, "first": 1, "last": 1})


class ColumnLink(_Link):
    """Down a column, top to bottom. Output-stationary: B and its next value, the flags and
    the output slot's chain (``chain``, ``chain_valid``). Weight-stationary: the partial sum
    and the weight load chain."""

    def __init__(self, config: AcceleratorConfig):
        op, acc = signed(config.in_width), signed(config.acc_width)
        if config.dataflow == "os":
            super().__init__({"b_next": op, "b": op, "valid": 1, "first": 1, "last": 1,
                              "chain": acc, "chain_valid": 1})
        else:
            super().__init__({"psum": acc, "w": op})


class ProcessingElement(wiring.Component):
    """What every PE variant shares: one multiply-accumulate, advancing on ``en``.

    A variant gives its members (its ports, flat: ``a_in``, ``a_out``, …), the names of its
    ports on each link (:class:`RowLink`, :class:`ColumnLink`: :attr:`links`) and its
    ``elaborate``; the base takes the parameters every variant takes, adds ``en`` and the
    product port, and chooses the multiplier (:meth:`multiply`) and the reset of the data
    registers (:meth:`data_register`).

    Parameters
    ----------
    dsp : bool
        The multiplier is a ``*`` (a DSP block), otherwise :func:`lut_product`.
    product_port : bool
        The product comes in through ``product`` (computed outside the PE, by a
        :class:`ProductPair` shared with another PE; ``dsp`` is then ignored), from the
        operands the PE puts on ``mul_a`` and ``mul_b``.
    pipelined : bool or None
        Register the product (see the module docstring); None: everywhere but on an iCE40.
    dsp_site : str or None
        With ``dsp``: the ECP5 DSP block to multiply in (:class:`PlacedProduct`).
    """

    #: link name -> {link member: port name}; ``west``/``north`` are the input sides.
    links: ClassVar[dict[str, dict[str, str]]] = {}

    def __init__(self, config: AcceleratorConfig, members: dict, *, dsp: bool = True,
                 product_port: bool = False, pipelined: bool | None = None,
                 dsp_site: str | None = None):
        self._config = config
        self._dsp = dsp
        self._product_port = product_port
        self._pipelined = pipelined
        self._dsp_site = dsp_site
        super().__init__({"en": In(1), **members,
                          **_product_members(config, product_port)})

    def link(self, side: str):
        """The PE's ports on one side as an interface of the link's signature: ``east`` and
        ``south`` as the driving side, ``west`` and ``north`` as the taking side, so that
        ``wiring.connect(m, left.link("east"), right.link("west"))`` joins two neighbours."""
        signature = (RowLink if side in ("east", "west") else ColumnLink)(self._config)
        if side in ("west", "north"):
            signature = signature.flip()
        ports = self.links[side]
        view = type("PELink", (), {})()
        view.signature = signature
        for name in signature.members:
            setattr(view, name, getattr(self, ports[name]))
        return view

    def is_pipelined(self, platform) -> bool:
        return pipelined_on(self._pipelined, platform)

    def multiply(self, m: Module, a, b):
        """The product of ``a`` and ``b``: through the product port, a ``*`` or LUTs."""
        return _product(self, m, a, b)

    def _product_register(self, m: Module, product: Signal, a, b) -> list:
        """A pipelined PE's product register: the statements that load ``product`` with ``a·b``
        at an enabled edge (:mod:`accelerator.hw.pe_ecp5` puts a registered DSP block there)."""
        # the product outside the PE's `If`: the product port's wiring would otherwise be gated
        return [product.eq(self.multiply(m, a, b))]

    @staticmethod
    def data_register(m: Module, port, reset_less: bool) -> Signal:
        """The register that drives ``port`` (see :func:`_data_register`)."""
        return _data_register(m, port, reset_less)


class OutputStationaryPE(ProcessingElement):
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
    a_next, b_next : In(signed(in_width))
        The values ``a_in`` and ``b_in`` take at the next enabled edge (see the module docstring).
    mul_a, mul_b : Out(signed(in_width)); product : In(signed(2·in_width))
        Only with ``product_port``: the operands to multiply (``a_next``, ``b_next``), and their
        product, computed outside the PE (by a :class:`ProductPair` shared with another PE).

    Parameters
    ----------
    dsp, product_port, pipelined, dsp_site
        As :class:`ProcessingElement`'s.
    slot : bool
        Without one (:class:`~accelerator.hw.core.InPlaceCore`), ``chain_out`` is the
        accumulator itself, read in place once the tile is done; the ``chain`` inputs, ``drain``
        and ``chain_valid_out`` are unused.
    """

    links: ClassVar[dict[str, dict[str, str]]] = {
        "west": {"a": "a_in", "a_next": "a_next"},
        "east": {"a": "a_out", "a_next": "a_in"},
        "north": {"b": "b_in", "b_next": "b_next", "valid": "valid_in", "first": "first_in",
                  "last": "last_in", "chain": "chain_in", "chain_valid": "chain_valid_in"},
        "south": {"b": "b_out", "b_next": "b_in", "valid": "valid_out", "first": "first_out",
                  "last": "last_out", "chain": "chain_out", "chain_valid": "chain_valid_out"},
    }

    def __init__(self, config: AcceleratorConfig, *, dsp: bool = True,
                 product_port: bool = False, pipelined: bool | None = None,
                 dsp_site: str | None = None, slot: bool = True):
        self._slot = slot
        op = signed(config.in_width)
        acc = signed(config.acc_width)
        super().__init__(config, {
            "a_in": In(op), "a_out": Out(op), "a_next": In(op),
            "b_in": In(op), "b_out": Out(op), "b_next": In(op),
            "valid_in": In(1), "first_in": In(1), "last_in": In(1),
            "valid_out": Out(1), "first_out": Out(1), "last_out": Out(1),
            "chain_in": In(acc), "chain_out": Out(acc),
            "chain_valid_in": In(1), "chain_valid_out": Out(1),
            "drain": In(1),
        }, dsp=dsp, product_port=product_port, pipelined=pipelined, dsp_site=dsp_site)

    def elaborate(self, platform) -> Module:
        m = Module()
        acc_shape = signed(self._config.acc_width)
        pipelined = self.is_pipelined(platform)
        acc = Signal(acc_shape, reset_less=pipelined)
        acc_next = Signal(acc_shape)
        held = Signal()
        product = Signal(signed(2 * self._config.in_width), reset_less=True)  # always a_in·b_in
        a_out, b_out = (self.data_register(m, port, pipelined) for port in (self.a_out, self.b_out))
        if pipelined:
            updates = self._product_register(m, product, self.a_next, self.b_next)
            with m.If(self.en):
                m.d.sync += updates
        else:
            m.d.comb += product.eq(self.multiply(m, self.a_in, self.b_in))
        # Truncation to acc_width is the two's-complement wrap of the reference model.
        m.d.comb += acc_next.eq(Mux(self.first_in, 0, acc) + product)

        with m.If(self.en):
            m.d.sync += [
                a_out.eq(self.a_in),
                b_out.eq(self.b_in),
                self.valid_out.eq(self.valid_in),
                self.first_out.eq(self.first_in),
                self.last_out.eq(self.last_in),
            ]
            with m.If(self.valid_in):
                m.d.sync += acc.eq(acc_next)
        if not self._slot:
            m.d.comb += self.chain_out.eq(acc)
            return m
        chain_out = self.data_register(m, self.chain_out, pipelined)
        with m.If(self.en):
            with m.If(self.valid_in & self.last_in):
                m.d.sync += [
                    chain_out.eq(acc_next),
                    self.chain_valid_out.eq(1),
                    held.eq(1),
                ]
            with m.Elif(~held | self.drain):
                m.d.sync += [
                    chain_out.eq(self.chain_in),
                    self.chain_valid_out.eq(self.chain_valid_in),
                    held.eq(0),
                ]
        return m


class WeightStationaryPE(ProcessingElement):
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
        Shift the load chain; copy it into the shadow weight (``capture`` unpipelined only: a
        pipelined PE reads ``capture_next``).
    a_next, first_next : In(signed(in_width)), In(1)
        The values ``a_in`` and ``first_in`` take at the next enabled edge: with them the PE
        registers the product of the next activation and the weight it will meet.
    valid_next, capture_next : In(1)
        The values ``valid_in`` and ``capture`` take at the next enabled edge (pipelined only).
    first_next_out : Out(1)
        The right neighbour's ``first_next``: ``first_next`` registered. The left neighbour's
        ``first_in`` is the same value, but it is the register of the PE two to the left, and
        its route chose the weight in front of the multiplier (the 12×12 core's longest path
        at 86.7 MHz on an LFE5U-85F).
    mul_a, mul_b, product
        As in :class:`OutputStationaryPE`, with the same ``dsp``, ``product_port`` and
        ``dsp_site`` parameters.
    """

    links: ClassVar[dict[str, dict[str, str]]] = {
        "west": {"a": "a_in", "a_next": "a_next", "valid": "valid_in", "first": "first_in",
                 "last": "last_in", "first_next": "first_next", "valid_next": "valid_next"},
        "east": {"a": "a_out", "a_next": "a_in", "valid": "valid_out", "first": "first_out",
                 "last": "last_out", "first_next": "first_next_out", "valid_next": "valid_in"},
        "north": {"psum": "psum_in", "w": "w_in"},
        "south": {"psum": "psum_out", "w": "w_out"},
    }

    def __init__(self, config: AcceleratorConfig, *, dsp: bool = True,
                 product_port: bool = False, pipelined: bool | None = None,
                 dsp_site: str | None = None):
        op = signed(config.in_width)
        acc = signed(config.acc_width)
        super().__init__(config, {
            "a_in": In(op), "a_out": Out(op), "a_next": In(op),
            "valid_in": In(1), "first_in": In(1), "last_in": In(1), "first_next": In(1),
            "valid_out": Out(1), "first_out": Out(1), "last_out": Out(1),
            "first_next_out": Out(1), "valid_next": In(1), "capture_next": In(1),
            "psum_in": In(acc), "psum_out": Out(acc),
            "w_in": In(op), "w_out": Out(op),
            "w_shift": In(1), "capture": In(1),
        }, dsp=dsp, product_port=product_port, pipelined=pipelined, dsp_site=dsp_site)

    def elaborate(self, platform) -> Module:
        m = Module()
        op = signed(self._config.in_width)
        pipelined = self.is_pipelined(platform)
        a_out, psum_out, w_out = (self.data_register(m, port, pipelined)
                                  for port in (self.a_out, self.psum_out, self.w_out))
        # product is always the product of a_in and the weight it meets
        product = Signal(signed(2 * self._config.in_width), reset_less=True)
        if pipelined:
            # The weight the next activation meets is the next shadow or the next active weight,
            # and the PE keeps those two as its weight registers (a cycle ahead of `shadow` and
            # `active`), loaded from the values their inputs take next: one LUT stands between
            # them and the multiplier. Chosen from `capture`, `valid_in` and `first_in` as well,
            # it took two, and was the 12×12 core's longest path (86.2 MHz on an LFE5U-85F).
            shadow_next = Signal(op, reset_less=True)
            active_next = Signal(op, reset_less=True)
            w_out_next = Mux(self.w_shift, self.w_in, self.w_out)
            weight_next = Signal(op)
            m.d.comb += weight_next.eq(Mux(self.first_next, shadow_next, active_next))
            updates = self._product_register(m, product, self.a_next, weight_next)
            with m.If(self.en):
                m.d.sync += [
                    *updates,
                    shadow_next.eq(Mux(self.capture_next, w_out_next, shadow_next)),
                    active_next.eq(Mux(self.valid_next & self.first_next, shadow_next,
                                       active_next)),
                ]
        else:
            shadow = Signal(op)
            active = Signal(op)
            m.d.comb += product.eq(self.multiply(m, self.a_in,
                                            Mux(self.first_in, shadow, active)))
            with m.If(self.en):
                with m.If(self.capture):
                    m.d.sync += shadow.eq(self.w_out)
                with m.If(self.valid_in & self.first_in):
                    m.d.sync += active.eq(shadow)

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
        return m
