"""Metrics against hand-computed cases, independent implementations and invariances.

Every asserted number names its source: a definition, a hand computation, or an independent
implementation written here (never calling dsrecon helpers).
"""
import json
import math

import numpy as np
import pytest
import torch
import xarray as xr
from scipy.ndimage import gaussian_filter1d

from dsrecon.errors import ConfigError, DataError
from dsrecon.metrics import Score, d_stsp, hellinger_distance, power_spectrum_correlation, score_all


def henon(n, x0=0.1, y0=0.1, a=1.4, b=0.3, transient=100):
    """The Hénon map, a cheap chaotic 2-d test series."""
    out = np.empty((n, 2))
    x, y = x0, y0
    for i in range(n + transient):
        x, y = 1 - a * x * x + y, b * x
        if i >= transient:
            out[i - transient] = x, y
    return out


@pytest.fixture(scope="module")
def h():
    return henon(30_000)


# ------------------------------------------------------------------------ independent references
def _reference_d_stsp(t, g, n_bins=30, alpha=1e-5, m=0.1):
    """Direct implementation with np.histogramdd and explicit edges (histogramdd drops out-of-range
    points and puts a point on the last edge into the last bin)."""
    lo, hi = t.min(0) - m * t.std(0), t.max(0) + m * t.std(0)
    edges = [np.linspace(lo[i], hi[i], n_bins + 1) for i in range(t.shape[1])]
    ct = np.histogramdd(t, bins=edges)[0].ravel()
    cg = np.histogramdd(g, bins=edges)[0].ravel()
    pt = (ct + alpha) / (ct.sum() + alpha * ct.size)
    pg = (cg + alpha) / (cg.sum() + alpha * cg.size)
    return float(np.sum(pt * np.log(pt / pg)))


def _reference_spectrum(s, sigma):
    z = (s - s.mean()) / s.std()
    p = gaussian_filter1d(np.abs(np.fft.rfft(z)) ** 2, sigma)
    return p / p.sum()


def _reference_welch(x, L, sigma=20.0):
    """Issue 15: the whole series counts. Chunks of L steps, the first at 0, the last ending at the end,
    ceil(T/L) of them evenly spaced; each chunk's z-scored |rfft|^2 normalised to sum 1; their mean,
    smoothed, normalised (Welch 1967). One loop per chunk, no shared code with dsrecon.metrics."""
    n = int(np.ceil(len(x) / L))
    starts = [0] if n == 1 else [int(round(v)) for v in np.linspace(0, len(x) - L, n)]
    acc = 0.0
    for s in starts:
        c = x[s:s + L]
        pw = np.abs(np.fft.rfft((c - c.mean()) / c.std())) ** 2
        acc = acc + pw / pw.sum()
    p = gaussian_filter1d(acc / n, sigma)
    return p / p.sum()


def _reference_hellinger(t, g, sigma=20.0):
    """Direct formula, one dimension at a time, on chunk-averaged spectra of the whole series."""
    T = min(len(t), len(g))
    hs = []
    for d in range(t.shape[1]):
        p, q = _reference_welch(t[:, d], T, sigma), _reference_welch(g[:, d], T, sigma)
        hs.append(np.sqrt(max(0.0, 1 - np.sum(np.sqrt(p * q)))))
    return float(np.mean(hs))


def _reference_psc(t, g, sigma=20.0):
    T = min(len(t), len(g))
    rs = [np.corrcoef(_reference_welch(t[:, d], T, sigma), _reference_welch(g[:, d], T, sigma))[0, 1]
          for d in range(t.shape[1])]
    return float(np.mean(rs))


# ------------------------------------------------------------------------ definitions
def test_trajectory_against_itself(h):
    # identical distributions and spectra: KL = 0, Hellinger = 0, correlation = 1 (definitions)
    assert d_stsp(h, h).value == pytest.approx(0.0, abs=1e-12)
    assert hellinger_distance(h, h).value == pytest.approx(0.0, abs=1e-7)
    assert power_spectrum_correlation(h, h).value == pytest.approx(1.0, abs=1e-9)


