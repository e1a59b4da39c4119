"""actsac-run with a camera model, end to end: the shipped visual example on the simulator's camera (served by the
real simulator process), a camera that stalls, freezes or is lost mid-run (each a safety stop naming it, torque
off), and camera mistakes refused in one line before torque."""

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from actsac.calibration import save_calibration
from actsac.drivers.robot import Robot
from actsac.drivers.robots import load_robot
from actsac.drivers.sim import Faults, SimOptions, simulate
from actsac.drivers.sim.camera import ArmCamera
from actsac.runtime.backends import EXAMPLES
from actsac.runtime.config import RunConfig
from actsac.runtime.errors import RunRefused
from actsac.runtime.session import EXIT_OK, EXIT_SAFETY_STOP, EXIT_USER_ERROR, run

from .conftest import run_bounded

VISUAL = Path("so100-visual-reach")  # the shipped example: camera 'front' 48x64, observation = 6 positions
CAMERA_KEYS = {"camera", "fps_achieved", "frame_age_p50_ms", "frame_age_p99_ms", "camera_to_command_p50_ms",
               "camera_to_command_p99_ms", "frames_fed", "dropped_frames", "repeated_frames", "stale_ticks"}
FRAME_PERIOD_MS = 1e3 / 30


def write_video(path, frames_rgb, fps=30.0):
    """An MJPG .avi of RGB frames (written as the BGR OpenCV expects)."""
    height, width = frames_rgb[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    assert writer.isOpened()
    for frame in frames_rgb:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


@pytest.fixture(scope="module")
def arm_clip(tmp_path_factory):
    """3 s of the simulated arm turning slowly, with the first task goal's ghost, as the simulator's camera draws
    it (a moving picture: a clip of one still image would be a frozen camera)."""
    camera = ArmCamera(48, 64)
    goal = [16.4, -27.6, -55.1, -58.0, 37.6, 83.0]
    frames = [camera.render([-10.0 + 0.25 * i, 0.0, 0.0, 0.0, 0.0, 50.0], goal) for i in range(90)]
    return write_video(tmp_path_factory.mktemp("video") / "arm.avi", frames)


@pytest.fixture(scope="module")
def square_clip(tmp_path_factory):
    frame = np.full((64, 64, 3), 90, np.uint8)
    return write_video(tmp_path_factory.mktemp("video") / "square.avi", [frame] * 10)


# ---------------------------------------------------------------------------------------------- runs
@pytest.fixture(scope="module")
def visual_run():
    return run_bounded(model=VISUAL, duration_s=9.0)


def test_the_visual_example_reaches_its_goals_on_the_simulated_camera(visual_run):
    summary, lines = visual_run
    assert summary["exit_code"] == EXIT_OK and summary["exit_reason"] == "completed", summary["exit_reason"]
    assert summary["safe_state"] == "torque off"
    assert "actsac-run: camera 'front' (simulated): 64x48 at 30 fps" in lines
    goals = summary["goals"]  # 4 s per goal: the first two are held to the end of their time
    assert [g["goal_index"] for g in goals if g["complete"]] == [0, 1]
    assert all(g["success"] for g in goals if g["complete"]), goals
    assert summary["nan_chunks"] == 0 and summary["inference_errors"] == 0


def test_the_visual_run_reports_its_camera(visual_run):
    summary, _ = visual_run
    front = summary["cameras"]["front"]
    assert set(front) == CAMERA_KEYS and front["camera"] == "camera 'front' (simulated)"
    assert 27.0 <= front["fps_achieved"] <= 33.0, front
    assert 0.0 <= front["frame_age_p50_ms"] < 2 * FRAME_PERIOD_MS, front
    assert front["frame_age_p50_ms"] <= front["frame_age_p99_ms"], front
    assert 0.0 < front["camera_to_command_p50_ms"] <= front["camera_to_command_p99_ms"] < 500.0, front
    assert front["stale_ticks"] == 0 and summary["camera_hold_ticks"] == 0, front
    assert front["frames_fed"] >= 0.8 * summary["ticks"], front
    # camera and loop both run at 30 Hz: with the phase near one period, jitter makes either skip a frame now
    # and then (the load decides how often), so dropped / repeated frames are counted, not bounded here
    assert front["dropped_frames"] >= 0 and front["repeated_frames"] >= 0, front


@pytest.mark.parametrize("fault, why", [
    pytest.param("camera_silent_after_s", "newest frame", id="stalled"),
    pytest.param("camera_frozen_after_s", "(frozen)", id="frozen"),
])
def test_a_camera_that_stalls_or_freezes_holds_then_stops_the_run_naming_it(fault, why):
    faults = Faults(**{fault: {"front": 1.5}})
    summary, _ = run_bounded(model=VISUAL, duration_s=8.0, sim=SimOptions(faults=faults))
    assert summary["exit_code"] == EXIT_SAFETY_STOP
    reason = summary["exit_reason"]
    assert reason.startswith("safety stop: camera 'front' (simulated): no fresh frame for ") and why in reason
    assert "\n" not in reason and "torque off" in summary["safe_state"]
    # fresh frames for a while, then about a stall timeout (1 s at 30 Hz) of ticks held for the camera
    front = summary["cameras"]["front"]
    assert 15 <= summary["camera_hold_ticks"] <= 45 and front["stale_ticks"] >= summary["camera_hold_ticks"]
    assert summary["ticks"] < 8.0 * 30 * 0.75 and front["frames_fed"] > 0


def test_a_camera_lost_mid_run_stops_it_naming_the_camera(arm_clip):
    summary, lines = run_bounded(model=VISUAL, duration_s=20.0, camera=[f"front={arm_clip}"])
    assert f"actsac-run: camera 'front' ({arm_clip}): 64x48 at 30 fps" in lines
    assert summary["exit_code"] == EXIT_SAFETY_STOP
    assert summary["exit_reason"] == f"safety stop: camera 'front' ({arm_clip}) lost: end of the video file"
    assert "torque off" in summary["safe_state"]
    assert summary["ticks"] >= 30 and summary["cameras"]["front"]["frames_fed"] >= 30
    assert "goals" not in summary  # on a real camera the goal is whatever it sees: no scene goals shown


# ---------------------------------------------------------------------------------------------- refusals
def refused(match, **config):
    config.setdefault("model", VISUAL)
    with pytest.raises(RunRefused, match=match) as info:
        run(RunConfig(**config), log=lambda line: None)
    message = str(info.value)
    assert "\n" not in message
    return message


SO100_LIKE = """name = "arm6"
[[buses]]
name = "main"
family = "feetech"
motors = [
  {name = "shoulder_pan", id = 1, model = "sts3215"}, {name = "shoulder_lift", id = 2, model = "sts3215"},
  {name = "elbow_flex", id = 3, model = "sts3215"}, {name = "wrist_flex", id = 4, model = "sts3215"},
  {name = "wrist_roll", id = 5, model = "sts3215", full_turn = true, sim_range = [0, 4095]},
  {name = "gripper", id = 6, model = "sts3215", norm_mode = "range_0_100", sim_range = [2000, 3000]}]
[[groups]]
name = "arm"
joints = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
"""


def test_a_model_camera_the_robot_lacks_is_refused(tmp_path):
    toml = tmp_path / "arm6.toml"
    toml.write_text(SO100_LIKE)
    assert load_robot(str(toml)).cameras == ()
    model = EXAMPLES["so100-visual-reach"]  # by its path: the example names drive the built-in so100 only
    assert refused("robot 'arm6' does not have", robot=str(toml), model=model) == (
        "the model sees camera 'front', which robot 'arm6' does not have: add [cameras.front] to the robot file or "
        "pass --camera front=SOURCE")


@pytest.mark.parametrize("items, message", [
    pytest.param(["front"], "--camera front: expected NAME=SOURCE", id="no-equals"),
    pytest.param(["front="], "--camera front=: expected NAME=SOURCE", id="no-source"),
    pytest.param(["=/dev/video0"], "--camera =/dev/video0: expected NAME=SOURCE", id="no-name"),
    pytest.param(["nosuch=/dev/video0"], "--camera nosuch=...: the model does not see a camera 'nosuch' (it sees "
                                         "front)", id="unknown-camera"),
    pytest.param(["front=/nonexistent/clip.avi"], "camera 'front': source '/nonexistent/clip.avi' is not a device",
                 id="missing-file"),
])
def test_bad_camera_options_are_refused(items, message):
    assert refused(None, camera=items).startswith(message)


@pytest.fixture(scope="module")
def real_port(tmp_path_factory):
    """An so100 on a simulator of its own, reached as a real robot is: a port and a calibration file."""
    spec = load_robot("so100")
    calibration = tmp_path_factory.mktemp("cal") / "so100.json"
    save_calibration(calibration, {m.name: m.sim_calibration for m in spec.motors})
    with simulate(spec) as ports:
        yield spec, ports, calibration


def torque(spec, ports):
    with Robot(spec, ports) as check:
        return set(check.read_raw("Torque_Enable").values())


def test_an_aspect_ratio_mismatch_is_refused_before_torque(real_port, square_clip):
    spec, ports, calibration = real_port
    message = refused("aspect ratios differ", port=ports["main"], calibration=calibration,
                      camera=[f"front={square_clip}"])
    assert message.startswith(f"camera 'front' ({square_clip}) gives 64x64, the model wants 64x48")
    assert torque(spec, ports) == {0}


def test_a_simulated_camera_on_a_real_port_is_refused(real_port):
    spec, ports, calibration = real_port
    message = refused("has no source", port=ports["main"], calibration=calibration)
    assert message.startswith("camera 'front' has no source: on a real robot give one (--camera front=")
    assert torque(spec, ports) == {0}


def test_the_camera_option_on_the_command_line():
    result = subprocess.run([sys.executable, "-m", "actsac.runtime.cli", "--model", "so100-visual-reach",
                             "--camera", "front=/dev/video0", "--camera", "wrist"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == EXIT_USER_ERROR
    assert result.stderr.startswith("error: --camera wrist: expected NAME=SOURCE") and result.stderr.count("\n") == 1
