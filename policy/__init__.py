"""actsac.policy: the ACT-SAC actor, its config, the squashed Gaussian, checkpoints and training (imports torch).

The names below are imported on first use, so ``actsac.policy.train_cli`` can tell a robot-side install (no
PyTorch) what to install before anything imports torch.
"""

import importlib

_WHERE = {
    ".actors": ("ACTSACActor", "Actor", "MLPActor", "Normalizer", "SequenceACTSACActor", "build_actor",
                "observation_shape"),
    ".checkpoint": ("Checkpoint", "CheckpointError", "load_checkpoint", "save_checkpoint"),
    ".config": ("PRESETS", "ActionGroup", "ConfigError", "NormStats", "PolicyConfig"),
    ".critic": ("CriticEnsemble",),
    ".sac": ("SACLearner",),
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}
__all__ = list(_MODULE_OF)


def __getattr__(name: str):
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_MODULE_OF[name], __name__), name)
