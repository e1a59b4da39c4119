"""The simulated camera, served: the simulator process renders frames into a memory-mapped file, actsac-run reads them.

The simulator stays its own process (it must answer bus packets on time; REFERENCE.md section 7). Its camera
renders the arm it simulates (``ArmCamera``) at the camera's rate and publishes each frame, with its capture
time on ``time.monotonic`` (one clock for both processes), into a ``FrameFeed``: a small file in /dev/shm
mapped by both sides. A frame is published under a sequence lock (odd while being written), so a reader never
sees half a frame; the reader copies the newest frame out. Frames are exact (no encoding), so a policy
trained on the renderer sees the same pixels when it runs; like a real sensor each frame has a little seeded
noise (a few pixels one grey level up), so a frame that repeats bit for bit means a frozen camera, as on real
hardware. The reader may write a goal pose into the feed: the simulated scene then shows it (the green
ghost of the visual reach task), as a target a person places in front of a real robot.
"""

from __future__ import annotations

import os
import tempfile
import time

import numpy as np

from ..robots import SO100_JOINTS, RobotSpec
from ..tables import motor_model
from ..units import normalize

HEADER = np.dtype([("seq", "<u8"), ("index", "<i8"), ("capture_s", "<f8"), ("height", "<i4"), ("width", "<i4"),
                   ("fps", "<f8"), ("goal_seq", "<u8"), ("goal_shown", "<u8"), ("goal", "<f8", (6,))])
HEADER_BYTES = 128
NOISE_FRACTION = 0.005  # share of pixel values one grey level up in each frame (sensor noise)


def check_can_draw(robot: RobotSpec, camera: str) -> None:
    """ValueError unless the robot has the SO-100 joints the simulated camera draws (with a sim calibration)."""
    motors = {m.name: m for m in robot.motors}
    missing = [j for j in SO100_JOINTS if j not in motors or motors[j].sim_calibration is None]
    if missing:
        raise ValueError(f"robot '{robot.name}': the simulated camera '{camera}' draws an SO-100-like arm, and "
                         f"the robot has no simulated joint '{missing[0]}'")


def _feed_dir() -> str:
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()


class FrameFeed:
    """One camera's newest frame in a shared file: ``create`` (the simulator) or ``attach`` (the reader)."""

    def __init__(self, path: str, mapping: np.memmap, owner: bool):
        self.path, self._map, self._owner = path, mapping, owner
        self._header = mapping[:HEADER.itemsize].view(HEADER)
        height, width = int(self._header["height"][0]), int(self._header["width"][0])
        self._image = mapping[HEADER_BYTES:HEADER_BYTES + height * width * 3].reshape(height, width, 3)

    @classmethod
    def create(cls, height: int, width: int, fps: float, name: str) -> "FrameFeed":
        fd, path = tempfile.mkstemp(prefix=f"actsac-camera-{name}-", dir=_feed_dir())
        os.close(fd)
        mapping = np.memmap(path, np.uint8, "w+", shape=(HEADER_BYTES + height * width * 3,))
        header = mapping[:HEADER.itemsize].view(HEADER)
        header["index"], header["height"], header["width"], header["fps"] = -1, height, width, fps
        return cls(path, mapping, owner=True)

    @classmethod
    def attach(cls, path: str) -> "FrameFeed":
        return cls(path, np.memmap(path, np.uint8, "r+"), owner=False)

    @property
    def shape(self) -> tuple[int, int, float]:
        return self._image.shape[0], self._image.shape[1], float(self._header["fps"][0])

    # ------------------------------------------------------------------ frames (simulator writes, reader reads)
    def publish(self, image: np.ndarray, capture_s: float) -> None:
        seq = int(self._header["seq"][0])
        self._header["seq"] = seq + 1
        self._image[:] = image
        self._header["index"] = int(self._header["index"][0]) + 1
        self._header["capture_s"] = capture_s
        self._header["seq"] = seq + 2

    def read_newer(self, seen: int) -> tuple[np.ndarray, int, float] | None:
        """(a copy of the image, its index, its capture time) when a frame newer than ``seen`` is complete."""
        seq = int(self._header["seq"][0])
        index = int(self._header["index"][0])
        if seq % 2 or index <= seen:
            return None
        image, capture_s = self._image.copy(), float(self._header["capture_s"][0])
        if int(self._header["seq"][0]) != seq:
            return None  # overwritten while copied: the next poll takes the newer frame
        return image, index, capture_s

    # ------------------------------------------------------------------ the scene's goal (reader writes)
    def show_goal(self, goal) -> None:
        seq = int(self._header["goal_seq"][0])
        self._header["goal_seq"] = seq + 1
        if goal is not None:
            self._header["goal"] = np.asarray(goal, np.float64)
        self._header["goal_shown"] = goal is not None
        self._header["goal_seq"] = seq + 2

    def goal(self) -> np.ndarray | None:
        for _ in range(3):
            seq = int(self._header["goal_seq"][0])
            shown, goal = bool(self._header["goal_shown"][0]), self._header["goal"][0].copy()
            if seq % 2 == 0 and int(self._header["goal_seq"][0]) == seq:
                return goal if shown else None
        return None

    def close(self) -> None:
        self._map = self._header = self._image = None
        if self._owner:
            try:
                os.unlink(self.path)
            except OSError:
                pass


