"""The host driver: registers by name, identification, and a checked GEMM call.

Every offset and bit position comes from :mod:`accelerator.model.regmap`; this module never
writes a number that the register map defines.

    acc = Accelerator(transport, base=0x4000_0000)
    config = await acc.identify()
    counters = await acc.gemm(a=0x1000, b=0x2000, c=0x3000, m=64, k=32, n=16,
                              lda=32, ldb=16, ldc=64)
"""

from __future__ import annotations

from typing import Any

from ..config import AcceleratorConfig
from ..model.command import Command
from ..model.command import check as check_command
from ..model.reference import RequantParams
from ..model.regmap import COMMAND_REGISTERS as ALL_COMMAND_REGISTERS
from ..model.regmap import (
    COUNTERS,
    ID_BLOCK,
    MAGIC,
    MAX_DIM,
    ErrorCode,
    command_words,
    config_from_id,
    field,
    register,
    version_tuple,
)
from .transport import Transport

__all__ = [
    "DEFAULT_TIMEOUT_POLLS",
    "Accelerator",
    "AcceleratorError",
    "IdentificationError",
]

#: How many times :meth:`Accelerator.gemm` reads STATUS before giving up.
DEFAULT_TIMEOUT_POLLS = 1_000_000

_WORD = 0xFFFF_FFFF

#: The registers one command programs besides MODE, in address order: :meth:`Accelerator.gemm`
#: writes all of them (unused ones as 0), then MODE, then CTRL.start.
COMMAND_REGISTERS: tuple[str, ...] = tuple(r for r in ALL_COMMAND_REGISTERS if r != "MODE")


class AcceleratorError(RuntimeError):
    """The hardware finished a command with a non-zero ``STATUS.error``.

    ``code`` is an :class:`~accelerator.model.regmap.ErrorCode`, or a plain ``int`` for a code
    this software does not know.
    """

    def __init__(self, code: int):
        try:
            code = ErrorCode(code)
        except ValueError:
            message = f"the accelerator reported error {int(code)} (unknown code)"
        else:
            message = f"the accelerator reported error {int(code)} ({code.name}: {code.doc})"
        super().__init__(message)
        self.code = code


class IdentificationError(RuntimeError):
    """The ID block does not describe an accelerator this driver knows."""


