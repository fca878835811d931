"""Formal properties of the accelerator's blocks, proved with SymbiYosys from PyPI.

Each :class:`PropertySet` is a harness (the block, its free inputs and the ``Assert`` /
``Assume`` / ``Cover`` statements written in Amaranth), a method (``prove``: k-induction, an
unbounded proof; ``bmc``: no failure within ``depth`` cycles of reset; ``cover``: every
``Cover`` reached within ``depth``) and a depth. :data:`PROPERTY_SETS` lists them in the order
``accel formal`` runs them; docs/verification.md says what each proves and how long it takes.

A set with a ``broken`` variant builds the same harness around a deliberately broken copy of
the block (a subclass whose extra statement overrides one of the block's own), which the
properties must catch: ``accel formal --inject-bug`` runs those, to show a counterexample and
its replay.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .harness import FormalHarness

__all__ = ["PROPERTY_SETS", "FormalHarness", "PropertySet", "property_set"]


@dataclass(frozen=True)
class PropertySet:
    """``build(broken)`` makes the harness; ``ci``: in the set CI runs (measured ≤ 5 min in
    all); ``has_bug``: ``build(True)`` gives a broken variant."""

    name: str
    doc: str
    method: str
    depth: int
    build: Callable[[bool], FormalHarness]
    ci: bool = True
    has_bug: bool = False


def _sets() -> tuple[PropertySet, ...]:
    from ...config import AcceleratorConfig
    from .abort import abort_depth, abort_harness
    from .axil import axil_harness
    from .core import core_harness
    from .dma import dma_read_harness, dma_write_harness
    from .engine import engine_bound, engine_gemm_harness, engine_harness, gemm_bound
    from .requant import requant_harness

    default = AcceleratorConfig()
    compact = AcceleratorConfig(engine="compact", requant_unit=False, axi_data_width=32)
    return (
        PropertySet("axil", "AXI4-Lite slave of the register block: handshakes, one response "
                    "per request, SLVERR when unmapped, w1c and write pulses",
                    "prove", 8, lambda broken: axil_harness(default, broken=broken),
                    has_bug=True),
        PropertySet("axil-compact", "the same, with the compact engine's block-RAM registers "
                    "(reads answered a cycle later)",
                    "prove", 8, lambda broken: axil_harness(compact)),
        PropertySet("axil-cover", "the AXI4-Lite properties' covers: an unmapped write "
                    "answered, a start pulse, a read while done",
                    "cover", 12, lambda broken: axil_harness(default, cover=True)),
        PropertySet("dma-read", "the DMA reader's AXI4 master: AR held until ready, aligned "
                    "INCR bursts of 1 to 256 beats within a 4 KiB page, at most 8 outstanding",
                    "bmc", 12, lambda broken: dma_read_harness(default)),
        PropertySet("dma-read-fair", "the same with the stream always ready: R never stalled "
                    "two cycles running (every burst issued completes)",
                    "bmc", 12, lambda broken: dma_read_harness(default, fair=True)),
        PropertySet("dma-write", "the DMA writer's AXI4 master: AW and W held until ready, "
                    "legal bursts, WLAST on each burst's last beat only, at most 8 outstanding",
                    "bmc", 12, lambda broken: dma_write_harness(default, broken=broken),
                    has_bug=True),
        PropertySet("dma-write-fair", "the same with the stream always valid: a burst's W "
                    "beats never two idle cycles apart (every burst issued completes)",
                    "bmc", 12, lambda broken: dma_write_harness(default, fair=True)),
        PropertySet("requant", "requantizer: from its product register to the output equal to "
                    "gemmlowp's formula for every product and parameter, under back-pressure",
                    "bmc", 10, lambda broken: requant_harness()),
        PropertySet("requant-product", "requantizer: S1 holds the row's accumulator and the "
                    "multiplier, S3 the sum of their partial products, under back-pressure",
                    "bmc", 10, lambda broken: requant_harness(product=True, broken=broken),
                    has_bug=True),
        PropertySet("requant-product-ice40", "the same for the iCE40 variant, whose S2 is "
                    "the whole product acc·multiplier",
                    "bmc", 10, lambda broken: requant_harness(product=True, family="iCE40")),
        PropertySet("requant-ice40", "the iCE40 variant from its product register to the "
                    "output (requant on the iCE40 elaboration)",
                    "bmc", 10, lambda broken: requant_harness(family="iCE40")),
        PropertySet("core", "2×2 output-stationary core (4-bit operands): every result row is "
                    "the sum of its products, tiles back to back, any back-pressure",
                    "bmc", 10, lambda broken: core_harness()),
        PropertySet("core-ws", "2×2 weight-stationary core (4-bit operands): every result row "
                    "is the sum of its products against its tile's weights, any back-pressure",
                    "bmc", 10, lambda broken: core_harness(dataflow="ws", broken=broken),
                    has_bug=True),
        PropertySet("engine-gemm", "GEMM engine with an ideal DMA: a legal 1×1×1 command "
                    "ends without error within the performance model's cycles",
                    "bmc", gemm_bound() + 2, lambda broken: engine_gemm_harness()),
        PropertySet("engine-gemm-fair", "the same with a DMA that may stall each handshake "
                    "for a cycle at a time: it ends within twice the model's cycles",
                    "bmc", 2 * gemm_bound() + 2,
                    lambda broken: engine_gemm_harness(fair=True)),
        PropertySet("engine-illegal", "GEMM engine: a command with M, K or N zero or too "
                    "large ends within the model's bound with its error code and no DMA "
                    "command", "bmc", engine_bound() + 2, lambda broken: engine_harness(),
                    ci=False),
        PropertySet("abort", "CTRL.reset at any cycle of a small GEMM (up to the window): "
                    "STATUS.busy low within abort_bound, nothing requested after it, every "
                    "burst completed by the AXI rules, STATUS and counters clear",
                    "bmc", abort_depth(), lambda broken: abort_harness(broken=broken),
                    ci=False, has_bug=True),
    )


PROPERTY_SETS: tuple[PropertySet, ...] = _sets()


def property_set(name: str) -> PropertySet:
    for s in PROPERTY_SETS:
        if s.name == name:
            return s
    raise KeyError(f"no property set {name!r} (sets: {', '.join(s.name for s in PROPERTY_SETS)})")
