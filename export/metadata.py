"""The model metadata inside an exported ONNX file: everything the robot side needs, and nothing else.

One JSON object under the ONNX ``metadata_props`` key ``actsac`` (plus ``actsac.format_version`` for quick
checks); see CONTRACTS.md section 2. This module is robot-side code: it imports numpy and, lazily, ``onnx``
when installed or else ``onnxruntime`` (a robot computer has onnxruntime + numpy only, no torch, no onnx).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from actsac._cli import first_line

FORMAT_VERSION = 2  # the newest this actsac reads; 2 added cameras (a state-only model is still written as 1)
STATE_ONLY_VERSION = 1
METADATA_KEY = "actsac"
VERSION_KEY = "actsac.format_version"
# null when absent; files written before a field existed lack it
OPTIONAL_FIELDS = ("observation_names", "obs_stats", "action_stats", "task", "cameras", "stochastic", "source",
                   "calibration")
CALIBRATION_FIELDS = {"id", "drive_mode", "homing_offset", "range_min", "range_max"}  # a LeRobot file's
OUTPUTS = ("action_mean", "action_log_std", "action")  # a deterministic model's graph has "action" only
INPUT_NAME = "observation"
IMAGE_INPUT_PREFIX = "image."  # one uint8 (B, H, W, 3) RGB input per camera: "image.<camera>"
CAMERA_FORMAT = {"dtype": "uint8", "layout": "HWC", "color": "RGB"}  # what every image input takes
MAX_BATCH = 1024  # upper bound of an exported graph's dynamic batch dimension
DEFAULT_OPSET = 20


class MetadataError(ValueError):
    """Metadata that is missing, newer than this actsac, or malformed; one line naming the file and field."""


@dataclass
class ModelMetadata:
    """The ``actsac`` metadata of an exported actor, as plain JSON types (stats and groups stay dicts)."""

    format_version: int
    chunk_size: int  # H: actions per inference
    control_hz: float  # the rate the policy was trained for
    actor: str  # "act" | "mlp"
    state_dim: int
    history: int | None  # T observations per input window, None for a single observation
    observation_names: list[str] | None
    action_groups: list[dict[str, Any]]  # [{"name", "joints": [...], "units": [...]}] in output order
    obs_stats: dict[str, Any] | None  # {"mode": "min_max"|"mean_std", "a": [...], "b": [...]}
    action_stats: dict[str, Any] | None
    log_std_bounds: list[float] | None  # null for a deterministic model
    task: dict[str, Any] | None
    checkpoint_sha256: str
    exporter: str  # e.g. "actsac 0.1.0, torch 2.13.0"
    opset: int
    precision: str  # "fp32" | "fp16" | "int8"
    # [{"name", "height", "width", "input": "image.<name>", "dtype": "uint8", "layout": "HWC", "color": "RGB"}]
    cameras: list[dict[str, Any]] | None = None
    # False: no log-std (LeRobot's ACT), the graph's only output is ``action`` and --stochastic is refused
    stochastic: bool | None = None
    # where the weights came from when not actsac's training: {"framework": "lerobot", "policy": "act", ...}
    source: dict[str, Any] | None = None
    # the calibration the training data was recorded with (calibration/compare.py): {"source": "simulator" or a
    # file name, "joints": {joint: {id, drive_mode, homing_offset, range_min, range_max}}}; null when unknown
    calibration: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.cameras is None or isinstance(self.cameras, tuple):
            self.cameras = list(self.cameras or [])  # anything else that is not a list: refused by _check
        if self.stochastic is None:
            self.stochastic = True

    @property
    def outputs(self) -> tuple[str, ...]:
        """The graph's outputs: (action_mean, action_log_std, action), or (action,) for a deterministic model."""
        return OUTPUTS if self.stochastic else ("action",)

    @property
    def origin(self) -> str:
        """"LeRobot act" for an imported policy, "actsac" for one trained here."""
        if not self.source:
            return "actsac"
        return f"{self.source.get('framework', '?')} {self.source.get('policy', '?')}".strip()

    @property
    def camera_names(self) -> list[str]:
        return [camera["name"] for camera in self.cameras]

    @property
    def input_names(self) -> list[str]:
        """The graph's inputs in order: the state, then one image per camera."""
        return [INPUT_NAME] + [camera["input"] for camera in self.cameras]

    @property
    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        """Each graph input's shape without the batch dim, in input order: the observation, then (H, W, 3) per
        camera (uint8)."""
        shapes = {INPUT_NAME: self.observation_shape}
        shapes.update((camera["input"], (camera["height"], camera["width"], 3)) for camera in self.cameras)
        return shapes

    def check_images(self, images: dict[str, np.ndarray] | None, batched: bool = False) -> None:
        """Raise ValueError (one line naming the camera) unless ``images`` holds one uint8 (H, W, 3) RGB frame
        per camera of the model ((B, H, W, 3) when ``batched``)."""
        images = images or {}
        for camera in self.cameras:
            name = camera["name"]
            if name not in images:
                raise ValueError(f"camera '{name}': no image (the model sees {', '.join(self.camera_names)})")
            image = np.asarray(images[name])
            expected = (camera["height"], camera["width"], 3)
            shape = image.shape[1:] if batched else image.shape
            if image.dtype != np.uint8 or shape != expected or image.ndim != 3 + batched:
                raise ValueError(f"camera '{name}': image of {image.dtype} {image.shape}, expected uint8 "
                                 f"{('(B, ' if batched else '(') + ', '.join(map(str, expected))}) RGB")
        extra = sorted(set(images) - set(self.camera_names))
        if extra:
            raise ValueError(f"camera '{extra[0]}': the model does not see it (its cameras: "
                             f"{', '.join(self.camera_names) or 'none'})")

    @property
    def joint_names(self) -> list[str]:
        return [joint for group in self.action_groups for joint in group["joints"]]

    @property
    def joint_units(self) -> list[str]:
        return [unit for group in self.action_groups for unit in group["units"]]

    @property
    def action_dim(self) -> int:
        return len(self.joint_names)

    @property
    def observation_shape(self) -> tuple[int, ...]:
        """One observation without the batch dim: (state_dim,) or (history, state_dim)."""
        return (self.history, self.state_dim) if self.history else (self.state_dim,)

    @property
    def action_scale(self) -> np.ndarray:
        """Per joint, d(robot units) / d(action in [-1, 1]): the action statistics' half-range (min_max) or std."""
        stats = self.action_stats
        if stats is None:
            return np.ones(self.action_dim)
        a, b = np.asarray(stats["a"], np.float64), np.asarray(stats["b"], np.float64)
        return (b - a) / 2.0 if stats["mode"] == "min_max" else b

    def action_to_robot_units(self, action: np.ndarray) -> np.ndarray:
        """Map actions in [-1, 1] (shape (..., A)) to robot units; the graph's ``action`` output does the same."""
        action = np.asarray(action)
        stats = self.action_stats
        if stats is None:
            return action
        a, b = np.asarray(stats["a"]), np.asarray(stats["b"])
        if stats["mode"] == "min_max":
            return (action + 1.0) * 0.5 * (b - a) + a
        return action * b + a

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Any, source: str = "<metadata>") -> "ModelMetadata":
        """Validate and build; raises MetadataError naming ``source`` and the offending field."""
        if not isinstance(data, dict):
            raise MetadataError(f"{source}: actsac metadata is not a JSON object")
        version = data.get("format_version")
        if not isinstance(version, int):
            raise MetadataError(f"{source}: metadata field 'format_version' is missing or not an integer")
        if version > FORMAT_VERSION:
            raise MetadataError(f"{source}: metadata format_version {version} is newer than this actsac reads "
                                f"({FORMAT_VERSION}); upgrade actsac on this computer")
        values = {}
        for f in fields(cls):
            if f.name not in data and f.name not in OPTIONAL_FIELDS:
                raise MetadataError(f"{source}: metadata field '{f.name}' is missing")
            values[f.name] = data.get(f.name)
        metadata = cls(**values)
        metadata._check(source)
        return metadata

    def _check(self, source: str) -> None:
        def need(ok: bool, field_name: str, why: str) -> None:
            if not ok:
                raise MetadataError(f"{source}: metadata field '{field_name}' {why}")

        def positive_int(value: Any) -> bool:
            return isinstance(value, int) and not isinstance(value, bool) and value >= 1

        need(positive_int(self.chunk_size), "chunk_size", "must be a positive integer")
        need(positive_int(self.state_dim), "state_dim", "must be a positive integer")
        need(self.history is None or positive_int(self.history), "history", "must be a positive integer or null")
        need(isinstance(self.control_hz, (int, float)) and self.control_hz > 0, "control_hz", "must be positive")
        need(self.precision in ("fp32", "fp16", "int8"), "precision",
             f"'{self.precision}' is not fp32, fp16 or int8")
        need(isinstance(self.action_groups, list) and bool(self.action_groups), "action_groups",
             "must be a non-empty list")
        for group in self.action_groups:
            need(isinstance(group, dict) and {"name", "joints", "units"} <= set(group), "action_groups",
                 "entries need 'name', 'joints' and 'units'")
            need(len(group["joints"]) == len(group["units"]) > 0, "action_groups",
                 f"group '{group['name']}' needs one unit per joint")
        need(isinstance(self.stochastic, bool), "stochastic", "must be true or false")
        need(not self.stochastic or (isinstance(self.log_std_bounds, list) and len(self.log_std_bounds) == 2),
             "log_std_bounds", "must be [min, max]")
        need(self.source is None or isinstance(self.source, dict), "source", "must be an object or null")
        cal = self.calibration
        need(cal is None or (isinstance(cal, dict) and isinstance(cal.get("joints"), dict)
                             and all(isinstance(e, dict) and set(e) == CALIBRATION_FIELDS
                                     and all(isinstance(v, int) for v in e.values()) for e in cal["joints"].values())),
             "calibration", f"must be null or {{source, joints: {{joint: {{{', '.join(sorted(CALIBRATION_FIELDS))}}}}}}} "
                            f"with integers")
        if self.observation_names is not None:
            need(len(self.observation_names) == self.state_dim, "observation_names",
                 f"has {len(self.observation_names)} names for state_dim {self.state_dim}")
        for name, stats, dim in (("obs_stats", self.obs_stats, self.state_dim),
                                 ("action_stats", self.action_stats, self.action_dim)):
            if stats is not None:
                need(isinstance(stats, dict) and stats.get("mode") in ("min_max", "mean_std"), name,
                     "needs mode min_max or mean_std")
                need(len(stats.get("a", ())) == len(stats.get("b", ())) == dim, name, f"needs {dim} values in a and b")
        need(isinstance(self.cameras, list), "cameras", "must be a list")
        for camera in self.cameras:
            need(isinstance(camera, dict) and {"name", "height", "width", "input"} <= set(camera), "cameras",
                 "entries need 'name', 'height', 'width' and 'input'")
            need(isinstance(camera["name"], str) and camera["name"].isidentifier(), "cameras",
                 f"camera name {camera['name']!r} is not an identifier")
            need(positive_int(camera["height"]) and positive_int(camera["width"]), "cameras",
                 f"camera '{camera['name']}' needs a positive integer height and width")
            need(camera["input"] == IMAGE_INPUT_PREFIX + camera["name"], "cameras",
                 f"camera '{camera['name']}' input must be '{IMAGE_INPUT_PREFIX}{camera['name']}'")
            for key, value in CAMERA_FORMAT.items():
                need(camera.get(key, value) == value, "cameras",
                     f"camera '{camera['name']}' {key} {camera.get(key)!r} is not {value!r} (the only one there is)")
        names = [camera["name"] for camera in self.cameras]
        need(len(set(names)) == len(names), "cameras", f"names a camera twice ({', '.join(names)})")
        need(not self.cameras or self.format_version >= 2, "cameras", "needs format_version 2 or newer")


