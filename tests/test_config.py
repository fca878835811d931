"""AcceleratorConfig: validation messages (word for word), TOML loading, identity and digest."""

from __future__ import annotations

import contextlib
import dataclasses

import pytest

from accelerator.config import FIELDS, REGISTERED_DSP_LATENCY, AcceleratorConfig, ConfigError

KNOWN = ("rows, cols, dataflow, in_width, acc_width, spad_a_depth, spad_b_depth, spad_c_depth, "
         "axi_data_width, requant_unit, engine, registered_dsp")

#: The digest of the default config. If this changes, every build directory name and cached
#: artifact keyed on it changes too: update it only on purpose.
DEFAULT_DIGEST = "863c488fa2dd"

DEPTH = "a power of two from 16 to 65536"

# (field, bad value, exact message). Every field appears at least once (see test below).
BAD_VALUES = [
    ("rows", 0, "rows = 0 is out of range (allowed: 1 to 64)"),
    ("rows", 65, "rows = 65 is out of range (allowed: 1 to 64)"),
    ("rows", -1, "rows = -1 is out of range (allowed: 1 to 64)"),
    ("rows", "4", "rows = '4' is not an integer (allowed: 1 to 64)"),
    ("rows", 4.0, "rows = 4.0 is not an integer (allowed: 1 to 64)"),
    ("rows", True, "rows = True is not an integer (allowed: 1 to 64)"),
    ("rows", None, "rows = None is not an integer (allowed: 1 to 64)"),
    ("cols", 0, "cols = 0 is out of range (allowed: 1 to 64)"),
    ("cols", 65, "cols = 65 is out of range (allowed: 1 to 64)"),
    ("cols", "x", "cols = 'x' is not an integer (allowed: 1 to 64)"),
    ("dataflow", "xy", "dataflow = 'xy' is not allowed (allowed: os, ws)"),
    ("dataflow", "OS", "dataflow = 'OS' is not allowed (allowed: os, ws)"),
    ("dataflow", "", "dataflow = '' is not allowed (allowed: os, ws)"),
    ("dataflow", 1, "dataflow = 1 is not a string (allowed: os, ws)"),
    ("in_width", 1, "in_width = 1 is out of range (allowed: 2 to 16)"),
    ("in_width", 17, "in_width = 17 is out of range (allowed: 2 to 16)"),
    ("in_width", 8.5, "in_width = 8.5 is not an integer (allowed: 2 to 16)"),
    ("acc_width", 7, "acc_width = 7 is out of range (allowed: 8 to 64)"),
    ("acc_width", 65, "acc_width = 65 is out of range (allowed: 8 to 64)"),
    ("acc_width", False, "acc_width = False is not an integer (allowed: 8 to 64)"),
    ("spad_a_depth", 100, f"spad_a_depth = 100 is not a power of two (allowed: {DEPTH})"),
    ("spad_a_depth", 8, f"spad_a_depth = 8 is out of range (allowed: {DEPTH})"),
    ("spad_a_depth", 131072, f"spad_a_depth = 131072 is out of range (allowed: {DEPTH})"),
    ("spad_b_depth", 1000, f"spad_b_depth = 1000 is not a power of two (allowed: {DEPTH})"),
    ("spad_b_depth", 0, f"spad_b_depth = 0 is out of range (allowed: {DEPTH})"),
    ("spad_c_depth", 48, f"spad_c_depth = 48 is not a power of two (allowed: {DEPTH})"),
    ("spad_c_depth", "1024", f"spad_c_depth = '1024' is not an integer (allowed: {DEPTH})"),
    ("axi_data_width", 48, "axi_data_width = 48 is not allowed (allowed: 32, 64, 128, 256)"),
    ("axi_data_width", 512, "axi_data_width = 512 is not allowed (allowed: 32, 64, 128, 256)"),
    ("axi_data_width", "64",
     "axi_data_width = '64' is not an integer (allowed: 32, 64, 128, 256)"),
    ("requant_unit", 1, "requant_unit = 1 is not a boolean (allowed: true, false)"),
    ("requant_unit", 0, "requant_unit = 0 is not a boolean (allowed: true, false)"),
    ("requant_unit", "true", "requant_unit = 'true' is not a boolean (allowed: true, false)"),
    ("engine", "tiny", "engine = 'tiny' is not allowed (allowed: pipelined, compact)"),
    ("requant_unit", None, "requant_unit = None is not a boolean (allowed: true, false)"),
    ("registered_dsp", 1, "registered_dsp = 1 is not a boolean (allowed: true, false)"),
    ("registered_dsp", "on", "registered_dsp = 'on' is not a boolean (allowed: true, false)"),
]

