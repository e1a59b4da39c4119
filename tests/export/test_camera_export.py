"""Camera models: ONNX export (state + one uint8 (B, H, W, 3) RGB input per camera), metadata format version 2,
verification on random, all-0 and all-255 images, reduced precision, and the CLI; real ONNX Runtime sessions."""

import json

import numpy as np
import onnx
import pytest
import torch

from actsac.export import FORMAT_VERSION, read_metadata
from actsac.export.metadata import METADATA_KEY, VERSION_KEY
from actsac.export.onnx_export import ExportedActor, export_onnx, torch_outputs
from actsac.export.verify import (OUTPUTS, TOLERANCE, observation_range, session_runner, verification_inputs,
                                  verification_observations)
from actsac.onnx_runtime import ort_session
from actsac.policy import NormStats, PolicyConfig, build_actor, load_checkpoint, save_checkpoint
from actsac.policy.config import CameraConfig
from tests.conftest import so100_groups
from tests.export.conftest import export_cache

# kind -> (actor, image encoder, (height, width), cameras, history)
KINDS = {
    "act_cnn": ("act", "small_cnn", (48, 64), ("front", "wrist"), None),
    "mlp_cnn": ("mlp", "small_cnn", (48, 64), ("front",), None),
    "history_cnn": ("act", "small_cnn", (48, 64), ("front",), 3),
    "act_resnet": ("act", "resnet18", (64, 64), ("front",), None),
}


def camera_config(kind: str, **changes) -> PolicyConfig:
    """A small-preset SO-100 actor (6 joint positions, min/max stats) with the cameras of ``kind``."""
    actor, encoder, (height, width), cameras, history = KINDS[kind]
    low, high = [-100.0] * 5 + [0.0], [100.0] * 5 + [100.0]
    settings = dict(state_dim=6, action_groups=so100_groups(), chunk_size=10, actor=actor, history=history,
                    cameras=[CameraConfig.imagenet(name, height, width) for name in cameras],
                    image_encoder=encoder, obs_stats=NormStats.min_max(low, high),
                    action_stats=NormStats.min_max(low, high))
    return PolicyConfig.from_preset("small", **{**settings, **changes})


def camera_checkpoint(directory, kind: str, seed: int = 0):
    torch.manual_seed(seed)
    return save_checkpoint(directory / f"{kind}.pt", build_actor(camera_config(kind)).eval())


def export_camera_model(directory, kind: str, **kwargs):
    checkpoint = load_checkpoint(camera_checkpoint(directory, kind))
    lines: list[str] = []
    suffix = "-" + kwargs["precision"] if "precision" in kwargs else ""
    result = export_onnx(checkpoint, directory / f"{kind}{suffix}.onnx", log=lines.append, **kwargs)
    return checkpoint, result, lines


@pytest.fixture(scope="session")
def camera_exported(tmp_path_factory):
    """kind -> (checkpoint, ExportResult, log lines), dynamic batch, fp32; exported on first use, then reused."""
    return export_cache(tmp_path_factory.mktemp("camera_exported"), export_camera_model)


def fresh_inputs(metadata, images: str, batch: int = 3, seed: int = 5) -> dict[str, np.ndarray]:
    """Observations a little beyond the normalisation range, and images all-0 / all-255 / random per row."""
    rng = np.random.default_rng(seed)
    low, high = observation_range(metadata)
    span = high - low
    inputs = {"observation": (low - 0.1 * span + 1.2 * span * rng.random((batch, *metadata.observation_shape)))
              .astype(np.float32)}
    for camera in metadata.cameras:
        shape = (batch, camera["height"], camera["width"], 3)
        if images == "all-0":
            frames = np.zeros(shape, np.uint8)
        elif images == "all-255":
            frames = np.full(shape, 255, np.uint8)
        else:
            frames = rng.integers(0, 256, shape, dtype=np.uint8)
        inputs[camera["input"]] = frames
    return inputs


def dims(value) -> list:
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


@pytest.mark.parametrize("kind", list(KINDS))
def test_graph_inputs_are_the_state_and_one_uint8_rgb_image_per_camera(camera_exported, kind):
    checkpoint, result, _ = camera_exported(kind)
    config = checkpoint.config
    model = onnx.load(str(result.path))
    onnx.checker.check_model(model)
    state, *images = model.graph.input
    assert state.name == "observation" and state.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert dims(state) == ["batch", *((config.history,) if config.history else ()), 6]
    assert [image.name for image in images] == [f"image.{camera.name}" for camera in config.cameras]
    for image, camera in zip(images, config.cameras):
        assert image.type.tensor_type.elem_type == onnx.TensorProto.UINT8
        assert dims(image) == ["batch", camera.height, camera.width, 3]  # one dynamic batch for every input
    assert [o.name for o in model.graph.output] == list(OUTPUTS)
    for output in model.graph.output:
        assert output.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert sorted(p.name for p in result.path.parent.iterdir() if p.stem == kind) == [f"{kind}.onnx", f"{kind}.pt"]


