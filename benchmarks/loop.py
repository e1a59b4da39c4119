"""The control-loop benchmark (``actsac-bench --loop``): a policy run at a high rate by actsac-run's own loop
(on the simulator unless a port is given), judged against the loop's timing ``TARGETS``."""

from __future__ import annotations

import os
import platform
from pathlib import Path

from actsac.options import OptionError
from actsac.runtime.config import RunConfig
from actsac.runtime.errors import RunRefused
from actsac.runtime.safety import SafetySettings
from actsac.runtime.session import run

from . import BenchError

TARGETS = {"deadline_misses": 0, "jitter_p99_us": 1000.0, "loop_overhead_p50_us": 300.0}


def bench_loop(duration_s: float, fps: float, *, robot: str, port: str | None, model: Path | None,
               calibration: Path | None, exec_mode: str, record: Path | None, realtime: bool,
               health_hz: float | None = None) -> dict:
    """Run the loop, printing its log and the targets: the run's summary plus ``targets`` (each target and whether
    it was met), ``machine`` and ``bench``. ``realtime`` asks for SCHED_FIFO (the summary says whether it was
    granted); ``health_hz`` sets the motor-health reads' rate (None: actsac-run's default, 0: none). A run refused before it starts (model, robot, port, calibration) raises ``BenchError``."""
    where = f"port {port}" if port else "the simulator"
    print(f"control loop: {robot} on {where}, {fps:g} Hz for {duration_s:g} s, "
          f"policy {model.name if model else 'the example policy'}", flush=True)
    try:
        # The benchmark measures the loop, so the policy only needs to keep the arm moving gently: a long
        # ramp and the robot's default step limits.
        config = RunConfig(robot=robot, port=port, model=model, calibration=calibration, fps=fps,
                           exec_mode=exec_mode, duration_s=duration_s, record=record, realtime=realtime,
                           safety=SafetySettings(ramp_s=1.0, stop_hold_s=0.2))
        if health_hz is not None:
            config.health.health_hz = health_hz
        summary = run(config, log=lambda line: print(line, flush=True))
    except (RunRefused, OptionError) as exc:
        raise BenchError(str(exc)) from None
    summary["targets"] = {key: {"target": limit, "value": summary.get(key),
                                "met": summary.get(key) is not None and summary[key] <= limit}
                          for key, limit in TARGETS.items()}
    try:
        load = round(os.getloadavg()[0], 2)
    except OSError:
        load = None
    summary["machine"] = {"cpu_count": os.cpu_count(), "load_avg_1m": load, "platform": platform.platform()}
    summary["bench"] = {"policy": str(model) if model else "example policy", "robot": robot, "port": port,
                        "duration_s": duration_s, "health_hz": config.health.health_hz}
    for key, t in summary["targets"].items():
        print(f"  {key:22} {t['value']!s:>10}  target <= {t['target']:g}  {'met' if t['met'] else 'MISSED'}")
    return summary
