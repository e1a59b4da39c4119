import subprocess
import sys
import textwrap

import numpy as np
import pytest

from actsac.drivers.robots import SO100
from actsac.drivers.sim.camera import ArmCamera
from actsac.policy import tasks
from actsac.policy.tasks import (ReachTask, VisualReachTask, expert_action, make_goals, visual_expert_action)
from tests.conftest import BLOCK_TORCH_AND_ONNX

POSE = np.array([10.0, -20.0, 30.0, -15.0, 25.0, 50.0])


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


# ---------------------------------------------------------------------- the camera
def test_render_is_deterministic():
    goals = make_goals(8, seed=0)
    positions = np.random.default_rng(0).uniform(tasks.START_LOW, tasks.START_HIGH, (8, 6))
    first = ArmCamera().render(positions, goals)
    assert ArmCamera().render(positions, goals).tobytes() == first.tobytes()
    assert ArmCamera().render(positions.copy(), goals.copy()).tobytes() == first.tobytes()
    # A batch is the frames one by one.
    camera = ArmCamera()
    assert all(camera.render(p, g).tobytes() == f.tobytes() for p, g, f in zip(positions, goals, first))


@pytest.mark.parametrize("size", [(48, 64), (96, 128), (16, 16), (40, 30)])
def test_shapes_dtype_and_contiguity(size):
    camera = ArmCamera(*size)
    assert (camera.height, camera.width) == size
    single = camera.render(POSE)
    assert single.shape == (*size, 3) and single.dtype == np.uint8 and single.flags["C_CONTIGUOUS"]
    assert camera.render(POSE, POSE + 5).shape == (*size, 3)
    batch = camera.render(np.tile(POSE, (3, 1)), np.tile(POSE, (3, 1)) - 5)
    assert batch.shape == (3, *size, 3) and batch.dtype == np.uint8 and batch.flags["C_CONTIGUOUS"]
    assert camera.render(POSE[None]).shape == (1, *size, 3)
    assert camera.render(POSE.tolist()).shape == (*size, 3)  # plain sequences too


def test_goal_ghost_is_drawn_in_green():
    camera = ArmCamera()
    alone, with_goal = camera.render(POSE), camera.render(POSE, make_goals(1, seed=0)[0])
    assert mean_abs_diff(alone, with_goal) > 2.0
    changed = np.any(alone != with_goal, axis=-1)
    red, green, blue = (with_goal[..., c][changed].astype(int) for c in range(3))
    assert (green > red).mean() > 0.8 and (green > blue).mean() > 0.8  # the ghost's pixels are green
    # On the goal, the ghost still shows as a green outline around the arm.
    assert mean_abs_diff(alone, camera.render(POSE, POSE)) > 0.2


def test_the_eight_goals_give_clearly_different_images():
    goals = make_goals(8, seed=0)
    camera = ArmCamera()
    home = np.tile(tasks.HOME, (8, 1))
    for images in (camera.render(home, goals), camera.render(goals)):  # goal ghosts; the goal poses themselves
        diffs = [mean_abs_diff(images[i], images[j]) for i in range(8) for j in range(i + 1, 8)]
        assert min(diffs) > 2.0, min(diffs)


@pytest.mark.parametrize("joint", range(6), ids=SO100.joint_names)
def test_moving_any_single_joint_changes_the_image(joint):
    camera = ArmCamera()
    for base in (POSE, np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0])):  # gripper open and closed
        moved = base.copy()
        moved[joint] += 5.0  # a little over the success tolerance (4 units)
        for before, after in ((camera.render(base), camera.render(moved)),  # the arm's joint ...
                              (camera.render(POSE, base), camera.render(POSE, moved))):  # ... and the goal's
            assert np.any(before != after, axis=-1).sum() >= 10 and mean_abs_diff(before, after) > 0.01


def test_wrist_roll_is_visible_over_the_whole_turn():
    camera = ArmCamera()
    rolls = [np.array([0.0, 0.0, 0.0, 0.0, roll, 0.0]) for roll in (-100.0, -50.0, 0.0, 50.0)]
    images = [camera.render(p) for p in rolls]  # -100 and +100 are the same angle: one of them
    assert min(mean_abs_diff(a, b) for i, a in enumerate(images) for b in images[i + 1:]) > 0.1


