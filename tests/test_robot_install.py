"""A robot computer's install: the base package plus ONNX Runtime, in a fresh virtual environment, no PyTorch.

Installs actsac from this checkout as a robot would (``pip install "actsac[cpu]"``), then uses the robot-side
commands on the simulator and checks that the training side says in one line what to install. About a minute:
pip takes numpy, pyserial, dynamixel-sdk and onnxruntime from its cache or the package index.
"""

import json
import subprocess
import venv
from pathlib import Path

import pytest

from tests.calibration.conftest import LEROBOT_SO100

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def robot_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("robot-env")
    venv.create(root / "venv", with_pip=True)
    bin_dir = root / "venv" / "bin"
    install = subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "-q", f"{REPO}[cpu]"],
                             capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-2000:]
    return root, bin_dir


def run(bin_dir: Path, *args, timeout=120):
    return subprocess.run([str(bin_dir / args[0]), *args[1:]], capture_output=True, text=True, timeout=timeout)


def test_the_robot_side_installs_without_the_training_side(robot_env):
    _, bin_dir = robot_env
    for module in ("torch", "onnx", "onnxscript", "tqdm", "matplotlib"):
        probe = run(bin_dir, "python", "-c", f"import {module}")
        assert probe.returncode != 0, f"{module} was installed by the robot-side install"
    assert run(bin_dir, "python", "-c", "import onnxruntime, serial, dynamixel_sdk").returncode == 0


def test_run_calibrate_and_bench_work_on_the_simulator(robot_env):
    root, bin_dir = robot_env
    summary, record = root / "summary.json", root / "rec"
    result = run(bin_dir, "actsac-run", "--duration", "2", "--summary-json", str(summary), "--record", str(record))
    assert result.returncode == 0, result.stderr
    assert json.loads(summary.read_text())["exit_reason"] == "completed"
    assert (record / "ticks.jsonl").is_file() and not (record / "run.png").exists()
    assert "run.png not drawn: matplotlib is not installed" in result.stdout

    lerobot = root / "lerobot.json"
    lerobot.write_text(json.dumps(LEROBOT_SO100))
    dest = root / "cal" / "so100.json"
    result = run(bin_dir, "actsac-calibrate", "--robot", "so100", "--import", str(lerobot), "--file", str(dest))
    assert result.returncode == 0, result.stderr
    assert json.loads(dest.read_text())["gripper"]["range_max"] == LEROBOT_SO100["gripper"]["range_max"]

    bench = root / "bus.json"
    result = run(bin_dir, "actsac-bench", "--bus", "--cycles", "50", "--json", str(bench))
    assert result.returncode == 0, result.stderr
    assert json.loads(bench.read_text())["bus"]["buses"][0]["bus"] == "main"


@pytest.mark.parametrize("command", ["actsac-train", "actsac-export"])
def test_the_training_side_names_the_extra_in_one_line(robot_env, command):
    _, bin_dir = robot_env
    args = ["--task", "so100-reach"] if command == "actsac-train" else ["model.pt"]
    result = run(bin_dir, command, *args)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "pip install 'actsac[train,cpu]'" in result.stderr
    assert "needs torch" in result.stderr


def test_without_onnx_runtime_the_run_says_what_to_install(robot_env):
    """A Jetson before NVIDIA's wheel is installed: the base package alone."""
    root, bin_dir = robot_env
    removed = run(bin_dir, "python", "-m", "pip", "uninstall", "-q", "-y", "onnxruntime")
    assert removed.returncode == 0, removed.stderr
    try:
        result = run(bin_dir, "actsac-run", "--duration", "1")
        assert result.returncode == 1 and result.stderr.count("\n") == 1
        assert "ONNX Runtime is not installed: pip install onnxruntime" in result.stderr
        assert "Jetson" in result.stderr
    finally:
        reinstall = run(bin_dir, "python", "-m", "pip", "install", "-q", "onnxruntime", timeout=600)
        assert reinstall.returncode == 0, reinstall.stderr
