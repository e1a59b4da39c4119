"""Wall-clock latency of repeated calls: the one timer behind actsac-export's latency print and actsac-bench.

Foundation code: numpy only, and nothing of the other actsac packages.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np


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
