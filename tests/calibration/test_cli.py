"""`actsac-calibrate` end to end in subprocesses: the interactive flow on the simulator with ENTER through a
pipe, --check, --import, and every bad input as exit code 1 with one line on stderr."""

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from .conftest import LEROBOT_SO100

LOW, HIGH = 1200, 2900  # the simulated hand sweeps the body joints through this range (ticks)

# An SO-100 whose simulated joints stay clear of the ends of the turn, so homing at any moment of the
# hand's sweep keeps the recorded range inside 0..4095 (a person would hold the arm mid-range).
ROBOT_TOML = """
name = "so100_test"
[[buses]]
name = "main"
family = "feetech"
baudrate = 1000000
motors = [
""" + "".join(
    f'    {{name = "{name}", id = {i + 1}, model = "sts3215", norm_mode = "{mode}", sim_range = {rng}}},\n'
    for i, (name, mode, rng) in enumerate([
        ("shoulder_pan", "range_m100_100", [LOW, HIGH]), ("shoulder_lift", "range_m100_100", [LOW, HIGH]),
        ("elbow_flex", "range_m100_100", [LOW, HIGH]), ("wrist_flex", "range_m100_100", [LOW, HIGH]),
        ("wrist_roll", "range_m100_100", [100, 3995]), ("gripper", "range_0_100", [LOW, HIGH])])) + """]
[[groups]]
name = "arm"
joints = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
"""


def cli(*args, tmp_path, stdin=subprocess.DEVNULL, **popen):
    env = dict(os.environ, ACTSAC_CALIBRATION_DIR=str(tmp_path / "cal"), PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "actsac.calibration.cli", *map(str, args)], stdin=stdin,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, **popen)


def finish(proc, timeout_s=40):
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"actsac-calibrate did not finish in {timeout_s} s; stderr: {err}")
    return proc.returncode, out, err


class Lines:
    """stdout of an interactive run, read by a thread so waiting for a prompt is bounded and loses nothing."""

    def __init__(self, proc):
        self.proc, self.queue = proc, queue.Queue()
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self):
        for line in self.proc.stdout:
            self.queue.put(line)
        self.queue.put(None)

    def until(self, text, timeout_s=30):
        lines, deadline = [], time.monotonic() + timeout_s
        while True:
            try:
                line = self.queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                self.proc.kill()
                pytest.fail(f"no {text!r} from actsac-calibrate; got {lines}")
            lines.append(line)
            if text in line:
                return lines

    def rest(self, timeout_s=40):
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail(f"actsac-calibrate did not finish in {timeout_s} s")
        self.thread.join(timeout=10)
        lines = []
        while (line := self.queue.get_nowait()) is not None:
            lines.append(line)
        return self.proc.returncode, "".join(lines), self.proc.stderr.read()


@pytest.fixture
def robot_toml(tmp_path):
    path = tmp_path / "so100_test.toml"
    path.write_text(ROBOT_TOML)
    return path


def calibrate_on_sim(tmp_path, robot_toml, id_="arm", finish_after_s=3.6):
    """The interactive flow: ENTER once the prompt shows, ENTER again after one full sweep (3 s) of the hand."""
    proc = cli("--robot", robot_toml, "--id", id_, "--full-turn", "wrist_roll", tmp_path=tmp_path,
               stdin=subprocess.PIPE)
    lines = Lines(proc)
    head = lines.until("middle of its range")
    proc.stdin.write("\n")
    proc.stdin.flush()
    head += lines.until("whole range of motion")
    time.sleep(finish_after_s)
    proc.stdin.write("\n")
    proc.stdin.flush()
    rc, out, err = lines.rest()
    return rc, "".join(head) + out, err


def test_interactive_flow_on_the_simulator(tmp_path, robot_toml):
    rc, out, err = calibrate_on_sim(tmp_path, robot_toml)
    assert rc == 0, err
    lines = out.splitlines()
    assert "simulator" in lines[0]
    path = tmp_path / "cal" / "so100_test" / "arm.json"
    assert lines[-1] == f"saved {path}"
    data = json.loads(path.read_text())
    assert list(data) == ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
    for i, (name, cal) in enumerate(data.items()):
        assert cal["id"] == i + 1 and cal["drive_mode"] == 0
        if name == "wrist_roll":
            assert (cal["range_min"], cal["range_max"]) == (0, 4095)
            continue
        # Feetech: Present = Actual - Homing_Offset; the hand swept Actual through LOW..HIGH
        assert abs(cal["range_min"] - (LOW - cal["homing_offset"])) <= 5, (name, cal)
        assert abs(cal["range_max"] - (HIGH - cal["homing_offset"])) <= 5, (name, cal)
    table = [line.split() for line in lines if line.split()[:1] == ["gripper"]]
    assert table and len(table[-1]) == 4  # joint, current, min, max

    # --check through the file just written: every body joint stays within -100..100
    rc, out, err = finish(cli("--robot", robot_toml, "--id", "arm", "--check", "--duration", "1", tmp_path=tmp_path))
    assert rc == 0, err
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.split()[:1] and line.split()[0] in data}
    assert rows["gripper"][3] == "range_0_100" and 0.0 <= float(rows["gripper"][2]) <= 100.0
    assert -100.0 <= float(rows["elbow_flex"][2]) <= 100.0
    assert "wrote" not in out and err == ""  # read-only, and the file fits the arm it was recorded on


