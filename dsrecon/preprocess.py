"""Preprocessing steps: pure ``Dataset -> Dataset`` functions, each recorded in ``attrs['provenance']``.

Every step reads the variable ``x`` (time, channel) of a dataset in the layout of :mod:`dsrecon.data`, returns
a new dataset (the input is never modified) and appends one JSON entry ``{"step": name, **parameters}``
to the provenance, with the values it estimated (trend coefficients, the chosen delay, ...). A dataset
card lists its steps as ``[[preprocess]]`` tables; :func:`apply` runs such a list.

The steps of "How to train RNNs on chaotic data" App. A.4 / A.6.5 for the weather and EEG recordings:
:func:`detrend`, :func:`remove_cycle` (the yearly cycle), :func:`ghkss` (nonlinear noise reduction as in
TISEAN's ``ghkss``), :func:`gaussian_smooth`, :func:`subsample`, :func:`delay_embed` (delay from mutual
information, dimension from false nearest neighbours, via :mod:`dsrecon.embedding`) and :func:`standardize`.
An external input variable ``s`` (time, input), if present, is kept aligned by the steps that change the
time axis (subsample, delay_embed) and is otherwise left alone.
"""
from __future__ import annotations

import inspect
import json
import math

import numpy as np
import xarray as xr
from scipy.ndimage import gaussian_filter1d
from scipy.spatial import cKDTree

from .embedding import delay_embedding, estimate_delay, estimate_embedding_dimension
from .errors import ConfigError, DataError


# ------------------------------------------------------------------------------------ helpers
def _x(ds: xr.Dataset, step: str) -> np.ndarray:
    if not isinstance(ds, xr.Dataset) or "x" not in ds:
        raise DataError(f"{step}: expected an xarray.Dataset with a variable 'x' (time, channel), "
                        f"got {type(ds).__name__}")
    x = np.asarray(ds["x"].transpose("time", "channel").values, dtype=np.float64)
    bad = ~np.isfinite(x)
    if bad.any():
        first = int(np.argwhere(bad)[0, 0])
        raise DataError(f"{step}: x has {int(bad.sum())} NaN/inf values (first at time index {first}); "
                        f"fill or drop them first")
    return x


def _logged(ds: xr.Dataset, entry: dict, *, x: np.ndarray | None = None, dims=None, keep=None) -> xr.Dataset:
    """A copy of ``ds`` (restricted to time indices ``keep`` if given) with ``x`` replaced and ``entry``
    appended to the provenance."""
    out = ds if keep is None else ds.isel(time=keep)
    out = out.copy()
    if x is not None:
        if dims is None:
            out["x"] = (("time", "channel"), x)
        else:
            out = out.drop_vars(["x", "channel"]).assign_coords(channel=list(dims))
            out["x"] = (("time", "channel"), x)
    prov = json.loads(ds.attrs.get("provenance", "[]"))
    prov.append(entry)
    out.attrs = {**ds.attrs, "provenance": json.dumps(prov)}
    return out


def _time(ds: xr.Dataset) -> np.ndarray:
    t = np.asarray(ds["time"].values)
    if np.issubdtype(t.dtype, np.datetime64):
        t = (t - t[0]) / np.timedelta64(1, "s")
    return t.astype(np.float64)


def _check_length(n: int, need: int, step: str, what: str):
    if n < need:
        raise DataError(f"{step}: the series has {n} samples, too short for {what} (needs at least {need}); "
                        f"use a longer recording or smaller parameters")


# ------------------------------------------------------------------------------------ steps
def detrend(ds: xr.Dataset, order: int = 1) -> xr.Dataset:
    """Subtract a least-squares polynomial of degree ``order`` in time from every channel (1: a linear
    trend). The coefficients (highest power first, time in the dataset's units from the first sample) go
    to the provenance."""
    x = _x(ds, "detrend")
    order = int(order)
    if order < 0:
        raise ConfigError(f"detrend: order must be >= 0, got {order}")
    _check_length(len(x), order + 2, "detrend", f"a degree-{order} trend")
    t = _time(ds)
    scale = t[-1] - t[0] if t[-1] > t[0] else 1.0      # fit in [0, 1] for conditioning
    u = (t - t[0]) / scale
    coef = np.polynomial.polynomial.polyfit(u, x, order)          # (order + 1, N), lowest power first
    trend = np.polynomial.polynomial.polyval(u, coef).T
    return _logged(ds, {"step": "detrend", "order": order, "time_scale": float(scale),
                        "coefficients": coef.T.tolist()}, x=x - trend)


