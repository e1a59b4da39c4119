"""The camera benchmark (``actsac-bench --camera SOURCE``): one camera opened as actsac-run opens it
(``actsac.drivers.cameras.make_camera``: its own capture thread), read by a consumer for ``--duration``
seconds.

SOURCE is what ``actsac-run --camera NAME=SOURCE`` takes (a device index or path, a stream URL, a video
file) or ``sim``: the simulator's camera, rendered by the simulator process from a simulated SO-100 (as
``actsac-run`` without a port). The consumer polls the camera's newest frame every millisecond and, at
``SAMPLE_HZ``, takes it as a control tick would. Figures:

  * fps achieved: frames delivered over their capture times (first to last seen), and the frame interval;
  * frame age when taken (the 100 Hz samples): how old the newest frame is when a tick takes it;
  * capture-to-delivery latency, from the frame's capture time to the poll that first saw it (an upper bound
    within the poll period), where the capture time is a real one: the simulator's render time, a V4L2
    device's driver timestamp; a file's or a stream's frame time is when the read returned (null there);
  * frames the poll never saw (replaced first), repeated frames (bit for bit the previous image) and the
    longest run of one image (a frozen camera repeats one image with fresh timestamps);
  * the resolution and frame rate the source really gives.
"""

from __future__ import annotations

import contextlib
import time

import numpy as np

from actsac._cli import first_line
from actsac.drivers.cameras import make_camera, source_kind
from actsac.drivers.errors import CameraError
from actsac.drivers.robots import CameraSpec

from . import BenchError

SAMPLE_HZ = 100.0  # the consumer takes the newest frame at this rate, as a control loop's ticks do
POLL_S = 0.001  # between takes, the consumer looks for a new frame this often (the delivery latency's resolution)
SIM_SIZE = (48, 64)  # (height, width) of the simulated camera by default: the shipped visual example's
SIM_FPS = 30.0
FROZEN_S = 0.5  # a run of one image this long is a frozen camera (actsac-run's --camera-frozen-s default)
SIM_NAME, CAMERA_NAME = "front", "bench"  # the simulated camera is the so100's front camera


def _ms(values, q) -> float | None:
    return None if len(values) == 0 else round(float(np.percentile(values, q)) * 1e3, 3)


def bench_camera(source: str, duration_s: float, *, size: tuple[int, int] | None = None,
                 fps: float | None = None) -> dict:
    """Open ``source`` (``sim`` for the simulator's camera) and measure it for ``duration_s``, printing the
    figures; returns the report's ``camera`` section. ``size`` (height, width) and ``fps`` are asked of a device
    (read back: the figures say what it gives), set the simulated camera's, and are a video file's frame rate
    when it has none. A camera that cannot be opened raises ``BenchError``."""
    try:
        kind = source_kind(None if source == "sim" else source)
    except CameraError as exc:
        raise BenchError(f"--camera: {exc}") from None
    height, width = size or (None, None)
    print(f"camera: {source if kind != 'sim' else 'the simulator'} ({kind}) for {duration_s:g} s, the newest "
          f"frame taken at {SAMPLE_HZ:g} Hz", flush=True)
    with contextlib.ExitStack() as stack:
        feed = None
        if kind == "sim":
            from actsac.drivers.sim import simulate

            shape = (*(size or SIM_SIZE), float(fps or SIM_FPS))
            try:
                ports = stack.enter_context(simulate("so100", cameras={SIM_NAME: shape}))
            except (RuntimeError, ValueError) as exc:
                raise BenchError(f"the simulator did not start: {first_line(exc)}") from None
            feed = ports.cameras[SIM_NAME]
        spec = CameraSpec(SIM_NAME if kind == "sim" else CAMERA_NAME, None if kind == "sim" else source,
                          width=width, height=height, fps=fps)
        try:
            camera = make_camera(spec, feed)
            opened = time.monotonic()
            camera.open()
        except CameraError as exc:
            raise BenchError(str(exc)) from None
        stack.callback(camera.close)
        open_s = time.monotonic() - opened
        print(f"  {camera.describe()} (first frame after {open_s * 1e3:.0f} ms)", flush=True)
        result = measure(camera, duration_s)
    width, height, reported_fps = camera.actual
    result = {"source": source, "kind": kind, "camera": camera.label, "width": width, "height": height,
              "fps_reported": reported_fps, "open_ms": round(open_s * 1e3, 1), "duration_s": duration_s,
              "sample_hz": SAMPLE_HZ, "poll_ms": POLL_S * 1e3, **result}
    if kind not in ("sim", "device"):
        result["delivery_p50_ms"] = result["delivery_p99_ms"] = None
        result["delivery_note"] = "no capture timestamp: a file's or a stream's frame time is when its read returned"
    elif kind == "device":
        result["delivery_note"] = ("from the V4L2 buffer timestamp where OpenCV gives a plausible one, else from "
                                   "the read's return (then near 0)")
    else:
        result["delivery_note"] = "from the simulator's render time"
    print_camera(result)
    return result


