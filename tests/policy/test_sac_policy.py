"""The seed design's interface: SACConfig / SACPolicy, mirroring its snippet line by line."""

import dataclasses

import numpy as np
import pytest
import torch

from actsac.policy import ACTSACActor, MLPActor, load_checkpoint
from actsac.policy import sac
from actsac.policy.config import ConfigError
from actsac.policy.sac_policy import FeatureType, PolicyFeature, SACConfig, SACPolicy
from actsac.ensemble import TemporalEnsembler

STATS = {"observation.state": {"min": [-1.0] * 10, "max": [1.0] * 10},
         "action": {"min": [-2.0] * 4, "max": [2.0] * 4}}
SMALL = dict(dim_model=32, n_heads=4, dim_feedforward=64, chunk_size=5, actor_hidden_dims=[32, 32],
             critic_hidden_dims=[32, 32])


def make_config(**overrides) -> SACConfig:
    return SACConfig(
        **{"input_features": {"observation.state": PolicyFeature(type=FeatureType.STATE, shape=(10,))},
           "output_features": {"action": PolicyFeature(type=FeatureType.ACTION, shape=(4,))},
           **SMALL, "use_act_actor": True, "action_groups": {"arm": 3, "gripper": 1}, "dataset_stats": STATS,
           **overrides})


def make_batch(config: SACConfig, batch_size: int = 8) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    h, a = config.chunk_size, config.action_dim
    return {"observation.state": torch.rand(batch_size, 10, generator=gen) * 2 - 1,
            "action": torch.rand(batch_size, h, a, generator=gen) * 4 - 2,
            "next.reward": torch.rand(batch_size, h, generator=gen),
            "next.done": torch.zeros(batch_size, h),
            "next.observation.state": torch.rand(batch_size, 10, generator=gen) * 2 - 1}


def test_the_seed_snippet_runs_as_written():
    config = SACConfig(
        input_features={"observation.state": PolicyFeature(type=FeatureType.STATE, shape=(10,))},
        output_features={"action": PolicyFeature(type=FeatureType.ACTION, shape=(4,))},
        use_act_actor=True,          # False = the MLP actor
        chunk_size=5, dim_model=32, n_heads=4, dim_feedforward=64, action_groups={"arm": 3, "gripper": 1},
        bc_weight_start=1.0, bc_weight_end=0.1, bc_schedule="linear", n_obs_steps=1,
        dataset_stats=STATS,         # normalisation
    )
    policy = SACPolicy(config=config)
    observations = {"observation.state": torch.zeros(1, 10)}
    actions = policy.select_action(observations)      # one action per call, chunk queue / ensembling inside
    assert actions.shape == (1, 4) and torch.all(actions.abs() <= 2.0)
    batch = make_batch(config)
    expert_actions = torch.rand(8, 5, 4) * 4 - 2
    batch["expert_action"] = expert_actions           # demonstration chunk
    loss_dict = policy.forward(batch, model="actor")  # SAC actor loss + BC loss with its current weight
    assert {"loss", "loss_actor", "loss_bc", "bc_weight", "loss_sac", "entropy"} <= set(loss_dict)
    assert float(loss_dict["bc_weight"]) == 1.0 and loss_dict["loss"].requires_grad
    loss_dict = policy.forward(batch, model="critic") # Q-chunking critic loss
    assert {"loss", "loss_critic"} <= set(loss_dict) and torch.isfinite(loss_dict["loss"])
    loss_dict = policy.forward(batch, model="temperature")
    assert {"loss", "alpha", "entropy"} <= set(loss_dict)
    assert float(loss_dict["alpha"]) == pytest.approx(config.temperature_init)


def test_switching_the_actor_changes_the_actor_class_and_nothing_else():
    act, mlp = SACPolicy(make_config(use_act_actor=True)), SACPolicy(make_config(use_act_actor=False))
    assert type(act.actor) is ACTSACActor and type(mlp.actor) is MLPActor
    a, m = act.policy_config.to_dict(), mlp.policy_config.to_dict()
    assert {k for k in a if a[k] != m[k]} == {"actor"}
    for name in ("critic_ensemble", "critic_target"):
        shapes = lambda p: [t.shape for t in getattr(p, name).state_dict().values()]  # noqa: E731
        assert shapes(act) == shapes(mlp)
    assert type(act.executor) is type(mlp.executor)


def test_history_selects_the_sequence_actor():
    policy = SACPolicy(make_config(n_obs_steps=3))
    assert type(policy.actor).__name__ == "SequenceACTSACActor"
    for _ in range(4):
        assert policy.select_action({"observation.state": torch.zeros(1, 10)}).shape == (1, 4)