def remove_cycle(ds: xr.Dataset, period: float, harmonics: int = 3) -> xr.Dataset:
    """Remove a periodic cycle of known ``period`` (in the dataset's time units, e.g. 31 556 952 s for a
    year) by least squares on ``harmonics`` sine/cosine pairs (k = 1..harmonics) plus a constant; the
    constant is put back, so only the cycle goes. Needs at least one full period of data.
    Pitfall: a cycle whose shape changes from year to year leaves a residue; more harmonics fit sharper
    cycles but also absorb slow dynamics."""
    x = _x(ds, "remove_cycle")
    period, harmonics = float(period), int(harmonics)
    if not period > 0 or harmonics < 1:
        raise ConfigError(f"remove_cycle: period must be > 0 and harmonics >= 1, got {period}, {harmonics}")
    t = _time(ds)
    span = t[-1] - t[0]
    if span < period:
        raise DataError(f"remove_cycle: the series spans {span:g} time units ({ds.attrs.get('time_units', '')}), "
                        f"less than one period {period:g}; a cycle cannot be estimated")
    w = 2 * np.pi * (t - t[0]) / period
    cols = [np.ones_like(w)]
    for k in range(1, harmonics + 1):
        cols += [np.cos(k * w), np.sin(k * w)]
    A = np.stack(cols, axis=1)
    coef, *_ = np.linalg.lstsq(A, x, rcond=None)
    cycle = A[:, 1:] @ coef[1:]
    amp = np.sqrt(coef[1::2] ** 2 + coef[2::2] ** 2)              # amplitude of each harmonic, per channel
    return _logged(ds, {"step": "remove_cycle", "period": period, "harmonics": harmonics,
                        "amplitudes": amp.T.tolist()}, x=x - cycle)


def ghkss_array(s, emb_dim: int = 7, delay: int = 1, q: int = 2, n_neighbours: int = 30,
                iterations: int = 2, edge_weight: float = 1000.0, curvature: bool = False,
                chunk: int = 20_000) -> np.ndarray:
    """Nonlinear noise reduction of a scalar series by local projections (Grassberger, Hegger, Kantz,
    Schaffrath & Schreiber 1993, "On noise reduction methods for chaotic data", Chaos 3, 127; TISEAN ``ghkss``;
    Kantz & Schreiber, "Nonlinear time series analysis", §10.3.2).

    Algorithm, per iteration: embed s in ``emb_dim`` dimensions with ``delay``; for every delay vector y_n take
    its ``n_neighbours`` nearest neighbours U_n (k-d tree, y_n included) and their centre ξ_n; form the
    weighted covariance Γ = R C R with C the covariance of U_n and R = diag(r), r_0 = r_{m−1} = ``edge_weight``,
    else 1 (the first and last coordinates are corrected least, as they have only one neighbour in time);
    the eigenvectors a_1..a_{m−q} of Γ with the smallest eigenvalues span the noise directions, and the
    correction is θ_n = R⁻¹ Σ_k a_k a_kᵀ R (ξ_n − y_n). Each sample s_t receives the mean of the
    corrections of all delay vectors that contain it. ``q`` is the assumed local dimension of the attractor.
    Returns the cleaned series (same length). Differences to TISEAN: neighbourhoods of fixed mass (k nearest)
    instead of a radius ε with a minimum count, and no TISEAN-style centre-of-mass bias correction.
    Pitfalls: q too small removes signal; too many iterations flatten the attractor (watch the change per
    iteration); a linear projection onto a curved attractor moves even clean points (on a clean Hénon series
    by 0.1–0.25 of a 5 % noise level, tests/test_preprocess.py). ``curvature=True`` subtracts from every
    correction the mean correction of its neighbourhood, the second-order correction of Kantz & Schreiber
    §10.3.2 (Hénon: clean points move about 0.6× as much, the noise reduction drops from 3.3× to 3.0×);
    costs about n · k · m² per iteration.
    """
    s = np.asarray(s, dtype=np.float64).ravel().copy()
    m, delay, q, k = int(emb_dim), int(delay), int(q), int(n_neighbours)
    if not (m >= 2 and 1 <= q < m and delay >= 1 and k > q and iterations >= 1):
        raise ConfigError(f"ghkss: need emb_dim >= 2, 1 <= q < emb_dim, delay >= 1, n_neighbours > q, "
                          f"iterations >= 1; got emb_dim={m}, q={q}, delay={delay}, n_neighbours={k}, "
                          f"iterations={iterations}")
    M = len(s) - (m - 1) * delay
    _check_length(M, 2 * k, "ghkss", f"{k} neighbours in {m} dimensions with delay {delay}")
    r = np.ones(m)
    r[0] = r[-1] = float(edge_weight)
    offsets = np.arange(m) * delay
    for _ in range(int(iterations)):
        Y = s[np.arange(M)[:, None] + offsets]                  # (M, m)
        tree = cKDTree(Y)
        thetas = np.empty((M, m))
        neigh = np.empty((M, k), dtype=np.int64) if curvature else None
        for a in range(0, M, chunk):
            b = min(M, a + chunk)
            _, idx = tree.query(Y[a:b], k=k)
            if curvature:
                neigh[a:b] = idx
            nb = Y[idx]                                          # (B, k, m)
            xi = nb.mean(axis=1)
            d = nb - xi[:, None, :]
            C = np.einsum("bki,bkj->bij", d, d) / k
            G = C * r[None, :, None] * r[None, None, :]
            _, vec = np.linalg.eigh(G)                           # ascending eigenvalues
            A = vec[:, :, : m - q]                               # noise directions (B, m, m−q)
            v = (xi - Y[a:b]) * r                                # R (ξ − y)
            thetas[a:b] = np.einsum("bik,bk->bi", A, np.einsum("bik,bi->bk", A, v)) / r
        if curvature:   # the neighbourhood's centre lies on the concave side: remove the neighbours' mean correction
            thetas = thetas - np.concatenate([thetas[neigh[a:a + chunk]].mean(axis=1) for a in range(0, M, chunk)])
        rows = np.arange(M)[:, None] + offsets                   # sample index of each coordinate
        corr = np.bincount(rows.ravel(), weights=thetas.ravel(), minlength=len(s))
        count = np.bincount(rows.ravel(), minlength=len(s))
        s = s + corr / np.maximum(count, 1)
    return s


