"""The seed design's LeRobot-style interface: ``SACConfig`` / ``SACPolicy`` with a switchable ACT actor.

A thin layer over the project's pieces, so code written against the seed design runs as written::

    config = SACConfig(input_features={"observation.state": PolicyFeature(FeatureType.STATE, (10,))},
                       output_features={"action": PolicyFeature(FeatureType.ACTION, (4,))},
                       use_act_actor=True, dataset_stats={...})
    policy = SACPolicy(config=config)
    action = policy.select_action({"observation.state": obs})      # (1, A), robot units
    loss_dict = policy.forward(batch, model="actor" | "critic" | "temperature")

The actor is ``actsac.policy.build_actor``'s, the losses are ``actsac.policy.sac``'s (one implementation of each
in the project), chunk execution is the runtime's ``TemporalEnsembler`` / ``ChunkExecutor`` and checkpoints are
``model.pt`` files that ``actsac-export`` accepts.

Batch layout for ``forward`` (chunks of H steps, robot units, like a LeRobot batch with action chunks):
``observation.state`` (B, S) or (B, T, S); ``action`` (B, H, A); ``next.reward`` (B, H);
``next.done`` (B, H) or (B,); ``next.observation.state``: the observation H steps later;
``expert_action`` (B, H, A): the demonstration chunk for the BC term (optional ``expert_mask`` (B,) bool).

Cameras are VISUAL input features ``observation.images.<camera>`` of shape (3, H, W) as LeRobot declares them;
their frames enter as cameras deliver them, uint8 (B, H, W, 3) RGB (``next.observation.images.<camera>`` for
the backup), and their per-channel ``mean`` / ``std`` (in [0, 1] units) must be in ``dataset_stats``.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import math
from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from actsac.ensemble import ChunkExecutor, TemporalEnsembler

from .actors import build_actor
from .checkpoint import CheckpointError, read_payload, save_checkpoint
from .config import ActionGroup, CameraConfig, ConfigError, NormStats, PolicyConfig, robot_action_groups
from .critic import CriticEnsemble, make_target, polyak_update
from .sac import (BC_LOSSES, BC_SCHEDULES, Q_AGGREGATES, BCSchedule, actor_loss, bc_weight,
                  chunked_backup_target, critic_loss, default_target_entropy, soft_next_value, temperature_loss)

STATE_KEY, ACTION_KEY, IMAGE_PREFIX = "observation.state", "action", "observation.images."


class FeatureType(str, Enum):
    STATE = "STATE"
    ACTION = "ACTION"
    ENV = "ENV"
    VISUAL = "VISUAL"


@dataclass(frozen=True)
class PolicyFeature:
    type: FeatureType
    shape: tuple[int, ...]


def _strict_kwargs(cls):
    """Refuse unknown keyword arguments by name (with the closest known key), not with a bare TypeError."""
    init = cls.__init__
    known = [f.name for f in dataclasses.fields(cls)]

    @functools.wraps(init)
    def checked(self, *args, **kwargs):
        for key in kwargs:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                raise ConfigError(f"{key}: unknown SACConfig key" + (f" (did you mean '{close[0]}'?)" if close else ""))
        init(self, *args, **kwargs)

    cls.__init__ = checked
    return cls


@_strict_kwargs
@dataclass
class SACConfig:
    """Every setting of the seed design. Sizes default to its scale; ACT vs MLP is ``use_act_actor``."""

    input_features: dict[str, PolicyFeature]
    output_features: dict[str, PolicyFeature]
    use_act_actor: bool = True  # False = the MLP actor
    # actor
    chunk_size: int = 10
    n_obs_steps: int = 1  # observation history T; > 1 selects the sequence ACT actor
    dim_model: int = 512
    n_heads: int = 8
    dim_feedforward: int = 3200
    n_encoder_layers: int = 1
    n_decoder_layers: int = 1
    dropout: float = 0.0
    actor_hidden_dims: list[int] = field(default_factory=lambda: [256, 256])  # MLP actor
    action_groups: dict[str, int] | None = None  # e.g. {"arm": 14, "torso": 6, "hand": 12}; None = one group
    # the robot the policy drives (so100, koch, upper_body or a robot TOML): its groups, joint names and units
    # (torso joints in degrees...) become the actor's, so actsac-run accepts the export on that robot
    robot: str | None = None
    vision_backbone: str = "small_cnn"  # "small_cnn" | "resnet18", for VISUAL input features
    log_std_min: float = -5.0
    log_std_max: float = 2.0
    dataset_stats: dict[str, dict[str, list[float]]] | None = None  # {"observation.state": {"min", "max"}|{"mean", "std"}, "action": ...}
    # chunk execution in select_action (the runtime's classes)
    temporal_ensemble_coeff: float | None = 0.01  # None = open-loop chunks of n_action_steps
    n_action_steps: int | None = None  # default: chunk_size
    # behaviour cloning
    bc_loss: str = "mse"  # "mse" | "nll"
    bc_weight_start: float = 1.0
    bc_weight_end: float = 0.1
    bc_schedule: str = "linear"  # "constant" | "linear" | "exponential"
    bc_decay_steps: int = 100_000
    bc_relative_to_q: bool = False  # scale the BC weight by mean |Q| (TD3+BC style)
    # SAC
    discount: float = 0.99
    num_critics: int = 2
    critic_hidden_dims: list[int] = field(default_factory=lambda: [256, 256])
    critic_target_update_weight: float = 0.005  # tau
    q_aggregation: str = "min"  # "min" | "mean"
    temperature_init: float = 1.0
    target_entropy: float | None = None  # default -0.5 * H * A
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    temperature_lr: float = 3e-4
    control_hz: float = 30.0

    def __post_init__(self) -> None:
        self.input_features = {k: _feature(v, f"input_features['{k}']") for k, v in self.input_features.items()}
        self.output_features = {k: _feature(v, f"output_features['{k}']") for k, v in self.output_features.items()}
        self.actor_hidden_dims = list(self.actor_hidden_dims)
        self.critic_hidden_dims = list(self.critic_hidden_dims)
        self.policy_config()  # validates shapes, groups and stats, naming the key at fault

    @property
    def state_dim(self) -> int:
        feature = self.input_features.get(STATE_KEY)
        if feature is None or feature.type != FeatureType.STATE:
            raise ConfigError(f"input_features: needs a STATE feature '{STATE_KEY}'")
        return int(feature.shape[-1])

    @property
    def action_dim(self) -> int:
        feature = self.output_features.get(ACTION_KEY)
        if feature is None or feature.type != FeatureType.ACTION:
            raise ConfigError(f"output_features: needs an ACTION feature '{ACTION_KEY}'")
        return int(feature.shape[-1])

    def policy_config(self) -> PolicyConfig:
        """The actor's PolicyConfig; raises ConfigError naming the SACConfig key that is inconsistent."""
        for name, allowed, value in (("bc_loss", BC_LOSSES, self.bc_loss), ("bc_schedule", BC_SCHEDULES, self.bc_schedule),
                                     ("q_aggregation", Q_AGGREGATES, self.q_aggregation)):
            if value not in allowed:
                raise ConfigError(f"{name}: '{value}' is not one of {', '.join(allowed)}")
        if self.robot is not None:
            action_groups = groups_of_robot(self.robot, self.action_groups, self.action_dim)
        else:
            groups = self.action_groups or {"action": self.action_dim}
            if sum(groups.values()) != self.action_dim:
                raise ConfigError(f"action_groups: {dict(groups)} add up to {sum(groups.values())}, "
                                  f"but output_features['action'] has {self.action_dim} dims")
            action_groups = [ActionGroup(name, [f"{name}_{i}" for i in range(dim)]) for name, dim in groups.items()]
        stats = self.dataset_stats or {}
        unknown = sorted(set(stats) - {STATE_KEY, ACTION_KEY, *self.camera_keys})
        if unknown:
            raise ConfigError(f"dataset_stats['{unknown[0]}']: unknown feature (expected '{STATE_KEY}', '{ACTION_KEY}' "
                              f"or a VISUAL input feature)")
        try:
            return PolicyConfig(
                state_dim=self.state_dim, action_groups=action_groups,
                history=self.n_obs_steps if self.n_obs_steps > 1 else None, chunk_size=self.chunk_size,
                actor="act" if self.use_act_actor else "mlp", dim_model=self.dim_model, n_heads=self.n_heads,
                dim_feedforward=self.dim_feedforward, n_encoder_layers=self.n_encoder_layers,
                n_decoder_layers=self.n_decoder_layers, dropout=self.dropout, mlp_hidden=self.actor_hidden_dims,
                log_std_min=self.log_std_min, log_std_max=self.log_std_max, control_hz=self.control_hz,
                obs_stats=_norm_stats(stats, STATE_KEY, self.state_dim),
                action_stats=_norm_stats(stats, ACTION_KEY, self.action_dim),
                cameras=[self._camera(key, stats) for key in self.camera_keys], image_encoder=self.vision_backbone)
        except ConfigError as exc:
            raise ConfigError(f"SACConfig {exc}") from None

    @property
    def camera_keys(self) -> list[str]:
        """The VISUAL input features, ``observation.images.<camera>``, in declaration order."""
        return [k for k, f in self.input_features.items() if f.type == FeatureType.VISUAL]

    def _camera(self, key: str, stats: dict) -> CameraConfig:
        if not key.startswith(IMAGE_PREFIX):
            raise ConfigError(f"input_features['{key}']: a VISUAL feature is named '{IMAGE_PREFIX}<camera>'")
        shape = self.input_features[key].shape
        if len(shape) != 3 or shape[0] != 3:
            raise ConfigError(f"input_features['{key}']: shape {shape} is not (3, height, width)")
        entry = stats.get(key, {})
        mean, std = (None if k not in entry else np.asarray(entry[k], np.float64).reshape(-1).tolist()
                     for k in ("mean", "std"))
        try:
            return CameraConfig(key[len(IMAGE_PREFIX):], shape[1], shape[2], mean, std)
        except ConfigError as exc:
            raise ConfigError(f"dataset_stats['{key}']: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for key in ("input_features", "output_features"):
            data[key] = {k: {"type": f.type.value, "shape": list(f.shape)} for k, f in getattr(self, key).items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SACConfig":
        return cls(**data)


def groups_of_robot(robot: str, expected: dict[str, int] | None, action_dim: int) -> list[ActionGroup]:
    """The robot definition's action groups with its joint names and each motor's unit; ``expected`` (the
    config's action_groups, when given) must agree with them."""
    from actsac.drivers.errors import RobotSpecError
    from actsac.drivers.robots import load_robot

    try:
        spec = load_robot(robot)
    except RobotSpecError as exc:
        raise ConfigError(f"robot: {exc}") from None
    groups = robot_action_groups(spec)
    sizes = {g.name: g.dim for g in groups}
    described = ", ".join(f"{name} {dim}" for name, dim in sizes.items())
    if sum(sizes.values()) != action_dim:
        raise ConfigError(f"robot: '{spec.name}' drives {sum(sizes.values())} joints ({described}), but "
                          f"output_features['action'] has {action_dim} dims")
    if expected is not None and dict(expected) != sizes:
        raise ConfigError(f"action_groups: {dict(expected)} differ from robot '{spec.name}''s groups ({described})")
    return groups


def _feature(value, where: str) -> PolicyFeature:
    if isinstance(value, dict):
        value = PolicyFeature(value.get("type"), value.get("shape"))
    try:
        return PolicyFeature(FeatureType(value.type), tuple(int(d) for d in value.shape))
    except (ValueError, TypeError, AttributeError):
        raise ConfigError(f"{where}: not a PolicyFeature(type, shape)") from None


def _norm_stats(stats: dict, key: str, dim: int) -> NormStats | None:
    entry = stats.get(key)
    if entry is None:
        return None
    for mode, (a, b) in (("min_max", ("min", "max")), ("mean_std", ("mean", "std"))):
        if a in entry and b in entry:
            values = [np.asarray(entry[k], dtype=np.float64).reshape(-1) for k in (a, b)]
            for name, v in zip((a, b), values):
                if v.size != dim:
                    raise ConfigError(f"dataset_stats['{key}']['{name}']: {v.size} values, expected {dim}")
            try:
                return NormStats(mode, values[0].tolist(), values[1].tolist())
            except ConfigError as exc:
                raise ConfigError(f"dataset_stats['{key}']: {exc}") from None
    raise ConfigError(f"dataset_stats['{key}']: needs 'min' and 'max', or 'mean' and 'std'")


class SACPolicy(nn.Module):
    """Actor, critic ensemble, target critics and temperature, with LeRobot's policy methods."""

    name = "sac"

    def __init__(self, config: SACConfig):
        super().__init__()
        self.config = config
        self.policy_config = config.policy_config()
        self.actor = build_actor(self.policy_config)
        self.critic_ensemble = CriticEnsemble(self.policy_config, config.num_critics, tuple(config.critic_hidden_dims))
        self.critic_target = make_target(self.critic_ensemble)
        self.log_alpha = nn.Parameter(torch.tensor(math.log(config.temperature_init)))
        self.target_entropy = (default_target_entropy(config.chunk_size, config.action_dim)
                               if config.target_entropy is None else config.target_entropy)
        self.bc_schedule = BCSchedule(config.bc_schedule, config.bc_weight_start, config.bc_weight_end,
                                      config.bc_decay_steps)
        self.training_step = 0  # drives the BC weight schedule; advanced by update()
        if config.temporal_ensemble_coeff is not None:
            self.executor = TemporalEnsembler(config.temporal_ensemble_coeff, config.chunk_size)
        else:
            self.executor = ChunkExecutor(config.n_action_steps or config.chunk_size, config.chunk_size)
        self.reset()

    @property
    def alpha(self) -> torch.Tensor:
        return self.log_alpha.detach().exp()

    # ---------------------------------------------------------------- acting
    def reset(self) -> None:
        """Call at the start of an episode: empties the chunk buffer and the observation history."""
        self.executor.reset()
        self._history: deque = deque(maxlen=max(self.config.n_obs_steps, 1))
        self._tick = 0

    @torch.no_grad()
    def select_action(self, observation) -> torch.Tensor:
        """One action (1, A) in robot units for one observation ({'observation.state': (1, S) or (S,)}).

        Chunks run as in actsac-run: temporal ensembling of a chunk per call, or open-loop chunks of
        ``n_action_steps`` (a new chunk every n_action_steps calls).
        """
        state = observation[STATE_KEY] if isinstance(observation, dict) else observation
        state = torch.as_tensor(state, dtype=torch.float32).reshape(-1, self.config.state_dim)
        if state.shape[0] != 1:
            raise ValueError(f"select_action takes one observation at a time, got a batch of {state.shape[0]}")
        if not self._history:
            self._history.extend([state[0]] * self._history.maxlen)  # repeat the first one at the start
        else:
            self._history.append(state[0])
        obs = torch.stack(list(self._history))[None] if self.policy_config.uses_history else state
        images = self._images(observation if isinstance(observation, dict) else {}, "", batch_size=1)
        tick, self._tick = self._tick, self._tick + 1
        if isinstance(self.executor, TemporalEnsembler):
            action = self.executor.update(self._chunk(obs, images))
        else:
            if self.executor.needs_chunk(tick, lead_ticks=0):
                self.executor.add_chunk(self._chunk(obs, images), tick)
            action = self.executor.action_at(tick)
        return torch.as_tensor(action, dtype=torch.float32)[None]

    def _images(self, batch: dict, prefix: str, batch_size: int | None = None) -> dict[str, torch.Tensor] | None:
        """{camera: uint8 (B, H, W, 3)} from ``<prefix>observation.images.<camera>`` entries (a single frame
        (H, W, 3) gets its batch dim when ``batch`` is 1); None for a state-only policy."""
        if not self.policy_config.cameras:
            return None
        images = {}
        for camera in self.policy_config.cameras:
            key = f"{prefix}{IMAGE_PREFIX}{camera.name}"
            if key not in batch:
                raise KeyError(f"'{key}': the policy sees camera '{camera.name}'")
            image = torch.as_tensor(batch[key])
            images[camera.name] = image[None] if batch_size == 1 and image.dim() == 3 else image
        return images

    def _chunk(self, obs: torch.Tensor, images) -> np.ndarray:
        self.actor.eval()
        return self.actor.to_robot_units(self.actor.deterministic(obs, images))[0].numpy()

    # ---------------------------------------------------------------- learning
    def forward(self, batch: dict[str, torch.Tensor], model: str = "critic") -> dict[str, torch.Tensor]:
        """The loss of one part, with its components: ``model`` is "actor", "critic" or "temperature".

        Every dict has ``loss`` (what to backpropagate) plus the named parts (loss_actor, loss_sac, loss_bc,
        bc_weight, entropy / loss_critic, q_mean / loss_temperature, alpha, entropy).
        """
        obs, images = batch[STATE_KEY], self._images(batch, "")
        if model == "critic":
            rewards, mask = _rewards_and_mask(batch)
            next_value = soft_next_value(self.actor, self.critic_target, batch[f"next.{STATE_KEY}"], self.alpha,
                                         self.config.q_aggregation, next_images=self._images(batch, "next."))
            next_q_value = chunked_backup_target(rewards, mask, next_value, self.config.discount)
            actions = self.actor.from_robot_units(batch[ACTION_KEY]).clamp(-1.0, 1.0)
            loss, q = critic_loss(self.critic_ensemble, obs, actions, next_q_value, images)
            return {"loss": loss, "loss_critic": loss.detach(), "q_mean": q.mean()}
        if model == "actor":
            expert = batch.get("expert_action")
            demo = None if expert is None else self.actor.from_robot_units(expert).clamp(-1.0, 1.0)
            weight = bc_weight(self.training_step, self.bc_schedule)
            self.critic_ensemble.requires_grad_(False)  # the actor's gradient flows through Q, not into it
            try:
                loss, parts = actor_loss(self.actor, self.critic_ensemble, obs, self.alpha, images=images,
                                         demo_actions=demo,
                                         demo_mask=batch.get("expert_mask"), bc_weight=weight,
                                         bc_loss=self.config.bc_loss, aggregate=self.config.q_aggregation,
                                         bc_relative_to_q=self.config.bc_relative_to_q)
            finally:
                self.critic_ensemble.requires_grad_(True)
            parts.pop("log_prob")
            return {"loss": loss, **parts}
        if model == "temperature":
            with torch.no_grad():
                _, log_prob = self.actor.sample(obs, images)
            loss = temperature_loss(self.log_alpha, log_prob, self.target_entropy)
            return {"loss": loss, "loss_temperature": loss.detach(), "alpha": self.alpha,
                    "entropy": -log_prob.mean()}
        raise ValueError(f"model must be 'actor', 'critic' or 'temperature', got {model!r}")

    def update(self) -> None:
        """After an optimisation step: Polyak-update the target critics and advance the BC schedule."""
        polyak_update(self.critic_ensemble, self.critic_target, self.config.critic_target_update_weight)
        self.training_step += 1

    def get_optim_params(self) -> dict[str, list[nn.Parameter]]:
        return {"actor": list(self.actor.parameters()), "critic": list(self.critic_ensemble.parameters()),
                "temperature": [self.log_alpha]}

    # ---------------------------------------------------------------- persistence
    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``model.pt`` (the project's checkpoint: actsac-export reads it) and a readable config.json."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        extra = {"sac_config": self.config.to_dict(), "training_step": self.training_step,
                 "critic": self.critic_ensemble.state_dict(), "critic_target": self.critic_target.state_dict(),
                 "log_alpha": self.log_alpha.detach().clone()}
        path = save_checkpoint(directory / "model.pt", self.actor, extra=extra)
        (directory / "config.json").write_text(json.dumps(self.config.to_dict(), indent=2))
        return path

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> "SACPolicy":
        path = Path(directory) / "model.pt"
        payload = read_payload(path)
        extra = payload.get("extra", {})
        if "sac_config" not in extra:
            raise CheckpointError(f"{path}: written by actsac-train, not SACPolicy.save_pretrained "
                                  f"(no 'sac_config'); load it with actsac.policy.load_checkpoint")
        policy = cls(SACConfig.from_dict(extra["sac_config"]))
        try:
            policy.actor.load_state_dict(payload["state_dict"])
            policy.critic_ensemble.load_state_dict(extra["critic"])
            policy.critic_target.load_state_dict(extra["critic_target"])
        except RuntimeError as exc:
            raise CheckpointError(f"{path}: weights do not match the config: {' '.join(str(exc).split())[:300]}") from None
        with torch.no_grad():
            policy.log_alpha.copy_(extra["log_alpha"])
        policy.training_step = int(extra.get("training_step", 0))
        return policy


def _rewards_and_mask(batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Rewards (B, H) zeroed after a terminal inside the chunk, and the bootstrap mask (B,)."""
    rewards = batch["next.reward"].float()
    done = batch.get("next.done")
    if done is None:
        return rewards, torch.ones(rewards.shape[0])
    done = done.float()
    if done.dim() == 1:  # one flag per chunk: the chunk ends in a terminal
        return rewards, 1.0 - done
    # reward i counts while no terminal came before step i; a terminal anywhere stops the bootstrap
    alive = torch.cumprod(torch.cat([torch.ones_like(done[:, :1]), 1.0 - done[:, :-1]], dim=1), dim=1)
    return rewards * alive, 1.0 - done.amax(dim=1)
