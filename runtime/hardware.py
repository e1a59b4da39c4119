"""Opening the robot a run drives: the robot definition, its calibration, and the simulator or the real ports.

``open_robot`` is the one place that tells simulator from hardware: without a port the robot's buses are
simulated (in their own process) and the simulator's own calibration applies unless a file is given; with a
port a calibration file is required (``--calibration``, else the default file of ``actsac-calibrate``).
The cameras a model sees come from the robot definition (``[cameras.<name>]``) or ``--camera NAME=SOURCE``;
one without a source is the simulator's camera, rendered by the simulator process (only without a port).
Only the cameras the model sees are opened. Every problem is a ``RunRefused`` before anything is powered.
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Iterator

from actsac._cli import first_line
from actsac.drivers.cameras import DEFAULT_FPS, make_camera
from actsac.drivers.errors import CameraError, RobotSpecError
from actsac.drivers.robot import Robot
from actsac.drivers.robots import CameraSpec, RobotSpec, load_robot, parse_ports
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


def parse_camera_overrides(items: list[str] | None) -> dict[str, str]:
    """``--camera NAME=SOURCE`` (repeatable) -> {name: source}."""
    out = {}
    for item in items or []:
        name, sep, source = item.partition("=")
        if not sep or not name.isidentifier() or not source:
            raise RunRefused(f"--camera {item}: expected NAME=SOURCE (e.g. front=/dev/video0, wrist=2, "
                             f"top=rtsp://host/stream, replay=video.mp4)")
        out[name] = source
    return out


def model_cameras(spec: RobotSpec, needed: list[dict], overrides: dict[str, str]) -> dict[str, CameraSpec]:
    """The robot's camera for each camera the model sees (``needed``: the metadata's cameras), with the
    ``--camera`` sources; a camera the robot lacks is refused, and so is an override the model does not see."""
    names = [c["name"] for c in needed]
    unused = [n for n in overrides if n not in names]
    if unused:
        raise RunRefused(f"--camera {unused[0]}=...: the model does not see a camera '{unused[0]}' (it sees "
                         f"{', '.join(names) or 'none'})")
    out = {}
    for name in names:
        camera = spec.camera(name)
        if camera is None and name not in overrides:
            raise RunRefused(f"the model sees camera '{name}', which robot '{spec.name}' does not have: add "
                             f"[cameras.{name}] to the robot file or pass --camera {name}=SOURCE")
        camera = camera or CameraSpec(name)
        out[name] = dataclasses.replace(camera, source=overrides[name]) if name in overrides else camera
    return out


def scene_shows_goals(metadata, spec: RobotSpec, overrides: dict[str, str]) -> bool:
    """A model that sees its goal (no ``.goal`` features; task goals over its joints) on simulated cameras: the
    simulated scene shows the task's goals (on hardware the goal is whatever the cameras see)."""
    goals = (metadata.task or {}).get("goals")
    simulated = all(name not in overrides and (spec.camera(name) is None or spec.camera(name).source is None)
                    for name in metadata.camera_names)
    return bool(metadata.cameras and goals and simulated
                and all(len(g) == len(metadata.joint_names) for g in goals))


@contextlib.contextmanager
def open_robot(spec: RobotSpec, ports: dict[str, str] | None, calibration=None, *,
               sim: SimOptions | None = None, seed: int = 0, cameras: list[dict] | None = None,
               camera_sources: dict[str, str] | None = None) -> Iterator[Robot]:
    """A ``Robot`` (not yet connected) on the simulator when ``ports`` is None, else on them, with
    ``calibration`` (from ``load_run_calibration``) and the ``cameras`` a model sees (the metadata's, each
    delivering frames of the model's size); the simulator is stopped and the robot's workers released when
    the block ends (the session reaches the safe state first; whatever happens, torque is off when the block
    is left)."""
    specs = model_cameras(spec, cameras or [], camera_sources or {})
    sizes = {c["name"]: (c["height"], c["width"]) for c in cameras or []}
    with contextlib.ExitStack() as stack:
        feeds = {}
        if ports is None:
            from actsac.drivers.sim import simulate

            sim = sim or SimOptions()
            rendered = {name: (*sizes[name], c.fps or DEFAULT_FPS) for name, c in specs.items() if c.source is None}
            try:
                ports = stack.enter_context(simulate(spec, wire_time=sim.wire_time, faults=sim.faults, seed=seed,
                                                     cameras=rendered))
            except (RuntimeError, ValueError) as exc:  # the simulator did not start (its stderr says why)
                raise RunRefused(str(exc)) from None
            feeds = ports.cameras
        try:
            parts = {name: make_camera(c, feeds.get(name), sizes[name]) for name, c in specs.items()}
            robot = Robot(spec, ports, calibration, parts)  # the drivers' patient timing while connecting
        except (CameraError, ValueError, KeyError) as exc:
            raise RunRefused(str(exc)) from None
        try:
            yield robot
        finally:
            robot.safe_stop()  # a no-op after the session's own safe stop; never raises
