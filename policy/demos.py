"""Demonstrations from a file: the documented .npz layout, checked array by array.

Layout (``numpy.savez``; N transitions, E episodes, S = state_dim, A = action_dim)::

    observations   (N, S) float  the observation each action was taken from, robot units
    actions        (N, A) float  the commanded action, robot units (e.g. goal positions in user units)
    rewards        (N,)   float
    terminals      (N,)   bool   True on a transition that ends its episode in a terminal state
    episode_ends   (E,)   int    exclusive end index of each episode, increasing, the last one equal to N
    observation_names (S,) str   optional; when present it must equal the task's observation names
    images.<camera> (N, H, W, 3) uint8  RGB frame of each observation, one array per camera of the policy

Episodes not ending in a terminal are treated as cut by a time limit. A terminal anywhere but on the last
transition of its episode is refused. With min / max action statistics (the joint ranges: [-100, 100] for
range_m100_100, [0, 100] for range_0_100...), an action beyond its joint's range by more than a tenth of the
range (e.g. 1000: another unit) is refused; closer ones are clipped (an expert at a joint limit). LeRobot
datasets (parquet) would need pyarrow, which actsac does not depend on: convert them to this layout.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import torch

from actsac.files import atomic_write

from .actors import Normalizer
from .config import NormStats
from .replay import Episode

REQUIRED = ("observations", "actions", "rewards", "terminals", "episode_ends")
FLOAT32_MAX = float(np.finfo(np.float32).max)  # larger values become inf when converted for training
RANGE_SLACK = 0.1  # of a joint's range: actions past it by more are refused, closer ones clipped


class DemoError(ValueError):
    """A demonstration file that cannot be used; one line naming the file and the array."""


def _normalise(actions: np.ndarray, stats: NormStats | None) -> np.ndarray:
    """Robot units -> the [-1, 1] action space (clipped: an expert at a joint limit stays representable)."""
    with torch.no_grad():
        out = Normalizer(stats, actions.shape[1])(torch.from_numpy(actions.astype(np.float32))).numpy()
    return np.clip(out, -1.0, 1.0)


def load_npz_demos(path: str | os.PathLike, state_dim: int, action_dim: int, action_stats: NormStats | None,
                   observation_names: list[str] | None = None, chunk_size: int | None = None,
                   cameras=(), action_names: list[str] | None = None) -> list[Episode]:
    """Episodes with actions in the normalised space; raises DemoError with a one-line message (naming the
    joint from ``action_names`` when given). With ``chunk_size`` (H), also refuses files from which
    ``SequenceReplay(H)`` could sample no chunk."""
    path = Path(path)
    if path.suffix == ".parquet" or path.is_dir():
        raise DemoError(f"{path}: LeRobot parquet datasets need pyarrow, which is not installed; "
                        f"convert them to the .npz layout (see actsac.policy.demos)")
    if not path.is_file():
        raise DemoError(f"{path}: no such file")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.ndarray):
            with loaded:
                arrays = {k: loaded[k] for k in loaded.files}
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as exc:
        raise DemoError(f"{path}: not a readable .npz file ({str(exc).splitlines()[0] if str(exc) else exc})") from None
    if isinstance(loaded, np.ndarray):
        raise DemoError(f"{path}: a single .npy array, not an .npz archive of the documented layout")
    for key in REQUIRED:
        if key not in arrays:
            raise DemoError(f"{path}: missing array '{key}' (needs {', '.join(REQUIRED)})")
    obs, actions = arrays["observations"], arrays["actions"]
    rewards, terminals, ends = arrays["rewards"], arrays["terminals"], arrays["episode_ends"]

    def need(ok: bool, key: str, why: str) -> None:
        if not ok:
            raise DemoError(f"{path}: array '{key}' {why}")

    def is_kind(key: str, *kinds: type) -> bool:
        return any(np.issubdtype(arrays[key].dtype, kind) for kind in kinds)

    for key in ("observations", "actions", "rewards"):
        need(is_kind(key, np.integer, np.floating), key, f"has dtype {arrays[key].dtype}, expected real numbers")
    need(is_kind("terminals", np.bool_, np.integer)
         or (is_kind("terminals", np.floating) and bool(np.isin(terminals, (0.0, 1.0)).all())), "terminals",
         f"has dtype {terminals.dtype}, expected bool, integer, or floats that are 0.0 / 1.0")
    need(obs.ndim == 2 and obs.shape[1] == state_dim, "observations", f"has shape {obs.shape}, expected (N, {state_dim})")
    n = len(obs)
    need(actions.shape == (n, action_dim), "actions", f"has shape {actions.shape}, expected ({n}, {action_dim})")
    need(rewards.shape == (n,), "rewards", f"has shape {rewards.shape}, expected ({n},)")
    need(terminals.shape == (n,), "terminals", f"has shape {terminals.shape}, expected ({n},)")
    need(ends.ndim == 1 and len(ends) >= 1 and np.issubdtype(ends.dtype, np.integer), "episode_ends",
         f"must be a non-empty 1-D integer array (got shape {ends.shape}, dtype {ends.dtype})")
    need(bool(np.all(np.diff(ends) > 0)) and ends[0] > 0 and ends[-1] == n, "episode_ends",
         f"must increase strictly from > 0 to N = {n} (got {ends[:3].tolist()} ... {ends[-1]})")
    for key in ("observations", "actions", "rewards"):
        need(bool(np.all(np.isfinite(arrays[key]))), key, "has NaN or infinite values")
        need(bool(np.all(np.abs(arrays[key]) <= FLOAT32_MAX)), key,
             f"has values beyond the float32 range (|x| > {FLOAT32_MAX:.3g})")
    if action_stats is not None and action_stats.mode == "min_max":
        low, high = np.array(action_stats.a), np.array(action_stats.b)
        slack = RANGE_SLACK * (high - low)
        outside = (actions < low - slack) | (actions > high + slack)
        if outside.any():
            i, j = np.argwhere(outside)[0]
            joint, n = f"'{action_names[j]}'" if action_names else str(j), int(outside.sum())
            need(False, "actions", f"has {actions[i, j]:g} at index {i} for joint {joint}, outside its range "
                                   f"[{low[j]:g}, {high[j]:g}] ({n} such value{'s' * (n > 1)}): are the actions "
                                   f"in the joints' units?")
    if "observation_names" in arrays and observation_names is not None:
        names = [str(s) for s in np.atleast_1d(arrays["observation_names"])]
        need(names == list(observation_names), "observation_names", f"is {names}, expected {observation_names}")
    for camera in cameras:
        key = f"images.{camera.name}"
        need(key in arrays, key, f"is missing: the policy sees camera '{camera.name}'")
        expected = (n, camera.height, camera.width, 3)
        need(arrays[key].dtype == np.uint8 and arrays[key].shape == expected, key,
             f"is {arrays[key].dtype} {arrays[key].shape}, expected uint8 {expected} (RGB)")
    terminals = terminals.astype(bool)
    starts = np.concatenate([[0], ends[:-1]])
    inner = terminals.copy()
    inner[ends - 1] = False
    need(not inner.any(), "terminals", f"is True inside an episode (index {int(np.argmax(inner))})")
    if chunk_size is not None:  # a chunk from a time-limited episode needs the observation H steps after its start
        longest = int(np.max(ends - starts))
        need(bool(terminals[ends - 1].any()) or longest > chunk_size, "episode_ends",
             f"has no episode long enough for a chunk of {chunk_size} steps (longest: {longest}; one that ends "
             f"without a terminal needs at least {chunk_size + 1})")
    normalised = _normalise(actions, action_stats)
    images = {camera.name: arrays[f"images.{camera.name}"] for camera in cameras}
    return [Episode(obs[s:e].astype(np.float32), normalised[s:e], rewards[s:e].astype(np.float32), bool(terminals[e - 1]),
                    images={name: frames[s:e] for name, frames in images.items()} or None)
            for s, e in zip(starts, ends)]


def save_npz_demos(path: str | os.PathLike, observations, actions_robot_units, rewards, terminals, episode_ends,
                   observation_names: list[str] | None = None, images: dict[str, np.ndarray] | None = None) -> Path:
    """Write the layout above atomically (actions in robot units; ``images``: {camera: (N, H, W, 3) uint8})."""
    arrays = {"observations": np.asarray(observations, np.float32), "actions": np.asarray(actions_robot_units, np.float32),
              "rewards": np.asarray(rewards, np.float32), "terminals": np.asarray(terminals, bool),
              "episode_ends": np.asarray(episode_ends, np.int64)}
    if observation_names is not None:
        arrays["observation_names"] = np.asarray(observation_names)
    for name, frames in (images or {}).items():
        arrays[f"images.{name}"] = np.asarray(frames, np.uint8)

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    return atomic_write(path, write)


REST_STEP_FRACTION = 0.002  # a joint moving less than this share of its range from frame to frame is at rest
REST_FRAMES = 3  # ... for this many frames in a row, arm and command alike
OFFSET_WARN_FRACTION = 0.02  # a mean command - state gap at rest above this share of the range is warned about


def rest_offsets(observations: np.ndarray, actions: np.ndarray, episode_ends: np.ndarray,
                 observation_names: list[str], joints: list[str], span: np.ndarray) -> tuple[int, dict[str, float]]:
    """(frames at rest, {joint: mean action - state on them}) for each action joint whose ``<joint>.pos`` is in
    the observation. At rest: every such joint's state and command move less than ``REST_STEP_FRACTION`` of its
    range per frame over ``REST_FRAMES`` frames. There a follower tracking its leader sits where it is told,
    so a steady gap is the two arms' calibrations disagreeing (LeRobot #3758), or a gripper holding an object."""
    pairs = [(a, observation_names.index(f"{j}.pos")) for a, j in enumerate(joints) if f"{j}.pos" in observation_names]
    if not pairs:
        return 0, {}
    cols_a, cols_s = [a for a, _ in pairs], [s for _, s in pairs]
    state, command = observations[:, cols_s], actions[:, cols_a]
    tol = REST_STEP_FRACTION * np.asarray(span, np.float64)[cols_a]
    still = np.zeros(len(state), bool)
    start = 0
    for end in episode_ends:
        ds = np.abs(np.diff(state[start:end], axis=0)) <= tol
        da = np.abs(np.diff(command[start:end], axis=0)) <= tol
        calm = np.concatenate([[False], (ds & da).all(axis=1)])  # frame t moved little from t - 1
        run = np.convolve(calm.astype(int), np.ones(REST_FRAMES - 1, int), "full")[:end - start]
        still[start:end] = run >= REST_FRAMES - 1
        start = end
    if not still.any():
        return 0, {}
    gap = (command[still] - state[still]).mean(axis=0)
    return int(still.sum()), {joints[a]: float(g) for a, g in zip(cols_a, gap)}


