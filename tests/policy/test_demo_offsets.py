"""actsac-train --demos: the commanded action against the measured state where the arm is at rest, per joint
(LeRobot #3758: a leader and follower calibrated 17 degrees apart on one joint, invisible in the loss)."""

import numpy as np

from actsac.policy import tasks
from actsac.policy.demos import report_rest_offsets, rest_offsets, save_npz_demos

from .test_train import expert_npz

JOINTS = list(tasks.JOINTS)
SPAN = np.array([200.0] * 5 + [100.0])


def shifted(tmp_path, joint: int, by: float):
    """The expert's file with one joint's commands offset by ``by`` (the leader read through another calibration)."""
    expert_npz(tmp_path / "demos.npz", n_episodes=6)
    with np.load(tmp_path / "demos.npz") as a:
        arrays = {k: a[k] for k in a.files}
    arrays["actions"][:, joint] += by
    path = tmp_path / "shifted.npz"
    save_npz_demos(path, arrays["observations"], arrays["actions"], arrays["rewards"], arrays["terminals"],
                   arrays["episode_ends"], list(arrays["observation_names"]))
    return path, arrays


def test_the_expert_at_rest_commands_where_the_arm_is(tmp_path):
    expert_npz(tmp_path / "demos.npz", n_episodes=6)
    lines = []
    offsets = report_rest_offsets(tmp_path / "demos.npz", tasks.OBSERVATION_NAMES, JOINTS, SPAN, lines.append)
    assert max(abs(g) for g in offsets.values()) < 0.5
    assert len(lines) == 1 and "at rest (" in lines[0] and "warning" not in lines[0]


def test_a_joint_calibrated_apart_is_named_with_its_offset(tmp_path):
    path, arrays = shifted(tmp_path, joint=2, by=19.0)  # elbow_flex, about 17 degrees on a 2046-tick range
    n, offsets = rest_offsets(arrays["observations"], arrays["actions"], arrays["episode_ends"],
                              list(tasks.OBSERVATION_NAMES), JOINTS, SPAN)
    assert n > 50 and abs(offsets[JOINTS[2]] - 19.0) < 0.5 and abs(offsets[JOINTS[0]]) < 0.5
    lines = []
    report_rest_offsets(path, tasks.OBSERVATION_NAMES, JOINTS, SPAN, lines.append)
    warnings = [line for line in lines if line.startswith("warning")]
    assert len(warnings) == 1 and f"{JOINTS[2]}'s command sits +19" in warnings[0]
    assert "9.5 % of its range" in warnings[0] and "#3758" in warnings[0]


def test_a_moving_arm_has_no_frames_at_rest():
    t = np.arange(50, dtype=float)
    obs = np.stack([t] * 6 + [np.zeros(50)] * 6, axis=1)
    n, offsets = rest_offsets(obs, obs[:, :6] + 1.0, np.array([50]), list(tasks.OBSERVATION_NAMES), JOINTS, SPAN)
    assert n == 0 and offsets == {}
