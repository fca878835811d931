"""The serial multiply-add of the engine's set-up, in Amaranth's simulator."""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from accelerator.hw.serialmul import SerialMulAdd, serial_cycles


def run(cases: list[tuple[int, int, int]]) -> list[tuple[int, int]]:
    """(result, cycles from start to a valid result) of each case, back to back."""
    dut = SerialMulAdd(a_width=16, b_width=32)
    out = []

    async def bench(ctx):
        for a, b, addend in cases:
            ctx.set(dut.a, a)
            ctx.set(dut.b, b)
            ctx.set(dut.addend, addend)
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            cycles = 1
            while ctx.get(dut.busy):
                await ctx.tick()
                cycles += 1
            out.append((ctx.get(dut.result), cycles))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return out


def test_serial_products_are_exact_and_take_the_multipliers_bit_length():
    rng = random.Random(3)
    cases = [(0, 5, 7), (1, 2**32 - 1, 2**34 - 1), (2**16 - 1, 2**32 - 1, 2**34 - 1), (4, 40, 0)]
    cases += [(rng.randrange(2**16), rng.randrange(2**32), rng.randrange(2**34))
              for _ in range(40)]
    for (a, b, addend), (result, cycles) in zip(cases, run(cases), strict=True):
        assert result == a * b + addend, (a, b, addend)
        assert cycles == serial_cycles(a), (a, cycles)


@pytest.mark.parametrize("a,cycles", [(0, 2), (1, 2), (2, 3), (36, 7), (65535, 17)])
def test_serial_cycles(a, cycles):
    assert serial_cycles(a) == cycles
