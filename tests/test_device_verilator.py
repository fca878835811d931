"""The device API's RTL backend (the compiled harness) against its model backend: bit-exact
results on edge shapes in both dataflows, with accumulate and requant, the counters the driver
read, the model's counters and cycles, and tiling (K chained through C_in, staged blocks)."""

from __future__ import annotations

import numpy as np
import pytest
from test_device import documented_example

from accelerator import AcceleratorConfig, connect
from accelerator.model import reference
from accelerator.model.reference import RequantParams

pytestmark = pytest.mark.verilator

RQ = RequantParams.from_scale(0.0007, zero_point=-3, relu=True)
CONFIGS = [AcceleratorConfig(rows=2, cols=2),
           # small scratchpads: a K of 70 does not fit one, and the engine walks it in steps
           AcceleratorConfig(rows=2, cols=2, dataflow="ws", spad_a_depth=16, spad_b_depth=16,
                             spad_c_depth=16)]


def _operands(rng, m, k, n):
    return (rng.integers(-128, 128, size=(m, k)), rng.integers(-128, 128, size=(k, n)),
            rng.integers(-2**31, 2**31, size=(m, n)))


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.dataflow)
def test_rtl_backend_equals_the_model_backend(config, build_root, seed):
    rng = np.random.default_rng(seed)
    R, C = config.rows, config.cols
    shapes = [(1, 1, 1), (R, R, C), (R + 1, 2 * R + 1, C + 1), (37, 29, 41), (9, 70, 5)]
    with connect(config, backend="rtl", build_root=build_root) as dev, connect(config) as model:
        assert dev.backend == "rtl" and dev.config == config
        for m, k, n in shapes:
            a, b, cin = _operands(rng, m, k, n)
            for c_in, rq in ((None, None), (cin, None), (None, RQ), (cin, RQ)):
                where = (f"{m}×{k}×{n} c_in={c_in is not None} requant={rq is not None}, "
                         f"ACCEL_SEED={seed}")
                got = dev.matmul(a, b, c_in=c_in, requant=rq)
                want = model.matmul(a, b, c_in=c_in, requant=rq)
                assert got.dtype == want.dtype and np.array_equal(got, want), where
                assert np.array_equal(got, reference.gemm_requant(a, b, c_in, rq) if rq
                                      else reference.gemm(a, b, c_in)), where
                assert dev.last.commands == model.last.commands == 1
                # the counters of the call are those the hardware's registers hold now
                assert dev.last.counters == dev.last.per_command[0] == \
                    dev._target._loop.run(dev._target.driver.counters()), where
                assert dev.last.cycles == dev.last.counters["cycles"] > 0
                for name in ("dma_rd_bytes", "dma_wr_bytes"):
                    assert model.last.counters[name] == dev.last.counters[name], (name, where)
                error = (model.last.cycles - dev.last.cycles) / dev.last.cycles
                assert abs(error) <= 0.05, (error, where)


@pytest.mark.parametrize("config", CONFIGS[:1], ids=lambda c: c.dataflow)
def test_rtl_backend_tiles(config, build_root, seed):
    """K in three chunks through C_in, the requantizer on the last; then blocks staged in a
    memory too small for the matrices."""
    rng = np.random.default_rng(seed)
    a, b, cin = _operands(rng, 5, 11, 7)
    with connect(config, backend="rtl", build_root=build_root, max_dim=4) as dev, \
            connect(config, max_dim=4) as model:
        for c_in, rq in ((None, None), (cin, RQ)):
            got = dev.matmul(a, b, c_in=c_in, requant=rq)
            assert np.array_equal(got, model.matmul(a, b, c_in=c_in, requant=rq)), seed
            assert dev.last.commands == model.last.commands == 2 * 3 * 2
            assert dev.last.cycles == sum(c["cycles"] for c in dev.last.per_command)
            assert dev.last.counters["dma_wr_bytes"] == model.last.counters["dma_wr_bytes"]
    with connect(config, backend="rtl", build_root=build_root, memory_bytes=300) as dev:
        got = dev.matmul(a, b, c_in=cin, requant=RQ)
        assert np.array_equal(got, reference.gemm_requant(a, b, cin, RQ)), seed
        assert dev.last.commands > 1


def test_documented_example_runs_on_the_rtl(build_root, capsys):
    example = documented_example().replace('BACKEND = "model"', 'BACKEND = "rtl"')
    example = example.replace("backend=BACKEND)",
                              f"backend=BACKEND, build_root={str(build_root)!r})")
    assert str(build_root) in example
    exec(compile(example, "docs/device-api.md", "exec"), {})
    out = capsys.readouterr().out
    assert "int32 (37, 20)" in out and "'mac_cycles'" in out
