"""Cameras: one interface over OpenCV sources and the simulator's camera, each captured in its own thread.

    camera = make_camera(CameraSpec("front", "/dev/video0", width=640, height=480, fps=30), output_size=(480, 640))
    camera.open()                         # opened, what it really gives read back, capture thread running
    frame = camera.latest()               # the newest Frame, or None before the first one; never blocks
    camera.close()

Sources (``CameraSpec.source``): a V4L2 device by index or path (``0``, ``/dev/video0``,
``/dev/v4l/by-id/...``), a network stream URL (``rtsp://``, ``http://``), a video file (played at its own
frame rate; its end is the camera lost) or None: the simulator's camera (``drivers/sim/feed.py``).

Capture never runs in the control tick: one daemon thread per camera reads the source, converts BGR to RGB
once, resizes to the model's size (INTER_AREA) when the camera's differs, and publishes the newest ``Frame``.
Each frame carries its capture time on ``time.monotonic`` (the V4L2 buffer timestamp where OpenCV reports a
plausible one, else the time ``read`` returned) and the time its content last changed, so a camera that
keeps delivering the same image bit for bit (a frozen USB camera, LeRobot #1083) can be told from a live one.
A source that ends or fails sets ``lost`` (in words); a read that blocks forever (opencv #4506) blocks only
its thread, which ``close`` then leaves behind.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import CameraError
from .robots import CameraSpec

OPEN_TIMEOUT_S = 5.0  # the first frame must arrive within this (three cameras timing out at start: LeRobot #1179)
STREAM_TIMEOUT_MS = 5000  # FFmpeg's open / read timeouts for network streams
JOIN_TIMEOUT_S = 1.0
DEFAULT_FPS = 30.0  # the frame rate assumed of a camera that reports none
MAX_ASPECT_DIFFERENCE = 0.03  # a camera whose width / height differs more from the model's is refused


@dataclass(frozen=True)
class Frame:
    image: np.ndarray  # (H, W, 3) uint8 RGB at the output size; read-only
    index: int  # frames this camera delivered since it opened, from 0
    capture_s: float  # time.monotonic() of the capture
    unchanged_since_s: float  # capture time of the first frame of the bit-identical run this one ends


def source_kind(source: str | None) -> str:
    """"sim", "device", "stream" or "file"; a CameraError for what is none of them."""
    if source is None or source == "sim":
        return "sim"
    if source.isdigit() or source.startswith("/dev/"):
        return "device"
    if "://" in source:
        return "stream"
    if Path(source).is_file():
        return "file"
    raise CameraError(f"source '{source}' is not a device (0, /dev/video0), a stream URL or an existing video file")


def check_aspect(name: str, source: str, actual_hw: tuple[int, int], model_hw: tuple[int, int]) -> bool:
    """True when the camera's size differs from the model's (a resize is needed); CameraError when the aspect
    ratios differ by more than MAX_ASPECT_DIFFERENCE (a resize would distort the image silently)."""
    (h, w), (mh, mw) = actual_hw, model_hw
    if (h, w) == (mh, mw):
        return False
    if abs((w / h) / (mw / mh) - 1.0) > MAX_ASPECT_DIFFERENCE:
        raise CameraError(f"camera '{name}' ({source}) gives {w}x{h}, the model wants {mw}x{mh}: the aspect "
                          f"ratios differ ({w / h:.3f} vs {mw / mh:.3f}); set the camera's width and height")
    return True


class Camera:
    """The interface and the capture thread; a source kind implements ``_open_source``, ``_grab`` and
    ``_release``."""

    def __init__(self, spec: CameraSpec, output_size: tuple[int, int] | None = None):
        self.spec = spec
        self.name = spec.name
        self.actual: tuple[int, int, float | None] | None = None  # (width, height, fps) the source really gives
        self.output_size = output_size  # (height, width) frames are delivered at; None: the camera's own
        self.lost: str | None = None
        self.resized = False
        self._frame: Frame | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._first = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def fps(self) -> float:
        """The frame rate the camera reports, else the one asked of it, else DEFAULT_FPS."""
        return float((self.actual and self.actual[2]) or self.spec.fps or DEFAULT_FPS)

    @property
    def label(self) -> str:
        return f"camera '{self.name}' ({self.spec.source or 'simulated'})"

    def open(self) -> None:
        """Open the source, check its size against the output size, start capturing and wait for the first
        frame. Every failure is a CameraError naming the camera and its source. A closed camera opens anew."""
        self._stop.clear()
        self._first.clear()
        self._frame, self.lost, self.resized = None, None, False
        try:
            self._open_source()
            width, height, _ = self.actual
            self.output_size = self.output_size or (height, width)
            self.resized = check_aspect(self.name, self.spec.source or "simulated", (height, width),
                                        self.output_size)
            self._thread = threading.Thread(target=self._capture, name=f"camera-{self.name}", daemon=True)
            self._thread.start()
            if not self._first.wait(OPEN_TIMEOUT_S) or self._frame is None:
                raise CameraError(f"{self.label}: {self.lost or f'no frame within {OPEN_TIMEOUT_S:g} s'}")
        except CameraError:
            self.close()
            raise
        except Exception as exc:  # noqa: BLE001 (OpenCV and the OS raise many kinds; one line names the camera)
            self.close()
            raise CameraError(f"{self.label}: {exc}") from None

    def describe(self) -> str:
        """What the camera really gives, for the run's log."""
        width, height, fps = self.actual
        text = f"{self.label}: {width}x{height}" + (f" at {fps:g} fps" if fps else "")
        if self.resized:
            h, w = self.output_size
            text += f", resized to the model's {w}x{h} (INTER_AREA)"
        return text

    def latest(self) -> Frame | None:
        with self._lock:
            return self._frame

    def close(self) -> None:
        """Stop capturing and release the source; never raises. A thread stuck in a blocking read is left."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(JOIN_TIMEOUT_S)
            if thread.is_alive():
                return  # it releases the source itself if its read ever returns
        self._release_quietly()

    # ------------------------------------------------------------------ the capture thread
    def _capture(self) -> None:
        import cv2

        previous, unchanged_since, index = None, 0.0, 0
        try:
            while not self._stop.is_set():
                grabbed = self._grab()
                if grabbed is None:
                    break
                image, capture_s, is_bgr = grabbed
                if self.resized:
                    h, w = self.output_size
                    image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
                if is_bgr:
                    image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
                image.setflags(write=False)
                if previous is None or not np.array_equal(image, previous):
                    unchanged_since = capture_s
                previous = image
                with self._lock:
                    self._frame = Frame(image, index, capture_s, unchanged_since)
                index += 1
                self._first.set()
        except Exception as exc:  # noqa: BLE001 (the camera is lost; the runtime reads why)
            self.lost = self.lost or f"capture failed: {exc}"
        finally:
            self._first.set()
            if self._stop.is_set() or self.lost:
                self._release_quietly()

    def _release_quietly(self) -> None:
        try:
            self._release()
        except Exception:  # noqa: BLE001
            pass

    # ------------------------------------------------------------------ per source kind
    def _open_source(self) -> None:
        raise NotImplementedError

    def _grab(self) -> tuple[np.ndarray, float, bool] | None:
        """(image, capture time, is BGR) of the next frame, blocking until it comes; None when the source ended
        or the camera is closing (``lost`` says which)."""
        raise NotImplementedError

    def _release(self) -> None:
        raise NotImplementedError


class OpenCVCamera(Camera):
    """A V4L2 device or a network stream through ``cv2.VideoCapture``."""

    def __init__(self, spec: CameraSpec, output_size: tuple[int, int] | None = None):
        super().__init__(spec, output_size)
        self._cap = None
        self._cap_lock = threading.Lock()  # open / read / release of one VideoCapture never overlap

    def _open_capture(self):
        import cv2

        source, kind = self.spec.source, source_kind(self.spec.source)
        if kind == "device":
            target = int(source) if source.isdigit() else source
            return cv2.VideoCapture(target, cv2.CAP_V4L2)
        if kind == "stream":
            return cv2.VideoCapture(source, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, STREAM_TIMEOUT_MS,
                                                             cv2.CAP_PROP_READ_TIMEOUT_MSEC, STREAM_TIMEOUT_MS])
        return cv2.VideoCapture(source)

    def _open_source(self) -> None:
        import cv2

        kind = source_kind(self.spec.source)
        if kind == "device" and not self.spec.source.isdigit() and not os.path.exists(self.spec.source):
            raise CameraError(f"{self.label}: no such device")
        cap = self._open_capture()
        if not cap.isOpened():
            cap.release()
            raise CameraError(f"{self.label}: could not be opened (busy, unplugged, or not a camera)")
        if kind == "device":  # ask; what the camera gives is read back below
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG"))
            for prop, value in ((cv2.CAP_PROP_FRAME_WIDTH, self.spec.width),
                                (cv2.CAP_PROP_FRAME_HEIGHT, self.spec.height), (cv2.CAP_PROP_FPS, self.spec.fps)):
                if value:
                    cap.set(prop, value)
        self._cap = cap
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.actual = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                       float(fps) if fps and np.isfinite(fps) and fps > 0 else None)
        if self.actual[0] <= 0 or self.actual[1] <= 0:
            raise CameraError(f"{self.label}: reports no frame size")

    def _read(self) -> tuple[np.ndarray, float] | None:
        import cv2

        with self._cap_lock:
            if self._cap is None:
                return None
            ok, image = self._cap.read()
            stamp_ms = self._cap.get(cv2.CAP_PROP_POS_MSEC) if ok else 0.0
        now = time.monotonic()
        if not ok or image is None:
            return None
        # V4L2 buffers carry a CLOCK_MONOTONIC timestamp: use it when it is plausible (in the last second)
        capture_s = stamp_ms / 1e3 if source_kind(self.spec.source) == "device" and 0 <= now - stamp_ms / 1e3 < 1 \
            else now
        return image, capture_s

    def _grab(self):
        read = self._read()
        if read is None:
            if not self._stop.is_set():
                self.lost = "read failed (unplugged, or the stream ended)"
            return None
        return read[0], read[1], True

    def _release(self) -> None:
        with self._cap_lock:
            cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()


class VideoFileCamera(OpenCVCamera):
    """A video file played at its own frame rate (``fps`` when the file has none); its end is the camera lost."""

    def _open_source(self) -> None:
        super()._open_source()
        width, height, fps = self.actual
        self.actual = (width, height, self.fps)
        self._next_s: float | None = None

    def _grab(self):
        period = 1.0 / self.fps
        now = time.monotonic()
        self._next_s = now if self._next_s is None else self._next_s + period
        if self._next_s > now and self._stop.wait(self._next_s - now):
            return None
        read = self._read()
        if read is None:
            if not self._stop.is_set():
                self.lost = "end of the video file"
            return None
        return read[0], time.monotonic(), True


class SimulatedCamera(Camera):
    """The simulator's camera: frames the simulator process renders into a shared frame buffer, with their
    capture time; ``show_goal`` puts a goal marker in the simulated scene (what a person placing a target
    does on a real robot)."""

    POLL_S = 0.001

    def __init__(self, spec: CameraSpec, feed_path: str, output_size: tuple[int, int] | None = None):
        super().__init__(spec, output_size)
        self.feed_path = feed_path
        self._feed = None

    def _open_source(self) -> None:
        from .sim.feed import FrameFeed

        self._feed = FrameFeed.attach(self.feed_path)
        height, width, fps = self._feed.shape
        self.actual = (width, height, fps)
        self._seen = -1

    def _grab(self):
        while not self._stop.is_set():
            got = self._feed.read_newer(self._seen)
            if got is not None:
                image, self._seen, capture_s = got
                return image, capture_s, False
            time.sleep(self.POLL_S)
        return None

    def show_goal(self, goal) -> None:
        if self._feed is not None:
            self._feed.show_goal(goal)

    def _release(self) -> None:
        feed, self._feed = self._feed, None
        if feed is not None:
            feed.close()


def make_camera(spec: CameraSpec, feed_path: str | None = None, output_size: tuple[int, int] | None = None) -> Camera:
    """The camera for ``spec``, delivering frames of ``output_size`` (height, width); a simulated one needs the
    simulator's ``feed_path``."""
    try:
        kind = source_kind(spec.source)
    except CameraError as exc:
        raise CameraError(f"camera '{spec.name}': {exc}") from None
    if kind == "sim":
        if feed_path is None:
            raise CameraError(f"camera '{spec.name}' has no source: on a real robot give one "
                              f"(--camera {spec.name}=/dev/video0, or source in the robot file's "
                              f"[cameras.{spec.name}])")
        return SimulatedCamera(spec, feed_path, output_size)
    return (VideoFileCamera if kind == "file" else OpenCVCamera)(spec, output_size)
