"""The simulator's motor health over the real buses: effort, temperature, voltage, and the error bits and torque
cut a real servo answers with."""

import contextlib
import time

import pytest

from actsac.drivers.errors import MotorStatusError
from actsac.drivers.robot import Robot
from actsac.drivers.robots import load_robot
from actsac.drivers.sim import Faults, simulate
from actsac.drivers.tables import MODELS, Reg

NOMINAL_V = {"so100": dict.fromkeys(("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll",
                                     "gripper"), 7.4),
             "koch": {"shoulder_pan": 12.0, "shoulder_lift": 12.0, "elbow_flex": 5.0, "wrist_flex": 5.0,
                      "wrist_roll": 5.0, "gripper": 5.0}}


def active_robot(stack, name, faults):
    spec = load_robot(name)
    ports = stack.enter_context(simulate(spec, faults=faults))
    robot = stack.enter_context(Robot(spec, ports))
    robot.activate()
    return robot


def test_the_factory_temperature_limits_are_the_models_ratings():
    for model in MODELS.values():
        assert model.defaults[Reg.Max_Temperature_Limit] == model.ratings.temperature_limit_c, model.name


@pytest.mark.parametrize("robot_name", ["so100", "koch"])
def test_free_motors_read_ambient_temperature_nominal_voltage_and_little_effort(robot_name):
    with contextlib.ExitStack() as stack:
        robot = active_robot(stack, robot_name, None)
        robot.write_goals({"elbow_flex": 30.0})
        time.sleep(0.5)
        assert set(robot.read_health("temperature").values()) == {30.0}
        assert robot.read_health("voltage") == NOMINAL_V[robot_name]
        assert max(abs(v) for v in robot.read_health("effort").values()) < 5.0  # arrived: at rest


@pytest.mark.parametrize("robot_name, block, goal, sign", [
    pytest.param("so100", 40.0, 10.0, -1, id="so100-closing"),
    pytest.param("so100", 60.0, 90.0, 1, id="so100-opening"),
    pytest.param("koch", 40.0, 10.0, -1, id="koch-closing"),
])
def test_a_blocked_gripper_stays_at_its_block_pushes_toward_its_goal_and_heats(robot_name, block, goal, sign):
    faults = Faults(blocked={"gripper": block}, heat_scale={"gripper": 20.0})  # 20x: about 15 degC a second
    with contextlib.ExitStack() as stack:
        robot = active_robot(stack, robot_name, faults)
        robot.write_goals({"gripper": goal})
        time.sleep(0.4)
        assert robot.read_positions()["gripper"] == pytest.approx(block, abs=0.2)
        assert robot.read_health("effort")["gripper"] == pytest.approx(sign * 100.0)
        warm = robot.read_health("temperature")
        time.sleep(0.6)
        hot = robot.read_health("temperature")
        assert hot["gripper"] > warm["gripper"] + 5 and hot["elbow_flex"] == 30.0
        assert robot.read_positions()["gripper"] == pytest.approx(block, abs=0.2)
        robot.write_goals({"gripper": 50.0})  # back off to the free side: it moves, the effort goes
        time.sleep(0.4)
        assert robot.read_positions()["gripper"] == pytest.approx(50.0, abs=0.2)
        assert abs(robot.read_health("effort")["gripper"]) < 5.0


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
        torque, error = torque_enable(robot.buses["main"], 6)
        assert torque == 0 and error


def torque_enable(bus, motor_id: int) -> tuple[int, int]:
    """(Torque_Enable, the reply's error byte), read past the error bits (the bus API raises on them; the value
    is in the reply all the same): the Dynamixel SDK's own read, a Feetech packet by hand."""
    address = bus.models["gripper"].register(Reg.Torque_Enable).address
    if bus.family == "dynamixel":
        bus._port.is_using = False
        value, result, error = bus._packets.read1ByteTxRx(bus._port, motor_id, address)
        assert result == 0
        return value, error
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
            return status.params[0], status.code
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
        assert torque_enable(robot.buses["main"], 4) == (1, 0x01)  # not an unloading condition: torque stays


def test_a_dynamixel_cuts_torque_on_a_voltage_error_only_where_its_shutdown_says_so():
    """XL430 factory Shutdown 52 leaves input voltage out (torque stays on); XL330's 53 includes it."""
    faults = Faults(voltage_drop={"shoulder_pan": 5.0, "wrist_flex": 3.0}, voltage_drop_after_s=0.3)
    with contextlib.ExitStack() as stack:
        robot = active_robot(stack, "koch", faults)
        time.sleep(0.4)
        with pytest.raises(MotorStatusError) as info:
            robot.read_health("voltage")
        assert info.value.errors == ("input voltage",)
        assert set(info.value.motors) == {"shoulder_pan", "wrist_flex"}
        robot.write_goals({"shoulder_pan": 10.0})  # a write does not cut it either
        bus = robot.buses["main"]
        assert torque_enable(bus, 1)[0] == 1 and torque_enable(bus, 4)[0] == 0


@pytest.mark.parametrize("robot_name", ["so100", "koch"])
def test_a_stalled_motor_stays_where_it_stuck_and_pushes(robot_name):
    faults = Faults(stalled_after_s={"elbow_flex": 0.0})
    with contextlib.ExitStack() as stack:
        robot = active_robot(stack, robot_name, faults)
        before = robot.read_positions()["elbow_flex"]
        robot.write_goals({"elbow_flex": before + 20.0})
        time.sleep(0.5)
        assert robot.read_positions()["elbow_flex"] == pytest.approx(before, abs=0.2)
        assert robot.read_health("effort")["elbow_flex"] == pytest.approx(100.0)
