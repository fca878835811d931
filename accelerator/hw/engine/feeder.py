"""The feeders: scratchpads to the core, and a pass descriptor per tile for the accumulator."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.memory import ReadPort
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ...config import AcceleratorConfig
from ...model.geometry import Geometry
from ..core import core_layouts
from .command import fifo_gate, log2
from .signatures import FeederFlags, RunSignature, WeightFlags, pass_layout
from .walk import StageWalk

__all__ = ["OsFeeder", "WeightFeeder", "WsFeeder", "a_read_signature", "b_read_signature"]

#: Operands a feeder reads ahead of the core (its queue's entries, each filled: `fifo_gate`).
OPERAND_QUEUE_DEPTH = 3


def a_read_signature(config: AcceleratorConfig) -> ReadPort.Signature:
    return ReadPort.Signature(addr_width=ceil_log2(Geometry.of(config).a_words),
                              shape=data.ArrayLayout(8, config.axi_bytes))


def b_read_signature(config: AcceleratorConfig) -> ReadPort.Signature:
    return ReadPort.Signature(addr_width=ceil_log2(config.spad_b_depth),
                              shape=data.ArrayLayout(8, config.cols))


class _Feeder(wiring.Component):
    """What the feeders share: the run, a walk, a queue of operand beats for the core.

    Members
    -------
    run : In(RunSignature())
    flags : Out(FeederFlags(dataflow)) (:class:`WeightFeeder`: Out(WeightFlags()))
    claims : In(32)
        The loader's count of claimed C halves: chunk t may start once t < claims.
    passes : Out(stream.Signature(pass_layout(config)))
        A descriptor per tile for the accumulator (into a queue: offered only when it has room).
    operands : Out(stream.Signature(...)) (:class:`WeightFeeder`: ``weights``)
        To the core.
    done : Out(1)
        The walk is over.
    behind : Out(1)
        The current chunk's C half is not claimed yet (``index >= claims``).
    """

    stream_name = "operands"

    def __init__(self, config: AcceleratorConfig, members: dict):
        self._config = config
        self._geo = Geometry.of(config)
        layout = core_layouts(config)[self.stream_name]
        super().__init__({"run": In(RunSignature()), self.stream_name:
                          Out(stream.Signature(layout)), "done": Out(1), **members})

    def _queue(self, m: Module, name: str):
        """The walk and a queue into the core's stream, filled from synchronous reads."""
        port = getattr(self, self.stream_name)
        m.submodules[name] = queue = fifo.SyncFIFO(width=len(port.payload.as_value()),
                                                   depth=OPERAND_QUEUE_DEPTH)
        m.d.comb += [port.valid.eq(queue.r_rdy), port.payload.as_value().eq(queue.r_data),
                     queue.r_en.eq(port.ready)]
        return queue

    def _walk(self, m: Module, name: str) -> StageWalk:
        # a feeder needs of K's offset only whether the step is the first
        m.submodules[name] = walk = StageWalk(self._config.cols, self._geo.k_step,
                                                 max_rows=self._geo.max_chunk(self._config),
                                                 offsets=False)
        wiring.connect(m, wiring.flipped(self.run), walk.run)
        m.d.comb += self.done.eq(walk.done)
        return walk


