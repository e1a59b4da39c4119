"""Checkpoint -> one self-contained, verified ONNX file (imports torch and onnx: the workstation side).

The graph wraps the actor so that it takes raw observations in robot units (normalisation is inside the
actor) and, for a camera model, one ``image.<camera>`` input per camera: uint8 (B, H, W, 3) RGB, exactly the
camera's frame (the cast, the scaling to [0, 1], the per-channel normalisation and the layout change are in
the graph). It returns ``action_mean``, ``action_log_std`` (pre-tanh, normalised space) and ``action``
(tanh(mean) in robot units). The file is written to a temp path, checked against PyTorch in ONNX Runtime
(observations, and random, all-0 and all-255 images), and renamed into place only when every output is within
tolerance.
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
from .metadata import (CAMERA_FORMAT, DEFAULT_OPSET, FORMAT_VERSION, IMAGE_INPUT_PREFIX, INPUT_NAME, MAX_BATCH,
                       STATE_ONLY_VERSION, ModelMetadata, metadata_props)
from .verify import (OUTPUTS, TOLERANCE, Inputs, action_half_range, as_inputs, check, compare, first_rows, run_batched,
                     session_runner, tolerances, verification_inputs)

_NOISY_LOGGERS = ("torch.onnx", "torch.export", "torch._export", "torch._dynamo", "torch.fx", "onnxscript")


def image_input_names(config) -> list[str]:
    """The graph's image inputs, in camera order: ``image.<camera>``."""
    return [IMAGE_INPUT_PREFIX + name for name in config.camera_names]


class ExportedActor(nn.Module):
    """The graph the robot runs: the actor's (mean, log_std) plus the deterministic action in robot units.

    ``forward(observation, *images)``: one uint8 (B, H, W, 3) image per camera, in the config's camera order
    (the graph's input order)."""

    def __init__(self, actor: nn.Module):
        super().__init__()
        self.actor = actor
        self.camera_names = list(actor.config.camera_names)

    def forward(self, observation: torch.Tensor, *images: torch.Tensor):
        if len(images) != len(self.camera_names):
            raise ValueError(f"{len(images)} images given for the cameras {self.camera_names}")
        mean, log_std = self.actor(observation, dict(zip(self.camera_names, images)) if images else None)
        action = self.actor.robot_action(mean)
        return (action,) if log_std is None else (mean, log_std, action)  # no log-std: a deterministic actor


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
    """The metadata of ``checkpoint``'s export. A state-only model is written as format version 1 (robots with
    an older actsac still read it), a camera model as version 2 with its cameras. An imported policy
    (``extra["source"]``) says where it came from, and a deterministic one (``extra["stochastic"]`` False)
    has no log-std bounds."""
    config = checkpoint.config
    stochastic = bool(checkpoint.extra.get("stochastic", True))
    stats = lambda s: None if s is None else {"mode": s.mode, "a": list(s.a), "b": list(s.b)}  # noqa: E731
    cameras = [{"name": c.name, "height": c.height, "width": c.width, "input": name, **CAMERA_FORMAT}
               for c, name in zip(config.cameras, image_input_names(config))]
    return ModelMetadata(
        format_version=FORMAT_VERSION if cameras else STATE_ONLY_VERSION, chunk_size=config.chunk_size,
        control_hz=float(config.control_hz),
        actor=config.actor, state_dim=config.state_dim, history=config.history if config.uses_history else None,
        observation_names=config.observation_names,
        action_groups=[{"name": g.name, "joints": list(g.joints), "units": list(g.units)}
                       for g in config.action_groups],
        obs_stats=stats(config.obs_stats), action_stats=stats(config.action_stats),
        log_std_bounds=[float(config.log_std_min), float(config.log_std_max)] if stochastic else None,
        task=checkpoint.extra.get("task"), checkpoint_sha256=file_sha256(checkpoint.path),
        exporter=f"actsac {__version__}, torch {torch.__version__.split('+')[0]}", opset=opset, precision=precision,
        cameras=cameras, stochastic=stochastic, source=checkpoint.extra.get("source"),
        calibration=training_calibration(checkpoint))


def training_calibration(checkpoint: Checkpoint) -> dict | None:
    """The calibration the checkpoint's training data was recorded with: what ``actsac-train`` (the simulator's)
    or the LeRobot import (``--calibration``) stored; for an actsac checkpoint written before that, the
    simulator's calibration of its task's robot when its joints are the task's, else None (unknown)."""
    extra = checkpoint.extra
    if "calibration" in extra or extra.get("source"):
        return extra.get("calibration")
    from actsac.policy import train

    task = train.TASKS.get((extra.get("task") or {}).get("name"))
    if task is None or list(checkpoint.config.joint_names) != task.robot.joints:
        return None
    return task.robot.calibration


