"""Model backends behind one call: ``infer(observation, images=None) -> chunk (H, A) in robot units``.

``ort`` (ONNX Runtime, CPU; the default), ``trt`` (a TensorRT engine built by ``actsac-export --trt``,
beside the .onnx) and ``torch`` (eager PyTorch on the ``model.pt`` beside the .onnx; imported lazily, the
robot side never needs torch). Deterministic chunks are the graph's ``action`` output; ``--stochastic``
samples tanh(mean + std * eps) here on the host with a seeded generator and maps it to robot units with the
model metadata.

A camera model also takes one frame per camera: ``images = {camera: uint8 (H, W, 3) RGB}``, one frame each
and no batch dim, like the observation (the graph's ``image.<camera>`` inputs are those bytes with the batch
dim added; the graph casts, scales and normalises them). Every backend checks them once per call with
``ModelMetadata.check_images`` (a few shape / dtype comparisons): a missing, unknown, wrong-size or
wrong-dtype image is a one-line ValueError naming the camera. A state-only model takes no images.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

from actsac._cli import first_line
from actsac.export.metadata import INPUT_NAME, MetadataError, ModelMetadata, read_metadata
from actsac.onnx_runtime import ORT_THREADS, RuntimeMissing, cpu_session_options, import_onnxruntime

from .errors import RunRefused

BACKENDS = ("ort", "trt", "torch")
EXAMPLE_MODEL = Path(__file__).parent / "assets" / "so100_reach.onnx"
# The shipped example policies, by the name ``--model`` also takes: the default, the one seeing a camera, and the
# upper body's (three buses, arm / torso / hand heads), each with the robot it drives.
EXAMPLES = {"so100-reach": EXAMPLE_MODEL,
            "so100-visual-reach": Path(__file__).parent / "assets" / "so100_visual_reach.onnx",
            "upper-body-reach": Path(__file__).parent / "assets" / "upper_body_reach.onnx"}
EXAMPLE_ROBOTS = {"so100-reach": "so100", "so100-visual-reach": "so100", "upper-body-reach": "upper_body"}
DEFAULT_EXAMPLES = {"so100": "so100-reach", "upper_body": "upper-body-reach"}  # without --model
WARMUP_CALLS = 3
GREY = 128  # the pixel value of example_images

Images = dict[str, np.ndarray] | None  # {camera: uint8 (H, W, 3) RGB}, one frame per camera of the model


def resolve_model(path: Path | None, spec) -> tuple[Path, object]:
    """(path, metadata) of the model to run: ``path``, the example policy it names (``EXAMPLES``, when no such
    file exists), else the robot's default example policy (``DEFAULT_EXAMPLES``: so100, upper_body)."""
    name = None if path is None else str(path)
    if path is None or (name in EXAMPLES and not Path(path).exists()):
        if path is None:
            name = DEFAULT_EXAMPLES.get(spec.name)
            if name is None:
                raise RunRefused(f"no example policy drives '{spec.name}' (they drive "
                                 f"{', '.join(sorted(DEFAULT_EXAMPLES))}): pass --model")
        example = EXAMPLES[name]
        if not example.is_file():
            raise RunRefused(f"the example policy {example} is not installed: pass --model")
        if EXAMPLE_ROBOTS[name] != spec.name:
            raise RunRefused(f"the example policy {name} drives the {EXAMPLE_ROBOTS[name]}, not '{spec.name}': "
                             f"pass --model")
        path = example
    try:
        return Path(path), read_metadata(path)
    except MetadataError as exc:
        raise RunRefused(str(exc)) from None


def example_images(metadata, value: int = GREY) -> dict[str, np.ndarray] | None:
    """One uniform uint8 (H, W, 3) frame per camera of the model (mid-grey by default), None for a state-only
    model: what ``warm_up`` and actsac-bench feed a camera model when no camera is at hand."""
    if not metadata.cameras:
        return None
    return {c["name"]: np.full((c["height"], c["width"], 3), value, dtype=np.uint8) for c in metadata.cameras}


