"""Power spectra and the two metrics that compare them: D_H (:func:`hellinger_distance`) and PSC
(:func:`power_spectrum_correlation`), "How to train RNNs on chaotic data" App. A.5; Mikhaeil et al. 2022;
Hess et al. 2023. ``variant="legacy"``: the chunked version of the same paper's code."""
from __future__ import annotations

import math
import warnings

import numpy as np
from scipy.ndimage import convolve1d, gaussian_filter1d

from .errors import DataError
from .score import Score, check_setting, is_int, nonfinite_reason, pair_arrays

SPECTRUM_VARIANT = {"normalisation": "zscore (ddof=0)", "spectrum": "rfft power |X|^2",
                     "smoothing": "gaussian smoothing (scipy.ndimage.gaussian_filter1d, reflect, truncate=4)",
                     "scale": "sum 1"}
LEGACY_SPECTRUM_VARIANT = {
    "variant": "legacy", "normalisation": "zscore per chunk (ddof=1)",
    "spectrum": "rfft(norm='ortho') power |X|^2 * 2/L, odd L trimmed by one",
    "smoothing": "convolution with a normalised Gaussian kernel of 10*sigma+1 taps, zero padding",
    "average": "mean over chunks (nan-mean)", "overlap": "trapezoid rule, no renormalisation",
    "source": "DurstewitzLab/ChaosRNN evaluation/pse.py + main_eval.py (read, not copied)"}


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
    t, g, bad = pair_arrays(true, gen)
    T = min(len(t), len(g))
    variant = {"sigma": sigma, "length": T, **SPECTRUM_VARIANT}
    if bad:
        return None, variant, T, len(g), bad
    reason = nonfinite_reason(g)
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
            notes.append((d, "is constant"))
        elif kg:
            notes.append((d, f"is constant in {kg} of its {n_g} chunks"))
        pairs.append((p, q, 1.0 - kg / n_g))
    variant["chunks"] = (f"spectra averaged over chunks of {T} steps covering the whole series "
                         f"({n_t} true, {n_g} generated; Welch)")
    return pairs, variant, T, len(g), dimension_notes(notes)


def dimension_notes(notes: list[tuple[int, str]]) -> str:
    """(dimension, what) notes as one line, the dimensions that share a note listed together ("generated
    dimensions 0, 1, 2 and 61 more are constant in 1 of its 2 chunks"): 64 channels must not make 64 clauses."""
    by_what: dict[str, list[int]] = {}
    for d, what in notes:
        by_what.setdefault(what, []).append(d)
    parts = []
    for what, dims in by_what.items():
        if len(dims) == 1:
            parts.append(f"generated dimension {dims[0]} {what}")
        else:
            shown = ", ".join(map(str, dims[:3])) + (f" and {len(dims) - 3} more" if len(dims) > 3 else "")
            parts.append(f"generated dimensions {shown} ({len(dims)} of them) {what.replace('is ', 'are ', 1).replace('its', 'their')}")
    return "; ".join(parts)


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
    t, g, bad = pair_arrays(true, gen)
    L = min(len(t), len(g)) // n_chunks
    var = {"sigma": sigma, "n_chunks": int(n_chunks), "chunk_length": int(L), "cutoff": int(cutoff),
           **LEGACY_SPECTRUM_VARIANT}
    if bad:
        return Score("D_H", math.nan, var, 0, len(g), bad, t_gen=len(g))
    reason = nonfinite_reason(g)
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
            notes.append((d, "is constant in every chunk"))
            continue
        bc = float(np.sum(np.sqrt(p * q)) - 0.5 * (math.sqrt(p[0] * q[0]) + math.sqrt(p[-1] * q[-1])))
        hs.append(math.sqrt(max(0.0, 1.0 - bc)))
    return Score("D_H", float(np.mean(hs)), var, n_chunks * L, len(g), dimension_notes(notes), t_gen=len(g),
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
