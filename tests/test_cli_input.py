"""Bad paths and numbers are caught before any long work: one line naming the option, exit 2.

An output path is tried for real (a directory created, a file written and removed in it), so
that a path under a file, in /proc or in a read-only place is refused before a build or a run
starts, not after it.
"""

from __future__ import annotations

import pytest

from accelerator.hw.registers import MAX_DIM

GEMM = ["--m", "4", "--k", "4", "--n", "4"]
ENOENT = "No such file or directory"
ENOTDIR = "Not a directory"


def assert_usage_error(result, line: str) -> None:
    code, out, err = result
    assert "Traceback" not in out + err
    assert err.splitlines() == [line]
    assert code == 2


@pytest.fixture
def here(tmp_path, monkeypatch):
    """A working directory with a regular file ``afile`` in it."""
    (tmp_path / "afile").write_text("")
    monkeypatch.chdir(tmp_path)
    return tmp_path


# -- paths --------------------------------------------------------------------------------------

@pytest.mark.parametrize("junit,line", [
    ("/proc/x.xml", f"--junit /proc/x.xml: cannot write there ({ENOENT})"),
    ("afile/v.xml", f"--junit afile/v.xml: cannot write there ({ENOTDIR})"),
    ("adir", "Invalid value for '--junit': File 'adir' is a directory.")])
def test_verify_junit_is_checked_before_the_run(accel, here, junit, line):
    (here / "adir").mkdir()
    assert_usage_error(accel("verify", "--junit", junit, "--build-root", "b"),
                       f"accel verify: error: {line}")
    assert not (here / "b").exists()  # nothing was built


def test_an_output_file_gets_its_folder_and_no_probe_is_left(tmp_path):
    from accelerator.cli.options import writable_file

    path = tmp_path / "new" / "sub" / "v.xml"
    assert writable_file(path, "--junit") == path
    assert list((tmp_path / "new" / "sub").iterdir()) == []  # the folder, empty; no file yet


@pytest.mark.parametrize("out,line", [
    ("afile/sub", f"--out afile/sub: cannot write there ({ENOTDIR})"),
    ("/proc/x", f"--out /proc/x: cannot write there ({ENOENT})"),
    ("afile", "Invalid value for '-o' / '--out': Directory 'afile' is a file.")])
def test_rtl_out(accel, here, out, line):
    assert_usage_error(accel("rtl", "-o", out), f"accel rtl: error: {line}")


def test_rtl_out_is_made_and_written(accel, here):
    code, _out, err = accel("rtl", "--rows", "2", "--cols", "2", "-o", "new/sub")
    assert (code, err) in ((0, ""), (None, ""))
    assert sorted(p.suffix for p in (here / "new" / "sub").iterdir()) == [".json", ".v"]


@pytest.mark.parametrize("out,reason", [("/proc/x", ENOENT), ("afile/sub", ENOTDIR)])
def test_build_out_is_checked_before_the_build(accel, here, out, reason):
    assert_usage_error(accel("build", "--board", "icebreaker", "--out", out),
                       f"accel build: error: --out {out}: cannot write there ({reason})")


def test_flow_out(accel, here):
    assert_usage_error(accel("flow", "--out", "/proc/x"),
                       f"accel flow: error: --out /proc/x: cannot write there ({ENOENT})")


@pytest.mark.parametrize("command", [["sim", *GEMM], ["verify"]])
def test_sim_and_verify_build_root(accel, here, command):
    assert_usage_error(accel(*command, "--build-root", "afile/b"),
                       f"accel {command[0]}: error: --build-root afile/b: cannot write there "
                       f"({ENOTDIR})")


def test_doctor_build_dir(accel, here):
    assert_usage_error(accel("doctor", "--build-dir", "/proc/x"),
                       f"accel doctor: error: --build-dir /proc/x: cannot write there ({ENOENT})")


@pytest.mark.parametrize("option,value", [("--out", "/proc/x"), ("--out", "afile/s")])
def test_sweep_out(accel, here, option, value):
    reason = ENOENT if value.startswith("/proc") else ENOTDIR
    assert_usage_error(accel("sweep", option, value),
                       f"accel sweep: error: {option} {value}: cannot write there ({reason})")


@pytest.mark.parametrize("fidelity", ["rtl", "synth"])
def test_sweep_build_root_when_it_is_used(accel, here, fidelity):
    assert_usage_error(accel("sweep", "--fidelity", fidelity, "--out", "s", "--build-root",
                             "/proc/x"),
                       f"accel sweep: error: --build-root /proc/x: cannot write there "
                       f"({ENOENT})")


# -- numbers ------------------------------------------------------------------------------------

@pytest.mark.parametrize("dim", ["m", "k", "n"])
@pytest.mark.parametrize("value", ["0", "-1", str(MAX_DIM + 1), "99999999999999999999"])
def test_estimate_dimensions_are_what_the_hardware_takes(accel, dim, value):
    args = {"m": "4", "k": "4", "n": "4", dim: value}
    assert_usage_error(
        accel("estimate", *(x for d in "mkn" for x in (f"--{d}", args[d]))),
        f"accel estimate: error: --{dim} = {value} is out of range (allowed: 1 to 65535)")


def test_estimate_takes_the_largest_dimensions(accel):
    import json

    code, out, _err = accel("estimate", "--m", str(MAX_DIM), "--k", str(MAX_DIM), "--n",
                            str(MAX_DIM), "--json")
    assert code in (0, None)
    assert json.loads(out)["macs"] == MAX_DIM**3


