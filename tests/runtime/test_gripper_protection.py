"""Gripper protection registers before torque: refused at factory limits (check), written (write), warned about
(ignore), on the simulated SO-100 (STS3215) and Koch (XL330) over their real buses."""

import subprocess
import sys
from types import SimpleNamespace

import pytest

from actsac.calibration import save_calibration
from actsac.drivers.protection import PROTECTION, read_protection, unchecked, unsafe, write_protection
from actsac.drivers.robot import Robot
from actsac.drivers.robot_toml import parse_robot_toml
from actsac.drivers.robots import load_robot
from actsac.drivers.sim import simulate
from actsac.drivers.tables import Reg, motor_model
from actsac.runtime.config import RunConfig
from actsac.runtime.errors import RunRefused
from actsac.runtime.safety import SafetySettings
from actsac.runtime.session import EXIT_OK, run

from .conftest import run_bounded


@pytest.mark.parametrize("name, factory, safe", [
    ("so100", {"Max_Torque_Limit": 1000, "Protection_Current": 500, "Overload_Torque": 80},
     {"Max_Torque_Limit": 500, "Protection_Current": 250, "Overload_Torque": 25}),
    ("koch", {"Operating_Mode": 3}, {"Operating_Mode": 5}),
])
def test_factory_limits_are_found_and_the_safe_values_written(name, factory, safe):
    spec = load_robot(name)
    with simulate(spec) as ports, Robot(spec, ports) as robot:
        readings = read_protection(robot)
        assert readings == {"gripper": factory}
        assert {register for _, register, _, _ in unsafe(robot, readings)} == set(factory)
        assert write_protection(robot, readings) == {"gripper": safe}
        assert read_protection(robot) == {"gripper": safe}  # read back over the bus: in EEPROM
        assert unsafe(robot, read_protection(robot)) == []
        if name == "so100":
            assert robot.buses["main"].read(Reg.Lock, "gripper") == 1  # EEPROM locked again


def test_check_refuses_torque_on_a_gripper_at_factory_limits(reach_onnx):
    with pytest.raises(RunRefused, match=r"gripper protection: gripper Max_Torque_Limit 1000 \(safe: 500\); "
                                         r"gripper Protection_Current 500 \(safe: 250\); .*--gripper-protection write"):
        run_bounded(model=reach_onnx, duration_s=1.0,
                    safety=SafetySettings(stop_hold_s=0.1, gripper_protection="check"))