def report_rest_offsets(path, observation_names: list[str] | None, joints: list[str], span: np.ndarray,
                        log) -> dict[str, float]:
    """``actsac-train --demos``: the command - state gap at rest, one line when every joint is within
    ``OFFSET_WARN_FRACTION`` of its range, else a table of every joint and a warning naming each one above.
    Never refuses."""
    if not observation_names:
        return {}
    with np.load(path, allow_pickle=False) as arrays:
        n, offsets = rest_offsets(arrays["observations"], arrays["actions"], arrays["episode_ends"],
                                  list(observation_names), list(joints), span)
    if not n:
        log(f"demonstrations {path}: no frames at rest: the command vs state offsets were not checked")
        return {}
    ranges = dict(zip(joints, np.asarray(span, np.float64)))
    pct = {j: 100 * abs(g) / ranges[j] for j, g in offsets.items()}
    limit = 100 * OFFSET_WARN_FRACTION
    over = [j for j in offsets if pct[j] > limit]
    if not over:
        worst = max(pct, key=pct.get)
        log(f"demonstrations {path}: at rest ({n} frames) every command sits within {limit:g} % of its joint's "
            f"range of the measured state (largest: {worst} {offsets[worst]:+.2f}, {pct[worst]:.1f} %)")
        return offsets
    width = max(len(j) for j in offsets)
    log(f"demonstrations {path}: mean command - state at rest ({n} frames):")
    for joint, gap in offsets.items():
        log(f"  {joint:<{width}} {gap:+9.2f}  {pct[joint]:5.1f} % of its range" + ("  <-" if joint in over else ""))
    for joint in over:
        hint = ("a gripper holding an object does this too" if "gripper" in joint
                else "were the leader and the follower calibrated differently? (LeRobot #3758)")
        log(f"warning: demonstrations {path}: {joint}'s command sits {offsets[joint]:+.2f} from where the arm "
            f"measured it at rest ({pct[joint]:.1f} % of its range, warned above {limit:g} %): {hint}")
    return offsets
