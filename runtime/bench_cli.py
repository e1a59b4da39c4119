"""`actsac-bench`: latency figures measured on the robot's own computer, in a JSON schema that stays stable.

    actsac-bench actor.onnx [--backends ort,ort-cuda,ort-trt,trt,torch] [--threads N] [--iters N]
                 [--json FILE] [--plot FILE]
    actsac-bench --loop [--model actor.onnx] [--robot so100] [--port P --calibration FILE] [--fps 100]
                 [--duration 60] [--no-realtime]
    actsac-bench --bus [--robot so100] [--port P] [--cycles 2000]
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
  targets, machine and bench {policy, robot, port, duration_s}) | null, bus (the drivers' bus-cycle result) | null.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import math
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

from actsac import __version__
from actsac._cli import UserError, fail
from actsac.files import atomic_write, file_sha256, output_problem

from .bench_model import BACKENDS, CPU_PROVIDERS, TIMED, bench_backend, cpu_peak_gflops, example_observation, onnx_flops

SCHEMA = "actsac-bench/1"
EXIT_USAGE = 2


def machine_info(threads: int) -> dict:
    import onnxruntime as ort

    peak, how = cpu_peak_gflops(threads)
    return {"hostname": socket.gethostname(), "platform": platform.platform(), "processor": _cpu_name(),
            "cpu_count": os.cpu_count(), "gpu": _gpu_name(), "python": platform.python_version(),
            "actsac": __version__, "onnxruntime": ort.__version__, "ort_providers": ort.get_available_providers(),
            "cpu_peak_gflops": peak, "cpu_peak_note": how}


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _gpu_name() -> str | None:
    """The NVIDIA GPU's name when nvidia-smi answers (None on a machine without one)."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None


def bench_model(args) -> tuple[dict, list]:
    """(the report's model section and backend entries, the raw results for the histogram)."""
    from actsac.export import MetadataError, read_metadata

    model = Path(args.model)
    try:
        metadata = read_metadata(model)
    except MetadataError as exc:
        raise UserError(str(exc)) from None
    obs = example_observation(metadata)
    flops, flops_note = onnx_flops(model)
    print(f"actsac-bench: {model.name} ({metadata.actor}, chunk {metadata.chunk_size}), batch 1, "
          f"{args.threads} thread(s), {args.warmup} warm-up + {args.iters} timed calls per backend", flush=True)
    raw = []
    for backend in args.backends:
        result = bench_backend(backend, model, obs, args.threads, args.iters, args.warmup)
        raw.append(result)
        print(_row(result.summary()), flush=True)
    section = {"path": str(model), "sha256": file_sha256(model), "actor": metadata.actor,
               "chunk_size": metadata.chunk_size, "action_dim": metadata.action_dim,
               "observation_shape": list(metadata.observation_shape), "precision": metadata.precision,
               "flops": flops, "flops_note": flops_note}
    return {"model": section, "backends": [r.summary() for r in raw]}, raw


def _row(r: dict) -> str:
    if r["status"] not in TIMED:
        return f"  {r['backend']:9} {r['status']}: {r['note']}"
    flag = "  FALLBACK: " if r["status"] == "fallback" else "  ("
    note = f"{flag}{r['note']}{')' if r['status'] == 'ok' else ''}" if r["note"] else ""
    return (f"  {r['backend']:9} p50 {r['p50_ms']:7.3f} ms  p90 {r['p90_ms']:7.3f}  p99 {r['p99_ms']:7.3f}  "
            f"max {r['max_ms']:7.3f}  [{r['provider']}]{note}")


def add_efficiency(report: dict) -> None:
    """Achieved GFLOP/s at p50 and, on the CPU, the fraction of the estimated peak (null where unknown)."""
    flops, peak = report["model"]["flops"], report["machine"]["cpu_peak_gflops"]
    for r in report["backends"]:
        r["achieved_gflops"] = r["fraction_of_peak"] = None
        if r["status"] in TIMED and flops and r["p50_ms"]:
            r["achieved_gflops"] = flops / (r["p50_ms"] * 1e-3) / 1e9
            if peak and r["provider"] in CPU_PROVIDERS:
                r["fraction_of_peak"] = r["achieved_gflops"] / peak


def print_efficiency(report: dict) -> None:
    m = report["model"]
    if not m["flops"]:
        print(f"  FLOPs: {m['flops_note']}")
        return
    print(f"  {m['flops'] / 1e6:.3f} MFLOP per call ({m['flops_note']}); peak: {report['machine']['cpu_peak_note']}")
    for r in report["backends"]:
        if r["achieved_gflops"]:
            frac = r["fraction_of_peak"]
            extra = f", {100 * frac:.2f} % of the CPU peak" if frac is not None else ""
            print(f"  {r['backend']:9} {r['achieved_gflops']:.2f} GFLOP/s at p50{extra}")