@pytest.mark.parametrize("kind", list(KINDS))
def test_metadata_is_version_2_with_the_cameras(camera_exported, kind):
    checkpoint, result, _ = camera_exported(kind)
    metadata = read_metadata(result.path)
    assert metadata.format_version == FORMAT_VERSION == 2
    assert metadata.cameras == [{"name": c.name, "height": c.height, "width": c.width, "input": f"image.{c.name}",
                                 "dtype": "uint8", "layout": "HWC", "color": "RGB"}
                                for c in checkpoint.config.cameras]
    assert metadata.camera_names == checkpoint.config.camera_names
    assert metadata.input_names == [i.name for i in onnx.load(str(result.path)).graph.input]
    assert list(metadata.input_shapes.values())[1:] == [(c.height, c.width, 3) for c in checkpoint.config.cameras]
    props = {p.key: p.value for p in onnx.load(str(result.path)).metadata_props}
    assert props[VERSION_KEY] == "2" and json.loads(props[METADATA_KEY]) == metadata.to_dict()
    assert result.parameters == checkpoint.actor.num_parameters()


@pytest.mark.parametrize("kind", list(KINDS))
def test_export_verified_on_random_black_and_white_images(camera_exported, kind):
    _, result, lines = camera_exported(kind)
    text = "\n".join(lines)
    assert "verify ONNX Runtime vs PyTorch (fp32) on 23 observations" in text
    assert "images (uint8): 16 random, 4 all-0, 3 all-255" in text
    assert " batch 1:" in text and " batch 23:" in text and "FAIL" not in text
    assert result.latency.runs == 50 and result.latency.p50_ms > 0


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("images", ["all-0", "all-255", "random"])
def test_onnx_outputs_equal_pytorch(camera_exported, kind, images):
    checkpoint, result, _ = camera_exported(kind)
    metadata = read_metadata(result.path)
    inputs = fresh_inputs(metadata, images)
    run = session_runner(ort_session(result.path))
    want = torch_outputs(checkpoint.actor, inputs)
    for rows in (slice(0, 3), slice(1, 2)):  # batch 3 and batch 1: the dynamic batch covers the images too
        got = run({name: value[rows] for name, value in inputs.items()})
        for name in OUTPUTS:
            assert got[name].shape == (rows.stop - rows.start, 10, 6) and got[name].dtype == np.float32
        np.testing.assert_allclose(got["action_mean"], want["action_mean"][rows], rtol=0, atol=1e-5)
        np.testing.assert_allclose(got["action_log_std"], want["action_log_std"][rows], rtol=0, atol=1e-5)
        np.testing.assert_allclose(got["action"], want["action"][rows], rtol=0, atol=1e-5 * 100)


def test_the_images_change_the_actions(camera_exported):
    """The image inputs are wired in: black and white frames give other actions for the same observations."""
    _, result, _ = camera_exported("act_cnn")
    metadata = read_metadata(result.path)
    run = session_runner(ort_session(result.path))
    black, white = run(fresh_inputs(metadata, "all-0")), run(fresh_inputs(metadata, "all-255"))
    assert np.abs(black["action_mean"] - white["action_mean"]).max() > 1e-3


def test_images_must_be_uint8_frames(camera_exported):
    _, result, _ = camera_exported("act_cnn")
    metadata = read_metadata(result.path)
    session = ort_session(result.path)
    inputs = fresh_inputs(metadata, "random", batch=1)
    with pytest.raises(Exception, match="(?i)type|float"):
        session.run(None, {**inputs, "image.front": inputs["image.front"].astype(np.float32)})
    with pytest.raises(Exception, match="(?i)dimension|shape|index"):
        session.run(None, {**inputs, "image.front": np.zeros((1, 3, 48, 64), np.uint8)})  # NCHW is not the input