class Accelerator:
    """One accelerator whose registers start at byte address ``base`` of ``transport``.

    ``config`` and ``version`` are ``None`` until :meth:`identify` has run (:meth:`gemm` runs it
    when it needs the config and it has not run yet).
    """

    def __init__(self, transport: Transport, base: int = 0):
        if isinstance(base, bool) or not isinstance(base, int) or not 0 <= base <= _WORD \
                or base % 4:
            raise ValueError(f"base = {base!r} is not a 4-byte aligned 32-bit address")
        self.transport = transport
        self.base = base
        self.config: AcceleratorConfig | None = None
        self.version: tuple[int, int, int] | None = None

    # -- registers by name ----------------------------------------------------------------------

    def address(self, name: str) -> int:
        """The bus address of register ``name``."""
        return self.base + register(name).offset

    async def read(self, name: str) -> int:
        """The value of register ``name`` (unsigned 32-bit)."""
        return await self.transport.read32(self.address(name))

    async def write(self, name: str, value: int) -> None:
        """Write ``value`` to register ``name``; a negative value is written in two's complement.

        Raises ``ValueError`` for a register without a writable field or a value that does not
        fit 32 bits.
        """
        reg = register(name)
        if set(reg.accesses) == {"ro"}:
            raise ValueError(f"write: register {name} is read-only")
        if isinstance(value, bool) or not isinstance(value, int) \
                or not -(1 << 31) <= value <= _WORD:
            raise ValueError(f"write: {name} = {value!r} does not fit 32 bits "
                             f"(allowed: -2**31 to 2**32 - 1)")
        await self.transport.write32(self.address(name), value & _WORD)

    # -- identification, status, counters ------------------------------------------------------

    async def identify(self) -> AcceleratorConfig:
        """Read the ID block and return the hardware's config (also kept in ``self.config``).

        Raises :class:`IdentificationError` if ``ID`` is not the magic number or the block does
        not describe a valid config whose digest matches ``DIGEST``.
        """
        magic = await self.read("ID")
        if magic != MAGIC:
            raise IdentificationError(
                f"no accelerator at {self.base:#010x}: ID reads {magic:#010x}, "
                f"expected {MAGIC:#010x} (\"ACC1\")")
        values = {"ID": magic}
        for name in ID_BLOCK[1:]:
            values[name] = await self.read(name)
        try:
            config = config_from_id(values)
        except ValueError as exc:
            raise IdentificationError(f"accelerator at {self.base:#010x}: {exc}") from None
        version = register("VERSION").decode(values["VERSION"])
        self.version = (version["major"], version["minor"], version["patch"])
        self.config = config
        return config

    @property
    def version_matches(self) -> bool:
        """Whether the hardware was generated by this package's version (after identify)."""
        return self.version == version_tuple()

    async def status(self) -> dict[str, Any]:
        """``STATUS`` decoded: ``busy``, ``done`` (bools) and ``error`` (ErrorCode, or int)."""
        fields = register("STATUS").decode(await self.read("STATUS"))
        error = fields["error"]
        if error in ErrorCode._value2member_map_:
            error = ErrorCode(error)
        return {"busy": bool(fields["busy"]), "done": bool(fields["done"]), "error": error}

    async def counters(self) -> dict[str, int]:
        """The performance counters, keyed by lower-case register name (``cycles``, …)."""
        return {name.lower(): await self.read(name) for name in COUNTERS}

    async def abort(self) -> None:
        """Write ``CTRL.reset``: abort the running command and clear ``STATUS``."""
        await self.write("CTRL", register("CTRL").encode(reset=1))

    # -- the GEMM command -----------------------------------------------------------------------

    async def gemm(self, *, a: int, b: int, c: int, m: int, k: int, n: int,
                   lda: int, ldb: int, ldc: int, c_in: int | None = None,
                   ldcin: int | None = None, requant: RequantParams | None = None,
                   irq: bool = False, check: bool = True,
                   timeout_polls: int = DEFAULT_TIMEOUT_POLLS) -> dict[str, int]:
        """``C = [C_in +] A·B``, requantized to int8 if ``requant`` is given; returns the counters.

        Addresses (``a``, ``b``, ``c``, ``c_in``) and row strides (``lda``, ``ldb``, ``ldc``,
        ``ldcin``) are in bytes; the element sizes are those of
        :func:`~accelerator.model.regmap.element_bytes` (int8 A and B, int32 C and C_in, int8 C
        with ``requant``). ``c_in`` and ``ldcin`` go together.

        With ``check`` (the default), every argument is validated before the first write, and a
        ``ValueError`` names the argument, its value and the rule (the config needed for some of
        the rules is read with :meth:`identify` if it has not run yet). ``check=False`` skips the
        checks of the command, so that a test can send the hardware an illegal one: values are
        written masked to 32 bits. ``requant``, ``irq`` and ``timeout_polls`` are always checked.

        Then the command registers, MODE and ``CTRL.start`` are written, STATUS is polled until
        ``done`` (``TimeoutError`` after ``timeout_polls`` reads), the counters are read and
        ``STATUS.done`` is cleared. A non-zero ``STATUS.error`` raises :class:`AcceleratorError`.
        ``irq`` sets ``MODE.irq_enable`` (the driver still polls). Raises ``RuntimeError``,
        before writing anything, if the accelerator is busy with an earlier command.
        """
        if requant is not None and not isinstance(requant, RequantParams):
            raise ValueError(f"gemm: requant = {requant!r} is not a RequantParams or None")
        _check_bool("irq", irq)
        _check_bool("check", check)
        if isinstance(timeout_polls, bool) or not isinstance(timeout_polls, int) \
                or timeout_polls < 1:
            raise ValueError(f"gemm: timeout_polls = {timeout_polls!r} is out of range "
                             f"(allowed: at least 1)")
        if check:
            _check_command(a=a, b=b, c=c, m=m, k=k, n=n, lda=lda, ldb=ldb, ldc=ldc,
                           c_in=c_in, ldcin=ldcin, requant=requant)

        rq = requant
        # the arguments as the command table's fields (accelerator.model.regmap.COMMAND)
        fields = {
            "a_addr": a, "b_addr": b, "c_addr": c, "cin_addr": 0 if c_in is None else c_in,
            "m": m, "k": k, "n": n, "lda": lda, "ldb": ldb, "ldc": ldc,
            "ldcin": 0 if ldcin is None else ldcin,
            "accumulate": int(c_in is not None), "requant": int(rq is not None),
            "relu": int(bool(rq and rq.relu)),
            "rq_mult": rq.multiplier if rq else 0, "rq_shift": rq.shift if rq else 0,
            "rq_zp": rq.zero_point if rq else 0,
        }
        if check:
            # the rest is the hardware's own checks, which the command checker models
            config = self.config if self.config is not None else await self.identify()
            violation = check_command(config, Command(**fields))
            if violation is not None:
                raise ValueError(f"gemm: {violation.message}")
        words = command_words(fields)
        words["MODE"] |= register("MODE").encode(irq_enable=irq)

        if (await self.status())["busy"]:
            raise RuntimeError("gemm: the accelerator is busy with an earlier command "
                               "(STATUS.busy = 1); wait for it or call abort()")
        # MODE last of the command, then CTRL.start
        for name in (*COMMAND_REGISTERS, "MODE"):
            await self.write(name, words[name])
        await self.write("CTRL", register("CTRL").encode(start=1))

        done = field("STATUS", "done")
        # A transport that can see the interrupt line (a simulation) waits for it instead of
        # polling the bus; polling still confirms completion and reads the error code.
        wait_interrupt = getattr(self.transport, "wait_interrupt", None)
        if irq and wait_interrupt is not None:
            await wait_interrupt()
        for _ in range(timeout_polls):
            status = await self.read("STATUS")
            if done.extract(status):
                break
        else:
            raise TimeoutError(f"gemm: STATUS.done not set after {timeout_polls} polls")
        counters = await self.counters()
        await self.write("STATUS", register("STATUS").encode(done=1))
        error = field("STATUS", "error").extract(status)
        if error:
            raise AcceleratorError(error)
        return counters


