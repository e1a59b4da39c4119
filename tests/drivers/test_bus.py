"""The project's buses against the simulator, for both families: real bytes over a pseudo-terminal."""

import dataclasses
import os
import subprocess
import time

import pytest

from actsac.drivers.errors import BusError, ConnectError, MotorStatusError
from actsac.drivers.robots import MotorSpec

from .conftest import bus_for


def wait_until(condition, timeout_s=3.0, poll_s=0.005):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(poll_s)
    return False


@pytest.fixture
def bus(sim_robot):
    spec, ports = sim_robot
    bus = bus_for(spec, ports)
    bus.connect()
    yield bus
    bus.disconnect()


def test_connect_pings_and_checks_models(bus, sim_robot):
    spec, _ = sim_robot
    assert bus.is_connected
    for motor in spec.motors:
        assert bus.ping(motor.name) == bus.models[motor.name].model_number
        assert bus.read("ID", motor.name) == motor.id


def test_sync_read_starts_mid_range(bus, sim_robot):
    spec, _ = sim_robot
    positions = bus.sync_read("Present_Position")
    for motor in spec.motors:
        cal = motor.sim_calibration
        assert abs(positions[motor.name] - (cal.range_min + cal.range_max) / 2) <= 1
    assert set(bus.sync_read("Present_Position", ["gripper", "elbow_flex"])) == {"gripper", "elbow_flex"}


def test_sync_write_moves_only_with_torque(bus):
    start = bus.sync_read("Present_Position")
    goals = {"shoulder_pan": start["shoulder_pan"] + 300, "wrist_flex": start["wrist_flex"] - 200}
    bus.sync_write("Goal_Position", goals)  # torque off: the joints stay where they are
    time.sleep(0.2)
    assert bus.sync_read("Present_Position", goals) == {n: start[n] for n in goals}
    bus.enable_torque()
    assert bus.sync_read("Torque_Enable") == {n: 1 for n in bus.motors}
    bus.sync_write("Goal_Position", goals)
    assert wait_until(lambda: bus.sync_read("Present_Position", goals) == goals)
    assert bus.sync_read("Present_Velocity", goals) == {n: 0 for n in goals}
    bus.sync_write("Goal_Position", {n: start[n] for n in goals})
    assert wait_until(lambda: (lambda v: v["shoulder_pan"] < 0 < v["wrist_flex"])(
        bus.sync_read("Present_Velocity", goals)), timeout_s=0.2)  # on the way back: signed velocities
    bus.disable_torque()
    assert bus.sync_read("Torque_Enable") == {n: 0 for n in bus.motors}
    held = bus.sync_read("Present_Position", goals)
    time.sleep(0.1)
    assert bus.sync_read("Present_Position", goals) == held


def test_torque_on_holds_the_present_pose(bus):
    bus.sync_write("Goal_Position", {"elbow_flex": 1100})  # a stale goal written with torque off
    bus.enable_torque(["elbow_flex"])
    present = bus.read("Present_Position", "elbow_flex")
    assert bus.read("Goal_Position", "elbow_flex") == present
    time.sleep(0.1)
    assert bus.read("Present_Position", "elbow_flex") == present


def test_goal_is_clamped_to_position_limits(bus):
    bus.write("Max_Position_Limit", "shoulder_lift", 2200)
    bus.enable_torque(["shoulder_lift"])
    bus.write("Goal_Position", "shoulder_lift", 3000)
    assert wait_until(lambda: bus.read("Present_Position", "shoulder_lift") == 2200)
    time.sleep(0.1)
    assert bus.read("Present_Position", "shoulder_lift") == 2200
    bus.disable_torque(["shoulder_lift"])
    bus.write("Max_Position_Limit", "shoulder_lift", 3072)


