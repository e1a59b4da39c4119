"""Batch-1 latency of an exported actor per backend, and its FLOPs. Each backend is timed through the object
``actsac-run`` itself uses (runtime/backends.py), asking for the ``action`` output as the deterministic loop does;
a figure or backend that needs a missing package (``onnx`` for FLOPs, ``torch``) is reported as skipped, with why.
"""

from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from actsac._cli import first_line
from actsac.files import file_sha256
from actsac.timing import time_calls

from . import BenchError

BACKENDS = ("ort", "ort-cuda", "ort-trt", "trt", "torch")
CPU = "CPUExecutionProvider"
ORT_PROVIDERS = {"ort": CPU, "ort-cuda": "CUDAExecutionProvider", "ort-trt": "TensorrtExecutionProvider"}
CPU_PROVIDERS = (CPU, "torch-cpu")  # providers whose speed the CPU peak bounds
TIMED = ("ok", "fallback")  # statuses that carry latencies ("fallback": ONNX Runtime ran another provider)
OUTPUTS = ["action"]
LATENCY_KEYS = ("p50_ms", "p90_ms", "p99_ms", "max_ms", "mean_ms")


@dataclass
class BackendResult:
    backend: str
    status: str  # "ok" | "fallback" | "skipped" | "failed"
    note: str = ""
    provider: str | None = None  # what actually ran (ONNX Runtime falls back to CPU silently)
    latencies_ms: list[float] = field(default_factory=list, repr=False)

    def summary(self) -> dict:
        """The schema's backend entry: always the same keys, latencies null when nothing was timed."""
        lat = np.asarray(self.latencies_ms)
        figures = [*np.percentile(lat, (50, 90, 99)), lat.max(), lat.mean()] if lat.size else [None] * 5
        return {"backend": self.backend, "status": self.status, "note": self.note, "provider": self.provider,
                "iters": lat.size, **{key: None if v is None else float(v) for key, v in zip(LATENCY_KEYS, figures)}}


def time_model(model: Path, backends: list[str], threads: int, iters: int, warmup: int) -> tuple[dict, list]:
    """Time ``model`` on each backend, printing a row per backend: (the report's ``model`` section and
    ``backends`` entries, the raw results for the histogram). An unreadable model raises ``BenchError``."""
    from actsac.export import MetadataError, read_metadata
    from actsac.runtime.backends import example_images

    try:
        metadata = read_metadata(model)
    except MetadataError as exc:
        raise BenchError(str(exc)) from None
    obs = example_observation(metadata)
    images = example_images(metadata)  # a camera model: one mid-grey frame per camera
    flops, flops_note = onnx_flops(model)
    print(f"actsac-bench: {model.name} ({metadata.actor}, chunk {metadata.chunk_size}), batch 1, "
          f"{threads} thread(s), {warmup} warm-up + {iters} timed calls per backend", flush=True)
    raw = []
    for backend in backends:
        raw.append(bench_backend(backend, model, obs, threads, iters, warmup, images))
        print(format_row(raw[-1].summary()), flush=True)
    section = {"path": str(model), "sha256": file_sha256(model), "actor": metadata.actor,
               "chunk_size": metadata.chunk_size, "action_dim": metadata.action_dim,
               "observation_shape": list(metadata.observation_shape), "precision": metadata.precision,
               "cameras": [{k: c[k] for k in ("name", "height", "width")} for c in metadata.cameras],
               "flops": flops, "flops_note": flops_note}
    return {"model": section, "backends": [r.summary() for r in raw]}, raw


def format_row(r: dict) -> str:
    """One backend entry as a line: its latencies and provider, or its status and why."""
    if r["status"] not in TIMED:
        return f"  {r['backend']:9} {r['status']}: {r['note']}"
    flag = "  FALLBACK: " if r["status"] == "fallback" else "  ("
    note = f"{flag}{r['note']}{')' if r['status'] == 'ok' else ''}" if r["note"] else ""
    return (f"  {r['backend']:9} p50 {r['p50_ms']:7.3f} ms  p90 {r['p90_ms']:7.3f}  p99 {r['p99_ms']:7.3f}  "
            f"max {r['max_ms']:7.3f}  [{r['provider']}]{note}")


def example_observation(metadata) -> np.ndarray:
    """A batch-1 observation in the middle of the normalisation range (zeros without stats)."""
    obs = np.zeros((1, *metadata.observation_shape), dtype=np.float32)
    stats = metadata.obs_stats
    if stats and stats["mode"] == "min_max":
        obs[...] = (np.asarray(stats["a"]) + np.asarray(stats["b"])) / 2
    elif stats:
        obs[...] = np.asarray(stats["a"])
    return obs


