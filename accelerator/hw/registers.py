"""The control and status registers: the one definition of the register map, and its gateware.

Everything that knows a register offset or a bit position reads it from :data:`REGISTERS`: the
:class:`RegisterBlock` gateware below, the host driver (:mod:`accelerator.driver.driver`) and the
generated docs (``docs/registers.md``, written by ``tools/gen_registers_doc.py``). Offsets are
assigned in the order the registers are listed, 4 bytes apart, starting at 0.

Access types (per field; a field without its own ``access`` takes its register's):

``ro``
    Read-only; driven by the hardware. Writes are ignored (and answered OKAY).
``rw``
    Written by software, read by the hardware; reads return what was written (bits outside the
    register's fields read as 0 and cannot be set).
``w1c``
    Status set by the hardware; software clears it by writing 1 to it (0 leaves it alone).
``wp``
    Write-pulse: writing 1 makes a one-cycle pulse in the hardware; reads return 0.

A write honours ``wstrb``: bytes whose strobe is low are treated as not written (``rw``) or as
written with 0 (``w1c`` / ``wp``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum

from amaranth.hdl import Array, Const, Module, Mux, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .. import __version__
from ..config import AcceleratorConfig
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

#: The access types, with their one-line meaning (the docs print these).
ACCESS: dict[str, str] = {
    "ro": "read-only, driven by the hardware; writes are ignored",
    "rw": "written by software, read by the hardware; reads return the value written",
    "w1c": "set by the hardware, cleared by writing 1 (writing 0 leaves it unchanged)",
    "wp": "write-pulse: writing 1 makes a one-cycle pulse in the hardware; reads as 0",
}

#: The register groups, in address order, with a title for the docs.
GROUPS: dict[str, str] = {
    "id": "Identification (constants fixed when the hardware is generated)",
    "control": "Control and status",
    "command": "GEMM command",
    "requant": "Requantization parameters",
    "counters": "Performance counters (reset when a command starts)",
}

#: ``ID`` reads this: ``"ACC1"`` in ASCII.
MAGIC = 0x41434331

#: The largest M, K or N the hardware accepts (a larger one is ``ErrorCode.TOO_LARGE``).
MAX_DIM = 65535


# -- the data model -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """Bits ``[lsb + width - 1 : lsb]`` of a register.

    ``access`` is ``None`` when the field has its register's access type. ``signed`` fields hold
    a two's-complement number (software writes it masked to ``width`` bits).
    """

    name: str
    lsb: int
    width: int
    doc: str
    access: str | None = None
    signed: bool = False

    def __post_init__(self) -> None:
        if self.lsb < 0 or self.width < 1 or self.lsb + self.width > 32:
            raise ValueError(f"field {self.name}: bits [{self.msb}:{self.lsb}] are not within "
                             f"a 32-bit register")
        if self.access is not None and self.access not in ACCESS:
            raise ValueError(f"field {self.name}: access {self.access!r} is not one of "
                             f"{', '.join(ACCESS)}")

    @property
    def msb(self) -> int:
        return self.lsb + self.width - 1

    @property
    def mask(self) -> int:
        """The field's bits, in register position."""
        return ((1 << self.width) - 1) << self.lsb

    @property
    def bits(self) -> str:
        """``"[7:0]"``, or ``"[16]"`` for a one-bit field."""
        return f"[{self.lsb}]" if self.width == 1 else f"[{self.msb}:{self.lsb}]"

    def extract(self, value):
        """The field's value in ``value``: an ``int`` from an int, a slice from an Amaranth value.

        Signed fields come out sign-extended (``int``) or ``.as_signed()`` (Amaranth).
        """
        if isinstance(value, int):
            raw = (value >> self.lsb) & ((1 << self.width) - 1)
            if self.signed and raw >> (self.width - 1):
                raw -= 1 << self.width
            return raw
        sliced = value[self.lsb:self.lsb + self.width]
        return sliced.as_signed() if self.signed else sliced

    def insert(self, value: int) -> int:
        """``value`` moved to the field's position; raises ``ValueError`` if it does not fit."""
        lo, hi = ((-(1 << (self.width - 1)), (1 << (self.width - 1)) - 1) if self.signed
                  else (0, (1 << self.width) - 1))
        if isinstance(value, bool):
            value = int(value)
        if not isinstance(value, int) or not lo <= value <= hi:
            raise ValueError(f"field {self.name} = {value!r} does not fit {self.bits} "
                             f"(allowed: {lo} to {hi})")
        return (value & ((1 << self.width) - 1)) << self.lsb