def test_homing_offset_sign_per_family(bus):
    actual = bus.read("Present_Position", "wrist_roll")  # offset 0: present == actual
    bus.write("Homing_Offset", "wrist_roll", -100)
    assert bus.read("Homing_Offset", "wrist_roll") == -100  # sign-magnitude / two's complement round trip
    present = bus.read("Present_Position", "wrist_roll")
    if bus.family == "feetech":
        assert present == actual + 100  # Present = Actual - Homing_Offset
    else:
        assert present == actual - 100  # Present = Actual + Homing_Offset
    bus.write("Homing_Offset", "wrist_roll", 0)


def test_eeprom_writes_with_torque_on(bus):
    bus.enable_torque(["gripper"])
    if bus.family == "feetech":  # no access error on Feetech: the write is taken
        bus.write("Homing_Offset", "gripper", 10)
        assert bus.read("Homing_Offset", "gripper") == 10
        bus.write("Homing_Offset", "gripper", 0)
        bus.disable_torque(["gripper"])
        return
    with pytest.raises(MotorStatusError, match="access error") as info:
        bus.write("Homing_Offset", "gripper", 10)
    assert info.value.motors == ("gripper",) and info.value.register == "Homing_Offset"
    assert bus.port in str(info.value)
    bus.disable_torque(["gripper"])
    bus.write("Homing_Offset", "gripper", 10)
    assert bus.read("Homing_Offset", "gripper") == 10
    bus.write("Homing_Offset", "gripper", 0)


@pytest.mark.parametrize("sim_robot", ["koch"], indirect=True)
def test_dynamixel_plain_sync_read_matches_fast(sim_robot, bus):
    spec, ports = sim_robot
    assert bus.fast_sync_read  # the simulated firmware supports it
    fast = bus.sync_read("Present_Position")
    bus.disconnect()
    plain = bus_for(spec, ports, use_fast_sync_read=False)
    plain.connect()
    try:
        assert not plain.fast_sync_read
        assert plain.sync_read("Present_Position") == fast
    finally:
        plain.disconnect()
        bus.connect()


def test_port_is_exclusive(bus, sim_robot):
    spec, ports = sim_robot
    second = bus_for(spec, ports)
    with pytest.raises(ConnectError, match="in use by another process"):
        second.connect()


def _plain_open(port: str) -> subprocess.CompletedProcess:
    """A program that is not actsac (the shell) opening the port read-write, as a vendor SDK script would; as
    an unprivileged user, since the kernel's exclusive mode does not stop root."""
    run_as = {}
    if os.geteuid() == 0:
        os.chmod(port, 0o666)  # a pty is root's: let the unprivileged client reach the open() call at all
        run_as = {"user": 65534, "group": 65534, "extra_groups": []}
    return subprocess.run(["/bin/sh", "-c", 'exec 3<>"$1"', "sh", port], capture_output=True, text=True,
                          timeout=10, **run_as)


def test_another_program_cannot_open_the_port_while_a_bus_holds_it(bus, sim_robot):
    spec, ports = sim_robot
    port = ports[spec.buses[0].name]
    held = _plain_open(port)
    assert held.returncode != 0 and "busy" in held.stderr.lower(), held.stderr
    bus.disconnect()  # closing the bus lifts the kernel's exclusive mode: the port is usable again
    try:
        released = _plain_open(port)
        assert released.returncode == 0, released.stderr
    finally:
        bus.connect()


def test_a_bus_of_the_other_protocol_is_one_short_line(sim_robot):
    """koch's Dynamixel bus on the so100's Feetech port (and the other way round): no motor answers at all,
    which says one thing, not six ping timeouts."""
    from actsac.drivers.bus import make_bus
    from actsac.drivers.robots import load_robot

    spec, ports = sim_robot
    other = load_robot("koch" if spec.name == "so100" else "so100").buses[0]
    bus = make_bus(other, ports[spec.buses[0].name], timeout_s=0.01)
    with pytest.raises(ConnectError) as info:
        bus.connect()
    message = str(info.value)
    assert f"no motor answered a {other.family} ping" in message and "a wrong --robot" in message
    assert "\n" not in message and len(message) < 300 and "gave no valid answer" not in message
    assert not bus.is_connected


