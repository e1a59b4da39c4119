"""Metadata: written by the exporter, read back by the robot side (also without torch and onnx installed)."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import onnx
import pytest
import torch
from onnx import helper

from actsac import __version__
from actsac.export import FORMAT_VERSION, MetadataError, ModelMetadata, read_metadata
from actsac.export.metadata import METADATA_KEY, STATE_ONLY_VERSION, VERSION_KEY
from actsac.export.verify import session_runner
from actsac.files import file_sha256
from actsac.onnx_runtime import ort_session

from tests.conftest import BLOCK_TORCH_AND_ONNX

from .conftest import TASK


def test_round_trip_of_an_upper_body(exported):
    checkpoint, result, _ = exported("history")
    config = checkpoint.config
    metadata = read_metadata(result.path)
    assert [(g["name"], len(g["joints"])) for g in metadata.action_groups] == [("arm", 14), ("torso", 6), ("hand", 12)]
    for group, original in zip(metadata.action_groups, config.action_groups):
        assert group == {"name": original.name, "joints": original.joints, "units": original.units}
    assert metadata.joint_names == config.joint_names and metadata.joint_units == config.joint_units
    assert set(metadata.joint_units) == {"range_m100_100", "degrees", "range_0_100"}
    assert metadata.action_dim == 32 and metadata.chunk_size == 5 and metadata.state_dim == 20
    assert metadata.format_version == STATE_ONLY_VERSION == 1 and metadata.actor == "act"  # no cameras: still v1
    assert metadata.cameras == [] and metadata.input_names == ["observation"]
    assert metadata.obs_stats == {"mode": "mean_std", "a": config.obs_stats.a, "b": config.obs_stats.b}
    assert metadata.action_stats["mode"] == "min_max" and metadata.action_stats["b"] == config.action_stats.b
    assert metadata.observation_names == config.observation_names
    assert metadata.control_hz == config.control_hz and metadata.log_std_bounds == [-5.0, 2.0]
    assert metadata.checkpoint_sha256 == file_sha256(checkpoint.path)
    assert metadata.exporter == f"actsac {__version__}, torch {torch.__version__.split('+')[0]}"
    assert metadata.opset == 20 and metadata.precision == "fp32" and metadata.task == TASK
    props = {p.key: p.value for p in onnx.load(str(result.path)).metadata_props}
    assert props[VERSION_KEY] == "1" and json.loads(props[METADATA_KEY]) == metadata.to_dict()


def test_action_to_robot_units_matches_the_graph(exported):
    """Sampling on the host (tanh of mean + noise, mapped with the metadata) agrees with the graph's own map."""
    _, result, _ = exported("history")
    metadata = read_metadata(result.path)
    obs = np.zeros((2, *metadata.observation_shape), np.float32)
    out = session_runner(ort_session(result.path))(obs)
    mapped = metadata.action_to_robot_units(np.tanh(out["action_mean"].astype(np.float64)))
    np.testing.assert_allclose(mapped, out["action"], rtol=0, atol=1e-4)
    assert metadata.action_to_robot_units(np.full(32, -1.0))[[0, 14, 20]].tolist() == [-100.0, -90.0, 0.0]


BLOCKER = BLOCK_TORCH_AND_ONNX + textwrap.dedent("""
    for blocked in ("torch", "onnx"):
        try:
            __import__(blocked)
        except ImportError:
            pass
        else:
            raise SystemExit(f"{blocked} was importable")
    from actsac.export import read_metadata
    import actsac.onnx_runtime, actsac.export.tensorrt, actsac.export.verify  # robot-side modules
    m = read_metadata(sys.argv[1])
    actsac.onnx_runtime.ort_latency(sys.argv[1], actsac.export.verify.verification_observations(m)[0][:1], runs=3)
    assert not any(k.split(".")[0] in ("torch", "onnx") for k in sys.modules), "torch/onnx got imported"
    print(json.dumps({"joints": m.joint_names, "groups": [g["name"] for g in m.action_groups], "history": m.history}))
""")


