"""Checkpoint -> one self-contained, verified ONNX file (imports torch and onnx: the workstation side).

The graph wraps the actor so that it takes raw observations in robot units (normalisation is inside the
actor) and returns ``action_mean``, ``action_log_std`` (pre-tanh, normalised space) and ``action``
(tanh(mean) in robot units). The file is written to a temp path, checked against PyTorch in ONNX Runtime,
and renamed into place only when every output is within tolerance.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import torch
from torch import nn

from actsac import __version__
from actsac.files import atomic_write, file_sha256
from actsac.onnx_runtime import ORT_THREADS, ort_latency, ort_session
from actsac.policy import Checkpoint, observation_shape
from actsac.timing import LatencyStats

from .fold import fold_for_inference
from .metadata import DEFAULT_OPSET, FORMAT_VERSION, INPUT_NAME, MAX_BATCH, ModelMetadata, metadata_props
from .verify import (OUTPUTS, TOLERANCE, action_half_range, check, compare, run_batched, session_runner, tolerances,
                     verification_observations)

_NOISY_LOGGERS = ("torch.onnx", "torch.export", "torch._export", "torch._dynamo", "torch.fx", "onnxscript")


class ExportedActor(nn.Module):
    """The graph the robot runs: the actor's (mean, log_std) plus the deterministic action in robot units."""

    def __init__(self, actor: nn.Module):
        super().__init__()
        self.actor = actor

    def forward(self, observation: torch.Tensor):
        mean, log_std = self.actor(observation)
        return mean, log_std, self.actor.to_robot_units(torch.tanh(mean))


@dataclass
class ExportResult:
    path: Path
    metadata: ModelMetadata
    parameters: int
    file_bytes: int
    latency: LatencyStats
    latency_batch: int


@contextlib.contextmanager
def quiet_exporter():
    """Silence the exporter's progress prints, warnings and logs (torchvision notices, constant folding...)."""
    saved = {name: logging.getLogger(name).level for name in _NOISY_LOGGERS}
    for name in saved:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def build_metadata(checkpoint: Checkpoint, opset: int, precision: str) -> ModelMetadata:
    config = checkpoint.config
    stats = lambda s: None if s is None else {"mode": s.mode, "a": list(s.a), "b": list(s.b)}  # noqa: E731
    return ModelMetadata(
        format_version=FORMAT_VERSION, chunk_size=config.chunk_size, control_hz=float(config.control_hz),
        actor=config.actor, state_dim=config.state_dim, history=config.history if config.uses_history else None,
        observation_names=config.observation_names,
        action_groups=[{"name": g.name, "joints": list(g.joints), "units": list(g.units)}
                       for g in config.action_groups],
        obs_stats=stats(config.obs_stats), action_stats=stats(config.action_stats),
        log_std_bounds=[float(config.log_std_min), float(config.log_std_max)],
        task=checkpoint.extra.get("task"), checkpoint_sha256=file_sha256(checkpoint.path),
        exporter=f"actsac {__version__}, torch {torch.__version__.split('+')[0]}", opset=opset, precision=precision)


