"""Valid/ready stream drivers for cocotb, with pause generators for back-pressure.

Modelled on cocotbext-axi's StreamSource/StreamSink: one coroutine per stream, woken once per
clock edge, handshakes sampled at the edge. Payloads are packed with the gateware's own layouts.
"""

from __future__ import annotations

import itertools
import random
from collections import deque
from collections.abc import Iterator

import cocotb
from cocotb.triggers import Event, RisingEdge
from cocotb.utils import get_sim_time

from accelerator.hw.payload import pack, unpack

__all__ = ["StreamSink", "StreamSource", "random_pauses"]


def random_pauses(rng: random.Random, probability: float) -> Iterator[bool]:
    """An endless pause pattern: True (idle this cycle) with the given probability."""
    if probability <= 0:
        return itertools.repeat(False)
    return (rng.random() < probability for _ in itertools.count())


class _Stream:
    def __init__(self, dut, name: str, layout, clock, period_ns: float):
        self.name = name
        self.layout = layout
        self.clock = clock
        self.period_ns = period_ns
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.payload = getattr(dut, f"{name}__payload")
        self.pauses: Iterator[bool] = itertools.repeat(False)
        #: the cycle numbers of the first and last handshakes
        self.first_cycle: int | None = None
        self.last_cycle: int | None = None
        self.count = 0

    def set_pause_generator(self, pauses: Iterator[bool]) -> None:
        self.pauses = pauses

    def _record(self) -> None:
        cycle = round(get_sim_time("ns") / self.period_ns)
        if self.first_cycle is None:
            self.first_cycle = cycle
        self.last_cycle = cycle
        self.count += 1


class StreamSource(_Stream):
    """Drives ``<name>__payload`` / ``__valid`` and watches ``__ready``."""

    def __init__(self, dut, name, layout, clock, period_ns):
        super().__init__(dut, name, layout, clock, period_ns)
        self.queue: deque[int] = deque()
        self.idle = Event()
        self.valid.value = 0
        self._task = cocotb.start_soon(self._run())

    def send(self, beats) -> None:
        for beat in beats:
            self.queue.append(pack(self.layout, beat))
        self.idle.clear()

    async def wait_idle(self) -> None:
        if self.queue or self.valid.value:
            await self.idle.wait()

    async def _run(self) -> None:
        edge = RisingEdge(self.clock)
        current = False
        while True:
            await edge
            if current and self.ready.value:
                self._record()
                current = False
            if not current:
                if self.queue and not next(self.pauses):
                    self.payload.value = self.queue.popleft()
                    self.valid.value = 1
                    current = True
                else:
                    self.valid.value = 0
                    if not self.queue:
                        self.idle.set()


class StreamSink(_Stream):
    """Drives ``__ready`` and collects the payloads of ``<name>``."""

    def __init__(self, dut, name, layout, clock, period_ns):
        super().__init__(dut, name, layout, clock, period_ns)
        self.received: list = []
        self.expected_count = 0
        self.done = Event()
        self.ready.value = 0
        self._task = cocotb.start_soon(self._run())

    def expect(self, count: int) -> None:
        self.expected_count += count
        self.done.clear()

    async def _run(self) -> None:
        edge = RisingEdge(self.clock)
        ready = False
        while True:
            await edge
            if ready and self.valid.value:
                self.received.append(unpack(self.layout, int(self.payload.value)))
                self._record()
                if len(self.received) >= self.expected_count:
                    self.done.set()
            ready = not next(self.pauses)
            self.ready.value = int(ready)
