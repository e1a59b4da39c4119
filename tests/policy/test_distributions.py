import pytest
import torch
from torch.distributions import Normal, TanhTransform, TransformedDistribution

from actsac.policy.distributions import action_log_prob, log_tanh_jacobian, sample_squashed, squashed_log_prob


def reference_log_prob(u, mean, log_std):
    dist = TransformedDistribution(Normal(mean, log_std.exp()), [TanhTransform(cache_size=1)])
    return dist.log_prob(torch.tanh(u)).flatten(1).sum(-1)


@pytest.mark.parametrize("scale", [0.5, 3.0, 8.0], ids=["interior", "near-edge", "saturated"])
def test_log_prob_matches_torch_distributions(scale):
    gen = torch.Generator().manual_seed(0)
    mean = torch.randn(16, 10, 6, generator=gen, dtype=torch.float64) * scale
    log_std = torch.rand(16, 10, 6, generator=gen, dtype=torch.float64) * 3 - 2
    u = mean + log_std.exp() * torch.randn(16, 10, 6, generator=gen, dtype=torch.float64)
    ours = squashed_log_prob(u, mean, log_std)
    # TanhTransform's inverse (atanh) is lossy when |a| -> 1, so compare on its cached forward samples
    dist = TransformedDistribution(Normal(mean, log_std.exp()), [TanhTransform(cache_size=1)])
    ref = dist.log_prob(dist.transforms[0](u)).flatten(1).sum(-1)
    assert torch.allclose(ours, ref, atol=1e-5, rtol=0)


def test_log_prob_float32_near_the_bounds():
    mean = torch.tensor([[[0.0, 2.0, -4.0]]])
    log_std = torch.tensor([[[-1.0, 0.0, 0.5]]])
    u = torch.tensor([[[0.1, 5.0, -7.5]]])  # |tanh(u)| up to 1 - 6e-7
    ours = squashed_log_prob(u, mean, log_std)
    ref = reference_log_prob(u.double(), mean.double(), log_std.double())
    assert torch.isfinite(ours).all()
    assert torch.allclose(ours.double(), ref, atol=1e-5)


def test_stable_jacobian_does_not_cancel():
    u = torch.tensor([0.0, 1.0, 20.0, -20.0])
    naive = torch.log(1 - torch.tanh(u.double()) ** 2)
    assert torch.allclose(log_tanh_jacobian(u)[:2].double(), naive[:2], atol=1e-6)
    assert torch.isfinite(log_tanh_jacobian(u)).all()  # the naive form gives -inf at |u| = 20 in float32
    assert torch.allclose(log_tanh_jacobian(u)[2:], torch.tensor([-38.6137, -38.6137]), atol=1e-3)


def test_sample_is_reparameterised_and_consistent():
    mean = torch.zeros(4, 3, 2, requires_grad=True)
    log_std = torch.zeros(4, 3, 2, requires_grad=True)
    action, log_prob = sample_squashed(mean, log_std, torch.Generator().manual_seed(1))
    assert torch.allclose(action_log_prob(action, mean, log_std), log_prob, atol=1e-4)
    (action.sum() + log_prob.sum()).backward()
    assert mean.grad.abs().sum() > 0 and log_std.grad.abs().sum() > 0


def test_log_prob_of_boundary_actions_is_finite():
    mean, log_std = torch.zeros(1, 1, 2), torch.zeros(1, 1, 2)
    assert torch.isfinite(action_log_prob(torch.tensor([[[1.0, -1.0]]]), mean, log_std)).all()
