"""Each injected fault gives the documented behaviour: bounded retries, then one clear error; never a hang."""

import time

import pytest

from actsac.drivers.bus import make_bus
from actsac.drivers.errors import BusError, BusTimeoutError, ChecksumError, ConnectError, MotorStatusError
from actsac.drivers.robots import load_robot
from actsac.drivers.sim import Faults, simulate

FAMILIES = ["so100", "koch"]
BUDGET_S = 0.25  # the bus's default time budget for all tries of one operation


def connected_bus(spec, ports, **options):
    bus = make_bus(spec.buses[0], ports["main"], **options)
    bus.connect()
    return bus


def wait_for_sim_time(start, seconds):
    time.sleep(max(0.0, start + seconds - time.monotonic()))


def timed(call):
    start = time.monotonic()
    try:
        call()
    finally:
        timed.elapsed = time.monotonic() - start


@pytest.mark.parametrize("robot", FAMILIES)
def test_a_motor_whose_replies_are_dropped_fails_connect_by_name(robot):
    spec = load_robot(robot)
    with simulate(spec, faults=Faults(drop_prob=1.0, motors=("gripper",))) as ports:
        bus = make_bus(spec.buses[0], ports["main"])
        with pytest.raises(ConnectError) as info:
            timed(bus.connect)
        message = str(info.value)
        assert "gripper (ID 6)" in message and "timeout" in message and "after 3 tries" in message
        assert ports["main"] in message and "shoulder_pan" not in message
        assert timed.elapsed < 2.0


@pytest.mark.parametrize("robot", FAMILIES)
def test_random_drops_are_absorbed_by_retries(robot):
    spec = load_robot(robot)
    with simulate(spec, faults=Faults(drop_prob=0.05), seed=7) as ports:
        bus = connected_bus(spec, ports, retries=8, budget_s=1.0)
        for _ in range(30):
            assert len(bus.sync_read("Present_Position")) == 6
        bus.disconnect()


@pytest.mark.parametrize("robot", FAMILIES)
def test_corrupted_replies_raise_checksum_error_naming_the_motor(robot):
    spec = load_robot(robot)
    with simulate(spec, faults=Faults(corrupt_prob=1.0, motors=("elbow_flex",), start_after_s=1.0)) as ports:
        start = time.monotonic()  # the simulator started before this: its fault clock runs ahead
        bus = connected_bus(spec, ports)
        wait_for_sim_time(start, 1.05)
        with pytest.raises(ChecksumError) as info:
            timed(lambda: bus.read("Present_Position", "elbow_flex"))
        assert info.value.motors == ("elbow_flex",) and info.value.register == "Present_Position"
        assert "after 3 tries" in str(info.value) and timed.elapsed < BUDGET_S + 0.2
        assert bus.read("Present_Position", "wrist_flex") == 2048  # the other motors are fine


@pytest.mark.parametrize("robot", FAMILIES)
def test_late_replies(robot):
    spec = load_robot(robot)
    faults = Faults(late_prob=1.0, late_s=0.3, motors=("gripper",), start_after_s=1.0)
    with simulate(spec, faults=faults) as ports:
        start = time.monotonic()  # the simulator started before this: its fault clock runs ahead
        bus = connected_bus(spec, ports)
        wait_for_sim_time(start, 1.05)
        with pytest.raises(BusTimeoutError) as info:
            timed(lambda: bus.read("Present_Position", "gripper"))
        assert info.value.motors == ("gripper",) and timed.elapsed < BUDGET_S + 0.2
        time.sleep(0.4)  # the late replies land in the input buffer: they must not confuse the next operation
        assert bus.read("Present_Position", "shoulder_pan") == 2048
    with simulate(spec, faults=Faults(late_prob=1.0, late_s=0.005)) as ports:  # late but within the timeout
        bus = connected_bus(spec, ports)
        assert bus.sync_read("Present_Position")["gripper"] == 2500
        bus.disconnect()


@pytest.mark.parametrize("robot", FAMILIES)
def test_a_motor_that_goes_silent(robot):
    spec = load_robot(robot)
    with simulate(spec, faults=Faults(silent_after_s={"elbow_flex": 1.0})) as ports:
        start = time.monotonic()  # the simulator started before this: its fault clock runs ahead
        bus = connected_bus(spec, ports)
        assert len(bus.sync_read("Present_Position")) == 6
        wait_for_sim_time(start, 1.05)
        with pytest.raises(BusTimeoutError) as info:
            timed(lambda: bus.sync_read("Present_Position"))
        assert info.value.motors[0] == "elbow_flex" and "timeout" in str(info.value)
        assert timed.elapsed < BUDGET_S + 0.2
        others = [n for n in bus.motors if n != "elbow_flex"]
        assert len(bus.sync_read("Present_Position", others)) == 5
        with pytest.raises(BusTimeoutError):
            bus.disconnect()  # torque off is tried on every motor, then the silent one is reported
        assert not bus.is_connected


@pytest.mark.parametrize("robot", FAMILIES)
def test_hardware_error_bits_are_decoded(robot):
    spec = load_robot(robot)
    faults = Faults(hardware_errors={"wrist_flex": ("overload", "overheat")}, hardware_error_after_s=1.0)
    with simulate(spec, faults=faults) as ports:
        start = time.monotonic()  # the simulator started before this: its fault clock runs ahead
        bus = connected_bus(spec, ports)
        bus.enable_torque(["wrist_flex"])
        wait_for_sim_time(start, 1.05)
        with pytest.raises(MotorStatusError) as info:
            bus.sync_read("Present_Position")
        assert info.value.errors == ("overheat", "overload") and info.value.motors == ("wrist_flex",)
        assert "overheat, overload" in str(info.value)
        if bus.family == "dynamixel":  # a Dynamixel shuts its torque off on a hardware error
            with pytest.raises(MotorStatusError):
                bus.read("Torque_Enable", "wrist_flex")
            assert bus.sync_read("Torque_Enable", ["wrist_roll"]) == {"wrist_roll": 0}


@pytest.mark.parametrize("robot", FAMILIES)
def test_a_vanished_port_is_a_bus_error(robot):
    """An unplugged adapter or a dead simulator: the bus says so as a BusError naming the port (pyserial lets
    termios.error through from some calls), and disconnect still closes the port."""
    spec = load_robot(robot)
    with simulate(spec) as ports:
        bus = connected_bus(spec, ports)
    with pytest.raises(BusError) as info:
        bus.read("Present_Position", "gripper")
    assert ports["main"] in str(info.value)
    with pytest.raises(BusError):
        bus.disconnect()
    assert not bus.is_connected
