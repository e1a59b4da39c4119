"""Calibration files: LeRobot format in and out, one-line errors naming file / motor / field, atomic saves."""

import copy
import json
import os

import numpy as np
import pytest

from actsac.calibration import (CALIBRATION_DIR_ENV, CalibrationError, CalibrationMissingError,
                                default_calibration_path, import_calibration, load_calibration,
                                missing_calibration_message, save_calibration)
from actsac.drivers.robots import load_robot
from actsac.drivers.units import MotorCalibration, normalize
from tests.drivers.test_units import RAW, lerobot_formula

from .conftest import LEROBOT_SO100

SO100 = load_robot("so100")


def test_lerobot_file_loads_unchanged(lerobot_file):
    calibration = load_calibration(lerobot_file, SO100)
    assert list(calibration) == list(LEROBOT_SO100)
    assert calibration["shoulder_pan"] == MotorCalibration(1, 0, -1021, 780, 3320)
    assert load_calibration(lerobot_file) == calibration  # without a robot: structure checks only


def test_save_writes_the_lerobot_format_and_round_trips(tmp_path, lerobot_file):
    calibration = load_calibration(lerobot_file, SO100)
    path = save_calibration(tmp_path / "a" / "b" / "arm.json", calibration)  # creates directories
    assert json.loads(path.read_text()) == LEROBOT_SO100
    assert load_calibration(path, SO100) == calibration


def test_default_path_and_env_override(tmp_path, monkeypatch):
    monkeypatch.delenv(CALIBRATION_DIR_ENV, raising=False)
    assert str(default_calibration_path("so100", "my_arm")).endswith(".cache/actsac/calibration/so100/my_arm.json")
    monkeypatch.setenv(CALIBRATION_DIR_ENV, str(tmp_path))
    assert default_calibration_path("so100", "my_arm") == tmp_path / "so100" / "my_arm.json"
    assert default_calibration_path("so100", "x", root="/r") == type(tmp_path)("/r/so100/x.json")
    with pytest.raises(CalibrationError, match="id '../x'"):
        default_calibration_path("so100", "../x")


def _mutate(change):
    data = copy.deepcopy(LEROBOT_SO100)
    change(data)
    return data


