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
    assert len(lines) == 1 and "warning" not in lines[0]
    assert lines[0].startswith(f"demonstrations {tmp_path / 'demos.npz'}: at rest (") and "within 2 % " in lines[0]


def test_a_joint_calibrated_apart_is_named_with_its_offset(tmp_path):
    path, arrays = shifted(tmp_path, joint=2, by=19.0)  # elbow_flex, about 17 degrees on a 2046-tick range
    n, offsets = rest_offsets(arrays["observations"], arrays["actions"], arrays["episode_ends"],
                              list(tasks.OBSERVATION_NAMES), JOINTS, SPAN)
    assert n > 50 and abs(offsets[JOINTS[2]] - 19.0) < 0.5 and abs(offsets[JOINTS[0]]) < 0.5
    lines = []
    report_rest_offsets(path, tasks.OBSERVATION_NAMES, JOINTS, SPAN, lines.append)
    assert lines[0].startswith(f"demonstrations {path}: mean command - state at rest (")
    table = lines[1:1 + len(JOINTS)]
    assert [row.split()[0] for row in table] == JOINTS and [row.endswith("<-") for row in table].count(True) == 1
    assert table[2].split()[1] == "+19.00" and table[2].split()[2] == "9.5"
    warnings = lines[1 + len(JOINTS):]
    assert len(warnings) == 1 and warnings[0].startswith(f"warning: demonstrations {path}: {JOINTS[2]}'s command "
                                                         f"sits +19.00 from where the arm measured it at rest")
    assert "9.5 % of its range, warned above 2 %" in warnings[0] and "#3758" in warnings[0]


def test_actsac_train_reports_the_offset_and_stores_the_simulators_calibration(tmp_path):
    from actsac.policy import load_checkpoint
    from actsac.policy.train import TrainConfig, train

    path, _ = shifted(tmp_path, joint=2, by=19.0)
    lines = []
    out = tmp_path / "m.pt"
    train(TrainConfig(out=str(out), demos=str(path), bc_only=True, steps=2, eval_every=2, batch_size=32),
          progress=False, log=lines.append)
    assert sum(line.startswith(f"warning: demonstrations {path}: {JOINTS[2]}'s command") for line in lines) == 1
    record = load_checkpoint(out).extra["calibration"]
    assert record["source"] == "simulator" and list(record["joints"]) == JOINTS


def test_a_moving_arm_has_no_frames_at_rest():
    t = np.arange(50, dtype=float)
    obs = np.stack([t] * 6 + [np.zeros(50)] * 6, axis=1)
    n, offsets = rest_offsets(obs, obs[:, :6] + 1.0, np.array([50]), list(tasks.OBSERVATION_NAMES), JOINTS, SPAN)
    assert n == 0 and offsets == {}
