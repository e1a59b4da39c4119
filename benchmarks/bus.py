"""The bus-cycle benchmark (``actsac-bench --bus``): one control tick's bus traffic (sync read Present_Position
+ sync write Goal_Position), timed per bus and for all buses at once, next to its wire-time floor (REFERENCE.md
section 6). Without a port it runs on the simulator (wire time emulated, so the overhead above the floor is
the software's: client, pty, simulator).

On a real port it is made safe, since writing goals to a powered arm could move it:
  * it runs only with torque OFF on every motor: a motor found with torque on stops the run before anything
    is written (torque is left as found, so a held arm does not drop by surprise);
  * each cycle writes back exactly the positions it has just read, so a goal never differs from the pose;
  * after the first cycle it checks that torque is still off (some Feetech firmwares turn torque on when a
    goal is written); if not, it stops and turns torque off;
  * every exit (end, error, Ctrl-C, SIGTERM) disconnects with torque off.
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import statistics
import time
from typing import Mapping

from actsac._cli import first_line
from actsac.drivers import dynamixel_protocol as dxl
from actsac.drivers import feetech_protocol as fts
from actsac.drivers.bus import MotorBus, make_bus
from actsac.drivers.errors import BusError, RobotSpecError
from actsac.drivers.robots import BusSpec, RobotSpec, load_robot, parse_ports
from actsac.drivers.tables import Reg, motor_model

from . import BenchError

WARMUP_CYCLES = 50


class TorqueIsOn(BenchError):
    """A motor had torque on before the benchmark wrote anything: refused, torque left as found."""


def bench_bus(robots: list[str], port: str | None, cycles: int, *, wire_time: bool = True,
              baudrate: int | None = None) -> dict:
    """actsac-bench --bus: every robot measured and printed as one table. Returns the report's ``bus`` section:
    the robot's result, or ``{"robots": [result, ...]}`` for several robots."""
    def on_sigterm(signum, frame):
        raise KeyboardInterrupt  # unwinds through the benchmark's cleanup: torque off, ports closed

    where = f"port {port}" if port else "the simulator"
    print(f"bus cycle: {', '.join(robots)} on {where}, {cycles} cycles per bus", flush=True)
    results = []
    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        for robot in robots:
            results.append(run_bus_cycle(robot, port=port, cycles=cycles, wire_time=wire_time, baudrate=baudrate))
            print(format_bus_cycle(results[-1], header=len(results) == 1), flush=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
    return results[0] if len(results) == 1 else {"robots": results}


def wire_floor_s(spec: BusSpec, fast_sync_read: bool = False, return_delay_s: float = 0.0) -> float:
    """Seconds the cycle's bytes occupy the wire (10 bits per byte) plus the replying motors' return delays.
    Register addresses and sizes come from the control table of the bus's motors (one sync read or write
    addresses every motor of a bus at the same place)."""
    ids = [m.id for m in spec.motors]
    n = len(ids)
    model = motor_model(spec.motors[0].model)
    read, write = model.register(Reg.Present_Position), model.register(Reg.Goal_Position)
    if spec.family == "feetech":
        read_bytes = len(fts.sync_read(ids, read.address, read.size)) + n * (fts.STATUS_OVERHEAD + read.size)
        write_bytes = len(fts.sync_write(write.address, write.size, {i: 0 for i in ids}))
    else:
        replies = 8 + n * (read.size + 4) if fast_sync_read else n * (dxl.STATUS_OVERHEAD + read.size)
        read_bytes = len(dxl.sync_read(ids, read.address, read.size, fast=fast_sync_read)) + replies
        write_bytes = len(dxl.sync_write(write.address, write.size, {i: 0 for i in ids}))
    delays = return_delay_s * (1 if fast_sync_read else n)
    return (read_bytes + write_bytes) * 10.0 / spec.baudrate + delays


def _cycle(bus: MotorBus) -> None:
    """Write back the positions just read: the goal always equals the pose (safe even if torque came on)."""
    bus.sync_write(Reg.Goal_Position, bus.sync_read(Reg.Present_Position))


def _percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(round(q * (len(sorted_values) - 1))))]


def _torque_on(bus: MotorBus) -> list[str]:
    return [name for name, on in bus.sync_read(Reg.Torque_Enable).items() if on]


def measure_bus(bus: MotorBus, cycles: int, warmup: int = WARMUP_CYCLES) -> dict:
    """Time ``cycles`` cycles on a connected bus whose motors all have torque off (checked, see module doc)."""
    on = _torque_on(bus)
    if on:
        raise TorqueIsOn(f"port {bus.port}: torque is on for {', '.join(on)}; the bus benchmark runs with torque "
                         "off only (turn it off first, supporting the arm)")
    _cycle(bus)
    on = _torque_on(bus)
    if on:
        bus.disable_torque()
        raise BenchError(f"port {bus.port}: writing Goal_Position turned torque on for {', '.join(on)} "
                         "(firmware behaviour); stopped and turned torque off")
    for _ in range(warmup):
        _cycle(bus)
    times = []
    for _ in range(cycles):
        start = time.perf_counter()
        _cycle(bus)
        times.append(time.perf_counter() - start)
    times.sort()
    delays = bus.sync_read(Reg.Return_Delay_Time)
    fast = bool(getattr(bus, "fast_sync_read", False))
    floor = wire_floor_s(bus.spec, fast, max(delays.values()) * 2e-6)
    p50 = statistics.median(times)
    return {"bus": bus.spec.name, "family": bus.spec.family, "motors": len(bus.motors),
            "baudrate": bus.spec.baudrate, "fast_sync_read": fast, "cycles": cycles,
            "p50_ms": p50 * 1e3, "p99_ms": _percentile(times, 0.99) * 1e3, "max_ms": times[-1] * 1e3,
            "floor_ms": floor * 1e3, "overhead_p50_ms": (p50 - floor) * 1e3}