def test_the_refusal_is_one_line_and_exit_1_from_the_command():
    proc = subprocess.run([sys.executable, "-m", "actsac.runtime.cli", "--duration", "1", "--gripper-protection",
                           "check", "--no-status"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and proc.stderr.startswith("error: gripper protection: gripper")


def test_write_on_the_simulator_by_default_and_ignore_warns(reach_onnx):
    summary, lines = run_bounded(model=reach_onnx, duration_s=0.5)
    assert summary["exit_code"] == EXIT_OK
    assert summary["gripper_protection"]["mode"] == "write"
    assert summary["gripper_protection"]["written"] == {"gripper": {"Max_Torque_Limit": 500, "Protection_Current": 250,
                                                                    "Overload_Torque": 25}}
    assert any("gripper protection written: gripper Max_Torque_Limit 1000 -> 500" in line for line in lines)
    summary, lines = run_bounded(model=reach_onnx, duration_s=0.5,
                                 safety=SafetySettings(stop_hold_s=0.1, gripper_protection="ignore"))
    assert summary["exit_code"] == EXIT_OK and summary["gripper_protection"]["written"] == {}
    assert any("warning: gripper at factory limits" in line for line in lines)


def test_a_robot_file_marks_its_grippers(tmp_path):
    path = tmp_path / "arm.toml"
    path.write_text('name = "arm"\n[[buses]]\nname = "main"\nfamily = "feetech"\n'
                    'motors = [{name = "wrist", id = 1, model = "sts3215"}, '
                    '{name = "claw", id = 2, model = "sts3215", gripper = true}]\n'
                    '[[groups]]\nname = "arm"\njoints = ["wrist", "claw"]\n')
    spec = parse_robot_toml(path)
    assert [m.name for m in spec.motors if m.gripper] == ["claw"]
    path.write_text(path.read_text().replace("gripper = true", 'gripper = "yes"'))
    with pytest.raises(ValueError, match=r"arm.toml: buses\[0\].motors\[1\].gripper: expected true or false"):
        parse_robot_toml(path)


def test_every_protected_register_is_in_its_models_table():
    for model, registers in PROTECTION.items():
        for p in registers:
            assert motor_model(model).register(p.register)


def test_on_a_real_port_check_is_the_default_and_torque_stays_off(reach_onnx, tmp_path):
    """A port is hardware: refused by default with nothing written and torque never on; once written (as
    --gripper-protection write does), the same run passes the check."""
    spec = load_robot("so100")
    calibration = tmp_path / "so100.json"
    save_calibration(calibration, {m.name: m.sim_calibration for m in spec.motors})
    with simulate(spec) as ports:
        config = dict(model=reach_onnx, port=ports["main"], calibration=calibration, duration_s=0.3,
                      status=False)
        with pytest.raises(RunRefused, match=r"^gripper protection: gripper Max_Torque_Limit 1000 \(safe: 500\)"):
            run(RunConfig(safety=SafetySettings(stop_hold_s=0.1), **config), log=lambda line: None)
        with Robot(spec, ports) as robot:
            assert set(robot.read_raw(Reg.Torque_Enable).values()) == {0}
            assert robot.buses["main"].read(Reg.Max_Torque_Limit, "gripper") == 1000  # check writes nothing
        summary, lines = run_bounded(safety=SafetySettings(stop_hold_s=0.1, gripper_protection="write"), **config)
        assert summary["gripper_protection"]["written"]["gripper"]["Overload_Torque"] == 25
        summary, lines = run_bounded(**config)
        assert summary["exit_code"] == EXIT_OK
        assert summary["gripper_protection"] == {
            "mode": "check", "written": {},
            "read": {"gripper": {"Max_Torque_Limit": 500, "Protection_Current": 250, "Overload_Torque": 25}}}


def test_koch_gripper_in_position_mode_is_refused(reach_onnx):
    with pytest.raises(RunRefused, match=r"gripper protection: gripper Operating_Mode 3 \(safe: 5\): "):
        run_bounded(robot="koch", model=reach_onnx, duration_s=0.5,
                    safety=SafetySettings(stop_hold_s=0.1, gripper_protection="check"))


def test_a_robot_files_grippers_on_the_simulator(tmp_path):
    """``gripper = true`` in a robot file: an STS3215 claw is judged and written; an XM430 gripper, a model
    without sourced safe values, has its limits read and reported, never judged nor written."""
    path = tmp_path / "two.toml"
    path.write_text('[[buses]]\nname = "hand"\nfamily = "feetech"\n'
                    'motors = [{name = "claw", id = 1, model = "sts3215", gripper = true}]\n'
                    '[[buses]]\nname = "arm"\nfamily = "dynamixel"\n'
                    'motors = [{name = "wrist", id = 1, model = "xm430-w350"}, '
                    '{name = "pincer", id = 2, model = "xm430-w350", gripper = true}]\n'
                    '[[groups]]\nname = "all"\njoints = ["claw", "wrist", "pincer"]\n')
    spec = parse_robot_toml(path)
    with simulate(spec) as ports, Robot(spec, ports) as robot:
        readings = read_protection(robot)
        assert set(readings) == {"claw", "pincer"}
        assert readings["pincer"] == {"Operating_Mode": 3, "Current_Limit": 1193, "PWM_Limit": 885}
        assert unchecked(robot) == {"pincer": "xm430-w350"}
        assert {motor for motor, *_ in unsafe(robot, readings)} == {"claw"}
        assert write_protection(robot, readings) == {"claw": {"Max_Torque_Limit": 500, "Protection_Current": 250,
                                                               "Overload_Torque": 25}}
        assert read_protection(robot)["pincer"] == readings["pincer"]


def test_registers_reading_zero_are_not_looser_than_safe():
    """A simulator (or servo) without a factory value for a register reads 0: never refused for it."""
    bus = SimpleNamespace(models={"gripper": motor_model("sts3215")})
    robot = SimpleNamespace(buses={"main": bus}, bus_of=lambda motor: "main")
    readings = {"gripper": {"Max_Torque_Limit": 1000, "Protection_Current": 0, "Overload_Torque": 0}}
    assert unsafe(robot, readings) == [("gripper", "Max_Torque_Limit", 1000, 500)]


def test_a_gripper_without_sourced_values_is_reported_not_refused(reach_onnx, monkeypatch):
    monkeypatch.delitem(PROTECTION, "sts3215")
    summary, lines = run_bounded(model=reach_onnx, duration_s=0.3,
                                 safety=SafetySettings(stop_hold_s=0.1, gripper_protection="check"))
    assert summary["exit_code"] == EXIT_OK and summary["gripper_protection"]["written"] == {}
    assert any("gripper gripper: no known safe values for a sts3215, not checked (Max_Torque_Limit 1000, "
               "Protection_Current 500, Overload_Torque 80, Operating_Mode 0)" in line for line in lines), lines
