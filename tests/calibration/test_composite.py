"""A composite robot (three buses, both families): the whole flow covers every bus, and a saved calibration
applied through a connected ``Robot`` reaches every bus and reads back in user units."""

import io
import os
import threading

import numpy as np

from actsac.calibration import load_calibration, save_calibration
from actsac.calibration.procedure import EnterWatcher, calibrate
from actsac.drivers.bus import make_bus
from actsac.drivers.robot import Robot
from actsac.drivers.robots import load_robot
from actsac.drivers.sim import SweepHand, simulate
from actsac.drivers.tables import motor_model
from actsac.drivers.units import MotorCalibration, normalize

from .conftest import narrow_spec

LOW, HIGH = 1300, 2800  # the simulated hand sweeps every joint through this range (actual ticks)
PERIOD_S = 2.0


def test_whole_flow_covers_every_bus_of_a_composite_robot(tmp_path):
    spec = narrow_spec(load_robot("upper_body"), LOW, HIGH)
    assert {b.family for b in spec.buses} == {"feetech", "dynamixel"} and len(spec.buses) == 3
    read_fd, write_fd = os.pipe()
    with simulate(spec, hand=SweepHand(period_s=PERIOD_S)) as ports, os.fdopen(read_fd) as stdin, \
            os.fdopen(write_fd, "w") as keys:
        buses = [make_bus(b, ports[b.name]) for b in spec.buses]
        try:
            for bus in buses:
                bus.connect()
            keys.write("\n")  # "the arm is in the middle"
            keys.flush()
            done = threading.Timer(PERIOD_S * 1.4, lambda: (keys.write("\n"), keys.flush()))
            done.start()
            calibration = calibrate(buses, EnterWatcher(stdin), io.StringIO())
            done.join()
            held = {r: {} for r in ("Homing_Offset", "Min_Position_Limit", "Max_Position_Limit")}
            for bus in buses:
                for register in held:
                    held[register].update(bus.sync_read(register))
        finally:
            for bus in buses:
                bus.disconnect()
    assert list(calibration) == [m.name for m in spec.motors]
    for bus_spec in spec.buses:
        sign = -1 if bus_spec.family == "feetech" else 1  # Feetech: Present = Actual - Offset; Dynamixel: +
        for motor in bus_spec.motors:
            cal = calibration[motor.name]
            assert cal.id == motor.id, motor.name
            assert abs(cal.range_min - (LOW + sign * cal.homing_offset)) <= 5, (motor.name, cal)
            assert abs(cal.range_max - (HIGH + sign * cal.homing_offset)) <= 5, (motor.name, cal)
            assert (held["Homing_Offset"][motor.name], held["Min_Position_Limit"][motor.name],
                    held["Max_Position_Limit"][motor.name]) == (cal.homing_offset, cal.range_min, cal.range_max)
    path = save_calibration(tmp_path / "upper_body.json", calibration)
    assert load_calibration(path, spec) == calibration  # the file validates against the robot it came from


def test_configure_reaches_every_bus_and_reads_back_in_user_units(tmp_path):
    spec = load_robot("upper_body")
    resolution = {m.name: motor_model(m.model).resolution for m in spec.motors}
    with simulate(spec) as ports:  # no hand: the joints sit still at the middle of their sim range
        probe = Robot(spec, ports)  # the motors' factory state (offsets 0), read before anything is written
        try:
            probe.connect()
            actual = probe.read_raw("Present_Position")
        finally:
            probe.close()
        # A calibration homing each joint to 2047 with a +-600 tick range, as actsac-calibrate would produce.
        calibration = {}
        for bus_spec in spec.buses:
            for m in bus_spec.motors:
                half = (resolution[m.name] - 1) // 2
                offset = actual[m.name] - half if bus_spec.family == "feetech" else half - actual[m.name]
                calibration[m.name] = MotorCalibration(m.id, m.id % 2, offset, half - 600, half + 600)
        path = save_calibration(tmp_path / "cal.json", calibration)
        loaded = load_calibration(path, spec)
        robot = Robot(spec, ports, loaded)
        try:
            robot.connect()
            changes = robot.configure()  # the robot's calibration, on every bus
            assert set(changes["Homing_Offset"]) == {m.name for m in spec.motors if loaded[m.name].homing_offset}
            assert set(changes["Min_Position_Limit"]) == {m.name for m in spec.motors}
            assert robot.configure() == {}  # the second time writes nothing (EEPROM wear)
            raw = robot.read_raw("Present_Position")
            for name, value in raw.items():
                assert abs(value - 2047) <= 2, name  # homed to mid-scale on every bus, in each convention
            positions = robot.read_positions()
            for m in spec.motors:
                expected = normalize(raw[m.name], loaded[m.name], m.norm_mode, resolution[m.name])
                assert np.isclose(positions[m.name], expected, atol=1.0), m.name
                middle = 50.0 if m.norm_mode == "range_0_100" else 0.0  # mid-scale is the range's middle
                assert abs(positions[m.name] - middle) <= 1.0, (m.name, m.norm_mode, positions[m.name])
        finally:
            robot.close()
