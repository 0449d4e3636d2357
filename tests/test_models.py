"""The model zoo (PLRNN, ShallowPLRNN, RNN, LSTM, GRU) against oracles: autograd Jacobians, exact
algebraic identities of the observation/forcing map, the rebuild contract, and dynamics with known
answers (stable fixed point, equivalent state conventions, clipped boundedness, Σλ = <log|det J|>)."""
import inspect

import numpy as np
import pytest
import torch

from dsrecon.errors import ConfigError, InputError
from dsrecon.lyapunov import lyapunov_spectrum
from dsrecon.models import GRU, LSTM, MODELS, PLRNN, RNN, ShallowPLRNN, autograd_jacobian, upgrade_hparams

N, UNITS, K = 3, 7, 2
# (registry name, extra constructor arguments): every class, the clipped variant, and an orthogonal RNN
VARIANTS = [
    ("plrnn", {}), ("shplrnn", {}), ("shplrnn", {"clipped": True}), ("rnn", {}),
    ("rnn", {"init": "orthogonal"}), ("lstm", {}), ("lstm", {"force_cell": "zero"}), ("gru", {}),
]
IDS = [name + "".join(f"-{k}={v}" for k, v in kw.items()) for name, kw in VARIANTS]
WEIGHT = {"plrnn": "W", "shplrnn": "W1", "rnn": "W", "lstm": "U", "gru": "U"}


pytestmark = pytest.mark.usefixtures("one_torch_thread")   # tests/conftest.py


def _perturbed(name, kw, dtype=torch.float64, **more):
    """A model moved away from its initialisation (random biases, larger weights), so that every
    nonlinearity is exercised on both sides."""
    m = MODELS[name](N, UNITS, seed=3, **kw, **more).to(dtype)
    g = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.5 * torch.randn(p.shape, generator=g, dtype=dtype))
    return m


