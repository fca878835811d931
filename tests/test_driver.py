"""The host driver against an in-memory fake of the register block and the datapath."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from accelerator.config import AcceleratorConfig
from accelerator.driver.driver import (
    Accelerator,
    AcceleratorError,
    IdentificationError,
)
from accelerator.driver.sim import AxiLiteTransport
from accelerator.driver.transport import Transport, TransportError
from accelerator.hw.registers import (
    COUNTERS,
    REGISTERS,
    ErrorCode,
    field,
    id_values,
    register,
)
from accelerator.model.reference import RequantParams

BASE = 0x4000_0000
COUNTER_VALUES = {"CYCLES": 1000, "MAC_CYCLES": 512, "DMA_RD_BYTES": 384, "DMA_WR_BYTES": 256,
                  "STALL_LOAD": 40, "STALL_STORE": 7}


class FakeHardware:
    """A register block whose datapath finishes ``latency`` STATUS reads after a start.

    Records every access as ``(kind, offset, value)`` with ``kind`` "r" or "w" and ``offset``
    relative to ``base``; an unmapped address raises TransportError like an AXI SLVERR would.
    """

    def __init__(self, config=None, *, base=BASE, error=0, latency=2,
                 never_done=False, busy=False, ids=None):
        self.base = base
        self.error = error
        self.latency = latency
        self.never_done = never_done
        self.values = {r.name: 0 for r in REGISTERS}
        config = AcceleratorConfig() if config is None else config
        self.values.update(id_values(config) if ids is None else ids)
        self.values["STATUS"] = register("STATUS").encode(busy=int(busy))
        self.log: list[tuple[str, int, int]] = []
        self.polls_left = None
        self._names = {r.offset: r.name for r in REGISTERS}

    def _name(self, addr):
        assert addr % 4 == 0, f"unaligned access {addr:#x}"
        try:
            return self._names[addr - self.base]
        except KeyError:
            raise TransportError(f"SLVERR at {addr:#x}") from None

    async def read32(self, addr):
        name = self._name(addr)
        if name == "STATUS" and self.polls_left is not None:
            self.polls_left -= 1
            if self.polls_left == 0 and not self.never_done:
                self.polls_left = None
                self.values.update(COUNTER_VALUES)
                self.values["STATUS"] = register("STATUS").encode(done=1, error=self.error)
        value = 0 if name == "CTRL" else self.values[name]
        self.log.append(("r", addr - self.base, value))
        return value

    async def write32(self, addr, value):
        assert isinstance(value, int) and 0 <= value < 2**32, value
        name = self._name(addr)
        self.log.append(("w", addr - self.base, value))
        reg = register(name)
        if name == "CTRL" and field("CTRL", "start").extract(value):
            self.values["STATUS"] = register("STATUS").encode(busy=1)
            self.values.update(dict.fromkeys(COUNTERS, 0))
            self.polls_left = self.latency
        elif name == "STATUS" and field("STATUS", "done").extract(value):
            self.values["STATUS"] &= ~field("STATUS", "done").mask
        elif reg.access == "rw":
            self.values[name] = value & reg.mask

    def writes(self):
        return [(offset, value) for kind, offset, value in self.log if kind == "w"]


def run(coro):
    return asyncio.run(coro)


GOOD = {"a": 0x1000, "b": 0x2000, "c": 0x3000, "m": 4, "k": 8, "n": 16,
        "lda": 8, "ldb": 16, "ldc": 64}


# -- transport and registers by name --------------------------------------------------------------


def test_fake_is_a_transport():
    assert isinstance(FakeHardware(), Transport)
    assert isinstance(AxiLiteTransport(None), Transport)


def test_read_and_write_by_name():
    hw = FakeHardware()
    acc = Accelerator(hw, base=BASE)

    async def main():
        await acc.write("LDA", 0x1234)
        await acc.write("RQ_ZP", -1)  # two's complement; the register keeps its 8 bits
        assert await acc.read("LDA") == 0x1234
        assert await acc.read("RQ_ZP") == 0xFF
        await acc.write("M", -1)
        assert await acc.read("M") == 0xFFFF_FFFF

    run(main())
    assert hw.writes() == [(0x3C, 0x1234), (0x54, 0xFFFF_FFFF), (0x30, 0xFFFF_FFFF)]
    assert acc.address("STALL_STORE") == BASE + 0x6C


def test_read_and_write_errors():
    acc = Accelerator(FakeHardware(), base=BASE)
    with pytest.raises(ValueError, match=r"^write: register ID is read-only$"):
        run(acc.write("ID", 1))
    with pytest.raises(ValueError, match=r"^write: register CYCLES is read-only$"):
        run(acc.write("CYCLES", 1))
    with pytest.raises(ValueError, match=r"^write: M = 4294967296 does not fit 32 bits "
                                         r"\(allowed: -2\*\*31 to 2\*\*32 - 1\)$"):
        run(acc.write("M", 2**32))
    with pytest.raises(ValueError, match=r"^write: M = 1.5 does not fit 32 bits"):
        run(acc.write("M", 1.5))
    with pytest.raises(KeyError, match="no register 'NOPE'"):
        run(acc.read("NOPE"))
    for base in (2, -4, 2**32, "0"):
        with pytest.raises(ValueError, match="is not a 4-byte aligned 32-bit address"):
            Accelerator(FakeHardware(), base=base)


# -- identify -------------------------------------------------------------------------------------


@pytest.mark.parametrize("config", [AcceleratorConfig(),
                                    AcceleratorConfig(rows=16, cols=2, dataflow="ws",
                                                      requant_unit=False, axi_data_width=256)],
                         ids=lambda c: c.name)
def test_identify(config):
    hw = FakeHardware(config)
    acc = Accelerator(hw, base=BASE)
    assert acc.config is None
    assert run(acc.identify()) == config
    assert acc.config == config
    assert acc.version_matches
    assert hw.log == [("r", off, value) for off, value in
                      zip((0x00, 0x04, 0x08, 0x0C, 0x10), id_values(config).values(), strict=True)]


def test_identify_rejects_a_wrong_magic():
    hw = FakeHardware(ids={"ID": 0xDEADBEEF})
    acc = Accelerator(hw, base=0x1000)
    hw.base = 0x1000
    with pytest.raises(IdentificationError) as info:
        run(acc.identify())
    assert str(info.value) == ('no accelerator at 0x00001000: ID reads 0xdeadbeef, expected '
                               '0x41434331 ("ACC1")')
    assert hw.log == [("r", 0x00, 0xDEADBEEF)]  # stops at the magic
    assert acc.config is None


def test_identify_rejects_a_digest_mismatch():
    ids = {**id_values(AcceleratorConfig()), "DIGEST": 0x12345678}
    acc = Accelerator(FakeHardware(ids=ids), base=BASE)
    with pytest.raises(IdentificationError, match=r"^accelerator at 0x40000000: DIGEST = "
                                                  r"0x12345678 does not match"):
        run(acc.identify())


# -- gemm: the register sequence ------------------------------------------------------------------


def test_gemm_register_sequence():
    hw = FakeHardware(latency=3)
    acc = Accelerator(hw, base=BASE)
    counters = run(acc.gemm(**GOOD))
    assert counters == {"cycles": 1000, "mac_cycles": 512, "dma_rd_bytes": 384,
                        "dma_wr_bytes": 256, "stall_load": 40, "stall_store": 7}
    access = [(kind, off) for kind, off, _ in hw.log]
    # The offsets are written out here on purpose: they are the map the hardware implements.
    assert access == [
        ("r", 0x00), ("r", 0x04), ("r", 0x08), ("r", 0x0C), ("r", 0x10),  # identify (lazily)
        ("r", 0x1C),  # not busy?
        *[("w", off) for off in range(0x20, 0x58, 4)],  # command and requant registers
        ("w", 0x18), ("w", 0x14),  # MODE, CTRL.start
        ("r", 0x1C), ("r", 0x1C), ("r", 0x1C),  # polls until done
        *[("r", off) for off in range(0x58, 0x70, 4)],  # counters
        ("w", 0x1C),  # acknowledge done
    ]
    assert hw.writes() == [
        (0x20, 0x1000), (0x24, 0x2000), (0x28, 0x3000), (0x2C, 0),
        (0x30, 4), (0x34, 8), (0x38, 16),
        (0x3C, 8), (0x40, 16), (0x44, 64), (0x48, 0),
        (0x4C, 0), (0x50, 0), (0x54, 0),
        (0x18, 0b0000), (0x14, 0b01), (0x1C, 0b10),
    ]


def test_gemm_with_accumulate_requant_and_irq():
    hw = FakeHardware()
    acc = Accelerator(hw, base=BASE)
    run(acc.identify())
    hw.log.clear()
    rq = RequantParams(multiplier=1 << 30, shift=3, zero_point=-5, relu=True)
    run(acc.gemm(a=0x1000, b=0x2000, c=0x3001, m=4, k=8, n=16, lda=8, ldb=16, ldc=17,
                 c_in=0x8000, ldcin=64, requant=rq, irq=True))
    writes = dict(hw.writes()[:-3])
    assert writes[0x28] == 0x3001 and writes[0x44] == 17  # int8 C: no alignment needed
    assert writes[0x2C] == 0x8000 and writes[0x48] == 64
    assert writes[0x4C] == 1 << 30 and writes[0x50] == 3 and writes[0x54] == 0xFB
    assert hw.writes()[-3:] == [(0x18, 0b1111), (0x14, 0b01), (0x1C, 0b10)]
    assert hw.log[0] == ("r", 0x1C, 0)  # identified already: no ID reads


def test_gemm_raises_the_hardware_error():
    hw = FakeHardware(error=ErrorCode.ADDR_RANGE)
    acc = Accelerator(hw, base=BASE)
    with pytest.raises(AcceleratorError) as info:
        run(acc.gemm(**GOOD))
    assert info.value.code is ErrorCode.ADDR_RANGE
    assert str(info.value) == ("the accelerator reported error 3 (ADDR_RANGE: a matrix extends "
                               "past the end of the 32-bit address space)")
    assert hw.writes()[-1] == (0x1C, 0b10)  # done is acknowledged even so


def test_unknown_error_code():
    # STATUS.error is as wide as the largest code, so every value it holds is a code; a code
    # outside the enumeration still gets a message
    assert [ErrorCode(v) for v in range(1 << field("STATUS", "error").width)]
    error = AcceleratorError(42)
    assert error.code == 42
    assert str(error) == "the accelerator reported error 42 (unknown code)"


def test_gemm_unchecked_sends_illegal_commands():
    hw = FakeHardware(error=ErrorCode.ZERO_DIM)
    acc = Accelerator(hw, base=BASE)
    with pytest.raises(AcceleratorError) as info:
        run(acc.gemm(**{**GOOD, "m": 0, "lda": -1, "c": 0x3002}, check=False))
    assert info.value.code is ErrorCode.ZERO_DIM
    writes = dict(hw.writes())
    assert writes[0x30] == 0 and writes[0x3C] == 0xFFFF_FFFF and writes[0x28] == 0x3002
    assert ("r", 0x00, id_values(AcceleratorConfig())["ID"]) not in hw.log  # no identify


def test_gemm_timeout():
    hw = FakeHardware(never_done=True)
    acc = Accelerator(hw, base=BASE)
    with pytest.raises(TimeoutError) as info:
        run(acc.gemm(**GOOD, timeout_polls=5))
    assert str(info.value) == "gemm: STATUS.done not set after 5 polls"
    after_start = hw.log[[kind for kind, _, _ in hw.log].index("w") + 16:]
    assert after_start == [("r", 0x1C, 0b01)] * 5


def test_gemm_refuses_to_start_while_busy():
    hw = FakeHardware(busy=True)
    acc = Accelerator(hw, base=BASE)
    with pytest.raises(RuntimeError, match=r"^gemm: the accelerator is busy with an earlier "
                                           r"command \(STATUS.busy = 1\); wait for it or call "
                                           r"abort\(\)$"):
        run(acc.gemm(**GOOD))
    assert hw.writes() == []


def test_status_counters_abort():
    hw = FakeHardware()
    acc = Accelerator(hw, base=BASE)
    hw.values["STATUS"] = register("STATUS").encode(done=1, error=4)
    hw.values.update(COUNTER_VALUES)
    assert run(acc.status()) == {"busy": False, "done": True, "error": ErrorCode.STRIDE}
    hw.values["STATUS"] = 0xFF00  # the bits above the field are not the code's
    assert run(acc.status())["error"] == ErrorCode.TOO_LARGE
    assert run(acc.counters()) == {name.lower(): v for name, v in COUNTER_VALUES.items()}
    run(acc.abort())
    assert hw.writes() == [(0x14, 0b10)]


# -- gemm: argument checks, word for word ---------------------------------------------------------

NO_REQUANT = AcceleratorConfig(requant_unit=False)
WIDE = AcceleratorConfig(in_width=12, acc_width=40)
RQ = RequantParams(multiplier=1 << 30, shift=2)

CASES = [
    # dimensions
    ({"m": 0}, None, "gemm: m = 0 is out of range (allowed: 1 to 65535)"),
    ({"k": -3}, None, "gemm: k = -3 is out of range (allowed: 1 to 65535)"),
    ({"n": 65536}, None, "gemm: n = 65536 is out of range (allowed: 1 to 65535)"),
    ({"m": 2.0}, None, "gemm: m = 2.0 is not an integer (allowed: 1 to 65535)"),
    ({"n": True}, None, "gemm: n = True is not an integer (allowed: 1 to 65535)"),
    # addresses and strides as 32-bit values
    ({"a": -1}, None, "gemm: a = -1 is out of range (allowed: 0 to 0xffffffff)"),
    ({"b": 2**32}, None, "gemm: b = 4294967296 is out of range (allowed: 0 to 0xffffffff)"),
    ({"c": "0x3000"}, None,
     "gemm: c = '0x3000' is not an integer (allowed: 0 to 0xffffffff)"),
    ({"c_in": -4, "ldcin": 64}, None,
     "gemm: c_in = -4 is out of range (allowed: 0 to 0xffffffff)"),
    ({"lda": -8}, None, "gemm: lda = -8 is out of range (allowed: 0 to 0xffffffff)"),
    ({"m": 1, "lda": 2**32}, None,
     "gemm: lda = 4294967296 is out of range (allowed: 0 to 0xffffffff)"),
    # C_in comes with its stride
    ({"c_in": 0x8000}, None,
     "gemm: c_in is given without ldcin (the row stride of C_in in bytes)"),
    ({"ldcin": 64}, None, "gemm: ldcin = 64 is given without c_in"),
    # requant, irq, timeout
    ({"requant": "x"}, None, "gemm: requant = 'x' is not a RequantParams or None"),
    ({"requant": RequantParams(1 << 30, 2, out_width=16)}, None,
     ("gemm: requant.out_width = 16 is not supported "
     "(allowed: 8, the hardware's requantizer emits int8)")),
    ({"requant": RQ}, NO_REQUANT,
     ("gemm: requant is given but the hardware has no requantization unit "
     "(CONFIG0.requant_unit = 0)")),
    ({"irq": 1}, None, "gemm: irq = 1 is not a boolean"),
    ({"check": None}, None, "gemm: check = None is not a boolean"),
    ({"timeout_polls": 0}, None, "gemm: timeout_polls = 0 is out of range (allowed: at least 1)"),
    # strides smaller than the row
    ({"lda": 7}, None,
     "gemm: lda = 7 is smaller than a row of A (allowed: at least k × 1 = 8 bytes)"),
    ({"ldb": 15}, None,
     "gemm: ldb = 15 is smaller than a row of B (allowed: at least n × 1 = 16 bytes)"),
    ({"ldc": 60}, None,
     "gemm: ldc = 60 is smaller than a row of C (allowed: at least n × 4 = 64 bytes)"),
    ({"ldc": 15, "requant": RQ}, None,
     "gemm: ldc = 15 is smaller than a row of C (allowed: at least n × 1 = 16 bytes)"),
    ({"c_in": 0x8000, "ldcin": 60}, None,
     "gemm: ldcin = 60 is smaller than a row of C_in (allowed: at least n × 4 = 64 bytes)"),
    ({"lda": 15}, WIDE,
     "gemm: lda = 15 is smaller than a row of A (allowed: at least k × 2 = 16 bytes)"),
    # int32 C and C_in aligned
    ({"c": 0x3002}, None, "gemm: c = 0x3002 is not a multiple of 4 (C holds int32 elements)"),
    ({"ldc": 66}, None, "gemm: ldc = 66 is not a multiple of 4 (C holds int32 elements)"),
    ({"c_in": 0x8001, "ldcin": 64}, None,
     "gemm: c_in = 0x8001 is not a multiple of 4 (C_in holds int32 elements)"),
    ({"c_in": 0x8000, "ldcin": 65}, None,
     "gemm: ldcin = 65 is not a multiple of 4 (C_in holds int32 elements)"),
    ({"c": 0x3004, "ldc": 128, "lda": 16, "ldb": 32}, WIDE,
     "gemm: c = 0x3004 is not a multiple of 8 (C holds int64 elements)"),
    # matrices within the 32-bit address space
    ({"a": 0xFFFF_FFF1, "m": 2}, None,
     ("gemm: A extends past the 32-bit address space: a + (m - 1) × lda + k × 1 = 0x100000001 "
     "(allowed: at most 0x100000000)")),
    ({"b": 0xFFFF_FF00, "ldb": 64}, None,
     ("gemm: B extends past the 32-bit address space: b + (k - 1) × ldb + n × 1 = 0x1000000d0 "
     "(allowed: at most 0x100000000)")),
    ({"c": 0xFFFF_FF04}, None,
     ("gemm: C extends past the 32-bit address space: c + (m - 1) × ldc + n × 4 = 0x100000004 "
     "(allowed: at most 0x100000000)")),
    ({"c_in": 0xFFFF_FF04, "ldcin": 64}, None,
     ("gemm: C_in extends past the 32-bit address space: c_in + (m - 1) × ldcin + n × 4 = "
     "0x100000004 (allowed: at most 0x100000000)")),
]


@pytest.mark.parametrize("changes, config, message", CASES, ids=[c[2][6:40] for c in CASES])
def test_gemm_argument_checks(changes, config, message):
    hw = FakeHardware(config or AcceleratorConfig())
    acc = Accelerator(hw, base=BASE)
    with pytest.raises(ValueError) as info:
        run(acc.gemm(**{**GOOD, **changes}))
    assert str(info.value) == message
    assert hw.writes() == []
    # Only the ID block may have been read (for the checks that need the config).
    assert {off for _, off, _ in hw.log} <= {0x00, 0x04, 0x08, 0x0C, 0x10}


@pytest.mark.parametrize("changes", [
    {"a": 0xFFFF_FFF0, "m": 2},  # A ends exactly at 2**32
    {"c": 0xFFFF_FF00},  # so does C
    {"m": 65535, "k": 1, "n": 1, "lda": 1, "ldb": 1, "ldc": 4},
    {"m": 1, "lda": 0xFFFF_FFFF},  # a single row: the stride is never used
    {"ldc": 16, "requant": RQ, "c": 0x3003},
    {"c_in": 0x3000, "ldcin": 64},  # C_in may be C
])
def test_gemm_accepts_edge_cases(changes):
    hw = FakeHardware()
    acc = Accelerator(hw, base=BASE)
    run(acc.gemm(**{**GOOD, **changes}))
    assert (0x14, 0b01) in hw.writes()


# -- the cocotbext-axi transport ----------------------------------------------------------------


class FakeMaster:
    """Answers like cocotbext-axi's AxiLiteMaster.read / .write, with a chosen response."""

    def __init__(self, resp=0):
        self.resp = resp
        self.calls = []

    async def read(self, address, length):
        self.calls.append(("read", address, length))
        return SimpleNamespace(address=address, data=bytes([0x78, 0x56, 0x34, 0x12]),
                               resp=self.resp)

    async def write(self, address, data):
        self.calls.append(("write", address, bytes(data)))
        return SimpleNamespace(address=address, length=len(data), resp=self.resp)


def test_axil_transport():
    master = FakeMaster()
    transport = AxiLiteTransport(master)
    assert run(transport.read32(0x1C)) == 0x12345678
    run(transport.write32(0x14, 0x0102_0304))
    assert master.calls == [("read", 0x1C, 4), ("write", 0x14, b"\x04\x03\x02\x01")]


def test_axil_transport_error_responses():
    transport = AxiLiteTransport(FakeMaster(resp=2))
    with pytest.raises(TransportError, match=r"^AXI4-Lite read of 0x00000800 answered SLVERR$"):
        run(transport.read32(0x800))
    with pytest.raises(TransportError, match=r"^AXI4-Lite write of 0x00000001 to 0x00000800 "
                                             r"answered SLVERR$"):
        run(transport.write32(0x800, 1))
