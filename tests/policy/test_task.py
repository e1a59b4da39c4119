import numpy as np
import pytest

from actsac.drivers.units import normalize
from actsac.drivers.robots import SO100
from actsac.drivers.servo_model import DEFAULT_MAX_SPEED
from actsac.policy import tasks
from actsac.policy.tasks import ReachTask, expert_action, make_goals


def test_observation_names_follow_the_contract():
    joints = list(SO100.joint_names)
    assert tasks.OBSERVATION_NAMES == [f"{j}.pos" for j in joints] + [f"{j}.goal" for j in joints]
    assert tasks.UNITS == ["range_m100_100"] * 5 + ["range_0_100"]


def test_positions_are_what_the_simulated_bus_reports():
    """Same sim calibration and norm mode as the simulated SO-100: mid-range ticks read as home."""
    task = ReachTask(2, make_goals(), seed=0)
    task.reset()
    ticks = np.array([[2048, 2048, 2048, 2048, 2048, 2500], [1024, 3072, 1500, 2600, 4095, 2000]], float)
    task.servos.position = ticks.ravel().copy()
    expected = np.array([[normalize(t, m.sim_calibration, m.norm_mode) for t, m in zip(row, tasks.MOTORS)]
                         for row in ticks])
    assert np.allclose(task.positions(), expected)
    assert task.positions()[0].tolist() == pytest.approx([0.0, 0.0, 0.0, 0.0, 0.0244, 50.0], abs=1e-3)
    user = np.array([[10.0, -20.0, 30.0, -40.0, 50.0, 60.0]])
    assert np.abs(task.to_user(task.to_ticks(user)) - user).max() < 0.1  # one tick of resolution


def test_goals_are_seeded_and_inside_the_safe_box():
    goals = make_goals(8, seed=3)
    assert goals.shape == (8, 6)
    assert np.array_equal(goals, make_goals(8, seed=3)) and not np.array_equal(goals, make_goals(8, seed=4))
    assert (goals >= tasks.GOAL_LOW).all() and (goals <= tasks.GOAL_HIGH).all()


def test_commands_pass_the_runtime_safety_clamp_and_motion_the_speed_limit():
    task = ReachTask(1, make_goals(), seed=0, home_fraction=1.0)
    task.reset()
    before = task.servos.position.copy()
    task.step(np.array([[100.0, -100.0, 100.0, -100.0, 100.0, 100.0]]))
    assert task.command.tolist() == [[10.0, -10.0, 10.0, -10.0, 10.0, 60.0]]  # home +- SO100.max_step
    moved = np.abs(task.servos.position - before)
    assert (moved > 0).all() and (moved <= DEFAULT_MAX_SPEED * task.period_s + 1e-6).all()
    task.step(np.array([[500.0, 0.0, 0.0, 0.0, 0.0, -50.0]]))
    assert task.command.tolist() == [[20.0, 0.0, 0.0, 0.0, 0.0, 50.0]]


def test_expert_reaches_every_goal_and_random_actions_do_not():
    goals = make_goals()
    task = ReachTask(len(goals), goals, seed=1)
    obs = task.reset(np.arange(len(goals)))
    expert_return = np.zeros(len(goals))
    while not task.done:
        action = expert_action(obs)
        assert np.abs(action - obs[:, :6]).max() <= 8.0 + 1e-4  # bounded step
        obs, reward, success = task.step(action)
        expert_return += reward
    assert success.all() and task.t == 60

    rng = np.random.default_rng(0)
    obs = task.reset(np.arange(len(goals)))
    random_return = np.zeros(len(goals))
    while not task.done:
        obs, reward, success = task.step(rng.uniform(tasks.JOINT_LOW, tasks.JOINT_HIGH, (len(goals), 6)))
        random_return += reward
    assert not success.any()
    assert expert_return.mean() > random_return.mean() + 20


def test_task_info_is_the_checkpoint_contract():
    info = ReachTask(1, make_goals(4), success_tolerance=3.0).info()
    assert info["name"] == "so100-reach" and len(info["goals"]) == 4 and len(info["goals"][0]) == 6
    assert info["goal_hold_s"] == 4.0 and info["success_tolerance"] == 3.0


def test_the_upper_body_task_takes_each_joint_in_its_own_unit():
    """upper-body-reach: the robot definition's 32 joints in group order, the torso in degrees (its simulated
    range, 1536..2560 ticks, is +-45 degrees), the step caps the robot file's [max_step]."""
    from actsac.policy.tasks import UPPER_BODY_REACH, UpperBodyReachTask

    robot = UPPER_BODY_REACH
    assert [(g.name, g.dim) for g in robot.action_groups] == [("arm", 14), ("torso", 6), ("hand", 12)]
    assert robot.units == ["range_m100_100"] * 14 + ["degrees"] * 6 + ["range_0_100"] * 12
    assert robot.joint_high[14] == pytest.approx(45.0, abs=0.1) and robot.joint_low[14] == pytest.approx(-45.0, abs=0.1)
    assert robot.max_step[[0, 14, 20]] == pytest.approx([10.0, 3.0, 20.0])  # arm, torso (degrees), hand
    goals = make_goals(8, seed=0, robot=robot)
    task = UpperBodyReachTask(4, goals, seed=0)
    obs = task.reset(np.arange(4))
    assert obs.shape == (4, 64) and task.info()["name"] == "upper-body-reach"
    step = task.expert(obs[:, :32]) - obs[:, :32]
    assert np.all(np.abs(step) <= 0.8 * robot.max_step + 1e-6)  # the expert stays under the runtime's cap
    for _ in range(90):  # 3 s of the expert: every env within tolerance of its goal
        obs, _, success = task.step(task.expert(obs[:, :32]))
    assert success.all()
