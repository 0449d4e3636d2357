"""λ_max from data (Rosenstein et al. 1993) against known exponents of standard chaotic systems.

Every series is generated here (odeint at rtol = atol = 1e-10 for flows, the exact recursion for maps)
and cached per module. Reference values and their sources are next to each assertion.
"""
import math

import numpy as np
import pytest
import xarray as xr
from scipy.integrate import odeint

from dsrecon.errors import DataError
from dsrecon.lyapunov import MaxLyapunov, max_lyapunov, predictability_time


def _lorenz(sigma, rho, beta, *, dt=0.01, n=50_000, transient=2_000):
    def rhs(u, t):
        x, y, z = u
        return [sigma * (y - x), x * (rho - z) - y, x * y - beta * z]

    t = np.arange(transient + n) * dt
    return odeint(rhs, [1.0, 1.0, 20.0], t, rtol=1e-10, atol=1e-10)[transient:]


@pytest.fixture(scope="module")
def lorenz_paper():
    # sigma=16, rho=45.92, beta=4, dt=0.01: "How to train RNNs on chaotic data" App. A.4 (and Wolf et al. 1985)
    return _lorenz(16.0, 45.92, 4.0)


@pytest.fixture(scope="module")
def lorenz_classic():
    return _lorenz(10.0, 28.0, 8.0 / 3.0, n=30_000)


@pytest.fixture(scope="module")
def logistic():
    x = np.empty(20_100)
    x[0] = 0.1234
    for i in range(1, len(x)):
        x[i] = 4.0 * x[i - 1] * (1.0 - x[i - 1])
    x = x[100:]
    assert np.ptp(x[-1000:]) > 0.5  # did not collapse onto the fixed point 0 in floating point
    return x


@pytest.fixture(scope="module")
def henon():
    h = np.empty((21_000, 2))
    h[0] = (0.1, 0.1)
    for i in range(1, len(h)):
        h[i] = (1.0 - 1.4 * h[i - 1, 0] ** 2 + h[i - 1, 1], 0.3 * h[i - 1, 0])
    return h[1_000:]


# ------------------------------------------------------------------------------------ known values
def test_lorenz_paper_all_coordinates(lorenz_paper):
    r = max_lyapunov(lorenz_paper, 0.01)
    # 1.50 per time unit: Wolf, Swift, Swinney & Vastano 1985 (Physica D 16, 285), Table 1; quoted in
    # "How to train RNNs on chaotic data" App. A.4. Measured here: 1.38 (Rosenstein is biased low at 5e4 samples).
    assert r.value == pytest.approx(1.50, rel=0.15)
    assert r.emb_dim is None and r.delay is None and r.dim == 3    # observed channels, no embedding
    assert r.per_step == pytest.approx(r.value * 0.01)
    a, b = r.fit_range
    assert 0 <= a < b <= len(r.curve) and np.array_equal(r.lags, np.arange(len(r.curve)))


def test_lorenz_paper_x_coordinate_only(lorenz_paper):
    r = max_lyapunov(lorenz_paper[:, 0], 0.01)
    # 1.50 per time unit (Wolf et al. 1985, as above), from x alone with automatic delay and dimension.
    # Measured here: 1.45 (delay 10, m = 3).
    assert r.value == pytest.approx(1.50, rel=0.15)
    # Kennel, Brown & Abarbanel 1992 find embedding dimension 3 for the Lorenz-63 x coordinate
    assert r.emb_dim == 3


def test_lorenz_classic(lorenz_classic):
    r = max_lyapunov(lorenz_classic, 0.01)
    # 0.906 per time unit for sigma=10, rho=28, beta=8/3: Sprott, Chaos and Time-Series Analysis (2003),
    # App. A (Lorenz attractor: 0.9056). Measured here: 0.85.
    assert r.value == pytest.approx(0.906, rel=0.15)


def test_logistic_map(logistic):
    r = max_lyapunov(logistic)
    # lambda = ln 2 exactly for x -> 4x(1-x) (it is conjugate to the tent map of slope 2; Sprott 2003,
    # App. A: 0.6931). dt defaults to 1, so per time unit = per step. Measured here: 0.692.
    assert r.value == pytest.approx(math.log(2.0), rel=0.10)
    assert r.dt == 1.0 and r.value == r.per_step
    assert r.emb_dim == 1 and r.delay == 1   # x_{n+1} = f(x_n): m = 1 has no false neighbours by construction


@pytest.mark.parametrize("observed", ["x", "xy"])
def test_henon_map(henon, observed):
    x = henon[:, 0] if observed == "x" else henon
    r = max_lyapunov(x)
    # 0.419 per iteration for a=1.4, b=0.3: Sprott, Chaos and Time-Series Analysis (2003), App. A
    # (Hénon map: 0.41922). Measured here: 0.416 from x alone (m = 2) and from (x, y).
    assert r.value == pytest.approx(0.419, rel=0.15)


def test_periodic_signal_has_no_positive_exponent():
    t = np.arange(5_000)
    r = max_lyapunov(np.sin(2 * np.pi * t / 50.3))
    # a periodic orbit has lambda_max = 0 (neighbours neither converge nor diverge); compare ln 2 per
    # step of the logistic map above. Measured here: |lambda| < 1e-3 per step.
    assert abs(r.per_step) < 0.01


