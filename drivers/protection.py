"""Gripper protection registers: what a gripper's torque / current / overload limits are, and safe values.

A gripper closing on an object stalls at full effort until it burns (REFERENCE.md section 11). The servo can
protect itself if its limits say so; these are the values known to work, per motor model, with their source:

- STS3215 (SO-100 / SO-101): Max_Torque_Limit 500 (50 %), Protection_Current 250, Overload_Torque 25 (%),
  written by LeRobot's SO follower on its gripper since its pull request #1809, after gripper burnouts.
- XL330-M288 (Koch): Operating_Mode 5, current-based position control, which LeRobot's Koch follower sets on
  its gripper so "it can grasp an object without forcing too much" (koch_follower.py, configure()). The current
  it is limited to is then Goal_Current (by default the Current_Limit), which LeRobot leaves as it is.

A gripper "left at factory limits" is one with a limit above its safe value (or, for a mode, another mode);
a register that reads 0 is never looser than its safe value. A gripper of a model without sourced values has
its limits read and reported (``REPORTED``), never judged. These are EEPROM registers: they are written with
torque off (``homing.eeprom_writes``).
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


# A gripper of a model not in PROTECTION: those of these registers its table has are read and reported.
REPORTED = (Reg.Max_Torque_Limit, Reg.Protection_Current, Reg.Overload_Torque, Reg.Operating_Mode,
            Reg.Current_Limit, Reg.PWM_Limit)


def _read_registers(model) -> tuple[Reg, ...]:
    if model.name in PROTECTION:
        return tuple(p.register for p in PROTECTION[model.name])
    return tuple(r for r in REPORTED if r in model.registers)


def grippers(robot) -> list[str]:
    """The robot's gripper motors (``MotorSpec.gripper``)."""
    return [m.name for m in robot.spec.motors if m.gripper]


def read_protection(robot) -> dict[str, dict[str, int]]:
    """{gripper: {register: value}} read from the motors (acknowledged reads): the registers of its model's
    safe values, or for a model without any, its ``REPORTED`` limits."""
    out = {}
    for motor in grippers(robot):
        bus = robot.buses[robot.bus_of(motor)]
        out[motor] = {r.value: bus.read(r, motor) for r in _read_registers(bus.models[motor])}
    return out


def unchecked(robot) -> dict[str, str]:
    """{gripper: model} of the grippers whose model has no known safe values (reported, not judged)."""
    models = {m: robot.buses[robot.bus_of(m)].models[m].name for m in grippers(robot)}
    return {m: model for m, model in models.items() if model not in PROTECTION}


def unsafe(robot, readings: dict[str, dict[str, int]]) -> list[tuple[str, str, int, int]]:
    """(gripper, register, value, safe value) of every register looser than its safe value."""
    out = []
    for motor, values in readings.items():
        model = robot.buses[robot.bus_of(motor)].models[motor].name
        for p in PROTECTION.get(model, ()):
            if not p.is_safe(values[p.register.value]):
                out.append((motor, p.register.value, values[p.register.value], p.safe))
    return out


def changes_text(loose: list[tuple[str, str, int, int]]) -> str:
    """``unsafe``'s findings as the values a write changes: "gripper Max_Torque_Limit 1000 -> 500, ..."."""
    return ", ".join(f"{motor} {register} {value} -> {safe}" for motor, register, value, safe in loose)


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
