"""TensorRT engines: built from the exported ONNX file and checked against ONNX Runtime (GPU machines only)."""

import subprocess

import numpy as np
import pytest

from actsac.export import read_metadata
from actsac.export.tensorrt import NEEDED, missing_tensorrt_reason
from actsac.export.verify import session_runner
from actsac.onnx_runtime import ort_session

from .conftest import export, make_checkpoint
from .test_cli import command

needs_trt = pytest.mark.skipif(missing_tensorrt_reason() is not None, reason="TensorRT and a CUDA GPU are needed")


def test_missing_reason_is_one_line():
    reason = missing_tensorrt_reason()
    assert reason is None or (reason.startswith(NEEDED) and "\n" not in reason)


@needs_trt
@pytest.mark.gpu
@pytest.mark.parametrize("fp16", [False, True], ids=["fp32", "fp16"])
def test_engine_matches_onnxruntime(tmp_path, fp16):
    from actsac.export.tensorrt import TensorRTRunner, export_engine

    _, result, _ = export(tmp_path, "history", precision="fp16" if fp16 else "fp32")
    metadata = read_metadata(result.path)
    lines = []
    engine = export_engine(result.path, metadata, batch=None, log=lines.append)
    assert engine == result.path.with_suffix(".engine") and engine.stat().st_size > 0
    assert any("batch 1:" in line for line in lines) and not any("FAIL" in line for line in lines)
    obs = np.random.default_rng(1).normal(size=(4, *metadata.observation_shape)).astype(np.float32)
    want = session_runner(ort_session(result.path))(obs)
    with TensorRTRunner(engine) as runner:
        for batch in (1, 4):
            got = runner.run(obs[:batch])
            tolerance = 4e-2 if fp16 else 1e-4
            np.testing.assert_allclose(got["action_mean"], want["action_mean"][:batch], rtol=0, atol=tolerance)
            assert got["action"].shape == (batch, metadata.chunk_size, metadata.action_dim)


@needs_trt
@pytest.mark.gpu
def test_cli_builds_a_fixed_batch_engine(tmp_path):
    checkpoint = make_checkpoint(tmp_path, "act")
    proc = subprocess.run([*command(), str(checkpoint), "--trt", "--batch", "2"], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "verify TensorRT" in proc.stdout and (tmp_path / "act.engine").is_file()


@needs_trt
@pytest.mark.gpu
@pytest.mark.parametrize("fp16", [False, True], ids=["fp32", "fp16"])
def test_camera_engine_matches_onnxruntime(tmp_path, fp16):
    """A camera model's engine: the uint8 image inputs get their optimisation profile and stay uint8 on the host."""
    from actsac.export.tensorrt import IMAGE_MAX_BATCH, TensorRTError, TensorRTRunner, export_engine

    from .test_camera_export import export_camera_model, fresh_inputs

    _, result, _ = export_camera_model(tmp_path, "act_cnn", precision="fp16" if fp16 else "fp32")
    metadata = read_metadata(result.path)
    lines = []
    engine = export_engine(result.path, metadata, batch=None, log=lines.append)
    assert any("all-255" in line for line in lines) and not any("FAIL" in line for line in lines)
    inputs = fresh_inputs(metadata, "random", batch=4)
    want = session_runner(ort_session(result.path))(inputs)
    with TensorRTRunner(engine) as runner:
        assert runner.input_names == metadata.input_names
        assert [runner.input_dtypes[name] for name in runner.input_names] == [np.float32, np.uint8, np.uint8]
        for batch in (1, 4):
            got = runner.run({name: value[:batch] for name, value in inputs.items()})
            np.testing.assert_allclose(got["action_mean"], want["action_mean"][:batch], rtol=0,
                                       atol=4e-2 if fp16 else 1e-4)
        with pytest.raises(TensorRTError, match="outside the engine's optimisation profile"):
            runner.run(fresh_inputs(metadata, "random", batch=IMAGE_MAX_BATCH + 1))
        with pytest.raises(TensorRTError, match="pass a dict"):
            runner.run(inputs["observation"])


def bare_runner(input_dtypes: dict):
    """A TensorRTRunner without an engine: enough to check how it prepares the host inputs (no GPU needed)."""
    from actsac.export.tensorrt import TensorRTRunner

    runner = TensorRTRunner.__new__(TensorRTRunner)
    runner.input_names = list(input_dtypes)
    runner.input_dtypes = {name: np.dtype(dtype) for name, dtype in input_dtypes.items()}
    return runner


def test_runner_host_inputs_keep_each_inputs_dtype():
    from actsac.export.tensorrt import TensorRTError

    runner = bare_runner({"observation": np.float32, "image.front": np.uint8})
    obs, frame = np.zeros((2, 6)), np.zeros((2, 48, 64, 3), np.uint8)
    host = runner.host_inputs({"observation": obs, "image.front": frame})
    assert host["observation"].dtype == np.float32 and host["image.front"].dtype == np.uint8
    assert host["image.front"].flags.c_contiguous
    for inputs, message in [
        ({"observation": obs, "image.front": frame.astype(np.float32)}, "'image.front': float32 given, the engine "
                                                                         "takes uint8"),
        ({"observation": obs}, "the engine takes \\['observation', 'image.front'\\]"),
        ({"observation": obs, "image.front": frame, "image.side": frame}, "the engine takes"),
        ({"observation": obs[:1], "image.front": frame}, "different batch sizes"),
    ]:
        with pytest.raises(TensorRTError, match=message):
            runner.host_inputs(inputs)
    with pytest.raises(TensorRTError, match="pass a dict"):
        runner.host_inputs(obs)
    state_only = bare_runner({"observation": np.float32})
    assert state_only.host_inputs(obs)["observation"].dtype == np.float32  # a bare observation array, as before


def test_profile_covers_a_fixed_or_a_dynamic_batch():
    from actsac.export.tensorrt import IMAGE_MAX_BATCH, profile_batches

    assert profile_batches(3, 1024) == (3, 3, 3)
    assert profile_batches(None, 1024) == (1, 1, 1024)
    assert 23 <= IMAGE_MAX_BATCH < 1024  # the 23 verification rows fit; a thousand frames do not