def test_very_different_signals_score_badly(h):
    t = np.arange(30_000)
    other = np.stack([np.sin(0.05 * t), np.cos(0.05 * t)], axis=1)
    # thresholds from the brief: a circle against the Hénon attractor shares almost no cells and a
    # single spectral line against a broadband spectrum
    assert d_stsp(h, other).value > 1.0
    assert hellinger_distance(h, other).value > 0.5
    assert power_spectrum_correlation(h, other).value < 0.5


def test_sine_against_five_times_its_frequency():
    # lines at bins 300 and 1500 of a 30000-step series, sigma 20: the smoothed peaks do not overlap
    # (overlap ~ exp(-(1200/20)^2 / 8), i.e. 0), so H ~ 1 and the spectra are uncorrelated
    t = np.arange(30_000)
    f = 300 / 30_000
    a, b = np.sin(2 * np.pi * f * t), np.sin(2 * np.pi * 5 * f * t)
    assert hellinger_distance(a, b).value > 0.99
    assert power_spectrum_correlation(a, b).value < 0.1


# ------------------------------------------------------------------------ hand-computed D_stsp
def test_d_stsp_hand_computed_1d():
    # box_margin 0: box [0, 1], 2 bins [0, .5), [.5, 1] -- the points at 1.0 lie on the upper box edge
    # and belong to the last bin (as np.histogramdd). true counts (2, 1), generated (1, 3); alpha 0:
    # KL = 2/3 ln((2/3)/(1/4)) + 1/3 ln((1/3)/(3/4)) = 0.38361...
    true = np.array([0.0, 0.2, 1.0])
    gen = np.array([0.1, 0.7, 0.9, 1.0])
    expected = 2 / 3 * math.log((2 / 3) / (1 / 4)) + 1 / 3 * math.log((1 / 3) / (3 / 4))
    s = d_stsp(true, gen, n_bins=2, alpha=0.0, box_margin=0.0)
    assert s.value == pytest.approx(expected, rel=1e-12)
    assert (s.n_used, s.n_total) == (4, 4)


def test_d_stsp_laplace_smoothing_hand_computed():
    # one empty generated cell: alpha keeps KL finite. true (1, 1), gen (2, 0), alpha 0.5, 2 cells:
    # p_true = (1.5, 1.5)/3, p_gen = (2.5, 0.5)/3; KL = .5 ln(.5/(2.5/3)) + .5 ln(.5/(.5/3)) = 0.29389...
    s = d_stsp([0.0, 1.0], [0.1, 0.2], n_bins=2, alpha=0.5, box_margin=0.0)
    expected = 0.5 * math.log(0.5 / (2.5 / 3)) + 0.5 * math.log(0.5 / (0.5 / 3))
    assert s.value == pytest.approx(expected, rel=1e-12)


def test_d_stsp_empty_true_cell_without_smoothing():
    # alpha 0, 3 bins over [0, 3]: true (2, 0, 1), gen (1, 1, 1). The empty true cell adds 0 ln 0 = 0
    # (the KL convention), not nan: KL = 2/3 ln((2/3)/(1/3)) + 1/3 ln((1/3)/(1/3)) = 2/3 ln 2
    s = d_stsp([0.5, 0.6, 3.0], [0.5, 1.5, 2.5], n_bins=3, alpha=0.0, box_margin=0.0)
    assert s.value == pytest.approx(2 / 3 * math.log(2), rel=1e-12)


def test_d_stsp_box_margin_hand_computed():
    # true (0, 1): mean .5, sd .5 (ddof 0), margin 1 -> box [-0.5, 1.5]; 2 bins [-.5, .5), [.5, 1.5].
    # gen 1.4 is inside (bin 1), 1.6 outside; true (1, 1), gen (0, 1); alpha 1, 2 cells:
    # p_true = (2, 2)/4, p_gen = (1, 2)/3; KL = .5 ln(.5/(1/3)) + .5 ln(.5/(2/3))
    s = d_stsp([0.0, 1.0], [1.4, 1.6], n_bins=2, alpha=1.0, box_margin=1.0)
    assert s.value == pytest.approx(0.5 * math.log(1.5) + 0.5 * math.log(0.75), rel=1e-12)
    assert (s.n_used, s.n_total) == (1, 2)


