"""Run statistics: collected tick by tick, summarised at the end as a table and a JSON object.

Summary keys (stable; ``--summary-json`` writes them): ticks, fps_target, fps_achieved, deadline_misses
(ticks that would have started a period or more late; their missed periods were skipped), skipped_periods,
jitter_p50_us / jitter_p99_us / jitter_max_us (tick start minus scheduled time), loop_overhead_p50_us /
loop_overhead_p99_us (tick work minus bus I/O and waiting), bus_read_p50_ms, bus_read_p99_ms, bus_write_p50_ms,
inference_p50_ms / inference_p99_ms, chunks_received, stale_steps_dropped, nan_chunks, inference_errors,
hold_ticks, bus_errors, clamped_commands, chunks_dropped (a plan that jumped), chunks_clamped / actions_clamped
(actions outside the joint ranges), last_jump (why the last dropped chunk jumped), exit_reason, exit_code, ``goals`` when the model has a task, and
``cameras`` for a camera model: per camera fps_achieved, frame_age_p50_ms / frame_age_p99_ms (frames fed to
the model), camera_to_command_p50_ms / _p99_ms, frames_fed, dropped_frames, repeated_frames, stale_ticks;
``health`` with motor-health reads (``runtime/health.py``): health_hz, reads per group (count, p50_ms,
p99_ms), skipped (due reads that did not fit in a tick), read_errors, per motor peak_temperature_c,
peak_effort_pct, min_voltage_v, seen_hz per group and derated_s, and every event (warn / derate / release /
stop, with the motor, the value and the limit).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from actsac.files import atomic_write

from .errors import RunRefused

from .loop import TickRecord


def _pct(values, q: float, scale: float, digits: int = 1):
    return None if len(values) == 0 else round(float(np.percentile(values, q)) * scale, digits)


class RunStats:
    def __init__(self):
        self.starts_s: list[float] = []
        self.jitter_s: list[float] = []
        self.overhead_s: list[float] = []
        self.read_s: list[float] = []
        self.write_s: list[float] = []

    def on_tick(self, rec: TickRecord) -> None:
        self.starts_s.append(rec.time.start_s)
        self.jitter_s.append(rec.time.jitter_s)
        self.overhead_s.append(rec.overhead_s)
        self.read_s.append(rec.read_s)
        self.write_s.append(rec.write_s)

    @property
    def ticks(self) -> int:
        return len(self.starts_s)

    def fps_achieved(self) -> float | None:
        if self.ticks < 2:
            return None
        return round((self.ticks - 1) / (self.starts_s[-1] - self.starts_s[0]), 3)


def summarize(stats: RunStats, *, fps_target: float, scheduler, controller, io, exit_reason: str, exit_code: int,
              safe_state: str | None = None, goal_tolerance: float | None = None, cameras: dict | None = None,
              health: dict | None = None) -> dict:
    """The summary of a run (the keys above); ``goals`` when the controller followed a goal schedule."""
    lat = np.asarray(controller.latencies_s if controller else [])
    summary = {
        "ticks": stats.ticks, "fps_target": fps_target, "fps_achieved": stats.fps_achieved(),
        "deadline_misses": scheduler.deadline_misses if scheduler else 0,
        "skipped_periods": scheduler.skipped_periods if scheduler else 0,
        "jitter_p50_us": _pct(stats.jitter_s, 50, 1e6), "jitter_p99_us": _pct(stats.jitter_s, 99, 1e6),
        "jitter_max_us": None if not stats.jitter_s else round(max(stats.jitter_s) * 1e6, 1),
        "loop_overhead_p50_us": _pct(stats.overhead_s, 50, 1e6),
        "loop_overhead_p99_us": _pct(stats.overhead_s, 99, 1e6),
        "bus_read_p50_ms": _pct(stats.read_s, 50, 1e3, 3), "bus_read_p99_ms": _pct(stats.read_s, 99, 1e3, 3),
        "bus_write_p50_ms": _pct(stats.write_s, 50, 1e3, 3),
        "inference_p50_ms": _pct(lat, 50, 1e3, 3), "inference_p99_ms": _pct(lat, 99, 1e3, 3),
        "chunks_received": controller.chunks_received if controller else 0,
        "stale_steps_dropped": controller.dropped_steps if controller else 0,
        "nan_chunks": controller.nan_chunks if controller else 0,
        "inference_errors": controller.inference_errors if controller else 0,
        "hold_ticks": controller.hold_ticks if controller else 0,
        "bus_errors": io.bus_errors if io else 0,
        "clamped_commands": controller.filter.clamped_commands if controller else 0,
        **_chunk_counts(controller),
        "exit_reason": exit_reason, "exit_code": exit_code, "safe_state": safe_state,
    }
    if controller is not None and controller.goals is not None:
        summary["goals"] = goal_report(controller.finish(), goal_tolerance)
    if cameras:
        summary["cameras"] = cameras
        summary["camera_hold_ticks"] = controller.camera_hold_ticks if controller else 0
    if health:
        summary["health"] = health
    return summary


def _chunk_counts(controller) -> dict:
    """The whole-chunk check's counts (``runtime/safety.py`` ChunkCheck)."""
    check = getattr(controller, "chunk_check", None)
    return {"chunks_dropped": check.dropped_chunks if check else 0,
            "chunks_clamped": check.clamped_chunks if check else 0,
            "actions_clamped": check.clamped_actions if check else 0,
            "last_jump": check.last_jump if check else None}


