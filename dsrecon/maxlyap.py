"""λ_max from a measured time series: Rosenstein's (default) and Kantz's estimators, nolds as a cross-check.

The pipeline of :func:`max_lyapunov`: input -> (T,) or (T, N) float array, checked (finite, long enough, not
constant), channels standardised -> Theiler window (mean period) -> delay embedding (AMI / autocorrelation
delay, false-nearest-neighbour dimension) for univariate input (:mod:`dsrecon.embedding`) -> nearest neighbour
of every reference point outside the Theiler window (cKDTree) -> mean log divergence d(k), horizon extended
until d(k) saturates -> automatic linear region -> slope = λ_max per step (:mod:`dsrecon.divergence`).
The forcing interval τ from data is :func:`dsrecon.tau.forcing_interval`; spectra of models are
:mod:`dsrecon.lyapunov`.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from .divergence import (N_BOOT, Divergence, KantzDivergence, auto_fit_range, bootstrap_stderr,
                         chaos_verdict, divergence_curve, fit_line, neighbourhoods, saturated)
from .embedding import (MIN_POINTS, check_int, delay_embedding, estimate_delay, estimate_embedding_dimension,
                        mean_period, nearest_neighbours, series_and_dt, standardised_series)
from .errors import ConfigError, DataError

MIN_PERIODS = 10           # fewest mean periods (Theiler windows) the series must span
DEFAULT_N_REF = 20_000     # reference points used by default (all of them when fewer)
NOLDS_MAX_POINTS = 30_000  # method="nolds" builds a T x T matrix: refuse longer series
ESTIMATORS = ("rosenstein", "kantz", "nolds")   # the methods of max_lyapunov
KANTZ_MAX_NEIGHBOURS = 20  # neighbours per reference point in Kantz's method (the closest within eps)
KANTZ_N_REF = 5000         # reference points of Kantz's method by default
KANTZ_EPS_FACTOR = 2.0     # default eps = this x the median nearest-neighbour distance


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
    x : array (T,) or (T, N), or xarray.Dataset with variable ``x`` of dims ("time", "channel")
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
    arr, dt = series_and_dt(x, dt)
    if method not in ESTIMATORS:
        raise ConfigError(f"method must be one of {', '.join(ESTIMATORS)}, got {method!r}")
    emb_dim = check_int("emb_dim", emb_dim, 1)
    delay = check_int("delay", delay, 1)
    theiler = check_int("theiler", theiler, 0)
    max_horizon = check_int("max_horizon", max_horizon, 2)
    n_ref = check_int("n_ref", n_ref, 10)
    n_boot = check_int("n_boot", n_boot, 0, allow_none=False)
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

    s = standardised_series(arr)
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
    nn, nn_dist = nearest_neighbours(Y, ref, theiler, tree)
    ok = nn >= 0
    if ok.sum() < 10:
        raise DataError(f"found only {int(ok.sum())} neighbour pairs outside the Theiler window of {theiler} steps; "
                        f"the series is too short or too regular")
    if method == "rosenstein":
        div = Divergence(Y, ref[ok], nn[ok])
        n_pairs = int(ok.sum())
    else:
        if eps is None:
            eps = KANTZ_EPS_FACTOR * float(np.median(nn_dist[ok]))
        nbr = neighbourhoods(Y, ref, theiler, eps, KANTZ_MAX_NEIGHBOURS, tree)
        has = (nbr >= 0).any(axis=1)
        if has.sum() < 10:
            raise DataError(f"only {int(has.sum())} reference points have a neighbour within eps = {eps:.3g} "
                            f"(standardised units) outside the Theiler window; pass a larger eps")
        div = KantzDivergence(Y, ref[has], nbr[has])
        n_pairs = int((nbr >= 0).sum())

    curve, H = divergence_curve(div, M, theiler, max_horizon, fit_range)
    note = None
    if fit_range is None:
        *fit_range, note = auto_fit_range(curve)
    elif fit_range[1] > len(curve):
        raise ConfigError(f"fit_range {fit_range!r} ends after the last lag {len(curve) - 1}")
    lags = np.arange(len(curve))
    a, b = fit_range
    slope, intercept = fit_line(lags[a:b], curve[a:b])
    se = bootstrap_stderr(div, H, a, b, n_boot, rng)
    chaotic, reason = (False, note) if note else chaos_verdict(curve, slope, se)
    return MaxLyapunov(value=slope / dt, per_step=slope, dt=dt, curve=curve, lags=lags, fit_range=(int(a), int(b)),
                       intercept=intercept, emb_dim=emb_dim, delay=delay, theiler=int(theiler),
                       n_pairs=n_pairs, dim=int(Y.shape[1]), method=method, stderr_per_step=se,
                       chaotic=chaotic, reason=reason, eps=eps)


def _import_nolds():
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")          # nolds 0.6.2 imports the deprecated pkg_resources
            import nolds   # deferred: an optional cross-check (pip install nolds); only method="nolds" needs it
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
    while max_horizon is None and not saturated(curve) and H < cap:
        H = min(cap, 2 * H)
        curve = curve_for(H)
    if not np.all(np.isfinite(curve)):
        raise DataError("nolds.lyap_r returned a divergence curve with NaN/inf values")
    note = None
    if fit_range is None:
        *fit_range, note = auto_fit_range(curve)
    lags = np.arange(len(curve))
    a, b = fit_range
    slope, intercept = fit_line(lags[a:b], curve[a:b])
    chaotic, reason = (False, note) if note else chaos_verdict(curve, slope, float("nan"))
    return MaxLyapunov(value=slope / dt, per_step=slope, dt=dt, curve=curve, lags=lags, fit_range=(int(a), int(b)),
                       intercept=intercept, emb_dim=emb_dim, delay=delay, theiler=int(theiler),
                       n_pairs=len(Y), dim=int(Y.shape[1]), method="nolds", stderr_per_step=float("nan"),
                       chaotic=chaotic, reason=reason)
