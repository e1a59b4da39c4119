"""The motor-health decisions (warn -> derate -> stop, stalls, the hold band), the limits' sources, and the
poller's budget on a real simulated bus."""

import numpy as np
import pytest

from actsac.drivers.robot import Robot
from actsac.drivers.robot_toml import parse_robot_toml
from actsac.drivers.robots import load_robot
from actsac.drivers.errors import RobotSpecError
from actsac.drivers.sim import simulate
from actsac.runtime.errors import RunRefused
from actsac.runtime.health import (HOLD_BAND_FRACTION, HealthGuard, HealthLimits, HealthPoller, HealthSettings,
                                   motor_limits)
from actsac.runtime.loop import RealClock, TickTime
from actsac.runtime.safety import SafetyStop

JOINTS = ["elbow_flex", "gripper"]
SPAN = np.array([200.0, 100.0])


def guard(log=None, **limits):
    lim = HealthLimits((55.0, 60.0, 65.0), **limits)
    return HealthGuard(JOINTS, {j: lim for j in JOINTS}, SPAN, log=(log if log is not None else (lambda _: None)))


def test_temperature_warns_then_derates_then_stops_naming_the_motor():
    lines = []
    g = guard(lines.append)
    g.observe("temperature", {"elbow_flex": 40, "gripper": 56}, 1.0)
    assert [e["level"] for e in g.events] == ["warn"] and "gripper temperature warning: 56.0 degC" in lines[0]
    g.observe("temperature", {"elbow_flex": 40, "gripper": 61}, 2.0)
    assert g.derated == ["gripper"] and g.step_scale == 0.5
    command = g.limit(np.array([0.0, 10.0]), np.array([0.0, 40.0]), 2.1)  # the gripper wants to close on it
    assert command[1] == pytest.approx(40.0 - HOLD_BAND_FRACTION * 100)  # held within its band, not squeezing
    g.observe("temperature", {"elbow_flex": 40, "gripper": 54}, 3.0)  # cooled 5 degC below the derate level
    assert g.derated == [] and g.events[-1]["level"] == "release"
    with pytest.raises(SafetyStop, match="motor gripper at 66 degC \\(stop limit 65 degC\\)"):
        g.observe("temperature", {"elbow_flex": 40, "gripper": 66}, 4.0)
    assert g.events[-1] == {"t_s": 4.0, "motor": "gripper", "level": "stop", "kind": "temperature", "value": 66.0,
                            "limit": 65.0, "unit": "degC"}


def test_a_stall_is_derated_after_stall_s_and_released_once_the_policy_stops_pushing():
    g = guard(stall_s=0.5)
    positions = np.array([0.0, 50.0])
    g.limit(np.array([0.0, 20.0]), positions, 0.0)  # the policy closes the gripper on an object at 50
    g.observe("effort", {"elbow_flex": 1.0, "gripper": -90.0}, 0.1)
    assert g.derated == [] and g.events[0]["kind"] == "effort"  # a warning, not yet a stall
    g.observe("effort", {"elbow_flex": 1.0, "gripper": -90.0}, 0.4)
    assert g.derated == []
    g.observe("effort", {"elbow_flex": 1.0, "gripper": -90.0}, 0.65)
    assert g.derated == ["gripper"]
    held = g.limit(np.array([0.0, 20.0]), positions, 0.7)
    assert abs(held[1] - 50.0) <= HOLD_BAND_FRACTION * 100 + 1e-9
    g.limit(np.array([0.0, 50.2]), positions, 0.8)  # the policy opens again: no more pushing
    assert g.derated == []
    assert g.summary(1.0)["motors"]["gripper"]["derated_s"] == pytest.approx(0.15)  # from 0.65 to 0.8


def test_high_effort_without_a_position_error_is_no_stall():
    g = guard(stall_s=0.2)
    g.limit(np.array([0.0, 50.0]), np.array([0.0, 50.0]), 0.0)
    for t in (0.1, 0.3, 0.5):
        g.observe("effort", {"elbow_flex": 0.0, "gripper": 70.0}, t)
    assert g.derated == []


def test_a_voltage_drop_warns_then_stops():
    g = guard()
    g.observe("voltage", {"elbow_flex": 7.4, "gripper": 7.4}, 0.0)  # the voltage at start
    g.observe("voltage", {"elbow_flex": 6.6, "gripper": 7.4}, 1.0)
    assert g.events[-1]["level"] == "warn" and g.events[-1]["kind"] == "voltage"
    with pytest.raises(SafetyStop, match="elbow_flex supply at 5.5 V, 26 % below its 7.4 V at start"):
        g.observe("voltage", {"elbow_flex": 5.5, "gripper": 7.4}, 2.0)