@dataclass(frozen=True)
class Register:
    """One 32-bit register at byte ``offset``; ``fields`` cover the bits that exist."""

    name: str
    offset: int
    access: str
    doc: str
    fields: tuple[Field, ...] = ()
    reset: int = 0
    group: str = ""

    def __post_init__(self) -> None:
        if self.access not in ACCESS:
            raise ValueError(f"register {self.name}: access {self.access!r} is not one of "
                             f"{', '.join(ACCESS)}")
        if self.offset % 4:
            raise ValueError(f"register {self.name}: offset {self.offset:#x} is not aligned")
        taken = 0
        for f in self.fields:
            if taken & f.mask:
                raise ValueError(f"register {self.name}: field {f.name} overlaps another")
            taken |= f.mask
        if len({f.name for f in self.fields}) != len(self.fields):
            raise ValueError(f"register {self.name}: two fields have the same name")
        if self.reset & ~taken & 0xFFFFFFFF:
            raise ValueError(f"register {self.name}: reset value sets bits outside its fields")

    @property
    def port(self) -> str:
        """The name of the register's port on :class:`RegisterBlock` (the name in lower case)."""
        return self.name.lower()

    @property
    def mask(self) -> int:
        """The bits covered by fields (the others read as 0)."""
        mask = 0
        for f in self.fields:
            mask |= f.mask
        return mask

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"register {self.name} has no field {name!r} "
                       f"(fields: {', '.join(f.name for f in self.fields)})")

    def field_access(self, f: Field) -> str:
        return f.access or self.access

    @property
    def accesses(self) -> tuple[str, ...]:
        """The access types of the register's fields, without repeats, in field order."""
        return tuple(dict.fromkeys(self.field_access(f) for f in self.fields))

    def encode(self, **values: int) -> int:
        """A register value from field values (missing fields are 0)."""
        word = 0
        for name, value in values.items():
            word |= self.field(name).insert(value)
        return word

    def decode(self, value: int) -> dict[str, int]:
        """Every field's value in ``value``."""
        return {f.name: f.extract(value) for f in self.fields}


def _whole(name: str, doc: str, width: int = 32, *, signed: bool = False) -> tuple[Field, ...]:
    return (Field(name, 0, width, doc, signed=signed),)


