"""Calibration on (simulated) motors: apply only what differs, each family's homing sign, the whole flow."""

import io
import os
import threading

import pytest

from actsac.calibration import CalibrationError, apply_calibration
from actsac.calibration.motors import half_turn_offsets
from actsac.calibration.normalize import MotorCalibration
from actsac.calibration.procedure import EnterWatcher, LiveTable, calibrate
from actsac.drivers.bus import make_bus
from actsac.drivers.robots import load_robot
from actsac.drivers.sim import SweepHand, simulate

from .conftest import narrow_spec

REGISTERS = ("Homing_Offset", "Min_Position_Limit", "Max_Position_Limit")


@pytest.fixture(params=["so100", "koch"])
def sim_bus(request):
    """A connected bus of a simulated robot whose joints sit still at the middle of their sim range."""
    spec = load_robot(request.param)
    with simulate(spec) as ports:
        bus = make_bus(spec.buses[0], ports["main"])
        bus.connect()
        try:
            yield spec, bus
        finally:
            bus.disconnect()


def test_apply_writes_only_what_differs_in_each_familys_convention(sim_bus):
    spec, bus = sim_bus
    before = bus.sync_read("Present_Position")
    calibration = {m.name: MotorCalibration(m.id, 0, 100 * (i - 2), 500 + i, 3500 - i)
                   for i, m in enumerate(spec.motors)}
    bus.enable_torque(["gripper"])  # EEPROM writes need torque off: apply turns it off itself
    changes = apply_calibration(bus, calibration)
    assert set(changes) == set(REGISTERS)
    assert "elbow_flex" not in changes["Homing_Offset"]  # offset 0 already: not rewritten
    assert len(changes["Homing_Offset"]) == len(spec.motors) - 1
    for register, field in zip(REGISTERS, ("homing_offset", "range_min", "range_max")):
        assert bus.sync_read(register) == {n: getattr(c, field) for n, c in calibration.items()}
    assert bus.sync_read("Torque_Enable")["gripper"] == 0
    after = bus.sync_read("Present_Position")
    sign = -1 if bus.family == "feetech" else 1  # Feetech: Present = Actual - Offset; Dynamixel: + Offset
    for name, cal in calibration.items():
        assert abs(after[name] - (before[name] + sign * cal.homing_offset)) <= 2, name
    assert apply_calibration(bus, calibration) == {}  # second time: the motors already agree


def test_apply_refuses_an_offset_the_motor_cannot_store():
    spec = load_robot("so100")
    with simulate(spec) as ports:
        bus = make_bus(spec.buses[0], ports["main"])
        with bus:
            calibration = {m.name: MotorCalibration(m.id, 0, 0, 0, 4095) for m in spec.motors}
            calibration["elbow_flex"] = MotorCalibration(3, 0, 3000, 0, 4095)
            with pytest.raises(CalibrationError, match="motor 'elbow_flex': homing_offset 3000 is outside -2047..2047"):
                apply_calibration(bus, calibration)
            assert bus.sync_read("Homing_Offset")["shoulder_pan"] == 0  # nothing written


def test_half_turn_homing_reads_mid_scale(sim_bus):
    spec, bus = sim_bus
    offsets = half_turn_offsets(bus)
    assert bus.sync_read("Homing_Offset") == offsets
    for name, present in bus.sync_read("Present_Position").items():
        assert abs(present - 2047) <= 1, name


@pytest.mark.parametrize("robot", ["so100", "koch"])
def test_whole_flow_records_the_hands_motion(robot):
    """Scripted ENTER presses through a pipe, scripted joint motion from the simulator's sweeping hand."""
    period_s = 2.0
    spec = narrow_spec(load_robot(robot), 1200, 2900, full_turn=("wrist_roll",))
    read_fd, write_fd = os.pipe()
    keys = os.fdopen(write_fd, "w")
    out = io.StringIO()
    with simulate(spec, hand=SweepHand(period_s=period_s)) as ports, os.fdopen(read_fd) as stdin:
        buses = [make_bus(spec.buses[0], ports["main"])]
        buses[0].connect()
        try:
            keys.write("\n")  # "the arm is in the middle"
            keys.flush()
            finish = threading.Timer(period_s * 1.4, lambda: (keys.write("\n"), keys.flush()))
            finish.start()
            calibration = calibrate(buses, EnterWatcher(stdin), out, full_turn=["wrist_roll"])
            finish.join()
            limits = {r: buses[0].sync_read(r) for r in ("Min_Position_Limit", "Max_Position_Limit")}
        finally:
            buses[0].disconnect()
            keys.close()
    sign = -1 if spec.buses[0].family == "feetech" else 1
    for motor in spec.motors:
        cal = calibration[motor.name]
        assert cal.id == motor.id and cal.drive_mode == 0
        if motor.name == "wrist_roll":
            expected = (0, 4095)
        else:
            expected = tuple(v + sign * cal.homing_offset for v in (1200, 2900))
        assert abs(cal.range_min - expected[0]) <= 5 and abs(cal.range_max - expected[1]) <= 5, (motor.name, cal)
        assert (limits["Min_Position_Limit"][motor.name], limits["Max_Position_Limit"][motor.name]) == (
            cal.range_min, cal.range_max)
    text = out.getvalue()
    assert "press ENTER" in text and "gripper" in text.splitlines()[-1]


def test_a_joint_that_did_not_move_is_refused():
    spec = load_robot("so100")
    read_fd, write_fd = os.pipe()
    with simulate(spec) as ports, os.fdopen(read_fd) as stdin, os.fdopen(write_fd, "w") as keys:
        keys.write("\n\n")
        keys.flush()
        with make_bus(spec.buses[0], ports["main"]) as bus:
            with pytest.raises(CalibrationError, match="joint 'shoulder_pan' moved only 0 ticks"):
                calibrate([bus], EnterWatcher(stdin), io.StringIO(), full_turn=["wrist_roll"])


def test_enter_watcher_reports_end_of_input():
    watcher = EnterWatcher(io.StringIO("\n"))
    assert watcher.wait(timeout_s=5)
    with pytest.raises(EOFError):
        watcher.wait(timeout_s=5)
    with pytest.raises(EOFError):
        watcher.pressed()


def test_live_table_redraws_in_place_on_a_terminal():
    out = io.StringIO()
    table = LiveTable(out, ["joint", "current"], in_place=True)
    table.show([("a", 1)], force=True)
    table.show([("a", 2)], force=True)
    assert out.getvalue().count("\x1b[2F") == 1  # the second drawing moved the cursor back over the first
    piped = io.StringIO()
    quiet = LiveTable(piped, ["joint", "current"], in_place=False)
    quiet.show([("a", 1)], force=True)
    assert piped.getvalue() == ""
    quiet.final([("a", 3)])
    assert piped.getvalue().splitlines()[1].split() == ["a", "3"]