def _states(m, batch=6, seed=5, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    z = 1.5 * torch.randn(batch, m.latent_dim, generator=g, dtype=dtype)
    s = torch.randn(batch, m.input_dim, generator=g, dtype=dtype) if m.input_dim else None
    return z, s


# -- Jacobians ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("input_dim", [0, K])
@pytest.mark.parametrize("name,kw", VARIANTS, ids=IDS)
def test_analytic_jacobian_equals_autograd(name, kw, input_dim):
    # oracle: autograd of step (STYLE §9 "every analytic Jacobian equals autograd's"); float64 rounding
    m = _perturbed(name, kw, input_dim=input_dim)
    z, s = _states(m)
    J = m.jacobian(z, s)
    assert J.shape == (6, m.latent_dim, m.latent_dim)  # LSTM: the full 2H x 2H [h, c] Jacobian
    assert torch.allclose(J, autograd_jacobian(m.step, z, s), rtol=0, atol=1e-12)


@pytest.mark.parametrize("name,kw", VARIANTS, ids=IDS)
def test_jacobian_is_differentiable_in_the_weights(name, kw):
    # gradient flossing back-propagates through jacobian(z): the graph must reach the weights
    m = _perturbed(name, kw)
    z, _ = _states(m)
    W = getattr(m, WEIGHT[name])
    (grad,) = torch.autograd.grad(m.jacobian(z).sum(), W)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name,kw", VARIANTS, ids=IDS)
def test_every_method_keeps_the_dtype(name, kw, dtype):
    m = _perturbed(name, kw, dtype=dtype, input_dim=K)
    z, s = _states(m, dtype=dtype)
    x = m.observe(z)
    outs = [m.step(z, s), m.jacobian(z, s), x, m.observation_pinv(), m.force(x), m.force(x, z)]
    assert all(o.dtype == dtype and torch.isfinite(o).all() for o in outs)
    assert m.step(z, s).shape == z.shape and x.shape == (6, N) and m.force(x, z).shape == z.shape


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name,kw", VARIANTS, ids=IDS)
def test_runs_on_cuda(name, kw):
    # no hard-coded CPU tensors: every method on a GPU agrees with the CPU
    m = _perturbed(name, kw, input_dim=K)
    z, s = _states(m)
    mc = _perturbed(name, kw, input_dim=K).cuda()
    zc, sc = z.cuda(), s.cuda()
    for a, b in [(m.step(z, s), mc.step(zc, sc)), (m.jacobian(z, s), mc.jacobian(zc, sc)),
                 (m.force(m.observe(z), z), mc.force(mc.observe(zc), zc))]:
        assert torch.allclose(a, b.cpu(), atol=1e-10)


# -- observation and forcing -------------------------------------------------------------------------------
@pytest.mark.parametrize("keep", [False, True])
@pytest.mark.parametrize("name,kw", VARIANTS, ids=IDS)
def test_observe_after_force_returns_the_data(name, kw, keep):
    # oracle: B B^+ = I for a full-row-rank B (Moore-Penrose), with and without a current state
    m = _perturbed(name, kw, keep_unobserved=keep)
    z, _ = _states(m)
    x = torch.randn(6, N, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    assert torch.allclose(m.observe(m.force(x)), x, atol=1e-10)
    assert torch.allclose(m.observe(m.force(x, z)), x, atol=1e-10)
    assert torch.allclose(m.force(x), x @ m.observation_pinv().T)  # z = None: min-norm B^+ x (c = 0)


@pytest.mark.parametrize("name,kw", VARIANTS, ids=IDS)
def test_identity_observation_reads_and_writes_the_first_units(name, kw):
    m = MODELS[name](N, UNITS, learn_observation=False, **kw).double()
    assert "B" not in dict(m.named_parameters())  # fixed, not learned
    z, _ = _states(m)
    assert torch.equal(m.observe(z), z[:, :N])  # x = first N units (of h, for the LSTM)
    x = torch.randn(4, N, dtype=torch.float64)
    zf = m.force(x)
    assert torch.equal(zf[:, :N], x) and torch.count_nonzero(zf[:, N:]) == 0  # "id-tf"


def test_lstm_force_cell_keep_and_zero():
    x = torch.randn(5, N, dtype=torch.float64)
    keep, zero = _perturbed("lstm", {}), _perturbed("lstm", {"force_cell": "zero"})
    z, _ = _states(keep, batch=5)
    H = keep.units
    assert keep.latent_dim == 2 * H == 2 * UNITS
    assert torch.equal(keep.force(x, z)[:, H:], z[:, H:])            # "keep": c carries memory
    assert torch.count_nonzero(keep.force(x)[:, H:]) == 0            # no current state: c = 0
    assert torch.count_nonzero(zero.force(x, z)[:, H:]) == 0         # "zero": c reset
    assert torch.equal(keep.force(x, z)[:, :H], zero.force(x, z)[:, :H])  # h does not depend on it
    # the c columns of the observation are structurally zero: c never reaches x
    z2 = z.clone()
    z2[:, H:] = 100.0
    assert torch.equal(keep.observe(z), keep.observe(z2))
    assert torch.count_nonzero(keep.observation_pinv()[H:]) == 0


def test_keep_unobserved_changes_only_the_observed_part():
    # oracle: I - B^+ B projects onto the null space of B; that part of z is untouched
    m = _perturbed("rnn", {}, keep_unobserved=True)
    z, _ = _states(m)
    x = torch.randn(6, N, dtype=torch.float64)
    P = torch.eye(UNITS, dtype=torch.float64) - torch.linalg.pinv(m.B) @ m.B
    assert torch.allclose(m.force(x, z) @ P.T, z @ P.T, atol=1e-10)


def test_ridge_inverse_approaches_the_pseudo_inverse():
    # (B^T B + r I)^{-1} B^T -> B^+ as r -> 0 (Tikhonov limit of the Moore-Penrose inverse)
    a, b = _perturbed("gru", {}, ridge=1e-10), _perturbed("gru", {})
    assert torch.allclose(a.observation_pinv(), b.observation_pinv(), atol=1e-6)
    assert not torch.allclose(_perturbed("gru", {}, ridge=1.0).observation_pinv(), b.observation_pinv())


# -- construction ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,kw", VARIANTS, ids=IDS)
def test_rebuild_from_hparams_reproduces_the_model(name, kw):
    m = _perturbed(name, kw, input_dim=K)
    params = set(inspect.signature(type(m)).parameters)
    assert set(m.hparams) == params  # every constructor argument, so Cls(**hparams) is the same model
    r = type(m)(**m.hparams).double()
    r.load_state_dict(m.state_dict())
    z, s = _states(m)
    assert torch.equal(r.step(z, s), m.step(z, s)) and torch.equal(r.jacobian(z, s), m.jacobian(z, s))
    assert torch.equal(r.force(m.observe(z), z), m.force(m.observe(z), z))


@pytest.mark.parametrize("name,kw", VARIANTS, ids=IDS)
def test_seed_fixes_the_initialisation(name, kw):
    cls = MODELS[name]
    torch.manual_seed(0)
    a = cls(N, UNITS, seed=4, input_dim=K, **kw).state_dict()
    torch.manual_seed(1)  # the global RNG must not matter
    b = cls(N, UNITS, seed=4, input_dim=K, **kw).state_dict()
    c = cls(N, UNITS, seed=5, input_dim=K, **kw).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_registry_and_default_sizes():
    assert MODELS == {"plrnn": PLRNN, "shplrnn": ShallowPLRNN, "rnn": RNN, "lstm": LSTM, "gru": GRU}
    for cls in MODELS.values():
        m = cls(N)
        size = m.hparams["units" if cls is LSTM else "latent_dim"]   # the constructor's size argument
        assert m.obs_dim == N and m.input_dim == 0 and size >= N
    assert LSTM(N).units == 50 and LSTM(N).latent_dim == 100  # state [h, c]


def test_lstm_names_its_units_and_its_state_apart():
    # the constructor takes H as ``units``; ``latent_dim`` is the state size 2H everywhere; a model file written
    # before issue 13 (hparams latent_dim = H) rebuilds the same model
    m = LSTM(N, 4, seed=1)
    assert (m.units, m.latent_dim, m.hparams["units"]) == (4, 8, 4) and "latent_dim" not in m.hparams
    old = {**m.hparams, "latent_dim": m.hparams["units"]}
    del old["units"]
    again = LSTM(**upgrade_hparams("lstm", old))
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), again.state_dict().values()))
    assert upgrade_hparams("plrnn", {"obs_dim": 3, "latent_dim": 9}) == {"obs_dim": 3, "latent_dim": 9}
    with pytest.raises(ConfigError, match="units"):
        LSTM(N, N - 1, learn_observation=False)   # fewer units than channels: a learned observation only
    assert RNN(120).latent_dim == 120  # default is max(100, N)


