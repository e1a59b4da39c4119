"""Parity checks between two implementations of one actor (PyTorch vs ONNX Runtime, ONNX Runtime vs TensorRT).

numpy only: the inputs to test on (observations, and uint8 images for a camera model), the tolerances, and the
comparison. Inputs travel as ``{graph input name: array with the batch dim}``: ``observation`` and one
``image.<camera>`` per camera (see ``ModelMetadata.input_names``); a bare observation array is accepted where
a state-only model is meant.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .metadata import INPUT_NAME, OUTPUTS, ModelMetadata  # noqa: F401  (OUTPUTS re-exported)

Inputs = dict[str, np.ndarray]
# Max abs error allowed on action_mean / action_log_std (normalised space). The `action` output is in robot
# units: its tolerance is this times the largest action half-range (the scale of the [-1, 1] -> units map).
TOLERANCE = {"fp32": 1e-5, "fp16": 2e-2, "int8": 1e-1}
# TensorRT vs ONNX Runtime: other kernels and accumulation orders (fp32 engines are built without TF32).
TRT_TOLERANCE = {"fp32": 1e-4, "fp16": 4e-2}


class VerificationError(Exception):
    """The exported model does not compute what the original computes; one line naming the output."""


@dataclass
class OutputError:
    name: str
    max_abs_error: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return bool(self.max_abs_error <= self.tolerance)  # NaN fails

    def line(self) -> str:
        return (f"  {self.name:<15} max abs error {self.max_abs_error:.2e}  (tolerance {self.tolerance:.1e})  "
                f"{'ok' if self.ok else 'FAIL'}")


def observation_range(metadata: ModelMetadata) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature low / high of the observations the model was normalised for (mean +- 3 std for mean_std,
    [-1, 1] without stats)."""
    stats = metadata.obs_stats
    if stats is None:
        return -np.ones(metadata.state_dim), np.ones(metadata.state_dim)
    a, b = np.asarray(stats["a"], np.float64), np.asarray(stats["b"], np.float64)
    if stats["mode"] == "min_max":
        return a, b
    return a - 3.0 * b, a + 3.0 * b


def action_half_range(metadata: ModelMetadata) -> float:
    """Largest factor by which the [-1, 1] -> robot units map stretches an error."""
    return float(np.max(metadata.action_scale))


def tolerances(metadata: ModelMetadata, base: float) -> dict[str, float]:
    return {"action_mean": base, "action_log_std": base, "action": base * action_half_range(metadata)}


def verification_observations(metadata: ModelMetadata, n_random: int = 16, n_corners: int = 4,
                              seed: int = 0, multiple_of: int = 1) -> tuple[np.ndarray, str]:
    """Observations (N, *observation_shape), float32: random within the normalisation range, random min/max
    corners, the all-min and all-max corners, and zeros. N is padded with random ones to a multiple of
    ``multiple_of`` (a fixed export batch). Returns them with a one-line description."""
    rng = np.random.default_rng(seed)
    low, high = observation_range(metadata)
    shape = metadata.observation_shape
    random = low + (high - low) * rng.random((n_random, *shape))
    corners = np.where(rng.random((n_corners, *shape)) < 0.5, low, high)
    edges = np.stack([np.broadcast_to(low, shape), np.broadcast_to(high, shape), np.zeros(shape)])
    obs = np.concatenate([random, corners, edges])
    pad = -len(obs) % multiple_of
    if pad:
        obs = np.concatenate([obs, low + (high - low) * rng.random((pad, *shape))])
    described = (f"{len(obs)} observations: {n_random + pad} random in the normalisation range, "
                 f"{n_corners} random min/max corners, all-min, all-max, zeros")
    return obs.astype(np.float32), described


def verification_images(metadata: ModelMetadata, black: np.ndarray, white: np.ndarray,
                        seed: int = 0) -> Inputs:
    """``{image.<camera>: uint8 (n, H, W, 3)}``: uniformly random pixels, all-0 on the rows where ``black`` (a
    boolean mask of length n) is true and all-255 where ``white`` is. Each camera draws its own pixels."""
    rng = np.random.default_rng([seed, 1])  # not the observations' stream: those stay as they were
    images = {}
    for camera in metadata.cameras:
        frames = rng.integers(0, 256, (len(black), camera["height"], camera["width"], 3), dtype=np.uint8)
        frames[black], frames[white] = 0, 255
        images[camera["input"]] = frames
    return images


