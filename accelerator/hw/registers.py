"""The control and status registers' gateware: :class:`RegisterBlock`, built from the register
map of :mod:`accelerator.model.regmap` (the one definition of the map, in plain Python, so that
the driver needs no gateware). The map's names are re-exported here.
"""

from __future__ import annotations

from amaranth.hdl import Array, Const, Module, Mux, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..config import AcceleratorConfig
from ..model.regmap import (
    ACCESS,
    ADDR_WIDTH,
    COUNTERS,
    ERROR_WIDTH,
    GROUPS,
    ID_BLOCK,
    INDEX_WIDTH,
    MAGIC,
    MAP_SIZE,
    MAX_DIM,
    REGISTERS,
    ErrorCode,
    Field,
    Register,
    config_from_id,
    element_bytes,
    field,
    id_values,
    memory_backed,
    offset,
    register,
    version_tuple,
)
from .axil import AXI4LiteSignature, AxiResp

__all__ = [
    "ACCESS",
    "ADDR_WIDTH",
    "COUNTERS",
    "GROUPS",
    "ID_BLOCK",
    "INDEX_WIDTH",
    "MAGIC",
    "MAP_SIZE",
    "MAX_DIM",
    "REGISTERS",
    "ErrorCode",
    "Field",
    "Register",
    "RegisterBlock",
    "config_from_id",
    "element_bytes",
    "field",
    "id_values",
    "memory_backed",
    "offset",
    "register",
    "version_tuple",
]


def _any(values: list[Value]) -> Value:
    result: Value = Const(0)
    for v in values:
        result = result | v
    return result


def _below(value: Value, limit: int) -> Value:
    """``value < limit`` for a constant ``limit``, as plain logic rather than a comparator (which
    yosys maps to a carry chain): at the highest bit where the two differ, ``limit`` has a 1."""
    if limit >= 1 << len(value):
        return Const(1)
    result: Value = Const(0)
    for bit in range(len(value)):  # from the LSB up: a higher bit that differs decides
        result = (~value[bit] | result) if limit >> bit & 1 else (~value[bit] & result)
    return result


