"""Tile streams for the systolic core: the beats a tile is sent as, and the rows it must return.

This is the core's programming model in Python, shared by the Amaranth-simulator tests, the cocotb
testbench and the core benchmark. Expected results come from the reference model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..config import AcceleratorConfig
from . import reference

__all__ = ["TileStream", "random_operands", "tile_stream"]


@dataclass
class TileStream:
    """Everything a core bench sends and expects for a sequence of tiles."""

    config: AcceleratorConfig
    #: operand beats, as dicts in the layout of ``core_layouts(config)["operands"]``
    operands: list[dict] = field(default_factory=list)
    #: weight beats (weight-stationary only)
    weights: list[dict] = field(default_factory=list)
    #: expected result rows, as lists of ints, in the order the core returns them
    results: list[list[int]] = field(default_factory=list)
    #: the expected ``last`` flag of each result row: set on the final row of each tile
    last: list[int] = field(default_factory=list)
    #: the multiply-accumulates the tiles perform (padding not counted)
    macs: int = 0
    #: the length of the streamed dimension of each tile (K for os, M for ws)
    lengths: list[int] = field(default_factory=list)

    @property
    def tiles(self) -> int:
        return len(self.lengths)


def tile_stream(config: AcceleratorConfig, tiles: list[tuple[np.ndarray, np.ndarray]]
                ) -> TileStream:
    """Build the beats for ``tiles``, each a pair ``(A, B)`` of one tile's operands.

    Output-stationary: ``A`` is R×K and ``B`` is K×C, any K ≥ 1.
    Weight-stationary: ``A`` is M×R and ``B`` (the weights) is R×C, any M ≥ 1.
    """
    R, C = config.rows, config.cols
    stream = TileStream(config)
    for index, (a, b) in enumerate(tiles):
        a = np.asarray(a)
        b = np.asarray(b)
        c = reference.gemm(a, b, acc_width=config.acc_width, in_width=config.in_width)
        if config.dataflow == "os":
            if a.shape[0] != R or b.shape[1] != C or a.shape[1] != b.shape[0] or a.shape[1] < 1:
                raise ValueError(f"tile {index}: A {a.shape} and B {b.shape} do not make an "
                                 f"output-stationary tile of a {R}×{C} array")
            k = a.shape[1]
            for kk in range(k):
                stream.operands.append({"a": a[:, kk].tolist(), "b": b[kk, :].tolist(),
                                        "last": int(kk == k - 1)})
            stream.lengths.append(k)
        else:
            if a.shape[1] != R or b.shape != (R, C) or a.shape[0] < 1:
                raise ValueError(f"tile {index}: A {a.shape} and W {b.shape} do not make a "
                                 f"weight-stationary tile of a {R}×{C} array")
            m = a.shape[0]
            stream.weights.extend({"w": b[kk, :].tolist()} for kk in range(R))
            for mm in range(m):
                stream.operands.append({"a": a[mm, :].tolist(), "last": int(mm == m - 1)})
            stream.lengths.append(m)
        stream.results.extend(row.tolist() for row in c)
        stream.last.extend([0] * (c.shape[0] - 1) + [1])
        stream.macs += a.shape[0] * a.shape[1] * b.shape[1]
    return stream


def random_operands(config: AcceleratorConfig, rng: np.random.Generator, length: int,
                    *, kind: str = "random") -> tuple[np.ndarray, np.ndarray]:
    """One tile's operands with streamed dimension ``length``.

    ``kind`` is ``random`` (uniform over the operand range), ``max`` (all most-negative values:
    the largest products, which wrap the accumulator soonest) or ``extreme`` (only the two ends
    of the range).
    """
    R, C = config.rows, config.cols
    lo, hi = config.in_min, config.in_max
    shape_a, shape_b = ((R, length), (length, C)) if config.dataflow == "os" \
        else ((length, R), (R, C))

    def draw(shape):
        if kind == "max":
            return np.full(shape, lo, dtype=np.int64)
        if kind == "extreme":
            return rng.choice(np.array([lo, hi]), size=shape)
        return rng.integers(lo, hi + 1, size=shape, dtype=np.int64)

    return draw(shape_a), draw(shape_b)
