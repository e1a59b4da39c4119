import dataclasses
import math

import numpy as np
import pytest
import torch

from actsac.policy import build_actor, observation_shape
from actsac.policy.critic import CriticEnsemble, make_target, polyak_update
from actsac.policy.replay import Episode, SequenceReplay, sample_batch
from actsac.policy.sac import (BCSchedule, SACLearner, actor_loss, bc_weight, chunked_backup_target,
                               critic_loss, default_target_entropy, temperature_loss)

ACTOR_KINDS = [("act", None), ("act", 3), ("mlp", None)]


def test_backup_target_by_hand():
    rewards = torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    mask = torch.tensor([1.0, 0.0])
    next_value = torch.tensor([8.0, 8.0])
    target = chunked_backup_target(rewards, mask, next_value, gamma=0.5)
    # 1 + 0.5 * 2 + 0.25 * 3 (+ 0.125 * 8 when bootstrapping)
    assert target.tolist() == [3.75, 2.75]


def terminal_episode():
    """4 transitions, rewards 1..4, the last one terminal; 5 observations (the last one after the terminal)."""
    obs = np.arange(5, dtype=np.float32)[:, None].repeat(2, 1)
    actions = np.linspace(-0.5, 0.5, 4, dtype=np.float32)[:, None]
    return Episode(obs, actions, np.array([1.0, 2.0, 3.0, 4.0], np.float32), terminal=True)


def test_chunks_crossing_a_terminal_are_masked():
    replay = SequenceReplay(chunk_size=3)
    replay.add_episode(terminal_episode())
    starts = replay.valid_starts()
    assert len(starts) == 4  # a terminal episode may start a chunk on every step
    chunks = replay.gather(starts)
    assert chunks["rewards"].tolist() == [[1, 2, 3], [2, 3, 4], [3, 4, 0], [4, 0, 0]]
    assert chunks["mask"].tolist() == [1, 0, 0, 0]  # only t=0 ends (t+H=3) before the terminal at t=3
    assert chunks["next_obs"][0].tolist() == [3.0, 3.0]
    # past the terminal the chunk repeats the last action (never executed, but the critic needs H of them)
    assert chunks["actions"][3, :, 0].tolist() == pytest.approx([0.5, 0.5, 0.5])
    target = chunked_backup_target(torch.from_numpy(chunks["rewards"]), torch.from_numpy(chunks["mask"]),
                                   torch.full((4,), 10.0), gamma=0.9)
    expected = [1 + 0.9 * 2 + 0.81 * 3 + 0.729 * 10, 2 + 0.9 * 3 + 0.81 * 4, 3 + 0.9 * 4, 4]
    assert target.tolist() == pytest.approx(expected)


@pytest.mark.parametrize("has_final", [True, False], ids=["final-obs", "no-final-obs"])
def test_time_limit_episodes_bootstrap_only_from_known_observations(has_final):
    n, horizon = 6, 3
    obs = np.arange(n + has_final, dtype=np.float32)[:, None]
    replay = SequenceReplay(chunk_size=horizon)
    replay.add_episode(Episode(obs, np.zeros((n, 1), np.float32), np.ones(n, np.float32)))
    chunks = replay.gather(replay.valid_starts())
    assert len(chunks["mask"]) == (n - horizon + 1 if has_final else n - horizon)
    assert chunks["mask"].tolist() == [1.0] * len(chunks["mask"])
    assert chunks["next_obs"][:, 0].tolist() == [t + horizon for t in range(len(chunks["mask"]))]


def test_history_windows_repeat_the_first_observation():
    replay = SequenceReplay(chunk_size=2, history=3)
    replay.add_episode(terminal_episode())
    chunks = replay.gather(replay.valid_starts())
    assert chunks["obs"].shape == (4, 3, 2)
    assert chunks["obs"][:, :, 0].tolist() == [[0, 0, 0], [0, 0, 1], [0, 1, 2], [1, 2, 3]]
    assert chunks["next_obs"][0, :, 0].tolist() == [0, 1, 2]


def test_batches_are_half_demonstrations():
    offline, online = SequenceReplay(2), SequenceReplay(2)
    offline.add_episode(terminal_episode())
    rng = np.random.default_rng(0)
    assert sample_batch(offline, online, 8, rng).is_demo.all()  # no online data yet
    online.add_episode(terminal_episode())
    batch = sample_batch(offline, online, 8, rng)
    assert batch.is_demo.tolist() == [True] * 4 + [False] * 4
    assert batch.actions.shape == (8, 2, 1) and batch.actions.dtype == torch.float32


def test_bc_weight_schedules():
    assert bc_weight(500, BCSchedule("constant", 2.0, 0.1, 1000)) == 2.0
    linear = BCSchedule("linear", 1.0, 0.0, 100)
    assert [bc_weight(s, linear) for s in (0, 50, 100, 1000)] == [1.0, 0.5, 0.0, 0.0]
    exponential = BCSchedule("exponential", 1.0, 0.01, 100)
    assert bc_weight(50, exponential) == pytest.approx(0.1)  # geometric midpoint
    assert bc_weight(100, exponential) == pytest.approx(0.01) == bc_weight(10**6, exponential)
    with pytest.raises(ValueError, match="exponential"):
        BCSchedule("exponential", 1.0, 0.0, 100)


