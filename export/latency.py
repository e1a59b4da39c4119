"""Latency timing of an exported actor in ONNX Runtime, shared by actsac-export, the benchmarks and actsac-bench.

Robot-side code: numpy and onnxruntime only.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

ORT_THREADS = 2


@dataclass
class LatencyStats:
    """Per-call wall-clock latency in milliseconds."""

    samples_ms: list[float] = field(repr=False)

    @property
    def p50_ms(self) -> float:
        return float(np.percentile(self.samples_ms, 50))

    @property
    def p99_ms(self) -> float:
        return float(np.percentile(self.samples_ms, 99))

    @property
    def mean_ms(self) -> float:
        return float(np.mean(self.samples_ms))

    @property
    def runs(self) -> int:
        return len(self.samples_ms)

    def summary(self) -> str:
        return f"p50 {self.p50_ms:.3f} ms, p99 {self.p99_ms:.3f} ms ({self.runs} runs)"


def time_calls(call: Callable[[], object], runs: int = 50, warmup: int = 5) -> LatencyStats:
    """Time ``call()`` ``runs`` times after ``warmup`` untimed calls (first calls allocate and tune)."""
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1e3)
    return LatencyStats(samples)


def ort_session(path: str | os.PathLike, threads: int = ORT_THREADS):
    """A CPU session as the robot runs it: all graph optimisations, ``threads`` intra-op threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def ort_latency(path_or_session, observation: np.ndarray, runs: int = 50, warmup: int = 5,
                threads: int = ORT_THREADS, outputs: list[str] | None = None) -> LatencyStats:
    """Latency of one ``session.run`` on ``observation`` (with its batch dim), all outputs unless ``outputs``."""
    session = path_or_session if hasattr(path_or_session, "run") else ort_session(path_or_session, threads)
    feed = {session.get_inputs()[0].name: np.ascontiguousarray(observation, dtype=np.float32)}
    return time_calls(lambda: session.run(outputs, feed), runs, warmup)
