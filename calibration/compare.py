"""The calibration a model was trained with, against the robot's: where does the same command land?

A policy's actions are user units; the calibration turns them into motor ticks. Two arms calibrated differently
put the same command at different physical angles (LeRobot issue #3758: leader and follower calibrated apart,
17 degrees on one joint, about 6 cm at the gripper, invisible in the training loss). The export stores the
calibration the training data was recorded with (``calibration_record``: the simulator's for actsac's tasks, the
file given at export for a LeRobot checkpoint); ``actsac-run`` compares it with the robot's here, joint by
joint: the physical angle (ticks less the homing offset, one turn = 360 degrees) of the bottom, middle and top
of the joint's unit range under each calibration, and the largest difference.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Mapping

import numpy as np

from actsac.drivers.tables import motor_model
from actsac.drivers.units import MotorCalibration, unnormalize

PROBES = {"range_m100_100": (-100.0, 0.0, 100.0), "range_0_100": (0.0, 50.0, 100.0),
          "degrees": (-45.0, 0.0, 45.0), "radians": (-0.785, 0.0, 0.785)}


def calibration_record(calibration: Mapping[str, MotorCalibration], joints: list[str], source: str) -> dict:
    """The metadata's ``calibration``: ``source`` (e.g. "simulator", a file name) and each joint's entry in
    the LeRobot file's fields."""
    return {"source": source, "joints": {j: asdict(calibration[j]) for j in joints}}


def _physical_deg(value: float, cal: MotorCalibration, mode: str, model) -> float:
    present = float(unnormalize(value, cal, mode, model.resolution))
    actual = present - model.homing_sign * cal.homing_offset
    return actual * 360.0 / model.resolution


def differences(record: dict, robot_calibration: Mapping[str, MotorCalibration], spec) -> list[dict]:
    """Per joint of ``record`` the robot has: the largest angle between where a command lands under the
    model's calibration and under the robot's (degrees, within half a turn), with both calibrations."""
    out = []
    for joint, entry in record["joints"].items():
        if joint not in robot_calibration:
            continue
        motor = spec.motor(joint)
        model = motor_model(motor.model)
        theirs, ours = MotorCalibration(**entry), robot_calibration[joint]
        gaps = []
        for value in PROBES.get(motor.norm_mode, (0.0,)):
            gap = _physical_deg(value, theirs, motor.norm_mode, model) - _physical_deg(value, ours, motor.norm_mode, model)
            gaps.append(abs((gap + 180.0) % 360.0 - 180.0))
        out.append({"joint": joint, "degrees": float(np.max(gaps)), "model": theirs, "robot": ours})
    return out


def describe(diff: dict) -> str:
    m, r = diff["model"], diff["robot"]
    flipped = ", drive mode {} vs {}".format(m.drive_mode, r.drive_mode) if m.drive_mode != r.drive_mode else ""
    return (f"{diff['joint']}: the same command lands {diff['degrees']:.1f} degrees apart (range "
            f"{m.range_min}..{m.range_max} vs {r.range_min}..{r.range_max}, homing offset {m.homing_offset} vs "
            f"{r.homing_offset}{flipped}; the model's vs the robot's)")
