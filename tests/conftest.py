import contextlib
import signal

import pytest


# Prelude of a `python -c` script that runs robot-side code as on a robot computer: torch and onnx unimportable.
BLOCK_TORCH_AND_ONNX = """
import importlib.abc, json, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "onnx"):
            raise ImportError(f"{name} is blocked: a robot computer has no {name}")
sys.meta_path.insert(0, Block())
"""


@contextlib.contextmanager
def deadline_guard(seconds: float):
    """Fail a test that runs longer than ``seconds`` with a clear message instead of hanging the suite."""
    def expire(signum, frame):
        raise TimeoutError(f"test exceeded its {seconds:g} s deadline")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def so100_groups():
    from actsac.policy import ActionGroup

    joints = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
    return [ActionGroup("arm", joints, ["range_m100_100"] * 5 + ["range_0_100"])]


def upper_body_groups():
    from actsac.policy import ActionGroup

    return [ActionGroup("arm", [f"arm_{i}" for i in range(14)]),
            ActionGroup("torso", [f"torso_{i}" for i in range(6)], "degrees"),
            ActionGroup("hand", [f"hand_{i}" for i in range(12)], "range_0_100")]


@pytest.fixture
def small_config():
    """A small ACT config on the SO-100's joints, with min/max stats."""
    from actsac.policy import NormStats, PolicyConfig

    return PolicyConfig.from_preset(
        "small", state_dim=12, action_groups=so100_groups(), chunk_size=10,
        obs_stats=NormStats.min_max([-100.0] * 12, [100.0] * 12),
        action_stats=NormStats.min_max([-100.0] * 5 + [0.0], [100.0] * 5 + [100.0]))


def decoded_frames(path):
    """What OpenCV itself decodes from a video file, frame by frame (BGR)."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames
