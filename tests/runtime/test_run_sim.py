"""End to end on the simulator: real ports (ptys), real ONNX Runtime sessions, real files."""

import json

import numpy as np
import pytest

from actsac.drivers.sim import Faults, SimOptions
from actsac.runtime.safety import SafetySettings
from actsac.runtime.session import EXIT_OK, EXIT_SAFETY_STOP

from .conftest import run_bounded
from .models import reach_model

SUMMARY_KEYS = {"ticks", "fps_target", "fps_achieved", "deadline_misses", "jitter_p50_us", "jitter_p99_us",
                "jitter_max_us", "loop_overhead_p50_us", "inference_p50_ms", "inference_p99_ms", "chunks_received",
                "stale_steps_dropped", "nan_chunks", "bus_errors", "clamped_commands", "exit_reason"}


def read_ticks(directory):
    rows = [json.loads(line) for line in (directory / "ticks.jsonl").read_text().splitlines()]
    return rows[0]["header"], [r for r in rows[1:] if "tick" in r], [r["event"] for r in rows if "event" in r]


def test_so100_ensemble_reaches_its_goals_records_and_reports(reach_onnx, tmp_path):
    summary, lines = run_bounded(model=reach_onnx, duration_s=2.4, fps=30, record=tmp_path / "rec",
                                 summary_json=tmp_path / "summary.json",
                                 safety=SafetySettings(ramp_s=0.3, stop_hold_s=0.1))
    assert "simulated so100" in lines[0]
    assert summary["exit_code"] == EXIT_OK and summary["exit_reason"] == "completed"
    assert SUMMARY_KEYS <= set(summary) and json.loads((tmp_path / "summary.json").read_text()) == summary
    assert 60 <= summary["ticks"] <= 73 and summary["chunks_received"] >= summary["ticks"] // 2
    assert summary["nan_chunks"] == 0 and summary["safe_state"] == "torque off"
    complete = [g for g in summary["goals"] if g["complete"]]
    assert [g["goal_index"] for g in complete] == [0, 1] and all(g["success"] for g in complete)
    header, ticks, events = read_ticks(tmp_path / "rec")
    assert header["exec"] == "ensemble" and len(ticks) == summary["ticks"]
    assert events[-1]["exit_reason"] == "completed"
    assert (tmp_path / "rec" / "run.png").stat().st_size > 10_000


def test_so100_chunk_mode_runs_chunks_open_loop(reach_onnx, monkeypatch):
    from actsac.runtime import backends

    monkeypatch.setitem(backends.EXAMPLES, "so100-reach", reach_onnx)  # no --model: the so100's example runs
    summary, lines = run_bounded(duration_s=1.5, fps=30, exec_mode="chunk", n_action_steps=6)
    assert "reach.onnx" in lines[1]
    assert summary["exit_code"] == EXIT_OK
    # one chunk per K - lead ticks (lead = 1 or 2 with a sub-millisecond model), not one per tick
    assert summary["ticks"] / 6 <= summary["chunks_received"] <= summary["ticks"] / 3
    assert summary["stale_steps_dropped"] >= summary["chunks_received"] - 1


