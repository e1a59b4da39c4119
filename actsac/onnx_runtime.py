"""ONNX Runtime CPU sessions as the robot runs them, in one place: actsac-run's ``OrtModel`` (and through it
actsac-bench), actsac-export's verification and its latency print all take their session options from here.

Foundation code: numpy and onnxruntime (imported when a session is made), nothing of the other actsac packages.
"""

from __future__ import annotations

import os

import numpy as np

from .timing import LatencyStats, time_calls

ORT_THREADS = 2
CPU = "CPUExecutionProvider"
MISSING_HINT = ("ONNX Runtime is not installed: pip install onnxruntime (or actsac[cpu]); with an NVIDIA GPU "
                "onnxruntime-gpu (actsac[gpu]); on a Jetson, NVIDIA's onnxruntime-gpu wheel for your JetPack")


class RuntimeMissing(ImportError):
    """Neither onnxruntime nor onnxruntime-gpu is installed; the message says what to install."""


def import_onnxruntime():
    """The ``onnxruntime`` module, whichever wheel provides it (CPU, GPU, NVIDIA's for JetPack)."""
    try:
        import onnxruntime
    except ImportError:
        raise RuntimeMissing(MISSING_HINT) from None
    return onnxruntime


def cpu_session_options(threads: int = ORT_THREADS, *, spinning: bool = True):
    """All graph optimisations, ``threads`` intra-op threads, one inter-op thread, errors-only logging.

    ``spinning=False``: ORT's pool threads spin after each run by default; on a small CPU that steals the
    control thread's (and the bus's) cores exactly when the next tick is due, so the control loop turns it off.
    """
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def ort_session(path: str | os.PathLike, threads: int = ORT_THREADS, *, spinning: bool = True):
    """A CPU session on ``path`` with ``cpu_session_options``."""
    return import_onnxruntime().InferenceSession(str(path), cpu_session_options(threads, spinning=spinning),
                                                providers=[CPU])


def ort_latency(path_or_session, inputs, runs: int = 50, warmup: int = 5,
                threads: int = ORT_THREADS, outputs: list[str] | None = None) -> LatencyStats:
    """Latency of one ``session.run`` on ``inputs`` (with their batch dim): the observation array, or
    ``{input name: array}`` for a graph with several inputs; all outputs unless ``outputs``."""
    session = path_or_session if hasattr(path_or_session, "run") else ort_session(path_or_session, threads)
    if not isinstance(inputs, dict):
        inputs = {session.get_inputs()[0].name: np.asarray(inputs, dtype=np.float32)}
    feed = {name: np.ascontiguousarray(value) for name, value in inputs.items()}
    return time_calls(lambda: session.run(outputs, feed), runs, warmup)
