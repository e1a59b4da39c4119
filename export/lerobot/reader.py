"""Reading a LeRobot checkpoint directory without LeRobot: config.json, model.safetensors and the
normalisation statistics (the processor files of LeRobot 0.4, or the buffers inside model.safetensors of
LeRobot 0.3 and before). Nothing is unpickled: a directory holding only pickles is refused.

Every problem is a one-line ``LeRobotError`` naming the file and the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
PREPROCESSOR_FILE = "policy_preprocessor.json"
POSTPROCESSOR_FILE = "policy_postprocessor.json"
PICKLES = ("pytorch_model.bin", "model.pt", "model.pth", "model.ckpt")
SUPPORTED_TYPES = ("act", "sac")
STATE, ENV, ACTION = "observation.state", "observation.environment_state", "action"
IMAGE_PREFIX = "observation.images."
# The statistics each normalisation mode reads; QUANTILES / QUANTILE10 are MIN_MAX over other bounds.
MODE_STATS = {"MEAN_STD": ("mean", "std"), "MIN_MAX": ("min", "max"), "QUANTILES": ("q01", "q99"),
              "QUANTILE10": ("q10", "q90"), "IDENTITY": ()}
# LeRobot 0.3 and before: statistics as buffers of the policy's normalisation modules
OLD_BUFFER_PREFIXES = ("normalize_inputs.buffer_", "unnormalize_outputs.buffer_")
DEFAULT_EPS = 1e-8
DEFAULT_FPS = 30.0  # LeRobot's recording default
UNITS = ("range", "degrees")  # --units: the robot's own norm modes, or degrees for every range_m100_100 joint


class LeRobotError(ValueError):
    """A LeRobot checkpoint actsac cannot read or does not support; one line naming the file and field."""


@dataclass
class Feature:
    key: str  # "observation.state", "observation.images.front", "action"...
    type: str  # STATE | VISUAL | ENV | ACTION
    shape: tuple[int, ...]

    @property
    def stats_size(self) -> int:
        """Values per statistic: one per channel for an image, one per value otherwise."""
        return self.shape[0] if self.type == "VISUAL" else int(np.prod(self.shape))


@dataclass
class LeRobotFiles:
    """What a ``pretrained_model`` directory holds, as plain types and numpy arrays."""

    directory: Path
    config: dict[str, Any]
    inputs: dict[str, Feature]
    action: Feature
    weights: dict[str, Any]  # name -> torch tensor, as model.safetensors holds them
    stats: dict[str, dict[str, np.ndarray]]  # feature key -> {stat name: array}
    eps: float = DEFAULT_EPS
    layout: str = "LeRobot 0.4"  # or "LeRobot 0.3" (statistics inside model.safetensors)
    train_config: dict[str, Any] = field(default_factory=dict)

    @property
    def policy_type(self) -> str:
        return self.config["type"]

    def norm_mode(self, feature: Feature) -> str:
        return self.config.get("normalization_mapping", {}).get(feature.type, "IDENTITY")

    @property
    def cameras(self) -> list[Feature]:
        return [f for f in self.inputs.values() if f.type == "VISUAL"]

    def where(self, what: str = CONFIG_FILE) -> str:
        return str(self.directory / what)


def pretrained_model_dir(path: Path) -> Path:
    """The directory holding config.json: ``path`` itself, its ``pretrained_model`` subdirectory (a LeRobot
    checkpoint step directory), or the directory of a config.json / model.safetensors given as a file."""
    path = Path(path)
    if path.is_file() and path.name in (CONFIG_FILE, WEIGHTS_FILE):
        path = path.parent
    if not path.is_dir():
        raise LeRobotError(f"{path}: no such directory")
    for candidate in (path, path / "pretrained_model"):
        if (candidate / CONFIG_FILE).is_file():
            return candidate
    pickles = [name for name in PICKLES if (path / name).is_file()]
    if pickles:
        raise LeRobotError(f"{path / pickles[0]}: refused: a pickle file is never unpickled (it can run code); "
                           f"re-save the policy with LeRobot's save_pretrained (config.json + model.safetensors)")
    raise LeRobotError(f"{path}: not a LeRobot checkpoint (no {CONFIG_FILE} here or in pretrained_model/)")


def looks_like_lerobot(path: Path) -> bool:
    """A directory (or its config.json / model.safetensors): what actsac-export takes as a LeRobot checkpoint."""
    path = Path(path)
    return path.is_dir() or path.name in (CONFIG_FILE, WEIGHTS_FILE)


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise LeRobotError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except OSError as exc:
        raise LeRobotError(f"{path}: cannot read it ({exc.strerror})") from None
    if not isinstance(data, dict):
        raise LeRobotError(f"{path}: not a JSON object")
    return data


def _safetensors(path: Path) -> dict[str, Any]:
    """{name: torch tensor} (through torch: bf16 / fp16 weights load too)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise LeRobotError(f"{path}: not a readable safetensors file ({' '.join(str(exc).split())[:200]})") from None


