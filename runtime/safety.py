"""The safety filter between the policy and the motors, and the conditions that stop a run.

Every chunk passes ``ChunkCheck`` before it is used (actions clamped into the ranges, a plan that jumps
dropped). Every command passes through ``CommandFilter``: clamped to each joint's calibrated range (user units)
and to a maximum change per tick. ``SoftStart`` blends from the measured pose into the policy over ``ramp_s``.
Conditions that must end the run raise ``SafetyStop``; the session turns it into the safe state and exit
code 3.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from actsac.options import AT_LEAST_1, NON_NEGATIVE, option


class SafetyStop(RuntimeError):
    """The run must stop for safety (stalled inference, a silent bus...); the message says why."""


POSITIVE = (lambda v: math.isfinite(v) and v > 0, "must be positive and finite")
PROTECTION_MODES = ("check", "write", "ignore")


@dataclass
class SafetySettings:
    """What stops or softens a run; each field is an ``actsac-run`` option of its "safety" group."""

    ramp_s: float = option(1.0, "soft start: seconds to blend from the measured pose into the policy", NON_NEGATIVE)
    max_step: float | dict[str, float] | None = option(
        None, "max command change per tick, user units, every joint (default: the robot's)", POSITIVE, type=float)
    stall_timeout_s: float = option(1.0, "stop after this long without a valid action", POSITIVE)
    max_bus_failures: int = option(5, "stop after this many failed reads or writes in a row", AT_LEAST_1)
    obs_max_age_s: float = option(0.1, "a failed read reuses the last observation up to this age", NON_NEGATIVE)
    stop_hold_s: float = option(0.5, "on stop: hold the pose this long, then torque off (0: torque off at once)",
                                NON_NEGATIVE)
    camera_max_age_s: float | None = option(
        None, "a camera frame older than this is not fed to the model and the controller holds (default: two "
              "frame periods of the camera); a camera without a fresh frame for the stall timeout stops the run",
        POSITIVE)
    camera_frozen_s: float = option(0.5, "a camera repeating one image bit for bit this long is stale (frozen)",
                                    POSITIVE)
    chunk_speed_factor: float = option(
        3.0, "whole-chunk check: a chunk whose plan moves a joint between two steps faster than this many times "
             "its motor's no-load speed, or changes that speed by more than that in one step, jumps and is "
             "dropped (a --stochastic run judges the deterministic plan)", POSITIVE)
    chunk_hold_after: int = option(3, "this many jumping chunks in a row hold the robot until a smooth one "
                                      "arrives (the stall timeout then stops the run)", AT_LEAST_1)
    calibration_tolerance_deg: float = option(
        5.0, "refuse a model trained with a calibration whose commands land further than this from the robot's "
             "(degrees, any joint)", POSITIVE)
    allow_calibration_mismatch: bool = option(False, "run a model trained with another calibration, with a warning")
    gripper_protection: str | None = option(
        None, "the grippers' protection registers, read before torque: check (refuse a gripper left at factory "
              "limits), write (write the safe values: an STS3215's Max_Torque_Limit 500, Protection_Current 250, "
              "Overload_Torque 25 as LeRobot does; an XL330's current-based position mode), ignore (a warning); "
              "default: check on a real port, write on the simulator",
        (lambda v: v in PROTECTION_MODES, "must be check, write or ignore"), choices=("check", "write", "ignore"))


DEFAULT_STEP_FRACTION = 0.05  # max step per tick of a joint the robot file gives none for: 5 % of its range


class CommandFilter:
    """Clamp a target to [low, high] and to previous +- max_step (all arrays in user units)."""

    @classmethod
    def for_robot(cls, robot, joints: list[str], max_step: float | dict[str, float] | None) -> "CommandFilter":
        """The robot's calibrated joint ranges, and ``max_step`` (every joint, per joint) or else the robot
        definition's step caps (``DEFAULT_STEP_FRACTION`` of the range where it has none)."""
        low, high = robot.joint_limits(joints)
        per_joint = robot.spec.max_step if max_step is None else (
            max_step if isinstance(max_step, dict) else {j: float(max_step) for j in joints})
        steps = [per_joint.get(j, DEFAULT_STEP_FRACTION * (hi - lo)) for j, lo, hi in zip(joints, low, high)]
        return cls(low, high, np.array(steps))

    def __init__(self, low: np.ndarray, high: np.ndarray, max_step: np.ndarray):
        self.low = np.asarray(low, dtype=np.float64)
        self.high = np.asarray(high, dtype=np.float64)
        self.max_step = np.asarray(max_step, dtype=np.float64)
        if not np.all((self.max_step > 0) & np.isfinite(self.max_step)):
            raise ValueError("every max_step must be positive and finite")
        self.clamped_commands = 0  # ticks where any joint was clamped

    def apply(self, target: np.ndarray, previous: np.ndarray, step_scale: float = 1.0) -> tuple[np.ndarray, bool]:
        """(command, clamped). A joint whose target is not finite holds its previous command; ``step_scale``
        shrinks the step cap (a derated robot)."""
        target = np.where(np.isfinite(target), target, previous)
        command = np.clip(target, self.low, self.high)
        step = self.max_step * step_scale
        command = np.clip(command, previous - step, previous + step)
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


