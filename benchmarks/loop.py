"""The control-loop benchmark (``actsac-bench --loop``): a policy run at a high rate by actsac-run's own loop,
judged against the loop's timing targets.

By default: the example policy on the simulated SO-100 with wire-time emulation, asynchronous temporal
ensembling, 100 Hz for 60 s. Targets: zero deadline misses, p99 jitter under 1 ms, loop overhead p50 under
300 us.
"""

from __future__ import annotations

import os
import platform
import threading
from pathlib import Path

from actsac._cli import UserError
from actsac.runtime.errors import RunRefused
from actsac.runtime.session import RunConfig, SafetySettings, run

from . import BenchError

TARGETS = {"deadline_misses": 0, "jitter_p99_us": 1000.0, "loop_overhead_p50_us": 300.0}


def bench_loop(duration_s: float, fps: float, *, robot: str, port: str | None, model: Path | None,
               calibration: Path | None, exec_mode: str, record: Path | None, realtime: bool) -> dict:
    """actsac-bench --loop: the run's log and the targets printed, the summary returned with a ``bench`` key.
    A run refused before it starts (model, robot, port, calibration) raises ``BenchError``."""
    where = f"port {port}" if port else "the simulator"
    print(f"control loop: {robot} on {where}, {fps:g} Hz for {duration_s:g} s, "
          f"policy {model.name if model else 'the example policy'}", flush=True)
    try:
        summary = loop_benchmark(duration_s, fps, robot=robot, port=port, model=model, calibration=calibration,
                                 exec_mode=exec_mode, record=record, realtime=realtime,
                                 log=lambda line: print(line, flush=True))
    except (RunRefused, UserError) as exc:  # UserError: what the runtime raised before RunRefused
        raise BenchError(str(exc)) from None
    print(format_targets(summary))
    summary["bench"] = {"policy": str(model) if model else "example policy", "robot": robot, "port": port,
                        "duration_s": duration_s}
    return summary


def loop_benchmark(duration_s: float = 60.0, fps: float = 100.0, *, robot: str = "so100", port: str | None = None,
                   model: Path | None = None, calibration: Path | None = None, exec_mode: str = "ensemble",
                   record: Path | None = None, realtime: bool = True, stop: threading.Event | None = None,
                   log=print) -> dict:
    """Run the loop and return its summary plus ``targets`` (each target and whether it was met).

    ``realtime`` asks for SCHED_FIFO (granted or not: the summary's ``realtime`` says which), as a robot's
    control computer would be set up; on a shared computer normal priority measures the neighbours too.
    """
    # The benchmark measures the loop, so the policy only needs to keep the arm moving gently: a long
    # ramp and the robot's default step limits.
    config = RunConfig(robot=robot, port=port, model=model, calibration=calibration, fps=fps, exec_mode=exec_mode,
                       duration_s=duration_s, record=record, realtime=realtime,
                       safety=SafetySettings(ramp_s=1.0, stop_hold_s=0.2))
    summary = run(config, stop=stop, log=log)
    summary["targets"] = {key: {"target": limit, "value": summary.get(key),
                                "met": summary.get(key) is not None and summary[key] <= limit}
                          for key, limit in TARGETS.items()}
    summary["machine"] = {"cpu_count": os.cpu_count(), "load_avg_1m": _load_average(),
                          "platform": platform.platform()}
    return summary


def targets_met(summary: dict) -> bool:
    return all(t["met"] for t in summary["targets"].values())


def _load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def format_targets(summary: dict) -> str:
    rows = []
    for key, t in summary["targets"].items():
        rows.append(f"  {key:22} {t['value']!s:>10}  target <= {t['target']:g}  {'met' if t['met'] else 'MISSED'}")
    return "\n".join(rows)
