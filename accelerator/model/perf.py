"""The analytic performance model: cycles, MAC utilization and traffic, with no simulation.

Two levels, both written out with their derivations in docs/performance-model.md:

* :func:`core_cycles`: the systolic core on a stream of tiles, exact to the cycle (the Verilator
  testbench checks it on every run), given inputs that are always valid and an output that is
  always ready.
* :func:`estimate`: a whole M×K×N GEMM on the accelerator, start to done: its tiling and
  traffic in closed form, and its cycles from :class:`_Timeline`, the engine's stages (loader
  and DMA reader, feeder and core, accumulator, store and DMA writer) as a recurrence over the
  chunks, with the latencies of the RTL and of the bench's AXI memory. With the matrices'
  :class:`Layout` it is within 1.4% of the RTL on every GEMM measured by
  tools/validate_model.py; without one it is the mean over placements of the rows in bus words,
  which :func:`covered` bounds.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from math import ceil, gcd

from ..config import AcceleratorConfig
from .geometry import REQUANT_LATENCY, STORE_FIFO_DEPTH, Geometry, serial_cycles

__all__ = ["COVERED", "TOLERANCE", "Estimate", "Layout", "core_cycles", "core_latency", "covered",
           "estimate", "tile_grid"]

#: How far :func:`estimate` may be from the RTL's cycles where it claims to be accurate.
TOLERANCE = 0.02
#: How close the layout-free estimate must be to every placement's for :func:`covered`: the
#: estimate with a layout is itself within about 1% of the RTL, so the sum stays within
#: :data:`TOLERANCE`.
COVERED = 0.01


def core_latency(config: AcceleratorConfig) -> int:
    """Cycles from a tile's last input handshake to its first result row.

    Output-stationary: 1 (input register) + R-1 (skew of the last physical row) + C-1 (the last
    column) + 1 (load into the output slot) + 1 (the drain pulse) + C-1-j+j (de-skew): R + C.
    Weight-stationary: 1 (input register) + R (the partial sum crossing R rows) + C-1 (skew and
    de-skew of the columns): R + C. The last row then follows R-1 cycles later (os) or with the
    last activation (ws). A registered DSP's results come ``config.result_latency`` cycles
    later (its products' latency, and os the output slot's).
    """
    return config.rows + config.cols + config.result_latency


def core_cycles(config: AcceleratorConfig, lengths: Sequence[int]) -> int:
    """Cycles from the first input handshake to the last output handshake, both included.

    ``lengths`` are the streamed dimension of each tile: K (os) or M (ws).

    Output-stationary: tile ``n``'s last beat enters at ``L_n = L_(n-1) + max(K_n, R)`` (the
    output chain drains one row per cycle, so last beats are at least R apart), ``L_0 = K_0 - 1``;
    its rows leave at ``L_n + R + C`` … ``L_n + 2R + C - 1`` (plus a registered DSP's latency).

    Weight-stationary: the first tile's R weight rows enter at cycles 0 … R-1, are captured at
    cycle R and its first activation enters at ``f_0 = R + 1``. Tile n's weights are captured at
    ``c_n = max(c_(n-1) + R, f_(n-1) + R - 1)`` (R more rows loaded, and the previous tile's
    first activation past the bottom row), and its first activation enters at
    ``f_n = max(c_n + 1, f_(n-1) + M_(n-1))``. The last activation's row leaves
    :func:`core_latency` (R + C, and a registered DSP's latency) cycles after it enters.
    """
    if not lengths or any(n < 1 for n in lengths):
        raise ValueError(f"core_cycles needs at least one tile with length ≥ 1, not {lengths!r}")
    R = config.rows
    if config.dataflow == "os":
        last = lengths[0] - 1
        for k in lengths[1:]:
            last += max(k, R)
        return last + R + core_latency(config)
    capture, first = R, R + 1
    for previous, _ in itertools.pairwise(lengths):
        capture = max(capture + R, first + R - 1)
        first = max(capture + 1, first + previous)
    return first + lengths[-1] - 1 + core_latency(config) + 1


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


# --- the timeline of a whole GEMM -----------------------------------------------------------
# Latencies of the RTL (hw/engine/, hw/dma.py) around cocotbext-axi's AxiRam, in cycles,
# read off a per-cycle trace of the bench (docs/performance-model.md, "Time").

_CONTROL = 3          # the control FSM's CHECK, START and FINISH (+ _setup_cycles)
_RD_LAT = 7           # read command accepted → its first beat on rd_data (reader idle)
_RD_AHEAD = 4         # rows (bursts) AxiRam takes requests for ahead of the data it returns
_OP_LAT = 3           # a buffer's last beat on rd_data → the core takes an operand from it
_FREE = -1            # the core's last operand of a block → the loader may refill its half
_DONE = 2             # the accumulator's last row → the store sees the chunk
_WD_LAT = 3           # the store reads a C row → its first W beat, the writer ready
_RQ_LAT = REQUANT_LATENCY  # the requantizer's pipeline (hw/requant.py)
_WR_DESC = 6          # write command accepted → its first W beat, the data ready
_ROWQ = STORE_FIFO_DEPTH  # rows the store reads ahead of the writer (+ _RQ_LAT)
_END = 4              # the last W beat → B response → the control FSM sees the writer idle


def _read_row(nbytes: int, bus: int, grain: int) -> float:
    """Expected cycles of one row on the read data stream, its start a random multiple of
    ``grain`` within a bus word: one per beat, and one more for a row that starts off a word
    and spills into another (the realigner first keeps a beat, then emits the rest)."""
    return ceil(nbytes / bus) + (min(nbytes, bus) - grain) / bus


def _write_row(nbytes: int, bus: int, grain: int) -> float:
    """Expected W beats of one row starting at a random multiple of ``grain``: the bus words it
    touches (the writer takes the spill beat from the kept input beat, with no bubble)."""
    return 1 + (nbytes - grain) / bus


@functools.lru_cache(maxsize=1 << 14)
def _rows_cost(offset: int, stride: int, rows: int, nbytes: int, bus: int, write: bool) -> int:
    """Exact cycles of ``rows`` rows of ``nbytes`` bytes, the first at ``offset`` within a bus
    word and each ``stride`` bytes after the last: what :func:`_read_row` and :func:`_write_row`
    average. The offsets repeat every ``bus / gcd(stride, bus)`` rows."""
    period = bus // gcd(stride % bus, bus) if stride % bus else 1
    costs = []
    for r in range(min(rows, period)):
        o = (offset + r * stride) % bus
        if write:
            costs.append((o + nbytes + bus - 1) // bus)
        elif o == 0 or o + nbytes <= bus:
            costs.append((nbytes + bus - 1) // bus if o == 0 else 1)
        else:
            costs.append((nbytes + bus - 1) // bus + 1)
    full, rest = divmod(rows, len(costs))
    return full * sum(costs) + sum(costs[:rest])


@dataclass(frozen=True)
class Layout:
    """Where a GEMM's matrices are in memory (byte addresses and row strides), for an estimate
    exact to the DMA's per-row alignment costs; without one, :func:`estimate` takes every row
    to start at a random place in a bus word (what the Verilator bench does)."""

    a: int
    b: int
    c: int
    lda: int
    ldb: int
    ldc: int
    c_in: int = 0
    ldcin: int = 0


def _product_cycles(a: int) -> int:
    """A control state that runs one product ``a·b`` through the engine's serial multiplier:
    the start cycle, then one per bit of ``a`` (hw/serialmul.py)."""
    return 1 + serial_cycles(a)


def _setup_cycles(os_flow: bool, m: int, k: int, chunk: int, accumulate: bool) -> int:
    """The control FSM's states between start and RUN beyond CHECK and START: the range
    check's products (where A, B, C and C_in end: ``(rows-1)·stride``; C_in's is skipped in a
    cycle without ``accumulate``), and for ws the chunk (SETUP counts its rows, one a cycle)
    and the address steps per chunk (``chunk·stride`` for A, C and C_in)."""
    cycles = 2 * _product_cycles(m - 1) + _product_cycles(k - 1)
    cycles += _product_cycles(m - 1) if accumulate else 1
    if not os_flow:
        cycles += chunk + 1 + 2 * _product_cycles(chunk)
        cycles += _product_cycles(chunk) if accumulate else 1
    return cycles


#: The time-valued state of :class:`_Timeline` (cycles; ``-inf`` for "not yet").
_TIMES = ("rd_free", "rd_end", "loader", "a_free0", "a_free1", "b_free0", "b_free1", "c_free0",
          "c_free1", "b_ready", "op_last", "tile_last", "capture", "first", "win0", "win1",
          "store_free", "wr_free", "w_end", "res_last")
#: The rest of its state: it must repeat exactly for the timeline to repeat.
_PHASE = ("apar", "bpar", "b_half", "c_par", "prev_rows", "duty")
#: Periods :meth:`_Timeline.jump` looks for, in units of the costs' own period: half-cycle row
#: costs and the double buffers' parity make periods of 2, 4, 6 … chunks common.
_PERIODS = (*range(1, 17), 24, 32, 48, 64)
_HISTORY = 2 * 64 + 1
_W_END = _TIMES.index("w_end")


class _Timeline:
    """Cycles from start to done: the engine's stages as a recurrence over its chunks.

    Each stage (loader and DMA reader, feeder and core, accumulator, store and DMA writer) walks
    the chunks (and K steps) in order; an event of chunk i waits for the same stage's previous
    chunk and for the events of the other stages it depends on (data loaded, a scratchpad half
    freed, a chunk done). docs/performance-model.md derives each step.

    The chunks of a panel, and the panels, repeat: once the state has advanced by the same
    amount over two periods in a row, the recurrence is in its periodic regime and
    :meth:`run` jumps over the periods in between (the rest of a max-plus recurrence's state
    either advances by that amount or no longer matters). That keeps an estimate of a 1024³
    GEMM near a millisecond.
    """

    def __init__(self, config: AcceleratorConfig, m: int, k: int, n: int, accumulate: bool,
                 requant: bool, layout: Layout | None, placement: str = "random"):
        self.R, self.C, self.bus = config.rows, config.cols, config.axi_bytes
        self.latency = core_latency(config)
        self.m, self.n = m, n
        self.os_flow = config.dataflow == "os"
        geo = Geometry.of(config)
        self.split = k > geo.k_step
        self.chunk = geo.m_chunk(config, m, k)
        self.accumulate, self.requant = accumulate, requant
        self.out_bytes = 1 if requant else 4
        self.steps = [(k0, min(geo.k_step, k - k0)) for k0 in range(0, k, geo.k_step)]
        self.layout = layout
        self.placement = placement   # without a layout: "random", "aligned" or "worst" rows
        self.lay = layout or Layout(a=0, b=0, c=0, lda=0, ldb=0, ldc=0)
        self.n_tiles, self.m_tiles = ceil(n / self.C), ceil(m / self.chunk)
        # int8 results of a panel start on a multiple of C bytes (and ldc is a multiple of 4)
        self.out_grain = 4 if self.out_bytes == 4 else min(4, self.C & -self.C)
        self.hold = _ROWQ + (_RQ_LAT if requant else 0)
        self.setup = _setup_cycles(self.os_flow, m, k, self.chunk, accumulate)
        neg = float("-inf")
        self.rd_free = 0.0       # the reader takes its next command
        self.rd_end = neg        # the last beat on rd_data so far
        self.loader = 1.0        # the loader reaches PANEL on RUN's second cycle
        self.a_free0 = self.a_free1 = self.b_free0 = self.b_free1 = 0.0
        self.c_free0 = self.c_free1 = 0.0
        self.b_ready = 0.0
        self.op_last = neg       # the core's last operand so far
        self.tile_last = neg     # os: the previous tile's last operand
        self.capture = self.first = neg   # ws: the core's last weight capture and activation
        self.win0 = self.win1 = neg       # the accumulator's last burst of C writes
        self.store_free = self.wr_free = 0.0
        self.w_end = self.res_last = neg
        self.apar = self.bpar = self.b_half = self.c_par = self.prev_rows = 0
        self.duty = 0.0          # the share of that burst's cycles that write C

    # -- costs ---------------------------------------------------------------------------------

    def cost(self, base: int, stride: int, rows: int, nbytes: int, grain: int,
             write: bool) -> float:
        """Cycles of ``rows`` rows at ``base``, ``base + stride``, … on the DMA's data stream."""
        bus = self.bus
        if self.layout is not None:
            return _rows_cost(base % bus, stride % bus, rows, nbytes, bus, write)
        if self.placement == "random":
            return rows * (_write_row(nbytes, bus, grain) if write
                           else _read_row(nbytes, bus, grain))
        # every row at the offset that costs it least (0) or most (the last grain of a word)
        offset = 0 if self.placement == "aligned" else (bus - grain) % bus
        return rows * _rows_cost(offset, 0, 1, nbytes, bus, write)

    def read(self, t: float, rows: int, span: float, blocked: bool = False) -> float:
        """A read command of ``rows`` rows (``span`` cycles of data) accepted at ``t``: the
        cycle of its last beat."""
        start = max(t + _RD_LAT, self.rd_end + 1)
        row = span / rows
        if blocked and start <= self.win1 and start + span > self.win0:
            # C_in beats wait while the accumulator writes the C scratchpad (one port)
            if self.duty >= 1:
                span += self.win1 + 1 - max(start, self.win0)
            else:
                overlap = min(start + span, self.win1 + 1) - max(start, self.win0)
                span += overlap * self.duty / (1 - self.duty)
        end = self.rd_end = start + span - 1
        # the splitter takes the next command once this one's bursts are all requested, and
        # the memory takes requests only a few bursts ahead of the data it returns
        free = t + rows + 2
        if rows > _RD_AHEAD:
            free = max(free, end - _RD_AHEAD * row - 3)
        self.rd_free = free
        return end

    # -- one chunk -------------------------------------------------------------------------------

    def step_chunk(self, j: int, i: int) -> None:
        """Chunk i of panel j through every stage."""
        R, C, lay = self.R, self.C, self.lay
        cols = min(C, self.n - j * C)
        rows = min(self.chunk, self.m - i * self.chunk)
        row0 = i * self.chunk
        last_step = len(self.steps) - 1
        c_ready = 0.0
        for s, (k0, k_len) in enumerate(self.steps):
            # -- loader: B (a new panel, or every step when K is walked), A, C_in -------------
            if (i == 0 and s == 0) or self.split:
                t = max(self.loader, self.b_free1 if self.bpar else self.b_free0, self.rd_free)
                self.b_ready = self.read(t, k_len, self.cost(lay.b + k0 * lay.ldb + j * C,
                                                             lay.ldb, k_len, cols, 1, False))
                self.loader = t + 1
                self.b_half, self.bpar = self.bpar, self.bpar ^ 1
            else:
                self.loader += 1                    # PANEL passes in a cycle
            t = max(self.loader, self.a_free1 if self.apar else self.a_free0, self.rd_free)
            a_ready = self.read(t, rows, self.cost(lay.a + row0 * lay.lda + k0, lay.lda, rows,
                                                   k_len, 1, False))
            self.loader = t + 1
            if s == 0:
                # claim the chunk's C half once the store has read out the chunk two back
                t = max(self.loader, self.c_free1 if self.c_par else self.c_free0)
                if self.accumulate:
                    t = max(t, self.rd_free)
                    span = self.cost(lay.c_in + row0 * lay.ldcin + 4 * j * C, lay.ldcin, rows,
                                     4 * cols, 4, False)
                    c_ready = self.read(t, rows, span, blocked=True)
                else:
                    c_ready = t
                self.loader = t + 1
            # -- feeder and core ---------------------------------------------------------------
            avail = max(a_ready, self.b_ready, c_ready) + _OP_LAT
            if self.os_flow:
                op_last = max(avail, self.op_last + 1) + k_len - 1
                if s == last_step:
                    # a tile's last beats are at least R apart (the output chain)
                    op_last = max(op_last, self.tile_last + R)
                    self.tile_last = op_last
                    self.res_last = op_last + R - 1 + self.latency
                    self.win0, self.win1 = op_last + self.latency + 1, self.res_last + 1
                    self.duty = 1.0
            else:
                tiles = ceil(k_len / R)
                period = max(rows, R)
                capture = max(self.capture + R, self.first + R - 1, self.b_ready + _OP_LAT + R)
                f0 = max(capture + 1, self.first + self.prev_rows, avail)
                first = f0 + (tiles - 1) * period
                if tiles > 1:
                    capture = max(capture + (tiles - 1) * R, first - period + R - 1)
                self.capture, self.first, self.prev_rows = capture, first, rows
                op_last = first + rows - 1
                self.res_last = op_last + self.latency
                self.win0, self.win1 = f0 + self.latency + 1, self.res_last + 1
                self.duty = rows / period
            self.op_last = op_last
            if self.apar:
                self.a_free1 = op_last + _FREE
            else:
                self.a_free0 = op_last + _FREE
            self.apar ^= 1
            if self.split or (i == self.m_tiles - 1 and s == last_step):
                if self.b_half:
                    self.b_free1 = op_last + _FREE
                else:
                    self.b_free0 = op_last + _FREE
        # -- accumulator, then the store -------------------------------------------------------
        t = max(self.res_last + _DONE, self.store_free, self.wr_free)
        data = t + 1 + _WD_LAT + (_RQ_LAT if self.requant else 0)   # rows read from t + 1
        w_first = max(data, t + _WR_DESC, self.w_end + 1)
        c_addr = lay.c + row0 * lay.ldc + j * C * self.out_bytes
        nbytes = cols * self.out_bytes
        self.w_end = w_first + self.cost(c_addr, lay.ldc, rows, nbytes, self.out_grain, True) - 1
        # the store reads a row once the one `hold` rows ahead of it has left as W beats
        read_end = t + rows
        if rows > self.hold:
            ahead = self.cost(c_addr, lay.ldc, rows - self.hold, nbytes, self.out_grain, True)
            read_end = max(read_end, w_first + ahead - 1)
        self.store_free = read_end + 1
        if self.c_par:
            self.c_free1 = read_end + 1
        else:
            self.c_free0 = read_end + 1
        self.c_par ^= 1
        self.wr_free = t + rows + 2     # the writer's splitter: a burst per row and cycle

    # -- the whole GEMM ------------------------------------------------------------------------

    def state(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        return (tuple(getattr(self, name) for name in _TIMES),
                tuple(getattr(self, name) for name in _PHASE))

    def period(self, strides: tuple[int, ...]) -> int:
        """Steps after which the costs repeat: with a layout, the rows' offsets in a bus word
        move by ``stride`` per step (mod the bus width) for each of ``strides``."""
        if self.layout is None:
            return 1
        bus = self.bus
        return max(bus // gcd(s % bus, bus) if s % bus else 1 for s in strides)

    def jump(self, history: list, limit: int, base: int) -> int:
        """Periods of the recurrence to skip, at most ``limit`` steps' worth, from the states
        after the last steps (``history``, newest last); applies the skip and returns the
        number of steps skipped (0 if the recurrence is not periodic yet). A period is a
        multiple of ``base``, the period of the costs."""
        for period in _PERIODS:
            period *= base
            if len(history) < 2 * period + 1 or limit < period:
                break
            (now, phase), (mid, phase1), (old, phase2) = (history[-1], history[-1 - period],
                                                          history[-1 - 2 * period])
            # the last W beat advances in every chunk: a cheap first test
            if now[_W_END] - mid[_W_END] != mid[_W_END] - old[_W_END] or not (
                    phase == phase1 == phase2):
                continue
            shift = None
            for x, y, z in zip(now, mid, old, strict=True):
                if x == y == z:
                    continue                 # stale: no longer read, or not yet set
                d = x - y
                if d != y - z or d <= 0 or (shift is not None and d != shift):
                    break
                shift = d
            else:
                if shift is None:
                    continue
                times = limit // period
                for name, x, y in zip(_TIMES, now, mid, strict=True):
                    if x != y:
                        setattr(self, name, x + times * shift)
                return times * period
        return 0

    def run(self) -> float:
        lay, chunk, C, out = self.lay, self.chunk, self.C, self.out_bytes
        per_chunk = self.period((chunk * lay.lda, chunk * lay.ldcin, chunk * lay.ldc))
        per_panel = self.period((C, 4 * C, C * out))
        panels: list = []
        j = 0
        while j < self.n_tiles:
            chunks: list = []
            i = 0
            while i < self.m_tiles:
                self.step_chunk(j, i)
                chunks.append(self.state())
                i += 1
                # jump within the panel, but leave its last chunk (fewer rows) to the loop
                i += self.jump(chunks[-_HISTORY:], self.m_tiles - 1 - i, per_chunk)
            panels.append(self.state())
            j += 1
            j += self.jump(panels[-_HISTORY:], self.n_tiles - 1 - j, per_panel)
        return self.w_end + _END + _CONTROL + self.setup


def estimate(config: AcceleratorConfig, m: int, k: int, n: int, *, accumulate: bool = False,
             requant: bool = False, layout: Layout | None = None) -> Estimate:
    """Predict cycles and traffic for ``C[m×n] (+)= A[m×k] · B[k×n]`` (int8 in, int32 or int8 out).

    Matrices are row-major in memory; each matrix row is read with its own bursts, so a row
    shorter than the bus still costs a whole beat. ``cycles`` is what the CYCLES counter reads
    at done (:class:`_Timeline`): exact to the row's alignment with a ``layout``, the mean over
    placements without one. The traffic and compute fields count the beats and cycles of rows
    aligned to the bus.
    """
    for name, value in (("m", m), ("k", k), ("n", n)):
        if value < 1:
            raise ValueError(f"{name} = {value} is out of range (allowed: 1 or more)")
    if requant and not config.requant_unit:
        raise ValueError("requant needs hardware generated with requant_unit = true")
    if config.engine == "compact":
        return _compact_estimate(config, m, k, n, accumulate)
    R, C = config.rows, config.cols
    bus = config.axi_bytes
    in_bytes = ceil(config.in_width / 8)
    acc_bytes = ceil(config.acc_width / 8)
    out_bytes = 1 if requant else acc_bytes
    grid = tile_grid(config, m, k, n)
    step = Geometry.of(config).k_step
    steps = [min(step, k - k0) for k0 in range(0, k, step)]
    nt, mt = grid.n_tiles, grid.m_tiles

    def per_panel(f) -> int:
        """Σ over the panels of f(columns): all C wide but the last."""
        return (nt - 1) * f(C) + f(n - (nt - 1) * C)

    # Traffic in bus beats with every row aligned (the ideal), and the core's streaming cycles.
    # Every panel reads all of A (one K step at a time) and writes its columns of C.
    reads = nt * m * sum(_beats(k_len * in_bytes, bus) for k_len in steps)
    if grid.b_resident:      # a B panel once per panel; else a K step of it for every block
        reads += k * per_panel(lambda c: _beats(c * in_bytes, bus))
    else:
        reads += mt * k * per_panel(lambda c: _beats(c * in_bytes, bus))
    if accumulate:
        reads += m * per_panel(lambda c: _beats(c * acc_bytes, bus))
    writes = m * per_panel(lambda c: _beats(c * out_bytes, bus))
    if config.dataflow == "os":
        compute = nt * mt * max(k, R)      # a tile shorter than R waits for the output chain
    else:
        last_rows = m - (mt - 1) * grid.m_chunk
        compute = (nt * sum(ceil(k_len / R) for k_len in steps)
                   * ((mt - 1) * max(grid.m_chunk, R) + max(last_rows, R)))
    blocks = nt * mt * len(steps)
    cycles = round(_Timeline(config, m, k, n, accumulate, requant, layout).run())
    macs = m * k * n
    bound = "compute" if compute >= max(reads, writes) else "memory"
    return Estimate(
        config=config.to_dict(), m=m, k=k, n=n, macs=macs, cycles=cycles,
        compute_cycles=compute, memory_read_cycles=reads, memory_write_cycles=writes,
        fill_drain_cycles=core_cycles(config, [1]) - 1,
        utilization=macs / (cycles * config.pes), bound=bound, tiles=grid.tiles,
        read_bytes=reads * bus, write_bytes=writes * bus,
        scratchpad_reads=compute * 2, scratchpad_writes=reads, blocks=blocks,
    )


#: The compact engine's cycles per element of C it writes, with the bench's AXI memory: ELEMENT,
#: the AW and W handshake, the B response a cycle later; with ``accumulate`` three more for the
#: C_in read (its address, then its data two cycles later). An element outside M or N: 1.
_COMPACT_WRITE = 4
_COMPACT_ACCUMULATE = 3


def _compact_estimate(config: AcceleratorConfig, m: int, k: int, n: int,
                      accumulate: bool) -> Estimate:
    """:func:`estimate` for ``engine = "compact"`` (hw/compact.py), exact to the cycle.

    One tile at a time: TILE, then K operand beats of R + C reads each (one read, or one
    skipped element, per cycle), InPlaceCore's latency to ``done`` and two cycles to the
    writer, then each of the R·C elements in turn. Before the tiles, IDLE, the checks (a cycle
    per row of each area: compact.CommandCheck) and CHECK; after them FINISH.
    """
    R, C = config.rows, config.cols
    grid = tile_grid(config, m, k, n)
    tiles = grid.m_tiles * grid.n_tiles
    # InPlaceCore: `done` rises R + C cycles after the last beat's handshake (the skew
    # R - 1 + C - 1, the bottom-right PE's flags register, `done`)
    per_tile = 3 + (R + C) + k * (R + C)
    written = m * n
    skipped = tiles * R * C - written
    per_element = _COMPACT_WRITE + (_COMPACT_ACCUMULATE if accumulate else 0)
    # DIMS (M, K, N read: 4) and PRECHECK, then per area BASE, STRIDE, STRIDE_CHECK and a
    # cycle per row (A: m rows, B: k, C: m, C_in: m)
    checks = 5 + (m + 3) + (k + 3) + (m + 3) + ((m + 3) if accumulate else 0)
    cycles = 2 + checks + tiles * per_tile + written * per_element + skipped
    # every operand byte and every C (and C_in) element is a bus beat of its own
    reads = grid.n_tiles * m * k + grid.m_tiles * k * n + (written if accumulate else 0)
    macs = m * k * n
    bus = config.axi_bytes
    return Estimate(
        config=config.to_dict(), m=m, k=k, n=n, macs=macs, cycles=cycles,
        compute_cycles=tiles * k, memory_read_cycles=reads, memory_write_cycles=written,
        fill_drain_cycles=core_cycles(config, [1]) - 1,
        utilization=macs / (cycles * config.pes), bound="memory", tiles=tiles,
        read_bytes=reads * bus, write_bytes=written * bus,
        scratchpad_reads=0, scratchpad_writes=0, blocks=tiles,
    )


def covered(config: AcceleratorConfig, m: int, k: int, n: int, *, accumulate: bool = False,
            requant: bool = False) -> bool:
    """Whether :func:`estimate` without a layout is within :data:`COVERED` of its estimate for
    every placement of the matrices: of the estimates with every row aligned to the bus and with
    every row at its costliest offset, which bound all others (the timeline only grows with a
    row's cost). Where it is not, the rows' alignment moves the cycles by more than that, and
    only an estimate with the :class:`Layout` is accurate."""
    if requant and not config.requant_unit:
        raise ValueError("requant needs hardware generated with requant_unit = true")
    runs = [_Timeline(config, m, k, n, accumulate, requant, None, placement).run()
            for placement in ("random", "aligned", "worst")]
    return all(abs(other - runs[0]) <= COVERED * runs[0] for other in runs[1:])
