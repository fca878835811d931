"""The documentation's promises: every ``accel`` command it shows parses; the numbers and
rules of docs/hardware.md and docs/interface.md hold for the reference model and the gateware.
"""

from __future__ import annotations

import json
import math
import re
import shlex
import sys
from fractions import Fraction
from pathlib import Path

import click
import numpy as np
import pytest

from accelerator.cli import cli
from accelerator.config import FIELDS, AcceleratorConfig
from accelerator.model import reference
from accelerator.model.geometry import Geometry

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def documented_commands(path: Path) -> list[tuple[int, str]]:
    """``(line, command)`` for every ``accel ...`` line of a code block (indented by four
    spaces or fenced), continuation lines joined, comments cut. A line with ``...`` or a
    template (``${{ }}``) elides arguments on purpose and is left out, and so is a message a
    command prints (``accel infer: error: ...``)."""
    commands: list[tuple[int, str]] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    fenced = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("```"):
            fenced = not fenced
        in_block = fenced or line.startswith("    ")
        # a shell line may chain commands (`pip install . && accel flow`)
        match = re.search(r"(?:^|&&\s*)(accel\s(?![\w-]+:\s).*)$", line.strip()) \
            if in_block else None
        start = i
        if match:
            text = match.group(1)
            while text.rstrip().endswith("\\") and i + 1 < len(lines):
                i += 1
                text = text.rstrip()[:-1] + " " + lines[i].strip()
            text = re.sub(r"\s#.*$", "", text)
            if "..." not in text and "${{" not in text:
                commands.append((start + 1, text))
        i += 1
    return commands


def parse(command: str) -> None:
    """Parse ``command`` as ``accel`` would, without running it: click checks the options
    (unknown, missing, wrong type or choice), then the config fields build a config (bad values
    are caught as the command would catch them). Raises on any error."""
    name, *args = shlex.split(command)[1:]
    sub = cli.commands.get(name)
    if sub is None:
        raise click.UsageError(f"no such command {name!r}")
    with click.Context(cli, info_name="accel") as parent, \
            sub.make_context(name, args, parent=parent) as ctx:
        fields = {f.name: ctx.params[f.name] for f in FIELDS
                  if ctx.params.get(f.name) is not None}
        if fields:
            AcceleratorConfig().replace(**fields)


def inline_commands(path: Path) -> list[tuple[int, str]]:
    """``(line, command)`` for every complete ``accel ...`` command in inline code (backticks,
    possibly across a line break): two options or more, no placeholder (``[...]``, ``...``, a
    capital-letter argument such as ``--seed N``). A name alone (`accel sim`) is prose."""
    text = path.read_text(encoding="utf-8")
    commands = []
    for match in re.finditer(r"`(accel [^`]+)`", text):
        command = " ".join(match.group(1).split())
        if (command.count("--") >= 2 and not re.search(r"\[|\.\.\.|\s[A-Z]+(\s|$)", command)
                and "--help" not in command):
            commands.append((text[:match.start()].count("\n") + 1, command))
    return commands


COMMANDS = [pytest.param(cmd, id=f"{path.name}:{line}")
            for path in DOCS for line, cmd in documented_commands(path)]
INLINE = [pytest.param(cmd, id=f"{path.name}:{line}")
          for path in DOCS for line, cmd in inline_commands(path)]


def test_the_docs_show_commands():
    names = {cmd.split()[1] for cmd in (p.values[0] for p in COMMANDS)}
    # every command of the CLI appears at least once in README.md or docs/
    assert names >= {"doctor", "sim", "verify", "build", "run", "estimate", "rtl", "sweep",
                     "flow"} & set(cli.commands), names


@pytest.mark.parametrize("command", COMMANDS + INLINE)
def test_documented_command_parses(command):
    parse(command)


def test_inline_commands_are_found():
    found = {cmd for p in INLINE for cmd in p.values}
    assert ("accel build --board orangecrab-25f --top board --freq 100 --allow-timing-fail "
            "--out dist/oc25") in found
    assert not any("[" in cmd or " N" in cmd for cmd in found)


@pytest.mark.parametrize("command,error", [
    ("accel build --board icebreaker --rows 2", click.MissingParameter),  # no --out
    ("accel rtl --rows 2 -o out --no-such-option", click.NoSuchOption),
    ("accel estimate --rows two --m 1 --k 1 --n 1", click.BadParameter),
    ("accel nosuchcommand --rows 2", click.UsageError),
])
def test_parse_rejects_what_would_fail(command, error):
    """The check above would catch a broken command."""
    with pytest.raises(error):
        parse(command)


