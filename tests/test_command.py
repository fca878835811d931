"""The command checker (accelerator.model.command) and the command table it shares with the
gateware and the driver: the checker is the oracle of both engines' error codes, in Amaranth's
simulator, on commands Hypothesis draws around every rule's edges."""

from __future__ import annotations

import pytest
from amaranth.hdl import Module, ResetInserter, Signal
from amaranth.sim import Simulator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accelerator.config import AcceleratorConfig
from accelerator.hw.compact import CompactEngine
from accelerator.hw.engine import GemmEngine, command_layout
from accelerator.model.command import Command, check, error_code
from accelerator.model.regmap import (
    COMMAND,
    COMMAND_REGISTERS,
    MAX_DIM,
    ErrorCode,
    command_fields,
    command_words,
    field,
    register,
)

# Small hardware, so that elaboration and each check take little time; the checks do not depend
# on the array's size beyond the engines' own walks.
SMALL = {"rows": 2, "cols": 2, "spad_a_depth": 64, "spad_b_depth": 64, "spad_c_depth": 64}
PIPELINED = {
    "os": AcceleratorConfig(**SMALL, dataflow="os"),
    "ws, no requantizer": AcceleratorConfig(**SMALL, dataflow="ws", requant_unit=False),
}
COMPACT = AcceleratorConfig(**SMALL, engine="compact", requant_unit=False, axi_data_width=32)

#: Cycles an engine may take from start to its verdict (an error, or its first memory request).
_LIMIT = 2_000
_WORD = (1 << 32) - 1


# -- the table -----------------------------------------------------------------------------------


def test_command_table_is_the_layout_and_the_registers():
    layout = command_layout()
    assert [name for name, _ in layout] == [f.name for f in COMMAND]
    for f in COMMAND:
        shape = layout[f.name].shape
        assert (shape.width, shape.signed) == (f.width, f.signed), f.name
        assert f.source is field(f.register, f.field)
    # every rw register but those of no command field is the command's
    assert set(COMMAND_REGISTERS) == {f.register for f in COMMAND}
    assert list(COMMAND_REGISTERS) == sorted(COMMAND_REGISTERS, key=lambda r: register(r).offset)
    assert [f.matrix for f in command_fields("address")] == ["a", "b", "c", "c_in"]
    assert [f.matrix for f in command_fields("stride")] == ["a", "b", "c", "c_in"]
    assert [f.name for f in command_fields("dimension")] == ["m", "k", "n"]


def test_command_words_place_every_field():
    words = command_words({"a_addr": -1, "m": 3, "requant": 1, "relu": 1, "rq_zp": -2,
                           "rq_shift": 31})
    assert words["A_ADDR"] == _WORD               # 32-bit fields are masked
    assert words["M"] == 3
    assert words["MODE"] == register("MODE").encode(requant=1, relu=1)
    assert words["RQ_ZP"] == 0xFE
    assert words["RQ_SHIFT"] == 31
    assert words["B_ADDR"] == 0 and words["LDCIN"] == 0
    with pytest.raises(ValueError, match=r"shift = 32 does not fit"):
        command_words({"rq_shift": 32})          # a narrow field must fit
    with pytest.raises(KeyError, match="no command field nope"):
        command_words({"nope": 1})


# -- the checker on its own ----------------------------------------------------------------------

GOOD = {"a_addr": 0x1000, "b_addr": 0x2000, "c_addr": 0x3000, "cin_addr": 0x8000,
        "m": 4, "k": 8, "n": 16, "lda": 8, "ldb": 16, "ldc": 64, "ldcin": 64}


@pytest.mark.parametrize("changes, code", [
    ({}, ErrorCode.NONE),
    ({"m": 0}, ErrorCode.ZERO_DIM),
    ({"n": MAX_DIM + 1}, ErrorCode.TOO_LARGE),
    ({"m": 0, "k": MAX_DIM + 1}, ErrorCode.ZERO_DIM),          # the priority
    ({"requant": 1}, ErrorCode.NO_REQUANT),
    ({"lda": 7}, ErrorCode.STRIDE),
    ({"ldc": 60, "c_addr": 2}, ErrorCode.STRIDE),               # STRIDE before MISALIGNED
    ({"c_addr": 0x3002}, ErrorCode.MISALIGNED),
    ({"accumulate": 1, "ldcin": 66}, ErrorCode.MISALIGNED),
    ({"ldcin": 66}, ErrorCode.NONE),                            # C_in unused
    ({"a_addr": 0xFFFF_FFF1, "m": 2}, ErrorCode.ADDR_RANGE),
    ({"a_addr": 0xFFFF_FFF0, "m": 2}, ErrorCode.NONE),          # ends exactly at 2**32
    ({"c_addr": 0xFFFF_FF04, "lda": 7}, ErrorCode.STRIDE),
])
def test_checker(changes, code):
    config = AcceleratorConfig(requant_unit=False)
    cmd = Command(**{**GOOD, **changes})
    assert error_code(config, cmd) == code
    violation = check(config, cmd)
    assert (violation is None) == (code == ErrorCode.NONE)
    if violation is not None:
        assert violation.code == code and "\n" not in violation.message


