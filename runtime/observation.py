"""What the model expects vs what the robot has, and the observation built from the robot's readings.

Checked before torque is enabled: every joint the model drives exists on the robot, in a group of the same
name and size, in the unit of the motor's norm_mode; every observation feature is ``<joint>.pos`` or
``<joint>.goal`` (CONTRACTS.md section 1), for a camera model too (its images are separate inputs, not
state features). Each refusal is one line naming the difference.

The model's inputs are the state vector (``ObservationBuilder.build``) and, for a camera model, one frame per
camera it sees (``ObservationBuilder.inputs`` -> ``(state, images)``, as the backends take them).
"""

from __future__ import annotations

from collections import deque

import numpy as np

from .errors import RunRefused

FEATURE_KINDS = ("pos", "goal")


def _group(g) -> tuple[str, list[str]]:
    if isinstance(g, dict):
        return g["name"], list(g["joints"])
    return g.name, list(g.joints)


def observation_names(metadata) -> list[str]:
    """The model's feature names; a model without names observes its action joints' positions."""
    if metadata.observation_names is not None:
        return list(metadata.observation_names)
    if metadata.state_dim != metadata.action_dim:
        raise RunRefused(f"the model has no observation_names and state_dim {metadata.state_dim} is not its "
                        f"{metadata.action_dim} action joints: cannot tell what to observe")
    return [f"{joint}.pos" for joint in metadata.joint_names]


def check_model_against_robot(metadata, spec, model_label: str) -> None:
    """Raise RunRefused naming the first difference between the model and robot ``spec``."""
    robot_joints = {m.name: m for m in spec.motors}
    robot_groups = dict(spec.groups)
    for joint, unit in zip(metadata.joint_names, metadata.joint_units):
        motor = robot_joints.get(joint)
        if motor is None:
            raise RunRefused(f"{model_label} drives joint '{joint}', which robot '{spec.name}' does not have")
        if unit != motor.norm_mode:
            raise RunRefused(f"{model_label}: joint '{joint}' is in {unit} but the motor's norm_mode is "
                            f"{motor.norm_mode} on robot '{spec.name}'")
    for group in metadata.action_groups:
        name, joints = _group(group)
        if name not in robot_groups:
            raise RunRefused(f"{model_label}: action group '{name}' is not a group of robot '{spec.name}' "
                            f"(its groups: {', '.join(robot_groups)})")
        if len(joints) != len(robot_groups[name]):
            raise RunRefused(f"{model_label}: action group '{name}' has {len(joints)} joints, robot "
                            f"'{spec.name}' has {len(robot_groups[name])}")
    for feature in observation_names(metadata):
        joint, _, kind = feature.rpartition(".")
        if kind not in FEATURE_KINDS or joint not in robot_joints:
            raise RunRefused(f"{model_label}: observation feature '{feature}' is not <joint>.pos or <joint>.goal "
                            f"for a joint of robot '{spec.name}'")


class ObservationBuilder:
    """Observation vector (float32, in feature order) from the positions of ``robot_joints`` and a goal, and
    for a camera model the frames of its ``cameras`` (names, as ``metadata.camera_names``).

    ``goal_joints`` lists the joints of the ``.goal`` features, in feature order; a goal vector follows that
    order. With a history T the model gets the last T vectors, oldest first (the first fills the window);
    images are never stacked: the model sees the newest frame of each camera.
    """

    def __init__(self, names: list[str], robot_joints: list[str], history: int | None = None,
                 cameras: list[str] | None = None):
        index = {j: i for i, j in enumerate(robot_joints)}
        self.pos_slots, self.pos_index, self.goal_slots, self.goal_joints = [], [], [], []
        for slot, feature in enumerate(names):
            joint, _, kind = feature.rpartition(".")
            if kind == "pos":
                self.pos_slots.append(slot)
                self.pos_index.append(index[joint])
            else:
                self.goal_slots.append(slot)
                self.goal_joints.append(joint)
        self.goal_index = [index[j] for j in self.goal_joints]
        self.size = len(names)
        self.history = history if history and history > 1 else None
        self._window: deque[np.ndarray] = deque(maxlen=self.history or 1)
        self.cameras = list(cameras or [])

    def build(self, positions: np.ndarray, goal: np.ndarray | None) -> np.ndarray:
        vector = np.empty(self.size, dtype=np.float32)
        vector[self.pos_slots] = positions[self.pos_index]
        if self.goal_slots:
            vector[self.goal_slots] = goal
        if self.history is None:
            return vector
        if not self._window:
            self._window.extend([vector] * self.history)
        else:
            self._window.append(vector)
        return np.stack(self._window)

    def inputs(self, positions: np.ndarray, goal: np.ndarray | None,
               images: dict[str, np.ndarray] | None = None) -> tuple[np.ndarray, dict[str, np.ndarray] | None]:
        """``(state, images)`` for one inference: the state as ``build`` makes it, and the frames of the model's
        cameras taken from ``images`` ({camera: uint8 (H, W, 3)}, the robot may have more), by reference: no
        copy, so a frame must not be written to after it is handed over. None for a state-only model (images
        given to one are ignored). A camera missing from ``images`` is left out; the backend names it."""
        state = self.build(positions, goal)
        if not self.cameras:
            return state, None
        images = images or {}
        return state, {camera: images[camera] for camera in self.cameras if camera in images}


class GoalSchedule:
    """The goal of the ``.goal`` features over time: fixed (``--goal``) or the model's task goals cycled
    every ``hold_s`` seconds. ``segment(t)`` -> (goal index, goal vector)."""

    def __init__(self, goals: list[np.ndarray], hold_s: float | None):
        self.goals = [np.asarray(g, dtype=np.float64) for g in goals]
        self.hold_s = hold_s

    @classmethod
    def from_task(cls, task: dict | None, n_goal_features: int, fixed: list[float] | None, label: str):
        if n_goal_features == 0:
            if fixed is not None:
                raise RunRefused(f"--goal given, but {label} has no .goal observation features")
            return None
        if fixed is not None:
            if len(fixed) != n_goal_features:
                raise RunRefused(f"--goal has {len(fixed)} values; {label} expects {n_goal_features} "
                                f"(one per .goal feature)")
            return cls([np.asarray(fixed)], None)
        goals = (task or {}).get("goals")
        if not goals:
            raise RunRefused(f"{label} observes goals but its metadata has no task goals: pass --goal")
        bad = [i for i, g in enumerate(goals) if len(g) != n_goal_features]
        if bad:
            raise RunRefused(f"{label}: task goal {bad[0]} has {len(goals[bad[0]])} values, expected {n_goal_features}")
        return cls([np.asarray(g) for g in goals], float(task.get("goal_hold_s") or 4.0))

    def segment(self, elapsed_s: float) -> tuple[int, np.ndarray]:
        if self.hold_s is None or len(self.goals) == 1:
            return 0, self.goals[0]
        n = int(elapsed_s // self.hold_s)
        return n, self.goals[n % len(self.goals)]
