"""`actsac-bench`: latency figures measured on the robot's own computer, in a JSON schema that stays stable.

    actsac-bench actor.onnx [--backends ort,ort-cuda,ort-trt,trt,torch] [--threads N] [--iters N]
                 [--json FILE] [--plot FILE]
    actsac-bench --loop [--model actor.onnx] [--robot so100] [--port P --calibration FILE] [--fps 100]
                 [--duration 60] [--exec ensemble|chunk] [--record DIR] [--no-realtime] [--require-targets]
    actsac-bench --bus [--robot so100[,koch,...]] [--port P] [--cycles 2000] [--baudrate N] [--no-wire-time]
    actsac-bench --compare A.json B.json ...

Without --port, --loop and --bus run on the simulator. Backends: ort (ONNX Runtime, CPU, as actsac-run),
ort-cuda / ort-trt (ONNX Runtime's CUDA / TensorRT providers; a silent fallback to the CPU is detected and
reported as status "fallback"), trt (the engine built by actsac-export --trt beside the .onnx), torch (eager
PyTorch on the model.pt beside the .onnx; skipped without PyTorch).

JSON schema actsac-bench/1 (every key always present, null when not measured):
  schema, created (UTC ISO time), machine {hostname, platform, processor, cpu_count, gpu, python, actsac,
  onnxruntime, ort_providers, cpu_peak_gflops, cpu_peak_note}, settings {backends, threads, iters, warmup},
  model {path, sha256, actor, chunk_size, action_dim, observation_shape, precision, flops, flops_note} | null,
  backends [{backend, status (ok | fallback | skipped | failed), note, provider, iters, p50_ms, p90_ms,
  p99_ms, max_ms, mean_ms, achieved_gflops, fraction_of_peak}], loop (actsac-run's summary keys plus
  targets, machine and bench {policy, robot, port, duration_s}) | null, bus (one robot's bus-cycle result
  {robot, simulated, wire_time, buses [...], concurrent}, or {robots: [...]} for several) | null.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import math
import sys
from pathlib import Path

from actsac._cli import fail
from actsac.files import output_problem

from . import BenchError
from .machine import machine_info
from .model import BACKENDS, time_model
from .report import SCHEMA, add_efficiency, compare, plot_histogram, print_efficiency, write_report

EXIT_USAGE = 2


def _int_at_least(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not an integer") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value

    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be positive and finite, got {text}")
    return value


class _Parser(argparse.ArgumentParser):
    """Usage mistakes as one line (and exit code 2), like every other user mistake here."""

    def error(self, message: str) -> "NoReturn":  # noqa: F821
        fail(f"{message} (see actsac-bench --help)", EXIT_USAGE)


def parse_args(argv=None):
    p = _Parser(prog="actsac-bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", type=Path, help="exported actor (.onnx) to time")
    p.add_argument("--backends", default="ort,torch",
                   help=f"comma-separated, from {','.join(BACKENDS)} (default: ort,torch)")
    p.add_argument("--threads", type=_int_at_least(1), default=2, help="intra-op threads (default 2, as actsac-run)")
    p.add_argument("--iters", type=_int_at_least(1), default=500, help="timed calls per backend (default 500)")
    p.add_argument("--warmup", type=_int_at_least(0), default=50, help="untimed calls first (default 50)")
    p.add_argument("--json", type=Path, metavar="FILE", help="write the results here (schema actsac-bench/1)")
    p.add_argument("--plot", type=Path, metavar="FILE", help="write a latency histogram PNG here")
    p.add_argument("--compare", nargs="+", metavar="JSON", help="print a table comparing result files, then exit")
    robot = p.add_argument_group("robot, for --loop and --bus (the simulator unless --port)")
    robot.add_argument("--robot", default="so100",
                       help="built-in robot or robot .toml (default so100); --bus takes several, comma-separated")
    robot.add_argument("--port", help="a real robot's serial port: PORT, or BUS=PORT,... for several buses "
                                      "(default: the simulator)")
    loop = p.add_argument_group("control loop (--loop)")
    loop.add_argument("--loop", action="store_true", help="run actsac-run's loop benchmark (targets: 0 deadline "
                                                          "misses, jitter p99 < 1 ms, loop overhead p50 < 300 us)")
    loop.add_argument("--model", dest="loop_model", type=Path, metavar="ONNX",
                      help="the policy (default: the positional model, else the shipped example policy)")
    loop.add_argument("--calibration", type=Path,
                      help="on a real robot: calibration file (default: the one actsac-calibrate wrote)")
    loop.add_argument("--fps", type=_positive_float, default=100.0, help="loop rate in Hz (default 100)")
    loop.add_argument("--duration", type=_positive_float, default=60.0, help="seconds (default 60)")
    loop.add_argument("--exec", dest="exec_mode", choices=("ensemble", "chunk"),
                      help="temporal ensembling or chunk by chunk, as actsac-run --exec (default ensemble)")
    loop.add_argument("--record", type=Path, metavar="DIR", help="write the per-tick log and plot here")
    loop.add_argument("--no-realtime", dest="realtime", action="store_false",
                      help="normal priority (default: ask for SCHED_FIFO, go on without it if refused)")
    loop.add_argument("--require-targets", action="store_true",
                      help="exit 1 when a target is missed (after writing the JSON)")
    bus = p.add_argument_group("bus cycle (--bus)")
    bus.add_argument("--bus", action="store_true", help="time sync-read + sync-write bus cycles")
    bus.add_argument("--cycles", type=_int_at_least(1), default=2000, help="timed cycles per bus (default 2000)")
    bus.add_argument("--baudrate", type=_int_at_least(1), help="override every bus's baud rate")
    bus.add_argument("--no-wire-time", dest="wire_time", action="store_false",
                     help="the simulator answers at once (the software's cost only)")
    args = p.parse_args(argv)
    _check(p, args)
    return args


def _check(p: argparse.ArgumentParser, args) -> None:
    """Every mistake that can be seen before anything runs."""
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in args.backends if b not in BACKENDS]
    if unknown:
        p.error(f"--backends: unknown backend '{unknown[0]}' (one of {', '.join(BACKENDS)})")
    if args.compare:
        if args.model or args.loop or args.bus or args.json or args.plot:
            p.error("--compare only reads result files: run it on its own")
        return
    if not (args.model or args.loop or args.bus):
        p.error("give a model to time, --loop, --bus or --compare A.json B.json")
    if args.model and not args.backends:
        p.error("--backends: no backend given")
    if args.loop_model and not args.loop:
        p.error("--model is the --loop policy; to time a model, give it as the first argument")
    for option, value, mode, on in (("--exec", args.exec_mode, "--loop", args.loop),
                                     ("--record", args.record, "--loop", args.loop),
                                     ("--require-targets", args.require_targets, "--loop", args.loop),
                                     ("--baudrate", args.baudrate, "--bus", args.bus),
                                     ("--no-wire-time", not args.wire_time, "--bus", args.bus)):
        if value and not on:
            p.error(f"{option} is a {mode} option")
    args.exec_mode = args.exec_mode or "ensemble"
    if not args.wire_time and args.port:
        p.error("--no-wire-time is for the simulator: a real port has its own wire time")
    args.robots = [r.strip() for r in args.robot.split(",") if r.strip()]
    if not args.robots:
        p.error("--robot: no robot given")
    if len(args.robots) > 1 and (args.loop or args.port):
        p.error("--robot: several robots are for --bus on the simulator; --loop and --port take one")
    for path in (args.model, args.loop_model, args.calibration):
        if path is not None and not path.is_file():
            p.error(f"{path}: no such file")
    if args.plot and not args.model:
        p.error("--plot draws the model latencies: give a model to time")
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        p.error("--plot needs matplotlib, which is not installed here")
    inputs = {"the model": args.model, "--model": args.loop_model, "--calibration": args.calibration,
              **{"--robot" if len(args.robots) == 1 else f"--robot {r}": r for r in args.robots}}
    for option, out in (("--json", args.json), ("--plot", args.plot)):
        problem = None if out is None else output_problem(out, inputs)
        if problem:
            p.error(f"{option} {out}: {problem}")
    if args.json and args.plot and args.json.resolve() == args.plot.resolve():
        p.error(f"--json and --plot both name {args.json}: give two different files")


def main(argv=None) -> None:
    args = parse_args(argv)
    try:
        code = _main(args)
    except BenchError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted", 130)
    raise SystemExit(code)


def _main(args) -> int:
    if args.compare:
        compare(args.compare)
        return 0
    report = {"schema": SCHEMA, "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "machine": machine_info(args.threads),
              "settings": {"backends": args.backends if args.model else [], "threads": args.threads,
                           "iters": args.iters, "warmup": args.warmup},
              "model": None, "backends": [], "loop": None, "bus": None}
    raw = []
    if args.model:
        section, raw = time_model(args.model, args.backends, args.threads, args.iters, args.warmup)
        report.update(section)
        add_efficiency(report)
        print_efficiency(report)
    if args.loop:
        from .loop import bench_loop

        report["loop"] = bench_loop(args.duration, args.fps, robot=args.robot, port=args.port,
                                    model=args.loop_model or args.model, calibration=args.calibration,
                                    exec_mode=args.exec_mode, record=args.record, realtime=args.realtime)
    if args.bus:
        from .bus import bench_bus

        report["bus"] = bench_bus(args.robots, args.port, args.cycles, wire_time=args.wire_time,
                                  baudrate=args.baudrate)
    if args.json:
        write_report(report, args.json)
        print(f"wrote {args.json}")
    if args.plot:
        plot_histogram(raw, args.plot)
        print(f"wrote {args.plot}")
    loop = report["loop"]
    if loop and loop["exit_code"] != 0:  # the figures are written; the exit code still says the run failed
        print(f"error: the control loop ended early: {loop['exit_reason']}", file=sys.stderr)
        return loop["exit_code"]
    if loop and args.require_targets:
        from .loop import targets_met

        if not targets_met(loop):
            print("error: the control loop missed a target (--require-targets)", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    main()
