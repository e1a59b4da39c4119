"""so100-reach: the built-in training task, on the simulator's own servo dynamics and SO-100 units.

``n_envs`` copies of a simulated SO-100 arm run in lockstep inside one ``ServoArray`` (n_envs x 6 position
servos, trapezoidal speed / acceleration limits), in process and without a pty. Positions are converted
between ticks and user units with the same ``sim_calibration`` and ``norm_mode`` of each motor that the
simulated bus serves to ``actsac-run``, so a policy trained here sees exactly what the runtime reads.

- Observation (CONTRACTS.md section 1): ``<joint>.pos`` for the 6 joints, then ``<joint>.goal``.
- Action: goal positions for the 6 joints in user units (range_m100_100, gripper range_0_100), passed through
  the same safety filter ``actsac-run`` applies: clamped to the joint range and to the previous command
  +- ``SO100.max_step`` (10 user units per tick), the first "previous command" being the start pose.
- Reward: minus the mean distance to the goal as a fraction of each joint's span, plus ``success_bonus``
  on every tick where all joints are within ``success_tolerance`` user units of the goal.
- Episodes end on a time limit only (no terminal state): the arm must reach the goal and hold it.

so100-visual-reach (``VisualReachTask``) is the same task with the goal taken out of the state: the
observation is the 6 ``<joint>.pos`` only, and the goal is seen in the image of the simulator's camera
(``drivers/sim/camera.py``, camera ``front``), which draws the arm and a green ghost of the goal pose.
"""

from __future__ import annotations

import numpy as np

from actsac.drivers.units import normalize, unnormalize
from actsac.drivers.robots import SO100
from actsac.drivers.servo_model import ServoArray

TASK_NAME = "so100-reach"
JOINTS = list(SO100.joint_names)
MOTORS = [SO100.motor(j) for j in JOINTS]
UNITS = [m.norm_mode for m in MOTORS]
OBSERVATION_NAMES = [f"{j}.pos" for j in JOINTS] + [f"{j}.goal" for j in JOINTS]
# Full user-unit range of each joint (the normalisation stats) and the box goals / starts are drawn from.
JOINT_LOW = np.array([0.0 if u == "range_0_100" else -100.0 for u in UNITS])
JOINT_HIGH = np.array([100.0] * len(JOINTS))
GOAL_LOW = np.array([10.0 if u == "range_0_100" else -60.0 for u in UNITS])
GOAL_HIGH = np.array([90.0 if u == "range_0_100" else 60.0 for u in UNITS])
START_LOW = np.array([5.0 if u == "range_0_100" else -75.0 for u in UNITS])
START_HIGH = np.array([95.0 if u == "range_0_100" else 75.0 for u in UNITS])
HOME = (JOINT_LOW + JOINT_HIGH) / 2.0  # where the simulated bus starts: mid-range
MAX_STEP = np.array([SO100.max_step[j] for j in JOINTS])  # user units per tick, the runtime's default clamp

VISUAL_TASK_NAME = "so100-visual-reach"
VISUAL_OBSERVATION_NAMES = [f"{j}.pos" for j in JOINTS]  # the goal is not in the state: it is in the image
CAMERA_NAME = "front"


def make_goals(n_goals: int = 8, seed: int = 0) -> np.ndarray:
    """A fixed, seeded set of goals (n_goals, 6) in user units, rounded to 0.1 so they print and store well."""
    rng = np.random.default_rng(seed)
    return np.round(rng.uniform(GOAL_LOW, GOAL_HIGH, size=(n_goals, len(JOINTS))), 1)


