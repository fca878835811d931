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
from dataclasses import asdict, dataclass, field
from math import ceil

from ..config import AcceleratorConfig

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
    """How a GEMM is cut into tiles of the core."""

    tiles: int            # tiles the core computes
    length: int           # streamed dimension of each tile (K for os, M-chunk for ws)
    m_tiles: int
    n_tiles: int
    k_tiles: int
    m_chunk: int          # rows of C kept in the accumulator scratchpad at a time (ws)


def tile_grid(config: AcceleratorConfig, m: int, k: int, n: int) -> TileGrid:
    """The tiling the sequencer uses (see docs/performance-model.md, "Tiling")."""
    R, C = config.rows, config.cols
    if config.dataflow == "os":
        # Each tile owns an R×C block of C and streams the whole of K through the array.
        mt, nt = ceil(m / R), ceil(n / C)
        return TileGrid(tiles=mt * nt, length=k, m_tiles=mt, n_tiles=nt, k_tiles=1, m_chunk=R)
    # Each tile holds an R×C block of weights and streams up to one scratchpad of A rows.
    m_chunk = min(m, config.spad_c_depth // 2)
    mt, nt, kt = ceil(m / m_chunk), ceil(n / C), ceil(k / R)
    return TileGrid(tiles=mt * nt * kt, length=m_chunk, m_tiles=mt, n_tiles=nt, k_tiles=kt,
                    m_chunk=m_chunk)


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
    per_tile: dict = field(default_factory=dict)

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
    out_bytes = 1 if requant else ceil(config.acc_width / 8)
    grid = tile_grid(config, m, k, n)

    if config.dataflow == "os":
        # One tile: A panel R×K (R rows of K), B panel K×C (K rows of C), C block R×C.
        a_panel = R * _beats(k * in_bytes, bus)
        a_fits = k <= config.spad_a_depth // 2
        b_panel = k * _beats(C * in_bytes, bus)
        c_block = R * _beats(C * out_bytes, bus)
        reads_per_tile = b_panel + (0 if a_fits else a_panel) + (c_block if accumulate else 0)
        reads_first_in_row = reads_per_tile + (a_panel if a_fits else 0)
        writes_per_tile = c_block
        compute_per_tile = max(k, R)
        tile_reads = [reads_first_in_row if j == 0 else reads_per_tile
                      for _ in range(grid.m_tiles) for j in range(grid.n_tiles)]
        tile_writes = [writes_per_tile] * grid.tiles
        tile_compute = [compute_per_tile] * grid.tiles
        spad_reads = grid.tiles * k * 2
        spad_writes = sum(tile_reads)
    else:
        # One tile: W block R×C (R rows of C), A slice m_chunk×R; C chunk written after the
        # last k tile of each (m chunk, n tile) pair.
        w_block = R * _beats(C * in_bytes, bus)
        tile_reads, tile_writes, tile_compute = [], [], []
        for mi in range(grid.m_tiles):
            rows = min(grid.m_chunk, m - mi * grid.m_chunk)
            a_slice = rows * _beats(R * in_bytes, bus)
            c_chunk = rows * _beats(C * out_bytes, bus)
            for _ in range(grid.n_tiles):
                for kt in range(grid.k_tiles):
                    tile_reads.append(w_block + a_slice + (c_chunk if accumulate and kt == 0
                                                           else 0))
                    tile_writes.append(c_chunk if kt == grid.k_tiles - 1 else 0)
                    tile_compute.append(max(rows, R))
        spad_reads = sum(tile_compute) * 2
        spad_writes = sum(tile_reads)

    # Double buffering: tile t computes while tile t+1 loads and tile t-1 stores.
    fill_drain = core_cycles(config, [1]) - 1
    steady = sum(max(c, r_next, w_prev) for c, r_next, w_prev in
                 zip(tile_compute, [*tile_reads[1:], 0], [0, *tile_writes[:-1]], strict=False))
    cycles = tile_reads[0] + steady + fill_drain + tile_writes[-1]
    compute = sum(tile_compute)
    macs = m * k * n
    if compute >= max(sum(tile_reads), sum(tile_writes)):
        bound = "compute"
    else:
        bound = "memory"
    return Estimate(
        config=config.to_dict(), m=m, k=k, n=n, macs=macs, cycles=cycles,
        compute_cycles=compute, memory_read_cycles=sum(tile_reads),
        memory_write_cycles=sum(tile_writes), fill_drain_cycles=fill_drain,
        utilization=macs / (cycles * config.pes), bound=bound, tiles=grid.tiles,
        read_bytes=sum(tile_reads) * bus, write_bytes=sum(tile_writes) * bus,
        scratchpad_reads=spad_reads, scratchpad_writes=spad_writes,
        per_tile={"compute": tile_compute[0], "reads": tile_reads[0],
                  "writes": max(tile_writes)},
    )
