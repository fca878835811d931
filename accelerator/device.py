"""One Python API for the accelerator on three backends: the models, the RTL and a board.

::

    from accelerator import AcceleratorConfig, connect

    with connect(AcceleratorConfig(rows=8, cols=8), backend="rtl") as dev:
        c = dev.matmul(a, b)                           # int8 × int8 → int32
        y = dev.matmul(a, b, c_in=c, requant=params)   # int8 out through the requantizer
        dev.last.cycles, dev.last.counters             # the hardware's counters for that call

Backends (:func:`connect`):

* ``"model"``: every command computed by the bit-exact reference
  (:mod:`accelerator.model.reference`) in a memory image, its cycles by the performance model
  (:func:`accelerator.model.perf.estimate`, for the matrices where they were placed);
* ``"rtl"``: the accelerator's Verilog in Verilator, in a compiled harness (C++ AXI memory,
  register master and clock loop; :mod:`accelerator.flow.harness`), driven by the host driver;
* ``port="/dev/ttyUSB0"``: a board built with ``accel build --top board``, over its UART bridge
  (:class:`~accelerator.driver.serial.SerialTransport`), the matrices in its on-chip RAM.

A call larger than one command can take (M, K or N above the register map's ``MAX_DIM``, or
matrices larger than the device's memory) is split into several commands by :class:`Device`: K in
chunks chained through the accumulate mode (``C_in``), the requantizer on the last chunk only.
Every backend runs the same commands at the same addresses, so the model's cycles are the
model's prediction of what the RTL backend measures.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .config import AcceleratorConfig
from .driver.board import read_board_ram, read_bytes, write_bytes
from .driver.driver import Accelerator
from .driver.harness import HarnessTransport
from .driver.serial import SerialTransport
from .model import reference
from .model.perf import Layout, estimate, tile_grid
from .model.reference import RequantParams
from .model.regmap import MAX_DIM, accelerator_width_error, element_bytes

__all__ = ["BACKENDS", "MODEL_COUNTERS", "CallStats", "Command", "Device", "connect",
           "model_cycles"]

#: The backends :func:`connect` takes by name (a board is reached with ``port=``).
BACKENDS = ("model", "rtl")

#: The counters the model backend reports (the performance model predicts them; with the compact
#: engine only ``cycles``); the others of the register map (``mac_cycles``, ``stall_load``,
#: ``stall_store``) are not modelled.
MODEL_COUNTERS = ("cycles", "dma_rd_bytes", "dma_wr_bytes")

#: Where the model and RTL backends place matrices: past the first page, up to the end of the
#: 32-bit address space (the harness's memory is sparse, 4 GiB).
_SPACE_BASE = 0x1000
_SPACE_END = 1 << 32
#: Every buffer starts on this boundary: any AXI data width's bus word (up to 256 bits).
_ALIGN = 32


# -- what a call did ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallStats:
    """What the hardware counted over one :meth:`Device.matmul` call (all its commands).

    ``counters`` are keyed by lower-case register name (``cycles``, ``mac_cycles``, …) and summed
    over the commands; the model backend reports only :data:`MODEL_COUNTERS`.
    """

    cycles: int
    counters: dict[str, int]
    commands: int
    per_command: tuple[dict[str, int], ...] = ()


@dataclass(frozen=True)
class Command:
    """One GEMM command as the driver sends it: byte addresses and strides, sizes, mode."""

    a: int
    b: int
    c: int
    m: int
    k: int
    n: int
    lda: int
    ldb: int
    ldc: int
    c_in: int | None = None
    ldcin: int | None = None
    requant: RequantParams | None = None

    def layout(self) -> Layout:
        """Where the matrices are, for the performance model."""
        return Layout(a=self.a, b=self.b, c=self.c, lda=self.lda, ldb=self.ldb, ldc=self.ldc,
                      c_in=self.c_in or 0, ldcin=self.ldcin or 0)

    def driver_args(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "c": self.c, "m": self.m, "k": self.k, "n": self.n,
                "lda": self.lda, "ldb": self.ldb, "ldc": self.ldc, "c_in": self.c_in,
                "ldcin": self.ldcin, "requant": self.requant}


class Target(Protocol):
    """What :class:`Device` needs of a backend: a memory window, bytes in and out, commands."""

    name: str
    config: AcceleratorConfig
    memory: tuple[int, int]     # (first byte address, bytes) the device may place matrices in

    def write(self, addr: int, data: bytes) -> None: ...
    def read(self, addr: int, count: int) -> bytes: ...
    def run(self, command: Command) -> dict[str, int]: ...
    def close(self) -> None: ...


# -- the API --------------------------------------------------------------------------------------


class Device:
    """An accelerator behind a backend (made by :func:`connect`): :meth:`matmul` and ``last``."""

    def __init__(self, target: Target, *, max_dim: int = MAX_DIM,
                 memory_bytes: int | None = None):
        self._target = target
        self.config: AcceleratorConfig = target.config
        self.backend: str = target.name
        self.max_dim = max_dim
        base, size = target.memory
        self.memory: tuple[int, int] = (base, size if memory_bytes is None
                                        else min(size, memory_bytes))
        #: The statistics of the last :meth:`matmul` call (``None`` before the first).
        self.last: CallStats | None = None
        self._closed = False

    # -- context manager ---------------------------------------------------------------------------

    def __enter__(self) -> Device:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the backend (the simulator, the serial port). Safe to call twice."""
        if not self._closed:
            self._closed = True
            self._target.close()

    def __repr__(self) -> str:
        return f"<Device {self.backend} {self.config.name}>"

    # -- GEMM --------------------------------------------------------------------------------------

    def matmul(self, a: ArrayLike, b: ArrayLike, *, c_in: ArrayLike | None = None,
               requant: RequantParams | None = None) -> NDArray[Any]:
        """``C = [C_in +] A·B`` on the device; int8 out through the requantizer with ``requant``.

        ``a`` is (M, K) and ``b`` (K, N), integer arrays whose values fit the hardware's
        ``in_width`` signed bits; ``c_in`` (M, N) must fit ``acc_width`` signed bits. Returns
        int32 (int64 when ``acc_width > 32``) wrapped to ``acc_width`` bits, exactly the
        reference's :func:`~accelerator.model.reference.gemm`, or int8 with ``requant``
        (:func:`~accelerator.model.reference.gemm_requant`). Arguments the hardware cannot take
        raise ``ValueError`` naming the limit. ``self.last`` then holds the call's counters.
        """
        if self._closed:
            raise ValueError("matmul: the device is closed")
        a64, b64, cin64 = self._check(a, b, c_in, requant)
        plan = _Plan(self.config, a64.shape[0], a64.shape[1], b64.shape[1],
                     accumulate=cin64 is not None, requant=requant is not None,
                     max_dim=self.max_dim, memory=self.memory)
        result, per_command = plan.execute(self._target, a64, b64, cin64, requant)
        totals: dict[str, int] = {}
        for counters in per_command:
            for name, value in counters.items():
                totals[name] = totals.get(name, 0) + value
        self.last = CallStats(cycles=totals.get("cycles", 0), counters=totals,
                              commands=len(per_command), per_command=tuple(per_command))
        return result

    def _check(self, a: ArrayLike, b: ArrayLike, c_in: ArrayLike | None,
               requant: RequantParams | None
               ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64] | None]:
        config = self.config
        if requant is not None:
            if not isinstance(requant, RequantParams):
                raise ValueError(f"matmul: requant = {requant!r} is not a RequantParams or None")
            if not config.requant_unit:
                raise ValueError("matmul: requant is given but the hardware has no "
                                 "requantization unit (requant_unit = false)")
            if requant.out_width != 8:
                raise ValueError(f"matmul: requant.out_width = {requant.out_width} is not "
                                 f"supported (allowed: 8, the hardware's requantizer emits int8)")
            if config.acc_width > 32:
                raise ValueError(f"matmul: requant needs acc_width <= 32 (the requantizer takes "
                                 f"32-bit accumulators), the hardware has acc_width = "
                                 f"{config.acc_width}")
        a_arr = _integer_matrix("a", a, "(M, K)")
        b_arr = _integer_matrix("b", b, "(K, N)")
        if a_arr.shape[1] != b_arr.shape[0]:
            raise ValueError(f"matmul: a has shape {a_arr.shape} and b has shape {b_arr.shape}: "
                             f"inner dimensions differ ({a_arr.shape[1]} != {b_arr.shape[0]})")
        a64 = _fits("a", a_arr, config.in_width, "in_width")
        b64 = _fits("b", b_arr, config.in_width, "in_width")
        cin64 = None
        if c_in is not None:
            c_arr = _integer_matrix("c_in", c_in, "(M, N)")
            expected = (a_arr.shape[0], b_arr.shape[1])
            if c_arr.shape != expected:
                raise ValueError(f"matmul: c_in has shape {c_arr.shape}, expected {expected} "
                                 f"(rows of a, columns of b)")
            cin64 = _fits("c_in", c_arr, config.acc_width, "acc_width")
        return a64, b64, cin64


