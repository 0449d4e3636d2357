"""Reconstruction metrics as pure functions that return a :class:`Score` (value + the variant).

State space and spectra (arrays against arrays):
- :func:`d_stsp`: state-space divergence KL(p_true || p_gen). ``method="bins"`` (binned N-d histograms,
  box "minmax" or "2sd"), ``method="legacy"`` (the ±2σ box of the sparse-forcing paper's code, with its
  quirks), ``method="gmm"`` (Gaussian mixtures, Monte-Carlo KL; for ≥ 6 dimensions), ``method="auto"``
  (gmm from 6 dimensions on, else bins). "How to train RNNs on chaotic data" App. A.5; Koppe et al. 2019.
- :func:`hellinger_distance` (D_H): Hellinger distance of smoothed, normalised power spectra per
  dimension, averaged (Mikhaeil et al. 2022; Hess et al. 2023); ``variant="legacy"``: the chunked
  version of the same paper's code (σ = 2, 500-bin cut-off, 50 chunks).
- :func:`power_spectrum_correlation` (PSC): Pearson correlation of the same spectra (App. A.5).
- :func:`score_all`: the three at once (plus the legacy variants on request).

Verdicts and reading aids (arrays too): :func:`dynamics_verdict`, :func:`trivial_baselines`, :func:`informative`,
:func:`block_bootstrap`, :func:`regress_full_observation`, :func:`summarise`, :func:`median_mad`.
Running a model against data (PE, VPT, Lyapunov scores, many initial conditions, partial observation, the noise
floor) is :mod:`dsrecon.evaluation`, one layer up: this module imports neither models nor data.

Inputs ``true`` and ``gen`` are (T, N) or (T,) arrays, torch tensors, or ``xarray.Dataset`` with a
variable ``x`` of dims ("time", "dim"). ``true`` must be finite (DataError otherwise). A ``gen`` that
cannot be scored -- non-finite rows (a diverged model), another number of dimensions, fewer than 2
steps, no point inside the box -- gives a Score whose value is inf (D_stsp, D_H) or nan (PSC, or when
the comparison is undefined) with the ``reason`` recorded, never an exception.

Every number depends on its settings and on the generated length; a :class:`Score` carries them, and
the noise floor -- the same score between the test split and an independent true trajectory of the
same length -- is the number to read it against.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.ndimage import convolve1d, gaussian_filter1d
from scipy.special import logsumexp

from .arrays import as_array
from .errors import ConfigError, DataError

MAX_CELLS = 100_000_000  # n_bins ** N above this: the histogram would not fit in memory
GMM_FROM_DIM = 6          # method="auto" switches from bins to the Gaussian mixture at this dimension
MIN_PER_CELL = 5.0        # method="auto": bins only when the true points fill their occupied cells this densely

_SPECTRUM_VARIANT = {"normalisation": "zscore (ddof=0)", "spectrum": "rfft power |X|^2",
                     "smoothing": "gaussian smoothing (scipy.ndimage.gaussian_filter1d, reflect, truncate=4)",
                     "scale": "sum 1"}
_LEGACY_SPECTRUM_VARIANT = {
    "variant": "legacy", "normalisation": "zscore per chunk (ddof=1)",
    "spectrum": "rfft(norm='ortho') power |X|^2 * 2/L, odd L trimmed by one",
    "smoothing": "convolution with a normalised Gaussian kernel of 10*sigma+1 taps, zero padding",
    "average": "mean over chunks (nan-mean)", "overlap": "trapezoid rule, no renormalisation",
    "source": "DurstewitzLab/ChaosRNN evaluation/pse.py + main_eval.py (read, not copied)"}


@dataclass(frozen=True)
class Score:
    """A metric value with everything that defines it.

    ``n_used``/``n_total``: for D_stsp the generated points inside the box (or mixture components) /
    given; for D_H and PSC the generated points whose chunks entered the averaged spectrum (all of them) /
    given; for
    model metrics the starts used / available.
    ``reference``: the number the value is compared with, where there is one (λ_max of the data or of
    the true equations, D_KY of the true equations). ``t_gen``: generated steps per initial condition.
    ``n_init``: initial conditions (or noise-floor seeds) the value summarises; for n_init > 1 the value
    is their median and ``spread`` the median absolute deviation (MAD, unscaled). ``extra``: curves and
    per-initial-condition values (JSON-safe lists).
    """

    name: str
    value: float
    variant: dict = field(default_factory=dict)
    n_used: int = 0
    n_total: int = 0
    reason: str = ""  # why the value is inf/nan, or what was special
    reference: float | None = None
    t_gen: int | None = None
    n_init: int = 1
    spread: float | None = None
    extra: dict = field(default_factory=dict)

    def __float__(self) -> float:
        return float(self.value)

    def __str__(self) -> str:
        desc = ", ".join(f"{k}={v}" for k, v in self.variant.items())
        val = f"{self.value:.4g}"
        if self.n_init > 1 and self.spread is not None:
            what = self.extra.get("spread_is", f"median ± MAD over {self.n_init}")
            val += f" ± {self.spread:.2g} ({what})"
        if self.reference is not None:
            val += f" (reference {self.reference:.4g})"
        s = f"{self.name} = {val} ({desc}; {self.n_used}/{self.n_total} points used"
        s += f", T_gen={self.t_gen})" if self.t_gen is not None else ")"
        return s + (f" [{self.reason}]" if self.reason else "")

    def to_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------------------------------ inputs
def _pair(true, gen) -> tuple[np.ndarray, np.ndarray, str]:
    """(true, gen, reason): ``reason`` is non-empty when gen cannot be compared with true at all."""
    t = as_array(true, what="true data")
    if len(t) < 2:
        raise DataError(f"true data: need at least 2 time steps, got {len(t)}")
    g = as_array(gen, what="generated data", allow_nonfinite=True)  # a diverged run is scored, not refused
    if t.shape[1] != g.shape[1]:
        return t, g, (f"true data have {t.shape[1]} dimensions but generated data have {g.shape[1]}; "
                      "score trajectories of the same dimension")
    if len(g) < 2:
        return t, g, f"generated data have {len(g)} time steps; need at least 2"
    return t, g, ""


def _nonfinite_reason(g: np.ndarray) -> str:
    finite = np.isfinite(g)
    if finite.all():
        return ""
    rows = ~finite.all(axis=1)
    return (f"generated trajectory has {int(rows.sum())} non-finite rows (first at step "
            f"{int(np.argmax(rows))}): the model diverged")


def check_setting(ok: bool, msg: str) -> None:
    if not ok:
        raise ConfigError(msg)


def is_int(v, lo: int) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= lo


# ------------------------------------------------------------------------------------------ D_stsp
def _bin_index(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of each value of ``x`` (all inside [edges[0], edges[-1]]), exactly as ``np.histogramdd``.

    Bin i is [e_i, e_(i+1)), the last one [e_(n-1), e_n] closed (the upper box edge belongs to the last
    bin). The arithmetic guess floor((x − lo)/width) can be off by one at a bin edge through rounding;
    one comparison with the actual edges corrects it (cheaper than ``np.searchsorted``).
    """
    n_bins = len(edges) - 1
    width = edges[-1] - edges[0]
    if width == 0:  # a constant true dimension: everything in the box sits on both edges
        return np.full(len(x), n_bins - 1, dtype=np.int64)
    idx = ((x - edges[0]) * (n_bins / width)).astype(np.int64)  # x ≥ lo, so truncation is floor
    np.clip(idx, 0, n_bins - 1, out=idx)
    idx -= x < edges[idx]
    idx += (x >= edges[idx + 1]) & (idx < n_bins - 1)
    return idx


