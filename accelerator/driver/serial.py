"""The host side of the board's serial protocol (:mod:`accelerator.model.protocol`), on hardware
and in simulation.

:class:`UartProtocol` encodes and decodes frames (pure functions); :class:`RequestParser` is a
software model of the bridge's receiver (resynchronisation included), used by the tests. Two
:class:`~accelerator.driver.transport.Transport` implementations share all the protocol code in
:class:`FramedTransport` and differ only in how bytes move:

* :class:`SerialTransport` — a serial port through pyserial (``pip install pyserial``)::

      acc = Accelerator(SerialTransport("/dev/ttyUSB1", 115200))
      config = await acc.identify()

* :class:`UartSimTransport` — a cocotbext-uart ``UartSource`` / ``UartSink`` pair driving the
  board's ``uart_rx`` / watching its ``uart_tx`` in a cocotb simulation.

Every frame constant comes from :mod:`accelerator.model.protocol`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from ..model.protocol import (
    OP_READ,
    OP_WRITE,
    REQUEST_HEADER,
    RESPONSE_HEADER,
    RESPONSE_LENGTH,
    STATUS_BAD_CHECKSUM,
    STATUS_BAD_OP,
    STATUS_BUS_ERROR,
    STATUS_OK,
)
from .transport import TransportError

__all__ = [
    "STATUS_NAMES",
    "FramedTransport",
    "ProtocolError",
    "Request",
    "RequestParser",
    "Response",
    "SerialTransport",
    "UartProtocol",
    "UartSimTransport",
]

_WORD = 0xFFFF_FFFF

STATUS_NAMES = {
    STATUS_OK: "OK",
    STATUS_BAD_CHECKSUM: "bad checksum",
    STATUS_BUS_ERROR: "bus error (SLVERR/DECERR)",
    STATUS_BAD_OP: "bad op",
}


class ProtocolError(TransportError):
    """A frame was malformed, lost, or rejected by the other end (status 1 or 3)."""


@dataclass(frozen=True)
class Request:
    op: int
    addr: int
    data: int | None = None


@dataclass(frozen=True)
class Response:
    status: int
    data: int = 0

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK


def _check_word(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _WORD:
        raise ValueError(f"{name} = {value!r} is not a 32-bit unsigned integer")
    return value


class UartProtocol:
    """Frame encoding and decoding (see :mod:`accelerator.model.protocol` for the format)."""

    @staticmethod
    def checksum(data: bytes | bytearray) -> int:
        """The sum of the bytes mod 256."""
        return sum(data) & 0xFF

    @staticmethod
    def encode_request(op: int, addr: int, data: int | None = None) -> bytes:
        """A request frame; ``data`` is required for (and only for) write32."""
        if not 0 <= op <= 0xFF:
            raise ValueError(f"op = {op!r} is not a byte")
        body = bytearray([REQUEST_HEADER, op])
        body += _check_word("addr", addr).to_bytes(4, "little")
        if op == OP_WRITE:
            if data is None:
                raise ValueError("a write32 request needs data")
            body += _check_word("data", data).to_bytes(4, "little")
        elif data is not None:
            raise ValueError(f"op {op:#04x} has no data field")
        body.append(UartProtocol.checksum(body))
        return bytes(body)

    @staticmethod
    def encode_read(addr: int) -> bytes:
        return UartProtocol.encode_request(OP_READ, addr)

    @staticmethod
    def encode_write(addr: int, value: int) -> bytes:
        return UartProtocol.encode_request(OP_WRITE, addr, value)

    @staticmethod
    def request_length(op: int) -> int:
        return 11 if op == OP_WRITE else 7

    @staticmethod
    def encode_response(status: int, data: int = 0) -> bytes:
        if not 0 <= status <= 0xFF:
            raise ValueError(f"status = {status!r} is not a byte")
        body = bytearray([RESPONSE_HEADER, status]) + _check_word("data", data).to_bytes(
            4, "little")
        body.append(UartProtocol.checksum(body))
        return bytes(body)

    @staticmethod
    def decode_response(frame: bytes | bytearray) -> Response:
        """A response from exactly 7 bytes; ``ProtocolError`` for a bad header or checksum."""
        frame = bytes(frame)
        if len(frame) != RESPONSE_LENGTH:
            raise ProtocolError(f"a response is {RESPONSE_LENGTH} bytes, got {len(frame)}: "
                                f"{frame.hex(' ')}")
        if frame[0] != RESPONSE_HEADER:
            raise ProtocolError(f"a response starts with {RESPONSE_HEADER:#04x}, got "
                                f"{frame.hex(' ')}")
        if UartProtocol.checksum(frame[:-1]) != frame[-1]:
            raise ProtocolError(f"response checksum mismatch: {frame.hex(' ')} (expected "
                                f"{UartProtocol.checksum(frame[:-1]):#04x})")
        return Response(status=frame[1], data=int.from_bytes(frame[2:6], "little"))


class RequestParser:
    """A software model of the bridge's request receiver: :meth:`feed` bytes, get back what the
    bridge answers. ``idle()`` models a silence of at least the timeout (drops a partial frame).

    Each answer is ``(Request | None, Response)``: the request the bridge would execute (status
    OK or, after the bus access, bus error) or ``None`` with the error response it sends.
    """

    def __init__(self) -> None:
        self._frame = bytearray()

    def idle(self) -> None:
        self._frame.clear()

    def feed(self, data: bytes | bytearray) -> list[tuple[Request | None, Response]]:
        out = []
        for b in data:
            if not self._frame:
                if b == REQUEST_HEADER:
                    self._frame.append(b)
                continue
            self._frame.append(b)
            if len(self._frame) < 2 or len(self._frame) < UartProtocol.request_length(
                    self._frame[1]):
                continue
            frame, self._frame = bytes(self._frame), bytearray()
            op = frame[1]
            if UartProtocol.checksum(frame[:-1]) != frame[-1]:
                out.append((None, Response(STATUS_BAD_CHECKSUM)))
            elif op not in (OP_READ, OP_WRITE):
                out.append((None, Response(STATUS_BAD_OP)))
            else:
                addr = int.from_bytes(frame[2:6], "little") & ~3
                data_ = int.from_bytes(frame[6:10], "little") if op == OP_WRITE else None
                out.append((Request(op, addr, data_), Response(STATUS_OK)))
        return out


class FramedTransport:
    """read32 / write32 over any byte channel: subclasses provide :meth:`send` and
    :meth:`receive`. A response that is lost, garbled or answered "bad checksum" is retried up to
    ``retries`` times (reads and writes are idempotent); a bus error raises
    :class:`~accelerator.driver.transport.TransportError` at once."""

    retries: int = 2

    async def send(self, data: bytes) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    async def receive(self, count: int) -> bytes:
        """Exactly ``count`` bytes, or ``TimeoutError``."""
        raise NotImplementedError  # pragma: no cover - abstract

    async def recover(self) -> None:
        """Called before a retry: wait out the bridge's partial-frame timeout, drop input."""

    async def request(self, frame: bytes) -> Response:
        """Send one raw request frame and return the decoded response (no retries)."""
        await self.send(frame)
        while (await self.receive(1))[0] != RESPONSE_HEADER:
            pass  # resynchronise on the response header
        return UartProtocol.decode_response(bytes([RESPONSE_HEADER]) + await self.receive(
            RESPONSE_LENGTH - 1))

    async def _transact(self, frame: bytes, what: str) -> Response:
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                await self.recover()
            try:
                response = await self.request(frame)
            except (TimeoutError, ProtocolError) as exc:
                last = exc
                continue
            if response.status == STATUS_BAD_CHECKSUM:
                last = ProtocolError(f"{what}: the board saw a bad checksum")
                continue
            if response.status == STATUS_BUS_ERROR:
                raise TransportError(f"{what}: the bus answered SLVERR/DECERR")
            if response.status != STATUS_OK:
                raise ProtocolError(f"{what}: the board answered status {response.status} "
                                    f"({STATUS_NAMES.get(response.status, 'unknown')})")
            return response
        raise ProtocolError(f"{what}: no valid response after {self.retries + 1} attempts "
                            f"({last})")

    async def read32(self, addr: int) -> int:
        response = await self._transact(UartProtocol.encode_read(addr), f"read32({addr:#010x})")
        return response.data

    async def write32(self, addr: int, value: int) -> None:
        await self._transact(UartProtocol.encode_write(addr, value),
                             f"write32({addr:#010x}, {value:#010x})")