def _integer_matrix(name: str, value: ArrayLike, dims: str) -> NDArray[Any]:
    array = np.asarray(value)
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"matmul: {name} has dtype {array.dtype}, expected an integer dtype")
    if array.ndim != 2:
        raise ValueError(f"matmul: {name} has shape {array.shape}, expected a 2-D array {dims}")
    if 0 in array.shape:
        raise ValueError(f"matmul: {name} has shape {array.shape}: every dimension must be at "
                         f"least 1")
    return array


def _fits(name: str, array: NDArray[Any], width: int, field_name: str) -> NDArray[np.int64]:
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    if int(array.min()) < lo or int(array.max()) > hi:
        raise ValueError(f"matmul: {name} holds values outside the signed {width}-bit range "
                         f"[{lo}, {hi}] ({field_name} = {width})")
    return array.astype(np.int64)


# -- tiling and placement -------------------------------------------------------------------------


def _align(value: int) -> int:
    return (value + _ALIGN - 1) // _ALIGN * _ALIGN


def _chunks(total: int, limit: int) -> list[tuple[int, int]]:
    """``total`` cut into equal-as-possible pieces of at most ``limit``: (start, length)."""
    count = math.ceil(total / limit)
    size = math.ceil(total / count)
    return [(start, min(size, total - start)) for start in range(0, total, size)]


