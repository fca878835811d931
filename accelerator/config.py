"""The one configuration object of the accelerator.

Every parameter of the hardware lives here and only here: the gateware, the reference model, the
performance model, the host driver and the docs all read it from an :class:`AcceleratorConfig`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = ["DATAFLOWS", "ENGINES", "FIELDS", "REGISTERED_DSP_LATENCY", "AcceleratorConfig",
           "ConfigError", "Field"]

DATAFLOWS = ("os", "ws")
ENGINES = ("pipelined", "compact")
AXI_DATA_WIDTHS = (32, 64, 128, 256)
#: The cycles a registered DSP multiplier adds (:attr:`AcceleratorConfig.product_latency`): its
#: input registers take the place of a pipelined PE's product register, its pipeline and output
#: registers are two more, and a fabric register of the product a third (the route from the
#: block to the PE's adder is a path of its own).
REGISTERED_DSP_LATENCY = 3


class ConfigError(ValueError):
    """A configuration value is invalid. ``str()`` is a one-line message naming the field."""

    def __init__(self, field: str | None, message: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Field:
    """How one config field is named, checked and documented."""

    name: str
    kind: type
    default: Any
    help: str
    lo: int | None = None
    hi: int | None = None
    choices: tuple | None = None
    power_of_two: bool = False

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")

    def allowed(self) -> str:
        if self.choices is not None:
            return ", ".join(str(c) for c in self.choices)
        if self.kind is bool:
            return "true, false"
        text = f"{self.lo} to {self.hi}"
        if self.power_of_two:
            text = "a power of two from " + text
        return text

    def check(self, value: Any) -> Any:
        """Return ``value`` converted to this field's type, or raise :class:`ConfigError`."""
        if self.kind is bool:
            if not isinstance(value, bool):
                raise ConfigError(self.name, f"{self.name} = {value!r} is not a boolean "
                                             f"(allowed: {self.allowed()})")
            return value
        if self.kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise ConfigError(self.name, f"{self.name} = {value!r} is not an integer "
                                         f"(allowed: {self.allowed()})")
        if self.kind is str and not isinstance(value, str):
            raise ConfigError(self.name, f"{self.name} = {value!r} is not a string "
                                         f"(allowed: {self.allowed()})")
        if self.choices is not None and value not in self.choices:
            raise ConfigError(self.name, f"{self.name} = {value!r} is not allowed "
                                         f"(allowed: {self.allowed()})")
        if self.lo is not None and not (self.lo <= value <= self.hi):
            raise ConfigError(self.name, f"{self.name} = {value} is out of range "
                                         f"(allowed: {self.allowed()})")
        if self.power_of_two and value & (value - 1):
            raise ConfigError(self.name, f"{self.name} = {value} is not a power of two "
                                         f"(allowed: {self.allowed()})")
        return value


#: Every field of the config, in the order the docs and the CLI list them.
FIELDS: tuple[Field, ...] = (
    Field("rows", int, 4, "rows of the PE array", lo=1, hi=64),
    Field("cols", int, 4, "columns of the PE array", lo=1, hi=64),
    Field("dataflow", str, "os", "os: output-stationary, ws: weight-stationary",
          choices=DATAFLOWS),
    Field("in_width", int, 8, "width of the signed operands in bits", lo=2, hi=16),
    Field("acc_width", int, 32, "width of the signed accumulators in bits (wraps)", lo=8, hi=64),
    Field("spad_a_depth", int, 1024, "entries of the A scratchpad (one array row each)",
          lo=16, hi=65536, power_of_two=True),
    Field("spad_b_depth", int, 1024, "entries of the B scratchpad (one array column each)",
          lo=16, hi=65536, power_of_two=True),
    Field("spad_c_depth", int, 1024, "entries of the C accumulator scratchpad",
          lo=16, hi=65536, power_of_two=True),
    Field("axi_data_width", int, 64, "data width of the AXI4 memory port in bits",
          choices=AXI_DATA_WIDTHS),
    Field("requant_unit", bool, True, "generate the int8 requantization stage"),
    Field("engine", str, "pipelined",
          "pipelined: scratchpads, burst DMA and overlapped stages; compact: one operand byte "
          "per bus read, one stage at a time, for small FPGAs (os, int8, int32 C, no requant unit)",
          choices=ENGINES),
    Field("registered_dsp", bool, False,
          "PE multipliers with the DSP block's input, pipeline and output registers on (the "
          "ECP5 MULT18X18D; elsewhere an equivalent register pipeline): a faster clock, "
          "result_latency more cycles per tile (pipelined engine only)"),
)

#: Fields added after configs were first hashed: they enter :attr:`AcceleratorConfig.digest`
#: only when they differ from their default, so the digests of earlier configs (in baselines,
#: build caches and ID registers of built hardware) stay what they were.
_LATE_FIELDS = ("engine", "registered_dsp")

_BY_NAME = {f.name: f for f in FIELDS}


