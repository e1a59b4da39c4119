"""LeRobot's ACT and SAC actors at inference, in plain PyTorch, with LeRobot's parameter names so that a
LeRobot ``model.safetensors`` loads one to one (``load_state_dict(strict=True)`` on the kept keys).

- ``LeRobotACT``: ``model.*`` of LeRobot's ``ACTPolicy``: the ResNet-18 backbone with frozen batch norm
  (actsac's, torchvision's names), the transformer encoder and decoder as LeRobot writes them (positions added
  to the queries and keys in every layer, pre- or post-norm), a zero latent (LeRobot's inference: the VAE
  encoder is for training only) and the action head. Deterministic: there is no log-std.
- ``LeRobotSAC``: ``actor.*`` of LeRobot's ``SACPolicy``: the observation encoder (LeRobot's default image
  encoder, spatial learned embeddings, state / environment encoders), the MLP, the mean and std heads.

Both take what actsac's exported graphs take: the observation vector in robot units ([state, environment
state]) and one uint8 (B, H, W, 3) RGB frame per camera; LeRobot's normalisation (its processors' statistics)
and the camera layout change are inside the module.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from actsac.policy.vision import ResNet18Backbone, sinusoidal_position_2d

ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


class Affine(nn.Module):
    """One feature's LeRobot normalisation: (x - shift) / scale, and back x * scale + shift (LeRobot's own
    order of operations). ``channels``: per image channel, on (B, 3, H, W)."""

    def __init__(self, shift: np.ndarray, scale: np.ndarray, channels: bool = False):
        super().__init__()
        view = (1, -1, 1, 1) if channels else (1, -1)
        self.register_buffer("shift", torch.tensor(shift, dtype=torch.float32).view(view))
        self.register_buffer("scale", torch.tensor(scale, dtype=torch.float32).view(view))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.shift) / self.scale

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y * self.scale + self.shift


class Normalisation(nn.Module):
    """The observation vector's parts ([state, environment state], each normalised with its own statistics),
    one normaliser per camera (uint8 HWC -> float [0, 1] CHW -> normalised, as LeRobot's processor after its
    camera conversion) and the action's unnormalisation."""

    def __init__(self, parts: list[tuple[str, int, Affine]], cameras: dict[str, Affine], action: Affine):
        super().__init__()
        self.part_names, self.part_sizes = [p[0] for p in parts], [p[1] for p in parts]
        self.parts = nn.ModuleList(p[2] for p in parts)
        self.cameras = nn.ModuleDict(cameras)
        self.action = action

    def observation(self, obs: torch.Tensor) -> dict[str, torch.Tensor]:
        chunks = torch.split(obs, self.part_sizes, dim=-1)
        return {name: norm(x) for name, norm, x in zip(self.part_names, self.parts, chunks)}

    def image(self, name: str, frame: torch.Tensor) -> torch.Tensor:
        return self.cameras[name](frame.permute(0, 3, 1, 2).float() / 255.0)


class LeRobotActor(nn.Module):
    """What actsac's exporter needs of an actor: ``config`` (a PolicyConfig describing it), ``forward(obs,
    images) -> (mean, log_std or None)``, ``robot_action(mean)`` and ``num_parameters``."""

    stochastic = True

    def __init__(self, config, normalisation: Normalisation):
        super().__init__()
        self.config = config
        self.normalisation = normalisation

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


# --- ACT -------------------------------------------------------------------------------------------------


class Layer(nn.Module):
    """What LeRobot's encoder and decoder layers share: the feed-forward block and the residual around each
    sub-layer, pre-norm (x + f(norm(x))) or post-norm (norm(x + f(x)))."""

    def __init__(self, d: int, ffn: int, activation: str, pre_norm: bool):
        super().__init__()
        self.linear1, self.linear2 = nn.Linear(d, ffn), nn.Linear(ffn, d)
        self.activation, self.pre_norm = ACTIVATIONS[activation], pre_norm

    def residual(self, x: torch.Tensor, norm: nn.LayerNorm, sublayer) -> torch.Tensor:
        return x + sublayer(norm(x)) if self.pre_norm else norm(x + sublayer(x))

    def feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(self.activation(self.linear1(x)))