@dataclass(frozen=True)
class _Matrix:
    """A matrix in device memory: address of element (0, 0), row stride and element size."""

    addr: int
    ld: int
    size: int

    def at(self, row: int, col: int) -> int:
        return self.addr + row * self.ld + col * self.size


@dataclass
class _Allocator:
    """Hands out aligned buffers from the device's memory window, one call at a time."""

    base: int
    end: int
    cursor: int = field(init=False)

    def __post_init__(self) -> None:
        self.cursor = _align(self.base)

    def take(self, nbytes: int) -> int:
        start = self.cursor
        self.cursor = _align(start + max(nbytes, 1))
        if self.cursor > self.end:  # the plan checked the sizes: this is a bug
            raise AssertionError("device memory overrun")
        return start


class _Plan:
    """The commands of one call: tile sizes, where each matrix goes, the K chain.

    *Resident*: when A, B, C, C_in and the partial sums fit the memory together, each is written
    once and every command addresses its block in place (strides of the whole matrix).
    *Staged*: otherwise (a board's small RAM) every command's blocks are written to buffers of
    one tile each, and each output tile is read back when its K chain ends.
    K chunks chain through two int32 buffers of partial sums (a command never reads C_in where it
    writes C); only the last chunk requantizes.
    """

    def __init__(self, config: AcceleratorConfig, m: int, k: int, n: int, *, accumulate: bool,
                 requant: bool, max_dim: int, memory: tuple[int, int]):
        self.config, self.m, self.k, self.n = config, m, k, n
        sizes = element_bytes(config)
        self.e_in, self.e_acc = sizes["a"], sizes["c"]
        self.e_out = sizes["c_q"] if requant else sizes["c"]
        self.accumulate, self.requant = accumulate, requant
        self.base, self.end = memory[0], memory[0] + memory[1]
        self.tm, self.tk, self.tn = (min(m, max_dim), min(k, max_dim), min(n, max_dim))
        self.resident = self._need(m, k, n, whole=True) <= self.end - _align(self.base)
        if not self.resident:
            while self._need(self.tm, self.tk, self.tn, whole=False) > self.end - _align(
                    self.base):
                if max(self.tm, self.tk, self.tn) == 1:
                    raise ValueError(f"matmul: the device's memory ({memory[1]} bytes) cannot "
                                     f"hold even a 1×1×1 command")
                # halve the largest tile dimension (K last among equals: fewer C_in round trips)
                dims = {"tk": self.tk, "tm": self.tm, "tn": self.tn}
                name = max(dims, key=dims.__getitem__)
                setattr(self, name, math.ceil(dims[name] / 2))

    def _chains(self, k: int) -> int:
        """Partial-sum buffers a chain of K chunks needs: none for one chunk, one for two."""
        return min(2, math.ceil(k / self.tk) - 1)

    def _need(self, m: int, k: int, n: int, *, whole: bool) -> int:
        need = _align(m * k * self.e_in) + _align(k * n * self.e_in)
        if whole:
            need += _align(m * n * self.e_out) + self._chains(k) * _align(m * n * self.e_acc)
            if self.accumulate:
                need += _align(m * n * self.e_acc)
            return need
        # staged: two tile buffers of partial sums (C_in in, C out), the output in one of them
        return need + 2 * _align(m * n * self.e_acc)

    # -- running ----------------------------------------------------------------------------------

    def execute(self, target: Target, a: NDArray[np.int64], b: NDArray[np.int64],
                c_in: NDArray[np.int64] | None, requant: RequantParams | None
                ) -> tuple[NDArray[Any], list[dict[str, int]]]:
        in_dtype = np.dtype(f"<i{self.e_in}")
        acc_dtype = np.dtype(f"<i{self.e_acc}")
        out_dtype = np.dtype(f"<i{self.e_out}")
        alloc = _Allocator(self.base, self.end)
        counters: list[dict[str, int]] = []
        m_chunks = _chunks(self.m, self.tm)
        n_chunks = _chunks(self.n, self.tn)
        k_chunks = _chunks(self.k, self.tk)

        def put(matrix: NDArray[Any], dtype: np.dtype) -> _Matrix:
            data = np.ascontiguousarray(matrix, dtype=dtype)
            addr = alloc.take(data.nbytes)
            target.write(addr, data.tobytes())
            return _Matrix(addr, data.shape[1] * dtype.itemsize, dtype.itemsize)

        def get(place: _Matrix, rows: int, cols: int, dtype: np.dtype) -> NDArray[Any]:
            raw = target.read(place.addr, (rows - 1) * place.ld + cols * dtype.itemsize)
            buffer = np.frombuffer(raw + bytes(place.ld * rows - len(raw)), dtype=np.uint8)
            return buffer.reshape(rows, place.ld)[:, :cols * dtype.itemsize].view(dtype)

        def run(a_m: _Matrix, b_m: _Matrix, c_m: _Matrix, cin_m: _Matrix | None, i0: int,
                j0: int, k0: int, rows: int, depth: int, cols: int, rq: RequantParams | None,
                ci: int, cj: int) -> None:
            """One command on blocks; (i0, k0) into A, (k0, j0) into B, (ci, cj) into C/C_in."""
            counters.append(target.run(Command(
                a=a_m.at(i0, k0), b=b_m.at(k0, j0), c=c_m.at(ci, cj), m=rows, k=depth, n=cols,
                lda=a_m.ld, ldb=b_m.ld, ldc=c_m.ld,
                c_in=None if cin_m is None else cin_m.at(ci, cj),
                ldcin=None if cin_m is None else cin_m.ld, requant=rq)))

        if self.resident:
            a_m, b_m = put(a, in_dtype), put(b, in_dtype)
            cin_m = put(c_in, acc_dtype) if c_in is not None else None
            c_m = _Matrix(alloc.take(self.m * self.n * self.e_out), self.n * self.e_out,
                          self.e_out)
            partial = [_Matrix(alloc.take(self.m * self.n * self.e_acc), self.n * self.e_acc,
                               self.e_acc) for _ in range(self._chains(self.k))]
            for i0, rows in m_chunks:
                for j0, cols in n_chunks:
                    source = cin_m
                    for index, (k0, depth) in enumerate(k_chunks):
                        last = index == len(k_chunks) - 1
                        dest = c_m if last else partial[index % 2]
                        run(a_m, b_m, dest, source, i0, j0, k0, rows, depth, cols,
                            requant if last else None, i0, j0)
                        source = dest
            return get(c_m, self.m, self.n, out_dtype).astype(out_dtype.newbyteorder("=")), \
                counters

        result = np.empty((self.m, self.n), dtype=out_dtype.newbyteorder("="))
        a_buf = alloc.take(self.tm * self.tk * self.e_in)
        b_buf = alloc.take(self.tk * self.tn * self.e_in)
        p_buf = [alloc.take(self.tm * self.tn * self.e_acc) for _ in range(2)]
        for i0, rows in m_chunks:
            for j0, cols in n_chunks:
                acc_tile = [_Matrix(p, cols * self.e_acc, self.e_acc) for p in p_buf]
                source = None
                if c_in is not None:
                    block = np.ascontiguousarray(c_in[i0:i0 + rows, j0:j0 + cols],
                                                 dtype=acc_dtype)
                    target.write(p_buf[1], block.tobytes())
                    source = acc_tile[1]
                for index, (k0, depth) in enumerate(k_chunks):
                    last = index == len(k_chunks) - 1
                    a_blk = np.ascontiguousarray(a[i0:i0 + rows, k0:k0 + depth], dtype=in_dtype)
                    b_blk = np.ascontiguousarray(b[k0:k0 + depth, j0:j0 + cols], dtype=in_dtype)
                    target.write(a_buf, a_blk.tobytes())
                    target.write(b_buf, b_blk.tobytes())
                    dest = acc_tile[index % 2]
                    if last:
                        dest = _Matrix(dest.addr, cols * self.e_out, self.e_out)
                    run(_Matrix(a_buf, depth * self.e_in, self.e_in),
                        _Matrix(b_buf, cols * self.e_in, self.e_in), dest, source,
                        0, 0, 0, rows, depth, cols, requant if last else None, 0, 0)
                    source = dest
                result[i0:i0 + rows, j0:j0 + cols] = get(source, rows, cols, out_dtype)
        return result, counters


