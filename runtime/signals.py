"""Ctrl-C and SIGTERM during a run: they set the run's stop event, so the loop ends through the safe state."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[list[str]]:
    """Inside the block SIGINT and SIGTERM set ``stop`` instead of raising; the yielded list gets the signal's
    name ("SIGINT", "SIGTERM"). The previous handlers come back at the end. Off the main thread (where
    handlers cannot be installed) it only yields."""
    seen: list[str] = []
    if threading.current_thread() is not threading.main_thread():
        yield seen
        return

    def handler(signum, _frame):
        seen.append(signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield seen
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
