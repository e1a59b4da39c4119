"""A LeRobot checkpoint -> an actsac ``Checkpoint`` the exporter takes: the actor module with LeRobot's weights,
and a ``PolicyConfig`` naming the robot's joints, their units, the cameras and the statistics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from actsac.policy import Checkpoint
from actsac.policy.config import CameraConfig, ConfigError, NormStats, PolicyConfig, robot_action_groups

from .models import ACTIVATIONS, ACTModel, Affine, LeRobotACT, LeRobotSAC, Normalisation, SACActorModel
from .reader import (ACTION, DEFAULT_FPS, ENV, IMAGE_PREFIX, STATE, WEIGHTS_FILE, LeRobotError, LeRobotFiles, affine,
                     check_stats, read_lerobot)

IGNORED_ACT_PREFIXES = ("vae_encoder",)  # training-only parts of LeRobot's ACT


def lerobot_unit(units: str):
    """A motor's unit in a LeRobot recording: its own, or with ``units`` "degrees" (LeRobot's ``use_degrees``)
    degrees for the range_m100_100 joints (a gripper stays range_0_100)."""
    return lambda motor: "degrees" if units == "degrees" and motor.norm_mode == "range_m100_100" else motor.norm_mode


def camera_name(files: LeRobotFiles, key: str) -> str:
    name = key[len(IMAGE_PREFIX):] if key.startswith(IMAGE_PREFIX) else ""
    if not name.isidentifier():
        raise LeRobotError(f"{files.where()}: camera feature '{key}': actsac needs observation.images.<name> with "
                           f"<name> made of letters, digits and _ (rename it with LeRobot's rename_map)")
    return name


def check_features(files: LeRobotFiles, joints: list[str], robot_name: str) -> None:
    where = files.where()
    unknown = [k for k, f in files.inputs.items()
               if k not in (STATE, ENV) and f.type != "VISUAL"]
    if unknown:
        raise LeRobotError(f"{where}: input feature '{unknown[0]}' is not supported (actsac reads observation.state, "
                           f"observation.environment_state and observation.images.<camera>)")
    if STATE not in files.inputs:
        raise LeRobotError(f"{where}: the policy has no observation.state: actsac runs policies that observe "
                           f"the robot's joints")
    names = ", ".join(joints) if len(joints) <= 8 else f"{joints[0]} ... {joints[-1]}"
    for key in (STATE, ACTION):
        feature = files.action if key == ACTION else files.inputs[key]
        if feature.shape != (len(joints),):
            raise LeRobotError(f"{where}: {key} has {int(np.prod(feature.shape))} values but robot '{robot_name}' "
                               f"has {len(joints)} joints ({names})")
    for camera in files.cameras:
        camera_name(files, camera.key)
        if len(camera.shape) != 3 or camera.shape[0] != 3:
            raise LeRobotError(f"{where}: camera feature '{camera.key}' has shape {list(camera.shape)}, expected "
                               f"[3, height, width] (RGB)")


def check_act(files: LeRobotFiles) -> None:
    config, where = files.config, files.where()
    if files.cameras and config.get("vision_backbone", "resnet18") != "resnet18":
        raise LeRobotError(f"{where}: vision_backbone '{config['vision_backbone']}' is not supported (actsac has "
                           f"resnet18)")
    if config.get("replace_final_stride_with_dilation"):
        raise LeRobotError(f"{where}: replace_final_stride_with_dilation is not supported (a dilated layer4)")
    activation = config.get("feedforward_activation", "relu")
    if activation not in ACTIVATIONS:
        raise LeRobotError(f"{where}: feedforward_activation '{activation}' is not supported (one of "
                           f"{', '.join(ACTIVATIONS)})")
    if config.get("n_obs_steps", 1) != 1:
        raise LeRobotError(f"{where}: n_obs_steps {config['n_obs_steps']} is not supported (1)")
    for key in ("chunk_size", "dim_model", "n_heads", "dim_feedforward", "n_encoder_layers", "n_decoder_layers",
                "latent_dim"):
        if not isinstance(config.get(key), int):
            raise LeRobotError(f"{where}: '{key}' is missing or not an integer")


def check_sac(files: LeRobotFiles) -> None:
    config, where = files.config, files.where()
    if files.cameras and config.get("vision_encoder_name"):
        raise LeRobotError(f"{where}: vision_encoder_name '{config['vision_encoder_name']}' is not supported "
                           f"(actsac has LeRobot's default SAC image encoder, vision_encoder_name null)")
    if config.get("num_discrete_actions") is not None:
        raise LeRobotError(f"{where}: num_discrete_actions (a discrete gripper critic) is not supported")
    sizes = {camera.shape for camera in files.cameras}
    if len(sizes) > 1:
        raise LeRobotError(f"{where}: SAC cameras of different sizes are not supported (LeRobot batches them "
                           f"through one encoder)")


def normalisation(files: LeRobotFiles, parts: list[str]) -> tuple[Normalisation, dict]:
    """The modules and, for the PolicyConfig, the same statistics as NormStats / camera mean-std."""
    part_affines = [(key, files.inputs[key].shape[0], affine(files, files.inputs[key])) for key in parts]
    cameras = {camera_name(files, c.key): affine(files, c) for c in files.cameras}
    action_shift, action_scale = affine(files, files.action, inverse=True)
    module = Normalisation(
        [(key.rpartition(".")[2], size, Affine(*values)) for key, size, values in part_affines],
        {name: Affine(*values, channels=True) for name, values in cameras.items()},
        Affine(action_shift, action_scale))
    shift = np.concatenate([values[0] for _, _, values in part_affines])
    scale = np.concatenate([values[1] for _, _, values in part_affines])
    try:
        described = dict(
            obs_stats=NormStats.mean_std(shift, scale),
            # metadata only (--stochastic's host-side mapping): a zero std (a constant joint) as 1e-12
            action_stats=NormStats.mean_std(action_shift, np.maximum(action_scale, 1e-12)),
            cameras=[CameraConfig(name, files.inputs[IMAGE_PREFIX + name].shape[1],
                                  files.inputs[IMAGE_PREFIX + name].shape[2], list(v[0]), list(v[1]))
                     for name, v in cameras.items()])
    except ConfigError as exc:
        raise LeRobotError(f"{files.where()}: statistics unusable: {exc}") from None
    return module, described


def load_weights(files: LeRobotFiles, module: torch.nn.Module, prefix: str, ignored: tuple[str, ...] = ()) -> None:
    """``module.load_state_dict`` from the keys of model.safetensors under ``prefix`` (the ignored ones
    dropped), strictly: a missing or unexpected key, or a shape that differs, is a one-line LeRobotError.
    (SAC's encoder, shared with the critics, is saved under ``actor.encoder.``: safetensors keeps that name.)"""
    where = files.where(WEIGHTS_FILE)
    state = {key[len(prefix):]: value.float() for key, value in files.weights.items()
             if key.startswith(prefix) and not key[len(prefix):].startswith(ignored)}
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing:
        raise LeRobotError(f"{where}: no weight '{prefix}{missing[0]}' ({len(missing)} missing): the weights do not "
                           f"match config.json")
    if unexpected:
        raise LeRobotError(f"{where}: unexpected weight '{prefix}{unexpected[0]}' ({len(unexpected)} unexpected): "
                           f"the weights do not match config.json")
    for key, value in state.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise LeRobotError(f"{where}: weight '{prefix}{key}' has shape {list(value.shape)}, config.json "
                               f"gives {list(expected[key].shape)}")
    module.load_state_dict(state, strict=True)


def load_lerobot(path: Path, robot, *, units: str = "range", fps: float | None = None) -> Checkpoint:
    """Read the LeRobot checkpoint at ``path`` (a pretrained_model directory, or one holding it) for ``robot``
    (a RobotSpec: the joints and their units, which LeRobot's files do not name) as an actsac Checkpoint."""
    files = read_lerobot(path)
    groups = robot_action_groups(robot, lerobot_unit(units))
    joints = [joint for group in groups for joint in group.joints]
    check_features(files, joints, robot.name)
    kind, config = files.policy_type, files.config
    (check_act if kind == "act" else check_sac)(files)
    check_stats(files)
    parts = [key for key in (STATE, ENV) if key in files.inputs]
    norm, described = normalisation(files, parts)
    env_dim = files.inputs[ENV].shape[0] if ENV in files.inputs else 0
    state_dim = len(joints)
    cameras = {c.name: (c.height, c.width) for c in described["cameras"]}
    env = files.train_config.get("env") if isinstance(files.train_config.get("env"), dict) else {}
    control_hz = float(fps or env.get("fps") or DEFAULT_FPS)
    names = [f"{joint}.pos" for joint in joints] + [f"environment_state.{i}" for i in range(env_dim)]
    common = dict(state_dim=state_dim + env_dim, action_groups=groups, control_hz=control_hz,
                  observation_names=names, **described)
    try:
        if kind == "act":
            policy_config = PolicyConfig(
                chunk_size=config["chunk_size"], actor="act", dim_model=config["dim_model"],
                n_heads=config["n_heads"], dim_feedforward=config["dim_feedforward"],
                n_encoder_layers=config["n_encoder_layers"], n_decoder_layers=config["n_decoder_layers"],
                image_encoder="resnet18", **common)
        else:
            hidden = config.get("actor_network_kwargs", {}).get("hidden_dims", [256, 256])
            policy_config = PolicyConfig(chunk_size=1, actor="mlp", mlp_hidden=hidden, **common)
    except ConfigError as exc:
        raise LeRobotError(f"{files.where()}: {exc}") from None
    if kind == "act":
        model = ACTModel(config, state_dim, env_dim, cameras, len(joints))
        load_weights(files, model, "model.", IGNORED_ACT_PREFIXES)
        actor = LeRobotACT(policy_config, norm, model)
    else:
        policy = config.get("policy_kwargs", {})
        policy_config.log_std_min = float(np.log(policy.get("std_min", 1e-5)))
        policy_config.log_std_max = float(np.log(policy.get("std_max", 10.0)))
        model = SACActorModel(config, state_dim, env_dim, cameras, len(joints))
        load_weights(files, model, "actor.")
        actor = LeRobotSAC(policy_config, norm, model)
    source = {"framework": "lerobot", "policy": kind, "layout": files.layout, "directory": files.directory.name,
              "units": units}
    for key in ("n_action_steps", "temporal_ensemble_coeff"):
        if key in config:
            source[key] = config[key]
    extra = {"source": source, "stochastic": actor.stochastic, "task": None}
    return Checkpoint(actor=actor.eval(), config=policy_config, extra=extra, path=files.directory / WEIGHTS_FILE)