@pytest.mark.parametrize("kwargs,key", [
    (dict(use_act_acter=True), "use_act_acter"),
    (dict(action_groups={"arm": 3, "gripper": 2}), "action_groups"),
    (dict(dataset_stats={"observation.state": {"min": [0.0] * 9, "max": [1.0] * 9}}), r"dataset_stats\['observation.state'\]\['min'\]"),
    (dict(dataset_stats={"observation.image": {"min": [0.0], "max": [1.0]}}), "observation.image"),
    (dict(bc_schedule="cosine"), "bc_schedule"),
    (dict(n_heads=5), "n_heads"),
])
def test_bad_settings_name_the_key(kwargs, key):
    with pytest.raises(ConfigError, match=key):
        make_config(**kwargs)


def test_losses_match_the_training_module():
    policy = SACPolicy(make_config())
    batch = make_batch(policy.config)
    batch["expert_action"] = torch.rand(8, 5, 4) * 4 - 2
    obs, actor = batch["observation.state"], policy.actor

    torch.manual_seed(11)
    got = policy.forward(batch, model="critic")
    torch.manual_seed(11)
    next_value = sac.soft_next_value(actor, policy.critic_target, batch["next.observation.state"], policy.alpha)
    target = sac.chunked_backup_target(batch["next.reward"], torch.ones(8), next_value, policy.config.discount)
    want, _ = sac.critic_loss(policy.critic_ensemble, obs, actor.from_robot_units(batch["action"]), target)
    assert torch.allclose(got["loss"], want)

    policy.training_step = 50_000  # halfway through the linear BC decay
    torch.manual_seed(12)
    got = policy.forward(batch, model="actor")
    torch.manual_seed(12)
    want, parts = sac.actor_loss(actor, policy.critic_ensemble, obs, policy.alpha,
                                 demo_actions=actor.from_robot_units(batch["expert_action"]), bc_weight=0.55,
                                 bc_relative_to_q=False)
    assert torch.allclose(got["loss"], want) and float(got["bc_weight"]) == pytest.approx(0.55)
    assert torch.allclose(got["loss_bc"], parts["loss_bc"])

    torch.manual_seed(13)
    got = policy.forward(batch, model="temperature")
    torch.manual_seed(13)
    _, log_prob = actor.sample(obs)
    assert torch.allclose(got["loss"], sac.temperature_loss(policy.log_alpha, log_prob, policy.target_entropy))


def test_terminal_inside_a_chunk_masks_rewards_and_bootstrap():
    policy = SACPolicy(make_config(chunk_size=3))
    batch = make_batch(policy.config, batch_size=2)
    batch["next.reward"] = torch.ones(2, 3)
    batch["next.done"] = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    from actsac.policy.sac_policy import _rewards_and_mask

    rewards, mask = _rewards_and_mask(batch)
    assert rewards.tolist() == [[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]] and mask.tolist() == [0.0, 1.0]


def test_select_action_ensembles_like_the_runtime():
    policy = SACPolicy(make_config(temporal_ensemble_coeff=0.1))
    reference = TemporalEnsembler(0.1, policy.config.chunk_size)
    rng = np.random.default_rng(0)
    for _ in range(8):
        obs = torch.as_tensor(rng.uniform(-1, 1, (1, 10)), dtype=torch.float32)
        with torch.no_grad():
            chunk = policy.actor.to_robot_units(policy.actor.deterministic(obs))[0].numpy()
        assert np.allclose(policy.select_action({"observation.state": obs})[0].numpy(), reference.update(chunk),
                           atol=1e-6)


def test_open_loop_chunks_query_every_n_action_steps():
    policy = SACPolicy(make_config(temporal_ensemble_coeff=None, n_action_steps=2))
    calls = []
    original = policy._chunk
    policy._chunk = lambda obs, images: calls.append(1) or original(obs, images)
    for _ in range(6):
        policy.select_action(torch.zeros(1, 10))
    assert len(calls) == 3


def test_save_load_export_round_trip(tmp_path):
    from actsac.export.onnx_export import export_onnx

    policy = SACPolicy(make_config())
    policy.training_step = 7
    policy.save_pretrained(tmp_path / "sac")
    loaded = SACPolicy.from_pretrained(tmp_path / "sac")
    assert loaded.config.to_dict() == policy.config.to_dict() and loaded.training_step == 7
    obs = torch.rand(3, 10)
    for a, b in zip(policy.actor.eval()(obs), loaded.actor.eval()(obs)):
        assert torch.equal(a, b)
    for a, b in zip(policy.critic_ensemble.state_dict().values(), loaded.critic_ensemble.state_dict().values()):
        assert torch.equal(a, b)
    checkpoint = load_checkpoint(tmp_path / "sac" / "model.pt")  # the project's own checkpoint format
    result = export_onnx(checkpoint, tmp_path / "actor.onnx", log=lambda line: None)
    assert result.metadata.chunk_size == 5
    assert [g["name"] for g in result.metadata.action_groups] == ["arm", "gripper"]


