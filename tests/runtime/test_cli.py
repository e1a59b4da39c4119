"""actsac-run as a user runs it: a subprocess, its output, its exit code, its files."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from actsac.runtime.session import EXIT_INTERRUPTED, EXIT_OK, EXIT_USER_ERROR

CMD = [sys.executable, "-m", "actsac.runtime.cli"]


def actsac_run(*args, timeout=60):
    return subprocess.run([*CMD, *args], capture_output=True, text=True, timeout=timeout)


def test_help_documents_the_exit_codes():
    result = actsac_run("--help")
    assert result.returncode == 0
    assert "exit codes" in result.stdout and "130" in result.stdout and "--ensemble-coeff" in result.stdout


NO_TORCH = ("import sys; sys.modules['torch'] = None; from actsac.runtime.cli import main; main(sys.argv[1:])")


def test_a_short_run_on_the_simulator_without_torch(reach_onnx, tmp_path):
    """The robot side needs no torch: it is made unimportable for this run."""
    out = tmp_path / "summary.json"
    result = subprocess.run([sys.executable, "-c", NO_TORCH, "--model", str(reach_onnx), "--duration", "1",
                             "--exec", "chunk", "--summary-json", str(out)], capture_output=True, text=True, timeout=60)
    assert result.returncode == EXIT_OK, result.stderr
    assert result.stdout.splitlines()[0].startswith("actsac-run: no --port given: running on the simulated so100")
    summary = json.loads(out.read_text())
    assert summary["exit_reason"] == "completed" and summary["ticks"] >= 25


def test_user_errors_are_one_line(tmp_path):
    result = actsac_run("--model", str(tmp_path / "missing.onnx"))
    assert result.returncode == EXIT_USER_ERROR
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ") and "missing.onnx" in result.stderr
    result = actsac_run("--n-action-steps", "3")
    assert result.returncode == 2 and "--exec chunk" in result.stderr


def test_record_refuses_an_earlier_runs_log_unless_asked_to_overwrite_it(reach_onnx, tmp_path):
    record = tmp_path / "rec"
    record.mkdir()
    (record / "ticks.jsonl").write_text("an earlier run\n")
    (record / "run.png").write_text("an earlier plot")
    result = actsac_run("--model", str(reach_onnx), "--duration", "0.5", "--record", str(record))
    assert result.returncode == EXIT_USER_ERROR
    assert result.stderr == (f"error: --record {record}: {record / 'ticks.jsonl'} exists (an earlier run's log): "
                             f"pass another DIR (e.g. {tmp_path / 'rec-2'}) or --record-overwrite\n")
    assert "torque" not in result.stdout
    assert (record / "ticks.jsonl").read_text() == "an earlier run\n"
    result = actsac_run("--model", str(reach_onnx), "--duration", "0.5", "--record", str(record),
                        "--record-overwrite", "--no-status")
    assert result.returncode == EXIT_OK, result.stderr
    assert "header" in json.loads((record / "ticks.jsonl").read_text().splitlines()[0])
    assert (record / "run.png").read_bytes()[:4] == b"\x89PNG"


def test_sigterm_mid_run_reaches_the_safe_state_and_flushes_the_log(reach_onnx, tmp_path):
    record, out = tmp_path / "rec", tmp_path / "summary.json"
    proc = subprocess.Popen([*CMD, "--model", str(reach_onnx), "--duration", "60", "--record", str(record),
                             "--summary-json", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        log = record / "ticks.jsonl"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # wait for the loop to be running and its log flushed
            if log.exists() and log.read_text().count('"tick"') >= 20:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the run never started logging ticks")
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == EXIT_INTERRUPTED, stderr
    assert "interrupted (SIGTERM)" in stderr
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert lines[-1]["event"]["exit_reason"] == "interrupted (SIGTERM)"
    assert lines[-1]["event"]["safe_state"] == "torque off"
    assert sum("tick" in line for line in lines) >= 20
    assert (record / "run.png").exists()
    assert json.loads(out.read_text())["exit_code"] == EXIT_INTERRUPTED


def test_a_killed_run_loses_at_most_the_last_second_of_log(reach_onnx, tmp_path):
    record = tmp_path / "rec"
    proc = subprocess.Popen([*CMD, "--model", str(reach_onnx), "--duration", "60", "--fps", "30",
                             "--record", str(record)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = record / "ticks.jsonl"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (log.exists() and log.read_text().count('"tick"') >= 15):
            time.sleep(0.05)
        seen = log.read_text().count('"tick"')
        time.sleep(2.0)  # 60 more ticks run; at most the last second's 30 may be unflushed
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    rows = [json.loads(line) for line in log.read_text().splitlines()]  # whole lines only, even after a kill
    assert sum("tick" in r for r in rows) >= seen + 30


# SIGINT from a timer started before actsac.runtime.cli is imported: it lands while its modules load.
EARLY_CTRL_C = ("import os, signal, sys; signal.signal(signal.SIGALRM, lambda *_: os.kill(os.getpid(), signal.SIGINT)); "
                "signal.setitimer(signal.ITIMER_REAL, float(sys.argv[1])); "
                "from actsac.runtime.cli import main; main(['--duration', '5'])")


@pytest.mark.parametrize("delay_s", [0.02, 0.05, 0.1])
def test_ctrl_c_while_the_modules_load_is_an_interrupt_not_a_traceback(delay_s):
    result = subprocess.run([sys.executable, "-c", EARLY_CTRL_C, str(delay_s)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == EXIT_INTERRUPTED, result.stderr
    assert "Traceback" not in result.stderr and "interrupted" in result.stderr
