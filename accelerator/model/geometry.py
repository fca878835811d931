"""Scratchpad geometry derived from the config, and the timing facts of the gateware that the
performance model needs: shared by both (this module has no Amaranth, so the model needs none)."""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil, gcd

from ..config import AcceleratorConfig
from .regmap import MAX_DIM

__all__ = ["AXI4_BOUNDARY", "AXI4_MAX_BURST", "REQUANT_LATENCY", "STORE_FIFO_DEPTH", "Geometry",
           "serial_cycles"]

#: Longest burst AXI4 allows for INCR bursts, and the boundary no burst may cross.
AXI4_MAX_BURST = 256
AXI4_BOUNDARY = 4096

#: Clock cycles from a handshake on the requantizer's input to the same row's output, when never
#: stalled (:class:`accelerator.hw.requant.Requantizer`).
REQUANT_LATENCY = 7

#: Entries of the pipelined engine's store FIFO of C rows (:class:`accelerator.hw.engine.
#: GemmEngine`): the store reads a row only while the FIFO has room for it, so it reads at most
#: ``STORE_FIFO_DEPTH`` rows ahead of the DMA writer (the performance model's hold).
STORE_FIFO_DEPTH = 3


def serial_cycles(a: int) -> int:
    """Cycles of :class:`accelerator.hw.serialmul.SerialMulAdd` from ``start`` to the first
    cycle with ``busy`` low and the result valid: the start cycle, then one per bit of ``a``
    (one for ``a = 0``)."""
    return 1 + max(1, a.bit_length())


@dataclass(frozen=True)
class Geometry:
    """How the scratchpads are organized, and the largest GEMM dimensions they take.

    * A, output-stationary: R banks (one per row of an A block) of ``spad_a_depth`` bytes, in
      bus-wide words; half of each bank holds one block, the other half the next.
    * A, weight-stationary: one bank of bus-wide words, ``R·spad_a_depth`` bytes, holding whole
      rows of A (each row starts on a word); half holds one chunk of rows.
    * B: ``spad_b_depth`` entries of C bytes (a row of a B panel each); half holds one panel.
    * C: ``spad_c_depth`` rows of C int32 accumulators; half holds one chunk's results.
    """

    bus: int          # AXI data bytes
    a_words: int      # words of the A scratchpad (per bank for os)
    a_half: int
    b_half: int
    c_half: int
    a_ports: int      # ws: words one operand read spans (read ports of the A scratchpad)
    k_step: int       # a K larger than this is walked in steps of it

    @classmethod
    def of(cls, config: AcceleratorConfig) -> Geometry:
        R, B = config.rows, config.axi_bytes
        if config.dataflow == "os":
            a_words = max(2, config.spad_a_depth // B)
        else:
            a_words = max(2, config.spad_a_depth * R // B)
        a_half, b_half = a_words // 2, config.spad_b_depth // 2
        k_fit = min(a_half * B, b_half)
        # weight-stationary steps hold whole R-row tiles of weights
        k_step = k_fit if config.dataflow == "os" or k_fit < R else k_fit // R * R
        # ws: a beat's R bytes start at a multiple of R in the row (tiles step by R from a
        # word-aligned row start), so at B - gcd(R, B) bytes into a word at most: the words
        # that offset plus R bytes span, no more (a read port past them was never selected)
        a_ports = (B - gcd(R, B) + R - 1) // B + 1
        return cls(bus=B, a_words=a_words, a_half=a_half, b_half=b_half,
                   c_half=config.spad_c_depth // 2, a_ports=a_ports, k_step=k_step)

    def row_words(self, k: int) -> int:
        """Bus words one row of A (k bytes) takes in the weight-stationary scratchpad."""
        return ceil(k / self.bus)

    def max_chunk(self, config: AcceleratorConfig) -> int:
        """The most rows of A a chunk can have (any M and K the command check accepts): what
        sizes the stages' row counters."""
        return self.m_chunk(config, MAX_DIM, 1)

    def dma_limits(self, config: AcceleratorConfig) -> tuple[int, int]:
        """The most rows and the longest row (bytes) of a DMA transfer the engine asks for: A
        tiles (a chunk's rows of at most a K step), B panels (a K step's rows of at most C
        bytes), C_in and C (a chunk's rows of at most C int32). They size the DMA's counters."""
        return max(self.max_chunk(config), self.k_step), max(self.k_step, 4 * config.cols)

    def m_chunk(self, config: AcceleratorConfig, m: int, k: int) -> int:
        """Rows of A per chunk: R (os), or what half the A and C scratchpads hold (ws)."""
        if config.dataflow == "os":
            return config.rows
        return max(1, min(m, self.a_half // self.row_words(min(k, self.k_step)), self.c_half))
