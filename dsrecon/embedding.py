"""Delay embedding and the series checks shared by the estimators from data (λ_max, τ, D_2).

Arrays in, numbers or arrays out: the input check of a measured series (:func:`series_and_dt`,
:func:`standardised_series`), the Theiler window (:func:`mean_period`), the embedding delay (average mutual
information, Fraser & Swinney 1986; autocorrelation: :func:`estimate_delay`, :func:`first_ami_minimum`), the
embedding dimension (false nearest neighbours, Kennel et al. 1992: :func:`estimate_embedding_dimension`), delay
vectors (:func:`delay_embedding`) and the nearest neighbour outside a Theiler window (:func:`nearest_neighbours`).
Used by :mod:`dsrecon.maxlyap`, :mod:`dsrecon.tau`, :mod:`dsrecon.dimension` and :mod:`dsrecon.preprocess`.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.spatial import cKDTree

from .arrays import transposed_hint
from .errors import ConfigError, DataError

MIN_POINTS = 1000          # fewest state vectors (after embedding) an estimator from data accepts
AMI_BINS = 32              # histogram bins of the average mutual information
FNN_RTOL, FNN_ATOL = 10.0, 2.0   # Kennel et al. (1992) thresholds
FNN_THRESHOLD = 0.01       # first embedding dimension whose FNN fraction is below this is taken
FNN_MAX_DIM = 10
FNN_N_REF = 5000           # reference points of the FNN test


# ------------------------------------------------------------------------------------ input checks
def series_and_dt(x, dt):
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


def standardised_series(arr: np.ndarray) -> np.ndarray:
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
        raise DataError(f"x is too short for a lambda_max estimate: {T} samples, need at least {MIN_POINTS}"
                        f"{transposed_hint(arr.shape)}")
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


def check_int(name, value, lo, allow_none=True):
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


def decorrelation_time(x) -> int:
    """The first lag (in steps) at which the autocorrelation, averaged over the channels of ``x`` ((T,) or (T, N)),
    falls below 1/e: the e-folding time of memory in the series (len(x) − 1 when it never does, 0 for a
    constant series). Constant channels are left out of the average."""
    arr = np.asarray(x, dtype=float)
    arr = arr[:, None] if arr.ndim == 1 else arr
    T = arr.shape[0]
    if T < 3:
        return 1
    ac = np.mean([_autocorrelation(arr[:, j], T - 1) for j in range(arr.shape[1]) if np.ptp(arr[:, j]) > 0], axis=0) \
        if np.any(np.ptp(arr, axis=0) > 0) else np.zeros(T)
    below = np.nonzero(ac < np.exp(-1.0))[0]
    return int(below[0]) if below.size else T - 1


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


def nearest_neighbours(Y: np.ndarray, ref: np.ndarray, theiler: int, tree: cKDTree | None = None,
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
        nn, d = nearest_neighbours(Y, ref, theiler)
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



def first_ami_minimum(s: np.ndarray, max_lag: int, bins: int) -> int | None:
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
