"""The forcing interval τ of sparse teacher forcing from a recording (:func:`forcing_interval`).

τ = ln 2 / λ_max when the series is chaotic ("How to train RNNs on chaotic data" §4.1, Eq. 17; λ_max by
:func:`dsrecon.maxlyap.max_lyapunov`), else the first minimum of the average mutual information (the
dendPLRNN rule), else the saturation lag of the divergence curve; white noise is refused.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .divergence import N_BOOT, curve_rise
from .embedding import average_mutual_information, check_int, first_ami_minimum, series_and_dt, standardised_series
from .arrays import transposed_hint
from .errors import DataError
from .maxlyap import MaxLyapunov, max_lyapunov

FI_AMI_BINS = 64           # histogram bins of the AMI in forcing_interval (dendPLRNN's estimate_forcing_interval)
FI_STRUCTURE_SIGMA = 5.0   # "structure": lag-1 AMI this many null standard deviations above shuffled data
FI_SATURATION = 0.9        # divergence_saturation: first lag where d(k) has risen 90 % of the way to its plateau
FI_STRUCTURE_MIN_SAMPLES = 50   # fewest samples the structure test (check_structure) accepts
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


def check_structure(x, dt=None, *, seed: int = 0, bins: int = FI_AMI_BINS, hint: str = "") -> None:
    """One-line DataError when ``x`` has no dynamics to learn: constant in every channel, or no temporal structure
    (white noise: the lag-1 average mutual information of every channel within 5 null standard deviations of
    that of shuffled data, :func:`_ami_excess`). Works on any length from ``FI_STRUCTURE_MIN_SAMPLES`` = 50
    samples on (λ_max needs 1000): the histogram takes at most √T bins per axis, so that the T pairs fill the
    bins² cells at least once on average and the χ² null holds (64 bins on 240 samples of Lorenz put it only
    5.6 null standard deviations above shuffled data, 16 bins 30). ``hint``: what to try, appended after ", or"."""
    arr, _ = series_and_dt(x, dt)
    bins = check_int("bins", bins, 2, allow_none=False)
    tail = f", or {hint}" if hint else ""
    if arr.ndim not in (1, 2) or arr.size == 0 or not np.all(np.isfinite(arr)):
        standardised_series(arr)   # its one-line error: wrong shape, NaN/inf
    if np.all(np.ptp(arr, axis=0) == 0):
        raise DataError(f"cannot choose a forcing interval: x is constant (zero variance in every channel), there are "
                        f"no dynamics to learn; check the columns you loaded{tail}")
    T = arr.shape[0]
    if T < FI_STRUCTURE_MIN_SAMPLES:
        raise DataError(f"x is too short to test for temporal structure: {T} samples, need at least "
                        f"{FI_STRUCTURE_MIN_SAMPLES}{transposed_hint(arr.shape)}")
    chans = arr[:, None] if arr.ndim == 1 else arr
    chans = chans[:, np.ptp(chans, axis=0) > 0]
    chans = (chans - chans.mean(axis=0)) / chans.std(axis=0)
    bins = min(bins, max(4, math.isqrt(T)))   # ≥ 1 pair per cell on average (the G-test's χ² needs it)
    rng = np.random.default_rng(seed)
    # the lag-1 AMI over shuffled data: the test precedes lambda_max, since a delay embedding of white noise makes
    # d(k) rise over the first m lags (the windows of neighbours stop overlapping), which Rosenstein's fit reads as
    # divergence (1-channel N(0,1) noise, 3000 samples: "lambda_max = 0.32 per step, 77 standard errors above 0")
    excess = []
    for c in range(chans.shape[1]):
        i1, null, sd = _ami_excess(chans[:, c], bins, rng)
        excess.append(((i1 - null) / sd, i1, null))
    best = max(excess)
    if not best[0] > FI_STRUCTURE_SIGMA:
        raise DataError(f"cannot choose a forcing interval: the series shows no temporal structure (the mutual "
                        f"information between consecutive samples, {best[1]:.3g} nats, is "
                        f"at the level of shuffled data, {best[2]:.3g} nats): it looks like white noise; check the "
                        f"sampling interval and preprocessing{tail}")


def forcing_interval(x, dt=None, *, seed: int = 0, n_boot: int = N_BOOT, max_lag: int | None = None,
                     bins: int = FI_AMI_BINS) -> ForcingInterval:
    """Forcing interval τ (steps) of sparse teacher forcing from a recording, with the source and a one-line reason.

    Decision, in this order:

    0. No temporal structure (a constant series; white noise: the lag-1 average mutual information of every
       channel is within 5 null standard deviations of that of shuffled data): DataError (:func:`check_structure`,
       which works on short series too). Checked first, since a delay embedding of white noise makes d(k) rise
       over the first m lags, which reads as divergence.
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
        (white noise), and for the input errors of :func:`max_lyapunov` (NaN, too short, wrong shape); a series
        too short or too regular for λ_max ends with ", or pass --tau N ...", since τ can be set by hand.

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
    arr, dt_ = series_and_dt(x, dt)
    bins = check_int("bins", bins, 2, allow_none=False)
    max_lag = check_int("max_lag", max_lag, 2)
    hint = "pass --tau N (forcing interval in steps) to set it by hand"
    check_structure(arr, seed=seed, bins=bins, hint=hint)
    try:
        lam = max_lyapunov(x, dt, seed=seed, n_boot=n_boot)
    except DataError as err:   # too short or too regular for λ_max: τ can still be set by hand
        raise DataError(f"{err}, or {hint}") from None
    s = standardised_series(arr)
    chans = s[:, None] if s.ndim == 1 else s
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
    mins = [m for m in (first_ami_minimum(chans[:, c], max_lag, bins) for c in range(chans.shape[1])) if m is not None]
    weak = f"no clear exponential divergence ({lam.reason})"
    if mins:
        tau = max(1, int(round(float(np.median(mins)))))
        return ForcingInterval(tau, "mutual_information", (
            f"{weak}; tau = first minimum of the average mutual information (Fraser & Swinney 1986), median over "
            f"{len(mins)} channel(s) ({bins} bins), the dendPLRNN forcing-interval rule"), lam, dt=dt_)
    B, P, i0 = curve_rise(lam.curve)
    above = np.nonzero(lam.curve[i0:] >= B + FI_SATURATION * (P - B))[0]
    tau = max(1, i0 + int(above[0])) if above.size and P > B else len(lam.curve) - 1
    return ForcingInterval(tau, "divergence_saturation", (
        f"{weak} and no minimum of the average mutual information within {max_lag} lags; tau = the lag where the "
        f"divergence curve has risen {FI_SATURATION:.0%} of the way to its plateau"), lam, dt=dt_)
