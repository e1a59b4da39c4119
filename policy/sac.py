"""SAC + behaviour cloning in the chunked action space (Q-chunking), one function per loss.

Every loss takes plain tensors and modules, so the training loop here and a future
``SACPolicy.forward(batch, model="actor" | "critic" | "temperature")`` call the same code. Names follow the
papers and CleanRL: ``qf`` / ``qf_target`` (critic ensembles, (E, B) values), ``next_q_value`` (the backup
target), ``log_alpha`` (temperature), ``target_entropy`` (default -0.5 * H * A).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .critic import CriticEnsemble, make_target, polyak_update
from .distributions import action_log_prob, sample_squashed

Q_AGGREGATES = ("min", "mean")
BC_LOSSES = ("mse", "nll")
BC_SCHEDULES = ("constant", "linear", "exponential")


@dataclass(frozen=True)
class BCSchedule:
    """Weight of the BC term: from ``start`` at step 0 to ``end`` at ``decay_steps``, then held at ``end``.
    ``exponential`` interpolates geometrically, so it needs both ends > 0."""

    kind: str = "linear"
    start: float = 1.0
    end: float = 0.1
    decay_steps: int = 1000

    def __post_init__(self) -> None:
        if self.kind not in BC_SCHEDULES:
            raise ValueError(f"bc schedule '{self.kind}' is not one of {', '.join(BC_SCHEDULES)}")
        if not (math.isfinite(self.start) and math.isfinite(self.end)):
            raise ValueError(f"bc_start and bc_end must be finite (got {self.start}, {self.end})")
        if self.kind == "exponential" and (self.start <= 0 or self.end <= 0):
            raise ValueError("bc schedule 'exponential' needs bc_start > 0 and bc_end > 0")


def bc_weight(step: int, schedule: BCSchedule) -> float:
    """The BC weight at ``step`` (an update count)."""
    if schedule.kind == "constant":
        return schedule.start
    frac = min(max(step, 0) / max(schedule.decay_steps, 1), 1.0)
    if schedule.kind == "linear":
        return schedule.start + (schedule.end - schedule.start) * frac
    return schedule.start * (schedule.end / schedule.start) ** frac


def aggregate_q(q: torch.Tensor, how: str) -> torch.Tensor:
    """(E, B) ensemble values -> (B,): the pessimistic ``min`` or the ``mean`` over members."""
    if how == "min":
        return q.min(dim=0).values
    if how == "mean":
        return q.mean(dim=0)
    raise ValueError(f"q aggregate '{how}' is not one of {', '.join(Q_AGGREGATES)}")


def chunked_backup_target(rewards: torch.Tensor, bootstrap_mask: torch.Tensor, next_value: torch.Tensor,
                          gamma: float) -> torch.Tensor:
    """sum_{i<H} gamma^i r_{t+i} + gamma^H * mask * V(s_{t+H}).

    ``rewards`` (B, H) are zero after a terminal inside the chunk; ``bootstrap_mask`` (B,) is 0 when the
    chunk reaches a terminal (nothing to bootstrap from) and 1 otherwise (time-limit ends still bootstrap).
    """
    horizon = rewards.shape[-1]
    discounts = gamma ** torch.arange(horizon, dtype=rewards.dtype, device=rewards.device)
    return (rewards * discounts).sum(-1) + gamma ** horizon * bootstrap_mask * next_value


@torch.no_grad()
def soft_next_value(actor, qf_target: CriticEnsemble, next_obs: torch.Tensor, alpha: torch.Tensor | float,
                    aggregate: str = "min", generator: torch.Generator | None = None,
                    next_images: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """V(s') = agg_e Q_target_e(s', a') - alpha * log pi(a' | s'), a' ~ pi(s'): shape (B,)."""
    next_action, next_log_prob = actor.sample(next_obs, next_images, generator)
    return aggregate_q(qf_target(next_obs, next_action, next_images), aggregate) - alpha * next_log_prob


def critic_loss(qf: CriticEnsemble, obs: torch.Tensor, actions: torch.Tensor, next_q_value: torch.Tensor,
                images: dict[str, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum over ensemble members of the MSE to the (detached) backup target; also returns Q (E, B)."""
    q = qf(obs, actions, images)
    loss = ((q - next_q_value.detach().unsqueeze(0)) ** 2).mean(dim=1).sum()
    return loss, q.detach()


def actor_loss(actor, qf: CriticEnsemble | None, obs: torch.Tensor, alpha: torch.Tensor | float, *,
               images: dict[str, torch.Tensor] | None = None, demo_actions: torch.Tensor | None = None, demo_mask: torch.Tensor | None = None,
               bc_weight: float = 0.0, bc_loss: str = "mse", aggregate: str = "min", bc_relative_to_q: bool = True,
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """alpha * log pi(a|s) - Q(s, a) with a ~ pi(s), plus ``bc_weight`` times the BC term on demo rows.

    ``bc_relative_to_q`` multiplies the BC weight by the batch's mean |Q| (detached, as in TD3+BC), so one
    schedule holds whatever the scale of the rewards and the Q values grow to.

    BC: ``mse`` of the deterministic chunk tanh(mean) to the demo chunk, or ``nll`` = -log pi(demo chunk)
    divided by H * A (per-dimension, so one weight fits both). ``qf=None`` gives pure BC (no SAC term).
    Returns (total, parts) with parts loss_actor, loss_sac, loss_bc, bc_weight, entropy and log_prob (B,).
    """
    mean, log_std = actor(obs, images)
    action, log_prob = sample_squashed(mean, log_std, generator)
    zero = obs.new_zeros(())
    loss_sac, q_scale = zero, 1.0
    if qf is not None:
        q = aggregate_q(qf(obs, action, images), aggregate)
        loss_sac = (alpha * log_prob - q).mean()
        if bc_relative_to_q:
            q_scale = q.detach().abs().mean().clamp_min(1e-3)
    loss_bc = zero
    if demo_actions is not None:
        mask = torch.ones(obs.shape[0], dtype=torch.bool, device=obs.device) if demo_mask is None else demo_mask
        if mask.any():
            if bc_loss == "mse":
                per_sample = ((torch.tanh(mean[mask]) - demo_actions[mask]) ** 2).flatten(1).mean(-1)
            elif bc_loss == "nll":
                per_sample = -action_log_prob(demo_actions[mask], mean[mask], log_std[mask]) / mean[0].numel()
            else:
                raise ValueError(f"bc loss '{bc_loss}' is not one of {', '.join(BC_LOSSES)}")
            loss_bc = per_sample.mean()
    total = loss_sac + bc_weight * q_scale * loss_bc
    parts = {"loss_actor": total.detach(), "loss_sac": loss_sac.detach(), "loss_bc": loss_bc.detach(),
             "bc_weight": torch.tensor(float(bc_weight)), "entropy": -log_prob.detach().mean(),
             "log_prob": log_prob.detach()}
    return total, parts


def temperature_loss(log_alpha: torch.Tensor, log_prob: torch.Tensor, target_entropy: float) -> torch.Tensor:
    """-alpha * (log pi + target_entropy): alpha grows when the entropy -log pi falls below the target."""
    return -(log_alpha.exp() * (log_prob.detach() + target_entropy)).mean()


def default_target_entropy(chunk_size: int, action_dim: int) -> float:
    return -0.5 * chunk_size * action_dim


class SACLearner:
    """The actor, critic ensemble, target ensemble, temperature and their optimisers; ``update`` is one step."""

    def __init__(self, actor, *, n_critics: int = 2, critic_hidden=(256, 256), gamma: float = 0.99,
                 tau: float = 0.005, actor_lr: float = 3e-4, critic_lr: float = 3e-4, alpha_lr: float = 3e-4,
                 init_temperature: float = 0.1, target_entropy: float | None = None, q_aggregate: str = "min",
                 bc_loss: str = "mse", bc_schedule: BCSchedule = BCSchedule(), bc_relative_to_q: bool = True,
                 bc_only: bool = False, seed: int = 0):
        config = actor.config
        self.actor, self.bc_only = actor, bc_only
        self.qf = CriticEnsemble(config, n_critics, tuple(critic_hidden))
        self.qf_target = make_target(self.qf)
        self.log_alpha = torch.tensor(math.log(init_temperature), requires_grad=True)
        self.target_entropy = (default_target_entropy(config.chunk_size, config.action_dim)
                               if target_entropy is None else target_entropy)
        self.gamma, self.tau, self.q_aggregate = gamma, tau, q_aggregate
        self.bc_loss, self.bc_schedule, self.bc_relative_to_q = bc_loss, bc_schedule, bc_relative_to_q
        self.actor_optimizer = torch.optim.Adam(actor.parameters(), lr=actor_lr)
        self.q_optimizer = torch.optim.Adam(self.qf.parameters(), lr=critic_lr)
        self.alpha_optimizer = torch.optim.Adam([self.log_alpha], lr=alpha_lr)
        self.generator = torch.Generator().manual_seed(seed)

    @property
    def alpha(self) -> torch.Tensor:
        return self.log_alpha.detach().exp()

    def update(self, batch, step: int, actor_sac: bool = True) -> dict[str, float]:
        """One gradient step of critic, actor and temperature on ``batch`` (a replay.Batch); returns metrics.

        ``actor_sac=False`` (the BC warm start) trains the actor by BC alone while the critic already learns.
        """
        actor_sac = actor_sac and not self.bc_only
        alpha, weight = self.alpha, bc_weight(step, self.bc_schedule)
        metrics = {"losses/critic": float("nan"), "charts/q": float("nan")}
        if not self.bc_only:
            next_value = soft_next_value(self.actor, self.qf_target, batch.next_obs, alpha, self.q_aggregate,
                                         self.generator, batch.next_images)
            next_q_value = chunked_backup_target(batch.rewards, batch.mask, next_value, self.gamma)
            qf_loss, q = critic_loss(self.qf, batch.obs, batch.actions, next_q_value, batch.images)
            self.q_optimizer.zero_grad(set_to_none=True)
            qf_loss.backward()
            self.q_optimizer.step()
            metrics.update({"losses/critic": qf_loss.item(), "charts/q": q.mean().item()})

        self.qf.requires_grad_(False)  # the actor's gradient flows through Q to the action, not into Q
        loss, parts = actor_loss(self.actor, self.qf if actor_sac else None, batch.obs, alpha, images=batch.images,
                                 demo_actions=batch.actions, demo_mask=batch.is_demo, bc_weight=weight,
                                 bc_loss=self.bc_loss, aggregate=self.q_aggregate,
                                 bc_relative_to_q=self.bc_relative_to_q, generator=self.generator)
        self.qf.requires_grad_(True)
        self.actor_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.actor_optimizer.step()

        if actor_sac:
            alpha_loss = temperature_loss(self.log_alpha, parts["log_prob"], self.target_entropy)
            self.alpha_optimizer.zero_grad(set_to_none=True)
            alpha_loss.backward()
            self.alpha_optimizer.step()
        if not self.bc_only:
            polyak_update(self.qf, self.qf_target, self.tau)
        metrics.update({"losses/actor": parts["loss_actor"].item(), "losses/sac": parts["loss_sac"].item(),
                        "losses/bc": parts["loss_bc"].item(), "charts/bc_weight": weight,
                        "charts/alpha": self.alpha.item(), "charts/entropy": parts["entropy"].item()})
        return metrics
