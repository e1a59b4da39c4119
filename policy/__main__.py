"""`python -m actsac.policy`: print the actor classes and parameter counts of the presets on the SO-100."""

import torch

from . import ActionGroup, PolicyConfig, build_actor, observation_shape

SO100_JOINTS = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]


def main() -> None:
    groups = [ActionGroup("arm", SO100_JOINTS, ["range_m100_100"] * 5 + ["range_0_100"])]
    print(f"{'preset':8} {'actor':22} {'params':>12}  output (B, H, A)")
    for preset in ("small", "default"):
        for actor_type, history in (("act", None), ("act", 5), ("mlp", None)):
            config = PolicyConfig.from_preset(preset, state_dim=12, action_groups=groups, actor=actor_type,
                                              history=history)
            actor = build_actor(config).eval()
            with torch.no_grad():
                mean, _ = actor(torch.zeros(1, *observation_shape(config)))
            print(f"{preset:8} {type(actor).__name__:22} {actor.num_parameters():>12,}  {tuple(mean.shape)}")


if __name__ == "__main__":
    main()
