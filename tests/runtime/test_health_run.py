"""Motor health in real runs on the simulator: each simulated fault ends as specified (derate, stop, exit code,
torque off), and a blocked gripper is backed off before it overheats."""

import json

import pytest

from actsac.drivers.sim import Faults, SimOptions
from actsac.runtime.health import HealthSettings
from actsac.runtime.safety import SafetySettings
from actsac.runtime.session import EXIT_OK, EXIT_SAFETY_STOP

from .conftest import run_bounded
from .models import reach_model

GRIP = {"name": "grip", "goals": [[0.0, 0.0, 0.0, 0.0, 0.0, 10.0]], "goal_hold_s": 30.0, "success_tolerance": 2.0}
SQUEEZE = Faults(blocked={"gripper": 40.0}, heat_scale={"gripper": 20.0})  # an object at 40; 20x faster heating


@pytest.fixture(scope="module")
def grip_onnx(tmp_path_factory):
    """Closes the gripper (from 50 to 10): on an object at 40 it squeezes."""
    return reach_model(tmp_path_factory.mktemp("grip") / "grip.onnx", gain=1.0, task=GRIP)


FACTORY = SafetySettings(stop_hold_s=0.1, gripper_protection="ignore")  # the gripper at full torque


def run_sim(model, faults, duration_s, **config):
    return run_bounded(model=model, duration_s=duration_s, sim=SimOptions(faults=faults),
                       safety=config.pop("safety", FACTORY), **config)


def test_a_squeezing_gripper_is_backed_off_before_it_overheats(grip_onnx, tmp_path):
    summary, lines = run_sim(grip_onnx, SQUEEZE, 5.0, record=tmp_path / "rec")
    assert summary["exit_code"] == EXIT_OK, summary["exit_reason"]
    health = summary["health"]
    derates = [e for e in health["events"] if e["level"] == "derate"]
    assert derates and derates[0]["motor"] == "gripper" and derates[0]["kind"] == "stall"
    gripper = health["motors"]["gripper"]
    assert gripper["peak_temperature_c"] < 55  # never reached its warning level, let alone the servo's 70
    assert gripper["peak_effort_pct"] >= 90 and gripper["derated_s"] > 3.0
    assert any("gripper stall derated" in line for line in lines)
    ticks = [json.loads(line) for line in (tmp_path / "rec" / "ticks.jsonl").read_text().splitlines()]
    ticks = [t for t in ticks if "tick" in t]
    efforts = [t["health"]["effort"]["gripper"] for t in ticks if "effort" in t.get("health", {})]
    assert abs(efforts[-1]) < 25  # backed off: pushing lightly on the object
    assert ticks[-1]["position"][5] == pytest.approx(40.0, abs=0.5) and "gripper" in ticks[-1]["derated"]
    assert min(g["seen_hz"]["temperature"] for g in health["motors"].values()) >= 4.0


def test_without_the_health_guard_the_same_gripper_overheats_and_the_servo_stops_the_run(grip_onnx):
    summary, _ = run_sim(grip_onnx, SQUEEZE, 10.0, health=HealthSettings(health_hz=0))
    assert summary["exit_code"] == EXIT_SAFETY_STOP
    assert summary["exit_reason"].startswith("safety stop: hardware error: gripper reports overheat")
    assert summary["safe_state"].endswith("torque off") and "health" not in summary


def test_with_its_protection_registers_written_the_gripper_squeezes_at_half_torque_and_is_derated(grip_onnx):
    summary, _ = run_sim(grip_onnx, SQUEEZE, 4.0, safety=SafetySettings(stop_hold_s=0.1))  # write: the default
    assert summary["exit_code"] == EXIT_OK and summary["gripper_protection"]["written"]
    gripper = summary["health"]["motors"]["gripper"]
    assert gripper["peak_effort_pct"] == 50.0  # Max_Torque_Limit 500
    assert [e["kind"] for e in summary["health"]["events"] if e["level"] == "derate"] == ["stall"]


def test_a_motor_over_its_stop_temperature_stops_the_run_naming_it(grip_onnx):
    faults = Faults(blocked={"gripper": 40.0}, heat_scale={"gripper": 40.0})
    summary, lines = run_sim(grip_onnx, faults, 10.0,
                             health=HealthSettings(temperature_c=[35.0, 44.0, 45.0], stall_s=30.0))
    assert summary["exit_code"] == EXIT_SAFETY_STOP
    assert "motor gripper at" in summary["exit_reason"] and "(stop limit 45 degC)" in summary["exit_reason"]
    levels = [(e["level"], e["kind"]) for e in summary["health"]["events"] if e["motor"] == "gripper"]
    assert ("warn", "temperature") in levels and levels[-1] == ("stop", "temperature")
    assert summary["safe_state"].endswith("torque off")


def test_a_sagging_supply_stops_the_run(grip_onnx):
    faults = Faults(voltage_drop={"shoulder_pan": 5.5}, voltage_drop_after_s=1.0)
    summary, _ = run_sim(grip_onnx, faults, 6.0)
    assert summary["exit_code"] == EXIT_SAFETY_STOP
    assert "shoulder_pan supply at 5.5 V, 26 % below its 7.4 V at start" in summary["exit_reason"]


@pytest.mark.parametrize("robot, error", [("so100", "overload"), ("koch", "overload")])
def test_a_hardware_error_bit_stops_the_run_at_once_naming_the_motor(grip_onnx, robot, error):
    faults = Faults(hardware_errors={"elbow_flex": (error,)}, hardware_error_after_s=1.0)
    summary, _ = run_sim(grip_onnx, faults, 6.0, robot=robot)
    assert summary["exit_code"] == EXIT_SAFETY_STOP
    assert summary["exit_reason"].startswith(f"safety stop: hardware error: elbow_flex reports {error}")
    assert summary["ticks"] < 3.0 * 30 and summary["safe_state"].endswith("torque off")