class CameraFeeder:
    """One simulated camera in the simulator process: renders the arm of the simulated buses at ``fps``.

    ``motors`` maps each SO-100 joint to (SimMotors, index, spec) of the motor that plays it; the picture is of
    the physical arm (actual ticks through the factory calibration), whatever homing a run wrote. Faults:
    ``frozen_after_s`` repeats one frame bit for bit with fresh timestamps (a frozen USB camera),
    ``silent_after_s`` stops delivering.
    """

    def __init__(self, name: str, height: int, width: int, fps: float, motors: list, *, seed: int = 0,
                 frozen_after_s: float | None = None, silent_after_s: float | None = None):
        from .camera import ArmCamera

        self.name, self.period_s, self.motors = name, 1.0 / fps, motors
        self.camera = ArmCamera(height, width)
        self.feed = FrameFeed.create(height, width, fps, name)
        self.rng = np.random.default_rng(seed)
        self.start_s = self.next_s = time.monotonic()
        self.frozen_at = None if frozen_after_s is None else self.start_s + frozen_after_s
        self.silent_at = None if silent_after_s is None else self.start_s + silent_after_s
        self._frozen_image: np.ndarray | None = None

    @classmethod
    def for_robot(cls, robot: RobotSpec, buses: dict, name: str, height: int, width: int, fps: float, **kw):
        """``buses``: {bus name: SimBus}; the robot must have the SO-100 joints (``check_can_draw``)."""
        check_can_draw(robot, name)
        where = {m.name: (bus.motors, i, m) for bus in buses.values() for i, m in enumerate(bus.spec.motors)}
        return cls(name, height, width, fps, [where[j] for j in SO100_JOINTS], **kw)

    def positions(self) -> np.ndarray:
        """The arm's joint positions in SO-100 user units (factory calibration of the simulator)."""
        out = np.empty(len(self.motors))
        for k, (motors, i, spec) in enumerate(self.motors):
            motors.advance()
            out[k] = normalize(motors.servos.position[i], spec.sim_calibration, spec.norm_mode,
                               motor_model(spec.model).resolution)
        return out

    def render_due(self, now: float) -> bool:
        """Render and publish when a frame is due; True when one was published."""
        if now < self.next_s:
            return False
        self.next_s = max(self.next_s + self.period_s, now)
        if self.silent_at is not None and now >= self.silent_at:
            return False
        if self.frozen_at is not None and now >= self.frozen_at and self._frozen_image is not None:
            self.feed.publish(self._frozen_image, time.monotonic())
            return True
        image = self.camera.render(self.positions(), self.feed.goal())
        flat = image.reshape(-1)
        picks = self.rng.integers(0, flat.size, max(1, int(NOISE_FRACTION * flat.size)))
        flat[picks] = np.minimum(flat[picks].astype(np.int16) + 1, 255).astype(np.uint8)
        self._frozen_image = image
        self.feed.publish(image, time.monotonic())
        return True

    def close(self) -> None:
        self.feed.close()