def test_exported_act_actor_stochastic(tmp_path):
    torch = pytest.importorskip("torch")
    from actsac.export.onnx_export import export_onnx
    from actsac.policy import NormStats, PolicyConfig, build_actor, load_checkpoint, save_checkpoint
    from tests.conftest import so100_groups

    joints = so100_groups()[0].joints
    low, high = [-100.0] * 5 + [0.0], [100.0] * 5 + [100.0]
    config = PolicyConfig.from_preset("small", state_dim=12, action_groups=so100_groups(), chunk_size=8,
                                      obs_stats=NormStats.min_max(low + low, high + high),
                                      action_stats=NormStats.min_max(low, high),
                                      observation_names=[f"{j}.pos" for j in joints] + [f"{j}.goal" for j in joints])
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "act.pt", build_actor(config).eval(),
                           extra={"task": {"name": "t", "goals": [[0.0] * 6], "goal_hold_s": 4.0,
                                           "success_tolerance": 2.0}})
    onnx_path = export_onnx(load_checkpoint(ckpt), tmp_path / "act.onnx", log=lambda line: None).path
    # an untrained actor's plan jumps from step to step, which the whole-chunk check drops: loosened here, where
    # the sampling path is under test (tests/runtime/test_chunk_check.py tests the check)
    untrained = SafetySettings(stop_hold_s=0.1, chunk_speed_factor=1e3)
    summary, _ = run_bounded(model=onnx_path, duration_s=1.2, fps=30, exec_mode="chunk", stochastic=True, seed=3,
                             safety=untrained)
    assert summary["exit_code"] == EXIT_OK and summary["chunks_received"] >= 3 and summary["nan_chunks"] == 0
    # --backend torch: the same actor, eager, from the model.pt beside the .onnx
    summary, lines = run_bounded(model=onnx_path, duration_s=1.0, fps=30, backend="torch", safety=untrained)
    assert "torch backend" in lines[1]
    assert summary["exit_code"] == EXIT_OK and summary["chunks_received"] >= 10


UPPER_BODY = "drivers/robots/upper_body.toml"


def upper_body_groups():
    return [{"name": "arm", "joints": [f"arm_{i}" for i in range(14)], "units": ["range_m100_100"] * 14},
            {"name": "torso", "joints": [f"torso_{i}" for i in range(6)], "units": ["degrees"] * 6},
            {"name": "hand", "joints": [f"hand_{i}" for i in range(12)], "units": ["range_0_100"] * 12}]


def test_composite_robot_on_three_simulated_buses(tmp_path):
    from pathlib import Path

    import actsac.drivers

    toml = Path(actsac.drivers.__file__).parent / "robots" / "upper_body.toml"
    model = reach_model(tmp_path / "ub.onnx", groups=upper_body_groups(), gain=3.0)
    goal = [20.0] * 14 + [10.0] * 6 + [60.0] * 12
    summary, lines = run_bounded(robot=str(toml), model=model, goal=goal, duration_s=2.5, fps=30,
                                 safety=SafetySettings(ramp_s=0.5, stop_hold_s=0.1))
    assert "3 buses: arm, torso, hand" in lines[0]
    assert summary["exit_code"] == EXIT_OK and summary["bus_errors"] == 0
    assert summary["goals"][0]["final_error"] < 2.0  # every joint of all three buses reached its goal


def test_soft_start_step_limits_and_joint_limits(tmp_path):
    # beyond the calibrated ranges on purpose: a task goal (a --goal like it is refused before the run)
    goal = [150.0, -150.0, 60.0, -60.0, 0.0, 120.0]
    # gain 1: the plan moves a tenth of the way a step, slow enough for the whole-chunk check to pass it
    model = reach_model(tmp_path / "beyond.onnx", gain=1.0, task={"name": "beyond", "goals": [goal]})
    summary, _ = run_bounded(model=model, duration_s=2.0, fps=30, record=tmp_path,
                             safety=SafetySettings(ramp_s=0.5, max_step=4.0, stop_hold_s=0.1))
    assert summary["exit_code"] == EXIT_OK and summary["clamped_commands"] > 0
    _, ticks, _ = read_ticks(tmp_path)
    commands = np.array([t["command"] for t in ticks])
    start = np.array(ticks[0]["position"])
    assert np.all(np.abs(np.diff(commands, axis=0)) <= 4.0 + 1e-3)  # max step per tick
    assert commands[:, :5].min() >= -100.0 and commands[:, :5].max() <= 100.0
    assert commands[:, 5].min() >= 0.0 and commands[:, 5].max() <= 100.0
    assert commands[-1][0] == pytest.approx(100.0) and commands[-1][5] == pytest.approx(100.0)
    ramping = [i for i, t in enumerate(ticks) if "ramping" in t["flags"]]
    assert len(ramping) == 14  # 0.5 s at 30 Hz = 15 ramp ticks, the last one at full weight
    first = ramping[0]  # the first policy command moves 1/15 of the way from the measured pose
    assert np.all(np.abs(commands[first] - start) <= np.abs(np.array(goal) - start) / 15 + 1e-3)


