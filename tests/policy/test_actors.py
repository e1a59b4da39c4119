import dataclasses
import json

import pytest
import torch

from actsac.policy import (ACTSACActor, ConfigError, MLPActor, NormStats, PolicyConfig, SequenceACTSACActor,
                           build_actor, observation_shape)
from tests.conftest import upper_body_groups

ACTOR_KINDS = [("act", None, ACTSACActor), ("act", 5, SequenceACTSACActor), ("mlp", None, MLPActor),
               ("mlp", 3, MLPActor)]


@pytest.mark.parametrize("kind,history,cls", ACTOR_KINDS, ids=["act", "act-history", "mlp", "mlp-history"])
@pytest.mark.parametrize("batch", [1, 7])
def test_output_shapes(small_config, kind, history, cls, batch):
    config = dataclasses.replace(small_config, actor=kind, history=history)
    actor = build_actor(config)
    assert type(actor) is cls
    obs = torch.randn(batch, *observation_shape(config))
    mean, log_std = actor(obs)
    assert mean.shape == log_std.shape == (batch, config.chunk_size, config.action_dim)
    assert log_std.min() >= config.log_std_min and log_std.max() <= config.log_std_max
    action, log_prob = actor.sample(obs)
    assert action.shape == mean.shape and log_prob.shape == (batch,)
    assert action.abs().max() <= 1.0


def test_mlp_with_chunk_of_one(small_config):
    config = dataclasses.replace(small_config, actor="mlp", chunk_size=1)
    mean, _ = build_actor(config)(torch.randn(3, 12))
    assert mean.shape == (3, 1, 6)


@pytest.mark.parametrize("kind", ["act", "mlp"])
def test_one_head_per_group_in_group_order(kind):
    config = PolicyConfig.from_preset("small", state_dim=5, action_groups=upper_body_groups(), actor=kind, chunk_size=4)
    actor = build_actor(config).eval()
    assert [h.out_features for h in actor.mean_heads.heads] == [d * (1 if kind == "act" else 4) for d in (14, 6, 12)]
    obs = torch.randn(2, 5)
    before, _ = actor(obs)
    with torch.no_grad():  # change only the torso head: only columns 14..19 may move
        actor.mean_heads.heads[1].bias += 1.0
    after, _ = actor(obs)
    changed = (after - before).abs().amax(dim=(0, 1)) > 1e-6
    assert changed.tolist() == [False] * 14 + [True] * 6 + [False] * 12


def test_normalisation_is_inside_the_actor(small_config):
    actor = build_actor(small_config)
    raw = torch.tensor([[100.0] * 12, [-100.0] * 12])
    assert torch.allclose(actor.obs_norm(raw), torch.tensor([[1.0] * 12, [-1.0] * 12]))
    # [-1, 1] maps to each joint's [min, max]; the gripper is 0..100
    ends = actor.to_robot_units(torch.tensor([-1.0, 1.0]).repeat_interleave(6).view(2, 6))
    assert ends.tolist() == [[-100.0] * 5 + [0.0], [100.0] * 6]
    assert torch.allclose(actor.from_robot_units(ends), torch.tensor([[-1.0] * 6, [1.0] * 6]))


def test_mean_std_normalisation():
    stats = NormStats.mean_std([1.0, 2.0], [2.0, 4.0])
    config = PolicyConfig.from_preset("small", state_dim=2, action_groups=upper_body_groups()[1:2], obs_stats=stats)
    assert torch.allclose(build_actor(config).obs_norm(torch.tensor([3.0, 6.0])), torch.tensor([1.0, 1.0]))


def test_deterministic_is_tanh_of_mean(small_config):
    actor = build_actor(small_config).eval()
    obs = torch.randn(3, 12)
    assert torch.equal(actor.deterministic(obs), torch.tanh(actor(obs)[0]))


def test_config_round_trips_through_json(small_config):
    data = json.loads(json.dumps(small_config.to_dict()))
    assert PolicyConfig.from_dict(data) == small_config


@pytest.mark.parametrize("change,field", [
    (dict(actor="rnn"), "actor"),
    (dict(obs_stats=NormStats.min_max([0.0], [1.0])), "obs_stats"),
    (dict(n_heads=5), "n_heads"),
    (dict(chunk_size=0), "chunk_size"),
])
def test_bad_config_names_the_field(small_config, change, field):
    with pytest.raises(ConfigError, match=field):
        dataclasses.replace(small_config, **change)


def test_unknown_key_is_refused(small_config):
    data = small_config.to_dict() | {"chunk_sise": 4}
    with pytest.raises(ConfigError, match="chunk_sise"):
        PolicyConfig.from_dict(data)


def test_preset_parameter_counts(capsys):
    """The default preset is the seed design's scale (~9.9M for the ACT actor); small is well under 1M."""
    from tests.conftest import so100_groups

    counts = {}
    for preset in ("default", "small"):
        for kind in ("act", "mlp"):
            config = PolicyConfig.from_preset(preset, state_dim=12, action_groups=so100_groups(), actor=kind)
            counts[preset, kind] = build_actor(config).num_parameters()
    with capsys.disabled():
        print("\nparameter counts (state 12, action 6, H 10):",
              ", ".join(f"{p}/{k}={n:,}" for (p, k), n in counts.items()))
    assert 9_000_000 < counts["default", "act"] < 11_000_000
    assert counts["small", "act"] < 1_000_000
