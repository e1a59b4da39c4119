"""Serve simulated buses on pseudo-terminals: one selector loop, deadline-based wire time, seeded faults.

Each bus gets a pty (os.openpty + tty.setraw; the slave fd stays open so the master never sees EIO when a
client closes). One single-threaded loop serves every bus of the robot: instructions are handled as soon as
they arrive, and their replies are written at the time the real bus would have delivered them
(instruction arrival + bytes * 10 / baud + return delays), waiting with select and ending in a short spin.
A bus is busy while its emulated bytes are on the wire, so a sync write followed by a sync read costs the
same wire time as on a real bus. Run it in its own process (REFERENCE.md section 7: the GIL).
"""

from __future__ import annotations

import heapq
import os
import random
import select
import signal
import time
import tty
from dataclasses import dataclass, field
from typing import Mapping

from .. import dynamixel_protocol as dxl
from .. import feetech_protocol as fts
from ..robots import BusSpec, RobotSpec
from .motors import SimMotors, SweepHand
from .protocols import Reply, handle_dynamixel, handle_feetech

SPIN_S = 0.0003  # the last stretch before a deadline is busy-waited: select/sleep overshoot by 50-100 us
STALE_INPUT_S = 0.1  # half a packet left this long is garbage (a client died mid-write)
RENDER_MARGIN_S = 0.001  # a camera frame waits while a bus reply is due sooner than this (a render takes ~0.3 ms)

# Injectable hardware errors per family, word -> bit: the protocols' own bit -> word tables, inverted (Feetech
# reports them in the status error byte, Dynamixel in Hardware_Error_Status behind the alert bit).
HARDWARE_ERRORS = {family: {word: bit for bit, word in table.items()}
                   for family, table in (("feetech", fts.ERROR_BITS), ("dynamixel", dxl.HARDWARE_ERROR_BITS))}


@dataclass(frozen=True)
class Faults:
    """Seeded communication and hardware faults (probabilities per reply packet; motors by name).

    ``motors`` restricts the random faults (drop, corrupt, late) to those motors; None means every motor.
    """

    drop_prob: float = 0.0  # a reply is never sent
    corrupt_prob: float = 0.0  # one byte of a reply is flipped (the checksum/CRC then fails)
    late_prob: float = 0.0  # a reply is sent ``late_s`` after it was due
    late_s: float = 0.05
    silent_after_s: Mapping[str, float] = field(default_factory=dict)  # motor stops answering (and acting)
    hardware_errors: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # e.g. {"elbow_flex": ("overload",)}
    hardware_error_after_s: float = 0.0
    motors: tuple[str, ...] | None = None
    start_after_s: float = 0.0  # drop/corrupt/late begin this long after the simulator started
    camera_frozen_after_s: Mapping[str, float] = field(default_factory=dict)  # same image, fresh timestamps
    camera_silent_after_s: Mapping[str, float] = field(default_factory=dict)  # no more frames
    # motor health (drivers/sim/health.py), motors by name, deterministic:
    blocked: Mapping[str, float] = field(default_factory=dict)  # the joint cannot pass this position (its user
    # unit under its sim_calibration and norm_mode, fixed in actual ticks at start): an object in the gripper, a
    # wall; pushing on it raises effort (saturating 40 ticks short of the goal), then temperature
    stalled_after_s: Mapping[str, float] = field(default_factory=dict)  # seconds after start the shaft sticks
    # where it is; the effort then follows the goal error as on a block
    heat_scale: Mapping[str, float] = field(default_factory=dict)  # heating x this (1: the modelled servo; 20:
    # the temperature limit within seconds at full effort)
    voltage_drop: Mapping[str, float] = field(default_factory=dict)  # the motor's supply falls to these volts
    # (the level, not a difference; below Min_Voltage_Limit the motor reports input voltage) ...
    voltage_drop_after_s: float = 0.0  # ... this many seconds after start


