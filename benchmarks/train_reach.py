"""Success rate of `actsac-train` on the reach tasks after the default budget: BC only, SAC + BC, MLP actor.

    python benchmarks/train_reach.py [--task so100-visual-reach | upper-body-reach] [--seeds 0 1 2] [--steps N]
                                     [--json results.json]

so100-reach: ACT BC only, ACT SAC + BC, MLP SAC + BC. upper-body-reach (32 joints, arm / torso / hand heads):
ACT BC only, ACT SAC + BC. so100-visual-reach (the goal only in the camera image):
ACT with the small-CNN camera encoder, BC only and SAC + BC, against the same ACT blind to the camera
(``--no-images``: state only, it cannot know the goal).

Each (variant, seed) trains in its own process with the default TrainConfig (the settings
`actsac-train --task so100-reach` uses), so one run's threads and memory do not slow the next. Reported per
variant, over seeds: the evaluation of the saved actor (the best evaluation, one deterministic episode per goal
from fixed start poses), the evaluation of the last actor, the training wall time (inside the process, without
the ~2 s of importing torch), and the parameter counts of actor and critic. The saved actor is also evaluated
on 64 episodes (each goal 8 times) from start poses it was never evaluated from during training.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

VARIANTS = {  # task -> {name -> TrainConfig overrides}
    "so100-reach": {
        "ACT, BC only": {"bc_only": True},
        "ACT, SAC + BC": {},
        "MLP, SAC + BC": {"actor": "mlp"},
    },
    "upper-body-reach": {
        "ACT, BC only": {"bc_only": True},
        "ACT, SAC + BC": {},
    },
    "so100-visual-reach": {
        "ACT + camera, BC only": {"bc_only": True},
        "ACT + camera, SAC + BC": {},
        "ACT state only (no camera), BC only": {"bc_only": True, "images": False},
    },
}

CHILD = """
import json, sys
from actsac.policy import tasks
from actsac.policy.train import TrainConfig, evaluate, train
config = TrainConfig(**json.loads(sys.argv[1]))
result = train(config, progress=False)
last = result.metrics[-1]
held_out = config.make_task(64, tasks.make_goals(config.n_goals, seed=config.seed, robot=config.robot), seed=0)
wide = evaluate(result.actor, held_out, seed=1000 + config.seed)
print(json.dumps({"wall_s": result.wall_s, "saved": result.best["metrics"], "saved_step": result.best["step"],
                  "held_out_success": wide["eval/success_rate"], "held_out_return": wide["eval/return"],
                  "last_success": last["eval/success_rate"], "last_return": last["eval/return"],
                  "actor_params": result.actor.num_parameters(), "critic_params": result.critic_params}))
"""


def run(overrides: dict, seed: int, steps: int | None, directory: Path) -> dict:
    config = {**overrides, "seed": seed, "out": str(directory / f"model-{seed}.pt")}
    if steps:
        config["steps"] = steps
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(config)], capture_output=True, text=True,
                          timeout=1200)
    if proc.returncode != 0:
        raise SystemExit(f"training failed ({config}):\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="so100-reach", choices=list(VARIANTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=None, help="override the default number of updates")
    parser.add_argument("--variants", nargs="+", help="which of the task's variants (default: all)")
    parser.add_argument("--json", type=Path, help="write every run's numbers here")
    args = parser.parse_args()
    variants = VARIANTS[args.task]
    unknown = sorted(set(args.variants or []) - set(variants))
    if unknown:
        parser.error(f"--variants: '{unknown[0]}' is not one of {', '.join(variants)}")
    results: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.variants or variants:
            results[name] = []
            for seed in args.seeds:
                r = run({"task": args.task, **variants[name]}, seed, args.steps, Path(tmp))
                results[name].append(r)
                print(f"  {name}, seed {seed}: saved success {r['saved']['eval/success_rate']:.3f} "
                      f"(update {r['saved_step']}), 64 new starts {r['held_out_success']:.3f}, "
                      f"last {r['last_success']:.3f}, {r['wall_s']:.1f} s", flush=True)
    print()
    print("| variant | success (saved actor, 8 eps) | success (saved, 64 new starts) | return (saved, 64) | "
          "success (last actor, 8 eps) | train time s | actor params | critic params |")
    print("|---|---|---|---|---|---|---|---|")
    for name, runs in results.items():
        saved = [r["saved"]["eval/success_rate"] for r in runs]
        held = [r["held_out_success"] for r in runs]
        ret = [r["held_out_return"] for r in runs]
        last = [r["last_success"] for r in runs]
        wall = [r["wall_s"] for r in runs]
        critic = runs[0]["critic_params"]
        print(f"| {name} | {np.mean(saved):.2f} | {np.mean(held):.3f} ({', '.join(f'{s:.3f}' for s in held)}) | "
              f"{np.mean(ret):.1f} | "
              f"{np.mean(last):.2f} | {np.mean(wall):.1f} (max {max(wall):.1f}) | {runs[0]['actor_params']:,} | "
              f"{'-' if critic is None else f'{critic:,}'} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
