# amaranth: UnusedElaboratable=no
"""The board top (UART bridge + decoder + accelerator + on-chip RAM) in Verilator.

The host side is the real driver over :class:`accelerator.driver.serial.UartSimTransport`;
verification/board_tb.py is the bench; the model is the flow's (``build_model`` with the board
top's parameters). The Amaranth-simulator tests of the RAM and the decoder are here too. (Line 1
silences the warnings about the components whose construction fails on purpose.)
"""

from __future__ import annotations

import json

import pytest

from accelerator.config import AcceleratorConfig
from accelerator.flow.rtl import BOARD_TOP
from accelerator.flow.sim import build_model, run_tests

TESTS = 2  # @cocotb.test()s in verification/board_tb.py
#: 100 MHz clock and 10 Mbaud: 10 cycles per bit, and a 10 ns period that cocotb-uart's integer
#: nanosecond bit timer hits exactly.
BOARD = {"clk_freq": 100_000_000, "baud": 10_000_000, "ram_base": 0x1000_0000,
         "ram_bytes": 4096, "timeout_bytes": 4}


@pytest.mark.verilator
@pytest.mark.parametrize("engine", ["pipelined", "compact"])
def test_board_in_verilator(seed, build_root, engine):
    # compact: the engine (and register block) of the iCE40UP5K's board top
    config = AcceleratorConfig(rows=2, cols=2, requant_unit=False, engine=engine)
    model = build_model(config, top=BOARD_TOP, root=build_root, params=BOARD)
    outcome = run_tests(model, "board_tb", seed=seed,
                        extra_env={"ACCEL_BOARD": json.dumps(BOARD)})
    assert outcome.ok, (f"ACCEL_SEED={seed}: {outcome.failed} failed: {outcome.failures}; "
                        f"log: {outcome.log}")
    assert outcome.passed == TESTS


def test_board_top_on_a_platform_requests_uart_and_leds():
    """On an amaranth-boards platform the design uses the board's ``uart`` and ``led`` pins."""
    pytest.importorskip("amaranth_boards")
    from amaranth_boards.icebreaker import ICEBreakerPlatform

    from accelerator.hw.board import BoardTop

    platform = ICEBreakerPlatform()
    top = BoardTop(AcceleratorConfig(rows=2, cols=2, requant_unit=False),
                   clk_freq=platform.default_clk_frequency, ram_bytes=8192)
    assert top.divisor == 104
    plan = platform.prepare(top, name="board")
    pcf = plan.files["board.pcf"]
    for pin in ("uart_0__rx", "uart_0__tx", "led_0", "led_1"):  # the iCEBreaker has 2 LEDs
        assert pin in pcf, pin
    with pytest.raises(ValueError):
        BoardTop(AcceleratorConfig(), clk_freq=1e6, baud=500_000)
    with pytest.raises(ValueError):
        BoardTop(AcceleratorConfig(), clk_freq=12e6, ram_base=0x800)


@pytest.mark.parametrize(("base", "size"), [(0x1000_0000, 1024), (0x1000_0000, 1536),
                                           (0x1000_0200, 1536)],
                         ids=["aligned", "aligned_block", "unaligned"])
