"""Batch-1 latency of an exported actor per backend, its FLOPs, and the machine's estimated peak.

Each backend is timed through the object ``actsac-run`` itself uses (runtime/backends.py), asking for the
``action`` output as the deterministic loop does. Robot-side code: numpy and onnxruntime only. ``onnx`` (for
counting FLOPs) and ``torch`` (the eager baseline) are optional: a figure or backend that needs a missing
package is reported as skipped, with why.
"""

from __future__ import annotations

import os
import platform
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from actsac._cli import UserError, first_line
from actsac.export.latency import time_calls

BACKENDS = ("ort", "ort-cuda", "ort-trt", "trt", "torch")
CPU = "CPUExecutionProvider"
ORT_PROVIDERS = {"ort": CPU, "ort-cuda": "CUDAExecutionProvider", "ort-trt": "TensorrtExecutionProvider"}
CPU_PROVIDERS = (CPU, "torch-cpu")  # providers whose speed the CPU peak bounds
TIMED = ("ok", "fallback")  # statuses that carry latencies ("fallback": ONNX Runtime ran another provider)
OUTPUTS = ["action"]


@dataclass
class BackendResult:
    backend: str
    status: str  # "ok" | "fallback" | "skipped" | "failed"
    note: str = ""
    provider: str | None = None  # what actually ran (ONNX Runtime falls back to CPU silently)
    latencies_ms: list[float] = field(default_factory=list, repr=False)

    def summary(self) -> dict:
        """The schema's backend entry: always the same keys, latencies null when nothing was timed."""
        out = {"backend": self.backend, "status": self.status, "note": self.note, "provider": self.provider,
               "iters": len(self.latencies_ms)}
        lat = np.asarray(self.latencies_ms)
        for q in (50, 90, 99):
            out[f"p{q}_ms"] = float(np.percentile(lat, q)) if lat.size else None
        out["max_ms"] = float(lat.max()) if lat.size else None
        out["mean_ms"] = float(lat.mean()) if lat.size else None
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


def bench_backend(backend: str, model: Path, obs: np.ndarray, threads: int, iters: int, warmup: int) -> BackendResult:
    if backend in ORT_PROVIDERS:
        return bench_ort(model, backend, obs, threads, iters, warmup)
    if backend == "trt":
        return bench_trt(model, obs, iters, warmup)
    if backend == "torch":
        return bench_torch(model, obs, threads, iters, warmup)
    raise UserError(f"unknown backend '{backend}' (one of {', '.join(BACKENDS)})")


def bench_ort(model: Path, backend: str, obs: np.ndarray, threads: int, iters: int, warmup: int) -> BackendResult:
    """ONNX Runtime with actsac-run's session options; the provider asked for first, then the CPU."""
    import onnxruntime as ort

    from .backends import OrtModel

    wanted = ORT_PROVIDERS[backend]
    try:
        session = OrtModel(model, threads).session  # the runtime's CPU session (threads, no spinning)
    except UserError as exc:
        return BackendResult(backend, "failed", str(exc))
    available = ort.get_available_providers()
    if wanted != CPU:
        chain = [wanted] + (["CUDAExecutionProvider"] if backend == "ort-trt" and "CUDAExecutionProvider" in available
                            else []) + [CPU]
        try:
            with warnings.catch_warnings():  # ORT warns about a provider it lacks, then falls back: we report it
                warnings.simplefilter("ignore")
                session = ort.InferenceSession(str(model), session.get_session_options(), providers=chain)
        except Exception as exc:  # noqa: BLE001 (a provider that fails to initialise: reported, not raised)
            return BackendResult(backend, "failed", f"session creation failed: {first_line(exc)}")
    used = session.get_providers()[0]
    status, note = "ok", ""
    if used != wanted:
        why = "" if wanted in available else f": {wanted} is not in this onnxruntime build ({', '.join(available)})"
        status, note = "fallback", f"asked for {wanted}, ONNX Runtime ran {used}{why}"
    feed = {session.get_inputs()[0].name: obs}
    return _timed(BackendResult(backend, status, note, used), lambda: session.run(OUTPUTS, feed), iters, warmup)


def bench_trt(model: Path, obs: np.ndarray, iters: int, warmup: int) -> BackendResult:
    """The TensorRT engine ``actsac-export --trt`` builds beside the .onnx, as ``actsac-run --backend trt``."""
    from actsac.export.tensorrt import missing_tensorrt_reason

    from .backends import TrtModel

    reason = missing_tensorrt_reason()
    if reason:
        return BackendResult("trt", "skipped", reason)
    engine = model.with_suffix(".engine")
    if not engine.is_file():
        return BackendResult("trt", "skipped", f"no engine at {engine}: build it with actsac-export --trt")
    try:
        runner = TrtModel(model)
    except Exception as exc:  # noqa: BLE001 (an engine from another TensorRT version or GPU, a CUDA error)
        return BackendResult("trt", "failed", first_line(exc))
    return _timed(BackendResult("trt", "ok", "", "TensorRT"), lambda: runner(obs[0], OUTPUTS), iters, warmup)


