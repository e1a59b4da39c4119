"""The board state recorded with every benchmark, read from recorded Jetson trees (fixtures/jetson/<board>: the
files NVIDIA's documentation names, with an Orin Nano Super on JetPack 6.2, an AGX Orin on JetPack 5.1.2 and an
AGX Xavier on JetPack 4.6.1), and null on a machine that is no Jetson."""

import shutil
from pathlib import Path

import pytest

from actsac.bench.board import BoardMonitor, read_board, warning

FIXTURES = Path(__file__).parent / "fixtures" / "jetson"


@pytest.mark.parametrize("name, model, l4t, jetpack, mode, locked", [
    ("orin_nano", "NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super", "36.4.3", "6.2",
     {"id": 0, "name": "15W", "max_id": 2, "max_name": "MAXN_SUPER", "at_max": False}, False),
    ("agx_orin", "Jetson AGX Orin Developer Kit", "35.4.1", "5.1.2",
     {"id": 0, "name": "MAXN", "max_id": 0, "max_name": "MAXN", "at_max": True}, True),
    ("xavier", "Jetson-AGX", "32.7.1", "4.6.1",
     {"id": 3, "name": "MODE_30W_ALL", "max_id": 0, "max_name": "MAXN", "at_max": False}, False),
])
def test_each_board_layout_is_read(name, model, l4t, jetpack, mode, locked):
    board = read_board(FIXTURES / name)
    assert board["jetson"] is True and board["model"] == model
    assert board["l4t"] == l4t and board["jetpack"] == jetpack
    assert board["power_mode"] == mode and board["clocks_locked"] is locked
    assert board["gpu"] is None  # a Jetson's GPU is in its devfreq node, not nvidia-smi


def test_the_maxima_are_the_hardware_ones():
    maxima = read_board(FIXTURES / "agx_orin")["max_frequencies"]
    assert len(maxima["cpu_khz"]) == 12 and set(maxima["cpu_khz"].values()) == {2201600}
    assert maxima["gpu_hz"] == 1300500000 and maxima["emc_hz"] == 3199000000
    assert read_board(FIXTURES / "orin_nano")["max_frequencies"]["emc_hz"] is None  # debugfs needs root


def test_a_board_below_its_best_is_warned_about_with_the_fix():
    line = warning(read_board(FIXTURES / "orin_nano"))
    assert line == ("warning: this Jetson is in power mode 0 (15W), not its maximum 2 (MAXN_SUPER) and clocks not "
                    "locked at their maximum: its figures will be slower and vary more than the board can do; run "
                    "sudo nvpmodel -m 2 then sudo jetson_clocks before benchmarking")
    assert warning(read_board(FIXTURES / "agx_orin")) is None


def test_a_machine_that_is_no_jetson_has_every_field_null(tmp_path):
    board = read_board(tmp_path)
    assert board["jetson"] is False and warning(board) is None
    assert {k: board[k] for k in ("model", "l4t", "jetpack", "power_mode", "clocks_locked", "max_frequencies")} \
        == dict.fromkeys(("model", "l4t", "jetpack", "power_mode", "clocks_locked", "max_frequencies"))
    with BoardMonitor(tmp_path) as monitor:
        pass
    report = monitor.report()
    assert report["temperatures_c"] is None and report["frequencies"] is None and report["throttled"] is None


def test_a_frequency_falling_under_locked_clocks_and_a_passed_trip_point_are_throttling(tmp_path):
    root = shutil.copytree(FIXTURES / "agx_orin", tmp_path / "agx_orin")
    monitor = BoardMonitor(root)
    monitor.sample()
    assert monitor.report()["throttled"] is False
    (root / "sys/devices/system/cpu/cpu3/cpufreq/scaling_cur_freq").write_text("1497600\n")
    (root / "sys/class/thermal/thermal_zone2/temp").write_text("99500\n")  # Tj-therm past its 99 degC trip
    monitor.sample()
    (root / "sys/class/thermal/thermal_zone2/temp").write_text("90000\n")
    monitor.sample()
    report = monitor.report()
    assert report["throttled"] is True
    assert report["throttle_reasons"] == ["cpu3_khz fell to 1497600 (its maximum 2201600)",
                                          "Tj-therm reached 99.5 degC (trip point 99 degC)"]
    assert report["temperatures_c"]["Tj-therm"] == {"start": 53.1, "max": 99.5, "end": 90.0}
    assert report["frequencies"]["cpu3_khz"] == {"start": 2201600, "min": 1497600, "end": 1497600}


def test_under_dynamic_clocks_a_lower_frequency_is_no_throttling(tmp_path):
    root = shutil.copytree(FIXTURES / "xavier", tmp_path / "xavier")  # not locked: DVFS moves the clocks
    monitor = BoardMonitor(root)
    monitor.sample()
    (root / "sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq").write_text("729600\n")
    monitor.sample()
    assert monitor.report()["throttled"] is False


BOARD_KEYS = {"jetson", "model", "l4t", "jetpack", "power_mode", "clocks_locked", "max_frequencies", "gpu",
              "temperatures_c", "frequencies", "throttled", "throttle_reasons"}


def bench_bus(tmp_path, name, board_root=None):
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, **({"ACTSAC_BOARD_ROOT": str(board_root)} if board_root else {})}
    out = tmp_path / f"{name}.json"
    proc = subprocess.run([sys.executable, "-m", "actsac.bench.cli", "--bus", "--cycles", "20", "--json", str(out)],
                          capture_output=True, text=True, timeout=90, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc, json.loads(out.read_text())["board"], out


def test_every_result_file_records_the_board_and_compare_tells_two_modes_apart(tmp_path, capsys):
    from actsac.bench.cli import main

    proc, board, here = bench_bus(tmp_path, "here")  # this machine: no Jetson
    assert set(board) == BOARD_KEYS and board["jetson"] is False and board["throttled"] is None
    assert "warning" not in proc.stderr
    proc, board, nano = bench_bus(tmp_path, "nano", FIXTURES / "orin_nano")
    assert proc.stderr.startswith("warning: this Jetson is in power mode 0 (15W), not its maximum 2 (MAXN_SUPER)")
    assert set(board) == BOARD_KEYS and board["throttled"] is False
    assert board["temperatures_c"]["tj-thermal"] == {"start": 48.0, "max": 48.0, "end": 48.0}
    _, _, agx = bench_bus(tmp_path, "agx", FIXTURES / "agx_orin")
    with pytest.raises(SystemExit) as done:
        main(["--compare", str(nano), str(agx), str(here)])
    assert done.value.code == 0
    rows = {line[:26].strip(): line[26:] for line in capsys.readouterr().out.splitlines()}
    assert rows["L4T / JetPack"].split() == ["36.4.3", "/", "6.2", "35.4.1", "/", "5.1.2", "-", "/", "-"]
    assert "0 15W (not max)" in rows["power mode"] and "0 MAXN" in rows["power mode"]
    assert rows["clocks locked"].split() == ["no", "yes", "-"]