def ghkss(ds: xr.Dataset, emb_dim: int = 7, delay: int = 1, q: int = 2, n_neighbours: int = 30,
          iterations: int = 2, edge_weight: float = 1000.0, curvature: bool = False) -> xr.Dataset:
    """GHKSS nonlinear noise reduction of every channel (see :func:`ghkss_array` for the algorithm).
    The provenance records the parameters and the RMS change per channel."""
    x = _x(ds, "ghkss")
    out = np.stack([ghkss_array(x[:, c], emb_dim, delay, q, n_neighbours, iterations, edge_weight, curvature)
                    for c in range(x.shape[1])], axis=1)
    change = np.sqrt(np.mean((out - x) ** 2, axis=0))
    return _logged(ds, {"step": "ghkss", "emb_dim": int(emb_dim), "delay": int(delay), "q": int(q),
                        "n_neighbours": int(n_neighbours), "iterations": int(iterations),
                        "edge_weight": float(edge_weight), "curvature": bool(curvature),
                        "rms_change": change.tolist()}, x=out)


def gaussian_smooth(ds: xr.Dataset, sigma: float, trim: bool = False) -> xr.Dataset:
    """Convolve every channel with a Gaussian kernel of standard deviation ``sigma`` samples
    (scipy.ndimage.gaussian_filter1d, truncated at 4σ, edges extended with the nearest value).
    ``trim=True`` drops the 4σ samples at each end that the edge extension biases."""

    x = _x(ds, "gaussian_smooth")
    sigma = float(sigma)
    if not sigma > 0:
        raise ConfigError(f"gaussian_smooth: sigma must be > 0 samples, got {sigma}")
    y = gaussian_filter1d(x, sigma, axis=0, mode="nearest", truncate=4.0)
    keep = None
    if trim:
        cut = int(math.ceil(4 * sigma))
        _check_length(len(x), 2 * cut + 2, "gaussian_smooth", f"trimming 4 sigma = {cut} samples at each end")
        keep, y = slice(cut, len(x) - cut), y[cut: len(x) - cut]
    out = _logged(ds, {"step": "gaussian_smooth", "sigma": sigma, "trim": bool(trim)}, x=y, keep=keep)
    if keep is not None and "n_train" in ds.attrs:
        out.attrs["n_train"] = int(min(max(ds.attrs["n_train"] - cut, 1), y.shape[0]))
    return out


def subsample(ds: xr.Dataset, every: int) -> xr.Dataset:
    """Keep every ``every``-th sample (no filtering: smooth first to avoid aliasing); dt grows by ``every``."""
    every = int(every)
    if every < 1:
        raise ConfigError(f"subsample: every must be an integer >= 1, got {every}")
    _x(ds, "subsample")
    out = _logged(ds, {"step": "subsample", "every": every}, keep=slice(None, None, every))
    out.attrs["dt"] = float(ds.attrs.get("dt", 1.0)) * every
    if "n_train" in ds.attrs:
        out.attrs["n_train"] = int(math.ceil(int(ds.attrs["n_train"]) / every))
    return out


