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

upper-body-reach (``UpperBodyReachTask``) is so100-reach on the upper body's 32 joints (arm 14, torso 6 in
degrees, hand 12, on three buses): the same dynamics, rewards and expert, each joint in its own unit
(``ReachRobot``: any robot definition's joints as a reach task sees them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from actsac.drivers.robots import SO100, RobotSpec, load_robot
from actsac.drivers.servo_model import ServoArray
from actsac.drivers.units import normalize, unnormalize
from actsac.runtime.safety import DEFAULT_STEP_FRACTION

from .config import ActionGroup, robot_action_groups

# Share of each joint's half-range (about its middle) goals and start poses are drawn from; a 0..100 joint
# (gripper, finger) opens and closes further.
GOAL_FRACTION, START_FRACTION = {"range_0_100": 0.8}, {"range_0_100": 0.9}
GOAL_FRACTION_DEFAULT, START_FRACTION_DEFAULT = 0.6, 0.75
EXPERT_STEP_FRACTION = 0.8  # the scripted expert moves at most this share of the runtime's step cap per tick


@dataclass(frozen=True)
class ReachRobot:
    """A robot's joints as a reach task sees them, all in user units through the simulator's calibration:
    the joint range (the normalisation stats), the goal and start boxes, the power-on pose (mid-range) and the
    runtime's step cap (the robot file's, else ``DEFAULT_STEP_FRACTION`` of the range)."""

    spec: RobotSpec

    @property
    def joints(self) -> list[str]:
        return [j for _, joints in self.spec.groups for j in joints]  # action order: group after group

    @property
    def motors(self):
        return [self.spec.motor(j) for j in self.joints]

    @property
    def calibration(self) -> dict:
        """The calibration the task's data comes from, the simulator's, as an export's metadata carries it."""
        from actsac.calibration.compare import calibration_record

        return calibration_record({m.name: m.sim_calibration for m in self.motors}, self.joints, "simulator")

    @property
    def units(self) -> list[str]:
        return [m.norm_mode for m in self.motors]

    @property
    def action_groups(self) -> list[ActionGroup]:
        return robot_action_groups(self.spec)

    @property
    def observation_names(self) -> list[str]:
        return [f"{j}.pos" for j in self.joints] + [f"{j}.goal" for j in self.joints]

    def _ends(self) -> np.ndarray:
        return np.array([sorted(float(normalize(v, m.sim_calibration, m.norm_mode))
                                for v in (m.sim_calibration.range_min, m.sim_calibration.range_max))
                         for m in self.motors])

    @property
    def joint_low(self) -> np.ndarray:
        return self._ends()[:, 0]

    @property
    def joint_high(self) -> np.ndarray:
        return self._ends()[:, 1]

    def box(self, fractions: dict[str, float], default: float) -> tuple[np.ndarray, np.ndarray]:
        share = np.array([fractions.get(u, default) for u in self.units])
        mid, half = (self.joint_low + self.joint_high) / 2.0, (self.joint_high - self.joint_low) / 2.0
        return np.round(mid - share * half, 6), np.round(mid + share * half, 6)

    @property
    def home(self) -> np.ndarray:
        return (self.joint_low + self.joint_high) / 2.0  # where the simulated bus starts: mid-range

    @property
    def max_step(self) -> np.ndarray:
        span = self.joint_high - self.joint_low
        return np.array([self.spec.max_step.get(j, DEFAULT_STEP_FRACTION * s) for j, s in zip(self.joints, span)])


SO100_REACH = ReachRobot(SO100)
UPPER_BODY_REACH = ReachRobot(load_robot("upper_body"))

TASK_NAME = "so100-reach"
UPPER_BODY_TASK_NAME = "upper-body-reach"
JOINTS = SO100_REACH.joints
MOTORS = SO100_REACH.motors
UNITS = SO100_REACH.units
OBSERVATION_NAMES = SO100_REACH.observation_names
# Full user-unit range of each joint (the normalisation stats) and the box goals / starts are drawn from.
JOINT_LOW, JOINT_HIGH = SO100_REACH.joint_low, SO100_REACH.joint_high
GOAL_LOW, GOAL_HIGH = SO100_REACH.box(GOAL_FRACTION, GOAL_FRACTION_DEFAULT)
START_LOW, START_HIGH = SO100_REACH.box(START_FRACTION, START_FRACTION_DEFAULT)
HOME = SO100_REACH.home
MAX_STEP = SO100_REACH.max_step  # user units per tick, the runtime's default clamp

VISUAL_TASK_NAME = "so100-visual-reach"
VISUAL_OBSERVATION_NAMES = [f"{j}.pos" for j in JOINTS]  # the goal is not in the state: it is in the image
CAMERA_NAME = "front"


def make_goals(n_goals: int = 8, seed: int = 0, robot: ReachRobot = SO100_REACH) -> np.ndarray:
    """A fixed, seeded set of goals (n_goals, joints) in user units, rounded to 0.1 so they print and store
    well."""
    rng = np.random.default_rng(seed)
    low, high = robot.box(GOAL_FRACTION, GOAL_FRACTION_DEFAULT)
    return np.round(rng.uniform(low, high, size=(n_goals, len(robot.joints))), 1)


class ReachTask:
    """Vectorised so100-reach: ``reset()`` -> obs (n_envs, 2 J); ``step(action)`` -> (obs, reward, success).
    A subclass names another ``robot`` (a ReachRobot) and task ``name``: upper-body-reach."""

    robot: ReachRobot = SO100_REACH
    name: str = TASK_NAME

    def __init__(self, n_envs: int, goals: np.ndarray, *, seed: int = 0, control_hz: float = 30.0,
                 episode_s: float = 2.0, success_tolerance: float = 4.0, success_bonus: float = 1.0,
                 home_fraction: float = 0.25):
        self.n_envs, self.goals = n_envs, np.asarray(goals, dtype=np.float64)
        self.period_s = 1.0 / control_hz
        self.max_steps = int(round(episode_s * control_hz))
        self.success_tolerance, self.success_bonus = success_tolerance, success_bonus
        self.home_fraction = home_fraction
        self.rng = np.random.default_rng(seed)
        robot = self.robot  # its arrays, computed once
        self.motors, self.n_joints = robot.motors, len(robot.joints)
        self.joint_low, self.joint_high, self.max_step, self.home = (robot.joint_low, robot.joint_high,
                                                                     robot.max_step, robot.home)
        self.start_low, self.start_high = robot.box(START_FRACTION, START_FRACTION_DEFAULT)
        self.span = self.joint_high - self.joint_low
        self.servos = ServoArray(np.zeros(n_envs * self.n_joints))
        self.goal = np.zeros((n_envs, self.n_joints))
        self.command = np.zeros((n_envs, self.n_joints))  # the last command sent, after the safety clamp
        self.t = 0

    # ------------------------------------------------------------------ units
    def to_ticks(self, user: np.ndarray) -> np.ndarray:
        """User units (n, J) -> ticks (n, J), through each motor's sim calibration (rounded, clamped)."""
        return np.stack([unnormalize(user[:, j], m.sim_calibration, m.norm_mode) for j, m in enumerate(self.motors)], 1)

    def to_user(self, ticks: np.ndarray) -> np.ndarray:
        return np.stack([normalize(ticks[:, j], m.sim_calibration, m.norm_mode) for j, m in enumerate(self.motors)],
                        1)

    def positions(self) -> np.ndarray:
        """Present positions in user units (n_envs, J), from whole ticks as the bus reports them."""
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
        start = self.rng.uniform(self.start_low, self.start_high, size=(n, self.n_joints))
        start[self.rng.random(n) < self.home_fraction] = self.home
        ticks = self.to_ticks(start).astype(np.float64).ravel()
        self.command = start
        self.servos.position, self.servos.goal = ticks.copy(), ticks.copy()
        self.servos.velocity = np.zeros_like(ticks)
        self.servos.torque = np.ones_like(ticks, dtype=bool)
        self.t = 0
        return self.observation()

    def step(self, action_user: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Command goal positions (n_envs, J) in user units for one control period."""
        command = np.clip(np.asarray(action_user, dtype=np.float64), self.joint_low, self.joint_high)
        self.command = np.clip(command, self.command - self.max_step, self.command + self.max_step)
        self.servos.goal = self.to_ticks(self.command).astype(np.float64).ravel()
        self.servos.step(self.period_s)
        self.t += 1
        obs = self.observation()
        # Every task's observation starts with the J positions (float32, as the policy sees them).
        error = np.abs(obs[:, :self.n_joints] - self.goal)
        success = np.all(error <= self.success_tolerance, axis=1)
        reward = -(error / self.span).mean(axis=1) + self.success_bonus * success
        return obs, reward.astype(np.float32), success

    @property
    def done(self) -> bool:
        return self.t >= self.max_steps

    def info(self) -> dict:
        """The checkpoint's extra["task"] (CONTRACTS.md section 1)."""
        return {"name": self.name, "goals": self.goals.tolist(), "goal_hold_s": 4.0,
                "success_tolerance": self.success_tolerance}

    def expert(self, positions: np.ndarray) -> np.ndarray:
        """The scripted expert (privileged: it knows each env's goal): command the goal, but at most
        ``EXPERT_STEP_FRACTION`` of the step cap from the present position, so it moves smoothly, then holds."""
        return _expert_step(np.asarray(positions), self.goal, EXPERT_STEP_FRACTION * self.max_step)


class UpperBodyReachTask(ReachTask):
    """upper-body-reach: the reach task on the upper body's 32 joints (arm 14, torso 6 in degrees, hand 12)."""

    robot = UPPER_BODY_REACH
    name = UPPER_BODY_TASK_NAME


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
    half = obs.shape[1] // 2  # [positions, goals]
    return _expert_step(obs[:, :half], obs[:, half:], max_step)


def visual_expert_action(positions: np.ndarray, goal: np.ndarray, max_step: float = 8.0) -> np.ndarray:
    """The scripted expert of so100-visual-reach, the rule of ``expert_action``. It is privileged: the goal
    (``task.goal``) is given to it, where the policy only sees it in the image."""
    return _expert_step(np.asarray(positions), np.asarray(goal), max_step)
