"""Dimensions of a series: the correlation dimension D_2 (Grassberger & Procaccia 1983), the D_eff of "How to train
RNNs on chaotic data" App. A.4 (:func:`correlation_dimension`), and the linear dimension, the principal components
holding 99 % of the standardised variance (:func:`linear_dimension`), from which a fit of many channels takes its
latent size (:func:`dsrecon.config.model_sizes`) and the initial observation of fewer latents than channels
(:func:`init_observation`)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial import cKDTree

from .arrays import as_array
from .embedding import (MIN_POINTS, check_int, delay_embedding, estimate_delay, mean_period, series_and_dt,
                        standardised_series)
from .errors import ConfigError, DataError
from .models.observation import set_observation

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
    arr, dt = series_and_dt(x, dt)
    delay = check_int("delay", delay, 1)
    theiler = check_int("theiler", theiler, 0)
    n_points = check_int("n_points", n_points, 100, allow_none=False)
    if emb_dims is not None:
        try:
            emb_dims = [int(m) for m in np.atleast_1d(emb_dims)]
        except (TypeError, ValueError):
            raise ConfigError(f"emb_dims must be embedding dimensions >= 1, got {emb_dims!r}") from None
        if not emb_dims or min(emb_dims) < 1:
            raise ConfigError(f"emb_dims must be embedding dimensions >= 1, got {emb_dims!r}")
    s = standardised_series(arr)
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


# ----------------------------------------------------------------------------- linear dimension (PCA)
LD_FRACTION = 0.99        # principal components for this fraction of the standardised variance


@dataclass
class LinearDimension:
    """The number of principal components of a multichannel series (:func:`linear_dimension`).

    Attributes
    ----------
    value : int
        Components needed for ``fraction`` of the standardised variance (each channel scaled to unit variance).
    fraction : float
        The variance fraction asked for.
    explained : np.ndarray (N,)
        Cumulative fraction of the standardised variance in the first 1..N components.
    directions : np.ndarray (N, N)
        Principal directions of the series as given (centred, not rescaled), one column each, by decreasing
        variance: the first M columns span the M-dimensional subspace closest to the data (Eckart-Young).
    """

    value: int
    fraction: float
    explained: np.ndarray
    directions: np.ndarray

    def __str__(self) -> str:
        return (f"{self.value} principal components hold {100 * self.explained[self.value - 1]:.1f} % of the "
                f"standardised variance of {len(self.explained)} channels (>= {100 * self.fraction:g} % asked)")


def _eigh_desc(C: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w, V = np.linalg.eigh(C)
    return np.clip(w[::-1], 0.0, None), V[:, ::-1]


def linear_dimension(x, fraction: float = LD_FRACTION) -> LinearDimension:
    """Linear dimension of a (T, N) series: the fewest principal components holding ``fraction`` (0.99) of its
    variance, each channel standardised first (Jolliffe, "Principal Component Analysis", 2002, §6.1.1: the
    cumulative percentage of total variation; on the correlation matrix, so channels of larger units do not
    dominate). Cost: one N x N eigendecomposition after a pass over the data (64 channels x 10^4 samples:
    milliseconds).

    It bounds the data's dimension from above (a curved d-dimensional attractor needs at least d components),
    and it is what a linear observation x = B z with M latents can reproduce at best: for M < N, forcing and
    the model's output lie in the M-dimensional range of B. Noise that is independent across channels spreads
    over all N components: with a noise-to-signal variance ratio ε per channel, the last N - d components hold
    about ε / (1 + ε) of the variance, so noise below 1 % of the variance leaves a d-dimensional signal's value
    at d (a mixture of 3 sources into 64 channels with 5 % noise: 3).

    Raises: DataError for a series that is not 2-d, holds NaN/inf, has fewer than 2 samples, or is constant.
    """
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] < 2 or arr.shape[1] < 1:
        raise DataError(f"x must be a series of shape (T, N) with T >= 2 (time first), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise DataError(f"x contains {int((~np.isfinite(arr)).sum())} NaN/inf values; drop or interpolate them")
    if not 0 < float(fraction) <= 1:
        raise ConfigError(f"fraction must be in (0, 1], got {fraction!r}")
    xc = arr - arr.mean(axis=0)
    C = xc.T @ xc / (len(xc) - 1)
    sd = np.sqrt(np.diag(C))
    if not (sd > 0).any():
        raise DataError("x is constant (every channel has zero variance): it has no principal components")
    keep = sd > 0
    R = C[np.ix_(keep, keep)] / np.outer(sd[keep], sd[keep])      # correlation matrix of the varying channels
    w = _eigh_desc(R)[0]
    explained = np.ones(arr.shape[1])
    explained[:len(w)] = np.cumsum(w) / w.sum()
    value = int(np.searchsorted(explained, float(fraction) - 1e-12) + 1)
    return LinearDimension(value=min(value, arr.shape[1]), fraction=float(fraction), explained=explained,
                           directions=_eigh_desc(C)[1])


def init_observation(model, data, dims: LinearDimension | None = None):
    """Start a learned observation B (N x M) of fewer latents than channels (M < N) at the top M principal directions
    V_M of ``data`` (T, N): B⁺x = V_Mᵀx, the data's first M principal components, so forcing informs every latent
    from the first step, and B B⁺ projects on the M-dimensional subspace closest to the data (Eckart-Young; [I 0]
    would keep M channels and drop the rest). Applied to every member of an ensemble (``Ensemble(model, K)``
    rebuilds its members from their hyperparameters: call it again after). M >= N or a fixed B: unchanged
    (Lorenz keeps [I 0]), and so does ``data = None``. ``dims``: the :func:`linear_dimension` of ``data`` when
    known. Returns ``model``. Raises DataError for data of another channel count than the model's."""
    members = list(getattr(model, "members", None) or [model])
    B = members[0].B
    N, M = B.shape[-2], B.shape[-1]
    if data is None or M >= N or not isinstance(B, torch.nn.Parameter):
        return model
    x = as_array(data, what="the training data")
    if x.ndim != 2 or x.shape[1] != N:
        raise DataError(f"the training data must have shape (T, {N}) to initialise the observation, got {x.shape}")
    V = np.ascontiguousarray((linear_dimension(x) if dims is None else dims).directions[:, :M])
    for m in members:
        set_observation(m, torch.from_numpy(V))
    return model
