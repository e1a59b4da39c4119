"""actsac.policy: the ACT-SAC actor, its config, the squashed Gaussian, checkpoints and training (imports torch)."""

from .actors import (ACTSACActor, Actor, MLPActor, Normalizer, SequenceACTSACActor, build_actor,
                     observation_shape)
from .checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from .config import PRESETS, ActionGroup, ConfigError, NormStats, PolicyConfig
from .critic import CriticEnsemble
from .sac import SACLearner

__all__ = [
    "ACTSACActor", "Actor", "MLPActor", "Normalizer", "SequenceACTSACActor", "build_actor", "observation_shape",
    "Checkpoint", "CheckpointError", "load_checkpoint", "save_checkpoint",
    "PRESETS", "ActionGroup", "ConfigError", "NormStats", "PolicyConfig",
    "CriticEnsemble", "SACLearner",
]
