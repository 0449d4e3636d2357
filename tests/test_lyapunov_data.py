"""λ_max from data (Rosenstein et al. 1993) against known exponents of standard chaotic systems.

Every series is generated here (odeint at rtol = atol = 1e-10 for flows, the exact recursion for maps)
and cached per module. Reference values and their sources are next to each assertion.
"""
import math

import numpy as np
import pytest
import xarray as xr
from scipy.integrate import odeint

from dsrecon.errors import ConfigError, DataError
from dsrecon.dimension import CorrelationDimension, correlation_dimension
from dsrecon.lyapunov import predictability_time
from dsrecon.maxlyap import MaxLyapunov, max_lyapunov


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
def rossler_paper():
    # a=0.15, b=0.2, c=10, dt=0.1: "How to train RNNs on chaotic data" App. A.4; 20 000 samples
    def rhs(u, t):
        x, y, z = u
        return [-y - z, x + 0.15 * y, 0.2 + z * (x - 10.0)]

    t = np.arange(2_000 + 20_000) * 0.1
    return odeint(rhs, [1.0, 1.0, 0.0], t, rtol=1e-10, atol=1e-10)[2_000:]


def _noisy(x, level, seed=9):
    """x plus Gaussian observation noise with standard deviation level * std(x)."""
    return x + level * np.std(x) * np.random.default_rng(seed).standard_normal(x.shape)


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
    # "How to train RNNs on chaotic data" App. A.4. Measured here: 1.38 (Rosenstein is biased low at 5e4 samples);
    # from the initial states (1, 1, 20), (2, -1, 25), (-3, 0.5, 30): -7.8 % .. -6.1 %. 15 % is 1.9x the worst.
    assert r.value == pytest.approx(1.50, rel=0.15)
    assert r.emb_dim is None and r.delay is None and r.dim == 3    # observed channels, no embedding
    assert r.per_step == pytest.approx(r.value * 0.01)
    a, b = r.fit_range
    assert 0 <= a < b <= len(r.curve) and np.array_equal(r.lags, np.arange(len(r.curve)))


def test_lorenz_paper_x_coordinate_only(lorenz_paper):
    # issue 3 target: 20 000 samples of x alone, default settings -> 1.50 +- 10 % (Wolf et al. 1985, as
    # above), automatic delay and dimension. Measured here: 1.40 (-6.4 %; delay 10, m = 3); from the
    # three initial states above: -6.4 % .. -2.0 %, so the 10 % is 1.6x the worst (a biased estimator).
    r = max_lyapunov(lorenz_paper[:20_000, 0], 0.01)
    assert r.value == pytest.approx(1.50, rel=0.10)
    assert r.chaotic and "factor" in r.reason
    # Kennel, Brown & Abarbanel 1992 find embedding dimension 3 for the Lorenz-63 x coordinate
    assert r.emb_dim == 3


def test_lorenz_classic(lorenz_classic):
    r = max_lyapunov(lorenz_classic, 0.01)
    # 0.906 per time unit for sigma=10, rho=28, beta=8/3: Sprott, Chaos and Time-Series Analysis (2003),
    # App. A (Lorenz attractor: 0.9056). Measured here: 0.85; from three initial states -7.9 % .. -6.1 % (15 % = 1.9x).
    assert r.value == pytest.approx(0.906, rel=0.15)


def test_lorenz_classic_x_coordinate_only(lorenz_classic):
    # issue 3 target: 20 000 samples of x, default settings -> 0.906 +- 10 % (Sprott 2003, App. A: 0.9056).
    # Measured here: 0.883 (-2.6 %); from the initial states (1, 1, 20), (2, -1, 25), (-3, 0.5, 30): -2.6 % .. -1.6 %.
    # Bound 8 % (3x the worst; was the 10 %).
    r = max_lyapunov(lorenz_classic[:20_000, 0], 0.01)
    assert r.value == pytest.approx(0.906, rel=0.08)


