"""The GEMM engine: scratchpads, the tiled sequencer and the result path around the core.

It runs one ``C[m×n] (+)= A[m×k] · B[k×n]`` per start pulse and talks to memory only through the
DMA's streams (``rd_cmd``/``rd_data``, ``wr_cmd``/``wr_data``). The walk and the scratchpads are
those of docs/performance-model.md ("Tiling") and :class:`~accelerator.model.geometry.Geometry`:

* B panels (k rows × C columns) outermost, double-buffered in the B scratchpad;
* chunks of A rows inside a panel: R rows (os) or as many as half the A scratchpad holds (ws),
  double-buffered in the A scratchpad;
* each chunk's results accumulate in half of the C scratchpad (preloaded with C_in when
  accumulating), and are then stored, requantized or not.

The stages are components (docs/architecture.md, "The engine's stages"), each walking the same
chunks with its own :class:`~accelerator.hw.engine.walk.StageWalk` and handing buffers on
through the flags of :class:`~accelerator.hw.engine.buffers.Buffers`:

    control ─run─► loader ─► A, B, C_in ─► feeder(s) ─► core ─► accumulator ─► C ─► store

A bad command sets ``error`` and ends at once. An AXI error response sets ``error`` and the GEMM
runs to its end (the bus still answers every beat), so the engine never hangs.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ...config import AcceleratorConfig
from ...model.geometry import Geometry
from ..core import SystolicCore
from ..dma import data_layout
from .accumulator import Accumulator
from .buffers import Buffers
from .command import (
    EngineError,
    check_command,
    command_layout,
    const_mul,
    error_priority,
    out_row_bytes,
)
from .control import Control, PerfCounters
from .feeder import OsFeeder, WeightFeeder, WsFeeder
from .loader import Loader
from .signatures import (
    ControlSignature,
    CountersSignature,
    EngineMembers,
    dma_command_layout,
)
from .store import Store

__all__ = ["EngineError", "GemmEngine", "check_command", "command_layout", "const_mul",
           "dma_command_layout", "error_priority", "out_row_bytes"]


class GemmEngine(EngineMembers, wiring.Component):
    """Runs one tiled GEMM per ``start`` (see the module docstring).

    Members
    -------
    control : Out(ControlSignature())
        ``start`` (ignored while ``busy``), ``busy``, ``done`` (one cycle when a command ends,
        with or without an error), ``error`` (the :class:`EngineError` of the last command).
    counters : Out(CountersSignature())
        Performance counters of the last command (cleared on start): cycles busy, cycles the
        array took an operand beat, cycles it had none to take for want of loaded data, cycles
        it waited for the store (no operand because its chunk's C half is not yet stored). A
        cycle counts in at most one of the two stall counters.
    cmd : In(command_layout())
        Addresses, dimensions, strides (bytes), mode and requantization parameters.
    rd_cmd, wr_cmd : Out(stream.Signature(dma_command_layout(config)))
        2-D transfers: ``rows`` rows of ``row_bytes`` bytes, ``stride`` bytes apart.
    rd_data : In(stream.Signature(dma.data_layout(config)))
    wr_data : Out(stream.Signature(dma.data_layout(config)))
        Row data, realigned so that byte 0 of a row is byte 0 of its first beat. On ``wr_data``
        only ``data`` is driven: the DMA writer frames each row by its command (⌈row_bytes / B⌉
        beats) and ignores the other fields.
    dma_busy, dma_error : In(1)
        The DMA still has writes in flight; an AXI response was an error.

    ``start``, ``busy``, ``done``, ``error`` and the counters' names are also attributes of the
    engine (:class:`~accelerator.hw.engine.signatures.EngineMembers`).
    """

    def __init__(self, config: AcceleratorConfig, *, dsp_pes: int | None = None,
                 paired_pes: int = 0):
        self._config = config
        self._dsp_pes = dsp_pes
        self._paired_pes = paired_pes
        self.geometry = Geometry.of(config)
        #: High in a cycle the core shows a result the accumulator does not take. Never: the
        #: accumulator's pass for a tile is queued before the tile's first operand, and it takes
        #: every result of it (asserted by ``accel formal``'s engine-gemm sets, checked every
        #: cycle of the engine's tests). So the core is built without back-pressure. Not a port.
        self.results_refused = Signal(name="results_refused")
        super().__init__({
            "control": Out(ControlSignature()), "counters": Out(CountersSignature()),
            "cmd": In(command_layout()),
            "rd_cmd": Out(stream.Signature(dma_command_layout(config))),
            "rd_data": In(stream.Signature(data_layout(config))),
            "wr_cmd": Out(stream.Signature(dma_command_layout(config))),
            "wr_data": Out(stream.Signature(data_layout(config))),
            "dma_busy": In(1), "dma_error": In(1),
        })

    def elaborate(self, platform) -> Module:
        cfg, geo = self._config, self.geometry
        os_flow = cfg.dataflow == "os"
        m = Module()
        m.submodules.core = core = SystolicCore(cfg, dsp_pes=self._dsp_pes,
                                                   paired_pes=self._paired_pes,
                                                   backpressure=False)
        m.submodules.control = ctrl = Control(cfg)
        m.submodules.loader = loader = Loader(cfg)
        m.submodules.feeder = feeder = (OsFeeder if os_flow else WsFeeder)(cfg)
        m.submodules.accumulator = acc = Accumulator(cfg)
        m.submodules.store = store = Store(cfg)
        m.submodules.buffers = buffers = Buffers(cfg.dataflow)
        m.submodules.counters = perf = PerfCounters()
        stages = [loader, feeder, acc, store, buffers]
        if not os_flow:
            m.submodules.weight_feeder = weights = WeightFeeder(cfg)
            stages.append(weights)
            wiring.connect(m, weights.weights, core.weights)
            wiring.connect(m, weights.flags, buffers.weights)

        # -- the command, the run and the outside ----------------------------------------------
        m.d.comb += [ctrl.cmd.eq(self.cmd), ctrl.dma_busy.eq(self.dma_busy),
                     ctrl.dma_error.eq(self.dma_error), ctrl.finished.eq(store.finished)]
        wiring.connect(m, wiring.flipped(self.control), ctrl.control)
        wiring.connect(m, ctrl.run, *(stage.run for stage in stages))
        wiring.connect(m, wiring.flipped(self.rd_cmd), loader.rd_cmd)
        wiring.connect(m, wiring.flipped(self.rd_data), loader.rd_data)
        wiring.connect(m, wiring.flipped(self.wr_cmd), store.wr_cmd)
        wiring.connect(m, wiring.flipped(self.wr_data), store.wr_data)

        # -- the stages, in the order data flows -----------------------------------------------
        for stage, port in ((loader, buffers.loader), (feeder, buffers.feeder),
                            (acc, buffers.accumulator), (store, buffers.store)):
            wiring.connect(m, stage.flags, port)
        m.d.comb += feeder.claims.eq(loader.claims)
        wiring.connect(m, feeder.operands, core.operands)
        wiring.connect(m, feeder.passes, acc.passes)
        wiring.connect(m, core.results, acc.results)
        wiring.connect(m, loader.cin, acc.cin)

        # -- the scratchpads -------------------------------------------------------------------
        word = data.ArrayLayout(8, cfg.axi_bytes)
        if os_flow:  # a bank per row of the array, read side by side
            for p in range(cfg.rows):
                m.submodules[f"spad_a{p}"] = a_mem = Memory(shape=word, depth=geo.a_words,
                                                            init=[])
                wiring.connect(m, loader.a_wr[p], a_mem.write_port())
                wiring.connect(m, feeder.a_rd[p], a_mem.read_port())
        else:        # one memory, a row's bytes at consecutive words: a read port per word
            m.submodules.spad_a = a_mem = Memory(shape=word, depth=geo.a_words, init=[])
            wiring.connect(m, loader.a_wr, a_mem.write_port())
            for port in feeder.a_rd:
                wiring.connect(m, port, a_mem.read_port())
        m.submodules.spad_b = b_mem = Memory(shape=data.ArrayLayout(8, cfg.cols),
                                             depth=cfg.spad_b_depth, init=[])
        wiring.connect(m, loader.b_wr, b_mem.write_port(granularity=1))  # per byte lane
        wiring.connect(m, (feeder if os_flow else weights).b_rd, b_mem.read_port())
        m.submodules.spad_c = c_mem = Memory(shape=data.ArrayLayout(signed(32), cfg.cols),
                                             depth=cfg.spad_c_depth, init=[])
        wiring.connect(m, acc.c_wr, c_mem.write_port(granularity=1))      # per int32 lane
        wiring.connect(m, acc.c_rd, c_mem.read_port())
        wiring.connect(m, store.c_rd, c_mem.read_port())

        # -- the counters ----------------------------------------------------------------------
        # The array waits for the store when it has no operand because its chunk's C half still
        # holds a chunk the store has not read out (the loader cannot claim it); it waits for
        # the loads when it has no operand otherwise. (Its results always leave at once.)
        operands, results = core.operands, core.results
        starved = Signal()
        waits_store = Signal()
        m.d.comb += [
            self.results_refused.eq(results.valid & ~results.ready),
            starved.eq(ctrl.run.running & ~feeder.done & ~operands.valid),
            waits_store.eq(starved & loader.c_wait & feeder.behind),
            perf.clear.eq(ctrl.started), perf.busy.eq(self.control.busy),
            perf.mac.eq(operands.valid & operands.ready),
            perf.stall_load.eq(starved & ~waits_store), perf.stall_store.eq(waits_store),
        ]
        wiring.connect(m, wiring.flipped(self.counters), perf.counters)
        return m
