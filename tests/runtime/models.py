"""Small hand-built ONNX actors with real actsac metadata, for the runtime tests.

``reach_model``: a linear chunk that moves each joint from its present position toward its goal feature
(a policy that actually reaches goals, so the per-goal report is meaningful). Options turn it into a NaN
model (every output NaN), a slow model (a Loop of matrix products before the answer) or a wrong-unit model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from actsac.drivers.robots import SO100_JOINTS
from actsac.export.metadata import ModelMetadata, metadata_props

UNITS = {"gripper": "range_0_100"}
RANGES = {"range_m100_100": (-100.0, 100.0), "range_0_100": (0.0, 100.0), "degrees": (-90.0, 90.0)}


def metadata_dict(groups, chunk_size, state_dim, observation_names, task=None, control_hz=30.0):
    units = [u for g in groups for u in g["units"]]
    lo = [RANGES[u][0] for u in units]
    hi = [RANGES[u][1] for u in units]
    return {"format_version": 1, "chunk_size": chunk_size, "control_hz": control_hz, "actor": "mlp",
            "state_dim": state_dim, "history": None, "observation_names": observation_names,
            "action_groups": groups, "obs_stats": None,
            "action_stats": {"mode": "min_max", "a": lo, "b": hi}, "log_std_bounds": [-5.0, 2.0],
            "task": task, "checkpoint_sha256": "0" * 64, "exporter": "tests/runtime/models.py",
            "opset": 17, "precision": "fp32", "calibration": sim_calibration(groups)}


def sim_calibration(groups) -> dict | None:
    """The so100 simulator's calibration of the joints, as a model trained on it stores (None for others)."""
    from actsac.calibration.compare import calibration_record
    from actsac.drivers.robots import SO100

    cal = {m.name: m.sim_calibration for m in SO100.motors}
    joints = [j for g in groups for j in g["joints"]]
    return calibration_record(cal, joints, "simulator") if all(j in cal for j in joints) else None


def so100_groups(units=None):
    units = units or {}
    return [{"name": "arm", "joints": list(SO100_JOINTS),
             "units": [units.get(j, UNITS.get(j, "range_m100_100")) for j in SO100_JOINTS]}]


