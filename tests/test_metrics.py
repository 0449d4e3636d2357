"""Metrics against hand-computed cases, independent implementations and invariances."""
import math

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter1d

import dsrecon as ds
from dsrecon.errors import DataError
from dsrecon.metrics import d_stsp, hellinger_distance, power_spectrum_correlation, score_all


def henon(n, x0=0.1, y0=0.1):
    out = np.empty((n, 2))
    x, y = x0, y0
    for i in range(n + 100):
        x, y = 1 - 1.4 * x * x + y, 0.3 * x
        if i >= 100:
            out[i - 100] = x, y
    return out


@pytest.fixture(scope="module")
def h():
    return henon(30_000)


def test_trajectory_against_itself(h):
    # identical distributions and spectra: KL = 0, Hellinger = 0, correlation = 1 (definitions)
    assert d_stsp(h, h).value == pytest.approx(0.0, abs=1e-12)
    assert hellinger_distance(h, h).value == pytest.approx(0.0, abs=1e-7)
    assert power_spectrum_correlation(h, h).value == pytest.approx(1.0, abs=1e-9)


def test_very_different_signals_score_badly(h):
    t = np.arange(30_000)
    other = np.stack([np.sin(0.05 * t), np.cos(0.05 * t)], axis=1)
    assert d_stsp(h, other).value > 1.0
    assert hellinger_distance(h, other).value > 0.5
    assert power_spectrum_correlation(h, other).value < 0.5


def test_d_stsp_hand_computed_1d():
    # box_margin 0: box [0, 1], 2 bins [0, .5), [.5, 1]; true counts (2, 1), generated (1, 3); alpha 0.
    true = np.array([0.0, 0.2, 1.0])
    gen = np.array([0.1, 0.7, 0.9, 1.0])
    expected = 2 / 3 * math.log((2 / 3) / (1 / 4)) + 1 / 3 * math.log((1 / 3) / (3 / 4))
    s = d_stsp(true, gen, n_bins=2, alpha=0.0, box_margin=0.0)
    assert s.value == pytest.approx(expected, rel=1e-12)
    assert (s.n_used, s.n_total) == (4, 4)


def test_d_stsp_laplace_smoothing_hand_computed():
    # one empty generated cell: alpha keeps KL finite. true (1, 1), gen (2, 0), alpha 0.5, 2 cells:
    # p_true = (1.5, 1.5)/3, p_gen = (2.5, 0.5)/3
    s = d_stsp([0.0, 1.0], [0.1, 0.2], n_bins=2, alpha=0.5, box_margin=0.0)
    expected = 0.5 * math.log(0.5 / (2.5 / 3)) + 0.5 * math.log(0.5 / (0.5 / 3))
    assert s.value == pytest.approx(expected, rel=1e-12)


def test_points_outside_the_box_are_dropped_and_counted():
    true = np.linspace(0, 1, 101)
    gen = np.concatenate([np.linspace(0, 1, 101), [5.0, -3.0]])
    s = d_stsp(true, gen, n_bins=10)
    assert (s.n_used, s.n_total) == (101, 103)
    assert s.value == pytest.approx(0.0, abs=1e-12)


def _reference_d_stsp(t, g, n_bins=30, alpha=1e-5, m=0.1):
    # independent implementation with np.histogramdd and explicit edges
    lo, hi = t.min(0) - m * t.std(0), t.max(0) + m * t.std(0)
    edges = [np.linspace(lo[i], hi[i], n_bins + 1) for i in range(t.shape[1])]
    ct = np.histogramdd(t, bins=edges)[0].ravel()
    cg = np.histogramdd(g, bins=edges)[0].ravel()  # histogramdd ignores out-of-range points
    pt = (ct + alpha) / (ct.sum() + alpha * ct.size)
    pg = (cg + alpha) / (cg.sum() + alpha * cg.size)
    return float(np.sum(pt * np.log(pt / pg)))


def _reference_hellinger(t, g, sigma=20.0):
    T = min(len(t), len(g))
    hs = []
    for d in range(t.shape[1]):
        spectra = []
        for s in (t[:T, d], g[:T, d]):
            z = (s - s.mean()) / s.std()
            p = gaussian_filter1d(np.abs(np.fft.rfft(z)) ** 2, sigma)
            spectra.append(p / p.sum())
        hs.append(np.sqrt(1 - np.sum(np.sqrt(spectra[0] * spectra[1]))))
    return float(np.mean(hs))


