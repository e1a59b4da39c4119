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
from typing import Mapping

import numpy as np

from actsac._cli import first_line
from actsac.drivers import dynamixel_protocol as dxl
from actsac.drivers import feetech_protocol as fts
from actsac.drivers.bus import MotorBus, make_bus
from actsac.drivers.errors import BusError, RobotSpecError
from actsac.drivers.robots import BusSpec, RobotSpec, load_robot, parse_ports
from actsac.drivers.tables import Reg, motor_model
from actsac.timing import time_calls

from . import BenchError

WARMUP_CYCLES = 50


def bench_bus(robots: list[str], port: str | None, cycles: int, *, wire_time: bool = True,
              baudrate: int | None = None) -> dict:
    """actsac-bench --bus: every robot measured and printed as one table. Returns the report's ``bus`` section:
    the robot's result, or ``{"robots": [result, ...]}`` for several robots."""
    where = f"port {port}" if port else "the simulator"
    print(f"bus cycle: {', '.join(robots)} on {where}, {cycles} cycles per bus", flush=True)
    results = []
    # SIGTERM as Ctrl-C: KeyboardInterrupt unwinds through the benchmark's cleanup (torque off, ports closed)
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        for robot in robots:
            results.append(run_bus_cycle(robot, port=port, cycles=cycles, wire_time=wire_time, baudrate=baudrate))
            print_bus_cycle(results[-1], header=len(results) == 1)
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


def _torque_on(bus: MotorBus) -> list[str]:
    return [name for name, on in bus.sync_read(Reg.Torque_Enable).items() if on]


def _p50_p99(samples_ms: list[float]) -> dict:
    return {"p50_ms": float(np.median(samples_ms)), "p99_ms": float(np.percentile(samples_ms, 99, method="nearest"))}


def measure_bus(bus: MotorBus, cycles: int, warmup: int = WARMUP_CYCLES) -> dict:
    """Time ``cycles`` cycles on a connected bus whose motors all have torque off (checked, see module doc)."""
    on = _torque_on(bus)
    if on:
        bus.disconnect(disable_torque=False)
        raise BenchError(f"port {bus.port}: torque is on for {', '.join(on)}; the bus benchmark runs with torque "
                         "off only (turn it off first, supporting the arm)")
    _cycle(bus)
    on = _torque_on(bus)
    if on:
        bus.disable_torque()
        raise BenchError(f"port {bus.port}: writing Goal_Position turned torque on for {', '.join(on)} "
                         "(firmware behaviour); stopped and turned torque off")
    samples = time_calls(lambda: _cycle(bus), cycles, warmup).samples_ms
    fast = bool(getattr(bus, "fast_sync_read", False))
    floor_ms = wire_floor_s(bus.spec, fast, max(bus.sync_read(Reg.Return_Delay_Time).values()) * 2e-6) * 1e3
    figures = _p50_p99(samples)
    return {"bus": bus.spec.name, "family": bus.spec.family, "motors": len(bus.motors),
            "baudrate": bus.spec.baudrate, "fast_sync_read": fast, "cycles": cycles, **figures,
            "max_ms": max(samples), "floor_ms": floor_ms, "overhead_p50_ms": figures["p50_ms"] - floor_ms}


def measure_robot(spec: RobotSpec, ports: Mapping[str, str], cycles: int, warmup: int = WARMUP_CYCLES) -> dict:
    """Every bus at once through Robot (one worker per bus): read all positions, write them back as goals.
    Runs after ``measure_bus`` has checked every bus (torque off)."""
    from actsac.drivers.robot import Robot

    robot = Robot(spec, ports)
    try:
        robot.connect()
        stats = time_calls(lambda: robot.write_raw(Reg.Goal_Position, robot.read_raw(Reg.Present_Position)),
                           cycles, warmup)
    finally:
        robot.close()
    return {"cycles": cycles, **_p50_p99(stats.samples_ms)}


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
    """Measure each bus of ``robot`` (a built-in name or a TOML path), then all buses at once (robots with several
    buses only), on ``port`` or else the simulator (``wire_time`` emulates the baud rate). User mistakes and bus
    failures raise ``BenchError`` with one line."""
    from actsac.drivers.sim import simulate

    if cycles < 1:
        raise BenchError(f"cycles: must be >= 1, got {cycles}")
    try:
        spec = load_robot(robot)
    except RobotSpecError as exc:
        raise BenchError(str(exc)) from None
    if baudrate is not None:
        spec = _with_baudrate(spec, baudrate)
    try:
        with contextlib.ExitStack() as stack:
            ports = stack.enter_context(simulate(spec, wire_time=wire_time)) if port is None else _ports(port, spec)
            results = []
            for bus_spec in spec.buses:
                with make_bus(bus_spec, ports[bus_spec.name]) as bus:
                    results.append(measure_bus(bus, cycles))
            result = {"robot": spec.name, "simulated": port is None,
                      "wire_time": wire_time if port is None else None, "buses": results}
            if len(spec.buses) > 1:
                result["concurrent"] = {**measure_robot(spec, ports, cycles),
                                        "sum_of_bus_p50_ms": sum(r["p50_ms"] for r in results),
                                        "slowest_bus_p50_ms": max(r["p50_ms"] for r in results)}
    except BusError as exc:
        raise BenchError(f"robot '{spec.name}': {first_line(exc)}") from exc
    return result


def print_bus_cycle(result: dict, header: bool = True) -> None:
    """The result as a fixed-width table: one row per bus, plus one for all buses at once."""
    rows = [f"{'robot':<11}{'bus':<7}{'family':<10}{'n':>3}{'read':>6}{'p50 ms':>9}{'p99 ms':>9}{'floor ms':>10}"
            f"{'overhead':>10}"] if header else []
    for r in result["buses"]:
        rows.append(f"{result['robot']:<11}{r['bus']:<7}{r['family']:<10}{r['motors']:>3}"
                    f"{'fast' if r['fast_sync_read'] else 'sync':>6}{r['p50_ms']:>9.3f}{r['p99_ms']:>9.3f}"
                    f"{r['floor_ms']:>10.3f}{r['overhead_p50_ms']:>+10.3f}")
    if "concurrent" in result:
        c = result["concurrent"]
        rows.append(f"{result['robot']:<11}{'all':<7}{'(workers)':<19}{c['p50_ms']:>9.3f}{c['p99_ms']:>9.3f}"
                    f"   slowest bus {c['slowest_bus_p50_ms']:.3f}, sum {c['sum_of_bus_p50_ms']:.3f}")
    print("\n".join(rows), flush=True)
