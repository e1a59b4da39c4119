"""Motor-health reads in the control loop: what they cost a tick, and how often each motor is seen.

    python benchmarks/health.py [--robots so100,koch] [--fps 100] [--duration 60] [--health-hz 5] [--json FILE]

For each robot, two runs of actsac-run's loop on the simulator with wire time (the shipped so100 reach policy,
whose joints the Koch shares): motor-health reads off (``--health-hz 0``), then on. Reported per run: deadline
misses, bus read p50 / p99 (the tick's position read), the health reads' count and p50 / p99 per group, reads
skipped because they would not have fitted in the tick, and how often each motor's temperature, effort and
voltage were seen (Hz, slowest motor).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from actsac.files import atomic_write
from actsac.runtime.backends import EXAMPLES
from actsac.runtime.config import RunConfig
from actsac.runtime.safety import SafetySettings
from actsac.runtime.session import run


def one_run(robot: str, fps: float, duration_s: float, health_hz: float) -> dict:
    config = RunConfig(robot=robot, model=EXAMPLES["so100-reach"], fps=fps, duration_s=duration_s, status=False,
                       safety=SafetySettings(ramp_s=1.0, stop_hold_s=0.2))
    config.health.health_hz = health_hz
    summary = run(config, log=lambda line: None)
    row = {"robot": robot, "health_hz": health_hz, "ticks": summary["ticks"],
           "deadline_misses": summary["deadline_misses"], "bus_read_p50_ms": summary["bus_read_p50_ms"],
           "bus_read_p99_ms": summary["bus_read_p99_ms"], "exit": summary["exit_reason"]}
    health = summary.get("health")
    if health:
        row["health_reads"] = health["reads"]
        row["health_skipped"] = health["skipped"]
        seen = [m["seen_hz"] for m in health["motors"].values()]
        row["seen_hz_min"] = {group: min(s[group] for s in seen) for group in seen[0]}
    return row


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--robots", default="so100,koch", help="comma-separated built-in robots (default so100,koch)")
    p.add_argument("--fps", type=float, default=100.0, help="control rate, Hz (default 100)")
    p.add_argument("--duration", type=float, default=60.0, help="seconds per run (default 60)")
    p.add_argument("--health-hz", type=float, default=5.0, help="health reads per group per second (default 5)")
    p.add_argument("--json", type=Path, help="write the rows here")
    args = p.parse_args(argv)
    rows = []
    for robot in args.robots.split(","):
        for hz in (0.0, args.health_hz):
            row = one_run(robot, args.fps, args.duration, hz)
            rows.append(row)
            reads = row.get("health_reads") or {}
            health = ", ".join(f"{g} {r['count']} x p50 {r['p50_ms']} / p99 {r['p99_ms']} ms"
                               for g, r in reads.items()) or "none"
            seen = row.get("seen_hz_min")
            print(f"{robot:6} health {hz:g} Hz: {row['ticks']} ticks, {row['deadline_misses']} misses, bus read "
                  f"p50 / p99 {row['bus_read_p50_ms']} / {row['bus_read_p99_ms']} ms; health reads: {health}; "
                  f"skipped {row.get('health_skipped', 0)}; each motor seen at least "
                  f"{seen if seen else '-'} Hz; {row['exit']}", flush=True)
    if args.json:
        atomic_write(args.json, lambda tmp: Path(tmp).write_text(json.dumps(rows, indent=2) + "\n"))


if __name__ == "__main__":
    main()
