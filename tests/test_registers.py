"""The register map as data: offsets, lookups, fields, the ID block and the generated docs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from accelerator.config import AcceleratorConfig
from accelerator.hw.registers import (
    ACCESS,
    ADDR_WIDTH,
    COUNTERS,
    GROUPS,
    ID_BLOCK,
    MAGIC,
    MAP_SIZE,
    REGISTERS,
    ErrorCode,
    Field,
    Register,
    config_from_id,
    element_bytes,
    field,
    id_values,
    offset,
    register,
    version_tuple,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import gen_registers_doc  # noqa: E402

#: The register map as shipped: hardware in the field depends on it, so a change must be
#: deliberate (edit this table too). The one place besides registers.py where offsets appear.
GOLDEN_MAP = {
    "ID": 0x00, "VERSION": 0x04, "CONFIG0": 0x08, "CONFIG1": 0x0C, "DIGEST": 0x10,
    "CTRL": 0x14, "MODE": 0x18, "STATUS": 0x1C,
    "A_ADDR": 0x20, "B_ADDR": 0x24, "C_ADDR": 0x28, "CIN_ADDR": 0x2C,
    "M": 0x30, "K": 0x34, "N": 0x38,
    "LDA": 0x3C, "LDB": 0x40, "LDC": 0x44, "LDCIN": 0x48,
    "RQ_MULT": 0x4C, "RQ_SHIFT": 0x50, "RQ_ZP": 0x54,
    "CYCLES": 0x58, "MAC_CYCLES": 0x5C, "DMA_RD_BYTES": 0x60, "DMA_WR_BYTES": 0x64,
    "STALL_LOAD": 0x68, "STALL_STORE": 0x6C,
}

CONFIGS = [
    AcceleratorConfig(),
    AcceleratorConfig(rows=8, cols=8, dataflow="ws"),
    AcceleratorConfig(rows=1, cols=64, in_width=2, acc_width=8, spad_a_depth=16,
                      spad_b_depth=65536, spad_c_depth=32, axi_data_width=32,
                      requant_unit=False),
    AcceleratorConfig(rows=64, cols=1, dataflow="ws", in_width=16, acc_width=64,
                      spad_a_depth=65536, spad_b_depth=16, spad_c_depth=65536,
                      axi_data_width=256),
    AcceleratorConfig(rows=3, cols=5, in_width=7, acc_width=19, axi_data_width=128),
]


# -- the map ------------------------------------------------------------------------------------


def test_offsets_are_unique_aligned_and_in_order():
    offsets = [r.offset for r in REGISTERS]
    assert offsets == [4 * i for i in range(len(REGISTERS))]
    assert len(set(offsets)) == len(offsets)
    assert 4 * len(REGISTERS) == MAP_SIZE
    assert (MAP_SIZE - 1).bit_length() <= ADDR_WIDTH


def test_map_matches_the_golden_map():
    assert {r.name: r.offset for r in REGISTERS} == GOLDEN_MAP


def test_names_ports_groups_and_access():
    names = [r.name for r in REGISTERS]
    assert len(set(names)) == len(names)
    assert all(name.isupper() for name in names)
    assert len({r.port for r in REGISTERS}) == len(REGISTERS)
    groups = [r.group for r in REGISTERS]
    assert list(dict.fromkeys(groups)) == list(GROUPS), "groups are contiguous, in GROUPS order"
    for reg in REGISTERS:
        assert reg.access in ACCESS
        assert reg.fields, f"{reg.name} has no fields"
        for f in reg.fields:
            assert reg.field_access(f) in ACCESS
            assert 0 <= f.lsb <= f.msb <= 31
    assert ID_BLOCK == ("ID", "VERSION", "CONFIG0", "CONFIG1", "DIGEST")
    assert COUNTERS == ("CYCLES", "MAC_CYCLES", "DMA_RD_BYTES", "DMA_WR_BYTES", "STALL_LOAD",
                        "STALL_STORE")


def test_the_specified_fields():
    def layout(name):
        return {f.name: (f.msb, f.lsb) for f in register(name).fields}

    assert layout("CONFIG0") == {"rows": (7, 0), "cols": (15, 8), "dataflow": (16, 16),
                                 "requant_unit": (17, 17), "compact": (18, 18),
                                 "registered_dsp": (19, 19), "in_width": (28, 24)}
    assert layout("CONFIG1") == {"acc_width": (7, 0), "axi_bytes": (15, 8),
                                 "log2_spad_a_depth": (20, 16), "log2_spad_b_depth": (25, 21),
                                 "log2_spad_c_depth": (30, 26)}
    assert layout("VERSION") == {"patch": (7, 0), "minor": (15, 8), "major": (23, 16)}
    assert layout("CTRL") == {"start": (0, 0), "reset": (1, 1)}
    assert layout("MODE") == {"accumulate": (0, 0), "requant": (1, 1), "relu": (2, 2),
                              "irq_enable": (3, 3)}
    assert layout("STATUS") == {"busy": (0, 0), "done": (1, 1), "error": (10, 8)}
    status = register("STATUS")
    assert [status.field_access(f) for f in status.fields] == ["ro", "w1c", "ro"]
    assert status.accesses == ("ro", "w1c")
    assert register("CTRL").access == "wp"
    assert register("MODE").access == "rw"
    assert {r.name for r in REGISTERS if r.access == "rw"} == {
        "MODE", "A_ADDR", "B_ADDR", "C_ADDR", "CIN_ADDR", "M", "K", "N", "LDA", "LDB", "LDC",
        "LDCIN", "RQ_MULT", "RQ_SHIFT", "RQ_ZP"}
    assert register("RQ_ZP").fields[0].signed


def test_lookups():
    assert register("LDB").offset == offset("LDB") == 0x40
    assert register("LDB").port == "ldb"
    assert field("STATUS", "done") is register("STATUS").field("done")
    # sized by the largest ErrorCode
    assert field("STATUS", "error").bits == f"[{7 + max(ErrorCode).bit_length()}:8]" == "[10:8]"
    assert field("CTRL", "start").bits == "[0]"
    assert field("STATUS", "done").mask == 0x2
    assert register("MODE").mask == 0xF
    with pytest.raises(KeyError, match="no register 'NOPE'"):
        register("NOPE")
    with pytest.raises(KeyError, match="no register 'ldb'"):
        offset("ldb")
    with pytest.raises(KeyError, match="register STATUS has no field 'nope' "
                                       r"\(fields: busy, done, error\)"):
        field("STATUS", "nope")


def test_field_encode_decode():
    zp = field("RQ_ZP", "zero_point")
    assert zp.insert(-1) == 0xFF
    assert zp.insert(-128) == 0x80
    assert zp.extract(0x80) == -128
    assert zp.extract(0x7F) == 127
    with pytest.raises(ValueError, match=r"field zero_point = 128 does not fit \[7:0\] "
                                         r"\(allowed: -128 to 127\)"):
        zp.insert(128)
    with pytest.raises(ValueError, match=r"field error = 8 does not fit \[10:8\]"):
        field("STATUS", "error").insert(8)
    status = register("STATUS")
    word = status.encode(busy=1, error=7)
    assert word == 0x701
    assert status.decode(word) == {"busy": 1, "done": 0, "error": 7}
    assert register("MODE").encode(relu=True, irq_enable=True) == 0b1100


def test_bad_definitions_are_rejected():
    with pytest.raises(ValueError, match="not within a 32-bit register"):
        Field("x", 30, 4, "")
    with pytest.raises(ValueError, match="access 'rx'"):
        Field("x", 0, 1, "", access="rx")
    with pytest.raises(ValueError, match="overlaps"):
        Register("R", 0, "rw", "", (Field("a", 0, 4, ""), Field("b", 3, 2, "")))
    with pytest.raises(ValueError, match="not aligned"):
        Register("R", 2, "rw", "", (Field("a", 0, 4, ""),))
    with pytest.raises(ValueError, match="access 'rwx'"):
        Register("R", 0, "rwx", "", (Field("a", 0, 4, ""),))
    with pytest.raises(ValueError, match="reset value"):
        Register("R", 0, "rw", "", (Field("a", 0, 4, ""),), reset=0x10)


# -- error codes --------------------------------------------------------------------------------


def test_error_codes():
    assert [(c.name, int(c)) for c in ErrorCode] == [
        ("NONE", 0), ("ZERO_DIM", 1), ("MISALIGNED", 2), ("ADDR_RANGE", 3), ("STRIDE", 4),
        ("NO_REQUANT", 5), ("BUS_ERROR", 6), ("TOO_LARGE", 7)]
    for code in ErrorCode:
        assert code.doc and "\n" not in code.doc
    assert ErrorCode(4) is ErrorCode.STRIDE
    assert field("STATUS", "error").width >= max(ErrorCode).bit_length()


# -- the ID block -------------------------------------------------------------------------------


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.name)
def test_id_values_round_trip(config):
    values = id_values(config)
    assert tuple(values) == ID_BLOCK
    assert all(0 <= v < 2**32 for v in values.values())
    assert values["ID"] == MAGIC
    assert values["DIGEST"] == int(config.digest[:8], 16)
    assert config_from_id(values) == config


def test_id_values_bit_positions():
    # Computed by hand from the field table, independently of Register.encode.
    config = AcceleratorConfig(rows=8, cols=4, dataflow="ws", in_width=8, acc_width=32,
                               spad_a_depth=1024, spad_b_depth=2048, spad_c_depth=512,
                               axi_data_width=128, requant_unit=True)
    values = id_values(config, version="1.2.3")
    assert values["ID"] == 0x41434331
    assert values["VERSION"] == 0x010203
    assert values["CONFIG0"] == 8 | 4 << 8 | 1 << 16 | 1 << 17 | 8 << 24
    assert values["CONFIG1"] == 32 | 16 << 8 | 10 << 16 | 11 << 21 | 9 << 26
    registered = id_values(config.replace(registered_dsp=True), version="1.2.3")
    assert registered["CONFIG0"] == values["CONFIG0"] | 1 << 19
    assert config_from_id(registered) == config.replace(registered_dsp=True)


def test_version_tuple():
    assert version_tuple("0.1.0") == (0, 1, 0)
    assert version_tuple("2.10") == (2, 10, 0)
    assert version_tuple("1.2.3rc1+local") == (1, 2, 3)
    assert version_tuple("0.0.0+unknown") == (0, 0, 0)
    assert version_tuple("300.1.1") == (255, 1, 1)
    assert version_tuple("dev") == (0, 0, 0)
    assert version_tuple() == version_tuple(__import__("accelerator").__version__)


def test_config_from_id_rejects_bad_blocks():
    values = id_values(AcceleratorConfig())
    with pytest.raises(ValueError, match=r"ID = 0xdeadbeef is not the accelerator's magic number "
                                         r"0x41434331"):
        config_from_id({**values, "ID": 0xDEADBEEF})
    with pytest.raises(ValueError, match=r"DIGEST = 0x00000000 does not match"):
        config_from_id({**values, "DIGEST": 0})
    with pytest.raises(ValueError, match="ID block incomplete: missing CONFIG1"):
        config_from_id({k: v for k, v in values.items() if k != "CONFIG1"})
    with pytest.raises(ValueError, match="rows = 0 is out of range"):
        config_from_id({**values, "CONFIG0": values["CONFIG0"] & ~0xFF})


def test_element_bytes():
    assert element_bytes(AcceleratorConfig()) == {"a": 1, "b": 1, "c_in": 4, "c": 4, "c_q": 1}
    wide = AcceleratorConfig(in_width=12, acc_width=40)
    assert element_bytes(wide) == {"a": 2, "b": 2, "c_in": 8, "c": 8, "c_q": 1}


# -- the docs -----------------------------------------------------------------------------------


def test_docs_are_not_stale():
    assert not gen_registers_doc.stale(), \
        "docs/registers.md is stale: run python tools/gen_registers_doc.py"


def test_docs_cover_every_register_and_code():
    text = gen_registers_doc.render()
    for reg in REGISTERS:
        assert f"### {reg.name}\n" in text
        assert f"| 0x{reg.offset:02X} | [`{reg.name}`]" in text
    for code in ErrorCode:
        assert f"| {int(code)} | `{code.name}` | {code.doc} |" in text


def test_docs_check_mode(tmp_path):
    path = tmp_path / "registers.md"
    assert gen_registers_doc.stale(path)
    path.write_text(gen_registers_doc.render(), encoding="utf-8")
    assert not gen_registers_doc.stale(path)
    path.write_text(gen_registers_doc.render() + "edited\n", encoding="utf-8")
    assert gen_registers_doc.stale(path)
