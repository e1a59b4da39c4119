"""The live status line: formatted from the run's live objects, at most twice a second, only on a terminal."""

import io
import os
import pty
import re
import select
import subprocess
import sys
import time
from types import SimpleNamespace

import numpy as np

from actsac.runtime.loop import TickRecord, TickTime
from actsac.runtime.session import EXIT_OK
from actsac.runtime.status import CLEAR, StatusLine

CMD = [sys.executable, "-m", "actsac.runtime.cli"]
LIVE = re.compile(r"\rt \d+\.\d s \| [\d.]+ Hz \| misses \d+ \| infer p50 [\d.]+ ms \| chunk age \d+ \| "
                  r"goal err [\d.]+ \| holds \d+ clamps \d+ bus err \d+ \| hottest \w+ \d+ C\x1b\[K")


class FakeClock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def fake_session(goal_index=(0, 1)):
    loop = SimpleNamespace(ticks=0, scheduler=SimpleNamespace(deadline_misses=2))
    controller = SimpleNamespace(latencies_s=[0.004, 0.005, 0.003], goal_index=list(goal_index), hold_ticks=1,
                                 filter=SimpleNamespace(clamped_commands=5))
    return loop, controller, SimpleNamespace(bus_errors=3)


def tick(index, *, fps=30.0, goal=None, cameras=None, chunk_age=2):
    start = index / fps
    info = {"goal": goal, "position": np.array([10.0, -5.0, 0.0]), "chunk_age": chunk_age, "cameras": cameras}
    return TickRecord(TickTime(index, start, start, 0), 0.001, 0.001, 0.001, start + 0.003, info)


def test_the_line_shows_the_live_counters_and_is_written_at_most_every_half_second():
    clock, out = FakeClock(), io.StringIO()
    status = StatusLine(out, 30.0, clock=clock)
    loop, controller, robot_io = fake_session()
    status.attach(loop, controller, robot_io)
    assert not status.refresh() and out.getvalue() == ""  # no tick yet: nothing to show

    loop.ticks = 1
    status.on_tick(tick(0, goal=np.array([7.0, -1.0])))
    assert status.refresh()
    assert out.getvalue() == ("\rt 0.0 s | - Hz | misses 2 | infer p50 4.0 ms | chunk age 2 | goal err 4.0 | "
                              "holds 1 clamps 5 bus err 3\x1b[K")
    for _ in range(5):  # every tick checks; only 0.5 s later is the line written again
        clock.t += 0.09
        assert not status.refresh()
    clock.t += 0.06
    loop.ticks = 16
    status.on_tick(tick(15, goal=np.array([7.0, -1.0]), chunk_age=None,
                        cameras={"front": {"age_ms": 24.6}, "wrist": {"age_ms": None}}))
    assert status.refresh()
    second = out.getvalue().split("\r")[-1]
    assert second.startswith("t 0.5 s | 30.0 Hz | misses 2 | infer p50 4.0 ms | chunk age - |")
    assert second.endswith("| cam front 25 ms cam wrist -\x1b[K")

    status.clear()  # before a log line: the line is erased, once
    status.clear()
    assert out.getvalue().endswith("\x1b[K" + CLEAR) and out.getvalue().count(CLEAR) == 1


def test_no_goal_no_goal_field_and_a_broken_terminal_turns_the_line_off():
    clock = FakeClock()
    loop, controller, robot_io = fake_session(goal_index=())
    out = io.StringIO()
    status = StatusLine(out, 30.0, clock=clock)
    status.attach(loop, controller, robot_io)
    status.on_tick(tick(3))
    assert status.refresh() and "goal err" not in out.getvalue() and "cam" not in out.getvalue()

    class Closed(io.StringIO):
        def write(self, text):
            raise OSError(5, "Input/output error")

    broken = StatusLine(Closed(), 30.0, clock=clock)
    broken.attach(loop, controller, robot_io)
    broken.on_tick(tick(3))
    assert not broken.refresh() and not broken.enabled  # no exception reaches the run
    clock.t += 1.0
    assert not broken.refresh()
    broken.stop()


def run_on_terminal(*args, timeout=60.0) -> tuple[int, str]:
    """actsac-run with its stdout on a pseudo-terminal: (exit code, everything the terminal received)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([*CMD, *args], stdout=slave, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    os.close(slave)
    received, deadline = b"", time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not select.select([master], [], [], 0.5)[0]:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the process closed the terminal
                break
            if not chunk:
                break
            received += chunk
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return proc.returncode, received.decode()


def test_on_a_terminal_the_live_line_refreshes_and_is_erased_before_the_summary(reach_onnx):
    code, out = run_on_terminal("--model", str(reach_onnx), "--duration", "2", "--stop-hold-s", "0.1")
    assert code == EXIT_OK, out
    lines = LIVE.findall(out)
    assert 2 <= len(lines) <= 6, out  # about twice a second over a 2 s run, not once per tick
    assert re.search(r"\| 3\d\.\d Hz \|", out)  # the live rate of a 30 Hz run
    assert out.index("on so100 at 30 Hz") < out.index(lines[0])  # the header first, as before
    summary = out.split(CLEAR)[-1]  # everything after the line was erased
    assert summary.startswith("  ticks ") and "completed (code 0)" in summary
    assert "Hz |" not in summary and "\x1b" not in summary


def test_no_status_turns_it_off_on_a_terminal(reach_onnx):
    code, out = run_on_terminal("--model", str(reach_onnx), "--duration", "1", "--stop-hold-s", "0.1",
                                "--no-status")
    assert code == EXIT_OK, out
    assert "\x1b" not in out and "infer p50" not in out and "completed (code 0)" in out


def test_piped_output_has_no_live_line(reach_onnx):
    result = subprocess.run([*CMD, "--model", str(reach_onnx), "--duration", "2", "--stop-hold-s", "0.1"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == EXIT_OK, result.stderr
    assert "\r" not in result.stdout and "\x1b" not in result.stdout and "infer p50" not in result.stdout
    lines = result.stdout.splitlines()
    header, table = lines[:2], [line for line in lines if not line.startswith("actsac-run: ")]  # then the log
    assert header[0].startswith("actsac-run: no --port given") and " at 30 Hz, " in header[1]
    assert table[0].startswith("  ticks ") and all(line.startswith("  ") for line in table)
    assert any("completed (code 0)" in line for line in table) and result.stderr == ""