# A valid value different from the default, for every field.
OTHER_VALUES = {
    "rows": 8, "cols": 2, "dataflow": "ws", "in_width": 4, "acc_width": 24,
    "spad_a_depth": 16, "spad_b_depth": 65536, "spad_c_depth": 2048, "axi_data_width": 128,
    "requant_unit": False, "registered_dsp": True,
}


@contextlib.contextmanager
def raises(message: str, field: str | None):
    """Like ``pytest.raises(ConfigError)``, also checking the whole message and ``.field``."""
    with pytest.raises(ConfigError) as info:
        yield info
    assert str(info.value) == message
    assert "\n" not in str(info.value)
    assert info.value.field == field


def write(tmp_path, text: str | bytes, name: str = "cfg.toml"):
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


# -- defaults and field checks ------------------------------------------------------------------


def test_defaults_are_valid_and_match_fields():
    config = AcceleratorConfig()
    assert config.to_dict() == {f.name: f.default for f in FIELDS}
    assert [f.name for f in dataclasses.fields(AcceleratorConfig)] == [f.name for f in FIELDS]
    for field in FIELDS:
        assert field.check(field.default) == field.default


def test_every_field_has_bad_value_cases():
    assert {name for name, _, _ in BAD_VALUES} == {f.name for f in FIELDS}
    # engine's other value needs other fields changed too: test_compact_engine_limits
    assert set(OTHER_VALUES) == {f.name for f in FIELDS} - {"engine"}


@pytest.mark.parametrize(("field", "value", "message"), BAD_VALUES)
def test_bad_value_message(field, value, message):
    with raises(message, field):
        AcceleratorConfig(**{field: value})


@pytest.mark.parametrize(("field", "value", "message"), BAD_VALUES)
def test_bad_value_through_from_dict_and_replace(field, value, message):
    with raises(message, field):
        AcceleratorConfig.from_dict({field: value})
    with raises(message, field):
        AcceleratorConfig().replace(**{field: value})


@pytest.mark.parametrize(
    ("field", "value"),
    [("rows", 1), ("rows", 64), ("cols", 1), ("cols", 64), ("in_width", 2), ("in_width", 16),
     ("acc_width", 16), ("acc_width", 64), ("spad_a_depth", 16), ("spad_a_depth", 65536),
     ("spad_c_depth", 32), ("axi_data_width", 32), ("axi_data_width", 256),
     ("dataflow", "ws"), ("requant_unit", False)],
)
def test_boundary_values_are_accepted(field, value):
    assert getattr(AcceleratorConfig(**{field: value}), field) == value


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


def test_first_bad_field_in_field_order_is_reported():
    with raises("rows = 0 is out of range (allowed: 1 to 64)", "rows"):
        AcceleratorConfig(dataflow="xy", rows=0)


def test_acc_width_must_be_twice_in_width():
    with raises("acc_width = 15 is out of range (allowed: 16 to 64, at least twice in_width = 8)",
                "acc_width"):
        AcceleratorConfig(acc_width=15)
    with raises("acc_width = 31 is out of range "
                "(allowed: 32 to 64, at least twice in_width = 16)", "acc_width"):
        AcceleratorConfig(in_width=16, acc_width=31)
    assert AcceleratorConfig(in_width=8, acc_width=16).acc_width == 16
    assert AcceleratorConfig(in_width=16, acc_width=32).in_width == 16
    # Raising in_width alone past acc_width / 2 is reported on acc_width.
    with raises("acc_width = 24 is out of range (allowed: 32 to 64, at least twice in_width = 16)",
                "acc_width"):
        AcceleratorConfig(acc_width=24).replace(in_width=16)


def test_compact_engine_limits():
    compact = {"engine": "compact", "requant_unit": False}
    for changes, field, message in [
        ({"dataflow": "ws"}, "dataflow",
         "dataflow = 'ws' is not allowed with engine = 'compact' (allowed: os)"),
        ({"in_width": 9, "acc_width": 32}, "in_width",
         "in_width = 9 is not allowed with engine = 'compact' (allowed: 2 to 8)"),
        ({"acc_width": 33}, "acc_width",
         "acc_width = 33 is not allowed with engine = 'compact' (allowed: up to 32)"),
        ({"requant_unit": True}, "requant_unit",
         "requant_unit = True is not allowed with engine = 'compact' (allowed: false)"),
        ({"registered_dsp": True}, "registered_dsp",
         "registered_dsp = True is not allowed with engine = 'compact' (allowed: false)"),
    ]:
        with raises(message, field):
            AcceleratorConfig(**{**compact, **changes})
    assert AcceleratorConfig(**compact, in_width=6, acc_width=20).engine == "compact"


