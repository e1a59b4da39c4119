"""SACPolicy at the seed design's scale: parameter counts of the two actors and their batch-1 latency.

    python benchmarks/sac_policy_scale.py [--rounds 5] [--runs 100] [--threads 2]

The seed design quotes ~140K parameters (0.75 ms) for the SAC-MLP actor and ~9.9M (1.95 ms) for the SAC-ACT
actor, hardware not stated. Here both are built through ``SACConfig`` / ``SACPolicy`` for a humanoid upper
body (arm 14 / torso 6 / hand 12 = 32 actions, a 64-dim state), the ACT actor with the default sizes
(dim 512, feed-forward 3200, chunk 10) and the MLP as the plain SAC baseline (256 x 256, one action per
step); each is saved with ``save_pretrained``, exported with actsac-export's code, and timed in eager
PyTorch and ONNX Runtime side by side (one worker process per model and backend, rounds interleaved: the
machinery of benchmarks/inference.py).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from inference import Worker  # noqa: E402

SEED_FIGURES = {"act": (9.9e6, 1.95), "mlp": (140e3, 0.75)}  # parameters, ms


def build(directory: Path, use_act_actor: bool) -> tuple[Path, int]:
    import torch

    from actsac.export.onnx_export import export_onnx
    from actsac.policy import load_checkpoint
    from actsac.policy.sac_policy import FeatureType, PolicyFeature, SACConfig, SACPolicy

    config = SACConfig(
        input_features={"observation.state": PolicyFeature(FeatureType.STATE, (64,))},
        output_features={"action": PolicyFeature(FeatureType.ACTION, (32,))},
        use_act_actor=use_act_actor, chunk_size=10 if use_act_actor else 1,
        action_groups={"arm": 14, "torso": 6, "hand": 12},
        dataset_stats={"observation.state": {"min": [-1.0] * 64, "max": [1.0] * 64},
                       "action": {"min": [-1.0] * 32, "max": [1.0] * 32}})
    torch.manual_seed(0)
    policy = SACPolicy(config)
    name = "act" if use_act_actor else "mlp"
    checkpoint = load_checkpoint(policy.save_pretrained(directory / name))
    onnx_path = directory / f"{name}.onnx"
    export_onnx(checkpoint, onnx_path, log=lambda line: None)
    return onnx_path, policy.actor.num_parameters()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("mlp", "act"):
            onnx_path, params = build(Path(tmp), kind == "act")
            checkpoint = str(onnx_path.parent / kind / "model.pt")
            workers = {b: Worker(b, str(onnx_path), checkpoint, args.threads) for b in ("torch", "ort-fp32")}
            samples = {b: [] for b in workers}
            try:
                for _ in range(args.rounds):
                    for backend, worker in workers.items():
                        samples[backend] += worker.measure(args.runs)
            finally:
                for worker in workers.values():
                    worker.close()
            rows.append((kind, params, *(float(np.percentile(samples[b], 50)) for b in workers),
                         *(float(np.percentile(samples[b], 99)) for b in workers)))
    print(f"\nbatch 1, {args.threads} threads, {args.rounds} x {args.runs} calls; upper body, state 64, 32 actions")
    print(f"{'actor':6} {'params':>11} {'seed quote':>11}  {'torch p50/p99 ms':>17}  {'ORT p50/p99 ms':>15}  "
          f"{'ratio':>6}  {'seed ms':>7}")
    for kind, params, torch_p50, ort_p50, torch_p99, ort_p99 in rows:
        seed_params, seed_ms = SEED_FIGURES[kind]
        print(f"{kind:6} {params:>11,} {seed_params:>11,.0f}  {torch_p50:>8.3f}/{torch_p99:<8.3f} "
              f"{ort_p50:>7.3f}/{ort_p99:<7.3f} {torch_p50 / ort_p50:>6.1f}x  {seed_ms:>7.2f}")


if __name__ == "__main__":
    main()
