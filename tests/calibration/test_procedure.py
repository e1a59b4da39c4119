"""The interactive calibration flow on (simulated) motors: the scripted hand's sweep recorded, refusals."""

import io
import os
import threading

import pytest

from actsac.calibration import CalibrationError
from actsac.calibration import procedure
from actsac.calibration.procedure import EnterWatcher, LiveTable, calibrate
from actsac.drivers.bus import make_bus
from actsac.drivers.robots import load_robot
from actsac.drivers.sim import SweepHand, simulate

from .conftest import narrow_spec


def run_flow(spec, period_s: float, **calibrate_options):
    """The flow on the simulated ``main`` bus: ENTER at once ("the arm is in the middle"), ENTER again after
    1.4 sweeps of the scripted hand; (calibration, the limits on the motors, what was printed)."""
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
            calibration = calibrate(buses, EnterWatcher(stdin), out, **calibrate_options)
            finish.join()
            limits = {r: buses[0].sync_read(r) for r in ("Min_Position_Limit", "Max_Position_Limit")}
        finally:
            buses[0].disconnect()
            keys.close()
    return calibration, limits, out


@pytest.mark.parametrize("robot", ["so100", "koch"])
def test_whole_flow_records_the_hands_motion(robot):
    """Scripted ENTER presses through a pipe, scripted joint motion from the simulator's sweeping hand."""
    spec = narrow_spec(load_robot(robot), 1200, 2900, full_turn=("wrist_roll",))
    calibration, limits, out = run_flow(spec, 2.0, full_turn=["wrist_roll"])
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


def test_a_robot_files_full_turn_joints_are_the_default(tmp_path):
    """``full_turn = true`` in a robot TOML reaches calibrate() without --full-turn: the joint sweeps almost a
    whole turn (which refuses a joint with end stops: it leaves the encoder's window) and gets the whole turn."""
    path = tmp_path / "two.toml"
    path.write_text('''
[[buses]]
name = "main"
family = "feetech"
motors = [{name = "elbow", id = 1, model = "sts3215", sim_range = [1200, 2900]},
          {name = "roll", id = 2, model = "sts3215", sim_range = [100, 3995], full_turn = true}]
[[groups]]
name = "arm"
joints = ["elbow", "roll"]
''')
    spec = load_robot(str(path))
    calibration, _, _ = run_flow(spec, 1.5)
    roll, elbow = calibration["roll"], calibration["elbow"]
    assert (roll.range_min, roll.range_max) == (0, 4095)
    assert abs((elbow.range_max - elbow.range_min) - (2900 - 1200)) <= 10, elbow


def test_a_joint_that_did_not_move_is_refused():
    spec = load_robot("so100")
    read_fd, write_fd = os.pipe()
    with simulate(spec) as ports, os.fdopen(read_fd) as stdin, os.fdopen(write_fd, "w") as keys:
        keys.write("\n\n")
        keys.flush()
        with make_bus(spec.buses[0], ports["main"]) as bus:
            with pytest.raises(CalibrationError, match="joint 'shoulder_pan' spans only 0 ticks"):
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


# The numbers: ENTER piped early saved these (every other joint swept 1000..3000).
EARLY_ENTER = {"shoulder_lift": (1948, 2062), "shoulder_pan": (2059, 2489)}


@pytest.mark.parametrize("joint, expected", [
    ("shoulder_lift", r"joint 'shoulder_lift' spans only 114 ticks \(1948\.\.2062\), under the minimum 410 "
                      r"\(10% of its 4096-tick turn\)"),
    ("shoulder_pan", r"joint 'shoulder_pan' range 2059\.\.2489 does not contain the homed centre 2047"),
])
def test_a_range_too_narrow_or_missing_the_centre_is_refused_before_any_limit_is_written(monkeypatch, joint,
                                                                                         expected):
    spec = load_robot("so100")
    lo, hi = EARLY_ENTER[joint]

    def recorded(buses, done, on_sample):  # what the sampling loop saw, without waiting for a sweep
        names = [m.name for m in spec.motors]
        return ({n: lo if n == joint else 1000 for n in names}, {n: hi if n == joint else 3000 for n in names}, set())

    monkeypatch.setattr(procedure, "record_ranges", recorded)
    with simulate(spec) as ports, make_bus(spec.buses[0], ports["main"]) as bus:
        before = {r: bus.sync_read(r) for r in ("Min_Position_Limit", "Max_Position_Limit")}
        with pytest.raises(CalibrationError, match=expected):
            calibrate([bus], EnterWatcher(io.StringIO("\n")), io.StringIO())
        assert {r: bus.sync_read(r) for r in before} == before


def test_a_full_sweep_of_a_narrow_joint_is_refused():
    """A joint whose whole travel is under 10 % of a turn (here 300 ticks) cannot be calibrated by accident."""
    spec = narrow_spec(load_robot("so100"), 1900, 2200, full_turn=("wrist_roll",))
    with pytest.raises(CalibrationError, match=r"joint 'shoulder_pan' spans only (29\d|300) ticks .* minimum 410"):
        run_flow(spec, 1.0, full_turn=["wrist_roll"])