def test_rossler_paper_x_coordinate_only_within_30_percent(rossler_paper):
    # 0.090 per time unit: Rosenstein et al. 1993 (quoted in "How to train RNNs on chaotic data" App. A.4);
    # QR on the true equations gives 0.087 (scipy variational integration, 3000 time units, this session).
    # Measured here: 0.066 (-26 %, Rosenstein) and 0.074 (-18 %, Kantz): both estimators are biased low on
    # this attractor at 2 000 time units (the band is thin across its unstable direction, so pairs stop
    # separating exponentially after ~3 e-foldings). The 15 % target is missed; see the next test.
    for method in ("rosenstein", "kantz"):
        r = max_lyapunov(rossler_paper[:, 0], 0.1, method=method)
        assert r.value == pytest.approx(0.090, rel=0.30)
        assert r.value < 0.090 and r.chaotic


@pytest.mark.xfail(strict=True, reason="issue 3 target missed: measured 0.066 (-26 %); see the test above")
def test_rossler_paper_target_15_percent(rossler_paper):
    # the issue 3 target (0.090 +- 15 %, Rosenstein et al. 1993) with default settings. strict: when it starts
    # to pass, the estimator improved and this marker must go.
    assert max_lyapunov(rossler_paper[:, 0], 0.1).value == pytest.approx(0.090, rel=0.15)


@pytest.mark.parametrize("which, ref", [("paper", 1.50), ("classic", 0.906)])
def test_five_percent_observation_noise(lorenz_paper, lorenz_classic, which, ref):
    # issue 3 target: 5 % Gaussian observation noise on 20 000 samples of x -> within 25 %. References as above
    # (Wolf et al. 1985: 1.50; Sprott 2003: 0.9056). Kantz's method (average distance over an eps-neighbourhood
    # before the log) is robust to the noise: measured -3.2 % (paper) and +0.5 % (classic); from three initial states
    # -1.9 % .. +0.9 % (paper) and +5.0 % .. +10.8 % (classic). Rosenstein's, the default, is biased low by the
    # noise floor: measured -22 % .. -16 %, inside the target but only just.
    x = (lorenz_paper if which == "paper" else lorenz_classic)[:20_000, 0]
    kantz = max_lyapunov(_noisy(x, 0.05), 0.01, method="kantz")
    assert kantz.value == pytest.approx(ref, rel=0.25)
    assert kantz.method == "kantz" and kantz.eps > 0 and kantz.chaotic
    rosenstein = max_lyapunov(_noisy(x, 0.05), 0.01)
    assert ref * 0.7 < rosenstein.value < kantz.value      # noise biases Rosenstein low (measured 0.76-0.80 ref)


def test_logistic_map(logistic):
    r = max_lyapunov(logistic)
    # lambda = ln 2 exactly for x -> 4x(1-x) (it is conjugate to the tent map of slope 2; Sprott 2003,
    # App. A: 0.6931). dt defaults to 1, so per time unit = per step. Measured here: 0.692 (-0.15 %); from
    # x0 = 0.1234, 0.2345, 0.3456, 0.4321, 0.6789 the error is -0.15 % .. +0.10 %: bound 0.5 % (3x the worst; was
    # 10 %). The series is exact IEEE recursion in Python floats, the same on every CPU.
    assert r.value == pytest.approx(math.log(2.0), rel=0.005)
    assert r.dt == 1.0 and r.value == r.per_step
    assert r.emb_dim == 1 and r.delay == 1   # x_{n+1} = f(x_n): m = 1 has no false neighbours by construction


@pytest.mark.parametrize("observed", ["x", "xy"])
def test_henon_map(henon, observed):
    x = henon[:, 0] if observed == "x" else henon
    r = max_lyapunov(x)
    # 0.419 per iteration for a=1.4, b=0.3: Sprott, Chaos and Time-Series Analysis (2003), App. A
    # (Hénon map: 0.41922). Measured here: 0.416 (-0.7 %) from x alone (m = 2) and from (x, y); from 5 initial
    # points ((0.1, 0.1), (0.2, 0), (-0.3, 0.1), (0.5, -0.1), (0, 0)) the error is -1.2 % .. -0.13 %: bound 4 %
    # (3x the worst; was 15 %). Exact IEEE recursion, the same on every CPU.
    assert r.value == pytest.approx(0.419, rel=0.04)


