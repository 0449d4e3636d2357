"""Lyapunov exponents: the largest one from a measured time series, and the spectra of models.

Sections
--------
- *Lyapunov exponent from data*: :func:`max_lyapunov` estimates λ_max from a time series by the
  method of Rosenstein, Collins & De Luca (1993) (default) or Kantz (1994) (or nolds as a cross-check),
  with automatic delay embedding (:func:`estimate_delay`, :func:`estimate_embedding_dimension`), Theiler
  window (:func:`mean_period`), horizon and linear fit region, a bootstrap standard error and a
  chaotic/not-chaotic verdict; :func:`predictability_time` turns λ_max into the predictability time
  ln 2 / λ_max that "How to train RNNs on chaotic data" (§4.1, Eq. 17) uses to set the forcing interval τ.
- *Correlation dimension*: :func:`correlation_dimension` (Grassberger & Procaccia 1983), the D_eff of
  "How to train RNNs on chaotic data" App. A.4.
- *Spectra of models*: :func:`qr_log_stretches` (the QR core shared with gradient flossing),
  :func:`lyapunov_spectrum` (QR method on any Model, with convergence diagnostics),
  :func:`true_spectrum` (a simulated dataset's true equations), :func:`kaplan_yorke_dimension`,
  :func:`condition_number_estimate`.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from .errors import ConfigError, DataError

# =====================================================================================================
# Lyapunov exponent from data
# =====================================================================================================
#
# Pipeline of max_lyapunov (each step is a small public or private function below):
#   input -> (T,) or (T, N) float array, checked (finite, long enough, not constant), channels
#   standardised -> Theiler window (mean period) -> delay embedding (AMI / autocorrelation delay,
#   false-nearest-neighbour dimension) for univariate input -> nearest neighbour of every reference
#   point outside the Theiler window (cKDTree) -> mean log divergence d(k), horizon extended until
#   d(k) saturates -> automatic linear region -> slope = λ_max per step.

MIN_POINTS = 1000          # fewest state vectors (after embedding) max_lyapunov accepts
MIN_PERIODS = 10           # fewest mean periods (Theiler windows) the series must span
DEFAULT_N_REF = 20_000     # reference points used by default (all of them when fewer)
AMI_BINS = 32              # histogram bins of the average mutual information
FNN_RTOL, FNN_ATOL = 10.0, 2.0   # Kennel et al. (1992) thresholds
FNN_THRESHOLD = 0.01       # first embedding dimension whose FNN fraction is below this is taken
FNN_MAX_DIM = 10
FNN_N_REF = 5000           # reference points of the FNN test
FIT_SEARCH = (0.05, 0.70)  # fit windows lie where d(k) has risen 5 % .. 70 % of the way to its plateau
FIT_RMS_TOL = 0.01         # max RMS residual of the fitted line, as a fraction of the total rise
SATURATION_TOL = 0.05      # d(k) counts as saturated when its last quarter rises < 5 % of the total
CHAOS_N_SIGMA = 3.0        # chaotic needs a slope more than this many bootstrap standard errors above 0
NOLDS_MAX_POINTS = 30_000  # method="nolds" builds a T x T matrix: refuse longer series
METHODS = ("rosenstein", "kantz", "nolds")


@dataclass
class MaxLyapunov:
    """Largest Lyapunov exponent estimated from data (:func:`max_lyapunov`).

    Attributes
    ----------
    value : float
        λ_max per time unit (= ``per_step / dt``).
    per_step : float
        λ_max per sampling step: the slope of the fitted line.
    dt : float
        Sampling interval (time units per step).
    curve : np.ndarray
        Mean log divergence d(k) = <ln ||y_{i+k} − y_{j+k}||> over the nearest-neighbour pairs (i, j),
        in units of the standardised data.
    lags : np.ndarray
        k = 0, 1, ..., max_horizon (steps); ``curve[k]`` belongs to ``lags[k]``.
    fit_range : tuple[int, int]
        Lags (k_start, k_end) of the fit, inclusive-exclusive: the line is fitted to
        ``curve[k_start:k_end]``.
    intercept : float
        Intercept of the fitted line d(k) ≈ intercept + per_step · k.
    emb_dim : int | None
        Delay-embedding dimension per channel; None when the observed channels were used directly.
    delay : int | None
        Embedding delay in steps; None when not embedded.
    theiler : int
        Theiler window in steps: neighbours j of i satisfy |i − j| > theiler.
    n_pairs : int
        Number of (reference, nearest neighbour) pairs averaged at k = 0.
    dim : int
        Dimension of the state vectors the neighbours were searched in.
    method : str
        ``"rosenstein"``, ``"kantz"`` or ``"nolds"``.
    stderr_per_step : float
        Standard error of ``per_step`` by a block bootstrap over the reference points: the reference points
        are split into 20 blocks contiguous in time, the blocks are resampled with replacement 200 times,
        the curve is recomputed from the resampled blocks and the line refitted on the same fit region;
        the standard deviation of those slopes. It measures the sampling noise of the average, not the
        bias of the estimator or the choice of the fit region. NaN for ``method="nolds"`` or ``n_boot=0``.
    chaotic : bool
        Whether the series shows exponential divergence; see "Chaotic or not" in :func:`max_lyapunov`.
    reason : str
        One sentence saying why ``chaotic`` is what it is.
    eps : float | None
        Neighbourhood radius of Kantz's method in standardised units (None for the other methods).
    """

    value: float
    per_step: float
    dt: float
    curve: np.ndarray
    lags: np.ndarray
    fit_range: tuple[int, int]
    intercept: float
    emb_dim: int | None
    delay: int | None
    theiler: int
    n_pairs: int
    dim: int
    method: str = "rosenstein"
    stderr_per_step: float = float("nan")
    chaotic: bool = True
    reason: str = ""
    eps: float | None = None

    @property
    def stderr(self) -> float:
        """Standard error of ``value`` (per time unit); see ``stderr_per_step``."""
        return self.stderr_per_step / self.dt

    @property
    def predictability_steps(self) -> float:
        """τ_pred = ln 2 / λ_max per step ("How to train RNNs on chaotic data" §4.1, Eq. 17): the number of
        steps over which a small error doubles on average. ``inf`` when λ_max ≤ 0 (use
        :func:`predictability_time` to get an error instead)."""
        return math.log(2.0) / self.per_step if self.per_step > 0 else math.inf

    def __str__(self) -> str:
        tau = self.predictability_steps
        tau_s = (f"tau_pred = ln2/lambda = {tau:.1f} steps ({tau * self.dt:.3g} time units)" if math.isfinite(tau)
                 else "tau_pred undefined (lambda_max <= 0: no sign of chaos)")
        emb = ("observed channels" if self.emb_dim is None
               else f"delay embedding m={self.emb_dim}, delay={self.delay}")
        pm = f" ± {self.stderr:.2g}" if math.isfinite(self.stderr) else ""
        verdict = "chaotic" if self.chaotic else "NOT chaotic"
        return (f"lambda_max = {self.value:.4g}{pm} per time unit = {self.per_step:.4g} per step (dt = {self.dt:g}); "
                f"{tau_s}; {verdict}: {self.reason}; {self.method.capitalize()} fit over lags "
                f"{self.fit_range[0]}..{self.fit_range[1] - 1}, {self.n_pairs} pairs, {emb}, "
                f"Theiler window {self.theiler}")

    def plot(self, ax=None):
        """Plot d(k), the fitted line over the fit region (shaded) and the slope; returns the axes."""
        if ax is None:
            import matplotlib.pyplot as plt  # lazily: slow to import and not needed otherwise

            _, ax = plt.subplots(figsize=(6, 3.5))
        a, b = self.fit_range
        ax.plot(self.lags, self.curve, ".-", ms=2, lw=0.8, label="mean log divergence d(k)")
        sel = self.lags[a:b]
        pm = f" ± {self.stderr:.2g}" if math.isfinite(self.stderr) else ""
        ax.plot(sel, self.intercept + self.per_step * sel, "r-", lw=2,
                label=f"slope {self.per_step:.4g}/step = {self.value:.4g}{pm}/time unit")
        ax.axvspan(self.lags[a], self.lags[b - 1], color="r", alpha=0.1)
        ax.set_xlabel("lag k (steps)")
        ax.set_ylabel("<ln distance>")
        ax.set_title(f"lambda_max ({self.method}){'' if self.chaotic else ': not chaotic'}")
        ax.legend(loc="lower right")
        return ax


def predictability_time(lam) -> float:
    """τ_pred = ln 2 / λ_max, in steps when λ_max is per step ("How to train RNNs on chaotic data",
    §4.1, Eq. 17; the paper sets the teacher-forcing interval τ from it, §4.3 / App. A.4).

    ``lam``: λ_max per step (a number), or a :class:`MaxLyapunov` result (its ``per_step`` is used after
    checking its ``chaotic`` flag).

    Raises DataError (one line that ends by telling the user to pass ``--tau``) for a result flagged not
    chaotic, or for λ_max ≤ 0 or not finite: τ_pred is then undefined (or huge and meaningless) and τ has
    to be set by hand.
    """
    if isinstance(lam, MaxLyapunov):
        if not lam.chaotic:
            raise DataError(f"the series does not look chaotic ({lam.reason}; lambda_max = {lam.value:.3g} per time "
                            f"unit), so tau_pred = ln2/lambda_max is meaningless; set tau by hand: pass --tau N "
                            f"(forcing interval in steps)")
        lam = lam.per_step
    try:
        lam = float(lam)
    except (TypeError, ValueError):
        raise DataError(f"lambda_max must be a number, got {lam!r}") from None
    if not math.isfinite(lam) or lam <= 0:
        raise DataError(
            f"lambda_max = {lam:.4g} per step is not positive: the series does not look chaotic (or the model has "
            f"no positive Lyapunov exponent), so tau_pred = ln2/lambda is undefined; set tau by hand: pass --tau N "
            f"(forcing interval in steps)")
    return math.log(2.0) / lam


# ------------------------------------------------------------------------------------ input checks
def _as_array(x, dt):
    """(array (T,) or (T, N) float64, dt) from an array or an xarray Dataset / DataArray."""
    if hasattr(x, "data_vars"):  # xarray.Dataset (duck-typed: xarray is not imported here)
        if "x" not in x.data_vars:
            raise DataError(f"the dataset has no variable 'x' (variables: {', '.join(map(str, x.data_vars))})")
        if dt is None:
            if "dt" not in x.attrs:
                raise DataError("the dataset has no attrs['dt']; pass dt=... (time units per sample)")
            dt = x.attrs["dt"]
        x = x["x"]
    if hasattr(x, "dims") and hasattr(x, "values"):  # xarray.DataArray
        if dt is None and "dt" in getattr(x, "attrs", {}):
            dt = x.attrs["dt"]
        if "time" in x.dims:
            x = x.transpose("time", ...)
        x = x.values
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"x must be a numeric array, got {type(x).__name__}") from None
    try:
        dt = 1.0 if dt is None else float(dt)
    except (TypeError, ValueError):
        raise DataError(f"dt must be a positive number (time units per sample), got {dt!r}") from None
    if not (math.isfinite(dt) and dt > 0):
        raise DataError(f"dt must be a positive number (time units per sample), got {dt!r}")
    return arr, dt


def _check_series(arr: np.ndarray) -> np.ndarray:
    """Shape, finiteness, length and variance checks; returns (T,) or (T, N) with N ≥ 2 standardised
    channels (constant channels of a multivariate series are dropped)."""
    if arr.ndim not in (1, 2):
        raise DataError(f"x must be a series of shape (T,) or (T, N) (time first), got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        first = int(np.argwhere(bad)[0][0])
        raise DataError(f"x contains {int(bad.sum())} NaN/inf values (first at time index {first}); "
                        f"drop or interpolate them before estimating lambda_max")
    T = arr.shape[0]
    if T < MIN_POINTS:
        hint = ""
        if arr.ndim == 2 and arr.shape[1] > arr.shape[0]:
            hint = (f" (shape {arr.shape} reads as {T} samples of {arr.shape[1]} channels; "
                    f"pass x.T if time is the second axis)")
        raise DataError(f"x is too short for a lambda_max estimate: {T} samples, need at least {MIN_POINTS}{hint}")
    if arr.ndim == 2:
        if arr.shape[1] == 0:
            raise DataError(f"x has no channels (shape {arr.shape})")
        keep = np.ptp(arr, axis=0) > 0
        if not keep.any():
            raise DataError("x is constant (every channel has zero variance): there are no dynamics to estimate "
                            "lambda_max from")
        arr = arr[:, keep]
        if arr.shape[1] == 1:
            arr = arr[:, 0]
    elif np.ptp(arr) == 0:
        raise DataError("x is constant (zero variance): there are no dynamics to estimate lambda_max from")
    arr = arr - arr.mean(axis=0)
    return arr / arr.std(axis=0)


def _check_int(name, value, lo, allow_none=True):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
        raise ConfigError(f"{name} must be an integer >= {lo}, got {value!r}")
    return int(value)


# -------------------------------------------------------------------------- embedding parameters
def mean_period(x) -> float:
    """Mean period of a 1-d series in steps: 1 / (power-weighted mean frequency) of its periodogram,
    the zero frequency excluded. Used as the default Theiler window (Rosenstein et al. 1993)."""
    s = np.asarray(x, dtype=np.float64)
    s = s - s.mean()
    power = np.abs(np.fft.rfft(s)) ** 2
    freq = np.fft.rfftfreq(len(s))
    total = power[1:].sum()
    if total <= 0:
        return 1.0
    return float(1.0 / (np.sum(freq[1:] * power[1:]) / total))


def _autocorrelation(s: np.ndarray, max_lag: int) -> np.ndarray:
    s = s - s.mean()
    f = np.fft.rfft(s, 2 * len(s))
    ac = np.fft.irfft(f * np.conj(f))[: max_lag + 1]
    return ac / ac[0]


def average_mutual_information(x, lags, bins: int = AMI_BINS) -> np.ndarray:
    """Average mutual information I(k) between s_t and s_{t+k} (nats) for each lag in ``lags``, from a
    ``bins`` x ``bins`` histogram with equal-width bins over the range of the series (Fraser & Swinney 1986)."""
    s = np.asarray(x, dtype=np.float64)
    lo, hi = s.min(), s.max()
    if hi <= lo:
        return np.zeros(len(lags))
    a = np.minimum(((s - lo) / (hi - lo) * bins).astype(np.int64), bins - 1)
    out = np.empty(len(lags))
    for n, lag in enumerate(lags):
        u, v = (a, a) if lag == 0 else (a[:-lag], a[lag:])
        joint = np.bincount(u * bins + v, minlength=bins * bins).reshape(bins, bins) / len(u)
        nz = joint > 0
        out[n] = np.sum(joint[nz] * np.log(joint[nz] / np.outer(joint.sum(1), joint.sum(0))[nz]))
    return out


def estimate_delay(x, max_lag: int | None = None, bins: int = AMI_BINS) -> int:
    """Embedding delay (steps) of a 1-d series: the smaller of

    - the first local minimum of the average mutual information (Fraser & Swinney 1986), and
    - the first lag where the autocorrelation falls below 1/e.

    The autocorrelation criterion is what keeps maps sensible: their AMI keeps decaying for many steps
    (its first minimum sits in the estimation noise), while the autocorrelation is ≈ 0 after one step.
    For flows the AMI minimum comes first. If neither occurs within ``max_lag`` (default
    min(T // 10, 2000)), the lag of the smallest AMI is returned.
    """
    s = np.asarray(x, dtype=np.float64)
    max_lag = min(len(s) // 10, 2000) if max_lag is None else int(max_lag)
    max_lag = max(max_lag, 2)
    ac = _autocorrelation(s, max_lag)
    below = np.nonzero(ac[1:] < 1.0 / np.e)[0]
    ac_lag = int(below[0]) + 1 if below.size else None
    stop = max_lag if ac_lag is None else min(max_lag, ac_lag + 1)   # no need to look past the AC lag
    ami = average_mutual_information(s, range(min(64, stop + 1)), bins)
    while True:
        d = np.diff(ami)
        mins = np.nonzero((d[:-1] < 0) & (d[1:] >= 0))[0] + 1
        if mins.size or len(ami) > stop:
            break
        ami = np.concatenate([ami, average_mutual_information(s, range(len(ami), min(2 * len(ami), stop + 1)), bins)])
    candidates = ([int(mins[0])] if mins.size else []) + ([ac_lag] if ac_lag is not None else [])
    if candidates:
        return max(1, min(candidates))
    return int(np.argmin(ami[1:]) + 1)


def delay_embedding(x, emb_dim: int, delay: int) -> np.ndarray:
    """Delay vectors y_t = (x_t, x_{t+delay}, ..., x_{t+(emb_dim-1) delay}) -> (T − (emb_dim−1) delay, emb_dim·N).

    For (T, N) input every channel is embedded and the coordinates are concatenated channel by channel.
    """
    x = np.asarray(x, dtype=np.float64)
    x2 = x[:, None] if x.ndim == 1 else x
    M = x2.shape[0] - (emb_dim - 1) * delay
    if M < 1:
        raise DataError(f"series of {x2.shape[0]} samples is too short for embedding dimension {emb_dim} "
                        f"with delay {delay}")
    return np.concatenate([np.stack([x2[k * delay: k * delay + M, c] for k in range(emb_dim)], axis=1)
                           for c in range(x2.shape[1])], axis=1)


def _nearest_neighbours(Y: np.ndarray, ref: np.ndarray, theiler: int, tree: cKDTree | None = None,
                        k0: int = 20, chunk_elems: int = 4_000_000):
    """Nearest neighbour j of every reference point i with |i − j| > theiler and ||y_i − y_j|| > 0.

    ``tree.query(k=K)`` is asked for K = 20 neighbours first; only the references whose K neighbours all
    fall inside the Theiler window (or coincide with them) are asked again with 4K, and so on. Returns
    (nn, dist) with nn = −1 where no neighbour exists.
    """
    tree = cKDTree(Y) if tree is None else tree
    n = len(Y)
    nn = np.full(len(ref), -1, dtype=np.int64)
    dist = np.full(len(ref), np.inf)
    todo = np.arange(len(ref))
    k = k0
    while todo.size:
        k = min(k, n)
        step = max(1, chunk_elems // k)
        left = []
        for s in range(0, todo.size, step):
            idx = todo[s: s + step]
            r = ref[idx]
            d, j = tree.query(Y[r], k=k)
            d, j = d.reshape(len(idx), k), j.reshape(len(idx), k)
            ok = (np.abs(j - r[:, None]) > theiler) & (d > 0) & (j < n)
            first = ok.argmax(axis=1)
            has = ok[np.arange(len(idx)), first]
            nn[idx[has]] = j[has, first[has]]
            dist[idx[has]] = d[has, first[has]]
            left.append(idx[~has])
        todo = np.concatenate(left)
        if k >= n:
            break
        k *= 4
    return nn, dist


def false_nearest_neighbours(x, delay: int, max_dim: int = FNN_MAX_DIM, *, theiler: int = 0,
                             r_tol: float = FNN_RTOL, a_tol: float = FNN_ATOL, n_ref: int = FNN_N_REF,
                             seed: int = 0, stop_below: float | None = None) -> np.ndarray:
    """Fraction of false nearest neighbours for m = 1..max_dim (Kennel, Brown & Abarbanel 1992).

    The nearest neighbour j of y_i in m dimensions (|i − j| > theiler) is false if adding coordinate m+1
    separates them: |x_{i+m·delay} − x_{j+m·delay}| / R_m > r_tol, or R_{m+1} / R_A > a_tol (R_A: the
    standard deviation of the series). Evaluated on ``n_ref`` random reference points. With
    ``stop_below``, stops at the first m whose fraction is below it (the array is then shorter).
    """
    s = np.asarray(x, dtype=np.float64)
    s = (s - s.mean()) / s.std()
    rng = np.random.default_rng(seed)
    fractions = []
    for m in range(1, max_dim + 1):
        M = len(s) - m * delay
        if M < 10:
            break
        Y = delay_embedding(s[: M + (m - 1) * delay], m, delay)
        ref = np.arange(M) if M <= n_ref else rng.choice(M, n_ref, replace=False)
        nn, d = _nearest_neighbours(Y, ref, theiler)
        ok = nn >= 0
        r, j, d = ref[ok], nn[ok], d[ok]
        extra = np.abs(s[r + m * delay] - s[j + m * delay])
        false = (extra > r_tol * d) | (np.sqrt(d * d + extra * extra) > a_tol)
        fractions.append(float(false.mean()) if false.size else 1.0)
        if stop_below is not None and fractions[-1] < stop_below:
            break
    return np.asarray(fractions)


def estimate_embedding_dimension(x, delay: int, *, theiler: int = 0, max_dim: int = FNN_MAX_DIM,
                                 threshold: float = FNN_THRESHOLD, seed: int = 0) -> int:
    """Smallest m whose false-nearest-neighbour fraction is below ``threshold`` (1 %); if none up to
    ``max_dim``, the m with the smallest fraction (see :func:`false_nearest_neighbours`)."""
    fr = false_nearest_neighbours(x, delay, max_dim, theiler=theiler, seed=seed, stop_below=threshold)
    if fr.size == 0:
        return 1
    if fr[-1] < threshold:
        return len(fr)
    return int(np.argmin(fr)) + 1


# --------------------------------------------------------------------------- divergence and fit
N_GROUPS = 20              # blocks of reference points (contiguous in time) for the bootstrap
N_BOOT = 200               # bootstrap resamples of those blocks
KANTZ_MAX_NEIGHBOURS = 20  # neighbours per reference point in Kantz's method (the closest within eps)
KANTZ_N_REF = 5000         # reference points of Kantz's method by default
KANTZ_EPS_FACTOR = 2.0     # default eps = this x the median nearest-neighbour distance


class _Divergence:
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


class _KantzDivergence(_Divergence):
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


def _neighbourhoods(Y: np.ndarray, ref: np.ndarray, theiler: int, eps: float, k_max: int,
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


def _rise(curve: np.ndarray) -> tuple[float, float, int]:
    """(base B, plateau P, index of B): P = mean of the last quarter of the curve, B = the minimum of the
    curve before it first gets halfway from d(0) to P."""
    h = len(curve) - 1
    plateau = float(np.mean(curve[h - h // 4:]))
    half = np.nonzero(curve >= 0.5 * (curve[0] + plateau))[0]
    stop = int(half[0]) + 1 if half.size else len(curve)
    i0 = int(np.argmin(curve[:stop]))
    return float(curve[i0]), plateau, i0


def _saturated(curve: np.ndarray) -> bool:
    """Whether d(k) has reached its plateau: the mean over the last quarter of the lags exceeds the mean
    over the quarter before by less than 5 % of the total rise (or by less than 0.01 in ln units)."""
    h = len(curve) - 1
    q = max(1, h // 4)
    late = np.mean(curve[h - q + 1:]) - np.mean(curve[h - 2 * q + 1: h - q + 1])
    total = np.max(curve) - np.min(curve)
    return bool(late <= SATURATION_TOL * total or late < 0.01)


def _line(lags: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    slope, intercept = np.polyfit(lags.astype(np.float64), y, 1)
    return float(slope), float(intercept)


def _auto_fit_range(curve: np.ndarray) -> tuple[int, int, str | None]:
    """The linear region (a, b) of d(k), and a reason string when there is no region of exponential growth
    (then (a, b) covers the flat rest of the curve); see "Fit region" in :func:`max_lyapunov`."""
    B, P, i0 = _rise(curve)
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


# ---------------------------------------------------------------------------------- entry point
def max_lyapunov(x, dt=None, *, method="rosenstein", emb_dim=None, delay=None, theiler=None, max_horizon=None,
                 fit_range=None, n_ref=None, eps=None, n_boot=N_BOOT, seed=0) -> MaxLyapunov:
    """Largest Lyapunov exponent λ_max of a time series (Rosenstein, Collins & De Luca 1993).

    Nearby states of a chaotic system separate on average like exp(λ_max · t). The estimator reconstructs
    state vectors y_i, pairs every reference point i with its nearest neighbour j on another pass of the
    orbit, follows both for k steps, and averages the log distance:

        d(k) = < ln || y_{i+k} − y_{j+k} || >_i ,   k = 0, 1, ..., max_horizon.

    After a short transient d(k) grows linearly with slope λ_max per step, then saturates at the size of
    the attractor. λ_max is the slope of a straight line fitted to the linear part.

    Algorithm
    ---------
    1. *Input*: ``x`` as (T,) or (T, N) (an ``xarray.Dataset`` contributes its variable ``x`` and
       ``attrs["dt"]``). Every channel is standardised to zero mean and unit variance; constant channels of
       multivariate data are dropped.
    2. *Theiler window* (default): the mean period of the first channel, 1 / (power-weighted mean
       frequency of its periodogram), in steps, at least 1 (:func:`mean_period`).
    3. *State vectors*. Univariate input is delay-embedded: delay = the first minimum of the average mutual
       information or the first lag where the autocorrelation drops below 1/e, whichever comes first
       (:func:`estimate_delay`); dimension = the first m with < 1 % false nearest neighbours (Kennel et al.
       1992, R_tol = 10, A_tol = 2; :func:`estimate_embedding_dimension`). Multivariate input is used as
       observed, unless ``emb_dim`` or ``delay`` is given: then every channel is embedded with them (the
       missing one estimated from the first channel) and the coordinates are concatenated.
    4. *Pairs*: ``n_ref`` reference points (default: all, at most 20 000, drawn at random with ``seed``);
       for each, the nearest neighbour j with |i − j| > theiler and a nonzero distance, by
       ``scipy.spatial.cKDTree`` queries with a growing number of neighbours (no O(T²) search).
    5. *Horizon* (default): start at max(16, 4 · theiler) steps and double until d(k) is saturated (the mean
       over the last quarter of the lags exceeds the mean over the quarter before by < 5 % of the total
       rise, or by < 0.01), at most T_embedded // 4. Pairs are used at lag k while both i + k and j + k are inside the
       series; zero distances are left out.
    6. *Fit region* (default), automatic and free of per-system constants: B = the minimum of d(k) before
       it gets halfway to its plateau P = the mean of the last quarter of d(k); R = P − B is the total
       rise. Candidate windows lie between the first lag where d(k) ≥ B + 0.05 R and the first where
       d(k) ≥ B + 0.7 R. Among them the longest window (≥ 3 lags) whose least-squares line has an RMS
       residual ≤ 0.01 R is taken (ties: smallest residual; if none qualifies the tolerance is doubled, up
       to three times). A window that long and straight excludes both the fast initial transient of flows
       (the separation aligns with the unstable direction; d(k) first rises faster than λ_max) and the
       bend into saturation. If R < 1 (distances never grow by a factor e) the series shows no clear
       exponential divergence (flagged not chaotic, 9.): a rise that is gradual (from 5 % to 70 % of R over
       ≥ 3 lags, e.g. the 10-d EEG embedding of "How to train RNNs on chaotic data") is still fitted
       within that initial rise by the same window search, never across the plateau; a rise that happens
       at once (a noisy periodic orbit), a flat or falling curve is fitted whole (slope ≈ 0). The three constants were set
       once, on Lorenz-63 (three parameter/dt settings), Rössler, and the logistic, skew-tent, Hénon,
       Lozi and Ikeda maps, 5·10³–10⁵ samples, with and without 2 % noise, univariate and multivariate
       (mean |error| without noise ≈ 5 % for the Lorenz flows, ≈ 3 % for the maps, ≈ 12 % for Rössler);
       the result is not sensitive to them (0.05–0.1, 0.7–0.8, 0.005–0.02 all do about as well).
       If d(k) jumps to 70 % of its rise within two steps (noise), there is no region to fit: the flat
       rest of the curve is fitted and the result is flagged not chaotic.
    7. λ_max per step = the slope; per time unit = slope / dt.
    8. *Uncertainty* (``stderr``): block bootstrap over the reference points (see
       :class:`MaxLyapunov`); it measures sampling noise, not the estimator's bias.
    9. *Chaotic or not*: ``chaotic`` is False when (a) d(k) rises by less than a factor e from its
       minimum to its plateau, (b) it jumps to its plateau at once (6.), (c) the slope is ≤ 0, or (d) the
       slope is within 3 bootstrap standard errors of 0; ``reason`` says which.
       :func:`predictability_time` refuses such a result.

    Methods
    -------
    ``"rosenstein"`` (default): d(k) from the single nearest neighbour of each reference point.
    ``"kantz"``: S(k) = < ln( mean_{j in U_eps(i)} ||y_{i+k} − y_{j+k}|| ) >_i over the (at most 20 closest)
    neighbours within ``eps`` (default 2 × the median nearest-neighbour distance, standardised units) of
    5000 reference points; more robust to observation noise (Lorenz with 5 % noise: −3 % against
    Rosenstein's −24 %), slower, and its value grows with eps.
    ``"nolds"``: the divergence curve of ``nolds.lyap_r`` with the same embedding and Theiler window, then
    the same horizon and fit rules: an independent cross-check of the Rosenstein curve (O(T²) memory,
    at most 30 000 samples; needs ``pip install nolds==0.6.2 'setuptools<81'``). No bootstrap.

    Parameters
    ----------
    x : array (T,) or (T, N), or xarray.Dataset with variable ``x`` of dims ("time", "dim")
        The series, time first. At least 1000 state vectors (after embedding) spanning at least
        10 Theiler windows; no NaN/inf.
    dt : float, optional
        Sampling interval. Default: ``attrs["dt"]`` of a Dataset, else 1.0 (then per time unit = per step).
    emb_dim, delay : int, optional
        Delay embedding (per channel) and delay in steps; estimated for univariate input when not given.
    theiler : int, optional
        Theiler window in steps (default: the mean period, see 2.).
    max_horizon : int, optional
        Largest lag k (default: adaptive, see 5.).
    fit_range : (int, int), optional
        Lags (k_start, k_end), inclusive-exclusive, to fit instead of the automatic region.
    n_ref : int, optional
        Number of reference points (default: all, at most 20 000; Kantz: 5000).
    method : {"rosenstein", "kantz", "nolds"}
        Divergence curve (see Methods).
    eps : float, optional
        Neighbourhood radius of Kantz's method in standardised units.
    n_boot : int
        Bootstrap resamples for ``stderr`` (default 200; 0: no bootstrap, stderr NaN).
    seed : int
        Seed of the random choice of reference points, the FNN test points and the bootstrap.

    Returns
    -------
    MaxLyapunov
        ``value`` (per time unit), ``per_step``, ``stderr``, ``chaotic`` and ``reason``, the divergence
        ``curve`` with its ``lags``, the ``fit_range`` and ``intercept`` of the line, and the embedding and
        pair counts used. Its
        ``predictability_steps`` is ln 2 / per_step; ``plot()`` shows the curve and the fit.

    Raises
    ------
    DataError
        NaN/inf values, wrong shape, constant series, or a series too short for the embedding plus
        10 Theiler windows (one line naming the samples needed). ConfigError: invalid parameter values.

    Pitfalls
    --------
    - Always look at ``result.plot()``: the estimate is only as good as the linear region.
    - The estimate is biased low when the series is short: neighbours start far apart, the linear region
      is short and pairs saturate at different times. For Lorenz-63 (σ = 16, ρ = 45.92, β = 4, dt = 0.01)
      expect ≈ 0.85–0.95 of the true value with 2·10⁴ samples of (x, y, z), better with 10⁵ or from the
      delay-embedded x coordinate.
    - Systems whose stretching is concentrated in a small part of the attractor converge slowly: for
      Rössler (a = b = 0.2, c = 5.7) expect ≈ 0.75–0.9 of the true 0.0714 with 2·10⁴ samples of x.
    - Measurement noise shortens the linear region and biases Rosenstein low (≈ 15–20 % at 2 % noise,
      ≈ 20–25 % at 5 %); prefer ``method="kantz"`` for noisy data.
    - Rössler-type attractors, thin across their unstable direction, read 15–25 % low from 2·10⁴ samples
      with either method (measured; see docs/lyapunov.md).
    - White noise has no linear region (flagged not chaotic); coloured noise and quasi-periodic signals can
      show a spurious positive slope — a positive λ_max alone does not prove chaos.
    - Heavily oversampled flows need long horizons (the default adapts, at some cost in time); coarsely
      sampled flows (λ_max · dt ≳ 0.3) behave like maps.
    - The per-step value depends on dt; τ_pred = ln 2 / per_step is in steps.

    References
    ----------
    - M. T. Rosenstein, J. J. Collins, C. J. De Luca, "A practical method for calculating largest Lyapunov
      exponents from small data sets", Physica D 65, 117 (1993).
    - H. Kantz, "A robust method to estimate the maximal Lyapunov exponent of a time series",
      Phys. Lett. A 185, 77 (1994) (method="kantz").
    - M. B. Kennel, R. Brown, H. D. I. Abarbanel, "Determining embedding dimension for phase-space
      reconstruction using a geometrical construction", Phys. Rev. A 45, 3403 (1992).
    - A. M. Fraser, H. L. Swinney, "Independent coordinates for strange attractors from mutual
      information", Phys. Rev. A 33, 1134 (1986).
    - J. Theiler, "Spurious dimension from correlation algorithms applied to limited time-series data",
      Phys. Rev. A 34, 2427 (1986).
    - "How to train RNNs on chaotic data" (Mikhaeil, Monfared, Durstewitz), §4.1 Eq. 17 (τ_pred = ln 2 /
      λ_max), §4.3 and App. A.4 (λ_max from data, Rosenstein's method, sets the forcing interval τ).
    """
    arr, dt = _as_array(x, dt)
    if method not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    emb_dim = _check_int("emb_dim", emb_dim, 1)
    delay = _check_int("delay", delay, 1)
    theiler = _check_int("theiler", theiler, 0)
    max_horizon = _check_int("max_horizon", max_horizon, 2)
    n_ref = _check_int("n_ref", n_ref, 10)
    n_boot = _check_int("n_boot", n_boot, 0, allow_none=False)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ConfigError(f"seed must be an integer, got {seed!r}")
    if eps is not None:
        if method != "kantz":
            raise ConfigError(f"eps is the neighbourhood radius of method='kantz'; method={method!r} does not use it")
        try:
            eps = float(eps)
        except (TypeError, ValueError):
            raise ConfigError(f"eps must be a positive number, got {eps!r}") from None
        if not (math.isfinite(eps) and eps > 0):
            raise ConfigError(f"eps must be a positive number, got {eps!r}")
    if fit_range is not None:
        try:
            k0, k1 = (int(v) for v in fit_range)
        except (TypeError, ValueError):
            raise ConfigError(f"fit_range must be two lags (k_start, k_end), got {fit_range!r}") from None
        if not 0 <= k0 < k1 - 1:
            raise ConfigError(f"fit_range must satisfy 0 <= k_start < k_end - 1 (at least 2 lags), got {fit_range!r}")
        if max_horizon is not None and k1 > max_horizon + 1:
            raise ConfigError(f"fit_range {fit_range!r} ends after max_horizon = {max_horizon}")
        fit_range = (k0, k1)

    s = _check_series(arr)
    first = s if s.ndim == 1 else s[:, 0]
    if theiler is None:
        theiler = max(1, int(round(mean_period(first))))

    if s.ndim == 1 or emb_dim is not None or delay is not None:
        if delay is None:
            delay = estimate_delay(first)
        if emb_dim is None:
            emb_dim = estimate_embedding_dimension(first, delay, theiler=theiler, seed=seed)
        needed = max(MIN_POINTS, MIN_PERIODS * max(theiler, 1)) + (emb_dim - 1) * delay
        if len(s) - (emb_dim - 1) * delay < 1:
            raise DataError(f"x is too short for a lambda_max estimate: {len(s)} samples cannot hold one delay "
                            f"vector of dimension {emb_dim} with delay {delay}; need at least {needed} samples")
        Y = delay_embedding(s, emb_dim, delay)
    else:
        Y = s
    M = len(Y)
    if M < MIN_POINTS:
        raise DataError(f"x is too short for a lambda_max estimate: {M} state vectors after delay embedding "
                        f"(m={emb_dim}, delay={delay}), need at least {MIN_POINTS}, i.e. "
                        f"{MIN_POINTS + (emb_dim - 1) * delay} samples")
    if M < MIN_PERIODS * max(theiler, 1):
        raise DataError(f"x is too short for a lambda_max estimate: {M} state vectors span only {M / theiler:.1f} "
                        f"Theiler windows of {theiler} steps (the mean period); need at least {MIN_PERIODS}, "
                        f"i.e. {MIN_PERIODS * theiler} samples")
    if method == "nolds":
        return _nolds_estimate(s, dt, Y, emb_dim, delay, theiler, max_horizon, fit_range)

    rng = np.random.default_rng(seed)
    default_n = DEFAULT_N_REF if method == "rosenstein" else KANTZ_N_REF
    n_use = min(M, default_n if n_ref is None else n_ref)
    ref = np.arange(M) if n_use == M else np.sort(rng.choice(M, n_use, replace=False))
    tree = cKDTree(Y)
    nn, nn_dist = _nearest_neighbours(Y, ref, theiler, tree)
    ok = nn >= 0
    if ok.sum() < 10:
        raise DataError(f"found only {int(ok.sum())} neighbour pairs outside the Theiler window of {theiler} steps; "
                        f"the series is too short or too regular")
    if method == "rosenstein":
        div = _Divergence(Y, ref[ok], nn[ok])
        n_pairs = int(ok.sum())
    else:
        if eps is None:
            eps = KANTZ_EPS_FACTOR * float(np.median(nn_dist[ok]))
        nbr = _neighbourhoods(Y, ref, theiler, eps, KANTZ_MAX_NEIGHBOURS, tree)
        has = (nbr >= 0).any(axis=1)
        if has.sum() < 10:
            raise DataError(f"only {int(has.sum())} reference points have a neighbour within eps = {eps:.3g} "
                            f"(standardised units) outside the Theiler window; pass a larger eps")
        div = _KantzDivergence(Y, ref[has], nbr[has])
        n_pairs = int((nbr >= 0).sum())

    curve, H = _divergence_curve(div, M, theiler, max_horizon, fit_range)
    note = None
    if fit_range is None:
        *fit_range, note = _auto_fit_range(curve)
    elif fit_range[1] > len(curve):
        raise ConfigError(f"fit_range {fit_range!r} ends after the last lag {len(curve) - 1}")
    lags = np.arange(len(curve))
    a, b = fit_range
    slope, intercept = _line(lags[a:b], curve[a:b])
    se = _bootstrap_stderr(div, H, a, b, n_boot, rng)
    chaotic, reason = (False, note) if note else _chaos_verdict(curve, slope, se)
    return MaxLyapunov(value=slope / dt, per_step=slope, dt=dt, curve=curve, lags=lags, fit_range=(int(a), int(b)),
                       intercept=intercept, emb_dim=emb_dim, delay=delay, theiler=int(theiler),
                       n_pairs=n_pairs, dim=int(Y.shape[1]), method=method, stderr_per_step=se,
                       chaotic=chaotic, reason=reason, eps=eps)


def _divergence_curve(div, M, theiler, max_horizon, fit_range):
    """d(k) up to the given or adaptive horizon (see 5. in :func:`max_lyapunov`) -> (curve, H)."""
    cap = max(2, M // 4)
    if max_horizon is not None:
        H = min(max_horizon, M - 1)
        curve = div.extend(H)
    else:
        H = min(cap, max(16, 4 * theiler, 0 if fit_range is None else fit_range[1] - 1))
        curve = div.extend(H)
        while not _saturated(curve) and H < cap:
            H = min(cap, 2 * H)
            curve = div.extend(H)
    if not np.all(np.isfinite(curve)):
        k_bad = int(np.nonzero(~np.isfinite(curve))[0][0])
        raise DataError(f"the divergence curve is undefined from lag {k_bad} on (no pair left inside the series, or all "
                        f"pairs identical); use a smaller max_horizon or a longer series")
    if fit_range is None and not _saturated(curve):
        warnings.warn(f"lambda_max: the divergence curve has not saturated within max_horizon = {H} steps; "
                      f"the plateau, and with it the fit region, may be misplaced (check result.plot())",
                      RuntimeWarning, stacklevel=3)
    return curve, H


def _bootstrap_stderr(div, H, a, b, n_boot, rng) -> float:
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


def _chaos_verdict(curve, slope, stderr) -> tuple[bool, str]:
    """(chaotic, reason) from the divergence curve; see "Chaotic or not" in :func:`max_lyapunov`."""
    B, P, _ = _rise(curve)
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


def _import_nolds():
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")          # nolds 0.6.2 imports the deprecated pkg_resources
            import nolds
    except ImportError as err:
        raise ConfigError(f"method='nolds' needs nolds 0.6.2 and setuptools<81: pip install 'nolds==0.6.2' "
                          f"'setuptools<81' ({err})") from None
    return nolds


def _nolds_estimate(s, dt, Y, emb_dim, delay, theiler, max_horizon, fit_range):
    """method="nolds": the divergence curve of nolds.lyap_r (same embedding and Theiler window), then the
    same horizon rule and automatic fit region as dsrecon's own estimators."""
    nolds = _import_nolds()
    if s.ndim != 1:
        raise ConfigError("method='nolds' takes a univariate series (nolds.lyap_r embeds one channel)")
    if len(s) > NOLDS_MAX_POINTS:
        raise ConfigError(f"method='nolds' builds the full T x T distance matrix (O(T^2) memory); {len(s)} samples "
                          f"is more than {NOLDS_MAX_POINTS}: pass a shorter series or use method='rosenstein'")
    cap = max(2, len(Y) // 4)
    H = min(max_horizon if max_horizon is not None else max(16, 4 * theiler), cap)
    if fit_range is not None:
        H = max(H, fit_range[1] - 1)

    def curve_for(h):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            _, (ks, div, _) = nolds.lyap_r(s, emb_dim=emb_dim or 1, lag=delay or 1, min_tsep=theiler,
                                           trajectory_len=h + 1, fit="poly", debug_data=True)
        return np.asarray(div, dtype=np.float64)

    curve = curve_for(H)
    while max_horizon is None and not _saturated(curve) and H < cap:
        H = min(cap, 2 * H)
        curve = curve_for(H)
    if not np.all(np.isfinite(curve)):
        raise DataError("nolds.lyap_r returned a divergence curve with NaN/inf values")
    note = None
    if fit_range is None:
        *fit_range, note = _auto_fit_range(curve)
    lags = np.arange(len(curve))
    a, b = fit_range
    slope, intercept = _line(lags[a:b], curve[a:b])
    chaotic, reason = (False, note) if note else _chaos_verdict(curve, slope, float("nan"))
    return MaxLyapunov(value=slope / dt, per_step=slope, dt=dt, curve=curve, lags=lags, fit_range=(int(a), int(b)),
                       intercept=intercept, emb_dim=emb_dim, delay=delay, theiler=int(theiler),
                       n_pairs=len(Y), dim=int(Y.shape[1]), method="nolds", stderr_per_step=float("nan"),
                       chaotic=chaotic, reason=reason)


# =====================================================================================================
# Forcing interval τ of sparse teacher forcing from data
# =====================================================================================================

FI_AMI_BINS = 64           # histogram bins of the AMI in forcing_interval (dendPLRNN's estimate_forcing_interval)
FI_STRUCTURE_SIGMA = 5.0   # "structure": lag-1 AMI this many null standard deviations above shuffled data
FI_SATURATION = 0.9        # divergence_saturation: first lag where d(k) has risen 90 % of the way to its plateau
FI_SOURCES = ("lambda_max", "mutual_information", "divergence_saturation")


@dataclass
class ForcingInterval:
    """The forcing interval τ chosen by :func:`forcing_interval`.

    Attributes
    ----------
    tau_steps : int
        τ in sampling steps (≥ 1).
    source : str
        ``"lambda_max"`` (τ = ln 2 / λ_max), ``"mutual_information"`` (first minimum of the average mutual
        information) or ``"divergence_saturation"`` (saturation lag of the divergence curve).
    reason : str
        One line: which source was used and why.
    lam : MaxLyapunov
        The λ_max estimate the decision started from (its ``plot()`` shows the divergence curve and the
        fit region).
    tau_range : tuple[float, float]
        For ``source="lambda_max"``: ln 2 / (λ ± 2 bootstrap standard errors) in steps, the sampling
        uncertainty of τ (the estimator's bias is not included); (nan, nan) otherwise.
    dt : float
        Sampling interval (time units per step).
    """

    tau_steps: int
    source: str
    reason: str
    lam: MaxLyapunov
    tau_range: tuple[float, float] = (float("nan"), float("nan"))
    dt: float = 1.0

    def __str__(self) -> str:
        return f"tau = {self.tau_steps} steps ({self.tau_steps * self.dt:.3g} time units) from {self.source}: {self.reason}"


def _ami_excess(s: np.ndarray, bins: int, rng) -> tuple[float, float, float]:
    """(I(1), null mean, null sd) in nats: the lag-1 AMI of ``s``, its mean over 3 shuffled copies (the
    histogram estimator's bias for independent samples) and the G-test standard deviation of that null,
    √(2 df) / (2 n) with df = (occupied bins − 1)² (2 n I ~ χ²_df for independent samples)."""
    i1 = float(average_mutual_information(s, [1], bins)[0])
    null = float(np.mean([average_mutual_information(rng.permutation(s), [1], bins)[0] for _ in range(3)]))
    lo, hi = s.min(), s.max()
    occupied = len(np.unique(np.minimum(((s - lo) / (hi - lo) * bins).astype(np.int64), bins - 1)))
    df = max(occupied - 1, 1) ** 2
    return i1, null, math.sqrt(2.0 * df) / (2.0 * (len(s) - 1))


def _first_ami_minimum(s: np.ndarray, max_lag: int, bins: int) -> int | None:
    """First lag k ≥ 1 with I(k) < I(k − 1) and I(k) < I(k + 1) (strict, like scipy's argrelmin), searched in
    chunks up to ``max_lag``; None if there is none."""
    ami = average_mutual_information(s, range(0, min(65, max_lag + 2)), bins)
    while True:
        m = np.nonzero((ami[1:-1] < ami[:-2]) & (ami[1:-1] < ami[2:]))[0]
        if m.size:
            return int(m[0]) + 1
        if len(ami) >= max_lag + 2:
            return None
        ami = np.concatenate([ami, average_mutual_information(s, range(len(ami), min(2 * len(ami), max_lag + 2)),
                                                              bins)])


def forcing_interval(x, dt=None, *, seed: int = 0, n_boot: int = N_BOOT, max_lag: int | None = None,
                     bins: int = FI_AMI_BINS) -> ForcingInterval:
    """Forcing interval τ (steps) of sparse teacher forcing from a recording, with the source and a one-line reason.

    Decision, in this order:

    0. No temporal structure (a constant series; white noise: the lag-1 average mutual information of every
       channel is within 5 null standard deviations of that of shuffled data): DataError. Checked first,
       since a delay embedding of white noise makes d(k) rise over the first m lags, which reads as divergence.
    1. ``"lambda_max"``: λ_max by :func:`max_lyapunov` (Rosenstein et al. 1993; fit region confined to the
       initial rise of the divergence curve d(k)). If the result is flagged chaotic (d(k) rises by more
       than a factor e and the slope is > 3 bootstrap standard errors above 0), τ = round(ln 2 / λ_max per
       step), the predictability time of "How to train RNNs on chaotic data" §4.1, Eq. 17.
    2. Otherwise exponential divergence is weak or absent: ``"mutual_information"``: τ = the first local minimum of the average mutual
       information I(k) (Fraser & Swinney 1986), per channel (64-bin histogram), median over channels.
       This is the forcing-interval rule of the dendPLRNN code (Brenner et al. 2022, repository
       DurstewitzLab/dendPLRNN, ``BPTT_TF/bptt/tau_estimation.py``, ``estimate_forcing_interval``, mode
       "MI": 64 bins, median over dimensions); the digest does not name a paper section for it.
    3. If no channel's I(k) has a minimum within ``max_lag``, ``"divergence_saturation"``: τ = the first
       lag where d(k) has risen 90 % of the way from its minimum to its plateau.

    Parameters
    ----------
    x : array (T,) or (T, N), or xarray.Dataset
        The recording, time first (as for :func:`max_lyapunov`).
    dt : float, optional
        Sampling interval (for the time-unit values in the reason); τ is in steps regardless.
    seed : int
        Seed of :func:`max_lyapunov` and of the shuffles of the structure test.
    n_boot : int
        Bootstrap resamples of the λ_max standard error (0: none; then chaotic only needs R > 1, slope > 0).
    max_lag : int, optional
        Largest lag searched for the AMI minimum (default min(T // 10, 2000)).
    bins : int
        Histogram bins of the AMI (default 64, as dendPLRNN).

    Returns
    -------
    ForcingInterval
        ``tau_steps``, ``source``, ``reason`` (one line), ``lam`` (the λ_max estimate) and, for
        ``source="lambda_max"``, ``tau_range`` = ln 2 / (λ ± 2 s.e.).

    Raises
    ------
    DataError
        One line, ending with what to try, for a constant series or one without temporal structure
        (white noise), and for the input errors of :func:`max_lyapunov` (NaN, too short, wrong shape).

    Pitfalls
    --------
    - The AMI minimum is a decorrelation time, not a predictability time; it depends on the bin count
      (EEG of the paper: 62 steps at 64 bins, 80 at 32) and is a fallback, not an estimate of ln 2 / λ.
    - Observation noise biases Rosenstein's λ_max low, so τ from ``"lambda_max"`` high (≈ +20–30 % at
      5 % noise); heavy noise (≥ 20 %) can remove the exponential region altogether and switch the source.
    - A high-dimensional delay embedding with few samples (EEG: 10-d, 9259 samples) puts nearest
      neighbours far apart: d(k) rises by less than a factor e and step 1 declines even for a chaotic source.
    - Coloured noise has structure, so it gets a τ (its decorrelation time) rather than an error: a τ is
      not evidence of chaos.

    References
    ----------
    - M. T. Rosenstein, J. J. Collins, C. J. De Luca, Physica D 65, 117 (1993).
    - J. Mikhaeil, Z. Monfared, D. Durstewitz, "On the difficulty of learning chaotic dynamics with RNNs"
      ("How to train RNNs on chaotic data"), §4.1 Eq. 17 (τ_pred = ln 2 / λ_max), App. A.4.
    - A. M. Fraser, H. L. Swinney, "Independent coordinates for strange attractors from mutual
      information", Phys. Rev. A 33, 1134 (1986).
    - M. Brenner et al., "Tractable dendritic RNNs for reconstructing nonlinear dynamical systems",
      ICML 2022; code DurstewitzLab/dendPLRNN, ``estimate_forcing_interval``.
    - M. S. Roulston, "Estimating the errors on measured entropy and mutual information", Physica D 125,
      285 (1999) (the null distribution of the histogram AMI).
    """
    arr, dt_ = _as_array(x, dt)
    bins = _check_int("bins", bins, 2, allow_none=False)
    max_lag = _check_int("max_lag", max_lag, 2)
    hint = "pass --tau N (forcing interval in steps) to set it by hand"
    if arr.ndim in (1, 2) and arr.size and np.all(np.isfinite(arr)) and np.all(np.ptp(arr, axis=0) == 0):
        raise DataError(f"cannot choose a forcing interval: x is constant (zero variance in every channel), there are "
                        f"no dynamics to learn; check the columns you loaded, or {hint}")
    s = _check_series(arr)
    chans = s[:, None] if s.ndim == 1 else s
    rng = np.random.default_rng(seed)
    excess = []
    for c in range(chans.shape[1]):
        i1, null, sd = _ami_excess(chans[:, c], bins, rng)
        excess.append(((i1 - null) / sd, i1, null))
    # checked before lambda_max: a delay embedding of white noise makes d(k) rise over the first m lags
    # (the windows of neighbours stop overlapping), which Rosenstein's fit reads as divergence (1-channel
    # N(0,1) noise, 3000 samples: "lambda_max = 0.32 per step, 77 standard errors above 0")
    best = max(excess)
    if not best[0] > FI_STRUCTURE_SIGMA:
        raise DataError(f"cannot choose a forcing interval: the series shows no temporal structure (the mutual "
                        f"information between consecutive samples, {best[1]:.3g} nats, is "
                        f"at the level of shuffled data, {best[2]:.3g} nats): it looks like white noise; check the "
                        f"sampling interval and preprocessing, or {hint}")
    lam = max_lyapunov(x, dt, seed=seed, n_boot=n_boot)
    if lam.chaotic:
        a, b = lam.fit_range
        tau = max(1, int(round(math.log(2.0) / lam.per_step)))
        se = lam.stderr_per_step
        rng_tau = (float("nan"), float("nan"))
        pm = ""
        if math.isfinite(se) and se > 0:
            hi_l, lo_l = lam.per_step + 2 * se, lam.per_step - 2 * se
            rng_tau = (math.log(2.0) / hi_l, math.log(2.0) / lo_l if lo_l > 0 else math.inf)
            pm = f" ± {se:.2g}"
        return ForcingInterval(tau, "lambda_max", (
            f"tau = ln2/lambda_max (Eq. 17 of 'How to train RNNs on chaotic data'), lambda_max = {lam.per_step:.4g}{pm} "
            f"per step from the divergence fit over lags {a}..{b - 1} ({lam.reason}); tau in "
            f"[{rng_tau[0]:.0f}, {rng_tau[1]:.0f}] steps at 2 standard errors"), lam, rng_tau, dt_)

    T = chans.shape[0]
    max_lag = min(T // 10, 2000) if max_lag is None else max_lag
    mins = [m for m in (_first_ami_minimum(chans[:, c], max_lag, bins) for c in range(chans.shape[1])) if m is not None]
    weak = f"no clear exponential divergence ({lam.reason})"
    if mins:
        tau = max(1, int(round(float(np.median(mins)))))
        return ForcingInterval(tau, "mutual_information", (
            f"{weak}; tau = first minimum of the average mutual information (Fraser & Swinney 1986), median over "
            f"{len(mins)} channel(s) ({bins} bins), the dendPLRNN forcing-interval rule"), lam, dt=dt_)
    B, P, i0 = _rise(lam.curve)
    above = np.nonzero(lam.curve[i0:] >= B + FI_SATURATION * (P - B))[0]
    tau = max(1, i0 + int(above[0])) if above.size and P > B else len(lam.curve) - 1
    return ForcingInterval(tau, "divergence_saturation", (
        f"{weak} and no minimum of the average mutual information within {max_lag} lags; tau = the lag where the "
        f"divergence curve has risen {FI_SATURATION:.0%} of the way to its plateau"), lam, dt=dt_)


# =====================================================================================================
# Correlation dimension (Grassberger & Procaccia 1983)
# =====================================================================================================

CD_N_POINTS = 5000        # points (drawn at random) whose pairs are counted
CD_N_RADII = 40           # radii, log-spaced over three decades below the attractor's diameter
CD_MIN_PAIRS = 1000       # a radius counts for the fit when at least this many pairs lie within it
CD_MAX_C = 0.2            # ... and C(r) is at most this (above it the attractor's size bends C(r))


@dataclass
class CorrelationDimension:
    """Correlation dimension D_2 of a series (:func:`correlation_dimension`).

    Attributes
    ----------
    value : float
        D_2: the mean local slope d ln C / d ln r over the scaling region, at the largest embedding dimension.
    emb_dims : np.ndarray (n_m,)
        Embedding dimensions m (for multivariate input without embedding: the number of channels).
    radii : np.ndarray (n_r,)
        Radii r in standardised units (each channel has unit variance).
    C : np.ndarray (n_m, n_r)
        Correlation sums C_m(r): the fraction of pairs (i, j), |i − j| > theiler, with ||y_i − y_j|| <= r.
    slopes : np.ndarray (n_m, n_r − 1)
        Local slopes d ln C / d ln r between consecutive radii (NaN where C = 0), at ``slope_radii``.
    slope_radii : np.ndarray (n_r − 1,)
        Geometric midpoints of consecutive radii.
    fit_range : tuple[float, float]
        Smallest and largest radius of the scaling region.
    per_dim : np.ndarray (n_m,)
        Mean local slope over the scaling region for each m: levels off at D_2 once m > D_2 (for m ≥ 2 D_2 + 1
        embedding is guaranteed; Sauer, Yorke & Casdagli 1991).
    delay, theiler, n_points : int | None, int, int
        Embedding delay (None without embedding), Theiler window (steps), points counted.
    """

    value: float
    emb_dims: np.ndarray
    radii: np.ndarray
    C: np.ndarray
    slopes: np.ndarray
    slope_radii: np.ndarray
    fit_range: tuple[float, float]
    per_dim: np.ndarray
    delay: int | None
    theiler: int
    n_points: int

    def __str__(self) -> str:
        dims = ", ".join(f"m={m}: {v:.2f}" for m, v in zip(self.emb_dims, self.per_dim))
        return (f"correlation dimension D2 = {self.value:.3f} (Grassberger-Procaccia, local slopes over "
                f"r = {self.fit_range[0]:.3g}..{self.fit_range[1]:.3g}); per embedding dimension: {dims}; "
                f"{self.n_points} points, Theiler window {self.theiler}")

    def plot(self, ax=None):
        """Local slopes d ln C / d ln r against r (log axis) for every m, the scaling region shaded and
        D_2 as a dashed line; returns the axes. A plateau common to the larger m is the dimension."""
        if ax is None:
            import matplotlib.pyplot as plt  # lazily: slow to import and not needed otherwise

            _, ax = plt.subplots(figsize=(6, 3.5))
        for m, sl in zip(self.emb_dims, self.slopes):
            ax.semilogx(self.slope_radii, sl, ".-", ms=3, lw=0.8, label=f"m = {m}")
        ax.axvspan(*self.fit_range, color="r", alpha=0.1)
        ax.axhline(self.value, color="k", ls="--", lw=1, label=f"D2 = {self.value:.3f}")
        ax.set_xlabel("r (standardised units)")
        ax.set_ylabel("d ln C / d ln r")
        ax.set_title("correlation dimension (Grassberger-Procaccia)")
        ax.legend(loc="upper left", fontsize=7, ncol=2)
        return ax


def _pair_counts(Y: np.ndarray, idx: np.ndarray, radii: np.ndarray, theiler: int) -> tuple[np.ndarray, int]:
    """Pairs (a < b) of the points Y[idx] with distance <= r for each r, leaving out pairs whose time indices
    differ by at most ``theiler`` -> (counts (n_r,), number of pairs allowed)."""
    P = Y[idx]
    tree = cKDTree(P)
    ordered = tree.count_neighbors(tree, radii).astype(np.float64)   # ordered pairs, self-pairs included
    counts = (ordered - len(P)) / 2.0
    n_pairs = len(P) * (len(P) - 1) / 2.0
    if theiler > 0:                      # subtract the temporally close pairs, found directly
        order = np.argsort(idx)
        t, Ps = idx[order], P[order]
        hi = np.searchsorted(t, t + theiler, side="right")     # partners of a: a+1 .. hi[a]-1
        n_close = hi - np.arange(len(t)) - 1
        d = [np.linalg.norm(Ps[a + o] - Ps[a], axis=1)
             for o in range(1, int(n_close.max(initial=0)) + 1)
             for a in [np.nonzero(n_close >= o)[0]]]
        if d:
            d = np.sort(np.concatenate(d))
            counts -= np.searchsorted(d, radii, side="right")
            n_pairs -= len(d)
    return counts, int(n_pairs)


def correlation_dimension(x, dt=None, *, emb_dims=None, delay=None, theiler=None, radii=None,
                          n_points: int = CD_N_POINTS, seed: int = 0) -> CorrelationDimension:
    """Correlation dimension D_2 by Grassberger & Procaccia (1983), with KD-tree pair counts and local slopes.

    The correlation sum C_m(r) is the fraction of pairs of delay vectors (dimension m) closer than r; on a
    fractal set C_m(r) ∝ r^{D_2} over a range of r (the scaling region), once m is large enough. D_2 is read
    off the local slopes d ln C / d ln r. "How to train RNNs on chaotic data" App. A.4 uses it (local slopes
    of correlation sums, m = 5..10) as the effective dimension D_eff of the weather and EEG data.

    Algorithm
    ---------
    1. Input as in :func:`max_lyapunov` (checked, channels standardised). Univariate input is delay-embedded
       with ``delay`` (default :func:`estimate_delay`) for every m in ``emb_dims`` (default 1..10);
       multivariate input is used as observed unless ``emb_dims`` is given.
    2. ``n_points`` points (default 5000) are drawn at random; their pairs are counted with
       ``scipy.spatial.cKDTree.count_neighbors`` (a dual-tree count, no O(n²) distance matrix) at ``radii``
       (default: 40 log-spaced radii over three decades below the largest distance). Pairs closer in time
       than the Theiler window (default: the mean period, :func:`mean_period`) are found directly and
       subtracted (Theiler 1986).
    3. Local slopes between consecutive radii. The scaling region is chosen on the largest m: among radii
       with at least 1000 pairs within r and C(r) ≤ 0.2, the window of n_r/5 consecutive slopes (at least 3)
       whose slopes vary least (smallest standard deviation) — the plateau. ``value`` = their mean;
       ``per_dim`` = the mean slope of every m over the same window.

    Returns: :class:`CorrelationDimension` with the curves C_m(r), the local slopes, the scaling region and
    D_2 per m; ``plot()`` shows the local slopes.
    Raises: DataError for NaN/inf, constant or too short input (as :func:`max_lyapunov`) and when no radius
    has enough pairs. ConfigError for invalid parameters.
    Pitfalls: the number of points needed grows exponentially with D_2 (Eckmann & Ruelle 1992: roughly
    10^{D_2/2} at least, far more in practice; digest §10.21): for D_2 ≳ 5 the estimate saturates below the
    truth. Noise of amplitude σ makes C(r) look (m-dimensional) below r ≈ σ: the plateau must lie above it.
    Oversampled flows need the Theiler window, or slow drift along the orbit reads as dimension 1.
    Always look at ``plot()``: without a plateau common to the larger m there is no dimension to report.
    References: P. Grassberger, I. Procaccia, "Characterization of strange attractors", Phys. Rev. Lett. 50,
    346 (1983) and "Measuring the strangeness of strange attractors", Physica D 9, 189 (1983); J. Theiler,
    Phys. Rev. A 34, 2427 (1986); "How to train RNNs on chaotic data" App. A.4 (D_eff).
    """
    arr, dt = _as_array(x, dt)
    delay = _check_int("delay", delay, 1)
    theiler = _check_int("theiler", theiler, 0)
    n_points = _check_int("n_points", n_points, 100, allow_none=False)
    if emb_dims is not None:
        try:
            emb_dims = [int(m) for m in np.atleast_1d(emb_dims)]
        except (TypeError, ValueError):
            raise ConfigError(f"emb_dims must be embedding dimensions >= 1, got {emb_dims!r}") from None
        if not emb_dims or min(emb_dims) < 1:
            raise ConfigError(f"emb_dims must be embedding dimensions >= 1, got {emb_dims!r}")
    s = _check_series(arr)
    first = s if s.ndim == 1 else s[:, 0]
    if theiler is None:
        theiler = max(1, int(round(mean_period(first))))
    embed = s.ndim == 1 or emb_dims is not None
    if embed:
        delay = estimate_delay(first) if delay is None else delay
        emb_dims = list(range(1, 11)) if emb_dims is None else emb_dims
    else:
        emb_dims = [s.shape[1]]
    spaces = []
    for m in emb_dims:
        Y = delay_embedding(s, m, delay) if embed else s
        if len(Y) < MIN_POINTS:
            raise DataError(f"x is too short for a correlation dimension: {len(Y)} state vectors at m={m}, "
                            f"need at least {MIN_POINTS}")
        spaces.append(Y)
    M = min(len(Y) for Y in spaces)
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(M, min(M, n_points), replace=False))
    if radii is None:
        far = max(float(np.max(np.ptp(Y[idx], axis=0))) * math.sqrt(Y.shape[1]) for Y in spaces)
        radii = np.geomspace(far * 1e-3, far, CD_N_RADII)
    else:
        radii = np.sort(np.asarray(radii, dtype=np.float64))
        if radii.ndim != 1 or len(radii) < 4 or not np.all(radii > 0):
            raise ConfigError("radii must be at least 4 positive numbers")
    C = np.empty((len(spaces), len(radii)))
    counts_last = None
    for n, Y in enumerate(spaces):
        counts, n_pairs = _pair_counts(Y, idx, radii, theiler)
        C[n] = counts / n_pairs
        counts_last = counts
    with np.errstate(divide="ignore", invalid="ignore"):
        lnC = np.where(C > 0, np.log(C), np.nan)
        slopes = np.diff(lnC, axis=1) / np.diff(np.log(radii))
    mid = np.sqrt(radii[1:] * radii[:-1])
    usable = (counts_last[:-1] >= CD_MIN_PAIRS) & (C[-1, 1:] <= CD_MAX_C) & np.isfinite(slopes[-1])
    W = max(3, (len(radii) - 1) // 5)
    best = None
    for a in range(len(mid) - W + 1):
        if usable[a: a + W].all():
            sd = float(np.std(slopes[-1, a: a + W]))
            if best is None or sd < best[0]:
                best = (sd, a)
    if best is None:
        raise DataError(f"no scaling region: fewer than {W} consecutive radii have >= {CD_MIN_PAIRS} pairs within r "
                        f"and C(r) <= {CD_MAX_C}; use a longer series, more n_points, or other radii")
    a = best[1]
    per_dim = np.nanmean(slopes[:, a: a + W], axis=1)
    return CorrelationDimension(value=float(per_dim[-1]), emb_dims=np.asarray(emb_dims), radii=radii, C=C,
                                slopes=slopes, slope_radii=mid, fit_range=(float(radii[a]), float(radii[a + W])),
                                per_dim=per_dim, delay=delay if embed else None, theiler=int(theiler),
                                n_points=len(idx))


# =====================================================================================================
# Lyapunov spectrum of a model (QR method)
# =====================================================================================================


@dataclass
class LyapunovSpectrum:
    """The first k Lyapunov exponents of a model (:func:`lyapunov_spectrum`).

    Attributes
    ----------
    values : np.ndarray (k,)
        Exponents per step, sorted in descending order (mean over initial conditions and ONS seeds);
        ``per_time`` = values / dt.
    dt : float
        Time units per step (given by the caller).
    stderr : np.ndarray (k,)
        Standard error over the ``n_init`` initial conditions (each averaged over its ONS seeds); NaN for one.
    running, running_steps : np.ndarray (n_blocks, k), (n_blocks,)
        Running estimate after each block of steps (convergence diagnostic; "Lyapunov spectra of chaotic
        RNNs" App. A Fig. 18).
    n_steps, n_init, n_ons : int
        Averaged steps, initial conditions, random orthonormal systems per initial condition.
    per_init : np.ndarray (n_init, k)
        The spectrum of each initial condition (averaged over its ONS seeds), in the order of ``values``.
    ons_spread : np.ndarray (k,)
        Standard deviation across the ``n_ons`` ONS seeds, averaged over initial conditions (NaN for
        n_ons = 1). Much larger than ``stderr`` means Q had not converged to the Oseledets directions:
        lengthen ``transient`` ("Lyapunov spectra of chaotic RNNs" App. A, control 6).
    """

    values: np.ndarray
    dt: float
    stderr: np.ndarray
    running: np.ndarray
    running_steps: np.ndarray
    n_steps: int
    n_init: int
    n_ons: int = 1
    per_init: np.ndarray | None = None
    ons_spread: np.ndarray | None = None

    @property
    def per_time(self) -> np.ndarray:
        return self.values / self.dt

    @property
    def stderr_per_time(self) -> np.ndarray:
        return self.stderr / self.dt

    @property
    def kaplan_yorke_dim(self) -> float:
        return kaplan_yorke_dimension(self.values)

    @property
    def entropy_rate(self) -> float:
        """Sum of the positive exponents per time unit (Pesin; "Lyapunov spectra of chaotic RNNs" §III.A)."""
        return float(np.sum(self.per_time[self.per_time > 0]))

    @property
    def neutral_exponent(self) -> float:
        """The exponent closest to 0, per time unit. An autonomous flow that is not at a fixed point has one
        exactly-zero exponent (the direction of the flow); its estimate → 0 as n_steps → ∞ and dt → 0, so
        |neutral_exponent| measures the accuracy of the run ("Lyapunov spectra of chaotic RNNs" App. A,
        control 5). Meaningless for driven models and maps, which have no neutral direction."""
        return float(self.per_time[np.argmin(np.abs(self.per_time))])

    @property
    def drift(self) -> np.ndarray:
        """Change of the running estimate over the second half of the run (per step, (k,)): small compared
        with ``stderr`` when n_steps is long enough."""
        half = int(np.searchsorted(self.running_steps, self.n_steps / 2))
        return self.running[-1] - self.running[min(half, len(self.running) - 1)]

    def __str__(self) -> str:
        def fmt(v, e):
            return f"{v:.4g}" + (f" ± {e:.2g}" if math.isfinite(e) else "")

        shown = ", ".join(fmt(v, e) for v, e in zip(self.per_time[:6], self.stderr_per_time[:6]))
        more = ", ..." if len(self.values) > 6 else ""
        return (f"Lyapunov spectrum per time unit (dt = {self.dt:g}; ± standard error over {self.n_init} initial "
                f"conditions): [{shown}{more}]; D_KY = {self.kaplan_yorke_dim:.3f}; "
                f"entropy rate = {self.entropy_rate:.4g}")


def condition_number_estimate(values, t) -> np.ndarray:
    """κ_2 of the evolved k-dimensional orthonormal system after t steps, estimated from the exponents:
    κ_m(t) ≈ exp((λ_1 − λ_m) t) for m = 1..k ("Gradient Flossing" Eq. 10 and App. J Eq. 28; "Lyapunov
    spectra of chaotic RNNs" Eq. 45).

    ``values``: exponents per step (any order; sorted descending here); ``t``: steps (a number or an
    array). Returns (k,) for scalar t, else (len(t), k). Use it to choose ``qr_every``: κ = 10^p loses p
    digits, so keep κ_k(qr_every) far below 1/eps (digest §1.2), and to see how many directions a gradient
    over t steps can still resolve (the m with κ_m(t) below, e.g., 1e5; "Gradient Flossing" Fig. 2).
    Pitfall: the estimate assumes t is long enough for the exponents to describe the product (the finite-time
    spread is ignored) and overflows to inf for large (λ_1 − λ_m) t.
    """
    lam = np.sort(np.asarray(values, dtype=np.float64).ravel())[::-1]
    tt = np.asarray(t, dtype=np.float64)
    with np.errstate(over="ignore"):
        out = np.exp((lam[0] - lam)[None, :] * tt.reshape(-1, 1))
    return out[0] if tt.ndim == 0 else out


def kaplan_yorke_dimension(values) -> float:
    """D_KY = j + (λ_1 + ... + λ_j) / |λ_{j+1}|, j the largest index with a non-negative partial sum.

    0 when λ_1 < 0; the number of exponents given when every partial sum is non-negative (the estimate
    then needs more exponents). Reference: "Lyapunov spectra of chaotic RNNs" Eq. 3.
    """
    lam = np.sort(np.asarray(values, dtype=float))[::-1]
    partial = np.cumsum(lam)
    nonneg = np.flatnonzero(partial >= 0)
    if len(nonneg) == 0:
        return 0.0
    j = int(nonneg[-1]) + 1
    if j == len(lam):
        return float(j)
    return float(j + partial[j - 1] / abs(lam[j]))


def _step_args(inputs, t):
    """Positional extra argument of step/jacobian at step t: () for autonomous runs, (s_t,) otherwise."""
    return () if inputs is None else (inputs[t],)


def qr_log_stretches(model, z, Q, n_steps, *, qr_every=1, inputs=None):
    """Evolve states z (B, M) and orthonormal frames Q (B, M, k) for n_steps steps of the model:
    Q <- J(z_t, s_t) Q (model.jacobian), z <- model.step(z, s_t); every qr_every steps and at the last
    step Q, R = qr(Q) and log|R_ii| is accumulated. Returns (z, Q, logs) with logs (B, k) the sum of
    log|R_ii| over this call (divide by the number of steps for exponents per step).
    inputs: None or (n_steps, B, K) external inputs s_1..s_n. Differentiable with respect to the model's
    parameters (and z) when called with autograd enabled: no detach / no_grad inside. Q is kept in the
    dtype it is given (float64 for lyapunov_spectrum; flossing may pass float32 or float64).

    This is the one QR core of :func:`lyapunov_spectrum` and of gradient flossing (Benettin et al. 1980;
    "Gradient Flossing" §3 and App. J Alg. 2; "On Lyapunov exponents for RNNs" Alg. 1/2; "Lyapunov
    spectra of chaotic RNNs" App. A). The Jacobian is evaluated at the state *before* the step, so the
    product after n steps is J(z_{n-1}) ··· J(z_0) Q. Autonomous models are called as ``step(z)`` /
    ``jacobian(z)`` (no ``s`` argument), driven ones as ``step(z, s_t)`` / ``jacobian(z, s_t)``; every
    column of Q sees the same input realization (frozen input, "Lyapunov spectra of chaotic RNNs" §VIII).

    Pitfalls: LAPACK's R_ii may be negative, hence log|R_ii|; an R_ii of exactly 0 (a dead direction)
    gives −inf; between two QRs the columns of Q are multiplied by up to exp((λ₁ − λ_k)·qr_every) and
    lose that many digits, so keep qr_every·(λ₁ − λ_k) well below ln(1/eps) (digest §1.2). Nothing here
    checks for non-finite states (no host synchronisation per step); callers do.
    """
    import torch

    n_steps, qr_every = int(n_steps), int(qr_every)
    if n_steps < 1 or qr_every < 1:
        raise ConfigError(f"n_steps and qr_every must be integers >= 1, got {n_steps} and {qr_every}")
    if inputs is not None and len(inputs) < n_steps:
        raise ConfigError(f"inputs cover {len(inputs)} steps, fewer than n_steps = {n_steps}")
    logs = torch.zeros(Q.shape[0], Q.shape[-1], dtype=Q.dtype, device=Q.device)
    for t in range(n_steps):
        extra = _step_args(inputs, t)
        Q = model.jacobian(z, *extra).to(Q.dtype) @ Q
        z = model.step(z, *extra)
        if (t + 1) % qr_every == 0 or t + 1 == n_steps:
            Q, R = torch.linalg.qr(Q)
            logs = logs + torch.log(torch.abs(torch.diagonal(R, dim1=-2, dim2=-1)))
    return z, Q, logs


class _SharedState:
    """The model seen by the n_ons frames of one initial condition: step and Jacobian are evaluated once per
    initial condition (rows 0, n_ons, 2 n_ons, ...) and repeated, so the copies stay bit-identical. Batched
    GEMMs round row by row differently (kernel tails on AVX-512: rows 3 and 4 of a (6, 40) product), and a
    chaotic map amplifies that last bit to O(1) within ~150 steps; ``ons_spread`` would then measure the
    divergence of the copies' trajectories instead of the convergence of the frames."""

    def __init__(self, model, n_ons: int):
        self.model, self.n_ons = model, int(n_ons)

    def _one_per_init(self, fn, z, extra):
        out = fn(z[::self.n_ons], *(s[::self.n_ons] for s in extra))
        return out.repeat_interleave(self.n_ons, dim=0)

    def step(self, z, *extra):
        return self._one_per_init(self.model.step, z, extra)

    def jacobian(self, z, *extra):
        return self._one_per_init(self.model.jacobian, z, extra)


def _input_sequence(inputs, n_total: int, B: int, generator, dtype, device):
    """The (n_total, B, K) input tensor of :func:`lyapunov_spectrum` from a tensor/array or a callable."""
    import torch

    if inputs is None:
        return None
    if callable(inputs):
        inputs = inputs(n_total, B, generator)
    try:
        s = torch.as_tensor(inputs)
    except (TypeError, ValueError, RuntimeError):
        raise ConfigError(f"inputs must be a tensor of shape (transient + n_steps, B, K) or a callable "
                          f"returning one, got {type(inputs).__name__}") from None
    if s.dim() != 3 or s.shape[0] < n_total or s.shape[1] != B:
        raise ConfigError(f"inputs must have shape (transient + n_steps, n_init, K) = ({n_total}, {B}, K), "
                          f"got {tuple(s.shape)}")
    if not bool(torch.isfinite(s).all()):
        raise DataError("inputs contain NaN/inf values")
    return s[:n_total].to(device=device, dtype=dtype)


def lyapunov_spectrum(model, *, k: int | None = None, n_steps: int = 10_000, transient: int = 1000,
                      qr_every: int = 1, n_init: int = 1, z0=None, dt: float = 1.0, seed: int = 0,
                      n_blocks: int = 20, inputs=None, n_ons: int = 1) -> LyapunovSpectrum:
    """First ``k`` Lyapunov exponents of any :class:`dsrecon.models.base.Model` by the QR method.

    Algorithm (Benettin et al. 1980; "Lyapunov spectra of chaotic RNNs" §III and App. A; "On Lyapunov
    exponents for RNNs" Alg. 1): ``n_init`` initial states (``z0``, or standard normal with ``seed``)
    are iterated ``transient`` steps onto the attractor while a random orthonormal set Q (M x k) is
    evolved and re-orthonormalised without accumulating (so Q aligns with the Oseledets directions);
    then for ``n_steps`` steps Q <- J(z) Q, z <- step(z), and every ``qr_every`` steps Q, R = qr(Q) and
    log|R_ii| is accumulated (:func:`qr_log_stretches`, run block by block for the running estimate).
    λ_i = Σ log|R_ii| / n_steps per step; divide by ``dt`` (given) for per time.
    Deviation vectors are evolved in float64 whatever the model's dtype.

    Parameters: ``inputs`` — external inputs of a driven model (``input_dim > 0``): a tensor
    (transient + n_steps, n_init, K), row t the input s_t of step t (warm-up first), or a callable
    ``inputs(n_total, B, generator) -> tensor`` of that shape, called once with n_total = transient +
    n_steps, B = n_init and a ``torch.Generator`` seeded from ``seed`` (e.g. frozen white noise). All
    deviation vectors of one initial condition see the same input realization ("Lyapunov spectra of
    chaotic RNNs" §VIII; "On Lyapunov exponents for RNNs" §4.1, which averages the spectra over a batch
    of input sequences — here over ``n_init``). The result is then the conditional spectrum given the input
    statistics; a driven flow has no neutral exponent.
    ``n_ons`` — independent random orthonormal systems per initial condition (each its own Q, same state
    and input): their spread (``ons_spread``) checks that Q converged during ``transient`` ("Lyapunov
    spectra of chaotic RNNs" App. A, control 6). The run is batched over n_init x n_ons.
    Convergence controls on the result: ``running`` (estimate against steps), ``drift``, ``stderr`` (over
    initial conditions), ``ons_spread``, ``neutral_exponent`` (flows).

    Returns: :class:`LyapunovSpectrum` (values per step, stderr over initial conditions, running
    estimate, ONS spread, D_KY, entropy rate).
    Raises: DataError if the trajectory becomes non-finite, naming the steps; ConfigError on bad settings.
    Cost: per step one Jacobian (B, M, M), one batched (M x M)(M x k) product and every ``qr_every`` steps a
    QR of (M x k) ("Gradient Flossing" App. F Table 1); with B = n_init x n_ons.
    Pitfalls: R_ii may be negative (LAPACK's sign convention), hence |R_ii|; a large ``qr_every``
    flattens the tail of the spectrum (rounding); a flow's neutral exponent is ≈ 0 only as dt → 0;
    a finite ``n_steps`` leaves a bias of order 1/n_steps (check ``running``).
    """
    import torch

    M = int(model.latent_dim)
    k = M if k is None else int(k)
    if not 1 <= k <= M:
        raise ConfigError(f"k must be between 1 and the latent dimension {M}, got {k}")
    for name, v, lo in (("n_steps", n_steps, 1), ("transient", transient, 0), ("qr_every", qr_every, 1),
                        ("n_init", n_init, 1), ("n_blocks", n_blocks, 1), ("n_ons", n_ons, 1)):
        if isinstance(v, bool) or int(v) != v or v < lo:
            raise ConfigError(f"{name} must be an integer >= {lo}, got {v!r}")
    n_steps, transient, qr_every = int(n_steps), int(transient), int(qr_every)
    if not (dt > 0 and math.isfinite(dt)):
        raise ConfigError(f"dt must be a positive number, got {dt!r}")
    params = list(model.parameters()) if hasattr(model, "parameters") else []
    dtype = params[0].dtype if params else torch.float64
    device = params[0].device if params else torch.device("cpu")
    g = torch.Generator().manual_seed(seed)
    if z0 is None:
        z = torch.randn(int(n_init), M, generator=g, dtype=torch.float64)
    else:
        z = torch.as_tensor(z0, dtype=torch.float64).reshape(-1, M)
    n_init, n_ons = z.shape[0], int(n_ons)
    B = n_init * n_ons                                   # row b: initial condition b // n_ons, ONS b % n_ons
    z = z.repeat_interleave(n_ons, dim=0).to(device=device, dtype=dtype)
    Q = torch.linalg.qr(torch.randn(B, M, k, generator=g, dtype=torch.float64))[0].to(device)
    s_all = _input_sequence(inputs, transient + n_steps, n_init, g, dtype, device)
    if s_all is None and getattr(model, "input_dim", 0):
        raise ConfigError(f"the model has input_dim = {model.input_dim}: pass inputs= (a tensor "
                          f"(transient + n_steps, n_init, {model.input_dim}) or a callable)")
    if s_all is not None and n_ons > 1:
        s_all = s_all.repeat_interleave(n_ons, dim=1)     # every ONS of an initial condition: the same input

    stepper = model if n_ons == 1 else _SharedState(model, n_ons)

    def run(z, Q, start, length):
        s = None if s_all is None else s_all[start: start + length]
        z, Q, logs = qr_log_stretches(stepper, z, Q, length, qr_every=qr_every, inputs=s)
        if not bool(torch.isfinite(z).all()) or not bool(torch.isfinite(logs).all()):
            raise DataError(f"the model's trajectory (or its deviation vectors) became non-finite between steps "
                            f"{start + 1} and {start + length} of the Lyapunov run")
        return z, Q, logs

    with torch.no_grad():
        if transient:                                   # warm-up of z and Q: accumulate nothing
            z, Q, _ = run(z, Q, 0, transient)
        acc = torch.zeros(B, k, dtype=torch.float64, device=device)
        block = max(qr_every, (max(1, n_steps // n_blocks) // qr_every) * qr_every)
        running, running_steps, done = [], [], 0
        while done < n_steps:
            length = min(block, n_steps - done)
            z, Q, logs = run(z, Q, transient + done, length)
            acc += logs
            done += length
            running.append((acc.mean(0) / done).cpu().numpy())
            running_steps.append(done)
    per_run = (acc / n_steps).cpu().numpy().reshape(n_init, n_ons, k)
    per_init = per_run.mean(1)
    order = np.argsort(-per_init.mean(0))
    values = per_init.mean(0)[order]
    stderr = (per_init.std(0, ddof=1) / math.sqrt(n_init))[order] if n_init > 1 else np.full(k, np.nan)
    ons_spread = per_run.std(1, ddof=1).mean(0)[order] if n_ons > 1 else np.full(k, np.nan)
    return LyapunovSpectrum(values=values, dt=float(dt), stderr=stderr,
                            running=np.asarray(running)[:, order], running_steps=np.asarray(running_steps),
                            n_steps=int(n_steps), n_init=int(n_init), n_ons=n_ons, per_init=per_init[:, order],
                            ons_spread=ons_spread)


def true_spectrum(dataset_name: str, *, n_steps: int = 10_000, transient: int = 1000, n_init: int = 3,
                  substeps: int = 10, seed: int = 0, **kwargs) -> LyapunovSpectrum:
    """Lyapunov spectrum of a simulated dataset's true equations: the ground truth for λ from data and for
    trained models.

    Reads the system, its parameters and the sampling interval dt from the dataset card
    (:func:`dsrecon.data.card`), wraps the vector field as a Model (:class:`dsrecon.systems.FlowModel`: RK4
    with ``substeps`` per sample, Jacobian by autograd) and runs :func:`lyapunov_spectrum` from ``n_init``
    initial conditions on the attractor (integrated by :func:`dsrecon.systems.simulate` with seeds
    seed, seed + 1, ...), with ``dt`` set so that ``per_time`` is in the card's time units. Extra keyword
    arguments go to :func:`lyapunov_spectrum`.

    A delay-differential card (kind "dde", Mackey-Glass) goes through :func:`_true_spectrum_dde`: the
    method-of-steps map :class:`dsrecon.systems.DelayMap` of the card's integrator, whose state is the history
    buffer (hundreds of values), so only the leading ``k`` exponents (default 3) are computed.

    Raises DataError for a dataset without equations (a recorded series). Pitfalls: the spectrum is that
    of the RK4 map, which approaches the flow's as dt/substeps → 0 (its sum equals −(σ + 1 + β) for Lorenz
    to O((dt/substeps)^4)); the neutral exponent converges like 1/n_steps; the card's data are standardised,
    which does not change exponents. Cost: autograd Jacobians of the RK4 map, about 1–3 ms per step.
    Reference: Benettin et al. 1980; "Lyapunov spectra of chaotic RNNs" App. A; Wolf et al. 1985 for
    Lorenz (1.50, 0, −22.46).
    """
    from . import data as data_mod
    from . import systems

    c = data_mod.card(dataset_name)
    if c.get("kind") == "dde" and "system" in c:
        return _true_spectrum_dde(c, n_steps=n_steps, transient=transient, n_init=n_init, seed=seed, **kwargs)
    if c.get("kind") != "ode" or "system" not in c:
        raise DataError(f"dataset {dataset_name!r} has no true equations (kind = {c.get('kind')!r}); true_spectrum "
                        f"needs a simulated dataset")
    dt = float(c["sampling"]["dt"])
    params = dict(c.get("parameters", {}))
    flow = systems.FlowModel(c["system"], params, dt=dt, substeps=substeps)
    z0 = np.concatenate([systems.simulate(c["system"], params, dt=dt, n_samples=1,
                                          transient=int(c["sampling"].get("transient", 10_000)), seed=seed + i)
                         for i in range(int(n_init))])
    return lyapunov_spectrum(flow, n_steps=n_steps, transient=transient, z0=z0, dt=dt, seed=seed, **kwargs)


def _true_spectrum_dde(c: dict, *, n_steps: int, transient: int, n_init: int, seed: int, **kwargs) -> LyapunovSpectrum:
    """Leading exponents of a delay card's true equation: QR on the method-of-steps map with the card's step
    h = dt / substeps, from ``n_init`` history buffers on the attractor (integrated from constant histories
    with seeds seed, seed + 1, ...). The state is x on the last delay/h + 2 grid points, so k defaults to 3
    (Mackey-Glass β=2, γ=1, n=9.65, delay 2 at h = 0.01: about (0.075, 0, −0.27) per time unit; card source)."""
    from . import systems

    dt = float(c["sampling"]["dt"])
    sub = int(c.get("integration", {}).get("substeps", 4))
    params = dict(c.get("parameters", {}))
    h = dt / sub
    model = systems.DelayMap(c["system"], params, dt=dt, substeps=sub)
    need = model.N + 2
    warm = int(c["sampling"].get("transient", 1000)) * sub
    z0 = np.stack([systems.delay_state(
        systems.simulate_delay(c["system"], params, dt=h, substeps=1, n_samples=need, transient=warm, seed=seed + i)[:, 0],
        delay=float(params["delay"]), h=h) for i in range(int(n_init))])
    kwargs.setdefault("k", 3)
    return lyapunov_spectrum(model, n_steps=n_steps, transient=transient, z0=z0, dt=dt, seed=seed, **kwargs)