# Each entry: (group, name, access, doc, fields). The offset is the entry's index times 4.
_MAP: tuple[tuple[str, str, str, str, tuple[Field, ...]], ...] = (
    ("id", "ID", "ro", "Magic number: 0x41434331 (\"ACC1\"); anything else is not this device.",
     _whole("magic", "0x41434331")),
    ("id", "VERSION", "ro", "Version of the `accelerator` package that generated the hardware.", (
        Field("patch", 0, 8, "patch version"),
        Field("minor", 8, 8, "minor version"),
        Field("major", 16, 8, "major version"),
    )),
    ("id", "CONFIG0", "ro", "Array parameters.", (
        Field("rows", 0, 8, "rows of the PE array"),
        Field("cols", 8, 8, "columns of the PE array"),
        Field("dataflow", 16, 1, "0: output-stationary (os), 1: weight-stationary (ws)"),
        Field("requant_unit", 17, 1, "1: the int8 requantization stage is present"),
        Field("compact", 18, 1, "1: the compact engine, 0: the pipelined one (config `engine`)"),
        Field("registered_dsp", 19, 1, "1: the PEs multiply in registered DSP blocks, "
                                       "`product_latency` cycles more per tile"),
        Field("in_width", 24, 5, "operand width in bits"),
    )),
    ("id", "CONFIG1", "ro", "Memory parameters.", (
        Field("acc_width", 0, 8, "accumulator width in bits"),
        Field("axi_bytes", 8, 8, "data width of the AXI4 memory port in bytes"),
        Field("log2_spad_a_depth", 16, 5, "log2 of the A scratchpad depth"),
        Field("log2_spad_b_depth", 21, 5, "log2 of the B scratchpad depth"),
        Field("log2_spad_c_depth", 26, 5, "log2 of the C scratchpad depth"),
    )),
    ("id", "DIGEST", "ro", "First 8 hex digits of the config digest (`AcceleratorConfig.digest`).",
     _whole("digest", "int(config.digest[:8], 16)")),
    ("control", "CTRL", "wp", "Command register.", (
        Field("start", 0, 1, "writing 1 starts the programmed GEMM (ignored while STATUS.busy); "
                             "clears STATUS.done, STATUS.error and the counters"),
        Field("reset", 1, 1, "writing 1 aborts the running command (a start written with it is "
                             "ignored) and clears STATUS.done and STATUS.error: the engine "
                             "requests nothing more from memory, finishes the AXI bursts "
                             "already requested (read beats dropped, the remaining write beats "
                             "sent with WSTRB 0), then goes idle; STATUS.busy stays 1 until "
                             "then (within `abort_bound` cycles, see below) and STATUS.done "
                             "is not set"),
    )),
    ("control", "MODE", "rw", "Options of the next command.", (
        Field("accumulate", 0, 1, "1: C = C_in + A·B (C_in read from CIN_ADDR); 0: C = A·B"),
        Field("requant", 1, 1, "1: requantize C to int8 with RQ_MULT, RQ_SHIFT, RQ_ZP"),
        Field("relu", 2, 1, "1: fused ReLU in the requantizer (only with requant)"),
        Field("irq_enable", 3, 1, "1: the irq output follows STATUS.done"),
    )),
    ("control", "STATUS", "ro", "State of the last command; access is per field.", (
        Field("busy", 0, 1, "1 while a command runs", access="ro"),
        Field("done", 1, 1, "set when a command finishes (with or without an error); "
                            "cleared by writing 1, by CTRL.start and by CTRL.reset",
              access="w1c"),
        Field("error", 8, 8, "ErrorCode of the last command (0: none); cleared by CTRL.start",
              access="ro"),
    )),
    ("command", "A_ADDR", "rw", "Byte address of A (M×K, int8, row-major).",
     _whole("addr", "byte address")),
    ("command", "B_ADDR", "rw", "Byte address of B (K×N, int8, row-major).",
     _whole("addr", "byte address")),
    ("command", "C_ADDR", "rw", "Byte address of C (M×N, int32, or int8 with MODE.requant).",
     _whole("addr", "byte address")),
    ("command", "CIN_ADDR", "rw", "Byte address of C_in (M×N, int32); used with MODE.accumulate.",
     _whole("addr", "byte address")),
    ("command", "M", "rw", "Rows of A and C.", _whole("m", f"1 to {MAX_DIM}")),
    ("command", "K", "rw", "Columns of A, rows of B.", _whole("k", f"1 to {MAX_DIM}")),
    ("command", "N", "rw", "Columns of B and C.", _whole("n", f"1 to {MAX_DIM}")),
    ("command", "LDA", "rw", "Row stride of A in bytes (at least K).",
     _whole("stride", "bytes")),
    ("command", "LDB", "rw", "Row stride of B in bytes (at least N).",
     _whole("stride", "bytes")),
    ("command", "LDC", "rw", "Row stride of C in bytes (at least 4·N, or N with MODE.requant).",
     _whole("stride", "bytes")),
    ("command", "LDCIN", "rw",
     "Row stride of C_in in bytes (at least 4·N); used with MODE.accumulate.",
     _whole("stride", "bytes")),
    ("requant", "RQ_MULT", "rw", "Q31 multiplier of the requantizer.",
     _whole("multiplier", "0 to 2**31 - 1", 31)),
    ("requant", "RQ_SHIFT", "rw", "Right shift of the requantizer.",
     _whole("shift", "0 to 31", 5)),
    ("requant", "RQ_ZP", "rw", "Output zero point of the requantizer.",
     _whole("zero_point", "-128 to 127", 8, signed=True)),
    ("counters", "CYCLES", "ro", "Clock cycles from start to done.",
     _whole("count", "cycles")),
    ("counters", "MAC_CYCLES", "ro", ("Cycles in which the array took an operand beat, the "
     "padded beats of edge tiles included (docs/hardware.md)."),
     _whole("count", "cycles")),
    ("counters", "DMA_RD_BYTES", "ro", ("Payload bytes read from memory, every re-read of an "
     "operand included; not the bytes of whole bus beats (docs/hardware.md)."),
     _whole("count", "bytes")),
    ("counters", "DMA_WR_BYTES", "ro", "Bytes written to memory (with their strobes set).",
     _whole("count", "bytes")),
    ("counters", "STALL_LOAD", "ro", ("Cycles the array waited for operands from memory (it "
     "had none to take, and not for the reason STALL_STORE counts)."),
     _whole("count", "cycles")),
    ("counters", "STALL_STORE", "ro", ("Cycles the array waited for results to be written "
     "back: it had no operand because the C buffer its chunk needs still holds results not yet "
     "stored, or it had a result that could not leave. A cycle counts in at most one of "
     "STALL_LOAD and STALL_STORE. Always 0 on the compact engine (its array never waits for "
     "the writer)."),
     _whole("count", "cycles")),
)

