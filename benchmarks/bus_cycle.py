"""Latency of one bus cycle (sync read Present_Position + sync write Goal_Position) next to its wire-time floor.

    python benchmarks/bus_cycle.py                  # so100 (Feetech) and koch (Dynamixel) on the simulator
    python benchmarks/bus_cycle.py --robot upper_body --cycles 500
    python benchmarks/bus_cycle.py --robot so100 --port /dev/ttyACM0   # a real bus (torque stays off)

The floor is the bytes on the wire at the bus's baud rate, 10 bits per byte (REFERENCE.md section 6), plus the
motors' return delays; the simulator emulates it, so the overhead above it is the software's (client, pty,
simulator scheduling). ``run_bus_cycle`` is importable for ``actsac-bench --bus``.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

from actsac.drivers import dynamixel_protocol as dxl
from actsac.drivers import feetech_protocol as fts
from actsac.drivers.bus import MotorBus, make_bus
from actsac.drivers.robots import BusSpec, load_robot
from actsac.drivers.tables import Reg


def wire_floor_s(spec: BusSpec, fast_sync_read: bool = False, return_delay_s: float = 0.0) -> float:
    """Seconds the cycle's bytes occupy the wire: instruction + replies of the sync read, plus the sync write."""
    ids = [m.id for m in spec.motors]
    n = len(ids)
    if spec.family == "feetech":
        size = 2
        read = len(fts.sync_read(ids, 56, size)) + n * (fts.STATUS_OVERHEAD + size)
        write = len(fts.sync_write(42, size, {i: 0 for i in ids}))
    else:
        size = 4
        replies = 8 + n * (size + 4) if fast_sync_read else n * (dxl.STATUS_OVERHEAD + size)
        read = len(dxl.sync_read(ids, 132, size, fast=fast_sync_read)) + replies
        write = len(dxl.sync_write(116, size, {i: 0 for i in ids}))
    delays = return_delay_s * (1 if fast_sync_read else n)
    return (read + write) * 10.0 / spec.baudrate + delays


def _cycle(bus: MotorBus) -> None:
    bus.sync_write(Reg.Goal_Position, bus.sync_read(Reg.Present_Position))


def _percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(round(q * (len(sorted_values) - 1))))]


def measure_bus(bus: MotorBus, cycles: int, warmup: int = 50) -> dict:
    for _ in range(warmup):
        _cycle(bus)
    times = []
    for _ in range(cycles):
        start = time.perf_counter()
        _cycle(bus)
        times.append(time.perf_counter() - start)
    times.sort()
    delays = bus.sync_read(Reg.Return_Delay_Time)
    fast = getattr(bus, "fast_sync_read", False)
    floor = wire_floor_s(bus.spec, fast, max(delays.values()) * 2e-6)
    p50 = statistics.median(times)
    return {"bus": bus.spec.name, "family": bus.spec.family, "motors": len(bus.motors),
            "baudrate": bus.spec.baudrate, "fast_sync_read": fast, "cycles": cycles,
            "p50_ms": p50 * 1e3, "p99_ms": _percentile(times, 0.99) * 1e3, "max_ms": times[-1] * 1e3,
            "floor_ms": floor * 1e3, "overhead_p50_ms": (p50 - floor) * 1e3}


def run_bus_cycle(robot: str = "so100", port: str | dict | None = None, cycles: int = 1000) -> dict:
    """Measure each bus of ``robot``: on the simulator (wire time emulated) when ``port`` is None, else on
    the given port (a path for a one-bus robot, or {bus name: path}). Torque is never turned on.

    Returns {"robot": name, "simulated": bool, "buses": [per-bus dict with p50_ms, p99_ms, floor_ms, ...]}.
    """
    from actsac.drivers.sim import simulate

    spec = load_robot(robot)
    with contextlib.ExitStack() as stack:
        if port is None:
            ports = stack.enter_context(simulate(spec, wire_time=True))
        elif isinstance(port, str):
            ports = {spec.buses[0].name: port}
        else:
            ports = dict(port)
        results = []
        for bus_spec in spec.buses:
            bus = make_bus(bus_spec, ports[bus_spec.name])
            bus.connect()
            try:
                results.append(measure_bus(bus, cycles))
            finally:
                bus.disconnect()
        result = {"robot": spec.name, "simulated": port is None, "buses": results}
        if len(spec.buses) > 1:
            result["concurrent"] = measure_robot(spec, ports, cycles)
            result["concurrent"]["sum_of_bus_p50_ms"] = sum(r["p50_ms"] for r in results)
            result["concurrent"]["slowest_bus_p50_ms"] = max(r["p50_ms"] for r in results)
    return result


def measure_robot(spec, ports, cycles: int, warmup: int = 50) -> dict:
    """Every bus at once through Robot (one worker per bus): read all positions, write them back as goals."""
    from actsac.drivers.robot import Robot

    robot = Robot(spec, ports)
    robot.connect()
    try:
        times = []
        for k in range(warmup + cycles):
            start = time.perf_counter()
            robot.write_raw(Reg.Goal_Position, robot.read_raw(Reg.Present_Position))
            if k >= warmup:
                times.append(time.perf_counter() - start)
    finally:
        robot.close()
    times.sort()
    return {"cycles": cycles, "p50_ms": statistics.median(times) * 1e3, "p99_ms": _percentile(times, 0.99) * 1e3}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--robot", nargs="+", default=["so100", "koch"], help="robots to measure")
    parser.add_argument("--port", help="a real bus instead of the simulator (one-bus robot)")
    parser.add_argument("--cycles", type=int, default=2000)
    args = parser.parse_args(argv)
    print(f"{'robot':<11}{'bus':<7}{'family':<10}{'n':>3}{'read':>6}{'p50 ms':>9}{'p99 ms':>9}"
          f"{'floor ms':>10}{'overhead':>10}")
    for robot in args.robot:
        result = run_bus_cycle(robot, args.port, args.cycles)
        for r in result["buses"]:
            kind = "fast" if r["fast_sync_read"] else "sync"
            print(f"{result['robot']:<11}{r['bus']:<7}{r['family']:<10}{r['motors']:>3}{kind:>6}{r['p50_ms']:>9.3f}"
                  f"{r['p99_ms']:>9.3f}{r['floor_ms']:>10.3f}{r['overhead_p50_ms']:>+10.3f}")
        if "concurrent" in result:
            c = result["concurrent"]
            print(f"{result['robot']:<11}{'all':<7}{'(workers)':<10}{'':>3}{'':>6}{c['p50_ms']:>9.3f}{c['p99_ms']:>9.3f}"
                  f"   slowest bus {c['slowest_bus_p50_ms']:.3f}, sum {c['sum_of_bus_p50_ms']:.3f}")


if __name__ == "__main__":
    main()
