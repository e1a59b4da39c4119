"""LeRobot checkpoint fixtures, made with LeRobot's own code by ``make_fixtures.py`` (see there)."""

import json
import shutil
from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).parent / "fixtures"
NAMES = sorted(p.name for p in FIXTURES.iterdir() if (p / "config.json").is_file())


def fixture_dir(tmp_path: Path, name: str) -> Path:
    """A complete copy of fixture ``name`` under ``tmp_path`` (its ResNet-18 regenerated from its seed)."""
    import torch
    from safetensors.torch import load_file, save_file

    from .backbone import resnet18_weights

    target = tmp_path / name
    shutil.copytree(FIXTURES / name, target)
    (target / "reference.npz").unlink()
    info = fixture_info(name)
    if "backbone_seed" in info:
        weights = load_file(target / "model.safetensors")
        weights.update({info["backbone_prefix"] + key: torch.from_numpy(value)
                        for key, value in resnet18_weights(info["backbone_seed"]).items()})
        save_file(weights, target / "model.safetensors")
    return target


def fixture_info(name: str) -> dict:
    return json.loads((FIXTURES / name / "fixture.json").read_text())


def reference(name: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(graph inputs, LeRobot's outputs) of fixture ``name``: ``observation`` is [state, environment state]."""
    arrays = dict(np.load(FIXTURES / name / "reference.npz"))
    parts = [arrays["state"]] + ([arrays["environment_state"]] if "environment_state" in arrays else [])
    inputs = {"observation": np.concatenate(parts, axis=1).astype(np.float32)}
    inputs.update({key: value for key, value in arrays.items() if key.startswith("image.")})
    outputs = {key: arrays[key] for key in ("action", "mean", "log_std") if key in arrays}
    if outputs["action"].ndim == 2:  # SAC: one action, the graph's chunk of 1
        outputs = {key: value[:, None] for key, value in outputs.items()}
    return inputs, outputs
