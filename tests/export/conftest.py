"""Checkpoints and exports shared by the export tests (exporting takes seconds: each is done once per module)."""

import numpy as np
import pytest
import torch

from actsac.policy import NormStats, PolicyConfig, build_actor, load_checkpoint, save_checkpoint
from tests.conftest import so100_groups, upper_body_groups

TASK = {"name": "so100-reach", "goals": [[0.0] * 6, [10.0] * 6], "goal_hold_s": 4.0, "success_tolerance": 2.0}


def make_config(kind: str) -> PolicyConfig:
    """``act``: ACTSACActor on the SO-100 (min/max stats); ``history``: SequenceACTSACActor (T = 3) on an upper
    body (arm 14 / torso 6 / hand 12, mean/std observation stats); ``mlp``: MLPActor."""
    if kind == "history":
        groups = upper_body_groups()
        return PolicyConfig.from_preset(
            "small", state_dim=20, action_groups=groups, history=3, chunk_size=5,
            obs_stats=NormStats.mean_std(np.linspace(-5, 5, 20), np.linspace(0.5, 3, 20)),
            action_stats=NormStats.min_max([-100.0] * 14 + [-90.0] * 6 + [0.0] * 12,
                                           [100.0] * 14 + [90.0] * 6 + [100.0] * 12),
            observation_names=[f"arm_{i}.pos" for i in range(14)] + [f"torso_{i}.pos" for i in range(6)])
    low, high = [-100.0] * 5 + [0.0], [100.0] * 5 + [100.0]
    joints = so100_groups()[0].joints
    return PolicyConfig.from_preset(
        "small", state_dim=12, action_groups=so100_groups(), chunk_size=10, actor="mlp" if kind == "mlp" else "act",
        obs_stats=NormStats.min_max(low + low, high + high), action_stats=NormStats.min_max(low, high),
        observation_names=[f"{j}.pos" for j in joints] + [f"{j}.goal" for j in joints])


def make_checkpoint(directory, kind: str, seed: int = 0):
    torch.manual_seed(seed)
    actor = build_actor(make_config(kind)).eval()
    return save_checkpoint(directory / f"{kind}.pt", actor, extra={"task": TASK})


def export(directory, kind: str, **kwargs):
    from actsac.export.onnx_export import export_onnx

    path = make_checkpoint(directory, kind)
    checkpoint = load_checkpoint(path)
    lines: list[str] = []
    result = export_onnx(checkpoint, directory / f"{kind}.onnx", log=lines.append, **kwargs)
    return checkpoint, result, lines


def export_cache(directory, export_kind):
    """kind -> export_kind(directory, kind), computed on first use, then reused."""
    cache = {}

    def get(kind: str):
        if kind not in cache:
            cache[kind] = export_kind(directory, kind)
        return cache[kind]

    return get


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """kind -> (checkpoint, ExportResult, log lines), dynamic batch, fp32; exported on first use, then reused."""
    return export_cache(tmp_path_factory.mktemp("exported"), export)
