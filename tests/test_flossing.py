"""Gradient flossing ("Gradient Flossing", Engelken 2023): the differentiable QR estimate and the loss."""
import math

import numpy as np
import pytest
import torch

from dsrecon.errors import ConfigError
from dsrecon.flossing import floss, flossing_loss, lyapunov_exponents
from dsrecon.lyapunov import lyapunov_spectrum


class TanhMap(torch.nn.Module):
    """z' = tanh(W z + C s): smooth, so finite differences of the flossing loss are well defined."""

    def __init__(self, M, g, seed=0, input_dim=1, dtype=torch.float64):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.W = torch.nn.Parameter((g / math.sqrt(M) * torch.randn(M, M, generator=gen)).to(dtype))
        self.C = torch.nn.Parameter(torch.randn(M, input_dim, generator=gen).to(dtype))
        self.latent_dim = self.obs_dim = M

    def step(self, z, s=None):
        return torch.tanh(z @ self.W.T + (0 if s is None else s @ self.C.T))

    def jacobian(self, z, s=None):
        d = 1 - self.step(z, s) ** 2
        return d.unsqueeze(-1) * self.W


class TanhMaps(torch.nn.Module):
    """P independent nets z' = tanh(W_p z + C_p s) in one model, net p on its own block of batch rows. Flossing
    them together is P independent flossing runs at the cost of one (the loss is a mean over rows, so net p gets
    its own gradient / P, and Adam's update is invariant to that scale)."""

    def __init__(self, M, gs, seeds, dtype=torch.float32):
        super().__init__()
        nets = [TanhMap(M, g, seed=s, dtype=dtype) for g, s in zip(gs, seeds)]
        self.W = torch.nn.Parameter(torch.stack([n.W.detach() for n in nets]))
        self.C = torch.nn.Parameter(torch.stack([n.C.detach() for n in nets]))
        self.latent_dim = self.obs_dim = M

    def _rows(self, p, B):
        return p.repeat_interleave(B // p.shape[0], dim=0)

    def step(self, z, s=None):
        W, C = self._rows(self.W, z.shape[0]), self._rows(self.C, z.shape[0])
        return torch.tanh((W @ z.unsqueeze(-1)).squeeze(-1) + (0 if s is None else (C @ s.unsqueeze(-1)).squeeze(-1)))

    def jacobian(self, z, s=None):
        return (1 - self.step(z, s) ** 2).unsqueeze(-1) * self._rows(self.W, z.shape[0])

    def net(self, p):
        m = TanhMap(self.latent_dim, 1.0, dtype=self.W.dtype)
        with torch.no_grad():
            m.W.copy_(self.W[p])
            m.C.copy_(self.C[p])
        return m


pytestmark = pytest.mark.usefixtures("one_torch_thread")   # tests/conftest.py


class Linear(torch.nn.Module):
    def __init__(self, A):
        super().__init__()
        self.A = torch.nn.Parameter(torch.as_tensor(A, dtype=torch.float64))
        self.latent_dim = self.obs_dim = self.A.shape[0]

    def step(self, z, s=None):
        return z @ self.A.T

    def jacobian(self, z, s=None):
        return self.A.expand(z.shape[0], -1, -1)


def test_estimate_of_a_linear_map_is_log_abs_eig():
    # z -> A z: exponents log|eig A| (digest §9.1); A triangular, so eig = diag; finite-time bias ~ 1/T
    A = torch.tensor([[1.3, 0.4, 0.0], [0.0, 0.7, 0.2], [0.0, 0.0, -0.4]], dtype=torch.float64)
    lam = lyapunov_exponents(Linear(A), torch.randn(2, 3, dtype=torch.float64), k=3, n_steps=2000,
                             generator=torch.Generator().manual_seed(0))
    # measured error with generator seeds 0..3, default and MKL_CBWR=COMPATIBLE ATEN_CPU_CAPABILITY=default dispatch:
    # 7e-4 .. 1.6e-3 (no warm-up: the random initial frame's bias, ~1/T); 3e-3 = 1.9x the worst
    assert np.allclose(lam.detach().numpy(), np.log([1.3, 0.7, 0.4]), atol=3e-3)


def test_estimate_agrees_with_lyapunov_spectrum_on_a_driven_net():
    # the same QR core with the same inputs: differentiable estimate == lyapunov_spectrum's value
    m = TanhMap(8, g=1.5, seed=1)
    gen = torch.Generator().manual_seed(3)
    s = torch.randn(3000, 1, 1, generator=gen, dtype=torch.float64)
    z0 = torch.zeros(1, 8, dtype=torch.float64)
    with torch.no_grad():
        lam = lyapunov_exponents(m, z0, k=3, n_steps=3000, inputs=s, generator=gen)[0].numpy()
    spec = lyapunov_spectrum(m, k=3, n_steps=3000, transient=0, z0=z0, inputs=s)
    # the frames differ (own random Q, no transient): measured |difference| <= 2.7e-3 over nets/input seeds 1..4
    # and dispatches (default, MKL_CBWR=COMPATIBLE ATEN_CPU_CAPABILITY=default); bound 8e-3 = 3x (was 2e-2)
    assert np.allclose(np.sort(lam)[::-1], spec.values, atol=8e-3)


def test_gradient_matches_finite_differences():
    # d L_floss / d W by autograd through QR (torch.linalg.qr's pullback, "Gradient Flossing" App. A)
    # against central differences of the same deterministic estimate
    m = TanhMap(6, g=1.2, seed=2)
    s = torch.randn(40, 2, 1, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    z0 = 0.1 * torch.randn(2, 6, generator=torch.Generator().manual_seed(6), dtype=torch.float64)

    def loss():
        lam = lyapunov_exponents(m, z0, k=3, n_steps=40, qr_every=2, inputs=s,
                                 generator=torch.Generator().manual_seed(7))
        return flossing_loss(lam, target=-0.2)

    L = loss()
    L.backward()
    grad = m.W.grad.clone()
    eps = 1e-6
    rng = np.random.default_rng(0)
    for _ in range(6):
        i, j = rng.integers(0, 6, 2)
        with torch.no_grad():
            m.W[i, j] += eps
            up = loss().item()
            m.W[i, j] -= 2 * eps
            down = loss().item()
            m.W[i, j] += eps
        assert grad[i, j].item() == pytest.approx((up - down) / (2 * eps), rel=1e-5, abs=1e-9)


def test_independent_nets_in_one_model_equal_separate_nets():
    # the TanhMaps helper below: each block of rows steps and linearises exactly as its own TanhMap
    nets = TanhMaps(5, [0.5, 1.5], [3, 4], dtype=torch.float64)
    z = torch.randn(4, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    s = torch.randn(4, 1, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    for p, rows in ((0, slice(0, 2)), (1, slice(2, 4))):
        one = TanhMap(5, [0.5, 1.5][p], seed=[3, 4][p], dtype=torch.float64)
        assert torch.allclose(nets.step(z, s)[rows], one.step(z[rows], s[rows]), atol=1e-14)
        assert torch.allclose(nets.jacobian(z, s)[rows], one.jacobian(z[rows], s[rows]), atol=1e-14)
        assert torch.equal(nets.net(p).W, one.W)


@pytest.mark.parametrize("target", [-1.0, -0.5, 0.0])
def test_flossing_reaches_the_target_within_100_updates(target):
    # "Gradient Flossing" Fig. 1B: lambda_1 of random tanh nets with g ~ U(0, 1), driven by N(0, 1) inputs,
    # reaches the targets -1, -0.5 and 0 within 100 epochs. Smaller N here (16, paper 32) to stay fast;
    # lambda_1 after flossing is measured independently by lyapunov_spectrum over 2000 driven steps.
    # One flossing run is an optimisation of a noisy loss (Adam, lr 0.02, 4 x 60 steps): a single net ends up to
    # 0.58 off the target, and which net depends on the CPU's kernels (the old single-net test, seed 0, target -1:
    # -0.875 with AVX-512 MKL, -0.993 with MKL_CBWR=COMPATIBLE). So 9 nets are flossed together and their median
    # is bounded. Measured |median - target| for targets -1 / -0.5 / 0 over floss seeds 1, 2, 3 under the default
    # dispatch, MKL_CBWR=COMPATIBLE ATEN_CPU_CAPABILITY=default, MKL_CBWR=AVX2 and 2 threads:
    # <= 0.072 / 0.018 / 0.042 (target 0 is approached from below: -0.035 .. -0.042). Bound 0.15: 2x the worst
    # (-1); single nets start at -0.55 .. -2.8 per step (measured), so an idle optimiser fails targets -0.5 and 0.
    P = 9
    gs = np.random.default_rng(int(10 * target) + 11).uniform(0, 1, P)
    nets = TanhMaps(16, gs, seeds=range(1, P + 1))
    inputs = lambda n, b, gen: torch.randn(n, b, 1, generator=gen)  # noqa: E731
    floss(nets, k=1, target=target, epochs=100, n_steps=60, lr=0.02, batch=4 * P, seed=1,
          init=lambda b, gen: torch.zeros(b, 16), inputs=inputs)
    s = torch.randn(2500, 2, 1, generator=torch.Generator().manual_seed(99))
    lam1 = [lyapunov_spectrum(nets.net(p), k=1, n_steps=2000, transient=500, z0=torch.zeros(2, 16),
                              inputs=s).values[0] for p in range(P)]
    assert np.median(lam1) == pytest.approx(target, abs=0.15), np.round(lam1, 3)


def test_bad_k():
    with pytest.raises(ConfigError, match="between 1 and the model's state dimension 3"):
        lyapunov_exponents(Linear(np.eye(3)), torch.zeros(1, 3, dtype=torch.float64), k=4, n_steps=10)
    with pytest.raises(ConfigError, match="--floss"):
        floss(Linear(np.eye(3)), k=0, epochs=1)
