"""actsac.bench.bus: the bus-cycle benchmark on the simulator, and its safety rules on a "real" port
(a simulator port given explicitly takes the real-robot path)."""

import json
import math
import subprocess
import sys

import pytest

from actsac.bench import BenchError
from actsac.bench.bus import run_bus_cycle, wire_floor_s
from actsac.drivers.bus import make_bus
from actsac.drivers.robots import load_robot
from actsac.drivers.sim import simulate
from actsac.drivers.tables import Reg
from tests.drivers.conftest import deadline  # noqa: F401 (autouse: no bus test may hang)


@pytest.mark.parametrize("robot", ["so100", "koch"])
def test_short_run_returns_sane_figures(robot):
    result = run_bus_cycle(robot, cycles=50)
    json.dumps(result)  # JSON-friendly
    assert result["robot"] == robot and result["simulated"] is True and "concurrent" not in result
    [bus] = result["buses"]
    assert bus["motors"] == 6 and bus["cycles"] == 50 and bus["baudrate"] == 1_000_000
    assert bus["family"] == ("feetech" if robot == "so100" else "dynamixel")
    assert 0 < bus["floor_ms"] <= bus["p50_ms"] <= bus["p99_ms"] <= bus["max_ms"]
    assert math.isclose(bus["overhead_p50_ms"], bus["p50_ms"] - bus["floor_ms"])


def test_wire_floor_matches_the_reference_table():
    # REFERENCE.md section 6: STS 6 x 2 bytes 0.88 ms; Dynamixel 1.54 ms (sync read), 1.20 ms (fast sync read)
    assert wire_floor_s(load_robot("so100").buses[0]) == pytest.approx(0.88e-3)
    koch = load_robot("koch").buses[0]
    assert wire_floor_s(koch) == pytest.approx(1.54e-3)
    assert wire_floor_s(koch, fast_sync_read=True) == pytest.approx(1.20e-3)


def test_several_buses_also_measured_at_once(tmp_path):
    toml = tmp_path / "two.toml"
    toml.write_text('name = "two"\n'
                    '[[buses]]\nname = "a"\nfamily = "feetech"\n'
                    'motors = [{name = "a1", id = 1, model = "sts3215"}, {name = "a2", id = 2, model = "sts3215"}]\n'
                    '[[buses]]\nname = "b"\nfamily = "dynamixel"\n'
                    'motors = [{name = "b1", id = 1, model = "xl330-m288"}]\n'
                    '[[groups]]\nname = "all"\njoints = ["a1", "a2", "b1"]\n')
    result = run_bus_cycle(str(toml), cycles=30, wire_time=False)
    assert [b["bus"] for b in result["buses"]] == ["a", "b"] and result["wire_time"] is False
    c = result["concurrent"]
    assert c["cycles"] == 30 and 0 < c["p50_ms"] <= c["p99_ms"]
    assert c["slowest_bus_p50_ms"] <= c["sum_of_bus_p50_ms"]


def test_real_port_with_torque_off_writes_back_the_pose_and_leaves_torque_off():
    spec = load_robot("so100")
    with simulate(spec, wire_time=False) as ports:
        result = run_bus_cycle("so100", port=ports["main"], cycles=20)
        assert result["simulated"] is False and result["buses"][0]["cycles"] == 20
        with make_bus(spec.buses[0], ports["main"]) as bus:
            assert not any(bus.sync_read(Reg.Torque_Enable).values())


def test_real_port_with_torque_on_is_refused_and_left_as_found():
    spec = load_robot("koch")
    with simulate(spec, wire_time=False) as ports:
        bus = make_bus(spec.buses[0], ports["main"])
        bus.connect()
        bus.enable_torque(["elbow_flex"])
        bus.disconnect(disable_torque=False)
        with pytest.raises(BenchError, match="torque is on for elbow_flex"):
            run_bus_cycle("koch", port={"main": ports["main"]}, cycles=20)
        with make_bus(spec.buses[0], ports["main"]) as bus:
            assert bus.sync_read(Reg.Torque_Enable)["elbow_flex"] == 1  # not dropped by surprise


@pytest.mark.parametrize("kwargs, message", [
    (dict(robot="nosuch"), "unknown robot 'nosuch'"),
    (dict(robot="so100", baudrate=123), "baudrate 123 is not a baud rate of sts3215"),
    (dict(robot="so100", port="/dev/actsac-no-such-port"), "could not open port"),
    (dict(robot="upper_body", port="/dev/null"), "has 3 buses"),
    (dict(robot="so100", port="arm=/dev/null"), "has no bus 'arm'"),
    (dict(robot="so100", cycles=0), "cycles: must be >= 1"),
])
def test_mistakes_are_one_line_errors(kwargs, message):
    with pytest.raises(BenchError, match=message) as info:
        run_bus_cycle(**kwargs)
    assert "\n" not in str(info.value)


def test_cli_prints_the_table():
    proc = subprocess.run([sys.executable, "-m", "actsac.bench.cli", "--bus", "--robot", "so100", "--cycles", "20"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    intro, header, row = proc.stdout.strip().splitlines()
    assert intro.startswith("bus cycle: so100 on the simulator")
    assert header.split()[:3] == ["robot", "bus", "family"] and row.split()[:4] == ["so100", "main", "feetech", "6"]
    proc = subprocess.run([sys.executable, "-m", "actsac.bench.cli", "--bus", "--robot", "nosuch"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and proc.stderr.startswith("error: unknown robot 'nosuch'")
    assert "Traceback" not in proc.stderr
