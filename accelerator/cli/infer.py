"""`accel infer`: an int8 ONNX model on the accelerator (the model, the RTL, or a board with
``--port``), its output as onnxruntime's, and per-layer cycles and utilization; ``--demo``
trains and runs the digits demos."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import numpy as np

from ..config import AcceleratorConfig
from . import cli
from .options import board_options, config_options, fail_usage

__all__ = ["infer_command"]

_ONNX_TO_NUMPY = {1: np.float32, 2: np.uint8, 3: np.int8, 6: np.int32, 7: np.int64}


@cli.command("infer")
@click.argument("model", required=False, type=click.Path(dir_okay=False))
@config_options
@click.option("--input", "input_path", type=click.Path(dir_okay=False), metavar="X.npy",
              help="the model's input (one .npy; its dtype and rank as the model's input)")
@click.option("--output", "output_path", type=click.Path(dir_okay=False), metavar="Y.npy",
              help="write the model's output here (.npy; .npz of all outputs if several)")
@click.option("--backend", type=click.Choice(["model", "rtl"]), default=None,
              help="model: the reference and the performance model (the default without "
                   "--port); rtl: the Verilog in Verilator")
@board_options(required=False)
@click.option("--demo", type=click.Choice(["digits-mlp", "digits-cnn"]), default=None,
              help="train a demo network on scikit-learn's digits, quantize it with "
                   "onnxruntime and run the held-out set (instead of MODEL)")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="write layers.csv, layers.json and utilization.png/.svg here")
@click.option("--build-root", type=click.Path(file_okay=False), default="build",
              show_default=True, help="where the RTL backend's harness is built (cached)")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
def infer_command(config: AcceleratorConfig, model: str | None, input_path: str | None,
                  output_path: str | None, backend: str | None, port: str | None, baud: int,
                  demo: str | None, out_dir: str | None, build_root: str, as_json: bool) -> None:
    """Run an int8 ONNX MODEL (QDQ or QOperator) on the accelerator: the performance model, the
    RTL, or a board (`accel build --top board`) at --port, built with the config options given."""
    from ..nn.graph import check_config

    if port is not None and backend is not None:
        fail_usage(f"--backend {backend} and --port are given: give one (--port runs on the "
                   f"board)")
    target = _Target("board" if port is not None else backend or "model", port, baud)
    try:
        check_config(config)
    except ValueError as exc:
        fail_usage(str(exc))
    if demo is not None:
        if model is not None or input_path is not None or output_path is not None:
            fail_usage("--demo runs its own model and data: give no MODEL, --input or --output")
        _run_demo(config, demo, target, out_dir, build_root, as_json)
        return
    if model is None:
        fail_usage("give a MODEL (an int8 .onnx file) or --demo")
    if input_path is None:
        fail_usage("--input X.npy is required with a MODEL")
    from ..nn import UnsupportedModel, load

    if not Path(model).is_file():
        fail_usage(f"{model}: no such file")
    try:
        net = load(model)
    except UnsupportedModel as exc:
        fail_usage(str(exc))
    x = _load_input(input_path, net)
    started = time.perf_counter()
    outputs, stats = _run(net, x, config, target, build_root)
    seconds = time.perf_counter() - started
    if output_path is not None:
        if len(outputs) == 1:
            np.save(output_path, outputs[0])
        else:
            np.savez(output_path, **dict(zip(net.outputs, outputs, strict=True)))
    _report(config, target, Path(model).name, stats, out_dir, as_json, seconds, extra={
        "model": model, "outputs": [{"name": n, "shape": list(o.shape), "dtype": str(o.dtype)}
                                    for n, o in zip(net.outputs, outputs, strict=True)]})


def _load_input(path: str, net: Any) -> np.ndarray:
    if len(net.inputs) != 1:
        fail_usage(f"the model has {len(net.inputs)} inputs; accel infer takes models with one")
    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        fail_usage(f"--input {path}: cannot read a .npy array ({exc})")
    value = net.inputs[0]
    tensor = value.type.tensor_type
    want = _ONNX_TO_NUMPY.get(tensor.elem_type)
    if want is not None and x.dtype != want:
        fail_usage(f"--input {path}: dtype {x.dtype}, the model's input {value.name!r} takes "
                   f"{np.dtype(want)}")
    if tensor.HasField("shape"):
        dims = tensor.shape.dim
        if len(dims) != x.ndim:
            fail_usage(f"--input {path}: shape {x.shape}, the model's input {value.name!r} has "
                       f"{len(dims)} dimensions")
        for i, d in enumerate(dims):
            if d.HasField("dim_value") and d.dim_value != x.shape[i]:
                fail_usage(f"--input {path}: shape {x.shape}, the model's input "
                           f"{value.name!r} needs {d.dim_value} in dimension {i}")
    return x


@dataclass(frozen=True)
class _Target:
    """Where the model runs: a backend by name, or the board at ``port``."""

    backend: str          # "model", "rtl" or "board"
    port: str | None = None
    baud: int = 115200

    @property
    def label(self) -> str:
        return f"board at {self.port}" if self.port else self.backend


def _run(net: Any, x: np.ndarray, config: AcceleratorConfig, target: _Target, build_root: str
         ) -> tuple[list[np.ndarray], list[Any]]:
    from ..device import connect
    from ..driver.driver import AcceleratorError, IdentificationError
    from ..driver.transport import TransportError

    try:
        if target.port is not None:
            device = connect(config, port=target.port, baud=target.baud)
        else:
            device = connect(config, backend=target.backend, build_root=build_root)
    except (OSError, RuntimeError, ValueError, TransportError, IdentificationError,
            TimeoutError) as exc:
        raise click.ClickException(f"cannot start the {target.label}: "
                                   f"{' '.join(str(exc).split())}") from None
    # the performance model runs the same commands: a memory as small as the board's stages
    # them the same way
    shadow = (connect(device.config, backend="model", memory_bytes=device.memory[1])
              if target.backend != "model" else None)
    try:
        return net.run(x, device, shadow=shadow)
    except ValueError as exc:  # a shape the graph's operators cannot take, found while running
        raise click.ClickException(f"{exc}") from None
    except (TransportError, AcceleratorError, TimeoutError) as exc:
        raise click.ClickException(f"{target.label}: {' '.join(str(exc).split())}") from None
    finally:
        device.close()
        if shadow is not None:
            shadow.close()


def _report(config: AcceleratorConfig, target: _Target, title: str, stats: list[Any],
            out_dir: str | None, as_json: bool, seconds: float, extra: dict[str, Any],
            lines: list[str] | None = None) -> None:
    from ..nn import report

    rows = report.layer_rows(stats, config)
    heading = (f"{title} on {config.rows}×{config.cols} {config.dataflow.upper()} "
               f"({target.label})")
    meta = {**extra, "backend": target.backend, "port": target.port, "config": config.name,
            "rows_pe": config.rows, "cols_pe": config.cols, "seconds": seconds}
    if out_dir is not None:
        path = Path(out_dir)
        path.mkdir(parents=True, exist_ok=True)
        report.write_csv(rows, path / "layers.csv")
        report.write_json(rows, path / "layers.json", meta=meta)
        report.plot_utilization(rows, path, heading)
    if as_json:
        click.echo(json.dumps({**meta, "layers": rows[:-1], "total": rows[-1]}, indent=1,
                              default=str))
        return
    from rich.console import Console

    console = Console()
    for line in lines or []:
        console.print(line, highlight=False)
    console.print(report.render_table(rows, heading))
    total = rows[-1]
    error = total["model_error"]
    console.print(f"cycles {total['cycles']:,}, utilization {total['utilization']:.1%}, "
                  f"model error {'n/a' if error is None else f'{error:+.2%}'}, "
                  f"wall time {seconds:.1f} s", highlight=False)


def _run_demo(config: AcceleratorConfig, name: str, target: _Target, out_dir: str | None,
              build_root: str, as_json: bool) -> None:
    import tempfile

    try:
        import onnxruntime as ort

        from ..nn.demo import build_demo
    except ImportError as exc:
        raise click.ClickException(f"--demo needs the [nn] extra (pip install "
                                   f"'accelerator[nn]'): {exc}") from None
    from ..nn import load

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        data = build_demo(name, Path(out_dir) if out_dir else Path(tmp))
        trained = time.perf_counter() - started

        def ort_run(path: Path) -> np.ndarray:
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            return session.run(None, {"image": data.x_test})[0]

        float_logits, int8_logits = ort_run(data.float_model), ort_run(data.int8_model)
        net = load(data.int8_model)
    run_started = time.perf_counter()
    outputs, stats = _run(net, data.x_test, config, target, build_root)
    backend = target.backend
    run_seconds = time.perf_counter() - run_started
    ours = outputs[0]
    same = int(np.sum(ours == int8_logits))
    identical = ours.shape == int8_logits.shape and same == int8_logits.size

    def accuracy(logits: np.ndarray) -> float:
        return float(np.mean(logits.argmax(axis=1) == data.y_test))

    acc = {"float": accuracy(float_logits), "int8_onnxruntime": accuracy(int8_logits),
           f"int8_{backend}": accuracy(ours)}
    lines = [(f"{name}: {len(data.y_test)} held-out digits (trained and quantized in "
              f"{trained:.1f} s)"),
             (f"accuracy: float {acc['float']:.2%}, int8 onnxruntime "
              f"{acc['int8_onnxruntime']:.2%}, int8 {backend} {acc[f'int8_{backend}']:.2%}"),
             (f"int8 {backend} equals onnxruntime in every logit: "
              f"{'yes' if identical else 'NO'} ({same:,} of {int8_logits.size:,})")]
    _report(config, target, name, stats, out_dir, as_json, run_seconds, extra={
        "demo": name, "images": len(data.y_test), "accuracy": acc, "identical": identical,
        "logits_equal": same, "logits": int(int8_logits.size), "train_seconds": trained},
        lines=lines)
    if not identical:
        raise click.ClickException(f"int8 {backend} differs from onnxruntime in "
                                   f"{int8_logits.size - same} logits")
