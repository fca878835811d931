"""The device API (`accelerator.connect`): the model backend against the reference, tiling,
argument errors word for word, and the board backend over a software board (registers, board
information words and RAM behind a Transport, the GEMM computed by the reference on CTRL.start).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fake_board import RAM_BASE, FakeBoard, serve_on_pty

from accelerator import AcceleratorConfig, connect
from accelerator.device import MODEL_COUNTERS, Command, ModelTarget
from accelerator.hw.registers import MAX_DIM
from accelerator.model import reference
from accelerator.model.perf import estimate
from accelerator.model.reference import RequantParams

ROOT = Path(__file__).resolve().parents[1]
RQ = RequantParams.from_scale(0.0007, zero_point=-3, relu=True)


def operands(rng, config, m, k, n, *, c_in=False):
    a = rng.integers(config.in_min, config.in_max + 1, size=(m, k))
    b = rng.integers(config.in_min, config.in_max + 1, size=(k, n))
    bits = min(config.acc_width, 32)
    cin = rng.integers(-2**(bits - 1), 2**(bits - 1), size=(m, n)) if c_in else None
    return a, b, cin


def expected(config, a, b, c_in=None, requant=None):
    if requant is None:
        return reference.gemm(a, b, c_in, acc_width=config.acc_width, in_width=config.in_width)
    return reference.gemm_requant(a, b, c_in, requant, config.acc_width,
                                  in_width=config.in_width)


def test_import_accelerator_stays_light():
    code = ("import sys, accelerator; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'amaranth', 'cocotb'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


CONFIGS = [AcceleratorConfig(), AcceleratorConfig(rows=3, cols=5, dataflow="ws"),
           AcceleratorConfig(acc_width=20), AcceleratorConfig(in_width=12, acc_width=40,
                                                              requant_unit=False)]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.name)
def test_model_backend_equals_the_reference(config, seed):
    rng = np.random.default_rng(seed)
    shapes = [(1, 1, 1), (1, 300, 1), (config.rows, config.rows, config.cols),
              (config.rows + 1, 2 * config.rows - 1, config.cols + 1), (37, 29, 41)]
    shapes += [tuple(int(x) for x in rng.integers(1, 50, size=3)) for _ in range(6)]
    with connect(config, backend="model") as dev:
        assert dev.backend == "model" and dev.config == config
        for m, k, n in shapes:
            a, b, cin = operands(rng, config, m, k, n, c_in=True)
            where = f"{m}×{k}×{n}, ACCEL_SEED={seed}"
            c = dev.matmul(a, b)
            want = expected(config, a, b)
            assert c.dtype == want.dtype and np.array_equal(c, want), where
            assert dev.last.commands == 1
            assert dev.last.cycles > 0 and dev.last.counters["dma_wr_bytes"] == m * n * (
                4 if config.acc_width <= 32 else 8), where
            assert set(dev.last.counters) == set(MODEL_COUNTERS)
            c2 = dev.matmul(a, b, c_in=cin)
            assert np.array_equal(c2, expected(config, a, b, cin)), where
            if config.requant_unit:
                y = dev.matmul(a, b, c_in=cin, requant=RQ)
                assert y.dtype == np.int8
                assert np.array_equal(y, expected(config, a, b, cin, RQ)), where
                assert dev.last.counters["dma_wr_bytes"] == m * n


def test_model_cycles_are_the_estimate_for_where_the_matrices_are():
    config = AcceleratorConfig(rows=4, cols=4)
    target = ModelTarget(config)
    rng = np.random.default_rng(1)
    a, b, _ = operands(rng, config, 9, 13, 6)
    target.write(0x1003, a.astype(np.int8).tobytes())
    target.write(0x2001, b.astype(np.int8).tobytes())
    command = Command(a=0x1003, b=0x2001, c=0x3000, m=9, k=13, n=6, lda=13, ldb=6, ldc=24)
    counters = target.run(command)
    assert counters["cycles"] == estimate(config, 9, 13, 6, layout=command.layout()).cycles
    c = np.frombuffer(target.read(0x3000, 9 * 24), dtype="<i4").reshape(9, 6)
    assert np.array_equal(c, reference.gemm(a, b))


@pytest.mark.parametrize("config", [AcceleratorConfig(rows=8, cols=8),
                                    AcceleratorConfig(rows=3, cols=5, dataflow="ws"),
                                    AcceleratorConfig(engine="compact", requant_unit=False,
                                                      axi_data_width=32)],
                         ids=lambda c: c.name)
def test_model_cycles_without_the_data(config, seed):
    """device.model_cycles: the model backend's cycles for a call, computed without its data
    (the performance model on the commands the device would run, where it would place them)."""
    from accelerator.device import model_cycles

    rng = np.random.default_rng(seed)
    shapes = [(1, 1, 1), (37, 29, 41), (12, MAX_DIM + 3, 2)]
    modes = [(False, False), (True, False)] + ([(False, True), (True, True)]
                                               if config.requant_unit else [])
    with connect(config) as dev:
        for m, k, n in shapes:
            a, b, cin = operands(rng, config, m, k, n, c_in=True)
            for accumulate, requant in modes:
                dev.matmul(a, b, c_in=cin if accumulate else None,
                           requant=RQ if requant else None)
                assert model_cycles(config, m, k, n, accumulate=accumulate,
                                    requant=requant) == dev.last.cycles, (m, k, n, accumulate)


@pytest.mark.parametrize("max_dim", [1, 2, 5, 16])
def test_tiling_across_a_small_max_dim(max_dim, seed):
    config = AcceleratorConfig(rows=2, cols=2)
    rng = np.random.default_rng(seed)
    m, k, n = 7, 11, 9
    a, b, cin = operands(rng, config, m, k, n, c_in=True)
    with connect(config, max_dim=max_dim) as dev, connect(config) as whole:
        for c_in, rq in ((None, None), (cin, None), (None, RQ), (cin, RQ)):
            got = dev.matmul(a, b, c_in=c_in, requant=rq)
            assert np.array_equal(got, expected(config, a, b, c_in, rq)), (max_dim, seed)
            chunks = [-(-d // max_dim) for d in (m, k, n)]
            assert dev.last.commands == chunks[0] * chunks[1] * chunks[2]
            assert dev.last.cycles == sum(c["cycles"] for c in dev.last.per_command)
            assert dev.last.counters["dma_wr_bytes"] == sum(
                c["dma_wr_bytes"] for c in dev.last.per_command)
            whole.matmul(a, b, c_in=c_in, requant=rq)
            if max_dim < 7:  # more commands, each with its own set-up and drain
                assert dev.last.cycles > whole.last.cycles


def test_k_beyond_max_dim_takes_two_commands(seed):
    config = AcceleratorConfig(rows=2, cols=2)
    rng = np.random.default_rng(seed)
    k = MAX_DIM + 10
    # extreme operands: every product is 2**14, so the int32 sums wrap
    a = np.full((2, k), -128)
    b = np.full((k, 3), -128)
    a[0, :5], b[:3, 1] = rng.integers(-128, 128, 5), rng.integers(-128, 128, 3)
    cin = rng.integers(-2**31, 2**31, size=(2, 3))
    with connect(config) as dev:
        got = dev.matmul(a, b, c_in=cin)
        assert np.array_equal(got, reference.gemm(a, b, cin))
        assert dev.last.commands == 2
        assert [c["dma_wr_bytes"] for c in dev.last.per_command] == [24, 24]
        y = dev.matmul(a, b, requant=RQ)
        assert np.array_equal(y, reference.gemm_requant(a, b, None, RQ))
        assert [c["dma_wr_bytes"] for c in dev.last.per_command] == [24, 6]  # int32, then int8


@pytest.mark.parametrize("memory_bytes", [128, 700, 2000])
def test_tiling_to_a_small_memory(memory_bytes, seed):
    """Matrices larger than the memory: each command's blocks are staged, tiles read back."""
    config = AcceleratorConfig()
    rng = np.random.default_rng(seed)
    a, b, cin = operands(rng, config, 23, 41, 19, c_in=True)
    with connect(config, memory_bytes=memory_bytes) as dev:
        for c_in, rq in ((None, None), (cin, RQ)):
            got = dev.matmul(a, b, c_in=c_in, requant=rq)
            assert np.array_equal(got, expected(config, a, b, c_in, rq)), memory_bytes
            assert dev.last.commands > 1