def _metadata_of(path: Path) -> ModelMetadata:
    try:
        return read_metadata(path)
    except MetadataError as exc:
        raise RunRefused(str(exc)) from None


class OrtModel:
    """An ONNX Runtime session (all graph optimisations, 2 intra-op threads), batch 1. ``metadata``: the
    model's (read from the file when not given)."""

    def __init__(self, path: Path, threads: int = ORT_THREADS, metadata=None):
        try:
            ort = import_onnxruntime()
        except RuntimeMissing as exc:
            raise RunRefused(str(exc)) from None
        options = cpu_session_options(threads, spinning=False)  # no spinning pool threads: the tick needs the cores
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for a bad file
            raise RunRefused(f"{path}: ONNX Runtime cannot load it ({first_line(exc)})") from None
        self.metadata = metadata if metadata is not None else _metadata_of(path)
        inputs = [i.name for i in self.session.get_inputs()]
        self.input_name = INPUT_NAME if INPUT_NAME in inputs else inputs[0]
        missing = [c["input"] for c in self.metadata.cameras if c["input"] not in inputs]
        if missing:  # refused at load, not as an ONNX Runtime error on every tick
            raise RunRefused(f"{path}: its metadata names the input '{missing[0]}', which the graph does not have "
                             f"(its inputs: {', '.join(inputs)})")
        self.image_inputs = {c["name"]: c["input"] for c in self.metadata.cameras}

    def __call__(self, observation: np.ndarray, outputs: list[str], images: Images = None) -> dict[str, np.ndarray]:
        self.metadata.check_images(images)
        feed = {self.input_name: observation[None].astype(np.float32, copy=False)}
        if images:
            for camera, frame in images.items():
                feed[self.image_inputs[camera]] = np.asarray(frame)[None]
        values = self.session.run(outputs, feed)
        return {name: value[0] for name, value in zip(outputs, values)}


class TorchModel:
    """Eager PyTorch on the checkpoint beside the .onnx (``model.onnx`` -> ``model.pt``); ``metadata``: the
    .onnx's (read from it when not given), which checks the images."""

    def __init__(self, onnx_path: Path, threads: int = ORT_THREADS, metadata=None):
        try:
            import torch
        except ImportError:
            raise RunRefused("--backend torch needs PyTorch, which is not installed here (use --backend ort)") from None
        from actsac.policy import CheckpointError, load_checkpoint

        checkpoint = onnx_path.with_suffix(".pt")
        if not checkpoint.is_file():
            raise RunRefused(f"{checkpoint}: no checkpoint beside {onnx_path.name} for --backend torch")
        try:
            self.actor = load_checkpoint(checkpoint).actor
        except CheckpointError as exc:
            raise RunRefused(str(exc)) from None
        self.metadata = metadata if metadata is not None else _metadata_of(onnx_path)
        torch.set_num_threads(threads)
        self._torch = torch

    def __call__(self, observation: np.ndarray, outputs: list[str], images: Images = None) -> dict[str, np.ndarray]:
        torch = self._torch
        self.metadata.check_images(images)
        tensors = None
        if images:
            tensors = {camera: torch.from_numpy(_writable(np.ascontiguousarray(frame))[None])
                       for camera, frame in images.items()}
        with torch.inference_mode():
            mean, log_std = self.actor(torch.from_numpy(np.asarray(observation, np.float32)[None]), tensors)
            action = self.actor.robot_action(mean)
        values = {"action": action, "action_mean": mean, "action_log_std": log_std}
        return {name: values[name][0].numpy() for name in outputs}


def _writable(frame: np.ndarray) -> np.ndarray:
    """torch.from_numpy warns on a read-only array (a frame may come from a read-only buffer): copy that one."""
    return frame if frame.flags.writeable else frame.copy()