#: Every register, in address order.
REGISTERS: tuple[Register, ...] = tuple(
    Register(name, 4 * index, access, doc, fields, group=group)
    for index, (group, name, access, doc, fields) in enumerate(_MAP)
)

_BY_NAME: dict[str, Register] = {r.name: r for r in REGISTERS}

#: Bytes the register map spans.
MAP_SIZE = 4 * len(REGISTERS)

#: The default address width of the register block's AXI4-Lite port: a 4 KiB window.
ADDR_WIDTH = max(12, (MAP_SIZE - 1).bit_length())

#: Bits of a register's word index (its offset / 4).
INDEX_WIDTH = (len(REGISTERS) - 1).bit_length()

#: The registers of the ID block, whose values :func:`id_values` computes.
ID_BLOCK: tuple[str, ...] = tuple(r.name for r in REGISTERS if r.group == "id")

#: The performance counters, in address order.
COUNTERS: tuple[str, ...] = tuple(r.name for r in REGISTERS if r.group == "counters")


def register(name: str) -> Register:
    """The register called ``name`` (upper case, as in the docs)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"no register {name!r} (registers: {', '.join(_BY_NAME)})") from None


def offset(name: str) -> int:
    """The byte offset of register ``name``."""
    return register(name).offset


def field(reg: str, name: str) -> Field:
    """Field ``name`` of register ``reg``."""
    return register(reg).field(name)


# -- error codes --------------------------------------------------------------------------------


class ErrorCode(IntEnum):
    """The values of ``STATUS.error``. ``code.doc`` is a one-line description."""

    doc: str

    def __new__(cls, value: int, doc: str):
        member = int.__new__(cls, value)
        member._value_ = value
        member.doc = doc
        return member

    NONE = 0, "no error"
    ZERO_DIM = 1, "M, K or N is zero"
    MISALIGNED = 2, "C or C_in holds int32 and its address or row stride is not a multiple of 4"
    ADDR_RANGE = 3, "a matrix extends past the end of the 32-bit address space"
    STRIDE = 4, "a row stride is smaller than the row it steps over"
    NO_REQUANT = 5, "MODE.requant is set but the hardware has no requantization unit"
    BUS_ERROR = 6, "the memory answered a DMA transfer with an AXI error response"
    TOO_LARGE = 7, f"M, K or N is larger than the hardware supports ({MAX_DIM})"


# -- the ID block -------------------------------------------------------------------------------


def version_tuple(text: str = __version__) -> tuple[int, int, int]:
    """``(major, minor, patch)`` of a version string, each clipped to 0..255; missing parts 0."""
    match = re.match(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?", text)
    if not match:
        return (0, 0, 0)
    major, minor, patch = (min(int(g or 0), 255) for g in match.groups())
    return (major, minor, patch)


def id_values(config: AcceleratorConfig, *, version: str = __version__) -> dict[str, int]:
    """The values of the ID block's registers for ``config``, keyed by register name."""
    major, minor, patch = version_tuple(version)
    values = {
        "ID": register("ID").encode(magic=MAGIC),
        "VERSION": register("VERSION").encode(major=major, minor=minor, patch=patch),
        "CONFIG0": register("CONFIG0").encode(
            rows=config.rows, cols=config.cols, dataflow=int(config.dataflow == "ws"),
            requant_unit=int(config.requant_unit), in_width=config.in_width,
            compact=int(config.engine == "compact"),
            registered_dsp=int(config.registered_dsp)),
        "CONFIG1": register("CONFIG1").encode(
            acc_width=config.acc_width, axi_bytes=config.axi_bytes,
            log2_spad_a_depth=config.spad_a_depth.bit_length() - 1,
            log2_spad_b_depth=config.spad_b_depth.bit_length() - 1,
            log2_spad_c_depth=config.spad_c_depth.bit_length() - 1),
        "DIGEST": register("DIGEST").encode(digest=int(config.digest[:8], 16)),
    }
    assert tuple(values) == ID_BLOCK
    return values