class SerialTransport(FramedTransport):
    """The protocol over a serial port (pyserial). The calls block; they are ``async`` only to
    fit the :class:`~accelerator.driver.transport.Transport` protocol."""

    def __init__(self, port: str, baud: int = 115200, *, timeout: float = 0.5,
                 retries: int = 2):
        try:
            import serial  # pyserial
        except ImportError:
            raise ImportError("SerialTransport needs pyserial: pip install pyserial") from None
        self.serial = serial.Serial(port, baudrate=baud, bytesize=8, parity="N", stopbits=1,
                                    timeout=timeout)
        self.retries = retries

    def close(self) -> None:
        self.serial.close()

    async def send(self, data: bytes) -> None:
        self.serial.write(data)
        self.serial.flush()

    async def receive(self, count: int) -> bytes:
        data = self.serial.read(count)
        if len(data) != count:
            raise TimeoutError(f"serial: {len(data)} of {count} bytes before the timeout")
        return bytes(data)

    async def recover(self) -> None:
        # the bridge drops a partial frame after 4 byte times; wait well beyond that
        await asyncio.sleep(max(0.01, 100 * 10 / self.serial.baudrate))
        self.serial.reset_input_buffer()


class UartSimTransport(FramedTransport):
    """The protocol over cocotbext-uart: ``source`` (a ``UartSource`` on the board's rx) and
    ``sink`` (a ``UartSink`` on its tx). ``byte_timeout_ns`` bounds the wait for each response
    byte (for a request, it must cover the request's own transmission and the bus access)."""

    def __init__(self, source: Any, sink: Any, *, byte_timeout_ns: int = 1_000_000,
                 retries: int = 2):
        self.source = source
        self.sink = sink
        self.byte_timeout_ns = byte_timeout_ns
        self.retries = retries

    async def send(self, data: bytes) -> None:
        await self.source.write(data)

    async def receive(self, count: int) -> bytes:
        from cocotb.triggers import with_timeout

        out = bytearray()
        while len(out) < count:
            if self.sink.empty():
                try:
                    await with_timeout(self.sink.wait(), self.byte_timeout_ns, "ns")
                except Exception as exc:  # cocotb's SimTimeoutError
                    if type(exc).__name__ != "SimTimeoutError":
                        raise
                    raise TimeoutError(f"uart: {len(out)} of {count} bytes before the "
                                       f"timeout") from None
            out += self.sink.read_nowait(min(count - len(out), self.sink.count()))
        return bytes(out)

    async def recover(self) -> None:
        from cocotb.triggers import Timer

        await self.source.wait()
        await Timer(100 * 10 * 10**9 // self.source.baud, "ns")
        self.sink.clear()
