"""The serial protocol of the board (accelerator.hw.uart) on the host side: frames, checksums,
error statuses, resynchronisation, and the retrying transport over a software model."""

from __future__ import annotations

import asyncio

import pytest

from accelerator.driver.driver import Accelerator
from accelerator.driver.serial import (
    FramedTransport,
    ProtocolError,
    Request,
    RequestParser,
    Response,
    SerialTransport,
    UartProtocol,
)
from accelerator.driver.transport import Transport, TransportError
from accelerator.hw.uart import (
    OP_READ,
    OP_WRITE,
    STATUS_BAD_CHECKSUM,
    STATUS_BAD_OP,
    STATUS_BUS_ERROR,
    STATUS_OK,
    uart_divisor,
)

P = UartProtocol


def test_request_frames_are_as_documented():
    assert P.encode_read(0x1000_0004) == bytes(
        [0x55, 0x01, 0x04, 0x00, 0x00, 0x10, (0x55 + 1 + 4 + 0x10) & 0xFF])
    frame = P.encode_write(0x0000_0020, 0xDEADBEEF)
    assert frame[:2] == b"\x55\x02" and frame[2:6] == b"\x20\0\0\0"
    assert frame[6:10] == bytes([0xEF, 0xBE, 0xAD, 0xDE])
    assert len(frame) == 11 and frame[-1] == sum(frame[:-1]) % 256
    assert P.checksum(b"\xff\x02") == 1
    with pytest.raises(ValueError):
        P.encode_write(0, 1 << 32)
    with pytest.raises(ValueError):
        P.encode_read(-4)
    with pytest.raises(ValueError):
        P.encode_request(OP_WRITE, 0)
    with pytest.raises(ValueError):
        P.encode_request(OP_READ, 0, 5)


def test_responses_round_trip_and_reject_corruption():
    for status in (STATUS_OK, STATUS_BAD_CHECKSUM, STATUS_BUS_ERROR, STATUS_BAD_OP):
        frame = P.encode_response(status, 0x01020304)
        assert frame[0] == 0xAA and len(frame) == 7 and frame[-1] == sum(frame[:-1]) % 256
        assert P.decode_response(frame) == Response(status, 0x01020304)
    good = P.encode_response(STATUS_OK, 7)
    with pytest.raises(ProtocolError, match="checksum"):
        P.decode_response(good[:-1] + bytes([good[-1] ^ 1]))
    with pytest.raises(ProtocolError, match="starts with"):
        P.decode_response(b"\x55" + good[1:])
    with pytest.raises(ProtocolError, match="7 bytes"):
        P.decode_response(good[:-1])


def test_parser_statuses_and_resync():
    parser = RequestParser()
    read = P.encode_read(0x1000_0003)
    write = P.encode_write(8, 0x11223344)
    assert parser.feed(read) == [(Request(OP_READ, 0x1000_0000), Response(STATUS_OK))]
    assert parser.feed(write) == [(Request(OP_WRITE, 8, 0x11223344), Response(STATUS_OK))]
    bad = read[:-1] + bytes([(read[-1] + 1) & 0xFF])
    assert parser.feed(bad) == [(None, Response(STATUS_BAD_CHECKSUM))]
    bad_op = P.encode_request(0x09, 0)
    assert len(bad_op) == 7 and parser.feed(bad_op) == [(None, Response(STATUS_BAD_OP))]
    # garbage without the header is skipped; a frame follows
    assert parser.feed(b"\x00\xaa\xff" + read) == [(Request(OP_READ, 0x1000_0000),
                                                    Response(STATUS_OK))]
    # a partial frame, dropped by a silence, then a frame
    assert parser.feed(write[:5]) == []
    parser.idle()
    assert parser.feed(read)[0][1].ok
    # a frame split into single bytes
    answers = [a for b in write for a in parser.feed(bytes([b]))]
    assert answers == [(Request(OP_WRITE, 8, 0x11223344), Response(STATUS_OK))]


def test_divisor():
    assert uart_divisor(12e6, 115200) == 104
    assert uart_divisor(100e6, 10e6) == 10
    with pytest.raises(ValueError):
        uart_divisor(1e6, 500e3)      # 2 cycles per bit
    with pytest.raises(ValueError):
        uart_divisor(1e6, 180e3)      # 5.56 cycles per bit: 10 % off


class LoopbackTransport(FramedTransport):
    """The protocol against RequestParser and a dict memory, with injectable faults."""

    def __init__(self, corrupt: int = 0, drop: int = 0):
        self.parser = RequestParser()
        self.memory: dict[int, int] = {}
        self.pending = bytearray()
        self.corrupt, self.drop = corrupt, drop
        self.sent = 0

    async def send(self, data: bytes) -> None:
        self.sent += 1
        if self.drop:
            self.drop -= 1
            return
        if self.corrupt:
            self.corrupt -= 1
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
        for request, response in self.parser.feed(data):
            if request is not None:
                if request.addr >= 0x8000_0000:
                    response = Response(STATUS_BUS_ERROR)
                elif request.op == OP_WRITE:
                    self.memory[request.addr] = request.data
                else:
                    response = Response(STATUS_OK, self.memory.get(request.addr, 0))
            self.pending += b"\x13" + P.encode_response(response.status, response.data)

    async def receive(self, count: int) -> bytes:
        if len(self.pending) < count:
            raise TimeoutError("nothing to receive")
        out, self.pending = bytes(self.pending[:count]), self.pending[count:]
        return out

    async def recover(self) -> None:
        self.parser.idle()
        self.pending.clear()


def test_framed_transport_retries_and_errors():
    async def run():
        t = LoopbackTransport()
        assert isinstance(t, Transport)
        await t.write32(0x40, 0xCAFEF00D)
        assert await t.read32(0x40) == 0xCAFEF00D and t.sent == 2
        with pytest.raises(TransportError, match="SLVERR/DECERR"):
            await t.read32(0x8000_0000)
        t = LoopbackTransport(corrupt=2)   # two bad checksums, then success
        await t.write32(0, 5)
        assert t.sent == 3 and t.memory == {0: 5}
        t = LoopbackTransport(drop=1)      # a lost request: timeout, retry
        assert await t.read32(0) == 0 and t.sent == 2
        t = LoopbackTransport(corrupt=3)
        with pytest.raises(ProtocolError, match="3 attempts"):
            await t.read32(0)
        bad_op = await LoopbackTransport().request(P.encode_request(0x7F, 0))
        assert bad_op.status == STATUS_BAD_OP
        # the driver on top: identification fails cleanly on an empty memory
        with pytest.raises(RuntimeError, match="no accelerator"):
            await Accelerator(LoopbackTransport()).identify()

    asyncio.run(run())


def test_serial_transport_without_pyserial(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "serial":
            raise ImportError("no module named serial")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ImportError, match="pip install pyserial"):
        SerialTransport("/dev/null")
