"""A GEMM programmed from the documentation alone, through the C++ harness.

Every offset, bit and rule below is read from docs/registers.md (the register map, the field
tables, the programming model) or restated from docs/hardware.md's prose (the requantizer's
steps, the counters' formulas); nothing comes from accelerator.model.regmap or the driver. If
the docs and the hardware drift apart, this test fails where an integrator would.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from accelerator.config import AcceleratorConfig
from accelerator.flow.harness import Harness, build_harness

pytestmark = pytest.mark.verilator

ROOT = Path(__file__).resolve().parents[1]
CONFIG = AcceleratorConfig()  # the default 4×4 (the build test_harness.py shares)


def _registers_doc() -> tuple[dict[str, int], dict[str, dict[str, tuple[int, int]]], int]:
    """Offsets by name, each register's fields (name → (lsb, width)), and ID's magic number."""
    text = (ROOT / "docs" / "registers.md").read_text(encoding="utf-8")
    offsets = {name: int(off, 16) for off, name in
               re.findall(r"^\| (0x[0-9A-F]{2}) \| \[`(\w+)`\]", text, re.MULTILINE)}
    fields: dict[str, dict[str, tuple[int, int]]] = {}
    for name, body in re.findall(r"^### (\w+)\n(.*?)(?=^##)", text, re.MULTILINE | re.DOTALL):
        for hi, lo, field in re.findall(r"^\| \[(\d+)(?::(\d+))?\] \| `(\w+)` \|", body,
                                        re.MULTILINE):
            low = int(lo or hi)
            fields.setdefault(name, {})[field] = (low, int(hi) - low + 1)
    magic = int(re.search(r"`magic` \| ro \| (0x[0-9A-F]{8})", text).group(1), 16)
    return offsets, fields, magic


OFFSETS, FIELDS, MAGIC = _registers_doc()


def _get(name: str, field: str, word: int) -> int:
    lsb, width = FIELDS[name][field]
    return (word >> lsb) & ((1 << width) - 1)


def _bits(name: str, **values: int) -> int:
    word = 0
    for field, value in values.items():
        lsb, width = FIELDS[name][field]
        word |= (value & ((1 << width) - 1)) << lsb
    return word


def _requantize(acc: int, multiplier: int, shift: int, zero_point: int, relu: bool) -> int:
    """docs/hardware.md, "Requantization, exactly", steps 1 to 5, as written there."""
    p = acc * multiplier                                    # 1
    x = (p + 2**30) // 2**31                                # 2: half up
    r = 0 if shift == 0 else (2**(shift - 1) if x >= 0 else 2**(shift - 1) - 1)
    y = (x + r) >> shift                                    # 3: half away from zero
    z = y + zero_point                                      # 4
    return min(max(z, zero_point if relu else -128), 127)   # 5


@pytest.fixture(scope="module")
def harness(build_root):
    with Harness(build_harness(CONFIG, root=build_root)) as h:
        h.reset()
        yield h


def _read(h: Harness, name: str) -> int:
    return h.reg_read(OFFSETS[name])


def _write(h: Harness, name: str, value: int) -> None:
    h.reg_write(OFFSETS[name], value)


def _gemm(h: Harness, rng, m: int, k: int, n: int, *, requant: tuple | None = None,
          operands: int = 128) -> dict:
    """Steps 2 to 9 of docs/registers.md's programming model; the result and the counters."""
    lda, ldb = k + 3, n + 5                   # strides at least the row (LDA, LDB)
    out_bytes = 1 if requant else 4
    ldc = (n * out_bytes + 7) // 4 * 4 + 4    # a multiple of 4 (int32 C), at least the row
    ldcin = 4 * n + 8
    addr = {"A_ADDR": 0x1_0003, "B_ADDR": 0x2_0001, "C_ADDR": 0x3_0000, "CIN_ADDR": 0x4_0000}
    a = rng.integers(-operands, operands, size=(m, k))
    b = rng.integers(-operands, operands, size=(k, n))
    # int32 C_in over its whole range; small before a requantizer, whose outputs would
    # otherwise all saturate
    span = 2 * operands if requant else 2**31
    c_in = rng.integers(-span, span, size=(m, n))
    for r in range(m):
        h.mem_write(addr["A_ADDR"] + r * lda, a[r].astype(np.int8).tobytes())
        h.mem_write(addr["CIN_ADDR"] + r * ldcin, c_in[r].astype("<i4").tobytes())
    for r in range(k):
        h.mem_write(addr["B_ADDR"] + r * ldb, b[r].astype(np.int8).tobytes())

    assert _get("STATUS", "busy", _read(h, "STATUS")) == 0                      # step 2
    for name, value in {**addr, "M": m, "K": k, "N": n, "LDA": lda, "LDB": ldb, "LDC": ldc,
                        "LDCIN": ldcin}.items():                                # step 3
        _write(h, name, value)
    if requant:
        multiplier, shift, zero_point, _relu = requant
        _write(h, "RQ_MULT", multiplier)
        _write(h, "RQ_SHIFT", shift)
        _write(h, "RQ_ZP", zero_point & 0xFF)
    _write(h, "MODE", _bits("MODE", accumulate=1, requant=int(bool(requant)),     # step 4
                            relu=int(bool(requant and _relu)), irq_enable=1))
    _write(h, "CTRL", _bits("CTRL", start=1))                                   # step 5
    for _ in range(100_000):                                                    # step 6
        status = _read(h, "STATUS")
        if _get("STATUS", "done", status):
            break
        h.tick(20)
    assert _get("STATUS", "done", status) == 1 and h.irq
    assert _get("STATUS", "error", status) == 0                                 # step 7
    counters = {name: _read(h, name) for name in ("CYCLES", "MAC_CYCLES", "DMA_RD_BYTES",
                                                  "DMA_WR_BYTES", "STALL_LOAD", "STALL_STORE")}
    _write(h, "STATUS", _bits("STATUS", done=1))                                # step 9
    assert _get("STATUS", "done", _read(h, "STATUS")) == 0 and not h.irq

    # C = C_in + A·B in int32 with two's-complement wrap (docs/registers.md, MODE.accumulate)
    acc = ((c_in + a @ b + 2**31) % 2**32) - 2**31
    dtype = np.int8 if requant else np.dtype("<i4")
    got = np.stack([np.frombuffer(h.mem_read(addr["C_ADDR"] + r * ldc, n * out_bytes), dtype)
                    for r in range(m)]).astype(np.int64)
    want = (np.vectorize(lambda v: _requantize(int(v), *requant))(acc) if requant else acc)
    np.testing.assert_array_equal(got, want)
    if requant:  # the values were not all clamped: the rounding steps were exercised
        assert len(np.unique(want)) > 10
    return counters


