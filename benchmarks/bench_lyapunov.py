"""λ_max from data and model spectra: accuracy against known exponents, speed against nolds.lyap_r.

Three parts, all in one run on the same machine:

1. *Accuracy* of ``max_lyapunov(x, dt)`` from 20 000 samples of the x coordinate alone, default settings
   (everything automatic), Rosenstein (the default) and Kantz, without and with 5 % Gaussian observation
   noise (standard deviation 0.05 · std(x)), each on 3 orbits (initial-condition seeds 0, 1, 2):
   - the issue-3 targets: Lorenz σ=16, ρ=45.92, β=4, Δt=0.01 (1.50; Wolf et al. 1985), Lorenz 10/28/8⁄3,
     Δt=0.01 (0.9056; Sprott 2003 App. A), Rössler a=0.15, b=0.2, c=10, Δt=0.1 (0.090; Rosenstein et al. 1993);
   - Rössler a=b=0.2, c=5.7, Δt=0.1 (0.0714; Sprott 2003 App. A): probably among the systems the fit-region
     constants were originally set on (max_lyapunov's docstring names "Rössler"), so not an independent check;
   - systems the estimator was *not* tuned on: Chen a=35, b=3, c=28, Δt=0.005 (2.02: QR on the true equations, 3 × 1000 time units, this repository's
     session; the literature quotes 2.027), Thomas b=0.18, Δt=0.1 (0.0313: QR on the true equations,
     5000 time units, same session).
   Orbits: odeint (LSODA) at rtol = atol = 1e-10 after a transient.
2. *Speed* against ``nolds.lyap_r`` (same estimator, Rosenstein 1993) on the same series in the same run:
   nolds with the embedding, Theiler window (min_tsep) and fit region that max_lyapunov chose, and nolds
   with its default trajectory_len = 20. nolds builds the full T x T distance matrix (O(T²) time and about
   3 GB of memory at T = 20 000). Then max_lyapunov alone at n = 100 000.
3. *Model spectrum*: ``lyapunov_spectrum`` of an M = 100 PLRNN (all 100 exponents, 10⁴ steps after 10³
   warm-up steps, QR every step) and ``correlation_dimension`` of Lorenz x.

nolds 0.6.2 needs ``setuptools`` (pkg_resources) importable, and its default min_tsep computation fails
under numpy 2, so min_tsep is always passed. nolds returns λ per step; it is divided by dt here.

    python benchmarks/bench_lyapunov.py [--n 20000] [--no-nolds-default] [--skip-accuracy] [--threads 2]
"""
from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
from scipy.integrate import odeint

from dsrecon.lyapunov import correlation_dimension, lyapunov_spectrum, max_lyapunov


def lorenz(s, r, b):
    return lambda u, t: [s * (u[1] - u[0]), u[0] * (r - u[2]) - u[1], u[0] * u[1] - b * u[2]]


def rossler(a, b, c):
    return lambda u, t: [-u[1] - u[2], u[0] + a * u[1], b + u[2] * (u[0] - c)]


def chen(a, b, c):
    return lambda u, t: [a * (u[1] - u[0]), (c - a) * u[0] - u[0] * u[2] + c * u[1], u[0] * u[1] - b * u[2]]


def thomas(b):
    return lambda u, t: [np.sin(u[1]) - b * u[0], np.sin(u[2]) - b * u[1], np.sin(u[0]) - b * u[2]]


SYSTEMS = {
    # name: (vector field, initial condition, dt, transient samples, reference per time unit, source, tuned on)
    "lorenz paper": (lorenz(16.0, 45.92, 4.0), [1, 1, 20], 0.01, 2000, 1.50, "Wolf et al. 1985", True),
    "lorenz classic": (lorenz(10.0, 28.0, 8 / 3), [1, 1, 20], 0.01, 2000, 0.9056, "Sprott 2003 App. A", True),
    "rossler paper": (rossler(0.15, 0.2, 10.0), [1, 1, 0], 0.1, 2000, 0.090, "Rosenstein et al. 1993", True),
    "rossler classic": (rossler(0.2, 0.2, 5.7), [1, 1, 0], 0.1, 2000, 0.0714, "Sprott 2003 App. A", None),
    "chen": (chen(35.0, 3.0, 28.0), [-10, 0, 37], 0.005, 4000, 2.02, "QR on the equations (lit. 2.027)", False),
    "thomas": (thomas(0.18), [0.1, 0.0, -0.1], 0.1, 2000, 0.0313, "QR on the equations", False),
}


def orbit(name, n, seed=0):
    rhs, u0, dt, transient, *_ = SYSTEMS[name]
    u0 = np.asarray(u0, float) + np.random.default_rng(seed).standard_normal(3)
    t = np.arange(transient + n) * dt
    return odeint(rhs, u0, t, rtol=1e-10, atol=1e-10, mxstep=100_000)[transient:]


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


