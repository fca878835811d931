"""CTRL.reset ends a running command within :func:`~accelerator.hw.top.abort_bound`.

The whole accelerator (:class:`~accelerator.hw.top.Accelerator`, pipelined engine, a small
configuration) runs from reset with a command already in its registers (as software would
have written them): the command registers' initial values are left free and ``Assume`` d to
:data:`COMMAND_VALUES`, or to any small legal GEMM (``command=None``). Software writes
``CTRL.start`` in the first cycle and ``CTRL.reset`` in any later cycle up to ``window`` (the
abort may find the command at any point: loading, computing, storing, or already done). The
memory is any AXI4 slave that answers a request's first beat (R, B) at most ``latency`` cycles
after it can and holds every other handshake at most ``wait`` cycles, with any response codes
(and zeros for data: the control does not look at it).

Asserted, besides the AXI4 master's rules throughout (VALID and payload held until READY, legal
INCR bursts within 4 KiB, WLAST on a burst's last beat only, at most 8 bursts outstanding each
way):

* no read or write burst is requested after the abort, and every W beat presented after it has
  WSTRB 0 (no byte written), from the second cycle after the pulse (the DMA sees the pulse
  through a register: what it takes in the pulse's cycle is presented in the next);
* ``STATUS.busy`` is low within ``drain`` cycles of the abort pulse, and stays low: a bound
  tighter than ``abort_bound(config, latency, wait)`` (40 cycles here), which a GEMM this small
  leaves far from reached (a handful of single- and two-beat bursts in flight at most), so
  that the check of the bound fits the depth after an abort late in the command;
* then every burst requested is complete (its last R beat, its B taken), nothing is offered on
  the bus, and STATUS and the counters read as docs/registers.md says: ``done`` is never set
  after the abort (it cleared ``done`` and ``error``, which only ``set_done`` sets: the
  ``axil`` set), and CYCLES, MAC_CYCLES, STALL_LOAD and STALL_STORE read 0.
"""

from __future__ import annotations

from amaranth.hdl import Assert, Assume, Cat, Cover, Module, Mux, Signal

from ...config import AcceleratorConfig
from ...hw.top import Accelerator, abort_bound
from ...model.regmap import COMMAND, COMMAND_REGISTERS, field, offset, register
from .dma import OUTSTANDING, _burst_checks, _held, _Lengths
from .harness import FormalHarness, past

__all__ = ["ABORT_CONFIG", "abort_depth", "abort_harness"]

#: The engine sets' configuration: a 2×2 array, small scratchpads, a 32-bit bus.
ABORT_CONFIG = AcceleratorConfig(rows=2, cols=2, requant_unit=False, axi_data_width=32,
                                 spad_a_depth=64, spad_b_depth=16, spad_c_depth=16)
#: The memory's latency and back-pressure the set assumes (``abort_bound``'s L and W): it
#: answers as soon as it can, which leaves the solver the abort's cycle and the response codes.
LATENCY, WAIT = 0, 0
#: The last cycle the abort pulse may come in: past the command's last W beat (the command
#: below, started in cycle 0, requests its reads in cycles 20 and 23 and writes C in cycles 39
#: to 41).
WINDOW = 42
#: Cycles from the abort pulse within which STATUS.busy must be low (at most abort_bound).
DRAIN = 20
#: The command (fields of the register map's COMMAND; the others 0): a 1×1×1 GEMM, A and B at
#: odd addresses, strides past the rows. Larger ones (2×2×2 with C_in, A's rows split at a 4 KiB
#: boundary; or any the solver chooses, ``command=None``: M, K, N of 1 or 2, addresses below
#: 64 KiB) did not reach their depth in the time at hand: docs/verification.md.
COMMAND_VALUES = {"m": 1, "k": 1, "n": 1, "a_addr": 0x0FFF, "lda": 0x100, "b_addr": 0x2001,
                  "ldb": 0x40, "c_addr": 0x3000, "ldc": 0x10}


def abort_depth(*, window: int = WINDOW, drain: int = DRAIN) -> int:
    """Cycles to check: an abort in the last cycle of the window, its drain, one more."""
    return window + drain + 2


