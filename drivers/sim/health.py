"""The simulated motors' health: effort, temperature and supply voltage, and the faults that spoil them.

A position servo's effort follows its position error, limited by its torque (or current) limit. In the
simulator a joint that moves freely follows its speed / acceleration profile (``servo_model.py``) with little
effort (friction and acceleration); a joint that cannot follow, because something blocks it (``blocked``: an
object in the gripper, a wall) or its shaft is stuck (``stalled_after_s``), pushes with an effort proportional
to the distance from its goal, saturating at the limit. Temperature integrates that work:

    dT/dt = (heat_scale * FULL_EFFORT_RISE_K * effort^2 - (T - AMBIENT_C)) / TAU_S

With these constants a gripper squeezing at full effort reaches 50 degC after about 30 s and 70 degC after about
60 s, as a user reported of an STS3215 gripper holding a light object (REFERENCE.md section 11); a motor at
rest cools back toward ambient with a 200 s time constant. The supply reads the model's nominal voltage (its
``defaults``) until a ``voltage_drop`` fault lowers it.

Pure numpy over the motors of one bus (the simulator's registers are written by ``SimMotors``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

AMBIENT_C = 30.0
FULL_EFFORT_RISE_K = 150.0  # steady-state rise at full effort (reached only after minutes)
TAU_S = 200.0  # thermal time constant of a hobby servo's motor and case
FULL_EFFORT_ERROR_TICKS = 40.0  # a pinned joint this far from its goal pushes at full effort (P gain)
MOVING_EFFORT = 0.08  # effort fraction of a free joint at full speed (friction)
ACCEL_EFFORT = 0.15  # effort fraction of a free joint at full acceleration
HEAT_STEP_S = 5.0  # Euler steps of the temperature, well under TAU_S


@dataclass
class HealthState:
    """Per motor (arrays over the bus's motors): ``temperature_c``, signed ``effort`` (fraction of stall),
    ``voltage_v``; ``block`` (actual ticks, NaN: none) with the side each joint started on, ``stuck`` (a
    position the shaft is held at, NaN: free)."""

    temperature_c: np.ndarray
    effort: np.ndarray
    voltage_v: np.ndarray
    block: np.ndarray
    block_side: np.ndarray
    stuck: np.ndarray
    heat_scale: np.ndarray

    @classmethod
    def start(cls, n: int, voltage_v, block, position, heat_scale) -> "HealthState":
        block = np.asarray(block, np.float64)
        side = np.where(np.isnan(block), 0.0, np.sign(np.asarray(position) - np.nan_to_num(block)))
        side = np.where((side == 0) & ~np.isnan(block), 1.0, side)
        return cls(np.full(n, AMBIENT_C), np.zeros(n), np.asarray(voltage_v, np.float64), block, side,
                   np.full(n, np.nan), np.asarray(heat_scale, np.float64))

    def constrain(self, position: np.ndarray, velocity: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(position, velocity, pinned): a joint past its block is put back on it, a stuck one where it is stuck."""
        crossed = ~np.isnan(self.block) & (np.sign(position - np.nan_to_num(self.block)) == -self.block_side)
        position = np.where(crossed, self.block, position)
        stuck = ~np.isnan(self.stuck)
        position = np.where(stuck, self.stuck, position)
        at_block = ~np.isnan(self.block) & (np.abs(position - np.nan_to_num(self.block)) < 0.5)
        pinned = crossed | stuck | at_block
        return position, np.where(pinned, 0.0, velocity), pinned

    def step(self, dt: float, *, goal, position, velocity, accel, max_speed, max_accel, torque, pinned,
             effort_cap, heat_s: float | None = None) -> None:
        """Effort of this instant and ``heat_s`` (default ``dt``) seconds of heating at it (arrays over the
        motors, ticks); the step is split so a long gap between requests integrates stably."""
        error = goal - position
        pushing = np.clip(error / FULL_EFFORT_ERROR_TICKS, -1.0, 1.0)
        free = MOVING_EFFORT * velocity / max_speed + ACCEL_EFFORT * np.clip(accel / max_accel, -1.0, 1.0)
        effort = np.where(pinned, pushing, free)
        self.effort = np.where(torque, np.clip(effort, -effort_cap, effort_cap), 0.0)
        rise = self.heat_scale * FULL_EFFORT_RISE_K * self.effort ** 2
        remaining = dt if heat_s is None else heat_s
        while remaining > 0:
            h = min(remaining, HEAT_STEP_S)
            self.temperature_c = self.temperature_c + h * (rise - (self.temperature_c - AMBIENT_C)) / TAU_S
            remaining -= h