def test_too_small_a_memory():
    with connect(memory_bytes=40) as dev, pytest.raises(ValueError) as info:
        dev.matmul(np.ones((2, 2), int), np.ones((2, 2), int))
    assert str(info.value) == ("matmul: the device's memory (40 bytes) cannot hold even a "
                               "1×1×1 command")


A = np.ones((3, 4), dtype=np.int8)
B = np.ones((4, 5), dtype=np.int8)


@pytest.mark.parametrize("config,args,kwargs,message", [
    (None, (A.astype(float), B), {}, "matmul: a has dtype float64, expected an integer dtype"),
    (None, (A, B.astype(bool)), {}, "matmul: b has dtype bool, expected an integer dtype"),
    (None, (A[0], B), {}, "matmul: a has shape (4,), expected a 2-D array (M, K)"),
    (None, (A, B[None]), {}, "matmul: b has shape (1, 4, 5), expected a 2-D array (K, N)"),
    (None, (A[:0], B), {}, "matmul: a has shape (0, 4): every dimension must be at least 1"),
    (None, (A, B.T), {}, ("matmul: a has shape (3, 4) and b has shape (5, 4): inner dimensions "
                         "differ (4 != 5)")),
    (None, (np.full((3, 4), 128), B), {},
     "matmul: a holds values outside the signed 8-bit range [-128, 127] (in_width = 8)"),
    (None, (A, np.full((4, 5), -129)), {},
     "matmul: b holds values outside the signed 8-bit range [-128, 127] (in_width = 8)"),
    (None, (A, np.full((4, 5), 200, np.uint8)), {},
     "matmul: b holds values outside the signed 8-bit range [-128, 127] (in_width = 8)"),
    (AcceleratorConfig(in_width=4, acc_width=16), (A * 8, B), {},
     "matmul: a holds values outside the signed 4-bit range [-8, 7] (in_width = 4)"),
    (None, (A, B), {"c_in": np.zeros((5, 3), int)},
     "matmul: c_in has shape (5, 3), expected (3, 5) (rows of a, columns of b)"),
    (None, (A, B), {"c_in": np.zeros((3, 5))},
     "matmul: c_in has dtype float64, expected an integer dtype"),
    (None, (A, B), {"c_in": np.full((3, 5), 2**31)},
     ("matmul: c_in holds values outside the signed 32-bit range [-2147483648, 2147483647] "
     "(acc_width = 32)")),
    (AcceleratorConfig(acc_width=20), (A, B), {"c_in": np.full((3, 5), -2**19 - 1)},
     ("matmul: c_in holds values outside the signed 20-bit range [-524288, 524287] "
     "(acc_width = 20)")),
    (AcceleratorConfig(requant_unit=False), (A, B), {"requant": RQ},
     ("matmul: requant is given but the hardware has no requantization unit "
     "(requant_unit = false)")),
    (None, (A, B), {"requant": 0.5},
     "matmul: requant = 0.5 is not a RequantParams or None"),
    (None, (A, B), {"requant": RequantParams(1 << 30, 1, out_width=16)},
     ("matmul: requant.out_width = 16 is not supported (allowed: 8, the hardware's requantizer "
     "emits int8)")),
    (AcceleratorConfig(acc_width=40), (A, B), {"requant": RQ},
     ("matmul: requant needs acc_width <= 32 (the requantizer takes 32-bit accumulators), the "
     "hardware has acc_width = 40")),
])
def test_matmul_errors(config, args, kwargs, message):
    with connect(config) as dev:
        with pytest.raises(ValueError) as info:
            dev.matmul(*args, **kwargs)
        assert str(info.value) == message
        assert dev.last is None


