"""Inference in its own thread, so the control thread never waits on a model.

The control thread ``submit``s the newest observation (with a camera model's frames) tagged with the tick it
was read at (a newer request replaces one not yet started) and ``poll``s finished chunks, each carrying that tick so the executor can
align it. ONNX Runtime releases the GIL while it runs, so the control loop keeps its deadlines. With
``--realtime`` the worker runs at the highest normal priority, below the real-time loop.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from actsac._cli import first_line

from .realtime import below_the_loop


@dataclass
class ChunkResult:
    start_tick: int  # tick of the observation the chunk was computed from (its step 0)
    chunk: np.ndarray | None  # (H, A) robot units; None when inference raised
    latency_s: float  # model call duration
    finished_s: float  # worker clock when it finished
    error: str | None = None
    judged: np.ndarray | None = None  # a sampled chunk's deterministic plan (what the chunk check judges)


class InferenceWorker:
    """One daemon thread running ``infer(observation) -> chunk`` (``infer(observation, images)`` for a request
    that carries images); at most one request waits."""

    def __init__(self, infer: Callable[[np.ndarray], np.ndarray], clock: Callable[[], float] = time.perf_counter,
                 name: str = "actsac-inference"):
        self._infer = infer
        self._clock = clock
        self._cond = threading.Condition()
        self._pending: tuple[np.ndarray, dict | None, int] | None = None
        self._running = False
        self._results: list[ChunkResult] = []
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def busy(self) -> bool:
        """A request is waiting or running."""
        with self._cond:
            return self._running or self._pending is not None

    def submit(self, observation: np.ndarray, tick: int, images: dict[str, np.ndarray] | None = None) -> None:
        """``images``: {camera: uint8 (H, W, 3)} for a camera model, passed on by reference (the worker reads
        them later, in its thread: hand over frames nobody writes to any more)."""
        with self._cond:
            self._pending = (observation, images, int(tick))
            self._cond.notify()

    def poll(self) -> list[ChunkResult]:
        """Finished chunks since the last poll, oldest first (never blocks on a running inference)."""
        with self._cond:
            results, self._results = self._results, []
        return results

    def close(self, timeout_s: float = 2.0) -> None:
        with self._cond:
            self._closed = True
            self._pending = None
            self._cond.notify()
        self._thread.join(timeout_s)  # a model stuck in a call is abandoned (daemon thread)

    def _run(self) -> None:
        below_the_loop()
        while True:
            with self._cond:
                while self._pending is None and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                (observation, images, tick), self._pending = self._pending, None
                self._running = True
            start = self._clock()
            chunk, judged, error = None, None, None
            try:
                chunk = self._infer(observation) if images is None else self._infer(observation, images)
                if isinstance(chunk, tuple):  # (sample, deterministic plan)
                    chunk, judged = chunk
            except Exception as exc:  # a failing model is a counted fault, not a dead thread
                error = f"{type(exc).__name__}: {first_line(exc)}"
            end = self._clock()
            with self._cond:
                self._results.append(ChunkResult(tick, chunk, end - start, end, error, judged))
                self._running = False