class SimBus:
    """One simulated bus: its pty, its motors, its incoming byte stream and its scheduled replies."""

    def __init__(self, spec: BusSpec, *, wire_time: bool = True, faults: Faults | None = None,
                 hand: SweepHand | None = None, seed: int = 0, clock=time.monotonic):
        self.spec = spec
        self.clock = clock
        self.motors = SimMotors(spec, hand=hand, clock=clock, faults=faults)
        self.faults = faults or Faults()
        self.rng = random.Random(f"{seed}:{spec.name}")
        self.byte_s = 10.0 / spec.baudrate if wire_time else 0.0
        self.parse = fts.parse if spec.family == "feetech" else dxl.parse
        self.handle = handle_feetech if spec.family == "feetech" else handle_dynamixel
        ids = {m.name: m.id for m in spec.motors}
        self.silent_at = {ids[n]: self.motors.start_s + s for n, s in self.faults.silent_after_s.items() if n in ids}
        codes = HARDWARE_ERRORS[spec.family]
        self.pending_hw = {ids[n]: sum(codes[w] for w in words)
                           for n, words in self.faults.hardware_errors.items() if n in ids}
        self.faulty = None if self.faults.motors is None else {ids[n] for n in self.faults.motors if n in ids}
        self.master_fd, self.slave_fd = os.openpty()
        tty.setraw(self.slave_fd)
        os.set_blocking(self.master_fd, False)
        self.port = os.ttyname(self.slave_fd)
        self.rx = bytearray()
        self.last_rx_s = 0.0
        self.busy_until = 0.0
        self.outbox: list[tuple[float, int, bytes]] = []  # heap of (deadline, sequence, bytes)
        self._sequence = 0

    def close(self) -> None:
        for fd in (self.master_fd, self.slave_fd):
            try:
                os.close(fd)
            except OSError:
                pass

    def alive(self, motor_id: int) -> bool:
        at = self.silent_at.get(motor_id)
        return at is None or self.clock() < at

    def receive(self, now: float) -> None:
        """Read what arrived on the master side and handle every complete instruction packet."""
        try:
            data = os.read(self.master_fd, 4096)
        except (BlockingIOError, OSError):
            return
        if self.rx and now - self.last_rx_s > STALE_INPUT_S:
            self.rx.clear()
        self.last_rx_s = now
        self.rx += data
        while self.rx:
            kind, packet, consumed = self.parse(self.rx)
            packet_bytes = bytes(self.rx[:consumed])
            del self.rx[:consumed]
            if kind == "packet":
                self._serve(packet, len(packet_bytes), now)
            elif kind == "incomplete":
                break

    def _serve(self, packet, n_bytes: int, now: float) -> None:
        if self.pending_hw and now >= self.motors.start_s + self.faults.hardware_error_after_s:
            for motor_id, bits in self.pending_hw.items():
                self.motors.set_hardware_error(motor_id, bits)
            self.pending_hw = {}
        replies = self.handle(self.motors, packet, self.alive)
        t = max(now, self.busy_until) + n_bytes * self.byte_s
        on_time = bytearray()
        for reply in replies:
            t += reply.delay_s + len(reply.data) * self.byte_s
            data, late = self._inject(reply)
            if data is None:
                continue
            if late:
                self._schedule(t + self.faults.late_s, data)
            else:
                on_time += data
        self.busy_until = t
        if on_time:
            self._schedule(t, bytes(on_time))

    def _inject(self, reply: Reply) -> tuple[bytes | None, bool]:
        """Apply the random faults to one reply: (bytes or None when dropped, sent late?)."""
        f = self.faults
        if not (f.drop_prob or f.corrupt_prob or f.late_prob):
            return reply.data, False
        if self.faulty is not None and not self.faulty.intersection(reply.motor_ids):
            return reply.data, False
        if self.clock() < self.motors.start_s + f.start_after_s:
            return reply.data, False
        if self.rng.random() < f.drop_prob:
            return None, False
        data = reply.data
        if self.rng.random() < f.corrupt_prob:
            corrupted = bytearray(data)
            k = self.rng.randrange(4 if self.spec.family == "feetech" else 7, len(data))  # ERR/INST onwards
            corrupted[k] ^= 1 << self.rng.randrange(8)
            data = bytes(corrupted)
        return data, self.rng.random() < f.late_prob

    def _schedule(self, deadline: float, data: bytes) -> None:
        self._sequence += 1
        heapq.heappush(self.outbox, (deadline, self._sequence, data))

    def next_deadline(self) -> float | None:
        return self.outbox[0][0] if self.outbox else None

    def send_due(self, now: float) -> None:
        """Write every reply whose deadline is within the spin window, spinning to the exact deadline."""
        while self.outbox and self.outbox[0][0] <= now + SPIN_S:
            deadline, _, data = heapq.heappop(self.outbox)
            while time.monotonic() < deadline:
                pass
            try:
                os.write(self.master_fd, data)
            except (BlockingIOError, OSError):
                pass  # nobody reads this port (client gone): drop rather than block the other buses
            now = time.monotonic()


