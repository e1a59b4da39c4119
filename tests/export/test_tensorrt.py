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
