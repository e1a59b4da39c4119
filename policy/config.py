"""PolicyConfig: everything that defines an actor, as plain JSON types.

The config travels inside every checkpoint and (as metadata) inside every exported ONNX file, so it holds
only ints, floats, strings and lists. ``to_dict`` / ``from_dict`` round-trip exactly; ``from_dict`` refuses
unknown keys by name so a typo in a hand-written config never passes silently.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

ACTOR_TYPES = ("act", "mlp")
IMAGE_ENCODERS = ("small_cnn", "resnet18")
# Per-channel RGB statistics of ImageNet, in [0, 1] pixel units: what ResNet-18 weights were trained with.
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
NORM_MODES = ("min_max", "mean_std")
JOINT_UNITS = ("range_m100_100", "range_0_100", "degrees", "radians", "ticks")

# Transformer sizes. `default` is the seed design's scale (~9.9M parameters for a 6-dim state and a
# 6-dim action); `small` is for demos and tests (well under 1M).
PRESETS: dict[str, dict[str, Any]] = {
    "default": dict(dim_model=512, n_heads=8, dim_feedforward=3200, n_encoder_layers=1, n_decoder_layers=1,
                    mlp_hidden=[256, 256]),
    "small": dict(dim_model=64, n_heads=4, dim_feedforward=256, n_encoder_layers=1, n_decoder_layers=1,
                  mlp_hidden=[128, 128]),
}


class ConfigError(ValueError):
    """An inconsistent or unknown setting; the message names the field."""


@dataclass
class ActionGroup:
    """One head of the actor: a named block of joints (e.g. arm 14, torso 6, hand 12)."""

    name: str
    joints: list[str]
    units: list[str] | str = "range_m100_100"  # one per joint, or one for the whole group

    def __post_init__(self) -> None:
        self.joints = list(self.joints)
        if not self.joints:
            raise ConfigError(f"action group '{self.name}': needs at least one joint")
        if isinstance(self.units, str):
            self.units = [self.units] * len(self.joints)
        self.units = list(self.units)
        if len(self.units) != len(self.joints):
            raise ConfigError(f"action group '{self.name}': {len(self.units)} units for {len(self.joints)} joints")
        for unit in self.units:
            if unit not in JOINT_UNITS:
                raise ConfigError(f"action group '{self.name}': unknown unit '{unit}' (one of {', '.join(JOINT_UNITS)})")

    @property
    def dim(self) -> int:
        return len(self.joints)


def robot_action_groups(spec, unit=lambda motor: motor.norm_mode) -> list[ActionGroup]:
    """A robot definition's action groups (``RobotSpec.groups``, in policy order) with its joint names and each
    joint's unit: the motor's norm_mode unless ``unit(motor)`` says otherwise."""
    return [ActionGroup(name, list(joints), [unit(spec.motor(j)) for j in joints]) for name, joints in spec.groups]


@dataclass
class NormStats:
    """Normalisation statistics for one vector.

    ``min_max``: x -> 2 (x - a) / (b - a) - 1 with a = min, b = max (so [min, max] maps to [-1, 1]).
    ``mean_std``: x -> (x - a) / b with a = mean, b = std.
    Actions are produced in the normalised space by tanh, then mapped back with the inverse.
    """

    mode: str
    a: list[float]
    b: list[float]

    def __post_init__(self) -> None:
        if self.mode not in NORM_MODES:
            raise ConfigError(f"normalisation mode '{self.mode}' is not one of {', '.join(NORM_MODES)}")
        self.a = [float(v) for v in self.a]
        self.b = [float(v) for v in self.b]
        if len(self.a) != len(self.b):
            raise ConfigError(f"normalisation stats: {len(self.a)} vs {len(self.b)} values")
        if self.mode == "min_max" and any(hi <= lo for lo, hi in zip(self.a, self.b)):
            raise ConfigError("normalisation stats: every max must exceed its min")
        if self.mode == "mean_std" and any(s <= 0 for s in self.b):
            raise ConfigError("normalisation stats: every std must be positive")

    @classmethod
    def min_max(cls, low, high) -> "NormStats":
        return cls("min_max", list(low), list(high))

    @classmethod
    def mean_std(cls, mean, std) -> "NormStats":
        return cls("mean_std", list(mean), list(std))

    @property
    def dim(self) -> int:
        return len(self.a)


@dataclass
class CameraConfig:
    """One camera the policy sees: an RGB image (height, width, 3) uint8 as the camera delivers it, scaled to
    [0, 1] and normalised per channel with ``mean`` / ``std`` (ImageNet's, or the training images')."""

    name: str
    height: int
    width: int
    mean: list[float] | None = None
    std: list[float] | None = None

    def __post_init__(self) -> None:
        where = f"cameras['{self.name}']"
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ConfigError(f"cameras: camera name {self.name!r} is not an identifier (letters, digits, _)")
        for key in ("height", "width"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 16:
                raise ConfigError(f"{where}.{key}: {value!r} is not an integer >= 16")
        if self.mean is None or self.std is None:
            raise ConfigError(f"{where}: no image statistics (mean and std per RGB channel, e.g. ImageNet's "
                              f"{IMAGENET_MEAN} / {IMAGENET_STD})")
        self.mean, self.std = [float(v) for v in self.mean], [float(v) for v in self.std]
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ConfigError(f"{where}: mean and std need 3 values each (R, G, B)")
        if not all(s > 0 for s in self.std):
            raise ConfigError(f"{where}.std: every value must be positive")

    @classmethod
    def imagenet(cls, name: str, height: int, width: int) -> "CameraConfig":
        return cls(name, height, width, list(IMAGENET_MEAN), list(IMAGENET_STD))


@dataclass
class PolicyConfig:
    """The actor's definition. Sizes default to the seed design's scale; use ``preset='small'`` for demos."""

    state_dim: int
    action_groups: list[ActionGroup]
    history: int | None = None  # T > 1 selects the observation-history (sequence) actor
    chunk_size: int = 10  # H
    actor: str = "act"  # "act" | "mlp"
    dim_model: int = 512
    n_heads: int = 8
    dim_feedforward: int = 3200
    n_encoder_layers: int = 1
    n_decoder_layers: int = 1
    dropout: float = 0.0  # SAC wants a deterministic actor forward; raise for BC-heavy training
    mlp_hidden: list[int] = field(default_factory=lambda: [256, 256])
    log_std_min: float = -5.0
    log_std_max: float = 2.0
    obs_stats: NormStats | None = None
    action_stats: NormStats | None = None
    control_hz: float = 30.0  # the rate the policy was trained for; the runtime's default --fps
    observation_names: list[str] | None = None
    cameras: list[CameraConfig] = field(default_factory=list)  # images beside the state, in input order
    image_encoder: str = "small_cnn"  # "small_cnn" | "resnet18" (layer4 feature map, frozen batch norm)
    image_embed_dim: int = 64  # pooled image embedding per camera (the MLP actor and the critic)

    def __post_init__(self) -> None:
        self.action_groups = [g if isinstance(g, ActionGroup) else ActionGroup(**g) for g in self.action_groups]
        self.cameras = [c if isinstance(c, CameraConfig) else _camera(c) for c in self.cameras or []]
        if isinstance(self.obs_stats, dict):
            self.obs_stats = NormStats(**self.obs_stats)
        if isinstance(self.action_stats, dict):
            self.action_stats = NormStats(**self.action_stats)
        self.mlp_hidden = list(self.mlp_hidden)
        self.validate()

    def validate(self) -> None:
        def need(ok: bool, field_name: str, why: str) -> None:
            if not ok:
                raise ConfigError(f"{field_name}: {why}")

        need(self.state_dim >= 1, "state_dim", "must be >= 1")
        need(bool(self.action_groups), "action_groups", "needs at least one group")
        names = [g.name for g in self.action_groups]
        need(len(set(names)) == len(names), "action_groups", f"duplicate group names in {names}")
        joints = self.joint_names
        need(len(set(joints)) == len(joints), "action_groups", "a joint appears in two groups")
        need(self.history is None or self.history >= 1, "history", "must be >= 1 or None")
        need(self.chunk_size >= 1, "chunk_size", "must be >= 1")
        need(self.actor in ACTOR_TYPES, "actor", f"'{self.actor}' is not one of {', '.join(ACTOR_TYPES)}")
        need(self.dim_model % self.n_heads == 0, "n_heads", f"dim_model {self.dim_model} is not divisible by {self.n_heads}")
        need(self.n_decoder_layers >= 1, "n_decoder_layers", "must be >= 1")
        need(self.n_encoder_layers >= 0, "n_encoder_layers", "must be >= 0")
        need(0.0 <= self.dropout < 1.0, "dropout", "must be in [0, 1)")
        need(self.log_std_min < self.log_std_max, "log_std_min", "must be below log_std_max")
        need(self.control_hz > 0, "control_hz", "must be positive")
        if self.obs_stats is not None:
            need(self.obs_stats.dim == self.state_dim, "obs_stats",
                 f"{self.obs_stats.dim} values for state_dim {self.state_dim}")
        if self.action_stats is not None:
            need(self.action_stats.dim == self.action_dim, "action_stats",
                 f"{self.action_stats.dim} values for action dim {self.action_dim}")
        if self.observation_names is not None:
            need(len(self.observation_names) == self.state_dim, "observation_names",
                 f"{len(self.observation_names)} names for state_dim {self.state_dim}")
        names = self.camera_names
        need(len(set(names)) == len(names), "cameras", f"duplicate camera names in {names}")
        need(self.image_encoder in IMAGE_ENCODERS, "image_encoder",
             f"'{self.image_encoder}' is not one of {', '.join(IMAGE_ENCODERS)}")
        need(self.image_embed_dim >= 1, "image_embed_dim", "must be >= 1")

    @property
    def action_dim(self) -> int:
        return sum(g.dim for g in self.action_groups)

    @property
    def joint_names(self) -> list[str]:
        return [j for g in self.action_groups for j in g.joints]

    @property
    def joint_units(self) -> list[str]:
        return [u for g in self.action_groups for u in g.units]

    @property
    def camera_names(self) -> list[str]:
        return [c.name for c in self.cameras]

    @property
    def uses_history(self) -> bool:
        return self.history is not None and self.history > 1

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PolicyConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{unknown[0]}: unknown PolicyConfig key")
        try:
            return cls(**data)
        except TypeError as exc:  # missing required field
            raise ConfigError(str(exc)) from None

    @classmethod
    def from_preset(cls, preset: str = "default", **kwargs: Any) -> "PolicyConfig":
        if preset not in PRESETS:
            raise ConfigError(f"preset: '{preset}' is not one of {', '.join(PRESETS)}")
        return cls(**{**PRESETS[preset], **kwargs})


def _camera(data: Any) -> CameraConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"cameras: entry {data!r} is not a camera (name, height, width, mean, std)")
    unknown = sorted(set(data) - {f.name for f in dataclasses.fields(CameraConfig)})
    if unknown:
        raise ConfigError(f"cameras: unknown camera key '{unknown[0]}'")
    try:
        return CameraConfig(**data)
    except TypeError as exc:  # a missing name / height / width
        raise ConfigError(f"cameras: {exc}") from None
