"""`actsac-calibrate --protect-gripper`: the grippers' safe protection values written once, on a port."""

import pytest

from actsac.calibration.cli import main
from actsac.drivers.robot import Robot
from actsac.drivers.robots import load_robot
from actsac.drivers.sim import simulate


def test_writes_the_safe_values_once(capsys):
    spec = load_robot("so100")
    with simulate(spec) as ports:
        main(["--robot", "so100", "--port", ports["main"], "--protect-gripper"])
        assert capsys.readouterr().out.strip() == ("gripper protection written: gripper Max_Torque_Limit 1000 -> 500, "
                                                   "gripper Protection_Current 500 -> 250, "
                                                   "gripper Overload_Torque 80 -> 25")
        with Robot(spec, ports) as robot:
            bus = robot.buses["main"]
            assert [bus.read(r, "gripper") for r in ("Max_Torque_Limit", "Protection_Current", "Overload_Torque",
                                                     "Lock", "Torque_Enable")] == [500, 250, 25, 1, 0]
        main(["--robot", "so100", "--port", ports["main"], "--protect-gripper"])
        assert "already at the safe values, nothing written" in capsys.readouterr().out


def test_a_robot_without_gripper_is_one_line_exit_1(tmp_path, capsys):
    path = tmp_path / "wrist.toml"
    path.write_text('[[buses]]\nname = "main"\nfamily = "feetech"\n'
                    'motors = [{name = "wrist", id = 1, model = "sts3215"}]\n'
                    '[[groups]]\nname = "arm"\njoints = ["wrist"]\n')
    with simulate(path) as ports, pytest.raises(SystemExit) as exit_:
        main(["--robot", str(path), "--port", ports["main"], "--protect-gripper"])
    assert exit_.value.code == 1
    assert capsys.readouterr().err == ("error: robot 'wrist' has no gripper "
                                       "(a robot file marks one with gripper = true)\n")
