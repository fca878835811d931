"""Packing Python values into the bit layout of a stream payload, and back.

The testbenches (Amaranth simulator and cocotb) and the host side use these, so a payload's bit
positions are read from the gateware's own layout and never restated by hand.
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Shape
from amaranth.lib import data

__all__ = ["pack", "unpack"]


def pack(layout: Any, value: Any) -> int:
    """Pack ``value`` (dict for a struct, sequence for an array, int otherwise) into an int."""
    if isinstance(layout, data.StructLayout):
        bits = 0
        for name, field in layout:
            if name in value:
                bits |= pack(field.shape, value[name]) << field.offset
        return bits
    if isinstance(layout, data.ArrayLayout):
        elem = layout.elem_shape
        width = Shape.cast(elem).width if not isinstance(elem, data.Layout) else elem.size
        if len(value) != layout.length:
            raise ValueError(f"expected {layout.length} elements, got {len(value)}")
        bits = 0
        for k, v in enumerate(value):
            bits |= pack(elem, v) << (k * width)
        return bits
    shape = Shape.cast(layout)
    return int(value) & ((1 << shape.width) - 1)


def unpack(layout: Any, bits: int) -> Any:
    """The inverse of :func:`pack`: signed shapes come back as negative ints where they are."""
    if isinstance(layout, data.StructLayout):
        return {name: unpack(field.shape, bits >> field.offset) for name, field in layout}
    if isinstance(layout, data.ArrayLayout):
        elem = layout.elem_shape
        width = Shape.cast(elem).width if not isinstance(elem, data.Layout) else elem.size
        return [unpack(elem, bits >> (k * width)) for k in range(layout.length)]
    shape = Shape.cast(layout)
    raw = bits & ((1 << shape.width) - 1)
    if shape.signed and raw >> (shape.width - 1):
        raw -= 1 << shape.width
    return raw