def test_registered_dsp_enters_the_digest_only_when_on_and_sets_the_latency():
    assert AcceleratorConfig(registered_dsp=False).digest == DEFAULT_DIGEST
    registered = AcceleratorConfig(registered_dsp=True)
    assert registered.digest != DEFAULT_DIGEST
    assert AcceleratorConfig().product_latency == 0
    assert registered.product_latency == REGISTERED_DSP_LATENCY == 3


def test_engine_enters_the_digest_only_when_not_the_default():
    # configs hashed before the field existed keep their digests (baselines, build caches)
    assert AcceleratorConfig(engine="pipelined").digest == DEFAULT_DIGEST
    compact = AcceleratorConfig(engine="compact", requant_unit=False)
    assert compact.digest != AcceleratorConfig(requant_unit=False).digest
    assert compact.to_dict()["engine"] == "compact"


def test_option_names():
    assert [f.option for f in FIELDS][:3] == ["--rows", "--cols", "--dataflow"]
    assert {f.name: f.option for f in FIELDS}["spad_a_depth"] == "--spad-a-depth"


def test_derived_quantities():
    config = AcceleratorConfig(rows=8, cols=2, in_width=4, acc_width=16, axi_data_width=128)
    assert (config.pes, config.in_min, config.in_max, config.axi_bytes) == (16, -8, 7, 16)


# -- TOML -----------------------------------------------------------------------------------------


def test_toml_top_level_keys(tmp_path):
    path = write(tmp_path, 'rows = 8\ndataflow = "ws"\nrequant_unit = false\n')
    assert AcceleratorConfig.from_toml(path) == AcceleratorConfig(rows=8, dataflow="ws",
                                                                  requant_unit=False)


def test_toml_accelerator_table(tmp_path):
    path = write(tmp_path, "[accelerator]\ncols = 2\nspad_b_depth = 2048\n")
    assert AcceleratorConfig.from_toml(str(path)) == AcceleratorConfig(cols=2, spad_b_depth=2048)


def test_toml_other_tables_next_to_accelerator_table_are_ignored(tmp_path):
    path = write(tmp_path, '[board]\nname = "icebreaker"\n\n[accelerator]\nrows = 2\n')
    assert AcceleratorConfig.from_toml(path) == AcceleratorConfig(rows=2)


def test_toml_empty_file_gives_defaults(tmp_path):
    assert AcceleratorConfig.from_toml(write(tmp_path, "")) == AcceleratorConfig()


def test_toml_field_outside_accelerator_table(tmp_path):
    path = write(tmp_path, "rows = 8\n[accelerator]\ncols = 2\n")
    with raises(f"{path}: config field 'rows' is outside the [accelerator] table", "rows"):
        AcceleratorConfig.from_toml(path)


@pytest.mark.parametrize("text", ["bogus = 1\n", "[accelerator]\nrows = 2\nbogus = 1\n"])
def test_toml_unknown_key(tmp_path, text):
    path = write(tmp_path, text)
    with raises(f"{path}: unknown config field 'bogus' (known: {KNOWN})", "bogus"):
        AcceleratorConfig.from_toml(path)


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [("rows = 0\n", "rows", "rows = 0 is out of range (allowed: 1 to 64)"),
     ('rows = "4"\n', "rows", "rows = '4' is not an integer (allowed: 1 to 64)"),
     ("rows = true\n", "rows", "rows = True is not an integer (allowed: 1 to 64)"),
     ("requant_unit = 1\n", "requant_unit",
      "requant_unit = 1 is not a boolean (allowed: true, false)"),
     ('[accelerator]\ndataflow = "xy"\n', "dataflow",
      "dataflow = 'xy' is not allowed (allowed: os, ws)")],
)
def test_toml_bad_value_names_file_and_field(tmp_path, text, field, message):
    path = write(tmp_path, text)
    with raises(f"{path}: {message}", field):
        AcceleratorConfig.from_toml(path)


