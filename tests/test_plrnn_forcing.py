import pytest
import torch

from dsrecon.errors import ConfigError
from dsrecon.forcing import sparse_teacher_forcing
from dsrecon.models import PLRNN, autograd_jacobian


def _model(**kw):
    torch.manual_seed(0)
    m = PLRNN(3, 12, seed=1, **kw)
    with torch.no_grad():  # move away from the near-identity initialisation
        m.W.add_(0.3 * torch.randn_like(m.W) * m.offdiag)
        m.h.add_(0.1 * torch.randn_like(m.h))
        m.B.add_(0.2 * torch.randn_like(m.B))
    return m


def test_analytic_jacobian_equals_autograd():
    m = _model()
    z = torch.randn(7, 12)
    assert torch.allclose(m.jacobian(z), autograd_jacobian(m.step, z), atol=1e-6)


def test_force_inverts_observation_and_keeps_unobserved_part():
    m = _model(keep_unobserved=True)
    x, z = torch.randn(5, 3), torch.randn(5, 12)
    zf = m.force(x, z)
    assert torch.allclose(m.observe(zf), x, atol=1e-5)  # B B^+ = I for full-row-rank B
    P = torch.eye(12) - torch.linalg.pinv(m.B) @ m.B      # projector onto the null space of B
    assert torch.allclose(zf @ P.T, z @ P.T, atol=1e-5)   # unobserved part untouched
    z0 = _model().force(x, z)  # default: the paper's min-norm B^+ x
    assert torch.allclose(z0 @ P.T, torch.zeros_like(z0), atol=1e-5)  # min-norm: null part zero


def test_ridge_force_approaches_pinv():
    a, b = _model(ridge=1e-8), _model()
    x = torch.randn(4, 3)
    assert torch.allclose(a.force(x), b.force(x), atol=1e-3)


def test_forced_steps_equal_control_values():
    m, tau = _model(), 4
    x = torch.randn(13, 2, 3)
    pred = sparse_teacher_forcing(m, x, tau)
    with torch.no_grad():  # replay by hand: force at 0, then at tau, 2 tau
        z = m.force(x[0])
        for t in range(1, 13):
            z = m.step(z)
            assert torch.allclose(pred[t - 1], m.observe(z), atol=1e-5)
            if t % tau == 0:
                z = m.force(x[t], z)
                assert torch.allclose(m.observe(z), x[t], atol=1e-5)


def test_no_gradient_flows_across_a_forced_step():
    m, tau = _model(), 5
    x = torch.randn(16, 3, 3)
    loss = sparse_teacher_forcing(m, x, tau)[tau:].pow(2).sum()  # losses after the first forcing
    g_full = torch.autograd.grad(loss, list(m.parameters()))
    # the same losses from a rollout that starts at the forced state as a constant
    with torch.no_grad():
        z = m.force(x[0])
        for _ in range(tau):
            z = m.step(z)
        z = m.force(x[tau], z)
    preds = []
    for t in range(tau + 1, 16):
        z = m.step(z)
        preds.append(m.observe(z))
        if t % tau == 0:
            z = m.force(x[t], z.detach(), pinv=m.observation_pinv().detach()).detach()
    g_cut = torch.autograd.grad(torch.stack(preds).pow(2).sum(), list(m.parameters()))
    for a, b in zip(g_full, g_cut):
        assert torch.allclose(a, b, atol=1e-5)


def test_tau_must_be_positive():
    with pytest.raises(ConfigError, match="tau must be >= 1"):
        sparse_teacher_forcing(_model(), torch.randn(5, 1, 3), 0)


def test_w_stays_off_diagonal_under_adam():
    # App. A.1.3: A carries the diagonal, W only couples units; the masked gradient keeps diag(W) = 0.
    m = _model()
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    x = torch.randn(21, 4, 3)
    for _ in range(5):
        loss = (sparse_teacher_forcing(m, x, 5) - x[1:]).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert torch.count_nonzero(torch.diagonal(m.W)) == 0
    assert torch.count_nonzero(m.W) > 0