def _read_mux(index: Value, values: list[Value | int]) -> Value:
    """``values[index]`` (32 bits wide), or 0 for an index past the end of ``values``.

    Built as an OR of one term per group of four neighbouring registers: a 4:1 mux on
    ``index[:2]``, ANDed with "``index[2:]`` is this group". A ``Switch`` or a mux tree over all
    the index bits costs more LUT4s per bit, as does a one-hot AND-OR per register (yosys'
    ``synth_ice40``, measured: about 640 LUT4 for the whole block with groups of four, against
    about 680 with pairs or a full mux tree, 690 with groups of eight and 640 to 720, depending
    on the netlist's order, with a term per register). A group whose registers all read as 0
    costs nothing, and neither do bits that are constant in every register.
    """
    values = values + [0] * (-len(values) % 4)
    result: Value = Const(0, 32)
    for group in range(len(values) // 4):
        a, b, c, d = values[4 * group:4 * group + 4]
        if all(isinstance(v, int) and v == 0 for v in (a, b, c, d)):
            continue  # all four read as 0: no term
        selected = Mux(index[1], Mux(index[0], d, c), Mux(index[0], b, a))
        result = result | (selected & (index[2:] == group).replicate(32))
    return result


def _runs(bits: list[int]) -> list[tuple[int, int]]:
    """The runs of consecutive numbers in sorted ``bits``, as ``(first, last + 1)``."""
    runs: list[tuple[int, int]] = []
    for b in bits:
        if runs and runs[-1][1] == b:
            runs[-1] = (runs[-1][0], b + 1)
        else:
            runs.append((b, b + 1))
    return runs


class RegisterBlock(wiring.Component):
    """The registers of :data:`REGISTERS` behind an AXI4-Lite slave.

    Members
    -------
    s_axil : Out(AXI4LiteSignature(addr_width=addr_width, data_width=32))
        The AXI4-Lite slave (the signature is written from the slave's side). One write and one
        read in flight; AW and W are accepted independently, in either order; B and R are held
        until ``bready`` / ``rready``. OKAY for every mapped address (writes to read-only
        registers are ignored), SLVERR for an unmapped one (a write to it has no effect, a read
        returns 0). Address bits [1:0] are ignored.
    <rw register> : Out(32)
        One per ``rw`` register, named in lower case: ``mode``, ``a_addr``, ``b_addr``,
        ``c_addr``, ``cin_addr``, ``m``, ``k``, ``n``, ``lda``, ``ldb``, ``ldc``, ``ldcin``,
        ``rq_mult``, ``rq_shift``, ``rq_zp``: the value software wrote, with bits outside the
        register's fields 0 (slice fields with ``field("MODE", "relu").extract(regs.mode)``).
        With ``engine = "compact"`` only ``mode``: the others are in a block RAM
        (:func:`memory_backed`), which the engine reads through ``cmd_read``, ``cmd_index``
        (a word index, :data:`INDEX_WIDTH` bits) and ``cmd_data`` (a cycle later), and bus
        reads answer a cycle later (R two cycles after AR).
    <counter> : In(32)
        One per performance counter: ``cycles``, ``mac_cycles``, ``dma_rd_bytes``,
        ``dma_wr_bytes``, ``stall_load``, ``stall_store``. Read through as they are; the datapath
        owns the counters (and resets them on ``start``).
    busy : In(1)
        Level: a command is running (``STATUS.busy``).
    set_done : In(1)
        One-cycle pulse when a command finishes, successfully or not: sets ``STATUS.done`` and
        latches ``error_code`` into ``STATUS.error``. It wins over a software clear in the same
        cycle.
    error_code : In(ERROR_WIDTH)
        The :class:`ErrorCode` of the finishing command, sampled when ``set_done`` is high.
    start : Out(1)
        One-cycle pulse after software writes 1 to ``CTRL.start`` while ``busy`` is low; the same
        edge clears ``STATUS.done`` and ``STATUS.error``. A start written while ``busy`` is high
        is dropped.
    abort : Out(1)
        One-cycle pulse after software writes 1 to ``CTRL.reset``; also clears ``STATUS.done``
        and ``STATUS.error``. The datapath should return to idle without ``set_done``.
    irq : Out(1)
        Level interrupt: ``STATUS.done & MODE.irq_enable``.

    The ID block (``ID``, ``VERSION``, ``CONFIG0``, ``CONFIG1``, ``DIGEST``) is constant,
    computed by :func:`id_values` from ``config``.
    """

    def __init__(self, config: AcceleratorConfig, *, addr_width: int = ADDR_WIDTH):
        if (MAP_SIZE - 1).bit_length() > addr_width:
            raise ValueError(f"addr_width = {addr_width} is too small for the register map "
                             f"({MAP_SIZE} bytes)")
        self._config = config
        self._addr_width = addr_width
        members = {"s_axil": Out(AXI4LiteSignature(addr_width=addr_width, data_width=32))}
        for reg in REGISTERS:
            if reg.group == "id" or reg.name in ("CTRL", "STATUS"):
                continue
            if reg.access == "rw":
                if reg.name in memory_backed(config):
                    continue
                members[reg.port] = Out(32, init=reg.reset)
            elif reg.access == "ro":
                members[reg.port] = In(32)
            else:  # pragma: no cover - a new access type needs a decision here
                raise AssertionError(f"register {reg.name}: no port for access {reg.access}")
        members.update({
            "busy": In(1),
            "set_done": In(1),
            "error_code": In(ERROR_WIDTH),
            "start": Out(1),
            "abort": Out(1),
            "irq": Out(1),
        })
        if memory_backed(config):
            members.update({"cmd_read": In(1), "cmd_index": In(INDEX_WIDTH),
                            "cmd_data": Out(32)})
        super().__init__(members)

    @property
    def config(self) -> AcceleratorConfig:
        return self._config

    @property
    def addr_width(self) -> int:
        return self._addr_width

    def elaborate(self, platform) -> Module:
        # Written for a small LUT4 count, since this block is in every build, the iCE40UP5K's
        # included:
        #
        # * An address is decoded from its word index (bits [2:7] for the current map) and one
        #   "the bits above the index are 0" test that all registers share, instead of a
        #   full-width compare per register.
        # * The read data is an OR of AND-masked terms (see _read_mux) rather than a Switch; a
        #   read of an address whose upper bits are not 0 clears rdata through the flip-flops'
        #   synchronous reset (free in SB_DFFESR) instead of gating every term.
        # * An rw register has flip-flops only for its fields' bits (the others read as 0),
        #   loaded straight from the latched write data, with one clock enable per byte: the
        #   register is selected and that byte's strobe is high.
        m = Module()
        bus = self.s_axil
        ids = id_values(self._config)

        f_start, f_reset = field("CTRL", "start"), field("CTRL", "reset")
        f_busy, f_done, f_error = field("STATUS", "busy"), field("STATUS", "done"), \
            field("STATUS", "error")

        done = Signal()
        error = Signal(ERROR_WIDTH)
        status = Signal(32)
        m.d.comb += [
            f_busy.extract(status).eq(self.busy),
            f_done.extract(status).eq(done),
            f_error.extract(status).eq(error),
            self.irq.eq(done & field("MODE", "irq_enable").extract(self.mode)),
        ]

        # Address bits [2:2 + index_width] are the word index; an address is mapped if the bits
        # above them are 0 and the index is below len(REGISTERS).
        index_width = INDEX_WIDTH

        def split(addr: Value) -> tuple[Value, Value]:
            """``(index, upper_zero)`` of byte address ``addr``."""
            return addr[2:2 + index_width], ~addr[2 + index_width:].any()

        # -- write channel: AW and W are latched independently, then applied together ----------
        aw_full = Signal()
        aw_index = Signal(index_width)  # of the write address, only its index and
        aw_mapped = Signal()            # whether it is mapped are needed
        w_full = Signal()
        w_data = Signal(32)
        w_strb = Signal(4)
        m.d.comb += [
            bus.awready.eq(~aw_full & ~bus.bvalid),
            bus.wready.eq(~w_full & ~bus.bvalid),
        ]
        with m.If(bus.awvalid & bus.awready):
            index, upper_zero = split(bus.awaddr)
            m.d.sync += [aw_full.eq(1), aw_index.eq(index),
                         aw_mapped.eq(upper_zero & _below(index, len(REGISTERS)))]
        with m.If(bus.wvalid & bus.wready):
            m.d.sync += [w_full.eq(1), w_data.eq(bus.wdata), w_strb.eq(bus.wstrb)]
        with m.If(bus.bvalid & bus.bready):
            m.d.sync += bus.bvalid.eq(0)

        do_write = Signal()
        m.d.comb += do_write.eq(aw_full & w_full)
        with m.If(do_write):
            m.d.sync += [aw_full.eq(0), w_full.eq(0), bus.bvalid.eq(1),
                         bus.bresp.eq(Mux(aw_mapped, AxiResp.OKAY, AxiResp.SLVERR))]

        def written(f: Field) -> Value:
            """One-bit field ``f`` as written: its data bit if its byte is strobed, else 0."""
            return w_data[f.lsb] & w_strb[f.lsb // 8]

        stored = memory_backed(self._config)
        mem_sels: list[Value] = []
        clear_done = Signal()
        for reg in REGISTERS:
            # aw_mapped is the "upper bits are 0" test (a matching index is below the end).
            sel = do_write & aw_mapped & (aw_index == reg.offset >> 2)
            if reg.name in stored:
                mem_sels.append(sel)
            elif reg.access == "rw":
                # Each byte with field bits loads from w_data when its strobe is high; an
                # unstrobed byte keeps its value. Bits outside the fields stay at their reset
                # value, 0, so they need no flip-flops.
                port = getattr(self, reg.port)
                for byte in range(4):
                    bits = [b for b in range(8 * byte, 8 * byte + 8) if reg.mask >> b & 1]
                    for lo, hi in _runs(bits):
                        with m.If(sel & w_strb[byte]):
                            m.d.sync += port[lo:hi].eq(w_data[lo:hi])
            elif reg.name == "CTRL":  # one-cycle pulses: 0 unless written in this cycle
                m.d.sync += [
                    self.start.eq(sel & written(f_start) & ~written(f_reset) & ~self.busy),
                    self.abort.eq(sel & written(f_reset)),
                ]
            elif reg.name == "STATUS":
                m.d.comb += clear_done.eq(sel & written(f_done))
            # other ro registers: writes are ignored

        if stored:
            # Memory-backed rw registers: one write port, bits outside the fields written as 0.
            mem = Memory(shape=32, depth=1 << INDEX_WIDTH, attrs={"ram_style": "block"},
                         init=[REGISTERS[i].reset if i < len(REGISTERS) and REGISTERS[i].name
                               in stored else 0 for i in range(1 << INDEX_WIDTH)])
            m.submodules.mem = mem
            mem_wr = mem.write_port(granularity=8)
            mem_rd = mem.read_port(transparent_for=())
            masks = Array(REGISTERS[i].mask if i < len(REGISTERS) else 0
                          for i in range(1 << INDEX_WIDTH))
            m.d.comb += [mem_wr.addr.eq(aw_index), mem_wr.data.eq(w_data & masks[aw_index]),
                         mem_wr.en.eq(Mux(_any(mem_sels), w_strb, 0))]

        # STATUS.done / STATUS.error: later statements win, so set_done has the last word.
        with m.If(clear_done):
            m.d.sync += done.eq(0)
        with m.If(self.start | self.abort):
            m.d.sync += [done.eq(0), error.eq(0)]
        with m.If(self.set_done):
            m.d.sync += [done.eq(1), error.eq(self.error_code)]

        # -- read channel: the data is sampled at the AR handshake -----------------------------
        values: list[Value | int] = []  # what each register reads as, in address order
        for reg in REGISTERS:
            if reg.group == "id":
                values.append(ids[reg.name])
            elif reg.name == "STATUS":
                values.append(status)
            elif reg.name in stored:
                values.append(0)  # from the memory (_read_with_memory)
            elif reg.access in ("rw", "ro"):
                values.append(getattr(self, reg.port) & reg.mask)  # bits outside fields: 0
            else:  # wp registers read as 0
                values.append(0)
        ar_index, ar_upper_zero = split(bus.araddr)
        if stored:
            self._read_with_memory(m, ar_index, ar_upper_zero, values, mem_rd, stored)
            return m

        m.d.comb += bus.arready.eq(~bus.rvalid)
        with m.If(bus.rvalid & bus.rready):
            m.d.sync += bus.rvalid.eq(0)
        with m.If(bus.arvalid & bus.arready):
            self._respond(m, ar_index, ar_upper_zero, _read_mux(ar_index, values))
        return m

    def _read_with_memory(self, m: Module, ar_index, ar_upper_zero, values, mem_rd,
                          stored) -> None:
        """The read channel when some registers are in memory: its read port is the engine's
        (``cmd_read``) or the bus's, and R comes two cycles after AR, one more than from
        flip-flops: the memory's data arrives a cycle after its address."""
        bus = self.s_axil
        pending = Signal()
        r_index = Signal.like(ar_index)
        r_upper_zero = Signal()
        take = bus.arvalid & bus.arready
        m.d.comb += [
            bus.arready.eq(~bus.rvalid & ~pending & ~self.cmd_read),
            mem_rd.addr.eq(Mux(self.cmd_read, self.cmd_index, ar_index)),
            mem_rd.en.eq(self.cmd_read | take),
            self.cmd_data.eq(mem_rd.data),
        ]
        with m.If(take):
            m.d.sync += [pending.eq(1), r_index.eq(ar_index), r_upper_zero.eq(ar_upper_zero)]
        with m.If(bus.rvalid & bus.rready):
            m.d.sync += bus.rvalid.eq(0)
        in_memory = _any([r_index == offset(name) >> 2 for name in stored])
        with m.If(pending):
            m.d.sync += pending.eq(0)
            self._respond(m, r_index, r_upper_zero,
                          _read_mux(r_index, values) | Mux(in_memory, mem_rd.data, 0))

    def _respond(self, m: Module, index, upper_zero, data) -> None:
        """Raise R with ``data`` for word ``index``: SLVERR past the map, and 0 past the end of
        the map (``_read_mux`` gives 0 for an index past the end, and a synchronous reset of
        rdata, free in the flip-flops, for an address above the index)."""
        bus = self.s_axil
        m.d.sync += [
            bus.rvalid.eq(1),
            bus.rresp.eq(Mux(upper_zero & _below(index, len(REGISTERS)),
                             AxiResp.OKAY, AxiResp.SLVERR)),
            bus.rdata.eq(data),
        ]
        with m.If(~upper_zero):
            m.d.sync += bus.rdata.eq(0)