def test_parse_rejects_a_bad_config_value():
    from accelerator.config import ConfigError
    with pytest.raises(ConfigError):
        parse("accel estimate --rows 0 --m 1 --k 1 --n 1")


# -- docs/interface.md: generated, and its TOML example loads -----------------------------------

sys.path.insert(0, str(ROOT / "tools"))
import gen_interface_doc  # noqa: E402


def test_interface_doc_is_not_stale():
    assert not gen_interface_doc.stale(), \
        "docs/interface.md is stale: run python tools/gen_interface_doc.py"


def test_interface_doc_stale_detects_an_edit(tmp_path):
    path = tmp_path / "interface.md"
    assert gen_interface_doc.stale(path)
    path.write_text(gen_interface_doc.render(), encoding="utf-8")
    assert not gen_interface_doc.stale(path)
    path.write_text(gen_interface_doc.render().replace("| 32 |", "| 31 |", 1), encoding="utf-8")
    assert gen_interface_doc.stale(path)


def test_interface_doc_lists_every_port_of_the_manifest(tmp_path):
    from accelerator.flow.rtl import ACCEL_TOP, emit
    _, manifest = emit(AcceleratorConfig(), tmp_path, top=ACCEL_TOP)
    text = (ROOT / "docs" / "interface.md").read_text(encoding="utf-8")
    documented = re.findall(r"^\| `([a-z_]+)` \| (input|output) \| ", text, re.MULTILINE)
    ports = json.loads(manifest.read_text())["ports"]
    assert documented == [(p["name"], p["direction"]) for p in ports]
    # and what is said missing is missing
    missing = re.search(r"does not have .*?: (.*)\.$", text, re.MULTILINE).group(1)
    names = {p["name"] for p in ports}
    for signal in re.findall(r"`(\w+)`", missing):
        assert f"m_axi__{signal}" not in names
    assert "m_axi__awqos" not in names and "m_axi__arid" in names


def test_interface_doc_toml_example_loads(tmp_path):
    text = (ROOT / "docs" / "interface.md").read_text(encoding="utf-8")
    example = re.search(r"```toml\n(.*?)```", text, re.DOTALL).group(1)
    path = tmp_path / "my.toml"
    path.write_text(example, encoding="utf-8")
    config = AcceleratorConfig.from_toml(path)
    assert (config.rows, config.cols, config.dataflow, config.axi_data_width) == (8, 8, "ws", 128)
    # and the command shown with it runs
    from accelerator.cli import main
    assert main(["rtl", "--config", str(path), "--top", "accelerator", "--rows", "2",
                 "--cols", "2", "-o", str(tmp_path / "out")]) == 0
    manifest = json.loads((tmp_path / "out" / "accelerator.json").read_text())
    assert manifest["config"] == config.replace(rows=2, cols=2).to_dict()
    widths = {p["name"]: p["width"] for p in manifest["ports"]}
    assert widths["m_axi__wdata"] == 128 and widths["m_axi__wstrb"] == 16


def test_the_axi_constants_are_what_the_doc_says():
    """AxCACHE, AxPROT, AxLOCK, AxBURST and the IDs, read from the running gateware."""
    from amaranth.sim import Simulator

    from accelerator.hw.top import Accelerator

    dut = Accelerator(AcceleratorConfig(rows=1, cols=1))
    seen = {}

    async def bench(ctx):
        await ctx.tick().repeat(2)
        for name in ("arcache", "awcache", "arprot", "awprot", "arlock", "awlock", "arburst",
                     "awburst", "arid", "awid"):
            seen[name] = ctx.get(getattr(dut.m_axi, name))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    text = (ROOT / "docs" / "interface.md").read_text(encoding="utf-8")
    for name, value in seen.items():
        row = re.search(rf"^\| `m_axi__{name}` \|.*$", text, re.MULTILINE).group(0)
        assert re.search(r"always (0b[01]+|0)\b", row), row
        assert int(re.search(r"always (0b[01]+|0)\b", row).group(1), 0) == value, row


# -- docs/hardware.md -----------------------------------------------------------------------------

HARDWARE = ROOT / "docs" / "hardware.md"


def _number(cell: str) -> Fraction:
    return Fraction(cell.strip().strip("*").replace("−", "-"))


