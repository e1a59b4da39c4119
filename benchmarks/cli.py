"""`actsac-bench`: latency figures measured on the robot's own computer, in a JSON schema that stays stable.

    actsac-bench actor.onnx [--backends ort,ort-cuda,ort-trt,trt,torch] [--threads N] [--iters N]
                 [--json FILE] [--plot FILE]
    actsac-bench --loop [--model actor.onnx] [--robot so100] [--port P --calibration FILE] [--fps 100]
                 [--duration 60] [--exec ensemble|chunk] [--record DIR] [--health-hz HZ] [--no-realtime]
                 [--require-targets]
    actsac-bench --bus [--robot so100[,koch,...]] [--port P] [--cycles 2000] [--baudrate N] [--no-wire-time]
    actsac-bench --camera SOURCE [--duration 10] [--camera-size WxH] [--camera-fps N]
    actsac-bench --compare A.json B.json ...

Without --port, --loop and --bus run on the simulator. --loop --model also takes a shipped example's name
(so100-reach, so100-visual-reach: the one seeing the simulated camera). --camera SOURCE is a device index or
path, a stream URL, a video file, or sim (the simulator's camera). Backends: ort (ONNX Runtime, CPU, as actsac-run),
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
  {robot, simulated, wire_time, buses [...], concurrent}, or {robots: [...]} for several) | null,
  camera {source, kind, camera, width, height, fps_reported, open_ms, duration_s, sample_hz,
  poll_ms, measured_s, lost, frames_delivered, frames_seen, frames_unseen, fps_achieved,
  frame_interval_p50_ms / _p99_ms, frame_age_p50_ms / _p99_ms / _max_ms, takes, delivery_p50_ms / _p99_ms,
  delivery_note, repeated_frames, longest_same_image_s, frozen} | null, board {jetson, model, l4t, jetpack,
  power_mode {id, name, max_id, max_name, at_max}, clocks_locked, max_frequencies {cpu_khz, gpu_hz, emc_hz}, gpu
  (nvidia-smi: name, sm_mhz, sm_max_mhz, mem_mhz, mem_max_mhz, temperature_c), temperatures_c {zone: start, max,
  end}, frequencies {name: start, min, end}, throttled, throttle_reasons} (benchmarks/board.py; null fields on a
  machine that is no Jetson; ACTSAC_BOARD_ROOT reads a recorded tree instead of /).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from actsac._cli import fail
from actsac.files import output_problem
from actsac.options import AT_LEAST_0, AT_LEAST_1, OptionError, add_options, check_options, from_args, option
from actsac.runtime.backends import EXAMPLES
from actsac.runtime.safety import POSITIVE

from . import BenchError
from .board import BoardMonitor, warning
from .machine import machine_info
from .model import BACKENDS, time_model
from .report import SCHEMA, add_efficiency, compare, plot_histogram, write_report

EXIT_USAGE = 2
BOARD_ROOT_ENV = "ACTSAC_BOARD_ROOT"  # read the board's state under this directory (a recorded tree) instead of /
LOOP_DURATION_S = 60.0
CAMERA_DURATION_S = 10.0


@dataclass
class ModelOptions:
    backends: str = option("ort,torch", f"comma-separated, from {','.join(BACKENDS)} (default: ort,torch)")
    threads: int = option(2, "intra-op threads (default 2, as actsac-run)", AT_LEAST_1)
    iters: int = option(500, "timed calls per backend", AT_LEAST_1)
    warmup: int = option(50, "untimed calls first", AT_LEAST_0)
    json: Path | None = option(None, "write the results here (schema actsac-bench/1)", metavar="FILE")
    plot: Path | None = option(None, "write a latency histogram PNG here", metavar="FILE")
    compare: list[str] | None = option(None, "print a table comparing result files, then exit", type=str,
                                       nargs="+", metavar="JSON")


@dataclass
class RobotOptions:
    robot: str = option("so100", "built-in robot or robot .toml (default so100); --bus takes several, "
                                 "comma-separated")
    port: str | None = option(None, "a real robot's serial port: PORT, or BUS=PORT,... for several buses "
                                    "(default: the simulator)")


@dataclass
class LoopOptions:
    loop_model: Path | None = option(None, "the policy (default: the positional model, else the shipped example "
                                           "policy)", flag="--model", metavar="ONNX")
    calibration: Path | None = option(None, "on a real robot: calibration file (default: the one actsac-calibrate "
                                            "wrote)")
    fps: float = option(100.0, "loop rate in Hz (default 100)", POSITIVE)
    duration: float | None = option(None, "seconds (default 60 for --loop, 10 for --camera)", POSITIVE)
    exec_mode: str | None = option(None, "temporal ensembling or chunk by chunk, as actsac-run --exec (default "
                                         "ensemble)", flag="--exec", choices=("ensemble", "chunk"),
                                   metavar="{ensemble,chunk}")
    record: Path | None = option(None, "write the per-tick log and plot here", metavar="DIR")
    health_hz: float | None = option(None, "motor-health reads per group per second, as actsac-run --health-hz "
                                           "(default 5; 0: none, to measure the loop without them)", AT_LEAST_0)


@dataclass
class CameraOptions:
    camera: str | None = option(None, "measure a camera: a device index or path, a stream URL, a video file, or "
                                      "sim (the simulator's camera)", metavar="SOURCE")
    camera_size: str | None = option(None, "WIDTHxHEIGHT asked of a device, or rendered by sim (default: the "
                                           "device's own; sim 64x48, the visual example's)", metavar="WxH")
    camera_fps: float | None = option(None, "frame rate asked of a device, rendered by sim (default 30), or of a "
                                            "video file without one", POSITIVE, metavar="FPS")


@dataclass
class BusOptions:
    cycles: int = option(2000, "timed cycles per bus", AT_LEAST_1)
    baudrate: int | None = option(None, "override every bus's baud rate", AT_LEAST_1)


class _Parser(argparse.ArgumentParser):
    """Usage mistakes as one line (and exit code 2); a file that is missing or cannot be written is exit 1, as in
    actsac-run and actsac-export."""

    def error(self, message: str) -> NoReturn:
        fail(f"{message} (see actsac-bench --help)", EXIT_USAGE)


def parse_args(argv=None):
    """The ``*Options`` fields (each checked as declared), plus the on/off flags, in plain argparse: an ``option()``
    bool would add their opposites too (--no-loop, --realtime, ...)."""
    p = _Parser(prog="actsac-bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", type=Path, help="exported actor (.onnx) to time")
    add_options(p, ModelOptions)
    add_options(p, RobotOptions, p.add_argument_group("robot, for --loop and --bus (the simulator unless --port)"))
    loop = p.add_argument_group("control loop (--loop)")
    loop.add_argument("--loop", action="store_true", help="run actsac-run's loop benchmark (targets: 0 deadline "
                                                          "misses, jitter p99 < 1 ms, loop overhead p50 < 300 us)")
    add_options(p, LoopOptions, loop)
    loop.add_argument("--no-realtime", dest="realtime", action="store_false",
                      help="normal priority (default: ask for SCHED_FIFO, go on without it if refused)")
    loop.add_argument("--require-targets", action="store_true",
                      help="exit 1 when a target is missed (after writing the JSON)")
    bus = p.add_argument_group("bus cycle (--bus)")
    bus.add_argument("--bus", action="store_true", help="time sync-read + sync-write bus cycles")
    add_options(p, BusOptions, bus)
    bus.add_argument("--no-wire-time", dest="wire_time", action="store_false",
                     help="the simulator answers at once (the software's cost only)")
    add_options(p, CameraOptions, p.add_argument_group("camera (--camera SOURCE)"))
    args = p.parse_args(argv)
    try:
        for options in (ModelOptions, RobotOptions, LoopOptions, BusOptions, CameraOptions):
            check_options(from_args(options, args))
    except OptionError as exc:
        p.error(str(exc))
    _check(p, args)
    return args


def _check(p: argparse.ArgumentParser, args) -> None:
    """Every mistake that can be seen before anything runs."""
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = next((b for b in args.backends if b not in BACKENDS), None)
    if unknown:
        p.error(f"--backends: unknown backend '{unknown}' (one of {', '.join(BACKENDS)})")
    if args.compare:
        if args.model or args.loop or args.bus or args.camera or args.json or args.plot:
            p.error("--compare only reads result files: run it on its own")
        return
    if not (args.model or args.loop or args.bus or args.camera):
        p.error("give a model to time, --loop, --bus or --compare A.json B.json, or --camera SOURCE")
    for flag, value in (("--camera-size", args.camera_size), ("--camera-fps", args.camera_fps)):
        if value is not None and not args.camera:
            p.error(f"{flag} is a --camera option")
    args.camera_hw = None
    if args.camera_size is not None:
        w, sep, h = args.camera_size.lower().partition("x")
        if not (sep and w.isdigit() and h.isdigit() and int(w) > 0 and int(h) > 0):
            p.error(f"--camera-size {args.camera_size}: expected WIDTHxHEIGHT, e.g. 640x480")
        args.camera_hw = (int(h), int(w))
    if args.duration is not None and not (args.loop or args.camera):
        p.error("--duration is a --loop or --camera option")
    if args.model and not args.backends:
        p.error("--backends: no backend given")
    if args.loop_model and not args.loop:
        p.error("--model is the --loop policy; to time a model, give it as the first argument")
    for flag, value, mode in (("--exec", args.exec_mode, "loop"), ("--record", args.record, "loop"),
                               ("--require-targets", args.require_targets, "loop"),
                               ("--health-hz", args.health_hz is not None, "loop"),
                               ("--baudrate", args.baudrate, "bus"), ("--no-wire-time", not args.wire_time, "bus")):
        if value and not getattr(args, mode):
            p.error(f"{flag} is a --{mode} option")
    args.exec_mode = args.exec_mode or "ensemble"
    if not args.wire_time and args.port:
        p.error("--no-wire-time is for the simulator: a real port has its own wire time")
    args.robots = [r.strip() for r in args.robot.split(",") if r.strip()]
    if not args.robots:
        p.error("--robot: no robot given")
    if len(args.robots) > 1 and (args.loop or args.port):
        p.error("--robot: several robots are for --bus on the simulator; --loop and --port take one")
    for path in (args.model, args.loop_model, args.calibration):
        if path is not None and not path.is_file() and not (path is args.loop_model and str(path) in EXAMPLES):
            fail(f"{path}: no such file")  # a file problem: exit 1, as in actsac-run and actsac-export
    if args.plot and not args.model:
        p.error("--plot draws the model latencies: give a model to time")
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        p.error("--plot needs matplotlib, which is not installed here")
    inputs = {"the model": args.model, "--model": args.loop_model, "--calibration": args.calibration,
              "--camera": Path(args.camera) if args.camera and Path(args.camera).is_file() else None,
              **{"--robot" if len(args.robots) == 1 else f"--robot {r}": r for r in args.robots}}
    for flag, out in (("--json", args.json), ("--plot", args.plot)):
        problem = None if out is None else output_problem(out, inputs)
        if problem:
            fail(f"{flag} {out}: {problem}")
    if args.json and args.plot and args.json.resolve() == args.plot.resolve():
        p.error(f"--json and --plot both name {args.json}: give two different files")


def main(argv=None) -> None:
    try:
        raise SystemExit(_main(parse_args(argv)))
    except BenchError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted", 130)


def _main(args) -> int:
    if args.compare:
        compare(args.compare)
        return 0
    report = {"schema": SCHEMA, "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "machine": machine_info(args.threads),
              "settings": {"backends": args.backends if args.model else [], "threads": args.threads,
                           "iters": args.iters, "warmup": args.warmup},
              "model": None, "backends": [], "loop": None, "bus": None, "camera": None}
    raw = []
    monitor = BoardMonitor(Path(os.environ.get(BOARD_ROOT_ENV, "/")))
    notice = warning(monitor.board)
    if notice:
        print(notice, file=sys.stderr, flush=True)
    with monitor:
        raw = _measure(args, report)
    report["board"] = monitor.report()
    if report["board"]["throttled"]:
        print(f"warning: the board throttled during the run ({'; '.join(report['board']['throttle_reasons'])}): "
              f"its figures are slower than it can do", file=sys.stderr)
    return _finish(args, report, raw)


def _measure(args, report: dict) -> list:
    """Every mode asked for, in order; returns the timed model's raw latencies (for --plot)."""
    raw = []
    if args.model:
        section, raw = time_model(args.model, args.backends, args.threads, args.iters, args.warmup)
        report.update(section)
        add_efficiency(report)
    if args.loop:
        from .loop import bench_loop

        report["loop"] = bench_loop(args.duration or LOOP_DURATION_S, args.fps, robot=args.robot, port=args.port,
                                    model=args.loop_model or args.model, calibration=args.calibration,
                                    exec_mode=args.exec_mode, record=args.record, realtime=args.realtime,
                                    health_hz=args.health_hz)
    if args.bus:
        from .bus import bench_bus

        report["bus"] = bench_bus(args.robots, args.port, args.cycles, wire_time=args.wire_time,
                                  baudrate=args.baudrate)
    if args.camera:
        from .camera import bench_camera

        report["camera"] = bench_camera(args.camera, args.duration or CAMERA_DURATION_S, size=args.camera_hw,
                                        fps=args.camera_fps)
    return raw


def _finish(args, report: dict, raw: list) -> int:
    """Write the files, and the exit code the runs call for."""
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
    if loop and args.require_targets and not all(t["met"] for t in loop["targets"].values()):
        print("error: the control loop missed a target (--require-targets)", file=sys.stderr)
        return 1
    camera = report.get("camera")
    if camera and camera["lost"] and camera["kind"] != "file":  # a video file's end is the end of its frames
        print(f"error: the camera was lost after {camera['measured_s']:g} s: {camera['lost']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    main()
