"""The requantizer (:class:`~accelerator.hw.requant.Requantizer`) equals the reference formula.

The formula is written here as an Amaranth expression of gemmlowp's C form, transcribed from
:func:`accelerator.model.reference.requantize_scalar` (nudge and truncating division for
SaturatingRoundingDoublingHighMul, mask and threshold for RoundingDivideByPOT, then the zero
point and the clamp), not the hardware's floor-based form: the two are proved equal for every
accumulator and every parameter value, with any back-pressure on the output.

A row is tracked through the pipeline: the solver picks any accepted row (``f_pick``), the
harness counts the rows ahead of it, and when it leaves, lane 0 must equal the formula of its
accumulator. Lanes are identical copies of the same gateware; one column is checked.
"""

from __future__ import annotations

from amaranth.hdl import Assert, Assume, Cat, Const, Cover, Module, Mux, Signal, signed

from ...config import AcceleratorConfig
from ...hw.requant import LATENCY, PIECE_WIDTH, Requantizer, partial_products
from .harness import FormalHarness, past

__all__ = ["reference_scale", "requant_harness", "summed_partial_products"]


def reference_scale(m: Module, ab, shift, zero_point, relu):
    """gemmlowp's requantization of the product ``ab = acc·multiplier`` as an Amaranth value
    (see the module docstring)."""
    nudged = Signal(signed(64), name="f_nudged")
    m.d.comb += nudged.eq(ab + Mux(ab >= 0, 1 << 30, 1 - (1 << 30)))
    # C's division truncates toward zero: floor for a non-negative dividend, -floor(-n) else.
    x = Signal(signed(32), name="f_srdhm")
    m.d.comb += x.eq(Mux(nudged >= 0, nudged >> 31, -((-nudged) >> 31)))
    mask = Signal(32, name="f_mask")
    m.d.comb += mask.eq((Const(1, 33) << shift) - 1)
    remainder = Signal(32, name="f_remainder")
    threshold = Signal(33, name="f_threshold")
    m.d.comb += [remainder.eq(x.as_unsigned() & mask),
                 threshold.eq((mask >> 1) + (x < 0))]
    y = Signal(signed(34), name="f_rdbpot")
    m.d.comb += y.eq((x >> shift) + (remainder > threshold))
    z = Signal(signed(35), name="f_z")
    m.d.comb += z.eq(y + zero_point)
    lower = Mux(relu, zero_point, -128)
    out = Signal(signed(8), name="f_expected")
    m.d.comb += out.eq(Mux(z > 127, 127, Mux(z < lower, lower, z)))
    return out


def summed_partial_products(acc, multiplier, split: int | None, *, misplaced: bool = False):
    """``Σ product << shift`` over :func:`~accelerator.hw.requant.partial_products`, the sum S3
    registers; ``misplaced``: the second partial product one bit too low (a broken sum)."""
    parts = partial_products(acc, multiplier, split)
    low = [1 if misplaced and k == 1 else 0 for k in range(len(parts))]
    return sum(part << (shift - d) for d, (shift, part) in zip(low, parts, strict=True))


class _Family:
    """A stand-in platform that only tells the requantizer which FPGA family it is for."""

    def __init__(self, family: str):
        self.family = family


class _PartMisplaced(Requantizer):
    """A deliberately broken requantizer: S3 adds the second partial product one bit too low
    (its last statement overrides the requantizer's own)."""

    def elaborate(self, platform):
        m = super().elaborate(platform)

        def own(name: str):
            (found,) = [sig for sig in m._driving if sig.name == name]
            return found

        parts = [own(f"s2_p{k}_0") for k in range(4)]
        shifts = [0, PIECE_WIDTH - 1, PIECE_WIDTH, 2 * PIECE_WIDTH]
        with m.If(own("en")):
            m.d.sync += own("s3_p_0").eq(sum(part << shift
                                             for part, shift in zip(parts, shifts, strict=True)))
        return m