def plot_histogram(results, path: Path) -> None:
    """Latency histograms of every timed backend on shared log-spaced bins (backends differ 10-100x)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    timed = [r for r in results if r.latencies_ms]
    fig, ax = plt.subplots(figsize=(7, 4))
    if timed:
        everything = np.concatenate([r.latencies_ms for r in timed])
        low, high = max(everything.min(), 1e-4), max(everything.max(), everything.min() * 1.01 + 1e-4)
        bins = np.geomspace(low, high, 80)
        for r in timed:
            label = f"{r.backend} [{r.provider}]" + (" FALLBACK" if r.status == "fallback" else "")
            ax.hist(r.latencies_ms, bins=bins, alpha=0.6, label=label)
        ax.set_xscale("log")
        ax.legend()
    ax.set_xlabel("batch-1 latency (ms, log scale)")
    ax.set_ylabel("calls")
    ax.set_title("actsac-bench: inference latency")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)


def load_report(path: str) -> dict:
    """A result file, checked enough that the comparison table cannot fail half-way."""
    try:
        report = json.loads(Path(path).read_text())
    except OSError as exc:
        raise UserError(f"{path}: cannot read it ({exc.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(report, dict) or report.get("schema") != SCHEMA:
        found = report.get("schema") if isinstance(report, dict) else type(report).__name__
        raise UserError(f"{path}: not an actsac-bench result (schema {found!r}, expected {SCHEMA!r})")
    backends = report.get("backends")
    if not isinstance(backends, list) or not all(isinstance(b, dict) and isinstance(b.get("backend"), str)
                                                 and "status" in b for b in backends):
        raise UserError(f"{path}: field 'backends' must be a list of {{backend, status, ...}} objects")
    for section in ("machine", "model", "loop", "bus"):
        if not isinstance(report.get(section) or {}, dict):
            raise UserError(f"{path}: field '{section}' must be an object or null")
    return report


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _cell(v, fmt: str = "{:g}") -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    return fmt.format(v) if _number(v) else "-" if v is None else str(v)


def compare(paths: list[str]) -> None:
    """One column per result file: machine, model, p50/p99 per backend, loop and bus figures."""
    reports = [load_report(p) for p in paths]
    width = 24

    def line(label: str, cells) -> None:
        print(f"{label:<26}" + "".join(f"{str(c)[:width - 2]:>{width}}" for c in cells))

    machines = [r.get("machine") or {} for r in reports]
    models = [r.get("model") or {} for r in reports]
    line("", [Path(p).name for p in paths])
    line("machine", [_cell(m.get("hostname")) for m in machines])
    line("processor", [_cell(m.get("processor")) for m in machines])
    line("cpu cores / gpu", [f"{_cell(m.get('cpu_count'))} / {m.get('gpu') or '-'}" for m in machines])
    line("model", [Path(m["path"]).name if isinstance(m.get("path"), str) else "-" for m in models])
    line("model MFLOP", [_cell(m["flops"] / 1e6 if _number(m.get("flops")) else None, "{:.3f}") for m in models])
    names = {b["backend"] for r in reports for b in r["backends"]}
    for backend in sorted(names, key=lambda n: (BACKENDS.index(n) if n in BACKENDS else len(BACKENDS), n)):
        cells = []
        for r in reports:
            b = next((x for x in r["backends"] if x["backend"] == backend), None)
            if b is None:
                cells.append("-")
            elif b["status"] in TIMED and _number(b.get("p50_ms")) and _number(b.get("p99_ms")):
                cells.append(f"{b['p50_ms']:.3f}/{b['p99_ms']:.3f}" + ("*" if b["status"] == "fallback" else ""))
            else:
                cells.append(str(b["status"]))
        line(f"{backend} p50/p99 ms", cells)
    loops = [r.get("loop") or {} for r in reports]
    for key in LOOP_KEYS:
        if any(key in v for v in loops):
            line(f"loop.{key}", [_cell(v.get(key)) for v in loops])
    buses = [_bus_rows(r.get("bus") or {}) for r in reports]
    for label in dict.fromkeys(k for rows in buses for k in rows):
        line(label, [rows.get(label, "-") for rows in buses])
    if any(b["status"] == "fallback" for r in reports for b in r["backends"]):
        print("(* ONNX Runtime fell back to another provider, usually the CPU: see the file's note)")


LOOP_KEYS = ("fps_achieved", "deadline_misses", "jitter_p99_us", "jitter_max_us", "loop_overhead_p50_us",
             "inference_p50_ms", "realtime")


def _bus_rows(bus: dict) -> dict[str, str]:
    """Table rows of a bus-cycle result: p50/p99 (and the wire-time floor) per bus, and all buses at once."""
    def pair(entry) -> str:
        ok = isinstance(entry, dict) and _number(entry.get("p50_ms")) and _number(entry.get("p99_ms"))
        return f"{entry['p50_ms']:.3f}/{entry['p99_ms']:.3f}" if ok else "-"

    rows = {}
    for entry in bus.get("buses") or []:
        if isinstance(entry, dict):
            rows[f"bus {entry.get('bus', '?')} p50/p99 ms"] = pair(entry)
            if _number(entry.get("floor_ms")):
                rows[f"bus {entry.get('bus', '?')} floor ms"] = f"{entry['floor_ms']:.3f}"
    if isinstance(bus.get("concurrent"), dict):
        rows["bus all at once p50/p99 ms"] = pair(bus["concurrent"])
    return rows


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
    loop = p.add_argument_group("control loop and bus (simulator unless --port)")
    loop.add_argument("--loop", action="store_true", help="run actsac-run's loop benchmark (targets: 0 deadline "
                                                          "misses, jitter p99 < 1 ms, loop overhead p50 < 300 us)")
    loop.add_argument("--bus", action="store_true", help="time sync-read + sync-write bus cycles")
    loop.add_argument("--model", dest="loop_model", type=Path, metavar="ONNX",
                      help="--loop policy (default: the positional model, else the shipped example policy)")
    loop.add_argument("--robot", default="so100", help="built-in robot or robot .toml (default so100)")
    loop.add_argument("--port", help="a real robot's serial port (default: the simulator)")
    loop.add_argument("--calibration", type=Path,
                      help="--loop on a real robot: calibration file (default: the one actsac-calibrate wrote)")
    loop.add_argument("--fps", type=_positive_float, default=100.0, help="--loop rate in Hz (default 100)")
    loop.add_argument("--duration", type=_positive_float, default=60.0, help="--loop seconds (default 60)")
    loop.add_argument("--no-realtime", dest="realtime", action="store_false",
                      help="--loop at normal priority (default: ask for SCHED_FIFO, go on without it if refused)")
    loop.add_argument("--cycles", type=_int_at_least(1), default=2000, help="--bus cycles (default 2000)")
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
    for path in (args.model, args.loop_model, args.calibration):
        if path is not None and not path.is_file():
            p.error(f"{path}: no such file")
    if args.plot and not args.model:
        p.error("--plot draws the model latencies: give a model to time")
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        p.error("--plot needs matplotlib, which is not installed here")
    if args.bus and importlib.util.find_spec("actsac.drivers.bench") is None:
        p.error("--bus: this actsac has no bus benchmark (actsac.drivers.bench)")
    inputs = {"the model": args.model, "--model": args.loop_model, "--calibration": args.calibration,
              "--robot": args.robot}
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
    except UserError as exc:
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
        section, raw = bench_model(args)
        report.update(section)
        add_efficiency(report)
        print_efficiency(report)
    if args.loop:
        report["loop"] = run_loop_bench(args)
    if args.bus:
        report["bus"] = run_bus_bench(args)
    if args.json:
        atomic_write(args.json, lambda tmp: Path(tmp).write_text(json.dumps(report, indent=2) + "\n"))
        print(f"wrote {args.json}")
    if args.plot:
        plot_histogram(raw, args.plot)
        print(f"wrote {args.plot}")
    loop = report["loop"]
    if loop and loop["exit_code"] != 0:  # the figures are written; the exit code still says the run failed
        print(f"error: the control loop ended early: {loop['exit_reason']}", file=sys.stderr)
        return loop["exit_code"]
    return 0


def run_loop_bench(args) -> dict:
    from .loop_bench import format_targets, loop_benchmark

    model = args.loop_model or args.model
    where = f"port {args.port}" if args.port else "the simulator"
    print(f"control loop: {args.robot} on {where}, {args.fps:g} Hz for {args.duration:g} s, "
          f"policy {model.name if model else 'the example policy'}", flush=True)
    summary = loop_benchmark(args.duration, args.fps, robot=args.robot, port=args.port, model=model,
                             calibration=args.calibration, realtime=args.realtime,
                             log=lambda line: print(line, flush=True))
    print(format_targets(summary))
    summary["bench"] = {"policy": str(model) if model else "example policy", "robot": args.robot,
                        "port": args.port, "duration_s": args.duration}
    return summary


def run_bus_bench(args) -> dict:
    from actsac.drivers.bench import format_bus_cycle, run_bus_cycle

    def on_sigterm(signum, frame):
        raise KeyboardInterrupt  # unwinds through the benchmark's cleanup: torque off, ports closed

    where = f"port {args.port}" if args.port else "the simulator"
    print(f"bus cycle: {args.robot} on {where}, {args.cycles} cycles per bus", flush=True)
    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        result = run_bus_cycle(args.robot, port=args.port, cycles=args.cycles)
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(format_bus_cycle(result))
    return result


if __name__ == "__main__":
    main()
