"""A UART (8N1) and a bridge from a small framed serial protocol to AXI4-Lite master accesses.

The protocol (frames, checksums, status codes, resynchronisation) is described, and its constants
defined, in :mod:`accelerator.model.protocol`, the contract between the board and the host code
(:mod:`accelerator.driver.serial`); the constants are re-exported here.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from ..model.protocol import (
    MIN_DIVISOR,
    OP_READ,
    OP_WRITE,
    REQUEST_HEADER,
    RESPONSE_HEADER,
    RESPONSE_LENGTH,
    STATUS_BAD_CHECKSUM,
    STATUS_BAD_OP,
    STATUS_BUS_ERROR,
    STATUS_OK,
    uart_divisor,
)
from .axil import AXI4LiteSignature, AxiResp

__all__ = [
    "OP_READ",
    "OP_WRITE",
    "REQUEST_HEADER",
    "RESPONSE_HEADER",
    "RESPONSE_LENGTH",
    "STATUS_BAD_CHECKSUM",
    "STATUS_BAD_OP",
    "STATUS_BUS_ERROR",
    "STATUS_OK",
    "UartBridge",
    "UartRx",
    "UartTx",
    "uart_divisor",
]


def _check_divisor(divisor: int) -> None:
    if isinstance(divisor, bool) or not isinstance(divisor, int) or divisor < MIN_DIVISOR:
        raise ValueError(f"divisor = {divisor!r} is out of range (allowed: at least "
                         f"{MIN_DIVISOR})")


class UartRx(wiring.Component):
    """UART receiver, 8N1. ``data`` is valid for one cycle when ``valid`` pulses (no flow control);
    ``error`` pulses instead when the stop bit is low (framing error / break)."""

    rx: In(1, init=1)
    data: Out(8)
    valid: Out(1)
    error: Out(1)

    def __init__(self, divisor: int):
        _check_divisor(divisor)
        self._divisor = divisor
        super().__init__()

    def elaborate(self, platform) -> Module:
        m = Module()
        div = self._divisor
        rx = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, rx, init=1)
        count = Signal(range(div))
        bit = Signal(range(8))
        shreg = Signal(8)
        m.d.sync += [self.valid.eq(0), self.error.eq(0)]
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~rx):
                    m.d.sync += count.eq(div // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(count == 0):
                    with m.If(~rx):
                        m.d.sync += [count.eq(div - 1), bit.eq(0)]
                        m.next = "DATA"
                    with m.Else():  # a glitch, not a start bit
                        m.next = "IDLE"
                with m.Else():
                    m.d.sync += count.eq(count - 1)
            with m.State("DATA"):
                with m.If(count == 0):
                    m.d.sync += [shreg.eq(Cat(shreg[1:], rx)), count.eq(div - 1),
                                 bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
                with m.Else():
                    m.d.sync += count.eq(count - 1)
            with m.State("STOP"):
                with m.If(count == 0):
                    with m.If(rx):
                        m.d.sync += [self.valid.eq(1), self.data.eq(shreg)]
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += self.error.eq(1)
                        m.next = "BREAK"
                with m.Else():
                    m.d.sync += count.eq(count - 1)
            with m.State("BREAK"):  # wait for the line to return to idle
                with m.If(rx):
                    m.next = "IDLE"
        return m


class UartTx(wiring.Component):
    """UART transmitter, 8N1: a byte stream in, the serial line out."""

    data: In(stream.Signature(8))
    tx: Out(1, init=1)

    def __init__(self, divisor: int):
        _check_divisor(divisor)
        self._divisor = divisor
        super().__init__()

    def elaborate(self, platform) -> Module:
        m = Module()
        div = self._divisor
        shreg = Signal(10, init=0x3FF)   # stop bit, 8 data bits, start bit (sent LSB first)
        left = Signal(range(11))
        count = Signal(range(div))
        m.d.comb += [self.tx.eq(shreg[0]), self.data.ready.eq(left == 0)]
        with m.If(self.data.valid & self.data.ready):
            m.d.sync += [shreg.eq(Cat(Const(0, 1), self.data.payload, Const(1, 1))),
                         left.eq(10), count.eq(div - 1)]
        with m.Elif(left != 0):
            with m.If(count == 0):
                m.d.sync += [shreg.eq(Cat(shreg[1:], Const(1, 1))), left.eq(left - 1),
                             count.eq(div - 1)]
            with m.Else():
                m.d.sync += count.eq(count - 1)
        return m


class UartBridge(wiring.Component):
    """The serial protocol of this module's docstring, as an AXI4-Lite master.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (:func:`uart_divisor`).
    timeout_bytes : int
        Silence, in byte times, after which a partial request is dropped.

    Members
    -------
    rx : In(1)
        Serial input (idle high).
    tx : Out(1)
        Serial output (idle high).
    m_axil : In(AXI4LiteSignature(32, 32))
        The master port (the slave's signature flipped).
    busy : Out(1)
        High from a request's header to the end of its response.
    fault : Out(1)
        One-cycle pulse on a bad frame (checksum, op, timeout, UART framing error) or a bus
        error response.
    """

    rx: In(1, init=1)
    tx: Out(1, init=1)
    m_axil: In(AXI4LiteSignature(addr_width=32, data_width=32))
    busy: Out(1)
    fault: Out(1)

    def __init__(self, divisor: int, *, timeout_bytes: int = 4):
        _check_divisor(divisor)
        if isinstance(timeout_bytes, bool) or not isinstance(timeout_bytes, int) \
                or timeout_bytes < 2:
            raise ValueError(f"timeout_bytes = {timeout_bytes!r} is out of range "
                             f"(allowed: at least 2)")
        self._divisor = divisor
        self._timeout = timeout_bytes * 10 * divisor
        super().__init__()

    @property
    def divisor(self) -> int:
        return self._divisor

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.urx = urx = UartRx(self._divisor)
        m.submodules.utx = utx = UartTx(self._divisor)
        m.d.comb += [urx.rx.eq(self.rx), self.tx.eq(utx.tx)]
        bus = self.m_axil

        byte = urx.data
        got = urx.valid
        op = Signal(8)
        addr = Signal(32)
        data = Signal(32)
        csum = Signal(8)
        idx = Signal(range(RESPONSE_LENGTH + 1))
        status = Signal(8)
        silence = Signal(range(self._timeout + 1))
        aw_done, w_done = Signal(), Signal()

        m.d.sync += self.fault.eq(urx.error)
        with m.If(got):
            m.d.sync += silence.eq(0)
        with m.Elif(silence != self._timeout):
            m.d.sync += silence.eq(silence + 1)

        m.d.comb += [
            bus.awaddr.eq(Cat(Const(0, 2), addr[2:])),
            bus.araddr.eq(Cat(Const(0, 2), addr[2:])),
            bus.awprot.eq(0),
            bus.arprot.eq(0),
            bus.wdata.eq(data),
            bus.wstrb.eq(0xF),
        ]

        def respond(code, *, keep_data=False):
            m.d.sync += [status.eq(code), idx.eq(0)]
            if not keep_data:
                m.d.sync += data.eq(0)
            if code != STATUS_OK:
                m.d.sync += self.fault.eq(1)
            m.next = "RESPOND"

        def time_out():
            # a partial request is dropped after `timeout_bytes` byte times of silence
            with m.If(~got & (silence == self._timeout)):
                m.d.sync += self.fault.eq(1)
                m.next = "HUNT"

        with m.FSM():
            with m.State("HUNT"):
                with m.If(got & (byte == REQUEST_HEADER)):
                    m.d.sync += csum.eq(REQUEST_HEADER)
                    m.next = "OP"
            with m.State("OP"):
                m.d.comb += self.busy.eq(1)
                time_out()
                with m.If(got):
                    m.d.sync += [op.eq(byte), csum.eq(csum + byte), idx.eq(0)]
                    m.next = "ADDR"
            with m.State("ADDR"):
                m.d.comb += self.busy.eq(1)
                time_out()
                with m.If(got):
                    m.d.sync += [addr.eq(Cat(addr[8:], byte)), csum.eq(csum + byte),
                                 idx.eq(idx + 1)]
                    with m.If(idx == 3):
                        m.d.sync += idx.eq(0)
                        with m.If(op == OP_WRITE):
                            m.next = "DATA"
                        with m.Else():
                            m.next = "CHECK"
            with m.State("DATA"):
                m.d.comb += self.busy.eq(1)
                time_out()
                with m.If(got):
                    m.d.sync += [data.eq(Cat(data[8:], byte)), csum.eq(csum + byte),
                                 idx.eq(idx + 1)]
                    with m.If(idx == 3):
                        m.next = "CHECK"
            with m.State("CHECK"):
                m.d.comb += self.busy.eq(1)
                time_out()
                with m.If(got):
                    with m.If(byte != csum):
                        respond(STATUS_BAD_CHECKSUM)
                    with m.Elif(op == OP_READ):
                        m.next = "READ"
                    with m.Elif(op == OP_WRITE):
                        m.d.sync += [aw_done.eq(0), w_done.eq(0)]
                        m.next = "WRITE"
                    with m.Else():
                        respond(STATUS_BAD_OP)
            with m.State("READ"):
                m.d.comb += [self.busy.eq(1), bus.arvalid.eq(1), bus.rready.eq(0)]
                with m.If(bus.arready):
                    m.next = "READ_DATA"
            with m.State("READ_DATA"):
                m.d.comb += [self.busy.eq(1), bus.rready.eq(1)]
                with m.If(bus.rvalid):
                    m.d.sync += data.eq(bus.rdata)
                    with m.If(bus.rresp == AxiResp.OKAY):
                        respond(STATUS_OK, keep_data=True)
                    with m.Else():
                        respond(STATUS_BUS_ERROR, keep_data=True)
            with m.State("WRITE"):
                m.d.comb += [self.busy.eq(1), bus.awvalid.eq(~aw_done), bus.wvalid.eq(~w_done),
                             bus.bready.eq(1)]
                with m.If(bus.awready):
                    m.d.sync += aw_done.eq(1)
                with m.If(bus.wready):
                    m.d.sync += w_done.eq(1)
                with m.If(bus.bvalid):
                    with m.If(bus.bresp == AxiResp.OKAY):
                        respond(STATUS_OK)
                    with m.Else():
                        respond(STATUS_BUS_ERROR)
            with m.State("RESPOND"):
                m.d.comb += self.busy.eq(1)
                out = Signal(8)
                with m.Switch(idx):
                    with m.Case(0):
                        m.d.comb += out.eq(RESPONSE_HEADER)
                    with m.Case(1):
                        m.d.comb += out.eq(status)
                    for i in range(4):
                        with m.Case(2 + i):
                            m.d.comb += out.eq(data.word_select(i, 8))
                    with m.Default():
                        m.d.comb += out.eq(csum)
                m.d.comb += [utx.data.payload.eq(out), utx.data.valid.eq(1)]
                with m.If(utx.data.ready):
                    m.d.sync += [idx.eq(idx + 1), csum.eq(Mux(idx == 0, out, csum + out))]
                    with m.If(idx == RESPONSE_LENGTH - 1):
                        m.next = "HUNT"
        return m
