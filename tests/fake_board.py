"""A software board top for the board backend's tests: the register map (ID block of a config),
the board information words and a RAM behind a Transport, the GEMM computed by the reference on
CTRL.start; and :func:`serve_on_pty`, which puts it behind a real serial port (a pty) speaking
the UART bridge's framed protocol."""

from __future__ import annotations

import asyncio
import os
import pty
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from accelerator import AcceleratorConfig
from accelerator.driver.transport import TransportError
from accelerator.hw.board import board_info_addr
from accelerator.hw.registers import field, id_values, offset, register
from accelerator.model import reference
from accelerator.model.reference import RequantParams

RAM_BASE = 0x1000_0000


class FakeBoard:
    """A board top as its transport sees it: the register map (ID block of ``config``), the
    board information words and a RAM; CTRL.start computes the command with the reference and
    sets CYCLES to M·K·N. Unmapped addresses raise TransportError (a DECERR)."""

    def __init__(self, config: AcceleratorConfig, *, ram_bytes: int = 16384):
        self.config = config
        self.regs = {offset(name): value for name, value in id_values(config).items()}
        self.info = {board_info_addr("RAM_BASE"): RAM_BASE,
                     board_info_addr("RAM_BYTES"): ram_bytes}
        self.ram = bytearray(ram_bytes)
        self.commands: list[dict[str, int]] = []
        self.closed = False

    def reg(self, name: str) -> int:
        return self.regs.get(offset(name), 0)

    def matrix(self, addr: int, rows: int, cols: int, ld: int, size: int) -> np.ndarray:
        base = addr - RAM_BASE
        assert base >= 0 and base + (rows - 1) * ld + cols * size <= len(self.ram)
        return np.stack([np.frombuffer(bytes(self.ram[base + r * ld:base + r * ld + cols * size]),
                                       dtype=f"<i{size}") for r in range(rows)]).astype(np.int64)

    def start(self) -> None:
        m, k, n = self.reg("M"), self.reg("K"), self.reg("N")
        mode = register("MODE").decode(self.reg("MODE"))
        size = 1 if self.config.in_width <= 8 else 2
        a = self.matrix(self.reg("A_ADDR"), m, k, self.reg("LDA"), size)
        b = self.matrix(self.reg("B_ADDR"), k, n, self.reg("LDB"), size)
        c_in = (self.matrix(self.reg("CIN_ADDR"), m, n, self.reg("LDCIN"), 4)
                if mode["accumulate"] else None)
        if mode["requant"]:
            zp = register("RQ_ZP").decode(self.reg("RQ_ZP"))["zero_point"]
            rq = RequantParams(self.reg("RQ_MULT"), self.reg("RQ_SHIFT"),
                               zp - 256 if zp > 127 else zp, relu=bool(mode["relu"]))
            c, out = reference.gemm_requant(a, b, c_in, rq, self.config.acc_width), "<i1"
        else:
            c, out = reference.gemm(a, b, c_in, acc_width=self.config.acc_width), "<i4"
        base, ldc = self.reg("C_ADDR") - RAM_BASE, self.reg("LDC")
        for r, row in enumerate(c.astype(out)):
            self.ram[base + r * ldc:base + r * ldc + row.nbytes] = row.tobytes()
        self.commands.append({"m": m, "k": k, "n": n, **mode})
        self.regs[offset("CYCLES")] = m * k * n
        self.regs[offset("STATUS")] = register("STATUS").encode(done=1)

    async def read32(self, addr: int) -> int:
        if RAM_BASE <= addr < RAM_BASE + len(self.ram):
            return int.from_bytes(self.ram[addr - RAM_BASE:addr - RAM_BASE + 4], "little")
        if addr in self.info:
            return self.info[addr]
        if addr < 0x1000:
            return self.regs.get(addr, 0)
        raise TransportError(f"DECERR at {addr:#x}")

    async def write32(self, addr: int, value: int) -> None:
        if RAM_BASE <= addr < RAM_BASE + len(self.ram):
            self.ram[addr - RAM_BASE:addr - RAM_BASE + 4] = value.to_bytes(4, "little")
        elif addr == offset("CTRL"):
            if field("CTRL", "start").extract(value):
                self.start()
        elif addr == offset("STATUS"):
            self.regs[addr] = 0
        elif addr < 0x1000:
            self.regs[addr] = value
        else:
            raise TransportError(f"DECERR at {addr:#x}")

    def close(self) -> None:
        self.closed = True


@contextmanager
def serve_on_pty(board: FakeBoard) -> Iterator[str]:
    """``board`` behind a pty speaking the bridge's framed protocol; yields the port's path.

    On exit the slave is closed first: the master's read then fails (EIO) and the server thread
    returns; the master is closed only after that, so no later test's file can reuse its
    descriptor number while the server still reads from it."""
    from accelerator.driver.serial import RequestParser, Response, UartProtocol
    from accelerator.hw.uart import OP_READ

    master, slave = pty.openpty()

    def serve() -> None:
        parser = RequestParser()
        while True:
            try:
                data = os.read(master, 256)
            except OSError:
                return
            for request, response in parser.feed(data):
                if request is not None:
                    try:
                        if request.op == OP_READ:
                            response = Response(0, asyncio.run(board.read32(request.addr)))
                        else:
                            asyncio.run(board.write32(request.addr, request.data))
                            response = Response(0)
                    except TransportError:
                        response = Response(2)
                os.write(master, UartProtocol.encode_response(response.status, response.data))

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        yield os.ttyname(slave)
    finally:
        os.close(slave)
        server.join(timeout=10)
        # a server still reading keeps its master open: leaked, never handed to another file
        assert not server.is_alive(), "the pty server did not stop"
        os.close(master)