def test_enter_pressed_early_is_refused_and_saves_nothing(tmp_path, robot_toml):
    """The issue's case: the second ENTER a moment into the sweep left ranges of ~100 ticks, saved with exit 0."""
    rc, out, err = calibrate_on_sim(tmp_path, robot_toml, finish_after_s=0.4)
    assert rc == 1, (out, err)
    assert err.count("\n") == 1 and re.match(r"error: joint '\w+' spans only \d+ ticks \(\d+\.\.\d+\), under the "
                                             r"minimum 410 \(10% of its 4096-tick turn\)", err), err
    assert not (tmp_path / "cal" / "so100_test").exists()


def test_a_file_from_another_robot_is_imported_with_a_warning(tmp_path):
    """An SO-100 file (LeRobot's folder layout) on a Koch: same joint names and IDs, so it validates; the
    folder names the robot it was saved for, and --check sees readings outside its ranges."""
    source = tmp_path / "so100_follower" / "my_arm.json"
    source.parent.mkdir()
    source.write_text(json.dumps(LEROBOT_SO100))
    rc, out, err = finish(cli("--robot", "so100", "--id", "arm", "--import", source, tmp_path=tmp_path))
    assert rc == 0 and err == "", err  # the robot it was saved for: silent
    rc, out, err = finish(cli("--robot", "koch", "--id", "arm", "--import", source, tmp_path=tmp_path))
    assert rc == 0, err
    assert err == f"warning: {source}: its folder says it was saved for robot 'so100', this is 'koch'\n"
    # its copy in koch/arm.json no longer says where it came from; the arm's readings do
    rc, out, err = finish(cli("--robot", "koch", "--id", "arm", "--check", "--duration", "1", tmp_path=tmp_path))
    assert rc == 0 and err.count("\n") == 1, err
    assert re.match(r"warning: joint '\w+' read -?\d+ ticks through the file, outside its range \d+\.\.\d+", err)


def test_closed_stdin_aborts_without_touching_a_good_file(tmp_path, robot_toml):
    path = tmp_path / "cal" / "so100_test" / "arm.json"
    path.parent.mkdir(parents=True)
    path.write_text("good")
    proc = cli("--robot", robot_toml, "--id", "arm", "--full-turn", "wrist_roll", tmp_path=tmp_path,
               stdin=subprocess.PIPE)
    lines = Lines(proc)
    lines.until("middle of its range")
    proc.stdin.write("\n")
    proc.stdin.close()  # end of input during the recording, before the final ENTER
    rc, out, err = lines.rest()
    assert rc == 1 and err.count("\n") == 1 and err.startswith("error: standard input closed before ENTER")
    assert path.read_text() == "good"


def test_import_copies_a_lerobot_file(tmp_path, lerobot_file):
    rc, out, err = finish(cli("--robot", "so100", "--id", "my_arm", "--import", lerobot_file, tmp_path=tmp_path))
    assert rc == 0, err
    assert json.loads((tmp_path / "cal" / "so100" / "my_arm.json").read_text()) == LEROBOT_SO100


def _write(tmp_path, text):
    path = tmp_path / "bad.json"
    path.write_text(text)
    return path


