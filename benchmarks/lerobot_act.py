"""Same weights, two runtimes: LeRobot's own ACT (eager PyTorch) vs actsac's export of it (ONNX Runtime).

    ../shared/tools/lerobot-venv /tmp/lerobot-venv          # LeRobot 0.4.4 in a side environment, once
    /tmp/lerobot-venv/bin/python benchmarks/lerobot_act.py --actsac-export /path/to/venv/bin/actsac-export \\
        [--sizes 480x640 96x128] [--rounds 10] [--threads 2] [--keep DIR] [--json results.json]

Runs in the side environment (LeRobot needs torchvision; actsac never imports LeRobot). For each image size it
builds a LeRobot ACT with LeRobot's default sizes (dim_model 512, 8 heads, feed-forward 3200, 4 encoder layers,
1 decoder layer, chunk 100, VAE weights present) on the SO-100's 6 joints with one camera ``front``, seeded
random weights (the ResNet-18 backbone with randomised batch-norm statistics) and dataset statistics; saves it
with LeRobot's ``save_pretrained`` and its processors; exports it with ``actsac-export DIR --robot so100``
(fp32 and ``--int8``) from the actsac environment; then times batch-1 calls from a uint8 HWC RGB frame and the
joint state to the action chunk in robot units:

- ``lerobot``: the frame to a float CHW tensor in [0, 1], LeRobot's preprocessor, ``predict_action_chunk``,
  its postprocessor (torch.inference_mode, ``--threads`` intra-op threads);
- ``ort-fp32`` / ``ort-int8``: one ONNX Runtime call on the frame and the state (ORT_ENABLE_ALL, ``--threads``
  intra-op threads, no spinning).

The backends take turns, one round each, ``--calls`` calls per round (10 at 480x640): they share one process
but never run at once. Speed-up is the median over rounds of the per-round p50 ratio. The error is the largest
|actsac - LeRobot| over 16 random frames and states, divided by that joint's action std (the statistics the
policy was trained with); the target is 1e-4 for fp32.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lerobot_stub  # noqa: F401  (before lerobot)
import numpy as np
import onnxruntime as ort
import torch

sys.path.insert(0, str(Path(__file__).parent.parent / "tests" / "export" / "lerobot"))
from backbone import resnet18_weights  # noqa: E402

from lerobot.configs.types import FeatureType, PolicyFeature  # noqa: E402
from lerobot.policies.act.configuration_act import ACTConfig  # noqa: E402
from lerobot.policies.act.modeling_act import ACTPolicy  # noqa: E402
from lerobot.policies.act.processor_act import make_act_pre_post_processors  # noqa: E402

JOINT_SCALE = np.array([100.0] * 5 + [50.0])
ERROR_ROWS = 16


def build(height: int, width: int, directory: Path, seed: int = 0):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    config = ACTConfig(
        input_features={"observation.state": PolicyFeature(FeatureType.STATE, (6,)),
                        "observation.images.front": PolicyFeature(FeatureType.VISUAL, (3, height, width))},
        output_features={"action": PolicyFeature(FeatureType.ACTION, (6,))},
        pretrained_backbone_weights=None, device="cpu")
    policy = ACTPolicy(config).eval()
    with torch.no_grad():
        for name, value in resnet18_weights(seed).items():
            policy.model.backbone.state_dict()[name].copy_(torch.from_numpy(value))

    def vector(scale):
        mean, std = rng.normal(0, 0.2, 6) * scale, rng.uniform(0.1, 0.4, 6) * scale
        return {"mean": mean, "std": std, "min": mean - 2.5 * std, "max": mean + 2.5 * std}

    stats = {"observation.state": vector(JOINT_SCALE), "action": vector(JOINT_SCALE),
             "observation.images.front": {"mean": np.array([0.485, 0.456, 0.406]).reshape(3, 1, 1),
                                          "std": np.array([0.229, 0.224, 0.225]).reshape(3, 1, 1)}}
    stats = {k: {s: torch.tensor(v, dtype=torch.float32) for s, v in d.items()} for k, d in stats.items()}
    pre, post = make_act_pre_post_processors(config, stats)
    policy.save_pretrained(directory)
    pre.save_pretrained(directory)
    post.save_pretrained(directory)
    return policy, pre, post, stats


def lerobot_call(policy, pre, post):
    def call(state: np.ndarray, frame: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            image = torch.from_numpy(frame).permute(2, 0, 1).unsqueeze(0).float() / 255.0
            batch = pre({"observation.state": torch.from_numpy(state), "observation.images.front": image})
            return post(policy.predict_action_chunk(batch))[0].numpy()
    return call


def ort_call(path: Path, threads: int):
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def call(state: np.ndarray, frame: np.ndarray) -> np.ndarray:
        return session.run(["action"], {"observation": state[None].astype(np.float32),
                                        "image.front": frame[None]})[0][0]
    return call


def export(actsac_export: str, directory: Path, out: Path, *flags: str) -> None:
    cmd = [actsac_export, str(directory), "--robot", "so100", "-o", str(out), *flags]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stdout}{done.stderr}")


def measure(size: str, args) -> dict:
    height, width = (int(n) for n in size.split("x"))
    work = Path(args.keep or tempfile.mkdtemp()) / f"act_{size}"
    work.mkdir(parents=True, exist_ok=True)
    policy, pre, post, stats = build(height, width, work / "pretrained_model")
    print(f"{size}: exporting with actsac (fp32, int8)", flush=True)
    export(args.actsac_export, work / "pretrained_model", work / "fp32.onnx")
    export(args.actsac_export, work / "pretrained_model", work / "int8.onnx", "--int8")
    torch.set_num_threads(args.threads)
    calls = {"lerobot": lerobot_call(policy, pre, post), "ort-fp32": ort_call(work / "fp32.onnx", args.threads),
             "ort-int8": ort_call(work / "int8.onnx", args.threads)}
    rng = np.random.default_rng(1)
    mean, std = stats["observation.state"]["mean"].numpy(), stats["observation.state"]["std"].numpy()
    states = (mean + std * rng.normal(0, 1, (ERROR_ROWS, 6))).astype(np.float32)
    frames = rng.integers(0, 256, (ERROR_ROWS, height, width, 3), dtype=np.uint8)
    reference = np.stack([calls["lerobot"](s[None], f) for s, f in zip(states, frames)])
    action_std = stats["action"]["std"].numpy()
    errors = {}
    for name in ("ort-fp32", "ort-int8"):
        got = np.stack([calls[name](s, f) for s, f in zip(states, frames)])
        errors[name] = float(np.max(np.abs(got - reference) / action_std))
    n_calls = args.calls or (10 if height * width > 200_000 else 50)
    times = {name: [] for name in calls}
    per_round = {name: [] for name in calls}
    for name, call in calls.items():  # warm-up
        for _ in range(3):
            call(states[0][None] if name == "lerobot" else states[0], frames[0])
    for round_index in range(args.rounds):
        for name, call in calls.items():
            state = states[round_index % ERROR_ROWS]
            state = state[None] if name == "lerobot" else state
            frame = frames[round_index % ERROR_ROWS]
            samples = []
            for _ in range(n_calls):
                t0 = time.perf_counter()
                call(state, frame)
                samples.append(time.perf_counter() - t0)
            times[name] += samples
            per_round[name].append(float(np.median(samples)))
        print(f"{size}: round {round_index + 1}/{args.rounds}: "
              + ", ".join(f"{n} {per_round[n][-1] * 1e3:.1f} ms" for n in calls), flush=True)
    result = {"size": size, "calls_per_round": n_calls, "rounds": args.rounds, "threads": args.threads,
              "parameters": int(sum(p.numel() for p in policy.model.parameters())), "backends": {}}
    for name in calls:
        samples = np.array(times[name]) * 1e3
        entry = {"p50_ms": float(np.percentile(samples, 50)), "p99_ms": float(np.percentile(samples, 99))}
        if name != "lerobot":
            ratios = np.array(per_round["lerobot"]) / np.array(per_round[name])
            entry.update(speedup=float(np.median(ratios)), max_error_per_action_std=errors[name])
        result["backends"][name] = entry
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--actsac-export", required=True, help="the actsac-export of the actsac environment")
    parser.add_argument("--sizes", nargs="+", default=["480x640", "96x128"])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--calls", type=int, help="calls per round (default 10 at 480x640, 50 below)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="keep the checkpoints and exports under this directory")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = [measure(size, args) for size in args.sizes]
    print(f"\n| camera | backend | p50 ms | p99 ms | speed-up vs LeRobot | max error / action std |\n|---|---|---|---|---|---|")
    for result in results:
        for name, entry in result["backends"].items():
            speedup = f"{entry['speedup']:.2f}x" if "speedup" in entry else "1"
            error = f"{entry['max_error_per_action_std']:.1e}" if "speedup" in entry else "(reference)"
            print(f"| {result['size']} | {name} | {entry['p50_ms']:.1f} | {entry['p99_ms']:.1f} | {speedup} | {error} |")
    if args.json:
        args.json.write_text(json.dumps({"torch": torch.__version__, "onnxruntime": ort.__version__,
                                         "results": results}, indent=1))


if __name__ == "__main__":
    main()
