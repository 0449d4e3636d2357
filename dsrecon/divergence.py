"""The divergence curve d(k) of nearby states and its fit: the numerical heart of λ_max from data.

:class:`Divergence` (Rosenstein et al. 1993: one nearest neighbour per reference point) and
:class:`KantzDivergence` (Kantz 1994: the mean over an eps-neighbourhood) compute the mean log distance of
pairs k steps after they were close, lag by lag on demand, with per-block sums for the bootstrap;
:func:`divergence_curve` grows the horizon until d(k) saturates; :func:`auto_fit_range` finds the linear
region, :func:`bootstrap_stderr` the standard error of its slope and :func:`chaos_verdict` says whether the
curve shows exponential divergence. :func:`dsrecon.maxlyap.max_lyapunov` documents the rules (its steps 5-9).
"""
from __future__ import annotations

import math
import warnings

import numpy as np
from scipy.spatial import cKDTree

from .errors import DataError

FIT_SEARCH = (0.05, 0.70)  # fit windows lie where d(k) has risen 5 % .. 70 % of the way to its plateau
FIT_RMS_TOL = 0.01         # max RMS residual of the fitted line, as a fraction of the total rise
SATURATION_TOL = 0.05      # d(k) counts as saturated when its last quarter rises < 5 % of the total
CHAOS_N_SIGMA = 3.0        # chaotic needs a slope more than this many bootstrap standard errors above 0
N_GROUPS = 20              # blocks of reference points (contiguous in time) for the bootstrap
N_BOOT = 200               # bootstrap resamples of those blocks