def _round(v: Fraction, ties: str) -> int:
    if ties == "up":
        return math.floor(v + Fraction(1, 2))
    return int(math.copysign(math.floor(abs(v) + Fraction(1, 2)), v))


def test_requant_worked_example():
    text = HARDWARE.read_text(encoding="utf-8")
    params = re.search(r"<!-- requant-example: multiplier=(\d+) shift=(\d+) zero_point=(-?\d+)",
                       text)
    mult, shift, zp = (int(g) for g in params.groups())
    table = text[params.end():].split("\n\n")[0].splitlines()[3:]
    assert len(table) >= 5
    for line in table:
        cells = [_number(c) for c in line.strip("|").split("|")]
        acc = int(cells[0])
        p = acc * mult
        # the hardware's integer steps (hw/requant.py's pipeline)
        x = ((p >> 30) + 1) >> 1
        r = (1 << shift >> 1) - (1 if x < 0 and shift else 0)
        y = (x + r) >> shift

        def clamp(z, relu=False):
            return max(zp if relu else -128, min(127, z))

        ref = int(reference.requantize(np.array([acc]), mult, shift, zp)[0])
        ref_relu = int(reference.requantize(np.array([acc]), mult, shift, zp, relu=True)[0])
        assert x == int(reference.saturating_rounding_doubling_high_mul(
            np.array([acc]), np.array([mult]))[0])
        assert y == int(reference.rounding_divide_by_pot(np.array([x]), shift)[0])
        assert y == reference.requantize_scalar(acc, mult, shift, 0, out_width=16)
        scale = Fraction(mult, 2**31) / 2**shift
        once = clamp(_round(acc * scale, "away") + zp)
        away = clamp(_round(Fraction(_round(Fraction(p, 2**31), "away"), 2**shift), "away") + zp)
        up = clamp(_round(Fraction(_round(Fraction(p, 2**31), "up"), 2**shift), "up") + zp)
        assert cells == [acc, Fraction(p, 2**31), x, Fraction(x, 2**shift), y, y + zp, ref,
                         ref_relu, once, away, up], line
        assert clamp(y + zp) == ref and clamp(y + zp, True) == ref_relu
    # every simpler reading is off by one somewhere in the table
    rows = [[_number(c) for c in line.strip("|").split("|")] for line in table]
    for column in (8, 9, 10):
        assert any(row[column] != row[6] for row in rows), column


def test_requant_hardware_matches_the_doc_on_the_example():
    """The Requantizer itself, in Amaranth's simulator, on the example's accumulators."""
    from amaranth.sim import Simulator

    from accelerator.hw.requant import LATENCY, Requantizer

    text = HARDWARE.read_text(encoding="utf-8")
    params = re.search(r"<!-- requant-example: multiplier=(\d+) shift=(\d+) zero_point=(-?\d+)",
                       text)
    mult, shift, zp = (int(g) for g in params.groups())
    table = text[params.end():].split("\n\n")[0].splitlines()[3:]
    rows = [[int(_number(c)) for c in line.strip("|").split("|")[:1] + line.strip("|").split(
        "|")[6:8]] for line in table]
    dut = Requantizer(AcceleratorConfig(rows=1, cols=2))
    got = []

    async def bench(ctx):
        ctx.set(dut.multiplier, mult)
        ctx.set(dut.shift, shift)
        ctx.set(dut.zero_point, zp)
        ctx.set(dut.o.ready, 1)
        for relu in (0, 1):
            ctx.set(dut.relu, relu)
            for acc, _, _ in rows:
                ctx.set(dut.i.payload.c[0], acc)
                ctx.set(dut.i.payload.c[1], -acc)
                ctx.set(dut.i.valid, 1)
                await ctx.tick()
                ctx.set(dut.i.valid, 0)
                await ctx.tick().repeat(LATENCY - 1)
                assert ctx.get(dut.o.valid)
                got.append((relu, acc, ctx.get(dut.o.payload.c[0])))
                await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    want = [(relu, acc, out[relu]) for relu in (0, 1) for acc, *out in rows]
    assert got == want