def bench_torch(model: Path, obs: np.ndarray, threads: int, iters: int, warmup: int) -> BackendResult:
    """Eager PyTorch on the ``model.pt`` beside the .onnx, as ``actsac-run --backend torch``."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return BackendResult("torch", "skipped", "PyTorch is not installed (normal on a robot computer)")
    from .backends import TorchModel

    checkpoint = model.with_suffix(".pt")
    if not checkpoint.is_file():
        return BackendResult("torch", "skipped", f"no checkpoint {checkpoint.name} beside {model.name}")
    try:
        actor = TorchModel(model, threads)
    except UserError as exc:
        return BackendResult("torch", "failed", str(exc))
    return _timed(BackendResult("torch", "ok", "eager, inference_mode", "torch-cpu"), lambda: actor(obs[0], OUTPUTS),
                  iters, warmup)


def _timed(result: BackendResult, call, iters: int, warmup: int) -> BackendResult:
    """Time ``call`` into ``result``; a call that raises (out of memory, a CUDA error) marks it failed."""
    try:
        result.latencies_ms = time_calls(call, iters, warmup).samples_ms
    except Exception as exc:  # noqa: BLE001 (reported per backend; the other backends still run)
        result.status, result.note = "failed", f"inference failed: {first_line(exc)}"
    return result


def onnx_flops(model: Path) -> tuple[int | None, str]:
    """(FLOPs of one batch-1 call, what the count covers): 2 x multiply-adds of every MatMul and Gemm of the
    exported graph, shapes from ONNX shape inference with the batch fixed to 1. Omitted: element-wise ops,
    normalisation, softmax, biases, nodes inside control flow, and what ONNX Runtime's optimiser changes."""
    try:
        import onnx
        from onnx import shape_inference
    except ImportError:
        return None, "not counted: the onnx package is not installed"
    try:
        proto = onnx.load(str(model))
        for value in proto.graph.input:  # the dynamic batch -> 1, so that every shape downstream is concrete
            for dim in value.type.tensor_type.shape.dim:
                if not dim.HasField("dim_value"):
                    dim.dim_value = 1
        graph = shape_inference.infer_shapes(proto, data_prop=True).graph
    except Exception as exc:  # noqa: BLE001 (a figure, never a reason to fail the benchmark)
        return None, f"not counted: ONNX shape inference failed ({first_line(exc)})"
    shapes = {init.name: list(init.dims) for init in graph.initializer}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        dims = value.type.tensor_type.shape.dim
        if value.type.tensor_type.HasField("shape") and all(d.HasField("dim_value") for d in dims):
            shapes[value.name] = [d.dim_value for d in dims]
    total, counted, unresolved = 0, 0, 0
    for node in graph.node:
        if node.op_type not in ("MatMul", "Gemm"):
            continue
        a, b = (shapes.get(name) for name in node.input[:2])
        if a is None or b is None:
            unresolved += 1
            continue
        total += _matmul_flops(node, a, b)
        counted += 1
    note = f"MatMul/Gemm only ({counted} nodes), batch 1"
    if unresolved:
        note += f"; {unresolved} with unresolved shapes left out"
    return total, note


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


def cpu_peak_gflops(threads: int) -> tuple[float | None, str]:
    """A rough fp32 peak: cores x clock x FMA width. Returns (GFLOP/s or None, how it was estimated)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None, f"unknown on {platform.system()}"
    lines = info.splitlines()
    flags = next((line.split(":", 1)[1].split() for line in lines if line.startswith(("flags", "Features"))), [])
    ghz = _max_clock_ghz(lines)
    if ghz is None:
        return None, "no clock rate in cpufreq or /proc/cpuinfo"
    if "avx512f" in flags:
        per_cycle, isa = 64, "AVX-512 FMA"
    elif "avx2" in flags and "fma" in flags:
        per_cycle, isa = 32, "AVX2 FMA"
    elif "asimd" in flags:
        per_cycle, isa = 16, "NEON FMA"
    else:
        return None, "no known vector FMA flags"
    cores = min(threads, os.cpu_count() or 1)
    how = f"{cores} core(s) x {ghz:.2f} GHz x {per_cycle} fp32 FLOP/cycle ({isa}), an upper bound"
    return cores * ghz * per_cycle, how


def _max_clock_ghz(cpuinfo_lines: list[str]) -> float | None:
    """The maximum clock from cpufreq (ARM boards have no MHz in /proc/cpuinfo), else the fastest core now."""
    try:
        return int(Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text()) / 1e6
    except (OSError, ValueError):
        pass
    mhz = [float(line.split(":")[1]) for line in cpuinfo_lines if line.startswith("cpu MHz")]
    return max(mhz) / 1e3 if mhz else None
