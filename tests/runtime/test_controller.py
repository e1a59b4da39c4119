"""The controller's decisions with Python models in the real inference worker (no bus, no ONNX)."""

import threading
import time

import numpy as np
import pytest

from actsac.runtime.controller import Controller
from actsac.ensemble import ChunkExecutor, TemporalEnsembler
from actsac.runtime.inference import InferenceWorker
from actsac.runtime.loop import TickTime
from actsac.runtime.observation import GoalSchedule, ObservationBuilder
from actsac.runtime.safety import CommandFilter, SafetyStop

JOINTS = ["a", "b"]
H = 4


def make(infer, *, executor=None, ramp_s=0.0, max_step=100.0, low=-100.0, high=100.0, stall_s=0.1, goals=None):
    worker = InferenceWorker(infer)
    names = [f"{j}.pos" for j in JOINTS] + ([f"{j}.goal" for j in JOINTS] if goals else [])
    ctrl = Controller(executor=executor or TemporalEnsembler(0.01, H), worker=worker,
                      observations=ObservationBuilder(names, JOINTS), goals=goals, driven=[0, 1],
                      command_filter=CommandFilter(np.full(2, low), np.full(2, high), np.full(2, max_step)),
                      period_s=0.01, ramp_s=ramp_s, stall_timeout_s=stall_s)
    return ctrl, worker


def step(ctrl, worker, t, positions):
    command, info = ctrl.update(TickTime(t, 0.0, 0.0, 0), np.asarray(positions, float))
    deadline = time.monotonic() + 2.0
    while worker.busy and time.monotonic() < deadline:  # let the request finish: deterministic arrival
        time.sleep(0.0005)
    return command, info


def constant(value):
    return lambda obs: np.full((H, 2), value)


def test_holds_the_measured_pose_until_the_first_chunk_then_follows_it():
    ctrl, worker = make(constant(7.0))
    command, info = step(ctrl, worker, 0, [1.0, 2.0])
    assert info["hold"] and command.tolist() == [1.0, 2.0]
    command, info = step(ctrl, worker, 1, [1.0, 2.0])
    assert not info["hold"] and command.tolist() == [7.0, 7.0] and info["chunk_age"] == 1
    worker.close()


def test_soft_start_ramps_from_the_pose_and_max_step_limits_each_tick():
    ctrl, worker = make(constant(50.0), ramp_s=0.05, max_step=100.0)
    commands = [step(ctrl, worker, t, [0.0, 0.0])[0][0] for t in range(8)]
    assert commands[0] == 0.0  # no action yet: hold
    assert commands[1:7] == pytest.approx([10.0, 20.0, 30.0, 40.0, 50.0, 50.0])  # 5-tick ramp
    worker.close()
    ctrl, worker = make(constant(50.0), max_step=15.0)
    commands = [step(ctrl, worker, t, [0.0, 0.0])[0][0] for t in range(6)]
    assert commands == pytest.approx([0.0, 15.0, 30.0, 45.0, 50.0, 50.0])
    assert ctrl.filter.clamped_commands == 3
    worker.close()


def test_commands_are_clamped_to_the_joint_limits():
    ctrl, worker = make(constant(250.0), high=80.0)
    commands = [step(ctrl, worker, t, [0.0, 0.0])[0] for t in range(3)]
    assert commands[-1].tolist() == [80.0, 80.0]
    worker.close()


def test_a_joint_with_a_non_finite_target_holds_its_previous_command():
    """The last line of defence: whatever produced it (a goal, a ramp), a NaN or inf never reaches a motor."""
    command_filter = CommandFilter(np.full(3, -100.0), np.full(3, 100.0), np.full(3, 5.0))
    command, clamped = command_filter.apply(np.array([np.nan, np.inf, 12.0]), np.array([1.0, 2.0, 10.0]))
    np.testing.assert_array_equal(command, [1.0, 2.0, 12.0])
    assert not clamped


