"""The control and status registers: the one definition of the register map, in plain Python.

Everything that knows a register offset or a bit position reads it from :data:`REGISTERS`: the
:class:`~accelerator.hw.registers.RegisterBlock` gateware, the host driver
(:mod:`accelerator.driver.driver`) and the generated docs (``docs/registers.md``, written by
``tools/gen_registers_doc.py``). Offsets are assigned in the order the registers are listed, 4
bytes apart, starting at 0. This module imports no Amaranth: the driver reads the map from here
without the gateware (docs/architecture.md, "Layers").

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

from ..config import FIELDS, AcceleratorConfig
from ..version import __version__

__all__ = [
    "ACCEL_ACC_WIDTH",
    "ACCEL_IN_WIDTH",
    "ACCESS",
    "ADDR_WIDTH",
    "COMMAND",
    "COMMAND_REGISTERS",
    "COMMAND_ROLES",
    "COUNTERS",
    "DIM_WIDTH",
    "ERROR_WIDTH",
    "GROUPS",
    "ID_BLOCK",
    "INDEX_WIDTH",
    "MAGIC",
    "MAP_SIZE",
    "MAX_DIM",
    "REGISTERS",
    "CommandField",
    "ErrorCode",
    "Field",
    "Register",
    "accelerator_width_error",
    "command_fields",
    "command_words",
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

#: Bits of M, K and N in the hardware's walks (a command's dimension registers are 32 bits wide;
#: the engines check that the bits above these are 0).
DIM_WIDTH = 16
#: The largest M, K or N the hardware accepts (a larger one is ``ErrorCode.TOO_LARGE``).
MAX_DIM = (1 << DIM_WIDTH) - 1


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
        """The name of the register's port on the gateware's register block (lower case)."""
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


#: The width of ``STATUS.error`` and of every error code register: the largest code's.
ERROR_WIDTH = max(ErrorCode).bit_length()


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
                                       "`result_latency` cycles more per tile"),
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
                             "requests nothing more from memory (the pipelined engine's "
                             "DMA a cycle later), finishes the AXI bursts "
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
        Field("error", 8, ERROR_WIDTH,
              "ErrorCode of the last command (0: none); cleared by CTRL.start", access="ro"),
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
     "stored. A cycle counts in at most one of "
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


# -- the GEMM command ---------------------------------------------------------------------------


#: What a command field is: the matrix addresses and row strides (bytes), the dimensions, the
#: options of ``MODE``, the requantizer's parameters.
COMMAND_ROLES = ("address", "dimension", "stride", "mode", "requant")


@dataclass(frozen=True)
class CommandField:
    """One field of the GEMM command as the engine sees it: ``name`` in the command layout
    (:func:`accelerator.hw.engine.command_layout`), the checker
    (:mod:`accelerator.model.command`) and the driver, held in field ``field`` of register
    ``register``, whose width and signedness it has. ``matrix`` names the matrix (``a``, ``b``,
    ``c``, ``c_in``) of an address or a stride."""

    name: str
    register: str
    field: str
    role: str
    matrix: str | None = None

    def __post_init__(self) -> None:
        if self.role not in COMMAND_ROLES:
            raise ValueError(f"command field {self.name}: role {self.role!r} is not one of "
                             f"{', '.join(COMMAND_ROLES)}")

    @property
    def source(self) -> Field:
        """The register field that holds it."""
        return field(self.register, self.field)

    @property
    def width(self) -> int:
        return self.source.width

    @property
    def signed(self) -> bool:
        return self.source.signed


#: The GEMM command, field by field, in the order of the engine's command layout: the one list
#: from which the layout, the accelerator's wiring from the registers to the engine, the compact
#: engine's reads of the command, the checker and the driver's programming are made.
COMMAND: tuple[CommandField, ...] = (
    CommandField("a_addr", "A_ADDR", "addr", "address", "a"),
    CommandField("b_addr", "B_ADDR", "addr", "address", "b"),
    CommandField("c_addr", "C_ADDR", "addr", "address", "c"),
    CommandField("cin_addr", "CIN_ADDR", "addr", "address", "c_in"),
    CommandField("m", "M", "m", "dimension"),
    CommandField("k", "K", "k", "dimension"),
    CommandField("n", "N", "n", "dimension"),
    CommandField("lda", "LDA", "stride", "stride", "a"),
    CommandField("ldb", "LDB", "stride", "stride", "b"),
    CommandField("ldc", "LDC", "stride", "stride", "c"),
    CommandField("ldcin", "LDCIN", "stride", "stride", "c_in"),
    CommandField("accumulate", "MODE", "accumulate", "mode"),
    CommandField("requant", "MODE", "requant", "mode"),
    CommandField("relu", "MODE", "relu", "mode"),
    CommandField("rq_mult", "RQ_MULT", "multiplier", "requant"),
    CommandField("rq_shift", "RQ_SHIFT", "shift", "requant"),
    CommandField("rq_zp", "RQ_ZP", "zero_point", "requant"),
)


def command_fields(role: str) -> tuple[CommandField, ...]:
    """The command's fields of ``role`` (one of :data:`COMMAND_ROLES`), in command order."""
    if role not in COMMAND_ROLES:
        raise ValueError(f"role {role!r} is not one of {', '.join(COMMAND_ROLES)}")
    return tuple(f for f in COMMAND if f.role == role)