def config_from_id(values: dict[str, int]) -> AcceleratorConfig:
    """The config that :func:`id_values` describes; the inverse of :func:`id_values`.

    Raises ``ValueError`` (a :class:`~accelerator.config.ConfigError` for a field out of range)
    if ``ID`` is not :data:`MAGIC`, if the values describe no valid config, or if ``DIGEST`` does
    not match the config they describe.
    """
    missing = [name for name in ID_BLOCK if name not in values]
    if missing:
        raise ValueError(f"ID block incomplete: missing {', '.join(missing)}")
    magic = register("ID").decode(values["ID"])["magic"]
    if magic != MAGIC:
        raise ValueError(f"ID = {magic:#010x} is not the accelerator's magic number "
                         f"{MAGIC:#010x}")
    c0 = register("CONFIG0").decode(values["CONFIG0"])
    c1 = register("CONFIG1").decode(values["CONFIG1"])
    config = AcceleratorConfig(
        rows=c0["rows"], cols=c0["cols"], dataflow="ws" if c0["dataflow"] else "os",
        in_width=c0["in_width"], requant_unit=bool(c0["requant_unit"]),
        acc_width=c1["acc_width"], axi_data_width=8 * c1["axi_bytes"],
        spad_a_depth=1 << c1["log2_spad_a_depth"], spad_b_depth=1 << c1["log2_spad_b_depth"],
        spad_c_depth=1 << c1["log2_spad_c_depth"],
        engine="compact" if c0["compact"] else "pipelined",
        registered_dsp=bool(c0["registered_dsp"]),
    )
    digest = register("DIGEST").decode(values["DIGEST"])["digest"]
    if digest != int(config.digest[:8], 16):
        raise ValueError(f"DIGEST = {digest:#010x} does not match the config the ID block "
                         f"describes ({config.digest[:8]}): the config or the register map "
                         f"differs from this software's")
    return config


def element_bytes(config: AcceleratorConfig) -> dict[str, int]:
    """Bytes per element of each matrix in memory: ``a``, ``b``, ``c_in``, ``c`` and ``c_q``.

    Operands are stored in the smallest of 1 or 2 bytes that holds ``in_width`` bits;
    accumulators (C and C_in) in 4 bytes (int32), or 8 if ``acc_width > 32``; a requantized C
    (``c_q``) in 1 byte (int8).
    """
    operand = 1 if config.in_width <= 8 else 2
    acc = 4 if config.acc_width <= 32 else 8
    return {"a": operand, "b": operand, "c_in": acc, "c": acc, "c_q": 1}


# -- the gateware -------------------------------------------------------------------------------


def memory_backed(config: AcceleratorConfig) -> tuple[str, ...]:
    """The rw registers :class:`RegisterBlock` keeps in a block RAM rather than in flip-flops.

    With the compact engine every rw register but ``MODE``: that engine reads the command once,
    as it starts (``cmd_read``/``cmd_index``/``cmd_data``), and keeps what it needs, so the
    command's 400 flip-flops and most of the read multiplexer go (on an iCE40UP5K about a tenth
    of the device). The pipelined engine latches the whole command from flip-flops in a cycle.
    """
    if config.engine != "compact":
        return ()
    return tuple(r.name for r in REGISTERS if r.access == "rw" and r.name != "MODE")


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
    error_code : In(8)
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
            "error_code": In(8),
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
        error = Signal(8)
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