def _features(config: dict[str, Any], key: str, where: str) -> dict[str, Feature]:
    entries = config.get(key)
    if not isinstance(entries, dict) or not entries:
        raise LeRobotError(f"{where}: '{key}' is missing or empty")
    features = {}
    for name, entry in entries.items():
        try:
            features[name] = Feature(name, str(entry["type"]), tuple(int(n) for n in entry["shape"]))
        except (KeyError, TypeError, ValueError):
            raise LeRobotError(f"{where}: {key}['{name}'] needs a 'type' and an integer 'shape'") from None
    return features


def _processor_stats(directory: Path) -> tuple[dict[str, dict[str, np.ndarray]], float] | None:
    """Statistics and eps of the normaliser steps of the pre- and post-processor (None without those files).
    The preprocessor's statistics come first; the postprocessor's fill in (and for the action, decide)."""
    stats: dict[str, dict[str, np.ndarray]] = {}
    eps, found = DEFAULT_EPS, False
    for name in (PREPROCESSOR_FILE, POSTPROCESSOR_FILE):
        path = directory / name
        if not path.is_file():
            continue
        found = True
        steps = _json(path).get("steps")
        if not isinstance(steps, list):
            raise LeRobotError(f"{path}: 'steps' is missing or not a list")
        for step in steps:
            if not isinstance(step, dict) or step.get("registry_name") not in ("normalizer_processor",
                                                                               "unnormalizer_processor"):
                continue
            eps = float(step.get("config", {}).get("eps", eps))
            state_file = step.get("state_file")
            if not state_file:
                continue
            if not (directory / state_file).is_file():
                raise LeRobotError(f"{path}: its statistics file {state_file} is missing")
            for flat, value in _safetensors(directory / state_file).items():
                feature, _, stat = flat.rpartition(".")
                stats.setdefault(feature, {})[stat] = value.double().numpy()
    return (stats, eps) if found else None


def _buffer_stats(weights: dict[str, Any], features: list[Feature]) -> dict[str, dict[str, np.ndarray]]:
    """LeRobot 0.3's buffers (``normalize_inputs.buffer_observation_images_front.mean``...) by feature: the
    buffer name is the feature key with '.' -> '_', matched against the config's features."""
    by_buffer = {f.key.replace(".", "_"): f.key for f in features}
    stats: dict[str, dict[str, np.ndarray]] = {}
    for key, value in weights.items():
        prefix = next((p for p in OLD_BUFFER_PREFIXES if key.startswith(p)), None)
        if prefix is None:
            continue
        buffer, _, stat = key[len(prefix):].rpartition(".")
        if buffer in by_buffer:
            stats.setdefault(by_buffer[buffer], {})[stat] = value.double().numpy()
    return stats


