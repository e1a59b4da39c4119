"""The Q-chunking critic: an ensemble of MLPs Q(s, a_{t:t+H}) over the flattened action chunk.

All members run as one batched matmul per layer (weights of shape (E, in, out)), so an ensemble of 2 or 10
costs about one forward pass. Each hidden layer is Linear -> LayerNorm -> ReLU (the Q-chunking / RLPD critic).
Observations enter in robot units and are normalised with the actor's stats; actions are already in [-1, 1].

With cameras the critic has its own image encoder (a small CNN with a learned spatial pooling, one embedding
per camera, shared by the ensemble members), not the actor's: the actor's encoder is what the robot runs, it
must train under BC alone (no critic), and the critic's TD gradients, noisy while Q is young, stay out of it;
the actor may also be a ResNet-18 token encoder, while the critic needs one vector and a cheap forward pass.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from .actors import Normalizer, check_images
from .config import PolicyConfig
from .vision import PooledImages

CRITIC_IMAGE_ENCODER = "small_cnn"


class EnsembleLinear(nn.Module):
    """E independent linear layers applied to the same or to per-member inputs: (E, B, in) -> (E, B, out)."""

    def __init__(self, n_members: int, in_features: int, out_features: int):
        super().__init__()
        bound = 1.0 / math.sqrt(in_features)  # nn.Linear's default init, per member
        self.weight = nn.Parameter(torch.empty(n_members, in_features, out_features).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n_members, 1, out_features).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class CriticEnsemble(nn.Module):
    """``forward(obs, action_chunk) -> (E, B)``: one Q value per member and sample."""

    def __init__(self, config: PolicyConfig, n_critics: int = 2, hidden: tuple[int, ...] = (256, 256)):
        super().__init__()
        self.n_critics, self.config = n_critics, config
        self.obs_norm = Normalizer(config.obs_stats, config.state_dim)
        obs_dim = config.state_dim * (config.history if config.uses_history else 1)
        self.images = None
        if config.cameras:
            self.images = PooledImages(config.cameras, CRITIC_IMAGE_ENCODER, config.image_embed_dim)
            obs_dim += self.images.out_dim
        in_dim = obs_dim + config.chunk_size * config.action_dim
        self.layers = nn.ModuleList()
        self.norm_scale = nn.ParameterList()
        self.norm_shift = nn.ParameterList()
        for width in hidden:
            self.layers.append(EnsembleLinear(n_critics, in_dim, width))
            self.norm_scale.append(nn.Parameter(torch.ones(n_critics, 1, width)))
            self.norm_shift.append(nn.Parameter(torch.zeros(n_critics, 1, width)))
            in_dim = width
        self.out = EnsembleLinear(n_critics, in_dim, 1)

    def forward(self, obs: torch.Tensor, action_chunk: torch.Tensor,
                images: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        check_images(self.config, images)
        parts = [self.obs_norm(obs).flatten(1), action_chunk.flatten(1)]
        if self.images is not None:
            parts.insert(1, self.images(images))
        x = torch.cat(parts, dim=-1)
        x = x.unsqueeze(0).expand(self.n_critics, -1, -1)
        for layer, scale, shift in zip(self.layers, self.norm_scale, self.norm_shift):
            h = layer(x)
            x = F.relu(F.layer_norm(h, h.shape[-1:]) * scale + shift)
        return self.out(x).squeeze(-1)


def make_target(qf: CriticEnsemble) -> CriticEnsemble:
    """A frozen copy for the backup target (updated only by ``polyak_update``)."""
    qf_target = copy.deepcopy(qf)
    qf_target.requires_grad_(False)
    return qf_target


@torch.no_grad()
def polyak_update(qf: nn.Module, qf_target: nn.Module, tau: float) -> None:
    """theta_target <- (1 - tau) theta_target + tau theta."""
    for p_target, p in zip(qf_target.parameters(), qf.parameters()):
        p_target.lerp_(p, tau)
