"""τ from real recordings: :func:`dsrecon.tau.forcing_interval` (issue 15, part 1).

Oracles and bands
-----------------
- Recordings of "On the difficulty of learning chaotic dynamics with RNNs" (the sparse-forcing paper):
  τ_pred = 41 steps (EEG) and 43 steps (weather), from λ_max = 1/58.82 and 1/62.5 per step
  (/work/shared/data/chaosrnn/README.md). Band: a factor 2 either way, [τ_pred / 2, 2 τ_pred]. Why 2:
  the paper's own numbers for the same recordings spread that much — its text gives EEG λ_max = 0.007
  per sample, i.e. τ_pred = 33 steps (digest §8.3), against 41 in its code; the best τ it reports per model
  is 30–100 steps for EEG and 30–50 for weather (README table), i.e. 0.7–2.4 × τ_pred; and its Lorenz scan
  (τ = 5 too small, 30 best, 200 too large around τ_pred = 46) resolves τ no finer than that. Our own
  sampling spread is smaller: weather λ_max ± 2 bootstrap s.e. gives τ in [28, 35] steps; EEG's fallback
  moves from 62 (64 bins) to 80 (32 bins) with the histogram's bin count.
- Simulated systems: τ_true = ln 2 / (λ_ref · dt) with λ_ref and its source from the dataset card
  (``dsrecon.data.card(name)["reference"]``). Same factor-2 band, on the median over 3 noise seeds.
  Rosenstein's λ is biased low by observation noise (≈ 20–25 % at 5 % noise, max_lyapunov's docstring),
  so τ reads high by ≈ 25–35 %; the factor 2 leaves room for that plus the seed-to-seed spread measured
  here (Lorenz, 2 000 samples, 10 % noise: 32–63 steps over seeds 0–2).
- Lorenz-96 (never used to set any constant of the estimator): λ_max = 0.99 per time unit for N = 6,
  F = 8, measured for this test by the two-trajectory Benettin method (RK4, h = 0.01, renormalised every
  0.1 time units; 1.01 over 400 and 0.96 over 1000 time units); see ``test_lorenz96_reference_exponent``
  (slow) which recomputes it.
"""
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.integrate import odeint

from dsrecon import data as data_mod
from dsrecon.errors import DataError
from dsrecon.divergence import curve_rise
from dsrecon.tau import ForcingInterval, forcing_interval

CHAOSRNN = Path("/work/shared/data/chaosrnn")
LN2 = math.log(2.0)


def _recording(name):
    path = CHAOSRNN / name
    if not path.exists():
        pytest.skip(f"{path} is absent (a copy of DurstewitzLab/ChaosRNN's recording; tests never download it)")
    return np.load(path)


@pytest.fixture(scope="module")
def eeg():
    return forcing_interval(_recording("tde_eegf.npy"))


@pytest.fixture(scope="module")
def weather():
    return forcing_interval(_recording("tde_temperature_MoreSmoothedNoYearShort.npy"))


def _in_band(tau, tau_ref, factor=2.0):
    return tau_ref / factor <= tau <= tau_ref * factor


# ------------------------------------------------------------------------------------------ recordings
def test_eeg_gets_a_forcing_interval_near_the_papers(eeg):
    # paper: tau_pred = 41 steps (README); measured here: 62 (first AMI minimum, median of 10 channels)
    assert isinstance(eeg, ForcingInterval)
    assert _in_band(eeg.tau_steps, 41), str(eeg)
    # the 10-d embedding's divergence curve rises by only a factor 2.6 (< e): the fallback, said so
    assert eeg.source == "mutual_information" and "no clear exponential divergence" in eeg.reason
    assert "\n" not in eeg.reason and "mutual information" in str(eeg)


def test_eeg_fit_region_stays_within_the_initial_rise(eeg):
    # before issue 15 the line was fitted over lags 0..2032, across the plateau (slope 0.00022 per step)
    lam = eeg.lam
    B, P, i0 = curve_rise(lam.curve)
    saturated = i0 + int(np.argmax(lam.curve[i0:] >= B + 0.9 * (P - B)))   # 413 here
    a, b = lam.fit_range
    assert i0 <= a < b - 1 and b - 1 <= saturated, (lam.fit_range, saturated)
    assert not lam.chaotic and lam.per_step > 0.001          # the slope of the rise, flagged weak


def test_eeg_plot_shows_the_fit_region(eeg):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    ax = eeg.lam.plot()
    spans = [p for p in ax.patches]                         # axvspan of the fit region
    assert spans and "not chaotic" in ax.get_title()


def test_weather_uses_lambda_max_near_the_papers(weather):
    # paper: tau_pred = 43 steps; measured here: 31 (lambda_max 0.0223 +- 0.0012 per step, lags 6..37)
    assert weather.source == "lambda_max", str(weather)
    assert _in_band(weather.tau_steps, 43)
    lo, hi = weather.tau_range                             # ln2 / (lambda +- 2 s.e.): [28, 35]
    assert lo <= weather.tau_steps <= hi and _in_band(lo, 43) and _in_band(hi, 43)
    assert weather.tau_steps == round(LN2 / weather.lam.per_step)