def _bin_counts(rows: np.ndarray, edges: list[np.ndarray]) -> np.ndarray:
    """Counts over all n_bins^N cells of points given as ``rows`` (N, T), all inside the box.

    Vectorised: a flat (C-order) cell index and ``np.bincount``; the loop is over dimensions only.
    """
    n_bins = len(edges[0]) - 1
    flat = np.zeros(rows.shape[1], dtype=np.int64)
    for x, e in zip(rows, edges):
        flat = flat * n_bins + _bin_index(x, e)
    return np.bincount(flat, minlength=n_bins ** len(edges)).astype(float)


def _flat_cells(rows: np.ndarray, edges: list[np.ndarray]) -> np.ndarray:
    """Flat (C-order) cell index of each point given as ``rows`` (N, T), all inside the box."""
    n_bins = len(edges[0]) - 1
    flat = np.zeros(rows.shape[1], dtype=np.int64)
    for x, e in zip(rows, edges):
        flat = flat * n_bins + _bin_index(x, e)
    return flat


def _kl_sparse(ft: np.ndarray, fg: np.ndarray, n_cells: int, alpha: float) -> float:
    """:func:`_kl_smoothed` of the counts of the flat cell indices ``ft`` (true) and ``fg`` (generated) over
    ``n_cells`` cells, touching only the occupied ones: every cell empty in both has the same smoothed
    p_true = α/(Σc_true + αK) and p_gen = α/(Σc_gen + αK), so those K − K_occupied cells add
    (K − K_occupied)·p_true·ln(p_true/p_gen) at once (5-d, 30 bins: 2.4e7 cells, a few thousand occupied)."""
    u, inv = np.unique(np.concatenate([ft, fg]), return_inverse=True)
    ct = np.bincount(inv[: len(ft)], minlength=len(u)).astype(float)
    cg = np.bincount(inv[len(ft):], minlength=len(u)).astype(float)
    zt, zg = len(ft) + alpha * n_cells, len(fg) + alpha * n_cells
    pt, pg = (ct + alpha) / zt, (cg + alpha) / zg
    m = pt > 0
    with np.errstate(divide="ignore"):  # alpha = 0 and an empty generated cell: KL is inf, correctly
        kl = float(np.sum(pt[m] * np.log(pt[m] / pg[m])))
    if alpha > 0 and n_cells > len(u):
        kl += (n_cells - len(u)) * (alpha / zt) * math.log(zg / zt)
    return kl


def _kl_smoothed(ct: np.ndarray, cg: np.ndarray, alpha: float) -> float:
    """KL(p_true || p_gen) of Laplace-smoothed counts over the same cells: p = (c + α)/(Σc + α·K)."""
    n_cells = ct.size
    pt = (ct + alpha) / (ct.sum() + alpha * n_cells)
    pg = (cg + alpha) / (cg.sum() + alpha * n_cells)
    m = pt > 0
    with np.errstate(divide="ignore"):  # alpha = 0 and an empty generated cell: KL is inf, correctly
        return float(np.sum(pt[m] * np.log(pt[m] / pg[m])))


