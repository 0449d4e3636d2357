"""Speed of the metrics against a named baseline, on the same arrays.

    python benchmarks/bench_metrics.py

Baseline for D_stsp: the direct implementation with ``np.histogramdd`` (two N-d histograms over the
same edges). Printed: median of 5 runs, and the ratio baseline / dsrecon.
"""
import time

import numpy as np

from dsrecon.metrics import d_stsp, hellinger_distance, power_spectrum_correlation


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


def main():
    rng = np.random.default_rng(0)
    t = rng.standard_normal((100_000, 3))
    g = 1.1 * rng.standard_normal((100_000, 3))
    ours = median_time(lambda: d_stsp(t, g))
    base = median_time(lambda: histogramdd_d_stsp(t, g))
    print(f"D_stsp, 1e5 x 3 points, 30 bins: dsrecon {ours * 1e3:.1f} ms, np.histogramdd baseline "
          f"{base * 1e3:.1f} ms, ratio {base / ours:.1f}x; values {d_stsp(t, g).value:.6f} / "
          f"{histogramdd_d_stsp(t, g):.6f}")
    dh = median_time(lambda: hellinger_distance(t, g))
    psc = median_time(lambda: power_spectrum_correlation(t, g))
    print(f"D_H, 1e5 x 3 points, sigma 20: {dh * 1e3:.1f} ms; PSC: {psc * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