# -- dynamics oracles --------------------------------------------------------------------------------------
def test_contracting_rnn_has_the_fixed_point_spectrum():
    # g = 0.5, b = 0: z* = 0 is a stable fixed point with J* = W, so the spectrum is sorted log|eig W|
    # (digest §9.1 "stable fixed point: log|eig(D*)|"), all negative (digest §5(4): ≈ ln g + ½ ln(1 - i/M))
    m = RNN(2, 12, g=0.5, seed=1).double()
    spec = lyapunov_spectrum(m, n_steps=800, transient=200)
    exact = np.sort(np.log(np.abs(np.linalg.eigvals(m.W.detach().numpy()))))[::-1]
    assert spec.values.shape == (12,) and spec.values[0] < 0
    # QR bias of order 1/n_steps: measured 3.2e-4 .. 1.0e-3 (nets seeded 1..4, spectrum seeds 0..3; default and
    # MKL_CBWR=COMPATIBLE ATEN_CPU_CAPABILITY=default); bound 3e-3 = 3x the worst (was 0.01)
    assert np.allclose(spec.values, exact, rtol=0, atol=3e-3)
    assert spec.values[0] < np.log(0.5) + 0.3  # circular law: |eig W| <= g up to finite-M fluctuations


class _PreActivationRNN:
    """h_{t+1} = W tanh(h_t) + b, J = W diag(1 - tanh^2 h_t) ("Gradient flossing" Eq. 9), built here
    independently of dsrecon.models.rnn."""

    def __init__(self, W, b):
        self.W, self.b = W, b
        self.latent_dim = self.obs_dim = W.shape[0]

    def step(self, h, s=None):
        return torch.tanh(h) @ self.W.T + self.b

    def jacobian(self, h, s=None):
        return self.W * (1 - torch.tanh(h) ** 2).unsqueeze(-2)