def _at_most(m: Module, cond, cycles: int, name: str, what: str) -> None:
    """``cond`` holds at most ``cycles`` cycles in a row (assumed of the memory).

    The set's assumptions are checked at the clock edges, where a replay's inputs are settled
    (a combinational one would see the registers' new values with the last cycle's inputs)."""
    if cycles == 0:
        m.d.sync += Assume(~cond, what)
        return
    run = Signal(range(cycles + 1), name=f"f_{name}_run")
    m.d.sync += [run.eq(Mux(cond, run + 1, 0)), Assume(~cond | (run < cycles), what)]


class _BusyEarly(Accelerator):
    """A deliberately broken accelerator: STATUS.busy forgets the DMA's drain (its last
    statement overrides the accelerator's own), so it falls while bursts are in flight."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        regs = m._named_submodules["regs"][0]
        engine = m._named_submodules["engine"][0]
        m.d.comb += regs.busy.eq(engine.control.busy | regs.abort)
        return m


def abort_harness(config: AcceleratorConfig = ABORT_CONFIG, *, latency: int = LATENCY,
                  wait: int = WAIT, window: int = WINDOW, drain: int = DRAIN,
                  command: dict[str, int] | None = COMMAND_VALUES,
                  broken: bool = False) -> FormalHarness:
    bound = abort_bound(config, latency=latency, wait=wait)
    if drain > bound:
        raise ValueError(f"drain = {drain} is past abort_bound = {bound}")
    b = config.axi_bytes

    def properties(m: Module, dut: Accelerator, h: FormalHarness) -> None:
        pv = h.past_valid
        regs = h.submodule("regs")
        # -- the command: already in the registers, a small legal GEMM -----------------------
        h.free_initial("regs", [register(name).port for name in COMMAND_REGISTERS])
        cmd = {f.name: f.source.extract(getattr(regs, register(f.register).port))
               for f in COMMAND}
        # (assumed at the clock edges, as the software's writes below: a replay sets the
        # registers and inputs before the first edge)
        if command is not None:
            m.d.sync += Assume(Cat(*(cmd[f.name] == command.get(f.name, 0) for f in COMMAND))
                               .all(), "the command")
        else:
            m.d.sync += [
                Assume((cmd["m"] >= 1) & (cmd["m"] <= 2) & (cmd["k"] >= 1) & (cmd["k"] <= 2)
                       & (cmd["n"] >= 1) & (cmd["n"] <= 2), "M, K, N of 1 or 2"),
                Assume(~cmd["requant"] & ~cmd["relu"], "int32 C (no requantizer)"),
                Assume((cmd["lda"] >= cmd["k"]) & (cmd["ldb"] >= cmd["n"])
                       & (cmd["ldc"] >= 4 * cmd["n"]) & (cmd["ldcin"] >= 4 * cmd["n"]),
                       "strides of a row at least"),
                Assume((cmd["c_addr"][:2] == 0) & (cmd["ldc"][:2] == 0)
                       & (cmd["cin_addr"][:2] == 0) & (cmd["ldcin"][:2] == 0),
                       "C and C_in aligned"),
            ]
            for name in ("a_addr", "b_addr", "c_addr", "cin_addr", "lda", "ldb", "ldc",
                         "ldcin"):
                m.d.sync += Assume(cmd[name] < (1 << 16), "below 64 KiB")
        # -- software: CTRL.start in the first cycle, CTRL.reset by the window's end ----------
        lite = dut.s_axil
        writes = Signal(2, name="f_writes")
        cycle = Signal(range(window + 2), name="f_cycle")
        with m.If(cycle <= window):
            m.d.sync += cycle.eq(cycle + 1)
        aw_hs = lite.awvalid & lite.awready
        with m.If(aw_hs):
            m.d.sync += writes.eq(writes + 1)
        start, reset = field("CTRL", "start"), field("CTRL", "reset")
        m.d.sync += [
            Assume(lite.awvalid == lite.wvalid, "AW and W together"),
            Assume(lite.awaddr == offset("CTRL"), "writes to CTRL"),
            Assume(lite.wstrb == 0b1111, "whole words"),
            Assume(lite.wdata == Mux(writes == 0, 1 << start.lsb, 1 << reset.lsb),
                   "CTRL.start, then CTRL.reset"),
            Assume(lite.awvalid == ~pv | ((writes == 1) & h.extra["abort"]),
                   "start in the first cycle; the abort when the solver likes"),
            Assume(lite.bready & ~lite.arvalid, "no reads; responses taken"),
            Assume((cycle < window - 2) | (writes == 2) | aw_hs, "the abort within the window"),
        ]
        # -- the memory: an AXI4 slave with bounded latency and back-pressure ----------------
        axi = dut.m_axi
        ar_hs, r_hs = axi.arvalid & axi.arready, axi.rvalid & axi.rready
        aw_hs, w_hs, b_hs = (axi.awvalid & axi.awready, axi.wvalid & axi.wready,
                             axi.bvalid & axi.bready)
        _held(m, h, axi.rvalid, axi.rready, [axi.rdata, axi.rresp, axi.rlast], "R", assume=True)
        _held(m, h, axi.bvalid, axi.bready, [axi.bresp], "B", assume=True)
        reads = _Lengths(m, "f_ar_len", OUTSTANDING + 1)
        r_beat = Signal(8, name="f_r_beat")
        m.d.comb += [reads.push.eq(ar_hs), reads.data.eq(axi.arlen),
                     reads.pop.eq(r_hs & axi.rlast)]
        with m.If(r_hs):
            m.d.sync += r_beat.eq(Mux(axi.rlast, 0, r_beat + 1))
        presented = axi.awvalid & (~past(m, axi.awvalid, "awvalid") | past(m, aw_hs, "aw_hs"))
        writes_q = _Lengths(m, "f_aw_len", OUTSTANDING + 2)
        w_beat = Signal(8, name="f_w_beat")
        m.d.comb += [writes_q.push.eq(presented), writes_q.data.eq(axi.awlen),
                     writes_q.pop.eq(w_hs & axi.wlast)]
        with m.If(w_hs):
            m.d.sync += w_beat.eq(Mux(axi.wlast, 0, w_beat + 1))
        aw_out = Signal(5, name="f_aw_out")
        w_done = Signal(5, name="f_w_done")
        m.d.sync += [aw_out.eq(aw_out + aw_hs - b_hs),
                     w_done.eq(w_done + (w_hs & axi.wlast) - b_hs)]
        b_can = (aw_out != 0) & (w_done != 0)
        m.d.sync += [
            Assume(~axi.rvalid | (reads.count != 0), "R only for a burst asked for"),
            Assume(~axi.rvalid | (axi.rlast == (r_beat == reads.first)),
                   "RLAST on each burst's last beat"),
            Assume(~axi.bvalid | b_can, "B only for a burst whose AW and last W were taken"),
            Assume((axi.rid == 0) & (axi.bid == 0), "ID 0"),
            # Data independence: what the engine does with the bytes it reads (the array's
            # products) decides no request, stall or end, so the memory returns zeros; the
            # responses (OKAY, SLVERR, …) stay free, since an error does change the control.
            Assume(axi.rdata == 0, "read data 0"),
        ]
        _at_most(m, (reads.count != 0) & ~axi.rvalid & (r_beat == 0), latency, "r_first",
                 f"a burst's first R beat at most {latency} cycles late")
        _at_most(m, (reads.count != 0) & ~axi.rvalid & (r_beat != 0), wait, "r_next",
                 f"its next beats at most {wait} cycles apart")
        _at_most(m, b_can & ~axi.bvalid, latency, "b", f"B at most {latency} cycles late")
        for name, valid, ready in (("ar", axi.arvalid, axi.arready),
                                   ("aw", axi.awvalid, axi.awready),
                                   ("w", axi.wvalid, axi.wready)):
            _at_most(m, valid & ~ready, wait, f"{name}_wait",
                     f"{name.upper()} ready at most {wait} cycles late")
        # -- the master follows AXI4 throughout --------------------------------------------
        _held(m, h, axi.arvalid, axi.arready, [axi.araddr, axi.arlen, axi.arsize, axi.arburst],
              "AR", assume=False)
        _held(m, h, axi.awvalid, axi.awready, [axi.awaddr, axi.awlen, axi.awsize, axi.awburst],
              "AW", assume=False)
        _held(m, h, axi.wvalid, axi.wready, [axi.wdata, axi.wstrb, axi.wlast], "W",
              assume=False)
        _burst_checks(m, axi.arvalid, axi.araddr, axi.arlen, axi.arsize, axi.arburst, b, "AR")
        _burst_checks(m, axi.awvalid, axi.awaddr, axi.awlen, axi.awsize, axi.awburst, b, "AW")
        with m.If(axi.wvalid):
            m.d.sync += [
                Assert(writes_q.count != 0, "no W beat before its burst's AW"),
                Assert(axi.wlast == (w_beat == writes_q.first),
                       "WLAST on a burst's last beat and no other"),
            ]
        m.d.sync += [
            Assert(reads.count <= OUTSTANDING, f"at most {OUTSTANDING} read bursts outstanding"),
            Assert(aw_out <= OUTSTANDING, f"at most {OUTSTANDING} write bursts outstanding"),
        ]
        # -- the abort ---------------------------------------------------------------------------
        aborted = Signal(name="f_aborted")      # from the cycle after the abort pulse
        quiet = Signal(name="f_quiet")          # from the cycle after that: the DMA's
        elapsed = Signal(range(drain + 2), name="f_elapsed")
        idle = Signal(name="f_idle")            # busy has been low since the abort
        with m.If(regs.abort):
            m.d.sync += aborted.eq(1)
        with m.If(aborted):
            m.d.sync += quiet.eq(1)
        with m.If(aborted & (elapsed <= drain)):
            m.d.sync += elapsed.eq(elapsed + 1)
        new_ar = axi.arvalid & (~past(m, axi.arvalid, "arvalid") | past(m, ar_hs, "ar_hs"))
        new_w = axi.wvalid & (~past(m, axi.wvalid, "wvalid") | past(m, w_hs, "w_hs"))
        busy = regs.busy
        # The DMA sees the pulse through a register of its own: a burst or a W beat it takes
        # in the pulse's cycle is presented in the next, the last that may be.
        with m.If(quiet):
            m.d.sync += [
                Assert(~new_ar & ~presented, "no burst requested after the abort"),
                Assert(~new_w | (axi.wstrb == 0), "W beats after the abort without strobes"),
            ]
        with m.If(aborted):
            m.d.sync += [
                Assert(~regs.set_done, "the aborted command never sets STATUS.done"),
                # drain <= abort_bound (checked above): within the drain is within the bound
                Assert(~busy | (elapsed < drain - 1),
                       f"STATUS.busy low within {drain} cycles of the abort pulse"),
            ]
            with m.If(~busy):
                m.d.sync += idle.eq(1)
            with m.If(idle | ~busy):
                m.d.sync += [
                    Assert(~busy, "STATUS.busy stays low"),
                    Assert((reads.count == 0) & (aw_out == 0) & (writes_q.count == 0)
                           & ~axi.arvalid & ~axi.awvalid & ~axi.wvalid,
                           "every burst requested is complete, nothing offered"),
                    Assert((regs.cycles == 0) & (regs.mac_cycles == 0) & (regs.stall_load == 0)
                           & (regs.stall_store == 0),
                           "CYCLES, MAC_CYCLES, STALL_LOAD, STALL_STORE read 0"),
                ]
        m.d.comb += [
            Cover(aborted & (elapsed == 1) & (reads.count != 0) & (aw_out == 0),
                  "an abort with reads in flight"),
            Cover(aborted & (elapsed == 1) & (writes_q.count != 0),
                  "an abort with writes in flight"),
        ]

    dut = (_BusyEarly if broken else Accelerator)(config)
    return FormalHarness(dut, properties, extra_inputs={"abort": 1})
