"""Progress a command reports, in a terminal and in a log alike.

In a terminal it is rich's live status line. Anywhere else (a CI log, a pipe, a file), where a
live line shows nothing until the end, it is plain lines: one per step, each with the time since
the command started, and a heartbeat line whenever HEARTBEAT seconds pass without one, so that a
log never falls silent for the minutes a synthesis or a Verilator build takes.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from types import TracebackType

import click
from rich.console import Console
from rich.markup import escape

__all__ = ["HEARTBEAT", "Progress", "heartbeat_seconds", "tool_report_seconds"]

#: Seconds a log may go without a progress line while a command works.
HEARTBEAT = 30.0


def heartbeat_seconds() -> float:
    """:data:`HEARTBEAT`, or ``ACCEL_PROGRESS_SECONDS`` when set (a log that wants more or fewer
    lines; tests)."""
    try:
        value = float(os.environ.get("ACCEL_PROGRESS_SECONDS", HEARTBEAT))
    except ValueError:
        return HEARTBEAT
    return value if value > 0 else HEARTBEAT


def tool_report_seconds() -> float:
    """How often a running tool's own report is asked for: a little under the heartbeat, so that
    it comes first and the heartbeat line (which says less) is not printed beside it."""
    return heartbeat_seconds() * 0.9


class Progress:
    """``with Progress("accel build", console) as progress: progress.step("synthesis")``.

    :meth:`step` starts a step (a line at once in a log); :meth:`note` reports progress within
    one (counts: a line only when HEARTBEAT seconds passed since the last, so a fast loop does
    not flood a log). Times count from the command's first Progress (the object's creation
    outside a command); a ``with`` block may be entered more than once. ``live`` defaults to
    whether ``console`` is a terminal; ``clock`` is for tests.
    """

    def __init__(self, command: str, console: Console, *, heartbeat: float | None = None,
                 live: bool | None = None, clock: Callable[[], float] = time.monotonic):
        self.command = command
        self.console = console
        self.heartbeat = heartbeat_seconds() if heartbeat is None else heartbeat
        self.live = console.is_terminal if live is None else live
        self._clock = clock
        # every Progress of one command counts from the first one's start
        ctx = click.get_current_context(silent=True)
        self._start = ctx.meta.setdefault("accel.progress.start", clock()) if ctx else clock()
        self._last = self._start
        self._text = ""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._status = None

    def __enter__(self) -> Progress:
        # may be entered again (a step at a time): the time still counts from the command's start
        self._stop.clear()
        if self.live:
            self._status = self.console.status(escape(f"{self.command} ..."))
            self._status.__enter__()
        else:
            self._thread = threading.Thread(target=self._beat_loop, name="accel-progress",
                                            daemon=True)
            self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._status is not None:
            self._status.__exit__(kind, value, traceback)
            self._status = None

    @property
    def elapsed(self) -> float:
        return self._clock() - self._start

    def step(self, text: str) -> None:
        """A new step: the live line changes, or a log gets a line."""
        with self._lock:
            self._text = text
            if self._status is not None:
                self._status.update(escape(f"{self.command}: {text}"))
            elif not self.live:
                self._line(text)

    def note(self, text: str) -> None:
        """Progress within the step: the live line changes; a log gets it at most once per
        heartbeat."""
        with self._lock:
            self._text = text
            if self._status is not None:
                self._status.update(escape(f"{self.command}: {text}"))
            elif not self.live and self._clock() - self._last >= self.heartbeat:
                self._line(text)

    def beat(self) -> None:
        """The heartbeat: in a log, the current step again when nothing was said for a
        heartbeat (the thread of a ``with`` block calls it)."""
        with self._lock:
            if not self.live and self._clock() - self._last >= self.heartbeat:
                self._line(f"{self._text or 'working'} (still running)")

    def _line(self, text: str) -> None:
        self._last = self._clock()
        self.console.print(f"{self.command} [{self._last - self._start:7.1f} s] {text}",
                           markup=False, highlight=False, soft_wrap=True)

    def _beat_loop(self) -> None:
        while not self._stop.wait(min(1.0, self.heartbeat / 4)):
            self.beat()
