"""``--record``: each camera's frames as a video, written beside the control loop, never in it.

Each camera's frames go to ``camera_<name>.mp4`` (mp4v; ``.avi`` MJPG where mp4v cannot be opened) at the
camera's frame rate: every frame the camera delivers from ``attach_cameras`` to ``finish``, the very arrays
the model is given (RGB, at the model's size). A poll thread takes each camera's newest frame as soon as it is
published (a reference: frames are read-only) into a bounded queue, and an encoder thread writes the queue
out; when the queue is full the frame is dropped and counted. The control tick does none of it: it never
waits on a camera or on encoding. Video frame ``n`` is camera frame ``first_frame + n`` (the ``videos``
event line says ``first_frame``; ticks.jsonl says which frame each tick took): a frame the poll missed or
dropped repeats the one before it, so the video keeps the camera's timeline, and ``fed_not_recorded`` counts
frames ticks took that are not in the video. OpenCV is imported only when cameras are attached.
"""

from __future__ import annotations

import atexit
import queue
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from actsac._cli import first_line

VIDEO_QUEUE_FRAMES = 256  # frames waiting for the encoder, all cameras together (~8 s of one 30 fps camera)
POLL_S = 0.005  # the frame poll's period at most (shorter for a camera faster than 40 fps)
MAX_FILL_S = 10.0  # a gap in a camera's frames longer than this is not filled with repeats
WRITER_JOIN_S = 10.0  # finish waits this long for the encoder to empty its queue


@dataclass
class _Video:
    """One camera's video: the encoder thread's side (``writer``, counts of what it wrote)."""

    name: str
    fps: float
    path: Path | None = None
    writer: object = None
    first_frame: int | None = None
    last_frame: int | None = None
    last_image: np.ndarray | None = None
    written: int = 0
    repeated: int = 0  # video frames that repeat the previous one (camera frames not recorded)
    skipped: int = 0  # camera frames in gaps too long to fill (the timeline breaks there)
    error: str | None = None


class VideoRecorder:
    """Every frame of every camera to the camera's own video file: a poll thread takes each camera's newest
    frame (a reference: frames are read-only) as soon as it is published and enqueues it; an encoder thread
    writes the queue out. Neither ever holds up the control tick."""

    def __init__(self, directory: Path, cameras: Mapping, fps: Mapping[str, float]):
        import cv2  # only a camera model gets here

        self._cv2 = cv2
        self.directory = directory
        self.cameras = dict(cameras)
        self.videos = {name: _Video(name, fps[name]) for name in self.cameras}
        self.recorded = {name: 0 for name in self.cameras}
        self.dropped = {name: 0 for name in self.cameras}  # the queue was full: never enqueued
        self.missing: dict[str, list[tuple[int, int]]] = {name: [] for name in self.cameras}  # [first, end) ranges
        self._last = {name: -1 for name in self.cameras}
        self.poll_s = min(POLL_S, 0.2 / max(fps.values()))  # five polls a frame period at least
        self._queue: queue.Queue = queue.Queue(VIDEO_QUEUE_FRAMES)
        self._stop = threading.Event()
        self._closed = False
        self._encoder = threading.Thread(target=self._encode, name="record-video", daemon=True)
        self._poller = threading.Thread(target=self._poll, name="record-frames", daemon=True)
        self._encoder.start()
        self._poller.start()
        atexit.register(self.close)  # a run that never reaches finish still leaves readable files

    def close(self, timeout_s: float = WRITER_JOIN_S) -> bool:
        """Stop polling, let the encoder finish the queue, release every file; False if the encoder did not
        finish within ``timeout_s``."""
        if self._closed:
            return True
        self._closed = True
        atexit.unregister(self.close)
        self._stop.set()
        self._poller.join(timeout_s)
        try:
            self._queue.put(None, timeout=timeout_s)
        except queue.Full:
            return False
        self._encoder.join(timeout_s)
        return not self._encoder.is_alive()

    def not_recorded(self, name: str, indices) -> int:
        """How many of the frame ``indices`` of camera ``name`` never reached the encoder."""
        fed = np.unique(np.asarray(list(indices), dtype=np.int64))
        return int(sum(np.searchsorted(fed, end) - np.searchsorted(fed, first) for first, end in self.missing[name]))

    def summary(self) -> dict:
        out = {}
        for name, v in self.videos.items():
            out[name] = {"file": None if v.path is None else v.path.name, "fps": v.fps, "first_frame": v.first_frame,
                         "last_frame": v.last_frame, "video_frames": v.written, "frames_recorded": self.recorded[name],
                         "repeated_to_fill": v.repeated, "gaps_not_filled": v.skipped,
                         "dropped_queue_full": self.dropped[name], "error": v.error}
        return out

    # ------------------------------------------------------------------ the poll thread
    def _poll(self) -> None:
        while True:
            stopping = self._stop.is_set()  # one last round after the stop: the newest frames too
            for name, camera in self.cameras.items():
                try:
                    frame = camera.latest()
                except Exception:  # noqa: BLE001 (a camera's failure is the run's to report)
                    frame = None
                last = self._last[name]
                if frame is None or frame.index <= last:
                    continue
                if last >= 0 and frame.index > last + 1:
                    self.missing[name].append((last + 1, frame.index))
                self._last[name] = frame.index
                try:
                    self._queue.put_nowait((name, frame.index, frame.image))
                    self.recorded[name] += 1
                except queue.Full:
                    self.dropped[name] += 1
                    self.missing[name].append((frame.index, frame.index + 1))
            if stopping or self._stop.wait(self.poll_s):
                if stopping:
                    return

    # ------------------------------------------------------------------ the encoder thread
    def _encode(self) -> None:
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    break
                name, index, image = item
                video = self.videos[name]
                if video.error is None:
                    try:
                        self._write(video, index, image)
                    except Exception as exc:  # noqa: BLE001 (a video that fails must not end the run)
                        video.error = first_line(exc)
        finally:
            for video in self.videos.values():
                if video.writer is not None:
                    video.writer.release()
                    video.writer = None

    def _write(self, video: _Video, index: int, image: np.ndarray) -> None:
        cv2 = self._cv2
        if video.writer is None:
            self._open(video, image.shape[1], image.shape[0])
            if video.writer is None:
                return
            video.first_frame = index
        elif index <= video.last_frame:
            return
        else:
            gap = index - video.last_frame - 1
            if gap > MAX_FILL_S * video.fps:
                video.skipped += gap
            else:
                for _ in range(gap):
                    video.writer.write(video.last_image)
                video.repeated += gap
                video.written += gap
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        video.writer.write(bgr)
        video.written += 1
        video.last_frame, video.last_image = index, bgr

    def _open(self, video: _Video, width: int, height: int) -> None:
        cv2 = self._cv2
        stem = "camera_" + re.sub(r"[^A-Za-z0-9_.-]", "_", video.name)
        for suffix, codec in ((".mp4", "mp4v"), (".avi", "MJPG")):
            path = self.directory / f"{stem}{suffix}"
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), video.fps, (width, height))
            if writer.isOpened():
                video.path, video.writer = path, writer
                return
            writer.release()
            path.unlink(missing_ok=True)
        video.error = "OpenCV could open neither an mp4v .mp4 nor an MJPG .avi writer"
