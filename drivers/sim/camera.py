"""The simulator's camera: a cheap, deterministic drawing of the simulated SO-100 seen from a fixed viewpoint.

``ArmCamera(height, width).render(positions, goal)`` turns joint positions in SO-100 user units (the order of
``SO100.joint_names``: shoulder_pan, shoulder_lift, elbow_flex, wrist_flex, wrist_roll in range_m100_100,
gripper in range_0_100) into an RGB uint8 image. Nothing is random and nothing depends on the time: the same
input always gives bit-identical pixels. It is the camera of the simulated robot (the ``so100-visual-reach``
training task renders its observations with it; a later issue serves it to ``actsac-run`` beside the simulated
buses), so it stays robot-side code: numpy and OpenCV only.

What is drawn, in a pinhole projection from a fixed oblique viewpoint (front-right of the arm, above it):

- a dark background, a slightly lighter square of floor and the base plate and column (static, drawn once);
- the goal pose, when given, as a green "ghost" of the whole arm, drawn first (under the arm) and thicker
  than the arm, so that it stays visible as a green outline even when the arm is exactly on it;
- the arm as a kinematic chain: upper arm (orange), forearm (amber), wrist-to-hand (light grey) with a blue
  tab on one side of the hand (the gripper's servo housing, which turns with wrist_roll, so roll is visible
  over the whole turn and also when the gripper is closed), white dots on elbow and wrist, and two jaws
  (yellow) on a short cross bar at the end of the hand: the jaws open with the gripper, and the bar and the
  plane they open in turn with wrist_roll (their width and slant in the image change with it).

Joint angles are a fixed linear map of the user units, the one the simulator's tick calibration implies
(``drivers/robots.py``: 2046 of 4096 ticks per turn for the arm joints, the whole turn for wrist_roll,
1000 ticks for the gripper):

- shoulder_pan, shoulder_lift, elbow_flex, wrist_flex: -100..100 -> -90..90 degrees;
- wrist_roll: -100..100 -> -180..180 degrees;
- gripper: 0..100 -> jaws closed..open, 0..44 degrees each side of the hand axis (88 degrees between them).

At zero the arm reaches forward (+x) with the upper arm 75 degrees above horizontal and the forearm and hand
horizontal; positive shoulder_lift / elbow_flex / wrist_flex tilt the chain forward and down, positive pan
turns it to the left (+y, away from the camera side). Positions outside the joint ranges are clipped to them.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

N_JOINTS = 6
# User units -> radians (see the module docstring); the gripper's factor gives each jaw's half-opening.
ARM_RAD_PER_UNIT = math.radians(90.0) / 100.0
ROLL_RAD_PER_UNIT = math.radians(180.0) / 100.0
GRIPPER_RAD_PER_UNIT = math.radians(44.0) / 100.0
POS_LOW = np.array([-100.0] * 5 + [0.0])
POS_HIGH = np.array([100.0] * 6)

# Geometry, in arbitrary length units (about 10 cm each).
SHOULDER_HEIGHT = 1.0
UPPER_ARM, FOREARM, HAND, JAW, TAB = 1.1, 1.15, 0.5, 0.7, 0.4
JAW_ROOT = 0.12  # half the gap between the jaws' roots
LIFT_ZERO_ELEVATION = math.radians(75.0)  # the upper arm's elevation at shoulder_lift 0
ELBOW_ZERO_BEND = math.radians(75.0)  # forearm relative to upper arm at elbow_flex 0 (forearm horizontal)
BASE_RADIUS = 0.45

# The fixed viewpoint: looks at TARGET from CAMERA_DISTANCE, azimuth measured from +x towards -y (the
# camera's side), elevation above the horizontal; FOCAL is in units of min(width / 64, height / 48) pixels and
# VIEW_CENTRE (x right, y down, over depth) is put at the frame's centre. FOCAL and VIEW_CENTRE frame the
# poses of the goal box (and nearly all of the start box) inside the image.
TARGET = np.array([0.85, 0.0, 0.9])
CAMERA_AZIMUTH = math.radians(60.0)
CAMERA_ELEVATION = math.radians(25.0)
CAMERA_DISTANCE = 7.0
FOCAL = 54.0
VIEW_CENTRE = np.array([0.042, -0.15])
FLOOR_HALF = 3.0  # the floor square drawn: x and y in +-FLOOR_HALF around the base

# RGB colours.
BACKGROUND = (16, 16, 20)
FLOOR = (40, 40, 48)
BASE_PLATE = (80, 80, 92)
BASE_COLUMN = (150, 150, 165)
ARM_COLOURS = {"upper": (235, 110, 30), "fore": (250, 180, 50), "hand": (215, 215, 215), "tab": (60, 140, 255),
               "jaw": (255, 245, 90), "joint": (255, 255, 255)}
GHOST_COLOURS = {"upper": (0, 150, 40), "fore": (0, 170, 60), "hand": (40, 190, 80), "tab": (0, 230, 160),
                 "jaw": (110, 255, 110), "joint": (120, 255, 150)}

SHIFT = 4  # cv2 fixed-point fraction bits: sub-pixel endpoints, so small joint motions still move pixels
ONE = 1 << SHIFT
# Chain points, in the order _points returns them.
(P_SHOULDER, P_ELBOW, P_WRIST, P_HAND, P_TAB_ROOT, P_TAB, P_ROOT_A, P_ROOT_B, P_JAW_A, P_JAW_B) = range(10)
N_POINTS = 10
N_FEATURES = 18


def _chain_matrix() -> np.ndarray:
    """The chain's points as linear combinations of the features ``_points`` computes: (18, 10 points x 3).

    Coordinates are (r, h, l) in the arm plane: r along the pan direction, h up, l to the plane's left.
    e1..e3 are the elevations of upper arm, forearm and hand; the hand's axis is a = (cos e3, sin e3, 0) and its
    normal in the plane n = (-sin e3, cos e3, 0). The jaws sit at the hand's end, JAW_ROOT either side along
    d = cos(roll) * left + sin(roll) * n, and open by the gripper angle in the plane of a and d; the servo
    housing (tab) sticks out of the hand along cos(roll) * n - sin(roll) * left, on one side only.
    """
    # features: 0: 1 | 1, 2: c1, s1 | 3, 4: c2, s2 | 5, 6: c3, s3 | 7, 8, 9: cr*s3, cr*c3, sr |
    # 10, 11: cg*c3, cg*s3 | 12, 13, 14: sg*sr*s3, sg*sr*c3, sg*cr | 15, 16, 17: sr*s3, sr*c3, cr
    m = np.zeros((N_FEATURES, N_POINTS, 3))
    m[0, :, 1] = SHOULDER_HEIGHT
    for p in range(P_ELBOW, N_POINTS):
        m[1, p, 0], m[2, p, 1] = UPPER_ARM, UPPER_ARM
    for p in range(P_WRIST, N_POINTS):
        m[3, p, 0], m[4, p, 1] = FOREARM, FOREARM
    for p in range(P_HAND, N_POINTS):
        length = HAND / 2 if p in (P_TAB_ROOT, P_TAB) else HAND
        m[5, p, 0], m[6, p, 1] = length, length
    m[7, P_TAB, 0], m[8, P_TAB, 1], m[9, P_TAB, 2] = -TAB, TAB, -TAB
    for root, jaw, sign in ((P_ROOT_A, P_JAW_A, 1.0), (P_ROOT_B, P_JAW_B, -1.0)):
        for p in (root, jaw):
            m[15, p, 0], m[16, p, 1], m[17, p, 2] = -sign * JAW_ROOT, sign * JAW_ROOT, sign * JAW_ROOT
        m[10, jaw, 0], m[11, jaw, 1] = JAW, JAW
        m[12, jaw, 0], m[13, jaw, 1], m[14, jaw, 2] = -sign * JAW, sign * JAW, sign * JAW
    return m.reshape(N_FEATURES, N_POINTS * 3)


def _points(q: np.ndarray) -> np.ndarray:
    """Joint positions (n, 6) in user units -> the chain's 3D world points (n, 10, 3)."""
    angles = np.empty((len(q), 6))
    angles[:, 0] = LIFT_ZERO_ELEVATION - q[:, 1] * ARM_RAD_PER_UNIT  # e1
    angles[:, 1] = angles[:, 0] - ELBOW_ZERO_BEND - q[:, 2] * ARM_RAD_PER_UNIT  # e2
    angles[:, 2] = angles[:, 1] - q[:, 3] * ARM_RAD_PER_UNIT  # e3
    angles[:, 3] = q[:, 4] * ROLL_RAD_PER_UNIT
    angles[:, 4] = q[:, 5] * GRIPPER_RAD_PER_UNIT
    angles[:, 5] = q[:, 0] * ARM_RAD_PER_UNIT  # pan
    c, s = np.cos(angles), np.sin(angles)
    f = np.empty((len(q), N_FEATURES))
    f[:, 0] = 1.0
    f[:, 1:6:2], f[:, 2:7:2] = c[:, :3], s[:, :3]
    f[:, 7], f[:, 8], f[:, 9] = c[:, 3] * s[:, 2], c[:, 3] * c[:, 2], s[:, 3]
    f[:, 10], f[:, 11] = c[:, 4] * c[:, 2], c[:, 4] * s[:, 2]
    f[:, 15], f[:, 16], f[:, 17] = s[:, 3] * s[:, 2], s[:, 3] * c[:, 2], c[:, 3]
    f[:, 12:15] = s[:, 4:5] * f[:, 15:18]
    rhl = (f @ CHAIN).reshape(len(q), N_POINTS, 3)
    cp, sp = c[:, 5:6], s[:, 5:6]
    r, h, l = rhl[..., 0], rhl[..., 1], rhl[..., 2]
    return np.stack([r * cp - l * sp, r * sp + l * cp, h], -1)