class ChunkCheck:
    """Every chunk before it is used: actions clamped into the joint ranges (counted), and a plan that jumps
    dropped (counted): a step-to-step change above ``max_step`` (``chunk_speed_factor`` times the motor's
    no-load speed over one step of the model's control period, in user units: the plan is judged at the rate it
    was made for; a run at another --fps is warned about on its own) or a change of that change above the same bound
    (reaching that speed from rest in one step). ``hold_after`` jumping chunks in a row set ``holding`` until a
    smooth chunk arrives. Arrays are per driven joint, user units."""

    @classmethod
    def for_robot(cls, robot, joints: list[str], fps: float, speed_factor: float, hold_after: int) -> "ChunkCheck":
        """Bounds from each joint's calibrated range and its motor model's no-load speed (``Ratings``)."""
        from actsac.drivers.tables import motor_model

        low, high = robot.joint_limits(joints)
        steps = []
        for joint, lo, hi in zip(joints, low, high):
            cal = robot.calibration[joint]
            ticks = abs(cal.range_max - cal.range_min) or 1
            speed = motor_model(robot.spec.motor(joint).model).ratings.no_load_speed  # ticks/s
            steps.append(speed_factor * speed / fps * (hi - lo) / ticks)
        return cls(low, high, np.array(steps), joints, hold_after)

    def __init__(self, low, high, max_step, joints: list[str], hold_after: int = 3):
        self.low, self.high = np.asarray(low, np.float64), np.asarray(high, np.float64)
        self.max_step = np.asarray(max_step, np.float64)
        self.joints = list(joints)
        self.hold_after = hold_after
        self.clamped_chunks = 0  # chunks with an action outside a joint's range
        self.clamped_actions = 0
        self.dropped_chunks = 0
        self.in_a_row = 0
        self.last_jump: str | None = None

    @property
    def holding(self) -> bool:
        return self.in_a_row >= self.hold_after

    def check(self, chunk: np.ndarray, judged: np.ndarray | None = None) -> np.ndarray | None:
        """``chunk`` (H, A) clamped into the ranges, or None when the plan (``judged``, else the chunk) jumps."""
        plan = np.clip(chunk if judged is None else judged, self.low, self.high)
        jump = self._jump(plan)
        if jump is not None:
            self.dropped_chunks += 1
            self.in_a_row += 1
            self.last_jump = jump
            return None
        self.in_a_row = 0
        clamped = np.clip(chunk, self.low, self.high)
        outside = int(np.count_nonzero(np.abs(clamped - chunk) > 1e-9))
        self.clamped_actions += outside
        self.clamped_chunks += outside > 0
        return clamped

    def _jump(self, plan: np.ndarray) -> str | None:
        """Why ``plan`` jumps (the worst joint, in words), or None."""
        for order, what in ((1, "moves"), (2, "changes its speed by")):
            if len(plan) <= order:
                break
            change = np.abs(np.diff(plan, n=order, axis=0)).max(axis=0)
            ratio = change / self.max_step
            if np.any(ratio > 1.0):
                j = int(np.argmax(ratio))
                return (f"{self.joints[j]} {what} {change[j]:.1f} in one step (limit {self.max_step[j]:.1f}, "
                        f"user units)")
        return None


def chunk_is_finite(chunk) -> bool:
    return chunk is not None and bool(np.all(np.isfinite(chunk)))