def delay_embed(ds: xr.Dataset, emb_dim: int | str = "auto", delay: int | str = "auto", channel=None,
                max_dim: int = 10) -> xr.Dataset:
    """Delay embedding y_t = (x_t, x_{t+d}, ..., x_{t+(m−1)d}) of the channels of ``ds``.

    ``delay="auto"``: the first minimum of the average mutual information or the 1/e autocorrelation lag,
    whichever comes first (:func:`dsrecon.embedding.estimate_delay`); ``emb_dim="auto"``: the smallest m with
    under 1 % false nearest neighbours (:func:`dsrecon.embedding.estimate_embedding_dimension`, up to
    ``max_dim``). Both are estimated on ``channel`` (default: the first); every channel is embedded
    (channel by channel, names ``<name>+<k*d>``). The time axis keeps the first T − (m−1)d times.
    """
    x = _x(ds, "delay_embed")
    names = [str(v) for v in ds["channel"].values]
    c = 0 if channel is None else (names.index(channel) if channel in names else None)
    if c is None:
        raise ConfigError(f"delay_embed: no channel {channel!r}; channels: {', '.join(names)}")
    chosen = {}
    if delay == "auto":
        delay = estimate_delay(x[:, c])
        chosen["delay"] = "mutual information / autocorrelation"
    if emb_dim == "auto":
        emb_dim = estimate_embedding_dimension(x[:, c], int(delay), max_dim=int(max_dim))
        chosen["emb_dim"] = "false nearest neighbours"
    m, d = int(emb_dim), int(delay)
    if m < 1 or d < 1:
        raise ConfigError(f"delay_embed: emb_dim and delay must be integers >= 1, got {emb_dim}, {delay}")
    _check_length(len(x), (m - 1) * d + 100, "delay_embed", f"embedding dimension {m} with delay {d}")
    Y = delay_embedding(x, m, d)
    dims = [n if k == 0 else f"{n}+{k * d}" for n in names for k in range(m)]
    keep = slice(0, Y.shape[0])
    out = _logged(ds, {"step": "delay_embed", "emb_dim": m, "delay": d, "channel": names[c], "estimated": chosen},
                  x=Y, dims=dims, keep=keep)
    if "n_train" in ds.attrs:
        out.attrs["n_train"] = int(min(int(ds.attrs["n_train"]), Y.shape[0]))
    return out


def standardize(ds: xr.Dataset, n_train: int | None = None) -> xr.Dataset:
    """Zero mean, unit variance per channel, with the statistics of the first ``n_train`` samples (default:
    ``attrs['n_train']`` if set, else all): the held-out part is not used. Sets attrs ``mean``, ``std`` (so
    :func:`dsrecon.data.to_physical` can undo it). Raises DataError for a constant channel."""
    x = _x(ds, "standardize")
    n = int(ds.attrs.get("n_train", len(x)) if n_train is None else n_train)
    if not 2 <= n <= len(x):
        raise DataError(f"standardize: n_train = {n} must be between 2 and the length {len(x)}")
    mean, std = x[:n].mean(axis=0), x[:n].std(axis=0)
    flat = np.nonzero(~(std > 0))[0]
    if flat.size:
        names = [str(ds["channel"].values[i]) for i in flat]
        raise DataError(f"standardize: channel(s) {', '.join(map(repr, names))} are constant on the first {n} "
                        f"samples: they carry no dynamics; drop them (columns=[...])")
    out = _logged(ds, {"step": "standardize", "on": "train split" if n < len(x) else "all samples",
                       "mean": mean.tolist(), "std": std.tolist()}, x=(x - mean) / std)
    out.attrs["mean"], out.attrs["std"] = mean.tolist(), std.tolist()
    out.attrs["standardized"] = 1
    return out


STEPS = {"detrend": detrend, "remove_cycle": remove_cycle, "ghkss": ghkss, "gaussian_smooth": gaussian_smooth,
         "subsample": subsample, "delay_embed": delay_embed, "standardize": standardize}


def apply(ds: xr.Dataset, steps) -> xr.Dataset:
    """Run a list of steps ``[{"step": "detrend", "order": 1}, {"step": "subsample", "every": 5}, ...]`` (the
    ``[[preprocess]]`` tables of a card) in order. ConfigError for an unknown step or parameter."""
    for i, spec in enumerate(steps or []):
        spec = dict(spec)
        name = spec.pop("step", None)
        if name not in STEPS:
            raise ConfigError(f"preprocess step {i + 1}: unknown step {name!r}; steps: {', '.join(STEPS)}")
        valid = [p for p in inspect.signature(STEPS[name]).parameters if p != "ds"]
        unknown = sorted(set(spec) - set(valid))
        if unknown:
            raise ConfigError(f"preprocess step {i + 1} ({name}): unknown parameter(s) {', '.join(unknown)}; "
                              f"valid: {', '.join(valid)}")
        ds = STEPS[name](ds, **spec)
    return ds