@pytest.mark.parametrize("single_port", [False, True], ids=["dual_port", "single_port"])
@pytest.mark.parametrize("width", [32, 128])
def test_axi_ram_bursts_strobes_backpressure_and_host_port(width, single_port, base, size):
    """AxiRam in Amaranth's simulator: an INCR write burst with strobes, a read burst under
    rready back-pressure, host-port accesses, and DECERR past the end; with either storage, and
    with the RAM a power-of-two block at a multiple of its size, in such a block, or neither
    (the address checks compare bits in the first two cases, subtract in the third)."""
    from amaranth.sim import Simulator

    from accelerator.hw.axiram import AxiRam

    nbytes = width // 8
    dut = AxiRam(AcceleratorConfig(axi_data_width=width), size, base=base,
                 single_port=single_port)
    beats = 6
    words = [int.from_bytes(bytes((17 * i + j) & 0xFF for j in range(nbytes)), "little")
             for i in range(beats)]
    strobes = [(1 << nbytes) - 1, 0b1, (1 << nbytes) - 2, 0, (1 << nbytes) - 1, 0b10]
    got = []

    async def bench(ctx):
        a = dut.s_axi
        # write burst at base + 2 words
        ctx.set(a.awaddr, base + 2 * nbytes)
        ctx.set(a.awlen, beats - 1)
        ctx.set(a.awsize, (nbytes - 1).bit_length())
        ctx.set(a.awburst, 1)
        ctx.set(a.awvalid, 1)
        await ctx.tick().until(a.awready)
        ctx.set(a.awvalid, 0)
        for i in range(beats):
            ctx.set(a.wdata, words[i])
            ctx.set(a.wstrb, strobes[i])
            ctx.set(a.wlast, i == beats - 1)
            ctx.set(a.wvalid, 1)
            await ctx.tick().until(a.wready)
        ctx.set(a.wvalid, 0)
        ctx.set(a.bready, 1)
        (bresp,) = await ctx.tick().sample(a.bresp).until(a.bvalid)
        assert bresp == 0
        ctx.set(a.bready, 0)
        # read back 8 beats from base + 1 word, with rready toggling
        ctx.set(a.araddr, base + nbytes)
        ctx.set(a.arlen, 7)
        ctx.set(a.arsize, (nbytes - 1).bit_length())
        ctx.set(a.arvalid, 1)
        await ctx.tick().until(a.arready)
        ctx.set(a.arvalid, 0)
        cycle = 0
        while len(got) < 8:
            ready = cycle % 3 != 1
            ctx.set(a.rready, ready)
            await ctx.delay(1e-9)
            if ctx.get(a.rvalid) and ready:
                got.append((ctx.get(a.rdata), ctx.get(a.rresp), ctx.get(a.rlast)))
            await ctx.tick()
            cycle += 1
        ctx.set(a.rready, 0)
        # host port: write then read one 32-bit lane of the word at base + 2 words
        h = dut.s_axil
        ctx.set(h.awaddr, base + 2 * nbytes + nbytes - 4)
        ctx.set(h.wdata, 0xA1B2C3D4)
        ctx.set(h.wstrb, 0xF)
        ctx.set(h.awvalid, 1)
        ctx.set(h.wvalid, 1)
        ctx.set(h.bready, 1)
        (bresp,) = await ctx.tick().sample(h.bresp).until(h.bvalid)
        assert bresp == 0
        ctx.set(h.awvalid, 0)
        ctx.set(h.wvalid, 0)
        for addr, expect in ((base + 2 * nbytes + nbytes - 4, (0xA1B2C3D4, 0)),
                             (base + size, (0, 3))):
            ctx.set(h.araddr, addr)
            ctx.set(h.arvalid, 1)
            ctx.set(h.rready, 1)
            await ctx.tick().until(h.arready)
            ctx.set(h.arvalid, 0)
            rdata, rresp = await ctx.tick().sample(h.rdata, h.rresp).until(h.rvalid)
            await ctx.tick()
            assert (rdata, rresp) == expect, (hex(rdata), rresp)
        # a read burst that runs past the end: DECERR on the beats outside
        ctx.set(a.araddr, base + size - nbytes)
        ctx.set(a.arlen, 1)
        ctx.set(a.arvalid, 1)
        ctx.set(a.rready, 1)
        await ctx.tick().until(a.arready)
        ctx.set(a.arvalid, 0)
        resps = []
        while len(resps) < 2:
            await ctx.delay(1e-9)
            if ctx.get(a.rvalid):
                resps.append(ctx.get(a.rresp))
            await ctx.tick()
        assert resps == [0, 3]

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()

    expected = [0] * 9
    for i in range(beats):
        value = 0
        for j in range(nbytes):
            if strobes[i] >> j & 1:
                value |= (words[i] >> (8 * j) & 0xFF) << (8 * j)
        expected[2 + i] = value
    data = [d for d, _, _ in got]
    assert data == expected[1:9], [hex(d) for d in data]
    assert [r for _, r, _ in got] == [0] * 8
    assert [last for _, _, last in got] == [0] * 7 + [1]


def test_decoder_answers_its_constant_words():
    """AxiLiteDecoder's ``words``: reads OKAY with the value; writes there, and reads of other
    unmapped addresses, DECERR; a word inside a window is refused."""
    from amaranth.sim import Simulator

    from accelerator.hw.board import AxiLiteDecoder

    words = {0x1000: 0x1000_0000, 0x1004: 0x2_0000}
    dut = AxiLiteDecoder([(0, 0x1000), (0x1000_0000, 0x2_0000)], words=words)
    got = {}

    async def bench(ctx):
        h = dut.s_axil
        for addr in (0x1000, 0x1004, 0x1008, 0x0FFC_1000):
            ctx.set(h.araddr, addr)
            ctx.set(h.arvalid, 1)
            ctx.set(h.rready, 1)
            await ctx.tick().until(h.arready)
            ctx.set(h.arvalid, 0)
            got[addr] = tuple(await ctx.tick().sample(h.rdata, h.rresp).until(h.rvalid))[:2]
            await ctx.tick()
        ctx.set(h.awaddr, 0x1000)
        ctx.set(h.wdata, 5)
        ctx.set(h.awvalid, 1)
        ctx.set(h.wvalid, 1)
        ctx.set(h.bready, 1)
        (got["write"],) = await ctx.tick().sample(h.bresp).until(h.bvalid)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert got == {0x1000: (0x1000_0000, 0), 0x1004: (0x2_0000, 0), 0x1008: (0, 3),
                   0x0FFC_1000: (0, 3), "write": 3}
    with pytest.raises(ValueError, match="outside the windows"):
        AxiLiteDecoder([(0, 0x1000)], words={0x800: 1})
