"""A live status line on the terminal while a run goes, refreshed about twice a second.

    t 12.5 s | 30.0 Hz | misses 0 | infer p50 4.1 ms | chunk age 2 | goal err 3.2 | holds 0 clamps 5 bus err 0 | hottest gripper 41 C | cam front 25 ms

The control thread only hands each finished tick over (``on_tick``: one assignment); a daemon thread reads
the counters of the loop, controller and robot io, formats the line and writes it, so a slow or stalled
terminal never delays a tick. Anything going wrong here (a closed terminal, a bug) turns the line off: it
must never stop the robot. ``clear()`` erases it before any other output, so log lines and the summary
are not written over it.
"""

from __future__ import annotations

import os
import statistics
import threading
import time

import numpy as np

REFRESH_S = 0.5
CLEAR = "\r\x1b[K"  # back to the line's start, erase to its end
LATENCY_WINDOW = 20  # inference p50 over the last chunks
DEFAULT_WIDTH = 200  # columns, when the stream does not say


class StatusLine:
    def __init__(self, stream, fps_target: float, *, interval_s: float = REFRESH_S, clock=time.monotonic):
        self.stream, self.fps_target, self.interval_s, self.clock = stream, fps_target, interval_s, clock
        self.loop = self.controller = self.io = None
        self.last = None  # the newest TickRecord
        self.enabled = True
        self._shown = False
        self._written_s: float | None = None
        self._rate_from: tuple[int, float] | None = None  # (ticks, loop time) at the previous line
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def attach(self, loop, controller, io) -> None:
        self.loop, self.controller, self.io = loop, controller, io

    def on_tick(self, rec) -> None:
        self.last = rec

    def format(self) -> str | None:
        """The line from the live objects; None before the first tick."""
        rec, c = self.last, self.controller
        if rec is None or c is None:
            return None
        period_s = 1.0 / self.fps_target
        ticks, now = self.loop.ticks, rec.time.start_s
        rate = None
        if self._rate_from is not None and now > self._rate_from[1]:
            rate = (ticks - self._rate_from[0]) / (now - self._rate_from[1])
        self._rate_from = (ticks, now)
        latencies = c.latencies_s[-LATENCY_WINDOW:]
        parts = [f"t {rec.time.index * period_s:.1f} s",
                 "- Hz" if rate is None else f"{rate:.1f} Hz",
                 f"misses {self.loop.scheduler.deadline_misses}",
                 "infer p50 -" if not latencies else f"infer p50 {statistics.median(latencies) * 1e3:.1f} ms",
                 f"chunk age {_show(rec.info.get('chunk_age'))}"]
        goal, position = rec.info.get("goal"), rec.info.get("position")
        if goal is not None and position is not None and len(c.goal_index):
            parts.append(f"goal err {float(np.max(np.abs(position[c.goal_index] - goal))):.1f}")
        parts.append(f"holds {c.hold_ticks} clamps {c.filter.clamped_commands} bus err {self.io.bus_errors}")
        health = getattr(c, "health", None)
        if health is not None and health.last["temperature"]:
            hot = max(health.last["temperature"], key=health.last["temperature"].get)
            parts.append(f"hottest {hot} {health.last['temperature'][hot]:.0f} C"
                         + (f" derated {','.join(health.derated)}" if health.derated else ""))
        cameras = rec.info.get("cameras") or {}
        if cameras:
            parts.append(" ".join(f"cam {name} {_show(facts.get('age_ms'), '{:.0f} ms')}"
                                  for name, facts in cameras.items()))
        return " | ".join(parts)

    def refresh(self) -> bool:
        """Write the line when ``interval_s`` passed since the last one; True when written."""
        now = self.clock()
        if not self.enabled or (self._written_s is not None and now - self._written_s < self.interval_s):
            return False
        with self._lock:
            try:
                line = self.format()
                if line is None:
                    return False
                self._written_s = now
                self.stream.write("\r" + line[:self._width() - 1] + "\x1b[K")
                self.stream.flush()
                self._shown = True
            except Exception:  # noqa: BLE001 (a broken terminal or a bug: the line goes, the run goes on)
                self.enabled = False
                return False
        return True

    def clear(self) -> None:
        """Erase the line (before another line is printed); it comes back at the next refresh."""
        with self._lock:
            if not self._shown:
                return
            self._shown = False
            try:
                self.stream.write(CLEAR)
                self.stream.flush()
            except Exception:  # noqa: BLE001
                self.enabled = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="actsac-status", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop refreshing and erase the line (the summary follows)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        self.enabled = False
        self.clear()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s / 5):
            self.refresh()

    def _width(self) -> int:
        """The terminal's width: a longer line would wrap and ``\\r`` could not write over it."""
        try:
            return os.get_terminal_size(self.stream.fileno()).columns or DEFAULT_WIDTH  # 0: size never set
        except (AttributeError, OSError, ValueError):
            return DEFAULT_WIDTH


def _show(value, fmt: str = "{}") -> str:
    return "-" if value is None else fmt.format(value)
