"""Issue 5 metrics: legacy and Gaussian-mixture D_stsp, legacy D_H, PE(n), VPT, Lyapunov scores,
many initial conditions, partial observation and noise floors.

Every asserted number names its source: a hand computation in the comment, an independent
implementation written here from the definitions (never calling dsrecon helpers), or an identity.
"""
import math

import numpy as np
import pytest
import torch
from scipy.integrate import trapezoid
from scipy.stats import multivariate_normal

from dsrecon.errors import ConfigError
from dsrecon.evaluation import (forced_rollouts, lyapunov_scores, noise_floor, prediction_error, score_initial_conditions,
                                score_partially_observed, valid_prediction_time)
from dsrecon.metrics import Score, d_stsp, hellinger_distance, median_mad, score_all, summarise


class LinearMap:
    """z' = A z, x = C z, force(x) = pinv(C) x (+ a fixed offset for unobserved coordinates): a Model
    whose trajectories, errors and Lyapunov exponents are known in closed form."""

    def __init__(self, A, C=None, offset=None):
        self.A = torch.as_tensor(A, dtype=torch.float64)
        self.latent_dim = self.A.shape[0]
        f64 = torch.float64
        self.C = torch.eye(self.latent_dim, dtype=f64) if C is None else torch.as_tensor(C, dtype=f64)
        self.obs_dim = self.C.shape[0]
        self.offset = torch.zeros(self.latent_dim, dtype=f64) if offset is None else torch.as_tensor(offset, dtype=f64)

    def step(self, z, s=None):
        return z @ self.A.T

    def jacobian(self, z, s=None):
        return self.A.expand(z.shape[0], -1, -1)

    def observe(self, z):
        return z @ self.C.T

    def force(self, x, z=None):
        return x @ torch.linalg.pinv(self.C).T + self.offset


def henon(n, x0=0.1, y0=0.1, a=1.4, b=0.3, transient=100):
    out = np.empty((n, 2))
    x, y = x0, y0
    for i in range(n + transient):
        x, y = 1 - a * x * x + y, b * x
        if i >= transient:
            out[i - transient] = x, y
    return out


# ------------------------------------------------------------------ independent references
def _ref_legacy_d_stsp(t, g, n_bins):
    """±2σ (ddof=1) box about 0; bins 1..n_bins-1 of histogramdd over the same edges; full grid."""
    sd = t.std(0, ddof=1)
    edges = [np.linspace(-2 * s, 2 * s, n_bins + 1)[1:] for s in sd]  # bin 0 left out
    full = lambda x: np.pad(np.histogramdd(x, bins=edges)[0], [(1, 0)] * x.shape[1]).ravel()  # noqa: E731
    ct, cg = full(t), full(g)
    a = 1e-5
    pt = (ct + a) / (ct.sum() + a * ct.size)
    pg = (cg + a) / (cg.sum() + a * cg.size)
    return float(np.sum(pt * np.log(pt / pg)))


