"""What a free run does at its end, against what the data do: a fixed point, a cycle, chaos-like or diverged
(:func:`dynamics_verdict`), and the status of a run that follows from it (:func:`run_status`)."""
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
