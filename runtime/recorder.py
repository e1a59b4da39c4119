"""``--record DIR``: a per-tick JSON-lines log written as the run goes, each camera's video, and plots at the end.

``ticks.jsonl`` gets one object per tick (times in seconds from the loop start, durations in ms, positions
and commands in user units, chunk age in ticks, flags) and is flushed at least every second, so a crash loses
at most the last second. A camera model's ticks also carry, per camera, the frame index the tick took, its
capture time (seconds from the loop start, the same origin as ``scheduled_s``) and its age when taken (ms),
``frames_used`` (capture times of the frames an arriving chunk was computed from) and a ``camera_hold`` flag
on ticks held for a stale or frozen camera. A tick that read a motor-health group carries ``health`` ({group:
{motor: value}} in degC, % of stall effort or V) and ``monitor_ms``; ``derated`` lists the derated joints.

A DIR holding an earlier run's ``ticks.jsonl`` is refused before the run (``RunConfig.check_outputs``) unless
``--record-overwrite``; the recorder then removes the earlier ``run.png`` when it starts.

Each camera's frames go to ``camera_<name>.mp4`` (``runtime/video.py``).

``run.png`` (joint commands vs positions, each camera's frame age, motor temperatures, tick-timing histogram) is drawn at the end
with matplotlib's Agg backend, imported only then.

The session attaches the robot's cameras once, right after creating the recorder:
``self.recorder.attach_cameras(self.robot.cameras)``.
"""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from actsac._cli import first_line
from actsac.files import atomic_write

from .loop import TickRecord
from .video import WRITER_JOIN_S, VideoRecorder

FLUSH_EVERY_S = 0.5


def _round(values, digits: int = 4) -> list[float]:
    return [round(float(v), digits) for v in values]