def test_limits_come_from_the_model_then_the_robot_file_then_the_options(tmp_path):
    so100 = motor_limits(load_robot("so100"), HealthSettings())
    assert so100["gripper"].temperature_c == (55.0, 60.0, 65.0)  # STS3215: 70 degC limit
    koch = motor_limits(load_robot("koch"), HealthSettings())
    assert koch["shoulder_pan"].temperature_c == (57.0, 62.0, 67.0)  # XL430: 72
    assert koch["gripper"].temperature_c == (55.0, 60.0, 65.0)  # XL330: 70
    robot_file = tmp_path / "arm.toml"
    robot_file.write_text(
        'name = "arm"\n[[buses]]\nname = "main"\nfamily = "feetech"\n'
        'motors = [{name = "a", id = 1, model = "sts3215"}, {name = "b", id = 2, model = "sts3215"}]\n'
        '[[groups]]\nname = "arm"\njoints = ["a", "b"]\n'
        '[health]\neffort_pct = [90, 60]\n[health.b]\ntemperature_c = [45, 50, 55]\n')
    spec = parse_robot_toml(robot_file)
    limits = motor_limits(spec, HealthSettings())
    assert limits["a"] == HealthLimits((55.0, 60.0, 65.0), (90.0, 60.0))
    assert limits["b"].temperature_c == (45.0, 50.0, 55.0) and limits["b"].effort_pct == (90.0, 60.0)
    limits = motor_limits(spec, HealthSettings(temperature_c=[40, 45, 50], stall_s=1.5))
    assert limits["b"].temperature_c == (40.0, 45.0, 50.0) and limits["a"].stall_s == 1.5
    with pytest.raises(RunRefused, match="--temperature-c: expected 3 increasing numbers"):
        motor_limits(spec, HealthSettings(temperature_c=[60, 50, 70]))


def test_a_bad_health_table_is_one_line_naming_the_file_and_field(tmp_path):
    robot_file = tmp_path / "bad.toml"
    robot_file.write_text(
        'name = "arm"\n[[buses]]\nname = "main"\nfamily = "feetech"\nmotors = [{name = "a", id = 1, model = "sts3215"}]\n'
        '[[groups]]\nname = "arm"\njoints = ["a"]\n[health.a]\ntemperature_c = [50, 55]\n')
    with pytest.raises(RobotSpecError, match=r"bad.toml: health.a.temperature_c: expected 3 increasing numbers"):
        parse_robot_toml(robot_file)
    robot_file.write_text(robot_file.read_text().replace("[health.a]", "[health.z]"))
    with pytest.raises(RobotSpecError, match=r"health.z: unknown field"):
        parse_robot_toml(robot_file)


def test_the_poller_reads_only_when_the_read_fits_before_the_next_tick():
    spec = load_robot("so100")
    clock = RealClock()
    period = 0.01
    with simulate(spec) as ports, Robot(spec, ports) as robot:
        joints = [m.name for m in spec.motors]
        g = HealthGuard(joints, motor_limits(spec, HealthSettings()), np.full(6, 200.0))
        poller = HealthPoller(robot, g, health_hz=1000.0, period_s=period, clock=clock)
        poller.baseline()  # each group once: the costs (about a millisecond each here)
        assert all(g.state["gripper"].seen[k] == 1 for k in ("temperature", "effort", "voltage"))
        now = clock.now()
        roomy = TickTime(0, now, now, 0)  # the whole period left
        assert "health" in poller.monitor(roomy)
        now = clock.now()
        late = TickTime(1, now - period + 0.0005, now, 0)  # half a millisecond left: no read fits
        assert poller.monitor(late) == {"health_skipped": "effort"} and poller.skipped == 1
        assert not poller.blind_warned
        poller.last_read_s["temperature"] = poller.last_read_s["effort"] = poller.last_read_s["voltage"] = now - 3.0
        lines = []
        g.log = lines.append
        poller.monitor(TickTime(2, clock.now() - period + 0.0005, clock.now(), 0))
        assert len(lines) == 1 and "health: no" in lines[0] and "read for 3.0 s" in lines[0] and "--fps" in lines[0]
        summary = poller.summary(1.0)
        assert summary["reads"]["temperature"]["count"] == 2 and summary["reads"]["effort"]["count"] == 1
        assert summary["motors"]["gripper"]["peak_temperature_c"] is not None
