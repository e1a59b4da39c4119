"""actsac-bench --camera on real sources: a video file written here with OpenCV, and the simulator's camera."""

import json

import numpy as np
import pytest

from actsac.bench.cli import main

cv2 = pytest.importorskip("cv2")

CAMERA_KEYS = {"source", "kind", "camera", "width", "height", "fps_reported", "open_ms", "duration_s", "sample_hz",
               "poll_ms", "measured_s", "lost", "frames_delivered", "frames_seen", "frames_unseen", "fps_achieved",
               "frame_interval_p50_ms", "frame_interval_p99_ms", "frame_age_p50_ms", "frame_age_p99_ms",
               "frame_age_max_ms", "takes", "delivery_p50_ms", "delivery_p99_ms", "delivery_note",
               "repeated_frames", "longest_same_image_s", "frozen"}


def bench(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in argv])
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


@pytest.fixture
def video(tmp_path):
    """3 s of 160x120 noise at 25 fps, the last second one image repeated (a frozen stretch)."""
    path = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (160, 120))
    assert writer.isOpened()
    rng = np.random.default_rng(0)
    for i in range(75):
        if i < 50:
            image = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
        writer.write(image)
    writer.release()
    return path


def test_a_video_file(video, tmp_path, capsys):
    out = tmp_path / "out.json"
    code, stdout, err = bench(["--camera", video, "--duration", "2", "--json", out], capsys)
    assert code == 0, err
    report = json.loads(out.read_text())
    assert report["loop"] is None and report["bus"] is None and report["backends"] == []
    camera = report["camera"]
    assert set(camera) == CAMERA_KEYS
    assert camera["kind"] == "file" and (camera["width"], camera["height"]) == (160, 120)
    assert camera["fps_reported"] == pytest.approx(25.0)
    assert 15.0 <= camera["fps_achieved"] <= 30.0 and camera["lost"] is None  # played at its own rate
    assert camera["frames_delivered"] >= 30 and camera["takes"] >= 100
    assert 0.0 <= camera["frame_age_p50_ms"] <= camera["frame_age_p99_ms"] <= 500.0
    assert camera["delivery_p50_ms"] is None  # a file's frame time is its read's return: not a capture time
    assert "fps achieved" in stdout and "160x120" in stdout


def test_a_video_file_ending_and_its_frozen_stretch(video, capsys):
    code, stdout, _ = bench(["--camera", video, "--duration", "6"], capsys)
    assert code == 0  # a file's end is no error
    assert "end of the video file" in stdout
    assert "FROZEN" in stdout  # its last second is one image (mp4v may blur the first repeat: loosely)


def test_the_simulated_camera(tmp_path, capsys):
    out = tmp_path / "sim.json"
    code, _, err = bench(["--camera", "sim", "--duration", "2", "--camera-size", "80x60", "--camera-fps", "20",
                          "--json", out], capsys)
    assert code == 0, err
    camera = json.loads(out.read_text())["camera"]
    assert set(camera) == CAMERA_KEYS and camera["kind"] == "sim" and camera["lost"] is None
    assert (camera["width"], camera["height"], camera["fps_reported"]) == (80, 60, 20.0)
    assert 14.0 <= camera["fps_achieved"] <= 22.0
    assert camera["frames_unseen"] <= 2 and camera["repeated_frames"] == 0 and not camera["frozen"]
    assert 0.0 <= camera["delivery_p50_ms"] <= camera["delivery_p99_ms"] <= 200.0
    assert 0.0 <= camera["frame_age_p50_ms"] <= 200.0


@pytest.mark.parametrize("argv, message", [
    (["--camera", "{tmp}/missing.mp4"], "is not a device"),
    (["--camera", "sim", "--camera-size", "64"], "expected WIDTHxHEIGHT"),
    (["--camera-fps", "10", "--bus"], "--camera-fps is a --camera option"),
    (["--camera", "{video}", "--json", "{video}"], "is an input of this run"),
])
def test_camera_mistakes(video, tmp_path, capsys, argv, message):
    code, _, err = bench([a.format(tmp=tmp_path, video=video) for a in argv], capsys)
    assert code in (1, 2) and err.startswith("error: ") and err.count("\n") == 1 and message in err, err


def test_loop_with_the_visual_example_reports_its_camera(tmp_path, capsys):
    out = tmp_path / "loop.json"
    code, stdout, err = bench(["--loop", "--model", "so100-visual-reach", "--duration", "1.5", "--fps", "30",
                               "--no-realtime", "--json", out], capsys)
    assert code == 0, err
    loop = json.loads(out.read_text())["loop"]
    front = loop["cameras"]["front"]
    assert front["frames_fed"] > 0 and front["frame_age_p50_ms"] is not None
    assert loop["bench"]["policy"] == "so100-visual-reach" and "camera front" in stdout
