"""`actsac-bench`: latency figures measured on the robot's own computer, in a JSON schema that stays stable.

    actsac-bench actor.onnx [--backends ort,ort-cuda,ort-trt,trt,torch] [--threads N] [--iters N]
                 [--json FILE] [--plot FILE]
    actsac-bench --loop [--robot so100] [--port P] [--fps 100] [--duration 60]
    actsac-bench --bus  [--robot so100] [--port P] [--cycles 2000]
    actsac-bench --compare A.json B.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import socket
import sys
from pathlib import Path

from actsac import __version__
from actsac._cli import UserError, fail
from actsac.files import atomic_write, file_sha256

from .bench_model import BACKENDS, bench_ort, bench_torch, bench_trt, cpu_peak_gflops, example_observation, onnx_flops

SCHEMA = "actsac-bench/1"


def machine_info(threads: int) -> dict:
    import onnxruntime as ort

    peak, how = cpu_peak_gflops(threads)
    return {"hostname": socket.gethostname(), "platform": platform.platform(), "processor": _cpu_name(),
            "cpu_count": os.cpu_count(), "python": platform.python_version(), "actsac": __version__,
            "onnxruntime": ort.__version__, "ort_providers": ort.get_available_providers(),
            "cpu_peak_gflops": peak, "cpu_peak_note": how}


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def bench_model(args) -> dict:
    from actsac.export import MetadataError, read_metadata

    model = Path(args.model)
    if not model.is_file():
        fail(f"{model}: no such file")
    try:
        metadata = read_metadata(model)
    except MetadataError as exc:
        fail(str(exc))
    obs = example_observation(metadata)
    flops = onnx_flops(model)
    results = []
    for backend in args.backends:
        if backend == "trt":
            result = bench_trt(model, obs, args.iters, args.warmup)
        elif backend == "torch":
            result = bench_torch(model, obs, args.threads, args.iters, args.warmup, args.checkpoint)
        else:
            result = bench_ort(model, backend, obs, args.threads, args.iters, args.warmup)
        results.append(result)
        print(_row(result.summary()), flush=True)
    return {"model": {"path": str(model), "sha256": file_sha256(model), "chunk_size": metadata.chunk_size,
                      "action_dim": metadata.action_dim, "observation_shape": list(metadata.observation_shape),
                      "precision": metadata.precision, "flops": flops},
            "backends": [r.summary() for r in results], "_raw": results}


def _row(r: dict) -> str:
    if r["status"] != "ok":
        return f"  {r['backend']:9} {r['status']}: {r['note']}"
    note = f"  ({r['note']})" if r["note"] else ""
    return (f"  {r['backend']:9} p50 {r['p50_ms']:7.3f} ms  p90 {r['p90_ms']:7.3f}  p99 {r['p99_ms']:7.3f}  "
            f"max {r['max_ms']:7.3f}  [{r['provider']}]{note}")


def add_efficiency(report: dict) -> None:
    """Achieved GFLOP/s at p50 and, on CPU backends, the fraction of the estimated peak."""
    flops, peak = report["model"]["flops"], report["machine"]["cpu_peak_gflops"]
    for r in report["backends"]:
        if r["status"] != "ok" or not flops:
            continue
        r["achieved_gflops"] = flops / (r["p50_ms"] * 1e-3) / 1e9
        on_cpu = r["provider"] in ("CPUExecutionProvider", "torch-cpu")
        r["fraction_of_peak"] = r["achieved_gflops"] / peak if (peak and on_cpu) else None


def plot_histogram(results, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for r in results:
        if r.latencies_ms:
            ax.hist(r.latencies_ms, bins=60, alpha=0.6, label=f"{r.backend} ({r.provider})")
    ax.set_xlabel("batch-1 latency (ms)")
    ax.set_ylabel("calls")
    ax.set_title("actsac-bench: inference latency")
    ax.legend()
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)


def compare(paths: list[str]) -> None:
    reports = []
    for p in paths:
        try:
            report = json.loads(Path(p).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            fail(f"{p}: cannot read benchmark JSON ({exc})")
        if report.get("schema") != SCHEMA:
            fail(f"{p}: not an actsac-bench result (schema {report.get('schema')!r}, expected {SCHEMA!r})")
        reports.append(report)
    names = [Path(p).stem for p in paths]
    print(f"{'backend':10}" + "".join(f"{n[:18]:>20}" for n in names))
    backends = sorted({b["backend"] for r in reports for b in r.get("backends", [])}, key=BACKENDS.index)
    for backend in backends:
        cells = []
        for r in reports:
            b = next((x for x in r.get("backends", []) if x["backend"] == backend), None)
            cells.append(f"{b['p50_ms']:.3f}/{b['p99_ms']:.3f} ms" if b and b["status"] == "ok" else "-")
        print(f"{backend:10}" + "".join(f"{c:>20}" for c in cells))
    for section, keys in (("loop", ("jitter_p99_us", "deadline_misses", "loop_overhead_p50_us")),
                          ("bus", ("cycle_p50_ms", "cycle_p99_ms"))):
        for key in keys:
            values = [r.get(section, {}) or {} for r in reports]
            if any(key in v for v in values):
                print(f"{section}.{key:20}"[:30].ljust(10) + "".join(f"{str(v.get(key, '-')):>20}" for v in values))
    print("(cells: p50/p99 latency at batch 1)")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="actsac-bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", nargs="?", help="exported actor (.onnx) to time")
    parser.add_argument("--backends", default="ort,torch",
                        help=f"comma-separated, from {','.join(BACKENDS)} (default: ort,torch)")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads (default 2)")
    parser.add_argument("--iters", type=int, default=500, help="timed calls per backend (default 500)")
    parser.add_argument("--warmup", type=int, default=50, help="untimed calls first (default 50)")
    parser.add_argument("--checkpoint", type=Path, help="model.pt for the torch backend (default: beside the .onnx)")
    parser.add_argument("--loop", action="store_true", help="benchmark the control loop (simulator unless --port)")
    parser.add_argument("--bus", action="store_true", help="benchmark one sync-read + sync-write bus cycle")
    parser.add_argument("--robot", default="so100", help="robot for --loop / --bus (default so100)")
    parser.add_argument("--port", help="serial port of a real robot for --loop / --bus (default: simulator)")
    parser.add_argument("--calibration", type=Path, help="calibration file for --loop on a real robot")
    parser.add_argument("--fps", type=float, default=100.0, help="--loop rate (default 100)")
    parser.add_argument("--duration", type=float, default=60.0, help="--loop seconds (default 60)")
    parser.add_argument("--cycles", type=int, default=2000, help="--bus cycles (default 2000)")
    parser.add_argument("--json", type=Path, help="write the results here (schema actsac-bench/1)")
    parser.add_argument("--plot", type=Path, help="write a latency histogram PNG here")
    parser.add_argument("--compare", nargs="+", metavar="JSON", help="print a table comparing result files")
    args = parser.parse_args(argv)
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in args.backends if b not in BACKENDS]
    if unknown:
        parser.error(f"unknown backend '{unknown[0]}' (one of {', '.join(BACKENDS)})")
    if not (args.model or args.loop or args.bus or args.compare):
        parser.error("give a model to time, --loop, --bus or --compare")
    if args.iters < 1 or args.threads < 1:
        parser.error("--iters and --threads must be >= 1")
    for out in (args.json, args.plot):
        if out is not None and not out.parent.is_dir():
            parser.error(f"{out}: directory {out.parent} does not exist")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    try:
        _main(args)
    except UserError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted", 130)


def _main(args) -> None:
    if args.compare:
        compare(args.compare)
        return
    report = {"schema": SCHEMA, "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "machine": machine_info(args.threads),
              "settings": {"threads": args.threads, "iters": args.iters, "warmup": args.warmup},
              "model": None, "backends": [], "loop": None, "bus": None}
    raw = []
    if args.model:
        print(f"actsac-bench: {args.model}, batch 1, {args.threads} thread(s), {args.iters} calls per backend")
        result = bench_model(args)
        raw = result.pop("_raw")
        report.update(result)
        add_efficiency(report)
        m = report["model"]
        if m["flops"]:
            for r in report["backends"]:
                if r.get("achieved_gflops"):
                    frac = r.get("fraction_of_peak")
                    extra = f", {100 * frac:.1f} % of the estimated peak" if frac else ""
                    print(f"  {r['backend']:9} {m['flops'] / 1e6:.1f} MFLOP per call -> "
                          f"{r['achieved_gflops']:.2f} GFLOP/s{extra}")
    if args.loop:
        report["loop"] = run_loop_bench(args)
    if args.bus:
        report["bus"] = run_bus_bench(args)
    if args.json:
        atomic_write(args.json, lambda tmp: Path(tmp).write_text(json.dumps(report, indent=2)))
        print(f"wrote {args.json}")
    if args.plot and raw:
        plot_histogram(raw, args.plot)
        print(f"wrote {args.plot}")


def run_loop_bench(args) -> dict:
    from .loop_bench import format_targets, loop_benchmark

    where = f"port {args.port}" if args.port else "the simulator"
    print(f"control loop: {args.robot} on {where}, {args.fps:g} Hz for {args.duration:g} s")
    summary = loop_benchmark(args.duration, args.fps, robot=args.robot, port=args.port,
                             model=Path(args.model) if args.model else None, calibration=args.calibration)
    print(format_targets(summary))
    return summary


def run_bus_bench(args) -> dict:
    from actsac.drivers.bench import format_bus_cycle, run_bus_cycle

    result = run_bus_cycle(args.robot, port=args.port, cycles=args.cycles)
    print(format_bus_cycle(result))
    return result


if __name__ == "__main__":
    sys.exit(main())
