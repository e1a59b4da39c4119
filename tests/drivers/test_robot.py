"""Robot: user units through the calibration, hardware states, several buses driven concurrently."""

import time

import pytest

from actsac.drivers.units import MotorCalibration
from actsac.drivers.errors import RobotStateError
from actsac.drivers.robot import Robot
from actsac.drivers.robots import load_robot
from actsac.drivers.sim import simulate


@pytest.fixture(scope="module")
def upper_body():
    spec = load_robot("upper_body")
    with simulate(spec) as ports:
        yield spec, ports


def settle(robot, goals, tolerance, timeout_s=3.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        positions = robot.read_positions()
        if all(abs(positions[j] - g) <= tolerance for j, g in goals.items()):
            return positions
        time.sleep(0.02)
    raise AssertionError(f"joints did not reach {goals}: {positions}")


def test_so100_in_user_units_and_states(sim_robot):
    spec, ports = sim_robot
    robot = Robot(spec, ports)
    with pytest.raises(RobotStateError, match="disconnected"):
        robot.read_positions()
    with robot:
        positions = robot.read_positions()
        expected = {**{j: 0.0 for j in spec.joint_names[:5]}, "gripper": 50.0}  # mid-range
        assert positions == pytest.approx(expected, abs=0.05)
        with pytest.raises(RobotStateError, match="is connected; this needs it active"):
            robot.write_goals({"gripper": 10.0})
        robot.enable_torque()
        assert robot.state == "active"
        robot.write_goals({"shoulder_pan": 50.0, "gripper": 10.0})
        settle(robot, {"shoulder_pan": 50.0, "gripper": 10.0, "elbow_flex": 0.0}, tolerance=0.2)
        with pytest.raises(KeyError, match="no joint 'tail'"):
            robot.write_goals({"tail": 1.0})
    assert robot.state == "disconnected"
    with Robot(spec, ports) as check:  # leaving the block turned torque off
        assert set(check.read_raw("Torque_Enable").values()) == {0}
    robot.close()


def test_a_calibration_file_changes_the_units(sim_robot):
    spec, ports = sim_robot
    calibration = {m.name: MotorCalibration(m.id, 1, 0, 1048, 3048) for m in spec.motors}  # drive_mode 1: inverted
    with Robot(spec, ports, calibration) as robot:
        raw = robot.read_raw("Present_Position")
        positions = robot.read_positions()
        assert positions["shoulder_pan"] == pytest.approx(-((raw["shoulder_pan"] - 1048) / 2000 * 200 - 100))
    with pytest.raises(ValueError, match="no calibration for motor 'gripper'"):
        Robot(spec, ports, {k: v for k, v in calibration.items() if k != "gripper"})
    with pytest.raises(ValueError, match="no port given for bus main"):
        Robot(spec, {})


def test_composite_robot_on_three_simulated_buses(upper_body):
    spec, ports = upper_body
    assert set(ports) == {"arm", "torso", "hand"}
    with Robot(spec, ports) as robot:
        positions = robot.read_positions()
        assert len(positions) == 32
        assert positions["arm_3"] == 0.0 and positions["torso_0"] == 0.0 and positions["hand_5"] == 50.0
        robot.enable_torque()
        goals = {"arm_0": 40.0, "arm_13": -30.0, "torso_2": 12.0, "hand_0": 80.0, "hand_11": 5.0}
        robot.write_goals(goals)
        settle(robot, goals, tolerance=0.2)
        robot.disable_torque()
        assert robot.state == "connected"
        assert set(robot.read_raw("Torque_Enable").values()) == {0}


def test_composite_connect_failure_releases_every_port(upper_body):
    spec, ports = upper_body
    bad_ports = {**ports, "hand": "/dev/does-not-exist"}
    robot = Robot(spec, bad_ports)
    with pytest.raises(Exception, match="/dev/does-not-exist"):
        robot.connect()
    assert all(not bus.is_connected for bus in robot.buses.values())
    with Robot(spec, ports) as again:  # the other buses' ports were closed and can be reopened
        assert len(again.read_positions()) == 32


def test_hand_sweeps_torque_off_joints_through_their_range():
    spec = load_robot("so100")
    with simulate(spec, hand="sweep", wire_time=False) as ports:
        with Robot(spec, ports) as robot:
            low = {m.name: 1e9 for m in spec.motors}
            high = {m.name: -1e9 for m in spec.motors}
            deadline = time.monotonic() + 3.5  # a little more than one 3 s period
            while time.monotonic() < deadline:
                for name, raw in robot.read_raw("Present_Position").items():
                    low[name], high[name] = min(low[name], raw), max(high[name], raw)
                time.sleep(0.01)
            for motor in spec.motors:
                cal = motor.sim_calibration
                span = cal.range_max - cal.range_min
                assert low[motor.name] <= cal.range_min + 0.05 * span, motor.name
                assert high[motor.name] >= cal.range_max - 0.05 * span, motor.name
                assert cal.range_min - 0.02 * span <= low[motor.name] <= high[motor.name] <= cal.range_max + 0.02 * span
            robot.enable_torque()  # torque on: the hand lets go and the joint holds
            held = robot.read_raw("Present_Position")
            time.sleep(0.2)
            after = robot.read_raw("Present_Position")
            assert all(abs(after[n] - held[n]) <= 1 for n in held)
