"""λ_max from a scalar time series: dsrecon.lyapunov.max_lyapunov against nolds.lyap_r (same method).

Both implement Rosenstein et al. (1993). For each Lorenz-63 setting the x coordinate (dt = 0.01, 20 000
samples after a transient, odeint at rtol = atol = 1e-10) is given to

- ``max_lyapunov(x, dt)``: everything automatic (delay, dimension, Theiler window, horizon, fit region);
- ``nolds.lyap_r`` with the same embedding, Theiler window (min_tsep) and fit region that max_lyapunov
  chose (fit="poly", fit_offset = start, trajectory_len = end of the region): same estimator, so the
  values should agree and the times compare the implementations (nolds builds the full T x T distance
  matrix: O(T^2) time and memory, about 3 GB at T = 20 000);
- ``nolds.lyap_r`` with the same embedding and min_tsep but its default trajectory_len = 20 and
  fit_offset = 0, i.e. what one gets without choosing a fit region (``--no-nolds-default`` skips it).

nolds 0.6.2 needs ``setuptools`` (pkg_resources) importable, and its default min_tsep computation fails
under numpy 2, so min_tsep is always passed. nolds returns λ per step; it is divided by dt here.

    python benchmarks/bench_lyapunov.py [--n 20000] [--no-nolds-default]
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from scipy.integrate import odeint

from dsrecon.lyapunov import max_lyapunov

SYSTEMS = {
    # name: (sigma, rho, beta, reference lambda_max per time unit, source)
    "lorenz classic": (10.0, 28.0, 8.0 / 3.0, 0.906, "Sprott 2003, App. A: 0.9056"),
    "lorenz paper": (16.0, 45.92, 4.0, 1.50, "Wolf et al. 1985, Table 1; App. A.4 of the paper"),
}
DT = 0.01


def lorenz_x(sigma, rho, beta, n, transient=2_000):
    def rhs(u, t):
        x, y, z = u
        return [sigma * (y - x), x * (rho - z) - y, x * y - beta * z]

    t = np.arange(transient + n) * DT
    return odeint(rhs, [1.0, 1.0, 20.0], t, rtol=1e-10, atol=1e-10)[transient:, 0]


def import_nolds():
    try:
        import setuptools  # noqa: F401  (nolds 0.6.2 imports pkg_resources, which comes with setuptools)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import nolds
    except ImportError as err:
        raise SystemExit(f"nolds (0.6.2) and setuptools<81 are needed for the comparison: "
                         f"pip install 'nolds==0.6.2' 'setuptools<81' ({err})") from None
    return nolds


def timed(fn, repeat=1):
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000, help="samples of the x coordinate (default 20000)")
    ap.add_argument("--no-nolds-default", action="store_true", help="skip nolds with trajectory_len=20")
    args = ap.parse_args(argv)
    nolds = import_nolds()

    rows = []
    for name, (sigma, rho, beta, ref, source) in SYSTEMS.items():
        x = lorenz_x(sigma, rho, beta, args.n)
        ours, t_ours = timed(lambda: max_lyapunov(x, DT), repeat=3)
        a, b = ours.fit_range
        print(f"\n{name} (sigma={sigma:g}, rho={rho:g}, beta={beta:.4g}), x coordinate, {args.n} samples, dt={DT}; "
              f"reference {ref} ({source})")
        print(f"  dsrecon : {ours}")
        common = dict(emb_dim=ours.emb_dim, lag=ours.delay, min_tsep=ours.theiler, fit="poly")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            lam_same, t_same = timed(lambda: nolds.lyap_r(x, trajectory_len=b, fit_offset=a, **common) / DT)
        print(f"  nolds   : {lam_same:.4g} per time unit with emb_dim={ours.emb_dim}, lag={ours.delay}, "
              f"min_tsep={ours.theiler}, fit_offset={a}, trajectory_len={b}")
        rows.append((name, "dsrecon max_lyapunov (auto)", ours.value, ref, t_ours, t_ours))
        rows.append((name, "nolds.lyap_r (dsrecon's region)", lam_same, ref, t_same, t_ours))
        if not args.no_nolds_default:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                lam_def, t_def = timed(lambda: nolds.lyap_r(x, trajectory_len=20, **common) / DT)
            rows.append((name, "nolds.lyap_r (trajectory_len=20)", lam_def, ref, t_def, t_ours))

    print(f"\n{'system':<16}{'estimator':<36}{'lambda':>9}{'ref':>7}{'error':>9}{'time s':>9}{'x dsrecon':>11}")
    for name, est, lam, ref, t, t_ours in rows:
        print(f"{name:<16}{est:<36}{lam:>9.4f}{ref:>7.3f}{(lam - ref) / ref:>+9.1%}{t:>9.2f}{t / t_ours:>11.1f}")


if __name__ == "__main__":
    main()