BAD_INPUTS = {
    "invalid json": (lambda t: ["--import", _write(t, '{"shoulder_pan": ')], "bad.json: invalid JSON"),
    "missing motor": (lambda t: ["--import", _write(t, json.dumps({k: v for k, v in LEROBOT_SO100.items()
                                                                   if k != "gripper"}))],
                      "bad.json: motor 'gripper' of robot 'so100' is missing"),
    "offset": (lambda t: ["--import", _write(t, json.dumps(dict(LEROBOT_SO100, gripper=dict(
        LEROBOT_SO100["gripper"], homing_offset=-2048))))], "motor 'gripper': field 'homing_offset' -2048"),
    "import missing file": (lambda t: ["--import", t / "nope.json"], "nope.json: no such calibration file"),
    "check without a file": (lambda t: ["--check", "--duration", "1"], "run `actsac-calibrate --robot so100"),
    "unknown robot": (lambda t: ["--robot", "so1000"], "unknown robot 'so1000'"),
    "missing port": (lambda t: ["--port", t / "ttyNOPE"], "could not open port"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_and_exit_code_1(tmp_path, case):
    make_args, expected = BAD_INPUTS[case]
    args = make_args(tmp_path)
    rc, out, err = finish(cli(*(["--robot", "so100"] if "--robot" not in args else []), *args, tmp_path=tmp_path))
    assert rc == 1, (out, err)
    assert err.count("\n") == 1 and err.startswith("error: ") and expected in err, err
    assert not (tmp_path / "cal" / "so100").exists() or case == "check without a file"


def test_help_and_bad_option():
    for args, code in ((["--help"], 0), (["--duration", "3"], 2)):
        proc = subprocess.run([sys.executable, "-m", "actsac.calibration.cli", *args], capture_output=True,
                              text=True, timeout=30)
        assert proc.returncode == code
    assert "--import FILE" in subprocess.run([sys.executable, "-m", "actsac.calibration.cli", "--help"],
                                             capture_output=True, text=True, timeout=30).stdout


def test_sigterm_during_recording_exits_with_torque_off_and_no_file(tmp_path, robot_toml):
    proc = cli("--robot", robot_toml, "--id", "arm", "--full-turn", "wrist_roll", tmp_path=tmp_path,
               stdin=subprocess.PIPE)
    lines = Lines(proc)
    lines.until("middle of its range")
    proc.stdin.write("\n")
    proc.stdin.flush()
    lines.until("whole range of motion")
    proc.send_signal(signal.SIGTERM)
    rc, out, err = lines.rest()
    assert rc == 130 and "interrupted: torque is off, nothing was saved" in err
    assert not (tmp_path / "cal" / "so100_test").exists()


def test_ctrl_c_in_a_terminal_during_recording(tmp_path, robot_toml):
    """A terminal's Ctrl-C reaches the whole process group, the embedded simulator included: still one line."""
    proc = cli("--robot", robot_toml, "--id", "arm", "--full-turn", "wrist_roll", tmp_path=tmp_path,
               stdin=subprocess.PIPE, start_new_session=True)
    lines = Lines(proc)
    lines.until("middle of its range")
    proc.stdin.write("\n")
    proc.stdin.flush()
    lines.until("whole range of motion")
    os.killpg(proc.pid, signal.SIGINT)
    rc, out, err = lines.rest()
    assert rc == 130 and err == "interrupted: torque is off, nothing was saved\n"
    assert not (tmp_path / "cal" / "so100_test").exists()


def test_robot_side_imports_no_torch():
    code = ("import sys, actsac.calibration, actsac.calibration.cli, actsac.calibration.procedure; "
            "sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], timeout=30).returncode == 0


@pytest.mark.parametrize("robot", ["so100", "koch"])
def test_check_writes_nothing_to_the_motors(robot, capsys):
    """--check shows positions through the file's offsets, converted on the host: no byte is written to the
    motors, and the values are what the motors would read holding the file's calibration."""
    from actsac.calibration.cli import _check
    from actsac.drivers.bus import make_bus
    from actsac.drivers.homing import apply_calibration
    from actsac.drivers.robots import load_robot
    from actsac.drivers.sim import simulate
    from actsac.drivers.units import MotorCalibration

    spec = load_robot(robot)
    registers = ("Homing_Offset", "Min_Position_Limit", "Max_Position_Limit", "Torque_Enable")
    with simulate(spec) as ports, make_bus(spec.buses[0], ports["main"]) as bus:  # no hand: the joints sit still
        calibration = {m.name: MotorCalibration(m.id, 0, 300 - 100 * m.id, 900, 3200) for m in spec.motors}
        before = {r: bus.sync_read(r) for r in registers}
        writes = []
        for method in ("_write", "_sync_write"):
            real = getattr(bus, method)
            setattr(bus, method, lambda *a, _real=real, _name=method: (writes.append((_name, a)), _real(*a))[1])
        _check([bus], spec, calibration, 0.3)
        assert writes == [] and {r: bus.sync_read(r) for r in registers} == before
        shown = {line.split()[0]: int(line.split()[1]) for line in capsys.readouterr().out.splitlines()
                 if line.split()[:1] and line.split()[0] in calibration}
        del bus._write, bus._sync_write
        apply_calibration(bus, calibration)  # what the old --check did, for comparison
        assert shown == bus.sync_read("Present_Position")