BAD = {
    "missing motor": (lambda d: d.pop("gripper"), "motor 'gripper' of robot 'so100' is missing"),
    "extra motor": (lambda d: d.update(elbow_roll=dict(d["gripper"], id=7)), "motor 'elbow_roll' is not a motor"),
    "min >= max": (lambda d: d["elbow_flex"].update(range_min=3093), "motor 'elbow_flex': field 'range_min' (3093) must be below 'range_max' (3093)"),
    "offset too big": (lambda d: d["wrist_flex"].update(homing_offset=2048), "motor 'wrist_flex': field 'homing_offset' 2048 is outside what a sts3215 can store (-2047..2047)"),
    "offset too small": (lambda d: d["wrist_flex"].update(homing_offset=-2100), "field 'homing_offset' -2100"),
    "string": (lambda d: d["gripper"].update(range_max="3456"), "motor 'gripper': field 'range_max' must be an integer, got \"3456\""),
    "float": (lambda d: d["gripper"].update(homing_offset=1.5), "motor 'gripper': field 'homing_offset' must be an integer, got 1.5"),
    "bool": (lambda d: d["gripper"].update(drive_mode=True), "field 'drive_mode' must be an integer, got true"),
    "drive mode 2": (lambda d: d["gripper"].update(drive_mode=2), "field 'drive_mode' must be 0 or 1"),
    "missing field": (lambda d: d["shoulder_lift"].pop("homing_offset"), "motor 'shoulder_lift': field 'homing_offset' is missing"),
    "unknown field": (lambda d: d["shoulder_lift"].update(offset=3), "motor 'shoulder_lift': unknown field 'offset'"),
    "wrong id": (lambda d: d["shoulder_lift"].update(id=9), "motor 'shoulder_lift': field 'id' is 9 but the robot has this motor at ID 2"),
    "range outside turn": (lambda d: d["shoulder_pan"].update(range_max=4096), "field 'range_max' 4096 is outside 0..4095"),
    "entry not object": (lambda d: d.update(gripper=[1, 2]), "motor 'gripper': expected an object"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_file_is_one_line_naming_file_motor_and_field(tmp_path, case):
    change, expected = BAD[case]
    path = tmp_path / "cal.json"
    path.write_text(json.dumps(_mutate(change)))
    with pytest.raises(CalibrationError) as info:
        load_calibration(path, SO100)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    assert expected in message


@pytest.mark.parametrize("text,expected", [("{", "invalid JSON at line 1 column 2"), ("[1, 2]", "expected a JSON object"),
                                           ("{}", "no motors"), ("", "invalid JSON")])
def test_invalid_json(tmp_path, text, expected):
    path = tmp_path / "cal.json"
    path.write_text(text)
    with pytest.raises(CalibrationError, match=expected) as info:
        load_calibration(path, SO100)
    assert str(info.value).startswith(f"{path}: ") and "\n" not in str(info.value)


def test_missing_file_tells_the_user_to_run_actsac_calibrate(tmp_path):
    with pytest.raises(CalibrationMissingError) as info:
        load_calibration(tmp_path / "none.json", SO100)
    assert isinstance(info.value, ValueError)  # the runtime catches ValueError / OSError
    assert "actsac-calibrate --robot so100" in str(info.value) and "\n" not in str(info.value)
    message = missing_calibration_message("so100", "/x/so100/a.json", "a")
    assert "/x/so100/a.json" in message and "--id a" in message


def test_failed_save_keeps_the_good_file(tmp_path, lerobot_file, monkeypatch):
    good = load_calibration(lerobot_file, SO100)
    path = save_calibration(tmp_path / "arm.json", good)
    before = path.read_bytes()

    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        save_calibration(path, {"gripper": MotorCalibration(6, 0, 0, 1, 2)})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["arm.json", "my_arm.json"]  # no temp file left behind


def test_import_validates_then_copies(tmp_path, lerobot_file):
    dest = tmp_path / "cal" / "so100" / "arm.json"
    import_calibration(lerobot_file, dest, SO100)
    assert json.loads(dest.read_text()) == LEROBOT_SO100
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(_mutate(lambda d: d.pop("gripper"))))
    dest2 = tmp_path / "cal" / "so100" / "other.json"
    with pytest.raises(CalibrationError, match="gripper"):
        import_calibration(bad, dest2, SO100)
    assert not dest2.exists()


def test_lerobot_file_normalises_like_the_published_formulas(lerobot_file):
    spec = load_robot("so100")
    calibration = load_calibration(lerobot_file, spec)
    for motor in spec.motors:
        cal = calibration[motor.name]
        for mode in (motor.norm_mode, "degrees"):
            np.testing.assert_allclose(normalize(RAW, cal, mode), lerobot_formula(RAW, cal, mode), atol=1e-9,
                                       err_msg=f"{motor.name} {mode}")
    assert spec.motor("gripper").norm_mode == "range_0_100"
    assert {m.norm_mode for m in spec.motors if m.name != "gripper"} == {"range_m100_100"}


def test_fit_warnings_name_the_robot_of_the_folder_and_bad_ranges(tmp_path):
    from actsac.calibration.files import fit_warnings

    calibration = load_calibration(_write_json(tmp_path / "so100_follower" / "a.json", LEROBOT_SO100), SO100)
    assert fit_warnings(calibration, SO100, tmp_path / "so100_follower" / "a.json") == []
    assert fit_warnings(calibration, load_robot("koch"), tmp_path / "so100_follower" / "a.json") == [
        "its folder says it was saved for robot 'so100', this is 'koch'"]
    odd = dict(calibration, shoulder_pan=MotorCalibration(1, 0, -1021, 2059, 2489))
    assert fit_warnings(odd, SO100) == ["joint 'shoulder_pan' range 2059..2489 does not contain the homed centre 2047"]


def _write_json(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path
