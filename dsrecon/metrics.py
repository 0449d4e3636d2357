"""Reconstruction metrics as pure functions that return a :class:`Score` (value + the variant).

- :func:`d_stsp`: state-space divergence, KL(p_true || p_gen) of binned N-d histograms
  ("How to train RNNs on chaotic data", ICLR 2022 submission, App. A.5; Koppe et al. 2019).
- :func:`hellinger_distance` (D_H): Hellinger distance of smoothed, normalised power spectra per
  dimension, averaged (Mikhaeil et al. 2022; Hess et al. 2023).
- :func:`power_spectrum_correlation` (PSC): Pearson correlation of the same spectra (App. A.5).
- :func:`score_all`: the three at once.

Inputs ``true`` and ``gen`` are (T, N) or (T,) arrays, torch tensors, or ``xarray.Dataset`` with a
variable ``x`` of dims ("time", "dim"). ``true`` must be finite; a ``gen`` with non-finite rows (a
diverged model) is scored, not refused: the value is inf (D_stsp, D_H) or nan (PSC) with a reason.

Every number depends on its settings and on the generated length; a :class:`Score` carries them, and
the noise floor -- ``score_all(test, independent_true_trajectory)`` of the same length -- is the number
to read it against.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.ndimage import gaussian_filter1d

from .data import as_array
from .errors import ConfigError, DataError

MAX_CELLS = 100_000_000  # n_bins ** N above this: the histogram would not fit in memory

_SPECTRUM_VARIANT = {"normalisation": "zscore (ddof=0)", "spectrum": "rfft power |X|^2",
                     "smoothing": "gaussian smoothing (scipy.ndimage.gaussian_filter1d, reflect, truncate=4)",
                     "scale": "sum 1"}


@dataclass(frozen=True)
class Score:
    """A metric value with everything that defines it.

    ``n_used``/``n_total``: for D_stsp the generated points inside the box / given; for D_H and PSC
    the common length both series were cut to / generated points given.
    """

    name: str
    value: float
    variant: dict = field(default_factory=dict)
    n_used: int = 0
    n_total: int = 0
    reason: str = ""  # why the value is inf/nan, or what was special

    def __float__(self) -> float:
        return float(self.value)

    def __str__(self) -> str:
        desc = ", ".join(f"{k}={v}" for k, v in self.variant.items())
        s = f"{self.name} = {self.value:.4g} ({desc}; {self.n_used}/{self.n_total} points used)"
        return s + (f" [{self.reason}]" if self.reason else "")

    def to_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------------------------------ inputs
def _pair(true, gen) -> tuple[np.ndarray, np.ndarray]:
    t = as_array(true, what="true data")
    g = as_array(gen, what="generated data", allow_nonfinite=True)  # a diverged run is scored, not refused
    if t.shape[1] != g.shape[1]:
        raise DataError(f"true data have {t.shape[1]} dimensions but generated data have {g.shape[1]}; "
                        "score trajectories of the same dimension")
    if min(len(t), len(g)) < 2:
        raise DataError(f"need at least 2 time steps, got {len(t)} true and {len(g)} generated")
    return t, g


def _nonfinite_reason(g: np.ndarray) -> str:
    finite = np.isfinite(g)
    if finite.all():
        return ""
    rows = ~finite.all(axis=1)
    return (f"generated trajectory has {int(rows.sum())} non-finite rows (first at step "
            f"{int(np.argmax(rows))}): the model diverged")


def _check_setting(ok: bool, msg: str) -> None:
    if not ok:
        raise ConfigError(msg)


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


def d_stsp(true, gen, *, n_bins: int = 30, alpha: float = 1e-5, box_margin: float = 0.1) -> Score:
    """State-space divergence D_stsp = KL(p_true || p_gen) of binned N-d histograms.

    Algorithm:
      1. Box per dimension: [min − m·σ, max + m·σ] of the *true* data, m = ``box_margin``, σ the
         population std (ddof=0) of the true data in that dimension.
      2. ``n_bins`` equal-width bins per dimension over the box (edges ``np.linspace(lo, hi, n_bins+1)``;
         bins half-open [e_i, e_(i+1)) except the last, which includes the upper edge -- as
         ``np.histogramdd``).
      3. Generated points outside the box in any dimension are dropped; ``n_used`` counts those kept.
      4. Both histograms over all n_bins^N cells, Laplace-smoothed:
         p = (counts + α) / (Σ counts + α·n_bins^N).
      5. D = Σ p_true ln(p_true / p_gen), natural log, over cells with p_true > 0 (0·ln 0 = 0; with
         α > 0 that is every cell).

    Parameters: ``n_bins`` bins per dimension; ``alpha`` pseudo-count added to every cell (α ≥ 0);
    ``box_margin`` margin around the true data's range, in true standard deviations.

    References: "How to train RNNs on chaotic data" (ICLR 2022 submission) App. A.5; Koppe et al. 2019
    (binned state-space divergence).

    Pitfalls: empty generated bins make KL infinite -- the smoothing α is what keeps it finite, and its
    size changes the number; KL is asymmetric (this is KL(true || gen), which punishes generated
    distributions that miss parts of the attractor); out-of-box generated points are silently lost to
    the histogram, so read ``n_used``; the value falls with the generated length (sampling noise), so
    compare with the noise floor of the same length.

    Non-finite generated rows give value inf with a reason; no generated point in the box gives inf
    with a reason. n_bins^N above 1e8 cells raises DataError.
    """
    _check_setting(isinstance(n_bins, (int, np.integer)) and n_bins >= 1, f"n_bins must be an integer ≥ 1, got {n_bins!r}")
    _check_setting(alpha >= 0, f"alpha must be ≥ 0, got {alpha}")
    _check_setting(box_margin >= 0, f"box_margin must be ≥ 0, got {box_margin}")
    t, g = _pair(true, gen)
    N = t.shape[1]
    variant = {"n_bins": int(n_bins), "box": f"minmax+{box_margin}sd", "alpha": alpha, "kl": "KL(true||gen)"}
    if n_bins ** N > MAX_CELLS:
        fit = int(MAX_CELLS ** (1 / N))
        raise DataError(f"d_stsp: {n_bins}^{N} histogram cells are too many (limit 1e8); "
                        f"use n_bins ≤ {fit} for {N} dimensions")
    reason = _nonfinite_reason(g)
    if reason:
        return Score("D_stsp", math.inf, variant, 0, len(g), reason)

    tr, gr = np.ascontiguousarray(t.T), np.ascontiguousarray(g.T)  # one row per dimension: faster
    sd = tr.std(axis=1)
    lo, hi = tr.min(axis=1) - box_margin * sd, tr.max(axis=1) + box_margin * sd
    inside = np.all((gr >= lo[:, None]) & (gr <= hi[:, None]), axis=0)
    n_in = int(inside.sum())
    if n_in == 0:
        return Score("D_stsp", math.inf, variant, 0, len(g),
                     "no generated point lies inside the true data's box (empty overlap)")

    edges = [np.linspace(lo[d], hi[d], n_bins + 1) for d in range(N)]
    ct, cg = _bin_counts(tr, edges), _bin_counts(gr[:, inside], edges)
    n_cells = ct.size
    pt = (ct + alpha) / (ct.sum() + alpha * n_cells)
    pg = (cg + alpha) / (cg.sum() + alpha * n_cells)
    m = pt > 0
    with np.errstate(divide="ignore"):  # alpha = 0 and an empty generated cell: KL is inf, correctly
        value = float(np.sum(pt[m] * np.log(pt[m] / pg[m])))
    return Score("D_stsp", value, variant, n_in, len(g))


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


def _spectra_pair(name: str, true, gen, sigma: float):
    """Per-dimension spectra of true and generated series cut to the common length T.

    Returns ``(pairs, variant, T, n_gen, reason)``; ``pairs`` is a list of (p, q) per dimension, q None
    for a constant generated dimension; ``pairs`` is None when ``gen`` has non-finite rows.
    """
    _check_setting(sigma > 0, f"{name}: sigma must be > 0, got {sigma}")
    t, g = _pair(true, gen)
    T = min(len(t), len(g))
    variant = {"sigma": sigma, "length": T, **_SPECTRUM_VARIANT}
    reason = _nonfinite_reason(g)
    if reason:
        return None, variant, T, len(g), reason
    # one contiguous row per dimension: 1-d reductions and FFTs are faster than along axis 0
    t_rows, g_rows = np.ascontiguousarray(t[:T].T), np.ascontiguousarray(g[:T].T)
    pairs, notes = [], []
    for d, (a, b) in enumerate(zip(t_rows, g_rows)):
        if a.std() == 0:
            raise DataError(f"true data: dimension {d} is constant over the first {T} steps; "
                            "its spectrum is undefined (drop that dimension)")
        if b.std() == 0:
            pairs.append((smoothed_spectrum(a, sigma), None))
            notes.append(f"generated dimension {d} is constant")
        else:
            pairs.append((smoothed_spectrum(a, sigma), smoothed_spectrum(b, sigma)))
    return pairs, variant, T, len(g), "; ".join(notes)


def hellinger_distance(true, gen, *, sigma: float = 20.0) -> Score:
    """D_H: mean over dimensions of the Hellinger distance of smoothed, normalised power spectra.

    Algorithm: cut both series to the common length T = min(T_true, T_gen) (first T rows; spectra need
    the same frequency grid); per dimension, spectra p, q = :func:`smoothed_spectrum` (z-score,
    |rfft|², ``gaussian_filter1d(·, sigma)`` reflect mode, sum 1); H = √max(0, 1 − Σ √(p q)); value =
    mean of H over dimensions. 0 = identical spectra, 1 = disjoint.

    Parameters: ``sigma`` width of the Gaussian smoothing, in frequency bins.

    References: Mikhaeil et al. 2022; Hess et al. 2023 (D_H as Hellinger distance of smoothed spectra).

    Pitfalls: σ is in frequency bins, so the same σ smooths more, relative to the spectrum, for shorter
    series, and the noise floor does not fall with T at a fixed σ (the number of bins grows with T);
    the value depends on T and σ, so compare with the noise floor of the same length. A constant
    generated dimension (a collapsed model) counts as maximally different, H = 1, noted in ``reason``;
    a constant true dimension raises DataError; non-finite generated rows give inf with a reason.
    """
    pairs, variant, T, n_gen, reason = _spectra_pair("hellinger_distance", true, gen, sigma)
    if pairs is None:
        return Score("D_H", math.inf, variant, 0, n_gen, reason)
    hs = [1.0 if q is None else math.sqrt(max(0.0, 1.0 - float(np.sum(np.sqrt(p * q))))) for p, q in pairs]
    return Score("D_H", float(np.mean(hs)), variant, T, n_gen, reason)


def power_spectrum_correlation(true, gen, *, sigma: float = 20.0) -> Score:
    """PSC: mean over dimensions of the Pearson correlation of the smoothed, normalised spectra.

    The spectra are exactly those of :func:`hellinger_distance` (same helper, same common length T).
    Higher is better (1 for identical spectra). A constant generated dimension contributes 0, noted in
    ``reason``; non-finite generated rows give nan with a reason.
    Reference: "How to train RNNs on chaotic data" (ICLR 2022 submission) App. A.5.
    """
    pairs, variant, T, n_gen, reason = _spectra_pair("power_spectrum_correlation", true, gen, sigma)
    if pairs is None:
        return Score("PSC", math.nan, variant, 0, n_gen, reason)
    rs = [0.0 if q is None else float(np.corrcoef(p, q)[0, 1]) for p, q in pairs]
    return Score("PSC", float(np.mean(rs)), variant, T, n_gen, reason)


def score_all(true, gen, *, n_bins: int = 30, alpha: float = 1e-5, sigma: float = 20.0) -> dict[str, Score]:
    """{"D_stsp", "D_H", "PSC"} of one generated run (default box margin 0.1 sd).

    The noise floor is ``score_all(test, independent_true_trajectory)`` of the same length.
    """
    return {
        "D_stsp": d_stsp(true, gen, n_bins=n_bins, alpha=alpha),
        "D_H": hellinger_distance(true, gen, sigma=sigma),
        "PSC": power_spectrum_correlation(true, gen, sigma=sigma),
    }
