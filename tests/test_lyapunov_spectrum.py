"""QR Lyapunov spectra of models against analytic cases and known exponents."""
import math

import numpy as np
import pytest
import torch

from dsrecon import systems
from dsrecon.errors import ConfigError
from dsrecon.lyapunov import kaplan_yorke_dimension, lyapunov_spectrum
from dsrecon.models import PLRNN


class LinearMap(torch.nn.Module):
    """z -> A z: its exponents are log|eig(A)| (digest §9.1, exact)."""

    def __init__(self, A):
        super().__init__()
        self.A = torch.nn.Parameter(torch.as_tensor(A, dtype=torch.float64))
        self.latent_dim = self.obs_dim = self.A.shape[0]

    def step(self, z):
        return z @ self.A.T

    def jacobian(self, z):
        return self.A.expand(z.shape[0], -1, -1)


def test_linear_map_gives_log_abs_eigenvalues():
    A = np.array([[1.2, 0.7, -0.3], [0.0, -0.5, 0.4], [0.0, 0.0, 0.9]])  # non-normal, eig on the diagonal
    spec = lyapunov_spectrum(LinearMap(A), n_steps=3000, transient=100, n_init=2)
    expected = np.sort(np.log(np.abs(np.diag(A))))[::-1]
    assert np.allclose(spec.values, expected, atol=2e-3)


def test_qr_interval_does_not_change_a_well_conditioned_spectrum():
    A = np.diag([1.1, 0.8, 0.6])
    a = lyapunov_spectrum(LinearMap(A), n_steps=600, transient=10, qr_every=1)
    b = lyapunov_spectrum(LinearMap(A), n_steps=600, transient=10, qr_every=5)
    assert np.allclose(a.values, b.values, atol=1e-10)


def test_stable_fixed_point_of_a_plrnn():
    # W = 0, h = 0: z -> A z with A = diag(a), so the exponents are log|a_i| (digest §9.1)
    m = PLRNN(2, 4, seed=0)
    with torch.no_grad():
        m.W.zero_()
        m.A.copy_(torch.tensor([0.5, 0.9, -0.7, 0.3]))
    spec = lyapunov_spectrum(m, n_steps=500, transient=50)
    assert np.allclose(spec.values, np.sort(np.log([0.5, 0.9, 0.7, 0.3]))[::-1], atol=1e-5)
    assert spec.kaplan_yorke_dim == 0.0


def test_lorenz_spectrum_from_the_true_equations():
    # Lorenz sigma=16, rho=45.92, beta=4: sum = -(sigma+1+beta) = -21 exactly; lambda_1 = 1.50,
    # lambda_2 = 0 (Wolf et al. 1985). 40 time units from 3 initial conditions: lambda_1 within 10 %.
    p = dict(sigma=16.0, rho=45.92, beta=4.0)
    flow = systems.FlowModel("lorenz", p, dt=0.01, substeps=5)
    z0 = systems.simulate("lorenz", p, dt=0.01, n_samples=3, transient=500, seed=2)
    spec = lyapunov_spectrum(flow, n_steps=4000, transient=300, z0=z0, dt=0.01)
    lam = spec.per_time
    assert lam.sum() == pytest.approx(-21.0, rel=2e-3)
    assert lam[0] == pytest.approx(1.50, rel=0.10)
    assert abs(lam[1]) < 0.1
    assert spec.kaplan_yorke_dim == pytest.approx(2.07, abs=0.02)  # 2 + 1.50/22.46
    assert spec.running.shape == (20, 3) and np.all(np.isfinite(spec.stderr))


def test_kaplan_yorke_dimension_by_hand():
    assert kaplan_yorke_dimension([1.5, 0.0, -22.46]) == pytest.approx(2 + 1.5 / 22.46)
    assert kaplan_yorke_dimension([-0.1, -1.0]) == 0.0
    assert kaplan_yorke_dimension([0.5, 0.2]) == 2.0


def test_bad_arguments():
    m = LinearMap(np.eye(2))
    with pytest.raises(ConfigError, match="k must be"):
        lyapunov_spectrum(m, k=3)
    with pytest.raises(ConfigError, match="n_steps"):
        lyapunov_spectrum(m, n_steps=0)
