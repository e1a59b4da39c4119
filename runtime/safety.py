"""The safety filter between the policy and the motors, and the conditions that stop a run.

Every command passes through ``CommandFilter``: clamped to each joint's calibrated range (user units) and to a
maximum change per tick. ``SoftStart`` blends from the measured pose into the policy over ``ramp_s``.
Conditions that must end the run raise ``SafetyStop``; the session turns it into the safe state and exit
code 3.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from actsac.calibration.normalize import MotorCalibration, normalize


class SafetyStop(RuntimeError):
    """The run must stop for safety (stalled inference, a silent bus...); the message says why."""


@dataclass
class SafetySettings:
    ramp_s: float = 1.0  # soft start: seconds to blend from the measured pose into the policy
    max_step: float | dict[str, float] | None = None  # user units per tick: every joint, per joint, or the robot's
    stall_timeout_s: float = 1.0  # no new valid action for this long: stop
    max_bus_failures: int = 5  # consecutive failed reads (or writes): stop
    obs_max_age_s: float = 0.1  # a failed read may reuse the last observation while it is this fresh
    stop_hold_s: float = 0.5  # on stop: hold the last pose this long, then torque off (0: torque off at once)


def joint_limits(motor_specs, calibration: dict[str, MotorCalibration], resolutions: dict[str, int]):
    """(low, high) user-unit arrays: each joint's calibrated range [range_min, range_max] in its norm_mode."""
    low, high = [], []
    for motor in motor_specs:
        cal = calibration[motor.name]
        ends = [float(normalize(v, cal, motor.norm_mode, resolutions[motor.name])) for v in (cal.range_min, cal.range_max)]
        low.append(min(ends))
        high.append(max(ends))
    return np.array(low), np.array(high)


class CommandFilter:
    """Clamp a target to [low, high] and to previous +- max_step (all arrays in user units)."""

    def __init__(self, low: np.ndarray, high: np.ndarray, max_step: np.ndarray):
        self.low = np.asarray(low, dtype=np.float64)
        self.high = np.asarray(high, dtype=np.float64)
        self.max_step = np.asarray(max_step, dtype=np.float64)
        if not np.all((self.max_step > 0) & np.isfinite(self.max_step)):
            raise ValueError("every max_step must be positive and finite")
        self.clamped_commands = 0  # ticks where any joint was clamped

    def apply(self, target: np.ndarray, previous: np.ndarray) -> tuple[np.ndarray, bool]:
        """(command, clamped). A joint whose target is not finite holds its previous command."""
        target = np.where(np.isfinite(target), target, previous)
        command = np.clip(target, self.low, self.high)
        command = np.clip(command, previous - self.max_step, previous + self.max_step)
        clamped = bool(np.any(np.abs(command - target) > 1e-9))
        self.clamped_commands += clamped
        return command, clamped


class SoftStart:
    """Blend ``pose + alpha * (target - pose)``, alpha rising linearly from 0 to 1 over ``ramp_ticks`` ticks
    counted from the first valid action, so torque-on never jumps to where the policy wants to be."""

    def __init__(self, start_pose: np.ndarray, ramp_ticks: int):
        self.start_pose = np.asarray(start_pose, dtype=np.float64)
        self.ramp_ticks = max(0, int(ramp_ticks))
        self.first_tick: int | None = None

    def apply(self, target: np.ndarray, tick: int) -> tuple[np.ndarray, bool]:
        """(blended command, still ramping)."""
        if self.first_tick is None:
            self.first_tick = tick
        if self.ramp_ticks == 0:
            return target, False
        alpha = min(1.0, (tick - self.first_tick + 1) / self.ramp_ticks)
        return self.start_pose + alpha * (target - self.start_pose), alpha < 1.0


def chunk_is_finite(chunk) -> bool:
    return chunk is not None and bool(np.all(np.isfinite(chunk)))