def measure(camera, duration_s: float) -> dict:
    """Read an opened ``camera`` for ``duration_s`` (until it is lost if sooner): the figures of the module doc."""
    ages, delivery, intervals = [], [], []
    first = last = None  # Frame
    seen = unseen = repeated = 0
    longest_same_s = 0.0
    start = time.monotonic()
    end, next_take = start + duration_s, start
    while True:
        frame = camera.latest()
        now = time.monotonic()
        if frame is not None and (last is None or frame.index != last.index):
            delivery.append(now - frame.capture_s)
            seen += 1
            if last is not None:
                gap = frame.index - last.index
                unseen += max(0, gap - 1)
                if gap == 1:
                    intervals.append(frame.capture_s - last.capture_s)
            repeated += frame.unchanged_since_s < frame.capture_s
            longest_same_s = max(longest_same_s, frame.capture_s - frame.unchanged_since_s)
            first, last = first or frame, frame
        if now >= next_take:
            if frame is not None:
                ages.append(now - frame.capture_s)
            next_take = max(next_take + 1.0 / SAMPLE_HZ, now)  # late: the next take is now, no burst
        if now >= end or camera.lost:
            break
        time.sleep(max(0.0, min(POLL_S, end - now)))
    measured_s = time.monotonic() - start
    span = None if first is None or last.capture_s <= first.capture_s else last.capture_s - first.capture_s
    delivered = 0 if first is None else last.index - first.index + 1
    return {"measured_s": round(measured_s, 3), "lost": camera.lost,
            "frames_delivered": delivered, "frames_seen": seen, "frames_unseen": unseen,
            "fps_achieved": None if span is None else round((last.index - first.index) / span, 2),
            "frame_interval_p50_ms": _ms(intervals, 50), "frame_interval_p99_ms": _ms(intervals, 99),
            "frame_age_p50_ms": _ms(ages, 50), "frame_age_p99_ms": _ms(ages, 99),
            "frame_age_max_ms": None if not ages else round(max(ages) * 1e3, 3), "takes": len(ages),
            "delivery_p50_ms": _ms(delivery, 50), "delivery_p99_ms": _ms(delivery, 99),
            "repeated_frames": repeated, "longest_same_image_s": round(longest_same_s, 3),
            "frozen": longest_same_s >= FROZEN_S}


def print_camera(r: dict) -> None:
    def show(v, unit=""):
        return "-" if v is None else f"{v:g}{unit}"

    rows = [("resolution", f"{r['width']}x{r['height']}" + (f", reports {r['fps_reported']:g} fps"
                                                           if r["fps_reported"] else "")),
            ("fps achieved", f"{show(r['fps_achieved'])} ({r['frames_delivered']} frames in "
                             f"{r['measured_s']:g} s; interval p50 / p99 {show(r['frame_interval_p50_ms'])} / "
                             f"{show(r['frame_interval_p99_ms'])} ms)"),
            ("frame age when taken", f"p50 {show(r['frame_age_p50_ms'])} / p99 {show(r['frame_age_p99_ms'])} / max "
                                     f"{show(r['frame_age_max_ms'])} ms ({r['takes']} takes at {r['sample_hz']:g} Hz)"),
            ("capture to delivery", f"p50 {show(r['delivery_p50_ms'])} / p99 {show(r['delivery_p99_ms'])} ms"
                                    + ("" if r["delivery_p50_ms"] is not None else f" ({r['delivery_note']})")),
            ("repeated / unseen", f"{r['repeated_frames']} repeated, {r['frames_unseen']} never seen; longest "
                                  f"same image {r['longest_same_image_s']:g} s" + (" (FROZEN)" if r["frozen"] else "")),
            ]
    if r["lost"]:
        rows.append(("lost", f"after {r['measured_s']:g} s: {r['lost']}"))
    width = max(len(k) for k, _ in rows)
    print("\n".join(f"  {k:<{width}}  {v}" for k, v in rows), flush=True)
