"""What a user asks for, checked before torque: goals out of range refused, odd rates and clamped noise warned."""

import numpy as np
import pytest

from actsac.runtime.errors import RunRefused
from actsac.runtime.sanity import check_goal, rate_warnings, stochastic_warning

from .conftest import run_bounded

JOINTS = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
LOW, HIGH = np.array([-100.0] * 5 + [0.0]), np.array([100.0] * 5 + [100.0])
UNITS = ["range_m100_100"] * 5 + ["range_0_100"]
TASK = {"goals": [[-20.0, 0, 0, 0, 0, 10], [20.0, 10, 10, 10, 10, 80]]}


def test_a_goal_outside_the_calibrated_range_is_refused_naming_the_joint():
    with pytest.raises(RunRefused, match=r"--goal: gripper 120 is outside its calibrated range 0\.\.100 \(range_0_100\)"):
        check_goal([0, 0, 0, 0, 0, 120], JOINTS, LOW, HIGH, UNITS, TASK)


def test_a_goal_beyond_the_training_goals_is_warned_about():
    assert check_goal([0, 5, 5, 5, 5, 50], JOINTS, LOW, HIGH, UNITS, TASK) == []
    (warning,) = check_goal([60, 5, 5, 5, 5, 50], JOINTS, LOW, HIGH, UNITS, TASK)
    assert "shoulder_pan 60 (trained -20..20)" in warning and "gripper" not in warning
    assert check_goal([60, 5, 5, 5, 5, 50], JOINTS, LOW, HIGH, UNITS, None) == []  # no task: nothing to compare


def test_rate_warnings():
    assert rate_warnings(30, 30, 0.002, 0.005, 10, "ensemble") == []
    far, bus = rate_warnings(1000, 30, 0.0009, 0.0003, 10, "ensemble")
    assert "trained at 30 Hz" in far and "1.0 ms" in far
    assert "a bus read took 0.9 ms here, of a 1.0 ms tick" in bus
    (stale,) = rate_warnings(30, 30, 0.001, 0.5, 10, "ensemble")
    assert "one inference takes 500 ms, longer than a chunk of 10 ticks (333 ms)" in stale
    assert rate_warnings(30, 30, 0.001, 0.5, 10, "chunk") == []  # chunk mode asks for the next chunk early


def test_stochastic_noise_against_the_step_cap():
    mean, half_range, cap = np.zeros((1, 6)), np.full(6, 100.0), np.full(6, 10.0)
    assert stochastic_warning(mean, np.full((1, 6), np.log(0.05)), half_range, cap) is None  # 5 per tick < 10
    warning = stochastic_warning(mean, np.full((1, 6), np.log(0.5)), half_range, cap)
    assert "5.0x the step cap" in warning


def test_the_run_refuses_an_unreachable_goal_before_torque():
    with pytest.raises(RunRefused, match="shoulder_pan 500 is outside its calibrated range -100..100"):
        run_bounded(goal=[500.0, 0, 0, 0, 0, 50], duration_s=1.0)


def test_the_run_warns_and_goes_on():
    summary, lines = run_bounded(fps=300.0, stochastic=True, duration_s=1.0)
    warnings = [line for line in lines if "warning:" in line]
    assert any("--fps 300: the model was trained at 30 Hz" in w for w in warnings)
    assert any("--stochastic: the policy's noise per tick is" in w for w in warnings)
    assert summary["exit_code"] == 0