def test_points_outside_the_box_are_dropped_and_counted():
    true = np.linspace(0, 1, 101)
    gen = np.concatenate([np.linspace(0, 1, 101), [5.0, -3.0]])
    s = d_stsp(true, gen, n_bins=10)
    # the two far points are dropped, the rest equals the true data: KL = 0 (definition)
    assert (s.n_used, s.n_total) == (101, 103)
    assert s.value == pytest.approx(0.0, abs=1e-12)
    # 2-d: a point outside in only one dimension is dropped too
    t2 = np.stack([true, true], axis=1)
    g2 = np.concatenate([t2, [[0.5, 9.0], [-9.0, 0.5]]])
    s2 = d_stsp(t2, g2, n_bins=10)
    assert (s2.n_used, s2.n_total) == (101, 103)


# ------------------------------------------------------------------------ independent implementations
def test_d_stsp_agrees_with_histogramdd():
    rng = np.random.default_rng(0)
    t = rng.standard_normal((20_000, 3))
    g = 1.2 * rng.standard_normal((25_000, 3)) + 0.3  # some points outside the box
    assert d_stsp(t, g).value == pytest.approx(_reference_d_stsp(t, g), abs=1e-6)
    # data on a grid: many points exactly on bin edges, including the upper box edge
    tq = rng.integers(0, 11, (5000, 3)) / 10.0
    gq = rng.integers(-2, 13, (5000, 3)) / 10.0
    for n_bins in (5, 10, 7):
        ref = _reference_d_stsp(tq, gq, n_bins=n_bins, m=0.0)
        assert d_stsp(tq, gq, n_bins=n_bins, box_margin=0.0).value == pytest.approx(ref, abs=1e-6)


def test_bin_edges_exactly_as_histogramdd():
    # points exactly on every edge and one ulp either side, on an awkward box: the bin of each point
    # must be histogramdd's (bins [e_i, e_(i+1)), the last closed), not an arithmetic floor's guess
    from dsrecon.metrics import _flat_cells

    rng = np.random.default_rng(3)
    for lo, hi, n_bins in [(-1.37, 2.91, 7), (0.1, 0.7, 30), (-3e-3, 5e-3, 13)]:
        e = np.linspace(lo, hi, n_bins + 1)
        x = np.concatenate([e, np.nextafter(e[1:], -np.inf), np.nextafter(e[:-1], np.inf),
                            rng.uniform(lo, hi, 1000)])
        expected = np.histogramdd(x[:, None], bins=[e])[0]
        assert np.array_equal(np.bincount(_flat_cells(x[None, :], [e]), minlength=n_bins), expected)


def test_spectral_metrics_agree_with_direct_formula():
    rng = np.random.default_rng(0)
    t = rng.standard_normal((20_000, 3))
    g = 1.2 * rng.standard_normal((25_000, 3)) + 0.3
    assert hellinger_distance(t, g).value == pytest.approx(_reference_hellinger(t, g), abs=1e-6)
    t2 = np.cumsum(rng.standard_normal((4000, 2)), axis=0)  # red spectra, unlike white noise
    g2 = np.sin(np.arange(5000) * 0.01)[:, None] + 0.1 * rng.standard_normal((5000, 2))
    s = hellinger_distance(t2, g2)
    assert s.value == pytest.approx(_reference_hellinger(t2, g2), abs=1e-6)
    assert (s.n_used, s.n_total) == (5000, 5000)  # every generated step enters the chunk-averaged spectrum
    assert power_spectrum_correlation(t2, g2).value == pytest.approx(_reference_psc(t2, g2), abs=1e-9)


