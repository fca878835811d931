"""The DMA engine in Verilator against cocotbext-axi's AxiRam, one model per AXI data width.

The flow's ``build_component`` knows only the core, so this file emits the DMA itself
(``verilog.convert(DMA(config), name="dma_top")``) into a build directory keyed by a digest of
the gateware source, the config and the tools, builds it with cocotb's Verilator runner, and then
runs verification/dma_tb.py through :func:`accelerator.flow.sim.run_tests`.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from accelerator.config import AcceleratorConfig
from accelerator.flow.rtl import write_atomic
from accelerator.flow.sim import (
    SimModel,
    _build_args,  # the same Verilator flags as every other model (run_tests rebuilds with them)
    run_tests,
    source_digest,
)
from accelerator.flow.toolchain import setup_environment

DMA_TOP = "dma_top"
WIDTHS = [32, 64, 128, 256]
TESTS = 7  # @cocotb.test()s in verification/dma_tb.py


def build_dma_model(config: AcceleratorConfig, root: Path) -> SimModel:
    """Emit ``dma_top.v`` and build its Verilator model, or reuse a cached build."""
    import cocotb
    from amaranth.back import verilog
    from cocotb_tools.runner import get_runner

    from accelerator.hw.dma import DMA

    env = setup_environment()
    key = {"top": DMA_TOP, "config": config.to_dict(), "source": source_digest(),
           "cocotb": cocotb.__version__, "python": sys.version.split()[0],
           "verilator_root": env.get("VERILATOR_ROOT"), "args": _build_args(False)}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    build_dir = (root / "sim" / f"{DMA_TOP}_{config.axi_data_width}_{digest}").resolve()
    verilog_path = build_dir / f"{DMA_TOP}.v"
    stamp = build_dir / "model.json"
    model = SimModel(config=config, top=DMA_TOP, build_dir=build_dir, verilog=verilog_path,
                     manifest=stamp, waves=False, rebuilt=False, build_log=build_dir / "build.log")
    if stamp.is_file() and (build_dir / DMA_TOP).is_file():
        return model
    start = time.monotonic()
    write_atomic(verilog_path, verilog.convert(DMA(config), name=DMA_TOP, emit_src=False))
    runner = get_runner("verilator")
    try:
        runner.build(sources=[verilog_path], hdl_toplevel=DMA_TOP, build_dir=build_dir,
                     build_args=_build_args(False), waves=False, always=True,
                     timescale=("1ns", "1ps"), log_file=model.build_log)
    except (SystemExit, subprocess.CalledProcessError, RuntimeError) as exc:
        raise RuntimeError(f"Verilator build of {DMA_TOP} failed ({exc}); "
                           f"see {model.build_log}") from None
    model.rebuilt = True
    model.build_seconds = time.monotonic() - start
    write_atomic(stamp, json.dumps({**key, "build_seconds": model.build_seconds}, indent=2))
    return model


@pytest.mark.verilator
@pytest.mark.parametrize("width", WIDTHS, ids=[f"axi{w}" for w in WIDTHS])
def test_dma_in_verilator(width, seed, build_root):
    config = AcceleratorConfig(axi_data_width=width)
    model = build_dma_model(config, build_root)
    report = model.build_dir / "report.json"
    report.unlink(missing_ok=True)
    outcome = run_tests(model, "dma_tb", seed=seed, extra_env={"ACCEL_REPORT": str(report)})
    assert outcome.ok, (f"ACCEL_SEED={seed}: {outcome.failed} failed: {outcome.failures}; "
                        f"log: {outcome.log}")
    assert outcome.passed == TESTS
    measured = json.loads(report.read_text())["throughput"]
    print(f"axi{width}: " + ", ".join(f"{k} {v:.4g}" for k, v in measured.items()))
    assert measured["read_beats_per_cycle"] >= 0.9


def test_axi4_signature_is_flat_and_comparable():
    """The AXI members sit at the top level (Verilog ``m_axi__awaddr``), as cocotbext-axi's
    ``AxiBus.from_prefix(dut, "m_axi", bus_separator="__")`` wants them."""
    from amaranth.back import verilog

    from accelerator.hw.axi import AXI4Signature
    from accelerator.hw.dma import DMA, DMAReader, DMAWriter

    full = AXI4Signature(32, 64, 1)
    assert full == AXI4Signature() and full != AXI4Signature(data_width=128)
    assert repr(AXI4Signature(write=False)) == (
        "AXI4Signature(addr_width=32, data_width=64, id_width=1, write=False)")
    read, write = AXI4Signature(read=True, write=False), AXI4Signature(read=False, write=True)
    assert set(read.members) | set(write.members) == set(full.members)
    assert not set(read.members) & set(write.members)
    with pytest.raises(ValueError):
        AXI4Signature(read=False, write=False)
    with pytest.raises(ValueError):
        AXI4Signature(data_width=48)

    config = AcceleratorConfig(axi_data_width=128)
    text = verilog.convert(DMA(config), name=DMA_TOP, emit_src=False)
    header = re.search(r"module dma_top\((.*?)\);", text, re.DOTALL).group(1)
    ports = {port.strip() for port in header.split(",")}
    for name in ("awid", "awaddr", "awlen", "awsize", "awburst", "awvalid", "awready", "wdata",
                 "wstrb", "wlast", "wvalid", "wready", "bid", "bresp", "bvalid", "bready", "arid",
                 "araddr", "arlen", "arsize", "arburst", "arvalid", "arready", "rid", "rdata",
                 "rresp", "rlast", "rvalid", "rready", "awprot", "arcache", "awlock"):
        assert f"m_axi__{name}" in ports, name
    assert "[127:0] m_axi__wdata" in text and "[15:0] m_axi__wstrb" in text
    for part in (DMAReader(config), DMAWriter(config)):
        verilog.convert(part, emit_src=False)
