"""Deterministic ResNet-18 weights for the LeRobot fixtures, from numpy alone (PCG64 streams are the same on
every platform), so the 45 MB backbone is regenerated, not stored: the fixture maker (in the side environment,
with LeRobot) and the tests (without it) build the same tensors. Batch-norm statistics are randomised so the
frozen-batch-norm mapping is tested, not an identity."""

from __future__ import annotations

import numpy as np

WIDTHS = (64, 64, 128, 256, 512)


def resnet18_shapes() -> dict[str, tuple[int, ...]]:
    """torchvision's ResNet-18 parameter and buffer names up to layer4 (no fc), with their shapes."""
    shapes: dict[str, tuple[int, ...]] = {}

    def bn(prefix: str, channels: int) -> None:
        for name in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{prefix}.{name}"] = (channels,)

    shapes["conv1.weight"] = (64, 3, 7, 7)
    bn("bn1", 64)
    for index in range(1, 5):
        c_in, c_out = WIDTHS[index - 1], WIDTHS[index]
        for block in range(2):
            prefix = f"layer{index}.{block}"
            first_in = c_in if block == 0 else c_out
            shapes[f"{prefix}.conv1.weight"] = (c_out, first_in, 3, 3)
            bn(f"{prefix}.bn1", c_out)
            shapes[f"{prefix}.conv2.weight"] = (c_out, c_out, 3, 3)
            bn(f"{prefix}.bn2", c_out)
            if block == 0 and index > 1:
                shapes[f"{prefix}.downsample.0.weight"] = (c_out, c_in, 1, 1)
                bn(f"{prefix}.downsample.1", c_out)
    return shapes


def resnet18_weights(seed: int) -> dict[str, np.ndarray]:
    """float32 weights: He-scaled convolutions, batch norm with random affine terms and running statistics."""
    rng = np.random.default_rng(seed)
    weights = {}
    for name, shape in resnet18_shapes().items():
        if name.endswith("running_var"):
            value = rng.uniform(0.5, 2.0, shape)
        elif name.endswith("running_mean") or name.endswith("bias"):
            value = rng.normal(0.0, 0.1, shape)
        elif len(shape) == 1:  # batch-norm weight
            value = rng.uniform(0.5, 1.0, shape)
        else:
            fan_in = int(np.prod(shape[1:]))
            value = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
        weights[name] = value.astype(np.float32)
    return weights
