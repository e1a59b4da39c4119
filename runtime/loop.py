"""The loop owns time: ``read -> update -> write (-> monitor)`` on absolute deadlines at a fixed rate.

Deadlines are ``start + index * period`` (no drift). The wait sleeps most of the way and spins the last
fraction (``time.sleep`` alone overshoots by tens to hundreds of microseconds). A tick that would start one
period or more late skips the missed periods instead of bursting to catch up: its index jumps to the latest
period boundary already passed, so the index always names the period the tick runs in (the controller aligns
chunks on it), and the skip is counted as a deadline miss.

Time is injected (``Clock``), so tests drive the loop with a fake clock. Nothing here touches a bus: the
``io`` object reads and writes, the ``controller`` decides, and an optional ``monitor`` (motor-health reads)
uses what the tick has left after its write.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Callable, Protocol

DEFAULT_SPIN_S = 0.0005  # spin the last half millisecond of every wait


class Clock(Protocol):
    def now(self) -> float: ...

    def sleep_until(self, deadline_s: float) -> None: ...


class RealClock:
    """``time.perf_counter`` (monotonic, sub-microsecond); sleep, then spin the last ``spin_s`` seconds."""

    def __init__(self, spin_s: float = DEFAULT_SPIN_S):
        self.spin_s = spin_s

    def now(self) -> float:
        return time.perf_counter()

    def sleep_until(self, deadline_s: float) -> None:
        remaining = deadline_s - time.perf_counter()
        if remaining > self.spin_s:
            time.sleep(remaining - self.spin_s)
        while time.perf_counter() < deadline_s:
            pass


@dataclass
class TickTime:
    index: int  # period number since the loop started (skipped periods never get a tick)
    scheduled_s: float  # start + index * period
    start_s: float  # when the tick actually began
    missed_periods: int  # periods skipped right before this tick (> 0: a deadline miss)

    @property
    def jitter_s(self) -> float:
        return self.start_s - self.scheduled_s


class RateScheduler:
    """Hands out ticks at absolute deadlines; the first tick starts at once."""

    def __init__(self, period_s: float, clock: Clock):
        if not period_s > 0:
            raise ValueError(f"period_s must be positive, got {period_s}")
        self.period_s = period_s
        self.clock = clock
        self._start_s: float | None = None
        self._index = -1
        self.deadline_misses = 0
        self.skipped_periods = 0

    def next_tick(self) -> TickTime:
        if self._start_s is None:
            self._start_s = self.clock.now()
            self._index = 0
            return TickTime(0, self._start_s, self._start_s, 0)
        index = self._index + 1
        scheduled = self._start_s + index * self.period_s
        missed = 0
        now = self.clock.now()
        if now >= scheduled + self.period_s:  # a whole period late: skip, do not burst
            missed = int(math.floor((now - scheduled) / self.period_s))
            index += missed
            scheduled = self._start_s + index * self.period_s
            self.deadline_misses += 1
            self.skipped_periods += missed
        else:
            self.clock.sleep_until(scheduled)
        self._index = index
        return TickTime(index, scheduled, self.clock.now(), missed)


@dataclass
class TickRecord:
    """What one tick did and when (seconds on the loop clock, durations in seconds)."""

    time: TickTime
    read_s: float  # bus read duration
    update_s: float  # controller (decision) duration
    write_s: float  # bus write duration
    end_s: float
    info: dict  # the controller's and the io's per-tick facts (observation, command, flags...)
    monitor_s: float = 0.0  # the monitor step's duration (after end_s: not part of the loop's overhead)

    @property
    def overhead_s(self) -> float:
        """Tick work that is neither bus I/O nor waiting: the loop's own cost."""
        return (self.end_s - self.time.start_s) - self.read_s - self.write_s


class ControlLoop:
    """``io.read(tick) -> (observation, info)``, ``controller.update(tick, observation) -> (command, info)``,
    ``io.write(command)``, then ``monitor(tick) -> info`` when given, every period until ``stop`` is set,
    ``max_ticks`` ran or an exception escapes (the caller maps exceptions to the safe state).
    ``on_tick(record)`` sees every finished tick."""

    def __init__(self, io, controller, period_s: float, clock: Clock | None = None,
                 on_tick: Callable[[TickRecord], None] | None = None,
                 monitor: Callable[[TickTime], dict] | None = None):
        self.io = io
        self.controller = controller
        self.monitor = monitor
        self.clock = clock or RealClock()
        self.scheduler = RateScheduler(period_s, self.clock)
        self.on_tick = on_tick
        self.ticks = 0

    def run(self, stop: threading.Event, max_ticks: int | None = None, duration_s: float | None = None) -> str:
        """Returns why it ended: "stopped" (the event) or "completed" (max_ticks / duration reached)."""
        end_index = None if duration_s is None else int(round(duration_s / self.scheduler.period_s))
        while not stop.is_set():
            if max_ticks is not None and self.ticks >= max_ticks:
                return "completed"
            tick = self.scheduler.next_tick()
            if end_index is not None and tick.index >= end_index:
                return "completed"
            t0 = tick.start_s
            observation, io_info = self.io.read(tick)
            t1 = self.clock.now()
            command, info = self.controller.update(tick, observation)
            t2 = self.clock.now()
            self.io.write(command)
            t3 = self.clock.now()
            monitor_info = self.monitor(tick) if self.monitor is not None else {}
            t4 = self.clock.now()
            self.ticks += 1
            if self.on_tick is not None:
                self.on_tick(TickRecord(tick, t1 - t0, t2 - t1, t3 - t2, t3, {**io_info, **info, **monitor_info},
                                        t4 - t3))
        return "stopped"
