"""The host's side of a board, in plain Python: the serial protocol of the board's UART bridge
(:class:`accelerator.hw.uart.UartBridge`) and the board top's host address map
(:class:`accelerator.hw.board.BoardTop`). The host code (:mod:`accelerator.driver.serial`,
:mod:`accelerator.driver.board`) and the gateware both read these constants from here, so the
driver needs no gateware.

Serial line
-----------
8 data bits (LSB first), no parity, 1 stop bit; idle high. The bit time is ``divisor`` clock
cycles, ``divisor = round(clk_freq / baud)`` (:func:`uart_divisor`, at least 4).

Request frame (host → board), all multi-byte fields little-endian::

    0x55  op  addr[0] addr[1] addr[2] addr[3]  [data[0] data[1] data[2] data[3]]  checksum

* ``op`` = ``0x01`` read32 (no data field, 7 bytes) or ``0x02`` write32 (data field, 11 bytes).
  Any other op is taken to have no data field (7 bytes) and is answered with status 3.
* ``addr`` is the byte address on the AXI4-Lite bus; the bridge clears ``addr[1:0]``.
* ``checksum`` = the sum of all the preceding bytes of the frame, header included, mod 256.

Response frame (board → host), always 7 bytes::

    0xAA  status  data[0] data[1] data[2] data[3]  checksum

* ``status``: 0 OK; 1 bad checksum (nothing was accessed); 2 bus error (the slave answered
  SLVERR or DECERR); 3 bad op (nothing was accessed).
* ``data``: the word read (op read32 with status 0 or 2: whatever the slave returned), else 0.
* ``checksum`` as in the request: sum of the 6 preceding bytes mod 256.

One request at a time: the host sends a frame and waits for its response. Bytes that arrive while
the bridge is accessing the bus or sending a response are dropped.

Resynchronisation: between frames the bridge discards every byte until a ``0x55``. If the line
is silent for ``timeout_bytes`` byte times (default 4, i.e. 40 bit times) in the middle of a
frame, the partial frame is dropped (no response) and the bridge hunts for ``0x55`` again. A host
that gets no response (or a response with a bad checksum) should wait at least that long and
then resend; reads and writes are idempotent, so a retry is safe.

The bridge has no timeout on the bus itself: every slave behind it must answer (the board's
address decoder answers DECERR for unmapped addresses).

Host address map: the accelerator's registers at 0 (a window of ``2**ADDR_WIDTH`` bytes), the
board information words right after it (:data:`BOARD_INFO`, read-only), the on-chip RAM at
``ram_base`` (:data:`DEFAULT_RAM_BASE` unless the board top is told otherwise).
"""

from __future__ import annotations

from .regmap import ADDR_WIDTH

__all__ = [
    "BOARD_INFO",
    "BOARD_INFO_BASE",
    "DEFAULT_RAM_BASE",
    "MIN_DIVISOR",
    "OP_READ",
    "OP_WRITE",
    "REGISTER_WINDOW",
    "REQUEST_HEADER",
    "RESPONSE_HEADER",
    "RESPONSE_LENGTH",
    "STATUS_BAD_CHECKSUM",
    "STATUS_BAD_OP",
    "STATUS_BUS_ERROR",
    "STATUS_OK",
    "board_info_addr",
    "uart_divisor",
]

REQUEST_HEADER = 0x55
RESPONSE_HEADER = 0xAA
OP_READ = 0x01
OP_WRITE = 0x02
STATUS_OK = 0
STATUS_BAD_CHECKSUM = 1
STATUS_BUS_ERROR = 2
STATUS_BAD_OP = 3
RESPONSE_LENGTH = 7

#: The smallest bit time in clock cycles the receiver handles.
MIN_DIVISOR = 4


def uart_divisor(clk_freq: float, baud: float) -> int:
    """Clock cycles per bit, ``round(clk_freq / baud)``; raises ``ValueError`` when it is below 4
    or the rounding error exceeds 2 % (a UART tolerates about 4 % in total)."""
    if clk_freq <= 0 or baud <= 0:
        raise ValueError(f"clk_freq = {clk_freq!r} and baud = {baud!r} must be positive")
    divisor = round(clk_freq / baud)
    if divisor < MIN_DIVISOR:
        raise ValueError(f"baud = {baud} is too fast for clk_freq = {clk_freq} "
                         f"(at least {MIN_DIVISOR} clock cycles per bit are needed)")
    error = abs(clk_freq / divisor - baud) / baud
    if error > 0.02:
        raise ValueError(f"baud = {baud} is {100 * error:.1f} % off with clk_freq = {clk_freq} "
                         f"(divisor {divisor}); allowed: 2 %")
    return divisor


#: Where the on-chip RAM sits in the host's and the accelerator's address spaces.
DEFAULT_RAM_BASE = 0x1000_0000
#: The accelerator's register window on the host bus.
REGISTER_WINDOW = 1 << ADDR_WIDTH
#: The board information words, read-only, right after the register window: word ``i`` of
#: :data:`BOARD_INFO` at ``BOARD_INFO_BASE + 4 * i``.
BOARD_INFO_BASE = REGISTER_WINDOW
BOARD_INFO = ("RAM_BASE", "RAM_BYTES")


def board_info_addr(name: str) -> int:
    """The host address of the board information word ``name`` (one of :data:`BOARD_INFO`)."""
    return BOARD_INFO_BASE + 4 * BOARD_INFO.index(name)
