"""Robot definitions from TOML files, validated field by field so a mistake is one line naming file and field.

Format (see robots/upper_body.toml)::

    name = "my_robot"
    [[buses]]
    name = "arm"; family = "dynamixel"; baudrate = 1000000
    motors = [{name = "arm_0", id = 1, model = "xm430-w350", norm_mode = "degrees", sim_range = [1025, 3071]}]
    # a motor may add full_turn = true: a joint without end stops, which calibration gives the whole turn,
    # and gripper = true: its protection registers are checked before torque (drivers/protection.py)
    [[groups]]
    name = "arm"; joints = ["arm_0"]
    [max_step]          # optional: max command change per tick, user units
    arm_0 = 5.0
    [cameras.front]     # optional, one table per camera: source (device index or path, stream URL, video
    source = "/dev/video0"; width = 640; height = 480; fps = 30   # file; none: simulated), size and rate asked
    [health]            # optional: motor-health limits of every motor (runtime/health.py; defaults per model)
    temperature_c = [55, 60, 65]; effort_pct = [80, 50]; stall_s = 0.5; voltage_drop_pct = [10, 20]
    [health.arm_0]      # optional: one motor's own limits
    temperature_c = [50, 55, 60]
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from actsac.drivers.units import NORM_MODES, MotorCalibration

from . import dynamixel_protocol, feetech_protocol
from .errors import RobotSpecError
from .health import HEALTH_LEVELS, levels_in_order
from .robots import BusSpec, CameraSpec, MotorSpec, RobotSpec
from .tables import FAMILIES, MODELS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

MAX_ID = {"feetech": feetech_protocol.MAX_ID, "dynamixel": dynamixel_protocol.MAX_ID}


class _Fields:
    """Typed access to one TOML table, with errors that carry the file and the dotted field path."""

    def __init__(self, path: Path, table: dict, where: str):
        self.path, self.table, self.where = path, table, where

    def fail(self, field: str | None, message: str) -> "RobotSpecError":
        name = f"{self.where}.{field}" if self.where and field else (field or self.where)
        return RobotSpecError(f"{self.path}: {name}: {message}" if name else f"{self.path}: {message}")

    def get(self, field: str, kind, default=None, required: bool = True):
        if field not in self.table:
            if required and default is None:
                raise self.fail(field, "missing")
            return default
        value = self.table[field]
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if kind is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok:
            raise self.fail(field, f"expected {_kind_name(kind)}, got {value!r}")
        return value

    def sub(self, value, field: str) -> "_Fields":
        if not isinstance(value, dict):
            raise self.fail(field, f"expected a table, got {value!r}")
        return _Fields(self.path, value, f"{self.where}.{field}" if self.where else field)

    def unknown_keys(self, allowed: set[str]) -> None:
        extra = sorted(set(self.table) - allowed)
        if extra:
            raise self.fail(extra[0], f"unknown field (allowed: {', '.join(sorted(allowed))})")


def _kind_name(kind) -> str:
    names = {str: "a string", int: "an integer", float: "a number", list: "an array", dict: "a table",
             bool: "true or false"}
    return names.get(kind, kind.__name__)


def parse_robot_toml(path: Path) -> RobotSpec:
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise RobotSpecError(f"{path}: no such robot file") from None
    except tomllib.TOMLDecodeError as exc:
        raise RobotSpecError(f"{path}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise RobotSpecError(f"{path}: cannot read: {exc.strerror}") from None
    top = _Fields(path, data, "")
    top.unknown_keys({"name", "buses", "groups", "max_step", "cameras", "health"})
    name = top.get("name", str, default=path.stem, required=False)
    buses_raw = top.get("buses", list)
    if not buses_raw:
        raise top.fail("buses", "needs at least one bus")
    buses = tuple(_parse_bus(top.sub(b, f"buses[{i}]")) for i, b in enumerate(buses_raw))
    all_motors = [m for bus in buses for m in bus.motors]
    names = [m.name for m in all_motors]
    for i, n in enumerate(names):
        if n in names[:i]:
            raise top.fail("buses", f"motor name '{n}' is used twice")
    groups = []
    seen: set[str] = set()
    for i, g in enumerate(top.get("groups", list)):
        fields = top.sub(g, f"groups[{i}]")
        fields.unknown_keys({"name", "joints"})
        joints = fields.get("joints", list)
        for j in joints:
            if j not in names:
                raise fields.fail("joints", f"no motor named '{j}'")
            if j in seen:
                raise fields.fail("joints", f"joint '{j}' is already in a group")
            seen.add(j)
        if not joints:
            raise fields.fail("joints", "needs at least one joint")
        groups.append((fields.get("name", str), tuple(joints)))
    max_step_raw = top.get("max_step", dict, default={}, required=False)
    max_step = {}
    steps = top.sub(max_step_raw, "max_step")
    for joint in max_step_raw:
        if joint not in names:
            raise steps.fail(joint, "no motor of that name")
        max_step[joint] = float(steps.get(joint, float))
        if not 0 < max_step[joint] < math.inf:
            raise steps.fail(joint, "must be positive and finite")
    cameras_raw = top.get("cameras", dict, default={}, required=False)
    cameras_fields = top.sub(cameras_raw, "cameras")
    cameras = tuple(_parse_camera(cameras_fields.sub(table, c), c) for c, table in cameras_raw.items())
    health = _parse_health(top.sub(top.get("health", dict, default={}, required=False), "health"), names)
    return RobotSpec(name=name, buses=buses, groups=tuple(groups), max_step=max_step, cameras=cameras,
                     health=health)


def _parse_health(fields: _Fields, motors: list[str]) -> dict[str, dict]:
    """``[health]`` (every motor) and ``[health.<motor>]`` (one motor): the limits of ``runtime/health.py``,
    as {"" or motor: {field: value}}."""
    out = {"": _health_levels(fields, set(motors))}
    for motor in motors:
        if motor in fields.table:
            out[motor] = _health_levels(fields.sub(fields.table[motor], motor), set())
    return out


def _health_levels(fields: _Fields, motors: set[str]) -> dict:
    fields.unknown_keys(set(HEALTH_LEVELS) | motors)
    levels = {}
    for key, (count, order) in HEALTH_LEVELS.items():
        if key not in fields.table:
            continue
        if count is None:
            value = float(fields.get(key, float))
            if not 0 < value < math.inf:
                raise fields.fail(key, "must be positive and finite")
            levels[key] = value
            continue
        value = fields.get(key, list)
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        if not numbers or not levels_in_order(value, count, order):
            raise fields.fail(key, f"expected {count} {order} numbers, got {value!r}")
        levels[key] = [float(v) for v in value]
    return levels


def _parse_camera(fields: _Fields, name: str) -> CameraSpec:
    fields.unknown_keys({"source", "width", "height", "fps"})
    if not name.isidentifier():
        raise fields.fail(None, "a camera name must be an identifier (letters, digits, _)")
    source = fields.table.get("source")
    if source is not None and (isinstance(source, bool) or not isinstance(source, (str, int))):
        raise fields.fail("source", f"expected a string (a device, URL or file) or a device index, got {source!r}")
    sizes = {}
    for key, kind in (("width", int), ("height", int), ("fps", float)):
        value = fields.get(key, kind, required=False)
        if value is not None and not 0 < value < math.inf:
            raise fields.fail(key, "must be positive")
        sizes[key] = None if value is None else kind(value)
    return CameraSpec(name, None if source is None else str(source), **sizes)


def _parse_bus(fields: _Fields) -> BusSpec:
    fields.unknown_keys({"name", "family", "baudrate", "motors"})
    family = fields.get("family", str)
    if family not in FAMILIES:
        raise fields.fail("family", f"unknown family '{family}' (one of {', '.join(FAMILIES)})")
    baudrate = fields.get("baudrate", int, default=1_000_000, required=False)
    motors = []
    ids = set()
    for i, m in enumerate(fields.get("motors", list)):
        motor = _parse_motor(fields.sub(m, f"motors[{i}]"), family)
        if motor.id in ids:
            raise fields.fail(f"motors[{i}].id", f"ID {motor.id} is used twice on this bus")
        ids.add(motor.id)
        motors.append(motor)
    if not motors:
        raise fields.fail("motors", "needs at least one motor")
    for m in motors:
        rates = MODELS[m.model].baud_rates.values()
        if baudrate not in rates:
            raise fields.fail("baudrate", f"{baudrate} is not a baud rate of {m.model} "
                                          f"(one of {', '.join(str(r) for r in sorted(rates))})")
    return BusSpec(fields.get("name", str), family, tuple(motors), baudrate)


def _parse_motor(fields: _Fields, family: str) -> MotorSpec:
    fields.unknown_keys({"name", "id", "model", "norm_mode", "sim_range", "full_turn", "gripper"})
    name = fields.get("name", str)
    motor_id = fields.get("id", int)
    if not 0 <= motor_id <= MAX_ID[family]:
        raise fields.fail("id", f"{motor_id} is outside 0..{MAX_ID[family]}")
    model = fields.get("model", str)
    if model not in MODELS:
        raise fields.fail("model", f"unknown model '{model}' (one of {', '.join(MODELS)})")
    if MODELS[model].family != family:
        raise fields.fail("model", f"{model} is a {MODELS[model].family} motor on a {family} bus")
    norm_mode = fields.get("norm_mode", str, default="range_m100_100", required=False)
    if norm_mode not in NORM_MODES:
        raise fields.fail("norm_mode", f"unknown mode '{norm_mode}' (one of {', '.join(NORM_MODES)})")
    resolution = MODELS[model].resolution
    sim_range = fields.get("sim_range", list, default=[resolution // 4 + 1, 3 * resolution // 4 - 1], required=False)
    lo, hi = sim_range if len(sim_range) == 2 else (None, None)
    if not (isinstance(lo, int) and isinstance(hi, int) and 0 <= lo < hi < resolution):
        raise fields.fail("sim_range", f"expected [min, max] ticks with 0 <= min < max < {resolution}")
    full_turn = fields.get("full_turn", bool, default=False, required=False)
    gripper = fields.get("gripper", bool, default=False, required=False)
    return MotorSpec(name, motor_id, model, norm_mode,
                     MotorCalibration(id=motor_id, drive_mode=0, homing_offset=0, range_min=lo, range_max=hi),
                     full_turn, gripper)