def d_stsp(true, gen, *, method: str = "bins", n_bins: int = 30, alpha: float = 1e-5,
           box: str = "minmax", box_margin: float = 0.1, sigma2: float = 1.0, max_points: int = 10_000,
           n_mc: int = 1000, seed: int = 0, standardize: bool = True) -> Score:
    """State-space divergence D_stsp = KL(p_true || p_gen), by binning or by Gaussian mixtures.

    ``method="bins"`` (default; Koppe et al. 2019; "How to train RNNs on chaotic data" App. A.5):
      1. Box per dimension from the *true* data: ``box="minmax"`` [min − m·σ, max + m·σ],
         m = ``box_margin``; ``box="2sd"`` [mean − 2σ, mean + 2σ]; σ the population std (ddof=0).
      2. ``n_bins`` equal-width bins per dimension over the box (edges ``np.linspace(lo, hi, n_bins+1)``;
         bins half-open [e_i, e_(i+1)) except the last, which includes the upper edge -- as
         ``np.histogramdd``).
      3. Points outside the box in any dimension are dropped (true and generated alike; with "minmax"
         no true point is outside); ``n_used`` counts the generated points kept.
      4. Both histograms over all n_bins^N cells, Laplace-smoothed: p = (counts + α) / (Σ counts + α·n_bins^N).
      5. D = Σ p_true ln(p_true / p_gen), natural log, over cells with p_true > 0 (0·ln 0 = 0).

    ``method="legacy"``: the binned D_stsp as the sparse-forcing paper's code computed it
    (DurstewitzLab/ChaosRNN, ``evaluation/klx.py``; read there, re-implemented here), quirks included:
    the box is [−2σ, +2σ] around 0 (not around the mean: the code assumed standardized data), σ the
    sample std (ddof=1, torch's default); the bin of x is trunc((x − lo)/(hi − lo) · n_bins) (truncation
    toward zero) and only bins 1 .. n_bins−1 are kept -- so bin 0 is always empty and points just below
    the box land in it and are dropped -- for the true *and* the generated data; α = 1e-5 (written
    10e-6 there) over all n_bins^N cells; everything in float64 (the code had the generated run in
    float32, which can move a point across a bin edge). ``n_bins`` is the caller's (the paper's evaluation script,
    ``main_eval.py``, called it with 10; the function's default was 30). The code returned NaN when no
    generated point was kept; here that is inf with the empty-overlap reason, as for "bins".

    ``method="gmm"`` (for high-dimensional data, where n_bins^N cells are too many; "How to train RNNs
    on chaotic data" App. A.5 via the same code base's ``klz.py``):
      1. With ``standardize`` both series are standardized by the true data's mean and std (ddof=0).
      2. At most ``max_points`` points of each series, evenly spaced in time
         (``np.linspace(0, T − 1, max_points)`` rounded down), are the centres of two equal-weight
         Gaussian mixtures with covariance ``sigma2``·I: p_true and p_gen.
      3. ``n_mc`` samples from p_true: ``rng = np.random.default_rng(seed)``;
         ``i = rng.integers(0, K_true, n_mc)``; ``s = μ_i + √sigma2 · rng.standard_normal((n_mc, N))``.
      4. D = mean over samples of ln p_true(s) − ln p_gen(s) (log-sum-exp, so far-away generated
         mixtures give a large finite value instead of the legacy code's dropped underflow samples).
      Vectorised: one (n_mc × K) squared-distance matrix per mixture in blocks, no loop over points.
      Differences from that code, on purpose: the issue asks for KL(true || gen) (the code sampled from the
      generated mixture, i.e. KL(gen || true)), σ² = 1 on standardized data (the code used 0.1), up to
      10 000 points (the code took the first 5000), and a fixed ``seed`` (the code used torch's global RNG).

    ``method="auto"`` (:func:`auto_method`): "gmm" from 6 dimensions on, or when the true data are too few
    for their histogram (fewer than ``MIN_PER_CELL`` = 5 points per occupied cell on average), else "bins";
    ``variant["auto"]`` says why.

    Parameters: ``n_bins`` bins per dimension; ``alpha`` pseudo-count added to every cell (α ≥ 0);
    ``box``/``box_margin`` as above; ``sigma2``, ``max_points``, ``n_mc``, ``seed``, ``standardize``
    for "gmm".

    Pitfalls: empty generated bins make the binned KL infinite -- α keeps it finite, and its size changes
    the number; KL is asymmetric (KL(true || gen) punishes generated distributions that miss parts of the
    attractor); out-of-box generated points are lost to the histogram, so read ``n_used``; every value
    falls with the generated length (sampling noise), so compare with the noise floor of the same length;
    the Monte-Carlo estimate has sampling noise of its own (change ``seed`` to see it).

    Non-finite generated rows, another dimension, or no generated point in the box give value inf/nan
    with a reason. n_bins^N above 1e8 cells raises DataError (use method="gmm").
    """
    check_setting(method in ("bins", "legacy", "gmm", "auto"),
                   f"d_stsp: method must be 'bins', 'legacy', 'gmm' or 'auto', got {method!r}")
    t, g, bad = _pair(true, gen)
    N = t.shape[1]
    auto_why = ""
    if method == "auto":
        method, auto_why = auto_method(t, n_bins=n_bins)
    if method == "gmm":
        if auto_why:
            sc = _d_stsp_gmm(t, g, bad, sigma2=sigma2, max_points=max_points, n_mc=n_mc, seed=seed,
                             standardize=standardize)
            return Score(sc.name, sc.value, {**sc.variant, "auto": auto_why}, sc.n_used, sc.n_total, sc.reason,
                         t_gen=sc.t_gen)
        return _d_stsp_gmm(t, g, bad, sigma2=sigma2, max_points=max_points, n_mc=n_mc, seed=seed,
                           standardize=standardize)
    check_setting(is_int(n_bins, 1), f"n_bins must be an integer ≥ 1, got {n_bins!r}")
    check_setting(alpha >= 0, f"alpha must be ≥ 0, got {alpha}")
    check_setting(box_margin >= 0, f"box_margin must be ≥ 0, got {box_margin}")
    check_setting(box in ("minmax", "2sd"), f"box must be 'minmax' or '2sd', got {box!r}")
    if method == "legacy":
        variant = {"method": "legacy", "n_bins": int(n_bins), "box": "±2sd about 0 (ddof=1), bin 0 dropped",
                   "alpha": 1e-5, "kl": "KL(true||gen)", "source": "DurstewitzLab/ChaosRNN evaluation/klx.py"}
    else:
        variant = {"method": "bins", "n_bins": int(n_bins),
                   "box": f"minmax+{box_margin}sd" if box == "minmax" else "mean±2sd",
                   "alpha": alpha, "kl": "KL(true||gen)"}
        if auto_why:
            variant["auto"] = auto_why
    if bad:
        return Score("D_stsp", math.nan, variant, 0, len(g), bad, t_gen=len(g))
    if n_bins ** N > MAX_CELLS:
        fit = int(MAX_CELLS ** (1 / N))
        raise DataError(f"d_stsp: {n_bins}^{N} histogram cells are too many (limit 1e8); "
                        f"use n_bins ≤ {fit} for {N} dimensions, or method='gmm'")
    reason = _nonfinite_reason(g)
    if reason:
        return Score("D_stsp", math.inf, variant, 0, len(g), reason, t_gen=len(g))
    if method == "legacy":
        return _d_stsp_legacy(t, g, int(n_bins), variant)

    tr, gr = np.ascontiguousarray(t.T), np.ascontiguousarray(g.T)  # one row per dimension: faster
    sd = tr.std(axis=1)
    if box == "minmax":
        lo, hi = tr.min(axis=1) - box_margin * sd, tr.max(axis=1) + box_margin * sd
    else:
        mu = tr.mean(axis=1)
        lo, hi = mu - 2 * sd, mu + 2 * sd
    inside_g = np.all((gr >= lo[:, None]) & (gr <= hi[:, None]), axis=0)
    n_in = int(inside_g.sum())
    if n_in == 0:
        return Score("D_stsp", math.inf, variant, 0, len(g),
                     "no generated point lies inside the true data's box (empty overlap)", t_gen=len(g))
    edges = [np.linspace(lo[d], hi[d], n_bins + 1) for d in range(N)]
    if box == "minmax":
        ft = _flat_cells(tr, edges)
    else:
        inside_t = np.all((tr >= lo[:, None]) & (tr <= hi[:, None]), axis=0)
        ft = _flat_cells(tr[:, inside_t], edges)
    fg = _flat_cells(gr[:, inside_g], edges)
    return Score("D_stsp", _kl_sparse(ft, fg, n_bins ** N, alpha), variant, n_in, len(g), t_gen=len(g))


def auto_method(true, *, n_bins: int = 30) -> tuple[str, str]:
    """The D_stsp method ``"auto"`` picks for these true data, and why: (method, reason).

    Rule: "gmm" when N ≥ 6 (``GMM_FROM_DIM``), or when the true points in the minmax box of
    :func:`d_stsp` fill their occupied cells (n_bins per dimension) with fewer than ``MIN_PER_CELL`` = 5
    points on average -- a histogram with about one point per occupied cell estimates nothing (the
    binned D_stsp of two independent samples is then as large as that of unrelated data: 5-d weather
    data, 1180 test points, floor 11); else "bins". Five per cell is the usual minimum expected count of
    a histogram-based (χ²-type) comparison (Cochran 1954).
    """
    t = as_array(true, what="true data")
    N = t.shape[1]
    if N >= GMM_FROM_DIM:
        return "gmm", f"{N} dimensions (>= {GMM_FROM_DIM}): Gaussian mixture"
    if n_bins ** N > MAX_CELLS:
        return "gmm", f"{n_bins}^{N} cells are too many for a histogram: Gaussian mixture"
    sd = t.std(axis=0)
    lo, hi = t.min(axis=0) - 0.1 * sd, t.max(axis=0) + 0.1 * sd
    edges = [np.linspace(lo[d], hi[d], n_bins + 1) for d in range(N)]
    flat = np.zeros(len(t), dtype=np.int64)
    for d in range(N):
        flat = flat * n_bins + _bin_index(np.ascontiguousarray(t[:, d]), edges[d])
    occupied = len(np.unique(flat))
    per = len(t) / max(occupied, 1)
    if per < MIN_PER_CELL:
        return "gmm", (f"{len(t)} true points fill {occupied} of {n_bins}^{N} cells ({per:.1f} per occupied "
                       f"cell < {MIN_PER_CELL:g}): too few for a histogram, Gaussian mixture")
    return "bins", f"{len(t)} true points, {per:.1f} per occupied cell (>= {MIN_PER_CELL:g}): bins"


