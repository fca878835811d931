"""The parameter space of a sweep: ``--param NAME=VALUES`` and the cartesian product of configs.

Any field of :data:`accelerator.config.FIELDS` can be swept. Values are a comma list of items,
each a single value or, for integer fields, an inclusive range ``A..B`` (every integer) or
``A..B:S`` (every S-th)::

    rows=2,4,8        rows=2..16        rows=2..16:2        dataflow=os,ws
    requant_unit=true,false             spad_a_depth=256,512,1024
    rows,cols=2,4,8   (fields named together take each value together: 2×2, 4×4, 8×8)

A value that no config accepts (``rows=128``) is bad input and is reported at once, naming the
``--param``. A *combination* the config rejects (``in_width=16`` with ``acc_width=16``) is not:
it becomes one failed point of the sweep, with the config's message, and the rest still run.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..config import FIELDS, AcceleratorConfig, ConfigError, Field

__all__ = ["ConfigPoint", "Param", "SpaceError", "check_unique", "expand", "field_names",
           "param_from_option", "parse_param", "parse_values", "size"]

_BY_NAME = {f.name: f for f in FIELDS}
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


class SpaceError(ValueError):
    """Bad ``--param`` input. ``str()`` is the one-line message the CLI prints."""


def field_names() -> str:
    return ", ".join(_BY_NAME)


@dataclass(frozen=True)
class Param:
    """Swept config fields and their values, in the order given (duplicates dropped).

    Usually one field; fields named together (``rows,cols=2,4,8``) take each value together,
    which sweeps square arrays without the whole product.
    """

    names: tuple[str, ...]
    values: tuple[Any, ...]
    text: str  # how the user wrote it (``--param rows=2,4``, ``--rows 2,4``), for messages

    @property
    def name(self) -> str:
        return ",".join(self.names)


@dataclass(frozen=True)
class ConfigPoint:
    """One combination of the swept values: the config it makes, or why there is none."""

    values: dict[str, Any]          # the swept fields only, in --param order
    config: AcceleratorConfig | None
    error: str | None = None


def _int(text: str, where: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise SpaceError(f"{where}: {text!r} is not an integer") from None


def _items(field: Field, item: str, where: str) -> list[Any]:
    if field.kind is bool:
        low = item.lower()
        if low in _TRUE:
            return [True]
        if low in _FALSE:
            return [False]
        raise SpaceError(f"{where}: {item!r} is not a boolean (allowed: true, false)")
    if field.kind is str:
        return [item]
    if ".." not in item:
        return [_int(item, where)]
    lo_text, _, rest = item.partition("..")
    hi_text, colon, step_text = rest.partition(":")
    lo, hi = _int(lo_text, where), _int(hi_text, where)
    step = _int(step_text, where) if colon else 1
    if step < 1:
        raise SpaceError(f"{where}: the step of {item!r} must be 1 or more")
    if lo > hi:
        raise SpaceError(f"{where}: the range {item!r} is empty")
    return list(range(lo, hi + 1, step))


def parse_values(field: Field, text: str, *, where: str | None = None) -> tuple[Any, ...]:
    """The values of ``text`` for ``field``, each checked on its own by the config's rules.

    ``where`` is how the user wrote it (``--param rows=2,4`` or ``--rows 2,4``), for messages.
    """
    where = where or f"--param {field.name}={text}"
    values: list[Any] = []
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            raise SpaceError(f"{where}: empty value in the list")
        for value in _items(field, item, where):
            try:
                value = field.check(value)
            except ConfigError as exc:
                raise SpaceError(f"{where}: {exc}") from None
            if value not in values:
                values.append(value)
    return tuple(values)


def param_from_option(field: Field, text: str) -> Param:
    """A field's own option, ``--rows 2,4,8``: the same values as ``--param rows=2,4,8``."""
    where = f"{field.option} {text}"
    return Param(names=(field.name,), values=parse_values(field, text, where=where), text=where)


def parse_param(text: str) -> Param:
    """Parse one ``NAME=VALUES`` or ``NAME,NAME=VALUES`` (the fields take each value together);
    a name may use dashes (``axi-data-width``) or underscores."""
    names_text, equals, values = text.partition("=")
    names = tuple(n.strip().replace("-", "_") for n in names_text.split(","))
    if not equals or not all(names):
        raise SpaceError(f"--param {text}: expected NAME=VALUES, e.g. rows=2,4,8")
    where = f"--param {text}"
    parsed: tuple[Any, ...] = ()
    for name in names:
        field = _BY_NAME.get(name)
        if field is None:
            raise SpaceError(f"{where}: unknown config field {name!r} (known: {field_names()})")
        if len(set(names)) != len(names):
            raise SpaceError(f"{where}: {name} is named twice")
        if parsed and field.kind is not _BY_NAME[names[0]].kind:
            raise SpaceError(f"{where}: {names[0]} and {name} take different kinds of value")
        # every field checks the values by its own rules (rows and cols have the same range,
        # spad depths their power of two)
        parsed = parse_values(field, values, where=where)
    return Param(names=names, values=parsed, text=where)


def check_unique(params: Iterable[Param]) -> None:
    """A field swept twice is a mistake (which list did the user mean?), not a union."""
    seen: dict[str, Param] = {}
    for param in params:
        for name in param.names:
            if name in seen:
                raise SpaceError(f"{param.text}: {name} is already swept by {seen[name].text}")
            seen[name] = param


def size(params: Sequence[Param]) -> int:
    """How many combinations :func:`expand` makes, without making them."""
    return math.prod(len(p.values) for p in params)


def expand(base: AcceleratorConfig, params: Sequence[Param]) -> list[ConfigPoint]:
    """Every combination of ``params`` applied to ``base``; the last param varies fastest.

    A combination the config rejects is kept, with the config's one-line message as its error.
    """
    check_unique(params)
    points: list[ConfigPoint] = []
    for combo in itertools.product(*(p.values for p in params)):
        values = {name: v for p, v in zip(params, combo, strict=True) for name in p.names}
        try:
            points.append(ConfigPoint(values=values, config=base.replace(**values)))
        except ConfigError as exc:
            points.append(ConfigPoint(values=values, config=None,
                                      error=f"invalid config: {exc}"))
    return points