CHAIN = _chain_matrix()


class ArmCamera:
    """Renders the simulated SO-100 (and optionally a green ghost of a goal pose) as RGB uint8 images."""

    def __init__(self, height: int = 48, width: int = 64):
        for name, value in (("height", height), ("width", width)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 16:
                raise ValueError(f"ArmCamera {name} must be an int >= 16, got {value!r}")
        self.height, self.width = int(height), int(width)
        scale = min(self.width / 64.0, self.height / 48.0)
        self._focal = FOCAL * scale
        self._centre = np.array([self.width / 2.0, self.height / 2.0])
        cam_dir = np.array([math.cos(CAMERA_ELEVATION) * math.cos(CAMERA_AZIMUTH),
                            -math.cos(CAMERA_ELEVATION) * math.sin(CAMERA_AZIMUTH), math.sin(CAMERA_ELEVATION)])
        self._eye = TARGET + CAMERA_DISTANCE * cam_dir
        forward = -cam_dir
        right = np.cross(forward, [0.0, 0.0, 1.0])
        right /= np.linalg.norm(right)
        self._rotation = np.stack([right, np.cross(right, forward), forward])  # world -> camera (x, y, depth)
        thick = max(1, int(round(2 * scale)))
        self._thickness = {"link": thick, "hand": max(1, int(round(1.5 * scale))), "jaw": max(1, int(round(scale))),
                           "ghost_extra": max(1, int(round(scale)))}
        self._joint_radius = max(1, int(round(1.2 * scale)))
        self._line_type = cv2.LINE_AA
        self._background = self._draw_background()

    # ------------------------------------------------------------------ projection
    def _project(self, points: np.ndarray) -> np.ndarray:
        """World points (..., 3) -> cv2 fixed-point pixel coordinates (..., 2), int, SHIFT fraction bits."""
        cam = (points - self._eye) @ self._rotation.T
        depth = np.maximum(cam[..., 2], 1e-3)
        view = np.stack([cam[..., 0], -cam[..., 1]], -1) / depth[..., None]  # x right, y down
        pixels = self._centre + self._focal * (view - VIEW_CENTRE)
        bound = 4.0 * max(self.width, self.height)  # far outside the frame; keeps cv2's fixed point in range
        return np.rint(np.clip(pixels, -bound, bound) * ONE).astype(np.int64)

    def _draw_background(self) -> np.ndarray:
        image = np.empty((self.height, self.width, 3), np.uint8)
        image[:] = BACKGROUND
        f = FLOOR_HALF
        floor = self._project(np.array([[-f, -f, 0.0], [f, -f, 0.0], [f, f, 0.0], [-f, f, 0.0]]))
        cv2.fillPoly(image, [floor.astype(np.int32)], FLOOR, self._line_type, SHIFT)
        angles = np.linspace(0.0, 2 * math.pi, 32, endpoint=False)
        circle = np.stack([BASE_RADIUS * np.cos(angles), BASE_RADIUS * np.sin(angles), np.zeros(32)], 1)
        cv2.fillPoly(image, [self._project(circle).astype(np.int32)], BASE_PLATE, self._line_type, SHIFT)
        column = self._project(np.array([[0.0, 0.0, 0.0], [0.0, 0.0, SHOULDER_HEIGHT]]))
        cv2.line(image, tuple(column[0].tolist()), tuple(column[1].tolist()), BASE_COLUMN,
                 self._thickness["link"] + 1, self._line_type, SHIFT)
        return image

    # ------------------------------------------------------------------ drawing
    def _draw_arm(self, image: np.ndarray, pts: np.ndarray, colours: dict, extra: int) -> None:
        p = [tuple(xy) for xy in pts.tolist()]
        t, lt = self._thickness, self._line_type
        cv2.line(image, p[P_SHOULDER], p[P_ELBOW], colours["upper"], t["link"] + extra, lt, SHIFT)
        cv2.line(image, p[P_ELBOW], p[P_WRIST], colours["fore"], t["link"] + extra, lt, SHIFT)
        cv2.line(image, p[P_WRIST], p[P_HAND], colours["hand"], t["hand"] + extra, lt, SHIFT)
        cv2.line(image, p[P_TAB_ROOT], p[P_TAB], colours["tab"], t["hand"] + extra, lt, SHIFT)
        cv2.line(image, p[P_ROOT_A], p[P_ROOT_B], colours["jaw"], t["jaw"] + extra, lt, SHIFT)
        cv2.line(image, p[P_ROOT_A], p[P_JAW_A], colours["jaw"], t["jaw"] + extra, lt, SHIFT)
        cv2.line(image, p[P_ROOT_B], p[P_JAW_B], colours["jaw"], t["jaw"] + extra, lt, SHIFT)
        for k in (P_ELBOW, P_WRIST):
            cv2.circle(image, p[k], (self._joint_radius + extra) * ONE, colours["joint"], -1, lt, SHIFT)

    @staticmethod
    def _as_batch(values, name: str) -> tuple[np.ndarray, bool]:
        q = np.asarray(values, dtype=np.float64)
        single = q.ndim == 1
        if single:
            q = q[None]
        if q.ndim != 2 or q.shape[1] != N_JOINTS:
            raise ValueError(f"{name} must have shape (6,) or (n, 6) (SO-100 joint positions), got {q.shape}")
        if not np.isfinite(q).all():
            raise ValueError(f"{name} must be finite")
        return np.clip(q, POS_LOW, POS_HIGH), single

    def render(self, positions, goal=None) -> np.ndarray:
        """RGB uint8 image(s): (H, W, 3) for positions of shape (6,), (n, H, W, 3) for (n, 6).

        ``goal``, the same shape as ``positions`` or None, is drawn as a green ghost under the arm.
        """
        q, single = self._as_batch(positions, "positions")
        n = len(q)
        if goal is not None:
            g, goal_single = self._as_batch(goal, "goal")
            if goal_single != single or len(g) != n:
                raise ValueError(f"goal must have the shape of positions {np.shape(positions)}, "
                                 f"got {np.shape(goal)}")
            q = np.concatenate([q, g])
        pixels = self._project(_points(q))  # (n or 2n, 10, 2): the arm, then the ghost
        frames = np.empty((n, self.height, self.width, 3), np.uint8)
        for i in range(n):
            image = frames[i]
            image[:] = self._background
            if goal is not None:
                self._draw_arm(image, pixels[n + i], GHOST_COLOURS, self._thickness["ghost_extra"])
            self._draw_arm(image, pixels[i], ARM_COLOURS, 0)
        return frames[0] if single else frames
