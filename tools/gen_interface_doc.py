#!/usr/bin/env python3
"""Regenerate docs/interface.md (the accelerator's ports and config fields) from the code.

    python tools/gen_interface_doc.py            # rewrite docs/interface.md
    python tools/gen_interface_doc.py --check    # exit 1 if docs/interface.md is stale

The port table is the manifest's (``accelerator.flow.rtl.port_list`` of the component ``accel rtl
--top accelerator`` emits), the constant AXI attributes are read from the modules that drive them,
and the config table and the TOML example come from ``accelerator.config``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import generated_page

from accelerator.config import FIELDS, AcceleratorConfig
from accelerator.flow.rtl import ACCEL_TOP, build_component, port_list
from accelerator.hw import compact, dma
from accelerator.hw.axi import BURST_INCR
from accelerator.hw.registers import ADDR_WIDTH, MAP_SIZE

DOC = Path(__file__).resolve().parents[1] / "docs" / "interface.md"

#: Every signal of a full AXI4 master interface (AMBA AXI4, IHI 0022, without AXI3's WID), by
#: channel: what the port is measured against.
AXI4_SIGNALS = {
    "aw": ("awid", "awaddr", "awlen", "awsize", "awburst", "awlock", "awcache", "awprot",
           "awqos", "awregion", "awuser", "awvalid", "awready"),
    "w": ("wdata", "wstrb", "wlast", "wuser", "wvalid", "wready"),
    "b": ("bid", "bresp", "buser", "bvalid", "bready"),
    "ar": ("arid", "araddr", "arlen", "arsize", "arburst", "arlock", "arcache", "arprot",
           "arqos", "arregion", "aruser", "arvalid", "arready"),
    "r": ("rid", "rdata", "rresp", "rlast", "ruser", "rvalid", "rready"),
}
AXI4_LITE_SIGNALS = ("awaddr", "awprot", "awvalid", "awready", "wdata", "wstrb", "wvalid",
                     "wready", "bresp", "bvalid", "bready", "araddr", "arprot", "arvalid",
                     "arready", "rdata", "rresp", "rvalid", "rready")

#: What a port of the accelerator top is, by name (without the interface prefix).
_MEANING = {
    "clk": "the clock: every flip-flop on its rising edge",
    "rst": "synchronous reset, active high: hold it for at least one rising edge of `clk`",
    "irq": "level interrupt: `STATUS.done & MODE.irq_enable`, the AND of two flip-flops",
    "awid": "write ID: always 0", "arid": "read ID: always 0",
    "bid": "ignored (one ID in flight)", "rid": "ignored (one ID in flight)",
    "awlock": "always 0 (normal access)", "arlock": "always 0 (normal access)",
    "awprot": "always 0b000 (data, secure, unprivileged)",
    "arprot": "always 0b000 (data, secure, unprivileged)",
    "awburst": f"always {BURST_INCR:#04b} (INCR)", "arburst": f"always {BURST_INCR:#04b} (INCR)",
    "awsize": "log2(bus bytes): full-width beats (compact engine: 2)",
    "arsize": "log2(bus bytes): full-width beats (compact engine: 0 or 2)",
    "awlen": "beats - 1: up to 255, no burst crosses a 4 KiB boundary (compact engine: 0)",
    "arlen": "beats - 1: up to 255, no burst crosses a 4 KiB boundary (compact engine: 0)",
    "wlast": "last beat of a burst", "rlast": "last beat of a burst (used)",
    "wstrb": "byte enables: rows need not be aligned to the bus",
    "bresp": "checked: not OKAY ends the command with BUS_ERROR",
    "rresp": "checked: not OKAY ends the command with BUS_ERROR",
}
_LITE_MEANING = {
    "awprot": "ignored", "arprot": "ignored",
    "awaddr": f"byte address; {ADDR_WIDTH} bits decode a {1 << ADDR_WIDTH}-byte window",
    "araddr": f"byte address; {ADDR_WIDTH} bits decode a {1 << ADDR_WIDTH}-byte window",
    "bresp": "OKAY, or SLVERR for an unmapped address",
    "rresp": "OKAY, or SLVERR for an unmapped address",
    "wstrb": "byte enables (see docs/registers.md, access types)",
}


def _width(name: str, width: int, other: dict[str, int], config: AcceleratorConfig,
           wide: AcceleratorConfig) -> str:
    """``width``, or its formula when it follows ``axi_data_width``."""
    if other[name] == width:
        return str(width)
    for formula, f in (("axi_data_width", lambda c: c.axi_data_width),
                       ("axi_data_width / 8", lambda c: c.axi_data_width // 8)):
        if width == f(config) and other[name] == f(wide):
            return f"`{formula}` ({width})"
    raise AssertionError(f"{name}: width {width} follows no known parameter")


def _ports(config: AcceleratorConfig) -> list[dict]:
    component = build_component(config, ACCEL_TOP)
    component._MustUse__silence = True  # only its signature is wanted, never its logic
    return port_list(component)


def _port_rows(config: AcceleratorConfig) -> list[str]:
    wide = config.replace(axi_data_width=256 if config.axi_data_width != 256 else 128)
    ports = _ports(config)
    other = {p["name"]: p["width"] for p in _ports(wide)}
    rows = []
    for port in ports:
        name = port["name"]
        prefix, _, signal = name.rpartition("__")
        meaning = (_LITE_MEANING if prefix == "s_axil" else _MEANING).get(signal or name, "")
        if signal in ("awcache", "arcache"):
            meaning = (f"always {dma._AXCACHE:#06b} (normal non-cacheable bufferable)")
        rows.append(f"| `{name}` | {port['direction']} | "
                    f"{_width(name, port['width'], other, config, wide)} | {meaning} |")
    return rows


def _absent(ports: set[str]) -> tuple[list[str], list[str]]:
    full = [f"m_axi__{s}" for channel in AXI4_SIGNALS.values() for s in channel]
    lite = [f"s_axil__{s}" for s in AXI4_LITE_SIGNALS]
    return [p for p in full if p not in ports], [p for p in lite if p not in ports]


def render() -> str:
    config = AcceleratorConfig()
    ports = _ports(config)
    names = {p["name"] for p in ports}
    absent, absent_lite = _absent(names)
    assert compact._AXCACHE == dma._AXCACHE, "the two engines drive AxCACHE alike"
    out: list[str] = []
    w = out.append
    w("# The accelerator's interface: ports and configuration")
    w("")
    w("<!-- Generated by tools/gen_interface_doc.py from the gateware and accelerator/config.py: "
      "do not edit by hand. -->")
    w("")
    w(f"`accel rtl --top {ACCEL_TOP} -o out/` writes `out/{ACCEL_TOP}.v` (module "
      f"`{ACCEL_TOP}`) and `out/{ACCEL_TOP}.json`, whose `ports` list is the table below (for "
      "the config the command was given; this page shows the default config). Port names are "
      "Amaranth's: the interface member and the AXI signal joined by `__` (`m_axi__awaddr`); "
      "a tool that recognises AXI ports by name may need the `__` mapped (to `_`, say). There "
      "is one "
      "clock domain: both AXI ports, the registers and the datapath run on `clk`.")
    w("")
    w("## Ports")
    w("")
    w("| port | direction | width | meaning |")
    w("| --- | --- | --- | --- |")
    out.extend(_port_rows(config))
    w("")
    w(f"`s_axil` is an AXI4-Lite slave with every signal of AXI4-Lite ("
      f"{'none missing' if not absent_lite else ', '.join(absent_lite)}): "
      f"{MAP_SIZE} bytes of 32-bit registers (docs/registers.md), one write and one read at a "
      "time (`awready`/`wready` and `arready` stay low until the response is taken). `m_axi` "
      "is an AXI4 master with a single ID "
      f"(ID width {next(p['width'] for p in ports if p['name'] == 'm_axi__arid')}, always 0): "
      "its reads return in order and it needs no reordering; it never locks and never asks for "
      "exclusive access. Signals of the full AXI4 set that the port does not have (tie them "
      "off at the interconnect, or let the tool default them: QoS 0, region 0, no user bits): "
      + ", ".join(f"`{p.removeprefix('m_axi__')}`" for p in absent) + ".")
    w("")
    w("The DMA (pipelined engine) issues INCR bursts of full-width beats, as many reads in "
      "flight as its row buffer allows, and writes rows with byte strobes; the compact engine "
      "(`engine = \"compact\"`) issues single beats only (`AxLEN` = 0): a byte read "
      "(`ARSIZE` = 0) per operand, 32-bit reads of C_in and 32-bit writes of C (`AxSIZE` = 2), "
      "with the strobes of the word's lane. Addresses are byte addresses of one 32-bit "
      "space.")
    w("")
    w("## Configuration")
    w("")
    w("Every command takes these as options (`--rows 8`), or from a TOML file with `--config "
      "FILE`; options override the file, which overrides the defaults. The file has the "
      "fields as top-level keys, or under an `[accelerator]` table (then none may be outside "
      "it); an unknown key, a wrong type or a value out of range is an error naming the file "
      "and the field.")
    w("")
    w("| field | option | default | allowed | meaning |")
    w("| --- | --- | --- | --- | --- |")
    for f in FIELDS:
        default = str(f.default).lower() if f.kind is bool else f.default
        option = f"`{f.option}` / `--no-{f.option[2:]}`" if f.kind is bool else f"`{f.option}`"
        w(f"| `{f.name}` | {option} | {default} | {f.allowed()} | {f.help} |")
    w("")
    w("An example (`accel rtl --config my.toml --top accelerator -o out/`):")
    w("")
    w("```toml")
    example = AcceleratorConfig(rows=8, cols=8, dataflow="ws", axi_data_width=128)
    w(example.to_toml().rstrip("\n"))
    w("```")
    w("")
    return "\n".join(out)


def stale(path: Path = DOC) -> bool:
    return generated_page.stale(path, render)


def main() -> int:
    return generated_page.main(DOC, render, "gen_interface_doc.py", __doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