def test_agrees_with_nolds_given_the_same_choices(lorenz_paper):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # nolds 0.6.2 imports the deprecated pkg_resources
        pytest.importorskip("setuptools")
        nolds = pytest.importorskip("nolds")
    x = lorenz_paper[:4_000, 0]
    r = max_lyapunov(x, 0.01)
    a, b = r.fit_range
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = nolds.lyap_r(x, emb_dim=r.emb_dim, lag=r.delay, min_tsep=r.theiler, trajectory_len=b, fit_offset=a,
                           fit="poly")
    # nolds.lyap_r is an independent implementation of the same estimator (Rosenstein et al. 1993), per step.
    # Its pairs differ slightly (it drops the last trajectory_len vectors): measured 2-5 % apart at 4000
    # samples, 0.2 % at 20 000 (benchmarks/bench_lyapunov.py).
    assert r.per_step == pytest.approx(ref, rel=0.06)


# ----------------------------------------------------------------------------- result and helpers
def test_predictability_time_and_result_object(lorenz_paper):
    r = max_lyapunov(lorenz_paper[:20_000], 0.01)
    assert isinstance(r, MaxLyapunov) and r.method == "rosenstein"
    # tau_pred = ln 2 / lambda_max per step ("How to train RNNs on chaotic data" §4.1, Eq. 17)
    assert r.predictability_steps == pytest.approx(math.log(2.0) / r.per_step)
    assert predictability_time(r.per_step) == pytest.approx(r.predictability_steps)
    assert predictability_time(0.0135) == pytest.approx(51.34, abs=0.01)   # ln 2 / 0.0135 = 51.344
    text = str(r)
    assert "per time unit" in text and "tau_pred" in text
    # the fit region is where d(k) grows: its slope is the exponent and the line passes through the curve
    a, b = r.fit_range
    assert np.max(np.abs(r.intercept + r.per_step * r.lags[a:b] - r.curve[a:b])) < 0.5

    from matplotlib.figure import Figure

    ax = Figure().subplots()
    assert r.plot(ax=ax) is ax
    assert len(ax.lines) == 2


def test_dataset_input_equals_array(lorenz_paper):
    x = lorenz_paper[:20_000]
    ds = xr.Dataset({"x": (("time", "dim"), x)}, coords={"dim": ["x", "y", "z"]}, attrs={"dt": 0.01})
    a, b = max_lyapunov(ds), max_lyapunov(x, 0.01)
    assert a.dt == 0.01
    assert a.value == b.value and a.fit_range == b.fit_range
    assert np.array_equal(a.curve, b.curve)


def test_explicit_parameters_are_used(lorenz_paper):
    r = max_lyapunov(lorenz_paper[:20_000, 0], 0.01, emb_dim=4, delay=8, theiler=50, max_horizon=400,
                     fit_range=(30, 200), n_ref=2_000)
    assert (r.emb_dim, r.delay, r.theiler, r.fit_range) == (4, 8, 50, (30, 200))
    assert len(r.curve) == 401 and r.n_pairs <= 2_000
    assert r.value == pytest.approx(1.50, rel=0.25)   # Wolf et al. 1985; a hand-picked region, loose check


# ------------------------------------------------------------------------------------- bad input
def test_nan_is_reported_with_count_and_index(lorenz_paper):
    x = lorenz_paper[:5_000].copy()
    x[123, 1] = np.nan
    x[456, 0] = np.inf
    with pytest.raises(DataError, match=r"2 NaN/inf values \(first at time index 123\)"):
        max_lyapunov(x, 0.01)


def test_too_short():
    with pytest.raises(DataError, match="short.*500 samples, need at least 1000"):
        max_lyapunov(np.random.default_rng(0).random(500))


def test_too_short_after_embedding_or_in_periods(lorenz_paper):
    with pytest.raises(DataError, match="short"):
        max_lyapunov(lorenz_paper[:1_200, 0], 0.01, emb_dim=3, delay=150)   # 900 vectors after embedding
    with pytest.raises(DataError, match="short.*Theiler windows"):
        max_lyapunov(lorenz_paper[:2_000], 0.01, theiler=500)               # 4 windows, need 10


def test_constant_and_wrong_shape():
    with pytest.raises(DataError, match="constant"):
        max_lyapunov(np.full(2_000, 3.0))
    with pytest.raises(DataError, match="shape"):
        max_lyapunov(np.zeros((2_000, 3, 2)))
    with pytest.raises(DataError, match="x.T"):
        max_lyapunov(np.random.default_rng(0).random((3, 5_000)))


def test_white_noise_has_no_linear_region():
    with pytest.raises(DataError, match="noise"):
        max_lyapunov(np.random.default_rng(0).standard_normal((5_000, 3)))


@pytest.mark.parametrize("lam", [-0.1, 0.0, float("nan")])
def test_predictability_time_needs_positive_exponent(lam):
    with pytest.raises(DataError, match="set tau by hand"):
        predictability_time(lam)