@dataclass(frozen=True)
class AcceleratorConfig:
    """The hardware's parameters, validated on construction. Immutable and hashable."""

    rows: int = 4
    cols: int = 4
    dataflow: str = "os"
    in_width: int = 8
    acc_width: int = 32
    spad_a_depth: int = 1024
    spad_b_depth: int = 1024
    spad_c_depth: int = 1024
    axi_data_width: int = 64
    requant_unit: bool = True
    engine: str = "pipelined"
    registered_dsp: bool = False

    def __post_init__(self) -> None:
        for field in FIELDS:
            field.check(getattr(self, field.name))
        if self.acc_width < 2 * self.in_width:
            raise ConfigError(
                "acc_width",
                f"acc_width = {self.acc_width} is out of range "
                f"(allowed: {2 * self.in_width} to 64, at least twice in_width = {self.in_width})")
        if self.engine == "compact":
            # what the compact engine moves: one byte per operand, one int32 word per result
            for name, ok, allowed in (("dataflow", self.dataflow == "os", "os"),
                                      ("in_width", self.in_width <= 8, "2 to 8"),
                                      ("acc_width", self.acc_width <= 32, "up to 32"),
                                      ("requant_unit", not self.requant_unit, "false"),
                                      ("registered_dsp", not self.registered_dsp, "false")):
                if not ok:
                    raise ConfigError(name, f"{name} = {getattr(self, name)!r} is not allowed "
                                            f"with engine = 'compact' (allowed: {allowed})")

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], *, source: str | None = None
                  ) -> AcceleratorConfig:
        """Build a config from a mapping, naming an unknown key and its source in the error."""
        for key in values:
            if key not in _BY_NAME:
                where = f" in {source}" if source else ""
                raise ConfigError(key, f"unknown config field {key!r}{where} "
                                       f"(known: {', '.join(_BY_NAME)})")
        return cls(**dict(values))

    @classmethod
    def from_toml(cls, path: str | Path) -> AcceleratorConfig:
        """Load a TOML file: top-level keys, or the same keys under an ``[accelerator]`` table."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")  # TOML is UTF-8, whatever the locale
        except OSError as exc:
            raise ConfigError(None, f"{path}: cannot read: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(None, f"{path}: invalid TOML: not UTF-8 (byte {exc.start})"
                              ) from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(None, f"{path}: invalid TOML: {exc}") from None
        if isinstance(data.get("accelerator"), dict):
            # A field left outside the table would otherwise be silently ignored.
            for key in data:
                if key in _BY_NAME:
                    raise ConfigError(key, f"{path}: config field {key!r} is outside the "
                                           f"[accelerator] table")
            data = data["accelerator"]
        try:
            return cls.from_dict(data)
        except ConfigError as exc:
            raise ConfigError(exc.field, f"{path}: {exc}") from None

    def replace(self, **changes: Any) -> AcceleratorConfig:
        """A copy with some fields changed (and validated again)."""
        return dataclasses.replace(self, **changes)

    # -- identity -------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in FIELDS}

    def to_toml(self) -> str:
        lines = ["[accelerator]"]
        for key, value in self.to_dict().items():
            text = json.dumps(value) if not isinstance(value, bool) else str(value).lower()
            lines.append(f"{key} = {text}")
        return "\n".join(lines) + "\n"

    @property
    def digest(self) -> str:
        """A short digest of every field: equal configs have equal digests, across runs."""
        values = {k: v for k, v in self.to_dict().items()
                  if k not in _LATE_FIELDS or v != _BY_NAME[k].default}
        canonical = json.dumps(values, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    @property
    def name(self) -> str:
        """A readable name for build directories: ``os_4x4_a1b2c3d4e5f6``."""
        return f"{self.dataflow}_{self.rows}x{self.cols}_{self.digest}"

    # -- derived quantities ---------------------------------------------------------------------

    @property
    def pes(self) -> int:
        return self.rows * self.cols

    @property
    def product_latency(self) -> int:
        """Cycles a PE's product arrives after its operands, beyond the one product register of
        every pipelined PE: the registered DSP's pipeline and output registers
        (:mod:`accelerator.hw.pe_ecp5`), and weight-stationary one more, since its PEs give the
        block the weight they hold rather than the next one. The core's latency, and so the
        performance model's, grows by as much."""
        if not self.registered_dsp:
            return 0
        return REGISTERED_DSP_LATENCY + (self.dataflow == "ws")

    @property
    def slot_latency(self) -> int:
        """Cycles an output-stationary PE's output slot loads after its last sum, beyond the
        plain PE's: 1 on registered DSPs, whose slot takes the accumulator's register (so the
        carry chain ends at the accumulator alone), else 0."""
        return int(self.registered_dsp and self.dataflow == "os")

    @property
    def input_latency(self) -> int:
        """Cycles a weight-stationary core's inputs take beyond the plain core's input
        register: 1 on registered DSPs, where every lane of the skews has a register, column 0's
        too (its weight chain's control then comes from a register, not from the handshake's
        logic), else 0."""
        return int(self.registered_dsp and self.dataflow == "ws")

    @property
    def result_latency(self) -> int:
        """Cycles a core's results leave later than the plain pipelined core's:
        :attr:`product_latency`, :attr:`slot_latency` and :attr:`input_latency`. The
        performance model reads it."""
        return self.product_latency + self.slot_latency + self.input_latency

    @property
    def in_min(self) -> int:
        return -(1 << (self.in_width - 1))

    @property
    def in_max(self) -> int:
        return (1 << (self.in_width - 1)) - 1

    @property
    def axi_bytes(self) -> int:
        return self.axi_data_width // 8