# -- backends -------------------------------------------------------------------------------------


class ModelTarget:
    """The reference model on a memory image, the performance model's counters."""

    name = "model"

    def __init__(self, config: AcceleratorConfig):
        self.config = config
        self.memory = (_SPACE_BASE, _SPACE_END - _SPACE_BASE)
        self._image = bytearray()   # bytes from _SPACE_BASE up to the highest one written

    def _view(self, addr: int, count: int) -> memoryview:
        start = addr - _SPACE_BASE
        if start < 0 or addr + count > _SPACE_END:
            raise ValueError(f"model memory: {count} bytes at {addr:#x} are outside "
                             f"[{_SPACE_BASE:#x}, {_SPACE_END:#x})")
        if start + count > len(self._image):
            self._image.extend(bytes(start + count - len(self._image)))
        return memoryview(self._image)[start:start + count]

    def write(self, addr: int, data: bytes) -> None:
        self._view(addr, len(data))[:] = data

    def read(self, addr: int, count: int) -> bytes:
        return bytes(self._view(addr, count))

    def _matrix(self, addr: int, rows: int, cols: int, ld: int, size: int) -> np.ndarray:
        view = np.frombuffer(self._view(addr, (rows - 1) * ld + cols * size), dtype=np.uint8)
        view = np.lib.stride_tricks.as_strided(view, shape=(rows, cols * size), strides=(ld, 1))
        return np.ascontiguousarray(view).view(f"<i{size}").astype(np.int64)

    def run(self, command: Command) -> dict[str, int]:
        cfg, cmd = self.config, command
        sizes = element_bytes(cfg)
        a = self._matrix(cmd.a, cmd.m, cmd.k, cmd.lda, sizes["a"])
        b = self._matrix(cmd.b, cmd.k, cmd.n, cmd.ldb, sizes["b"])
        c_in = None if cmd.c_in is None else self._matrix(cmd.c_in, cmd.m, cmd.n, cmd.ldcin,
                                                          sizes["c_in"])
        if cmd.requant is not None:
            c = reference.gemm_requant(a, b, c_in, cmd.requant, cfg.acc_width,
                                       in_width=cfg.in_width)
            size = sizes["c_q"]
        else:
            c = reference.gemm(a, b, c_in, acc_width=cfg.acc_width, in_width=cfg.in_width)
            size = sizes["c"]
        rows = np.ascontiguousarray(c, dtype=f"<i{size}").view(np.uint8)
        image = np.frombuffer(self._view(cmd.c, (cmd.m - 1) * cmd.ldc + cmd.n * size),
                              dtype=np.uint8)
        np.lib.stride_tricks.as_strided(image, shape=rows.shape, strides=(cmd.ldc, 1),
                                        writeable=True)[:] = rows
        return self.counters(cmd)

    def counters(self, command: Command) -> dict[str, int]:
        """The performance model's counters for ``command`` (where its matrices are)."""
        cfg, cmd = self.config, command
        sizes = element_bytes(cfg)
        size = sizes["c_q"] if cmd.requant is not None else sizes["c"]
        e = estimate(cfg, cmd.m, cmd.k, cmd.n, accumulate=cmd.c_in is not None,
                     requant=cmd.requant is not None, layout=cmd.layout())
        if cfg.engine == "compact":
            return {"cycles": e.cycles}
        # every C-column panel reads all of A; B once, or once per block of A rows when a
        # panel does not fit its scratchpad half; C_in once
        grid = tile_grid(cfg, cmd.m, cmd.k, cmd.n)
        b_reads = 1 if grid.b_resident else grid.m_tiles
        read = (grid.n_tiles * cmd.m * cmd.k + b_reads * cmd.k * cmd.n) * sizes["a"]
        if cmd.c_in is not None:
            read += cmd.m * cmd.n * sizes["c_in"]
        return {"cycles": e.cycles, "dma_rd_bytes": read, "dma_wr_bytes": cmd.m * cmd.n * size}

    def close(self) -> None:
        self._image = bytearray()


