"""QR Lyapunov spectra of models against analytic cases and known exponents."""
import math

import numpy as np
import pytest
import torch

from dsrecon import systems
from dsrecon.errors import ConfigError, DataError, InputError
from dsrecon.data import true_spectrum
from dsrecon.lyapunov import condition_number_estimate, kaplan_yorke_dimension, lyapunov_spectrum, qr_log_stretches
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


class DrivenLinearMap(LinearMap):
    """z -> A z + s: an additive input moves the orbit but not the Jacobian, so the exponents stay
    log|eig(A)| whatever the input (digest §9.1 for the linear map; §3.1 for driven systems)."""

    def step(self, z, s=None):
        return z @ self.A.T + s

    def jacobian(self, z, s=None):
        return self.A.expand(z.shape[0], -1, -1)


class Logistic(torch.nn.Module):
    """z -> r z (1 - z) in one dimension; f'(z) = r (1 - 2z) depends on the state, so the order of
    Jacobian and step is visible."""

    latent_dim = obs_dim = 1

    def __init__(self, r=4.0):
        super().__init__()
        self.r = torch.nn.Parameter(torch.tensor(float(r), dtype=torch.float64))

    def step(self, z):
        return self.r * z * (1 - z)

    def jacobian(self, z):
        return (self.r * (1 - 2 * z)).unsqueeze(-1)


pytestmark = pytest.mark.usefixtures("one_torch_thread")   # tests/conftest.py


def test_linear_map_gives_log_abs_eigenvalues():
    A = np.array([[1.2, 0.7, -0.3], [0.0, -0.5, 0.4], [0.0, 0.0, 0.9]])  # non-normal, eig on the diagonal
    spec = lyapunov_spectrum(LinearMap(A), n_steps=3000, transient=100, n_init=2)
    expected = np.sort(np.log(np.abs(np.diag(A))))[::-1]
    # the frame converges to the Schur vectors during the transient (gap log(1.2/0.9) per step), after which each
    # R_ii is |a_ii| to rounding: measured error 1.3e-15 (seeds 0..3; default and MKL_CBWR=COMPATIBLE
    # ATEN_CPU_CAPABILITY=default). Bound 1e-12 (was 2e-3); an off-by-one step would show as ~1e-4.
    assert np.allclose(spec.values, expected, rtol=0, atol=1e-12)


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
    # lambda_2 = 0 (Wolf et al. 1985). 40 time units from 3 initial conditions.
    # Measured (initial-condition seeds 2, 3, 4; default and MKL_CBWR=COMPATIBLE ATEN_CPU_CAPABILITY=default, which
    # give the same numbers here: 3-d tensors): sum -21 to 6.6e-8 relative (RK4's O(h^4) error, deterministic);
    # lambda_1 off 1.50 by -1.9 % .. +0.75 %; |lambda_2| 0.0023 .. 0.015; D_KY 2.0661 .. 2.0674 (2 + 1.50/22.46 =
    # 2.0668); lambda_3 off -22.5 by -0.06 % .. +0.075 %. Bounds at 3x the worst (were 2e-3, 10 %, 0.1, 0.02, 2 %).
    p = dict(sigma=16.0, rho=45.92, beta=4.0)
    flow = systems.FlowModel("lorenz", p, dt=0.01, substeps=5)
    z0 = systems.simulate("lorenz", p, dt=0.01, n_samples=3, transient=500, seed=2)
    spec = lyapunov_spectrum(flow, n_steps=4000, transient=300, z0=z0, dt=0.01)
    lam = spec.per_time
    assert lam.sum() == pytest.approx(-21.0, rel=2.1e-7)
    assert lam[0] == pytest.approx(1.50, rel=0.06)
    assert abs(lam[1]) < 0.05
    assert spec.kaplan_yorke_dim == pytest.approx(2 + 1.50 / 22.46, abs=2e-3)
    assert spec.running.shape == (20, 3) and np.all(np.isfinite(spec.stderr))
    # the neutral exponent of an autonomous flow is 0 (digest §9.1); lambda_3 = -21 - 1.50 = -22.5
    assert spec.neutral_exponent == lam[1] and abs(spec.neutral_exponent) < 0.05
    assert lam[2] == pytest.approx(-22.5, rel=2.5e-3)


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