def test_the_check_order_in_the_docs_is_error_priority():
    from amaranth.hdl import Module, Signal
    from amaranth.sim import Simulator

    from accelerator.hw.engine import error_priority
    from accelerator.hw.registers import ErrorCode

    m = Module()
    code_of = {"zero": ErrorCode.ZERO_DIM, "large": ErrorCode.TOO_LARGE,
               "no_requant": ErrorCode.NO_REQUANT, "stride": ErrorCode.STRIDE,
               "misaligned": ErrorCode.MISALIGNED, "out_range": ErrorCode.ADDR_RANGE}
    flags = {name: Signal(name=name) for name in code_of}
    code = error_priority(m, **flags)
    order = []

    async def bench(ctx):
        left = set(code_of)
        while left:  # with all the remaining checks failing, the code names the first of them
            for name in code_of:
                ctx.set(flags[name], name in left)
            await ctx.delay(1e-9)
            winner = ErrorCode(ctx.get(code))
            order.append(winner.name)
            left.remove(next(n for n in left if code_of[n] == winner))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    memory = (ROOT / "docs" / "memory-system.md").read_text(encoding="utf-8")
    errors = memory[memory.index("## Errors"):memory.index("### Set-up cost")]
    table = re.findall(r"^\| `([A-Z_]+)` \|", errors, re.MULTILINE)
    assert table == [*order, "BUS_ERROR"]
    listed = re.search(r"in the order of the table .*?: (.*?);", HARDWARE.read_text(
        encoding="utf-8"), re.DOTALL).group(1)
    assert re.findall(r"`([A-Z_]+)`", listed) == order


def _illegal_cycles(m: int, k: int, accumulate: bool) -> int:
    """docs/hardware.md's formula for CYCLES of an illegal command (pipelined engine)."""
    def p(a: int) -> int:
        return 2 + max(1, (a % 2**16).bit_length())
    return 2 + p(m - 1) + p(k - 1) + p(m - 1) + (p(m - 1) if accumulate else 1)


def test_illegal_command_cycles_formula_in_the_doc():
    text = HARDWARE.read_text(encoding="utf-8")
    assert "CYCLES = 2 + P(M−1) + P(K−1) + P(M−1) + (P(M−1) if MODE.accumulate else 1)" in text
    assert "P(a)   = 2 + max(1, bit_length(a mod 2¹⁶))" in text
    assert _illegal_cycles(1, 1, False) == 12 and "12 cycles for M = K = 1" in text
    assert _illegal_cycles(5, 7, False) == 18 and "18 for M = 5, K = 7" in text
    assert _illegal_cycles(0, 0, True) == 74 and "at most 74" in text
    assert max(_illegal_cycles(m, k, a) for m in (0, 1, 2**15, 65535, 70000)
               for k in (0, 1, 2**15, 65535) for a in (False, True)) == 74