class _CostTarget(ModelTarget):
    """The model backend's counters without its data: what :func:`model_cycles` runs on."""

    def write(self, addr: int, data: bytes) -> None:
        pass

    def read(self, addr: int, count: int) -> bytes:
        return bytes(count)

    def run(self, command: Command) -> dict[str, int]:
        return self.counters(command)


def model_cycles(config: AcceleratorConfig, m: int, k: int, n: int, *, accumulate: bool = False,
                 requant: bool = False) -> int:
    """The cycles ``connect(config, backend="model").matmul`` reports for an (m, k) × (k, n)
    call (with ``c_in`` when ``accumulate``, int8 out when ``requant``), without computing it:
    the same commands at the same addresses (:class:`Device`'s placement: every matrix on a
    32-byte boundary, rows packed), each estimated by the performance model."""
    plan = _Plan(config, m, k, n, accumulate=accumulate, requant=requant, max_dim=MAX_DIM,
                 memory=(_SPACE_BASE, _SPACE_END - _SPACE_BASE))
    zero = np.zeros((1, 1), np.int64)
    a, b = np.broadcast_to(zero, (m, k)), np.broadcast_to(zero, (k, n))
    c_in = np.broadcast_to(zero, (m, n)) if accumulate else None
    rq = RequantParams(1 << 30, 0, 0) if requant else None
    _, per_command = plan.execute(_CostTarget(config), a, b, c_in, rq)
    return sum(counters["cycles"] for counters in per_command)