def read_lerobot(path: Path) -> LeRobotFiles:
    """Read a LeRobot checkpoint: its supported type, features, weights and statistics (``check_stats`` checks
    that every normalised feature has its own)."""
    directory = pretrained_model_dir(path)
    where = str(directory / CONFIG_FILE)
    config = _json(directory / CONFIG_FILE)
    kind = config.get("type")
    if kind not in SUPPORTED_TYPES:
        raise LeRobotError(f"{where}: policy type {kind!r} is not supported (actsac reads LeRobot's "
                           f"{' and '.join(SUPPORTED_TYPES)})")
    inputs = _features(config, "input_features", where)
    outputs = _features(config, "output_features", where)
    if ACTION not in outputs or len(outputs[ACTION].shape) != 1:
        raise LeRobotError(f"{where}: output_features needs a one-dimensional 'action'")
    weights_path = directory / WEIGHTS_FILE
    if not weights_path.is_file():
        pickles = [name for name in PICKLES if (directory / name).is_file()]
        if pickles:
            raise LeRobotError(f"{directory / pickles[0]}: refused: a pickle file is never unpickled; re-save the "
                               f"policy with LeRobot's save_pretrained (model.safetensors)")
        raise LeRobotError(f"{weights_path}: missing")
    weights = _safetensors(weights_path)
    train_path = directory / "train_config.json"
    files = LeRobotFiles(directory, config, inputs, outputs[ACTION], weights, {},
                         train_config=_json(train_path) if train_path.is_file() else {})
    processor = _processor_stats(directory)
    if processor is not None:
        files.stats, files.eps = processor
    else:
        files.stats, files.layout = _buffer_stats(weights, [*inputs.values(), files.action]), "LeRobot 0.3"
    return files


def check_stats(files: LeRobotFiles) -> None:
    """The statistics every feature's normalisation mode needs, present and of the feature's size."""
    for feature in [*files.inputs.values(), files.action]:
        _check_feature_stats(files, feature)


def _check_feature_stats(files: LeRobotFiles, feature: Feature) -> None:
    mode = files.norm_mode(feature)
    where = files.where()
    if mode not in MODE_STATS:
        raise LeRobotError(f"{where}: normalization_mapping {feature.type}: mode {mode!r} is not one of "
                           f"{', '.join(MODE_STATS)}")
    size = feature.stats_size
    for stat in MODE_STATS[mode]:
        value = files.stats.get(feature.key, {}).get(stat)
        source = "the processor files" if files.layout == "LeRobot 0.4" else WEIGHTS_FILE
        if value is None:
            raise LeRobotError(f"{where}: '{feature.key}' is normalised {mode} but {source} hold no "
                               f"'{stat}' statistics for it")
        if value.size != size:
            raise LeRobotError(f"{where}: '{feature.key}' statistics '{stat}' have {value.size} values, its "
                               f"shape {list(feature.shape)} needs {size}")
        if not np.all(np.isfinite(value)):
            raise LeRobotError(f"{where}: '{feature.key}' statistics '{stat}' are not all finite")


def affine(files: LeRobotFiles, feature: Feature, inverse: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """LeRobot's normalisation of ``feature`` as (shift, scale), normalised = (x - shift) / scale, per value
    (per channel for an image). ``inverse``: the unnormalisation, x = normalised * scale + shift. MEAN_STD
    divides by std + eps but multiplies back by std alone; the MIN_MAX family maps [low, high] to [-1, 1], with
    eps for a zero range; IDENTITY is (0, 1)."""
    mode = files.norm_mode(feature)
    if mode == "IDENTITY":
        return np.zeros(feature.stats_size), np.ones(feature.stats_size)
    first, second = (files.stats[feature.key][name].reshape(-1) for name in MODE_STATS[mode])
    if mode == "MEAN_STD":
        return first, second if inverse else second + files.eps
    span = np.where(second - first == 0, files.eps, second - first)
    return first + span / 2.0, span / 2.0