class ReachTask:
    """Vectorised so100-reach: ``reset()`` -> obs (n_envs, 12); ``step(action)`` -> (obs, reward, success)."""

    def __init__(self, n_envs: int, goals: np.ndarray, *, seed: int = 0, control_hz: float = 30.0,
                 episode_s: float = 2.0, success_tolerance: float = 4.0, success_bonus: float = 1.0,
                 home_fraction: float = 0.25):
        self.n_envs, self.goals = n_envs, np.asarray(goals, dtype=np.float64)
        self.period_s = 1.0 / control_hz
        self.max_steps = int(round(episode_s * control_hz))
        self.success_tolerance, self.success_bonus = success_tolerance, success_bonus
        self.home_fraction = home_fraction
        self.rng = np.random.default_rng(seed)
        self.span = JOINT_HIGH - JOINT_LOW
        self.servos = ServoArray(np.zeros(n_envs * len(JOINTS)))
        self.goal = np.zeros((n_envs, len(JOINTS)))
        self.command = np.zeros((n_envs, len(JOINTS)))  # the last command sent, after the safety clamp
        self.t = 0

    # ------------------------------------------------------------------ units
    @staticmethod
    def to_ticks(user: np.ndarray) -> np.ndarray:
        """User units (n, 6) -> ticks (n, 6), through each motor's sim calibration (rounded, clamped)."""
        return np.stack([unnormalize(user[:, j], m.sim_calibration, m.norm_mode) for j, m in enumerate(MOTORS)], 1)

    @staticmethod
    def to_user(ticks: np.ndarray) -> np.ndarray:
        return np.stack([normalize(ticks[:, j], m.sim_calibration, m.norm_mode) for j, m in enumerate(MOTORS)], 1)

    def positions(self) -> np.ndarray:
        """Present positions in user units (n_envs, 6), from whole ticks as the bus reports them."""
        return self.to_user(np.rint(self.servos.position.reshape(self.n_envs, -1)))

    def observation(self) -> np.ndarray:
        return np.concatenate([self.positions(), self.goal], axis=1).astype(np.float32)

    # ------------------------------------------------------------------ episode
    def reset(self, goal_index: np.ndarray | None = None) -> np.ndarray:
        """New episode: each env gets a goal from the fixed set (random, or ``goal_index``) and a start pose
        drawn from a box around the workspace (or home, the simulator's power-on pose)."""
        n = self.n_envs
        if goal_index is None:
            goal_index = self.rng.integers(len(self.goals), size=n)
        self.goal = self.goals[np.asarray(goal_index)].copy()
        start = self.rng.uniform(START_LOW, START_HIGH, size=(n, len(JOINTS)))
        start[self.rng.random(n) < self.home_fraction] = HOME
        ticks = self.to_ticks(start).astype(np.float64).ravel()
        self.command = start
        self.servos.position, self.servos.goal = ticks.copy(), ticks.copy()
        self.servos.velocity = np.zeros_like(ticks)
        self.servos.torque = np.ones_like(ticks, dtype=bool)
        self.t = 0
        return self.observation()

    def step(self, action_user: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Command goal positions (n_envs, 6) in user units for one control period."""
        command = np.clip(np.asarray(action_user, dtype=np.float64), JOINT_LOW, JOINT_HIGH)
        self.command = np.clip(command, self.command - MAX_STEP, self.command + MAX_STEP)
        self.servos.goal = self.to_ticks(self.command).astype(np.float64).ravel()
        self.servos.step(self.period_s)
        self.t += 1
        obs = self.observation()
        # Both tasks' observations start with the 6 positions (float32, as the policy sees them).
        error = np.abs(obs[:, :len(JOINTS)] - self.goal)
        success = np.all(error <= self.success_tolerance, axis=1)
        reward = -(error / self.span).mean(axis=1) + self.success_bonus * success
        return obs, reward.astype(np.float32), success

    @property
    def done(self) -> bool:
        return self.t >= self.max_steps

    def info(self) -> dict:
        """The checkpoint's extra["task"] (CONTRACTS.md section 1)."""
        return {"name": TASK_NAME, "goals": self.goals.tolist(), "goal_hold_s": 4.0,
                "success_tolerance": self.success_tolerance}


class VisualReachTask(ReachTask):
    """so100-visual-reach: ReachTask's dynamics, goals, rewards and success, with the goal only in the image.

    ``observation()`` -> positions (n_envs, 6) float32; ``images()`` -> {CAMERA_NAME: (n_envs, H, W, 3) uint8},
    the simulator's camera view of the present pose with each env's goal drawn as a ghost.
    """

    def __init__(self, n_envs: int, goals: np.ndarray, *, seed: int = 0, control_hz: float = 30.0,
                 episode_s: float = 2.0, success_tolerance: float = 4.0, success_bonus: float = 1.0,
                 home_fraction: float = 0.25, image_size: tuple[int, int] = (48, 64)):
        # OpenCV is only needed here: imported late, so so100-reach (and whatever imports this module) runs
        # without it.
        from actsac.drivers.sim.camera import ArmCamera

        super().__init__(n_envs, goals, seed=seed, control_hz=control_hz, episode_s=episode_s,
                         success_tolerance=success_tolerance, success_bonus=success_bonus,
                         home_fraction=home_fraction)
        if len(image_size) != 2:
            raise ValueError(f"image_size must be (height, width), got {image_size!r}")
        self.camera = ArmCamera(*image_size)

    def observation(self) -> np.ndarray:
        return self.positions().astype(np.float32)

    def images(self) -> dict[str, np.ndarray]:
        """The camera images of the present state: {CAMERA_NAME: uint8 (n_envs, H, W, 3)}."""
        return {CAMERA_NAME: self.camera.render(self.positions(), self.goal)}

    @property
    def cameras(self) -> list[tuple[str, int, int]]:
        """(name, height, width) of each camera, in the order of ``images()``."""
        return [(CAMERA_NAME, self.camera.height, self.camera.width)]

    def info(self) -> dict:
        return {**super().info(), "name": VISUAL_TASK_NAME,
                "cameras": [{"name": name, "height": h, "width": w} for name, h, w in self.cameras]}


def _expert_step(pos: np.ndarray, goal: np.ndarray, max_step: float) -> np.ndarray:
    """The scripted expert's rule: command the goal, but at most ``max_step`` user units from ``pos``."""
    return pos + np.clip(goal - pos, -max_step, max_step)


def expert_action(obs: np.ndarray, max_step: float = 8.0) -> np.ndarray:
    """The scripted expert: command the goal, but at most ``max_step`` user units from the present position
    (below the runtime's 10-unit safety step), so it moves smoothly and then holds the goal."""
    return _expert_step(obs[:, :6], obs[:, 6:], max_step)


def visual_expert_action(positions: np.ndarray, goal: np.ndarray, max_step: float = 8.0) -> np.ndarray:
    """The scripted expert of so100-visual-reach, the rule of ``expert_action``. It is privileged: the goal
    (``task.goal``) is given to it, where the policy only sees it in the image."""
    return _expert_step(np.asarray(positions), np.asarray(goal), max_step)
