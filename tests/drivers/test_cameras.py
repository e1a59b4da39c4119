"""Cameras: real OpenCV capture of video files the tests write, the simulator's camera served by the real
simulator process, the shared frame feed, refusals in one line naming the camera and its source, and the
robot file's [cameras.<name>] tables."""

import os
import time

import cv2
import numpy as np
import pytest

from actsac.drivers.cameras import (OpenCVCamera, SimulatedCamera, VideoFileCamera, check_aspect,
                                    make_camera, source_kind)
from actsac.drivers.errors import CameraError, RobotSpecError
from actsac.drivers.robot import Robot
from actsac.drivers.robots import CameraSpec, load_robot
from actsac.drivers.sim import Faults, simulate
from actsac.drivers.sim.feed import FrameFeed
from tests.conftest import decoded_frames

MODEL_HW = (48, 64)
BGR = (40, 90, 220)  # drawn in BGR: the camera must deliver (220, 90, 40)
GOAL = [16.4, -27.6, -55.1, -58.0, 37.6, 83.0]


def write_video(path, frames_bgr, fps=30.0):
    """An MJPG .avi of the (H, W, 3) BGR uint8 frames, as a camera recording would be."""
    height, width = frames_bgr[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    assert writer.isOpened(), "OpenCV cannot write MJPG .avi here"
    for frame in frames_bgr:
        writer.write(frame)
    writer.release()
    return str(path)


def solid_video(path, count, height=48, width=64, fps=30.0):
    frame = np.empty((height, width, 3), np.uint8)
    frame[:] = BGR
    return write_video(path, [frame] * count, fps)


def pattern_video(path, count, height, width):
    """Frames with detail (a gradient and a moving bright block), so resizing and colour order show."""
    y, x = np.mgrid[0:height, 0:width]
    frames = []
    for i in range(count):
        frame = np.stack([x * 255 // width, y * 255 // height, np.full_like(x, 60)], -1).astype(np.uint8)
        frame[8:24, 4 + 2 * i:20 + 2 * i] = (0, 0, 255)  # red in BGR
        frames.append(frame)
    return write_video(path, frames)


def collect(camera, seconds, until_lost=False):
    """{index: Frame} polled from ``latest()`` for ``seconds`` (or until the camera is lost), with the
    monotonic time each was first seen."""
    frames, seen_at = {}, {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        frame = camera.latest()
        now = time.monotonic()
        if frame is not None and frame.index not in frames:
            frames[frame.index], seen_at[frame.index] = frame, now
        if until_lost and camera.lost:
            break
        time.sleep(0.002)
    return frames, seen_at


# ---------------------------------------------------------------------------------------------- video files
@pytest.fixture(scope="module")
def two_second_clip(tmp_path_factory):
    return solid_video(tmp_path_factory.mktemp("video") / "solid.avi", 60)


def test_a_video_file_plays_rgb_frames_at_its_own_rate_and_its_end_is_the_camera_lost(two_second_clip):
    camera = make_camera(CameraSpec("front", two_second_clip), output_size=MODEL_HW)
    assert isinstance(camera, VideoFileCamera) and camera.latest() is None
    camera.open()
    try:
        assert camera.actual == (64, 48, 30.0) and not camera.resized
        assert camera.describe() == f"camera 'front' ({two_second_clip}): 64x48 at 30 fps"
        frames, seen_at = collect(camera, 10.0, until_lost=True)
        assert camera.lost == "end of the video file"
        indices = sorted(frames)
        assert indices[0] == 0 and indices[-1] == 59  # every frame of the file, numbered from 0
        assert len(indices) >= 50  # polled every 2 ms: hardly any frame goes unseen
        times = [frames[i].capture_s for i in indices]
        assert all(b > a for a, b in zip(times, times[1:]))
        # capture times are on time.monotonic: each frame was seen shortly after it was captured
        assert all(0.0 <= seen_at[i] - frames[i].capture_s < 0.5 for i in indices)
        span = frames[59].capture_s - frames[0].capture_s
        assert 1.8 <= span <= 2.8, f"59 frame periods at 30 fps took {span:.2f} s"
        for frame in frames.values():
            assert frame.image.shape == (48, 64, 3) and frame.image.dtype == np.uint8
            assert not frame.image.flags.writeable
            assert np.abs(frame.image.reshape(-1, 3).mean(0) - BGR[::-1]).max() < 8  # RGB, not BGR
            assert frame.unchanged_since_s <= frame.capture_s
        last = camera.latest()
        time.sleep(0.1)
        assert camera.latest() is last and last.index == 59  # the last frame stays
    finally:
        camera.close()
    assert camera.latest() is last  # closing keeps it too


def test_a_larger_camera_of_the_same_aspect_is_resized_with_inter_area(tmp_path):
    path = pattern_video(tmp_path / "big.avi", 20, 96, 128)
    camera = make_camera(CameraSpec("front", path), output_size=MODEL_HW)
    camera.open()
    try:
        frame = camera.latest()
        assert camera.resized and camera.actual[:2] == (128, 96)
        assert camera.describe() == (f"camera 'front' ({path}): 128x96 at 30 fps, resized to the model's 64x48 "
                                     f"(INTER_AREA)")
    finally:
        camera.close()
    assert frame.image.shape == (48, 64, 3)
    expected = cv2.cvtColor(cv2.resize(decoded_frames(path)[frame.index], (64, 48), interpolation=cv2.INTER_AREA),
                            cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(frame.image, expected)
    block = frame.image[4:12, 2 + frame.index:10 + frame.index]  # the red block, half size
    assert block[..., 0].mean() > 200 and block[..., 2].mean() < 60


def test_aspect_ratio_tolerance():
    assert check_aspect("c", "s", (48, 64), (48, 64)) is False
    assert check_aspect("c", "s", (480, 640), (48, 64)) is True
    assert check_aspect("c", "s", (48, 65), (48, 64)) is True  # 1.6 % off: resized
    with pytest.raises(CameraError, match=r"^camera 'c' \(s\) gives 66x48, the model wants 64x48: the aspect "):
        check_aspect("c", "s", (48, 66), (48, 64))  # 3.1 % off
    with pytest.raises(CameraError, match="gives 640x360, the model wants 64x48"):
        check_aspect("c", "s", (360, 640), (48, 64))


def one_line(error):
    message = str(error.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_refusals_name_the_camera_and_its_source(tmp_path):
    square = solid_video(tmp_path / "square.avi", 10, height=64, width=64)
    camera = make_camera(CameraSpec("front", square), output_size=MODEL_HW)
    with pytest.raises(CameraError) as error:
        camera.open()
    assert one_line(error).startswith(f"camera 'front' ({square}) gives 64x64, the model wants 64x48: the aspect "
                                      f"ratios differ")
    assert camera.latest() is None

    if os.path.exists("/dev/video99"):
        pytest.skip("this machine has a /dev/video99")
    camera = make_camera(CameraSpec("wrist", "/dev/video99"), output_size=MODEL_HW)
    assert type(camera) is OpenCVCamera
    with pytest.raises(CameraError) as error:
        camera.open()
    assert one_line(error) == "camera 'wrist' (/dev/video99): no such device"

    missing = str(tmp_path / "nope.avi")
    with pytest.raises(CameraError) as error:
        make_camera(CameraSpec("top", missing))
    assert one_line(error).startswith(f"camera 'top': source '{missing}' is not a device")

    not_video = tmp_path / "notes.avi"
    not_video.write_text("not a video at all\n" * 50)
    with pytest.raises(CameraError) as error:
        make_camera(CameraSpec("top", str(not_video))).open()
    assert one_line(error).startswith(f"camera 'top' ({not_video}): ")

    with pytest.raises(CameraError) as error:
        make_camera(CameraSpec("front"), feed_path=None)
    assert one_line(error).startswith("camera 'front' has no source: on a real robot give one (--camera front=")


def test_source_kinds(tmp_path):
    clip = tmp_path / "a.avi"
    clip.write_bytes(b"x")
    assert [source_kind(s) for s in (None, "sim", "0", "/dev/video0", "rtsp://host/stream", str(clip))] == [
        "sim", "sim", "device", "device", "stream", "file"]
    with pytest.raises(CameraError, match="'nothing-here' is not a device"):
        source_kind("nothing-here")


# ---------------------------------------------------------------------------------------------- frame feed
def test_frame_feed_round_trip_and_goal():
    feed = FrameFeed.create(48, 64, 30.0, "test")
    reader = FrameFeed.attach(feed.path)
    try:
        assert reader.shape == (48, 64, 30.0)
        assert reader.read_newer(-1) is None  # nothing published yet
        image = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
        feed.publish(image, 12.5)
        got, index, capture_s = reader.read_newer(-1)
        np.testing.assert_array_equal(got, image)
        assert (index, capture_s) == (0, 12.5)
        assert reader.read_newer(0) is None  # nothing newer than frame 0
        got[:] = 0  # a copy: the feed keeps its frame
        feed.publish(image[::-1].copy(), 13.0)
        got, index, capture_s = reader.read_newer(0)
        np.testing.assert_array_equal(got, image[::-1])
        assert (index, capture_s) == (1, 13.0)
        assert feed.goal() is None
        reader.show_goal(GOAL)
        np.testing.assert_array_equal(feed.goal(), GOAL)
        reader.show_goal(None)
        assert feed.goal() is None
    finally:
        reader.close()
        feed.close()
    assert not os.path.exists(feed.path)  # the simulator's side removes the file


# ---------------------------------------------------------------------------------------------- simulator
@pytest.fixture(scope="module")
def sim_cameras():
    """The simulated so100 with a normal camera and one that freezes 1 s after the simulator started."""
    spec = load_robot("so100")
    cameras = {"front": (48, 64, 30.0), "stuck": (48, 64, 30.0)}
    with simulate(spec, cameras=cameras, faults=Faults(camera_frozen_after_s={"stuck": 1.0})) as ports:
        yield spec, ports, time.monotonic()


def green_pixels(image):
    r, g, b = (image[..., k].astype(int) for k in range(3))
    return int(((g > r + 40) & (g > b + 40)).sum())


def test_the_simulated_camera_end_to_end_and_its_frozen_fault(sim_cameras):
    spec, ports, started = sim_cameras
    assert set(ports.cameras) == {"front", "stuck"}
    front = make_camera(CameraSpec("front"), ports.cameras["front"], MODEL_HW)
    stuck = make_camera(CameraSpec("stuck"), ports.cameras["stuck"], MODEL_HW)
    assert isinstance(front, SimulatedCamera)
    front.open()
    stuck.open()
    try:
        assert front.describe() == "camera 'front' (simulated): 64x48 at 30 fps" and not front.resized
        # the stuck camera freezes 1 s after the simulator started: watch it past that
        frames, seen_at = collect(front, max(1.0, started + 1.6 - time.monotonic()))
        frozen = {i: f for i, f in collect(stuck, 0.6)[0].items()}
        indices = sorted(frames)
        first, last = frames[indices[0]], frames[indices[-1]]
        fps = (last.index - first.index) / (last.capture_s - first.capture_s)
        assert 25.0 <= fps <= 35.0, f"the simulated camera ran at {fps:.1f} fps"
        assert len(indices) >= 0.8 * (last.index - first.index + 1)  # hardly any frame unseen
        assert all(0.0 <= seen_at[i] - frames[i].capture_s < 0.3 for i in indices)
        # sensor noise: no two frames alike bit for bit, so each frame's content is new; the arm is still
        images = [frames[i].image for i in indices]
        assert all(frames[i].unchanged_since_s == frames[i].capture_s for i in indices)
        assert all(not np.array_equal(a, b) and np.abs(a.astype(int) - b).max() <= 1
                   for a, b in zip(images, images[1:]))
        assert all(f.image.shape == (48, 64, 3) and not f.image.flags.writeable for f in frames.values())

        # frozen: bit-identical images with advancing timestamps; unchanged_since_s stops moving
        stuck_frames = [frozen[i] for i in sorted(frozen)]
        assert len(stuck_frames) >= 10
        assert all(np.array_equal(f.image, stuck_frames[0].image) for f in stuck_frames)
        times = [f.capture_s for f in stuck_frames]
        assert all(b > a for a, b in zip(times, times[1:]))
        assert len({f.unchanged_since_s for f in stuck_frames}) == 1
        assert stuck_frames[-1].capture_s - stuck_frames[0].unchanged_since_s > 0.5

        # a goal shown in the scene: a green ghost of the arm appears, and goes again when hidden
        before = front.latest()
        front.show_goal(GOAL)
        shown = wait_for_newer(front, before.index + 3)
        assert green_pixels(shown.image) > green_pixels(before.image) + 50
        assert int((np.abs(shown.image.astype(int) - before.image).max(-1) > 10).sum()) > 50
        front.show_goal(None)
        hidden = wait_for_newer(front, shown.index + 3)
        assert np.abs(hidden.image.astype(int) - before.image).max() <= 1
    finally:
        front.close()
        stuck.close()


def wait_for_newer(camera, index, timeout_s=2.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        frame = camera.latest()
        if frame.index >= index:
            return frame
        time.sleep(0.005)
    raise AssertionError(f"{camera.label}: no frame {index} within {timeout_s} s")


def test_a_robot_opens_its_cameras_after_the_buses_and_closes_them(sim_cameras, tmp_path):
    spec, ports, _ = sim_cameras
    clip = solid_video(tmp_path / "short.avi", 9)
    front = make_camera(CameraSpec("front"), ports.cameras["front"], MODEL_HW)
    replay = make_camera(CameraSpec("replay", clip), output_size=MODEL_HW)
    robot = Robot(spec, ports, cameras={"front": front, "replay": replay})
    assert robot.read_frames() == {"front": None, "replay": None}
    with robot:
        frames = robot.read_frames()
        assert set(frames) == {"front", "replay"} and all(f is not None for f in frames.values())
        assert robot.show_goal(GOAL) is True
        assert robot.show_goal(None) is True
        deadline = time.monotonic() + 5.0
        while not robot.lost_cameras() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert robot.lost_cameras() == {f"camera 'replay' ({clip})": "end of the video file"}
        assert robot.read_frames()["replay"].index == 8
    last = front.latest().index
    time.sleep(0.2)
    assert front.latest().index == last  # closed with the robot: no more frames
    # a camera that cannot open leaves the robot disconnected, torque off
    square = make_camera(CameraSpec("front", solid_video(tmp_path / "sq.avi", 5, 64, 64)), output_size=MODEL_HW)
    robot = Robot(spec, ports, cameras={"front": square})
    with pytest.raises(CameraError, match="aspect ratios differ"):
        robot.connect()
    assert robot.state == "disconnected"
    with Robot(spec, ports) as check:
        assert set(check.read_raw("Torque_Enable").values()) == {0}
    assert Robot(spec, ports).show_goal(GOAL) is False  # no camera can show a goal


# ---------------------------------------------------------------------------------------------- robot files
BUS = '''
[[buses]]
name = "main"
family = "feetech"
motors = [{name = "a", id = 1, model = "sts3215"}]
[[groups]]
name = "arm"
joints = ["a"]
'''


def test_camera_tables_in_a_robot_file(tmp_path):
    path = tmp_path / "cams.toml"
    path.write_text(BUS + '[cameras.front]\nsource = "/dev/video0"\nwidth = 640\nheight = 480\nfps = 30\n'
                          '[cameras.wrist]\nsource = 2\n[cameras.sim]\nfps = 15.5\n')
    spec = load_robot(str(path))
    assert spec.cameras == (CameraSpec("front", "/dev/video0", 640, 480, 30.0), CameraSpec("wrist", "2"),
                            CameraSpec("sim", None, None, None, 15.5))
    assert spec.camera("wrist").source == "2" and spec.camera("nosuch") is None
    assert isinstance(spec.camera("front").fps, float)
    path.write_text(BUS)
    assert load_robot(str(path)).cameras == ()
    assert [c.name for c in load_robot("so100").cameras] == ["front"]
    assert load_robot("koch").camera("front") == CameraSpec("front", fps=30.0)


@pytest.mark.parametrize("table, field, message", [
    pytest.param("[cameras.front]\nexposure = 3\n", "cameras.front.exposure", "unknown field", id="unknown-field"),
    pytest.param("[cameras.front]\nfps = 0\n", "cameras.front.fps", "must be positive", id="fps-zero"),
    pytest.param("[cameras.front]\nfps = -30\n", "cameras.front.fps", "must be positive", id="fps-negative"),
    pytest.param("[cameras.front]\nwidth = 0\n", "cameras.front.width", "must be positive", id="width-zero"),
    pytest.param("[cameras.front]\nheight = 4.5\n", "cameras.front.height", "expected an integer", id="height-float"),
    pytest.param("[cameras.front]\nfps = 'fast'\n", "cameras.front.fps", "expected a number", id="fps-string"),
    pytest.param("[cameras.front]\nsource = 1.5\n", "cameras.front.source", "expected a string", id="source-float"),
    pytest.param("[cameras.front]\nsource = true\n", "cameras.front.source", "expected a string", id="source-bool"),
    pytest.param("[cameras.front]\nsource = ['/dev/video0']\n", "cameras.front.source", "expected a string",
                 id="source-array"),
    pytest.param("[cameras]\nfront = '/dev/video0'\n", "cameras.front", "expected a table", id="not-a-table"),
    pytest.param("cameras = 3\n", "cameras", "expected a table", id="cameras-not-a-table"),
    pytest.param("[cameras.'my cam']\n", "cameras.my cam", "must be an identifier", id="bad-name"),
])
def test_bad_camera_tables_are_one_line_naming_file_and_field(tmp_path, table, field, message):
    path = tmp_path / "bad.toml"
    path.write_text(table + BUS if table.startswith("cameras =") else BUS + table)
    with pytest.raises(RobotSpecError) as error:
        load_robot(str(path))
    text = one_line(error)
    assert text.startswith(f"{path}: {field}: ") and message in text, text
