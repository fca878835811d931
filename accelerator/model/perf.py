"""The analytic performance model: cycles, MAC utilization and traffic, with no simulation.

Two levels, both written out with their derivations in docs/performance-model.md:

* :func:`core_cycles`: the systolic core on a stream of tiles, exact to the cycle (the Verilator
  testbench checks it on every run), given inputs that are always valid and an output that is
  always ready.
* :func:`estimate`: a whole M×K×N GEMM on the accelerator: tiling, the core's fill and drain,
  scratchpad and AXI traffic, and whether each tile is bound by compute or by memory. Reads and
  writes use AXI's independent channels, and the sequencer double-buffers, so a tile costs the
  largest of its compute, read and write times.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from math import ceil

from ..config import AcceleratorConfig
from .geometry import Geometry

__all__ = ["Estimate", "core_cycles", "core_latency", "estimate", "tile_grid"]


def core_latency(config: AcceleratorConfig) -> int:
    """Cycles from a tile's last input handshake to its first result row.

    Output-stationary: 1 (input register) + R-1 (skew of the last physical row) + C-1 (the last
    column) + 1 (load into the output slot) + 1 (the drain pulse) + C-1-j+j (de-skew): R + C.
    Weight-stationary: 1 (input register) + R (the partial sum crossing R rows) + C-1 (skew and
    de-skew of the columns): R + C. The last row then follows R-1 cycles later (os) or with the
    last activation (ws).
    """
    return config.rows + config.cols


def core_cycles(config: AcceleratorConfig, lengths: Sequence[int]) -> int:
    """Cycles from the first input handshake to the last output handshake, both included.

    ``lengths`` are the streamed dimension of each tile: K (os) or M (ws).

    Output-stationary: tile ``n``'s last beat enters at ``L_n = L_(n-1) + max(K_n, R)`` (the
    output chain drains one row per cycle, so last beats are at least R apart), ``L_0 = K_0 - 1``;
    its rows leave at ``L_n + R + C`` … ``L_n + 2R + C - 1``.

    Weight-stationary: the first tile's R weight rows enter at cycles 0 … R-1, are captured at
    cycle R and its first activation enters at ``f_0 = R + 1``. Tile n's weights are captured at
    ``c_n = max(c_(n-1) + R, f_(n-1) + R - 1)`` (R more rows loaded, and the previous tile's
    first activation past the bottom row), and its first activation enters at
    ``f_n = max(c_n + 1, f_(n-1) + M_(n-1))``. The last activation's row leaves R + C cycles
    after it enters.
    """
    if not lengths or any(n < 1 for n in lengths):
        raise ValueError(f"core_cycles needs at least one tile with length ≥ 1, not {lengths!r}")
    R, C = config.rows, config.cols
    if config.dataflow == "os":
        last = lengths[0] - 1
        for k in lengths[1:]:
            last += max(k, R)
        return last + 2 * R + C
    capture, first = R, R + 1
    for previous, _ in itertools.pairwise(lengths):
        capture = max(capture + R, first + R - 1)
        first = max(capture + 1, first + previous)
    return first + lengths[-1] - 1 + R + C + 1


@dataclass(frozen=True)
class TileGrid:
    """How a GEMM is cut into tiles of the core (see docs/performance-model.md, "Tiling")."""

    tiles: int            # tiles the core computes
    m_tiles: int          # os: R-row blocks of C; ws: chunks of m_chunk rows
    n_tiles: int          # C-column panels of B (the outer loop, both dataflows)
    k_tiles: int          # ws: R-row blocks of weights; os: 1 (K streams through the array)
    m_chunk: int          # rows of A per tile: R (os) or the rows one scratchpad half holds (ws)
    b_resident: bool      # a whole K×C panel of B fits half the B scratchpad


def tile_grid(config: AcceleratorConfig, m: int, k: int, n: int) -> TileGrid:
    """The tiling the sequencer uses.

    Both dataflows loop over the C-column panels of B outermost, so a panel of B (K×C) is loaded
    once and reused by every tile below it while half the B scratchpad holds the next one.
    Output-stationary then walks R-row blocks of A, each streaming all of K through the array.
    Weight-stationary walks chunks of A rows (as many as half the A scratchpad holds, at most
    half the C scratchpad: :meth:`Geometry.m_chunk`) and, for each, the R-row blocks of the
    panel as weights.
    """
    R, C = config.rows, config.cols
    geometry = Geometry.of(config)
    nt = ceil(n / C)
    b_resident = k <= geometry.k_step
    m_chunk = geometry.m_chunk(config, m, k)
    mt = ceil(m / m_chunk)
    kt = 1 if config.dataflow == "os" else ceil(k / R)
    return TileGrid(tiles=mt * nt * kt, m_tiles=mt, n_tiles=nt, k_tiles=kt, m_chunk=m_chunk,
                    b_resident=b_resident)


@dataclass
class Estimate:
    """The model's prediction for one GEMM."""

    config: dict
    m: int
    k: int
    n: int
    macs: int
    cycles: int
    compute_cycles: int
    memory_read_cycles: int
    memory_write_cycles: int
    fill_drain_cycles: int
    utilization: float
    bound: str
    tiles: int
    read_bytes: int
    write_bytes: int
    scratchpad_reads: int
    scratchpad_writes: int
    blocks: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def _beats(nbytes: int, bus_bytes: int) -> int:
    return ceil(nbytes / bus_bytes)