def test_exported_actor_takes_the_images_in_camera_order(camera_exported):
    checkpoint, _, _ = camera_exported("act_cnn")
    actor = checkpoint.actor
    generator = torch.Generator().manual_seed(0)
    obs = torch.randn(2, 6, generator=generator) * 50
    front, wrist = (torch.randint(0, 256, (2, 48, 64, 3), generator=generator, dtype=torch.uint8) for _ in range(2))
    with torch.inference_mode():
        mean, log_std, _ = ExportedActor(actor)(obs, front, wrist)
        want_mean, want_log_std = actor(obs, {"wrist": wrist, "front": front})
        swapped = ExportedActor(actor)(obs, wrist, front)[0]
    assert torch.equal(mean, want_mean) and torch.equal(log_std, want_log_std)
    assert not torch.equal(swapped, mean)
    with pytest.raises(ValueError, match="1 images given for the cameras"):
        ExportedActor(actor)(obs, front)


def test_verification_inputs_pair_observations_with_images(camera_exported):
    _, result, _ = camera_exported("act_cnn")
    metadata = read_metadata(result.path)
    inputs, described = verification_inputs(metadata)
    assert list(inputs) == metadata.input_names == ["observation", "image.front", "image.wrist"]
    observations, observations_described = verification_observations(metadata)
    np.testing.assert_array_equal(inputs["observation"], observations)
    assert described.startswith(observations_described)
    for name in ("image.front", "image.wrist"):
        frames = inputs[name]
        assert frames.dtype == np.uint8 and frames.shape == (23, 48, 64, 3)
        black = [i for i in range(23) if (frames[i] == 0).all()]
        white = [i for i in range(23) if (frames[i] == 255).all()]
        assert black == [3, 11, 19, 20] and white == [7, 15, 21]  # 20 / 21: the all-min / all-max observations
        assert all(len(np.unique(frames[i])) > 200 for i in set(range(23)) - set(black) - set(white))
    assert not np.array_equal(inputs["image.front"], inputs["image.wrist"])  # each camera its own pixels
    padded, _ = verification_inputs(metadata, multiple_of=5)
    assert {name: len(value) for name, value in padded.items()} == {name: 25 for name in inputs}


def test_state_only_verification_inputs_are_the_observations(exported):
    _, result, _ = exported("act")
    metadata = read_metadata(result.path)
    inputs, described = verification_inputs(metadata)
    observations, observations_described = verification_observations(metadata)
    assert list(inputs) == ["observation"] and described == observations_described
    np.testing.assert_array_equal(inputs["observation"], observations)


def weight_types(model) -> set[int]:
    return {init.data_type for init in model.graph.initializer}


@pytest.mark.parametrize("kind, precision", [("act_cnn", "fp16"), ("act_cnn", "int8"), ("act_resnet", "int8")])
def test_reduced_precision_camera_models(tmp_path, kind, precision):
    checkpoint, result, lines = export_camera_model(tmp_path, kind, precision=precision)
    model = onnx.load(str(result.path))
    ops = {node.op_type for node in model.graph.node}
    state, *images = model.graph.input
    assert state.type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # fp32 observation and outputs
    assert images and all(image.type.tensor_type.elem_type == onnx.TensorProto.UINT8 for image in images)
    assert all(output.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for output in model.graph.output)
    if precision == "fp16":
        assert onnx.TensorProto.FLOAT16 in weight_types(model) and onnx.TensorProto.FLOAT not in weight_types(model)
    else:  # int8 matrix products; the convolutions stay fp32 (ConvInteger is slower and no more accurate)
        assert {"MatMulInteger", "DynamicQuantizeLinear", "Conv"} <= ops and "ConvInteger" not in ops
    metadata = read_metadata(result.path)
    assert metadata.precision == precision and metadata.format_version == 2
    tolerance = TOLERANCE[precision]
    assert any(f"tolerance: {tolerance:.0e}" in line for line in lines) and not any("FAIL" in line for line in lines)
    run = session_runner(ort_session(result.path))
    for images in ("all-0", "all-255", "random"):
        inputs = fresh_inputs(metadata, images)
        got, want = run(inputs), torch_outputs(checkpoint.actor, inputs)
        error = np.abs(got["action_mean"] - want["action_mean"]).max()
        assert 0 < error <= tolerance  # really reduced precision, and within its tolerance
        np.testing.assert_allclose(got["action_log_std"], want["action_log_std"], rtol=0, atol=tolerance)


# --- folding (export/fold.py) on camera models -------------------------------------------------------------------

def fold_layouts():
    yield "act, 2 cameras", camera_config("act_cnn")
    yield "act, 2 cameras, 2 encoder + 3 decoder layers", camera_config("act_cnn", n_encoder_layers=2,
                                                                        n_decoder_layers=3)
    yield "act, 2 cameras, no encoder", camera_config("act_cnn", n_encoder_layers=0)
    yield "history + camera", camera_config("history_cnn")
    yield "history + camera, 2 decoder layers", camera_config("history_cnn", n_decoder_layers=2)
    yield "act, resnet18 camera", camera_config("act_resnet")