def metadata_props(metadata: ModelMetadata) -> dict[str, str]:
    """The ONNX metadata_props entries (string -> string) that carry ``metadata``."""
    return {METADATA_KEY: metadata.to_json(), VERSION_KEY: str(metadata.format_version)}


def read_metadata(path: str | os.PathLike) -> ModelMetadata:
    """The actsac metadata of an exported ONNX file; MetadataError (one line) when it is missing or bad."""
    path = Path(path)
    if not path.is_file():
        raise MetadataError(f"{path}: no such file")
    props = _read_props(path)
    if METADATA_KEY not in props:
        raise MetadataError(f"{path}: not an actsac model (no '{METADATA_KEY}' metadata in the ONNX file)")
    try:
        data = json.loads(props[METADATA_KEY])
    except json.JSONDecodeError as exc:
        raise MetadataError(f"{path}: metadata '{METADATA_KEY}' is not valid JSON ({exc.msg})") from None
    return ModelMetadata.from_dict(data, str(path))


def _read_props(path: Path) -> dict[str, str]:
    """metadata_props through ``onnx`` (fast: weights stay on disk) or, on a robot, through onnxruntime."""
    try:
        import onnx
    except ImportError:
        onnx = None
    try:
        if onnx is not None:
            model = onnx.load(str(path), load_external_data=False)
            return {prop.key: prop.value for prop in model.metadata_props}
        from actsac.onnx_runtime import RuntimeMissing, import_onnxruntime

        try:
            ort = import_onnxruntime()
        except RuntimeMissing as exc:
            raise MetadataError(f"{path}: cannot read its metadata: {exc}") from None
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.log_severity_level = 3
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return dict(session.get_modelmeta().custom_metadata_map)
    except MetadataError:
        raise
    except Exception as exc:  # onnx raises DecodeError, onnxruntime its own types, for a file that is not ONNX
        raise MetadataError(f"{path}: not a readable ONNX file ({first_line(exc, 200)})") from None
