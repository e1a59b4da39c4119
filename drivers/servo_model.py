"""Position-servo dynamics shared by the bus simulator and the in-process training task.

Each joint tracks its goal with a trapezoidal velocity profile: speed limited to ``max_speed`` and
acceleration to ``max_accel`` (ticks/s and ticks/s^2), decelerating in time to stop on the goal.
With torque off a joint does not move by itself (something else may set its position: the simulator's
scripted "hand"). Pure numpy, vectorised over joints, no I/O.
"""

from __future__ import annotations

import numpy as np

# STS3215 at 7.4 V: about 0.222 s per 60 degrees unloaded, i.e. ~3000 ticks/s; we stay a little below.
DEFAULT_MAX_SPEED = 2400.0  # ticks/s
DEFAULT_MAX_ACCEL = 20000.0  # ticks/s^2
MAX_SUBSTEP_S = 0.002


class ServoArray:
    """State of n position servos in ticks: ``position``, ``velocity``, ``goal`` and ``torque`` (bool)."""

    def __init__(self, position, max_speed=DEFAULT_MAX_SPEED, max_accel=DEFAULT_MAX_ACCEL):
        self.position = np.asarray(position, dtype=np.float64).copy()
        n = self.position.shape[0]
        self.velocity = np.zeros(n)
        self.goal = self.position.copy()
        self.torque = np.zeros(n, dtype=bool)
        self.max_speed = np.broadcast_to(np.asarray(max_speed, dtype=np.float64), (n,)).copy()
        self.max_accel = np.broadcast_to(np.asarray(max_accel, dtype=np.float64), (n,)).copy()

    def step(self, dt: float) -> None:
        """Advance by ``dt`` seconds (split into substeps of at most 2 ms)."""
        n_sub = max(1, int(np.ceil(dt / MAX_SUBSTEP_S)))
        h = dt / n_sub
        for _ in range(n_sub):
            self._substep(h)

    def _substep(self, h: float) -> None:
        on = self.torque
        error = self.goal - self.position
        # fastest speed from which we can still stop on the goal: v^2 = 2 a d
        stop_speed = np.sqrt(2.0 * self.max_accel * np.abs(error))
        desired = np.sign(error) * np.minimum(self.max_speed, stop_speed)
        dv = np.clip(desired - self.velocity, -self.max_accel * h, self.max_accel * h)
        velocity = np.where(on, self.velocity + dv, 0.0)
        position = self.position + velocity * h
        # landing on or past the goal within this substep: settle there
        settled = on & ((np.sign(self.goal - position) != np.sign(error)) | (np.abs(self.goal - position) < 0.5))
        self.position = np.where(settled, self.goal, position)
        self.velocity = np.where(settled, 0.0, velocity)
