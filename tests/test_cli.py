"""The ``accel`` command line: exit codes, one-line errors (word for word), config options."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from accelerator import __version__
from accelerator.config import FIELDS, AcceleratorConfig, ConfigError

KNOWN = ("rows, cols, dataflow, in_width, acc_width, spad_a_depth, spad_b_depth, spad_c_depth, "
         "axi_data_width, requant_unit, engine, registered_dsp")
GEMM = ["--m", "1", "--k", "1", "--n", "1"]


def assert_usage_error(result, line: str) -> None:
    code, out, err = result
    assert "Traceback" not in out + err
    assert err == line + "\n"
    assert out == ""
    assert code == 2


def write(tmp_path, text: str | bytes, name: str = "cfg.toml"):
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


# -- help and version ---------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help(accel, flag):
    code, out, err = accel(flag)
    assert code == 0
    assert err == ""
    assert out.startswith("Usage: accel ")
    assert "estimate" in out and "doctor" in out


def test_version(accel):
    assert accel("--version") == (0, f"accel, version {__version__}\n", "")


def test_estimate_help_lists_every_config_option(accel):
    code, out, err = accel("estimate", "--help")
    assert (code, err) == (0, "")
    for option in ["--config", *(f.option for f in FIELDS), "--m", "--k", "--n", "--json"]:
        assert option in out
    assert "--no-requant-unit" in out


def test_bare_accel_shows_help_not_a_squeezed_error(accel):
    code, out, err = accel()
    # click >= 8.2 shows the help on stderr with status 2; 8.1 on stdout with status 0.
    assert code in (0, 2)
    assert "Usage: accel " in out + err
    assert "Commands:" in out + err
    assert "error:" not in out + err
    assert len((out + err).splitlines()) > 1


# -- usage errors: one line on stderr, status 2 ---------------------------------------------------


ACC_RULE = "acc_width = 24 is out of range (allowed: 32 to 64, at least twice in_width = 16)"
DEPTH_RULE = "spad_a_depth = 100 is not a power of two (allowed: a power of two from 16 to 65536)"


@pytest.mark.parametrize(
    ("args", "line"),
    [(["--rows", "0", *GEMM], "invalid config: rows = 0 is out of range (allowed: 1 to 64)"),
     (["--cols", "65", *GEMM], "invalid config: cols = 65 is out of range (allowed: 1 to 64)"),
     (["--dataflow", "xy", *GEMM],
      "invalid config: dataflow = 'xy' is not allowed (allowed: os, ws)"),
     (["--in-width", "17", *GEMM],
      "invalid config: in_width = 17 is out of range (allowed: 2 to 16)"),
     (["--in-width", "16", "--acc-width", "24", *GEMM], f"invalid config: {ACC_RULE}"),
     (["--spad-a-depth", "100", *GEMM], f"invalid config: {DEPTH_RULE}"),
     (["--axi-data-width", "48", *GEMM],
      "invalid config: axi_data_width = 48 is not allowed (allowed: 32, 64, 128, 256)"),
     (["--rows", "abc", *GEMM], "Invalid value for '--rows': 'abc' is not a valid integer."),
     (["--rows", "4.5", *GEMM], "Invalid value for '--rows': '4.5' is not a valid integer."),
     (["--m", "0", "--k", "1", "--n", "1"], "--m = 0 is out of range (allowed: 1 to 65535)"),
     (["--m", "1", "--k", "1", "--n", "-3"], "--n = -3 is out of range (allowed: 1 to 65535)"),
     (["--m", "x", "--k", "1", "--n", "1"],
      "Invalid value for '--m': 'x' is not a valid integer."),
     (["--no-requant-unit", "--requant", *GEMM],
      "requant needs hardware generated with requant_unit = true")],
)
def test_estimate_bad_option(accel, args, line):
    assert_usage_error(accel("estimate", *args), f"accel estimate: error: {line}")


def test_estimate_rows_zero_exact(accel):
    assert_usage_error(
        accel("estimate", "--rows", "0", "--m", "1", "--k", "1", "--n", "1"),
        "accel estimate: error: invalid config: rows = 0 is out of range (allowed: 1 to 64)")


@pytest.mark.parametrize(
    ("option", "value"),
    [("--rows", "0"), ("--cols", "100"), ("--dataflow", "WS"), ("--in-width", "1"),
     ("--acc-width", "12"), ("--spad-b-depth", "3000"), ("--spad-c-depth", "8"),
     ("--axi-data-width", "16")],
)
def test_cli_and_python_api_give_the_same_message(accel, option, value):
    field = next(f for f in FIELDS if f.option == option)
    with pytest.raises(ConfigError) as info:
        AcceleratorConfig(**{field.name: field.kind(value)})
    assert_usage_error(accel("estimate", option, value, *GEMM),
                       f"accel estimate: error: invalid config: {info.value}")


@pytest.mark.parametrize(
    ("args", "line"),
    [(["--m", "1", "--k", "1"], "accel estimate: error: Missing option '--n'."),
     (["--m", "1", "--k", "1", "--n", "1", "extra"],
      "accel estimate: error: Got unexpected extra argument (extra)"),
     ],
)
def test_estimate_click_usage_errors(accel, args, line):
    assert_usage_error(accel("estimate", *args), line)


def test_option_missing_its_value_is_one_line(accel):
    # click raises this one without a context, so the prefix is "accel:", not "accel estimate:".
    code, out, err = accel("estimate", "--m", "1", "--k", "1", "--n")
    assert (code, out) == (2, "")
    assert err.endswith(": error: Option '--n' requires an argument.\n")
    assert err.count("\n") == 1


def test_unknown_command(accel):
    assert_usage_error(accel("nosuch"), "accel: error: No such command 'nosuch'.")


def test_unknown_option_is_one_line(accel):
    code, out, err = accel("estimate", "--bogus", *GEMM)
    assert (code, out) == (2, "")
    assert err.startswith("accel estimate: error: No such option '--bogus'")
    assert err.count("\n") == 1


# -- --config FILE errors -------------------------------------------------------------------------


def test_config_file_malformed(accel, tmp_path):
    path = write(tmp_path, "rows = \n")
    assert_usage_error(accel("estimate", "--config", str(path), *GEMM),
                       f"accel estimate: error: invalid config: {path}: invalid TOML: "
                       f"Invalid value (at line 1, column 8)")


def test_config_file_missing(accel, tmp_path):
    path = tmp_path / "missing.toml"
    assert_usage_error(accel("estimate", "--config", str(path), *GEMM),
                       f"accel estimate: error: invalid config: {path}: cannot read: "
                       f"No such file or directory")


def test_config_file_is_a_directory(accel, tmp_path):
    assert_usage_error(accel("estimate", "--config", str(tmp_path), *GEMM),
                       f"accel estimate: error: Invalid value for '--config': "
                       f"File '{tmp_path}' is a directory.")


def test_config_file_unknown_key(accel, tmp_path):
    path = write(tmp_path, "[accelerator]\nbogus = 1\n")
    assert_usage_error(accel("estimate", "--config", str(path), *GEMM),
                       f"accel estimate: error: invalid config: {path}: unknown config field "
                       f"'bogus' (known: {KNOWN})")


def test_config_file_bad_value(accel, tmp_path):
    path = write(tmp_path, 'dataflow = "xy"\n')
    assert_usage_error(accel("estimate", "--config", str(path), *GEMM),
                       f"accel estimate: error: invalid config: {path}: dataflow = 'xy' is not "
                       f"allowed (allowed: os, ws)")


def test_config_file_not_utf8(accel, tmp_path):
    path = write(tmp_path, b"rows = 4 # \xff\n")
    assert_usage_error(accel("estimate", "--config", str(path), *GEMM),
                       f"accel estimate: error: invalid config: {path}: invalid TOML: "
                       f"not UTF-8 (byte 11)")


def test_config_file_field_outside_table(accel, tmp_path):
    path = write(tmp_path, "rows = 8\n[accelerator]\ncols = 2\n")
    assert_usage_error(accel("estimate", "--config", str(path), *GEMM),
                       f"accel estimate: error: invalid config: {path}: config field 'rows' is "
                       f"outside the [accelerator] table")


def test_option_fixes_a_bad_file_value(accel, tmp_path):
    # The file's value is checked as part of the file, before the options are applied.
    path = write(tmp_path, "rows = 0\n")
    assert_usage_error(accel("estimate", "--config", str(path), "--rows", "4", *GEMM),
                       f"accel estimate: error: invalid config: {path}: rows = 0 is out of range "
                       f"(allowed: 1 to 64)")


# -- results --------------------------------------------------------------------------------------


def estimate_json(accel, *args: str) -> dict:
    code, out, err = accel("estimate", *args, "--json")
    assert (code, err) == (0, "")
    return json.loads(out)


def test_estimate_json(accel):
    data = estimate_json(accel, "--m", "64", "--k", "64", "--n", "64")
    assert {"cycles", "utilization", "macs", "bound"} <= set(data)
    assert data["macs"] == 64 ** 3
    assert isinstance(data["cycles"], int) and data["cycles"] >= 64 ** 3 // 16
    assert 0 < data["utilization"] <= 1
    assert data["bound"] in ("compute", "memory")
    assert data["config"] == AcceleratorConfig().to_dict()


def test_options_override_the_config_file(accel, tmp_path):
    path = write(tmp_path, 'rows = 2\ncols = 3\ndataflow = "ws"\nrequant_unit = false\n')
    data = estimate_json(accel, "--config", str(path), "--rows", "8", "--requant-unit", *GEMM)
    assert data["config"] == AcceleratorConfig(rows=8, cols=3, dataflow="ws").to_dict()
    data = estimate_json(accel, "--config", str(path), *GEMM)
    assert data["config"] == AcceleratorConfig(rows=2, cols=3, dataflow="ws",
                                               requant_unit=False).to_dict()


def test_config_file_with_accelerator_table(accel, tmp_path):
    config = AcceleratorConfig(rows=8, cols=2, axi_data_width=128)
    path = write(tmp_path, config.to_toml())
    data = estimate_json(accel, "--config", str(path), "--no-requant-unit", *GEMM)
    assert data["config"] == config.replace(requant_unit=False).to_dict()


def test_accumulate_and_requant_change_traffic(accel):
    dims = ["--m", "16", "--k", "16", "--n", "16"]
    plain = estimate_json(accel, *dims)
    assert estimate_json(accel, *dims, "--accumulate")["read_bytes"] > plain["read_bytes"]
    assert estimate_json(accel, *dims, "--requant")["write_bytes"] < plain["write_bytes"]


def test_estimate_table(accel):
    dims = ["--m", "64", "--k", "64", "--n", "64"]
    cycles = estimate_json(accel, *dims)["cycles"]
    code, out, err = accel("estimate", *dims)
    assert (code, err) == (0, "")
    assert "cycles" in out
    assert "MAC utilization" in out
    assert f"{cycles:,}" in out
    assert "64×64×64 GEMM on 4×4 OS, 64-bit AXI" in out


# -- python -m accelerator --------------------------------------------------------------------


def test_python_dash_m(tmp_path):
    ok = subprocess.run([sys.executable, "-m", "accelerator", "--version"],
                        capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, f"accel, version {__version__}\n", "")
    bad = subprocess.run([sys.executable, "-m", "accelerator", "estimate", "--rows", "0", *GEMM],
                         capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert (bad.returncode, bad.stdout) == (2, "")
    assert bad.stderr == ("accel estimate: error: invalid config: rows = 0 is out of range "
                          "(allowed: 1 to 64)\n")