@pytest.mark.parametrize("kwargs, field", [(dict(height=15), "height"), (dict(width=8), "width"),
                                           (dict(height=48.0), "height"), (dict(width="64"), "width"),
                                           (dict(height=True), "height")])
def test_bad_sizes_are_refused(kwargs, field):
    with pytest.raises(ValueError, match=field):
        ArmCamera(**kwargs)


def test_bad_inputs_are_refused():
    camera = ArmCamera()
    with pytest.raises(ValueError, match="positions"):
        camera.render(np.zeros(5))
    with pytest.raises(ValueError, match="positions"):
        camera.render(np.zeros((2, 3, 6)))
    with pytest.raises(ValueError, match="goal"):
        camera.render(np.zeros((2, 6)), np.zeros((3, 6)))
    with pytest.raises(ValueError, match="goal"):
        camera.render(np.zeros((1, 6)), np.zeros(6))
    with pytest.raises(ValueError, match="finite"):
        camera.render(np.full(6, np.nan))


def test_camera_is_robot_side_code():
    code = BLOCK_TORCH_AND_ONNX + textwrap.dedent("""
        import numpy as np
        from actsac.drivers.sim.camera import ArmCamera
        assert ArmCamera().render(np.zeros(6)).shape == (48, 64, 3)
        assert not any(k.split(".")[0] in ("torch", "onnx") for k in sys.modules), "torch/onnx got imported"
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


# ---------------------------------------------------------------------- the task
def test_visual_task_contract():
    assert tasks.VISUAL_TASK_NAME == "so100-visual-reach" and tasks.CAMERA_NAME == "front"
    assert tasks.VISUAL_OBSERVATION_NAMES == [f"{j}.pos" for j in SO100.joint_names]
    task = VisualReachTask(3, make_goals(4), image_size=(32, 40), success_tolerance=3.0)
    obs = task.reset()
    assert obs.shape == (3, 6) and obs.dtype == np.float32
    assert np.array_equal(obs, task.positions().astype(np.float32))
    images = task.images()
    assert list(images) == ["front"]
    assert images["front"].shape == (3, 32, 40, 3) and images["front"].dtype == np.uint8
    assert task.cameras == [("front", 32, 40)]
    info = task.info()
    assert info["name"] == "so100-visual-reach" and info["cameras"] == [{"name": "front", "height": 32, "width": 40}]
    assert len(info["goals"]) == 4 and info["success_tolerance"] == 3.0 and info["goal_hold_s"] == 4.0
    assert VisualReachTask(1, make_goals()).cameras == [("front", 48, 64)]
    with pytest.raises(ValueError, match="image_size"):
        VisualReachTask(1, make_goals(), image_size=(48, 64, 3))
    with pytest.raises(ValueError, match="width"):
        VisualReachTask(1, make_goals(), image_size=(48, 4))


def test_the_goal_is_in_the_image_not_in_the_state():
    goals = make_goals(8, seed=0)
    task = VisualReachTask(8, goals, seed=0, home_fraction=1.0)  # every env starts at home
    obs = task.reset(np.arange(8))
    assert (obs == obs[0]).all()  # same state for all 8 goals ...
    images = task.images()["front"]
    assert min(mean_abs_diff(images[i], images[j]) for i in range(8) for j in range(i + 1, 8)) > 2.0  # ... not image
    assert np.array_equal(images, ArmCamera().render(task.positions(), goals))


def test_same_results_as_reach_task_and_the_expert_reaches_every_goal():
    goals = make_goals()
    visual, state = VisualReachTask(len(goals), goals, seed=1), ReachTask(len(goals), goals, seed=1)
    obs, state_obs = visual.reset(np.arange(len(goals))), state.reset(np.arange(len(goals)))
    assert np.array_equal(obs, state_obs[:, :6]) and np.array_equal(state_obs[:, 6:], visual.goal.astype(np.float32))
    while not visual.done:
        action = visual_expert_action(obs, visual.goal)
        assert np.allclose(action, expert_action(state_obs))  # one rule for both experts
        assert np.abs(action - obs).max() <= 8.0 + 1e-4
        obs, reward, success = visual.step(action)
        state_obs, state_reward, state_success = state.step(action)
        assert np.array_equal(reward, state_reward) and np.array_equal(success, state_success)
    assert success.all() and visual.t == 60
    final = visual.images()["front"]
    assert final.shape == (len(goals), 48, 64, 3)
