"""The interactive calibration flow, on connected buses: home at mid-range, record each joint's range, write.

Prompts go to ``out``; ENTER comes from ``EnterWatcher``, a thread reading stdin so the sampling loop never
blocks on the keyboard. The motors stay torque-off throughout (a person moves the arm); the CLI owns
connecting and the final torque-off / disconnect on every exit path.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from typing import Callable, Sequence, TextIO

from actsac.drivers.errors import CalibrationError
from actsac.drivers.homing import half_turn_offsets, write_limits
from actsac.drivers.units import MotorCalibration

from .files import range_problem

SAMPLE_PERIOD_S = 0.02
REFRESH_PERIOD_S = 0.1


class EnterWatcher:
    """Reads lines from ``stream`` in a daemon thread; ``wait()`` / ``pressed()`` consume one ENTER each."""

    def __init__(self, stream: TextIO | None = None):
        self._stream = stream if stream is not None else sys.stdin
        self._lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, name="enter-watcher", daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                line = self._stream.readline()
            except (OSError, ValueError):
                line = ""
            self._lines.put(line if line else None)
            if not line:
                return

    def _take(self, block: bool, timeout_s: float | None) -> bool:
        try:
            line = self._lines.get(block=block, timeout=timeout_s)
        except queue.Empty:
            return False
        if line is None:
            self._lines.put(None)  # stays at end of input for every later call
            raise EOFError("standard input closed before ENTER was pressed")
        return True

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until ENTER (True) or ``timeout_s`` (False); EOFError when stdin is closed."""
        return self._take(True, timeout_s)

    def pressed(self) -> bool:
        return self._take(False, None)


class LiveTable:
    """A table of rows redrawn in place on a terminal; elsewhere (a pipe, a log) only ``final()`` prints it."""

    def __init__(self, out: TextIO, header: Sequence[str], in_place: bool | None = None):
        self.out = out
        self.header = list(header)
        self.in_place = out.isatty() if in_place is None else in_place
        self._drawn = 0
        self._last_s = 0.0

    def _lines(self, rows: Sequence[Sequence]) -> list[str]:
        widths = [max(len(str(h)), 10) for h in self.header]
        widths[0] = max([len(self.header[0])] + [len(str(r[0])) for r in rows])
        fmt = lambda cells: "  ".join(str(c).rjust(w) if i else str(c).ljust(w)  # noqa: E731
                                      for i, (c, w) in enumerate(zip(cells, widths)))
        return [fmt(self.header)] + [fmt(r) for r in rows]

    def show(self, rows: Sequence[Sequence], force: bool = False) -> None:
        now = time.monotonic()
        if not self.in_place or (not force and now - self._last_s < REFRESH_PERIOD_S):
            return
        self._last_s = now
        text = "".join(f"\x1b[2K{line}\n" for line in self._lines(rows))
        self.out.write((f"\x1b[{self._drawn}F" if self._drawn else "") + text)
        self.out.flush()
        self._drawn = len(rows) + 1

    def final(self, rows: Sequence[Sequence]) -> None:
        if self.in_place:
            self.show(rows, force=True)
        else:
            self.out.write("".join(line + "\n" for line in self._lines(rows)))
            self.out.flush()


def record_ranges(buses: Sequence, done: Callable[[], bool], on_sample: Callable[[dict, dict, dict], None],
                  period_s: float = SAMPLE_PERIOD_S) -> tuple[dict[str, int], dict[str, int], set[str]]:
    """Sample every motor's present position until ``done()``; (mins, maxs, wrapped) in ticks.

    ``wrapped`` names the joints that jumped more than half a turn between two samples: they crossed the
    encoder's 4095 -> 0 seam, so their min/max mean nothing (fine only for a full-turn joint).
    """
    half_turn = {name: bus.models[name].resolution // 2 for bus in buses for name in bus.motors}
    mins: dict[str, int] = {}
    maxs: dict[str, int] = {}
    wrapped: set[str] = set()
    previous: dict[str, int] = {}
    while True:
        start = time.monotonic()
        positions: dict[str, int] = {}
        for bus in buses:
            positions.update(bus.sync_read("Present_Position"))
        for name, pos in positions.items():
            mins[name] = min(mins.get(name, pos), pos)
            maxs[name] = max(maxs.get(name, pos), pos)
            if name in previous and abs(pos - previous[name]) > half_turn[name]:
                wrapped.add(name)
        previous = positions
        on_sample(positions, mins, maxs)
        if done():
            return mins, maxs, wrapped
        time.sleep(max(0.0, period_s - (time.monotonic() - start)))


def calibrate(buses: Sequence, enter: EnterWatcher, out: TextIO, full_turn: Sequence[str] | None = None,
              in_place: bool | None = None) -> dict[str, MotorCalibration]:
    """The whole flow on connected buses; returns the calibration (nothing is saved here).

    Joints in ``full_turn`` (default: the motors the robot definition marks ``full_turn``) turn without end
    stops and get the whole turn, as LeRobot does for the SO-100's wrist_roll. Every other range must pass
    ``range_problem`` (wide enough, containing the homed centre), else CalibrationError and no limit is written.
    """
    motor_specs = {name: spec for bus in buses for name, spec in bus.motors.items()}
    if full_turn is None:
        full_turn = [name for name, spec in motor_specs.items() if spec.full_turn]
    unknown = [j for j in full_turn if j not in motor_specs]
    if unknown:
        raise CalibrationError(f"full-turn joint '{unknown[0]}' is not a motor of this robot")
    for bus in buses:
        bus.disable_torque()
    print("Torque is off. Move the arm to the middle of its range, then press ENTER.", file=out, flush=True)
    enter.wait()
    offsets: dict[str, int] = {}
    for bus in buses:
        offsets.update(half_turn_offsets(bus))
    print("Homing offsets set (every joint now reads mid-scale).", file=out)
    print("Move every joint through its whole range of motion; press ENTER when done.", file=out, flush=True)
    table = LiveTable(out, ["joint", "current", "min", "max"], in_place)
    rows = lambda pos, lo, hi: [(n, pos[n], lo[n], hi[n]) for n in motor_specs]  # noqa: E731
    last: list = []

    def on_sample(pos, lo, hi):
        last[:] = rows(pos, lo, hi)
        table.show(last)

    mins, maxs, wrapped = record_ranges(buses, enter.pressed, on_sample)
    table.final(last)
    bus_ranges = []  # every range is checked before any limit is written
    for bus in buses:
        ranges = {}
        for name in bus.motors:
            top = bus.models[name].resolution - 1
            if name in full_turn:
                ranges[name] = (0, top)
                continue
            if name in wrapped or mins[name] < 0 or maxs[name] > top:
                raise CalibrationError(f"joint '{name}' left the encoder's 0..{top} window while moving "
                                       f"({mins[name]}..{maxs[name]}): start again with the arm nearer the middle "
                                       "(or pass --full-turn for a joint without end stops)")
            problem = range_problem(name, mins[name], maxs[name], top + 1)
            if problem:
                raise CalibrationError(f"{problem}: start again from the middle and move every joint "
                                       "through its whole range before the last ENTER")
            ranges[name] = (mins[name], maxs[name])
        bus_ranges.append((bus, ranges))
    calibration = {}
    for bus, ranges in bus_ranges:
        write_limits(bus, ranges)
        for name, (lo, hi) in ranges.items():
            calibration[name] = MotorCalibration(id=bus.motors[name].id, drive_mode=0,
                                                 homing_offset=offsets[name], range_min=lo, range_max=hi)
    return calibration