def test_periodic_signal_has_no_positive_exponent():
    t = np.arange(5_000)
    r = max_lyapunov(np.sin(2 * np.pi * t / 50.3))
    # a periodic orbit has lambda_max = 0 (neighbours neither converge nor diverge); compare ln 2 per
    # step of the logistic map above. Measured here: |lambda| < 1e-3 per step.
    assert abs(r.per_step) < 0.01
    # and it is flagged: distances grow by less than a factor e (measured 1.9)
    assert not r.chaotic and "factor" in r.reason and "NOT chaotic" in str(r)
    with pytest.raises(DataError, match=r"does not look chaotic.*pass --tau"):
        predictability_time(r)


@pytest.mark.parametrize("method", ["rosenstein", "kantz"])
def test_noisy_limit_cycle_is_not_chaotic(method):
    # a periodic signal with harmonics plus 5 % noise: the noise makes neighbours separate at once (lag 0 -> 1)
    # but not exponentially; the flag must stay off (lambda_max = 0 for a limit cycle)
    t = np.arange(20_000) * 0.05
    x = _noisy(np.sin(t) + 0.5 * np.sin(2 * t + 1.0) + 0.2 * np.cos(3 * t), 0.05)
    r = max_lyapunov(x, 0.05, method=method)
    assert not r.chaotic, str(r)


def test_bootstrap_stderr_matches_the_spread_between_segments(lorenz_paper):
    # the block bootstrap measures how much the estimate depends on which stretch of the orbit was observed:
    # two disjoint 25 000-sample segments must agree within their combined error bars (measured: 1.44 +- 0.04
    # and 1.43 +- 0.03 per time unit; 3 seeds of 20 000 samples gave 1.42, 1.47, 1.50, i.e. spread 0.04)
    a = max_lyapunov(lorenz_paper[:25_000, 0], 0.01)
    b = max_lyapunov(lorenz_paper[25_000:, 0], 0.01)
    assert 0.005 < a.stderr / a.value < 0.1 and 0.005 < b.stderr / b.value < 0.1
    assert abs(a.value - b.value) < 4 * math.hypot(a.stderr, b.stderr)
    # the neighbouring reference points are strongly correlated, so fewer of them hardly change the error
    # (it is set by the length of the series, not by n_ref)
    few = max_lyapunov(lorenz_paper[:25_000, 0], 0.01, n_ref=1_000, fit_range=a.fit_range)
    assert 0.5 < few.stderr / a.stderr < 3
    assert math.isnan(max_lyapunov(lorenz_paper[:25_000, 0], 0.01, n_boot=0).stderr)


def test_kantz_and_rosenstein_agree_without_noise(lorenz_paper):
    # two estimators of the same exponent (Kantz 1994; Rosenstein et al. 1993; reference 1.50, Wolf et al.
    # 1985): measured 1.40 (Rosenstein) and 1.59 (Kantz) on this orbit; from three initial states Kantz is
    # +6.3 % .. +7.9 % off 1.50 and +8.5 % .. +13.6 % off Rosenstein (deterministic data: odeint at 1e-10, no torch)
    x = lorenz_paper[:20_000, 0]
    a, b = max_lyapunov(x, 0.01), max_lyapunov(x, 0.01, method="kantz")
    assert b.value == pytest.approx(1.50, rel=0.10) and b.value == pytest.approx(a.value, rel=0.15)
    assert max_lyapunov(x, 0.01, method="kantz", eps=4 * b.eps).eps == pytest.approx(4 * b.eps)


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
    # method="nolds": nolds' divergence curve with dsrecon's embedding, horizon and fit region
    via = max_lyapunov(x, 0.01, method="nolds")
    assert via.method == "nolds" and math.isnan(via.stderr)
    assert via.value == pytest.approx(r.value, rel=0.10)


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
    ds = xr.Dataset({"x": (("time", "channel"), x)}, coords={"channel": ["x", "y", "z"]}, attrs={"dt": 0.01})
    a, b = max_lyapunov(ds), max_lyapunov(x, 0.01)
    assert a.dt == 0.01
    assert a.value == b.value and a.fit_range == b.fit_range
    assert np.array_equal(a.curve, b.curve)


