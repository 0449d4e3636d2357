"""The :class:`Score` every metric returns (value + the variant that defines it), the input pairing of the metric
kernels, and the summaries over initial conditions or seeds (:func:`median_mad`, :func:`summarise`)."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from .arrays import as_array
from .errors import ConfigError, DataError


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


def pair_arrays(true, gen) -> tuple[np.ndarray, np.ndarray, str]:
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


def nonfinite_reason(g: np.ndarray) -> str:
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