#: The registers that hold the command, in address order.
COMMAND_REGISTERS: tuple[str, ...] = tuple(
    r.name for r in REGISTERS if any(f.register == r.name for f in COMMAND))


def command_words(values: dict[str, int]) -> dict[str, int]:
    """The words of :data:`COMMAND_REGISTERS` (in address order) that hold a command whose
    fields are ``values`` (keyed by :class:`CommandField` name; a missing field is 0). A
    32-bit field is written masked to 32 bits, so that a test can program any register value;
    a narrower one must fit (``ValueError``)."""
    unknown = set(values) - {f.name for f in COMMAND}
    if unknown:
        raise KeyError(f"no command field {', '.join(sorted(unknown))} "
                       f"(fields: {', '.join(f.name for f in COMMAND)})")
    words = dict.fromkeys(COMMAND_REGISTERS, 0)
    for f in COMMAND:
        value = int(values.get(f.name, 0))
        if f.width == 32:
            value &= 0xFFFF_FFFF
        words[f.register] |= f.source.insert(value)
    return words


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


#: The widest operand and accumulator the whole accelerator takes (its engines, DMA and
#: scratchpads move int8 operands and int32 accumulators); the systolic core alone takes every
#: width the config allows.
ACCEL_IN_WIDTH = 8
ACCEL_ACC_WIDTH = 32


def accelerator_width_error(config: AcceleratorConfig) -> str | None:
    """Why the whole accelerator (and so the board top, ``accel sim`` and ``accel verify``)
    cannot be built with ``config``'s widths, in one line; None when it can.

    The engines and the DMA keep one byte per operand and four per accumulator, so an operand
    wider than :data:`ACCEL_IN_WIDTH` bits or an accumulator wider than :data:`ACCEL_ACC_WIDTH`
    bits would be cut, and the results be wrong: such a config is refused instead.
    """
    fields = {f.name: f for f in FIELDS}
    for name, widest, kind in (("in_width", ACCEL_IN_WIDTH, "int8 operands"),
                               ("acc_width", ACCEL_ACC_WIDTH, "int32 accumulators")):
        value = getattr(config, name)
        if value > widest:
            return (f"{name} = {value} is out of range for the accelerator (allowed: up to "
                    f"{widest}; its memory holds {kind}; the systolic core alone takes up to "
                    f"{fields[name].hi})")
    return None


def element_bytes(config: AcceleratorConfig) -> dict[str, int]:
    """Bytes per element of each matrix in memory: ``a``, ``b``, ``c_in``, ``c`` and ``c_q``.

    Operands are stored in the smallest of 1 or 2 bytes that holds ``in_width`` bits;
    accumulators (C and C_in) in 4 bytes (int32), or 8 if ``acc_width > 32``; a requantized C
    (``c_q``) in 1 byte (int8).
    """
    operand = 1 if config.in_width <= 8 else 2
    acc = 4 if config.acc_width <= 32 else 8
    return {"a": operand, "b": operand, "c_in": acc, "c": acc, "c_q": 1}


# -- where the registers live ---------------------------------------------------------------------


def memory_backed(config: AcceleratorConfig) -> tuple[str, ...]:
    """The rw registers :class:`~accelerator.hw.registers.RegisterBlock` keeps in a block RAM
    rather than in flip-flops.

    With the compact engine every rw register but ``MODE``: that engine reads the command once,
    as it starts (``cmd_read``/``cmd_index``/``cmd_data``), and keeps what it needs, so the
    command's 400 flip-flops and most of the read multiplexer go (on an iCE40UP5K about a tenth
    of the device). The pipelined engine latches the whole command from flip-flops in a cycle.
    """
    if config.engine != "compact":
        return ()
    return tuple(r.name for r in REGISTERS if r.access == "rw" and r.name != "MODE")
