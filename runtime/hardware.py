"""Opening the robot a run drives: the robot definition, its calibration, and the simulator or the real ports.

``open_robot`` is the one place that tells simulator from hardware: without a port the robot's buses are
simulated (in their own process) and the simulator's own calibration applies unless a file is given; with a
port a calibration file is required (``--calibration``, else the default file of ``actsac-calibrate``).
Every problem is a ``RunRefused`` before anything is powered.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

from actsac._cli import first_line
from actsac.drivers.errors import RobotSpecError
from actsac.drivers.robot import Robot
from actsac.drivers.robots import RobotSpec, load_robot, parse_ports
from actsac.drivers.sim import SimOptions

from .errors import RunRefused


def robot_spec(name_or_path: str) -> RobotSpec:
    try:
        return load_robot(name_or_path)
    except RobotSpecError as exc:
        raise RunRefused(str(exc)) from None


def load_run_calibration(path: Path | None, spec: RobotSpec, real_port: bool):
    """The calibration to write to the motors, or None on the simulator without a file (its motors start
    calibrated)."""
    from actsac.calibration import (CalibrationError, default_calibration_path, load_calibration,
                                    missing_calibration_message)

    try:
        if path is None:
            if not real_port:
                return None
            path = default_calibration_path(spec.name)
            if not path.is_file():
                raise RunRefused("refusing to enable torque without a calibration: "
                                 + missing_calibration_message(spec.name, path))
        return load_calibration(path, spec)
    except CalibrationError as exc:
        raise RunRefused(first_line(exc)) from None


def robot_ports(spec: RobotSpec, port: str | None) -> dict[str, str] | None:
    """``--port`` as {bus: port}, or None for the simulator."""
    try:
        return None if port is None else parse_ports(port, spec)
    except RobotSpecError as exc:
        raise RunRefused(f"--port: {exc}") from None


@contextlib.contextmanager
def open_robot(spec: RobotSpec, ports: dict[str, str] | None, calibration=None, *,
               sim: SimOptions | None = None, seed: int = 0) -> Iterator[Robot]:
    """A ``Robot`` (not yet connected) on the simulator when ``ports`` is None, else on them, with
    ``calibration`` (from ``load_run_calibration``); the simulator is stopped and the robot's workers
    released when the block ends (the session reaches the safe state first; whatever happens, torque is off
    when the block is left)."""
    with contextlib.ExitStack() as stack:
        if ports is None:
            from actsac.drivers.sim import simulate

            sim = sim or SimOptions()
            try:
                ports = stack.enter_context(simulate(spec, wire_time=sim.wire_time, faults=sim.faults, seed=seed))
            except RuntimeError as exc:  # the simulator process did not start (its stderr says why)
                raise RunRefused(str(exc)) from None
        try:
            robot = Robot(spec, ports, calibration)  # the drivers' patient timing while connecting
        except (ValueError, KeyError) as exc:
            raise RunRefused(str(exc)) from None
        try:
            yield robot
        finally:
            robot.safe_stop()  # a no-op after the session's own safe stop; never raises