def to_onnx(actor: nn.Module, batch: int | None, opset: int = DEFAULT_OPSET,
            outputs: tuple[str, ...] = OUTPUTS) -> onnx.ModelProto:
    """Trace ``actor`` with the dynamo exporter; ``batch`` None gives a dynamic batch dim (1..MAX_BATCH), one
    dim shared by the observation and every image input. ``outputs``: the graph's output names (the metadata's
    ``outputs``)."""
    config = actor.config
    size = batch or 2  # 2, not 1: a size-1 example would be specialised
    examples = (torch.zeros((size, *observation_shape(config))),
                *(torch.zeros((size, c.height, c.width, 3), dtype=torch.uint8) for c in config.cameras))
    names = [INPUT_NAME, *image_input_names(config)]
    dynamic = None
    if not batch:
        dim = torch.export.Dim("batch", min=1, max=MAX_BATCH)
        # keyed by ExportedActor.forward's parameters: observation, and the *images tuple (when there are images)
        dynamic = {"observation": {0: dim}}
        if config.cameras:
            dynamic["images"] = tuple({0: dim} for _ in config.cameras)
    with quiet_exporter(), torch.no_grad():
        program = torch.onnx.export(ExportedActor(actor).eval(), examples, None, input_names=names,
                                    output_names=list(outputs), opset_version=opset, dynamic_shapes=dynamic,
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
    2.5-3x faster; the outputs move by about 3e-2 (log-std up to 1e-1), hence its looser tolerance.

    - 7-bit weights (``reduce_range``): x86 CPUs without VNNI (AVX2, AVX-512 before VNNI) multiply u8 x s8
      pairs into saturating int16 sums; with full-range weights those saturate and the actions move by 0.3-0.7
      (log-std by 1-2). 7-bit weights cannot saturate there and cost little elsewhere.
    - Convolutions stay fp32: ONNX Runtime's ConvInteger is 2-3.5x slower than its fp32 Conv at batch 1 (small
      CNN 48x64: 1.0 vs 0.5 ms; ResNet-18 96x128: 73 vs 30 ms; 480x640: 533 vs 168 ms) and no more accurate;
      only the matrix products (the transformer, the heads) are quantised.
    """
    import tempfile

    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.registry import IntegerOpsRegistry

    op_types = [op for op in IntegerOpsRegistry if op != "Conv"]
    with tempfile.TemporaryDirectory() as tmp, quiet_exporter():
        source, target = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        onnx.save_model(model, source)
        quantize_dynamic(source, target, weight_type=QuantType.QInt8, per_channel=True, reduce_range=True,
                         op_types_to_quantize=op_types)
        return onnx.load(target)


CONVERT = {"fp32": lambda model: model, "fp16": to_fp16, "int8": to_int8}


def torch_outputs(actor: nn.Module, inputs: Inputs | np.ndarray,
                  outputs: tuple[str, ...] = OUTPUTS) -> dict[str, np.ndarray]:
    """PyTorch's outputs on ``{input name: array}`` (a bare observation array for a state-only actor), named
    ``outputs`` (the metadata's: a deterministic actor has ``action`` only)."""
    inputs = as_inputs(inputs)
    images = [torch.from_numpy(np.ascontiguousarray(inputs[name])) for name in image_input_names(actor.config)]
    with torch.inference_mode():
        values = ExportedActor(actor)(torch.from_numpy(np.ascontiguousarray(inputs[INPUT_NAME])), *images)
    return {name: value.numpy() for name, value in zip(outputs, values, strict=True)}


def export_onnx(checkpoint: Checkpoint, out: Path, *, opset: int = DEFAULT_OPSET, batch: int | None = None,
                precision: str = "fp32", log: Callable[[str], None] = print) -> ExportResult:
    """Export, verify against PyTorch (raises VerificationError, leaving nothing behind), then rename into
    ``out``. ``batch`` None: dynamic batch, verified at batch 1 and at the whole verification set.
    ``precision``: "fp32", "fp16" (fp16 graph, fp32 observation and outputs, uint8 images) or "int8" (dynamic
    quantisation)."""
    if precision not in CONVERT:
        raise ValueError(f"precision '{precision}' is not one of {', '.join(CONVERT)}")
    actor = checkpoint.actor.eval()
    metadata = build_metadata(checkpoint, opset, precision)
    graph = fold_for_inference(actor)
    if graph is not actor:
        if actor.config.cameras:
            log("graph: attention that cannot vary with the observation or images folded away (the first decoder "
                "layer's self-attention over the learned queries; exact; verified below)")
        else:
            log("graph: attention that cannot vary with the observation folded away (exact; verified below)")
    model = to_onnx(graph, batch, opset, metadata.outputs)
    written = next(entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx"))
    if written != opset:  # the exporter falls back to another opset when it cannot convert to the one asked
        raise ValueError(f"opset {opset} asked, the exporter wrote opset {written}; choose {written} or "
                         f"{DEFAULT_OPSET} (the default)")
    strip_debug_info(model)
    model = CONVERT[precision](model)
    for key, value in metadata_props(metadata).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value

    inputs, described = verification_inputs(metadata, multiple_of=batch or 1)
    reference = torch_outputs(actor, inputs, metadata.outputs)
    tolerance = tolerances(metadata, TOLERANCE[precision])
    batches = [batch] if batch else [1, len(inputs[INPUT_NAME])]

    def write_and_verify(tmp: str) -> None:
        onnx.save_model(model, tmp)
        session = ort_session(tmp)
        log(f"verify ONNX Runtime vs PyTorch ({precision}) on {described}")
        if metadata.stochastic:
            log(f" tolerance: {tolerance['action_mean']:.0e} on action_mean / action_log_std; action (robot units): "
                f"that x the largest action half-range {action_half_range(metadata):g}")
        else:  # only the action: no mean / log-std outputs
            log(f" tolerance on action (robot units): {tolerance['action_mean']:.0e} x the largest action "
                f"half-range {action_half_range(metadata):g}")
        for size in batches:
            errors = compare(reference, run_batched(session_runner(session), inputs, size), tolerance)
            log(f" batch {size}:")
            for error in errors:
                log(error.line())
            check(errors, f"ONNX Runtime vs PyTorch at batch {size}")

    atomic_write(out, write_and_verify)
    latency_batch = batch or 1
    latency = ort_latency(out, first_rows(inputs, latency_batch), runs=50, threads=ORT_THREADS)
    return ExportResult(out, metadata, actor.num_parameters(), out.stat().st_size, latency, latency_batch)