# ------------------------------------------------------------------------------ qr_log_stretches
def test_qr_log_stretches_takes_the_jacobian_before_the_step():
    # one dimension: the sum of log|R_11| over n steps is sum_{t<n} log|f'(z_t)| with z_0 the given state
    # (chain rule; z_n itself does not enter), for any qr_every
    model = Logistic()
    z0 = torch.tensor([[0.3], [0.71]], dtype=torch.float64)
    zs = [z0.numpy().ravel()]
    for _ in range(50):
        zs.append(4.0 * zs[-1] * (1 - zs[-1]))
    expected = np.sum(np.log(np.abs(4.0 * (1 - 2 * np.array(zs[:50])))), axis=0)
    for every in (1, 7):
        z, Q, logs = qr_log_stretches(model, z0, torch.ones(2, 1, 1, dtype=torch.float64), 50, qr_every=every)
        assert np.allclose(logs.detach().numpy().ravel(), expected, rtol=1e-9)
        assert np.allclose(z.detach().numpy().ravel(), zs[50], rtol=1e-9)


def test_qr_log_stretches_is_differentiable():
    # upper-triangular A with Q_0 = I: every QR returns R = A up to signs, so logs = n log|a_ii| exactly and
    # d logs_i / d a_ii = n / a_ii (and 0 for the off-diagonal entries)
    A = np.array([[1.3, 0.4, -0.2], [0.0, -0.6, 0.5], [0.0, 0.0, 0.8]])
    model = LinearMap(A)
    z = torch.ones(1, 3, dtype=torch.float64)
    _, _, logs = qr_log_stretches(model, z, torch.eye(3, dtype=torch.float64).unsqueeze(0), 10)
    assert np.allclose(logs.detach().numpy()[0], 10 * np.log(np.abs(np.diag(A))))
    logs.sum().backward()
    grad = model.A.grad.numpy()
    assert np.allclose(np.diag(grad), 10 / np.diag(A))
    assert np.allclose(np.triu(grad, 1), 0.0)     # upper entries keep A triangular with the same diagonal

    # a nonlinear map with a state-dependent Jacobian: autograd through Jacobian, step and QR agrees with
    # finite differences (torch.autograd.gradcheck), in the parameters and in the initial state
    W0 = torch.randn(4, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 0.9

    def logs_of(W, z0):
        class Tanh:
            latent_dim = 4

            def step(self, z):
                return torch.tanh(z @ W.T)

            def jacobian(self, z):
                return (1 - torch.tanh(z @ W.T) ** 2).unsqueeze(-1) * W

        Q0 = torch.linalg.qr(torch.eye(4, 2, dtype=torch.float64) + 0.1)[0].unsqueeze(0)
        return qr_log_stretches(Tanh(), z0, Q0, 6, qr_every=2)[2]

    z0 = torch.tensor([[0.5, -0.3, 0.8, 0.1]], dtype=torch.float64)
    assert torch.autograd.gradcheck(logs_of, (W0.clone().requires_grad_(), z0.clone().requires_grad_()))


def test_qr_log_stretches_keeps_the_dtype_of_q():
    model = LinearMap(np.diag([1.1, 0.5]))
    z = torch.ones(3, 2, dtype=torch.float64)
    Q = torch.eye(2, dtype=torch.float32).expand(3, 2, 2)
    z1, Q1, logs = qr_log_stretches(model, z, Q, 4, qr_every=2)
    assert Q1.dtype == torch.float32 and logs.dtype == torch.float32 and z1.dtype == torch.float64
    assert logs.shape == (3, 2)
    assert np.allclose(logs.detach().numpy(), 4 * np.log([1.1, 0.5]), atol=1e-5)   # diagonal A: log|a_ii| per step
    with pytest.raises(InputError, match="inputs cover 2 steps"):
        qr_log_stretches(DrivenLinearMap(np.eye(2)), z, Q, 4, inputs=torch.zeros(2, 3, 2))


# -------------------------------------------------------------------------------- driven models
def test_additive_input_leaves_the_exponents_of_a_linear_map_unchanged():
    A = np.array([[1.05, 0.7, 0.0], [0.0, -0.8, 0.3], [0.0, 0.0, 0.5]])
    expected = np.sort(np.log(np.abs(np.diag(A))))[::-1]        # log|eig A| (digest §9.1), input-independent
    n_total = 100 + 2000
    noise = torch.randn(n_total, 2, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    a = lyapunov_spectrum(DrivenLinearMap(A), n_steps=2000, transient=100, n_init=2, inputs=5.0 * noise)
    # measured error 4e-16 .. 7e-16 (seeds 0..3, two dispatches as above): exact to rounding; bound 1e-12 (was 3e-3)
    assert np.allclose(a.values, expected, rtol=0, atol=1e-12)

    calls = []

    def white_noise(n, B, generator):
        calls.append((n, B))
        return torch.randn(n, B, 3, generator=generator, dtype=torch.float64)

    b = lyapunov_spectrum(DrivenLinearMap(A), n_steps=2000, transient=100, n_init=2, inputs=white_noise)
    assert calls == [(n_total, 2)]
    assert np.allclose(b.values, expected, rtol=0, atol=1e-12)


class DrivenTanh(torch.nn.Module):
    """z -> tanh(W z + s) with W ~ N(0, g^2/N): a discrete random tanh network with additive input."""

    def __init__(self, N, g, seed=0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.W = torch.nn.Parameter(g * torch.randn(N, N, generator=gen, dtype=torch.float64) / N**0.5)
        self.latent_dim = self.obs_dim = N

    def step(self, z, s=None):
        return torch.tanh(z @ self.W.T + (0.0 if s is None else s))

    def jacobian(self, z, s=None):
        return (1 - self.step(z, s) ** 2).unsqueeze(-1) * self.W


def test_strong_input_suppresses_chaos_and_the_realization_is_frozen_by_the_seed():
    # "Lyapunov spectra of chaotic RNNs" §VIII, Fig. 14: frozen white-noise input lowers lambda_max
    # monotonically. Measured here (N = 40, g = 3): lambda_1 = 0.25 at sigma = 0.1, -0.02 at sigma = 3; over nets
    # and input seeds 0..3 and two dispatches: weak 0.236 .. 0.268, weak - strong 0.246 .. 0.294 (bounds 0.1).
    m = DrivenTanh(40, 3.0)

    def white(sigma):
        return lambda n, B, g: sigma * torch.randn(n, B, 40, generator=g, dtype=torch.float64)

    weak = lyapunov_spectrum(m, k=2, n_steps=500, transient=100, n_init=2, inputs=white(0.1))
    again = lyapunov_spectrum(m, k=2, n_steps=500, transient=100, n_init=2, inputs=white(0.1))
    strong = lyapunov_spectrum(m, k=2, n_steps=500, transient=100, n_init=2, inputs=white(3.0))
    assert np.array_equal(weak.values, again.values)            # same seed -> same input realization
    assert weak.values[0] > 0.1 and strong.values[0] < weak.values[0] - 0.1
    with pytest.raises(InputError, match=r"shape \(transient \+ n_steps, n_init, K\)"):
        lyapunov_spectrum(m, n_steps=10, transient=0, inputs=torch.zeros(5, 1, 40))


def test_a_model_with_inputs_needs_them():
    with pytest.raises(InputError, match="input_dim=2.*pass inputs="):
        lyapunov_spectrum(PLRNN(2, 6, input_dim=2, seed=0), n_steps=10)


def test_non_finite_trajectory_names_the_steps():
    with pytest.raises(DataError, match="non-finite between steps"):
        lyapunov_spectrum(LinearMap(np.diag([1e30, 0.5])), n_steps=100, transient=0)


# ----------------------------------------------------------------------------- model-side oracles
def test_sum_of_exponents_is_the_mean_log_determinant():
    # exact identity (digest §4.3 / §9.1): prod_i R_ii = det of the Jacobian product, so with k = M the
    # exponents sum to the time average of log|det J(z_t)| along the same orbit. QR every step: this net's
    # spectrum spans ~10 per step, and qr_every = 3 already loses the tail to rounding (digest §10.2)
    m = DrivenTanh(40, 3.0)                                    # lambda_1 = 0.25 (measured, test above)
    z0 = torch.randn(2, 40, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    spec = lyapunov_spectrum(m, n_steps=400, transient=50, z0=z0)
    with torch.no_grad():
        z, logdet = z0, torch.zeros(2, dtype=torch.float64)
        for t in range(450):
            if t >= 50:
                logdet += torch.linalg.slogdet(m.jacobian(z))[1]
            z = m.step(z)
    assert spec.values[0] > 0                                  # chaotic: the identity is not trivial here
    assert spec.values.sum() == pytest.approx(float(logdet.mean()) / 400, rel=1e-9)


def test_random_tanh_rnn_below_the_critical_gain_is_stable():
    # z -> tanh(W z), W ~ N(0, g^2/N) with g = 0.5 < 1: every orbit falls into the fixed point 0, where
    # J = W, so the exponents are log|eig W| ("Lyapunov spectra of chaotic RNNs" §IV; digest §9.1 and §9.2:
    # g < g_crit = 1 is stable), all negative
    m = DrivenTanh(30, 0.5, seed=1)
    spec = lyapunov_spectrum(m, n_steps=2000, transient=300, n_init=2)
    assert np.all(spec.values < 0)
    expected = np.sort(np.log(np.abs(np.linalg.eigvals(m.W.detach().numpy()))))[::-1]
    # measured error 8.5e-5 .. 5.8e-4 (nets seeded 1..4, spectrum seeds 0..3, two dispatches; the complex pairs of
    # W converge slowest); bound 2e-3 = 3.4x the worst (was 0.02)
    assert np.allclose(spec.values, expected, rtol=0, atol=2e-3)
    assert spec.kaplan_yorke_dim == 0.0 and spec.entropy_rate == 0.0


def test_spread_over_ons_seeds_shows_an_unconverged_basis():
    # the ONS converges to the Oseledets directions during the transient, after which the seed of the initial
    # Q no longer matters ("Lyapunov spectra of chaotic RNNs" App. A, control 6); without a transient the
    # seeds disagree. The n_ons frames of one initial condition share one trajectory (bit-identical: a batched
    # GEMM rounds rows differently on AVX-512, and this map, lambda_1 = 0.25/step, made copies of one state
    # diverge within 150 steps, so the spread measured trajectories, 5e-3, instead of frames).
    m = DrivenTanh(40, 3.0)
    warm = lyapunov_spectrum(m, k=4, n_steps=300, transient=300, n_init=2, n_ons=3)
    cold = lyapunov_spectrum(m, k=4, n_steps=300, transient=0, n_init=2, n_ons=3)
    assert warm.per_init.shape == (2, 4) and warm.n_ons == 3
    # measured over seeds 0..3 under the default dispatch, ATEN_CPU_CAPABILITY=avx2, MKL_CBWR=COMPATIBLE and
    # 1 or 2 threads: warm spread <= 7.3e-6 (frames converge as exp(-(lambda_i - lambda_i+1) t)), cold spread
    # >= 1.58e-3 (an error of order 1/n_steps), cold/warm >= 458 per exponent. Bounds at ~14x, 5x and 15x margin.
    assert np.all(warm.ons_spread < 1e-4)
    assert np.all(cold.ons_spread > 3e-4)
    assert np.all(cold.ons_spread > 30 * warm.ons_spread)
    assert np.all(warm.stderr > warm.ons_spread)               # the initial conditions still differ (finite time)
    assert warm.drift.shape == (4,)
    # driven: every frame of an initial condition sees the same input and the same (shared) orbit
    noise = lambda n, B, g: 0.1 * torch.randn(n, B, 40, generator=g, dtype=torch.float64)  # noqa: E731
    driven = lyapunov_spectrum(m, k=2, n_steps=300, transient=300, n_init=2, n_ons=3, inputs=noise)
    # measured lambda_1 0.240 .. 0.263, spread <= 9.2e-6 (seeds 0..2; default and MKL_CBWR=COMPATIBLE)
    assert driven.values[0] > 0.1 and np.all(driven.ons_spread < 1e-4)
    assert np.all(np.isnan(lyapunov_spectrum(m, k=2, n_steps=50, transient=10).ons_spread))


def test_condition_number_estimate_by_hand():
    # "Gradient Flossing" Eq. 10: kappa_m(t) = exp((lambda_1 - lambda_m) t)
    assert np.allclose(condition_number_estimate([-1.0, 0.0, -2.0], 3), [1.0, np.e**3, np.e**6])
    out = condition_number_estimate([0.5, 0.1], [0, 10])
    assert out.shape == (2, 2) and np.allclose(out, [[1, 1], [1, np.exp(4.0)]])


def test_true_spectrum_reads_the_card():
    # the lorenz card (sigma=16, rho=45.92, beta=4, dt=0.01): sum of exponents = -(sigma+1+beta) = -21 exactly
    # for the flow (digest §9.1); a short run suffices for the sum (it is a volume contraction, no averaging bias)
    spec = true_spectrum("lorenz", n_steps=300, transient=50, n_init=2, substeps=5)
    assert spec.dt == 0.01 and spec.n_init == 2
    # measured relative error 6.5e-8 .. 7.0e-8 (seeds 0, 1, 2; RK4 with 5 substeps); bound 3x (was 2e-3)
    assert spec.per_time.sum() == pytest.approx(-21.0, rel=2.1e-7)
    with pytest.raises(DataError, match="unknown dataset"):
        true_spectrum("no-such-dataset")


@pytest.mark.slow
def test_true_spectrum_of_the_delay_card():
    # Card mackey-glass [reference] source: QR on the method-of-steps map, 10 000 steps from 3 histories =
    # (0.0745 ± 0.0011, -0.0008, -0.268) per time unit. 2000 steps here (about a minute): within 0.02, 0.02, 0.05.

    s = true_spectrum("mackey-glass", n_steps=2000, transient=500)
    assert len(s.per_time) == 3
    assert abs(s.per_time[0] - 0.0745) < 0.02 and abs(s.per_time[1]) < 0.02 and abs(s.per_time[2] + 0.268) < 0.05


def test_a_dead_direction_gives_a_finite_floor_not_an_error():
    # J = diag(0.5, 0.25, 0) exactly (PLRNN with W = 0): exponents log 0.5, log 0.25 and a dead direction, whose
    # R_ii is exactly 0; it is counted at the smallest float (log = -708 per QR), not -inf (analytic)
    import math

    import torch

    from dsrecon.lyapunov import lyapunov_spectrum
    from dsrecon.models import PLRNN
    m = PLRNN(3, 3, w_scale=0.0).double()
    with torch.no_grad():
        m.A.copy_(torch.tensor([0.5, 0.25, 0.0], dtype=torch.float64))
    spec = lyapunov_spectrum(m, n_steps=200, transient=10)
    # (1e-9 off: the start of Q is still aligning after the 10-step transient; 1e-7 leaves a 100x margin)
    assert abs(spec.values[0] - math.log(0.5)) < 1e-7 and abs(spec.values[1] - math.log(0.25)) < 1e-7
    assert math.isfinite(spec.values[2]) and spec.values[2] <= -700
