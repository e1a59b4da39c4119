"""Ctrl-C and SIGTERM during a run: they set the run's stop event, so the loop ends through the safe state."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator


class StopSignals:
    """Which signal asked the run to stop (``name``: "SIGINT", "SIGTERM" or None)."""

    name: str | None = None


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[StopSignals]:
    """Inside the block SIGINT and SIGTERM set ``stop`` instead of raising; the previous handlers come back at
    its end. Off the main thread (where handlers cannot be installed) it only yields."""
    seen = StopSignals()
    if threading.current_thread() is not threading.main_thread():
        yield seen
        return

    def handler(signum, _frame):
        seen.name = signal.Signals(signum).name
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield seen
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