@pytest.mark.parametrize("kwargs,message", [
    ({"backend": "fpga"}, ("connect: backend = 'fpga' is not known (allowed: model, rtl; a board "
                          "with port=)")),
    ({"backend": "rtl", "port": "/dev/ttyUSB0"},
     "connect: backend = 'rtl' and a board (port= or transport=) are given; give one"),
    ({"port": "/dev/ttyUSB0", "transport": object()},
     "connect: port and transport are both given; give one"),
    ({"config": {"rows": 4}}, "connect: config = {'rows': 4} is not an AcceleratorConfig"),
    ({"max_dim": 0}, f"connect: max_dim = 0 is out of range (allowed: 1 to {MAX_DIM})"),
    ({"max_dim": MAX_DIM + 1},
     f"connect: max_dim = {MAX_DIM + 1} is out of range (allowed: 1 to {MAX_DIM})"),
    ({"memory_bytes": 0}, "connect: memory_bytes = 0 is out of range (allowed: at least 1)"),
])
def test_connect_errors(kwargs, message):
    with pytest.raises(ValueError) as info:
        connect(**kwargs)
    assert str(info.value) == message


def test_connect_limits_at_their_extremes():
    a, b = np.ones((2, 3), int), np.ones((3, 2), int)
    for kwargs in ({"max_dim": 1}, {"max_dim": MAX_DIM}, {"memory_bytes": 1 << 40}):
        with connect(**kwargs) as dev:
            assert np.array_equal(dev.matmul(a, b), np.full((2, 2), 3))