def test_agrees_with_independent_implementations():
    rng = np.random.default_rng(0)
    t = rng.standard_normal((20_000, 3))
    g = 1.2 * rng.standard_normal((25_000, 3)) + 0.3
    assert d_stsp(t, g).value == pytest.approx(_reference_d_stsp(t, g), abs=1e-6)
    assert hellinger_distance(t, g).value == pytest.approx(_reference_hellinger(t, g), abs=1e-6)
    t2 = np.cumsum(rng.standard_normal((4000, 2)), axis=0)  # red spectra, unlike white noise
    g2 = np.sin(np.arange(5000) * 0.01)[:, None] + 0.1 * rng.standard_normal((5000, 2))
    assert hellinger_distance(t2, g2).value == pytest.approx(_reference_hellinger(t2, g2), abs=1e-6)


def test_inputs_numpy_torch_xarray_agree(lorenz_data):
    _, test = ds.train_test_split(lorenz_data)
    arr = test["x"].values[:20_000]
    gen = arr[::-1].copy()
    a = d_stsp(test.isel(time=slice(0, 20_000)), gen).value
    assert a == d_stsp(arr, torch.tensor(gen)).value
    one_d = d_stsp(arr[:, 0], gen[:, 0])
    assert np.isfinite(one_d.value)


def test_lorenz_noise_floor_is_small(lorenz_data):
    # The end-to-end issue gives the floor for 1e5 steps: D_stsp about 0.03, D_H about 0.04.
    _, test = ds.train_test_split(lorenz_data)
    ref = ds.independent_trajectory(lorenz_data, 100_000, seed=1)
    s = score_all(test, ref)
    assert s["D_stsp"].value < 0.08
    assert s["D_H"].value < 0.08
    assert s["PSC"].value > 0.95


def test_lorenz_against_rossler_is_large():
    from dsrecon import systems

    lor = systems.simulate("lorenz", dict(sigma=16.0, rho=45.92, beta=4.0), dt=0.01, n_samples=20_000,
                           transient=1000, seed=0)
    ros = systems.simulate("rossler", dict(a=0.15, b=0.2, c=10.0), dt=0.1, n_samples=20_000,
                           transient=1000, seed=0)
    z = lambda a: (a - a.mean(0)) / a.std(0)  # noqa: E731
    s = score_all(z(lor), z(ros))
    assert s["D_stsp"].value > 2.0
    assert s["D_H"].value > 0.3


def test_bad_input():
    a = np.random.default_rng(0).standard_normal((1000, 3))
    with pytest.raises(DataError, match="dimensions"):
        d_stsp(a, a[:, :2])
    bad = a.copy()
    bad[5, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        d_stsp(bad, a)
    gen = a.copy()
    gen[500:] = np.nan  # a diverged model
    for fn in (d_stsp, hellinger_distance):
        s = fn(a, gen)
        assert s.value == math.inf and "non-finite" in s.reason and "step 500" in s.reason
    assert math.isnan(power_spectrum_correlation(a, gen).value)
    far = d_stsp(a, a + 100.0)
    assert far.value == math.inf and "empty overlap" in far.reason
    with pytest.raises(DataError, match="shape"):
        d_stsp(np.zeros((10, 2, 2)), np.zeros((10, 2, 2)))


def test_constant_generated_dimension_is_maximally_different():
    rng = np.random.default_rng(1)
    t = np.cumsum(rng.standard_normal((2000, 2)), axis=0)
    g = t.copy()
    g[:, 1] = 3.0  # a collapsed model: constant output
    s = hellinger_distance(t, g)
    assert s.value == pytest.approx(0.5, abs=1e-7)  # mean of H = 0 (dim 0) and H = 1 (dim 1)
    assert "constant" in s.reason


def test_score_prints_value_and_variant(h):
    text = str(d_stsp(h, h))
    assert "D_stsp" in text and "n_bins=30" in text and "KL(true||gen)" in text