def measure_robot(spec: RobotSpec, ports: Mapping[str, str], cycles: int, warmup: int = WARMUP_CYCLES) -> dict:
    """Every bus at once through Robot (one worker per bus): read all positions, write them back as goals.
    Runs after ``measure_bus`` has checked every bus (torque off)."""
    from actsac.drivers.robot import Robot

    robot = Robot(spec, ports)
    try:
        robot.connect()
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


def _ports(port: str | Mapping[str, str], spec: RobotSpec) -> dict[str, str]:
    if not isinstance(port, str):
        port = ",".join(f"{bus}={path}" for bus, path in port.items())
    try:
        return parse_ports(port, spec)
    except RobotSpecError as exc:
        raise BenchError(f"--port: {exc}") from None


def _with_baudrate(spec: RobotSpec, baudrate: int) -> RobotSpec:
    for m in spec.motors:
        rates = motor_model(m.model).baud_rates.values()
        if baudrate not in rates:
            raise BenchError(f"baudrate {baudrate} is not a baud rate of {m.model} (motor {m.name}; one of "
                             f"{', '.join(str(r) for r in sorted(rates))})")
    return dataclasses.replace(spec, buses=tuple(dataclasses.replace(b, baudrate=baudrate) for b in spec.buses))


def run_bus_cycle(robot: str = "so100", port: str | Mapping[str, str] | None = None, cycles: int = 2000,
                  wire_time: bool = True, baudrate: int | None = None) -> dict:
    """Measure each bus of ``robot`` (a built-in name or a TOML path), then all buses at once.

    ``port`` None: the simulator (``wire_time`` emulates the baud rate); else a real robot (see the module doc
    for what is written and why it is safe). ``baudrate`` overrides every bus's baud rate. User mistakes and
    bus failures raise ``BenchError`` with one line. Returns a JSON-friendly dict: {"robot", "simulated",
    "wire_time", "buses": [{"bus", "family", "motors", "baudrate", "fast_sync_read", "cycles", "p50_ms",
    "p99_ms", "max_ms", "floor_ms", "overhead_p50_ms"}], "concurrent": {...} (robots with several buses only)}.
    """
    if cycles < 1:
        raise BenchError(f"cycles: must be >= 1, got {cycles}")
    try:
        spec = load_robot(robot)
    except RobotSpecError as exc:
        raise BenchError(str(exc)) from None
    if baudrate is not None:
        spec = _with_baudrate(spec, baudrate)
    try:
        return _run(spec, port, cycles, wire_time)
    except BusError as exc:
        raise BenchError(f"robot '{spec.name}': {first_line(exc)}") from exc


def _run(spec: RobotSpec, port, cycles: int, wire_time: bool) -> dict:
    from actsac.drivers.sim import simulate

    with contextlib.ExitStack() as stack:
        ports = stack.enter_context(simulate(spec, wire_time=wire_time)) if port is None else _ports(port, spec)
        results = []
        for bus_spec in spec.buses:
            bus = make_bus(bus_spec, ports[bus_spec.name])
            bus.connect()
            try:
                results.append(measure_bus(bus, cycles))
            except TorqueIsOn:
                bus.disconnect(disable_torque=False)  # leave a held arm as found: never drop it by surprise
                raise
            except BaseException:
                bus.disconnect()
                raise
            bus.disconnect()
        result = {"robot": spec.name, "simulated": port is None, "wire_time": wire_time if port is None else None,
                  "buses": results}
        if len(spec.buses) > 1:
            concurrent = measure_robot(spec, ports, cycles)
            concurrent["sum_of_bus_p50_ms"] = sum(r["p50_ms"] for r in results)
            concurrent["slowest_bus_p50_ms"] = max(r["p50_ms"] for r in results)
            result["concurrent"] = concurrent
    return result


def format_bus_cycle(result: dict, header: bool = True) -> str:
    """The result as a fixed-width table: one row per bus, plus one for all buses at once."""
    lines = []
    if header:
        lines.append(f"{'robot':<11}{'bus':<7}{'family':<10}{'n':>3}{'read':>6}{'p50 ms':>9}{'p99 ms':>9}"
                     f"{'floor ms':>10}{'overhead':>10}")
    for r in result["buses"]:
        kind = "fast" if r["fast_sync_read"] else "sync"
        lines.append(f"{result['robot']:<11}{r['bus']:<7}{r['family']:<10}{r['motors']:>3}{kind:>6}"
                     f"{r['p50_ms']:>9.3f}{r['p99_ms']:>9.3f}{r['floor_ms']:>10.3f}{r['overhead_p50_ms']:>+10.3f}")
    if "concurrent" in result:
        c = result["concurrent"]
        lines.append(f"{result['robot']:<11}{'all':<7}{'(workers)':<10}{'':>3}{'':>6}{c['p50_ms']:>9.3f}"
                     f"{c['p99_ms']:>9.3f}   slowest bus {c['slowest_bus_p50_ms']:.3f}, "
                     f"sum {c['sum_of_bus_p50_ms']:.3f}")
    return "\n".join(lines)