class EncoderLayer(Layer):
    def __init__(self, d: int, heads: int, ffn: int, activation: str, pre_norm: bool):
        super().__init__(d, ffn, activation, pre_norm)
        self.self_attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        x = self.residual(x, self.norm1, lambda y: self.self_attn(y + pos, y + pos, y, need_weights=False)[0])
        return self.residual(x, self.norm2, self.feed_forward)


class DecoderLayer(Layer):
    def __init__(self, d: int, heads: int, ffn: int, activation: str, pre_norm: bool):
        super().__init__(d, ffn, activation, pre_norm)
        self.self_attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.multihead_attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)

    def forward(self, x, memory, query_pos, memory_pos):
        x = self.residual(x, self.norm1, lambda y: self.self_attn(y + query_pos, y + query_pos, y,
                                                                  need_weights=False)[0])
        x = self.residual(x, self.norm2, lambda y: self.multihead_attn(y + query_pos, memory + memory_pos, memory,
                                                                       need_weights=False)[0])
        return self.residual(x, self.norm3, self.feed_forward)


class Stack(nn.Module):
    """LeRobot's ACTEncoder / ACTDecoder: ``layers`` then ``norm`` (the encoder's only with pre-norm)."""

    def __init__(self, layers: list[nn.Module], d: int, final_norm: bool):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.norm = nn.LayerNorm(d) if final_norm else nn.Identity()


class ACTModel(nn.Module):
    """LeRobot's ``ACT`` module without the VAE encoder."""

    def __init__(self, lr: dict, state_dim: int, env_dim: int, cameras: dict[str, tuple[int, int]],
                 action_dim: int):
        super().__init__()
        d, heads, ffn = lr["dim_model"], lr["n_heads"], lr["dim_feedforward"]
        shape = (lr["feedforward_activation"], lr["pre_norm"])
        self.chunk_size = lr["chunk_size"]
        self.encoder = Stack([EncoderLayer(d, heads, ffn, *shape) for _ in range(lr["n_encoder_layers"])], d,
                             final_norm=lr["pre_norm"])
        self.decoder = Stack([DecoderLayer(d, heads, ffn, *shape) for _ in range(lr["n_decoder_layers"])], d,
                             final_norm=True)
        self.encoder_latent_input_proj = nn.Linear(lr["latent_dim"], d)
        self.encoder_robot_state_input_proj = nn.Linear(state_dim, d) if state_dim else None
        self.encoder_env_state_input_proj = nn.Linear(env_dim, d) if env_dim else None
        self.encoder_1d_feature_pos_embed = nn.Embedding(1 + bool(state_dim) + bool(env_dim), d)
        self.decoder_pos_embed = nn.Embedding(self.chunk_size, d)
        self.action_head = nn.Linear(d, action_dim)
        self.camera_names = list(cameras)
        if cameras:
            self.backbone = ResNet18Backbone()
            self.encoder_img_feat_input_proj = nn.Conv2d(ResNet18Backbone.out_channels, d, 1)
            for name, (h, w) in cameras.items():  # LeRobot computes these per call; they depend on the size only
                position = sinusoidal_position_2d(*ResNet18Backbone.feature_size(h, w), d).float()
                self.register_buffer(f"position_{name}", position, persistent=False)
        self.register_buffer("decoder_in", torch.zeros(1, self.chunk_size, d), persistent=False)

    def forward(self, parts: dict[str, torch.Tensor], images: dict[str, torch.Tensor]) -> torch.Tensor:
        batch = parts["state"].shape[0]  # actsac needs the state (LeRobot's ACT may do without)
        bias = self.encoder_latent_input_proj.bias  # the zero latent's projection
        tokens = [bias.expand(batch, 1, -1)]
        if self.encoder_robot_state_input_proj is not None:
            tokens.append(self.encoder_robot_state_input_proj(parts["state"]).unsqueeze(1))
        if self.encoder_env_state_input_proj is not None:
            tokens.append(self.encoder_env_state_input_proj(parts["environment_state"]).unsqueeze(1))
        positions = [self.encoder_1d_feature_pos_embed.weight]
        for name in self.camera_names:
            features = self.encoder_img_feat_input_proj(self.backbone(images[name]))
            tokens.append(features.flatten(2).transpose(1, 2))  # (B, h * w, d), row-major cells
            positions.append(getattr(self, f"position_{name}"))
        x, pos = torch.cat(tokens, dim=1), torch.cat(positions, dim=0).unsqueeze(0)
        for layer in self.encoder.layers:
            x = layer(x, pos)
        memory = self.encoder.norm(x)
        y, query_pos = self.decoder_in.expand(batch, -1, -1), self.decoder_pos_embed.weight.unsqueeze(0)
        for layer in self.decoder.layers:
            y = layer(y, memory, query_pos, pos)
        return self.action_head(self.decoder.norm(y))  # (B, chunk, A), normalised actions


