"""Batch-1 actor latency: eager PyTorch vs ONNX Runtime (fp32, fp16, int8) vs TensorRT (when present).

    python benchmarks/inference.py [--rounds 10] [--runs 100] [--threads 2] [--json results.json]

Exports the default and small ACT actors and the MLP (SO-100: 12-dim state, 6 joints, H = 10) with
actsac.export. Each (model, backend) pair lives in its own worker process, so one runtime's thread pool
never competes with another's; the workers take turns, `--runs` calls each per round. A shared machine is
noisy, so besides the pooled p50 / p99 the speed-up is also given as the median over rounds of the
per-round ratio (PyTorch and ONNX Runtime timed seconds apart see about the same load).
PyTorch runs eagerly under torch.inference_mode with `--threads` intra-op threads; ONNX Runtime with
ORT_ENABLE_ALL and `--threads` intra-op threads. Both compute the same three outputs (mean, log-std, action).
The exported ACT graphs have their constant attention folded away (actsac.export.fold); `torch-folded` runs
that same folded module in eager PyTorch, to show how much of the speed-up is the folding and how much is
ONNX Runtime.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

MODELS = {  # name -> (PolicyConfig preset, actor type)
    "act-default": ("default", "act"),
    "act-small": ("small", "act"),
    "mlp": ("default", "mlp"),
}
TARGET_RATIO = 4.0  # ONNX Runtime vs eager PyTorch, default ACT actor, H = 10


def make_checkpoint(directory: Path, name: str) -> Path:
    import torch

    from actsac.policy import ActionGroup, NormStats, PolicyConfig, build_actor, save_checkpoint

    preset, actor = MODELS[name]
    joints = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
    low, high = [-100.0] * 5 + [0.0], [100.0] * 6
    config = PolicyConfig.from_preset(
        preset, actor=actor, state_dim=12, chunk_size=10,
        action_groups=[ActionGroup("arm", joints, ["range_m100_100"] * 5 + ["range_0_100"])],
        obs_stats=NormStats.min_max(low + low, high + high), action_stats=NormStats.min_max(low, high))
    torch.manual_seed(0)
    return save_checkpoint(directory / f"{name}.pt", build_actor(config).eval())


def export_all(directory: Path, trt: bool) -> dict[str, dict]:
    """name -> {"checkpoint", "fp32", "fp16", "int8", "parameters"} (and TensorRT engines beside the .onnx files)."""
    from actsac.export.onnx_export import export_onnx
    from actsac.policy import load_checkpoint

    models = {}
    for name in MODELS:
        checkpoint = load_checkpoint(make_checkpoint(directory, name))
        entry = {"checkpoint": str(checkpoint.path), "parameters": checkpoint.actor.num_parameters()}
        for precision in ("fp32", "fp16", "int8"):
            out = directory / f"{name}-{precision}.onnx"
            result = export_onnx(checkpoint, out, precision=precision, log=lambda line: None)
            entry[precision] = str(out)
            if trt and precision != "int8":  # TensorRT builds fp32 / fp16 engines only
                from actsac.export.tensorrt import export_engine

                export_engine(out, result.metadata, batch=None, log=lambda line: None)
        models[name] = entry
        print(f"exported {name}: {entry['parameters']:,} parameters", file=sys.stderr)
    return models


def load_call(backend: str, onnx_path: Path, checkpoint: str, threads: int):
    """A zero-argument batch-1 inference on the middle of the normalisation range (from the ONNX metadata)."""
    from actsac.export import read_metadata
    from actsac.export.verify import observation_range
    from actsac.onnx_runtime import ort_session

    metadata = read_metadata(onnx_path)
    low, high = observation_range(metadata)
    obs = np.ascontiguousarray(np.broadcast_to((low + high) / 2, (1, *metadata.observation_shape)), np.float32)
    if backend.startswith("torch"):
        import torch

        from actsac.export.fold import fold_for_inference
        from actsac.export.onnx_export import ExportedActor
        from actsac.policy import load_checkpoint

        torch.set_num_threads(threads)
        actor = load_checkpoint(checkpoint).actor.eval()
        graph = ExportedActor(fold_for_inference(actor) if backend == "torch-folded" else actor)
        x = torch.from_numpy(obs)

        def call():
            with torch.inference_mode():
                graph(x)

        return call
    if backend.startswith("ort"):
        session = ort_session(onnx_path, threads)
        feed = {session.get_inputs()[0].name: obs}
        return lambda: session.run(None, feed)
    from actsac.export.tensorrt import TensorRTRunner

    runner = TensorRTRunner(onnx_path.with_suffix(".engine"))
    return lambda: runner.run(obs)


def serve(backend: str, onnx_path: str, checkpoint: str, threads: int) -> None:
    """Worker loop: read a count N on stdin, answer with N latency samples (ms) as one JSON line."""
    from actsac.timing import time_calls

    call = load_call(backend, Path(onnx_path), checkpoint, threads)
    time_calls(call, runs=1, warmup=20)
    print("ready", flush=True)
    for line in sys.stdin:
        print(json.dumps(time_calls(call, runs=int(line), warmup=2).samples_ms), flush=True)


class Worker:
    def __init__(self, backend: str, onnx_path: str, checkpoint: str, threads: int):
        self.label = f"{backend} on {Path(onnx_path).name}"
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", backend, onnx_path, checkpoint, "--threads", str(threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"{self.label}: worker failed to start")

    def measure(self, runs: int) -> list[float]:
        self.proc.stdin.write(f"{runs}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.label}: worker died")
        return json.loads(line)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10, help="rounds; each worker runs --runs calls per round")
    parser.add_argument("--runs", type=int, default=100, help="timed calls per worker per round")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads for PyTorch and ONNX Runtime")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--serve", nargs=3, metavar=("BACKEND", "ONNX", "CHECKPOINT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(*args.serve, args.threads)
        return

    from actsac.export.tensorrt import missing_tensorrt_reason

    trt_reason = missing_tensorrt_reason()
    backends = {"torch": "fp32", "torch-folded": "fp32", "ort-fp32": "fp32", "ort-fp16": "fp16", "ort-int8": "int8"}
    if trt_reason is None:
        backends.update({"trt-fp32": "fp32", "trt-fp16": "fp16"})
    with tempfile.TemporaryDirectory() as tmp:
        models = export_all(Path(tmp), trt=trt_reason is None)
        workers = {(m, b): Worker(b, e[p], e["checkpoint"], args.threads) for m, e in models.items()
                   for b, p in backends.items()}
        rounds = {key: [] for key in workers}  # one list of samples per round
        try:
            for round_index in range(args.rounds):
                for key, worker in workers.items():
                    rounds[key].append(worker.measure(args.runs))
                print(f"round {round_index + 1}/{args.rounds} done", file=sys.stderr)
        finally:
            for worker in workers.values():
                worker.close()
    report(models, backends, rounds, args, trt_reason)


def report(models, backends, rounds, args, trt_reason) -> None:
    results = []
    print(f"\nbatch 1, {args.threads} threads, {args.rounds} rounds x {args.runs} calls per backend"
          + ("" if trt_reason is None else f"; TensorRT skipped ({trt_reason})"))
    print("p50 / p99: all rounds pooled; speed-up: torch p50 / backend p50, pooled, and the median of the "
          "per-round ratios")
    print(f"{'model':<12} {'params':>10}  {'backend':<12} {'p50 ms':>8} {'p99 ms':>8} {'speed-up':>9} {'(rounds)':>9}")
    for name, entry in models.items():
        torch_rounds = [np.percentile(r, 50) for r in rounds[name, "torch"]]
        torch_p50 = float(np.percentile(np.concatenate(rounds[name, "torch"]), 50))
        for backend in backends:
            pooled = np.concatenate(rounds[name, backend])
            p50, p99 = float(np.percentile(pooled, 50)), float(np.percentile(pooled, 99))
            per_round = [t / np.percentile(r, 50) for t, r in zip(torch_rounds, rounds[name, backend])]
            speedup, round_speedup = torch_p50 / p50, float(np.median(per_round))
            results.append({"model": name, "parameters": entry["parameters"], "backend": backend, "p50_ms": p50,
                            "p99_ms": p99, "speedup_vs_torch": speedup, "median_round_speedup": round_speedup})
            print(f"{name:<12} {entry['parameters']:>10,}  {backend:<12} {p50:>8.3f} {p99:>8.3f} {speedup:>8.1f}x "
                  f"{round_speedup:>8.1f}x")
    default = next(r for r in results if r["model"] == "act-default" and r["backend"] == "ort-fp32")
    ratio = default["median_round_speedup"]
    print(f"\ntarget: ONNX Runtime fp32 >= {TARGET_RATIO:g}x faster than eager PyTorch for the default ACT actor "
          f"(H = 10): {ratio:.1f}x (median of rounds; {default['speedup_vs_torch']:.1f}x pooled), "
          f"{'met' if ratio >= TARGET_RATIO else 'NOT met'}")
    if args.json:
        args.json.write_text(json.dumps({"threads": args.threads, "runs": args.runs, "rounds": args.rounds,
                                         "tensorrt": trt_reason or "present", "results": results}, indent=1))


if __name__ == "__main__":
    main()
