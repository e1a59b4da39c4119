"""Calibration on the motors: homing offsets and position limits, in each family's convention.

- Feetech:   Present = Actual - Homing_Offset (sign-magnitude, |offset| <= 2047 on the STS3215).
- Dynamixel: Present = Actual + Homing_Offset.

These are EEPROM registers: they are written only with torque off, and only when they differ from what the
motor holds (EEPROM wears out, and a Dynamixel refuses the write while torque is on). ``drive_mode`` is applied
in software by ``normalize`` / ``unnormalize`` (direction inverted in user units), as LeRobot does.
"""

from __future__ import annotations

from typing import Iterable, Mapping

from .files import CalibrationError, offset_limit
from .normalize import MotorCalibration

HOMING_REGISTERS = ("Homing_Offset", "Min_Position_Limit", "Max_Position_Limit")


def _field(cal: MotorCalibration, register: str) -> int:
    return {"Homing_Offset": cal.homing_offset, "Min_Position_Limit": cal.range_min,
            "Max_Position_Limit": cal.range_max}[register]


def _eeprom_writes(bus, changes: dict[str, dict[str, int]]) -> None:
    """Torque off on the motors concerned (unlocking Feetech EEPROM), write each value acknowledged, relock."""
    motors = sorted({m for values in changes.values() for m in values})
    if not motors:
        return
    bus.disable_torque(motors)
    feetech = bus.family == "feetech"
    if feetech:
        for m in motors:
            bus.write("Lock", m, 0)
    try:
        for register in HOMING_REGISTERS:  # the offset first: the limits are in the homed frame
            for motor, value in changes.get(register, {}).items():
                bus.write(register, motor, value)
    finally:
        if feetech:
            for m in motors:
                bus.write("Lock", m, 1)


def apply_calibration(bus, calibration: Mapping[str, MotorCalibration]) -> dict[str, dict[str, int]]:
    """Make the motors of a connected bus (or of every bus of a connected ``Robot``) hold ``calibration``'s
    offsets and limits; read first, write only what differs.

    Returns ``{register: {motor: new_value}}`` of what was written (empty when the motors already agreed).
    Motors whose values change end with torque off (call this before enabling torque).
    """
    if hasattr(bus, "buses"):  # a Robot: all of its buses
        return apply_to_robot(bus, calibration)
    names = [m for m in bus.motors if m in calibration]
    for name in names:
        limit = offset_limit(bus.motors[name].model)
        if abs(calibration[name].homing_offset) > limit:
            raise CalibrationError(f"motor '{name}': homing_offset {calibration[name].homing_offset} is outside "
                                   f"-{limit}..{limit}")
    changes: dict[str, dict[str, int]] = {}
    for register in HOMING_REGISTERS:
        present = bus.sync_read(register, names)
        diff = {m: _field(calibration[m], register) for m in names if present[m] != _field(calibration[m], register)}
        if diff:
            changes[register] = diff
    _eeprom_writes(bus, changes)
    return changes


def apply_to_robot(robot, calibration: Mapping[str, MotorCalibration]) -> dict[str, dict[str, int]]:
    """``apply_calibration`` on every bus of a connected ``Robot``; the merged changes."""
    merged: dict[str, dict[str, int]] = {}
    for bus in robot.buses.values():
        for register, values in apply_calibration(bus, calibration).items():
            merged.setdefault(register, {}).update(values)
    return merged


def half_turn_offsets(bus, motors: Iterable[str] | None = None) -> dict[str, int]:
    """Set each motor's homing offset so its present position reads mid-scale (2047 of 4096 ticks) now.

    Resets the offsets to 0 first, reads the actual positions, then writes the family's offset. Raises
    CalibrationError naming the motor when the offset cannot be stored (a joint at the very end of a turn).
    """
    names = list(motors) if motors is not None else list(bus.motors)
    _eeprom_writes(bus, {"Homing_Offset": {m: 0 for m in names}})
    actual = bus.sync_read("Present_Position", names)
    offsets = {}
    for name in names:
        half_turn = (bus.models[name].resolution - 1) // 2
        offset = actual[name] - half_turn if bus.family == "feetech" else half_turn - actual[name]
        limit = offset_limit(bus.motors[name].model)
        if abs(offset) > limit:
            raise CalibrationError(f"motor '{name}': at {actual[name]} ticks it is too close to the end of its turn "
                                   f"to home (offset {offset} outside -{limit}..{limit}); move it nearer the middle")
        offsets[name] = offset
    _eeprom_writes(bus, {"Homing_Offset": offsets})
    return offsets


def write_limits(bus, ranges: Mapping[str, tuple[int, int]]) -> None:
    """Write (min, max) position limits, torque off, each write acknowledged."""
    _eeprom_writes(bus, {"Min_Position_Limit": {m: lo for m, (lo, hi) in ranges.items()},
                         "Max_Position_Limit": {m: hi for m, (lo, hi) in ranges.items()}})
