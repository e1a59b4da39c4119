import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from actsac.policy import ActionGroup, ConfigError, PolicyConfig, build_actor, load_checkpoint, save_checkpoint
from actsac.policy.checkpoint import CheckpointError
from actsac.policy.config import IMAGENET_MEAN, IMAGENET_STD, CameraConfig
from actsac.policy.critic import CriticEnsemble
from actsac.policy.replay import Episode, SequenceReplay, sample_batch
from actsac.policy.vision import (FrozenBatchNorm2d, ImageNormalizer, ResNet18Backbone, SmallCNN,
                                  load_torchvision_weights, sinusoidal_position_2d)
from tests.export.lerobot.backbone import resnet18_shapes

JOINTS = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]


def camera_config(actor="act", encoder="small_cnn", sizes=((48, 64),), **kwargs) -> PolicyConfig:
    cameras = [CameraConfig.imagenet(f"cam{i}", h, w) for i, (h, w) in enumerate(sizes)]
    return PolicyConfig.from_preset("small", state_dim=6, action_groups=[ActionGroup("arm", JOINTS)], actor=actor,
                                    chunk_size=5, cameras=cameras, image_encoder=encoder, **kwargs)


def images_for(config: PolicyConfig, batch: int = 2, value: int | None = None, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for c in config.cameras:
        shape = (batch, c.height, c.width, 3)
        out[c.name] = (torch.full(shape, value, dtype=torch.uint8) if value is not None
                       else torch.randint(0, 256, shape, generator=gen, dtype=torch.uint8))
    return out


# ResNet-18 as torchvision's documentation describes it (torchvision.models.resnet18, BasicBlock [2, 2, 2, 2]):
# conv1 7x7/2 64, bn1, maxpool, then layer1..4 of two BasicBlocks (3x3 conv, bn, 3x3 conv, bn) at 64, 128, 256,
# 512 channels, the first block of layer2..4 with stride 2 and a downsample (1x1 conv, bn); fc 512 -> 1000.
# 11,689,512 parameters in all (the documented figure).
def torchvision_resnet18_tensors() -> dict[str, tuple[int, ...]]:
    tensors = dict(resnet18_shapes())
    for norm in [k.removesuffix(".running_var") for k in tensors if k.endswith(".running_var")]:
        tensors[f"{norm}.num_batches_tracked"] = ()
    tensors["fc.weight"], tensors["fc.bias"] = (1000, 512), (1000,)
    return tensors


def test_resnet18_names_and_shapes_are_torchvisions():
    expected = torchvision_resnet18_tensors()
    trainable = [k for k in expected if "running" not in k and "num_batches" not in k]
    assert sum(int(np.prod(expected[k])) for k in trainable) == 11_689_512  # torchvision's documented count
    ours = {k: tuple(v.shape) for k, v in ResNet18Backbone().state_dict().items()}
    assert ours == {k: v for k, v in expected.items() if not k.startswith("fc.") and "num_batches" not in k}


def test_torchvision_weights_load_one_to_one():
    gen = torch.Generator().manual_seed(0)
    weights = {k: torch.randn(shape, generator=gen) if shape else torch.tensor(7)
               for k, shape in torchvision_resnet18_tensors().items()}
    for k in weights:
        if k.endswith("running_var"):
            weights[k] = weights[k].abs() + 0.1
    backbone = ResNet18Backbone()
    load_torchvision_weights(backbone, weights)
    for name, value in backbone.state_dict().items():
        assert torch.equal(value, weights[name]), name
    weights["layer4.1.conv2.weight"] = torch.zeros(512, 512, 1, 1)
    with pytest.raises(RuntimeError, match="layer4.1.conv2.weight"):
        load_torchvision_weights(ResNet18Backbone(), weights)


def test_frozen_batch_norm_is_eval_batch_norm_and_never_trains():
    bn = nn.BatchNorm2d(8).eval()
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2), bn.bias.uniform_(-1, 1), bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    frozen = FrozenBatchNorm2d(8)
    frozen.load_state_dict(bn.state_dict())  # num_batches_tracked is dropped
    x = torch.randn(2, 8, 5, 5)
    assert torch.allclose(frozen(x), bn(x), atol=1e-6)
    assert list(frozen.parameters()) == []


