"""Checks of a recorded series once it is read: the time column parsed (numbers or dates), the sampling made regular
(or refused, naming the gap), NaNs filled or refused, and values that are no measurement (overflow, outliers
a million robust spreads out) refused, each as one DataError line naming the file and the fix."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import DataError

DATE_FORMATS = ("ISO8601", "%d.%m.%Y %H:%M:%S")   # ISO 8601; the Jena weather CSV's "01.01.2009 00:10:00"


MAX_FILL = 10   # interpolate=True: a regular grid at most this many times the samples read (9 in 10 made up)


def parse_time(values, name: str, path) -> tuple[np.ndarray, str, str | None]:
    """A time column -> (seconds or numbers as float, units, start as ISO text or None)."""
    num = pd.to_numeric(pd.Series(values), errors="coerce")
    if num.notna().all():
        t = num.to_numpy(dtype=float)
        if not np.isfinite(t).all():
            bad = int(np.argmax(~np.isfinite(t)))
            raise DataError(f"{path}: time column {name!r} holds {t[bad]:g} at sample {bad}, which is no time stamp; "
                            f"fix that row, or remove it")
        return t, "", None
    for fmt in DATE_FORMATS:
        try:
            t = pd.to_datetime(pd.Series(values), format=fmt)
        except (ValueError, TypeError):
            continue
        t = t.to_numpy()
        return (t - t[0]) / np.timedelta64(1, "s"), "s", str(np.datetime_as_string(t[0], unit="s"))
    bad = int(np.argmax(num.isna().to_numpy()))
    raise DataError(f"{path}: time column {name!r} is neither numeric nor a date (sample {bad}: "
                    f"{values[bad]!r}); dates must look like 2009-01-01 00:10:00 or 01.01.2009 00:10:00")


def regular_time(t: np.ndarray, dt: float | None, name: str, path, interpolate: bool):
    """Check a time column: increasing and evenly spaced (gaps allowed only with ``interpolate``).
    Returns (dt, grid or None); grid is the regular time grid to interpolate onto."""
    d = np.diff(t)
    if len(d) == 0:
        return (1.0 if dt is None else dt), None
    dup = np.nonzero(d == 0)[0]
    back = np.nonzero(d < 0)[0]
    if back.size:
        i = back[0] + 1
        raise DataError(f"{path}: time column {name!r} goes backwards at sample {i} (t = {t[i]:g} after {t[i - 1]:g}; "
                        f"{back.size} places); sort the file by time, or pass interpolate=True (sorts, then regrids)")
    if dup.size and not interpolate:
        raise DataError(f"{path}: time column {name!r} repeats t = {t[dup[0]]:g} at sample {dup[0] + 1} ({dup.size} "
                        f"duplicate samples); remove them, or pass interpolate=True (keeps the first of each)")
    if not (d > 0).any():   # only duplicates (even with interpolate): no step to build a grid from
        raise DataError(f"{path}: time column {name!r} holds one time stamp (t = {t[0]:g}) for all {len(t)} samples, "
                        f"so it is not a time axis; name the time column with time_column=, or remove this one")
    step = float(np.median(d[d > 0]))
    if dt is not None and abs(dt - step) > 1e-6 * step:
        raise DataError(f"{path}: dt = {dt} disagrees with the time column {name!r}, whose median step is {step:g}; "
                        f"drop --dt or fix the time column")
    ok = np.isclose(d, step, rtol=1e-6, atol=0) | (d == 0)
    if ok.all() and not dup.size:
        return (t[-1] - t[0]) / (len(t) - 1), None      # the mean step: free of the stamps' rounding
    if ok.all():
        return step, (None if not dup.size else t[0] + step * np.arange(int(round((t[-1] - t[0]) / step)) + 1))
    bad = np.nonzero(~ok)[0]
    gaps = bad[np.isclose(d[bad] / step, np.round(d[bad] / step), rtol=1e-6, atol=1e-6) & (d[bad] > step)]
    if not interpolate:
        irregular = [i for i in bad if i not in set(gaps)]
        if irregular:
            i = irregular[0]
            raise DataError(f"{path}: time column {name!r} is not evenly spaced: step {d[i]:g} at sample {i + 1} "
                            f"(t = {t[i + 1]:g}) where the median step is {step:g} ({len(irregular)} such steps); "
                            f"resample the recording, or pass interpolate=True to put it on a regular grid")
        i = gaps[0]
        raise DataError(f"{path}: {gaps.size} gap(s) in time column {name!r}, the first before sample {i + 1} "
                        f"(t = {t[i + 1]:g}: {round(d[i] / step) - 1} missing samples of step {step:g}); pass "
                        f"interpolate=True to fill them linearly, or cut the recording")
    n = int(np.floor((t[-1] - t[0]) / step + 1e-6)) + 1
    if n > MAX_FILL * len(t):   # mostly made up by the interpolation (and a gap of 1e12 steps fills no memory)
        i = bad[int(np.argmax(d[bad]))]
        raise DataError(f"{path}: interpolating time column {name!r} onto its median step {step:g} makes {n:,} samples "
                        f"from {len(t):,} (the largest gap, before sample {i + 1} at t = {t[i + 1]:g}, is "
                        f"{d[i] / step:,.0f} steps): more than {MAX_FILL}x would be made up; cut the recording at its "
                        f"gaps, or resample it")
    return step, t[0] + step * np.arange(n)


def fill_nans(x: np.ndarray, names, path, interpolate: bool) -> tuple[np.ndarray, int]:
    bad = ~np.isfinite(x)
    if not bad.any():
        return x, 0
    if not interpolate:
        c = int(np.nonzero(bad.any(axis=0))[0][0])
        rows = np.nonzero(bad[:, c])[0]
        where = ", ".join(str(r) for r in rows[:5]) + (", ..." if rows.size > 5 else "")
        raise DataError(f"{path}: channel {names[c]!r} has {rows.size} NaN/missing values at sample(s) {where} "
                        f"({int(bad.sum())} in all channels); pass interpolate=True to fill them linearly, or "
                        f"clean the file")
    idx = np.arange(len(x))
    for c in range(x.shape[1]):
        good = ~bad[:, c]
        if good.sum() < 2:
            raise DataError(f"{path}: channel {names[c]!r} has fewer than 2 valid values; drop it (columns=[...])")
        x[:, c] = np.interp(idx, idx[good], x[good, c])
    return x, int(bad.sum())


OUTLIER_SCALES = 1e6    # a value this many robust spreads (1.4826 MAD) from its channel's median is no measurement
HUGE = 1e150            # beyond this, squares overflow and standardisation fails


def check_values(x: np.ndarray, names, t, path) -> None:
    """Refuse ±inf and values beyond any plausible scale (a corrupt cell, a sentinel such as 1e300), each
    named with its channel, first sample (and time) and count, before any work: such a value would pass
    the NaN check, overflow the standardisation and end in a false diagnosis after training."""
    def where(i):
        return f"sample {i}" + ("" if t is None else f", t = {t[i]:g}")

    inf = np.isinf(x)
    if inf.any():
        c = int(np.nonzero(inf.any(axis=0))[0][0])
        rows = np.nonzero(inf[:, c])[0]
        raise DataError(f"{path}: channel {names[c]!r} has {rows.size} infinite value(s) ({x[rows[0], c]:+g} at "
                        f"{where(rows[0])}; {int(inf.sum())} in all channels); infinity is no measurement: clean the "
                        f"file, or write those cells as NaN (empty) and pass interpolate=True (--interpolate)")
    for c in range(x.shape[1]):
        v = x[:, c]
        ok = np.isfinite(v)
        if not ok.any():
            continue
        med = float(np.median(v[ok]))
        dev = np.abs(v - med)
        mad = float(np.median(dev[ok]))
        scale = 1.4826 * mad if mad > 0 else float(np.mean(dev[ok]))
        with np.errstate(invalid="ignore"):
            bad = ok & ((np.abs(v) > HUGE) | (dev > OUTLIER_SCALES * scale) if scale > 0 else (np.abs(v) > HUGE))
        if bad.any():
            rows = np.nonzero(bad)[0]
            raise DataError(f"{path}: channel {names[c]!r} has {rows.size} value(s) beyond any plausible scale "
                            f"({v[rows[0]]:g} at {where(rows[0])}; the channel's median is {med:.4g} and its robust "
                            f"spread {scale:.3g}); a corrupt cell or a missing-value code? clean the file, or write "
                            f"those cells as NaN (empty) and pass interpolate=True (--interpolate)")