def write_summary(path: str | os.PathLike, summary: dict) -> None:
    """``--summary-json``, atomically (checked before the run; the file system may still change under it)."""
    try:
        atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(summary, indent=2) + "\n"))
    except OSError as exc:
        raise RunRefused(f"--summary-json {path}: not written ({exc.strerror or exc})") from None


def goal_report(goal_results: list[dict], tolerance: float | None) -> list[dict]:
    """Per goal segment: the goal, its final error (max |position - goal| over the goal joints, user units),
    success (final error within the task's success_tolerance) and whether it was held its whole time."""
    out = []
    for r in goal_results:
        row = {**r, "final_error": round(r["final_error"], 3)}
        row["success"] = None if tolerance is None else bool(r["final_error"] <= tolerance)
        out.append(row)
    return out


def format_table(summary: dict) -> str:
    def show(v):
        return "-" if v is None else v

    rows = [("ticks", summary["ticks"]),
            ("rate", f"{show(summary['fps_achieved'])} / {summary['fps_target']} Hz"),
            ("deadline misses", f"{summary['deadline_misses']} ({summary['skipped_periods']} periods skipped)"),
            ("jitter p50 / p99 / max", f"{show(summary['jitter_p50_us'])} / {show(summary['jitter_p99_us'])} / "
                                       f"{show(summary['jitter_max_us'])} us"),
            ("loop overhead p50 / p99", f"{show(summary['loop_overhead_p50_us'])} / "
                                        f"{show(summary['loop_overhead_p99_us'])} us"),
            ("bus read / write p50", f"{show(summary['bus_read_p50_ms'])} / {show(summary['bus_write_p50_ms'])} ms"),
            ("inference p50 / p99", f"{show(summary['inference_p50_ms'])} / {show(summary['inference_p99_ms'])} ms"),
            ("chunks received", summary["chunks_received"]),
            ("stale steps dropped", summary["stale_steps_dropped"]),
            ("NaN chunks / model errors", f"{summary['nan_chunks']} / {summary['inference_errors']}"),
            ("ticks holding", summary["hold_ticks"]),
            ("bus errors", summary["bus_errors"]),
            ("clamped commands", summary["clamped_commands"]),
            ("chunks dropped / clamped", f"{summary['chunks_dropped']} jumped / {summary['chunks_clamped']} "
                                         f"({summary['actions_clamped']} actions) outside the ranges"),
            ("exit", f"{summary['exit_reason']} (code {summary['exit_code']})")]
    rows += _camera_rows(summary)
    rows += _health_rows(summary.get("health"))
    rows += _goal_rows(summary.get("goals") or [])
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


def _camera_rows(summary: dict) -> list[tuple[str, str]]:
    def show(v):
        return "-" if v is None else v

    rows = []
    for name, c in (summary.get("cameras") or {}).items():
        rows.append((f"camera {name}", f"{show(c['fps_achieved'])} fps, frame age p50 / p99 "
                                       f"{show(c['frame_age_p50_ms'])} / {show(c['frame_age_p99_ms'])} ms, "
                                       f"to command {show(c['camera_to_command_p50_ms'])} / "
                                       f"{show(c['camera_to_command_p99_ms'])} ms"))
        rows.append((f"camera {name} frames", f"{c['frames_fed']} fed, {c['dropped_frames']} dropped, "
                                              f"{c['repeated_frames']} repeated, stale on {c['stale_ticks']} ticks"))
    if summary.get("cameras"):
        rows.append(("ticks holding for a camera", summary["camera_hold_ticks"]))
    return rows


def _health_rows(health: dict | None) -> list[tuple[str, str]]:
    """The motor-health reads, the hottest and the hardest-working motors, derating and the events."""
    if not health:
        return []
    reads = [f"{g} {r['count']} (p50 {r['p50_ms'] if r['p50_ms'] is not None else '-'} ms)"
             for g, r in health["reads"].items()]
    rows = [("health reads", f"{', '.join(reads)}; {health['skipped']} skipped for time, "
                             f"{health['read_errors']} failed")]
    motors = health["motors"]
    temps = {m: v["peak_temperature_c"] for m, v in motors.items() if v["peak_temperature_c"] is not None}
    if temps:
        hot = max(temps, key=temps.get)
        effort = max(motors, key=lambda m: motors[m]["peak_effort_pct"])
        rows.append(("peak temperature / effort", f"{temps[hot]:g} degC ({hot}) / "
                                                  f"{motors[effort]['peak_effort_pct']:g} % ({effort})"))
    derated = {m: v["derated_s"] for m, v in motors.items() if v["derated_s"] > 0}
    if derated:
        rows.append(("derated", ", ".join(f"{m} {s:g} s" for m, s in derated.items())))
    for e in health["events"]:
        limit = "" if e["limit"] is None else f" (limit {e['limit']:g} {e['unit']})"
        rows.append((f"health {e['level']}", f"t {e['t_s']:g} s {e['motor']} {e['kind']} {e['value']:g} "
                                             f"{e['unit']}{limit}"))
    return rows


def _goal_rows(goals: list[dict]) -> list[tuple[str, str]]:
    """One row per goal: how many of its complete holds reached it, and its last final error."""
    rows = []
    for index in sorted({g["goal_index"] for g in goals}):
        held = [g for g in goals if g["goal_index"] == index and g["complete"]]
        if not held:
            rows.append((f"goal {index}", "not held to the end of its time (run ended first)"))
            continue
        last = held[-1]
        reached = "" if last["success"] is None else f"reached {sum(bool(g['success']) for g in held)}/{len(held)}, "
        rows.append((f"goal {index}", f"{reached}final error {last['final_error']} (last hold)"))
    return rows