# -- argument checks ------------------------------------------------------------------------------


def _check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"gemm: {name} = {value!r} is not a boolean")


def _check_int(name: str, value: Any, lo: int, hi: int, allowed: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"gemm: {name} = {value!r} is not an integer (allowed: {allowed})")
    if not lo <= value <= hi:
        raise ValueError(f"gemm: {name} = {value} is out of range (allowed: {allowed})")


def _check_command(*, a, b, c, m, k, n, lda, ldb, ldc, c_in, ldcin, requant) -> None:
    """The checks that need no knowledge of the hardware: types and register ranges."""
    for name, value in (("m", m), ("k", k), ("n", n)):
        _check_int(name, value, 1, MAX_DIM, f"1 to {MAX_DIM}")
    addresses = [("a", a), ("b", b), ("c", c)]
    if c_in is not None:
        addresses.append(("c_in", c_in))
    for name, value in addresses:
        _check_int(name, value, 0, _WORD, "0 to 0xffffffff")
    strides = [("lda", lda), ("ldb", ldb), ("ldc", ldc)]
    if ldcin is not None:
        strides.append(("ldcin", ldcin))
    for name, value in strides:
        _check_int(name, value, 0, _WORD, "0 to 0xffffffff")
    if c_in is not None and ldcin is None:
        raise ValueError("gemm: c_in is given without ldcin (the row stride of C_in in bytes)")
    if ldcin is not None and c_in is None:
        raise ValueError(f"gemm: ldcin = {ldcin} is given without c_in")
    if requant is not None and requant.out_width != 8:
        raise ValueError(f"gemm: requant.out_width = {requant.out_width} is not supported "
                         f"(allowed: 8, the hardware's requantizer emits int8)")
