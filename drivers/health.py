"""Motor-health readings in physical units: which register each model reports them in, and its scale.

Three groups, each one register per motor read in one sync read per bus (``Robot.read_health``):

- ``temperature``: Present_Temperature, degC on both families;
- ``effort``: the model's ``Ratings.effort`` register as a signed percentage of its stall effort (Feetech and
  XL430 Present_Load in 0.1 % units, XL330 / XM430 Present_Current in mA-sized units over the stall current);
- ``voltage``: Present_Voltage / Present_Input_Voltage, volts (0.1 V units).

Error status needs no register read: every status reply carries the motor's error bits, so the position read
of every tick raises ``MotorStatusError`` as soon as a motor reports overheat, overload or voltage.
"""

from __future__ import annotations

from .tables import MotorModel, Reg

HEALTH_GROUPS = ("temperature", "effort", "voltage")
UNITS = {"temperature": "degC", "effort": "%", "voltage": "V"}
# The motor-health limits a robot file or the command line may set (runtime/health.py): (count, order) of a list
# of levels, or (None, None) for one number.
HEALTH_LEVELS = {"temperature_c": (3, "increasing"), "effort_pct": (2, "decreasing"),
                 "voltage_drop_pct": (2, "increasing"), "stall_s": (None, None)}


def levels_in_order(values, count: int, order: str) -> bool:
    """``values`` are ``count`` levels in ``order`` (ties allowed)."""
    return len(values) == count and list(values) == sorted(values, reverse=order == "decreasing")


def health_register(model: MotorModel, group: str) -> Reg:
    """The register ``model`` reports ``group`` in."""
    if group == "temperature":
        return Reg.Present_Temperature
    if model.ratings is None:
        raise KeyError(f"model {model.name} has no ratings: its {group} cannot be read")
    if group == "effort":
        return model.ratings.effort
    if group == "voltage":
        return model.ratings.voltage
    raise KeyError(f"unknown health group '{group}' (one of {', '.join(HEALTH_GROUPS)})")


def to_physical(model: MotorModel, group: str, raw: int) -> float:
    """A decoded register value -> degC, % of stall effort, or volts."""
    if group == "temperature":
        return float(raw)
    if group == "effort":
        return 100.0 * raw / model.ratings.effort_full_scale
    return raw / 10.0
