"""Gripper protection registers before torque: refused at factory limits (check), written (write), warned about
(ignore), on the simulated SO-100 (STS3215) and Koch (XL330) over their real buses."""

import subprocess
import sys

import pytest

from actsac.drivers.protection import PROTECTION, read_protection, unsafe, write_protection
from actsac.drivers.robot import Robot
from actsac.drivers.robot_toml import parse_robot_toml
from actsac.drivers.robots import load_robot
from actsac.drivers.sim import simulate
from actsac.drivers.tables import Reg
from actsac.runtime.errors import RunRefused
from actsac.runtime.safety import SafetySettings
from actsac.runtime.session import EXIT_OK

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
    from actsac.drivers.tables import motor_model

    for model, registers in PROTECTION.items():
        for p in registers:
            assert motor_model(model).register(p.register)