def test_nan_model_holds_then_stops(tmp_path):
    model = reach_model(tmp_path / "nan.onnx", nan=True, task={"name": "t", "goals": [[0.0] * 6]})
    summary, _ = run_bounded(model=model, duration_s=10.0, fps=30, record=tmp_path / "rec",
                             safety=SafetySettings(stall_timeout_s=0.5, stop_hold_s=0.1))
    assert summary["exit_code"] == EXIT_SAFETY_STOP and "inference stalled" in summary["exit_reason"]
    assert summary["nan_chunks"] >= 5 and summary["chunks_received"] == 0
    assert summary["safe_state"] == "torque off"
    _, ticks, events = read_ticks(tmp_path / "rec")
    assert all(t["command"] == ticks[0]["position"] for t in ticks)  # the measured pose held throughout
    assert "inference stalled" in events[-1]["exit_reason"]


def test_slow_model_steps_in_the_past_are_dropped(tmp_path):
    model = reach_model(tmp_path / "slow.onnx", slow_iters=500, task={"name": "t", "goals": [[10.0] * 6]})
    summary, _ = run_bounded(model=model, duration_s=1.5, fps=30)
    assert summary["exit_code"] == EXIT_OK
    assert summary["inference_p50_ms"] > 20.0
    # every chunk arrives at least one tick after its observation: its first steps are in the past
    assert summary["stale_steps_dropped"] >= summary["chunks_received"]


def test_stalled_model_stops_the_run(tmp_path):
    # ~0.65 s a call on a 2-core machine, well past the 0.2 s stall timeout (3000 iterations took ~0.2 s: flaky)
    model = reach_model(tmp_path / "stall.onnx", slow_iters=10000, task={"name": "t", "goals": [[10.0] * 6]})
    summary, _ = run_bounded(model=model, duration_s=10.0, fps=30,
                             safety=SafetySettings(stall_timeout_s=0.2, stop_hold_s=0.1))
    assert summary["exit_code"] == EXIT_SAFETY_STOP and "no first action" in summary["exit_reason"]
    assert summary["safe_state"] == "torque off"


def test_dropped_replies_reuse_the_last_observation(reach_onnx):
    # 5 % of replies lost: a 6-motor sync read fails a try in 1 of 4, a whole tick's tries in about 1 of 15
    # (3 s: the health reads draw from the same seeded faults, so the position reads get fewer of them)
    summary, _ = run_bounded(model=reach_onnx, duration_s=3.0, fps=30, seed=1,
                             sim=SimOptions(faults=Faults(drop_prob=0.05)),
                             safety=SafetySettings(obs_max_age_s=0.2, max_bus_failures=5, stop_hold_s=0.1))
    assert summary["exit_code"] == EXIT_OK and summary["bus_errors"] >= 1


def test_a_silent_motor_stops_the_run(reach_onnx):
    summary, _ = run_bounded(model=reach_onnx, duration_s=10.0, fps=30,
                             sim=SimOptions(faults=Faults(silent_after_s={"elbow_flex": 1.0})))
    assert summary["exit_code"] == EXIT_SAFETY_STOP and "bus read failed" in summary["exit_reason"]
    assert "elbow_flex" in summary["exit_reason"]
    assert 25 <= summary["ticks"] <= 45