class _Loop:
    """Runs the async driver from synchronous code, also where an event loop is already
    running (a notebook): there on a thread of its own."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.pool: concurrent.futures.ThreadPoolExecutor | None = None

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return self.loop.run_until_complete(coro)
        if self.pool is None:
            self.pool = concurrent.futures.ThreadPoolExecutor(1)
        return self.pool.submit(self.loop.run_until_complete, coro).result()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()
        self.loop.close()


class DriverTarget:
    """The host driver (:class:`~accelerator.driver.driver.Accelerator`) over a transport: the
    RTL harness or a board. ``write``/``read`` move bytes to and from the device's memory."""

    def __init__(self, name: str, transport: Any, *, memory: tuple[int, int],
                 write: Callable[[int, bytes], Any], read: Callable[[int, int], Any],
                 config: AcceleratorConfig | None, close: Callable[[], None],
                 loop: _Loop | None = None):
        self.name = name
        self.memory = memory
        self._write, self._read, self._close = write, read, close
        self._loop = loop or _Loop()
        self.driver = Accelerator(transport)
        try:
            hardware = self._loop.run(self.driver.identify())
            if config is not None and hardware != config:
                raise ValueError(f"connect: the {name} holds {hardware.name}, not {config.name} "
                                 f"(its ID block differs from the config given)")
        except BaseException:
            self.close()
            raise
        self.config = hardware

    def _sync(self, value: Any) -> Any:
        return self._loop.run(value) if asyncio.iscoroutine(value) else value

    def write(self, addr: int, data: bytes) -> None:
        self._sync(self._write(addr, data))

    def read(self, addr: int, count: int) -> bytes:
        return bytes(self._sync(self._read(addr, count)))

    def run(self, command: Command) -> dict[str, int]:
        return self._loop.run(self.driver.gemm(**command.driver_args(), irq=True))

    def close(self) -> None:
        try:
            self._close()
        finally:
            self._loop.close()