def test_hellinger_of_two_sines_explicit():
    # two pure sines per dimension at different frequencies, against the explicit computation
    n = 8192
    k = np.arange(n)
    t = np.stack([np.sin(2 * np.pi * 40 * k / n), np.sin(2 * np.pi * 100 * k / n + 0.3)], axis=1)
    g = np.stack([np.sin(2 * np.pi * 55 * k / n), np.sin(2 * np.pi * 130 * k / n)], axis=1)
    sigma = 20.0
    hs = []
    for d in range(2):
        spectra = []
        for s in (t[:, d], g[:, d]):
            z = (s - np.mean(s)) / np.sqrt(np.mean((s - np.mean(s)) ** 2))
            power = np.abs(np.fft.rfft(z)) ** 2
            sm = gaussian_filter1d(power, sigma)
            spectra.append(sm / np.sum(sm))
        hs.append(math.sqrt(max(0.0, 1.0 - float(np.sum(np.sqrt(spectra[0] * spectra[1]))))))
    expected = sum(hs) / len(hs)
    assert 0.1 < expected < 0.99  # the peaks overlap partly: a non-trivial case
    assert hellinger_distance(t, g, sigma=sigma).value == pytest.approx(expected, abs=1e-10)


# ------------------------------------------------------------------------ inputs
def test_inputs_numpy_torch_xarray_agree(h):
    gen = henon(20_000, x0=0.2, y0=0.0)
    ds_true = xr.Dataset({"x": (("time", "channel"), h)}, coords={"time": np.arange(len(h)), "channel": ["x", "y"]})
    ds_gen = xr.Dataset({"x": (("time", "channel"), gen)})
    for fn in (d_stsp, hellinger_distance, power_spectrum_correlation):
        ref = fn(h, gen).value  # the numpy result is the reference
        assert fn(ds_true, ds_gen).value == ref
        assert fn(torch.tensor(h), torch.tensor(gen, dtype=torch.float64)).value == ref
    # (T,) is (T, 1)
    for fn in (d_stsp, hellinger_distance, power_spectrum_correlation):
        assert fn(h[:, 0], gen[:, 0]).value == fn(h[:, :1], gen[:, :1]).value


def test_bad_input():
    a = np.random.default_rng(0).standard_normal((1000, 3))
    # issue 5: another dimensionality is a result (nan with the reason), never an exception
    for fn in (d_stsp, hellinger_distance, power_spectrum_correlation):
        s = fn(a, a[:, :2])
        assert math.isnan(s.value) and "3 dimensions" in s.reason and "2" in s.reason
    assert math.isnan(d_stsp(a, a[:, :2], method="gmm").value)
    assert math.isnan(d_stsp(a, a[:, :2], method="legacy").value)
    assert math.isnan(hellinger_distance(a, a[:, :2], variant="legacy").value)
    s = d_stsp(a, a[:1])
    assert math.isnan(s.value) and "1 time steps" in s.reason
    bad = a.copy()
    bad[5, 0] = np.nan
    for fn in (d_stsp, hellinger_distance, power_spectrum_correlation):
        with pytest.raises(DataError, match="NaN"):
            fn(bad, a)
    with pytest.raises(DataError, match="shape"):
        d_stsp(np.zeros((10, 2, 2)), np.zeros((10, 2, 2)))
    with pytest.raises(DataError, match="bins"):
        d_stsp(np.zeros((10, 6)), np.zeros((10, 6)))  # 30^6 = 7e8 cells
    with pytest.raises(DataError, match="constant"):
        hellinger_distance(np.ones((100, 1)), a[:100, :1])
    with pytest.raises(ConfigError, match="alpha"):
        d_stsp(a, a, alpha=-1.0)


def test_diverged_generated_run_is_scored_not_refused():
    a = np.random.default_rng(0).standard_normal((1000, 3))
    gen = a.copy()
    gen[500:] = np.nan  # a diverged model
    gen[700, 1] = np.inf
    for fn in (d_stsp, hellinger_distance):
        s = fn(a, gen)
        assert s.value == math.inf
        assert "non-finite" in s.reason and "500 non-finite rows" in s.reason and "step 500" in s.reason
    s = power_spectrum_correlation(a, gen)
    assert math.isnan(s.value) and "non-finite" in s.reason
    far = d_stsp(a, a + 100.0)
    assert far.value == math.inf and "empty overlap" in far.reason and far.n_used == 0


