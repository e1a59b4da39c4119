"""Model backends behind one call: ``infer(observation) -> chunk (H, A) in robot units``.

``ort`` (ONNX Runtime, CPU; the default), ``trt`` (a TensorRT engine built by ``actsac-export --trt``,
beside the .onnx) and ``torch`` (eager PyTorch on the ``model.pt`` beside the .onnx; imported lazily, the
robot side never needs torch). Deterministic chunks are the graph's ``action`` output; ``--stochastic``
samples tanh(mean + std * eps) here on the host with a seeded generator and maps it to robot units with the
model metadata.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

from actsac._cli import first_line
from actsac.onnx_runtime import ORT_THREADS, RuntimeMissing, cpu_session_options, import_onnxruntime

from .errors import RunRefused

BACKENDS = ("ort", "trt", "torch")
EXAMPLE_MODEL = Path(__file__).parent / "assets" / "so100_reach.onnx"
WARMUP_CALLS = 3


def resolve_model(path: Path | None, spec) -> tuple[Path, object]:
    """(path, metadata) of the model to run: ``path``, else the example policy shipped for the so100."""
    from actsac.export import MetadataError, read_metadata

    if path is None:
        if not EXAMPLE_MODEL.is_file():
            raise RunRefused(f"no --model given and the example policy {EXAMPLE_MODEL} is not installed: pass --model")
        if spec.name != "so100":
            raise RunRefused(f"no --model given; the example policy drives the so100, not '{spec.name}': pass --model")
        path = EXAMPLE_MODEL
    try:
        return Path(path), read_metadata(path)
    except MetadataError as exc:
        raise RunRefused(str(exc)) from None


class OrtModel:
    """An ONNX Runtime session (all graph optimisations, 2 intra-op threads), batch 1."""

    def __init__(self, path: Path, threads: int = ORT_THREADS):
        try:
            ort = import_onnxruntime()
        except RuntimeMissing as exc:
            raise RunRefused(str(exc)) from None
        options = cpu_session_options(threads, spinning=False)  # no spinning pool threads: the tick needs the cores
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for a bad file
            raise RunRefused(f"{path}: ONNX Runtime cannot load it ({first_line(exc)})") from None
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, observation: np.ndarray, outputs: list[str]) -> dict[str, np.ndarray]:
        values = self.session.run(outputs, {self.input_name: observation[None].astype(np.float32, copy=False)})
        return {name: value[0] for name, value in zip(outputs, values)}


class TorchModel:
    """Eager PyTorch on the checkpoint beside the .onnx (``model.onnx`` -> ``model.pt``)."""

    def __init__(self, onnx_path: Path, threads: int = ORT_THREADS):
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
        torch.set_num_threads(threads)
        self._torch = torch

    def __call__(self, observation: np.ndarray, outputs: list[str]) -> dict[str, np.ndarray]:
        torch = self._torch
        with torch.inference_mode():
            mean, log_std = self.actor(torch.from_numpy(np.asarray(observation, np.float32)[None]))
            action = self.actor.to_robot_units(torch.tanh(mean))
        values = {"action": action, "action_mean": mean, "action_log_std": log_std}
        return {name: values[name][0].numpy() for name in outputs}


class TrtModel:
    """A TensorRT engine (``model.engine`` beside ``model.onnx``) through the export package's runner."""

    def __init__(self, onnx_path: Path):
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
        self.runner = TensorRTRunner(engine)

    def __call__(self, observation: np.ndarray, outputs: list[str]) -> dict[str, np.ndarray]:
        values = self.runner.run(np.asarray(observation, np.float32)[None])
        if not isinstance(values, dict):  # a runner returning only the action
            values = {"action": values}
        return {name: np.asarray(values[name])[0] for name in outputs}


def open_backend(backend: str, model_path: Path, threads: int = ORT_THREADS):
    if backend == "ort":
        return OrtModel(model_path, threads)
    if backend == "torch":
        return TorchModel(model_path, threads)
    if backend == "trt":
        return TrtModel(model_path)
    raise RunRefused(f"unknown backend '{backend}' (one of {', '.join(BACKENDS)})")


def warm_up(infer: Callable[[np.ndarray], np.ndarray], observation: np.ndarray, calls: int = WARMUP_CALLS) -> float:
    """A few untimed calls (the first ones allocate); returns the last call's latency in seconds, which sizes
    how early chunk mode asks for the next chunk."""
    latency = 0.0
    for _ in range(calls):
        t0 = time.perf_counter()
        infer(observation)
        latency = time.perf_counter() - t0
    return latency


def make_infer(model, metadata, stochastic: bool = False, seed: int = 0) -> Callable[[np.ndarray], np.ndarray]:
    """``observation -> chunk (H, A)`` in robot units (float64), deterministic or seeded stochastic."""
    if not stochastic:
        return lambda observation: np.asarray(model(observation, ["action"])["action"], dtype=np.float64)
    rng = np.random.default_rng(seed)

    def sample(observation: np.ndarray) -> np.ndarray:
        out = model(observation, ["action_mean", "action_log_std"])
        mean = np.asarray(out["action_mean"], np.float64)
        std = np.exp(np.asarray(out["action_log_std"], np.float64))
        squashed = np.tanh(mean + std * rng.standard_normal(mean.shape))
        return np.asarray(metadata.action_to_robot_units(squashed), dtype=np.float64)

    return sample