class Divergence:
    """Mean log distance of the pairs (i, j) after k steps, computed lag by lag on demand (Rosenstein).

    Pairs are sorted by max(i, j) so that the pairs still inside the series at lag k are a prefix. Besides
    the curve, the sums and counts of the log distances per group of reference points are kept
    (``group`` = block of i in time) for the bootstrap.
    """

    def __init__(self, Y: np.ndarray, i: np.ndarray, j: np.ndarray, n_groups: int = N_GROUPS):
        order = np.argsort(np.maximum(i, j), kind="stable")
        self.i, self.j = i[order], j[order]
        self.last = np.maximum(self.i, self.j)
        self.cols = [np.ascontiguousarray(Y[:, c]) for c in range(Y.shape[1])]
        self.M = len(Y)
        self.n_groups = n_groups
        self.group = np.minimum(self.i * n_groups // self.M, n_groups - 1)
        self.values: list[float] = []
        self.sums: list[np.ndarray] = []
        self.counts: list[np.ndarray] = []

    def _log_dist(self, ii, jj, k):
        sq = None
        for col in self.cols:
            v = col[k:]                          # v[ii] == col[ii + k]
            dlt = v[ii] - v[jj]
            sq = dlt * dlt if sq is None else sq + dlt * dlt
        with np.errstate(divide="ignore"):
            return 0.5 * np.log(sq)

    def _record(self, logs, groups):
        ok = np.isfinite(logs)                   # identical states (distance 0) are left out
        if not ok.all():
            logs, groups = logs[ok], groups[ok]
        self.values.append(float(logs.mean()) if len(logs) else np.nan)
        self.sums.append(np.bincount(groups, weights=logs, minlength=self.n_groups))
        self.counts.append(np.bincount(groups, minlength=self.n_groups).astype(np.float64))

    def extend(self, H: int) -> np.ndarray:
        for k in range(len(self.values), H + 1):
            n = int(np.searchsorted(self.last, self.M - k))
            self._record(self._log_dist(self.i[:n], self.j[:n], k), self.group[:n])
        return np.asarray(self.values[: H + 1])

    def grouped(self, H: int) -> tuple[np.ndarray, np.ndarray]:
        """(sums, counts), each (H + 1, n_groups): the curve is sums.sum(1) / counts.sum(1)."""
        self.extend(H)
        return np.asarray(self.sums[: H + 1]), np.asarray(self.counts[: H + 1])


class KantzDivergence(Divergence):
    """Kantz (1994): S(k) = < ln( mean_{j in U_eps(i)} ||y_{i+k} − y_{j+k}|| ) >_i over reference points i,
    U_eps(i) the (at most ``KANTZ_MAX_NEIGHBOURS`` closest) neighbours within eps outside the Theiler window.

    ``nbr`` is (n_ref, K) with −1 for empty slots. At lag k a neighbour counts while both i + k and j + k
    are inside the series; a reference counts while it has at least one such neighbour.
    """

    def __init__(self, Y: np.ndarray, ref: np.ndarray, nbr: np.ndarray, n_groups: int = N_GROUPS):
        super().__init__(Y, ref, ref, n_groups)  # i, group, cols, M; j is unused
        order = np.argsort(ref, kind="stable")
        self.ref, self.nbr = ref[order], nbr[order]
        self.group = np.minimum(self.ref * n_groups // self.M, n_groups - 1)

    def extend(self, H: int) -> np.ndarray:
        for k in range(len(self.values), H + 1):
            n = int(np.searchsorted(self.ref, self.M - k))        # references with i + k inside
            r, nb = self.ref[:n], self.nbr[:n]
            ok = (nb >= 0) & (nb < self.M - k)
            jj = np.where(ok, nb, 0)
            sq = 0.0
            for col in self.cols:
                v = col[k:]
                dlt = v[r][:, None] - v[jj]
                sq = sq + dlt * dlt
            dist = np.where(ok, np.sqrt(sq), 0.0)
            cnt = ok.sum(axis=1)
            has = cnt > 0
            with np.errstate(divide="ignore"):
                logs = np.log(dist[has].sum(axis=1) / cnt[has])
            self._record(logs, self.group[:n][has])
        return np.asarray(self.values[: H + 1])


def neighbourhoods(Y: np.ndarray, ref: np.ndarray, theiler: int, eps: float, k_max: int,
                    tree: cKDTree | None = None, chunk_elems: int = 4_000_000) -> np.ndarray:
    """Up to ``k_max`` closest neighbours j of every reference i with ||y_i − y_j|| <= eps, |i − j| > theiler
    and a nonzero distance -> (n_ref, k_max) indices, −1 where fewer exist. Asks the KD-tree for
    4 (k_max + 2 theiler + 1) neighbours within eps first (temporal neighbours fill the closest slots of a
    finely sampled flow) and grows the number for the references that may have more."""
    tree = cKDTree(Y) if tree is None else tree
    n = len(Y)
    out = np.full((len(ref), k_max), -1, dtype=np.int64)
    todo = np.arange(len(ref))
    k = min(n, 4 * (k_max + 2 * theiler + 1))
    while todo.size:
        step = max(1, chunk_elems // k)
        left = []
        for s in range(0, todo.size, step):
            idx = todo[s: s + step]
            r = ref[idx]
            d, j = tree.query(Y[r], k=k, distance_upper_bound=eps)
            d, j = d.reshape(len(idx), k), j.reshape(len(idx), k)
            ok = (j < n) & (np.abs(j - r[:, None]) > theiler) & (d > 0)
            n_ok = ok.sum(axis=1)
            full = (n_ok >= k_max) | (j[:, -1] >= n) | (k >= n)   # enough, or every candidate within eps seen
            rank = np.cumsum(ok, axis=1) - 1
            take = ok & (rank < k_max)
            rows, cols = np.nonzero(take)
            out[idx[rows], rank[rows, cols]] = j[rows, cols]
            left.append(idx[~full])
        todo = np.concatenate(left)
        if k >= n:
            break
        k = min(n, 4 * k)
    return out


def curve_rise(curve: np.ndarray) -> tuple[float, float, int]:
    """(base B, plateau P, index of B): P = mean of the last quarter of the curve, B = the minimum of the
    curve before it first gets halfway from d(0) to P."""
    h = len(curve) - 1
    plateau = float(np.mean(curve[h - h // 4:]))
    half = np.nonzero(curve >= 0.5 * (curve[0] + plateau))[0]
    stop = int(half[0]) + 1 if half.size else len(curve)
    i0 = int(np.argmin(curve[:stop]))
    return float(curve[i0]), plateau, i0


def saturated(curve: np.ndarray) -> bool:
    """Whether d(k) has reached its plateau: the mean over the last quarter of the lags exceeds the mean
    over the quarter before by less than 5 % of the total rise (or by less than 0.01 in ln units)."""
    h = len(curve) - 1
    q = max(1, h // 4)
    late = np.mean(curve[h - q + 1:]) - np.mean(curve[h - 2 * q + 1: h - q + 1])
    total = np.max(curve) - np.min(curve)
    return bool(late <= SATURATION_TOL * total or late < 0.01)


def fit_line(lags: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    slope, intercept = np.polyfit(lags.astype(np.float64), y, 1)
    return float(slope), float(intercept)


def auto_fit_range(curve: np.ndarray) -> tuple[int, int, str | None]:
    """The linear region (a, b) of d(k), and a reason string when there is no region of exponential growth
    (then (a, b) covers the flat rest of the curve); see "Fit region" in :func:`max_lyapunov`."""
    B, P, i0 = curve_rise(curve)
    R = P - B
    H = len(curve) - 1
    if not R > 0:                      # no rise at all (flat or falling curve): fit all of it (slope ~ 0)
        return 0, H + 1, None
    lo, hi = FIT_SEARCH
    above_lo = np.nonzero(curve[i0:] >= B + lo * R)[0]
    A = i0 + int(above_lo[0])
    above_hi = np.nonzero(curve[A:] >= B + hi * R)[0]
    Z = A + int(above_hi[0]) if above_hi.size else H      # last lag of the search range (inclusive)
    if not R > 1.0 and Z - A + 1 < 3:  # a weak rise that happens at once (a noisy periodic orbit): the whole
        return 0, H + 1, None          # curve, as before; a weak but gradual rise (EEG) gets the window search
    if Z - A + 1 < 3:
        return Z, H + 1, (
            f"the divergence curve jumps from its minimum to {hi:.0%} of its plateau within {Z - i0} step(s) and then "
            f"grows by a factor {math.exp(max(P - curve[Z], 0.0)):.2g}: no region of exponential growth (noise, or a "
            f"series sampled too coarsely or too short; pass fit_range=(k0, k1) to force a fit)")
    # all windows [a, b) with A <= a < b <= Z + 1 (endpoints on a grid of <= ~400 values), O(1) each
    W = Z - A + 1
    g = max(1, int(math.ceil(W / 400)))
    ends = np.unique(np.r_[np.arange(A, Z + 2, g), Z + 1])
    k = np.arange(len(curve), dtype=np.float64) - A
    y = curve - curve[A]
    c = [np.concatenate([[0.0], np.cumsum(v)]) for v in (np.ones_like(k), k, k * k, y, y * y, k * y)]
    a, b = ends[:, None], ends[None, :]
    n, sx, sxx, sy, syy, sxy = (ci[b] - ci[a] for ci in c)
    with np.errstate(divide="ignore", invalid="ignore"):
        vx = sxx - sx * sx / n
        cxy = sxy - sx * sy / n
        vy = syy - sy * sy / n
        rms = np.sqrt(np.maximum(vy - cxy * cxy / vx, 0.0) / n)
    valid = (n >= 3) & np.isfinite(rms)
    tol = FIT_RMS_TOL * R
    for _ in range(4):                 # relax the tolerance if no window meets it
        ok = valid & (rms <= tol)
        if ok.any():
            length = np.where(ok, n, -1)
            best = np.nonzero(length == length.max())
            pick = np.argmin(rms[best])
            return int(ends[best[0][pick]]), int(ends[best[1][pick]]), None
        tol *= 2
    return A, Z + 1, None



def divergence_curve(div, M, theiler, max_horizon, fit_range):
    """d(k) up to the given or adaptive horizon (see 5. in :func:`max_lyapunov`) -> (curve, H)."""
    cap = max(2, M // 4)
    if max_horizon is not None:
        H = min(max_horizon, M - 1)
        curve = div.extend(H)
    else:
        H = min(cap, max(16, 4 * theiler, 0 if fit_range is None else fit_range[1] - 1))
        curve = div.extend(H)
        while not saturated(curve) and H < cap:
            H = min(cap, 2 * H)
            curve = div.extend(H)
    if not np.all(np.isfinite(curve)):
        k_bad = int(np.nonzero(~np.isfinite(curve))[0][0])
        raise DataError(f"the divergence curve is undefined from lag {k_bad} on (no pair left inside the series, or all "
                        f"pairs identical); use a smaller max_horizon or a longer series")
    if fit_range is None and not saturated(curve):
        warnings.warn(f"lambda_max: the divergence curve has not saturated within max_horizon = {H} steps; "
                      f"the plateau, and with it the fit region, may be misplaced (check result.plot())",
                      RuntimeWarning, stacklevel=3)
    return curve, H


def bootstrap_stderr(div, H, a, b, n_boot, rng) -> float:
    """Standard error of the slope per step: the standard deviation of the slopes refitted on the same fit region
    to ``n_boot`` bootstrap resamples of the N_GROUPS blocks of reference points (blocks are contiguous in time,
    so neighbouring, correlated references stay together). NaN when n_boot = 0."""
    if n_boot == 0:
        return float("nan")
    sums, counts = div.grouped(H)
    sums, counts = sums[a:b], counts[a:b]
    G = sums.shape[1]
    draws = rng.integers(0, G, size=(n_boot, G))
    w = np.zeros((n_boot, G))
    np.add.at(w, (np.arange(n_boot)[:, None], draws), 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        curves = (sums @ w.T) / (counts @ w.T)          # (b - a, n_boot)
    k = np.arange(a, b, dtype=np.float64)
    kc = k - k.mean()
    slopes = (kc @ (curves - curves.mean(axis=0))) / (kc @ kc)
    slopes = slopes[np.isfinite(slopes)]
    return float(np.std(slopes, ddof=1)) if len(slopes) > 1 else float("nan")


def chaos_verdict(curve, slope, stderr) -> tuple[bool, str]:
    """(chaotic, reason) from the divergence curve; see "Chaotic or not" in :func:`max_lyapunov`."""
    B, P, _ = curve_rise(curve)
    rise = P - B
    if not rise >= 1.0:
        return False, (f"nearby states do not separate exponentially: the divergence curve rises by a factor "
                       f"{math.exp(max(rise, 0.0)):.2g} < e from its minimum to its plateau")
    if not slope > 0:
        return False, f"the fitted slope {slope:.3g} per step is not positive"
    if math.isfinite(stderr) and slope <= CHAOS_N_SIGMA * stderr:
        return False, (f"the slope {slope:.3g} per step is within {CHAOS_N_SIGMA:g} standard errors "
                       f"({stderr:.2g}) of 0")
    return True, (f"the divergence curve rises by a factor {math.exp(rise):.3g} and its slope is "
                  + (f"{slope / stderr:.0f} standard errors above 0" if math.isfinite(stderr) and stderr > 0
                     else "positive"))