def test_constant_generated_dimension_is_maximally_different():
    rng = np.random.default_rng(1)
    t = np.cumsum(rng.standard_normal((2000, 2)), axis=0)
    g = t.copy()
    g[:, 1] = 3.0  # a collapsed model: constant output
    s = hellinger_distance(t, g)
    assert s.value == pytest.approx(0.5, abs=1e-7)  # mean of H = 0 (dim 0, identical) and H = 1 (dim 1)
    assert "generated dimension 1 is constant" in s.reason
    c = power_spectrum_correlation(t, g)
    assert c.value == pytest.approx(0.5, abs=1e-9)  # mean of r = 1 (identical) and r = 0 (by convention)
    assert "constant" in c.reason


# ------------------------------------------------------------------------ the noise floor
def test_noise_floor_is_small_and_falls_with_length():
    # two independent Hénon trajectories sample the same invariant measure: the scores are small
    # (measured: D_stsp 0.0018, D_H 0.059, PSC 0.969 at T = 1e5; thresholds leave a margin).
    # D_stsp's sampling noise falls with T (measured 0.049 at T = 5000); D_H's does not at a fixed
    # sigma in frequency bins (the number of bins grows with T), so only D_stsp is checked for that.
    # Over 4 pairs of initial points ((0.1, 0.1)/(0.3, -0.1), (0.2, 0)/(-0.3, 0.1), (0.5, -0.1)/(0, 0.2),
    # (0.4, 0.1)/(0.1, 0)): D_stsp 0.0013 .. 0.0020, D_H 0.0587 .. 0.063, PSC 0.961 .. 0.971, short/long D_stsp
    # >= 19.7. Bounds: D_stsp 3x the worst (was 0.01); D_H 0.08 (4x the spread above the worst; was 0.1); PSC
    # 0.95 is 0.011 below the worst. Exact IEEE recursion and numpy only: the same on every CPU.
    t = henon(100_000)
    ref = henon(100_000, x0=0.3, y0=-0.1)
    s = score_all(t, ref)
    assert s["D_stsp"].value < 0.006
    assert s["D_H"].value < 0.08
    assert s["PSC"].value > 0.95
    assert d_stsp(t[:5000], ref[:5000]).value > 5 * s["D_stsp"].value


# ------------------------------------------------------------------------ Score
def test_score_all_and_score_object(h):
    s = score_all(h, h[::-1].copy())
    assert list(s) == ["D_stsp", "D_H", "PSC"]
    assert all(isinstance(v, Score) for v in s.values())
    text = str(s["D_stsp"])
    assert text.startswith("D_stsp = ") and "n_bins=30" in text and "KL(true||gen)" in text
    assert "30000/30000" in text
    assert "sigma=20.0" in str(s["D_H"]) and "reflect" in str(s["D_H"])
    assert float(s["PSC"]) == s["PSC"].value
    d = s["D_H"].to_dict()
    assert d["name"] == "D_H" and d["variant"]["length"] == 30_000
    json.dumps(d)  # JSON-safe


def test_lorenz_noise_floor_is_small(lorenz_data):  # the session fixture already paid for the data
    # The end-to-end issue gives the floor for 1e5 steps: D_stsp about 0.03, D_H about 0.04. Measured with the
    # independent trajectory's seed 1, 2, 3: D_stsp 0.032 .. 0.046, D_H 0.058 .. 0.061, PSC 0.9835 .. 0.9867; the
    # bounds (0.08, 0.08, 0.95) sit >= 6 spreads above (below) the worst. Data from scipy's odeint: no torch kernels.
    import dsrecon as ds

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
    # z-scored attractors of different shape and time scale (thresholds: an observed margin, not a model)
    assert s["D_stsp"].value > 2.0
    assert s["D_H"].value > 0.3


def test_dimension_notes_group_the_dimensions_that_share_one():
    """64 constant channels make one clause, not 64 (a 64-channel run's report was pages of them)."""
    from dsrecon.spectra import dimension_notes

    notes = [(d, "is constant in 1 of its 2 chunks") for d in range(64)] + [(7, "is constant")]
    assert dimension_notes(notes) == ("generated dimensions 0, 1, 2 and 61 more (64 of them) are constant in 1 of "
                                      "their 2 chunks; generated dimension 7 is constant")
    assert dimension_notes([(1, "is constant")]) == "generated dimension 1 is constant"
    assert dimension_notes([]) == ""
