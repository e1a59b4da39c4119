"""The calibration a model was trained with against the robot's: refused past the tolerance, naming the joint
and the degrees; a warning with --allow-calibration-mismatch; a model that stores none is said to be unchecked."""

import subprocess
import sys

import pytest

from actsac.calibration.compare import calibration_record, differences
from actsac.drivers.robot import Robot
from actsac.drivers.robots import load_robot
from actsac.drivers.units import MotorCalibration
from actsac.runtime.errors import RunRefused
from actsac.runtime.safety import SafetySettings
from actsac.runtime.session import EXIT_OK

from .conftest import REACH_TASK, run_bounded
from .models import reach_model

SO100 = load_robot("so100")
SIM = {m.name: m.sim_calibration for m in SO100.motors}
JOINTS = list(SIM)


def record(**changes):
    """The simulator's calibration with some joints' entries changed ({joint: MotorCalibration})."""
    return calibration_record({**SIM, **changes}, JOINTS, "leader_arm.json")


def shifted(ticks: int) -> MotorCalibration:
    return MotorCalibration(id=3, drive_mode=0, homing_offset=0, range_min=1025 + ticks, range_max=3071 + ticks)


def test_the_same_calibration_lands_every_command_in_the_same_place():
    assert all(d["degrees"] == 0 for d in differences(record(), SIM, SO100))


def test_a_range_shift_and_a_homing_offset_are_measured_in_degrees():
    (elbow,) = [d for d in differences(record(elbow_flex=shifted(194)), SIM, SO100) if d["joint"] == "elbow_flex"]
    assert elbow["degrees"] == pytest.approx(194 * 360 / 4096)  # 17.05 degrees
    # re-homed by 100 ticks (an STS3215 reads Present = Actual - Homing_Offset): the same physical range reads
    # 100 ticks lower, and every command lands where it did
    rehomed = MotorCalibration(id=3, drive_mode=0, homing_offset=100, range_min=925, range_max=2971)
    (elbow,) = [d for d in differences(record(elbow_flex=rehomed), SIM, SO100) if d["joint"] == "elbow_flex"]
    assert elbow["degrees"] == pytest.approx(0.0)


def test_a_model_trained_with_another_calibration_is_refused_before_torque(tmp_path, monkeypatch):
    model = reach_model(tmp_path / "leader.onnx", task=REACH_TASK,
                        metadata_overrides={"calibration": record(elbow_flex=shifted(194))})
    activated = []
    real_activate = Robot.activate
    monkeypatch.setattr(Robot, "activate", lambda robot: activated.append(1) or real_activate(robot))
    with pytest.raises(RunRefused) as info:
        run_bounded(model=model, duration_s=1.0)
    assert activated == []  # torque never went on
    message = str(info.value)
    assert message.startswith("calibration: the model was trained with another calibration (leader_arm.json): "
                              "elbow_flex: the same command lands 17.1 degrees apart (range 1219..3265 vs 1025..3071")
    assert "--allow-calibration-mismatch" in message and "shoulder_pan" not in message
    summary, lines = run_bounded(model=model, duration_s=0.5,
                                 safety=SafetySettings(stop_hold_s=0.1, allow_calibration_mismatch=True))
    assert summary["exit_code"] == EXIT_OK and any("warning: the model was trained with another" in l for l in lines)
    summary, _ = run_bounded(model=model, duration_s=0.5,
                             safety=SafetySettings(stop_hold_s=0.1, calibration_tolerance_deg=20.0))
    assert summary["exit_code"] == EXIT_OK
    assert activated  # the runs above did enable torque: the spy sees it


def test_the_refusal_is_one_line_and_exit_1_from_the_command(tmp_path):
    model = reach_model(tmp_path / "leader.onnx", task=REACH_TASK,
                        metadata_overrides={"calibration": record(elbow_flex=shifted(194))})
    proc = subprocess.run([sys.executable, "-m", "actsac.runtime.cli", "--model", str(model), "--duration", "1",
                           "--no-status"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and proc.stderr.strip().count("\n") == 0
    assert proc.stderr.startswith("error: calibration: the model was trained with another calibration "
                                  "(leader_arm.json): elbow_flex: the same command lands 17.1 degrees apart")
    proc = subprocess.run([sys.executable, "-m", "actsac.runtime.cli", "--model", str(model), "--duration", "1",
                           "--calibration-tolerance-deg", "0"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--calibration-tolerance-deg" in proc.stderr and "Traceback" not in proc.stderr


def test_a_matching_model_runs_and_one_without_a_record_is_said_unchecked(tmp_path):
    model = reach_model(tmp_path / "same.onnx", task=REACH_TASK, metadata_overrides={"calibration": record()})
    summary, lines = run_bounded(model=model, duration_s=0.5)
    assert summary["exit_code"] == EXIT_OK and not any("calibration" in line for line in lines)
    older = reach_model(tmp_path / "older.onnx", task=REACH_TASK, metadata_overrides={"calibration": None})
    _, lines = run_bounded(model=older, duration_s=0.5)
    assert any("older.onnx stores no training calibration: not compared with the robot's" in l for l in lines)