def reach_model(path: Path, *, groups=None, chunk_size: int = 10, gain: float = 0.5, task=None,
                with_goals: bool = True, nan: bool = False, slow_iters: int = 0, control_hz: float = 30.0,
                metadata_overrides: dict | None = None, zigzag: float = 0.0) -> Path:
    """action[h] = pos + (goal - pos) * min(1, gain * (h + 1) / H) (goal = pos when ``with_goals`` is off);
    ``zigzag`` adds +-zigzag on alternate steps (a plan that jumps)."""
    groups = groups or so100_groups()
    joints = [j for g in groups for j in g["joints"]]
    units = [u for g in groups for u in g["units"]]
    a_dim, h_dim = len(joints), chunk_size
    names = [f"{j}.pos" for j in joints] + ([f"{j}.goal" for j in joints] if with_goals else [])
    s_dim = len(names)
    frac = np.minimum(1.0, gain * (np.arange(h_dim) + 1) / h_dim)
    w = np.zeros((s_dim, h_dim, a_dim), dtype=np.float32)
    for a in range(a_dim):
        w[a, :, a] = 1.0 - frac if with_goals else 1.0
        if with_goals:
            w[a_dim + a, :, a] = frac
    lo = np.array([RANGES[u][0] for u in units], np.float32)
    hi = np.array([RANGES[u][1] for u in units], np.float32)
    inits = [numpy_helper.from_array(w.reshape(s_dim, h_dim * a_dim), "W"),
             numpy_helper.from_array(np.array([-1, h_dim, a_dim], np.int64), "shape"),
             numpy_helper.from_array(lo, "lo"), numpy_helper.from_array(2.0 / (hi - lo), "scale"),
             numpy_helper.from_array(np.array(1.0, np.float32), "one"),
             numpy_helper.from_array(np.array(0.999, np.float32), "lim"),
             numpy_helper.from_array(np.array(-3.0, np.float32), "log_std_value")]
    nodes = [helper.make_node("MatMul", ["observation", "W"], ["flat"]),
             helper.make_node("Reshape", ["flat", "shape"], ["raw_action"])]
    action = "raw_action"
    if zigzag:
        signs = np.where(np.arange(h_dim) % 2 == 0, 1.0, -1.0)[:, None] * np.ones((1, a_dim))
        inits.append(numpy_helper.from_array((zigzag * signs).astype(np.float32), "zig"))
        nodes.append(helper.make_node("Add", [action, "zig"], ["zig_action"]))
        action = "zig_action"
    if nan:
        inits.append(numpy_helper.from_array(np.array(np.nan, np.float32), "nan"))
        nodes.append(helper.make_node("Mul", [action, "nan"], ["nan_action"]))
        action = "nan_action"
    if slow_iters:
        n = 192
        inits += [numpy_helper.from_array(np.full((n, n), 1.0 / n, np.float32), "big"),
                  numpy_helper.from_array(np.array(slow_iters, np.int64), "iters"),
                  numpy_helper.from_array(np.array(True), "cond"),
                  numpy_helper.from_array(np.ones((n, n), np.float32), "x0"),
                  numpy_helper.from_array(np.array(0.0, np.float32), "zero")]
        body = helper.make_graph(
            [helper.make_node("MatMul", ["x_in", "big"], ["x_mm"]), helper.make_node("Tanh", ["x_mm"], ["x_out"]),
             helper.make_node("Identity", ["cond_in"], ["cond_out"])],
            "burn", [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                     helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
                     helper.make_tensor_value_info("x_in", TensorProto.FLOAT, [n, n])],
            [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
             helper.make_tensor_value_info("x_out", TensorProto.FLOAT, [n, n])])
        nodes += [helper.make_node("Loop", ["iters", "cond", "x0"], ["x_final"], body=body),
                  helper.make_node("ReduceMean", ["x_final"], ["burnt"], keepdims=0),
                  helper.make_node("Mul", ["burnt", "zero"], ["nothing"]),
                  helper.make_node("Add", [action, "nothing"], ["slow_action"])]
        action = "slow_action"
    nodes += [helper.make_node("Identity", [action], ["action"]),
              # pre-tanh mean consistent with the action: atanh of the action in [-1, 1]
              helper.make_node("Sub", [action, "lo"], ["shifted"]),
              helper.make_node("Mul", ["shifted", "scale"], ["scaled"]),
              helper.make_node("Sub", ["scaled", "one"], ["unit"]),
              helper.make_node("Clip", ["unit", "", "lim"], ["unit_hi"]),
              helper.make_node("Neg", ["lim"], ["neg_lim"]),
              helper.make_node("Max", ["unit_hi", "neg_lim"], ["unit_c"]),
              helper.make_node("Atanh", ["unit_c"], ["action_mean"]),
              helper.make_node("Mul", ["action_mean", "zero_f"], ["zeros_like"]),
              helper.make_node("Add", ["zeros_like", "log_std_value"], ["action_log_std"])]
    inits.append(numpy_helper.from_array(np.array(0.0, np.float32), "zero_f"))
    out = [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", h_dim, a_dim])
           for name in ("action_mean", "action_log_std", "action")]
    graph = helper.make_graph(nodes, "test_actor",
                              [helper.make_tensor_value_info("observation", TensorProto.FLOAT, ["batch", s_dim])],
                              out, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    data = metadata_dict(groups, chunk_size, s_dim, names, task, control_hz)
    data.update(metadata_overrides or {})
    for key, value in metadata_props(ModelMetadata.from_dict(data)).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return Path(path)
