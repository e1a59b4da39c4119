"""Episode replay that samples action chunks: (s_t, a_{t:t+H}, r_{t:t+H}, s_{t+H}, mask) for the Q-chunking
backup, with observation windows of T steps for the history actor.

Episodes are stored whole, so a sampled chunk never mixes two episodes:
- a chunk that reaches a terminal keeps the rewards up to it, zeros after it, and mask 0 (no bootstrap);
  the missing actions past the terminal repeat the last one (they never act, but the critic needs H of them);
- an episode cut by a time limit bootstraps (mask 1), so only starts with a known s_{t+H} are sampled.
Observation windows at the start of an episode repeat its first observation (oldest first). Camera images
(uint8, one row per observation row) come for the current step only: at t and at t + H.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Episode:
    """One episode. ``observations`` has L + 1 rows when the observation after the last action is known
    (online data), or L rows (a dataset that stores only the observations actions were taken from).
    ``actions`` (L, A) are in the normalised [-1, 1] space; ``terminal``: the last transition is terminal.
    ``images``: {camera: uint8 (rows of observations, H, W, 3)}, or None for a state-only task."""

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminal: bool = False
    images: dict[str, np.ndarray] | None = None

    def __post_init__(self) -> None:
        n = len(self.actions)
        if len(self.rewards) != n or len(self.observations) not in (n, n + 1):
            raise ValueError(f"episode with {len(self.observations)} observations, {n} actions and "
                             f"{len(self.rewards)} rewards")
        for name, frames in (self.images or {}).items():
            if len(frames) != len(self.observations):
                raise ValueError(f"episode with {len(self.observations)} observations and {len(frames)} "
                                 f"images of camera '{name}'")

    def __len__(self) -> int:
        return len(self.actions)


@dataclass
class Batch:
    """A training batch of chunks, as float32 tensors (``is_demo`` and ``mask``: which rows come from the
    demonstrations, and which bootstrap)."""

    obs: torch.Tensor  # (B, S) or (B, T, S), robot units
    actions: torch.Tensor  # (B, H, A), [-1, 1]
    rewards: torch.Tensor  # (B, H)
    next_obs: torch.Tensor  # observation H steps later, same shape as obs
    mask: torch.Tensor  # (B,) 1.0 = bootstrap from next_obs
    is_demo: torch.Tensor  # (B,) bool
    images: dict[str, torch.Tensor] | None = None  # {camera: uint8 (B, H, W, 3)} at obs
    next_images: dict[str, torch.Tensor] | None = None  # at next_obs


class SequenceReplay:
    """Whole episodes, oldest dropped beyond ``capacity`` transitions; ``sample`` draws chunk starts uniformly."""

    def __init__(self, chunk_size: int, history: int | None = None, capacity: int = 1_000_000):
        self.chunk_size, self.history, self.capacity = chunk_size, history if history and history > 1 else 1, capacity
        self.episodes: list[Episode] = []
        self._flat: dict[str, np.ndarray] | None = None

    def __len__(self) -> int:
        return sum(len(e) for e in self.episodes)

    def add_episode(self, episode: Episode) -> None:
        self.episodes.append(episode)
        while len(self) > self.capacity and len(self.episodes) > 1:
            self.episodes.pop(0)
        self._flat = None

    def _flatten(self) -> dict[str, np.ndarray]:
        """One row per transition plus one final-observation row per episode; the valid chunk starts."""
        obs, actions, rewards, row0, length, terminal, starts = [], [], [], [], [], [], []
        cameras = sorted(self.episodes[0].images or {})
        images: dict[str, list[np.ndarray]] = {name: [] for name in cameras}
        pad_final = (lambda x, has_final: x if has_final else np.concatenate([x, x[-1:]]))  # noqa: E731
        row = 0
        for ep in self.episodes:
            n = len(ep)
            has_final = len(ep.observations) == n + 1
            obs.append(pad_final(ep.observations, has_final))
            for name in cameras:
                images[name].append(pad_final(ep.images[name], has_final))
            actions.append(np.concatenate([ep.actions, ep.actions[-1:]]))
            rewards.append(np.concatenate([ep.rewards, [0.0]]))
            row0.append(np.full(n + 1, row))
            length.append(np.full(n + 1, n))
            terminal.append(np.full(n + 1, ep.terminal))
            last_start = n - 1 if ep.terminal else n - self.chunk_size - (0 if has_final else 1)
            starts.append(row + np.arange(max(0, min(n - 1, last_start) + 1)))
            row += n + 1
        cat = (lambda xs, dtype: np.concatenate(xs).astype(dtype))
        return {"obs": cat(obs, np.float32), "actions": cat(actions, np.float32), "rewards": cat(rewards, np.float32),
                "row0": cat(row0, np.int64), "length": cat(length, np.int64), "terminal": cat(terminal, bool),
                "starts": cat(starts, np.int64), "images": {name: cat(images[name], np.uint8) for name in cameras}}

    @property
    def n_starts(self) -> int:
        if not self.episodes:
            return 0
        if self._flat is None:
            self._flat = self._flatten()
        return len(self._flat["starts"])

    def _window(self, flat, row0: np.ndarray, local: np.ndarray) -> np.ndarray:
        if self.history == 1:
            return flat["obs"][row0 + local]
        offsets = np.arange(-self.history + 1, 1)
        return flat["obs"][row0[:, None] + np.maximum(local[:, None] + offsets, 0)]

    def sample(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """``n`` chunks drawn uniformly from the valid starts."""
        if self.n_starts == 0:
            raise ValueError(f"replay has no chunk of {self.chunk_size} steps to sample")
        return self.gather(self._flat["starts"][rng.integers(self.n_starts, size=n)])

    def valid_starts(self) -> np.ndarray:
        """The rows a chunk may start at (an int array; see ``gather``)."""
        return self._flat["starts"] if self.n_starts else np.zeros(0, np.int64)

    def gather(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """The chunks starting at ``rows``, as numpy arrays: obs, actions, rewards, next_obs, mask, and with cameras
        images / next_images ({camera: (B, H, W, 3)})."""
        if self._flat is None:
            self._flat = self._flatten()
        flat = self._flat
        row0, length, terminal = flat["row0"][rows], flat["length"][rows], flat["terminal"][rows]
        t = rows - row0
        steps = t[:, None] + np.arange(self.chunk_size)
        inside = steps < length[:, None]
        step_rows = row0[:, None] + np.minimum(steps, length[:, None] - 1)
        next_local = np.minimum(t + self.chunk_size, length)
        chunks = {"obs": self._window(flat, row0, t), "actions": flat["actions"][step_rows],
                  "rewards": flat["rewards"][step_rows] * inside, "next_obs": self._window(flat, row0, next_local),
                  "mask": (~(terminal & (t + self.chunk_size >= length))).astype(np.float32)}
        if flat["images"]:
            chunks["images"] = {name: frames[row0 + t] for name, frames in flat["images"].items()}
            chunks["next_images"] = {name: frames[row0 + next_local] for name, frames in flat["images"].items()}
        return chunks


def sample_batch(offline: SequenceReplay, online: SequenceReplay | None, batch_size: int,
                 rng: np.random.Generator, offline_fraction: float = 0.5) -> Batch:
    """Half demonstrations, half online transitions (all offline until online data exists, and vice versa)."""
    has_online = online is not None and online.n_starts > 0
    n_offline = batch_size if not has_online else int(round(batch_size * offline_fraction))
    if offline.n_starts == 0:
        n_offline = 0
    parts = []
    if n_offline:
        parts.append((offline.sample(n_offline, rng), True))
    if batch_size - n_offline:
        parts.append((online.sample(batch_size - n_offline, rng), False))
    keys = ("obs", "actions", "rewards", "next_obs", "mask")
    arrays = {k: torch.from_numpy(np.concatenate([p[k] for p, _ in parts])) for k in keys}
    for key in ("images", "next_images"):
        if key in parts[0][0]:
            arrays[key] = {name: torch.from_numpy(np.concatenate([p[key][name] for p, _ in parts]))
                           for name in parts[0][0][key]}
    is_demo = torch.from_numpy(np.concatenate([np.full(len(p["mask"]), demo) for p, demo in parts]))
    return Batch(is_demo=is_demo, **arrays)