@pytest.mark.parametrize("log_prob,direction", [(10.0, +1), (-40.0, -1)], ids=["entropy-low", "entropy-high"])
def test_temperature_moves_toward_the_entropy_target(log_prob, direction):
    target_entropy = default_target_entropy(chunk_size=5, action_dim=2)  # -5
    log_alpha = torch.tensor(math.log(0.1), requires_grad=True)
    optimizer = torch.optim.SGD([log_alpha], lr=0.1)
    temperature_loss(log_alpha, torch.full((4,), log_prob), target_entropy).backward()
    optimizer.step()
    assert (log_alpha.item() - math.log(0.1)) * direction > 0


@pytest.mark.parametrize("kind,history", ACTOR_KINDS, ids=["act", "act-history", "mlp"])
def test_actor_gradient_flows_through_the_critic(small_config, kind, history):
    config = dataclasses.replace(small_config, actor=kind, history=history, chunk_size=4)
    torch.manual_seed(0)
    actor, qf = build_actor(config), CriticEnsemble(config, n_critics=3, hidden=(32, 32))
    obs = torch.randn(6, *observation_shape(config)) * 50
    qf.requires_grad_(False)
    loss, parts = actor_loss(actor, qf, obs, alpha=0.0, generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert parts["loss_bc"] == 0 and parts["loss_sac"] == loss.detach()
    grads = [p.grad for p in actor.mean_heads.parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)
    assert all(p.grad is None for p in qf.parameters())


@pytest.mark.parametrize("bc", ["mse", "nll"])
def test_bc_term_prefers_the_demonstration(small_config, bc):
    actor = build_actor(dataclasses.replace(small_config, chunk_size=4))
    obs = torch.randn(5, 12) * 50
    with torch.no_grad():
        own = actor.deterministic(obs)
    kwargs = dict(bc_weight=1.0, bc_loss=bc, generator=torch.Generator().manual_seed(0))
    _, at_mean = actor_loss(actor, None, obs, 0.0, demo_actions=own, **kwargs)
    _, elsewhere = actor_loss(actor, None, obs, 0.0, demo_actions=(own + 0.5).clamp(-1, 1), **kwargs)
    assert at_mean["loss_bc"] < elsewhere["loss_bc"]
    if bc == "mse":
        assert at_mean["loss_bc"] == pytest.approx(0.0, abs=1e-10)
    # rows not from the demonstrations do not count
    mask = torch.zeros(5, dtype=torch.bool)
    _, none = actor_loss(actor, None, obs, 0.0, demo_actions=own + 0.5, demo_mask=mask, **kwargs)
    assert none["loss_bc"] == 0


def test_critic_ensemble_and_polyak(small_config):
    qf = CriticEnsemble(small_config, n_critics=4, hidden=(16,))
    obs, chunk = torch.randn(7, 12), torch.rand(7, 10, 6) * 2 - 1
    q = qf(obs, chunk)
    assert q.shape == (4, 7)
    assert not torch.allclose(q[0], q[1])  # independent members
    loss, _ = critic_loss(qf, obs, chunk, q.detach()[0])
    loss.backward()  # member 0 is on target: no gradient into its output layer
    assert qf.out.weight.grad[0].abs().max() == 0 and qf.out.weight.grad[1].abs().max() > 0
    target = make_target(qf)
    with torch.no_grad():
        for p in qf.parameters():
            p.add_(1.0)
    before = [p.clone() for p in target.parameters()]
    polyak_update(qf, target, tau=0.25)
    for old, new, src in zip(before, target.parameters(), qf.parameters()):
        assert torch.allclose(new, 0.75 * old + 0.25 * src)


def test_one_update_changes_actor_critic_and_temperature(small_config):
    config = dataclasses.replace(small_config, chunk_size=3)
    torch.manual_seed(0)
    actor = build_actor(config)
    learner = SACLearner(actor, critic_hidden=(32, 32), seed=0, init_temperature=0.5)
    replay = SequenceReplay(3)
    rng = np.random.default_rng(0)
    for _ in range(2):
        replay.add_episode(Episode(rng.uniform(-100, 100, (9, 12)).astype(np.float32),
                                   rng.uniform(-1, 1, (8, 6)).astype(np.float32), rng.normal(size=8).astype(np.float32)))
    batch = sample_batch(replay, None, 16, rng)
    actor_before = [p.clone() for p in actor.parameters()]
    critic_before = [p.clone() for p in learner.qf.parameters()]
    target_before = [p.clone() for p in learner.qf_target.parameters()]
    metrics = learner.update(batch, step=0)
    assert set(metrics) >= {"losses/critic", "losses/actor", "losses/bc", "charts/bc_weight", "charts/alpha",
                            "charts/entropy"}
    assert all(math.isfinite(v) for v in metrics.values())
    assert any(not torch.equal(a, b) for a, b in zip(actor_before, actor.parameters()))
    assert all(not torch.equal(a, b) for a, b in zip(critic_before, learner.qf.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(target_before, learner.qf_target.parameters()))
    assert metrics["charts/alpha"] != 0.5
