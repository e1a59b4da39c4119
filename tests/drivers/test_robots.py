"""Robot definitions: built-ins, the packaged upper_body.toml, one-line errors for bad TOML files."""

import pytest

from actsac.drivers.errors import RobotSpecError
from actsac.drivers.robots import load_robot

GOOD_BUS = '''
[[buses]]
name = "main"
family = "feetech"
motors = [{name = "a", id = 1, model = "sts3215"}, {name = "b", id = 2, model = "sts3215", norm_mode = "degrees"}]
'''
GOOD_GROUP = '''
[[groups]]
name = "arm"
joints = ["a", "b"]
'''


def test_built_in_robots():
    so100, koch = load_robot("so100"), load_robot("koch")
    assert [m.id for m in so100.motors] == [1, 2, 3, 4, 5, 6]
    assert koch.joint_names == so100.joint_names
    assert koch.buses[0].family == "dynamixel" and koch.buses[0].baudrate == 1_000_000
    assert {m.model for m in koch.motors} == {"xl430-w250", "xl330-m288"}


def test_upper_body_has_three_buses_and_groups():
    spec = load_robot("upper_body")
    assert [(b.name, b.family, len(b.motors)) for b in spec.buses] == [
        ("arm", "dynamixel", 14), ("torso", "dynamixel", 6), ("hand", "feetech", 12)]
    assert [(g, len(j)) for g, j in spec.groups] == [("arm", 14), ("torso", 6), ("hand", 12)]
    assert spec.motor("torso_2").norm_mode == "degrees" and spec.motor("hand_0").norm_mode == "range_0_100"
    assert spec.motor("hand_0").sim_calibration.range_min == 1800


def test_a_minimal_toml(tmp_path):
    path = tmp_path / "two.toml"
    path.write_text(GOOD_BUS + GOOD_GROUP)
    spec = load_robot(str(path))
    assert spec.name == "two" and spec.joint_names == ["a", "b"]
    cal = spec.motor("a").sim_calibration  # default: under half a turn, centred, so sim calibration never wraps
    assert (cal.range_min, cal.range_max) == (1025, 3071)
    assert not spec.motor("a").full_turn


def test_full_turn_joints_are_part_of_the_robot(tmp_path):
    for name in ("so100", "koch"):
        assert [m.name for m in load_robot(name).motors if m.full_turn] == ["wrist_roll"]
    path = tmp_path / "two.toml"
    path.write_text(GOOD_BUS.replace('id = 2,', 'id = 2, full_turn = true,') + GOOD_GROUP)
    spec = load_robot(str(path))
    assert (spec.motor("a").full_turn, spec.motor("b").full_turn) == (False, True)


@pytest.mark.parametrize("text, field, message", [
    pytest.param("name = 3\n" + GOOD_BUS + GOOD_GROUP, "name", "expected a string", id="name-not-string"),
    pytest.param(GOOD_GROUP, "buses", "missing", id="no-buses"),
    pytest.param(GOOD_BUS.replace('"feetech"', '"robotis"') + GOOD_GROUP, "buses[0].family", "unknown family",
                 id="bad-family"),
    pytest.param(GOOD_BUS.replace('model = "sts3215"}, {', 'model = "xl330-m288"}, {') + GOOD_GROUP,
                 "buses[0].motors[0].model", "dynamixel motor on a feetech bus", id="family-mismatch"),
    pytest.param(GOOD_BUS.replace('"sts3215", norm', '"sts9999", norm') + GOOD_GROUP, "buses[0].motors[1].model",
                 "unknown model 'sts9999'", id="unknown-model"),
    pytest.param(GOOD_BUS.replace("id = 2", "id = 1") + GOOD_GROUP, "buses[0].motors[1].id", "used twice",
                 id="duplicate-id"),
    pytest.param(GOOD_BUS.replace('"degrees"', '"furlongs"') + GOOD_GROUP, "buses[0].motors[1].norm_mode",
                 "unknown mode", id="bad-norm-mode"),
    pytest.param(GOOD_BUS.replace('id = 1,', 'id = 1, sim_range = [3000, 10],') + GOOD_GROUP,
                 "buses[0].motors[0].sim_range", "0 <= min < max", id="bad-sim-range"),
    pytest.param(GOOD_BUS.replace('id = 1,', 'id = 1, full_turn = "yes",') + GOOD_GROUP,
                 "buses[0].motors[0].full_turn", "expected true or false", id="full-turn-not-bool"),
    pytest.param(GOOD_BUS + GOOD_GROUP.replace('"b"]', '"c"]'), "groups[0].joints", "no motor named 'c'",
                 id="unknown-joint"),
    pytest.param(GOOD_BUS + GOOD_GROUP + "[max_step]\na = -1.0\n", "max_step.a", "must be positive",
                 id="negative-max-step"),
    pytest.param(GOOD_BUS.replace('family = "feetech"', 'family = "feetech"\nbaudrate = 123') + GOOD_GROUP,
                 "buses[0].baudrate", "not a baud rate", id="bad-baudrate"),
    pytest.param(GOOD_BUS + GOOD_GROUP + "colour = 'red'\n", "groups[0].colour", "unknown field",
                 id="unknown-field"),
    pytest.param("[[buses]\nname=", None, "invalid TOML", id="syntax-error"),
])
def test_bad_toml_is_one_line_naming_file_and_field(tmp_path, text, field, message):
    path = tmp_path / "robot.toml"
    path.write_text(text)
    with pytest.raises(RobotSpecError) as info:
        load_robot(str(path))
    text = str(info.value)
    assert "\n" not in text and text.startswith(str(path))
    assert message in text
    if field:
        assert f": {field}: " in text


def test_unknown_name_and_missing_file(tmp_path):
    with pytest.raises(RobotSpecError, match="unknown robot 'r2d2'"):
        load_robot("r2d2")
    with pytest.raises(RobotSpecError, match="no such robot file"):
        load_robot(str(tmp_path / "absent.toml"))


def test_drivers_import_without_torch():
    """The robot side must run where torch is not installed: no drivers module may import it."""
    import subprocess
    import sys

    code = ("import sys; import actsac.drivers, actsac.drivers.sim, actsac.drivers.feetech, "
            "actsac.drivers.dynamixel, actsac.drivers.sim_cli; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_simulated_ranges_stay_inside_one_turn_when_homed_anywhere():
    """Homing sets the present position to mid-scale wherever the joint is; a range of at most half a turn
    (2047 of 4096 ticks) then never wraps, so calibrating the simulator always succeeds."""
    for spec in (load_robot("so100"), load_robot("koch"), load_robot("upper_body")):
        for motor in spec.motors:
            cal = motor.sim_calibration
            width = cal.range_max - cal.range_min
            assert width == 4095 or width <= 2047, (spec.name, motor.name, width)