def test_robot_side_reads_metadata_without_torch_and_onnx(exported):
    checkpoint, result, _ = exported("history")
    proc = subprocess.run([sys.executable, "-c", BLOCKER, str(result.path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"joints": checkpoint.config.joint_names, "groups": ["arm", "torso", "hand"],
                                       "history": 3}


def test_onnxruntime_fallback_reads_the_same(exported, monkeypatch):
    _, result, _ = exported("act")
    with_onnx = read_metadata(result.path)
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` now raises ImportError
    assert read_metadata(result.path) == with_onnx


def tiny_model(path, props: dict):
    node = helper.make_node("Identity", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    helper.set_model_props(model, props)
    onnx.save(model, str(path))
    return path


def good_dict(exported):
    return read_metadata(exported("act")[1].path).to_dict()


@pytest.mark.parametrize("onnx_available", [True, False], ids=["onnx", "onnxruntime"])
@pytest.mark.parametrize("case, message", [
    ("missing", "no such file"),
    ("garbage", "not a readable ONNX file"),
    ("foreign", "not an actsac model"),
    ("bad_json", "is not valid JSON"),
    ("newer", f"format_version {FORMAT_VERSION + 1} is newer than this actsac reads ({FORMAT_VERSION})"),
    ("no_chunk", "metadata field 'chunk_size' is missing"),
    ("bad_units", "metadata field 'action_groups' group 'arm' needs one unit per joint"),
])
def test_bad_metadata_is_one_line_naming_file_and_field(tmp_path, exported, monkeypatch, case, message, onnx_available):
    good = good_dict(exported)
    path = tmp_path / "model.onnx"
    if case == "garbage":
        path.write_bytes(b"\x00not onnx at all\xff" * 10)
    elif case == "foreign":
        tiny_model(path, {"author": "someone"})
    elif case == "bad_json":
        tiny_model(path, {METADATA_KEY: "{chunk_size: 10"})
    elif case != "missing":
        data = dict(good)
        if case == "newer":
            data["format_version"] = FORMAT_VERSION + 1
        elif case == "no_chunk":
            del data["chunk_size"]
        elif case == "bad_units":
            data["action_groups"] = [{**data["action_groups"][0], "units": ["degrees"]}]
        tiny_model(path, {METADATA_KEY: json.dumps(data)})
    if not onnx_available:
        monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(MetadataError) as info:
        read_metadata(path)
    text = str(info.value)
    assert message in text and str(path) in text and "\n" not in text


def test_from_dict_fills_optional_fields_and_checks_types(exported):
    data = good_dict(exported)
    for optional in ("task", "observation_names", "obs_stats", "action_stats"):
        del data[optional]
    metadata = ModelMetadata.from_dict(data)
    assert metadata.task is None and metadata.obs_stats is None
    np.testing.assert_array_equal(metadata.action_to_robot_units(np.array([0.5])), [0.5])  # identity without stats
    with pytest.raises(MetadataError, match="'chunk_size' must be a positive integer"):
        ModelMetadata.from_dict({**data, "chunk_size": "10"})
    with pytest.raises(MetadataError, match="'obs_stats' needs 12 values"):
        ModelMetadata.from_dict({**data, "obs_stats": {"mode": "min_max", "a": [0.0], "b": [1.0]}})


def test_calibration_round_trips_and_older_files_read_without_it(exported):
    """An actsac checkpoint of so100-reach stores the simulator's calibration of its joints; a file written before
    the field existed (no key) reads as null, and a malformed one is refused naming the field."""
    from actsac.drivers.robots import load_robot

    checkpoint, result, _ = exported("act")
    metadata = read_metadata(result.path)
    sim = {m.name: m.sim_calibration for m in load_robot("so100").motors}
    assert metadata.calibration["source"] == "simulator"
    assert list(metadata.calibration["joints"]) == checkpoint.config.joint_names
    for joint, entry in metadata.calibration["joints"].items():
        assert entry == {"id": sim[joint].id, "drive_mode": sim[joint].drive_mode,
                         "homing_offset": sim[joint].homing_offset, "range_min": sim[joint].range_min,
                         "range_max": sim[joint].range_max}
    data = metadata.to_dict()
    assert ModelMetadata.from_dict(json.loads(json.dumps(data))) == metadata
    del data["calibration"]
    assert ModelMetadata.from_dict(data).calibration is None
    assert read_metadata(exported("history")[1].path).calibration is None  # not the task's robot: unknown
    bad = {"source": "x.json", "joints": {"gripper": {"range_min": 1.5}}}
    with pytest.raises(MetadataError, match="'calibration' must be null or"):
        ModelMetadata.from_dict({**data, "calibration": bad})
