"""The boards the flow knows, as amaranth-boards platforms: ``accel build`` builds for them,
``accel rtl --board`` elaborates for them (:mod:`accelerator.flow.rtl`)."""

from __future__ import annotations

from typing import ClassVar

from amaranth.build import Attrs
from amaranth_boards.icebreaker import ICEBreakerPlatform
from amaranth_boards.orangecrab_r0_2 import OrangeCrabR0_2_25FPlatform, OrangeCrabR0_2_85FPlatform
from amaranth_boards.resources import UARTResource
from amaranth_boards.ulx3s import ULX3S_25F_Platform, ULX3S_85F_Platform

__all__ = ["BOARDS"]


def _orangecrab(platform: type) -> type:
    """The OrangeCrab r0.2 as the board top needs it.

    * It has USB but no UART: the serial port goes on the Feather header's D0 (RX) and D1 (TX),
      where every Feather board has it (3.3 V).
    * Its flow ends with ``dfu-suffix`` (for the DFU bootloader), which is not on PyPI: the
      build stops at the ``.bit``; ``dfu-suffix -v 1209 -p 5af0 -a top.bit`` adds it.
    """
    uart = UARTResource(0, rx="0", tx="1", conn=("io", 0), attrs=Attrs(IO_TYPE="LVCMOS33"))

    class OrangeCrab(platform):
        resources: ClassVar[list] = [*platform.resources, uart]

        @property
        def required_tools(self):
            return [tool for tool in super().required_tools if tool != "dfu-suffix"]

        @property
        def command_templates(self):
            return [step for step in super().command_templates if "dfu-suffix" not in step]

    OrangeCrab.__name__ = OrangeCrab.__qualname__ = platform.__name__
    return OrangeCrab


#: The boards ``accel build`` knows: name → amaranth-boards platform class.
BOARDS: dict[str, type] = {
    "icebreaker": ICEBreakerPlatform,
    "orangecrab-25f": _orangecrab(OrangeCrabR0_2_25FPlatform),
    "orangecrab-85f": _orangecrab(OrangeCrabR0_2_85FPlatform),
    "ulx3s-25f": ULX3S_25F_Platform,
    "ulx3s-85f": ULX3S_85F_Platform,
}