def _legacy_cells(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, n_bins: int) -> np.ndarray:
    """Flat cell index of the points the legacy code kept (bins 1 .. n_bins−1 in every dimension)."""
    c = np.trunc((x - lo) / (hi - lo) * n_bins)          # torch's .long(): truncation toward zero
    keep = np.all((c > 0) & (c < n_bins), axis=1)
    c = c[keep].astype(np.int64)
    flat = np.zeros(len(c), dtype=np.int64)
    for d in range(x.shape[1]):
        flat = flat * n_bins + c[:, d]
    return flat


def _d_stsp_legacy(t: np.ndarray, g: np.ndarray, n_bins: int, variant: dict) -> Score:
    sd = t.std(axis=0, ddof=1)
    if np.any(sd == 0):
        raise DataError(f"true data: dimension {int(np.argmin(sd))} is constant; the ±2σ box is empty")
    lo, hi = -2 * sd, 2 * sd
    K = n_bins ** t.shape[1]
    ft, fg = _legacy_cells(t, lo, hi, n_bins), _legacy_cells(g, lo, hi, n_bins)
    if len(fg) == 0:
        return Score("D_stsp", math.inf, variant, 0, len(g),
                     "no generated point lies inside the legacy ±2σ box (empty overlap; the legacy code gave NaN)",
                     t_gen=len(g))
    return Score("D_stsp", _kl_sparse(ft, fg, K, 1e-5), variant, len(fg), len(g), t_gen=len(g),
                 extra={"n_true_used": int(len(ft))})


def _evenly(x: np.ndarray, n: int) -> np.ndarray:
    if len(x) <= n:
        return x
    return x[np.linspace(0, len(x) - 1, n).astype(np.int64)]


def gmm_log_density(s: np.ndarray, centres: np.ndarray, sigma2: float, block: int = 256) -> np.ndarray:
    """ln p(s) of an equal-weight Gaussian mixture with the given centres (K, N) and covariance sigma2·I,
    for points s (S, N): ln p = logsumexp_k(−‖s − μ_k‖² / (2σ²)) − ln K − N/2 · ln(2πσ²).

    Vectorised over (block × K) squared-distance matrices ‖s‖² + ‖μ‖² − 2 s·μ (clipped at 0).
    """
    s = np.asarray(s, dtype=float)
    centres = np.asarray(centres, dtype=float)
    K, N = centres.shape
    mu2 = np.einsum("ij,ij->i", centres, centres)
    out = np.empty(len(s))
    for a in range(0, len(s), block):
        sb = s[a:a + block]
        d2 = np.einsum("ij,ij->i", sb, sb)[:, None] + mu2[None, :] - 2.0 * sb @ centres.T
        np.maximum(d2, 0.0, out=d2)
        out[a:a + block] = logsumexp(-d2 / (2.0 * sigma2), axis=1)
    return out - math.log(K) - 0.5 * N * math.log(2 * math.pi * sigma2)


def _d_stsp_gmm(t, g, bad, *, sigma2, max_points, n_mc, seed, standardize) -> Score:
    check_setting(sigma2 > 0, f"sigma2 must be > 0, got {sigma2}")
    check_setting(is_int(max_points, 2), f"max_points must be an integer ≥ 2, got {max_points!r}")
    check_setting(is_int(n_mc, 1), f"n_mc must be an integer ≥ 1, got {n_mc!r}")
    variant = {"method": "gmm", "sigma2": sigma2, "max_points": int(max_points), "n_mc": int(n_mc),
               "seed": int(seed), "standardize": "true mean/std (ddof=0)" if standardize else "none",
               "subsample": "evenly spaced", "kl": "KL(true||gen)"}
    if bad:
        return Score("D_stsp", math.nan, variant, 0, len(g), bad, t_gen=len(g))
    reason = _nonfinite_reason(g)
    if reason:
        return Score("D_stsp", math.inf, variant, 0, len(g), reason, t_gen=len(g))
    if standardize:
        mu, sd = t.mean(axis=0), t.std(axis=0)
        sd = np.where(sd > 0, sd, 1.0)
        t, g = (t - mu) / sd, (g - mu) / sd
    tc, gc = _evenly(t, max_points), _evenly(g, max_points)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(tc), n_mc)
    s = tc[idx] + math.sqrt(sigma2) * rng.standard_normal((n_mc, t.shape[1]))
    value = float(np.mean(gmm_log_density(s, tc, sigma2) - gmm_log_density(s, gc, sigma2)))
    return Score("D_stsp", value, variant, len(gc), len(g), t_gen=len(g))


# ------------------------------------------------------------------------------------------ spectra
def smoothed_spectrum(x, sigma: float = 20.0) -> np.ndarray:
    """Normalised, smoothed power spectrum of a 1-d series: the spectrum D_H and PSC compare.

    z-score (ddof=0), |rfft|², ``scipy.ndimage.gaussian_filter1d(·, sigma)`` (default reflect mode,
    truncate 4), normalised to sum 1. A constant series has no normalised spectrum (division by zero);
    callers handle that case.
    """
    x = np.asarray(x, dtype=float)
    z = (x - x.mean()) / x.std()
    p = gaussian_filter1d(np.abs(np.fft.rfft(z)) ** 2, sigma)
    return p / p.sum()


