"""--record with a camera model, end to end on the simulator: the shipped visual example sees the simulated
camera; ticks.jsonl gets each tick's frame facts, the camera's frames go to a video that OpenCV reads back."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from actsac.drivers.sim import Faults, SimOptions
from actsac.runtime.safety import SafetySettings
from actsac.runtime.session import EXIT_OK, EXIT_SAFETY_STOP
from tests.conftest import decoded_frames

from .conftest import run_bounded

cv2 = pytest.importorskip("cv2")

VISUAL = Path("so100-visual-reach")  # the shipped example's name (runtime/backends.py EXAMPLES)
HOOK = "no video: runtime/session.py must call self.recorder.attach_cameras(self.robot.cameras) in _prepare"


def read_rec(directory):
    rows = [json.loads(line) for line in (directory / "ticks.jsonl").read_text().splitlines()]
    return [r for r in rows if "tick" in r], [r["event"] for r in rows if "event" in r]


def video_of(directory, name="front"):
    found = sorted(directory.glob(f"camera_{name}.*"))
    assert found, HOOK
    return found[0]


def test_visual_run_records_camera_fields_video_and_plot(tmp_path):
    rec = tmp_path / "rec"
    summary, lines = run_bounded(model=VISUAL, duration_s=2.0, record=rec,
                                 safety=SafetySettings(ramp_s=0.3, stop_hold_s=0.1))
    assert summary["exit_code"] == EXIT_OK, summary["exit_reason"]
    ticks, events = read_rec(rec)
    assert len(ticks) == summary["ticks"] >= 30
    period = 1.0 / summary["fps_target"]
    for t in ticks:
        facts = t["cameras"]["front"]
        assert set(facts) == {"frame", "capture_s", "age_ms", "fresh"}
        assert "camera_hold" not in t["flags"]
        # capture time on the loop's timeline: before the tick took it, by the age (a loaded machine: loosely)
        taken_s = facts["capture_s"] + facts["age_ms"] / 1e3
        assert t["scheduled_s"] - 0.001 <= taken_s <= t["scheduled_s"] + t["jitter_us"] / 1e6 + 0.5
        assert 0.0 <= facts["age_ms"] <= 1000.0
    frames = [t["cameras"]["front"]["frame"] for t in ticks]
    assert frames == sorted(frames) and frames[-1] - frames[0] >= 20  # 30 fps camera, 2 s
    used = [t for t in ticks if "frames_used" in t]
    assert len(used) >= len(ticks) // 2 and all(u["frames_used"]["front"] <= u["scheduled_s"] for u in used)

    path = video_of(rec)
    assert events[0]["cameras"]["front"]["size"] == [64, 48]
    assert events[-1]["exit_reason"] == "completed"
    assert path.suffix in (".mp4", ".avi") and any(f"video {path}" in line for line in lines)
    video = events[-2]["videos"]["front"]
    assert video["file"] == path.name and video["error"] is None and video["fed_not_recorded"] == 0
    images = decoded_frames(path)
    assert len(images) == video["video_frames"] >= 30
    assert all(image.shape == (48, 64, 3) for image in images)
    assert video["first_frame"] <= frames[0] and video["last_frame"] >= frames[-1]
    assert float(np.std(images[len(images) // 2])) > 5.0  # a picture of the arm, not a blank frame
    if importlib.util.find_spec("matplotlib") is not None:
        assert (rec / "run.png").stat().st_size > 10_000


def test_a_frozen_camera_is_held_then_stops_the_run_and_the_video_is_still_closed(tmp_path):
    rec = tmp_path / "rec"
    sim = SimOptions(faults=Faults(camera_frozen_after_s={"front": 1.0}))
    summary, _ = run_bounded(model=VISUAL, duration_s=6.0, record=rec, sim=sim,
                             safety=SafetySettings(ramp_s=0.3, stop_hold_s=0.1, camera_frozen_s=0.3))
    assert summary["exit_code"] == EXIT_SAFETY_STOP and "front" in summary["exit_reason"]
    ticks, events = read_rec(rec)
    held = [t for t in ticks if "camera_hold" in t["flags"]]
    assert held and all("hold" in t["flags"] and t["cameras"]["front"]["fresh"] is False for t in held)
    assert summary["camera_hold_ticks"] == len(held)
    assert events[-1]["exit_code"] == EXIT_SAFETY_STOP
    images = decoded_frames(video_of(rec))  # released on the safety stop's path too: readable to its end
    assert len(images) == events[-2]["videos"]["front"]["video_frames"] >= 20