def verification_inputs(metadata: ModelMetadata, n_random: int = 16, n_corners: int = 4, seed: int = 0,
                        multiple_of: int = 1) -> tuple[Inputs, str]:
    """Every graph input for the verification rows: ``observation`` from ``verification_observations`` and,
    for a camera model, one ``image.<camera>`` per camera (``verification_images``), paired row by row: random
    images on most rows, all-0 images on every eighth row from the fourth and on the all-min observation, all-255
    images on every eighth from the eighth and on the all-max observation. Returns ``({input name: array},
    one-line description)``; for a state-only model the description is ``verification_observations``' own."""
    observations, described = verification_observations(metadata, n_random, n_corners, seed, multiple_of)
    inputs = {INPUT_NAME: observations}
    if metadata.cameras:
        rows = np.arange(len(observations))
        all_min, all_max = n_random + n_corners, n_random + n_corners + 1  # verification_observations' order
        black, white = (rows % 8 == 3) | (rows == all_min), (rows % 8 == 7) | (rows == all_max)
        inputs.update(verification_images(metadata, black, white, seed))
        described += (f"; {', '.join(metadata.camera_names)} images (uint8): {int((~black & ~white).sum())} "
                      f"random, {int(black.sum())} all-0, {int(white.sum())} all-255")
    return inputs, described


def as_inputs(inputs: Inputs | np.ndarray) -> Inputs:
    """A dict of named inputs as it is; a bare array as the observation of a state-only model."""
    return dict(inputs) if isinstance(inputs, dict) else {INPUT_NAME: inputs}


def batch_size(inputs: Inputs) -> int:
    sizes = {len(value) for value in inputs.values()}
    if len(sizes) != 1:
        raise ValueError(f"inputs of different batch sizes: {({k: len(v) for k, v in inputs.items()})}")
    return sizes.pop()


def first_rows(inputs: Inputs | np.ndarray, n: int) -> Inputs:
    """Rows [0, n) of every input."""
    return {name: value[:n] for name, value in as_inputs(inputs).items()}


def compare(reference: dict[str, np.ndarray], candidate: dict[str, np.ndarray],
            tolerance: dict[str, float]) -> list[OutputError]:
    """Max abs error per output of ``reference`` (NaN anywhere counts as an infinite error)."""
    errors = []
    for name in reference:
        if name not in candidate:
            raise VerificationError(f"{name}: missing from the outputs ({', '.join(candidate)})")
        ref, got = np.asarray(reference[name], np.float64), np.asarray(candidate[name], np.float64)
        if ref.shape != got.shape:
            raise VerificationError(f"{name}: shape {got.shape}, expected {ref.shape}")
        diff = np.abs(ref - got)
        worst = float(np.inf) if np.isnan(diff).any() else float(diff.max(initial=0.0))
        errors.append(OutputError(name, worst, tolerance[name]))
    return errors


def session_runner(session) -> Callable[[Inputs | np.ndarray], dict[str, np.ndarray]]:
    """``inputs -> {output: array}`` for an ONNX Runtime session of an exported actor (every output of the
    graph): ``inputs`` is ``{input name: array}`` (every graph input) or, for a state-only model, the
    observation array."""
    names = [output.name for output in session.get_outputs()]
    return lambda inputs: dict(zip(names, session.run(names, as_inputs(inputs))))


def run_batched(run, inputs: Inputs | np.ndarray, batch: int) -> dict[str, np.ndarray]:
    """``run({input: batch slice}) -> {output: array}`` over ``inputs`` (every input sliced at the same rows) in
    slices of ``batch``, concatenated. A bare observation array is taken as ``{"observation": array}``."""
    inputs = as_inputs(inputs)
    total = batch_size(inputs)
    parts = [run({name: value[i:i + batch] for name, value in inputs.items()}) for i in range(0, total, batch)]
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def check(errors: list[OutputError], what: str) -> None:
    failed = [e for e in errors if not e.ok]
    if failed:
        worst = failed[0]
        raise VerificationError(f"{what}: {worst.name} max abs error {worst.max_abs_error:.2e} exceeds the "
                                f"tolerance {worst.tolerance:.1e}")