def legacy_spectrum(chunks, sigma: float = 2.0) -> np.ndarray:
    """The legacy code's spectrum of one dimension, averaged over chunks ``(n_chunks, L)``.

    Per chunk: an odd L loses its last sample; z-score with the sample std (ddof=1); P = |rfft(z,
    norm="ortho")|² · 2 / L; convolved with a normalised Gaussian kernel of int(10σ)+1 taps at offsets
    j − int(taps/2) (zero padding, output as long as P); then the nan-mean over chunks (a constant chunk
    gives NaN and is skipped). No normalisation to sum 1: Parseval makes the full spectrum sum to about 1.
    """
    c = np.atleast_2d(np.asarray(chunks, dtype=float))
    if c.shape[1] % 2:
        c = c[:, :-1]
    L = c.shape[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (c - c.mean(axis=1, keepdims=True)) / c.std(axis=1, ddof=1, keepdims=True)
    p = np.abs(np.fft.rfft(z, axis=1, norm="ortho")) ** 2 * 2 / L
    taps = int(10 * sigma) + 1
    j = np.arange(taps) - taps // 2
    kernel = np.exp(-0.5 * (j / sigma) ** 2)
    kernel /= kernel.sum()
    p = convolve1d(p, kernel[::-1], axis=1, mode="constant", cval=0.0, origin=0)
    with warnings.catch_warnings():  # every chunk constant: NaN is the answer, reported by the caller
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(p, axis=0)


CONSTANT_TOL = 1e-9   # a chunk whose std is below this fraction of the true dimension's std counts as constant


def chunk_starts(T: int, L: int) -> np.ndarray:
    """Starts of the ceil(T / L) chunks of length L that cover 0 .. T − 1, the first at 0 and the last
    ending at T (evenly spaced, rounded; they overlap by less than L when L does not divide T)."""
    n = max(1, -(-T // L))
    return np.zeros(1, dtype=np.int64) if n == 1 else np.round(np.linspace(0, T - L, n)).astype(np.int64)


def chunked_spectrum(x, L: int, sigma: float = 20.0, tol: float = 0.0):
    """Welch-style spectrum of a 1-d series: the mean of the normalised power spectra of chunks of length L
    that cover the whole series (:func:`chunk_starts`), then smoothed and normalised to sum 1.

    Per chunk: z-score (ddof=0), |rfft|², normalised to sum 1; a chunk whose std is ≤ ``tol`` (a collapsed
    stretch) has no normalised spectrum and is left out here. Mean over the other chunks,
    ``gaussian_filter1d(·, sigma)`` (reflect, truncate 4), sum 1. With one chunk (T = L) this is exactly
    :func:`smoothed_spectrum`. Returns ``(p, n_chunks, n_constant)``, p None when every chunk is constant;
    :func:`hellinger_distance` weighs p by the live fraction (a constant chunk counts as a disjoint spectrum).
    Welch 1967 (averaged periodograms of segments); the chunking follows the sparse-forcing paper's code
    (DurstewitzLab/ChaosRNN evaluation/pse.py: 50 chunks of the generated run, spectra averaged).
    """
    x = np.asarray(x, dtype=float)
    st = chunk_starts(len(x), L)
    c = x[st[:, None] + np.arange(L)[None, :]]
    sd = c.std(axis=1)
    const = sd <= tol
    if const.all():
        return None, len(st), int(const.sum())
    live = c[~const]
    z = (live - live.mean(axis=1, keepdims=True)) / sd[~const, None]
    pw = np.abs(np.fft.rfft(z, axis=1)) ** 2
    p = gaussian_filter1d((pw / pw.sum(axis=1, keepdims=True)).mean(axis=0), sigma)
    return p / p.sum(), len(st), int(const.sum())


def _spectra_pair(name: str, true, gen, sigma: float):
    """Per-dimension spectra of the whole true and generated series, averaged over chunks of the common
    length L = min(T_true, T_gen) (:func:`chunked_spectrum`): every step of both series counts.

    Returns ``(pairs, variant, L, n_gen, reason)``; ``pairs`` is a list of (p, q, f) per dimension, f the
    fraction of generated chunks that are not constant (q their spectrum), q None when none is; ``pairs`` is None when ``gen`` cannot be compared at
    all (another dimension, too short: the score is undefined) and "diverged" when it has non-finite rows.
    """
    check_setting(sigma > 0, f"{name}: sigma must be > 0, got {sigma}")
    t, g, bad = _pair(true, gen)
    T = min(len(t), len(g))
    variant = {"sigma": sigma, "length": T, **_SPECTRUM_VARIANT}
    if bad:
        return None, variant, T, len(g), bad
    reason = _nonfinite_reason(g)
    if reason:
        return "diverged", variant, T, len(g), reason
    # one contiguous row per dimension: 1-d reductions and FFTs are faster than along axis 0
    t_rows, g_rows = np.ascontiguousarray(t.T), np.ascontiguousarray(g.T)
    pairs, notes = [], []
    n_t = n_g = 1
    for d, (a, b) in enumerate(zip(t_rows, g_rows)):
        sd = a.std()
        if sd == 0:
            raise DataError(f"true data: dimension {d} is constant; its spectrum is undefined (drop that dimension)")
        p, n_t, kt = chunked_spectrum(a, T, sigma, CONSTANT_TOL * sd)
        if p is None or kt:
            raise DataError(f"true data: dimension {d} is constant over {kt} of its {n_t} chunks of {T} steps; "
                            "its spectrum is undefined there (drop that dimension or that stretch)")
        q, n_g, kg = chunked_spectrum(b, T, sigma, CONSTANT_TOL * sd)
        if q is None:
            notes.append(f"generated dimension {d} is constant")
        elif kg:
            notes.append(f"generated dimension {d} is constant in {kg} of its {n_g} chunks")
        pairs.append((p, q, 1.0 - kg / n_g))
    variant["chunks"] = (f"spectra averaged over chunks of {T} steps covering the whole series "
                         f"({n_t} true, {n_g} generated; Welch)")
    return pairs, variant, T, len(g), "; ".join(notes)


def hellinger_distance(true, gen, *, sigma: float | None = None, variant: str = "default",
                       n_chunks: int = 50, cutoff: int = 500) -> Score:
    """D_H: mean over dimensions of the Hellinger distance of smoothed power spectra.

    ``variant="default"``: per dimension, spectra p, q = :func:`chunked_spectrum` of the *whole* true and
    generated series, averaged over chunks of the common length L = min(T_true, T_gen) (the same frequency
    grid; chunks cover every step, Welch-style; one chunk is exactly :func:`smoothed_spectrum`: z-score,
    |rfft|², ``gaussian_filter1d(·, sigma)`` reflect mode, sum 1); H = √max(0, 1 − Σ √(p q)); value = mean
    of H over dimensions. 0 = identical spectra, 1 = disjoint. ``sigma`` default 20. Until issue 15 only the
    first L steps of the longer series were compared, so a run that collapsed after its first T_test
    steps scored as well as a live one; ``variant["length"]`` is L, ``variant["chunks"]`` the counts.

    ``variant="legacy"`` (the sparse-forcing paper's code, DurstewitzLab/ChaosRNN ``evaluation/pse.py``
    as called by ``main_eval.py``; re-implemented): each series is cut into ``n_chunks`` = 50 consecutive
    chunks of L = min(T_true, T_gen) // n_chunks steps (the code reshaped 10^5 generated steps into 50 x
    2000 and cut them to the true chunk length); per dimension the chunk-averaged
    :func:`legacy_spectrum` (σ default 2), the first ``cutoff`` = 500 frequency bins, BC = trapezoid
    rule of √(p q) with unit spacing (no renormalisation after the cut), H = √(1 − BC) (clipped at 0;
    the code gave NaN for BC > 1); mean over dimensions; float64 throughout (the code's generated spectra
    were float32). Against itself this variant is not 0 (BC(x, x) = trapezoid(p) < 1).

    Parameters: ``sigma`` width of the Gaussian smoothing, in frequency bins.

    References: Mikhaeil et al. 2022; Hess et al. 2023 (D_H as Hellinger distance of smoothed spectra).

    Pitfalls: σ is in frequency bins, so the same σ smooths more, relative to the spectrum, for shorter
    series, and the noise floor does not fall with T at a fixed σ (the number of bins grows with T);
    the value depends on T and σ, so compare with the noise floor of the same length. The legacy cut-off
    of 500 bins keeps a different fraction of the spectrum for every chunk length. A constant generated
    dimension (a collapsed model) counts as maximally different, H = 1, noted in ``reason``; constant chunks
    of a generated dimension (a late collapse) count as disjoint spectra: with a live fraction f of the
    chunks, the generated spectrum is f·q, so H = √(1 − √f·Σ√(pq)) ≥ √(1 − √f); a constant
    true dimension raises DataError; non-finite generated rows give inf, another dimension nan, with a
    reason.
    """
    check_setting(variant in ("default", "legacy"), f"hellinger_distance: variant must be 'default' or "
                   f"'legacy', got {variant!r}")
    if variant == "legacy":
        return _hellinger_legacy(true, gen, 2.0 if sigma is None else sigma, n_chunks, cutoff)
    sigma = 20.0 if sigma is None else sigma
    pairs, var, T, n_gen, reason = _spectra_pair("hellinger_distance", true, gen, sigma)
    if pairs is None or pairs == "diverged":
        return Score("D_H", math.nan if pairs is None else math.inf, var, 0, n_gen, reason, t_gen=n_gen)
    # constant chunks have no spectrum: the generated one is f·q (mass f), so BC ≤ √f and H ≥ √(1 − √f)
    hs = [1.0 if q is None else math.sqrt(max(0.0, 1.0 - math.sqrt(f) * float(np.sum(np.sqrt(p * q)))))
          for p, q, f in pairs]
    return Score("D_H", float(np.mean(hs)), var, n_gen, n_gen, reason, t_gen=n_gen,
                 extra={"per_dim": [float(h) for h in hs]})


def _hellinger_legacy(true, gen, sigma, n_chunks, cutoff) -> Score:
    check_setting(sigma > 0, f"hellinger_distance: sigma must be > 0, got {sigma}")
    check_setting(is_int(n_chunks, 1), f"n_chunks must be an integer ≥ 1, got {n_chunks!r}")
    check_setting(is_int(cutoff, 2), f"cutoff must be an integer ≥ 2, got {cutoff!r}")
    t, g, bad = _pair(true, gen)
    L = min(len(t), len(g)) // n_chunks
    var = {"sigma": sigma, "n_chunks": int(n_chunks), "chunk_length": int(L), "cutoff": int(cutoff),
           **_LEGACY_SPECTRUM_VARIANT}
    if bad:
        return Score("D_H", math.nan, var, 0, len(g), bad, t_gen=len(g))
    reason = _nonfinite_reason(g)
    if reason:
        return Score("D_H", math.inf, var, 0, len(g), reason, t_gen=len(g))
    if L < 4:
        return Score("D_H", math.nan, var, 0, len(g), f"chunks of {L} steps are too short: need "
                     f"min(T_true, T_gen) ≥ 4·n_chunks = {4 * n_chunks}", t_gen=len(g))
    hs, notes = [], []
    for d in range(t.shape[1]):
        p = legacy_spectrum(t[:n_chunks * L, d].reshape(n_chunks, L), sigma)[:cutoff]
        q = legacy_spectrum(g[:n_chunks * L, d].reshape(n_chunks, L), sigma)[:cutoff]
        if not np.all(np.isfinite(p)):
            raise DataError(f"true data: dimension {d} is constant in every chunk; its spectrum is undefined")
        if not np.all(np.isfinite(q)):
            hs.append(1.0)
            notes.append(f"generated dimension {d} is constant in every chunk")
            continue
        bc = float(np.sum(np.sqrt(p * q)) - 0.5 * (math.sqrt(p[0] * q[0]) + math.sqrt(p[-1] * q[-1])))
        hs.append(math.sqrt(max(0.0, 1.0 - bc)))
    return Score("D_H", float(np.mean(hs)), var, n_chunks * L, len(g), "; ".join(notes), t_gen=len(g),
                 extra={"per_dim": [float(h) for h in hs]})


def power_spectrum_correlation(true, gen, *, sigma: float = 20.0) -> Score:
    """PSC: mean over dimensions of the Pearson correlation of the smoothed, normalised spectra.

    The spectra are exactly those of :func:`hellinger_distance` (same helper: averaged over chunks of the
    common length covering both whole series).
    Higher is better (1 for identical spectra). A constant generated dimension contributes 0, noted in
    ``reason``; a dimension constant in some chunks contributes the live fraction f times its correlation; non-finite generated rows give nan with a reason.
    Reference: "How to train RNNs on chaotic data" (ICLR 2022 submission) App. A.5.
    """
    pairs, variant, T, n_gen, reason = _spectra_pair("power_spectrum_correlation", true, gen, sigma)
    if pairs is None or pairs == "diverged":
        return Score("PSC", math.nan, variant, 0, n_gen, reason, t_gen=n_gen)
    rs = [0.0 if q is None else f * float(np.corrcoef(p, q)[0, 1]) for p, q, f in pairs]
    return Score("PSC", float(np.mean(rs)), variant, n_gen, n_gen, reason, t_gen=n_gen,
                 extra={"per_dim": rs})


def score_all(true, gen, *, n_bins: int = 30, alpha: float = 1e-5, sigma: float = 20.0,
              method: str = "bins", legacy: bool = False) -> dict[str, Score]:
    """{"D_stsp", "D_H", "PSC"} of one generated run (default box minmax + 0.1 sd); with ``legacy``
    also "D_stsp_legacy" (±2σ box, same n_bins) and "D_H_legacy" (50 chunks, σ = 2, 500 bins).

    ``method`` is d_stsp's ("auto" switches to the Gaussian mixture from 6 dimensions on). The noise
    floor is ``score_all(test, independent_true_trajectory)`` of the same length (:func:`noise_floor`).
    """
    out = {
        "D_stsp": d_stsp(true, gen, method=method, n_bins=n_bins, alpha=alpha),
        "D_H": hellinger_distance(true, gen, sigma=sigma),
        "PSC": power_spectrum_correlation(true, gen, sigma=sigma),
    }
    if legacy:
        N = as_array(true, what="true data").shape[1]
        if n_bins ** N <= MAX_CELLS:
            out["D_stsp_legacy"] = d_stsp(true, gen, method="legacy", n_bins=n_bins)
        out["D_H_legacy"] = hellinger_distance(true, gen, variant="legacy")
    return out


# ------------------------------------------------------------------------------------------ summaries
def median_mad(values) -> tuple[float, float]:
    """Median and median absolute deviation (unscaled) of finite-or-inf values; NaNs are ignored
    (all-NaN gives (nan, nan)); inf counts as a value (a diverged run is the worst one)."""
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if len(v) == 0:
        return math.nan, math.nan
    med = float(np.median(v))
    with np.errstate(invalid="ignore"):
        mad = float(np.median(np.abs(v - med))) if math.isfinite(med) else math.nan
    return med, mad


def summarise(scores: list[Score], *, label: str = "initial conditions") -> Score:
    """One Score from several of the same metric (initial conditions, seeds): median ± MAD.

    The variant is the first one's; ``extra["per_init"]`` holds every value; ``reason`` counts the
    non-finite ones and repeats distinct reasons.
    """
    if not scores:
        raise ConfigError("summarise needs at least one Score")
    vals = [float(s.value) for s in scores]
    med, mad = median_mad(vals)
    bad = [i for i, v in enumerate(vals) if not math.isfinite(v)]
    reasons = sorted({s.reason for s in scores if s.reason})
    reason = (f"{len(bad)} of {len(vals)} {label} gave a non-finite value" if bad else "")
    if reasons:
        reason = "; ".join([r for r in [reason] if r] + reasons[:3])
    s0 = scores[0]
    return Score(s0.name, med, s0.variant, int(np.median([s.n_used for s in scores])), s0.n_total, reason,
                 reference=s0.reference, t_gen=s0.t_gen, n_init=len(scores), spread=mad,
                 extra={"per_init": vals})


# ------------------------------------------------------------------------------------------ full observation
def regress_full_observation(latents, full, *, ridge: float = 0.0) -> np.ndarray:
    """W (M, N_full) with full ≈ latents @ W: least squares (minimum norm when under-determined, as for
    10 latent states of a 100-unit model) or ridge regression for ``ridge > 0``.
    "How to train RNNs on chaotic data" App. A.6.3: B recomputed by regressing the first 10 latent
    states onto the first 10 observations of all variables."""
    Z = np.asarray(latents, dtype=float)
    X = np.asarray(full, dtype=float)
    if ridge > 0:
        return np.linalg.solve(Z.T @ Z + ridge * np.eye(Z.shape[1]), Z.T @ X)
    return np.linalg.lstsq(Z, X, rcond=None)[0]


def block_bootstrap(x, n_steps: int, *, block: int, seed: int) -> np.ndarray:
    """A series of ``n_steps`` rows made of blocks of ``block`` consecutive rows of ``x`` (T, N) at
    uniformly drawn starts (``np.random.default_rng(seed)``), concatenated and cut: the moving-block
    bootstrap (Künsch 1989, Ann. Stat. 17, 1217). Within a block the dynamics are the data's; the joins
    are jumps, which add a little broadband power to a spectrum."""
    x = as_array(x, what="data")
    block = int(min(block, len(x)))
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, len(x) - block + 1, -(-int(n_steps) // block))
    return np.concatenate([x[s:s + block] for s in starts])[: int(n_steps)]


# ------------------------------------------------------------------------------------------ verdicts
TAIL_FRACTION = 0.2     # the dynamics verdict reads the last 20 % of a free run (its transient is over)
FIXED_TOL = 1e-3        # tail std below this fraction of the data's std in every dimension: a fixed point
CYCLE_TOL = 0.05        # recurrence distance below this fraction of two independent tail points': a cycle
EXPLODE = 100.0         # tail values beyond this many data stds (× the data's own extent): diverged
UNINFORMATIVE = 0.5     # a floor at least this fraction of a trivial baseline's score: the score cannot tell


@dataclass(frozen=True)
class Dynamics:
    """What a free run does at its end: ``verdict`` one of "diverged", "fixed point", "cycle", "irregular";
    ``period`` in steps for a cycle; ``reason`` the numbers behind the verdict; ``tail`` the steps read;
    ``lambda_max`` the model's largest Lyapunov exponent when the caller had one (per time unit)."""

    verdict: str
    reason: str
    period: int | None = None
    tail: int = 0
    lambda_max: float | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


def recurrence_distance(x: np.ndarray) -> np.ndarray:
    """d(p), p = 0 .. T−1: RMS over t and dimensions of x_{t+p} − x_t, for a (T, N) series; by FFT
    (Σ_t ‖x_{t+p} − x_t‖² = Σ‖x_t‖² + Σ‖x_{t+p}‖² − 2 Σ x_t·x_{t+p}), O(T log T) for all lags at once."""
    x = np.asarray(x, dtype=float)
    x = x - x.mean(axis=0)
    T, N = x.shape
    sq = np.einsum("ij,ij->i", x, x)
    cs = np.concatenate([[0.0], np.cumsum(sq)])
    f = np.fft.rfft(x, n=2 * T, axis=0)
    corr = np.fft.irfft((f * f.conj()).sum(axis=1), n=2 * T)[:T]
    p = np.arange(T)
    msd = (cs[T - p] + (cs[T] - cs[p]) - 2 * corr) / (T - p)
    return np.sqrt(np.maximum(msd, 0.0) / N)


def dynamics_verdict(gen, true, *, tail_fraction: float = TAIL_FRACTION, lambda_max: float | None = None,
                     min_tail: int = 100) -> Dynamics:
    """The dynamics verdict of a free run ``gen`` (T, N), in the units of the ``true`` data.

    Read on the tail (last ``tail_fraction`` of the run, at least ``min_tail`` steps), standardized by the
    true data's mean and std (ddof=0), in this order:
      1. **diverged**: a non-finite value anywhere in the run, or a tail value beyond ``EXPLODE`` = 100 ×
         max(1, the true data's largest |z|) stds (exploding);
      2. **fixed point**: the tail's std is below ``FIXED_TOL`` = 1e-3 data stds in every dimension, or its
         amplitude (RMS about its mean) falls by more than 4× from the tail's first half to its second
         (converging);
      3. **cycle** with period p: the first lag p ≤ tail/2 at which the recurrence distance
         :func:`recurrence_distance` d(p) is below ``CYCLE_TOL`` = 5 % of √2·s (s the tail's RMS amplitude:
         √2·s is the distance of two independent tail points), after d has reached half of √2·s at a
         shorter lag (the state went away and came back), p taken at the minimum of d in that dip;
      4. **irregular**: none of these (chaos, quasi-periodicity, or a cycle longer than tail/2).
    ``lambda_max`` (the model's, when the caller has it) is stored and quoted in the reason: λ_max > 0
    supports "irregular" as chaos, λ_max < 0 with "irregular" says the tail is still a transient.
    Pitfall: a cycle whose period is not a whole number of steps (a limit cycle of a map on an invariant
    circle) recurs only approximately, within about 2π·δ/p of its spread at the nearest whole lag (δ the
    fractional part of p): irrational periods of more than ~60 steps pass the 5 % test, shorter ones may
    read as "irregular". References: the recurrence rule is a close-returns test (Gilmore 1998,
    Rev. Mod. Phys. 70, 1455).
    """
    t = as_array(true, what="true data")
    g = as_array(gen, what="generated data", allow_nonfinite=True)
    lam = None if lambda_max is None or not math.isfinite(float(lambda_max)) else float(lambda_max)
    lam_txt = "" if lam is None else f"; model λ_max {lam:.3g}"
    why = _nonfinite_reason(g)
    if why:
        return Dynamics("diverged", why + lam_txt, tail=len(g), lambda_max=lam)
    mu, sd = t.mean(axis=0), t.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    n = min(len(g), max(int(min_tail), int(math.ceil(tail_fraction * len(g)))))
    z = (g[len(g) - n:] - mu) / sd
    extent = max(1.0, float(np.max(np.abs((t - mu) / sd))))
    top = float(np.max(np.abs(z)))
    if top > EXPLODE * extent:
        return Dynamics("diverged", f"the last {n} steps reach {top:.3g} data stds (> {EXPLODE:g} × the data's "
                        f"extent {extent:.3g}): exploding" + lam_txt, tail=n, lambda_max=lam)
    tail_sd = z.std(axis=0)
    if np.all(tail_sd < FIXED_TOL):
        return Dynamics("fixed point", f"the last {n} steps vary by at most {float(tail_sd.max()):.2g} data stds "
                        f"(< {FIXED_TOL:g}): collapsed" + lam_txt, tail=n, lambda_max=lam)
    h = n // 2
    a1 = float(np.sqrt(np.mean(z[:h].var(axis=0))))
    a2 = float(np.sqrt(np.mean(z[h:].var(axis=0))))
    if a2 < a1 / 4:
        return Dynamics("fixed point", f"the amplitude of the last {n} steps falls from {a1:.3g} to {a2:.3g} data "
                        "stds between their halves: converging to a fixed point" + lam_txt, tail=n, lambda_max=lam)
    s2 = math.sqrt(2.0) * float(np.sqrt(np.mean(tail_sd ** 2)))
    rel = recurrence_distance(z)[: n // 2 + 1] / s2
    away = np.maximum.accumulate(rel) >= 0.5
    hit = np.nonzero((rel < CYCLE_TOL) & away)[0]
    if len(hit):
        p0 = int(hit[0])
        end = p0
        while end + 1 < len(rel) and rel[end + 1] < CYCLE_TOL:
            end += 1
        p = p0 + int(np.argmin(rel[p0:end + 1]))
        return Dynamics("cycle", f"the last {n} steps recur within {rel[p]:.2g} of their spread after {p} steps "
                        f"(< {CYCLE_TOL:g})" + lam_txt, period=p, tail=n, lambda_max=lam)
    best = float(np.min(rel[away])) if away.any() else math.nan   # closest return after leaving
    note = ("; λ_max < 0: the tail may still be a transient" if lam is not None and lam < 0 else "")
    return Dynamics("irregular", f"no recurrence within {CYCLE_TOL:g} of the spread up to lag {len(rel) - 1} "
                    f"(closest return {best:.2g}) in the last {n} steps" + lam_txt + note, tail=n, lambda_max=lam)


def run_status(model_dyn: Dynamics, data_dyn: Dynamics) -> tuple[str, str]:
    """("ok" | "failed", reason): a diverged free run fails; one collapsed to a fixed point fails unless the
    data are themselves a fixed point. A cycle or irregular run is "ok" (its scores say how good)."""
    if model_dyn.verdict == "diverged":
        return "failed", f"the free run diverged: {model_dyn.reason}"
    if model_dyn.verdict == "fixed point" and data_dyn.verdict != "fixed point":
        return "failed", (f"the free run collapsed to a fixed point ({model_dyn.reason}) while the data are "
                          f"{data_dyn.verdict}")
    return "ok", ""


def trivial_baselines(true, t_gen: int, *, n_bins: int = 30, alpha: float = 1e-5, sigma: float = 20.0,
                      method: str = "auto", seed: int = 0) -> dict[str, Score]:
    """The scores of two trivial "models" of ``t_gen`` steps against ``true``: for D_stsp a constant at the
    true mean (a collapsed model: right place, no dynamics), for D_H a time-shuffled copy of ``true``
    (``np.random.default_rng(seed)`` permutation, tiled to t_gen: right distribution, white spectrum).
    A noise floor near these says the score cannot tell a perfect model from a trivial one
    (:func:`informative`)."""
    t = as_array(true, what="true data")
    const = np.broadcast_to(t.mean(axis=0), (int(t_gen), t.shape[1]))
    rng = np.random.default_rng(seed)
    shuf = np.concatenate([t[rng.permutation(len(t))] for _ in range(-(-int(t_gen) // len(t)))])[: int(t_gen)]
    return {"D_stsp": d_stsp(t, const, method=method, n_bins=n_bins, alpha=alpha),
            "D_H": hellinger_distance(t, shuf, sigma=sigma)}


def informative(floor: float, baseline: float, *, fraction: float = UNINFORMATIVE) -> tuple[bool, str]:
    """(informative?, reason) of a lower-is-better score whose noise floor (a perfect model's score) is
    ``floor`` and whose trivial baseline (:func:`trivial_baselines`) scores ``baseline``.

    Uninformative when floor ≥ ``fraction`` × baseline (default 0.5), i.e. the skill score of a perfect
    model against the trivial one, 1 − floor/baseline (Murphy 1988, Mon. Wea. Rev. 116, 2417), is at most
    0.5: the range between "as good as the data themselves" and "no dynamics at all" is smaller than the
    floor's own size, so a value below the floor says nothing."""
    if not (math.isfinite(floor) and math.isfinite(baseline)) or baseline <= 0:
        return True, f"floor {floor:.3g} or trivial baseline {baseline:.3g} is not a positive finite number"
    skill = 1.0 - floor / baseline
    if floor >= fraction * baseline:
        return False, (f"uninformative: noise floor {floor:.3g} ≥ {fraction:g} × the trivial baseline's "
                       f"{baseline:.3g} (skill of a perfect model {skill:.2f})")
    return True, f"noise floor {floor:.3g} < {fraction:g} × trivial baseline {baseline:.3g}"