def test_explicit_parameters_are_used(lorenz_paper):
    r = max_lyapunov(lorenz_paper[:20_000, 0], 0.01, emb_dim=4, delay=8, theiler=50, max_horizon=400,
                     fit_range=(30, 200), n_ref=2_000)
    assert (r.emb_dim, r.delay, r.theiler, r.fit_range) == (4, 8, 50, (30, 200))
    assert len(r.curve) == 401 and r.n_pairs <= 2_000
    # Wolf et al. 1985; a hand-picked region: from three initial states -8.0 % .. -3.3 %, so 25 % = 3x the worst
    assert r.value == pytest.approx(1.50, rel=0.25)


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
    # white noise: neighbours are as far apart as any two points after one step; no exponential growth
    r = max_lyapunov(np.random.default_rng(0).standard_normal((5_000, 3)))
    assert not r.chaotic and "noise" in r.reason
    with pytest.raises(DataError, match="pass --tau"):
        predictability_time(r)


@pytest.mark.parametrize("lam", [-0.1, 0.0, float("nan")])
def test_predictability_time_needs_positive_exponent(lam):
    with pytest.raises(DataError, match="set tau by hand: pass --tau"):
        predictability_time(lam)


def test_bad_options():
    x = np.random.default_rng(0).random(2_000)
    with pytest.raises(ConfigError, match="method must be one of rosenstein, kantz, nolds"):
        max_lyapunov(x, method="wolf")
    with pytest.raises(ConfigError, match="eps is the neighbourhood radius of method='kantz'"):
        max_lyapunov(x, eps=0.1)
    with pytest.raises(ConfigError, match="eps must be a positive number"):
        max_lyapunov(x, method="kantz", eps=-1)


def test_too_short_for_the_embedding_names_the_samples_needed(lorenz_paper):
    with pytest.raises(DataError, match=r"900 state vectors after delay embedding \(m=3, delay=150\).*1300 samples"):
        max_lyapunov(lorenz_paper[:1_200, 0], 0.01, emb_dim=3, delay=150)
    with pytest.raises(DataError, match=r"cannot hold one delay vector.*need at least"):
        max_lyapunov(lorenz_paper[:1_200, 0], 0.01, emb_dim=3, delay=700)


# --------------------------------------------------------------------------- correlation dimension
def test_correlation_dimension_of_lorenz_from_x(lorenz_classic):
    # D2 = 2.05 +- 0.01 for Lorenz (sigma=10, rho=28, beta=8/3): Grassberger & Procaccia, Physica D 9, 189
    # (1983). Measured here: 2.05 at m = 7..10 (5000 points of 20 000 samples).
    r = correlation_dimension(lorenz_classic[:20_000, 0], emb_dims=[1, 3, 5, 7])
    assert isinstance(r, CorrelationDimension)
    assert r.value == pytest.approx(2.05, abs=0.15)
    assert r.per_dim[0] == pytest.approx(1.0, abs=0.1)       # m = 1: a line segment
    assert r.C.shape == (4, len(r.radii)) and r.slopes.shape == (4, len(r.radii) - 1)
    assert np.all(np.diff(r.C, axis=1) >= 0)                 # C(r) is a cumulative count


def test_correlation_dimension_of_henon_and_of_noise(henon):
    # Henon map (a=1.4, b=0.3): D2 = 1.21 +- 0.01 (Grassberger & Procaccia 1983). Measured: 1.22 from x (m = 2..4).
    r = correlation_dimension(henon[:, 0], emb_dims=[2, 3, 4])
    assert r.value == pytest.approx(1.21, abs=0.1)
    # i.i.d. uniform points in the unit cube fill it: D2 = 3 (edge effects pull it slightly low: measured 2.90)
    u = np.random.default_rng(0).random((20_000, 3))
    assert correlation_dimension(u).value == pytest.approx(3.0, abs=0.2)
    # a sine with an irrational period is a closed curve: D2 = 1
    t = np.arange(20_000)
    assert correlation_dimension(np.sin(t / math.pi), emb_dims=[2, 3]).value == pytest.approx(1.0, abs=0.1)


def test_correlation_dimension_plot_and_errors(henon):
    from matplotlib.figure import Figure

    r = correlation_dimension(henon, n_points=2_000)
    ax = Figure().subplots()
    assert r.plot(ax=ax) is ax and "D2 =" in str(r)
    with pytest.raises(DataError, match="NaN"):
        correlation_dimension(np.r_[henon[:2_000, 0], np.nan])
    with pytest.raises(DataError, match="constant"):
        correlation_dimension(np.ones(3_000))
    with pytest.raises(ConfigError, match="emb_dims"):
        correlation_dimension(henon[:, 0], emb_dims=[0])
