"""What a free run does at its end, against what the data do: a fixed point, a cycle, chaos-like or diverged
(:func:`dynamics_verdict`), how large its tail is next to the data (:func:`size_verdict`: spread, range and
density per channel), and the status of a run that follows from both (:func:`run_status`, or
:func:`free_run_verdict` for all of it in one call, as validation and the kept-candidate rule need it)."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .arrays import as_array
from .score import nonfinite_reason

TAIL_FRACTION = 0.2     # the dynamics verdict reads the last 20 % of a free run (its transient is over)
FIXED_TOL = 1e-3        # tail std below this fraction of the data's std in every dimension: a fixed point
CYCLE_TOL = 0.05        # recurrence distance below this fraction of two independent tail points': a cycle
EXPLODE = 100.0         # tail values beyond this many data stds (× the data's own extent): diverged


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
    recurrence: float | None = None   # d(p)/(√2·s): at the period for a cycle, the closest return for "irregular"

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
    why = nonfinite_reason(g)
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
                        f"(< {CYCLE_TOL:g})" + lam_txt, period=p, tail=n, lambda_max=lam, recurrence=float(rel[p]))
    best = float(np.min(rel[away])) if away.any() else math.nan   # closest return after leaving
    note = ("; λ_max < 0: the tail may still be a transient" if lam is not None and lam < 0 else "")
    return Dynamics("irregular", f"no recurrence within {CYCLE_TOL:g} of the spread up to lag {len(rel) - 1} "
                    f"(closest return {best:.2g}) in the last {n} steps" + lam_txt + note, tail=n, lambda_max=lam,
                    recurrence=best if math.isfinite(best) else None)


# A free run on the data's attractor has the data's spread: the std of a chaotic series' stretch of ≥ 100 steps
# differs from the whole series' by sampling error (tens of per cent at most on the cards and recordings here), so
# a factor 5 either way is far outside it, while the failures it is for sit far beyond it: a run decaying
# towards a fixed point, a shrunken copy of the rhythm (the weather recording's kept candidate: 0.025 of the
# data's std, issue 23), a run inflated by an unstable mode. The same factor bounds the tail's range.
SIZE_LOW = 0.2          # tail std (or range) below a fifth of the data's in any channel: shrunk
SIZE_HIGH = 5.0         # above five times the data's in any channel: inflated
# Density: the Bhattacharyya coefficient Σ√(p·q) of the tail's and the data's histograms per channel (1 for the
# same distribution, 0 for disjoint ones). Two Gaussians of equal std whose means are d stds apart have
# exp(−d²/8): below 0.1 the run lives more than 4.3 data stds away from the data in that channel (misplaced).
OVERLAP_MIN = 0.1
SIZE_BINS = 30          # histogram bins over the union of the tail's and the data's ranges


@dataclass(frozen=True)
class Size:
    """How large the tail of a free run is next to the data, per channel: ``spread`` tail std / data std,
    ``range`` tail (max − min) / data (max − min), ``overlap`` the Bhattacharyya coefficient of their
    histograms; ``ok`` False when one falls outside [SIZE_LOW, SIZE_HIGH] (spread, range) or below
    OVERLAP_MIN (overlap), ``reason`` one line saying which and by how much; ``tail`` the steps read."""

    ok: bool
    reason: str
    spread: tuple = ()
    range: tuple = ()
    overlap: tuple = ()
    tail: int = 0

    def to_dict(self) -> dict:
        return {"ok": self.ok, "reason": self.reason, "spread": [float(v) for v in self.spread],
                "range": [float(v) for v in self.range], "overlap": [float(v) for v in self.overlap],
                "tail": self.tail}


def _bhattacharyya(a: np.ndarray, b: np.ndarray, n_bins: int) -> float:
    lo, hi = min(a.min(), b.min()), max(a.max(), b.max())
    if not hi > lo:
        return 1.0
    edges = np.linspace(lo, hi, n_bins + 1)
    p = np.histogram(a, edges)[0] / len(a)
    q = np.histogram(b, edges)[0] / len(b)
    return float(np.sum(np.sqrt(p * q)))


def size_verdict(gen, true, *, tail_fraction: float = TAIL_FRACTION, min_tail: int = 100) -> Size:
    """The size of a free run's tail ``gen`` (T, N) against the ``true`` data (T', N), per channel.

    The tail is the last ``tail_fraction`` of the run (at least ``min_tail`` steps), as for
    :func:`dynamics_verdict`. Per channel with a non-constant true series: ``spread`` = std(tail)/std(data)
    (ddof=0), ``range`` = (max − min)(tail)/(max − min)(data), ``overlap`` = Σ√(p·q) of 30-bin histograms
    over both ranges. Fails (``ok`` False) when a spread or range ratio is below ``SIZE_LOW`` = 1/5 (shrunk)
    or above ``SIZE_HIGH`` = 5 (inflated), or an overlap below ``OVERLAP_MIN`` = 0.1 (misplaced); the reason
    names the worst channel, the ratio and the threshold. Analytic cases: a copy of the data scaled by r has
    spread and range r in every channel; N(0, 1) against N(d, 1) has overlap exp(−d²/8) (Bhattacharyya 1943).
    A non-finite run is not ok (it diverged). Validation can call it on each of its short runs (steps, N)
    against the held-out segment, the same rule as a fit's evaluation.
    """
    t = as_array(true, what="true data")
    g = as_array(gen, what="generated data", allow_nonfinite=True)
    why = nonfinite_reason(g)
    if why:
        return Size(False, why)
    n = min(len(g), max(int(min_tail), int(math.ceil(tail_fraction * len(g)))))
    tail = g[len(g) - n:]
    sd_t, sd_g = t.std(axis=0), tail.std(axis=0)
    rg_t, rg_g = np.ptp(t, axis=0), np.ptp(tail, axis=0)
    live = sd_t > 0
    if not live.any():
        return Size(True, "the data are constant: no size to compare", tail=n)
    nan = np.full(t.shape[1], math.nan)
    spread, rng, ov = nan.copy(), nan.copy(), nan.copy()
    spread[live], rng[live] = sd_g[live] / sd_t[live], rg_g[live] / rg_t[live]
    for c in np.nonzero(live)[0]:
        ov[c] = _bhattacharyya(tail[:, c], t[:, c], SIZE_BINS)
    names = {"spread": ("std", spread), "range": ("range", rng)}
    fails = []
    for key, (word, r) in names.items():
        c_lo, c_hi = int(np.nanargmin(r)), int(np.nanargmax(r))
        if r[c_lo] < SIZE_LOW:
            fails.append(f"shrunk: its {word} is {r[c_lo]:.2g} of the data's in channel {c_lo} (mean over channels "
                         f"{np.nanmean(r):.2g}; fail below {SIZE_LOW:g})")
        if r[c_hi] > SIZE_HIGH:
            fails.append(f"inflated: its {word} is {r[c_hi]:.3g} × the data's in channel {c_hi} (mean over channels "
                         f"{np.nanmean(r):.3g}; fail above {SIZE_HIGH:g})")
    c_ov = int(np.nanargmin(ov))
    if ov[c_ov] < OVERLAP_MIN:
        fails.append(f"misplaced: its density overlaps the data's by {ov[c_ov]:.2g} in channel {c_ov} (Bhattacharyya "
                     f"coefficient; fail below {OVERLAP_MIN:g})")
    summary = (f"tail/data std {np.nanmin(spread):.2g}..{np.nanmax(spread):.2g}, range {np.nanmin(rng):.2g}.."
               f"{np.nanmax(rng):.2g}, density overlap ≥ {ov[c_ov]:.2g} over the last {n} steps")
    if fails:
        return Size(False, f"the free run's last {n} steps are " + "; ".join(fails), tuple(spread), tuple(rng),
                    tuple(ov), n)
    return Size(True, summary, tuple(spread), tuple(rng), tuple(ov), n)


def run_status(model_dyn: Dynamics, data_dyn: Dynamics, size: Size | None = None) -> tuple[str, str]:
    """("ok" | "failed", reason), the first that applies: a diverged free run fails; one collapsed to a fixed
    point fails unless the data are themselves a fixed point; one whose tail is shrunk, inflated or misplaced
    (``size``, :func:`size_verdict`; skipped when the data rest on a fixed point) fails; one periodic (a cycle)
    while the data are irregular fails (issue 23: a small copy of the right rhythm passed D_H), with both
    recurrence distances. Otherwise "ok" (its scores say how good). Every reason starts "the free run"."""
    if model_dyn.verdict == "diverged":
        return "failed", f"the free run diverged: {model_dyn.reason}"
    if model_dyn.verdict == "fixed point" and data_dyn.verdict != "fixed point":
        return "failed", (f"the free run collapsed to a fixed point ({model_dyn.reason}) while the data are "
                          f"{data_dyn.verdict}")
    if size is not None and not size.ok and data_dyn.verdict != "fixed point":
        return "failed", size.reason
    if model_dyn.verdict == "cycle" and data_dyn.verdict == "irregular":
        got = "" if model_dyn.recurrence is None else f", recurring within {model_dyn.recurrence:.2g} of its spread"
        dat = "" if data_dyn.recurrence is None else f" (closest return {data_dyn.recurrence:.2g} of their spread)"
        return "failed", (f"the free run is periodic where the data are irregular: a cycle of {model_dyn.period} "
                          f"steps{got} (< {CYCLE_TOL:g}), the data never recur within {CYCLE_TOL:g}{dat}")
    return "ok", ""


def lyapunov_note(dyn: Dynamics, lambda_max: float | None, stderr: float | None = None) -> str:
    """"" when the model's λ_max agrees with the tail verdict, else one line saying why they may differ: λ_max
    more than 2 standard errors above 0 with a cycle or fixed point, or below 0 with an irregular tail. The
    two read different stretches: λ_max averages a QR run from forced test states (its transient included),
    the verdict reads the end of the free run; a chaotic transient that settles late, or coexisting
    attractors, gives λ_max > 0 with a periodic tail."""
    if lambda_max is None or not math.isfinite(float(lambda_max)) or dyn.verdict == "diverged":
        return ""
    lam = float(lambda_max)
    margin = 2.0 * float(stderr) if stderr is not None and math.isfinite(float(stderr)) else 0.0
    if dyn.verdict in ("cycle", "fixed point") and lam > margin:
        return (f"the model's λ_max {lam:.3g} > 0 disagrees with the tail's {dyn.verdict}: λ_max averages runs from "
                f"forced test states (their transients included), the verdict reads the free run's last {dyn.tail} "
                f"steps; a chaotic transient that settles late, or coexisting attractors")
    if dyn.verdict == "irregular" and lam < -margin:
        return (f"the model's λ_max {lam:.3g} < 0 disagrees with the irregular tail: the free run may still be in "
                f"a transient after {dyn.tail} steps, or be quasi-periodic")
    return ""


def free_run_verdict(gen, true, *, lambda_max: float | None = None, data_dyn: Dynamics | None = None):
    """(status, reason, Dynamics, Size) of one free run ``gen`` (T, N) against ``true``: the one rule of a fit's
    evaluation, for validation and the kept-candidate rule too. ``data_dyn``: the data's own verdict
    (``dynamics_verdict(true, true, tail_fraction=1.0)``), computed when not given (pass it when judging many
    runs against the same data)."""
    dyn = dynamics_verdict(gen, true, lambda_max=lambda_max)
    if data_dyn is None:
        data_dyn = dynamics_verdict(true, true, tail_fraction=1.0)
    size = size_verdict(gen, true)
    status, reason = run_status(dyn, data_dyn, size)
    return status, reason, dyn, size