def test_rnn_pre_and_post_activation_conventions_have_the_same_spectrum():
    # digest §2.3 [derived]: z = tanh(h) maps one orbit onto the other, and the Jacobian products differ
    # by two fixed boundary factors, so the exponents agree up to O(1/n_steps); g = 2 is chaotic (λ_1 > 0)
    m = RNN(2, 16, g=2.0, seed=0).double()
    with torch.no_grad():
        m.b.normal_(0, 0.1, generator=torch.Generator().manual_seed(1))
    pre = _PreActivationRNN(m.W.detach(), m.b.detach())
    h0 = torch.randn(1, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    post_spec = lyapunov_spectrum(m, z0=torch.tanh(h0), n_steps=2000, transient=200)
    pre_spec = lyapunov_spectrum(pre, z0=h0, n_steps=2000, transient=200)
    # The two orbits are computed with different roundings and this one is chaotic, so they decorrelate: the
    # agreement is statistical. Measured for this net: lambda_1 = 0.027 (default) / 0.029 (MKL_CBWR=COMPATIBLE
    # ATEN_CPU_CAPABILITY=default), max |difference| 1.5e-3 / 4.2e-4; over nets seeded 0..3 the difference is
    # <= 1.5e-3 (but seeds 1 and 3 are not chaotic). Bounds: lambda_1 > 0.01 (2.7x below), 5e-3 (3.3x the worst).
    assert post_spec.values[0] > 0.01  # chaotic: a non-trivial comparison
    assert np.allclose(post_spec.values, pre_spec.values, rtol=0, atol=5e-3)


def test_clipped_shplrnn_stays_bounded_from_a_huge_state():
    # Hess et al. 2023: relu(a + h2) - relu(a) ∈ [-|h2|, |h2|], so |z_t,i| <= |A_i|^t |z_0,i| + c_i/(1 - |A_i|)
    # with c = |W1| |h2| + |h1| (module docstring); the same weights without clipping expand.
    clipped = ShallowPLRNN(N, 10, hidden_dim=20, clipped=True, w_scale=20.0, a_init=0.8, seed=2).double()
    free = ShallowPLRNN(N, 10, hidden_dim=20, clipped=False, w_scale=20.0, a_init=0.8, seed=2).double()
    A, W1, h1, h2 = (p.detach() for p in (clipped.A, clipped.W1, clipped.h1, clipped.h2))
    c = W1.abs() @ h2.abs() + h1.abs()
    z0 = 1e6 * torch.randn(4, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    z, zf = z0, z0
    with torch.no_grad():
        for t in range(1, 301):
            z, zf = clipped.step(z), free.step(zf)
            assert (z.abs() <= A.abs() ** t * z0.abs() + c / (1 - A.abs()) + 1e-9).all()
    assert (z.abs() <= c / (1 - A.abs()) + 1e-6).all()  # inside the absorbing box
    # the unclipped twin is the linear map A + W1 D W2 far out: for these weights it runs away
    assert not torch.isfinite(zf).all() or zf.abs().max() > 1e12


def test_lstm_spectrum_has_2h_exponents_summing_to_mean_log_det():
    # Σ_i λ_i = <log|det J_t|> along the orbit (digest §9.1), exact for the full spectrum with a QR every
    # step; needs the full 2H x 2H Jacobian ("Gradient flossing" §3: 2N exponents for N LSTM units)
    m = _perturbed("lstm", {})
    z0 = torch.randn(1, m.latent_dim, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    spec = lyapunov_spectrum(m, z0=z0, n_steps=400, transient=50)
    assert spec.values.shape == (2 * UNITS,) and np.isfinite(spec.values).all()
    z, logdet = z0, 0.0
    with torch.no_grad():
        for t in range(450):
            if t >= 50:
                logdet += torch.linalg.slogdet(m.jacobian(z))[1].item()
            z = m.step(z)
    assert spec.values.sum() == pytest.approx(logdet / 400, abs=1e-8)


# -- bad input ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(MODELS))
def test_latent_smaller_than_obs_is_a_config_error(name):
    # with the identity observation only (x = the first N units); a learned B takes M < N (issue 22,
    # tests/test_sizes_from_data.py)
    size = "units" if name == "lstm" else "latent_dim"     # the LSTM's size argument is its H units
    with pytest.raises(ConfigError, match=rf"{size} \(2\) is smaller than obs_dim \(3\)"):
        MODELS[name](3, 2, learn_observation=False)


@pytest.mark.parametrize("name", list(MODELS))
def test_input_model_without_s_says_what_to_pass(name):
    m = MODELS[name](N, UNITS, input_dim=K)
    z = torch.zeros(2, m.latent_dim)
    with pytest.raises(InputError, match=r"pass s of shape \(batch, 2\)"):
        m.step(z)
    m0 = MODELS[name](N, UNITS)
    assert m0.step(z).shape == z.shape  # autonomous: s=None is fine


@pytest.mark.parametrize("name", ["rnn", "lstm", "gru"])
def test_jacobian_of_input_model_without_s_is_an_error(name):
    # for these the input enters the Jacobian (through the gates / the pre-activation)
    m = MODELS[name](N, UNITS, input_dim=K)
    with pytest.raises(InputError, match="external inputs"):
        m.jacobian(torch.zeros(2, m.latent_dim))


def test_unknown_options_are_config_errors():
    with pytest.raises(ConfigError, match="unknown init 'xavier'; use one of gaussian, orthogonal"):
        RNN(N, init="xavier")
    with pytest.raises(ConfigError, match="unknown force_cell 'drop'"):
        LSTM(N, force_cell="drop")
    with pytest.raises(ConfigError, match="hidden_dim must be a positive integer"):
        ShallowPLRNN(N, hidden_dim=0)


def test_orthogonal_init_has_every_singular_value_g():
    # g·Q with Q orthogonal: W^T W = g^2 I
    W = RNN(N, 20, g=0.7, init="orthogonal", seed=3).W.detach().double()
    assert torch.allclose(W.T @ W, 0.49 * torch.eye(20, dtype=torch.float64), atol=1e-5)
