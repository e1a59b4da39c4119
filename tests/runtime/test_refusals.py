"""Mistakes refused before anything is powered, each in one line naming the difference."""

from pathlib import Path

import numpy as np
import pytest

from actsac.drivers.robots import load_robot
from actsac.runtime import backends
from actsac.runtime.errors import RunRefused
from actsac.runtime.observation import ObservationBuilder
from actsac.runtime.config import RunConfig
from actsac.runtime.session import run

from .models import reach_model, so100_groups

TASK = {"name": "t", "goals": [[0.0] * 6]}


def refused(tmp_path, match, model_kwargs=None, **config):
    if model_kwargs is not None:
        config["model"] = reach_model(tmp_path / "m.onnx", **{"task": TASK, **model_kwargs})
    with pytest.raises(RunRefused, match=match) as info:
        run(RunConfig(**config), log=lambda line: None)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_wrong_unit_is_refused(tmp_path):
    refused(tmp_path, "joint 'gripper' is in range_m100_100 but the motor's norm_mode is range_0_100",
            model_kwargs={"groups": so100_groups({"gripper": "range_m100_100"})})


def test_missing_joint_is_refused(tmp_path):
    groups = [{"name": "arm", "joints": ["shoulder_pan", "elbow_twist"], "units": ["range_m100_100"] * 2}]
    refused(tmp_path, "drives joint 'elbow_twist', which robot 'so100' does not have",
            model_kwargs={"groups": groups, "with_goals": False})


def test_wrong_group_size_is_refused(tmp_path):
    groups = [{"name": "arm", "joints": ["shoulder_pan", "gripper"], "units": ["range_m100_100", "range_0_100"]}]
    refused(tmp_path, "action group 'arm' has 2 joints, robot 'so100' has 6",
            model_kwargs={"groups": groups, "with_goals": False})


def test_unknown_observation_feature_is_refused(tmp_path):
    names = [f"{j}.pos" for j in so100_groups()[0]["joints"]][:5] + ["gripper.velocity"]
    refused(tmp_path, "observation feature 'gripper.velocity'",
            model_kwargs={"with_goals": False, "metadata_overrides": {"observation_names": names}})


def test_goal_of_the_wrong_length_is_refused(tmp_path):
    refused(tmp_path, "--goal has 2 values; m.onnx expects 6", model_kwargs={}, goal=[1.0, 2.0])


def test_bad_chunk_settings_are_refused(tmp_path):
    refused(tmp_path, "--n-action-steps 11: must be between 1 and the model's chunk size 10",
            model_kwargs={}, exec_mode="chunk", n_action_steps=11)


def test_real_port_without_calibration_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("ACTSAC_CALIBRATION_DIR", str(tmp_path / "calibration"))
    refused(tmp_path, "refusing to enable torque without a calibration: .*run `actsac-calibrate --robot so100",
            model_kwargs={}, port="/dev/ttyUSB9")


def test_real_port_uses_the_default_calibration_file(tmp_path, monkeypatch):
    """With actsac-calibrate's default file in place, the run gets past calibration (and fails on the port)."""
    from actsac.calibration import default_calibration_path, save_calibration
    from actsac.drivers.robots import SO100

    monkeypatch.setenv("ACTSAC_CALIBRATION_DIR", str(tmp_path / "calibration"))
    path = default_calibration_path("so100")
    path.parent.mkdir(parents=True)
    save_calibration(path, {m.name: m.sim_calibration for m in SO100.motors})
    refused(tmp_path, "/dev/ttyUSB9", model_kwargs={}, port="/dev/ttyUSB9")


def test_missing_model_and_missing_example_model(tmp_path, monkeypatch):
    refused(tmp_path, "no such file", model=tmp_path / "nope.onnx")
    monkeypatch.setitem(backends.EXAMPLES, "so100-reach", tmp_path / "so100_reach.onnx")
    refused(tmp_path, "example policy .* is not installed: pass --model")


def test_not_an_actsac_model(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx at all")
    refused(tmp_path, "bad.onnx", model=bad)


def test_unknown_robot_and_composite_port_syntax(tmp_path):
    from actsac.drivers.errors import RobotSpecError
    from actsac.drivers.robots import parse_ports

    refused(tmp_path, "unknown robot 'r2d2'", robot="r2d2")
    toml = Path(__file__).parents[2] / "drivers" / "robots" / "upper_body.toml"
    spec = load_robot(str(toml))
    with pytest.raises(RobotSpecError, match="has 3 buses"):
        parse_ports("/dev/ttyUSB0", spec)
    with pytest.raises(RobotSpecError, match="no port for bus 'hand'"):
        parse_ports("arm=/dev/a,torso=/dev/b", spec)
    with pytest.raises(RobotSpecError, match="no bus 'legs'"):
        parse_ports("arm=/dev/a,torso=/dev/b,hand=/dev/c,legs=/dev/d", spec)
    assert parse_ports("arm=/dev/a,torso=/dev/b,hand=/dev/c", spec)["hand"] == "/dev/c"


def test_history_window_is_oldest_first():
    builder = ObservationBuilder(["a.pos", "b.pos"], ["a", "b"], history=3)
    first = builder.build(np.array([1.0, 2.0]), None)
    assert first.shape == (3, 2) and np.all(first == [1.0, 2.0])
    builder.build(np.array([3.0, 4.0]), None)
    window = builder.build(np.array([5.0, 6.0]), None)
    assert window.tolist() == [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]


def test_trt_backend_without_tensorrt_says_why(tmp_path):
    from actsac.export.tensorrt import missing_tensorrt_reason

    if missing_tensorrt_reason() is None:
        pytest.skip("TensorRT is installed here: the refusal path cannot be exercised")
    refused(tmp_path, "--backend trt is unavailable", model_kwargs={}, backend="trt")


def test_a_camera_option_for_a_model_without_cameras_is_refused(tmp_path):
    """Camera models run now (tests/runtime/test_camera_run.py); a --camera the model does not see is a mistake."""
    message = refused(tmp_path, r"--camera front=\.\.\.: the model does not see a camera 'front' \(it sees none\)",
                      model_kwargs={}, camera=["front=/dev/video0"])
    assert message.startswith("--camera front=...")
