"""Gripper protection registers: what a gripper's torque / current / overload limits are, and safe values.

A gripper closing on an object stalls at full effort until it burns (REFERENCE.md section 11). The servo can
protect itself if its limits say so; these are the values known to work, per motor model, with their source:

- STS3215 (SO-100 / SO-101): Max_Torque_Limit 500 (50 %), Protection_Current 250, Overload_Torque 25 (%),
  written by LeRobot's SO follower on its gripper since its pull request #1809, after gripper burnouts.
- XL330-M288 (Koch): Operating_Mode 5, current-based position control, which LeRobot's Koch follower sets on
  its gripper so "it can grasp an object without forcing too much" (koch_follower.py, configure()). The current
  it is limited to is then Goal_Current (by default the Current_Limit), which LeRobot leaves as it is.

A gripper "left at factory limits" is one with a limit above its safe value (or, for a mode, another mode).
These are EEPROM registers: they are written with torque off (``homing.eeprom_writes``).
"""

from __future__ import annotations

from dataclasses import dataclass

from .homing import eeprom_writes
from .tables import Reg


@dataclass(frozen=True)
class Protected:
    """One register of a gripper's protection: ``safe`` is its value; ``at_most``: a lower value is safer too."""

    register: Reg
    safe: int
    at_most: bool = True

    def is_safe(self, value: int) -> bool:
        return value <= self.safe if self.at_most else value == self.safe


PROTECTION: dict[str, tuple[Protected, ...]] = {
    "sts3215": (Protected(Reg.Max_Torque_Limit, 500), Protected(Reg.Protection_Current, 250),
                Protected(Reg.Overload_Torque, 25)),
    "xl330-m288": (Protected(Reg.Operating_Mode, 5, at_most=False),),
}


def grippers(robot) -> list[str]:
    """The robot's gripper motors (``MotorSpec.gripper``)."""
    return [m.name for m in robot.spec.motors if m.gripper]


def read_protection(robot) -> dict[str, dict[str, int]]:
    """{gripper: {register: value}} read from the motors (acknowledged reads); a gripper whose model has no
    known safe values reads as {}."""
    out = {}
    for motor in grippers(robot):
        bus = robot.buses[robot.bus_of(motor)]
        out[motor] = {p.register.value: bus.read(p.register, motor)
                      for p in PROTECTION.get(bus.models[motor].name, ())}
    return out


def unsafe(robot, readings: dict[str, dict[str, int]]) -> list[tuple[str, str, int, int]]:
    """(gripper, register, value, safe value) of every register looser than its safe value."""
    out = []
    for motor, values in readings.items():
        model = robot.buses[robot.bus_of(motor)].models[motor].name
        for p in PROTECTION.get(model, ()):
            if not p.is_safe(values[p.register.value]):
                out.append((motor, p.register.value, values[p.register.value], p.safe))
    return out


def write_protection(robot, readings: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """Write the safe value of every register that is not safe (torque off, EEPROM unlocked and locked again);
    returns {gripper: {register: value written}}."""
    written: dict[str, dict[str, int]] = {}
    per_bus: dict[str, dict[str, dict[str, int]]] = {}
    for motor, register, _, safe in unsafe(robot, readings):
        per_bus.setdefault(robot.bus_of(motor), {}).setdefault(register, {})[motor] = safe
        written.setdefault(motor, {})[register] = safe
    for bus_name, changes in per_bus.items():
        eeprom_writes(robot.buses[bus_name], changes)
    return written
