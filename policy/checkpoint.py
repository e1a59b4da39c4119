"""model.pt: the actor's config, weights and normalisation stats, loadable without running any pickle code.

Layout (``torch.save`` of a dict of plain types and tensors)::

    {"format": "actsac-checkpoint", "version": 1, "config": {...PolicyConfig.to_dict()...},
     "state_dict": {...}, "normalization": {"obs": {...} | None, "action": {...} | None}, "extra": {...}}

Loading uses ``torch.load(weights_only=True)``: a pickle that would construct arbitrary objects is refused.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from actsac._cli import first_line
from actsac.files import atomic_write, file_sha256  # noqa: F401  (re-exported)

from .actors import Actor, build_actor
from .config import ConfigError, PolicyConfig

FORMAT_TAG = "actsac-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(Exception):
    """A checkpoint that cannot be used; the message names the file and the problem in one line."""


@dataclass
class Checkpoint:
    actor: Actor
    config: PolicyConfig
    extra: dict[str, Any]
    path: Path


def save_checkpoint(path: str | os.PathLike, actor: Actor, extra: dict[str, Any] | None = None) -> Path:
    config = actor.config
    payload = {
        "format": FORMAT_TAG,
        "version": FORMAT_VERSION,
        "config": config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in actor.state_dict().items()},
        "normalization": {
            "obs": asdict(config.obs_stats) if config.obs_stats else None,
            "action": asdict(config.action_stats) if config.action_stats else None,
        },
        "extra": extra or {},
    }
    try:
        return atomic_write(path, lambda tmp: torch.save(payload, tmp))
    except FileNotFoundError as exc:
        raise CheckpointError(str(exc)) from None


def looks_like_a_checkpoint(path: Path) -> bool:
    """Starts as torch.save's zip archive ("PK") or a bare pickle (protocol 2+: 0x80). Other bytes are not a
    checkpoint at all, though torch's weights-only unpickler would call them an unsafe pickle."""
    with open(path, "rb") as file:
        head = file.read(2)
    return head == b"PK" or head[:1] == b"\x80"


def read_payload(path: str | os.PathLike) -> dict[str, Any]:
    """The checkpoint dict, checked for the format tag and version; raises CheckpointError."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory, not a checkpoint file")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    if not looks_like_a_checkpoint(path):
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (neither torch.save's zip archive nor a pickle)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only" in str(exc).lower() or "weights_only" in str(exc).lower():
            raise CheckpointError(f"{path}: refused: the pickle is not weights-only (it would run code or build "
                                  f"arbitrary objects); only load checkpoints you trust with other tools") from None
        raise CheckpointError(f"{path}: not a PyTorch checkpoint ({first_line(exc)})") from None
    except Exception as exc:  # torch raises RuntimeError, EOFError, KeyError... for damaged or foreign files
        raise CheckpointError(f"{path}: truncated or not a PyTorch checkpoint ({first_line(exc)})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_TAG:
        tag = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(f"{path}: not an actsac checkpoint (format tag {tag!r}, expected {FORMAT_TAG!r})")
    version = payload.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {version} is newer than this actsac reads "
                              f"({FORMAT_VERSION}); upgrade actsac")
    for key in ("config", "state_dict"):
        if key not in payload:
            raise CheckpointError(f"{path}: checkpoint has no '{key}'")
    return payload


def camera_mismatch(config: PolicyConfig, state_dict: dict[str, Any]) -> str | None:
    """Why the cameras of the config and of the weights disagree (by each camera's normaliser), or None."""
    marker = ".inputs.normalizers."
    weights = sorted({k.split(marker, 1)[1].split(".")[0] for k in state_dict if marker in k})
    named = sorted(config.camera_names)
    if weights == named:
        return None
    return (f"its config names cameras [{', '.join(named) or 'none'}] but its weights are for cameras "
            f"[{', '.join(weights) or 'none'}]")


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Rebuild the actor (in eval mode) from a checkpoint; every failure is a one-line CheckpointError."""
    payload = read_payload(path)
    try:
        config = PolicyConfig.from_dict(payload["config"])
    except ConfigError as exc:
        raise CheckpointError(f"{path}: bad config: {exc}") from None
    actor = build_actor(config)
    problem = camera_mismatch(config, payload["state_dict"])
    if problem:
        raise CheckpointError(f"{path}: {problem}")
    try:
        actor.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())
        raise CheckpointError(f"{path}: weights do not match the config: {detail[:300]}") from None
    actor.eval()
    return Checkpoint(actor=actor, config=config, extra=payload.get("extra", {}), path=Path(path))
