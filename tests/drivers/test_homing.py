"""Calibration on (simulated) motors: apply only what differs, each family's homing sign, half-turn homing."""

import pytest

from actsac.drivers.bus import make_bus
from actsac.drivers.errors import CalibrationError
from actsac.drivers.homing import apply_calibration, half_turn_offsets
from actsac.drivers.robots import load_robot
from actsac.drivers.sim import simulate
from actsac.drivers.units import MotorCalibration

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
