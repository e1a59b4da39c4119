"""Calibration on the motors: homing offsets and position limits, in each model's convention (control tables).

The sign of the homing offset (``MotorModel.homing_sign``: Feetech Present = Actual - Homing_Offset, Dynamixel
Present = Actual + Homing_Offset) and the EEPROM lock (``MotorModel.eeprom_lock``: Feetech's Lock register) are
data in the control tables. These are EEPROM registers: they are written only with torque off, and only when
they differ from what the motor holds (EEPROM wears out, and a Dynamixel refuses the write while torque is
on). ``drive_mode`` is applied in software by ``normalize`` / ``unnormalize`` (direction inverted in user
units), as LeRobot does.
"""

from __future__ import annotations

from typing import Iterable, Mapping

from .errors import CalibrationError
from .tables import Reg
from .units import MotorCalibration

HOMING_REGISTERS = (Reg.Homing_Offset, Reg.Min_Position_Limit, Reg.Max_Position_Limit)


def _field(cal: MotorCalibration, register: str) -> int:
    return {Reg.Homing_Offset: cal.homing_offset, Reg.Min_Position_Limit: cal.range_min,
            Reg.Max_Position_Limit: cal.range_max}[register]


def eeprom_writes(bus, changes: dict[str, dict[str, int]]) -> None:
    """Torque off on the motors concerned (unlocking EEPROM where the model has a lock), write each value
    acknowledged, register by register in ``changes``' order, lock again."""
    motors = sorted({m for values in changes.values() for m in values})
    if not motors:
        return
    bus.disable_torque(motors)
    locked = [m for m in motors if bus.models[m].eeprom_lock is not None]
    for m in locked:
        bus.write(bus.models[m].eeprom_lock, m, 0)
    try:
        for register, values in changes.items():  # in the caller's order: an offset before the limits it frames
            for motor, value in values.items():
                bus.write(register, motor, value)
    finally:
        for m in locked:
            bus.write(bus.models[m].eeprom_lock, m, 1)


def apply_calibration(bus, calibration: Mapping[str, MotorCalibration]) -> dict[str, dict[str, int]]:
    """Make the motors of a connected bus hold ``calibration``'s offsets and limits; read first, write only
    what differs.

    Returns ``{register: {motor: new_value}}`` of what was written (empty when the motors already agreed).
    Motors whose values change end with torque off (call this before enabling torque).
    """
    names = [m for m in bus.motors if m in calibration]
    for name in names:
        limit = bus.models[name].homing_offset_limit
        if abs(calibration[name].homing_offset) > limit:
            raise CalibrationError(f"motor '{name}': homing_offset {calibration[name].homing_offset} is outside "
                                   f"-{limit}..{limit}")
    changes: dict[str, dict[str, int]] = {}
    for register in HOMING_REGISTERS:
        present = bus.sync_read(register, names)
        diff = {m: _field(calibration[m], register) for m in names if present[m] != _field(calibration[m], register)}
        if diff:
            changes[register.value] = diff
    eeprom_writes(bus, changes)
    return changes


def half_turn_offsets(bus, motors: Iterable[str] | None = None) -> dict[str, int]:
    """Set each motor's homing offset so its present position reads mid-scale (2047 of 4096 ticks) now.

    Resets the offsets to 0 first, reads the actual positions, then writes the model's offset. Raises
    CalibrationError naming the motor when the offset cannot be stored (a joint at the very end of a turn).
    """
    names = list(motors) if motors is not None else list(bus.motors)
    eeprom_writes(bus, {Reg.Homing_Offset: {m: 0 for m in names}})
    actual = bus.sync_read(Reg.Present_Position, names)
    offsets = {}
    for name in names:
        model = bus.models[name]
        offset = model.homing_sign * ((model.resolution - 1) // 2 - actual[name])
        limit = model.homing_offset_limit
        if abs(offset) > limit:
            raise CalibrationError(f"motor '{name}': at {actual[name]} ticks it is too close to the end of its turn "
                                   f"to home (offset {offset} outside -{limit}..{limit}); move it nearer the middle")
        offsets[name] = offset
    eeprom_writes(bus, {Reg.Homing_Offset: offsets})
    return offsets


def write_limits(bus, ranges: Mapping[str, tuple[int, int]]) -> None:
    """Write (min, max) position limits, torque off, each write acknowledged."""
    eeprom_writes(bus, {Reg.Min_Position_Limit: {m: lo for m, (lo, hi) in ranges.items()},
                         Reg.Max_Position_Limit: {m: hi for m, (lo, hi) in ranges.items()}})