def call_counter(module) -> list:
    calls = []
    module.register_forward_hook(lambda *args: calls.append(1))
    return calls


@pytest.mark.parametrize("name, config", list(fold_layouts()), ids=[name for name, _ in fold_layouts()])
def test_folding_a_camera_model_is_exact_and_keeps_the_real_attention(name, config):
    from actsac.export.fold import FoldedACT, fold_for_inference

    torch.manual_seed(1)
    actor = build_actor(config).eval()
    folded = fold_for_inference(actor)
    assert isinstance(folded, FoldedACT) and not folded.single_token
    children = dict(folded.named_children())
    assert "cross_attention" not in children and "encoder_attention" not in children  # nothing single-key here
    generator = torch.Generator().manual_seed(2)
    obs = torch.randn(5, *(([config.history] if config.uses_history else []) + [config.state_dim]),
                      generator=generator) * 50
    images = {c.name: torch.randint(0, 256, (5, c.height, c.width, 3), generator=generator, dtype=torch.uint8)
              for c in config.cameras}
    images["front"][1] = 0  # an all-0 and an all-255 frame among the random ones
    images["front"][2] = 255
    layers = actor.decoder.layers
    first_self_attention = call_counter(layers[0].self_attn)
    cross_attention = [call_counter(layer.multihead_attn) for layer in layers]
    encoder_attention = [call_counter(layer.self_attn) for layer in getattr(actor.encoder, "layers", [])]
    with torch.no_grad():
        got = folded(obs, images)
        assert first_self_attention == [] and all(calls == [1] for calls in cross_attention + encoder_attention)
        want = actor(obs, images)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=0, atol=2e-6)
    with pytest.raises(ValueError, match="pass their images"):
        folded(obs)


def test_exported_camera_graph_keeps_cross_attention_and_folds_the_first_self_attention(camera_exported):
    checkpoint, result, lines = camera_exported("act_cnn")
    config = checkpoint.config
    model = onnx.load(str(result.path))
    softmax = sum(node.op_type == "Softmax" for node in model.graph.node)
    # one Softmax per encoder layer and per cross-attention; the first decoder layer's self-attention is a constant
    assert softmax == config.n_encoder_layers + config.n_decoder_layers + (config.n_decoder_layers - 1)
    assert any(line.startswith("graph: attention that cannot vary with the observation or images folded away")
               for line in lines)


# --- metadata: version 1 still reads, malformed cameras are refused ---------------------------------------------

def test_a_state_only_export_is_still_version_1_without_cameras(exported):
    from actsac.export.metadata import STATE_ONLY_VERSION

    _, result, _ = exported("act")
    metadata = read_metadata(result.path)
    assert metadata.format_version == STATE_ONLY_VERSION == 1
    assert metadata.cameras == [] and metadata.camera_names == [] and metadata.input_names == ["observation"]
    props = {p.key: p.value for p in onnx.load(str(result.path)).metadata_props}
    assert props[VERSION_KEY] == "1"
    assert [i.name for i in onnx.load(str(result.path)).graph.input] == ["observation"]


def test_a_version_1_file_of_an_older_actsac_reads(tmp_path, exported):
    """Written before cameras existed: format_version 1 and no 'cameras' key at all."""
    from .test_metadata import tiny_model

    data = read_metadata(exported("act")[1].path).to_dict()
    del data["cameras"]
    path = tiny_model(tmp_path / "old.onnx", {METADATA_KEY: json.dumps(data), VERSION_KEY: "1"})
    metadata = read_metadata(path)
    assert metadata.format_version == 1 and metadata.cameras == [] and metadata.input_names == ["observation"]
    metadata.check_images(None)  # a state-only model needs no images
    metadata.check_images({})


def camera_dict(camera_exported) -> dict:
    return read_metadata(camera_exported("act_cnn")[1].path).to_dict()


def front(**changes) -> dict:
    return {"name": "front", "height": 48, "width": 64, "input": "image.front", "dtype": "uint8", "layout": "HWC",
            "color": "RGB", **changes}


@pytest.mark.parametrize("cameras, message", [
    (5, "'cameras' must be a list"),
    ({"front": front()}, "'cameras' must be a list"),
    (["front"], "'cameras' entries need 'name', 'height', 'width' and 'input'"),
    ([{k: v for k, v in front().items() if k != "input"}], "entries need 'name', 'height', 'width' and 'input'"),
    ([front(input="front")], "camera 'front' input must be 'image.front'"),
    ([front(height="48")], "camera 'front' needs a positive integer height and width"),
    ([front(width=0)], "camera 'front' needs a positive integer height and width"),
    ([front(name="front cam", input="image.front cam")], "camera name 'front cam' is not an identifier"),
    ([front(dtype="float32")], "camera 'front' dtype 'float32' is not 'uint8'"),
    ([front(layout="CHW")], "camera 'front' layout 'CHW' is not 'HWC'"),
    ([front(color="BGR")], "camera 'front' color 'BGR' is not 'RGB'"),
    ([front(), front()], "names a camera twice"),
], ids=["int", "dict", "string entry", "no input", "input name", "height str", "width 0", "name", "dtype",
        "layout", "color", "twice"])
