"""The simulator's motor health over the real buses: effort, temperature, voltage, and the error bits and torque
cut a real servo answers with."""

import contextlib
import time

import pytest

from actsac.drivers.errors import MotorStatusError
from actsac.drivers.robot import Robot
from actsac.drivers.robots import load_robot
from actsac.drivers.sim import Faults, simulate
from actsac.drivers.tables import Reg


def active_robot(stack, name, faults):
    spec = load_robot(name)
    ports = stack.enter_context(simulate(spec, faults=faults))
    robot = stack.enter_context(Robot(spec, ports))
    robot.activate()
    return robot


def test_free_motors_read_ambient_temperature_nominal_voltage_and_little_effort():
    with contextlib.ExitStack() as stack:
        robot = active_robot(stack, "koch", None)
        robot.write_goals({"elbow_flex": 30.0})
        time.sleep(0.5)
        assert set(robot.read_health("temperature").values()) == {30.0}
        assert robot.read_health("voltage") == {"shoulder_pan": 12.0, "shoulder_lift": 12.0, "elbow_flex": 5.0,
                                                "wrist_flex": 5.0, "wrist_roll": 5.0, "gripper": 5.0}
        assert max(abs(v) for v in robot.read_health("effort").values()) < 5.0  # arrived: at rest


@pytest.mark.parametrize("robot_name", ["so100", "koch"])
def test_an_overheated_motor_reports_overheat_and_drops_torque(robot_name):
    faults = Faults(blocked={"gripper": 40.0}, heat_scale={"gripper": 60.0})
    with contextlib.ExitStack() as stack:
        robot = active_robot(stack, robot_name, faults)
        robot.write_goals({"gripper": 10.0})
        deadline = time.monotonic() + 10.0
        with pytest.raises(MotorStatusError) as info:
            while time.monotonic() < deadline:
                robot.read_positions()
                time.sleep(0.05)
        assert info.value.errors == ("overheat",) and info.value.motors == ("gripper",)
        assert torque_enable(robot.buses["main"], 6) == 0


def torque_enable(bus, motor_id: int) -> int:
    """Torque_Enable read past the error bits (the bus API raises on them; the value is in the reply all the
    same): a Feetech packet by hand, the Dynamixel SDK's own read, which returns the error byte."""
    address = bus.models["gripper"].register(Reg.Torque_Enable).address
    if bus.family == "dynamixel":
        bus._port.is_using = False
        value, result, _ = bus._packets.read1ByteTxRx(bus._port, motor_id, address)
        assert result == 0
        return value
    from actsac.drivers import feetech_protocol as proto
    from actsac.drivers.bus import read_available

    bus._flush()
    bus._serial.write(proto.read(motor_id, address, 1))
    data = b""
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        data += read_available(bus._serial.fileno(), 64, 0.05)
        kind, status, _ = proto.parse(data)
        if kind == "packet":
            assert status.code & 0x04  # the overheat bit, in the reply to a plain read too
            return status.params[0]
    raise AssertionError("no reply")


def test_a_voltage_drop_below_the_limit_reports_input_voltage():
    faults = Faults(voltage_drop={"wrist_flex": 3.0}, voltage_drop_after_s=0.5)
    with contextlib.ExitStack() as stack:
        robot = active_robot(stack, "so100", faults)
        assert robot.read_health("voltage")["wrist_flex"] == 7.4
        time.sleep(0.6)
        with pytest.raises(MotorStatusError) as info:
            robot.read_health("voltage")
        assert info.value.errors == ("input voltage",) and info.value.motors == ("wrist_flex",)


def test_a_stalled_motor_stays_where_it_stuck_and_pushes():
    faults = Faults(stalled_after_s={"elbow_flex": 0.0})
    with contextlib.ExitStack() as stack:
        robot = active_robot(stack, "so100", faults)
        before = robot.read_positions()["elbow_flex"]
        robot.write_goals({"elbow_flex": before + 20.0})
        time.sleep(0.5)
        assert robot.read_positions()["elbow_flex"] == pytest.approx(before, abs=0.2)
        assert robot.read_health("effort")["elbow_flex"] == pytest.approx(100.0)
