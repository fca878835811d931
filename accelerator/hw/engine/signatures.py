"""The named interfaces between the engines' stages and between the engines and the accelerator.

Each is a :class:`wiring.Signature` seen from the side that drives its ``Out`` members; the other
side takes it flipped (``In(...)``). Stages are joined with :func:`wiring.connect`.
"""

from __future__ import annotations

from amaranth.hdl import signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ...config import AcceleratorConfig
from ...model.geometry import Geometry
from ...model.regmap import ERROR_WIDTH
from ..dma import cmd_layout
from .command import command_layout

__all__ = ["AccumulatorFlags", "CinSignature", "ControlSignature", "CountersSignature",
           "EngineMembers", "FeederFlags", "LoaderFlags", "RunSignature", "StoreFlags",
           "TrafficSignature", "WeightFlags", "dma_command_layout", "pass_layout", "view"]


def dma_command_layout(config: AcceleratorConfig) -> data.StructLayout:
    """The DMA commands of a GEMM engine: no more rows nor bytes per row than it asks for."""
    geo = Geometry.of(config)
    return cmd_layout(*geo.dma_limits(config))


class _Named(wiring.Signature):
    """A signature compared by its class and members, and shown by its class name."""

    def __eq__(self, other):
        return type(self) is type(other) and self.members == other.members

    def __hash__(self):
        return hash(type(self))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ControlSignature(_Named):
    """An engine's command handshake, from the engine: ``start`` (a pulse; ignored while
    ``busy``) in; ``busy``, ``done`` (a cycle when a command ends, with or without an error) and
    ``error`` (the :class:`~accelerator.hw.registers.ErrorCode` of the last command) out."""

    def __init__(self):
        super().__init__({"start": In(1), "busy": Out(1), "done": Out(1),
                          "error": Out(ERROR_WIDTH)})


class CountersSignature(_Named):
    """An engine's performance counters of the last command (cleared on start): cycles busy,
    cycles the array took an operand beat, cycles it waited for loads, cycles it waited for the
    store. The register block's CYCLES, MAC_CYCLES, STALL_LOAD and STALL_STORE."""

    def __init__(self):
        super().__init__({name: Out(32) for name in
                          ("cycles", "mac_cycles", "stall_load", "stall_store")})


class TrafficSignature(_Named):
    """Payload bytes read and written by the last command (the DMA's, or the compact engine's
    own): the register block's DMA_RD_BYTES and DMA_WR_BYTES."""

    def __init__(self):
        super().__init__({"rd_bytes": Out(32), "wr_bytes": Out(32)})


class RunSignature(_Named):
    """What the control stage gives every other stage of the GemmEngine: the latched command,
    the chunk size the set-up found, the address steps per chunk, ``restart`` (a pulse before
    the run: every stage goes back to its first chunk) and ``running``."""

    def __init__(self):
        super().__init__({
            "cmd": Out(command_layout()),
            "restart": Out(1), "running": Out(1),
            "chunk": Out(16),        # rows of A per chunk
            "words": Out(16),        # ws: bus words per row of A in the scratchpad
            "split": Out(1),         # K does not fit the scratchpads: walk it in steps
            "chunk_lda": Out(32), "chunk_ldc": Out(32), "chunk_ldcin": Out(32),
        })


# The buffer flags: a bit per half of each double buffer (A, B, C). ``busy``: the loader has
# claimed the half; ``full`` (A, B) or ``ready`` (C): its data has arrived; ``done`` (C): the
# accumulator has finished the chunk in it. Each stage sees the flags it reads and the pulses it
# sets or clears them with; the flags themselves are in the engine's `Buffers`.

class LoaderFlags(_Named):
    """The loader's: which halves are claimed; pulses to claim them and to mark them filled."""

    def __init__(self):
        super().__init__({
            "a_busy": In(2), "b_busy": In(2), "c_busy": In(2),
            "a_claim": Out(2), "b_claim": Out(2), "c_claim": Out(2),
            "a_filled": Out(2), "b_filled": Out(2), "c_ready": Out(2),
        })


class FeederFlags(_Named):
    """The operand feeder's: which halves are full; a pulse to release an A half (and,
    output-stationary, a B half; weight-stationary, ``b_used`` marks a B half used by the
    operands and the `Buffers` free it once the weights have used it too)."""

    def __init__(self, dataflow: str):
        self.dataflow = dataflow
        members = {"a_full": In(2), "b_full": In(2), "c_ready": In(2), "a_release": Out(2)}
        if dataflow == "os":
            members["b_release"] = Out(2)
        else:
            members |= {"b_used": In(2), "b_use": Out(2)}
        super().__init__(members)


class WeightFlags(_Named):
    """The weight feeder's (weight-stationary): B halves full and used, a pulse to mark one used."""

    def __init__(self):
        super().__init__({"b_full": In(2), "b_used": In(2), "b_use": Out(2)})


class AccumulatorFlags(_Named):
    """The accumulator's: a pulse when a C half holds its finished chunk."""

    def __init__(self):
        super().__init__({"c_done": Out(2)})


class StoreFlags(_Named):
    """The store's: which C halves are finished; a pulse to free one once it is read out."""

    def __init__(self):
        super().__init__({"c_done": In(2), "c_release": Out(2)})


class CinSignature(_Named):
    """C_in rows from the loader into the C scratchpad, through the accumulator's write port: the
    loader's beat (``addr``, ``data``, a lane enable per int32), and ``blocked``, high when the
    accumulator has the port this cycle (the loader then holds the beat)."""

    def __init__(self, config: AcceleratorConfig):
        super().__init__({
            "addr": Out(ceil_log2(config.spad_c_depth)),
            "data": Out(data.ArrayLayout(signed(32), config.cols)),
            "en": Out(config.cols),
            "blocked": In(1),
        })


def pass_layout(config: AcceleratorConfig) -> data.StructLayout:
    """A feeder's descriptor of a tile for the accumulator: the C half, its rows (at most a
    chunk's), whether to add what the half holds (``read_old``) and whether the tile ends its
    chunk (``last``)."""
    rows = Geometry.of(config).max_chunk(config)
    return data.StructLayout({"half": 1, "rows": range(rows + 1), "read_old": 1, "last": 1})


def view(signature: wiring.Signature, source, **renamed) -> object:
    """``source``'s members as an interface of ``signature`` (``renamed``: member = attribute
    name on ``source``), so that blocks whose ports are flat (the register block, the DMA) can
    be joined with :func:`wiring.connect`."""
    ns = type("View", (), {})()
    ns.signature = signature
    for name in signature.members:
        setattr(ns, name, getattr(source, renamed.get(name, name)))
    return ns


def _alias(interface: str, name: str) -> property:
    return property(lambda self: getattr(getattr(self, interface), name),
                    doc=f"``{interface}.{name}``")


class EngineMembers:
    """The flat names of an engine's control and counter members (``start`` is
    ``control.start``, ``cycles`` is ``counters.cycles``), as testbenches name them."""

    start = _alias("control", "start")
    busy = _alias("control", "busy")
    done = _alias("control", "done")
    error = _alias("control", "error")
    cycles = _alias("counters", "cycles")
    mac_cycles = _alias("counters", "mac_cycles")
    stall_load = _alias("counters", "stall_load")
    stall_store = _alias("counters", "stall_store")