def to_onnx(actor: nn.Module, batch: int | None, opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    """Trace ``actor`` with the dynamo exporter; ``batch`` None gives a dynamic batch dim (1..MAX_BATCH)."""
    shape = observation_shape(actor.config)
    example = torch.zeros((batch or 2, *shape))  # 2, not 1: a size-1 example would be specialised
    dynamic = None if batch else {INPUT_NAME: {0: torch.export.Dim("batch", min=1, max=MAX_BATCH)}}
    with quiet_exporter(), torch.no_grad():
        program = torch.onnx.export(ExportedActor(actor).eval(), (example,), None, input_names=[INPUT_NAME],
                                    output_names=list(OUTPUTS), opset_version=opset, dynamic_shapes=dynamic,
                                    external_data=False, dynamo=True, verbose=False)
    return program.model_proto


def strip_debug_info(model: onnx.ModelProto) -> None:
    """Drop the exporter's per-node stack traces and names (they embed this workstation's source paths and
    make up a good part of a small model's file)."""
    graph = model.graph
    for item in [*graph.node, *graph.input, *graph.output, *graph.value_info, *graph.initializer]:
        del item.metadata_props[:]
        item.doc_string = ""
    del graph.metadata_props[:]


def to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """An fp16 graph with fp32 inputs and outputs (casts at the boundary), via ONNX Runtime's converter."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    with quiet_exporter():
        return convert_float_to_float16(model, keep_io_types=True)


def to_int8(model: onnx.ModelProto) -> onnx.ModelProto:
    """Dynamic int8 quantisation of the weights (activations quantised on the fly), via ONNX Runtime's tool.

    A CPU option: the default actor's fp32 weights do not fit in cache, so a quarter of the bytes runs about
    2.8x faster; the outputs move by about 2e-2 (log-std 6e-2), hence its looser tolerance.
    """
    import tempfile

    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp, quiet_exporter():
        source, target = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        onnx.save_model(model, source)
        quantize_dynamic(source, target, weight_type=QuantType.QInt8, per_channel=True)
        return onnx.load(target)


CONVERT = {"fp32": lambda model: model, "fp16": to_fp16, "int8": to_int8}


def torch_outputs(actor: nn.Module, observations: np.ndarray) -> dict[str, np.ndarray]:
    with torch.inference_mode():
        values = ExportedActor(actor)(torch.from_numpy(observations))
    return {name: value.numpy() for name, value in zip(OUTPUTS, values)}


def export_onnx(checkpoint: Checkpoint, out: Path, *, opset: int = DEFAULT_OPSET, batch: int | None = None,
                precision: str = "fp32", log: Callable[[str], None] = print) -> ExportResult:
    """Export, verify against PyTorch (raises VerificationError, leaving nothing behind), then rename into
    ``out``. ``batch`` None: dynamic batch, verified at batch 1 and at the whole observation set.
    ``precision``: "fp32", "fp16" (fp16 graph, fp32 inputs / outputs) or "int8" (dynamic quantisation)."""
    if precision not in CONVERT:
        raise ValueError(f"precision '{precision}' is not one of {', '.join(CONVERT)}")
    actor = checkpoint.actor.eval()
    metadata = build_metadata(checkpoint, opset, precision)
    graph = fold_for_inference(actor)
    if graph is not actor:
        log("graph: attention that cannot vary with the observation folded away (exact; verified below)")
    model = to_onnx(graph, batch, opset)
    written = next(entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx"))
    if written != opset:  # the exporter falls back to another opset when it cannot convert to the one asked
        raise ValueError(f"opset {opset} asked, the exporter wrote opset {written}; choose {written} or "
                         f"{DEFAULT_OPSET} (the default)")
    strip_debug_info(model)
    model = CONVERT[precision](model)
    for key, value in metadata_props(metadata).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value

    observations, described = verification_observations(metadata, multiple_of=batch or 1)
    reference = torch_outputs(actor, observations)
    tolerance = tolerances(metadata, TOLERANCE[precision])
    batches = [batch] if batch else [1, len(observations)]

    def write_and_verify(tmp: str) -> None:
        onnx.save_model(model, tmp)
        session = ort_session(tmp)
        log(f"verify ONNX Runtime vs PyTorch ({precision}) on {described}")
        log(f" tolerance: {tolerance['action_mean']:.0e} on action_mean / action_log_std; action (robot units): "
            f"that x the largest action half-range {action_half_range(metadata):g}")
        for size in batches:
            errors = compare(reference, run_batched(session_runner(session), observations, size), tolerance)
            log(f" batch {size}:")
            for error in errors:
                log(error.line())
            check(errors, f"ONNX Runtime vs PyTorch at batch {size}")

    atomic_write(out, write_and_verify)
    latency_batch = batch or 1
    latency = ort_latency(out, observations[:latency_batch], runs=50, threads=ORT_THREADS)
    return ExportResult(out, metadata, actor.num_parameters(), out.stat().st_size, latency, latency_batch)