@pytest.mark.parametrize("size,resnet,small", [((48, 64), (2, 2), (3, 4)), ((96, 128), (3, 4), (6, 8)),
                                               ((480, 640), (15, 20), (30, 40)), ((50, 70), (2, 3), (4, 5))])
def test_feature_map_sizes(size, resnet, small):
    assert ResNet18Backbone.feature_size(*size) == resnet
    assert SmallCNN.feature_size(*size) == small
    with torch.no_grad():
        x = torch.zeros(1, 3, *size)
        assert tuple(SmallCNN()(x).shape) == (1, 64, *small)
        if size[0] <= 96:  # the 480x640 forward is slow on 2 cores; the formula is checked on the others
            assert tuple(ResNet18Backbone()(x).shape) == (1, 512, *resnet)


@pytest.mark.parametrize("encoder,sizes,tokens", [("small_cnn", [(48, 64)], 12), ("small_cnn", [(48, 64), (96, 128)], 60),
                                                  ("resnet18", [(96, 128)], 12), ("resnet18", [(64, 64), (64, 96)], 10)])
def test_act_memory_holds_the_state_token_then_every_cameras_tokens(encoder, sizes, tokens):
    config = camera_config(encoder=encoder, sizes=sizes)
    actor = build_actor(config).eval()
    assert actor.images.n_tokens == tokens
    with torch.no_grad():
        memory = actor.memory(actor.obs_norm(torch.zeros(2, 6)), images_for(config))
        mean, log_std = actor(torch.zeros(2, 6), images_for(config))
    assert memory.shape == (2, 1 + tokens, config.dim_model)
    assert mean.shape == log_std.shape == (2, 5, 6)


@pytest.mark.parametrize("actor_type", ["act", "mlp"])
def test_the_image_changes_the_action(actor_type):
    config = camera_config(actor=actor_type)
    actor = build_actor(config).eval()
    obs = torch.zeros(2, 6)
    with torch.no_grad():
        black, white = actor(obs, images_for(config, value=0))[0], actor(obs, images_for(config, value=255))[0]
        again = actor(obs, images_for(config, value=0))[0]
    assert torch.equal(black, again)
    assert (black - white).abs().max() > 1e-3


def test_image_normalisation_maps_bytes_to_imagenet_units():
    normalizer = ImageNormalizer(CameraConfig.imagenet("front", 16, 16))
    out = normalizer(torch.tensor([0, 255], dtype=torch.uint8).view(2, 1, 1, 1).expand(2, 16, 16, 3))
    assert out.shape == (2, 3, 16, 16)
    mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
    assert torch.allclose(out[0, :, 0, 0], -mean / std, atol=1e-6)
    assert torch.allclose(out[1, :, 0, 0], (1 - mean) / std, atol=1e-6)


def test_position_embedding_is_bounded_and_distinct_per_cell():
    pos = sinusoidal_position_2d(3, 4, 64)
    assert pos.shape == (12, 64) and pos.abs().max() <= 1.0
    assert torch.cdist(pos, pos).add(torch.eye(12) * 10).min() > 0.1
    assert torch.equal(pos[:4, :32], pos[:1, :32].expand(4, -1))  # the first half encodes the row only


def test_wrong_images_are_refused_by_name():
    config = camera_config()
    actor = build_actor(config)
    obs = torch.zeros(1, 6)
    with pytest.raises(ValueError, match="sees cameras"):
        actor(obs)
    with pytest.raises(ValueError, match="camera 'cam0': image of torch.float32"):
        actor(obs, {"cam0": torch.zeros(1, 48, 64, 3)})
    with pytest.raises(ValueError, match=r"camera 'cam0': image of torch.uint8 \(1, 64, 48, 3\)"):
        actor(obs, {"cam0": torch.zeros(1, 64, 48, 3, dtype=torch.uint8)})
    state_only = build_actor(dataclasses.replace(config, cameras=[]))
    with pytest.raises(ValueError, match="sees no cameras"):
        state_only(obs, images_for(config, batch=1))


