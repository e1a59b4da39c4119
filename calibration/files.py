"""Calibration files: LeRobot's format, validated on load, saved atomically.

One JSON object per robot, keyed by motor name, each entry the ``MotorCalibration`` fields in ticks::

    {"shoulder_pan": {"id": 1, "drive_mode": 0, "homing_offset": -1021, "range_min": 780, "range_max": 3320}, ...}

A file LeRobot wrote loads unchanged. Every problem is reported as one ``CalibrationError`` line naming the
file, the motor and the field, so the CLIs can print it without a traceback.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, fields
from pathlib import Path
from typing import Mapping

from actsac.drivers.errors import CalibrationError
from actsac.drivers.tables import motor_model
from actsac.drivers.units import MotorCalibration
from actsac.files import atomic_write

FIELDS = tuple(f.name for f in fields(MotorCalibration))  # id, drive_mode, homing_offset, range_min, range_max
CALIBRATION_DIR_ENV = "ACTSAC_CALIBRATION_DIR"
# A joint with end stops that spans less than this share of a turn (36 degrees) was not swept through its range:
# the narrowest real joints (grippers) span about a third of a turn.
MIN_RANGE_FRACTION = 0.10


class CalibrationMissingError(CalibrationError):
    """No calibration file where one is required (real hardware): the user must run actsac-calibrate."""


def missing_calibration_message(robot: str, path: str | os.PathLike | None, robot_id: str | None = None) -> str:
    """What the runtime says when it refuses to enable torque on a real robot without a calibration."""
    where = f" (looked for {path})" if path else ""
    id_flag = f" --id {robot_id}" if robot_id else ""
    return (f"robot '{robot}' has no calibration{where}: run `actsac-calibrate --robot {robot} --port PORT{id_flag}` "
            "first (or `actsac-calibrate --robot ... --import FILE` for an existing LeRobot file)")


def default_calibration_dir() -> Path:
    """``$ACTSAC_CALIBRATION_DIR`` when set, else ``~/.cache/actsac/calibration``."""
    override = os.environ.get(CALIBRATION_DIR_ENV)
    return Path(override).expanduser() if override else Path.home() / ".cache" / "actsac" / "calibration"


def default_calibration_path(robot: str, robot_id: str = "default", root: str | os.PathLike | None = None) -> Path:
    """``<root>/<robot>/<id>.json``, root defaulting to ``default_calibration_dir()``."""
    for label, value in (("robot", robot), ("id", robot_id)):
        if not value or "/" in value or value in (".", ".."):
            raise CalibrationError(f"{label} '{value}' cannot name a calibration file")
    return Path(root if root is not None else default_calibration_dir()) / robot / f"{robot_id}.json"


# ---------------------------------------------------------------------- sanity of the ranges
def range_problem(name: str, lo: int, hi: int, resolution: int) -> str | None:
    """Why a range with end stops cannot be a joint's real range, or None.

    It must span MIN_RANGE_FRACTION of the turn and contain the homed centre (mid-scale: where the joint was
    when it was homed, so a sweep of the whole range passes through it).
    """
    minimum = math.ceil(MIN_RANGE_FRACTION * resolution)
    centre = (resolution - 1) // 2
    if hi - lo < minimum:
        return (f"joint '{name}' spans only {hi - lo} ticks ({lo}..{hi}), under the minimum {minimum} "
                f"({MIN_RANGE_FRACTION:.0%} of its {resolution}-tick turn)")
    if not lo <= centre <= hi:
        return f"joint '{name}' range {lo}..{hi} does not contain the homed centre {centre}"
    return None


def _known_robots() -> set[str]:
    """The built-in robots and the packaged TOML ones (upper_body)."""
    from actsac.drivers import robots

    return set(robots.BUILT_IN) | {p.stem for p in (Path(robots.__file__).parent / "robots").glob("*.toml")}


def fit_warnings(calibration: Mapping[str, MotorCalibration], robot_spec, path=None) -> list[str]:
    """Signs that a valid file was saved on another robot or not by sweeping the joints, one line each.

    The format records no robot, but its folder usually does (``<robot>/<id>.json`` here,
    ``<robot>_follower/<id>.json`` in LeRobot); the ranges get the checks ``actsac-calibrate`` applies (a range
    beyond the motor's resolution is refused by ``parse_calibration`` already).
    """
    warnings = []
    if path is not None:
        saved_for = Path(path).parent.name.removesuffix("_follower").removesuffix("_leader")
        if saved_for != robot_spec.name and saved_for in _known_robots():
            warnings.append(f"its folder says it was saved for robot '{saved_for}', this is '{robot_spec.name}'")
    for m in robot_spec.motors:
        cal = calibration[m.name]
        problem = range_problem(m.name, cal.range_min, cal.range_max, motor_model(m.model).resolution)
        if problem:
            warnings.append(problem)
    return warnings


# ---------------------------------------------------------------------- parse / validate
def parse_calibration(data, source: str, robot_spec=None) -> dict[str, MotorCalibration]:
    """Validate a decoded JSON object; with ``robot_spec`` also the motor set, IDs and per-model limits."""
    if not isinstance(data, dict):
        raise CalibrationError(f"{source}: expected a JSON object keyed by motor name, got {type(data).__name__}")
    if not data:
        raise CalibrationError(f"{source}: no motors in the file")
    if robot_spec is not None:
        expected = [m.name for m in robot_spec.motors]
        missing = [m for m in expected if m not in data]
        if missing:
            raise CalibrationError(f"{source}: motor '{missing[0]}' of robot '{robot_spec.name}' is missing")
        extra = [m for m in data if m not in expected]
        if extra:
            raise CalibrationError(f"{source}: motor '{extra[0]}' is not a motor of robot '{robot_spec.name}' "
                                   f"(its motors: {', '.join(expected)})")
    calibration = {}
    for name, entry in data.items():
        spec = robot_spec.motor(name) if robot_spec is not None else None
        calibration[name] = _parse_motor(entry, f"{source}: motor '{name}'", spec)
    return calibration


def _parse_motor(entry, where: str, spec) -> MotorCalibration:
    if not isinstance(entry, dict):
        raise CalibrationError(f"{where}: expected an object with {', '.join(FIELDS)}, got {type(entry).__name__}")
    for key in FIELDS:
        if key not in entry:
            raise CalibrationError(f"{where}: field '{key}' is missing")
        value = entry[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise CalibrationError(f"{where}: field '{key}' must be an integer, got {json.dumps(value)}")
    extra = [k for k in entry if k not in FIELDS]
    if extra:
        raise CalibrationError(f"{where}: unknown field '{extra[0]}' (fields: {', '.join(FIELDS)})")
    cal = MotorCalibration(**{k: entry[k] for k in FIELDS})
    if cal.drive_mode not in (0, 1):
        raise CalibrationError(f"{where}: field 'drive_mode' must be 0 or 1, got {cal.drive_mode}")
    if cal.range_min >= cal.range_max:
        raise CalibrationError(f"{where}: field 'range_min' ({cal.range_min}) must be below 'range_max' "
                               f"({cal.range_max})")
    if spec is not None:
        if cal.id != spec.id:
            raise CalibrationError(f"{where}: field 'id' is {cal.id} but the robot has this motor at ID {spec.id}")
        limit = motor_model(spec.model).homing_offset_limit
        if abs(cal.homing_offset) > limit:
            raise CalibrationError(f"{where}: field 'homing_offset' {cal.homing_offset} is outside what a "
                                   f"{spec.model} can store (-{limit}..{limit})")
        top = motor_model(spec.model).resolution - 1
        for key in ("range_min", "range_max"):
            if not 0 <= getattr(cal, key) <= top:
                raise CalibrationError(f"{where}: field '{key}' {getattr(cal, key)} is outside 0..{top} ticks")
    return cal


def load_calibration(path: str | os.PathLike, robot_spec=None) -> dict[str, MotorCalibration]:
    """Read and validate a calibration file (LeRobot format). Raises CalibrationMissingError when it does not
    exist and CalibrationError for anything wrong inside it (both ValueErrors with one-line messages)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        robot = robot_spec.name if robot_spec is not None else "ROBOT"
        raise CalibrationMissingError(f"{path}: no such calibration file; "
                                      + missing_calibration_message(robot, None)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CalibrationError(f"{path}: cannot read it ({exc.__class__.__name__}: {exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CalibrationError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    return parse_calibration(data, str(path), robot_spec)


def to_json(calibration: Mapping[str, MotorCalibration]) -> str:
    return json.dumps({name: asdict(cal) for name, cal in calibration.items()}, indent=4) + "\n"


def save_calibration(path: str | os.PathLike, calibration: Mapping[str, MotorCalibration]) -> Path:
    """Write atomically (a reader never sees half a file; a failure keeps the old one), creating directories."""
    path = Path(path)
    text = to_json(calibration)
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())

    return atomic_write(path, write)


def import_calibration(source: str | os.PathLike, dest: str | os.PathLike, robot_spec) -> dict[str, MotorCalibration]:
    """Validate an existing (e.g. LeRobot) file against the robot, then save a copy at ``dest``."""
    calibration = load_calibration(source, robot_spec)
    ordered = {m.name: calibration[m.name] for m in robot_spec.motors}
    save_calibration(dest, ordered)
    return ordered
