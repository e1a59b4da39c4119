"""`actsac-sim` as a user runs it: a subprocess that prints its ports, serves them, and stops on SIGTERM/SIGINT."""

import os
import select
import signal
import subprocess
import sys

import pytest

from actsac.drivers.bus import make_bus
from actsac.drivers.robots import load_robot

SIM = [sys.executable, "-c", "from actsac.drivers.sim_cli import main; main()"]


def start(*args):
    return subprocess.Popen(SIM + list(args), stdout=subprocess.PIPE)


def read_lines(proc, n, timeout_s=30):
    """The first ``n`` stdout lines, read from the raw fd so a buffered reader cannot hide them from select."""
    data = b""
    fd = proc.stdout.fileno()
    while data.count(b"\n") < n:
        ready, _, _ = select.select([fd], [], [], timeout_s)
        assert ready, f"actsac-sim printed {data!r}, expected {n} port lines"
        chunk = os.read(fd, 4096)
        assert chunk, f"actsac-sim exited after printing {data!r}"
        data += chunk
    return data.decode().splitlines()[:n]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_serves_so100_until_a_signal(sig):
    proc = start("--robot", "so100")
    try:
        (line,) = read_lines(proc, 1)
        assert line.startswith("port: /dev/pts/")
        port = line.split(": ", 1)[1]
        bus = make_bus(load_robot("so100").buses[0], port)
        with bus:
            assert bus.sync_read("Present_Position")["gripper"] == 2500
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == 0
        assert not os.path.exists(port) or proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_one_line_per_bus_for_a_composite_robot():
    proc = start("--robot", "upper_body", "--no-wire-time", "--drop", "0.01", "--seed", "2")
    try:
        lines = read_lines(proc, 3)
        assert [line.split(":")[0] for line in lines] == ["port arm", "port torso", "port hand"]
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("args, message", [
    pytest.param(["--robot", "r2d2"], "unknown robot 'r2d2'", id="unknown-robot"),
    pytest.param(["--drop", "2"], "--drop 2.0: a probability must be within 0..1", id="bad-probability"),
    pytest.param(["--silent", "elbow"], "--silent 'elbow': expected MOTOR:VALUE", id="silent-format"),
    pytest.param(["--hw-error", "gripper:melted"], "unknown feetech hardware error 'melted'", id="hw-error-word"),
    pytest.param(["--heat", "gripper:-2"], "--heat gripper:-2: FACTOR must be a positive number", id="heat"),
    pytest.param(["--blocked", "thumb:3"], "robot 'so100' has no motor 'thumb'", id="blocked-motor"),
])
def test_user_mistakes_are_one_line(args, message):
    result = subprocess.run(SIM + args, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_blocked_gripper_pushes_and_heats_on_the_served_port():
    import time

    from actsac.drivers.robot import Robot

    proc = start("--blocked", "gripper:40", "--heat", "gripper:20")
    try:
        (line,) = read_lines(proc, 1)
        port = line.split(": ", 1)[1]
        spec = load_robot("so100")
        with Robot(spec, {"main": port}) as robot:
            robot.activate()
            robot.write_goals({"gripper": 10.0})  # closing on the object at 40
            time.sleep(1.0)
            assert robot.read_positions()["gripper"] == pytest.approx(40.0, abs=0.2)
            assert robot.read_health("effort")["gripper"] == pytest.approx(-100.0)  # pushing toward 10: negative
            assert robot.read_health("temperature")["gripper"] > 40  # 20x heating: about 15 degC a second
            assert robot.read_health("temperature")["elbow_flex"] == 30.0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
