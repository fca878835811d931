"""Workloads of a sweep: named lists of GEMM layers, each run ``count`` times: ``C = A·B``.

Three sources:

* a GEMM shape, ``--gemm 128x96x64``: one layer;
* a workload file (TOML, CSV or JSON) of named layers with ``m``, ``k``, ``n`` and ``count``;
* a bundled network, by name (:data:`BUNDLED`): ``resnet18``, ``bert-base``, ``vit-b16``, ``mlp``.

File formats (``count`` is optional, 1 by default; ``name`` is optional, ``layerN`` by default;
the workload is named after the file unless the file says otherwise)::

    # net.toml                     # net.csv          # net.json
    name = "my-net"                name,m,k,n,count   {"name": "my-net",
    [[layers]]                     fc1,64,784,1024,1   "layers": [{"name": "fc1", "m": 64,
    name = "fc1"                                                   "k": 784, "n": 1024}]}
    m = 64
    k = 784
    n = 1024
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..model.regmap import MAX_DIM

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = ["BUNDLED", "Layer", "Workload", "WorkloadError", "bert_base", "load_workload", "mlp",
           "parse_gemm", "resnet18", "vit_b16"]


class WorkloadError(ValueError):
    """A bad GEMM shape or workload file. ``str()`` is one line naming the input."""


@dataclass(frozen=True)
class Layer:
    """One GEMM of a workload, run ``count`` times."""

    name: str
    m: int
    k: int
    n: int
    count: int = 1

    @property
    def macs(self) -> int:
        return self.m * self.k * self.n * self.count

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.m, self.k, self.n)


@dataclass(frozen=True)
class Workload:
    """A named list of layers; its ``digest`` identifies it in a sweep's point keys."""

    name: str
    layers: tuple[Layer, ...]

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "layers": [asdict(layer) for layer in self.layers]}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Workload:
        return cls(name=values["name"], layers=tuple(Layer(**layer) for layer in values["layers"]))

    @property
    def digest(self) -> str:
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]


_GEMM_RE = re.compile(r"^\s*(\d+)\s*[x×]\s*(\d+)\s*[x×]\s*(\d+)\s*$")


def parse_gemm(text: str) -> Workload:
    """``MxKxN`` (``×`` also accepted) as a one-layer workload named ``MxKxN``: one GEMM, so
    within what one hardware command takes (a network's layers may be larger: software splits
    them)."""
    match = _GEMM_RE.match(text)
    if not match:
        raise WorkloadError(f"--gemm {text}: expected MxKxN, e.g. 128x96x64")
    m, k, n = (int(g) for g in match.groups())
    for dim, value in zip("mkn", (m, k, n), strict=True):
        if not 1 <= value <= MAX_DIM:
            raise WorkloadError(f"--gemm {text}: {dim} = {value} is out of range "
                                f"(allowed: 1 to {MAX_DIM})")
    name = f"{m}x{k}x{n}"
    return Workload(name=name, layers=(Layer(name=name, m=m, k=k, n=n),))


# -- files --------------------------------------------------------------------------------------


def _layer(values: Mapping[str, Any], index: int, where: str) -> Layer:
    known = ("name", "m", "k", "n", "count")
    for key in values:
        if key not in known:
            raise WorkloadError(f"{where}: layer {index}: unknown key {key!r} "
                                f"(known: {', '.join(known)})")
    dims: dict[str, int] = {}
    for key in ("m", "k", "n", "count"):
        if key not in values:
            if key == "count":
                dims[key] = 1
                continue
            raise WorkloadError(f"{where}: layer {index}: {key} is missing")
        raw = values[key]
        if isinstance(raw, str):
            raw = raw.strip()
            raw = int(raw) if raw.lstrip("-").isdigit() else raw
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise WorkloadError(f"{where}: layer {index}: {key} = {raw!r} is not an integer")
        if raw < 1:
            raise WorkloadError(f"{where}: layer {index}: {key} = {raw} is out of range "
                                f"(allowed: 1 or more)")
        dims[key] = raw
    name = str(values.get("name") or f"layer{index}")
    return Layer(name=name, **dims)


def _layers(items: Iterable[Any], where: str) -> tuple[Layer, ...]:
    layers = []
    for index, item in enumerate(items, 1):
        if not isinstance(item, Mapping):
            raise WorkloadError(f"{where}: layer {index}: expected a table of name, m, k, n, "
                                f"count")
        layers.append(_layer(item, index, where))
    if not layers:
        raise WorkloadError(f"{where}: no layers")
    return tuple(layers)