def test_nan_chunks_are_discarded_and_counted_and_the_last_command_holds():
    calls = []

    def sometimes_nan(obs):
        calls.append(1)
        return np.full((H, 2), np.nan if len(calls) % 2 == 0 else float(len(calls)))

    ctrl, worker = make(sometimes_nan, executor=ChunkExecutor(1, H), stall_s=1.0)
    commands = [step(ctrl, worker, t, [0.0, 0.0])[0] for t in range(8)]
    assert all(np.isfinite(c).all() for c in commands)
    assert ctrl.nan_chunks >= 2 and ctrl.chunks_received >= 2
    values = [c[0] for c in commands]
    assert set(values) <= {0.0, 1.0, 3.0, 5.0, 7.0}  # only finite chunks' values, or the held pose
    worker.close()


def test_a_stalled_model_stops_the_run_after_the_timeout():
    release = threading.Event()
    ctrl, worker = make(lambda obs: release.wait(5.0) and np.zeros((H, 2)), stall_s=0.05)
    for t in range(5):
        ctrl.update(TickTime(t, 0.0, 0.0, 0), np.zeros(2))  # 5 ticks = 50 ms: at the limit
    with pytest.raises(SafetyStop, match="inference stalled"):
        ctrl.update(TickTime(5, 0.0, 0.0, 0), np.zeros(2))
    release.set()
    worker.close()


def test_model_exceptions_are_counted_not_fatal():
    def broken(obs):
        raise RuntimeError("boom")

    ctrl, worker = make(broken, stall_s=1.0)
    for t in range(3):
        step(ctrl, worker, t, [0.0, 0.0])
    assert ctrl.inference_errors >= 2 and ctrl.chunks_received == 0
    worker.close()


def test_chunk_mode_requests_only_when_the_plan_runs_out():
    requests = []

    def model(obs):
        requests.append(1)
        return np.arange(H, dtype=float)[:, None].repeat(2, 1)

    ctrl, worker = make(model, executor=ChunkExecutor(H, H))
    for t in range(12):
        step(ctrl, worker, t, [0.0, 0.0])
    # lead = ceil(latency / period) + 1 = 1 or 2 ticks: one request per H - lead ticks at most
    assert 3 <= len(requests) <= 6
    worker.close()


def test_goal_segments_are_tracked_with_their_final_error():
    goals = GoalSchedule([np.array([10.0, 10.0]), np.array([-5.0, 0.0])], hold_s=0.03)
    ctrl, worker = make(lambda obs: np.tile(obs[2:], (H, 1)), goals=goals)
    for t in range(7):
        step(ctrl, worker, t, [10.0, 9.0] if t < 3 else [-5.0, 1.0])
    results = ctrl.finish()
    assert [r["goal_index"] for r in results] == [0, 1, 0]
    assert results[0]["final_error"] == pytest.approx(1.0) and results[0]["complete"]
    assert results[1]["final_error"] == pytest.approx(1.0)
    assert not results[2]["complete"]
    worker.close()


def test_worker_takes_the_newest_observation_and_never_blocks_the_caller():
    gate, seen = threading.Event(), []

    def model(obs):
        seen.append(int(obs[0]))
        gate.wait(5.0)
        return np.full((H, 2), obs[0])

    worker = InferenceWorker(model)
    worker.submit(np.array([0.0]), tick=0)
    deadline = time.monotonic() + 2.0
    while not seen and time.monotonic() < deadline:
        time.sleep(0.001)
    t0 = time.monotonic()
    for tick in (1, 2, 3):  # the model is busy: each request replaces the waiting one
        worker.submit(np.array([float(tick)]), tick)
    assert worker.poll() == [] and time.monotonic() - t0 < 0.05
    gate.set()
    results = []
    while len(results) < 2 and time.monotonic() < deadline + 2.0:
        results += worker.poll()
        time.sleep(0.001)
    worker.close()
    assert seen == [0, 3] and [r.start_tick for r in results] == [0, 3]
    assert results[1].chunk[0, 0] == 3.0 and results[0].latency_s > 0
