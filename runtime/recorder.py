"""``--record DIR``: a per-tick JSON-lines log written as the run goes, and plots at the end.

``ticks.jsonl`` gets one object per tick (times in seconds from the loop start, durations in ms, positions
and commands in user units, chunk age in ticks, flags) and is flushed at least every second, so a crash loses
at most the last second. ``run.png`` (joint commands vs positions, tick-timing histogram) is drawn at the end
with matplotlib's Agg backend, imported only then.
"""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path
from typing import Callable

import numpy as np

from actsac._cli import first_line
from actsac.files import atomic_write

from .loop import TickRecord

FLUSH_EVERY_S = 0.5


def _round(values, digits: int = 4) -> list[float]:
    return [round(float(v), digits) for v in values]


class RunRecorder:
    def __init__(self, directory: Path, joints: list[str], header: dict):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.joints = joints
        self.path = self.directory / "ticks.jsonl"
        # a buffer far above what half a second of ticks writes: only our flushes (of whole lines) reach the file
        self._file = open(self.path, "w", buffering=1 << 20)
        self._file.write(json.dumps({"header": {**header, "joints": joints}}) + "\n")
        self._file.flush()
        self._last_flush = time.monotonic()
        self._origin_s: float | None = None
        self.times, self.positions, self.commands, self.jitter_us = [], [], [], []

    def on_tick(self, rec: TickRecord) -> None:
        latency = rec.info.get("latency_s")
        self.record(rec, None if latency is None else latency * 1e3)

    def finish(self, log: Callable[[str], None], **outcome) -> None:
        """The outcome as the last line (exit reason, safe state...), the file closed, then the plot, whose
        failure is reported and never hides the run's outcome."""
        self.event(**outcome)
        self.close()
        log(f"actsac-run: per-tick log {self.path}")
        try:
            if importlib.util.find_spec("matplotlib") is None:
                log("actsac-run: run.png not drawn: matplotlib is not installed (pip install matplotlib, or "
                    "actsac[plot])")
                return
            plot = self.plot()
            if plot is not None:
                log(f"actsac-run: plot {plot}")
        except Exception as exc:  # noqa: BLE001
            log(f"actsac-run: could not draw the plot: {first_line(exc)}")

    def record(self, rec: TickRecord, latency_ms: float | None) -> None:
        if self._origin_s is None:
            self._origin_s = rec.time.scheduled_s
        info = rec.info
        row = {"tick": rec.time.index, "scheduled_s": round(rec.time.scheduled_s - self._origin_s, 6),
               "jitter_us": round(rec.time.jitter_s * 1e6, 1), "missed": rec.time.missed_periods,
               "read_ms": round(rec.read_s * 1e3, 3), "update_ms": round(rec.update_s * 1e3, 3),
               "write_ms": round(rec.write_s * 1e3, 3), "position": _round(info["position"]),
               "command": _round(info["command"]), "chunk_age": info.get("chunk_age"),
               "inference_ms": None if latency_ms is None else round(latency_ms, 3),
               "chunks_in": info.get("chunks_in", 0),
               "flags": [f for f in ("hold", "ramping", "clamped", "bus_error") if info.get(f)]}
        if info.get("goal") is not None:
            row["goal"] = _round(info["goal"])
        self._file.write(json.dumps(row) + "\n")
        now = time.monotonic()
        if now - self._last_flush >= FLUSH_EVERY_S:
            self._file.flush()
            self._last_flush = now
        self.times.append(row["scheduled_s"])
        self.positions.append(info["position"])
        self.commands.append(info["command"])
        self.jitter_us.append(row["jitter_us"])

    def event(self, **fields) -> None:
        """A non-tick line (the stop reason, the safe state reached...), flushed at once."""
        self._file.write(json.dumps({"event": fields}) + "\n")
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            self._file.close()

    def plot(self) -> Path | None:
        if not self.times:
            return None
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        t = np.asarray(self.times)
        pos, cmd = np.asarray(self.positions), np.asarray(self.commands)
        n = len(self.joints)
        fig, axes = plt.subplots(n + 1, 1, figsize=(9, 1.6 * (n + 1) + 1), squeeze=False)
        for j, name in enumerate(self.joints):
            ax = axes[j, 0]
            ax.plot(t, cmd[:, j], label="command", lw=1.0)
            ax.plot(t, pos[:, j], label="position", lw=1.0, alpha=0.8)
            ax.set_ylabel(name, fontsize=7)
            ax.tick_params(labelsize=7)
        axes[0, 0].legend(fontsize=7, loc="upper right")
        axes[n - 1, 0].set_xlabel("time (s)", fontsize=8)
        hist = axes[n, 0]
        hist.hist(self.jitter_us, bins=80)
        hist.set_xlabel("tick start minus scheduled time (us)", fontsize=8)
        hist.set_ylabel("ticks", fontsize=8)
        hist.set_yscale("log")
        fig.tight_layout()
        out = self.directory / "run.png"
        atomic_write(out, lambda tmp: fig.savefig(tmp, format="png", dpi=90))
        plt.close(fig)
        return out
