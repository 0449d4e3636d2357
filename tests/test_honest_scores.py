"""Issue 15 part 2: scores that tell the truth -- dynamics verdicts, whole-run spectra, honest floors.

Oracles are constructed: a constant tail is a fixed point by definition, exponential growth diverges, a sine
of period 50 steps recurs exactly at lag 50, the Lorenz attractor (σ=10, ρ=28, β=8/3) is chaotic (λ_max ≈
0.906, Sprott 2003) so it never recurs exactly.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from dsrecon import metrics as M


def _lorenz(n, dt=0.02, x0=(1.0, 1.0, 20.0), skip=500):
    """RK4 orbit of the Lorenz system (σ=10, ρ=28, β=8/3), standardized; ``skip`` steps of transient."""
    def f(v):
        x, y, z = v
        return np.array([10.0 * (y - x), x * (28.0 - z) - y, x * y - 8.0 / 3.0 * z])

    v = np.array(x0, dtype=float)
    out = np.empty((n + skip, 3))
    for i in range(n + skip):
        k1 = f(v)
        k2 = f(v + 0.5 * dt * k1)
        k3 = f(v + 0.5 * dt * k2)
        k4 = f(v + dt * k3)
        v = v + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        out[i] = v
    x = out[skip:]
    return (x - x.mean(0)) / x.std(0)


@pytest.fixture(scope="module")
def lorenz():
    return _lorenz(12_000)


def _embed5(x, n, step=10, lag=4):
    """A 5-d delay embedding of the first coordinate, n points every ``step`` samples (short, 5-d: like the
    Jena weather embedding of the issue, 1180 test points)."""
    e = np.stack([x[i * lag: len(x) - 4 * lag + i * lag, 0] for i in range(5)], axis=1)
    return e[: n * step: step]


# ------------------------------------------------------------------------ verdicts
def test_fixed_point_run_fails_although_its_binned_d_stsp_beats_the_floor(lorenz):
    # the weather run: a chaotic start, then constant (to 1e-13) for the rest of the run
    test = _embed5(lorenz[:6000], 300, step=20)
    other = _embed5(lorenz[6000:], 300, step=20)                # an independent stretch of the same orbit
    gen = np.concatenate([test[:250], np.repeat(test[250:251], 1000, axis=0) + 1e-14])
    floor = M.d_stsp(test, other, method="bins").value
    assert M.d_stsp(test, gen, method="bins").value < floor    # the old report: "better than the floor"
    dyn = M.dynamics_verdict(gen, test)
    assert dyn.verdict == "fixed point" and "collapsed" in dyn.reason
    data = M.dynamics_verdict(test, test, tail_fraction=1.0)
    assert data.verdict == "irregular"
    status, why = M.run_status(dyn, data)
    assert status == "failed" and "fixed point" in why
    # a data set that is itself a fixed point may be modelled by one
    assert M.run_status(dyn, M.Dynamics("fixed point", ""))[0] == "ok"


def test_converging_spiral_is_a_fixed_point():
    k = np.arange(4000)
    r = np.exp(-k / 300.0)                                      # amplitude shrinks ×e^(-400/300·...) per half
    gen = np.c_[r * np.cos(0.3 * k), r * np.sin(0.3 * k)]
    data = np.c_[np.cos(0.3 * k), np.sin(0.3 * k)]
    assert M.dynamics_verdict(gen, data).verdict == "fixed point"


def test_diverging_runs(lorenz):
    x = lorenz[:5000]
    grow = x * np.exp(np.arange(5000) / 300.0)[:, None]        # finite, but e^16 ≈ 9e6 data stds at the end
    d = M.dynamics_verdict(grow, x)
    assert d.verdict == "diverged" and "exploding" in d.reason
    nan = x.copy()
    nan[3000:] = np.nan
    d = M.dynamics_verdict(nan, x, lambda_max=2.5)
    assert d.verdict == "diverged" and "step 3000" in d.reason and d.lambda_max == 2.5
    assert M.run_status(d, M.Dynamics("irregular", ""))[0] == "failed"


def test_sine_is_a_cycle_with_its_period():
    k = np.arange(5000)
    sine = np.c_[np.sin(2 * np.pi * k / 50), np.cos(2 * np.pi * k / 50), np.sin(4 * np.pi * k / 50)]
    d = M.dynamics_verdict(sine, sine)
    assert d.verdict == "cycle" and d.period == 50            # exact recurrence at the period, not before
    assert M.run_status(d, M.dynamics_verdict(sine, sine, tail_fraction=1.0))[0] == "ok"   # periodic data: ok
    status, why = M.run_status(d, M.Dynamics("irregular", ""))   # issue 23: periodic where the data are irregular
    assert status == "failed" and why.startswith("the free run is periodic") and "cycle of 50 steps" in why


def test_lorenz_is_irregular(lorenz):
    d = M.dynamics_verdict(lorenz, lorenz, lambda_max=0.906)
    assert d.verdict == "irregular" and d.period is None and "0.906" in d.reason


def test_recurrence_distance_matches_direct_sum():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 2))
    d = M.recurrence_distance(x)
    for p in (1, 7, 150):
        direct = math.sqrt(np.mean((x[p:] - x[:-p]) ** 2))
        assert d[p] == pytest.approx(direct, rel=1e-9)


# ------------------------------------------------------------------------ whole-run spectra
def test_d_h_over_the_whole_run_sees_a_late_collapse(lorenz):
    t_test = 1000
    test = lorenz[:t_test]
    live = lorenz[2000:2000 + t_test]                          # the same attractor, another stretch
    gen = np.concatenate([live, np.repeat(live[-1:], 9 * t_test, axis=0)])   # chaotic start, then collapsed
    first_only = M.hellinger_distance(test, gen[:t_test]).value  # what the old D_H compared
    whole = M.hellinger_distance(test, gen)
    floor = M.hellinger_distance(test, lorenz[4000:4000 + 10 * t_test]).value
    assert first_only < 0.3 and floor < 0.3
    assert whole.value > 0.6 and whole.value > 3 * floor
    assert "dimensions 0, 1, 2 (3 of them) are constant in 9 of their 10 chunks" in whole.reason
    assert M.power_spectrum_correlation(test, gen).value < M.power_spectrum_correlation(test, gen[:t_test]).value


def test_chunked_spectrum_of_one_chunk_is_the_plain_spectrum(lorenz):
    p, n, k = M.chunked_spectrum(lorenz[:2000, 0], 2000)
    assert (n, k) == (1, 0)
    np.testing.assert_allclose(p, M.smoothed_spectrum(lorenz[:2000, 0]), rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(M.chunk_starts(2500, 1000), [0, 750, 1500])   # the last chunk ends at T


# ------------------------------------------------------------------------ floors and method choice
def test_uninformative_floor_is_flagged(lorenz):
    test = _embed5(lorenz[:6000], 300, step=20)
    other = _embed5(lorenz[6000:], 300, step=20)
    floor = M.d_stsp(test, other, method="bins").value
    base = M.trivial_baselines(test, 300, method="bins")["D_stsp"].value   # a constant at the mean
    ok, why = M.informative(floor, base)
    assert not ok and why.startswith("uninformative")
    # 3-d Lorenz with 10^4 points: the binned floor is a small fraction of the constant's score
    a, b = lorenz[:6000], lorenz[6000:]
    ok, _ = M.informative(M.d_stsp(a, b).value, M.trivial_baselines(a, 6000, method="bins")["D_stsp"].value)
    assert ok
    assert M.informative(0.5, 1.0)[0] is False and M.informative(0.49, 1.0)[0] is True   # the stated rule


def test_auto_method_depends_on_length_and_dimension(lorenz):
    assert M.auto_method(lorenz)[0] == "bins"                  # 12000 points in 3-d: dense cells
    method, why = M.auto_method(lorenz[::40])                  # 300 points: about one per occupied cell
    assert method == "gmm" and "per occupied cell" in why
    assert M.auto_method(_embed5(lorenz, 300, step=20))[0] == "gmm"
    assert M.auto_method(np.random.default_rng(0).standard_normal((500, 6)))[0] == "gmm"
    assert M.d_stsp(lorenz[::40], lorenz[1::40], method="auto").variant["method"] == "gmm"


def test_block_bootstrap_is_made_of_training_blocks():
    x = np.arange(1000.0)[:, None]
    b = M.block_bootstrap(x, 450, block=100, seed=3)
    assert b.shape == (450, 1)
    for s in range(0, 450, 100):                               # each block is a contiguous stretch of x
        assert np.all(np.diff(b[s:s + 100, 0]) == 1.0)


# ------------------------------------------------------------------------ in a run
def test_evaluate_reports_a_collapsed_model_as_failed(tmp_path):
    import torch

    import dsrecon as ds
    from dsrecon import report
    from dsrecon.config import EvalConfig

    k = np.arange(3000)
    np.save(tmp_path / "rec.npy", np.c_[np.sin(k / 7.0) + 0.3 * np.sin(k / 2.3), np.cos(k / 5.1)])
    data = ds.load(str(tmp_path / "rec.npy"))                  # a recording: block-bootstrap floor
    model = ds.PLRNN(obs_dim=2, latent_dim=6, seed=0)
    with torch.no_grad():                                      # all weights 0: z_t = 0 after one step
        for p in model.parameters():
            p.mul_(0.0)
    m, _ = ds.evaluate(model, data, EvalConfig(t_gen=2000), noise_floor_seed=1, prediction=False,
                       lyapunov_k=None, legacy=False)
    assert m["status"] == "failed" and "fixed point" in m["status_reason"]
    assert m["dynamics"]["verdict"] == "fixed point" and m["dynamics"]["data"]["verdict"] == "irregular"
    assert "block bootstrap" in m["noise_floor"]["source"] and len(m["noise_floor"]["seeds"]) == 3
    assert set(m["informative"]) == {"D_stsp", "D_H"} and set(m["trivial_baseline"]) == {"D_stsp", "D_H"}
    assert m["D_H"] == 1.0                                     # constant in every chunk: disjoint spectra
    table = report.score_table(m)
    assert table.startswith("status FAILED") and "informative" in table.splitlines()[1]