def requant_harness(*, product: bool = False, family: str | None = None,
                    broken: bool = False) -> FormalHarness:
    """``product=False``: the scaling from the product register S3 to the output, for every
    product and every parameter; ``product=True``: S3 holds ``acc·multiplier`` of the row
    (``family="iCE40"``: the single-product variant; None: the four 17-bit partial products)."""
    config = AcceleratorConfig(rows=1, cols=1)

    def properties(m: Module, dut: Requantizer, h: FormalHarness) -> None:
        pv = h.past_valid
        # The parameters are held for a GEMM (the block's contract): any values, but constant.
        params = Cat(dut.multiplier, dut.shift, dut.zero_point, dut.relu)
        before = past(m, params, "params")
        with m.If(pv):
            m.d.comb += Assume(params == before, "parameters constant")

        i_hs = dut.i.valid & dut.i.ready
        o_hs = dut.o.valid & dut.o.ready
        en = h.internal("en")
        tracking = Signal(name="f_tracking")
        stage = Signal(range(LATENCY + 1), name="f_stage")  # the tracked row's stage, S1 = 1
        ahead = Signal(4, name="f_ahead")       # rows to leave before the tracked one
        inflight = Signal(4, name="f_inflight")  # rows accepted and not yet out
        acc = Signal(signed(32), name="f_acc")
        p = Signal(signed(63), name="f_p")      # the product as S3 held it for the row
        last = Signal(name="f_last")
        m.d.sync += inflight.eq(inflight + i_hs - o_hs)
        with m.If(i_hs & h.extra["pick"] & ~tracking):
            m.d.sync += [tracking.eq(1), acc.eq(dut.i.payload.c[0]), stage.eq(1),
                         last.eq(dut.i.payload.last), ahead.eq(inflight - o_hs)]
        with m.Elif(tracking):
            with m.If(o_hs):
                m.d.sync += ahead.eq(ahead - 1)
            with m.If(en & (stage < LATENCY)):
                m.d.sync += stage.eq(stage + 1)
        s3_p = h.internal("s3_p_0")
        with m.If(tracking & (stage == 3)):
            m.d.sync += p.eq(s3_p)
        if product:
            # S1 holds the row's operands; S3 the sum of the partial products of what S1 held
            # as the row left it. The harness's partial products are the hardware's function
            # applied to S1's registers; that their sum is the product is `requant-identity`
            # (identity.py).
            s1_acc, s1_mul = h.internal("s1_acc_0"), h.internal("s1_mul_0")
            split = None if family == "iCE40" else PIECE_WIDTH
            summed = Signal(signed(63), name="f_summed")
            with m.If(tracking & (stage == 1)):
                m.d.sync += Assert((s1_acc == acc) & (s1_mul == dut.multiplier),
                                   "S1 holds the row's acc and the multiplier")
                with m.If(en):
                    m.d.sync += summed.eq(summed_partial_products(s1_acc, s1_mul, split))
            with m.If(tracking & (stage == 3)):
                m.d.sync += Assert(s3_p == summed,
                                   "S3 holds the sum of the row's partial products")
        leaving = tracking & o_hs & (ahead == 0)
        if product:
            m.d.comb += Cover(leaving, "a tracked row leaves")
        with m.If(leaving):
            m.d.sync += tracking.eq(0)
        m.d.sync += Assert(inflight <= LATENCY + 1,
                           "at most 8 rows in the pipeline and its skid buffer")
        if not product:
            expected = reference_scale(m, p, dut.shift, dut.zero_point, dut.relu)
            with m.If(leaving):
                m.d.sync += [
                    Assert(stage == LATENCY, "the tracked row leaves from S7"),
                    Assert(dut.o.payload.c[0] == expected,
                           "requantized row equals the reference formula of its product"),
                    Assert(dut.o.payload.last == last, "last passes through"),
                ]
            m.d.comb += Cover(leaving & (expected == -128) & ~dut.relu, "a saturated row")

    dut = (_PartMisplaced if broken else Requantizer)(config)
    harness = FormalHarness(dut, properties, extra_inputs={"pick": 1},
                            platform=_Family(family) if family else None)
    return harness
