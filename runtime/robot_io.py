"""The loop's hardware side: joint vectors in, joint vectors out, bus faults contained here.

Wraps a drivers ``Robot`` (which owns the bytes and retries each operation within its time budget). A failed
read reuses the last observation while it is younger than ``obs_max_age_s``; ``max_failures`` consecutive
failed reads, or writes, raise ``SafetyStop``. A reply carrying hardware error bits (overheat, overload,
voltage...) raises ``SafetyStop`` at once, naming the motor: the servo has already protected itself.
"""

from __future__ import annotations

import numpy as np

from actsac.drivers.errors import BusError, MotorStatusError

from .health import hardware_error_message
from .loop import TickTime
from .safety import SafetyStop


class RobotIO:
    def __init__(self, robot, joints: list[str], clock, *, obs_max_age_s: float, max_failures: int):
        self.robot = robot
        self.joints = list(joints)
        self.clock = clock
        self.obs_max_age_s = obs_max_age_s
        self.max_failures = max_failures
        self.bus_errors = 0
        self.last_error: str | None = None
        self._read_failures = 0
        self._write_failures = 0
        self._last: np.ndarray | None = None
        self._last_s = 0.0

    def read_now(self) -> np.ndarray:
        """One read outside the loop (the starting pose); bus errors propagate."""
        positions = self.robot.read_positions()
        self._last = np.array([positions[j] for j in self.joints])
        self._last_s = self.clock.now()
        return self._last.copy()

    def read(self, tick: TickTime) -> tuple[np.ndarray, dict]:
        try:
            positions = self.robot.read_positions()
        except MotorStatusError as exc:
            raise SafetyStop(hardware_error_message(exc)) from None
        except BusError as exc:
            self.bus_errors += 1
            self._read_failures += 1
            self.last_error = str(exc)
            age = self.clock.now() - self._last_s
            if self._last is None or self._read_failures >= self.max_failures or age > self.obs_max_age_s:
                raise SafetyStop(f"bus read failed {self._read_failures} time(s) in a row, last observation "
                                 f"{age * 1e3:.0f} ms old: {exc}") from None
            return self._last.copy(), {"bus_error": True, "obs_age_s": age}
        self._read_failures = 0
        self._last = np.array([positions[j] for j in self.joints])
        self._last_s = self.clock.now()
        return self._last.copy(), {"bus_error": False, "obs_age_s": 0.0}

    def write(self, command: np.ndarray) -> None:
        try:
            self.robot.write_goals(dict(zip(self.joints, command.tolist())))
        except MotorStatusError as exc:
            raise SafetyStop(hardware_error_message(exc)) from None
        except BusError as exc:
            self.bus_errors += 1
            self._write_failures += 1
            self.last_error = str(exc)
            if self._write_failures >= self.max_failures:
                raise SafetyStop(f"bus write failed {self._write_failures} times in a row: {exc}") from None
            return
        self._write_failures = 0