def test_id_block_describes_the_hardware(harness):
    assert _read(harness, "ID") == MAGIC
    config0 = _read(harness, "CONFIG0")
    assert (_get("CONFIG0", "rows", config0), _get("CONFIG0", "cols", config0)) == (4, 4)
    assert _get("CONFIG0", "dataflow", config0) == 0  # os
    assert _get("CONFIG0", "requant_unit", config0) == 1
    assert 8 * _get("CONFIG1", "axi_bytes", _read(harness, "CONFIG1")) == 64


@pytest.mark.parametrize("requant,operands", [
    (None, 128), ((1_518_500_250, 8, -3, True), 128), ((1 << 30, 8, 5, False), 128),
    # docs/hardware.md's worked example (scale 0.25, zero point -3): small operands, so that
    # about half the elements are ties in each rounding step
    ((1 << 30, 1, -3, False), 6)], ids=["int32", "relu", "plain", "ties"])
def test_a_gemm_by_the_docs(harness, seed, requant, operands):
    rng = np.random.default_rng(seed)
    rows = cols = 4
    m, k, n = 2 * rows + 3, 13, cols + 1          # edge tiles both ways
    counters = _gemm(harness, rng, m, k, n, requant=requant, operands=operands)
    # docs/hardware.md, "The performance counters"
    assert counters["MAC_CYCLES"] == math.ceil(m / rows) * math.ceil(n / cols) * k  # os
    assert counters["DMA_WR_BYTES"] == m * n * (1 if requant else 4)
    assert counters["STALL_LOAD"] + counters["STALL_STORE"] + counters["MAC_CYCLES"] \
        <= counters["CYCLES"]


def test_abort_by_the_docs(harness, seed):
    """docs/registers.md, "Abort": after CTRL.reset STATUS and the cycle counters read 0, no
    done follows, and the next command is correct."""
    rng = np.random.default_rng(seed)
    _write(harness, "M", 64)
    _write(harness, "K", 64)
    _write(harness, "N", 64)
    for name, value in (("A_ADDR", 0x10_0000), ("B_ADDR", 0x20_0000), ("C_ADDR", 0x30_0000),
                        ("LDA", 64), ("LDB", 64), ("LDC", 256)):
        _write(harness, name, value)
    _write(harness, "MODE", 0)
    _write(harness, "CTRL", _bits("CTRL", start=1))
    harness.tick(300)
    assert _get("STATUS", "busy", _read(harness, "STATUS")) == 1
    _write(harness, "CTRL", _bits("CTRL", reset=1))
    for _ in range(1000):
        if not _get("STATUS", "busy", _read(harness, "STATUS")):
            break
        harness.tick(5)
    harness.tick(100)
    status = _read(harness, "STATUS")
    assert [_get("STATUS", f, status) for f in ("busy", "done", "error")] == [0, 0, 0]
    for name in ("CYCLES", "MAC_CYCLES", "STALL_LOAD", "STALL_STORE"):
        assert _read(harness, name) == 0, name
    _gemm(harness, rng, 5, 7, 6)
