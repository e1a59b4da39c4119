"""The one retry helper every bus operation goes through: bounded tries within a time budget, never a hang."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

from .errors import BusTimeoutError, ChecksumError

T = TypeVar("T")

RETRYABLE = (BusTimeoutError, ChecksumError)  # a status error or a missing motor does not heal by retrying


def with_retries(attempt: Callable[[], T], *, retries: int, budget_s: float,
                 before_retry: Callable[[], None] | None = None, clock: Callable[[], float] = time.monotonic) -> T:
    """Call ``attempt()`` until it succeeds, at most ``1 + retries`` times and not after ``budget_s`` has passed.

    Only communication faults (timeout, corrupt reply) are retried; the last one is re-raised with the number
    of tries and the time spent added to its message. ``before_retry`` runs between tries (e.g. to flush
    stale bytes a late reply left in the input buffer).
    """
    start = clock()
    tries = 0
    while True:
        tries += 1
        try:
            return attempt()
        except RETRYABLE as exc:
            elapsed = clock() - start
            if tries > retries or elapsed >= budget_s:
                exc.detail = f"{exc.detail} (after {tries} {'try' if tries == 1 else 'tries'} in {elapsed * 1e3:.0f} ms)"
                raise exc.add_context()
            if before_retry is not None:
                before_retry()
