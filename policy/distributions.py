"""The tanh-squashed Gaussian over an action chunk.

u ~ N(mean, exp(log_std)), a = tanh(u). The log-probability of a chunk sums over all H x A dims:
log pi(a) = sum[log N(u; mean, std) - log(1 - tanh(u)^2)], with the stable form of the correction
log(1 - tanh(u)^2) = 2 * (log 2 - u - softplus(-2u)) (REFERENCE.md section 1).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
# atanh(1 - 1e-6) ~ 7.25: actions of exactly +-1 (an expert at a joint limit) stay finite.
_ATANH_CLIP = 1.0 - 1e-6


def log_tanh_jacobian(u: torch.Tensor) -> torch.Tensor:
    """log(1 - tanh(u)^2), element-wise, without cancellation for large |u|."""
    return 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))


def gaussian_log_prob(u: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    return -0.5 * ((u - mean) * torch.exp(-log_std)) ** 2 - log_std - _LOG_SQRT_2PI


def squashed_log_prob(u: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """log pi(tanh(u)) for pre-tanh samples u of shape (B, H, A): returns (B,), summed over the chunk."""
    per_dim = gaussian_log_prob(u, mean, log_std) - log_tanh_jacobian(u)
    return per_dim.flatten(1).sum(-1)


def sample_squashed(mean: torch.Tensor, log_std: torch.Tensor,
                    generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Reparameterised sample: (a = tanh(u) in [-1, 1], log pi(a)) with u = mean + std * eps."""
    eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
    u = mean + torch.exp(log_std) * eps
    return torch.tanh(u), squashed_log_prob(u, mean, log_std)


def action_log_prob(action: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """log pi(action) for actions already in [-1, 1] (e.g. a demonstration chunk), clipped off +-1."""
    u = torch.atanh(action.clamp(-_ATANH_CLIP, _ATANH_CLIP))
    return squashed_log_prob(u, mean, log_std)
