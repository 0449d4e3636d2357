"""Speed of the metrics against named baselines, on the same arrays.

    python benchmarks/bench_metrics.py

Baselines, both direct implementations of the same definitions:
- D_stsp: ``np.histogramdd`` (two N-d histograms over the same explicit edges);
- D_H: one dimension at a time, ``np.fft.rfft`` + ``scipy.ndimage.gaussian_filter1d`` per series.
Printed: median of 5 runs, the ratio baseline / dsrecon, and both values (they must agree).
"""
import sys
import time
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, installed or not
from dsrecon.metrics import d_stsp, hellinger_distance, power_spectrum_correlation  # noqa: E402


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


if __name__ == "__main__":
    main()