def _ref_legacy_spectrum(chunks, sigma):
    out = []
    for c in chunks:
        c = c[: len(c) - len(c) % 2]
        z = (c - c.mean()) / c.std(ddof=1)
        p = np.abs(np.fft.rfft(z, norm="ortho")) ** 2 * 2 / len(z)
        size = int(sigma * 10) + 1
        k = np.array([math.exp(-0.5 * ((i - size // 2) / sigma) ** 2) for i in range(size)])
        k /= k.sum()
        pad = size // 2
        out.append(np.convolve(p, k)[pad:-pad])
    return np.mean(out, axis=0)


def _ref_legacy_hellinger(t, g, n_chunks=50, sigma=2.0, cutoff=500):
    L = min(len(t), len(g)) // n_chunks
    hs = []
    for d in range(t.shape[1]):
        p = _ref_legacy_spectrum(t[: n_chunks * L, d].reshape(n_chunks, L), sigma)[:cutoff]
        q = _ref_legacy_spectrum(g[: n_chunks * L, d].reshape(n_chunks, L), sigma)[:cutoff]
        hs.append(math.sqrt(max(0.0, 1 - trapezoid(np.sqrt(p * q)))))
    return float(np.mean(hs))


def _ref_gmm(t, g, sigma2=1.0, n_mc=200, seed=0):
    """Standardize by the true data, sample as documented, densities by scipy, one component at a time."""
    mu, sd = t.mean(0), t.std(0)
    t, g = (t - mu) / sd, (g - mu) / sd
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(t), n_mc)
    s = t[idx] + math.sqrt(sigma2) * rng.standard_normal((n_mc, t.shape[1]))
    cov = sigma2 * np.eye(t.shape[1])
    pt = np.mean([multivariate_normal(m, cov).pdf(s) for m in t], axis=0)
    pg = np.mean([multivariate_normal(m, cov).pdf(s) for m in g], axis=0)
    return float(np.mean(np.log(pt) - np.log(pg)))


# ------------------------------------------------------------------ legacy D_stsp
def test_legacy_d_stsp_hand_computed():
    # true (-1, 1): sd (ddof=1) = √2, box [-2√2, 2√2], 4 bins of width √2. Bin = trunc((x + 2√2)/√2):
    # -1 -> 1, 1 -> 2, -2 -> 0 (bin 0: dropped). gen 0.5, 0.7 -> 2; 2.0 -> 3; -2.9 -> trunc(-0.05) = 0
    # (dropped). Counts true (0, 1, 1, 0), gen (0, 0, 2, 1); alpha 1e-5 over 4 cells.
    true = np.array([-1.0, 1.0])
    gen = np.array([0.5, 0.7, -2.9, 2.0])
    a = 1e-5
    pt = (np.array([0, 1, 1, 0]) + a) / (2 + 4 * a)
    pg = (np.array([0, 0, 2, 1]) + a) / (3 + 4 * a)
    s = d_stsp(true, gen, method="legacy", n_bins=4)
    assert s.value == pytest.approx(float(np.sum(pt * np.log(pt / pg))), rel=1e-12)
    assert (s.n_used, s.n_total) == (3, 4) and s.variant["method"] == "legacy"
    # a true point in bin 0 is dropped from the true histogram too (the legacy code's quirk):
    # (-2 + 2√2)/√2 = 0.586 -> bin 0; sd changes, so only the kept count is checked
    s3 = d_stsp(np.array([-1.0, 1.0, -0.1, 0.1, -2.0]), gen, method="legacy", n_bins=4)
    sd = np.std([-1.0, 1.0, -0.1, 0.1, -2.0], ddof=1)
    kept = sum(0 < math.trunc((x + 2 * sd) / (4 * sd) * 4) < 4 for x in [-1.0, 1.0, -0.1, 0.1, -2.0])
    assert s3.extra["n_true_used"] == kept == 4


def test_legacy_d_stsp_agrees_with_histogramdd_reference():
    rng = np.random.default_rng(0)
    t = rng.standard_normal((20_000, 3))
    g = 1.2 * rng.standard_normal((25_000, 3)) + 0.3
    for n_bins in (10, 30):
        assert d_stsp(t, g, method="legacy", n_bins=n_bins).value == pytest.approx(
            _ref_legacy_d_stsp(t, g, n_bins), abs=1e-6)


def test_legacy_bad_input_is_a_result():
    a = np.random.default_rng(1).standard_normal((500, 2))
    far = d_stsp(a, a + 50.0, method="legacy")
    assert far.value == math.inf and "empty overlap" in far.reason
    g = a.copy()
    g[10] = np.nan
    s = d_stsp(a, g, method="legacy")
    assert s.value == math.inf and "step 10" in s.reason


# ------------------------------------------------------------------ 2sd box of the clean binned variant
def test_bins_2sd_box_hand_computed():
    # true (0, 1, 2): mean 1, sd √(2/3) = 0.8165 (ddof 0); box [1 - 1.633, 1 + 1.633]; 2 bins split at 1.
    # true bins (0, 1, 1) -> counts (1, 2); gen (0.5, 1.5, 3.0): 3.0 is outside; counts (1, 1); alpha 0:
    # KL = 1/3 ln((1/3)/(1/2)) + 2/3 ln((2/3)/(1/2))
    s = d_stsp([0.0, 1.0, 2.0], [0.5, 1.5, 3.0], n_bins=2, alpha=0.0, box="2sd")
    assert s.value == pytest.approx(1 / 3 * math.log(2 / 3) + 2 / 3 * math.log(4 / 3), rel=1e-12)
    assert (s.n_used, s.n_total) == (2, 3) and s.variant["box"] == "mean±2sd"
    with pytest.raises(ConfigError, match="box"):
        d_stsp([0.0, 1.0], [0.0, 1.0], box="3sd")


def test_bins_2sd_box_agrees_with_histogramdd_reference():
    # histogramdd over explicit edges drops points outside [mean − 2σ, mean + 2σ] for both histograms,
    # which is the definition of the "2sd" box
    rng = np.random.default_rng(4)
    t = rng.standard_normal((20_000, 3)) * [1.0, 2.0, 0.5]
    g = 1.1 * rng.standard_normal((15_000, 3)) * [1.0, 2.0, 0.5] + 0.2
    mu, sd = t.mean(0), t.std(0)
    edges = [np.linspace(mu[i] - 2 * sd[i], mu[i] + 2 * sd[i], 21) for i in range(3)]
    ct, cg = np.histogramdd(t, bins=edges)[0].ravel(), np.histogramdd(g, bins=edges)[0].ravel()
    a = 1e-5
    pt, pg = (ct + a) / (ct.sum() + a * ct.size), (cg + a) / (cg.sum() + a * cg.size)
    s = d_stsp(t, g, n_bins=20, box="2sd")
    assert s.value == pytest.approx(float(np.sum(pt * np.log(pt / pg))), abs=1e-6)
    assert s.n_used == int(cg.sum())


# ------------------------------------------------------------------ legacy D_H
def test_legacy_hellinger_agrees_with_direct_reference():
    rng = np.random.default_rng(0)
    t = np.cumsum(rng.standard_normal((20_000, 2)), axis=0)
    g = np.sin(np.arange(25_001) * 0.02)[:, None] + 0.3 * rng.standard_normal((25_001, 2))
    s = hellinger_distance(t, g, variant="legacy")
    assert s.value == pytest.approx(_ref_legacy_hellinger(t, g), abs=1e-6)
    assert s.variant["chunk_length"] == 400 and s.variant["cutoff"] == 500 and s.variant["sigma"] == 2.0
    # odd chunk length (401 -> 400 used by both) and another sigma
    t2, g2 = t[:20_050], g[:20_050]
    assert hellinger_distance(t2, g2, variant="legacy", sigma=3).value == pytest.approx(
        _ref_legacy_hellinger(t2, g2, sigma=3), abs=1e-6)


def test_legacy_variants_against_themselves_are_zero():
    h = henon(30_000)
    # identical inputs: identical histograms / spectra (definitions)
    assert d_stsp(h, h, method="legacy").value == pytest.approx(0.0, abs=1e-12)
    # ... except the legacy D_H: its trapezoid rule halves the end bins and nothing is renormalised after
    # the cut, so BC(x, x) = trapezoid(p) < 1 and D_H_legacy(x, x) = √(1 − trapezoid(p)) > 0 (a quirk of
    # that code, reproduced; the reference computes it directly)
    self_h = hellinger_distance(h, h, variant="legacy").value
    assert self_h == pytest.approx(_ref_legacy_hellinger(h, h), abs=1e-6) and self_h > 0.01
    assert d_stsp(h, h, method="gmm").value == 0.0  # the same centres: ln p_true − ln p_gen = 0 exactly


# ------------------------------------------------------------------ Gaussian-mixture D_stsp
def test_gmm_two_single_gaussians_hand_computed():
    # one centre each (a = 0, b = (1, 1, 1, 1, 1, 1)): KL(N(a, I) || N(b, I)) = |a − b|² / 2 = 3.
    # The MC estimate averages a linear function of s with std |a − b| / √n_mc = 2.449/√4000 = 0.039;
    # tolerance 4 standard errors
    a, b = np.zeros((2, 6)), np.ones((2, 6))
    s = d_stsp(a, b, method="gmm", n_mc=4000, standardize=False)
    assert s.value == pytest.approx(3.0, abs=4 * math.sqrt(6) / math.sqrt(4000))
    assert s.variant["kl"] == "KL(true||gen)" and s.variant["sigma2"] == 1.0


def test_gmm_agrees_with_scipy_reference():
    rng = np.random.default_rng(2)
    t = rng.standard_normal((120, 6)) * [1, 2, 3, 1, 1, 0.5] + 1.0
    g = 1.3 * rng.standard_normal((90, 6)) + 0.8
    for seed in (0, 5):
        s = d_stsp(t, g, method="gmm", n_mc=200, seed=seed)
        assert s.value == pytest.approx(_ref_gmm(t, g, n_mc=200, seed=seed), abs=1e-6)


def test_gmm_subsamples_and_auto_switches():
    rng = np.random.default_rng(3)
    t = rng.standard_normal((25_000, 6))
    s = d_stsp(t, rng.standard_normal((30_000, 6)), method="auto", n_mc=100)
    assert s.variant["method"] == "gmm" and (s.n_used, s.n_total, s.t_gen) == (10_000, 30_000, 30_000)
    assert d_stsp(t[:, :3], t[:, :3], method="auto").variant["method"] == "bins"
    g = t.copy()
    g[7:] = np.inf
    bad = d_stsp(t, g, method="gmm", n_mc=10)
    assert bad.value == math.inf and "step 7" in bad.reason
    with pytest.raises(ConfigError, match="method"):
        d_stsp(t, t, method="kde")


def test_score_all_legacy_entries():
    h = henon(10_000)
    s = score_all(h, henon(10_000, x0=0.2), legacy=True)
    assert list(s) == ["D_stsp", "D_H", "PSC", "D_stsp_legacy", "D_H_legacy"]
    assert all(isinstance(v, Score) and v.t_gen == 10_000 for v in s.values())


# ------------------------------------------------------------------ PE(n) and VPT
def test_prediction_error_and_vpt_of_a_persistence_model():
    # data x_t = t (a ramp), model = identity map: the prediction k steps ahead is off by exactly k,
    # so PE(k) = k² (hand); σ of 0..999 is √((1000² − 1)/12) = 288.67, the normalised error k/σ first
    # exceeds 0.5 at k* = floor(0.5σ) + 1 = 145 for every start; VPT = 145 · dt · λ
    x = np.arange(1000.0)[:, None]
    model = LinearMap(np.eye(1))
    pe = prediction_error(model, x, n_steps=5, n_starts=50)
    assert pe.value == pytest.approx(25.0, rel=1e-12)
    assert pe.extra["curve"] == pytest.approx([1.0, 4.0, 9.0, 16.0, 25.0], rel=1e-12)
    assert pe.n_used == 50
    sigma = math.sqrt((1000 ** 2 - 1) / 12)
    k_star = math.floor(0.5 * sigma) + 1
    vpt = valid_prediction_time(model, x, lambda_max=1.5, dt=0.01, horizon=300, n_starts=20)
    assert vpt.value == pytest.approx(k_star * 0.01 * 1.5, rel=1e-12) and vpt.spread == 0.0
    assert vpt.reference == 1.5 and vpt.n_init == 20 and not vpt.reason
    # a horizon shorter than k*: every start is censored (a lower bound, said in the reason)
    short = valid_prediction_time(model, x, lambda_max=1.5, dt=0.01, horizon=100, n_starts=20)
    assert short.value == pytest.approx(100 * 0.015) and "20 of 20 starts" in short.reason


def test_prediction_error_of_an_exact_model_is_zero_and_divergence_is_reported():
    # a rotation: the model is the data's own map, so every forced prediction is exact (identity)
    th = 0.1
    A = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
    x = np.array([np.linalg.matrix_power(A, k) @ [1.0, 0.0] for k in range(500)])
    assert prediction_error(LinearMap(A), x, n_steps=25).value == pytest.approx(0.0, abs=1e-20)
    boom = prediction_error(LinearMap(1e200 * np.eye(2)), x, n_steps=5)
    assert boom.value == math.inf and "diverged" in boom.reason
    v = valid_prediction_time(LinearMap(1e200 * np.eye(2)), x, lambda_max=1.0, dt=1.0, horizon=5)
    assert v.value == pytest.approx(1.0)  # NaN/inf errors count as over the threshold at the first step


# ------------------------------------------------------------------ Lyapunov scores
def test_lyapunov_scores_of_a_linear_map():
    # diag(1.2, 0.5): λ = ln 1.2 and ln 0.5 per step (exact for a linear map); per time unit / dt;
    # with a QR every 10 steps the columns of Q separate by exp((ln 1.2 − ln 0.5)·10) = 6e3 between QRs,
    # far below 1/eps = 4.5e15: safe (and few QRs, which are slow on a loaded machine);
    # D_KY = 1 + ln 1.2 / |ln 0.5| = 1.2630 (Kaplan-Yorke formula)
    model = LinearMap(np.diag([1.2, 0.5]))
    s = lyapunov_scores(model, dt=0.1, reference=2.0, n_steps=100, transient=30, n_init=2, qr_every=10)
    assert s["lambda_max"].value == pytest.approx(math.log(1.2) / 0.1, rel=1e-9)
    assert s["lambda_max"].reference == 2.0
    assert s["D_KY"].value == pytest.approx(1 + math.log(1.2) / abs(math.log(0.5)), rel=1e-9)
    assert math.isnan(s["spectrum"].value) and "no reference" in s["spectrum"].reason
    from dsrecon.lyapunov import lyapunov_spectrum

    ref = lyapunov_spectrum(LinearMap(np.diag([1.1, 0.5])), n_steps=100, transient=30, dt=0.1,
                             qr_every=10)
    s2 = lyapunov_scores(model, dt=0.1, reference=ref, n_steps=100, transient=30, n_init=2, qr_every=10)
    # mean |Δλ| = (|ln 1.2 − ln 1.1| + 0) / 2 / dt
    assert s2["spectrum"].value == pytest.approx(abs(math.log(1.2 / 1.1)) / 2 / 0.1, rel=1e-9)
    assert s2["D_KY"].reference == pytest.approx(1 + math.log(1.1) / abs(math.log(0.5)), rel=1e-9)


def test_lyapunov_scores_of_a_diverging_model_is_a_result():
    s = lyapunov_scores(LinearMap(np.diag([1e150, 0.5])), dt=1.0, n_steps=50, transient=10, n_init=1)
    assert math.isnan(s["lambda_max"].value) and "non-finite" in s["lambda_max"].reason


# ------------------------------------------------------------------ many initial conditions
def test_median_mad_hand_computed():
    # [1, 2, 3, 10]: median 2.5; |dev| = (1.5, 0.5, 0.5, 7.5) -> MAD 1.0
    assert median_mad([1, 2, 3, 10]) == (2.5, 1.0)
    assert median_mad([1.0, math.nan, 3.0]) == (2.0, 1.0)   # NaN ignored
    m = summarise([Score("D_stsp", v) for v in (1.0, math.inf, 2.0)])
    assert m.value == 2.0 and m.n_init == 3 and "1 of 3" in m.reason


def test_batched_initial_conditions_equal_one_at_a_time():
    th = 0.37  # an irrational rotation: quasi-periodic orbits on circles of radius |x0|
    A = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
    model = LinearMap(A)
    true = forced_rollouts(model, [[1.0, 0.0]], 4000)[0]
    x0 = np.array([[1.0, 0.0], [0.0, 1.0], [0.9, 0.0], [1.5, 0.0]])
    many = score_initial_conditions(model, true, t_gen=4000, x0=x0)
    singles = [score_all(true, forced_rollouts(model, x0[i:i + 1], 4000)[0])["D_stsp"].value for i in range(4)]
    assert many["D_stsp"].extra["per_init"] == pytest.approx(singles, rel=1e-9, abs=1e-12)
    med, mad = median_mad(singles)
    assert many["D_stsp"].value == pytest.approx(med) and many["D_stsp"].spread == pytest.approx(mad)
    assert many["D_stsp"].n_init == 4 and many["D_stsp"].t_gen == 4000
    assert singles[0] == pytest.approx(0.0, abs=1e-12)   # the same orbit: D_stsp = 0


# ------------------------------------------------------------------ partial observation (App. A.6.3)
def test_partially_observed_exact_model_recovers_full_space():
    # a 3-d orthogonal map; the model sees coordinates 1, 2 and knows coordinate 0 at the start through
    # its forcing offset, so its latent run equals the true full orbit: the regressed W is the identity
    # (10 samples of a full-rank 3-d orbit determine it) and the full-space scores equal those of the
    # true orbit shifted by one step
    rng = np.random.default_rng(0)
    Q = np.linalg.qr(rng.standard_normal((3, 3)))[0]
    z0 = np.array([0.3, -0.5, 0.8])
    full = np.array([np.linalg.matrix_power(Q, k) @ z0 for k in range(3001)])
    C = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    model = LinearMap(Q, C=C, offset=[z0[0], 0.0, 0.0])
    s = score_partially_observed(model, full[:, 1:], full, t_gen=3000, n_fit=10)
    W = np.array(s["D_stsp"].extra["W"])
    assert W == pytest.approx(np.eye(3), abs=1e-8)
    assert s["D_stsp"].value == pytest.approx(d_stsp(full, full[1:]).value, abs=1e-9)
    assert s["D_H"].value == pytest.approx(hellinger_distance(full, full[1:]).value, abs=1e-9)
    assert "full" in s["D_stsp"].variant["space"]


# ------------------------------------------------------------------ noise floors
def test_noise_floor_reproducible_per_seed(lorenz_data):
    a = noise_floor(lorenz_data, 3000, seeds=[3])
    b = noise_floor(lorenz_data, 3000, seeds=[3])
    c = noise_floor(lorenz_data, 3000, seeds=[4])
    for k in ("D_stsp", "D_H", "PSC"):
        assert a[k].value == b[k].value  # identical seeds, identical trajectories (determinism)
        assert a[k].variant["noise_floor_seeds"] == [3]
    assert a["D_stsp"].value != c["D_stsp"].value  # another initial condition, another sample
    two = noise_floor(lorenz_data, 3000, seeds=[3, 4])
    assert two["D_stsp"].n_init == 2
    assert two["D_stsp"].value == pytest.approx((a["D_stsp"].value + c["D_stsp"].value) / 2)  # median of 2


# ------------------------------------------------------------------ evaluate on a diverging model
def test_evaluate_a_diverging_model_gives_results_not_errors(lorenz_data):
    import json

    import dsrecon as ds
    from dsrecon.config import EvalConfig
    from dsrecon.runs import _json_safe

    model = ds.PLRNN(obs_dim=3, latent_dim=10, seed=0)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1e3)  # an exploding map: the free run overflows within a few steps
    m, gen = ds.evaluate(model, lorenz_data, EvalConfig(t_gen=1000), n_init=2)
    assert m["D_stsp"] == math.inf and m["D_H"] == math.inf and math.isnan(m["PSC"])
    assert "diverged" in m["reasons"]["D_stsp"] and "diverged" in m["reasons"]["D_stsp_legacy"]
    assert m["PE"] == math.inf and m["VPT"] == pytest.approx(1 * 0.01 * 1.5)  # over the threshold at step 1
    assert math.isnan(m["model_lambda_max"]) and "non-finite" in m["reasons"]["model_lambda_max"]
    assert m["initial_conditions"]["D_stsp"]["n_init"] == 2
    assert "D_stsp_full" not in m  # a fully observed card: no full-space scores
    json.dumps(_json_safe(m))  # metrics.json can hold it


def test_evaluate_partially_observed_scores_in_full_space(lorenz_data):
    import dsrecon as ds
    from dsrecon.config import EvalConfig

    yz = lorenz_data.isel(channel=[1, 2])                     # the model sees y and z only
    _, test_full = ds.train_test_split(lorenz_data)
    model = ds.PLRNN(obs_dim=2, latent_dim=10, seed=0)
    m, _ = ds.evaluate(model, yz, EvalConfig(t_gen=1000), prediction=False, lyapunov_k=None,
                       full_test=test_full)
    assert {"D_stsp_full", "D_H_full", "PSC_full"} <= set(m)
    assert "first 10 full observations" in m["variants"]["D_stsp_full"]["space"]
    assert len(m["scores"]["D_stsp_full"]["extra"]["W"]) == 10  # W maps 10 latents to 3 full channels
    assert len(m["scores"]["D_stsp_full"]["extra"]["W"][0]) == 3
    # the same function on the same arrays gives the same number (evaluate adds no logic)
    direct = ds.evaluation.score_partially_observed(model, ds.data.as_array(ds.train_test_split(yz)[1]),
                                                 ds.data.as_array(test_full), t_gen=1000)
    assert m["D_stsp_full"] == direct["D_stsp"].value or (
        math.isinf(m["D_stsp_full"]) and math.isinf(direct["D_stsp"].value))


@pytest.mark.slow
def test_evaluate_lorenz_yz_card_scores_full_space_automatically():
    # the partially observed card (y, z of Lorenz): evaluate re-integrates the full orbit, checks that
    # its (y, z) reproduce the data, and adds the full-space scores; the plain Lorenz card gets none
    import dsrecon as ds
    from dsrecon.config import EvalConfig

    data = ds.load("lorenz-yz")
    model = ds.PLRNN(obs_dim=2, latent_dim=10, seed=0)
    m, _ = ds.evaluate(model, data, EvalConfig(t_gen=1000), prediction=False, lyapunov_k=None)
    assert {"D_stsp_full", "D_H_full", "PSC_full"} <= set(m)
    assert len(m["scores"]["D_stsp_full"]["extra"]["W"][0]) == 3  # regressed onto x, y, z