def bench_backend(backend: str, model: Path, obs: np.ndarray, threads: int, iters: int, warmup: int,
                  images: dict[str, np.ndarray] | None = None) -> BackendResult:
    """Time ``backend`` through the object actsac-run uses for it (``images``: a camera model's frames); a call
    that raises (out of memory, a CUDA error) marks it failed, and the other backends still run."""
    if backend in ORT_PROVIDERS:
        result, call = _open_ort(model, backend, obs, threads, images)
    elif backend == "trt":
        result, call = _open_trt(model, obs, images)
    elif backend == "torch":
        result, call = _open_torch(model, obs, threads, images)
    else:
        raise BenchError(f"unknown backend '{backend}' (one of {', '.join(BACKENDS)})")
    if call is not None:
        try:
            result.latencies_ms = time_calls(call, iters, warmup).samples_ms
        except Exception as exc:  # noqa: BLE001 (reported per backend)
            result.status, result.note = "failed", f"inference failed: {first_line(exc)}"
    return result


def _open_ort(model: Path, backend: str, obs: np.ndarray, threads: int, images=None):
    """ONNX Runtime with actsac-run's session options, the provider asked for first, then the CPU. Like each
    ``_open_*``: (the result, the call to time, or None when the backend cannot run)."""
    from actsac.onnx_runtime import RuntimeMissing, import_onnxruntime
    from actsac.runtime.backends import OrtModel

    try:
        ort = import_onnxruntime()
    except RuntimeMissing as exc:
        return BackendResult(backend, "skipped", str(exc)), None
    wanted = ORT_PROVIDERS[backend]
    try:
        ort_model = OrtModel(model, threads)
        session = ort_model.session  # the runtime's CPU session (threads, no spinning)
    except Exception as exc:  # noqa: BLE001 (the runtime's one-line refusal of a file it cannot load)
        return BackendResult(backend, "failed", first_line(exc)), None
    available = ort.get_available_providers()
    if wanted != CPU:
        chain = [wanted] + (["CUDAExecutionProvider"] if backend == "ort-trt" and "CUDAExecutionProvider" in available
                            else []) + [CPU]
        try:
            with warnings.catch_warnings():  # ORT warns about a provider it lacks, then falls back: we report it
                warnings.simplefilter("ignore")
                session = ort.InferenceSession(str(model), session.get_session_options(), providers=chain)
        except Exception as exc:  # noqa: BLE001 (a provider that fails to initialise: reported, not raised)
            return BackendResult(backend, "failed", f"session creation failed: {first_line(exc)}"), None
    used = session.get_providers()[0]
    status, note = "ok", ""
    if used != wanted:
        why = "" if wanted in available else f": {wanted} is not in this onnxruntime build ({', '.join(available)})"
        status, note = "fallback", f"asked for {wanted}, ONNX Runtime ran {used}{why}"
    feed = {session.get_inputs()[0].name: obs}
    for camera in ort_model.metadata.cameras:  # the graph's image.<camera> inputs, batch 1
        feed[camera["input"]] = images[camera["name"]][None]
    return BackendResult(backend, status, note, used), lambda: session.run(OUTPUTS, feed)


def _open_trt(model: Path, obs: np.ndarray, images=None):
    """The TensorRT engine ``actsac-export --trt`` builds beside the .onnx, as ``actsac-run --backend trt``."""
    from actsac.export.tensorrt import missing_tensorrt_reason
    from actsac.runtime.backends import TrtModel

    reason = missing_tensorrt_reason()
    if reason:
        return BackendResult("trt", "skipped", reason), None
    engine = model.with_suffix(".engine")
    if not engine.is_file():
        return BackendResult("trt", "skipped", f"no engine at {engine}: build it with actsac-export --trt"), None
    try:
        runner = TrtModel(model)
    except Exception as exc:  # noqa: BLE001 (an engine from another TensorRT version or GPU, a CUDA error)
        return BackendResult("trt", "failed", first_line(exc)), None
    return BackendResult("trt", "ok", "", "TensorRT"), lambda: runner(obs[0], OUTPUTS, images)


