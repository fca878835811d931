"""`accel run` end to end through a real serial port (a pty), against a software board.

The board model speaks the bridge's protocol (RequestParser) and answers from the register map's
ID block and a RAM; when software writes CTRL.start it computes the GEMM with the reference model
from the registers, as the hardware would. So this exercises the command, pyserial, the framed
protocol and the driver; the Verilator test of the board top exercises the same host code
against the real gateware.
"""

from __future__ import annotations

import json
import os
import pty
import threading

import numpy as np
import pytest

from accelerator.config import AcceleratorConfig
from accelerator.driver.serial import RequestParser, Response, UartProtocol
from accelerator.hw.board import board_info_addr
from accelerator.hw.registers import id_values, offset, register
from accelerator.hw.uart import OP_READ, STATUS_BUS_ERROR
from accelerator.model import reference

RAM_BASE = 0x1000_0000
RAM_BYTES = 16384


class FakeBoard:
    def __init__(self, config: AcceleratorConfig, *, corrupt: bool = False,
                 ram_bytes: int = RAM_BYTES):
        self.config = config
        self.corrupt = corrupt
        self.regs = {offset(name): value for name, value in id_values(config).items()}
        # the board information words: the host learns the RAM from them
        self.info = {board_info_addr("RAM_BASE"): RAM_BASE,
                     board_info_addr("RAM_BYTES"): ram_bytes}
        self.ram = bytearray(ram_bytes)
        self.master, slave = pty.openpty()
        self.port = os.ttyname(slave)
        self.parser = RequestParser()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def reg(self, name: str) -> int:
        return self.regs.get(offset(name), 0)

    def matrix(self, addr: int, rows: int, cols: int, ld: int, dtype) -> np.ndarray:
        size = np.dtype(dtype).itemsize
        base = addr - RAM_BASE
        return np.stack([np.frombuffer(bytes(self.ram[base + r * ld:base + r * ld + cols * size]),
                                       dtype=dtype) for r in range(rows)]).astype(np.int64)

    def start(self) -> None:
        m, k, n = self.reg("M"), self.reg("K"), self.reg("N")
        a = self.matrix(self.reg("A_ADDR"), m, k, self.reg("LDA"), np.int8)
        b = self.matrix(self.reg("B_ADDR"), k, n, self.reg("LDB"), np.int8)
        c = reference.gemm(a, b)
        if self.corrupt:
            c[0, 0] += 1
        base = self.reg("C_ADDR") - RAM_BASE
        for r, row in enumerate(c.astype("<i4")):
            self.ram[base + r * self.reg("LDC"):base + r * self.reg("LDC") + row.nbytes] = \
                row.tobytes()
        self.regs[offset("CYCLES")] = 1000
        self.regs[offset("STATUS")] = register("STATUS").encode(done=1)

    def access(self, op: int, addr: int, data: int | None) -> Response:
        if RAM_BASE <= addr < RAM_BASE + len(self.ram):
            base = addr - RAM_BASE
            if op == OP_READ:
                return Response(0, int.from_bytes(self.ram[base:base + 4], "little"))
            self.ram[base:base + 4] = data.to_bytes(4, "little")
            return Response(0)
        if addr in self.info:
            return Response(0, self.info[addr]) if op == OP_READ else Response(STATUS_BUS_ERROR)
        if addr < 0x1000:
            if op == OP_READ:
                return Response(0, self.regs.get(addr, 0))
            if addr == offset("CTRL") and data & 1:
                self.start()
            elif addr == offset("STATUS"):
                self.regs[addr] = 0
            else:
                self.regs[addr] = data
            return Response(0)
        return Response(STATUS_BUS_ERROR)

    def serve(self) -> None:
        while True:
            try:
                data = os.read(self.master, 256)
            except OSError:
                return
            for request, response in self.parser.feed(data):
                if request is not None:
                    response = self.access(request.op, request.addr, request.data)
                os.write(self.master, UartProtocol.encode_response(response.status,
                                                                   response.data))


def test_accel_run_passes_on_a_board(accel):
    board = FakeBoard(AcceleratorConfig())
    code, out, err = accel("run", "--port", board.port, "--m", "5", "--k", "7",
                           "--n", "6", "--seed", "3", "--json")
    assert code in (0, None), err
    record = json.loads(out)
    assert record["passed"] is True and record["cycles"] == 1000
    assert (record["m"], record["k"], record["n"]) == (5, 7, 6)


def test_accel_run_reports_a_wrong_result(accel):
    board = FakeBoard(AcceleratorConfig(), corrupt=True)
    code, out, err = accel("run", "--port", board.port, "--m", "3", "--k", "2",
                           "--n", "2")
    assert code == 1
    assert out.startswith("FAIL: 3×2×2")
    assert err.splitlines() == ["accel run: error: 1 of 6 elements differ"]


def test_accel_run_uses_the_ram_the_board_reports(accel):
    small = FakeBoard(AcceleratorConfig(), ram_bytes=4096)
    code, _, err = accel("run", "--port", small.port, "--m", "40", "--k", "40", "--n", "40")
    assert code == 1
    assert "bytes of board RAM, the board has 4096" in err
    big = FakeBoard(AcceleratorConfig(), ram_bytes=131072)
    code, out, err = accel("run", "--port", big.port, "--m", "40", "--k", "40", "--n", "40",
                           "--json")
    assert code in (0, None), err
    record = json.loads(out)
    assert record["passed"] is True and record["ram_bytes"] == 131072


def test_accel_run_refuses_a_board_built_differently(accel):
    board = FakeBoard(AcceleratorConfig(rows=8, cols=8))
    code, _, err = accel("run", "--port", board.port, "--m", "3", "--k", "2",
                         "--n", "2")
    assert code == 1
    assert err.splitlines() == [
        (f"accel run: error: {board.port}: the board holds "
        f"{AcceleratorConfig(rows=8, cols=8).name}, not {AcceleratorConfig().name}: give the "
        "options it was built with")]


@pytest.mark.parametrize("args,message", [
    (["--port", "/dev/null", "--m", "0", "--k", "1", "--n", "1"],
     "accel run: error: --m = 0 is out of range (allowed: 1 to 65535)"),
    (["--port", "/dev/nonexistent-port", "--m", "1", "--k", "1", "--n", "1"],
     ("accel run: error: /dev/nonexistent-port: [Errno 2] could not open port "
     "/dev/nonexistent-port: [Errno 2] No such file or directory: '/dev/nonexistent-port'")),
])
def test_accel_run_bad_input(accel, args, message):
    code, _, err = accel("run", *args)
    assert code in (1, 2)
    assert err.splitlines() == [message]
