"""The simulated motors' health: effort, temperature and supply voltage, and the faults that spoil them.

A position servo's effort follows its position error, limited by its torque (or current) limit. In the
simulator a joint that moves freely follows its speed / acceleration profile (``servo_model.py``) with little
effort (friction and acceleration); a joint that cannot follow, because something blocks it (``blocked``: an
object in the gripper, a wall) or its shaft is stuck (``stalled_after_s``), pushes with an effort proportional
to the distance from its goal, saturating at the limit. Temperature integrates that work:

    dT/dt = (heat_scale * FULL_EFFORT_RISE_K * effort^2 - (T - AMBIENT_C)) / TAU_S

With these constants a gripper squeezing at full effort reaches 50 degC after about 29 s and 70 degC after about
62 s (T - 30 = 150 (1 - exp(-t / 200))), as a user reported of an STS3215 gripper holding a light object
(REFERENCE.md section 11: 50 degC within 30-60 s, then past 70); a motor at rest cools back toward ambient with
a 200 s time constant. The supply reads the model's nominal voltage (its ``defaults``) until a
``voltage_drop`` fault lowers it.

Pure numpy over the motors of one bus (the simulator's registers are written by ``SimMotors``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..robots import BusSpec
from ..tables import MotorModel
from ..units import unnormalize

AMBIENT_C = 30.0
FULL_EFFORT_RISE_K = 150.0  # steady-state rise at full effort (reached only after minutes)
TAU_S = 200.0  # thermal time constant of a hobby servo's motor and case
FULL_EFFORT_ERROR_TICKS = 40.0  # a pinned joint this far from its goal pushes at full effort (P gain)
MOVING_EFFORT = 0.08  # effort fraction of a free joint at full speed (friction)
ACCEL_EFFORT = 0.15  # effort fraction of a free joint at full acceleration
HEAT_STEP_S = 5.0  # Euler steps of the temperature, well under TAU_S
AT_BLOCK_TICKS = 0.5  # a joint this close to its block rests on it


@dataclass
class HealthState:
    """Per motor (arrays over the bus's motors): ``temperature_c``, signed ``effort`` (fraction of stall),
    ``voltage_v``; ``block`` (actual ticks, NaN: none) with the side each joint started on, ``stuck`` (a
    position the shaft is held at, NaN: free), ``heat_scale``. The scheduled faults by motor index:
    ``stall_at_s`` (clock time the shaft sticks) and ``drop_v`` (supply volts from ``drop_at_s`` on)."""

    temperature_c: np.ndarray
    effort: np.ndarray
    voltage_v: np.ndarray
    block: np.ndarray
    block_side: np.ndarray
    stuck: np.ndarray
    heat_scale: np.ndarray
    stall_at_s: dict[int, float] = field(default_factory=dict)
    drop_v: dict[int, float] = field(default_factory=dict)
    drop_at_s: float = 0.0

    @classmethod
    def start(cls, voltage_v, block, position, heat_scale, **schedule) -> "HealthState":
        """Ambient temperature, no effort; each blocked joint remembers the side of its block it starts on."""
        block = np.asarray(block, np.float64)
        n = block.shape[0]
        side = np.where(np.isnan(block), 0.0, np.sign(np.asarray(position) - np.nan_to_num(block)))
        side = np.where((side == 0) & ~np.isnan(block), 1.0, side)
        return cls(np.full(n, AMBIENT_C), np.zeros(n), np.asarray(voltage_v, np.float64), block, side,
                   np.full(n, np.nan), np.asarray(heat_scale, np.float64), **schedule)

    def apply_faults(self, now_s: float, position: np.ndarray) -> None:
        """A stall sticks the shaft where it is when its time comes; a voltage drop lowers the supply."""
        for i, at in list(self.stall_at_s.items()):
            if now_s >= at:
                self.stuck[i] = position[i]
                del self.stall_at_s[i]
        if self.drop_v and now_s >= self.drop_at_s:
            for i, volts in self.drop_v.items():
                self.voltage_v[i] = volts
            self.drop_v = {}

    def constrain(self, position: np.ndarray, velocity: np.ndarray,
                  goal: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(position, velocity, pinned): a joint past its block is put back on it, a stuck one where it is stuck;
        pinned joints (stuck, or on their block with the goal beyond it) stand still."""
        has_block = ~np.isnan(self.block)
        block = np.nan_to_num(self.block)
        crossed = has_block & (np.sign(position - block) == -self.block_side)
        position = np.where(crossed, block, position)
        stuck = ~np.isnan(self.stuck)
        position = np.where(stuck, self.stuck, position)
        pushing_on_block = (has_block & (np.abs(position - block) < AT_BLOCK_TICKS)
                            & (np.sign(goal - block) == -self.block_side))
        pinned = crossed | stuck | pushing_on_block
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


def start_health(spec: BusSpec, models: dict[int, MotorModel], faults, position: np.ndarray,
                 start_s: float) -> HealthState:
    """The health of a bus's motors at ``start_s`` (clock seconds) under ``faults`` (``Faults`` or None).

    Nominal voltages come from the models' defaults. ``blocked`` positions (user units under each motor's
    sim_calibration and norm_mode) are turned into ticks once, here: an object sits at a physical place, so
    the block stays put in the actual frame whatever Homing_Offset a run writes later (the simulator starts
    with Homing_Offset 0, where the homed frame is the actual one).
    """
    blocked = dict(getattr(faults, "blocked", None) or {})
    heat = dict(getattr(faults, "heat_scale", None) or {})
    index = {m.name: i for i, m in enumerate(spec.motors)}
    stalls = getattr(faults, "stalled_after_s", None) or {}
    drops = getattr(faults, "voltage_drop", None) or {}
    block, volts = [], []
    for m in spec.motors:
        model = models[m.id]
        volts.append(model.defaults.get(model.ratings.voltage, 0) / 10.0 if model.ratings else 0.0)
        cal = m.sim_calibration
        block.append(float(unnormalize(blocked[m.name], cal, m.norm_mode, model.resolution))
                     if m.name in blocked and cal is not None else np.nan)
    return HealthState.start(
        volts, block, position, [heat.get(m.name, 1.0) for m in spec.motors],
        stall_at_s={index[n]: start_s + s for n, s in stalls.items() if n in index},
        drop_v={index[n]: v for n, v in drops.items() if n in index},
        drop_at_s=start_s + (getattr(faults, "voltage_drop_after_s", 0.0) or 0.0))