class OsFeeder(_Feeder):
    """Output-stationary: beat k of a step is byte k of each A bank and entry k of B.

    The core sees one tile per chunk: the K steps follow each other with ``last`` only on the
    final beat, so the accumulators run through all of K.
    """

    def __init__(self, config: AcceleratorConfig):
        super().__init__(config, {
            "flags": Out(FeederFlags("os")), "claims": In(32), "behind": Out(1),
            "passes": Out(stream.Signature(pass_layout(config))),
            "a_rd": In(a_read_signature(config)).array(config.rows),
            "b_rd": In(b_read_signature(config)),
        })

    def elaborate(self, platform) -> Module:
        cfg, geo = self._config, self._geo
        R, B = cfg.rows, cfg.axi_bytes
        lb = log2(B)
        m = Module()
        run, flags, passes, a_rd, b_rd = self.run, self.flags, self.passes, self.a_rd, self.b_rd
        fw = self._walk(m, "feed_walk")
        opq = self._queue(m, "opq")
        apar = Signal()              # A half of this step
        bpar = Signal()              # B half of this step
        k_idx = Signal(range(geo.k_step))   # beat within the step
        pending = Signal()
        meta_last = Signal()
        meta_sel = Signal(range(B))
        issue = Signal()
        m.d.comb += self.behind.eq(fw.index >= self.claims)
        go = (run.running & ~fw.done & flags.a_full.bit_select(apar, 1)
              & flags.b_full.bit_select(bpar, 1) & flags.c_ready.bit_select(fw.index[0], 1)
              & (fw.index < self.claims))
        first_beat = (k_idx == 0) & fw.first_step
        m.d.comb += issue.eq(go & fifo_gate(opq, pending) & (~first_beat | passes.ready))
        m.d.sync += pending.eq(issue)
        step_end = k_idx == fw.k_len_m1
        with m.If(issue):
            m.d.sync += [meta_last.eq(step_end & fw.k_last),
                         meta_sel.eq(k_idx[:lb] if lb else 0)]
        for p in range(R):
            m.d.comb += [a_rd[p].addr.eq(apar * geo.a_half + (k_idx >> lb)),
                         a_rd[p].en.eq(issue)]
        m.d.comb += [b_rd.addr.eq(bpar * geo.b_half + k_idx), b_rd.en.eq(issue)]
        payload = data.View(self.operands.payload.shape(), opq.w_data)
        for p in range(R):
            m.d.comb += payload.a[p].eq(a_rd[p].data.as_value().word_select(meta_sel, 8))
        # lane by lane: the scratchpad holds bytes, the operands in_width bits each (a whole-view
        # copy would move bits across lanes when in_width is not 8)
        m.d.comb += [payload.b[j].eq(b_rd.data[j]) for j in range(cfg.cols)]
        m.d.comb += [payload.last.eq(meta_last), opq.w_en.eq(pending)]
        with m.If(issue):
            with m.If(first_beat):
                m.d.comb += [passes.valid.eq(1), passes.payload.half.eq(fw.index[0]),
                             passes.payload.rows.eq(R), passes.payload.read_old.eq(
                                 run.cmd.accumulate), passes.payload.last.eq(1)]
            with m.If(step_end):
                m.d.sync += [k_idx.eq(0), apar.eq(~apar)]
                m.d.comb += [fw.step.eq(1), flags.a_release.bit_select(apar, 1).eq(1)]
                with m.If(run.split | (fw.last_in_panel & fw.k_last)):
                    m.d.comb += flags.b_release.bit_select(bpar, 1).eq(1)
                    m.d.sync += bpar.eq(~bpar)
            with m.Else():
                m.d.sync += k_idx.eq(k_idx + 1)
        with m.If(run.restart):
            m.d.sync += [apar.eq(0), bpar.eq(0), k_idx.eq(0)]
        return m


class WsFeeder(_Feeder):
    """Weight-stationary operands: row slices of A per beat.

    For each chunk and K step, tile t takes, for each row m of the chunk, the bytes
    A[m, tR … tR+R-1] (the weight rows tR … tR+R-1 of the step: :class:`WeightFeeder`).
    """

    def __init__(self, config: AcceleratorConfig):
        geo = Geometry.of(config)
        super().__init__(config, {
            "flags": Out(FeederFlags("ws")), "claims": In(32), "behind": Out(1),
            "passes": Out(stream.Signature(pass_layout(config))),
            "a_rd": In(a_read_signature(config)).array(geo.a_ports),
        })

    def elaborate(self, platform) -> Module:
        cfg, geo = self._config, self._geo
        R, B = cfg.rows, cfg.axi_bytes
        lb = log2(B)
        m = Module()
        run, flags, passes, a_rd = self.run, self.flags, self.passes, self.a_rd
        fw = self._walk(m, "feed_walk")
        opq = self._queue(m, "opq")
        apar = Signal()
        bpar = Signal()
        kr = Signal(range(geo.k_step))      # first k of the tile within the step
        m_idx = Signal(range(max(2, geo.max_chunk(cfg))))  # 1 bit even for one row
        row_word = Signal(16)        # m_idx·words
        pending = Signal()
        meta_last = Signal()
        meta_off = Signal(range(B))
        issue = Signal()
        m.d.comb += self.behind.eq(fw.index >= self.claims)
        go = (run.running & ~fw.done & flags.a_full.bit_select(apar, 1)
              & flags.b_full.bit_select(bpar, 1) & ~flags.b_used.bit_select(bpar, 1)
              & flags.c_ready.bit_select(fw.index[0], 1) & (fw.index < self.claims))
        m.d.comb += issue.eq(go & fifo_gate(opq, pending) & ((m_idx != 0) | passes.ready))
        m.d.sync += pending.eq(issue)
        last_row = m_idx == fw.rows - 1
        last_tile = kr + R >= fw.k_len
        with m.If(issue):
            m.d.sync += [meta_last.eq(last_row), meta_off.eq(kr[:lb] if lb else 0)]
        first_word = Signal(range(geo.a_words))
        m.d.comb += first_word.eq(apar * geo.a_half + row_word + (kr >> lb))
        for i, port in enumerate(a_rd):
            m.d.comb += [port.addr.eq(first_word + i), port.en.eq(issue)]
        window = Cat(*(port.data.as_value() for port in a_rd))
        shifted = Signal(len(window))
        m.d.comb += shifted.eq(window >> (meta_off * 8))
        payload = data.View(self.operands.payload.shape(), opq.w_data)
        # lane by lane: bytes in the scratchpad, in_width bits in the operands (see OsFeeder)
        m.d.comb += [payload.a[r].eq(shifted.word_select(r, 8)) for r in range(R)]
        m.d.comb += [payload.last.eq(meta_last), opq.w_en.eq(pending)]
        with m.If(issue):
            with m.If(m_idx == 0):
                m.d.comb += [passes.valid.eq(1), passes.payload.half.eq(fw.index[0]),
                             passes.payload.rows.eq(fw.rows),
                             passes.payload.read_old.eq(run.cmd.accumulate | (kr != 0)
                                                        | ~fw.first_step),
                             passes.payload.last.eq(last_tile & fw.k_last)]
            with m.If(last_row):
                m.d.sync += [m_idx.eq(0), row_word.eq(0)]
                with m.If(last_tile):
                    m.d.sync += [kr.eq(0), apar.eq(~apar)]
                    m.d.comb += [fw.step.eq(1), flags.a_release.bit_select(apar, 1).eq(1)]
                    with m.If(run.split | (fw.last_in_panel & fw.k_last)):
                        m.d.sync += bpar.eq(~bpar)
                        m.d.comb += flags.b_use.bit_select(bpar, 1).eq(1)
                with m.Else():
                    m.d.sync += kr.eq(kr + R)
            with m.Else():
                m.d.sync += [m_idx.eq(m_idx + 1), row_word.eq(row_word + run.words)]
        with m.If(run.restart):
            m.d.sync += [apar.eq(0), bpar.eq(0), kr.eq(0), m_idx.eq(0), row_word.eq(0)]
        return m