class TrtModel:
    """A TensorRT engine (``model.engine`` beside ``model.onnx``) through the export package's runner;
    ``metadata``: the .onnx's (read from it when not given), which checks the images."""

    def __init__(self, onnx_path: Path, metadata=None):
        try:
            from actsac.export.tensorrt import TensorRTRunner, missing_tensorrt_reason
        except ImportError as exc:
            raise RunRefused(f"--backend trt is unavailable: {exc}") from None
        reason = missing_tensorrt_reason()
        if reason:
            raise RunRefused(f"--backend trt is unavailable: {reason}")
        engine = onnx_path.with_suffix(".engine")
        if not engine.is_file():
            raise RunRefused(f"{engine}: no TensorRT engine; build it with actsac-export --trt")
        self.metadata = metadata if metadata is not None else _metadata_of(onnx_path)
        self.runner = TensorRTRunner(engine)
        self.image_inputs = {c["name"]: c["input"] for c in self.metadata.cameras}

    def __call__(self, observation: np.ndarray, outputs: list[str], images: Images = None) -> dict[str, np.ndarray]:
        self.metadata.check_images(images)
        state = np.asarray(observation, np.float32)[None]
        if images:  # named inputs: the state and one frame per camera
            feed = {INPUT_NAME: state, **{self.image_inputs[c]: np.asarray(f)[None] for c, f in images.items()}}
            values = self.runner.run(feed)
        else:  # a state-only engine takes the bare array, as always
            values = self.runner.run(state)
        if not isinstance(values, dict):  # a runner returning only the action
            values = {"action": values}
        return {name: np.asarray(values[name])[0] for name in outputs}


def open_backend(backend: str, model_path: Path, threads: int = ORT_THREADS, metadata=None):
    """The model object of ``backend``: ``model(observation, outputs, images=None) -> {output: array}``."""
    if backend == "ort":
        return OrtModel(model_path, threads, metadata)
    if backend == "torch":
        return TorchModel(model_path, threads, metadata)
    if backend == "trt":
        return TrtModel(model_path, metadata)
    raise RunRefused(f"unknown backend '{backend}' (one of {', '.join(BACKENDS)})")


def warm_up(infer: Callable[..., np.ndarray], observation: np.ndarray, calls: int = WARMUP_CALLS,
            images: Images = None) -> float:
    """A few untimed calls (the first ones allocate); returns the last call's latency in seconds, which sizes
    how early chunk mode asks for the next chunk. A camera model needs ``images`` (the present frames, or
    ``example_images(metadata)``)."""
    latency = 0.0
    for _ in range(calls):
        t0 = time.perf_counter()
        if images is None:
            infer(observation)
        else:
            infer(observation, images)
        latency = time.perf_counter() - t0
    return latency


def make_infer(model, metadata, stochastic: bool = False, seed: int = 0) -> Callable[..., np.ndarray]:
    """``infer(observation, images=None) -> chunk (H, A)`` in robot units (float64), deterministic or seeded
    stochastic; ``images`` as the backends take them (None for a state-only model). The stochastic one returns
    ``(sample, deterministic chunk)``: the safety check judges the policy's plan, not the noise on it."""
    if not stochastic:
        def infer(observation: np.ndarray, images: Images = None) -> np.ndarray:
            return np.asarray(model(observation, ["action"], images)["action"], dtype=np.float64)

        return infer
    rng = np.random.default_rng(seed)

    def sample(observation: np.ndarray, images: Images = None) -> np.ndarray:
        out = model(observation, ["action_mean", "action_log_std"], images)
        mean = np.asarray(out["action_mean"], np.float64)
        std = np.exp(np.asarray(out["action_log_std"], np.float64))
        squashed = np.tanh(mean + std * rng.standard_normal(mean.shape))
        return (np.asarray(metadata.action_to_robot_units(squashed), dtype=np.float64),
                np.asarray(metadata.action_to_robot_units(np.tanh(mean)), dtype=np.float64))

    return sample
