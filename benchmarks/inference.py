"""Batch-1 actor latency: eager PyTorch vs ONNX Runtime (fp32, fp16, int8) vs TensorRT (when present).

    python benchmarks/inference.py [--cameras] [--rounds 10] [--runs 100] [--threads 2] [--json results.json]

Exports the default and small ACT actors and the MLP (SO-100: 12-dim state, 6 joints, H = 10) with
actsac.export. `--cameras` times the camera actors instead, each built as actsac-train builds the actor of
so100-visual-reach (6 joint positions, one camera "front", the small preset, H = 10; TrainConfig.policy_config
with ImageNet statistics, which only change constants of the graph):
  act-camera-task       the task's policy: ACT + small CNN, 48x64
  act-resnet18-96x128   ACT + ResNet-18, 96x128
  act-resnet18-480x640  ACT + ResNet-18, 480x640 (~300 ms a call on a 2-core CPU)
Their inputs are the middle of the normalisation range and one mid-grey uint8 frame per camera
(actsac.bench.model.example_observation, actsac.runtime.backends.example_images), the same for every backend.
Each (model, backend) pair lives in its own worker process, so one runtime's thread pool never competes with
another's; the workers take turns, `--runs` calls each per round. A model whose slowest backend takes over
100 ms a call in the warm-up gets at most 10 calls per round (the 480x640 ResNet), so a full `--cameras` run
(exports included) stays within about 10 minutes on 2 cores. A shared machine is noisy, so besides the pooled
p50 / p99 the speed-up is also given as the median over rounds of the per-round ratio (PyTorch and ONNX Runtime
timed seconds apart see about the same load).
PyTorch runs eagerly under torch.inference_mode with `--threads` intra-op threads; ONNX Runtime with
ORT_ENABLE_ALL and `--threads` intra-op threads. Both compute the same three outputs (mean, log-std, action).
The exported ACT graphs have their constant attention folded away (actsac.export.fold); `torch-folded` runs
that same folded module in eager PyTorch, to show how much of the speed-up is the folding and how much is
ONNX Runtime. Targets (ONNX Runtime fp32 vs eager PyTorch, median of rounds): >= 4x on act-default, >= 2x on
act-camera-task.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

STATE_MODELS = {  # name -> (PolicyConfig preset, actor type)
    "act-default": ("default", "act"),
    "act-small": ("small", "act"),
    "mlp": ("default", "mlp"),
}
CAMERA_MODELS = {  # name -> (image encoder, camera height, width): so100-visual-reach's ACT actor
    "act-camera-task": ("small_cnn", 48, 64),
    "act-resnet18-96x128": ("resnet18", 96, 128),
    "act-resnet18-480x640": ("resnet18", 480, 640),
}
TARGETS = {  # model -> (ONNX Runtime fp32 / eager PyTorch ratio to reach, which actor)
    "act-default": (4.0, "for the default ACT actor (H = 10)"),
    "act-camera-task": (2.0, "on the task's policy (so100-visual-reach: ACT + small CNN, 48x64, H = 10)"),
}
SLOW_MS, SLOW_RUNS = 100.0, 10  # a model slower than SLOW_MS a call gets at most SLOW_RUNS calls per round


def policy_config(name: str):
    from actsac.policy import ActionGroup, NormStats, PolicyConfig

    if name in CAMERA_MODELS:
        from actsac.policy import tasks
        from actsac.policy.train import TrainConfig

        encoder, height, width = CAMERA_MODELS[name]
        train = TrainConfig(task=tasks.VISUAL_TASK_NAME, image_encoder=encoder, image_size=(height, width))
        return train.policy_config()  # ImageNet statistics (the trainer gives small_cnn the demos')
    preset, actor = STATE_MODELS[name]
    joints = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
    low, high = [-100.0] * 5 + [0.0], [100.0] * 6
    return PolicyConfig.from_preset(
        preset, actor=actor, state_dim=12, chunk_size=10,
        action_groups=[ActionGroup("arm", joints, ["range_m100_100"] * 5 + ["range_0_100"])],
        obs_stats=NormStats.min_max(low + low, high + high), action_stats=NormStats.min_max(low, high))


def make_checkpoint(directory: Path, name: str) -> Path:
    import torch

    from actsac.policy import build_actor, save_checkpoint

    torch.manual_seed(0)
    return save_checkpoint(directory / f"{name}.pt", build_actor(policy_config(name)).eval())


def export_all(directory: Path, names: list[str], trt: bool) -> dict[str, dict]:
    """name -> {"checkpoint", "fp32", "fp16", "int8", "parameters"} (and TensorRT engines beside the .onnx files)."""
    from actsac.export.onnx_export import export_onnx
    from actsac.policy import load_checkpoint

    models = {}
    for name in names:
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
    """A zero-argument batch-1 inference on the middle of the normalisation range and, for a camera model, a
    mid-grey frame per camera (from the ONNX metadata)."""
    from actsac.bench.model import example_observation
    from actsac.export import read_metadata
    from actsac.onnx_runtime import ort_session
    from actsac.runtime.backends import example_images

    metadata = read_metadata(onnx_path)
    frames = example_images(metadata) or {}
    inputs = {metadata.input_names[0]: example_observation(metadata)}  # {graph input name: batch-1 array}
    inputs.update((camera["input"], frames[camera["name"]][None]) for camera in metadata.cameras)
    if backend.startswith("torch"):
        import torch

        from actsac.export.fold import fold_for_inference
        from actsac.export.onnx_export import ExportedActor
        from actsac.policy import load_checkpoint

        torch.set_num_threads(threads)
        actor = load_checkpoint(checkpoint).actor.eval()
        graph = ExportedActor(fold_for_inference(actor) if backend == "torch-folded" else actor)
        args = [torch.from_numpy(inputs[name]) for name in metadata.input_names]  # (observation, *images)

        def call():
            with torch.inference_mode():
                graph(*args)

        return call
    if backend.startswith("ort"):
        session = ort_session(onnx_path, threads)
        return lambda: session.run(None, inputs)
    from actsac.export.tensorrt import TensorRTRunner

    runner = TensorRTRunner(onnx_path.with_suffix(".engine"))
    return lambda: runner.run(inputs)


def serve(backend: str, onnx_path: str, checkpoint: str, threads: int) -> None:
    """Worker loop: say "ready <warm-up p50 ms>", then read a count N on stdin and answer with N latency samples
    (ms) as one JSON line."""
    from actsac.timing import time_calls

    call = load_call(backend, Path(onnx_path), checkpoint, threads)
    print(f"ready {time_calls(call, runs=5, warmup=15).p50_ms}", flush=True)
    for line in sys.stdin:
        print(json.dumps(time_calls(call, runs=int(line), warmup=2).samples_ms), flush=True)


class Worker:
    def __init__(self, backend: str, onnx_path: str, checkpoint: str, threads: int):
        self.label = f"{backend} on {Path(onnx_path).name}"
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", backend, onnx_path, checkpoint, "--threads", str(threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        ready = self.proc.stdout.readline().split()
        if ready[:1] != ["ready"]:
            raise RuntimeError(f"{self.label}: worker failed to start")
        self.warmup_ms = float(ready[1])

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
    parser.add_argument("--cameras", action="store_true",
                        help=f"time the camera actors ({', '.join(CAMERA_MODELS)}) instead of the state-only ones")
    parser.add_argument("--rounds", type=int, default=10, help="rounds; each worker runs --runs calls per round")
    parser.add_argument("--runs", type=int, default=100, help=f"timed calls per worker per round (at most "
                                                              f"{SLOW_RUNS} for a model over {SLOW_MS:g} ms a call)")
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
        names = list(CAMERA_MODELS if args.cameras else STATE_MODELS)
        models = export_all(Path(tmp), names, trt=trt_reason is None)
        workers = {(m, b): Worker(b, e[p], e["checkpoint"], args.threads) for m, e in models.items()
                   for b, p in backends.items()}
        for name, entry in models.items():  # calls per round: fewer for a slow model (its slowest backend)
            slow = max(workers[name, b].warmup_ms for b in backends) > SLOW_MS
            entry["runs"] = min(args.runs, SLOW_RUNS) if slow else args.runs
        rounds = {key: [] for key in workers}  # one list of samples per round
        try:
            for round_index in range(args.rounds):
                for key, worker in workers.items():
                    rounds[key].append(worker.measure(models[key[0]]["runs"]))
                print(f"round {round_index + 1}/{args.rounds} done", file=sys.stderr)
        finally:
            for worker in workers.values():
                worker.close()
    report(models, backends, rounds, args, trt_reason)


def report(models, backends, rounds, args, trt_reason) -> None:
    results = []
    print(f"\nbatch 1, {args.threads} threads, {args.rounds} rounds x {args.runs} calls per backend"
          + ("" if trt_reason is None else f"; TensorRT skipped ({trt_reason})"))
    scaled = [f"{name} {entry['runs']}" for name, entry in models.items() if entry["runs"] != args.runs]
    if scaled:
        print(f"calls per round for a model over {SLOW_MS:g} ms a call: {', '.join(scaled)}")
    print("p50 / p99: all rounds pooled; speed-up: torch p50 / backend p50, pooled, and the median of the "
          "per-round ratios")
    width = max(12, *map(len, models))
    print(f"{'model':<{width}} {'params':>10}  {'backend':<12} {'p50 ms':>8} {'p99 ms':>8} {'speed-up':>9} "
          f"{'(rounds)':>9}")
    for name, entry in models.items():
        torch_rounds = [np.percentile(r, 50) for r in rounds[name, "torch"]]
        torch_p50 = float(np.percentile(np.concatenate(rounds[name, "torch"]), 50))
        for backend in backends:
            pooled = np.concatenate(rounds[name, backend])
            p50, p99 = float(np.percentile(pooled, 50)), float(np.percentile(pooled, 99))
            per_round = [t / np.percentile(r, 50) for t, r in zip(torch_rounds, rounds[name, backend])]
            speedup, round_speedup = torch_p50 / p50, float(np.median(per_round))
            results.append({"model": name, "parameters": entry["parameters"], "backend": backend,
                            "calls_per_round": entry["runs"], "p50_ms": p50, "p99_ms": p99,
                            "speedup_vs_torch": speedup, "median_round_speedup": round_speedup})
            print(f"{name:<{width}} {entry['parameters']:>10,}  {backend:<12} {p50:>8.3f} {p99:>8.3f} {speedup:>8.1f}x "
                  f"{round_speedup:>8.1f}x")
    print()
    for name, (target, actor) in TARGETS.items():
        row = next((r for r in results if r["model"] == name and r["backend"] == "ort-fp32"), None)
        if row:
            ratio = row["median_round_speedup"]
            print(f"target: ONNX Runtime fp32 >= {target:g}x faster than eager PyTorch {actor}: {ratio:.1f}x "
                  f"(median of rounds; {row['speedup_vs_torch']:.1f}x pooled), "
                  f"{'met' if ratio >= target else 'NOT met'}")
    if args.json:
        args.json.write_text(json.dumps({"threads": args.threads, "runs": args.runs, "rounds": args.rounds,
                                         "tensorrt": trt_reason or "present", "results": results}, indent=1))


if __name__ == "__main__":
    main()