class LeRobotACT(LeRobotActor):
    """LeRobot's ACT at inference: (obs, images) -> (normalised action chunk, None)."""

    stochastic = False

    def __init__(self, config, normalisation: Normalisation, model: ACTModel):
        super().__init__(config, normalisation)
        self.model = model

    def forward(self, obs: torch.Tensor, images=None):
        parts = self.normalisation.observation(obs)
        frames = {name: self.normalisation.image(name, images[name]) for name in self.model.camera_names}
        return self.model(parts, frames), None

    def robot_action(self, mean: torch.Tensor) -> torch.Tensor:
        return self.normalisation.action.inverse(mean)


# --- SAC -------------------------------------------------------------------------------------------------


class SpatialLearnedEmbeddings(nn.Module):
    def __init__(self, channels: int, height: int, width: int, features: int):
        super().__init__()
        self.kernel = nn.Parameter(torch.zeros(channels, height, width, features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, C * F)
        return torch.einsum("bchw,chwf->bcf", x, self.kernel).flatten(1)


def default_image_encoder(channels: int) -> nn.Sequential:
    """LeRobot SAC's DefaultImageEncoder layers (``image_enc_layers``)."""
    layers = []
    for index, (kernel, stride) in enumerate(((7, 2), (5, 2), (3, 2), (3, 2))):
        layers += [nn.Conv2d(3 if index == 0 else channels, channels, kernel, stride), nn.ReLU()]
    return nn.Sequential(*layers)


def image_encoder_output(encoder: nn.Module, height: int, width: int) -> tuple[int, int, int]:
    with torch.no_grad():
        return tuple(encoder(torch.zeros(1, 3, height, width)).shape[1:])


class ImageEncoderHolder(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.image_enc_layers = default_image_encoder(channels)


class SACEncoder(nn.Module):
    """LeRobot's SACObservationEncoder: [cameras..., environment state, state] embeddings, concatenated."""

    def __init__(self, lr: dict, state_dim: int, env_dim: int, cameras: dict[str, tuple[int, int]]):
        super().__init__()
        latent = lr["latent_dim"]
        self.camera_names = list(cameras)
        if cameras:
            self.image_encoder = ImageEncoderHolder(lr["image_encoder_hidden_dim"])
            pooling = lr["image_embedding_pooling_dim"]
            self.spatial_embeddings, self.post_encoders = nn.ModuleDict(), nn.ModuleDict()
            for name, (h, w) in cameras.items():
                c, fh, fw = image_encoder_output(self.image_encoder.image_enc_layers, h, w)
                key = f"observation_images_{name}"
                self.spatial_embeddings[key] = SpatialLearnedEmbeddings(c, fh, fw, pooling)
                self.post_encoders[key] = nn.Sequential(nn.Dropout(0.1), nn.Linear(c * pooling, latent),
                                                        nn.LayerNorm(latent), nn.Tanh())
        block = lambda dim: nn.Sequential(nn.Linear(dim, latent), nn.LayerNorm(latent), nn.Tanh())  # noqa: E731
        self.env_encoder = block(env_dim) if env_dim else None
        self.state_encoder = block(state_dim) if state_dim else None

    def forward(self, parts: dict[str, torch.Tensor], images: dict[str, torch.Tensor]) -> torch.Tensor:
        out = []
        for name in self.camera_names:
            key = f"observation_images_{name}"
            features = self.image_encoder.image_enc_layers(images[name])
            out.append(self.post_encoders[key](self.spatial_embeddings[key](features)))
        if self.env_encoder is not None:
            out.append(self.env_encoder(parts["environment_state"]))
        if self.state_encoder is not None:
            out.append(self.state_encoder(parts["state"]))
        return torch.cat(out, dim=-1)


def sac_mlp(in_dim: int, hidden: list[int], activate_final: bool) -> nn.Sequential:
    """LeRobot SAC's MLP: Linear, then LayerNorm + SiLU except after the last layer unless activate_final."""
    layers: list[nn.Module] = []
    for index, width in enumerate(hidden):
        layers.append(nn.Linear(in_dim, width))
        if index < len(hidden) - 1 or activate_final:
            layers += [nn.LayerNorm(width), nn.SiLU()]
        in_dim = width
    return nn.Sequential(*layers)


class SACActorModel(nn.Module):
    """LeRobot's SAC ``Policy`` (the actor): encoder, ``network.net``, ``mean_layer``, ``std_layer``."""

    def __init__(self, lr: dict, state_dim: int, env_dim: int, cameras: dict[str, tuple[int, int]],
                 action_dim: int):
        super().__init__()
        self.encoder = SACEncoder(lr, state_dim, env_dim, cameras)
        network = lr["actor_network_kwargs"]
        in_dim = lr["latent_dim"] * (len(cameras) + bool(env_dim) + bool(state_dim))
        self.network = nn.Module()
        self.network.net = sac_mlp(in_dim, network["hidden_dims"], network.get("activate_final", False))
        self.mean_layer = nn.Linear(network["hidden_dims"][-1], action_dim)
        self.std_layer = nn.Linear(network["hidden_dims"][-1], action_dim)
        policy = lr.get("policy_kwargs", {})
        self.log_std_min = math.log(policy.get("std_min", 1e-5))
        self.log_std_max = math.log(policy.get("std_max", 10.0))


class LeRobotSAC(LeRobotActor):
    """LeRobot's SAC actor: (obs, images) -> (mean, log std) of the Gaussian before tanh, for one step
    (chunk 1). LeRobot clamps the std into [std_min, std_max], i.e. the log-std into their logs."""

    def __init__(self, config, normalisation: Normalisation, actor: SACActorModel):
        super().__init__(config, normalisation)
        self.actor = actor

    def forward(self, obs: torch.Tensor, images=None):
        parts = self.normalisation.observation(obs)
        frames = {name: self.normalisation.image(name, images[name]) for name in self.actor.encoder.camera_names}
        hidden = self.actor.network.net(self.actor.encoder(parts, frames))
        mean = self.actor.mean_layer(hidden)
        log_std = self.actor.std_layer(hidden).clamp(self.actor.log_std_min, self.actor.log_std_max)
        return mean.unsqueeze(1), log_std.unsqueeze(1)

    def robot_action(self, mean: torch.Tensor) -> torch.Tensor:
        return self.normalisation.action.inverse(torch.tanh(mean))
