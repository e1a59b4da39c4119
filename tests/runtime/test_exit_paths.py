"""Every way out of a run leaves the robot in its safe state, as a user would meet it: Ctrl-C in a terminal (the
whole process group gets SIGINT), a bus that vanishes mid-run, a stop before the loop, non-finite options."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from actsac.calibration import save_calibration
from actsac.drivers.bus import make_bus
from actsac.drivers.robots import load_robot
from actsac.runtime.config import RunConfig
from actsac.runtime.session import EXIT_INTERRUPTED, EXIT_SAFETY_STOP, run
from actsac.runtime.safety import SafetySettings

CMD = [sys.executable, "-m", "actsac.runtime.cli"]
SIM = [sys.executable, "-m", "actsac.drivers.sim_cli"]
JOINTS = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]


def two_bus_robot(path):
    """The SO-100's joints split over two Feetech buses, a and b (its simulated ranges too, so the test models'
    training calibration, the so100 simulator's, matches)."""
    sim_ranges = {5: "[0, 4095]", 6: "[2000, 3000]"}

    def motors(ids):
        return ", ".join(f'{{name = "{JOINTS[i - 1]}", id = {i}, model = "sts3215", sim_range = {sim_ranges.get(i, "[1025, 3071]")}'
                         + (', norm_mode = "range_0_100"}' if i == 6 else "}") for i in ids)
    path.write_text(f'name = "two"\n[[buses]]\nname = "a"\nfamily = "feetech"\nmotors = [{motors([1, 2, 3])}]\n'
                    f'[[buses]]\nname = "b"\nfamily = "feetech"\nmotors = [{motors([4, 5, 6])}]\n'
                    f'[[groups]]\nname = "arm"\njoints = {json.dumps(JOINTS)}\n')
    return path


def sim_ports(sim) -> dict[str, str]:
    """actsac-sim's first lines, 'port a: /dev/pts/N', one per bus (a simulator that fails ends its output)."""
    ports = {}
    for _ in range(2):
        line = sim.stdout.readline()
        assert line.startswith("port "), f"the simulator did not print its ports (got {line!r})"
        label, port = line.split(": ")
        ports[label.split()[1]] = port.strip()
    return ports


def wait_for_ticks(log, count=20, timeout_s=30.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if log.exists() and log.read_text().count('"tick"') >= count:
            return
        time.sleep(0.1)
    pytest.fail("the run never started logging ticks")


def finish(proc, timeout_s=30.0):
    try:
        return proc.communicate(timeout=timeout_s)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_ctrl_c_in_a_terminal_reaches_the_safe_state(reach_onnx, tmp_path):
    """A terminal's Ctrl-C signals the whole process group: the embedded simulator must outlive the run's stop."""
    record = tmp_path / "rec"
    proc = subprocess.Popen([*CMD, "--model", str(reach_onnx), "--duration", "60", "--record", str(record)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_for_ticks(record / "ticks.jsonl")
        os.killpg(proc.pid, signal.SIGINT)
    finally:
        _, stderr = finish(proc)
    assert proc.returncode == EXIT_INTERRUPTED
    assert stderr == "actsac-run: interrupted (SIGINT)\n"
    last = json.loads((record / "ticks.jsonl").read_text().splitlines()[-1])["event"]
    assert last["safe_state"] == "torque off"


def test_a_bus_that_vanishes_mid_run_still_lets_the_others_turn_torque_off(reach_onnx, tmp_path):
    """Bus a's simulator dies mid-run (an unplugged adapter): the run stops in one line and bus b's motors, on
    another simulator, end with torque off."""
    toml = two_bus_robot(tmp_path / "two.toml")
    spec = load_robot(toml)
    calibration = tmp_path / "two.json"
    save_calibration(calibration, {m.name: m.sim_calibration for m in spec.motors})
    sims = [subprocess.Popen([*SIM, "--robot", str(toml)], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        port_a, port_b = sim_ports(sims[0])["a"], sim_ports(sims[1])["b"]
        record = tmp_path / "rec"
        proc = subprocess.Popen([*CMD, "--robot", str(toml), "--port", f"a={port_a},b={port_b}",
                                 "--calibration", str(calibration), "--model", str(reach_onnx), "--duration", "60",
                                 "--record", str(record)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_for_ticks(record / "ticks.jsonl")
            sims[0].kill()
        finally:
            _, stderr = finish(proc)
        assert proc.returncode == EXIT_SAFETY_STOP, stderr
        assert stderr.count("\n") == 1 and port_a in stderr and "Traceback" not in stderr
        bus = make_bus(spec.buses[1], port_b)
        bus.connect()
        try:
            assert bus.sync_read("Torque_Enable") == {"wrist_flex": 0, "wrist_roll": 0, "gripper": 0}
        finally:
            bus.disconnect(disable_torque=False)
    finally:
        for sim in sims:
            sim.terminate()
            sim.wait(timeout=10)


def test_a_stop_before_the_loop_never_powers_the_motors(reach_onnx):
    stop = threading.Event()
    stop.set()
    summary = run(RunConfig(model=reach_onnx, duration_s=5, safety=SafetySettings(stop_hold_s=0.1)), stop=stop,
                  log=lambda line: None)
    assert summary["exit_code"] == EXIT_INTERRUPTED and summary["ticks"] == 0


@pytest.mark.parametrize("argv, fragment", [
    (["--stop-hold-s", "inf"], "--stop-hold-s: must be a finite number"),
    (["--fps", "inf"], "--fps: must be positive and finite"),
    (["--ramp-s", "nan"], "--ramp-s: must be a finite number"),
    (["--ensemble-coeff", "nan"], "--ensemble-coeff: must be a finite number"),
    (["--goal", "1,nan,0,0,0,0"], "comma-separated list of finite numbers"),
])
def test_non_finite_options_are_refused_before_anything_starts(argv, fragment):
    result = subprocess.run([*CMD, *argv], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and fragment in result.stderr


def test_overflowing_ensemble_weights_and_a_directory_as_summary_file_are_one_line_errors(tmp_path):
    for argv, fragment in [(["--ensemble-coeff", "-1000"], "must be finite and within"),
                           (["--summary-json", str(tmp_path)], "is a directory")]:
        result = subprocess.run([*CMD, *argv, "--duration", "1"], capture_output=True, text=True, timeout=60)
        assert result.returncode == 1 and fragment in result.stderr and result.stderr.count("\n") == 1