class Server:
    """All buses of one robot in one loop; ``ports`` maps bus name -> /dev/pts/N. ``cameras`` ({name: (height,
    width, fps)}) are simulated cameras rendered in the same loop; ``feeds`` maps each to its frame feed's path."""

    def __init__(self, robot: RobotSpec, *, wire_time: bool = True, faults: Faults | None = None,
                 hand: SweepHand | None = None, seed: int = 0, cameras: Mapping[str, tuple] | None = None):
        from .feed import CameraFeeder

        self.buses: dict[str, SimBus] = {}
        self.cameras: dict[str, CameraFeeder] = {}
        faults = faults or Faults()
        try:
            for spec in robot.buses:
                self.buses[spec.name] = SimBus(spec, wire_time=wire_time, faults=faults, hand=hand, seed=seed)
            for k, (name, (height, width, fps)) in enumerate((cameras or {}).items()):
                self.cameras[name] = CameraFeeder.for_robot(
                    robot, self.buses, name, height, width, fps, seed=seed * 1000 + k,
                    frozen_after_s=faults.camera_frozen_after_s.get(name),
                    silent_after_s=faults.camera_silent_after_s.get(name))
        except BaseException:
            self.close()
            raise
        self.ports = {name: bus.port for name, bus in self.buses.items()}
        self.feeds = {name: camera.feed.path for name, camera in self.cameras.items()}

    def close(self) -> None:
        for bus in self.buses.values():
            bus.close()
        for camera in self.cameras.values():
            camera.close()

    def _render_cameras(self, now: float) -> None:
        """Render the frames that are due, unless a bus reply is due first (bytes on time come first)."""
        due = [d for d in (bus.next_deadline() for bus in self.buses.values()) if d is not None]
        if due and min(due) < now + RENDER_MARGIN_S:
            return
        for camera in self.cameras.values():
            camera.render_due(now)

    def serve(self, stop_fds: tuple[int, ...] = ()) -> None:
        """Serve until one of ``stop_fds`` becomes readable (a signal wake-up pipe, a parent's stdin)."""
        by_fd = {bus.master_fd: bus for bus in self.buses.values()}
        watched = list(by_fd) + list(stop_fds)
        while True:
            deadlines = [d for d in (bus.next_deadline() for bus in self.buses.values()) if d is not None]
            deadlines += [camera.next_s for camera in self.cameras.values()]
            timeout = max(0.0, min(deadlines) - time.monotonic() - SPIN_S) if deadlines else None
            readable, _, _ = select.select(watched, [], [], timeout)
            now = time.monotonic()
            for fd in readable:
                if fd in by_fd:
                    by_fd[fd].receive(now)
                else:
                    return
            for bus in self.buses.values():
                bus.send_due(time.monotonic())
            if self.cameras:
                self._render_cameras(time.monotonic())


def serve_until_signal(server: Server, extra_stop_fds: tuple[int, ...] = (), on_ready=None) -> None:
    """Serve until SIGINT or SIGTERM (or an extra stop fd), then close the ptys.

    ``on_ready()`` runs once the signal handlers are in place (announce the ports there: a signal sent as soon
    as the ports are known must still stop the server cleanly).
    """
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    previous = signal.set_wakeup_fd(wake_w)
    handlers = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if on_ready is not None:
            on_ready()
        server.serve((wake_r,) + tuple(extra_stop_fds))
    finally:
        signal.set_wakeup_fd(previous)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        os.close(wake_r)
        os.close(wake_w)
        server.close()


def child_main() -> None:
    """Entry point of the process ``simulate()`` starts: options arrive pickled on stdin, the ports and the camera
    feeds' paths leave as one JSON line on stdout; the process ends on SIGTERM or when its parent closes stdin
    (e.g. the parent died)."""
    import json
    import pickle
    import sys

    robot, options = pickle.load(sys.stdin.buffer)
    server = Server(robot, **options)

    def announce() -> None:
        sys.stdout.write(json.dumps({"ports": server.ports, "cameras": server.feeds}) + "\n")
        sys.stdout.flush()

    serve_until_signal(server, (sys.stdin.fileno(),), on_ready=announce)
