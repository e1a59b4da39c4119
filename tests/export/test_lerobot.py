"""LeRobot checkpoints: actsac-export against LeRobot's own outputs (fixtures made with LeRobot 0.4.4, see
tests/export/lerobot/make_fixtures.py), and every refusal (one line, nothing written)."""

import json
import subprocess
import sys

import numpy as np
import pytest
from safetensors.torch import load_file, save_file

from actsac.drivers.robots import load_robot
from actsac.export import read_metadata
from actsac.export.cli import main
from actsac.export.lerobot.convert import load_lerobot
from actsac.export.onnx_export import torch_outputs
from actsac.onnx_runtime import ort_session

from .lerobot import NAMES, fixture_dir, fixture_info, reference

FP32_TARGET = 1e-4  # of the action std: the bar for actsac vs LeRobot
EXPORTED = [name for name in NAMES if not name.endswith("_v03")]  # the 0.3 layout: read, not re-exported


def relative_error(got: np.ndarray, want: np.ndarray, scale) -> float:
    return float(np.max(np.abs(got - want) / np.asarray(scale)))


def run_main(argv, capsys) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of actsac-export in this process: 0 when it returns."""
    try:
        main([str(a) for a in argv])
        code = 0
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """name -> (ONNX path, stdout of actsac-export): each fixture exported once, through the command."""
    cache = {}

    def get(name: str):
        if name not in cache:
            directory = fixture_dir(tmp_path_factory.mktemp("lerobot"), name)
            argv = [str(directory), "--robot", fixture_info(name)["robot"]]
            proc = subprocess.run([sys.executable, "-c", "from actsac.export.cli import main; main()", *argv],
                                  capture_output=True, text=True, timeout=300)
            assert proc.returncode == 0, proc.stderr
            cache[name] = directory / "model.onnx", proc.stdout
        return cache[name]

    return get


@pytest.mark.parametrize("name", NAMES)
def test_the_module_computes_what_lerobot_computes(tmp_path, name):
    """actsac's PyTorch module for each fixture (both file layouts) against LeRobot's preprocessor ->
    predict_action_chunk -> postprocessor (ACT) or its actor's mean / std (SAC)."""
    checkpoint = load_lerobot(fixture_dir(tmp_path, name), load_robot(fixture_info(name)["robot"]))
    inputs, lerobot = reference(name)
    outputs = ("action",) if "mean" not in lerobot else ("action_mean", "action_log_std", "action")
    ours = torch_outputs(checkpoint.actor, inputs, outputs)
    std = checkpoint.config.action_stats.b
    assert relative_error(ours["action"], lerobot["action"], std) < 1e-5
    if "mean" in lerobot:
        assert np.max(np.abs(ours["action_mean"] - lerobot["mean"])) < 1e-5
        assert np.max(np.abs(ours["action_log_std"] - lerobot["log_std"])) < 1e-5
    assert checkpoint.extra["source"]["layout"] == ("LeRobot 0.3" if name.endswith("_v03") else "LeRobot 0.4")


@pytest.mark.parametrize("name", EXPORTED)
def test_the_export_matches_lerobot(exported, name):
    path, stdout = exported(name)
    assert "verify ONNX Runtime vs PyTorch (fp32)" in stdout and "FAIL" not in stdout
    meta = read_metadata(path)
    inputs, lerobot = reference(name)
    session = ort_session(path)
    got = dict(zip([o.name for o in session.get_outputs()], session.run(None, inputs)))
    assert list(got) == list(meta.outputs)
    action_std = np.asarray(meta.action_stats["b"])
    assert relative_error(got["action"], lerobot["action"], action_std) < FP32_TARGET
    assert meta.source["framework"] == "lerobot" and meta.source["policy"] == fixture_info(name)["policy"]
    assert meta.joint_names == ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
    assert meta.joint_units == ["range_m100_100"] * 5 + ["range_0_100"]
    assert meta.control_hz == 30.0
    config = json.loads((path.parent / "config.json").read_text())
    cameras = [k.split(".")[-1] for k in config["input_features"] if k.startswith("observation.images.")]
    assert meta.camera_names == cameras
    if fixture_info(name)["policy"] == "act":
        assert not meta.stochastic and meta.outputs == ("action",) and meta.log_std_bounds is None
        assert meta.chunk_size == config["chunk_size"]
        assert f"--n-action-steps {config['n_action_steps']}" in stdout
    else:
        assert meta.stochastic and meta.chunk_size == 1
        assert np.max(np.abs(got["action_mean"] - lerobot["mean"])) < 1e-4
        assert np.max(np.abs(got["action_log_std"] - lerobot["log_std"])) < 1e-4
        assert meta.log_std_bounds == pytest.approx([np.log(1e-5), np.log(10.0)])


