import dataclasses
import json

import pytest

from actsac.drivers.units import MotorCalibration
from tests.conftest import deadline_guard

TEST_DEADLINE_S = 60  # no calibration test may hang: a stuck one fails with a clear message instead

# A calibration file exactly as LeRobot writes it for an SO-100 follower.
LEROBOT_SO100 = {
    "shoulder_pan": {"id": 1, "drive_mode": 0, "homing_offset": -1021, "range_min": 780, "range_max": 3320},
    "shoulder_lift": {"id": 2, "drive_mode": 0, "homing_offset": 1370, "range_min": 810, "range_max": 3206},
    "elbow_flex": {"id": 3, "drive_mode": 0, "homing_offset": -1005, "range_min": 880, "range_max": 3093},
    "wrist_flex": {"id": 4, "drive_mode": 0, "homing_offset": 1130, "range_min": 921, "range_max": 3228},
    "wrist_roll": {"id": 5, "drive_mode": 0, "homing_offset": -143, "range_min": 0, "range_max": 4095},
    "gripper": {"id": 6, "drive_mode": 0, "homing_offset": 1140, "range_min": 2037, "range_max": 3456},
}


@pytest.fixture(autouse=True)
def deadline():
    with deadline_guard(TEST_DEADLINE_S):
        yield


@pytest.fixture
def lerobot_file(tmp_path):
    path = tmp_path / "my_arm.json"
    path.write_text(json.dumps(LEROBOT_SO100, indent=4))
    return path


def narrow_spec(spec, lo: int, hi: int, full_turn=(), full_range=(100, 3995)):
    """``spec`` with every joint's simulated range set to lo..hi (full-turn joints to ``full_range``).

    The scripted hand sweeps these ranges; keeping them away from the ends of the turn means homing at any
    moment of the sweep leaves the recorded range inside 0..4095 (a person would hold the arm mid-range).
    """
    buses = []
    for bus in spec.buses:
        motors = []
        for m in bus.motors:
            a, b = full_range if m.name in full_turn else (lo, hi)
            motors.append(dataclasses.replace(m, sim_calibration=MotorCalibration(m.id, 0, 0, a, b)))
        buses.append(dataclasses.replace(bus, motors=tuple(motors)))
    return dataclasses.replace(spec, buses=tuple(buses))
