"""The command of the GEMM engines: its layout, its checks and their priority.

Both engines (:class:`~accelerator.hw.engine.GemmEngine` and
:class:`~accelerator.hw.compact.CompactEngine`) check the same things and report them in the
one order of :func:`error_priority`.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data

from ...model.regmap import COMMAND, DIM_WIDTH, ERROR_WIDTH
from ..registers import MAX_DIM, ErrorCode

__all__ = ["EngineError", "check_command", "command_layout", "const_mul", "error_priority",
           "fifo_gate", "log2", "out_row_bytes"]


#: The error codes of a command: the register map's, so software and hardware agree.
EngineError = ErrorCode


def command_layout() -> data.StructLayout:
    """The command as the engine latches it: a member per field of the register map's
    :data:`~accelerator.model.regmap.COMMAND`, with its register field's width and sign."""
    return data.StructLayout({f.name: signed(f.width) if f.signed else unsigned(f.width)
                              for f in COMMAND})


def log2(x: int) -> int:
    assert x & (x - 1) == 0, x
    return x.bit_length() - 1


def const_mul(x, constant: int):
    """``x·constant`` as shifts and adds: yosys would put a constant ``*`` in DSP blocks."""
    terms = [x << i for i in range(constant.bit_length()) if constant >> i & 1]
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


def out_row_bytes(requant, n):
    """Bytes of a row of C: ``n`` int8 with ``MODE.requant``, else ``n`` int32.

    Of N's DIM_WIDTH bits only: a larger N is refused as TOO_LARGE, which comes before every
    check that reads this (its bits above were logic no command could observe)."""
    n = n[:DIM_WIDTH]
    return Mux(requant, n, n << 2)


def error_priority(m: Module, *, zero, large, no_requant, stride, misaligned, out_range):
    """The :class:`ErrorCode` of a command from its failed checks, in priority order (0: none).

    Both engines check the same things, each its own way; this is the one order.
    """
    code = Signal(ERROR_WIDTH)
    failed = [(zero, EngineError.ZERO_DIM), (large, EngineError.TOO_LARGE),
              (no_requant, EngineError.NO_REQUANT), (stride, EngineError.STRIDE),
              (misaligned, EngineError.MISALIGNED), (out_range, EngineError.ADDR_RANGE)]
    for i, (check, error) in enumerate(failed):
        with (m.If if i == 0 else m.Elif)(check):
            m.d.comb += code.eq(error)
    return code


def check_command(m: Module, c, beyond, *, requant_unit: bool):
    """The error code of the latched command ``c`` (0 when it is good), in priority order.

    ``beyond`` has a bit per area (A, B, C, C_in): it ends past 4 GiB.
    """
    zero = (c.m == 0) | (c.k == 0) | (c.n == 0)
    large = (c.m > MAX_DIM) | (c.n > MAX_DIM) | (c.k > MAX_DIM)
    no_requant = c.requant & (0 if requant_unit else 1)
    stride = ((c.lda < c.k) | (c.ldb < c.n) | (c.ldc < out_row_bytes(c.requant, c.n))
              | (c.accumulate & (c.ldcin < (c.n << 2))))
    misaligned = ((~c.requant & ((c.c_addr[:2] != 0) | (c.ldc[:2] != 0)))
                  | (c.accumulate & ((c.cin_addr[:2] != 0) | (c.ldcin[:2] != 0))))
    return error_priority(m, zero=zero, large=large, no_requant=no_requant, stride=stride,
                          misaligned=misaligned, out_range=beyond.any())


def fifo_gate(queue, pending):
    """Issue a synchronous read only if its data will find room in ``queue``: the read a cycle
    ago (``pending``) has its entry, and no entry stays empty that a read could fill (an
    entry the gate never let fill would be logic nothing tests)."""
    return queue.level + pending < queue.depth