@pytest.mark.parametrize("seed", ["-1", str(2**31)])
@pytest.mark.parametrize("command", [
    ["sim", *GEMM], ["verify"], ["flow"], ["build", "--board", "icebreaker", "--out", "o"],
    ["run", "--port", "/dev/nonexistent-port", *GEMM]])
def test_seeds(accel, here, command, seed):
    assert_usage_error(accel(*command, "--seed", seed),
                       f"accel {command[0]}: error: --seed {seed} is out of range (allowed: 0 "
                       f"to 2147483647)")
    assert not (here / "o").exists()


@pytest.mark.parametrize("gemm,dim,value", [
    ("65536x4x4", "m", "65536"), ("4x99999999999999999999x4", "k", "99999999999999999999")])
def test_sweep_gemm_is_one_hardware_command(accel, here, gemm, dim, value):
    assert_usage_error(accel("sweep", "--gemm", gemm, "--out", "s"),
                       f"accel sweep: error: --gemm {gemm}: {dim} = {value} is out of range "
                       f"(allowed: 1 to 65535)")
    assert not (here / "s").exists()


def test_sim_backpressure_nan(accel, here):
    assert_usage_error(accel("sim", *GEMM, "--backpressure", "nan"),
                       "accel sim: error: --backpressure nan is out of range (allowed: 0 to 0.9)")


@pytest.mark.parametrize("option,value,line", [
    ("--freq", "nan", "--freq nan: out of range (allowed: more than 0 up to 1000 MHz)"),
    ("--jobs", "100000", "--jobs 100000: out of range (allowed: 1 to 1024)")])
def test_sweep_numbers(accel, here, option, value, line):
    assert_usage_error(accel("sweep", option, value, "--out", "s"), f"accel sweep: error: {line}")
    assert not (here / "s").exists()


@pytest.mark.parametrize("option,value,line", [
    ("--freq", "nan", "--freq nan is out of range (allowed: more than 0 up to 1000 MHz)"),
    ("--tolerance", "nan", "--tolerance nan is out of range (allowed: 0 to 100)")])
def test_build_numbers(accel, here, option, value, line):
    assert_usage_error(accel("build", "--board", "icebreaker", option, value, "--out", "o"),
                       f"accel build: error: {line}")
    assert not (here / "o").exists()


# -- widths the systolic core takes and the accelerator does not ---------------------------------

WIDE = {"in_width": ("--in-width", "9", (
            "in_width = 9 is out of range for the accelerator (allowed: up to 8; its memory "
            "holds int8 operands; the systolic core alone takes up to 16)")),
        "acc_width": ("--acc-width", "33", (
            "acc_width = 33 is out of range for the accelerator (allowed: up to 32; its memory "
            "holds int32 accumulators; the systolic core alone takes up to 64)"))}


@pytest.mark.parametrize("width", list(WIDE))
@pytest.mark.parametrize("command,prefix", [
    (["rtl", "--top", "accelerator", "-o", "o"], "--top accelerator: "),
    (["rtl", "--top", "board_top", "-o", "o"], "--top board_top: "),
    (["sim", *GEMM, "--build-root", "o"], ""),
    (["verify", "--build-root", "o"], ""),
    (["flow", "--out", "o"], ""),
    (["build", "--board", "ulx3s-85f", "--top", "board", "--out", "o"], "")])
def test_wide_widths_are_refused_where_the_accelerator_is_built(accel, here, command, prefix,
                                                                width):
    """The engines and the DMA move int8 operands and int32 accumulators: a wider width once
    gave wrong results (1000 · −7 read back as 57768), or a wall of warnings from the
    requantizer; now one line before any work."""
    option, value, line = WIDE[width]
    assert_usage_error(accel(*command, option, value, "--no-requant-unit"),
                       f"accel {command[0]}: error: {prefix}{line}")
    assert not (here / "o").exists() or not any((here / "o").iterdir())


def test_the_requant_unit_and_wide_accumulators_are_one_line(accel, here):
    """acc_width 64 with the default requant_unit: the width's message, no warnings after it."""
    assert_usage_error(accel("rtl", "--top", "accelerator", "--acc-width", "64", "-o", "o"),
                       "accel rtl: error: --top accelerator: " + WIDE["acc_width"][2].replace(
                           "33", "64"))


def test_the_core_takes_the_widest_widths(accel, here):
    code, out, err = accel("rtl", "--top", "systolic_core", "--rows", "2", "--cols", "2",
                           "--in-width", "16", "--acc-width", "64", "-o", "core")
    assert (code, err) in ((0, ""), (None, ""))
    assert out.splitlines()[0].startswith("core/systolic_core.v (")


def test_the_rtl_device_refuses_wide_widths_before_building(tmp_path):
    from accelerator import AcceleratorConfig, connect

    config = AcceleratorConfig(in_width=12, acc_width=40, requant_unit=False)
    with pytest.raises(ValueError, match=r"^connect: in_width = 12 is out of range for the "
                                         r"accelerator \(allowed: up to 8;"):
        connect(config, backend="rtl", build_root=tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("top", ["accelerator", "board"])
def test_the_gateware_refuses_wide_widths_itself(top):
    """For a script that builds the component directly: the same message, and no warning that
    the refused component was never used (warnings are errors here)."""
    import gc

    from accelerator import AcceleratorConfig

    config = AcceleratorConfig(acc_width=48, requant_unit=False)
    if top == "board":
        from accelerator.hw.board import BoardTop as make
        kwargs = {"clk_freq": 12e6}
    else:
        from accelerator.hw.top import Accelerator as make
        kwargs = {}
    with pytest.raises(ValueError, match=r"^acc_width = 48 is out of range for the accelerator"):
        make(config, **kwargs)
    gc.collect()