def test_a_closed_device():
    dev = connect()
    dev.close()
    dev.close()
    with pytest.raises(ValueError, match=r"^matmul: the device is closed$"):
        dev.matmul(np.ones((1, 1), int), np.ones((1, 1), int))


def test_matmul_inside_a_running_event_loop():
    """A notebook runs an event loop: the driver's coroutines then run on a thread."""
    import asyncio

    async def main():
        board = FakeBoard(AcceleratorConfig())
        with connect(transport=board) as dev:
            return dev.matmul(np.full((2, 3), 2), np.full((3, 4), 3))

    assert np.array_equal(asyncio.run(main()), np.full((2, 4), 18))


# -- the board backend over a software board -----------------------------------------------------

def test_board_backend(seed):
    config = AcceleratorConfig()
    board = FakeBoard(config)
    rng = np.random.default_rng(seed)
    a, b, cin = operands(rng, config, 6, 10, 7, c_in=True)
    with connect(transport=board) as dev:
        assert dev.backend == "board" and dev.config == config
        assert dev.memory == (RAM_BASE, 16384)
        assert np.array_equal(dev.matmul(a, b), reference.gemm(a, b))
        assert dev.last.cycles == 6 * 10 * 7 and dev.last.commands == 1
        assert set(dev.last.counters) == {"cycles", "mac_cycles", "dma_rd_bytes", "dma_wr_bytes",
                                          "stall_load", "stall_store"}
        y = dev.matmul(a, b, c_in=cin, requant=RQ)
        assert np.array_equal(y, reference.gemm_requant(a, b, cin, RQ))
        assert board.commands[-1]["accumulate"] == board.commands[-1]["requant"] == 1
        assert board.commands[-1]["irq_enable"] == 1
    assert board.closed


def test_board_backend_tiles_to_its_ram(seed):
    """64×64×64 with int32 C needs 24 KiB; the board has 16 KiB."""
    config = AcceleratorConfig()
    board = FakeBoard(config)
    rng = np.random.default_rng(seed)
    a, b, cin = operands(rng, config, 64, 64, 64, c_in=True)
    with connect(config, transport=board) as dev:
        got = dev.matmul(a, b, c_in=cin)
        assert np.array_equal(got, reference.gemm(a, b, cin))
        assert dev.last.commands == len(board.commands) > 1
        assert dev.last.cycles == sum(c["m"] * c["k"] * c["n"] for c in board.commands)
        # every chunk but the first of each K chain accumulates; requant never (none asked)
        assert all(c["requant"] == 0 for c in board.commands)


def test_board_backend_over_a_serial_port(seed):
    """``port=``: pyserial on a pty, the bridge's framed protocol, the same software board."""
    board = FakeBoard(AcceleratorConfig(), ram_bytes=4096)
    rng = np.random.default_rng(seed)
    a, b, cin = operands(rng, board.config, 9, 20, 11, c_in=True)
    with serve_on_pty(board) as port, connect(port=port) as dev:
        assert dev.backend == "board" and dev.memory == (RAM_BASE, 4096)
        y = dev.matmul(a, b, c_in=cin, requant=RQ)
        assert np.array_equal(y, reference.gemm_requant(a, b, cin, RQ))
        assert dev.last.cycles == 9 * 20 * 11


def test_board_backend_refuses_a_board_built_differently():
    board = FakeBoard(AcceleratorConfig(rows=8, cols=8))
    with pytest.raises(ValueError) as info:
        connect(AcceleratorConfig(), transport=board)
    assert str(info.value) == (f"connect: the board holds {AcceleratorConfig(rows=8, cols=8).name}"
                               f", not {AcceleratorConfig().name} (its ID block differs from the "
                               f"config given)")
    assert board.closed


# -- the documented example ----------------------------------------------------------------------


def documented_example() -> str:
    text = (ROOT / "docs" / "device-api.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    example = next(block for block in blocks if "connect(" in block)
    assert 'BACKEND = "model"' in example
    return example


def test_documented_example_runs_on_the_model(capsys):
    exec(compile(documented_example(), "docs/device-api.md", "exec"), {})
    out = capsys.readouterr().out
    assert "commands" in out and "cycles" in out