def _rtl_target(config: AcceleratorConfig, build_root: Path) -> DriverTarget:
    # the flow (and with it Amaranth) only when the RTL backend is asked for
    from .flow.harness import Harness, build_harness

    harness = Harness(build_harness(config, root=build_root))
    harness.reset()
    return DriverTarget("rtl", HarnessTransport(harness), memory=(_SPACE_BASE,
                        _SPACE_END - _SPACE_BASE), write=harness.mem_write,
                        read=harness.mem_read, config=config, close=harness.close)


def _board_target(config: AcceleratorConfig | None, transport: Any,
                  close: Callable[[], None]) -> DriverTarget:
    loop = _Loop()
    try:
        memory = loop.run(read_board_ram(transport))
    except BaseException:
        close()
        loop.close()
        raise
    return DriverTarget("board", transport, memory=memory,
                        write=lambda addr, data: write_bytes(transport, addr, data),
                        read=lambda addr, count: read_bytes(transport, addr, count),
                        config=config, close=close, loop=loop)


def connect(config: AcceleratorConfig | None = None, backend: str | None = None, *,
            port: str | None = None, baud: int = 115200, transport: Any = None,
            build_root: str | Path = "build", max_dim: int = MAX_DIM,
            memory_bytes: int | None = None) -> Device:
    """A :class:`Device` on a backend: ``backend="model"`` (the default), ``"rtl"``, or a board
    with ``port=`` (a serial port, at ``baud``) or ``transport=`` (any
    :class:`~accelerator.driver.transport.Transport` to a board top, e.g. a test's).

    ``config`` is required for the model and the RTL (``AcceleratorConfig()`` if omitted); a
    board says what it is (its ID block), and a ``config`` given must match it. ``build_root``
    is where the RTL harness is built (cached by digest). ``max_dim`` (at most the register
    map's ``MAX_DIM``) and ``memory_bytes`` lower the limits a command is tiled to, to see the
    tiling on small matrices. Use it as a context manager, or call ``close()``.
    """
    if backend is not None and (port is not None or transport is not None):
        raise ValueError(f"connect: backend = {backend!r} and a board (port= or transport=) "
                         f"are given; give one")
    if port is not None and transport is not None:
        raise ValueError("connect: port and transport are both given; give one")
    if config is not None and not isinstance(config, AcceleratorConfig):
        raise ValueError(f"connect: config = {config!r} is not an AcceleratorConfig")
    if isinstance(max_dim, bool) or not isinstance(max_dim, int) or not 1 <= max_dim <= MAX_DIM:
        raise ValueError(f"connect: max_dim = {max_dim!r} is out of range "
                         f"(allowed: 1 to {MAX_DIM})")
    if memory_bytes is not None and (isinstance(memory_bytes, bool) or not isinstance(
            memory_bytes, int) or memory_bytes < 1):
        raise ValueError(f"connect: memory_bytes = {memory_bytes!r} is out of range "
                         f"(allowed: at least 1)")
    target: Target
    if port is not None or transport is not None:
        if transport is None:
            transport = SerialTransport(port, baud)
            close = transport.close
        else:
            close = getattr(transport, "close", lambda: None)
        target = _board_target(config, transport, close)
    else:
        backend = "model" if backend is None else backend
        config = AcceleratorConfig() if config is None else config
        if backend == "model":
            target = ModelTarget(config)
        elif backend == "rtl":
            problem = accelerator_width_error(config)
            if problem:  # before the harness build, not after it
                raise ValueError(f"connect: {problem}")
            target = _rtl_target(config, Path(build_root))
        else:
            raise ValueError(f"connect: backend = {backend!r} is not known (allowed: "
                             f"{', '.join(BACKENDS)}; a board with port=)")
    return Device(target, max_dim=max_dim, memory_bytes=memory_bytes)
