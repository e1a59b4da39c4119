"""The whole-chunk check: actions clamped into the ranges, plans that jump dropped, repeated jumps hold the
robot; judged on the motors' no-load speeds; a --stochastic run is judged on its deterministic plan."""

import numpy as np
import pytest

from actsac.drivers.robot import Robot
from actsac.drivers.robots import load_robot
from actsac.drivers.sim import simulate
from actsac.runtime.safety import ChunkCheck, SafetySettings
from actsac.runtime.session import EXIT_OK, EXIT_SAFETY_STOP

from .conftest import REACH_TASK, run_bounded
from .models import reach_model

JOINTS = ["elbow_flex", "gripper"]


def check(hold_after=3):
    return ChunkCheck(np.array([-100.0, 0.0]), np.array([100.0, 100.0]), np.array([20.0, 10.0]), JOINTS, hold_after)


def test_a_smooth_chunk_passes_and_actions_outside_the_ranges_are_clamped_and_counted():
    c = check()
    chunk = np.stack([np.linspace(90, 110, 5), np.linspace(10, 20, 5)], axis=1)
    out = c.check(chunk)
    assert out[:, 0].max() == 100.0 and c.clamped_chunks == 1 and c.clamped_actions == 2
    assert c.dropped_chunks == 0


@pytest.mark.parametrize("chunk, why", [
    pytest.param(np.array([[0, 50], [0, 65], [0, 70]], float), "gripper moves 15.0 in one step", id="speed"),
    pytest.param(np.array([[0, 50], [19, 50], [0, 50]], float), "elbow_flex changes its speed by 38.0",
                 id="acceleration"),
])
def test_a_plan_that_jumps_is_dropped_with_the_reason(chunk, why):
    c = check()
    assert c.check(chunk) is None
    assert c.dropped_chunks == 1 and why in c.last_jump


def test_repeated_jumps_hold_until_a_smooth_chunk_arrives():
    c = check(hold_after=2)
    jump = np.array([[0, 0], [50, 0]], float)
    c.check(jump)
    assert not c.holding
    c.check(jump)
    assert c.holding
    c.check(np.zeros((2, 2)))
    assert not c.holding and c.dropped_chunks == 2


def test_a_sample_is_judged_on_its_deterministic_plan():
    c = check()
    plan = np.zeros((4, 2))
    noisy = plan + np.array([[0, 0], [40, 30], [-40, 0], [40, 30]])  # the sample's own noise jumps
    out = c.check(noisy, judged=plan)
    assert out is not None and c.dropped_chunks == 0


def test_bounds_are_the_motors_no_load_speed_in_user_units():
    spec = load_robot("so100")
    with simulate(spec) as ports, Robot(spec, ports) as robot:
        c = ChunkCheck.for_robot(robot, ["elbow_flex", "gripper", "wrist_roll"], fps=30.0, speed_factor=1.0,
                                 hold_after=3)
    # STS3215: 3075 ticks/s over 1/30 s = 102.5 ticks a step; elbow 2046 ticks = 200 units, gripper 1000 = 100,
    # wrist_roll 4095 = 200
    assert c.max_step == pytest.approx([102.5 * 200 / 2046, 102.5 * 100 / 1000, 102.5 * 200 / 4095], rel=1e-3)


def test_a_model_whose_chunks_jump_holds_the_robot_then_stops(tmp_path):
    model = reach_model(tmp_path / "zigzag.onnx", zigzag=30.0, task=REACH_TASK)
    summary, lines = run_bounded(model=model, duration_s=4.0,
                                 safety=SafetySettings(stop_hold_s=0.1, stall_timeout_s=0.5))
    assert summary["exit_code"] == EXIT_SAFETY_STOP
    assert "chunks in a row jumped" in summary["exit_reason"] and "in one step" in summary["exit_reason"]
    assert summary["chunks_dropped"] >= 3 and summary["safe_state"].endswith("torque off")


def test_the_check_can_be_loosened_for_a_plan_that_really_moves_that_fast(tmp_path):
    model = reach_model(tmp_path / "zigzag.onnx", zigzag=30.0, task=REACH_TASK)
    summary, _ = run_bounded(model=model, duration_s=1.0,
                             safety=SafetySettings(stop_hold_s=0.1, chunk_speed_factor=100.0))
    assert summary["exit_code"] == EXIT_OK and summary["chunks_dropped"] == 0