# -------------------------------------------------------------------------------------- refusals
@pytest.mark.parametrize("shape", [(5_000, 3), (3_000,)], ids=["3-channel", "1-channel-delay-embedded"])
def test_white_noise_is_refused_in_one_line(shape):
    # one channel is delay-embedded, and the embedding windows of neighbours overlap for the first m lags: the
    # divergence curve rises there, and before the structure test ran first Rosenstein read it as chaos (tau 2)
    x = np.random.default_rng(0).standard_normal(shape)
    with pytest.raises(DataError, match=r"no temporal structure.*white noise.*pass --tau N") as err:
        forcing_interval(x)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("shape", [(3_000,), (3_000, 2)])
def test_constant_series_is_refused_in_one_line(shape):
    with pytest.raises(DataError, match=r"constant.*pass --tau N") as err:
        forcing_interval(np.full(shape, 1.5))
    assert "\n" not in str(err.value)


# ------------------------------------------------------------------------------- simulated, noisy
def _simulated(name, noise, n, seed):
    ds = data_mod.load(name, noise=noise, n_train=n, n_test=200, seed=seed, cache=False)
    train, _ = data_mod.train_test_split(ds)
    ref = data_mod.card(name)["reference"]
    return data_mod.as_array(train), float(ds.attrs["dt"]), LN2 / (ref["lambda_max"] * float(ds.attrs["dt"]))


def _median_tau(name, noise, n, seeds=(0, 1, 2)):
    taus, tau_true = [], None
    for seed in seeds:
        x, dt, tau_true = _simulated(name, noise, n, seed)
        taus.append(forcing_interval(x, dt).tau_steps)
    return float(np.median(taus)), tau_true, taus


def test_noisy_short_lorenz():
    # Lorenz (sigma=16, rho=45.92, beta=4, dt=0.01), lambda_ref = 1.5 (card: Wolf et al. 1985): tau_true = 46.2
    # measured here: seeds 0-2 give 63, 32, 36 steps (median 36)
    tau, tau_true, taus = _median_tau("lorenz", 0.10, 2_000)
    assert _in_band(tau, tau_true), (taus, tau_true)


@pytest.mark.slow
@pytest.mark.parametrize("name, factor", [
    ("lorenz", 2.0), ("mackey-glass", 2.0),
    # Duffing: the card notes that Rosenstein reads 0.083 (not 0.128) on clean data, tau x 1.54 already;
    # with noise measured 52-79 steps against 31.9 (<= 2.5 x)
    ("duffing", 2.5),
    # Rossler: Rosenstein reads 15-25 % low on clean data (max_lyapunov's docstring); measured 133-161
    ("rossler", 2.0)])
@pytest.mark.parametrize("noise, n", [(0.05, 2_000), (0.05, 10_000), (0.20, 2_000), (0.20, 10_000)])
def test_noisy_simulated_systems(name, factor, noise, n):
    if name == "rossler" and noise == 0.20:
        pytest.xfail("known limitation: 20 % noise removes Rossler's exponential region; the AMI fallback "
                     "returns a quarter rotation period (measured 12-15 steps) against tau_true = 80.6")
    tau, tau_true, taus = _median_tau(name, noise, n)
    assert _in_band(tau, tau_true, factor), (taus, tau_true)


# ------------------------------------------------------------------------ a flow never tuned on
def _lorenz96(x, t, F=8.0):
    return (np.roll(x, -1) - np.roll(x, 2)) * np.roll(x, 1) - x + F


def test_lorenz96_gets_a_sensible_tau():
    # N = 6, F = 8, sampled every 0.05; lambda_max = 0.99 per time unit (module docstring): tau_true = 14.0 steps.
    # measured here: 15 (5 % noise, seed 0; 14-15 over seeds 0-2, 15-18 at 20 % noise)
    rng = np.random.default_rng(0)
    t = np.arange(1_000 + 4_000) * 0.05
    x = odeint(_lorenz96, 8.0 + rng.standard_normal(6), t, rtol=1e-8, atol=1e-8)[1_000:]
    x = x + 0.05 * x.std(axis=0) * rng.standard_normal(x.shape)
    fi = forcing_interval(x, 0.05)
    assert fi.source == "lambda_max" and _in_band(fi.tau_steps, LN2 / (0.99 * 0.05)), str(fi)


@pytest.mark.slow
def test_lorenz96_reference_exponent():
    # the oracle of the test above, recomputed: two-trajectory Benettin, RK4 h = 0.01, renormalised every 0.1
    def rk4(x, h):
        k1 = _lorenz96(x, 0)
        k2 = _lorenz96(x + h / 2 * k1, 0)
        k3 = _lorenz96(x + h / 2 * k2, 0)
        return x + h / 6 * (k1 + 2 * k2 + 2 * k3 + _lorenz96(x + h * k3, 0))

    rng = np.random.default_rng(0)
    x = 8.0 + 0.1 * rng.standard_normal(6)
    for _ in range(5_000):
        x = rk4(x, 0.01)
    d0 = 1e-8
    y = x + d0 * rng.standard_normal(6) / math.sqrt(6)
    total, n = 0.0, 40_000
    for i in range(n):
        x, y = rk4(x, 0.01), rk4(y, 0.01)
        if i % 10 == 9:
            d = np.linalg.norm(y - x)
            total += math.log(d / d0)
            y = x + (y - x) * d0 / d
    assert total / (n * 0.01) == pytest.approx(0.99, rel=0.1)