def accuracy(n):
    print(f"\n== accuracy: {n} samples of x, default settings, 3 orbits each (relative error per orbit) ==")
    print(f"{'system':<16}{'ref':>8}  {'noise':>5}  {'method':<11}{'mean':>9}{'rel. errors':>24}{'stderr':>9}"
          f"{'s/call':>8}  tuned on?")
    for name, (_, _, dt, _, ref, source, tuned) in SYSTEMS.items():
        xs = [orbit(name, n, seed)[:, 0] for seed in range(3)]
        for noise in (0.0, 0.05):
            for method in ("rosenstein", "kantz"):
                vals, ses, t_all = [], [], 0.0
                for seed, x in enumerate(xs):
                    if noise:
                        x = x + noise * np.std(x) * np.random.default_rng(100 + seed).standard_normal(len(x))
                    r, t = timed(lambda: max_lyapunov(x, dt, method=method))
                    vals.append(r.value)
                    ses.append(r.stderr)
                    t_all += t
                errs = " ".join(f"{v / ref - 1:+.0%}" for v in vals)
                print(f"{name:<16}{ref:>8.4g}  {noise:>5.0%}  {method:<11}{np.mean(vals):>9.4g}{errs:>24}"
                      f"{np.mean(ses):>9.2g}{t_all / 3:>8.2f}  {'yes' if tuned else 'no'} ({source})")


def speed(n, nolds_default):
    nolds = import_nolds()
    print(f"\n== speed against nolds.lyap_r: x coordinate, {n} samples ==")
    rows = []
    for name in ("lorenz classic", "lorenz paper"):
        dt, ref = SYSTEMS[name][2], SYSTEMS[name][4]
        x = orbit(name, n)[:, 0]
        ours, t_ours = timed(lambda: max_lyapunov(x, dt), repeat=3)
        kantz, t_kantz = timed(lambda: max_lyapunov(x, dt, method="kantz"), repeat=3)
        a, b = ours.fit_range
        print(f"{name}: dsrecon {ours}")
        common = dict(emb_dim=ours.emb_dim, lag=ours.delay, min_tsep=ours.theiler, fit="poly")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            lam_same, t_same = timed(lambda: nolds.lyap_r(x, trajectory_len=b, fit_offset=a, **common) / dt)
        rows.append((name, "dsrecon rosenstein (auto)", ours.value, ref, t_ours, t_same))
        rows.append((name, "dsrecon kantz (auto)", kantz.value, ref, t_kantz, t_same))
        rows.append((name, "nolds.lyap_r (dsrecon's region)", lam_same, ref, t_same, t_same))
        if nolds_default:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                lam_def, t_def = timed(lambda: nolds.lyap_r(x, trajectory_len=20, **common) / dt)
            rows.append((name, "nolds.lyap_r (trajectory_len=20)", lam_def, ref, t_def, t_same))
    print(f"\n{'system':<16}{'estimator':<36}{'lambda':>9}{'ref':>8}{'error':>9}{'time s':>9}{'nolds/this':>12}")
    for name, est, lam, ref, t, t_nolds in rows:
        print(f"{name:<16}{est:<36}{lam:>9.4f}{ref:>8.4f}{(lam - ref) / ref:>+9.1%}{t:>9.2f}{t_nolds / t:>12.1f}")

    x = orbit("lorenz paper", 100_000)[:, 0]
    for method in ("rosenstein", "kantz"):
        r, t = timed(lambda: max_lyapunov(x, 0.01, method=method))
        print(f"n = 100 000 (lorenz paper, x), {method}: {t:.2f} s; lambda_max = {r.value:.4g} ± {r.stderr:.2g} "
              f"(reference 1.50)")


def model_spectrum():
    import torch

    from dsrecon.models import PLRNN

    print("\n== model spectrum and correlation dimension ==")
    m = PLRNN(3, 100, seed=0)
    for dtype in (torch.float32,):
        m = m.to(dtype)
        spec, t = timed(lambda: lyapunov_spectrum(m, n_steps=10_000, transient=1000))
        print(f"PLRNN M=100, all 100 exponents, 10^4 steps (+10^3 warm-up), QR every step, {dtype}: {t:.1f} s "
              f"(torch threads {torch.get_num_threads()}); lambda_1 = {spec.values[0]:.4g}/step")
    spec, t = timed(lambda: lyapunov_spectrum(m, n_steps=10_000, transient=1000, qr_every=5))
    print(f"same with qr_every=5: {t:.1f} s; lambda_1 = {spec.values[0]:.4g}/step")
    x = orbit("lorenz classic", 20_000)[:, 0]
    cd, t = timed(lambda: correlation_dimension(x))
    print(f"correlation_dimension(lorenz classic x, 20 000 samples, m = 1..10): {t:.1f} s; D2 = {cd.value:.3f} "
          f"(Grassberger & Procaccia 1983: 2.05)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000, help="samples of the x coordinate (default 20000)")
    ap.add_argument("--no-nolds-default", action="store_true", help="skip nolds with trajectory_len=20")
    ap.add_argument("--skip-accuracy", action="store_true", help="only the speed and model parts")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = ap.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    print(f"cores available: {len(os.sched_getaffinity(0))}")
    if not args.skip_accuracy:
        accuracy(args.n)
    speed(args.n, not args.no_nolds_default)
    model_spectrum()


if __name__ == "__main__":
    main()
