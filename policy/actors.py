"""ACT-SAC actors: one observation (or a window of T) -> a chunk of H actions.

Every actor has the same interface, ``forward(obs, images=None) -> (mean, log_std)``, both of shape (B, H, A),
pre-tanh and in the normalised action space. Observations enter in robot units and images as the cameras
deliver them (``{camera: uint8 (B, H, W, 3) RGB}``, the current frame only): normalisation is inside the module,
so an exported graph takes raw readings. Each action group (arm / torso / hand ...) has its own mean and
log-std head; their outputs are concatenated in group order.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import NormStats, PolicyConfig
from .distributions import sample_squashed
from .vision import ImageTokens, PooledImages

Images = dict[str, torch.Tensor] | None


class Normalizer(nn.Module):
    """Affine map into the normalised space (y = x * scale + offset) and back; identity without stats."""

    def __init__(self, stats: NormStats | None, dim: int):
        super().__init__()
        scale, offset = torch.ones(dim), torch.zeros(dim)
        if stats is not None:
            a, b = torch.tensor(stats.a), torch.tensor(stats.b)
            if stats.mode == "min_max":
                scale = 2.0 / (b - a)
                offset = -1.0 - a * scale
            else:
                scale = 1.0 / b
                offset = -a / b
        self.register_buffer("scale", scale)
        self.register_buffer("offset", offset)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.offset

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return (y - self.offset) / self.scale


class GroupHeads(nn.Module):
    """One linear head per action group. ``per_step``: features are (B, H, F), one token per chunk step;
    otherwise features are (B, F) and each head emits the whole chunk, H x dim, at once (the MLP actor)."""

    def __init__(self, in_features: int, group_dims: list[int], chunk_size: int, per_step: bool):
        super().__init__()
        self.chunk_size, self.per_step = chunk_size, per_step
        out = (lambda d: d) if per_step else (lambda d: d * chunk_size)
        self.heads = nn.ModuleList(nn.Linear(in_features, out(d)) for d in group_dims)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if self.per_step:
            return torch.cat([head(features) for head in self.heads], dim=-1)
        batch = features.shape[0]
        return torch.cat([head(features).view(batch, self.chunk_size, -1) for head in self.heads], dim=-1)


class Actor(nn.Module):
    """Shared parts: observation / action normalisation, the group heads, the squashed Gaussian."""

    def __init__(self, config: PolicyConfig, head_features: int, per_step_heads: bool):
        super().__init__()
        self.config = config
        self.obs_norm = Normalizer(config.obs_stats, config.state_dim)
        self.action_norm = Normalizer(config.action_stats, config.action_dim)
        dims = [g.dim for g in config.action_groups]
        self.mean_heads = GroupHeads(head_features, dims, config.chunk_size, per_step_heads)
        self.log_std_heads = GroupHeads(head_features, dims, config.chunk_size, per_step_heads)

    def features(self, obs_normalised: torch.Tensor, images: Images) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, obs: torch.Tensor, images: Images = None) -> tuple[torch.Tensor, torch.Tensor]:
        check_images(self.config, images)
        features = self.features(self.obs_norm(obs), images)
        mean = self.mean_heads(features)
        # Smoothly bounded log-std (CleanRL): tanh into [log_std_min, log_std_max], no dead gradient at a clamp.
        lo, hi = self.config.log_std_min, self.config.log_std_max
        log_std = lo + 0.5 * (hi - lo) * (torch.tanh(self.log_std_heads(features)) + 1.0)
        return mean, log_std

    def sample(self, obs: torch.Tensor, images: Images = None, generator: torch.Generator | None = None):
        """(action chunk in [-1, 1] of shape (B, H, A), log pi summed over the chunk of shape (B,))."""
        mean, log_std = self(obs, images)
        return sample_squashed(mean, log_std, generator)

    def deterministic(self, obs: torch.Tensor, images: Images = None) -> torch.Tensor:
        """tanh(mean): the median of the squashed distribution, in [-1, 1]."""
        return torch.tanh(self(obs, images)[0])

    def to_robot_units(self, action: torch.Tensor) -> torch.Tensor:
        """Map actions from the [-1, 1] space to robot units through the action statistics."""
        return self.action_norm.inverse(action)

    def robot_action(self, mean: torch.Tensor) -> torch.Tensor:
        """The deterministic action in robot units from the pre-tanh mean: what the graph's ``action`` is."""
        return self.to_robot_units(torch.tanh(mean))

    def from_robot_units(self, action: torch.Tensor) -> torch.Tensor:
        return self.action_norm(action)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