# -- the oracle of both engines ------------------------------------------------------------------

_EDGES = [0, 1, 2, 3, 4, MAX_DIM, MAX_DIM + 1, _WORD]


@st.composite
def commands(draw, *, walk_limit: int = 6) -> Command:
    """A command near the rules' edges: most of its values legal, each now and then on the
    wrong side of its rule's edge (a dimension 0 or past MAX_DIM, a stride a byte or two short
    of its row, an int32 address off by a byte, an area that ends past 2**32), so that every
    error code, their priorities and commands without an error all come up. Legal dimensions are
    at most ``walk_limit`` (the compact engine walks every row of every area, one a cycle)."""

    def sometimes(usual, rare, odds: int = 12):
        """``rare`` once in about ``odds`` draws, else ``usual``."""
        return draw(rare) if draw(st.integers(1, odds)) == 1 else draw(usual)

    def dim() -> int:
        return sometimes(st.integers(1, walk_limit), st.sampled_from([0, MAX_DIM + 1, _WORD]))

    m, k, n = dim(), dim(), dim()
    accumulate, relu = draw(st.booleans()), draw(st.booleans())
    requant = draw(st.integers(1, 4)) == 1
    out = n if requant else 4 * n

    def stride(row: int, grain: int) -> int:
        legal = st.integers(row, row + 12).map(lambda s: -(-s // grain) * grain)
        return sometimes(legal, st.one_of(st.integers(max(0, row - 2), row + 3),
                                          st.integers(0, _WORD)))

    def address(grain: int) -> int:
        low = st.integers(0, 0x1_0000).map(lambda a: a // grain * grain)
        return sometimes(low, st.one_of(st.integers(0, _WORD),
                                        st.integers(_WORD - 0x400, _WORD)), odds=6)

    return Command(a_addr=address(1), b_addr=address(1), c_addr=address(1 if requant else 4),
                   cin_addr=address(4), m=m, k=k, n=n, lda=stride(k, 1), ldb=stride(n, 1),
                   ldc=stride(out, 1 if requant else 4), ldcin=stride(4 * n, 4),
                   accumulate=int(accumulate), requant=int(requant), relu=int(relu))


def _engine_codes(engine, config: AcceleratorConfig, cmds: list) -> list[int]:
    """``STATUS.error`` of each command on ``engine`` (reset before each): read when the engine
    finishes (an error) or makes its first memory request (a command it runs)."""
    rst = Signal()
    top = Module()
    top.submodules.engine = ResetInserter(rst)(engine)
    compact = isinstance(engine, CompactEngine)
    memory: dict[int, int] = {}
    codes: list[int] = []

    async def command_memory(ctx):
        # the register block's command RAM: the word at cmd_index a cycle after cmd_read
        async for _, _, read, index in ctx.tick().sample(engine.cmd_read, engine.cmd_index):
            if read:
                ctx.set(engine.cmd_data, memory.get(index, 0))

    async def control(ctx):
        for cmd in cmds:
            ctx.set(rst, 1)
            await ctx.tick()
            ctx.set(rst, 0)
            values = {name: getattr(cmd, name) for name in Command.__dataclass_fields__}
            if compact:
                words = command_words(values)
                memory.clear()
                memory.update({register(name).offset >> 2: word for name, word in words.items()})
                ctx.set(engine.mode, words["MODE"])
            else:
                values.update(rq_mult=0, rq_shift=0, rq_zp=0)
                ctx.set(engine.cmd, values)
            ctx.set(engine.start, 1)
            await ctx.tick()
            ctx.set(engine.start, 0)
            request = engine.m_axi.arvalid if compact else engine.rd_cmd.valid
            for _ in range(_LIMIT):
                _, _, done, requested, error = await ctx.tick().sample(
                    engine.done, request, engine.error)
                if done or requested:
                    codes.append(error)
                    break
            else:
                raise AssertionError(f"no verdict within {_LIMIT} cycles on {cmd}")

    sim = Simulator(top)
    sim.add_clock(1e-6)
    if compact:
        sim.add_testbench(command_memory, background=True)
    sim.add_testbench(control)
    sim.run()
    return codes


@pytest.mark.parametrize("name", list(PIPELINED))
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cmds=st.lists(commands(), min_size=8, max_size=8))
def test_pipelined_engine_reports_what_the_checker_says(name, cmds):
    config = PIPELINED[name]
    got = _engine_codes(GemmEngine(config), config, cmds)
    assert [ErrorCode(c) for c in got] == [error_code(config, cmd) for cmd in cmds]


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cmds=st.lists(commands(walk_limit=24), min_size=8, max_size=8))
def test_compact_engine_reports_what_the_checker_says(cmds):
    got = _engine_codes(CompactEngine(COMPACT), COMPACT, cmds)
    assert [ErrorCode(c) for c in got] == [error_code(COMPACT, cmd) for cmd in cmds]