@pytest.mark.parametrize("camera,message", [
    (dict(name="front", height=48, width=64), "no image statistics"),
    (dict(name="front cam", height=48, width=64, mean=[0.5] * 3, std=[0.2] * 3), "not an identifier"),
    (dict(name="front", height=8, width=64, mean=[0.5] * 3, std=[0.2] * 3), "height: 8 is not an integer >= 16"),
    (dict(name="front", height=48, width=64, mean=[0.5] * 3, std=[0.2, 0.0, 0.2]), "std: every value must be positive"),
    (dict(name="front", height=48, width=64, mean=[0.5] * 3, std=[0.2] * 3, fov=90), "unknown camera key 'fov'"),
])
def test_bad_camera_configs_are_one_line_errors(camera, message):
    data = camera_config().to_dict()
    data["cameras"] = [camera]
    with pytest.raises(ConfigError, match=message):
        PolicyConfig.from_dict(data)


def test_duplicate_camera_names_are_refused():
    with pytest.raises(ConfigError, match="duplicate camera names"):
        PolicyConfig.from_preset("small", state_dim=6, action_groups=[ActionGroup("arm", JOINTS)],
                                 cameras=[CameraConfig.imagenet("a", 48, 64), CameraConfig.imagenet("a", 48, 64)])


def test_checkpoint_round_trip_and_camera_weight_mismatch(tmp_path):
    config = camera_config(sizes=[(48, 64), (32, 32)])
    actor = build_actor(config).eval()
    path = save_checkpoint(tmp_path / "model.pt", actor)
    loaded = load_checkpoint(path)
    assert loaded.config.cameras == config.cameras
    images = images_for(config)
    with torch.no_grad():
        assert torch.equal(loaded.actor(torch.zeros(2, 6), images)[0], actor(torch.zeros(2, 6), images)[0])
    payload = torch.load(path, weights_only=True)
    payload["config"]["cameras"] = payload["config"]["cameras"][:1]
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match=r"config names cameras \[cam0\] but its weights are for cameras "
                                              r"\[cam0, cam1\]"):
        load_checkpoint(tmp_path / "bad.pt")
    payload["config"]["cameras"] = []
    torch.save(payload, tmp_path / "none.pt")
    with pytest.raises(CheckpointError, match=r"config names cameras \[none\]"):
        load_checkpoint(tmp_path / "none.pt")


def test_critic_sees_the_images_through_its_own_encoder():
    config = camera_config(encoder="resnet18", sizes=[(64, 64)])
    actor, critic = build_actor(config), CriticEnsemble(config, n_critics=3, hidden=(32,))
    assert not set(map(id, critic.parameters())) & set(map(id, actor.parameters()))
    obs, chunk = torch.zeros(2, 6), torch.zeros(2, 5, 6)
    q_black, q_white = critic(obs, chunk, images_for(config, value=0)), critic(obs, chunk, images_for(config, value=255))
    assert q_black.shape == (3, 2) and (q_black - q_white).abs().max() > 0


def test_replay_gives_the_frames_at_t_and_t_plus_h():
    n, h = 12, 4
    frames = np.arange(n + 1, dtype=np.uint8)[:, None, None, None] * np.ones((1, 16, 16, 3), np.uint8)
    episode = Episode(np.zeros((n + 1, 6), np.float32), np.zeros((n, 6), np.float32), np.zeros(n, np.float32),
                      images={"front": frames})
    replay = SequenceReplay(h)
    replay.add_episode(episode)
    chunk = replay.gather(np.array([0, 3, 8]))
    assert chunk["images"]["front"][:, 0, 0, 0].tolist() == [0, 3, 8]
    assert chunk["next_images"]["front"][:, 0, 0, 0].tolist() == [4, 7, 12]
    batch = sample_batch(replay, None, 5, np.random.default_rng(0))
    assert batch.images["front"].dtype == torch.uint8 and batch.images["front"].shape == (5, 16, 16, 3)
    with pytest.raises(ValueError, match="images of camera 'front'"):
        Episode(np.zeros((n + 1, 6)), np.zeros((n, 6)), np.zeros(n), images={"front": frames[:-1]})