class ACTSACActor(Actor):
    """ACT: the observation becomes one memory token, followed by every camera's image tokens; the memory goes
    through the transformer encoder (which matters once it holds many tokens), and H learned queries are
    decoded from it in parallel, so training and inference run the same graph (no autoregressive decoding)."""

    def __init__(self, config: PolicyConfig):
        super().__init__(config, head_features=config.dim_model, per_step_heads=True)
        d = config.dim_model
        self.obs_proj = nn.Linear(config.state_dim, d)
        if config.n_encoder_layers > 0:
            layer = nn.TransformerEncoderLayer(d, config.n_heads, config.dim_feedforward, config.dropout,
                                               batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, config.n_encoder_layers, enable_nested_tensor=False)
        else:
            self.encoder = nn.Identity()
        self.queries = nn.Parameter(torch.randn(config.chunk_size, d) * 0.02)
        layer = nn.TransformerDecoderLayer(d, config.n_heads, config.dim_feedforward, config.dropout,
                                           batch_first=True)
        self.decoder = nn.TransformerDecoder(layer, config.n_decoder_layers)
        self.images = ImageTokens(config) if config.cameras else None

    def state_tokens(self, obs_normalised: torch.Tensor) -> torch.Tensor:
        return self.obs_proj(obs_normalised).unsqueeze(1)  # (B, 1, d)

    def memory(self, obs_normalised: torch.Tensor, images: Images = None) -> torch.Tensor:
        """The encoder's output over [state token(s), image tokens]: (B, n_tokens, d)."""
        tokens = self.state_tokens(obs_normalised)
        if self.images is not None:
            tokens = torch.cat([tokens, self.images(images)], dim=1)
        return self.encoder(tokens)

    def features(self, obs_normalised: torch.Tensor, images: Images = None) -> torch.Tensor:
        memory = self.memory(obs_normalised, images)
        queries = self.queries.unsqueeze(0).expand(memory.shape[0], -1, -1)
        return self.decoder(queries, memory)  # (B, H, d)


class SequenceACTSACActor(ACTSACActor):
    """ACT over an observation window (B, T, state_dim), oldest first: T memory tokens with learned
    positions, passed through the transformer encoder before the decoder attends to them."""

    def __init__(self, config: PolicyConfig):
        super().__init__(config)
        self.positions = nn.Parameter(torch.randn(config.history, config.dim_model) * 0.02)

    def state_tokens(self, obs_normalised: torch.Tensor) -> torch.Tensor:
        return self.obs_proj(obs_normalised) + self.positions  # (B, T, d)


class MLPActor(Actor):
    """The SAC baseline: an MLP over the (flattened) observation and, with cameras, each camera's pooled image
    embedding; each group head emits the whole chunk."""

    def __init__(self, config: PolicyConfig):
        hidden = config.mlp_hidden
        super().__init__(config, head_features=hidden[-1], per_step_heads=False)
        in_dim = config.state_dim * (config.history if config.uses_history else 1)
        self.images = None
        if config.cameras:
            self.images = PooledImages(config.cameras, config.image_encoder, config.image_embed_dim)
            in_dim += self.images.out_dim
        layers: list[nn.Module] = []
        for width in hidden:
            layers += [nn.Linear(in_dim, width), nn.ReLU()]
            in_dim = width
        self.trunk = nn.Sequential(*layers)

    def features(self, obs_normalised: torch.Tensor, images: Images = None) -> torch.Tensor:
        x = obs_normalised.flatten(1)
        if self.images is not None:
            x = torch.cat([x, self.images(images)], dim=-1)
        return self.trunk(x)


def build_actor(config: PolicyConfig) -> Actor:
    """The actor class follows the config: ``actor='mlp'`` -> MLPActor; ``act`` with history T > 1 ->
    SequenceACTSACActor; otherwise ACTSACActor."""
    if config.actor == "mlp":
        return MLPActor(config)
    return SequenceACTSACActor(config) if config.uses_history else ACTSACActor(config)


def check_images(config: PolicyConfig, images: Images) -> None:
    """The images an actor (or critic) of ``config`` needs: one uint8 (B, H, W, 3) per camera, by name."""
    if not config.cameras:
        if images:
            raise ValueError(f"this model sees no cameras, but images were given for {sorted(images)}")
        return
    if images is None:
        raise ValueError(f"this model sees cameras {config.camera_names}: pass their images")
    for camera in config.cameras:
        image = images.get(camera.name)
        if image is None:
            raise ValueError(f"camera '{camera.name}': no image given (got {sorted(images)})")
        expected = (camera.height, camera.width, 3)
        if image.dtype != torch.uint8 or tuple(image.shape[1:]) != expected:
            raise ValueError(f"camera '{camera.name}': image of {image.dtype} {tuple(image.shape)}, expected "
                             f"uint8 (B, {camera.height}, {camera.width}, 3)")


def observation_shape(config: PolicyConfig) -> tuple[int, ...]:
    """Shape of one observation without the batch dim: (state_dim,) or (T, state_dim) with history."""
    return (config.history, config.state_dim) if config.uses_history else (config.state_dim,)