def test_exported_history_actor_on_the_composite_robot(tmp_path):
    """A SequenceACTSACActor (T = 3 observation window) exported by the export package, on three buses."""
    torch = pytest.importorskip("torch")
    from pathlib import Path

    import actsac.drivers
    from actsac.export.onnx_export import export_onnx
    from actsac.policy import NormStats, PolicyConfig, build_actor, load_checkpoint, save_checkpoint
    from tests.conftest import upper_body_groups as policy_groups

    names = [f"arm_{i}.pos" for i in range(14)] + [f"torso_{i}.pos" for i in range(6)]
    config = PolicyConfig.from_preset(
        "small", state_dim=20, action_groups=policy_groups(), history=3, chunk_size=5,
        obs_stats=NormStats.mean_std([0.0] * 20, [50.0] * 20), observation_names=names,
        action_stats=NormStats.min_max([-100.0] * 14 + [-40.0] * 6 + [0.0] * 12,
                                       [100.0] * 14 + [40.0] * 6 + [100.0] * 12))
    torch.manual_seed(1)
    ckpt = save_checkpoint(tmp_path / "hist.pt", build_actor(config).eval())
    model = export_onnx(load_checkpoint(ckpt), tmp_path / "hist.onnx", log=lambda line: None).path
    toml = Path(actsac.drivers.__file__).parent / "robots" / "upper_body.toml"
    summary, _ = run_bounded(robot=str(toml), model=model, duration_s=1.0, fps=30,
                             safety=SafetySettings(stop_hold_s=0.1, chunk_speed_factor=1e3))  # untrained: jumps
    assert summary["exit_code"] == EXIT_OK and summary["chunks_received"] >= 10 and summary["bus_errors"] == 0
    assert "goals" not in summary  # no task, no goal features


def _no_tensorrt() -> str | None:
    from actsac.export.tensorrt import missing_tensorrt_reason

    return missing_tensorrt_reason()


@pytest.mark.gpu
@pytest.mark.skipif(_no_tensorrt() is not None, reason=f"TensorRT backend: {_no_tensorrt()}")
def test_trt_backend_on_the_simulator(tmp_path):
    from actsac.export import read_metadata
    from actsac.export.tensorrt import export_engine

    model = reach_model(tmp_path / "reach.onnx", gain=3.0, task={"name": "t", "goals": [[10.0] * 6]})
    export_engine(model, read_metadata(model), batch=1, log=lambda line: None)
    summary, lines = run_bounded(model=model, duration_s=1.5, fps=30, backend="trt")
    assert "trt backend" in lines[1]
    assert summary["exit_code"] == EXIT_OK and summary["chunks_received"] >= 20 and summary["nan_chunks"] == 0


def test_shipped_example_policy_reaches_its_trained_goals():
    """The example policy (trained by actsac-train, exported by actsac-export) on the simulated SO-100:
    the first goal of its task, held to the end of its time, within the task's success tolerance."""
    from actsac.drivers.robots import SO100
    from actsac.export import read_metadata
    from actsac.runtime.backends import EXAMPLE_MODEL

    metadata = read_metadata(EXAMPLE_MODEL)
    assert metadata.joint_names == list(SO100.joint_names) and len(metadata.task["goals"]) == 8
    summary, lines = run_bounded(duration_s=metadata.task["goal_hold_s"] + 0.5, fps=30)
    assert "so100_reach.onnx" in lines[1] and summary["exit_code"] == EXIT_OK
    first = summary["goals"][0]
    assert first["complete"] and first["success"], first


def test_the_upper_body_example_reaches_its_goals_on_three_buses():
    """actsac-run --robot upper_body without --model: the shipped upper-body-reach policy (arm 14 / torso 6 in
    degrees / hand 12, trained by actsac-train) on the three simulated buses, its first two goals each held to
    the end of its time within the task's success tolerance."""
    from actsac.export import read_metadata
    from actsac.runtime.backends import EXAMPLES

    metadata = read_metadata(EXAMPLES["upper-body-reach"])
    assert [g["name"] for g in metadata.action_groups] == ["arm", "torso", "hand"]
    assert set(metadata.action_groups[1]["units"]) == {"degrees"}
    summary, lines = run_bounded(robot="upper_body", duration_s=2 * metadata.task["goal_hold_s"] + 0.5, fps=30)
    assert "3 buses: arm, torso, hand" in lines[0] and "upper_body_reach.onnx" in lines[1]
    assert summary["exit_code"] == EXIT_OK and summary["bus_errors"] == 0 and summary["deadline_misses"] == 0
    assert [g["success"] for g in summary["goals"][:2]] == [True, True], summary["goals"]