class WeightFeeder(_Feeder):
    """Weight-stationary weights: R rows of B per tile; rows past the K step read as zero."""

    stream_name = "weights"

    def __init__(self, config: AcceleratorConfig):
        super().__init__(config, {"flags": Out(WeightFlags()),
                                  "b_rd": In(b_read_signature(config))})

    def elaborate(self, platform) -> Module:
        cfg, geo = self._config, self._geo
        R, C = cfg.rows, cfg.cols
        m = Module()
        run, flags, b_rd = self.run, self.flags, self.b_rd
        ww = self._walk(m, "weight_walk")
        wq = self._queue(m, "wq")
        w_bpar = Signal()
        w_kr = Signal(range(geo.k_step))    # first row of the tile within the step
        w_r = Signal(range(R + 1))
        w_k = Signal(range(geo.k_step + R))  # w_kr + w_r
        w_pending = Signal()
        w_zero = Signal()
        w_issue = Signal()
        w_go = (run.running & ~ww.done & flags.b_full.bit_select(w_bpar, 1)
                & ~flags.b_used.bit_select(w_bpar, 1))
        m.d.comb += w_issue.eq(w_go & fifo_gate(wq, w_pending))
        m.d.sync += w_pending.eq(w_issue)
        with m.If(w_issue):
            m.d.sync += w_zero.eq(w_k >= ww.k_len)   # rows past the step: zero weights pad it
        m.d.comb += [b_rd.addr.eq(w_bpar * geo.b_half + w_k), b_rd.en.eq(w_issue)]
        w_payload = data.View(self.weights.payload.shape(), wq.w_data)
        for lane in range(C):
            m.d.comb += w_payload.w[lane].eq(Mux(w_zero, 0, b_rd.data[lane]))
        m.d.comb += wq.w_en.eq(w_pending)
        with m.If(w_issue):
            with m.If(w_r == R - 1):
                m.d.sync += w_r.eq(0)
                with m.If(w_kr + R >= ww.k_len):
                    m.d.sync += [w_kr.eq(0), w_k.eq(0)]
                    m.d.comb += ww.step.eq(1)
                    with m.If(run.split | (ww.last_in_panel & ww.k_last)):
                        m.d.comb += flags.b_use.bit_select(w_bpar, 1).eq(1)
                        m.d.sync += w_bpar.eq(~w_bpar)
                with m.Else():
                    m.d.sync += [w_kr.eq(w_kr + R), w_k.eq(w_k + 1)]
            with m.Else():
                m.d.sync += [w_r.eq(w_r + 1), w_k.eq(w_k + 1)]
        with m.If(run.restart):
            m.d.sync += [w_bpar.eq(0), w_kr.eq(0), w_r.eq(0), w_k.eq(0)]
        return m
