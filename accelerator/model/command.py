"""The GEMM command's checks, in plain Python: the error code the hardware reports for a command.

Both engines check a command before they start it (:meth:`accelerator.hw.engine.GemmEngine` in
its CHECK state, :class:`accelerator.hw.compact.CompactEngine` in its check states) and report
the first failed check, in the priority of :data:`PRIORITY`, in ``STATUS.error``. This module is
that rule written once for software: the driver uses it to refuse a command before writing it
(:meth:`accelerator.driver.driver.Accelerator.gemm`), and the tests use it as the oracle of
both engines' error codes.

A command is :class:`Command`: the fields of the register map's command table
(:data:`accelerator.model.regmap.COMMAND`) as the registers hold them (unsigned, 32 bits or the
field's width).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..config import AcceleratorConfig
from .regmap import COMMAND, MAX_DIM, ErrorCode, command_fields, element_bytes

__all__ = ["ADDRESS_SPACE", "PRIORITY", "Command", "Violation", "check", "error_code"]

#: Bytes of the address space every matrix must end within.
ADDRESS_SPACE = 1 << 32

#: The order in which the hardware reports failed checks (the first failed one wins).
PRIORITY: tuple[ErrorCode, ...] = (ErrorCode.ZERO_DIM, ErrorCode.TOO_LARGE,
                                   ErrorCode.NO_REQUANT, ErrorCode.STRIDE,
                                   ErrorCode.MISALIGNED, ErrorCode.ADDR_RANGE)

#: A field of :class:`Command` per field of the command table, 0 when not given.
Command = dataclasses.make_dataclass(
    "Command", [(f.name, int, dataclasses.field(default=0)) for f in COMMAND], frozen=True,
    namespace={"__doc__": "A GEMM command: one int per field of the register map's command "
                          "table (accelerator.model.regmap.COMMAND), as its register holds it."})

_TITLE = {"a": "A", "b": "B", "c": "C", "c_in": "C_in"}


@dataclass(frozen=True)
class Violation:
    """A failed check: the :class:`~accelerator.model.regmap.ErrorCode` the hardware reports
    and a one-line reason that names the driver's argument, its value and the rule."""

    code: ErrorCode
    message: str


def _matrices(config: AcceleratorConfig, cmd: Any) -> list[tuple]:
    """Per matrix the command uses: (name, address, stride field, stride, rows' name, rows,
    columns' name, columns, element bytes, aligned to its element)."""
    size = element_bytes(config)
    c_size = size["c_q"] if cmd.requant else size["c"]
    shapes = {"a": ("m", cmd.m, "k", cmd.k, size["a"], False),
              "b": ("k", cmd.k, "n", cmd.n, size["b"], False),
              "c": ("m", cmd.m, "n", cmd.n, c_size, not cmd.requant),
              "c_in": ("m", cmd.m, "n", cmd.n, size["c_in"], True)}
    strides = {f.matrix: f.name for f in command_fields("stride")}
    out = []
    for f in command_fields("address"):
        if f.matrix == "c_in" and not cmd.accumulate:
            continue
        stride = strides[f.matrix]
        out.append((f.matrix, getattr(cmd, f.name), stride, getattr(cmd, stride),
                    *shapes[f.matrix]))
    return out


def check(config: AcceleratorConfig, cmd: Any) -> Violation | None:
    """The first check ``cmd`` fails on hardware generated from ``config``, or None.

    The elements are :func:`~accelerator.model.regmap.element_bytes`' (int8 operands, int32 C
    and C_in, int8 C with ``requant``); an area ends at ``address + (rows - 1)·stride + row``
    bytes, which must be at most :data:`ADDRESS_SPACE`.
    """
    failed: dict[ErrorCode, str] = {}

    def fail(code: ErrorCode, message: str) -> None:
        failed.setdefault(code, message)

    for f in command_fields("dimension"):
        value = getattr(cmd, f.name)
        if value == 0:
            fail(ErrorCode.ZERO_DIM, f"{f.name} = 0 is out of range (allowed: 1 to {MAX_DIM})")
        elif value > MAX_DIM:
            fail(ErrorCode.TOO_LARGE,
                 f"{f.name} = {value} is out of range (allowed: 1 to {MAX_DIM})")
    if cmd.requant and not config.requant_unit:
        fail(ErrorCode.NO_REQUANT, "requant is given but the hardware has no requantization "
                                   "unit (CONFIG0.requant_unit = 0)")
    for matrix, addr, sname, stride, rname, rows, cname, cols, esize, aligned in \
            _matrices(config, cmd):
        title, aname = _TITLE[matrix], matrix   # the driver's argument is the matrix's name
        row = cols * esize
        if stride < row:
            fail(ErrorCode.STRIDE, f"{sname} = {stride} is smaller than a row of {title} "
                                   f"(allowed: at least {cname} × {esize} = {row} bytes)")
        if aligned:
            kind = f"int{8 * esize}"
            if addr % esize:
                fail(ErrorCode.MISALIGNED, f"{aname} = {addr:#x} is not a multiple of {esize} "
                                           f"({title} holds {kind} elements)")
            if stride % esize:
                fail(ErrorCode.MISALIGNED, f"{sname} = {stride} is not a multiple of {esize} "
                                           f"({title} holds {kind} elements)")
        end = addr + (rows - 1) * stride + row
        if rows and end > ADDRESS_SPACE:
            fail(ErrorCode.ADDR_RANGE,
                 f"{title} extends past the 32-bit address space: {aname} + ({rname} - 1) × "
                 f"{sname} + {cname} × {esize} = {end:#x} (allowed: at most "
                 f"{ADDRESS_SPACE:#x})")
    for code in PRIORITY:
        if code in failed:
            return Violation(code, failed[code])
    return None


def error_code(config: AcceleratorConfig, cmd: Any) -> ErrorCode:
    """The ``STATUS.error`` the hardware reports for ``cmd``: :attr:`ErrorCode.NONE` if it
    passes every check."""
    violation = check(config, cmd)
    return ErrorCode.NONE if violation is None else violation.code
