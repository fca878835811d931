"""The performance model against cases worked out by hand, and its invariants."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelerator.config import AcceleratorConfig
from accelerator.model.perf import (
    Layout,
    _read_row,
    _rows_cost,
    _setup_cycles,
    _Timeline,
    _write_row,
    core_cycles,
    core_latency,
    covered,
    estimate,
    tile_grid,
)


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
    # 4×4 OS, 64-bit AXI, M = N = 4, K = 8: one tile, every row aligned to the bus.
    # Traffic: A 4 rows of 8 bytes = 4 beats, B 8 rows of 4 bytes = 8 beats, C 4 rows of 16
    # bytes = 8 beats; compute 8 cycles; fill/drain 2R + C - 1 = 11.
    # Timeline (cycle 0 = the first RUN cycle; docs/performance-model.md, "Time"):
    #   B command accepted at 1, its 8 one-beat rows on rd_data at 8 … 15;
    #   A command at 1 + 8 + 2 = 11 (the splitter registered B and cut its 8 bursts), its rows
    #   at 18 … 21; operands 21 + 3 = 24 … 31; results 31 + R + C = 39 … 31 + 2R + C - 1 = 42;
    #   the store's write command at 44, W beats 44 + 6 = 50 … 57; done 57 + 4.
    # Control: CHECK, START, FINISH (3) and the range check's products: (m-1)·lda, (k-1)·ldb,
    # (m-1)·ldc at 2 + bit_length cycles each (4, 5, 4) and C_in's skipped (1): 14.
    layout = Layout(a=0, b=0x1000, c=0x2000, lda=8, ldb=8, ldc=16)
    e = estimate(cfg(4, 4), 4, 8, 4, layout=layout)
    assert e.tiles == 1
    assert e.memory_read_cycles == 12
    assert e.memory_write_cycles == 8
    assert e.fill_drain_cycles == 11
    assert e.cycles == 57 + 4 + 3 + 14
    assert e.macs == 4 * 8 * 4
    assert e.utilization == pytest.approx(128 / (78 * 16))


def test_one_element_gemm_matches_the_rtl():
    # Measured in Verilator (a per-cycle trace of the bench, tools/validate_model.py): 1×1×1 on
    # 4×4 takes 50 cycles (os) and 58 (ws: SETUP counts one row, two more products). One-byte
    # rows cost one beat wherever they are, so the layout does not matter.
    assert estimate(cfg(4, 4), 1, 1, 1).cycles == 50
    assert estimate(cfg(4, 4, "ws"), 1, 1, 1).cycles == 58
    layout = Layout(a=5, b=3, c=4, lda=1, ldb=1, ldc=4)
    assert estimate(cfg(4, 4), 1, 1, 1, layout=layout).cycles == 50


def test_row_costs_follow_the_alignment():
    # reads: a row that starts off a bus word and spills into the next costs one cycle more
    # (the realigner keeps the first beat); writes: the bus words the row touches
    assert _rows_cost(0, 0, 1, 16, 8, False) == 2
    assert _rows_cost(1, 0, 1, 16, 8, False) == 3
    assert _rows_cost(4, 0, 1, 4, 8, False) == 1       # fits the word it starts in
    assert _rows_cost(5, 0, 1, 4, 8, False) == 2
    assert _rows_cost(4, 0, 1, 16, 8, True) == 3
    # rows 9 bytes apart start at offsets 0, 1, …, 7, 0, …: the costs repeat every 8 rows
    assert _rows_cost(0, 9, 20, 16, 8, False) == 3 * 2 + 17 * 3     # offset 0: rows 0, 8, 16


@pytest.mark.parametrize("nbytes", [1, 3, 4, 8, 13, 16, 37, 64])
@pytest.mark.parametrize("bus", [4, 8, 16, 32])
def test_expected_row_cost_is_the_mean_over_offsets(nbytes, bus):
    for grain in (1, 4):
        if nbytes % grain:
            continue
        offsets = range(0, bus, grain)
        reads = sum(_rows_cost(o, 0, 1, nbytes, bus, False) for o in offsets) / len(offsets)
        writes = sum(_rows_cost(o, 0, 1, nbytes, bus, True) for o in offsets) / len(offsets)
        assert _read_row(nbytes, bus, grain) == pytest.approx(reads)
        assert _write_row(nbytes, bus, grain) == pytest.approx(writes)


def test_setup_products_cost_a_cycle_per_bit():
    # os: (m-1)·lda, (k-1)·ldb, (m-1)·ldc, C_in skipped; ws adds SETUP and the chunk's steps
    assert _setup_cycles(True, 1, 1, 4, False) == 3 + 3 + 3 + 1
    # bit_length(36) = 6, bit_length(28) = 5, bit_length(16) = 5
    assert _setup_cycles(True, 37, 29, 4, True) == 8 + 7 + 8 + 8
    assert _setup_cycles(False, 37, 29, 16, False) == 8 + 7 + 8 + 1 + 17 + 7 + 7 + 1


@settings(max_examples=60, deadline=None)
@given(rows=st.sampled_from([1, 2, 3, 4, 8]), cols=st.sampled_from([1, 2, 4, 5, 8]),
       dataflow=st.sampled_from(["os", "ws"]), bus=st.sampled_from([32, 64, 128, 256]),
       m=st.integers(1, 400), k=st.integers(1, 1200), n=st.integers(1, 120),
       accumulate=st.booleans(), requant=st.booleans(), lda=st.integers(0, 40),
       offset=st.integers(0, 63), small_spads=st.booleans(), with_layout=st.booleans())
def test_periodic_jumps_change_nothing(rows, cols, dataflow, bus, m, k, n, accumulate,
                                       requant, lda, offset, small_spads, with_layout):
    # The timeline jumps over the periods of its periodic regime; stepping through every
    # chunk must give exactly the same cycles.
    c = cfg(rows, cols, dataflow, axi_data_width=bus,
            **({"spad_a_depth": 64, "spad_b_depth": 64, "spad_c_depth": 32} if small_spads
               else {}))
    layout = (Layout(a=offset, b=3 * offset + 1, c=4 * offset, lda=k + lda, ldb=n + lda,
                     ldc=4 * n + 4 * (lda % 5), c_in=8 * offset, ldcin=4 * n + 4 * (lda % 3))
              if with_layout else None)
    fast = _Timeline(c, m, k, n, accumulate, requant, layout).run()
    slow = _Timeline(c, m, k, n, accumulate, requant, layout)
    slow.jump = lambda history, limit, base: 0
    assert fast == slow.run()


@settings(max_examples=60, deadline=None)
@given(rows=st.sampled_from([2, 4, 8]), dataflow=st.sampled_from(["os", "ws"]),
       bus=st.sampled_from([32, 64, 128]), m=st.integers(1, 200), k=st.integers(1, 700),
       n=st.integers(1, 100), lda=st.integers(0, 40), offset=st.integers(0, 63))
def test_every_placement_lies_between_aligned_and_worst(rows, dataflow, bus, m, k, n, lda,
                                                        offset):
    c = cfg(rows, rows, dataflow, axi_data_width=bus)
    layout = Layout(a=offset, b=3 * offset + 1, c=4 * offset, lda=k + lda, ldb=n + lda,
                    ldc=4 * n + 4 * (lda % 5))
    best = _Timeline(c, m, k, n, False, False, None, "aligned").run()
    worst = _Timeline(c, m, k, n, False, False, None, "worst").run()
    mean = _Timeline(c, m, k, n, False, False, None).run()
    exact = _Timeline(c, m, k, n, False, False, layout).run()
    assert best <= mean <= worst
    assert best <= exact <= worst


def test_covered_when_the_placement_hardly_matters():
    # 256³ on 8×8 ws with 128-bit AXI: long rows, compute-bound, the placement moves it by
    # less than COVERED; 5×300×7 on 4×4 streams 300 rows of a B panel, one or two beats each
    assert covered(cfg(8, 8, "ws", axi_data_width=128), 256, 256, 256)
    assert not covered(cfg(4, 4), 5, 300, 7)


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


# --- the compact engine ----------------------------------------------------------------------


def test_compact_engine_by_hand():
    """5×10×5 on the compact 4×4: 4 tiles, 25 elements written and 39 outside M or N.

    IDLE and FINISH 2. The command read and checked: DIMS 4 (M, K, N), PRECHECK 1, then BASE,
    STRIDE, STRIDE_CHECK and a cycle per row for A (5 rows), B (10) and C (5):
    5 + 8 + 13 + 8 = 34. Each tile: TILE, K beats of R + C reads, InPlaceCore's R + C cycles to
    `done` and 2 cycles to the writer: 3 + 8 + 80 = 91. Elements: 4 cycles each written, 1
    skipped. Measured in Verilator (tests/test_model_validation.py): 539.
    """
    config = cfg(engine="compact", requant_unit=False, axi_data_width=32)
    assert estimate(config, 5, 10, 5).cycles == 2 + 34 + 4 * 91 + 25 * 4 + 39 == 539
    # accumulate: C_in's area in the checks (3 + 5 rows), and 3 cycles more per element
    assert estimate(config, 5, 10, 5, accumulate=True).cycles == 539 + 8 + 25 * 3 == 622


def test_compact_engine_traffic():
    config = cfg(engine="compact", requant_unit=False)
    e = estimate(config, 5, 10, 5, accumulate=True)
    # A once per column of tiles, B once per row of tiles, C_in and C once: one beat each
    assert e.memory_read_cycles == 2 * 5 * 10 + 2 * 10 * 5 + 25
    assert e.memory_write_cycles == 25
    assert e.tiles == e.blocks == 4 and e.compute_cycles == 4 * 10
