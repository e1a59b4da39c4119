"""Protocol-faithful servo-bus simulator: real bytes on pseudo-terminals, served from a separate process.

    with simulate("so100") as ports:          # {"main": "/dev/pts/7"}
        robot = Robot(load_robot("so100"), ports)

    with simulate("so100", cameras={"front": (48, 64, 30.0)}) as ports:
        ports.cameras                          # {"front": "/dev/shm/actsac-camera-front-..."} (drivers/sim/feed.py)

Any standard client (the project's buses, dynamixel-sdk, feetech-servo-sdk) can drive the ports.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import select
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import actsac
from actsac.options import option

from ..robots import RobotSpec, load_robot
from .feed import check_can_draw
from .motors import SweepHand
from .server import Faults, Server

__all__ = ["simulate", "SimPorts", "SimOptions", "Faults", "SweepHand", "Server"]


@dataclass
class SimOptions:
    """How the simulated robot behaves when no port is given: simulator knobs, not robot settings."""

    wire_time: bool = option(True, "simulator only: emulate each bus's baud rate (--no-wire-time: bytes go as "
                                   "fast as the pseudo-terminal moves them)")
    faults: Faults | None = None  # seeded fault injection, for tests and benchmarks

STARTUP_TIMEOUT_S = 30.0  # a cold interpreter start on a loaded 2-core machine can take seconds


def _hand(hand) -> SweepHand | None:
    if hand is None or isinstance(hand, SweepHand):
        return hand
    if hand == "sweep":
        return SweepHand()
    raise ValueError(f"unknown hand motion {hand!r} (None, 'sweep' or a SweepHand)")


class SimPorts(dict):
    """{bus name: port} of a simulated robot; ``cameras`` is {camera name: frame feed path}."""

    cameras: dict[str, str]


@contextlib.contextmanager
def simulate(spec: RobotSpec | str, *, wire_time: bool = True, faults: Faults | None = None,
             hand: SweepHand | str | None = None, seed: int = 0,
             cameras: dict[str, tuple[int, int, float]] | None = None) -> Iterator[SimPorts]:
    """Start the robot's simulated buses (and cameras) in their own process; yield ``{bus_name: "/dev/pts/N"}``.

    ``spec`` is a RobotSpec, a built-in robot name or a TOML path. ``wire_time`` emulates each bus's baud
    rate; ``hand`` ("sweep") moves torque-off joints through their sim range; ``faults`` are seeded by
    ``seed``; ``cameras`` ({name: (height, width, fps)}) are rendered from the simulated arm, their feeds in
    the yielded ports' ``cameras``. The process is stopped (SIGTERM, then SIGKILL) when the block exits, and it
    also exits by itself if this process dies.
    """
    robot = load_robot(spec) if isinstance(spec, (str, os.PathLike)) else spec
    for name in cameras or {}:
        check_can_draw(robot, name)
    options = dict(wire_time=wire_time, faults=faults, hand=_hand(hand), seed=seed, cameras=cameras)
    code = "from actsac.drivers.sim.server import child_main; child_main()"
    # Its own session: a terminal's Ctrl-C goes to this process, which stops the robot through the simulator
    # before stopping the simulator; the simulator must not die first.
    # Started beside the installed package: from a checkout's root, the folder actsac/ (the foundation, without
    # the subpackages) would otherwise shadow a regular install on ``-c``'s sys.path.
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            start_new_session=True, cwd=Path(actsac.__file__).resolve().parents[1])
    try:
        proc.stdin.write(pickle.dumps((robot, options)))
        proc.stdin.flush()
        ready, _, _ = select.select([proc.stdout], [], [], STARTUP_TIMEOUT_S)
        line = proc.stdout.readline() if ready else b""
        if not line:
            raise RuntimeError(f"simulator for robot '{robot.name}' did not start "
                               f"(exit code {proc.poll()}; see its stderr above)")
        announced = json.loads(line)
        ports = SimPorts(announced["ports"])
        ports.cameras = announced["cameras"]
        yield ports
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    for stream in (proc.stdin, proc.stdout):
        try:
            stream.close()
        except (OSError, BrokenPipeError):
            pass