class RunRecorder:
    def __init__(self, directory: Path, joints: list[str], header: dict):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.joints = joints
        self.path = self.directory / "ticks.jsonl"
        (self.directory / "run.png").unlink(missing_ok=True)  # an earlier run's (--record-overwrite) is not this one's
        # a buffer far above what half a second of ticks writes: only our flushes (of whole lines) reach the file
        self._file = open(self.path, "w", buffering=1 << 20)
        self._file.write(json.dumps({"header": {**header, "joints": joints}}) + "\n")
        self._file.flush()
        self._last_flush = time.monotonic()
        self._origin_s: float | None = None
        # capture times are on time.monotonic, the loop's on time.perf_counter: the same clock on Linux (an offset
        # of ~0), measured here so that capture times land on the loop's timeline elsewhere too
        self._monotonic_minus_loop = time.monotonic() - time.perf_counter()
        self.times, self.positions, self.commands, self.jitter_us = [], [], [], []
        self.cameras: dict = {}  # name -> Camera (``attach_cameras``)
        self.frame_ages: dict[str, list[tuple[float, float]]] = {}  # name -> [(tick time, frame age ms)]
        self.camera_holds: list[float] = []
        self.temperatures: dict[str, list[tuple[float, float]]] = {}  # motor -> [(tick time, degC)]
        self.video: VideoRecorder | None = None
        self._video_error: str | None = None
        self.fed: dict[str, list[int]] = {}  # per camera: the frame each tick not held gave the controller

    def attach_cameras(self, cameras: Mapping) -> None:
        """Record the frames of ``cameras`` ({name: opened Camera}, e.g. ``robot.cameras``) from now to
        ``finish``: their video files (every frame each camera delivers) and the frame-age panel. Without
        cameras nothing happens (OpenCV is not imported)."""
        self.cameras = dict(cameras or {})
        if not self.cameras:
            return
        fps = {name: c.fps for name, c in self.cameras.items()}
        self.frame_ages = {name: [] for name in self.cameras}
        self.fed = {name: [] for name in self.cameras}
        described = {}
        for name, c in self.cameras.items():
            width, height, actual_fps = c.actual or (None, None, None)
            h, w = c.output_size or (height, width)
            described[name] = {"camera": c.label, "source_size": [width, height], "source_fps": actual_fps,
                               "size": [w, h], "resized": bool(c.resized), "video_fps": fps[name]}
        self.event(cameras=described)
        try:
            self.video = VideoRecorder(self.directory, self.cameras, fps)
        except ImportError as exc:
            self._video_error = f"no camera video: OpenCV cannot be imported ({exc})"

    def on_tick(self, rec: TickRecord) -> None:
        latency = rec.info.get("latency_s")
        self.record(rec, None if latency is None else latency * 1e3)

    def finish(self, log: Callable[[str], None], **outcome) -> None:
        """The videos closed, the outcome as the last line (exit reason, safe state...), the file closed, then
        the plot, whose failure is reported and never hides the run's outcome."""
        self._close_videos(log)
        self.event(**outcome)
        self.close()
        log(f"actsac-run: per-tick log {self.path}")
        try:
            if importlib.util.find_spec("matplotlib") is None:
                log("actsac-run: run.png not drawn: matplotlib is not installed (pip install matplotlib, or "
                    "actsac[plot])")
                return
            plot = self.plot()
            if plot is not None:
                log(f"actsac-run: plot {plot}")
        except Exception as exc:  # noqa: BLE001
            log(f"actsac-run: could not draw the plot: {first_line(exc)}")

    def _close_videos(self, log: Callable[[str], None]) -> None:
        if self._video_error is not None:
            log(f"actsac-run: {self._video_error}")
        if self.video is None:
            return
        video, self.video = self.video, None
        try:
            finished = video.close()
            summary = video.summary()
            for name, v in summary.items():
                v["fed_not_recorded"] = video.not_recorded(name, self.fed.get(name, []))
                if v["error"]:
                    log(f"actsac-run: camera '{name}': no video: {v['error']}")
                elif v["file"]:
                    log(f"actsac-run: camera '{name}' video {self.directory / v['file']} ({v['video_frames']} "
                        f"frames at {v['fps']:g} fps, {v['repeated_to_fill']} repeated to fill, "
                        f"{v['dropped_queue_full']} dropped with the encoder behind)")
            if not finished:
                log(f"actsac-run: the video encoder did not finish within {WRITER_JOIN_S:g} s: the videos may "
                    f"be cut short")
            self.event(videos=summary)
        except Exception as exc:  # noqa: BLE001 (the run's outcome must still be written)
            log(f"actsac-run: could not finish the camera videos: {first_line(exc)}")

    def record(self, rec: TickRecord, latency_ms: float | None) -> None:
        if self._origin_s is None:
            self._origin_s = rec.time.scheduled_s
        info = rec.info
        row = {"tick": rec.time.index, "scheduled_s": round(rec.time.scheduled_s - self._origin_s, 6),
               "jitter_us": round(rec.time.jitter_s * 1e6, 1), "missed": rec.time.missed_periods,
               "read_ms": round(rec.read_s * 1e3, 3), "update_ms": round(rec.update_s * 1e3, 3),
               "write_ms": round(rec.write_s * 1e3, 3), "position": _round(info["position"]),
               "command": _round(info["command"]), "chunk_age": info.get("chunk_age"),
               "inference_ms": None if latency_ms is None else round(latency_ms, 3),
               "chunks_in": info.get("chunks_in", 0),
               "flags": [f for f in ("hold", "camera_hold", "ramping", "clamped", "bus_error") if info.get(f)]}
        if info.get("derated"):
            row["derated"] = list(info["derated"])
        if info.get("health"):
            row["health"] = {group: {m: round(v, 2) for m, v in values.items()}
                             for group, values in info["health"].items()}
            row["monitor_ms"] = round(rec.monitor_s * 1e3, 3)
            for m, v in info["health"].get("temperature", {}).items():
                self.temperatures.setdefault(m, []).append((row["scheduled_s"], v))
        if info.get("goal") is not None:
            row["goal"] = _round(info["goal"])
        cameras = info.get("cameras")
        if cameras:
            row["cameras"] = {name: {"frame": c["frame"], "capture_s": self._loop_time(c["capture_s"]),
                                     "age_ms": c["age_ms"], "fresh": c["fresh"]} for name, c in cameras.items()}
            for name, c in cameras.items():
                if c["age_ms"] is not None:
                    self.frame_ages.setdefault(name, []).append((row["scheduled_s"], c["age_ms"]))
            if info.get("camera_hold"):
                self.camera_holds.append(row["scheduled_s"])
            else:
                for name, c in cameras.items():
                    if c["frame"] is not None:
                        self.fed.setdefault(name, []).append(c["frame"])
        if info.get("frames_used"):
            row["frames_used"] = {name: self._loop_time(t) for name, t in info["frames_used"].items()}
        self._file.write(json.dumps(row) + "\n")
        now = time.monotonic()
        if now - self._last_flush >= FLUSH_EVERY_S:
            self._file.flush()
            self._last_flush = now
        self.times.append(row["scheduled_s"])
        self.positions.append(info["position"])
        self.commands.append(info["command"])
        self.jitter_us.append(row["jitter_us"])

    def _loop_time(self, monotonic_s: float | None) -> float | None:
        """A time.monotonic time as seconds from the loop's origin (that of ``scheduled_s``)."""
        if monotonic_s is None:
            return None
        return round(monotonic_s - self._monotonic_minus_loop - self._origin_s, 6)

    def event(self, **fields) -> None:
        """A non-tick line (the stop reason, the safe state reached...), flushed at once."""
        self._file.write(json.dumps({"event": fields}) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self.video is not None:  # finish closes the videos first; this is for a recorder closed directly
            self.video.close()
            self.video = None
        if not self._file.closed:
            self._file.flush()
            self._file.close()

    def plot(self) -> Path | None:
        if not self.times:
            return None
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        t = np.asarray(self.times)
        pos, cmd = np.asarray(self.positions), np.asarray(self.commands)
        n = len(self.joints)
        ages = {name: np.asarray(a) for name, a in self.frame_ages.items() if a}
        temperatures = {m: np.asarray(v) for m, v in self.temperatures.items() if v}
        panels = n + (1 if ages else 0) + (1 if temperatures else 0) + 1
        fig, axes = plt.subplots(panels, 1, figsize=(9, 1.6 * panels + 1), squeeze=False)
        for j, name in enumerate(self.joints):
            ax = axes[j, 0]
            ax.plot(t, cmd[:, j], label="command", lw=1.0)
            ax.plot(t, pos[:, j], label="position", lw=1.0, alpha=0.8)
            ax.set_ylabel(name, fontsize=7)
            ax.tick_params(labelsize=7)
        axes[0, 0].legend(fontsize=7, loc="upper right")
        axes[n - 1, 0].set_xlabel("time (s)", fontsize=8)
        if ages:
            ax = axes[n, 0]
            for name, a in ages.items():
                ax.plot(a[:, 0], a[:, 1], lw=1.0, label=f"camera {name}")
            if self.camera_holds:
                ax.plot(self.camera_holds, np.zeros(len(self.camera_holds)), "|", color="red", ms=8,
                        label="held for a camera")
            ax.set_ylabel("frame age (ms)", fontsize=7)
            ax.set_xlabel("time (s)", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.legend(fontsize=7, loc="upper right")
        if temperatures:
            ax = axes[panels - 2, 0]
            for m, v in temperatures.items():
                ax.plot(v[:, 0], v[:, 1], lw=1.0, label=m)
            ax.set_ylabel("motor temp (degC)", fontsize=7)
            ax.set_xlabel("time (s)", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.legend(fontsize=6, loc="upper left", ncol=min(6, len(temperatures)))
        hist = axes[panels - 1, 0]
        hist.hist(self.jitter_us, bins=80)
        hist.set_xlabel("tick start minus scheduled time (us)", fontsize=8)
        hist.set_ylabel("ticks", fontsize=8)
        hist.set_yscale("log")
        fig.tight_layout()
        out = self.directory / "run.png"
        atomic_write(out, lambda tmp: fig.savefig(tmp, format="png", dpi=90))
        plt.close(fig)
        return out
