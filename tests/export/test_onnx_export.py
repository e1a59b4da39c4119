"""ONNX export parity: every actor type, dynamic and fixed batch, fp32 and fp16, on real ONNX Runtime sessions."""

import numpy as np
import onnx
import pytest
import torch

from actsac.export import read_metadata
from actsac.export.onnx_export import export_onnx, torch_outputs
from actsac.export.verify import OUTPUTS, VerificationError, observation_range, session_runner
from actsac.onnx_runtime import ort_session
from actsac.policy import load_checkpoint, observation_shape

from .conftest import export, make_checkpoint


def random_observations(metadata, batch, seed):
    """Fresh observations (not the exporter's own verification set), a little beyond the normalisation range."""
    low, high = observation_range(metadata)
    span = high - low
    rng = np.random.default_rng(seed)
    return (low - 0.1 * span + 1.2 * span * rng.random((batch, *metadata.observation_shape))).astype(np.float32)


@pytest.mark.parametrize("kind", ["act", "history", "mlp"])
@pytest.mark.parametrize("batch", [1, 4])
def test_dynamic_batch_parity(exported, kind, batch):
    checkpoint, result, _ = exported(kind)
    metadata = read_metadata(result.path)
    obs = random_observations(metadata, batch, seed=batch)
    got = session_runner(ort_session(result.path))(obs)
    want = torch_outputs(checkpoint.actor, obs)
    chunk = (batch, metadata.chunk_size, metadata.action_dim)
    for name in OUTPUTS:
        assert got[name].shape == chunk and got[name].dtype == np.float32
    np.testing.assert_allclose(got["action_mean"], want["action_mean"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(got["action_log_std"], want["action_log_std"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(got["action"], want["action"], rtol=0, atol=1e-5 * 100)
    lo, hi = metadata.log_std_bounds
    assert (got["action_log_std"] >= lo).all() and (got["action_log_std"] <= hi).all()


@pytest.mark.parametrize("kind", ["act", "history", "mlp"])
def test_graph_is_one_self_contained_file(exported, kind):
    checkpoint, result, lines = exported(kind)
    assert sorted(p.name for p in result.path.parent.iterdir() if p.stem == kind) == [f"{kind}.onnx", f"{kind}.pt"]
    model = onnx.load(str(result.path))
    onnx.checker.check_model(model)
    (graph_input,) = model.graph.input
    dims = [d.dim_param or d.dim_value for d in graph_input.type.tensor_type.shape.dim]
    assert graph_input.name == "observation" and dims == ["batch", *observation_shape(checkpoint.config)]
    assert [o.name for o in model.graph.output] == list(OUTPUTS)
    assert not any(node.metadata_props or node.doc_string for node in model.graph.node)  # no stack traces
    assert result.parameters == checkpoint.actor.num_parameters() and result.file_bytes == result.path.stat().st_size
    assert any("batch 1:" in line for line in lines) and any("batch 23:" in line for line in lines)
    assert result.latency.runs == 50 and result.latency.p50_ms > 0


def test_history_actor_keeps_its_window(exported):
    checkpoint, result, _ = exported("history")
    metadata = read_metadata(result.path)
    assert metadata.history == 3 and metadata.observation_shape == (3, 20)
    assert checkpoint.actor.__class__.__name__ == "SequenceACTSACActor"


def test_fixed_batch(tmp_path):
    checkpoint, result, lines = export(tmp_path, "act", batch=3)
    model = onnx.load(str(result.path))
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [3, 12] and result.latency_batch == 3
    assert any("batch 3:" in line for line in lines)
    metadata = read_metadata(result.path)
    session = ort_session(result.path)
    obs = random_observations(metadata, 3, seed=7)
    got, want = session_runner(session)(obs), torch_outputs(checkpoint.actor, obs)
    np.testing.assert_allclose(got["action_mean"], want["action_mean"], rtol=0, atol=1e-5)
    with pytest.raises(Exception, match="(?i)dimension|shape"):
        session.run(None, {"observation": obs[:1]})


def weights_are_fp16(model) -> bool:
    return {init.data_type for init in model.graph.initializer if init.data_type in (1, 10)} == {
        onnx.TensorProto.FLOAT16}


def weights_are_int8(model) -> bool:
    return (onnx.TensorProto.INT8 in {init.data_type for init in model.graph.initializer}
            and bool({"DynamicQuantizeLinear", "MatMulInteger"} & {node.op_type for node in model.graph.node}))


@pytest.mark.parametrize("precision, reduced, tolerance", [("fp16", weights_are_fp16, 2e-2),
                                                            ("int8", weights_are_int8, 1e-1)])
def test_reduced_precision_graph_keeps_fp32_inputs_and_outputs(tmp_path, precision, reduced, tolerance):
    checkpoint, result, lines = export(tmp_path, "act", precision=precision)
    model = onnx.load(str(result.path))
    assert reduced(model)
    for value in [*model.graph.input, *model.graph.output]:
        assert value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    metadata = read_metadata(result.path)
    assert metadata.precision == precision
    obs = random_observations(metadata, 4, seed=3)
    got, want = session_runner(ort_session(result.path))(obs), torch_outputs(checkpoint.actor, obs)
    np.testing.assert_allclose(got["action_mean"], want["action_mean"], rtol=0, atol=tolerance)
    assert np.abs(got["action_mean"] - want["action_mean"]).max() > 0  # really reduced precision
    assert any(f"tolerance {tolerance:.1e}" in line for line in lines)


def test_an_opset_the_exporter_cannot_write_is_refused_not_replaced(tmp_path):
    """Asked for an opset it cannot convert to, the exporter silently writes another: export refuses that."""
    checkpoint = load_checkpoint(make_checkpoint(tmp_path, "mlp"))
    with pytest.raises(ValueError, match="opset 99 asked, the exporter wrote opset"):
        export_onnx(checkpoint, tmp_path / "m.onnx", opset=99, log=lambda line: None)
    assert not (tmp_path / "m.onnx").exists()


def test_failed_verification_leaves_nothing(tmp_path, monkeypatch):
    """A graph that computes something else than PyTorch (here: a reference shifted by 1e-3) is not written."""
    import actsac.export.onnx_export as onnx_export

    real = onnx_export.torch_outputs

    def shifted(actor, observations, outputs):
        out = real(actor, observations, outputs)
        out["action_mean"] = out["action_mean"] + 1e-3
        return out

    monkeypatch.setattr(onnx_export, "torch_outputs", shifted)
    path = make_checkpoint(tmp_path, "mlp")
    lines = []
    with pytest.raises(VerificationError, match="action_mean max abs error 1.00e-03 exceeds the tolerance 1.0e-05"):
        export_onnx(load_checkpoint(path), tmp_path / "mlp.onnx", log=lines.append)
    assert [p.name for p in tmp_path.iterdir()] == ["mlp.pt"]
    assert any("FAIL" in line for line in lines)


def test_export_leaves_the_actor_unchanged(exported):
    """Exporting leaves the checkpoint's actor usable and unchanged (eval mode, same outputs)."""
    checkpoint, result, _ = exported("act")
    fresh = load_checkpoint(checkpoint.path).actor
    obs = torch.zeros(2, 12)
    with torch.inference_mode():
        assert torch.equal(fresh(obs)[0], checkpoint.actor(obs)[0])
    assert not checkpoint.actor.training