def test_int8_export_stays_near_lerobot(tmp_path, capsys):
    name = "act_env_state"
    directory = fixture_dir(tmp_path, name)
    code, out, err = run_main([directory, "--robot", "so100", "--int8", "-o", tmp_path / "int8.onnx"], capsys)
    assert code == 0, err
    inputs, lerobot = reference(name)
    got = ort_session(tmp_path / "int8.onnx").run(["action"], inputs)[0]
    meta = read_metadata(tmp_path / "int8.onnx")
    assert meta.precision == "int8"
    assert relative_error(got, lerobot["action"], meta.action_stats["b"]) < 0.1


def test_fps_and_degrees_reach_the_metadata(tmp_path, capsys):
    directory = fixture_dir(tmp_path, "sac_state")
    code, out, err = run_main([directory, "--robot", "so100", "--fps", "50", "--units", "degrees"], capsys)
    assert code == 0, err
    meta = read_metadata(directory / "model.onnx")
    assert meta.control_hz == 50.0
    assert meta.joint_units == ["degrees"] * 5 + ["range_0_100"]


def test_the_calibration_file_the_data_was_recorded_with_is_stored(tmp_path, capsys):
    from actsac.calibration import save_calibration
    from actsac.drivers.robots import load_robot

    directory = fixture_dir(tmp_path, "sac_state")
    code, out, err = run_main([directory, "--robot", "so100"], capsys)
    assert code == 0 and "no --calibration: the export stores no calibration" in out
    assert read_metadata(directory / "model.onnx").calibration is None
    follower = tmp_path / "my_follower.json"
    save_calibration(follower, {m.name: m.sim_calibration for m in load_robot("so100").motors})
    code, out, err = run_main([directory, "--robot", "so100", "--calibration", follower], capsys)
    assert code == 0, err
    record = read_metadata(directory / "model.onnx").calibration
    assert record["source"] == "my_follower.json" and record["joints"]["gripper"]["range_min"] == 2000
    follower.write_text("{not json")
    code, _, err = run_main([directory, "--robot", "so100", "--calibration", follower], capsys)
    assert code == 1 and err.startswith("error: --calibration: ") and err.count("\n") == 1


def test_a_checkpoint_directory_holding_pretrained_model_is_found(tmp_path):
    directory = fixture_dir(tmp_path / "last", "sac_state").rename(tmp_path / "last" / "pretrained_model")
    checkpoint = load_lerobot(directory.parent, load_robot("so100"))
    assert checkpoint.path == directory / "model.safetensors"


def _edit_config(directory, **changes):
    path = directory / "config.json"
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))


def _drop_stat(directory, stat):
    path = next(directory.glob("policy_postprocessor_step_*_normalizer_processor.safetensors"), None) or \
        next(directory.glob("policy_postprocessor_step_*.safetensors"))
    for file in [path, *directory.glob("policy_preprocessor_step_*.safetensors")]:
        weights = load_file(file)
        save_file({k: v for k, v in weights.items() if k != stat}, file)


