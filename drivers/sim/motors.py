"""The simulated motors of one bus: control-table memory plus servo physics, with each family's semantics.

Memory is a bytearray per motor laid out by the same control tables the drivers use. Physics runs in
*actual* encoder ticks (drivers/servo_model.py); the registers show the homed frame:
Feetech Present = Actual - Homing_Offset (wrapped to one turn), Dynamixel Present = Actual + Homing_Offset.
Goals are clamped to Min/Max_Position_Limit in the homed frame. Motion is integrated lazily from elapsed
wall time whenever a request needs the present state. Turning torque on sets Goal_Position to the present
position (the motor holds where it is rather than jumping to a stale goal).

Health (``health.py``): effort, temperature and voltage in each model's registers (``Ratings``), with the
status error bits a real servo sets: overheat at Max_Temperature_Limit, input voltage outside
Min/Max_Voltage_Limit. A bit in the motor's Shutdown (Dynamixel) or Unloading_Condition (STS3215) register
turns its torque off. A Feetech motor's condition bits clear with the condition; a Dynamixel's stay until a
REBOOT, as on the real servo. Injected ``hardware_errors`` bits show beside them.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from ..robots import BusSpec
from ..servo_model import ServoArray
from ..tables import MotorModel, Reg, motor_model
from .health import start_health

OVERHEAT, INPUT_VOLTAGE = 0x04, 0x01  # the same bits in a Feetech status byte and a Dynamixel Hardware_Error_Status
MAX_CATCH_UP_S = 0.5  # after a long idle gap, integrate only the last half second (the motion has settled)
MIN_STEP_S = 1e-4  # writes to several motors of one sync write share one integration step
HOMING_HOLD_S = 0.2  # a waiting hand starts this long after the first Homing_Offset write: homing is done by then


@dataclass(frozen=True)
class SweepHand:
    """A scripted hand moving torque-off joints: each sweeps sinusoidally through its sim_calibration range.

    The hand back-drives the joint (position set directly, not limited by the motor's speed); joint i lags
    joint 0 by ``phase_step`` radians so the joints do not move in lockstep. Calibration tests use it to record
    each joint's range without a person at the robot. Turning torque on makes the motor take over and hold.
    With ``wait_for_homing`` the hand holds every joint still until ``HOMING_HOLD_S`` after the bus's first
    Homing_Offset write, as a person holds the arm while it is homed, and then starts sweeping.
    """

    period_s: float = 3.0
    phase_step: float = 0.9
    wait_for_homing: bool = False

    def targets(self, t_s: float, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        phase = 2.0 * math.pi * t_s / self.period_s + self.phase_step * np.arange(len(lo))
        return (lo + hi) / 2.0 + (hi - lo) / 2.0 * np.sin(phase)


class SimMotors:
    """All motors of one simulated bus, addressed by ID."""

    def __init__(self, spec: BusSpec, *, hand: SweepHand | None = None, clock=time.monotonic, faults=None):
        self.family = spec.family
        self.clock = clock
        self.hand = hand
        self.ids = [m.id for m in spec.motors]
        self.names = {m.id: m.name for m in spec.motors}
        self.index = {m.id: i for i, m in enumerate(spec.motors)}
        self.models: dict[int, MotorModel] = {m.id: motor_model(m.model) for m in spec.motors}
        lo = [m.sim_calibration.range_min if m.sim_calibration else 1025 for m in spec.motors]
        hi = [m.sim_calibration.range_max if m.sim_calibration else 3071 for m in spec.motors]
        self.sim_lo, self.sim_hi = np.array(lo, float), np.array(hi, float)
        self.servos = ServoArray((self.sim_lo + self.sim_hi) / 2.0)
        self.hardware_error = {i: 0 for i in self.ids}  # the bits in every status reply
        self._injected = {i: 0 for i in self.ids}  # set_hardware_error's (fault injection, REBOOT clears)
        self._condition = {i: 0 for i in self.ids}  # bits of measured conditions (Dynamixel: kept until a REBOOT)
        self.faults = faults
        self.start_s = self.last_s = clock()
        self.hand_start_s = None if hand is not None and hand.wait_for_homing else self.start_s
        self.memory: dict[int, bytearray] = {}
        self._touched_cache: dict[tuple, list[Reg]] = {}
        for m in spec.motors:
            model = self.models[m.id]
            mem = bytearray(model.memory_size)
            self.memory[m.id] = mem
            for reg, value in model.defaults.items():
                self._store(m.id, reg, value)
            self._store(m.id, Reg.Model_Number, model.model_number)
            self._store(m.id, Reg.ID, m.id)
            self._store(m.id, Reg.Baud_Rate, model.baud_value(spec.baudrate))
            self._store(m.id, Reg.Return_Delay_Time, 0)
            self._store(m.id, Reg.Min_Position_Limit, int(self.sim_lo[self.index[m.id]]))
            self._store(m.id, Reg.Max_Position_Limit, int(self.sim_hi[self.index[m.id]]))
            version = Reg.Firmware_Version if model.family == "dynamixel" else Reg.Firmware_Major_Version
            self._store(m.id, version, model.firmware_version)
        self.health = start_health(spec, self.models, faults, self.servos.position, self.start_s)
        self.update()
        for motor_id in self.ids:
            self._store(motor_id, Reg.Goal_Position, self.get(motor_id, Reg.Present_Position))

    # ------------------------------------------------------------------ register helpers
    def get(self, motor_id: int, reg: Reg) -> int:
        model = self.models[motor_id]
        entry = model.register(reg)
        raw = int.from_bytes(self.memory[motor_id][entry.address:entry.address + entry.size], "little")
        return model.decode(reg, raw)

    def _store(self, motor_id: int, reg: Reg, value: int) -> None:
        model = self.models[motor_id]
        if reg not in model.registers:
            return
        entry = model.registers[reg]
        raw = model.encode(reg, value)
        self.memory[motor_id][entry.address:entry.address + entry.size] = raw.to_bytes(entry.size, "little")

    def _present_from_actual(self, motor_id: int, actual: float) -> int:
        """Present = actual + homing_sign * Homing_Offset (the control tables' convention); Feetech's 2-byte
        position wraps within one turn, Dynamixel's 4-byte one counts on."""
        model = self.models[motor_id]
        present = int(round(actual + model.homing_sign * self.get(motor_id, Reg.Homing_Offset)))
        return present % model.resolution if self.family == "feetech" else present

    def _actual_from_present(self, motor_id: int, present: int) -> float:
        return float(present - self.models[motor_id].homing_sign * self.get(motor_id, Reg.Homing_Offset))

    def torque_on(self, motor_id: int) -> bool:
        return bool(self.memory[motor_id][self.models[motor_id].register(Reg.Torque_Enable).address])

    # ------------------------------------------------------------------ physics
    def update(self) -> None:
        """Integrate motion up to now and refresh the Present_* registers (once per read request)."""
        self.advance()
        for i, motor_id in enumerate(self.ids):
            model = self.models[motor_id]
            self._store(motor_id, Reg.Present_Position, self._present_from_actual(motor_id, self.servos.position[i]))
            self._store(motor_id, Reg.Present_Velocity, int(round(self.servos.velocity[i] / model.velocity_unit)))
            self._store(motor_id, Reg.Moving, int(abs(self.servos.velocity[i]) > 1.0))
            self._store_health(motor_id, i, model)

    def _store_health(self, motor_id: int, i: int, model: MotorModel) -> None:
        """The health registers, and the error bits their values call for (the limits compared with the values
        the registers show, as the servo's firmware does)."""
        h = self.health
        temperature_c = int(round(h.temperature_c[i]))
        self._store(motor_id, Reg.Present_Temperature, temperature_c)
        bits = 0
        if temperature_c >= self.get(motor_id, Reg.Max_Temperature_Limit) > 0:
            bits |= OVERHEAT
        if model.ratings is not None:
            volts_01 = int(round(h.voltage_v[i] * 10))  # 0.1 V, the register's unit
            self._store(motor_id, model.ratings.effort, int(round(h.effort[i] * model.ratings.effort_full_scale)))
            self._store(motor_id, model.ratings.voltage, volts_01)
            low, high = self.get(motor_id, Reg.Min_Voltage_Limit), self.get(motor_id, Reg.Max_Voltage_Limit)
            if high > 0 and not low <= volts_01 <= high:
                bits |= INPUT_VOLTAGE
        if self.family == "dynamixel":
            bits |= self._condition[motor_id]  # latched until a REBOOT
        newly = bits & ~self._condition[motor_id]
        self._condition[motor_id] = bits
        if newly & self._torque_cut_mask(motor_id):
            self._torque_off(motor_id)
        total = self._injected[motor_id] | bits
        if total != self.hardware_error[motor_id]:
            self.hardware_error[motor_id] = total
            self._store(motor_id, Reg.Status if self.family == "feetech" else Reg.Hardware_Error_Status, total)

    def _torque_cut_mask(self, motor_id: int) -> int:
        """The error bits that turn this motor's torque off: a Dynamixel's Shutdown register, an STS3215's
        Unloading_Condition (factory 44: overheat, over-current, overload; the simulator raises only overheat)."""
        return self.get(motor_id, Reg.Shutdown if self.family == "dynamixel" else Reg.Unloading_Condition)

    def _holds_torque_off(self, motor_id: int) -> bool:
        """Torque cannot come back on: a Dynamixel after a shutdown (or any injected error) until a REBOOT, an
        STS3215 while its unloading condition lasts (an overheated one until it has cooled below its limit)."""
        if self.family == "dynamixel" and self._injected[motor_id]:
            return True
        condition = self._condition[motor_id]
        return bool(condition) and bool(condition & self._torque_cut_mask(motor_id))

    def _torque_off(self, motor_id: int) -> None:
        self._store(motor_id, Reg.Torque_Enable, 0)
        self.servos.torque[self.index[motor_id]] = False

    def advance(self) -> None:
        """Integrate motion from the last call to now."""
        now = self.clock()
        if now - self.last_s < MIN_STEP_S:
            return
        elapsed = now - self.last_s
        dt = min(elapsed, MAX_CATCH_UP_S)
        self.last_s = now
        velocity_before = self.servos.velocity.copy()
        self.health.apply_faults(now, self.servos.position)
        if dt > 0 and (self.servos.torque.any() or self.servos.velocity.any()):
            self.servos.step(dt)
        if self.hand is not None:  # a hand back-drives torque-off joints, faster than the motor could
            driven = ~self.servos.torque
            t0 = self.hand_start_s
            t = 0.0 if t0 is None else max(0.0, now - t0)
            t_next = 0.0 if t0 is None else max(0.0, now + 1e-3 - t0)
            target = self.hand.targets(t, self.sim_lo, self.sim_hi)
            speed = (self.hand.targets(t_next, self.sim_lo, self.sim_hi) - target) / 1e-3
            self.servos.position = np.where(driven, target, self.servos.position)
            self.servos.velocity = np.where(driven, speed, self.servos.velocity)
        self._step_health(dt, velocity_before, elapsed)

    def _step_health(self, dt: float, velocity_before: np.ndarray, elapsed: float) -> None:
        """Motion settles within ``dt``; heat builds up over the whole ``elapsed`` time since the last request."""
        s = self.servos
        s.position, s.velocity, pinned = self.health.constrain(s.position, s.velocity, s.goal)
        accel = (s.velocity - velocity_before) / dt if dt > 0 else np.zeros_like(s.velocity)
        caps = np.array([self._effort_cap(m) for m in self.ids])
        self.health.step(dt, goal=s.goal, position=s.position, velocity=s.velocity, accel=accel,
                         max_speed=s.max_speed, max_accel=s.max_accel, torque=s.torque, pinned=pinned,
                         effort_cap=caps, heat_s=elapsed)

    def _effort_cap(self, motor_id: int) -> float:
        """The most effort the motor's limits allow, as a fraction of stall: Feetech min(Max_Torque_Limit,
        Torque_Limit) in 0.1 %; a current-controlled Dynamixel its Current_Limit over its stall current."""
        model = self.models[motor_id]
        if self.family == "feetech":
            return min(self.get(motor_id, Reg.Max_Torque_Limit), self.get(motor_id, Reg.Torque_Limit)) / 1000.0
        if Reg.Current_Limit in model.registers and model.ratings is not None:
            limit = self.get(motor_id, Reg.Current_Limit)
            return min(1.0, limit / model.ratings.effort_full_scale) if limit else 1.0
        return 1.0

    # ------------------------------------------------------------------ writes
    def write(self, motor_id: int, address: int, data: bytes) -> str | None:
        """Apply a write of ``data`` at ``address``; returns None or the reason it was refused
        ("access": read-only or, on Dynamixel, EEPROM while torque is on; "range": outside the table)."""
        model = self.models[motor_id]
        end = address + len(data)
        if end > model.memory_size:
            return "range"
        touched = self._touched(model, address, end)
        if model.family == "dynamixel":
            if any(not model.registers[r].writable for r in touched):
                return "access"
            if address < model.eeprom_end and self.torque_on(motor_id):
                return "access"
        self.advance()
        was_on = self.torque_on(motor_id)
        before = bytes(self.memory[motor_id])
        self.memory[motor_id][address:end] = data
        for reg in touched:  # Feetech ignores writes to read-only fields
            if not model.registers[reg].writable:
                e = model.registers[reg]
                self.memory[motor_id][e.address:e.address + e.size] = before[e.address:e.address + e.size]
        self._apply(motor_id, set(touched), was_on)
        return None

    def _touched(self, model: MotorModel, address: int, end: int) -> list[Reg]:
        key = (model.name, address, end)
        if key not in self._touched_cache:
            self._touched_cache[key] = [reg for reg, e in model.registers.items()
                                        if e.address < end and address < e.address + e.size]
        return self._touched_cache[key]

    def _apply(self, motor_id: int, touched: set, was_on: bool) -> None:
        i = self.index[motor_id]
        if self._holds_torque_off(motor_id):
            self._store(motor_id, Reg.Torque_Enable, 0)
        on = self.torque_on(motor_id)
        if on and not was_on and Reg.Goal_Position not in touched:  # torque on holds the present pose instead of jumping to a stale goal
            present = self._present_from_actual(motor_id, self.servos.position[i])
            self._store(motor_id, Reg.Goal_Position, present)
            self.servos.goal[i] = self.servos.position[i]
            self.servos.velocity[i] = 0.0  # the servo clamps a joint a hand was moving
        self.servos.torque[i] = on
        if self.hand_start_s is None and Reg.Homing_Offset in touched:
            self.hand_start_s = self.clock() + HOMING_HOLD_S
        if Reg.Goal_Position in touched or Reg.Homing_Offset in touched or touched & {
                Reg.Min_Position_Limit, Reg.Max_Position_Limit}:
            goal = self.get(motor_id, Reg.Goal_Position)
            lo, hi = self.get(motor_id, Reg.Min_Position_Limit), self.get(motor_id, Reg.Max_Position_Limit)
            if lo < hi:
                goal = min(max(goal, lo), hi)
            resolution = self.models[motor_id].resolution
            self.servos.goal[i] = min(max(self._actual_from_present(motor_id, goal), 0.0), resolution - 1.0)

    def set_hardware_error(self, motor_id: int, bits: int) -> None:
        """Fault injection: raise hardware error bits (Dynamixel also shuts the torque off, as real ones do);
        0 is a REBOOT: injected and latched bits clear."""
        self.update()
        self._injected[motor_id] = bits
        if not bits:
            self._condition[motor_id] = 0
        total = bits | self._condition[motor_id]
        self.hardware_error[motor_id] = total
        if bits and self.family == "dynamixel":
            self._torque_off(motor_id)
        self._store(motor_id, Reg.Status if self.family == "feetech" else Reg.Hardware_Error_Status, total)

    def read(self, motor_id: int, address: int, size: int) -> bytes | None:
        if address + size > self.models[motor_id].memory_size:
            return None
        return bytes(self.memory[motor_id][address:address + size])

    def return_delay_s(self, motor_id: int) -> float:
        return self.get(motor_id, Reg.Return_Delay_Time) * 2e-6  # register unit: 2 us on both families

    def status_return_level(self, motor_id: int) -> int:
        return self.get(motor_id, Reg.Status_Return_Level)