@pytest.mark.parametrize("dataflow", ["os", "ws"])
@pytest.mark.parametrize("change", [
    {"m": 0}, {"k": 0}, {"n": 0}, {"lda": 3}, {"c_addr": 0x10002}, {"a_addr": 0xFFFFFFF0},
    {"k": 70000}, {"m": 300, "lda": 3}, {"m": 300, "lda": 3, "accumulate": 1},
    {"m": 1, "k": 1, "ldb": 0}, {"n": 0, "accumulate": 1},
], ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_illegal_command_cycles_in_the_engine(dataflow, change):
    from test_engine import gemm_case, run_engine

    config = AcceleratorConfig(rows=4, cols=4, dataflow=dataflow, axi_data_width=32)
    rng = np.random.default_rng(1)
    mem, cmd, _, _ = gemm_case(config, 5, 7, 6, rng)
    cmd.update(change)
    result = run_engine(config, mem, cmd, rng, deadline=500)
    assert result["error"] != 0 and result["mac_cycles"] == 0
    assert result["cycles"] == _illegal_cycles(cmd["m"], cmd["k"], bool(cmd["accumulate"]))


@pytest.mark.parametrize("dataflow", ["os", "ws"])
@pytest.mark.parametrize("m,k,n", [(2, 5, 3), (5, 3, 6), (9, 9, 9), (4, 4, 4), (7, 21, 3)])
def test_mac_cycles_count_padded_beats(dataflow, m, k, n):
    from test_engine import gemm_case, run_engine

    # 16-entry scratchpads: K = 21 goes in steps
    config = AcceleratorConfig(rows=4, cols=4, dataflow=dataflow, axi_data_width=32,
                               spad_a_depth=16, spad_b_depth=16, spad_c_depth=16)
    R, C = config.rows, config.cols
    rng = np.random.default_rng(m * 100 + k)
    mem, cmd, _, _ = gemm_case(config, m, k, n, rng)
    result = run_engine(config, mem, cmd, rng)
    assert result["error"] == 0
    step = Geometry.of(config).k_step
    steps = [min(step, k - k0) for k0 in range(0, k, step)]
    if dataflow == "os":
        want = math.ceil(m / R) * math.ceil(n / C) * k
    else:
        want = math.ceil(n / C) * sum(math.ceil(s / R) for s in steps) * m
    assert result["mac_cycles"] == want


def test_stale_interrupt_and_its_cure():
    from test_registerblock import DONE, START, finish, read_ok, simulate, write_ok

    from accelerator.hw.registers import RegisterBlock, register

    dut = RegisterBlock(AcceleratorConfig())
    irq_mode = register("MODE").encode(irq_enable=1)

    async def bench(ctx):
        # a command ends, polled (irq off), and nobody acknowledges done
        await finish(ctx, dut, 0)
        # the next command's MODE with irq_enable: irq rises before any start
        await write_ok(ctx, dut, "MODE", irq_mode)
        assert ctx.get(dut.irq)
        assert register("STATUS").decode(await read_ok(ctx, dut, "STATUS"))["done"] == 1
        # CTRL.start drops it in the cycle of its write response; a read after sees done = 0
        await write_ok(ctx, dut, "CTRL", START)
        assert not ctx.get(dut.irq)
        assert register("STATUS").decode(await read_ok(ctx, dut, "STATUS"))["done"] == 0
        # the cure: acknowledge first, then MODE: no interrupt until the command ends
        await finish(ctx, dut, 0)
        await write_ok(ctx, dut, "MODE", 0)
        await write_ok(ctx, dut, "STATUS", DONE)
        await write_ok(ctx, dut, "MODE", irq_mode)
        assert not ctx.get(dut.irq)
        await finish(ctx, dut, 0)
        assert ctx.get(dut.irq)

    simulate(dut, bench)
    text = HARDWARE.read_text(encoding="utf-8")
    assert f"write `STATUS` = {DONE:#x}" in text


def test_the_start_pulse_comes_with_the_write_response():
    """docs/hardware.md: the start pulse is high in the cycle ``bvalid`` rises."""
    from test_registerblock import START, simulate, write_ok

    from accelerator.hw.registers import RegisterBlock

    dut = RegisterBlock(AcceleratorConfig())
    seen = {"start": [], "bvalid": []}

    async def monitor(ctx):
        cycle = 0
        async for _, _, start, bvalid in ctx.tick().sample(dut.start, dut.s_axil.bvalid):
            cycle += 1
            for name, value in (("start", start), ("bvalid", bvalid)):
                if value:
                    seen[name].append(cycle)

    async def bench(ctx):
        await write_ok(ctx, dut, "CTRL", START)
        await ctx.tick().repeat(3)

    simulate(dut, bench, monitor)
    assert len(seen["start"]) == 1 and seen["start"][0] == seen["bvalid"][0]


def _compact_illegal_cycles(cmd: dict, accumulate: bool, requant: bool = False) -> int:
    """docs/hardware.md's formula for CYCLES of an illegal command (compact engine, which has
    no requantizer: MODE.requant is NO_REQUANT)."""
    m, k, n = cmd["M"], cmd["K"], cmd["N"]
    if 0 in (m, k, n) or max(m, k, n) > 65535 or requant:
        return 7
    out_row = 4 * n
    areas = [(m, cmd["LDA"] < k), (k, cmd["LDB"] < n), (m, cmd["LDC"] < out_row)]
    if accumulate:
        areas.append((m, cmd["LDCIN"] < 4 * n))
    cycles = 7
    for rows, bad_stride in areas:
        if bad_stride:
            return cycles + 3
        cycles += rows + 3
    return cycles


_COMMAND = {"A_ADDR": 0x100, "B_ADDR": 0x1000, "C_ADDR": 0x2000, "CIN_ADDR": 0x3000, "M": 5,
            "K": 7, "N": 6, "LDA": 7, "LDB": 6, "LDC": 24, "LDCIN": 24}


def _run_accelerator(config, command: dict, mode: int, *, ctrl: int, during=None) -> dict:
    """Write ``command`` over AXI4-Lite, then MODE and CTRL; poll STATUS until done; return the
    status and the counters. Nothing answers on ``m_axi``: the commands here never reach it."""
    from amaranth.sim import Simulator
    from test_registerblock import read_ok, write_ok

    from accelerator.hw.registers import register
    from accelerator.hw.top import Accelerator

    dut = Accelerator(config)
    out: dict = {}

    async def bench(ctx):
        for name, value in command.items():
            await write_ok(ctx, dut, name, value)
        await write_ok(ctx, dut, "MODE", mode)
        await write_ok(ctx, dut, "CTRL", ctrl)
        if during is not None:
            await during(ctx, dut, write_ok)
        for _ in range(200):
            status = register("STATUS").decode(await read_ok(ctx, dut, "STATUS"))
            if status["done"]:
                break
        out["status"] = status
        out["cycles"] = await read_ok(ctx, dut, "CYCLES")
        out["mac_cycles"] = await read_ok(ctx, dut, "MAC_CYCLES")

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return out


@pytest.mark.parametrize("engine", ["pipelined", "compact"])
@pytest.mark.parametrize("change,mode", [
    ({"M": 0}, 0), ({"K": 0}, 0), ({"N": 0}, 0), ({"K": 70000}, 0), ({"LDA": 3}, 0),
    ({"LDB": 3}, 0), ({"LDC": 3}, 0), ({"C_ADDR": 0x2002}, 0), ({"A_ADDR": 0xFFFFFFF0}, 0),
    ({"C_ADDR": 0x2002}, 1), ({"M": 9, "LDCIN": 2}, 1), ({}, 2),
], ids=lambda v: ",".join(f"{k}={x}" for k, x in v.items()) if isinstance(v, dict)
    else f"mode={v}")
def test_illegal_command_cycles_in_the_accelerator(engine, change, mode):
    from accelerator.hw.registers import register

    config = AcceleratorConfig(rows=2, cols=2, requant_unit=False, engine=engine,
                               axi_data_width=32)
    command = {**_COMMAND, **change}
    accumulate = bool(register("MODE").decode(mode)["accumulate"])
    requant = bool(register("MODE").decode(mode)["requant"])
    out = _run_accelerator(config, command, mode, ctrl=register("CTRL").encode(start=1))
    assert out["status"]["done"] == 1 and out["status"]["error"] != 0
    assert out["mac_cycles"] == 0
    want = (_compact_illegal_cycles(command, accumulate, requant) if engine == "compact"
            else _illegal_cycles(command["M"], command["K"], accumulate))
    assert out["cycles"] == want


def test_compact_illegal_cycles_in_the_doc():
    text = HARDWARE.read_text(encoding="utf-8")
    assert "CYCLES = 7 + Σ (rows + 3) over the areas walked, + 3 for an area whose stride fails" \
        in text
    assert _compact_illegal_cycles({**_COMMAND, "M": 0}, False) == 7
    assert _compact_illegal_cycles({**_COMMAND, "LDA": 3}, False) == 10
    assert _compact_illegal_cycles({**_COMMAND, "C_ADDR": 2}, False) == 33
    assert "7 cycles for a zero or too large dimension (or `MODE.requant`); 10 for a bad `LDA`" \
        in text
    assert "(33 for M = 5, K = 7)" in text


@pytest.mark.parametrize("engine", ["pipelined", "compact"])
def test_ctrl_3_aborts_and_does_not_start(engine):
    """docs/hardware.md, "CTRL = 0x3": the reset wins, idle or busy; nothing sets done."""
    from accelerator.hw.registers import register

    config = AcceleratorConfig(rows=2, cols=2, requant_unit=False, axi_data_width=32,
                               engine=engine)
    both = register("CTRL").encode(start=1, reset=1)
    assert both == 0x3
    idle = {"busy": 0, "done": 0, "error": 0}
    # idle: the (illegal, so memory-free) command does not run
    out = _run_accelerator(config, {**_COMMAND, "M": 0}, 0, ctrl=both)
    assert out["status"] == idle and out["cycles"] == 0

    # busy (M = 0 keeps the pipelined engine checking for 44 cycles): the command is aborted
    # and never sets done; the engine's counters are reset with it
    async def during(ctx, dut, write_ok):
        assert ctx.get(dut.s_axil.rvalid) == 0
        await write_ok(ctx, dut, "CTRL", both)

    out = _run_accelerator(config, {**_COMMAND, "M": 0}, 0,
                           ctrl=register("CTRL").encode(start=1), during=during)
    assert out["status"] == idle and out["cycles"] == 0