def _from_file(path: Path) -> Workload:
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise WorkloadError(f"{where}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise WorkloadError(f"{where}: not UTF-8 (byte {exc.start})") from None
    suffix = path.suffix.lower()
    name: Any = path.stem
    if suffix == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise WorkloadError(f"{where}: invalid TOML: {exc}") from None
        name = data.get("name", name)
        if not isinstance(data.get("layers"), list):
            raise WorkloadError(f"{where}: expected [[layers]] tables")
        items: Iterable[Any] = data["layers"]
    elif suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise WorkloadError(f"{where}: invalid JSON: {exc}") from None
        if isinstance(data, Mapping):
            name = data.get("name", name)
            data = data.get("layers")
        if not isinstance(data, list):
            raise WorkloadError(f"{where}: expected a list of layers or "
                                f"{{\"name\": ..., \"layers\": [...]}}")
        items = data
    elif suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        missing = [c for c in ("m", "k", "n") if c not in (reader.fieldnames or [])]
        if missing:
            raise WorkloadError(f"{where}: the header lacks {', '.join(missing)} "
                                f"(expected name,m,k,n,count)")
        items = [{k: v for k, v in row.items() if v not in (None, "")} for row in reader]
    else:
        raise WorkloadError(f"{where}: unknown workload format {suffix or '(none)'!r} "
                            f"(known: .toml, .csv, .json)")
    if not isinstance(name, str) or not name:
        raise WorkloadError(f"{where}: name = {name!r} is not a string")
    return Workload(name=name, layers=_layers(items, where))


# -- bundled networks ---------------------------------------------------------------------------


def _conv(name: str, out_hw: int, in_ch: int, kernel: int, out_ch: int, count: int = 1) -> Layer:
    """A convolution lowered by im2col: M = output pixels, K = in_ch·kh·kw, N = out_ch."""
    return Layer(name=name, m=out_hw * out_hw, k=in_ch * kernel * kernel, n=out_ch, count=count)


def resnet18() -> Workload:
    """ResNet-18 at batch 1 and 224×224: every convolution by im2col, then the FC layer.

    Convolution → GEMM: M = out_h·out_w, K = in_ch·kh·kw, N = out_ch (pooling, batch norm,
    ReLU and the residual additions are not GEMMs and are left out). Layers with the same shape
    are one entry with a count: 1.81 GMACs in all (the published 1.8 G multiply-adds).
    """
    return Workload(name="resnet18", layers=(
        _conv("conv1", 112, 3, 7, 64),
        _conv("layer1.conv3x3", 56, 64, 3, 64, count=4),
        _conv("layer2.0.conv1", 28, 64, 3, 128),
        _conv("layer2.conv3x3", 28, 128, 3, 128, count=3),
        _conv("layer2.0.downsample", 28, 64, 1, 128),
        _conv("layer3.0.conv1", 14, 128, 3, 256),
        _conv("layer3.conv3x3", 14, 256, 3, 256, count=3),
        _conv("layer3.0.downsample", 14, 128, 1, 256),
        _conv("layer4.0.conv1", 7, 256, 3, 512),
        _conv("layer4.conv3x3", 7, 512, 3, 512, count=3),
        _conv("layer4.0.downsample", 7, 256, 1, 512),
        Layer("fc", m=1, k=512, n=1000),
    ))


def _encoder(tokens: int, layers: int = 12, hidden: int = 768, heads: int = 12,
             ffn: int = 3072) -> tuple[Layer, ...]:
    """The GEMMs of ``layers`` transformer encoder layers at ``tokens`` tokens.

    Per layer: Q, K and V projections (3 × tokens×hidden×hidden), attention scores Q·Kᵀ per head
    (tokens×d×tokens, d = hidden/heads), context P·V per head (tokens×tokens×d), the output
    projection, and the FFN's up (hidden→ffn) and down (ffn→hidden) projections. Softmax, layer
    norm and GELU are not GEMMs and are left out.
    """
    d = hidden // heads
    return (
        Layer("qkv_proj", m=tokens, k=hidden, n=hidden, count=3 * layers),
        Layer("attn_scores", m=tokens, k=d, n=tokens, count=heads * layers),
        Layer("attn_context", m=tokens, k=tokens, n=d, count=heads * layers),
        Layer("out_proj", m=tokens, k=hidden, n=hidden, count=layers),
        Layer("ffn_up", m=tokens, k=hidden, n=ffn, count=layers),
        Layer("ffn_down", m=tokens, k=ffn, n=hidden, count=layers),
    )


def bert_base() -> Workload:
    """BERT-base (12 layers, hidden 768, 12 heads, FFN 3072) at sequence length 128: 11.2 GMACs.

    One encoder layer's GEMMs (see :func:`_encoder`) with counts × 12; the embeddings and the
    pooler are left out.
    """
    return Workload(name="bert-base", layers=_encoder(tokens=128))


def vit_b16() -> Workload:
    """ViT-B/16 at 224×224: 196 patches + the class token = 197 tokens, 17.6 GMACs.

    The patch embedding (a 16×16 stride-16 convolution: 196 × 768 (3·16·16) × 768), 12 encoder
    layers at 197 tokens (see :func:`_encoder`) and the classification head (1 × 768 × 1000).
    """
    return Workload(name="vit-b16", layers=(
        Layer("patch_embed", m=196, k=3 * 16 * 16, n=768),
        *_encoder(tokens=197),
        Layer("head", m=1, k=768, n=1000),
    ))


def mlp() -> Workload:
    """A 784-1024-1024-10 multilayer perceptron (MNIST-sized) at batch 64: 119 MMACs."""
    return Workload(name="mlp", layers=(
        Layer("fc1", m=64, k=784, n=1024),
        Layer("fc2", m=64, k=1024, n=1024),
        Layer("fc3", m=64, k=1024, n=10),
    ))


#: The bundled networks: name → a function that returns the workload.
BUNDLED: dict[str, Callable[[], Workload]] = {
    "resnet18": resnet18,
    "bert-base": bert_base,
    "vit-b16": vit_b16,
    "mlp": mlp,
}


def load_workload(spec: str) -> Workload:
    """A bundled network by name, or a workload file by path (.toml, .csv or .json)."""
    if spec in BUNDLED:
        return BUNDLED[spec]()
    path = Path(spec)
    if not path.suffix and not path.exists():
        raise WorkloadError(f"--workload {spec}: unknown network {spec!r} "
                            f"(bundled: {', '.join(BUNDLED)}; or a .toml, .csv or .json file)")
    return _from_file(path)
