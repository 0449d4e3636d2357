"""Speed of the metrics against named baselines, on the same arrays.

    python benchmarks/bench_metrics.py

Baselines, both direct implementations of the same definitions:
- D_stsp: ``np.histogramdd`` (two N-d histograms over the same explicit edges);
- D_H: one dimension at a time, ``np.fft.rfft`` + ``scipy.ndimage.gaussian_filter1d`` per series;
- Gaussian-mixture D_stsp: a loop over the 1000 Monte-Carlo samples, one vectorised row of densities
  each (the "Python loop" the issue rules out, but still vectorised over the mixture components);
  a loop over points as well would take longer still.
Printed: median of 5 runs (GMM: 3), the ratio baseline / dsrecon, and both values (they must agree).
- Many initial conditions: B free runs generated as one batch (z0 of shape (B, M), one step per time
  step for all) against B separate runs, PLRNN with M = 100, on the CPU with 1 torch thread.
Targets (issue 5): binned D_stsp of 3-d data with 1e5 points < 1 s; Gaussian-mixture D_stsp on 1e4
points < 30 s on 2 cores.
"""
import sys
import time
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, installed or not
from dsrecon.metrics import d_stsp, hellinger_distance, power_spectrum_correlation  # noqa: E402
from scipy.special import logsumexp  # noqa: E402


def median_time(fn, repeat=5):
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def histogramdd_d_stsp(t, g, n_bins=30, alpha=1e-5, m=0.1):
    lo, hi = t.min(0) - m * t.std(0), t.max(0) + m * t.std(0)
    edges = [np.linspace(lo[i], hi[i], n_bins + 1) for i in range(t.shape[1])]
    ct = np.histogramdd(t, bins=edges)[0].ravel()
    cg = np.histogramdd(g, bins=edges)[0].ravel()
    pt = (ct + alpha) / (ct.sum() + alpha * ct.size)
    pg = (cg + alpha) / (cg.sum() + alpha * cg.size)
    return float(np.sum(pt * np.log(pt / pg)))


def direct_hellinger(t, g, sigma=20.0):
    T = min(len(t), len(g))
    hs = []
    for d in range(t.shape[1]):
        ps = []
        for s in (t[:T, d], g[:T, d]):
            p = gaussian_filter1d(np.abs(np.fft.rfft((s - s.mean()) / s.std())) ** 2, sigma)
            ps.append(p / p.sum())
        hs.append(np.sqrt(max(0.0, 1 - np.sum(np.sqrt(ps[0] * ps[1])))))
    return float(np.mean(hs))


def loop_gmm_d_stsp(t, g, sigma2=1.0, n_mc=1000, seed=0):
    """The same estimate, one Monte-Carlo sample at a time (same samples: same rng calls)."""
    mu, sd = t.mean(0), t.std(0)
    t, g = (t - mu) / sd, (g - mu) / sd
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(t), n_mc)
    s = t[idx] + np.sqrt(sigma2) * rng.standard_normal((n_mc, t.shape[1]))
    total = 0.0
    for x in s:
        lp = logsumexp(-np.sum((x - t) ** 2, axis=1) / (2 * sigma2)) - np.log(len(t))
        lq = logsumexp(-np.sum((x - g) ** 2, axis=1) / (2 * sigma2)) - np.log(len(g))
        total += lp - lq
    return total / n_mc


def main():
    rng = np.random.default_rng(0)
    t = rng.standard_normal((100_000, 3))
    g = 1.1 * rng.standard_normal((100_000, 3))
    ours = median_time(lambda: d_stsp(t, g))
    base = median_time(lambda: histogramdd_d_stsp(t, g))
    print(f"D_stsp, 1e5 x 3 points, 30 bins: dsrecon {ours * 1e3:.1f} ms, np.histogramdd baseline "
          f"{base * 1e3:.1f} ms, ratio {base / ours:.2f}x; values {d_stsp(t, g).value:.9f} / "
          f"{histogramdd_d_stsp(t, g):.9f}")
    dh = median_time(lambda: hellinger_distance(t, g))
    dh_base = median_time(lambda: direct_hellinger(t, g))
    print(f"D_H, 1e5 x 3 points, sigma 20: dsrecon {dh * 1e3:.1f} ms, per-dimension direct baseline "
          f"{dh_base * 1e3:.1f} ms, ratio {dh_base / dh:.2f}x; values {hellinger_distance(t, g).value:.9f} / "
          f"{direct_hellinger(t, g):.9f}")
    psc = median_time(lambda: power_spectrum_correlation(t, g))
    print(f"PSC, 1e5 x 3 points, sigma 20: dsrecon {psc * 1e3:.1f} ms")
    leg = median_time(lambda: d_stsp(t, g, method="legacy"))
    legh = median_time(lambda: hellinger_distance(t, g, variant="legacy"))
    print(f"legacy D_stsp (±2 sd box), 1e5 x 3 points, 30 bins: dsrecon {leg * 1e3:.1f} ms; "
          f"legacy D_H (50 chunks, sigma 2, 500 bins): {legh * 1e3:.1f} ms")
    for dim in (6, 10):
        t6 = rng.standard_normal((10_000, dim))
        g6 = 1.1 * rng.standard_normal((10_000, dim)) + 0.1
        gm = median_time(lambda: d_stsp(t6, g6, method="gmm"), repeat=3)
        gm_base = median_time(lambda: loop_gmm_d_stsp(t6, g6), repeat=3)
        print(f"GMM D_stsp, 1e4 x {dim} points, 1000 MC samples: dsrecon {gm:.2f} s (target < 30 s), "
              f"per-sample loop baseline {gm_base:.2f} s, ratio {gm_base / gm:.1f}x; values "
              f"{d_stsp(t6, g6, method='gmm').value:.9f} / {loop_gmm_d_stsp(t6, g6):.9f}")


def bench_initial_conditions(B=16, t_gen=20_000):
    import torch

    import dsrecon as ds
    from dsrecon.models import free_run

    torch.set_num_threads(1)
    model = ds.PLRNN(obs_dim=3, latent_dim=100, seed=0)
    z0 = torch.randn(B, 100, generator=torch.Generator().manual_seed(0)) * 0.1
    batched = median_time(lambda: free_run(model, z0, t_gen), repeat=3)
    one = median_time(lambda: [free_run(model, z0[b], t_gen) for b in range(B)], repeat=1)
    same = torch.allclose(free_run(model, z0, 50)[:, 3], free_run(model, z0[3], 50), atol=1e-6)
    print(f"{B} initial conditions x {t_gen} steps, PLRNN M=100, 1 thread: batched {batched:.2f} s, one at a time "
          f"{one:.2f} s, ratio {one / batched:.1f}x (same trajectories: {same})")


if __name__ == "__main__":
    main()
    bench_initial_conditions()
