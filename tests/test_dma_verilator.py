"""The DMA engine in Verilator against cocotbext-axi's AxiRam, one model per AXI data width.

The flow's ``build_component`` knows only the core, so this file emits the DMA itself
(``verilog.convert(DMA(config), name="dma_top")``) into a build directory keyed by a digest of
the gateware source, the config and the tools, builds it with cocotb's Verilator runner, and then
runs verification/dma_tb.py through :func:`accelerator.flow.sim.run_tests`.
"""

from __future__ import annotations

import json
import re

import pytest

from accelerator.config import AcceleratorConfig
from accelerator.flow.rtl import DMA_TOP
from accelerator.flow.sim import build_model, run_tests

WIDTHS = [32, 64, 128, 256]
TESTS = 7  # @cocotb.test()s in verification/dma_tb.py


@pytest.mark.verilator
@pytest.mark.parametrize("width", WIDTHS, ids=[f"axi{w}" for w in WIDTHS])
def test_dma_in_verilator(width, seed, build_root):
    config = AcceleratorConfig(axi_data_width=width)
    model = build_model(config, top=DMA_TOP, root=build_root)
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