@pytest.mark.parametrize("text", ["rows = \n", "rows = 4\nrows = 5\n", "[accelerator\n",
                                  'dataflow = "os\n'])
def test_toml_malformed(tmp_path, text):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        AcceleratorConfig.from_toml(path)
    message = str(info.value)
    assert message.startswith(f"{path}: invalid TOML: ")
    assert "\n" not in message
    assert "(at line " in message
    assert info.value.field is None


def test_toml_malformed_exact(tmp_path):
    path = write(tmp_path, "rows = \n")
    with raises(f"{path}: invalid TOML: Invalid value (at line 1, column 8)", None):
        AcceleratorConfig.from_toml(path)


def test_toml_not_utf8(tmp_path):
    path = write(tmp_path, b"\xff\xfe rows = 4\n")
    with raises(f"{path}: invalid TOML: not UTF-8 (byte 0)", None):
        AcceleratorConfig.from_toml(path)


def test_toml_missing_file(tmp_path):
    path = tmp_path / "missing.toml"
    with raises(f"{path}: cannot read: No such file or directory", None):
        AcceleratorConfig.from_toml(path)


def test_toml_directory(tmp_path):
    with raises(f"{tmp_path}: cannot read: Is a directory", None):
        AcceleratorConfig.from_toml(tmp_path)


def test_from_dict_unknown_key_without_source():
    with raises(f"unknown config field 'row' (known: {KNOWN})", "row"):
        AcceleratorConfig.from_dict({"row": 4})


@pytest.mark.parametrize("changes", [{}, OTHER_VALUES, {"dataflow": "ws", "requant_unit": False},
                                     {"in_width": 16, "acc_width": 64}])
def test_to_toml_round_trips(tmp_path, changes):
    config = AcceleratorConfig(**changes)
    text = config.to_toml()
    assert text.startswith("[accelerator]\n")
    assert AcceleratorConfig.from_toml(write(tmp_path, text)) == config


def test_to_toml_default_text():
    assert AcceleratorConfig().to_toml() == (
        "[accelerator]\n"
        "rows = 4\n"
        "cols = 4\n"
        'dataflow = "os"\n'
        "in_width = 8\n"
        "acc_width = 32\n"
        "spad_a_depth = 1024\n"
        "spad_b_depth = 1024\n"
        "spad_c_depth = 1024\n"
        "axi_data_width = 64\n"
        "requant_unit = true\n"
        'engine = "pipelined"\n'
        "registered_dsp = false\n"
    )


# -- replace, identity, digest ----------------------------------------------------------------


def test_replace_returns_a_validated_copy():
    config = AcceleratorConfig()
    changed = config.replace(rows=8, dataflow="ws")
    assert (changed.rows, changed.dataflow, changed.cols) == (8, "ws", 4)
    assert (config.rows, config.dataflow) == (4, "os")
    with raises("rows = 0 is out of range (allowed: 1 to 64)", "rows"):
        config.replace(rows=0)


def test_frozen():
    config = AcceleratorConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.rows = 8  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del config.dataflow  # type: ignore[misc]
    assert config.rows == 4


def test_hashable_and_equal_by_value():
    a, b = AcceleratorConfig(rows=8), AcceleratorConfig().replace(rows=8)
    assert a == b and a is not b
    assert hash(a) == hash(b)
    assert len({a, b, AcceleratorConfig()}) == 2
    assert {a: "x"}[b] == "x"


def test_default_digest_is_pinned():
    config = AcceleratorConfig()
    assert config.digest == DEFAULT_DIGEST
    assert config.name == f"os_4x4_{DEFAULT_DIGEST}"


def test_equal_configs_have_equal_digests():
    a = AcceleratorConfig(rows=8, dataflow="ws")
    b = AcceleratorConfig.from_dict({"dataflow": "ws", "rows": 8})
    assert a.digest == b.digest
    assert AcceleratorConfig().digest == AcceleratorConfig.from_dict({}).digest
    assert len(a.digest) == 12
    assert all(c in "0123456789abcdef" for c in a.digest)


def test_different_configs_have_different_digests():
    configs = [AcceleratorConfig()] + [AcceleratorConfig(**{k: v})
                                       for k, v in OTHER_VALUES.items()]
    configs.append(AcceleratorConfig(**OTHER_VALUES))
    configs.append(AcceleratorConfig(engine="compact", requant_unit=False))
    assert len({c.digest for c in configs}) == len(configs)
    assert len({c.name for c in configs}) == len(configs)
