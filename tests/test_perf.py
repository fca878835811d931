"""The performance model against cases worked out by hand, and its invariants."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelerator.config import AcceleratorConfig
from accelerator.model.perf import core_cycles, core_latency, estimate, tile_grid


def cfg(rows=4, cols=4, dataflow="os", **kw):
    return AcceleratorConfig(rows=rows, cols=cols, dataflow=dataflow, **kw)


# --- the core, to the cycle ------------------------------------------------------------------

def test_os_single_beat_on_one_pe():
    # cycle 0: the beat is accepted; 1: it is in the PE and loads the output slot;
    # 2: the slot drives the output. Three cycles, both ends counted.
    assert core_cycles(cfg(1, 1), [1]) == 3


def test_os_two_tiles_on_2x2():
    # last beats at cycles 2 and 5; the second tile's rows leave at 5+4 and 5+4+1 = 10.
    assert core_cycles(cfg(2, 2), [3, 3]) == 11


def test_os_short_tiles_wait_for_the_output_chain():
    # K = 1 < R = 4: last beats at cycles 0 and 4 (R apart), rows of tile 2 leave at 4+8 … 4+11.
    assert core_cycles(cfg(4, 3), [1, 1]) == 4 + 2 * 4 + 3
    # with K ≥ R the tiles follow each other with no gap
    assert core_cycles(cfg(4, 3), [4, 4]) - core_cycles(cfg(4, 3), [4]) == 4


def test_os_fill_and_drain():
    # a stream of T tiles of K ≥ R beats costs T·K plus a fixed fill and drain of 2R + C - 1.
    for rows, cols in [(1, 1), (2, 3), (8, 8), (16, 16)]:
        c = cfg(rows, cols)
        assert core_cycles(c, [64] * 64) == 64 * 64 + 2 * rows + cols - 1


def test_ws_single_row_on_one_pe():
    # 0: weight accepted; 1: captured into the shadow; 2: activation accepted;
    # 3: in the PE; 4: partial sum at the output. Five cycles.
    assert core_cycles(cfg(1, 1, "ws"), [1]) == 5


def test_ws_stream_costs_weights_then_one_cycle_per_row():
    # R weight rows, the capture, then M rows, then R + C cycles to the last output.
    c = cfg(3, 2, "ws")
    assert core_cycles(c, [10]) == 3 + 1 + 10 + 3 + 2
    # the next tile's weights load during the current one: no gap when M ≥ R
    assert core_cycles(c, [10, 10]) - core_cycles(c, [10]) == 10


def test_ws_short_tiles_wait_for_the_weights():
    # M = 1 < R = 3: a tile can start only every R cycles (R weight rows per tile).
    c = cfg(3, 2, "ws")
    assert core_cycles(c, [1, 1, 1]) - core_cycles(c, [1]) == 2 * 3


def test_core_latency_is_rows_plus_cols():
    assert core_latency(cfg(5, 7)) == 12


def test_core_cycles_rejects_empty_and_zero():
    with pytest.raises(ValueError, match="at least one tile"):
        core_cycles(cfg(), [])
    with pytest.raises(ValueError, match="at least one tile"):
        core_cycles(cfg(), [3, 0])


# --- the whole GEMM ------------------------------------------------------------------------

def test_tiling_covers_non_multiples():
    grid = tile_grid(cfg(4, 4), 5, 9, 7)
    assert (grid.m_tiles, grid.n_tiles, grid.k_tiles, grid.tiles) == (2, 2, 1, 4)
    grid = tile_grid(cfg(4, 4, "ws", spad_c_depth=16), 20, 9, 7)
    # m is cut into chunks of half the C scratchpad (8 rows), k into R = 4 rows of weights
    assert (grid.m_tiles, grid.n_tiles, grid.k_tiles, grid.m_chunk) == (3, 2, 3, 8)
    # or of half the A scratchpad: 64 entries of R = 4 bytes are 32 words of 8 bytes; half of
    # them hold 8 rows of 9 bytes (2 words each, rows start on a word)
    grid = tile_grid(cfg(4, 4, "ws", spad_a_depth=64), 20, 9, 7)
    assert grid.m_chunk == 8


def test_single_tile_gemm_by_hand():
    # 4×4 OS, 64-bit AXI, M = N = 4, K = 8: one tile.
    # reads: A panel 4 rows of 8 bytes = 4 beats, B panel 8 rows of 4 bytes = 8 beats;
    # compute 8 cycles; fill/drain 2R + C - 1 = 11; C block 4 rows of 16 bytes = 8 beats.
    e = estimate(cfg(4, 4), 4, 8, 4)
    assert e.tiles == 1
    assert e.memory_read_cycles == 12
    assert e.memory_write_cycles == 8
    assert e.fill_drain_cycles == 11
    assert e.cycles == 12 + 8 + 11 + 8
    assert e.macs == 4 * 8 * 4
    assert e.utilization == pytest.approx(128 / (39 * 16))


def test_compute_bound_and_memory_bound():
    # 8×8 OS, 128-bit: a tile reads its A block (8 rows of 256 bytes = 128 beats) while the
    # previous one computes 256 cycles; with K = 8 on a 32-bit bus the A block alone is 16 beats
    # against 8 cycles of compute.
    assert estimate(cfg(8, 8, axi_data_width=128), 256, 256, 256).bound == "compute"
    assert estimate(cfg(8, 8, axi_data_width=32), 256, 8, 256).bound == "memory"


def test_requantized_output_writes_a_quarter():
    full = estimate(cfg(8, 8), 64, 64, 64)
    quant = estimate(cfg(8, 8), 64, 64, 64, requant=True)
    assert quant.write_bytes * 4 == full.write_bytes


def test_accumulate_reads_c_in():
    plain = estimate(cfg(4, 4), 16, 16, 16)
    acc = estimate(cfg(4, 4), 16, 16, 16, accumulate=True)
    assert acc.read_bytes - plain.read_bytes == 16 * 16 * 4


def test_estimate_rejects_bad_dimensions():
    with pytest.raises(ValueError, match=r"^k = 0 is out of range \(allowed: 1 or more\)$"):
        estimate(cfg(), 4, 0, 4)
    with pytest.raises(ValueError, match="requant_unit"):
        estimate(cfg(requant_unit=False), 4, 4, 4, requant=True)


@settings(max_examples=200, deadline=None)
@given(rows=st.integers(1, 16), cols=st.integers(1, 16), dataflow=st.sampled_from(["os", "ws"]),
       m=st.integers(1, 300), k=st.integers(1, 2000), n=st.integers(1, 300),
       bus=st.sampled_from([32, 64, 128, 256]))
def test_utilization_never_above_one(rows, cols, dataflow, m, k, n, bus):
    e = estimate(cfg(rows, cols, dataflow, axi_data_width=bus), m, k, n)
    assert 0 < e.utilization <= 1
    assert e.cycles >= e.compute_cycles >= m * k * n / (rows * cols)


@settings(max_examples=200, deadline=None)
@given(rows=st.integers(1, 16), cols=st.integers(1, 16), dataflow=st.sampled_from(["os", "ws"]),
       lengths=st.lists(st.integers(1, 40), min_size=1, max_size=12))
def test_core_never_beats_one_beat_per_cycle(rows, cols, dataflow, lengths):
    c = cfg(rows, cols, dataflow)
    cycles = core_cycles(c, lengths)
    assert cycles >= sum(lengths) + core_latency(c)
    # and adding a tile never makes the stream shorter
    assert core_cycles(c, [*lengths, 1]) > cycles