def _open_torch(model: Path, obs: np.ndarray, threads: int, images=None):
    """Eager PyTorch on the ``model.pt`` beside the .onnx, as ``actsac-run --backend torch``."""
    try:
        importlib.import_module("torch")
    except ImportError:
        return BackendResult("torch", "skipped", "PyTorch is not installed (normal on a robot computer)"), None
    from actsac.runtime.backends import TorchModel

    checkpoint = model.with_suffix(".pt")
    if not checkpoint.is_file():
        return BackendResult("torch", "skipped", f"no checkpoint {checkpoint.name} beside {model.name}"), None
    try:
        actor = TorchModel(model, threads)
    except Exception as exc:  # noqa: BLE001 (the runtime's one-line refusal of a checkpoint it cannot load)
        return BackendResult("torch", "failed", first_line(exc)), None
    return BackendResult("torch", "ok", "eager, inference_mode", "torch-cpu"), lambda: actor(obs[0], OUTPUTS, images)


def onnx_flops(model: Path) -> tuple[int | None, str]:
    """(FLOPs of one batch-1 call, what the count covers): 2 x multiply-adds of every MatMul and Gemm of the
    exported graph (MatMulInteger in an int8 one), shapes from ONNX shape inference with the batch fixed to 1.
    Omitted: element-wise ops, normalisation, softmax, biases, convolutions, nodes inside control flow, and what
    ONNX Runtime's optimiser changes."""
    try:
        import onnx
    except ImportError:
        return None, "not counted: the onnx package is not installed"
    try:
        proto = onnx.load(str(model))
        for value in proto.graph.input:  # the dynamic batch -> 1, so that every shape downstream is concrete
            for dim in value.type.tensor_type.shape.dim:
                if not dim.HasField("dim_value"):
                    dim.dim_value = 1
        # the fp16 converter keeps the exporter's symbolic shapes and appends its input casts at the end of the
        # node list: shape inference needs fresh shapes and nodes in topological order
        del proto.graph.value_info[:]
        _sort_topologically(proto.graph)
        graph = onnx.shape_inference.infer_shapes(proto, data_prop=True).graph
    except Exception as exc:  # noqa: BLE001 (a figure, never a reason to fail the benchmark)
        return None, f"not counted: ONNX shape inference failed ({first_line(exc)})"
    shapes = {init.name: list(init.dims) for init in graph.initializer}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        dims = value.type.tensor_type.shape.dim
        if value.type.tensor_type.HasField("shape") and all(d.HasField("dim_value") for d in dims):
            shapes[value.name] = [d.dim_value for d in dims]
    nodes = [node for node in graph.node if node.op_type in ("MatMul", "MatMulInteger", "Gemm")]
    resolved = [(node, shapes[node.input[0]], shapes[node.input[1]]) for node in nodes
                if node.input[0] in shapes and node.input[1] in shapes]
    note = f"MatMul/Gemm only ({len(resolved)} nodes), batch 1"
    if not nodes:
        return None, "not counted: the graph has no MatMul / Gemm"
    if len(resolved) < len(nodes):
        note += f"; {len(nodes) - len(resolved)} with unresolved shapes left out"
    return sum(_matmul_flops(*r) for r in resolved), note


def _sort_topologically(graph) -> None:
    """Reorder ``graph.node`` so every node comes after the nodes producing its inputs (Kahn's order, stable)."""
    ready = {value.name for value in [*graph.input, *graph.initializer]} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        runnable = [node for node in pending if all(name in ready for name in node.input)]
        if not runnable:  # a cycle or an input from nowhere: leave the rest as it was
            ordered += pending
            break
        for node in runnable:
            ready.update(node.output)
        ordered += runnable
        placed = {id(node) for node in runnable}
        pending = [node for node in pending if id(node) not in placed]
    nodes = [type(node)() for node in ordered]
    for copy, node in zip(nodes, ordered):
        copy.CopyFrom(node)
    del graph.node[:]
    graph.node.extend(nodes)


def _matmul_flops(node, a: list[int], b: list[int]) -> int:
    if node.op_type == "Gemm":
        attrs = {att.name: att.i for att in node.attribute if att.name in ("transA", "transB")}
        m, k = (a[1], a[0]) if attrs.get("transA") else (a[0], a[1])
        n = b[0] if attrs.get("transB") else b[1]
        return 2 * m * k * n
    a = [1, *a] if len(a) == 1 else a  # numpy matmul rules: a vector is a 1-row / 1-column matrix
    b = [*b, 1] if len(b) == 1 else b
    batch = int(np.prod(np.broadcast_shapes(tuple(a[:-2]), tuple(b[:-2]))))
    return 2 * batch * a[-2] * a[-1] * b[-1]