def test_missing_and_wrong_motors_are_named(sim_robot):
    spec, ports = sim_robot
    bus_spec = spec.buses[0]
    other_model = "xl430-w250" if bus_spec.family == "dynamixel" else None
    motors = list(bus_spec.motors) + [MotorSpec("ghost", 9, bus_spec.motors[0].model)]
    if other_model:  # the gripper of the koch is an XL330: claim an XL430
        motors[5] = dataclasses.replace(motors[5], model=other_model)
    wrong = dataclasses.replace(bus_spec, motors=tuple(motors))
    from actsac.drivers.bus import make_bus

    bus = make_bus(wrong, ports[bus_spec.name], timeout_s=0.01)
    start = time.monotonic()
    with pytest.raises(ConnectError) as info:
        bus.connect()
    assert time.monotonic() - start < 2.0
    message = str(info.value)
    assert "ghost (ID 9) gave no valid answer to ping" in message and ports[bus_spec.name] in message
    if other_model:
        assert "gripper (ID 6) is model number 1200, expected 1060" in message
    assert not bus.is_connected
    bus_for(spec, ports).connect()  # the port was released


def test_user_mistakes_fail_early(bus):
    with pytest.raises(KeyError, match="did you mean"):
        bus.read("Goal_Positon", "gripper")
    with pytest.raises(KeyError, match="no motor 'thumb'"):
        bus.sync_read("Present_Position", ["thumb"])
    with pytest.raises(ValueError, match="read-only"):
        bus.write("Present_Position", "gripper", 1)
    bus.disconnect()
    with pytest.raises(BusError, match="not connected"):
        bus.read("Present_Position", "gripper")
    bus.connect()


def test_disconnect_turns_torque_off(sim_robot):
    spec, ports = sim_robot
    bus = bus_for(spec, ports)
    bus.connect()
    bus.enable_torque()
    bus.disconnect()
    check = bus_for(spec, ports)
    with check:
        assert set(check.sync_read("Torque_Enable").values()) == {0}


def test_wire_time_and_return_delay_are_emulated(bus):
    """Lower bounds only (speed itself is measured by actsac-bench --bus): the bytes of a 6-motor sync
    read cannot arrive before the baud rate allows, and a return delay adds to every reply."""
    from actsac.drivers import dynamixel_protocol as dxl
    from actsac.drivers import feetech_protocol as fts

    ids = [m.id for m in bus.motors.values()]
    if bus.family == "feetech":
        n_bytes = len(fts.sync_read(ids, 56, 2)) + len(ids) * (fts.STATUS_OVERHEAD + 2)
    else:  # Fast Sync Read: one packet with (error, id, 4 data bytes, crc) per motor
        n_bytes = len(dxl.sync_read(ids, 132, 4, fast=True)) + 8 + len(ids) * 8
    floor_s = n_bytes * 10 / 1_000_000
    start = time.perf_counter()
    bus.sync_read("Present_Position")
    assert time.perf_counter() - start >= floor_s
    bus.write("Return_Delay_Time", "gripper", 250)  # 250 x 2 us
    try:
        start = time.perf_counter()
        bus.read("Present_Position", "gripper")
        assert time.perf_counter() - start >= 500e-6
    finally:
        bus.write("Return_Delay_Time", "gripper", 0)


@pytest.mark.parametrize("sim_robot", ["so100"], indirect=True)  # Dynamixel: see test_sdk_clients.py
def test_feetech_broadcast_ping_answers_in_id_order(sim_robot):
    spec, ports = sim_robot
    from actsac.drivers import feetech_protocol as fts
    from actsac.drivers.bus import open_serial, read_available

    port = open_serial(ports["main"], 1_000_000)
    try:
        port.write(fts.ping(fts.BROADCAST_ID))
        data, deadline = b"", time.monotonic() + 2.0
        while len(data) < 36 and time.monotonic() < deadline:
            data += read_available(port.fileno(), 64, 0.1)
        assert data == b"".join(fts.status(i) for i in range(1, 7))
    finally:
        port.close()
