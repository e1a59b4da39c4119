"""Make the LeRobot checkpoint fixtures with LeRobot's own code (run in the side environment, never in CI):

    ../shared/tools/lerobot-venv /tmp/lerobot-venv
    /tmp/lerobot-venv/bin/python tests/export/lerobot/make_fixtures.py

Each fixture is a LeRobot 0.4 ``pretrained_model`` directory as ``save_pretrained`` writes it (config.json,
model.safetensors, the pre- and post-processor files) plus ``reference.npz``: raw inputs (the state in robot
units, uint8 HWC RGB frames) and what LeRobot computes from them (``preprocessor -> predict_action_chunk ->
postprocessor`` for ACT; the actor's mean, log-std and unnormalised tanh(mean) for SAC). A ResNet-18 backbone is
not stored (45 MB): ``fixture.json`` names the seed that ``backbone.resnet18_weights`` regenerates it from.
One fixture is rewritten in LeRobot 0.3's layout (statistics as buffers inside model.safetensors).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import lerobot_stub  # noqa: F401  (before lerobot)
import numpy as np
import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).parent))
from backbone import resnet18_weights  # noqa: E402

from lerobot.configs.types import FeatureType, NormalizationMode, PolicyFeature  # noqa: E402
from lerobot.policies.act.configuration_act import ACTConfig  # noqa: E402
from lerobot.policies.act.modeling_act import ACTPolicy  # noqa: E402
from lerobot.policies.act.processor_act import make_act_pre_post_processors  # noqa: E402
from lerobot.policies.sac.configuration_sac import SACConfig  # noqa: E402
from lerobot.policies.sac.modeling_sac import SACPolicy  # noqa: E402
from lerobot.policies.sac.processor_sac import make_sac_pre_post_processors  # noqa: E402

OUT = Path(__file__).parent / "fixtures"
N = 6  # reference rows
JOINT_RANGE = np.array([100.0] * 5 + [50.0])  # so100 / koch: range_m100_100 joints, gripper range_0_100

FIXTURES = {
    # one camera, LeRobot's defaults for the transformer's shape (post-norm, relu, VAE weights present)
    "act_one_camera": dict(policy="act", robot="so100", cameras={"front": (48, 64)}, chunk_size=10,
                           act=dict(dim_model=32, n_heads=4, dim_feedforward=64, n_encoder_layers=2,
                                    n_decoder_layers=1, latent_dim=8, n_vae_encoder_layers=1), seed=1),
    # two cameras of different sizes, pre-norm, gelu, two decoder layers, MIN_MAX actions, no VAE
    "act_two_cameras": dict(policy="act", robot="koch", cameras={"top": (64, 96), "wrist": (48, 64)},
                            chunk_size=8, norm={"ACTION": "MIN_MAX"},
                            act=dict(dim_model=48, n_heads=6, dim_feedforward=96, n_encoder_layers=1,
                                     n_decoder_layers=2, pre_norm=True, feedforward_activation="gelu",
                                     use_vae=False), seed=2),
    # no camera: the environment state beside the joints (identity-normalised: ACT's mapping has no ENV)
    "act_env_state": dict(policy="act", robot="so100", cameras={}, env_dim=4, chunk_size=5,
                          act=dict(dim_model=32, n_heads=2, dim_feedforward=64, n_encoder_layers=3,
                                   n_decoder_layers=1, latent_dim=4, n_vae_encoder_layers=1), seed=3),
    # SAC on the joints alone
    "sac_state": dict(policy="sac", robot="so100", cameras={},
                      sac=dict(latent_dim=32, actor_hidden=[64, 64]), seed=4),
    # SAC with one camera through LeRobot's default image encoder
    "sac_camera": dict(policy="sac", robot="so100", cameras={"front": (64, 64)},
                       sac=dict(latent_dim=16, actor_hidden=[32, 32], image_hidden=8), seed=5),
}
OLD_LAYOUT = {"act_one_camera_v03": "act_one_camera"}


def features(spec: dict) -> tuple[dict, dict]:
    inputs = {"observation.state": PolicyFeature(FeatureType.STATE, (6,))}
    if spec.get("env_dim"):
        inputs["observation.environment_state"] = PolicyFeature(FeatureType.ENV, (spec["env_dim"],))
    for name, (h, w) in spec["cameras"].items():
        inputs[f"observation.images.{name}"] = PolicyFeature(FeatureType.VISUAL, (3, h, w))
    return inputs, {"action": PolicyFeature(FeatureType.ACTION, (6,))}


def dataset_stats(spec: dict, rng: np.random.Generator) -> dict:
    def vector(dim: int, scale: np.ndarray) -> dict:
        mean = rng.normal(0.0, 0.2, dim) * scale
        std = rng.uniform(0.1, 0.4, dim) * scale
        low, high = mean - 2.5 * std, mean + 2.5 * std
        return {"mean": mean, "std": std, "min": low, "max": high}

    stats = {"observation.state": vector(6, JOINT_RANGE), "action": vector(6, JOINT_RANGE)}
    if spec.get("env_dim"):
        stats["observation.environment_state"] = vector(spec["env_dim"], np.ones(spec["env_dim"]))
    for name in spec["cameras"]:
        stats[f"observation.images.{name}"] = {"mean": rng.uniform(0.3, 0.6, (3, 1, 1)),
                                               "std": rng.uniform(0.15, 0.3, (3, 1, 1))}
    return {key: {k: torch.tensor(v, dtype=torch.float32) for k, v in value.items()} for key, value in stats.items()}


def norm_mapping(spec: dict, default: dict) -> dict:
    mapping = {key: NormalizationMode(value) for key, value in default.items()}
    mapping.update({key: NormalizationMode(value) for key, value in spec.get("norm", {}).items()})
    return mapping


def build(spec: dict):
    inputs, outputs = features(spec)
    if spec["policy"] == "act":
        config = ACTConfig(input_features=inputs, output_features=outputs, chunk_size=spec["chunk_size"],
                           n_action_steps=spec["chunk_size"], pretrained_backbone_weights=None, device="cpu",
                           normalization_mapping=norm_mapping(spec, {"VISUAL": "MEAN_STD", "STATE": "MEAN_STD",
                                                                    "ACTION": "MEAN_STD"}), **spec["act"])
        return config, ACTPolicy(config), make_act_pre_post_processors
    sac = spec["sac"]
    config = SACConfig(input_features=inputs, output_features=outputs, device="cpu", use_torch_compile=False,
                       latent_dim=sac["latent_dim"], image_encoder_hidden_dim=sac.get("image_hidden", 32),
                       normalization_mapping=norm_mapping(spec, {"VISUAL": "MEAN_STD", "STATE": "MIN_MAX",
                                                                "ENV": "MIN_MAX", "ACTION": "MIN_MAX"}))
    config.actor_network_kwargs.hidden_dims = sac["actor_hidden"]
    config.critic_network_kwargs.hidden_dims = [16, 16]  # the critics are not exported: kept small
    config.discrete_critic_network_kwargs.hidden_dims = [16, 16]
    return config, SACPolicy(config), make_sac_pre_post_processors


def randomise(policy, spec: dict, rng: np.random.Generator) -> None:
    """Weights away from their initialisation (biases and norms included), and a seeded ResNet-18."""
    with torch.no_grad():
        for name, tensor in policy.state_dict().items():
            if tensor.dtype.is_floating_point and ".backbone." not in name:
                tensor.add_(torch.tensor(rng.normal(0.0, 0.05, tuple(tensor.shape)), dtype=tensor.dtype))
        if spec["policy"] == "act" and spec["cameras"]:
            for name, value in resnet18_weights(spec["seed"]).items():
                policy.model.backbone.state_dict()[name].copy_(torch.from_numpy(value))


def reference(spec, config, policy, pre, post, stats, rng) -> dict[str, np.ndarray]:
    state = (stats["observation.state"]["mean"].numpy()
             + stats["observation.state"]["std"].numpy() * rng.normal(0.0, 1.5, (N, 6))).astype(np.float32)
    arrays = {"state": state}
    batch = {"observation.state": torch.from_numpy(state)}
    if spec.get("env_dim"):
        env = rng.normal(0.0, 1.0, (N, spec["env_dim"])).astype(np.float32)
        arrays["environment_state"] = env
        batch["observation.environment_state"] = torch.from_numpy(env)
    for name, (h, w) in spec["cameras"].items():
        frames = rng.integers(0, 256, (N, h, w, 3), dtype=np.uint8)
        frames[0], frames[1] = 0, 255
        arrays[f"image.{name}"] = frames
        batch[f"observation.images.{name}"] = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0
    policy.eval()
    with torch.no_grad():
        processed = pre(batch)
        if spec["policy"] == "act":
            arrays["action"] = post(policy.predict_action_chunk(processed)).numpy()
        else:
            actor = policy.actor
            hidden = actor.network(actor.encoder(processed))
            mean = actor.mean_layer(hidden)
            std = torch.clamp(torch.exp(actor.std_layer(hidden)), actor.std_min, actor.std_max)
            arrays["mean"], arrays["log_std"] = mean.numpy(), torch.log(std).numpy()
            arrays["action"] = post(torch.tanh(mean)).numpy()
    return arrays


def make(name: str, spec: dict) -> None:
    rng = np.random.default_rng(spec["seed"])
    torch.manual_seed(spec["seed"])
    config, policy, make_processors = build(spec)
    randomise(policy, spec, rng)
    stats = dataset_stats(spec, rng)
    pre, post = make_processors(config, stats)
    arrays = reference(spec, config, policy, pre, post, stats, rng)
    directory = OUT / name
    shutil.rmtree(directory, ignore_errors=True)
    policy.save_pretrained(directory)
    pre.save_pretrained(directory)
    post.save_pretrained(directory)
    info = {"robot": spec["robot"], "policy": spec["policy"]}
    if spec["policy"] == "act" and spec["cameras"]:  # strip the backbone: regenerated from its seed
        weights = load_file(directory / "model.safetensors")
        kept = {k: v for k, v in weights.items() if not k.startswith("model.backbone.")}
        save_file(kept, directory / "model.safetensors", metadata={"format": "pt"})
        info.update(backbone_seed=spec["seed"], backbone_prefix="model.backbone.")
    (directory / "fixture.json").write_text(json.dumps(info, indent=1) + "\n")
    np.savez_compressed(directory / "reference.npz", **arrays)
    print(f"{name}: {sum(f.stat().st_size for f in directory.iterdir()) / 1e3:.0f} kB")


def old_layout(name: str, source: str) -> None:
    """LeRobot 0.3's layout: no processor files; the statistics inside model.safetensors as
    ``normalize_inputs.buffer_<feature with _>.<stat>`` and ``unnormalize_outputs.buffer_action.<stat>``."""
    src, directory = OUT / source, OUT / name
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir()
    weights = load_file(src / "model.safetensors")
    pre = load_file(next(src.glob("policy_preprocessor_step_*_normalizer_processor.safetensors")))
    for key, value in pre.items():
        feature, stat = key.rsplit(".", 1)
        prefix = "unnormalize_outputs" if feature == "action" else "normalize_inputs"
        weights[f"{prefix}.buffer_{feature.replace('.', '_')}.{stat}"] = value
        if feature == "action":
            weights[f"normalize_targets.buffer_action.{stat}"] = value.clone()
    save_file(weights, directory / "model.safetensors", metadata={"format": "pt"})
    for file in ("config.json", "fixture.json", "reference.npz"):
        shutil.copy(src / file, directory / file)
    print(f"{name}: LeRobot 0.3 layout of {source}")


if __name__ == "__main__":
    for fixture, fixture_spec in FIXTURES.items():
        make(fixture, fixture_spec)
    for fixture, fixture_source in OLD_LAYOUT.items():
        old_layout(fixture, fixture_source)
