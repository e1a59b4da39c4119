"""Model backends behind one call: ``infer(observation) -> chunk (H, A) in robot units``.

``ort`` (ONNX Runtime, CPU; the default), ``trt`` (a TensorRT engine built by ``actsac-export --trt``,
beside the .onnx) and ``torch`` (eager PyTorch on the ``model.pt`` beside the .onnx; imported lazily, the
robot side never needs torch). Deterministic chunks are the graph's ``action`` output; ``--stochastic``
samples tanh(mean + std * eps) here on the host with a seeded generator and maps it to robot units with the
model metadata.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from actsac._cli import UserError, first_line

BACKENDS = ("ort", "trt", "torch")
ORT_THREADS = 2


class OrtModel:
    """An ONNX Runtime session (all graph optimisations, 2 intra-op threads), batch 1."""

    def __init__(self, path: Path, threads: int = ORT_THREADS):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # ORT's pool threads spin after each run by default: on a small CPU that steals the control
        # thread's (and the bus's) cores exactly when the next tick is due.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for a bad file
            raise UserError(f"{path}: ONNX Runtime cannot load it ({first_line(exc)})") from None
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
            raise UserError("--backend torch needs PyTorch, which is not installed here (use --backend ort)") from None
        from actsac.policy import CheckpointError, load_checkpoint

        checkpoint = onnx_path.with_suffix(".pt")
        if not checkpoint.is_file():
            raise UserError(f"{checkpoint}: no checkpoint beside {onnx_path.name} for --backend torch")
        try:
            self.actor = load_checkpoint(checkpoint).actor
        except CheckpointError as exc:
            raise UserError(str(exc)) from None
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
            raise UserError(f"--backend trt is unavailable: {exc}") from None
        reason = missing_tensorrt_reason()
        if reason:
            raise UserError(f"--backend trt is unavailable: {reason}")
        engine = onnx_path.with_suffix(".engine")
        if not engine.is_file():
            raise UserError(f"{engine}: no TensorRT engine; build it with actsac-export --trt")
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
    raise UserError(f"unknown backend '{backend}' (one of {', '.join(BACKENDS)})")


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