def test_from_pretrained_names_a_foreign_checkpoint(tmp_path):
    from actsac.policy import build_actor, save_checkpoint
    from actsac.policy.checkpoint import CheckpointError

    (tmp_path / "d").mkdir()
    save_checkpoint(tmp_path / "d" / "model.pt", build_actor(SACPolicy(make_config()).policy_config))
    with pytest.raises(CheckpointError, match="sac_config"):
        SACPolicy.from_pretrained(tmp_path / "d")


def camera_sac_config(**overrides) -> SACConfig:
    stats = {**STATS, "observation.images.front": {"mean": [[[0.5]], [[0.4]], [[0.3]]], "std": [[[0.2]]] * 3}}
    return make_config(input_features={"observation.state": PolicyFeature(FeatureType.STATE, (10,)),
                                       "observation.images.front": PolicyFeature(FeatureType.VISUAL, (3, 32, 48))},
                       dataset_stats=stats, **overrides)


@pytest.mark.parametrize("use_act_actor", [True, False])
def test_visual_features_are_cameras(use_act_actor, tmp_path):
    config = camera_sac_config(use_act_actor=use_act_actor)
    policy = SACPolicy(config)
    camera = policy.policy_config.cameras[0]
    assert (camera.name, camera.height, camera.width) == ("front", 32, 48)
    assert camera.mean == [0.5, 0.4, 0.3] and camera.std == [0.2] * 3
    frame = torch.randint(0, 256, (32, 48, 3), dtype=torch.uint8)
    action = policy.select_action({"observation.state": torch.zeros(10), "observation.images.front": frame})
    assert action.shape == (1, 4)
    with pytest.raises(KeyError, match="observation.images.front"):
        policy.select_action({"observation.state": torch.zeros(10)})
    batch = make_batch(config)
    batch["observation.images.front"] = torch.randint(0, 256, (8, 32, 48, 3), dtype=torch.uint8)
    batch["next.observation.images.front"] = torch.randint(0, 256, (8, 32, 48, 3), dtype=torch.uint8)
    batch["expert_action"] = torch.zeros(8, 5, 4)
    for model in ("critic", "actor", "temperature"):
        assert torch.isfinite(policy.forward(batch, model=model)["loss"])
    policy.save_pretrained(tmp_path)
    assert load_checkpoint(tmp_path / "model.pt").config.cameras == [camera]


def test_visual_feature_without_statistics_is_refused():
    with pytest.raises(ConfigError, match=r"dataset_stats\['observation.images.front'\]: .*no image statistics"):
        make_config(input_features={"observation.state": PolicyFeature(FeatureType.STATE, (10,)),
                                    "observation.images.front": PolicyFeature(FeatureType.VISUAL, (3, 32, 48))})


def upper_body_config(**overrides) -> SACConfig:
    return SACConfig(input_features={"observation.state": PolicyFeature(type=FeatureType.STATE, shape=(32,))},
                     output_features={"action": PolicyFeature(type=FeatureType.ACTION, shape=(32,))},
                     **{**SMALL, "robot": "upper_body", **overrides})


def test_a_robot_gives_the_groups_joints_and_units_and_actsac_run_accepts_the_export(tmp_path):
    """SACConfig(robot=...): the upper body's arm 14 / torso 6 (degrees) / hand 12, so the export passes
    actsac-run's model-vs-robot check (with generic joint names and one unit it was refused)."""
    from actsac.drivers.robots import load_robot
    from actsac.export.onnx_export import export_onnx
    from actsac.runtime.observation import check_model_against_robot

    policy = SACPolicy(upper_body_config(action_groups={"arm": 14, "torso": 6, "hand": 12}))
    groups = policy.policy_config.action_groups
    assert [(g.name, g.dim) for g in groups] == [("arm", 14), ("torso", 6), ("hand", 12)]
    assert groups[1].joints[0] == "torso_0" and set(groups[1].units) == {"degrees"}
    policy.save_pretrained(tmp_path / "ub")
    result = export_onnx(load_checkpoint(tmp_path / "ub" / "model.pt"), tmp_path / "ub.onnx", log=lambda line: None)
    check_model_against_robot(result.metadata, load_robot("upper_body"), "ub.onnx")  # raises RunRefused if not


@pytest.mark.parametrize("overrides, message", [
    (dict(action_groups={"arm": 16, "torso": 6, "hand": 10}), "differ from robot 'upper_body''s groups"),
    (dict(robot="so100"), "robot: 'so100' drives 6 joints (arm 6), but output_features['action'] has 32 dims"),
    (dict(robot="nosuch"), "robot: unknown robot 'nosuch'"),
])
def test_a_robot_that_does_not_fit_is_named(overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
                       .replace("]", r"\]")):
        upper_body_config(**overrides)
