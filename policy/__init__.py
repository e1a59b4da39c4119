"""actsac.policy: the ACT-SAC actor, its config, the squashed Gaussian and checkpoints (imports torch)."""

from .actors import (ACTSACActor, Actor, MLPActor, Normalizer, SequenceACTSACActor, build_actor,
                     observation_shape)
from .checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from .config import PRESETS, ActionGroup, ConfigError, NormStats, PolicyConfig

__all__ = [
    "ACTSACActor", "Actor", "MLPActor", "Normalizer", "SequenceACTSACActor", "build_actor", "observation_shape",
    "Checkpoint", "CheckpointError", "load_checkpoint", "save_checkpoint",
    "PRESETS", "ActionGroup", "ConfigError", "NormStats", "PolicyConfig",
]