def test_a_malformed_camera_entry_is_one_line(tmp_path, camera_exported, cameras, message):
    from actsac.export import MetadataError

    from .test_metadata import tiny_model

    path = tiny_model(tmp_path / "model.onnx", {METADATA_KEY: json.dumps({**camera_dict(camera_exported),
                                                                          "cameras": cameras})})
    with pytest.raises(MetadataError) as info:
        read_metadata(path)
    text = str(info.value)
    assert message in text and str(path) in text and "metadata field 'cameras'" in text and "\n" not in text


def test_cameras_in_a_version_1_file_are_refused(tmp_path, camera_exported):
    from actsac.export import MetadataError

    from .test_metadata import tiny_model

    path = tiny_model(tmp_path / "model.onnx", {METADATA_KEY: json.dumps({**camera_dict(camera_exported),
                                                                          "format_version": 1})})
    with pytest.raises(MetadataError, match="'cameras' needs format_version 2 or newer"):
        read_metadata(path)


def test_check_images_names_the_camera(camera_exported):
    metadata = read_metadata(camera_exported("act_cnn")[1].path)
    frame = np.zeros((48, 64, 3), np.uint8)
    metadata.check_images({"front": frame, "wrist": frame})
    metadata.check_images({"front": frame[None], "wrist": frame[None]}, batched=True)
    for images, message in [({"front": frame}, "camera 'wrist': no image"),
                            ({"front": frame, "wrist": frame.astype(np.float32)}, "camera 'wrist': image of float32"),
                            ({"front": frame[:, :32], "wrist": frame}, "camera 'front': image of uint8 (48, 32, 3)"),
                            ({"front": frame, "wrist": frame, "side": frame}, "camera 'side': the model does not")]:
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
            metadata.check_images(images)


# --- actsac-export ---------------------------------------------------------------------------------------------

def test_cli_exports_a_camera_model_and_names_its_cameras(tmp_path, capsys):
    from actsac.export.cli import main

    checkpoint = camera_checkpoint(tmp_path, "act_cnn")
    main([str(checkpoint)])
    out = capsys.readouterr().out
    assert "front, wrist images (uint8): 16 random, 4 all-0, 3 all-255" in out and "FAIL" not in out
    assert (f"wrote {tmp_path / 'act_cnn.onnx'} (chunk 10, 6 joints in arm, observation (6,), cameras front 48x64, "
            f"wrist 48x64 (uint8 HWC RGB))") in out
    assert read_metadata(tmp_path / "act_cnn.onnx").camera_names == ["front", "wrist"]


def rewritten_checkpoint(tmp_path, case: str):
    checkpoint = camera_checkpoint(tmp_path, "act_cnn")
    payload = torch.load(checkpoint, weights_only=True)
    cameras = payload["config"]["cameras"]
    if case == "renamed camera":  # config and weights disagree on the cameras
        cameras[1]["name"] = "side"
    elif case == "camera dropped from the config":
        del cameras[1]
    elif case == "cameras dropped from the config":
        payload["config"]["cameras"] = []
    elif case == "image too small":
        cameras[0]["height"] = 8
    path = tmp_path / "model.pt"
    torch.save(payload, path)
    checkpoint.unlink()
    return path


@pytest.mark.parametrize("case, fragments", [
    ("renamed camera", ["its config names cameras [front, side] but its weights are for cameras [front, wrist]"]),
    ("camera dropped from the config", ["its config names cameras [front] but its weights are for cameras "
                                        "[front, wrist]"]),
    ("cameras dropped from the config", ["its config names cameras [none] but its weights are for cameras "
                                         "[front, wrist]"]),
    ("image too small", ["bad config", "cameras['front'].height: 8 is not an integer >= 16"]),
])
def test_cli_refuses_a_camera_checkpoint_that_does_not_add_up(tmp_path, capsys, case, fragments):
    from .test_cli import assert_one_line, run_main

    path = rewritten_checkpoint(tmp_path, case)
    code, err = run_main([path], capsys)
    assert code == 1
    assert_one_line(err, str(path), *fragments)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]
