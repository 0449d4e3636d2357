"""Reconstruction metrics as pure functions that return a :class:`Score` (value + the variant).

- :func:`d_stsp`: state-space divergence, KL(p_true || p_gen) of binned N-d histograms
  ("How to train RNNs on chaotic data" App. A.5; Koppe et al. 2019).
- :func:`hellinger_distance` (D_H): Hellinger distance of smoothed, normalised power spectra per
  dimension, averaged (Mikhaeil et al. 2022; Hess et al. 2023).
- :func:`power_spectrum_correlation` (PSC): Pearson correlation of the same spectra (App. A.5).

Every number depends on its settings and on the generated length; a :class:`Score` carries them, and
the noise floor (the same score between two independent true trajectories of the same length) is the
number to read it against.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.ndimage import gaussian_filter1d

from .data import as_array
from .errors import DataError

MAX_CELLS = 100_000_000  # n_bins ** N above this: the histogram would not fit in memory


@dataclass(frozen=True)
class Score:
    """A metric value with everything that defines it."""

    name: str
    value: float
    variant: dict = field(default_factory=dict)
    n_used: int = 0          # generated points (or samples) used
    n_total: int = 0         # generated points given
    reason: str = ""         # why the value is inf/nan, or what was special

    def __float__(self) -> float:
        return float(self.value)

    def __str__(self) -> str:
        desc = ", ".join(f"{k}={v}" for k, v in self.variant.items())
        s = f"{self.name} = {self.value:.4g} ({desc}; {self.n_used}/{self.n_total} used)"
        return s + (f" [{self.reason}]" if self.reason else "")

    def to_dict(self) -> dict:
        return asdict(self)


def _pair(true, gen):
    t = as_array(true, what="true data")
    g = as_array(gen, what="generated data", allow_nonfinite=True)  # a diverged run is scored, not refused
    if t.shape[1] != g.shape[1]:
        raise DataError(f"true data have {t.shape[1]} dimensions but generated data have {g.shape[1]}; "
                        "score trajectories of the same dimension")
    if min(len(t), len(g)) < 2:
        raise DataError(f"need at least 2 time steps, got {len(t)} true and {len(g)} generated")
    return t, g


def _nonfinite_reason(g: np.ndarray) -> str:
    rows = ~np.all(np.isfinite(g), axis=1)
    if not rows.any():
        return ""
    return (f"generated trajectory has {int(rows.sum())} non-finite rows (first at step "
            f"{int(np.argmax(rows))}): the model diverged")


# ------------------------------------------------------------------------------------------ D_stsp
def d_stsp(true, gen, *, n_bins: int = 30, alpha: float = 1e-5, box_margin: float = 0.1) -> Score:
    """State-space divergence D_stsp = KL(p_true || p_gen) of binned histograms.

    Algorithm: per dimension the box is [min − m·σ, max + m·σ] of the *true* data (m = ``box_margin``,
    σ the population std); ``n_bins`` equal bins per dimension (a value on the upper edge goes into the
    last bin, as in ``np.histogramdd``); generated points outside the box are dropped (counted in
    ``n_used``); both histograms are Laplace-smoothed over all n_bins^N cells,
    p = (counts + α) / (Σ counts + α·n_bins^N), and D = Σ p_true ln(p_true / p_gen).
    Reference: "How to train RNNs on chaotic data" App. A.5; Koppe et al. 2019.
    Pitfalls: the value depends on bins, box, α and the generated length (compare with the noise
    floor); KL is asymmetric (this is KL(true || gen), which punishes missing regions of the attractor).
    Non-finite generated rows (a diverged model) give value inf with a reason, never an exception.
    """
    t, g = _pair(true, gen)
    N = t.shape[1]
    n_cells = n_bins**N
    variant = {"method": "bins", "n_bins": n_bins, "alpha": alpha, "box": f"minmax+{box_margin}sd",
               "kl": "KL(true||gen)"}
    if n_cells > MAX_CELLS:
        raise DataError(f"d_stsp: {n_bins}^{N} histogram cells is too many; use fewer bins or fewer dimensions")
    reason = _nonfinite_reason(g)
    if reason:
        return Score("D_stsp", math.inf, variant, 0, len(g), reason)
    sd = t.std(axis=0)
    lo, hi = t.min(axis=0) - box_margin * sd, t.max(axis=0) + box_margin * sd
    inside = np.all((g >= lo) & (g <= hi), axis=1)
    n_in = int(inside.sum())
    if n_in == 0:
        return Score("D_stsp", math.inf, variant, 0, len(g),
                     "no generated point lies inside the true data's box (empty overlap)")
    width = np.where(hi > lo, hi - lo, 1.0)

    def counts(a):
        idx = np.clip(np.floor((a - lo) / width * n_bins).astype(np.int64), 0, n_bins - 1)
        flat = np.ravel_multi_index(idx.T, (n_bins,) * N)
        return np.bincount(flat, minlength=n_cells).astype(float)

    ct, cg = counts(t), counts(g[inside])
    pt = (ct + alpha) / (ct.sum() + alpha * n_cells)
    pg = (cg + alpha) / (cg.sum() + alpha * n_cells)
    value = float(np.sum(pt * np.log(pt / pg)))
    return Score("D_stsp", value, variant, n_in, len(g))


# ------------------------------------------------------------------------------------------ spectra
def smoothed_spectrum(x, sigma: float = 20.0) -> np.ndarray:
    """Normalised, smoothed power spectrum of a 1-d series: the spectrum D_H and PSC compare.

    z-score, |rfft|², ``scipy.ndimage.gaussian_filter1d(·, sigma)`` (reflect mode, truncate 4), sum 1.
    """
    x = np.asarray(x, dtype=float)
    s = x.std()
    z = (x - x.mean()) / s
    p = gaussian_filter1d(np.abs(np.fft.rfft(z)) ** 2, sigma)
    return p / p.sum()


def _spectra_pair(true, gen, sigma):
    t, g = _pair(true, gen)
    reason = _nonfinite_reason(g)
    T = min(len(t), len(g))
    t, g = t[:T], g[:T]
    variant = {"sigma": sigma, "length": T, "spectrum": "zscore, |rfft|^2, gaussian_filter1d (reflect), sum 1"}
    if reason:
        return None, variant, T, reason
    const_true = np.flatnonzero(t.std(axis=0) == 0)
    if len(const_true):
        raise DataError(f"true data: dimension {int(const_true[0])} is constant; its spectrum is undefined")
    pairs, notes = [], []
    for d in range(t.shape[1]):
        p = smoothed_spectrum(t[:, d], sigma)
        if g[:, d].std() == 0:
            pairs.append((p, None))
            notes.append(f"generated dimension {d} is constant")
        else:
            pairs.append((p, smoothed_spectrum(g[:, d], sigma)))
    return pairs, variant, T, "; ".join(notes)


def hellinger_distance(true, gen, *, sigma: float = 20.0) -> Score:
    """D_H: mean over dimensions of the Hellinger distance √(1 − Σ √(p q)) of smoothed spectra.

    Both series are cut to their common length first (spectra need the same frequency grid). A constant
    generated dimension counts as maximally different (H = 1). Reference: Mikhaeil et al. 2022;
    Hess et al. 2023. Pitfall: σ is in frequency bins, so the same σ smooths more for shorter series.
    """
    pairs, variant, T, reason = _spectra_pair(true, gen, sigma)
    if pairs is None:
        return Score("D_H", math.inf, variant, 0, T, reason)
    hs = [1.0 if q is None else math.sqrt(max(0.0, 1.0 - float(np.sum(np.sqrt(p * q))))) for p, q in pairs]
    return Score("D_H", float(np.mean(hs)), variant, T, T, reason)


def power_spectrum_correlation(true, gen, *, sigma: float = 20.0) -> Score:
    """PSC: mean over dimensions of the Pearson correlation of the smoothed spectra (App. A.5).

    Higher is better (1 for identical spectra). A constant generated dimension contributes 0.
    """
    pairs, variant, T, reason = _spectra_pair(true, gen, sigma)
    if pairs is None:
        return Score("PSC", math.nan, variant, 0, T, reason)
    cs = [0.0 if q is None else float(np.corrcoef(p, q)[0, 1]) for p, q in pairs]
    return Score("PSC", float(np.mean(cs)), variant, T, T, reason)


def score_all(true, gen, *, n_bins: int = 30, alpha: float = 1e-5, sigma: float = 20.0) -> dict[str, Score]:
    """D_stsp, D_H and PSC of one generated run; the noise floor is score_all(true, independent_true)."""
    return {
        "D_stsp": d_stsp(true, gen, n_bins=n_bins, alpha=alpha),
        "D_H": hellinger_distance(true, gen, sigma=sigma),
        "PSC": power_spectrum_correlation(true, gen, sigma=sigma),
    }