REFUSALS = {
    "unsupported_type": ("sac_state", lambda d: _edit_config(d, type="diffusion"),
                         "policy type 'diffusion' is not supported (actsac reads LeRobot's act and sac)"),
    "missing_statistics": ("sac_state", lambda d: _drop_stat(d, "action.min"),
                           "'action' is normalised MIN_MAX but the processor files hold no 'min' statistics"),
    "unsupported_backbone": ("act_env_state",
                             lambda d: _edit_config(d, input_features={
                                 **json.loads((d / "config.json").read_text())["input_features"],
                                 "observation.images.front": {"type": "VISUAL", "shape": [3, 48, 64]}},
                                 vision_backbone="resnet34"),
                             "vision_backbone 'resnet34' is not supported"),
    "weights_disagree": ("act_env_state", lambda d: _edit_config(d, dim_feedforward=128),
                         "has shape [64], config.json gives [128]"),
    "camera_name": ("sac_camera", lambda d: _edit_config(d, input_features={
                        "observation.state": {"type": "STATE", "shape": [6]},
                        "observation.images.wrist-cam": {"type": "VISUAL", "shape": [3, 64, 64]}}),
                    "camera feature 'observation.images.wrist-cam'"),
    "not_json": ("sac_state", lambda d: (d / "config.json").write_text("{not json"), "config.json: not valid JSON"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refusals_are_one_line_and_write_nothing(tmp_path, capsys, case):
    name, damage, fragment = REFUSALS[case]
    directory = fixture_dir(tmp_path, name)
    damage(directory)
    before = sorted(p.name for p in directory.iterdir())
    code, _, err = run_main([directory, "--robot", "so100"], capsys)
    assert code == 1
    assert fragment in err and err.count("\n") == 1 and "Traceback" not in err
    assert sorted(p.name for p in directory.iterdir()) == before


def test_a_dimension_mismatch_names_both_sizes(tmp_path, capsys):
    code, _, err = run_main([fixture_dir(tmp_path, "sac_state"), "--robot", "upper_body"], capsys)
    assert code == 1
    assert "observation.state has 6 values but robot 'upper_body' has 32 joints (arm_0 ... hand_11)" in err


def test_a_pickle_is_never_opened(tmp_path, capsys):
    directory = tmp_path / "pretrained_model"
    directory.mkdir()
    (directory / "pytorch_model.bin").write_bytes(b"\x80\x04 would run code")
    code, _, err = run_main([directory, "--robot", "so100"], capsys)
    assert code == 1 and "pytorch_model.bin: refused: a pickle file is never unpickled" in err


def test_usage_errors(tmp_path, capsys):
    directory = fixture_dir(tmp_path, "sac_state")
    code, _, err = run_main([directory], capsys)
    assert code == 2 and "does not name its joints: pass --robot" in err
    (tmp_path / "model.pt").write_bytes(b"PK")  # refused before it is read
    code, _, err = run_main([tmp_path / "model.pt", "--robot", "so100"], capsys)
    assert code == 2 and "--robot applies to LeRobot checkpoints" in err
    code, _, err = run_main([directory, "--robot", "nope"], capsys)
    assert code == 2 and "unknown robot 'nope'" in err
    code, _, err = run_main([tmp_path / "empty_dir_missing", "--robot", "so100"], capsys)
    assert code == 1 and "empty_dir_missing: no such file or directory" in err


def test_actsac_run_drives_the_simulated_robot_with_the_exported_act(exported, tmp_path):
    """The exported ACT with its camera, chunk mode as LeRobot runs it (n_action_steps), and --stochastic
    refused: the model has no log-std."""
    from actsac.runtime.cli import main as run_main_cli

    path, _ = exported("act_one_camera")
    summary = tmp_path / "summary.json"
    with pytest.raises(SystemExit) as info:
        run_main_cli(["--robot", "so100", "--model", str(path), "--duration", "2", "--exec", "chunk",
                      "--n-action-steps", "10", "--summary-json", str(summary)])
    assert info.value.code == 0
    result = json.loads(summary.read_text())
    assert result["ticks"] >= 50 and result["nan_chunks"] == 0 and result["inference_errors"] == 0
    assert result["cameras"]["front"]["frames_fed"] > 0
    with pytest.raises(SystemExit) as info:
        run_main_cli(["--robot", "so100", "--model", str(path), "--duration", "1", "--stochastic"])
    assert info.value.code != 0
