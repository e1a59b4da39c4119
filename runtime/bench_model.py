"""Batch-1 latency of an exported actor per backend, its FLOPs, and the machine's estimated peak.

Robot-side code: numpy and onnxruntime only. ``onnx`` (for counting FLOPs) and ``torch`` (the eager
baseline) are optional: a backend or figure that needs a missing package is reported as skipped, with why.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from actsac.export.latency import time_calls

BACKENDS = ("ort", "ort-cuda", "ort-trt", "trt", "torch")
_ORT_PROVIDERS = {"ort": "CPUExecutionProvider", "ort-cuda": "CUDAExecutionProvider",
                  "ort-trt": "TensorrtExecutionProvider"}


@dataclass
class BackendResult:
    backend: str
    status: str  # "ok" | "skipped" | "failed"
    note: str = ""
    provider: str | None = None  # what actually ran (ONNX Runtime falls back to CPU silently)
    latencies_ms: list[float] = field(default_factory=list, repr=False)

    def summary(self) -> dict:
        out = {"backend": self.backend, "status": self.status, "note": self.note, "provider": self.provider}
        if self.latencies_ms:
            lat = np.asarray(self.latencies_ms)
            out.update({f"p{q}_ms": float(np.percentile(lat, q)) for q in (50, 90, 99)})
            out.update(max_ms=float(lat.max()), mean_ms=float(lat.mean()), iters=int(lat.size))
        return out


def example_observation(metadata) -> np.ndarray:
    """A batch-1 observation in the middle of the normalisation range (zeros without stats)."""
    obs = np.zeros((1, *metadata.observation_shape), dtype=np.float32)
    stats = metadata.obs_stats
    if stats and stats["mode"] == "min_max":
        obs[...] = (np.asarray(stats["a"]) + np.asarray(stats["b"])) / 2
    elif stats:
        obs[...] = np.asarray(stats["a"])
    return obs


def bench_ort(model: Path, backend: str, obs: np.ndarray, threads: int, iters: int, warmup: int) -> BackendResult:
    import onnxruntime as ort

    wanted = _ORT_PROVIDERS[backend]
    if wanted not in ort.get_available_providers():
        return BackendResult(backend, "skipped", f"{wanted} is not in this onnxruntime build "
                                                 f"({', '.join(ort.get_available_providers())})")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    providers = [wanted, "CPUExecutionProvider"] if wanted != "CPUExecutionProvider" else [wanted]
    try:
        session = ort.InferenceSession(str(model), options, providers=providers)
    except Exception as exc:  # a provider that fails to initialise (no CUDA driver, ...)
        return BackendResult(backend, "failed", f"session creation failed: {str(exc).splitlines()[0]}")
    used = session.get_providers()[0]
    note = "" if used == wanted else f"asked for {wanted}, ONNX Runtime fell back to {used}"
    feed = {session.get_inputs()[0].name: obs}
    outputs = ["action"]
    return BackendResult(backend, "ok", note, used, time_calls(lambda: session.run(outputs, feed), iters, warmup).samples_ms)


def bench_trt(model: Path, obs: np.ndarray, iters: int, warmup: int) -> BackendResult:
    engine = model.with_suffix(".engine")
    try:
        from actsac.export.tensorrt import TensorRTRunner, missing_tensorrt_reason
    except ImportError as exc:
        return BackendResult("trt", "skipped", f"TensorRT runner unavailable: {exc}")
    reason = missing_tensorrt_reason()
    if reason:
        return BackendResult("trt", "skipped", reason)
    if not engine.is_file():
        return BackendResult("trt", "skipped", f"no engine at {engine}: build it with actsac-export --trt")
    runner = TensorRTRunner(engine)
    return BackendResult("trt", "ok", "", "TensorRT", time_calls(lambda: runner.run(obs), iters, warmup).samples_ms)


def bench_torch(model: Path, obs: np.ndarray, threads: int, iters: int, warmup: int, checkpoint: Path | None):
    try:
        import torch
    except ImportError:
        return BackendResult("torch", "skipped", "PyTorch is not installed (normal on a robot computer)")
    checkpoint = checkpoint or model.with_suffix(".pt")
    if not checkpoint.is_file():
        return BackendResult("torch", "skipped", f"no checkpoint at {checkpoint} (pass --checkpoint)")
    from actsac.policy import load_checkpoint

    torch.set_num_threads(threads)
    actor = load_checkpoint(checkpoint).actor
    x = torch.from_numpy(obs)

    def run():
        with torch.inference_mode():
            actor.to_robot_units(torch.tanh(actor(x)[0]))

    return BackendResult("torch", "ok", "eager, inference_mode", "torch-cpu", time_calls(run, iters, warmup).samples_ms)


def onnx_flops(model: Path) -> int | None:
    """Multiply-adds x 2 of every MatMul / Gemm at batch 1, from ONNX shape inference (None without onnx)."""
    try:
        import onnx
        from onnx import shape_inference
    except ImportError:
        return None
    graph = shape_inference.infer_shapes(onnx.load(str(model))).graph
    shapes = {}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        dims = value.type.tensor_type.shape.dim
        shapes[value.name] = [d.dim_value if d.HasField("dim_value") else 1 for d in dims]  # symbolic batch -> 1
    for init in graph.initializer:
        shapes[init.name] = list(init.dims)
    total = 0
    for node in graph.node:
        if node.op_type not in ("MatMul", "Gemm") or not all(i in shapes for i in node.input[:2]):
            continue
        a, b = shapes[node.input[0]], shapes[node.input[1]]
        if node.op_type == "Gemm":
            trans_a = any(att.name == "transA" and att.i for att in node.attribute)
            trans_b = any(att.name == "transB" and att.i for att in node.attribute)
            m, k = (a[1], a[0]) if trans_a else (a[0], a[1])
            n = b[0] if trans_b else b[1]
            total += 2 * m * k * n
        elif len(a) >= 2 and len(b) >= 2:
            batch = int(np.prod(np.broadcast_shapes(tuple(a[:-2]), tuple(b[:-2])))) if (a[:-2] or b[:-2]) else 1
            total += 2 * batch * a[-2] * a[-1] * b[-1]
        elif len(a) == 1 and len(b) >= 2:
            total += 2 * a[0] * b[-1]
    return total


def cpu_peak_gflops(threads: int) -> tuple[float | None, str]:
    """A rough fp32 peak: cores x clock x FMA width. Returns (GFLOP/s or None, how it was estimated)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None, f"unknown on {platform.system()}"
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith(("flags", "Features"))), [])
    mhz = [float(line.split(":")[1]) for line in info.splitlines() if line.startswith("cpu MHz")]
    if not mhz:
        return None, "no clock rate in /proc/cpuinfo (ARM boards often omit it)"
    if "avx512f" in flags:
        per_cycle, isa = 64, "AVX-512 FMA"
    elif "avx2" in flags and "fma" in flags:
        per_cycle, isa = 32, "AVX2 FMA"
    elif "asimd" in flags:
        per_cycle, isa = 16, "NEON FMA"
    else:
        return None, "no known vector FMA flags"
    cores = min(threads, os.cpu_count() or 1)
    ghz = max(mhz) / 1e3
    return cores * ghz * per_cycle, f"{cores} core(s) x {ghz:.2f} GHz x {per_cycle} fp32 FLOP/cycle ({isa}), an upper bound"
