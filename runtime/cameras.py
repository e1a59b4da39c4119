"""Camera frames in the control loop: the newest frame of each camera the model sees, judged by its age.

Each tick the controller asks ``CameraGate.take()`` for the newest frame of every camera the model sees
(the robot's capture threads keep them; nothing here waits on a camera). A frame is fresh when it is younger
than its camera's ``max_age_s`` and its picture changed within ``frozen_s`` (a camera repeating one image bit
for bit is frozen, however new its timestamps: LeRobot #1083). When one camera's newest frame is not fresh,
the tick gets no frames: nothing goes to the model and the controller holds, as for a stale joint reading.
A camera without a fresh frame for longer than ``stall_timeout_s`` is a ``SafetyStop`` naming the camera; so
is a camera lost (its source ended or failed), at once.

Per camera, for the summary: the frame rate it delivered, the age of the frames fed to the model, frames
never fed (dropped) and frames fed twice (repeated), ticks held, and the camera-to-command latency: from a
frame's capture to the goal write of the tick that first used an action computed on it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from .safety import SafetyStop


@dataclass
class _CameraStats:
    label: str
    last_fresh_s: float
    first: tuple[int, float] | None = None  # (index, capture time) of the first frame seen
    last: tuple[int, float] | None = None
    fed_index: int | None = None
    ages_s: list[float] = field(default_factory=list)
    to_command_s: list[float] = field(default_factory=list)
    dropped: int = 0
    repeated: int = 0
    stale_ticks: int = 0


class CameraGate:
    def __init__(self, robot, cameras: list[str], *, max_age_s: dict[str, float], frozen_s: float,
                 stall_timeout_s: float, now=time.monotonic):
        self.robot, self.cameras, self.now = robot, list(cameras), now
        self.max_age_s, self.frozen_s, self.stall_timeout_s = max_age_s, frozen_s, stall_timeout_s
        start = now()
        self.stats = {name: _CameraStats(robot.cameras[name].label, start) for name in self.cameras}

    def take(self) -> tuple[dict[str, np.ndarray] | None, dict]:
        """({camera: RGB frame} when every camera's newest frame is fresh, else None; per camera facts)."""
        lost = self.robot.lost_cameras()
        if lost:
            label, why = next(iter(lost.items()))
            raise SafetyStop(f"{label} lost: {why}")
        frames = self.robot.read_frames()
        now = self.now()
        images, info = {}, {}
        for name in self.cameras:
            frame, stats = frames.get(name), self.stats[name]
            if frame is None:
                age, fresh, why = math.inf, False, "no frame yet"
            else:
                age = now - frame.capture_s
                unchanged = now - frame.unchanged_since_s
                fresh = age <= self.max_age_s[name] and unchanged <= self.frozen_s
                why = (f"newest frame {age * 1e3:.0f} ms old" if age > self.max_age_s[name] else
                       f"the same image for {unchanged:.2f} s (frozen)")
                stats.first = stats.first or (frame.index, frame.capture_s)
                stats.last = (frame.index, frame.capture_s)
                images[name] = frame
            if fresh:
                stats.last_fresh_s = now
            else:
                stats.stale_ticks += 1
                if now - stats.last_fresh_s > self.stall_timeout_s:
                    raise SafetyStop(f"{stats.label}: no fresh frame for {now - stats.last_fresh_s:.2f} s ({why}; "
                                     f"stall timeout {self.stall_timeout_s:.2f} s)")
            info[name] = {"frame": None if frame is None else frame.index,
                          "capture_s": None if frame is None else frame.capture_s,
                          "age_ms": None if frame is None else round(age * 1e3, 2), "fresh": fresh}
        if not all(i["fresh"] for i in info.values()):
            return None, info
        return {name: frame.image for name, frame in images.items()}, info

    def fed(self, info: dict) -> None:
        """The frames of ``info`` (from ``take``) went to the model: their ages, dropped and repeated frames."""
        for name, facts in info.items():
            stats = self.stats[name]
            stats.ages_s.append(facts["age_ms"] / 1e3)
            if stats.fed_index is not None:
                gap = facts["frame"] - stats.fed_index
                stats.repeated += gap == 0
                stats.dropped += max(0, gap - 1)
            stats.fed_index = facts["frame"]

    def commanded(self, capture_s: dict[str, float], written_s: float) -> None:
        """A goal computed from frames captured at ``capture_s`` was written at ``written_s`` (monotonic)."""
        for name, t in capture_s.items():
            self.stats[name].to_command_s.append(written_s - t)

    def summary(self) -> dict:
        def pct(values, q):
            return None if not values else round(float(np.percentile(values, q)) * 1e3, 2)

        out = {}
        for name, s in self.stats.items():
            span = None if s.first is None or s.last[1] <= s.first[1] else s.last[1] - s.first[1]
            out[name] = {
                "camera": s.label, "fps_achieved": None if span is None else round((s.last[0] - s.first[0]) / span, 2),
                "frame_age_p50_ms": pct(s.ages_s, 50), "frame_age_p99_ms": pct(s.ages_s, 99),
                "camera_to_command_p50_ms": pct(s.to_command_s, 50), "camera_to_command_p99_ms": pct(s.to_command_s, 99),
                "frames_fed": len(s.ages_s), "dropped_frames": s.dropped, "repeated_frames": s.repeated,
                "stale_ticks": s.stale_ticks}
        return out