def estimate(config: AcceleratorConfig, m: int, k: int, n: int, *, accumulate: bool = False,
             requant: bool = False) -> Estimate:
    """Predict cycles and traffic for ``C[m×n] (+)= A[m×k] · B[k×n]`` (int8 in, int32 or int8 out).

    Matrices are row-major in memory; each matrix row is read with its own bursts, so a row
    shorter than the bus still costs a whole beat. Tiles in the same row of the grid share their
    A panel when it fits half of the A scratchpad (the other half is the next panel loading).
    """
    for name, value in (("m", m), ("k", k), ("n", n)):
        if value < 1:
            raise ValueError(f"{name} = {value} is out of range (allowed: 1 or more)")
    if requant and not config.requant_unit:
        raise ValueError("requant needs hardware generated with requant_unit = true")
    R, C = config.rows, config.cols
    bus = config.axi_bytes
    in_bytes = ceil(config.in_width / 8)
    acc_bytes = ceil(config.acc_width / 8)
    out_bytes = 1 if requant else acc_bytes
    grid = tile_grid(config, m, k, n)

    # A block is what one half of the A scratchpad holds: the rows of a chunk over one K step
    # (all of K when it fits). The DMA loads block b+1 while the core computes block b and the
    # results of block b-1 are stored; a block's reads include the B panel (or the K step of
    # it, when K is walked in steps) that it starts.
    step = Geometry.of(config).k_step
    steps = [(k0, min(step, k - k0)) for k0 in range(0, k, step)]
    block_reads: list[int] = []
    block_writes: list[int] = []
    block_compute: list[int] = []
    for j in range(grid.n_tiles):
        cols = min(C, n - j * C)
        for i in range(grid.m_tiles):
            rows = min(grid.m_chunk, m - i * grid.m_chunk)
            for s_index, (_, k_len) in enumerate(steps):
                reads = rows * _beats(k_len * in_bytes, bus)
                if accumulate and s_index == 0:
                    reads += rows * _beats(cols * acc_bytes, bus)
                if (i == 0 and s_index == 0) or not grid.b_resident:
                    reads += k_len * _beats(cols * in_bytes, bus)
                block_reads.append(reads)
                last_step = s_index == len(steps) - 1
                block_writes.append(rows * _beats(cols * out_bytes, bus) if last_step else 0)
                if config.dataflow == "os":
                    # the tile's K streams through; a tile shorter than R waits for the chain
                    block_compute.append(k_len + (max(R - k, 0) if last_step else 0))
                else:
                    block_compute.append(ceil(k_len / R) * max(rows, R))
    # The core reads one A and one B (or weight) entry for each cycle it streams.
    spad_reads = sum(block_compute) * 2
    spad_writes = sum(block_reads)

    fill_drain = core_cycles(config, [1]) - 1
    steady = sum(max(c, r_next, w_prev) for c, r_next, w_prev in
                 zip(block_compute, [*block_reads[1:], 0], [0, *block_writes[:-1]],
                     strict=True))
    cycles = block_reads[0] + steady + fill_drain + block_writes[-1]
    compute = sum(block_compute)
    macs = m * k * n
    if compute >= max(sum(block_reads), sum(block_writes)):
        bound = "compute"
    else:
        bound = "memory"
    return Estimate(
        config=config.to_dict(), m=m, k=k, n=n, macs=macs, cycles=cycles,
        compute_cycles=compute, memory_read_cycles=sum(block_reads),
        memory_write_cycles=sum(block_writes), fill_drain_cycles=fill_drain,
        utilization=macs / (cycles * config.pes), bound=bound, tiles=grid.tiles,
        read_bytes=sum(block_reads) * bus, write_bytes=sum(block_writes) * bus,
        scratchpad_reads=spad_reads, scratchpad_writes=spad_writes,
        blocks=len(block_compute),
    )
