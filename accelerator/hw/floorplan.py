"""The array's floorplan on an ECP5: the DSP block each PE multiplies in.

An ECP5's MULT18X18D blocks sit in a few rows across the die; an LFE5U-85F has three rows
(Y = 10, 34, 58) of 52 blocks each, from X = 4 to X = 119. A 12×12 array takes 144 of the 156,
and nextpnr, left to itself, put PEs' flip-flops up to 100 columns away from their multipliers
(the critical path of the 12×12 core: 15.8 ns of routing in a 20.3 ns path).

The floorplan lays the array out on the DSP rows a band of PE rows at a time. In a band of ``g``
PE rows, PE ``(p, j)`` takes site ``j·g + p mod g`` of its DSP row: its right neighbour is ``g``
sites on, the PE below it the next site, and from band to band the PE below is at the same
site in the next DSP row. The layout is centred in the row. The sites were read from nextpnr
(placing a design with one multiplier per block and reading back each block's ``NEXTPNR_BEL``).
"""

from __future__ import annotations

__all__ = ["ECP5_DSP_SITES", "dsp_floorplan"]

#: Per ECP5 device: the Y of each DSP row, and the X of each MULT18X18D site along a row.
ECP5_DSP_SITES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "LFE5U-85F": (
        (10, 34, 58),
        (4, 5, 8, 9, 13, 14, 17, 18, 22, 23, 26, 27, 31, 32, 35, 36, 40, 41, 44, 45, 49, 50, 53,
         54, 58, 59, 62, 63, 69, 70, 73, 74, 78, 79, 82, 83, 87, 88, 91, 92, 96, 97, 100, 101,
         105, 106, 109, 110, 114, 115, 118, 119),
    ),
}

# The four MULT18X18D of a DSP tile pair, in X order: sites repeat this pattern along a row.
_SLOTS = ("MULT18_0", "MULT18_1", "MULT18_4", "MULT18_5")


def dsp_floorplan(device: str, rows: int, cols: int) -> list[list[str]] | None:
    """The nextpnr BEL of each PE's multiplier (``[p][j]``), or None.

    None when the device's sites are not known, or when the array does not fit them in the
    banded layout; the multipliers are then left to nextpnr.
    """
    if device not in ECP5_DSP_SITES:
        return None
    ys, xs = ECP5_DSP_SITES[device]
    band = -(-rows // len(ys))
    if band * cols > len(xs):
        return None
    offset = (len(xs) - band * cols) // 2

    def site(p: int, j: int) -> str:
        index = offset + j * band + p % band
        return f"X{xs[index]}/Y{ys[p // band]}/{_SLOTS[index % len(_SLOTS)]}"

    return [[site(p, j) for j in range(cols)] for p in range(rows)]
