"""A model against data: the scores that need a model to run (forced states, free runs, spectra) or a dataset to
split, built on the pure kernels of :mod:`dsrecon.metrics`.

- :func:`prediction_error`: PE(n), the n-step-ahead MSE from forced states.
- :func:`valid_prediction_time`: the first time the normalised error of a forced-then-free run exceeds a
  threshold, in Lyapunov times.
- :func:`lyapunov_scores`: λ_max, the spectrum and D_KY of a model against the data's or the true ones.
- :func:`score_initial_conditions`: free runs from many initial conditions, batched; median ± MAD.
- :func:`score_partially_observed`: scores in the full state space after regressing latents onto the
  full observations ("How to train RNNs on chaotic data" App. A.6.3).
- :func:`noise_floor`: the same scores between the test split and independent true trajectories.

Every free run is :func:`dsrecon.models.base.generate`; every input check :func:`dsrecon.inputs.model_inputs`.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from .arrays import as_array
from .data import independent_trajectory, train_test_split
from .errors import DataError
from .inputs import input_windows, model_inputs
from .lyapunov import LyapunovSpectrum, kaplan_yorke_dimension, lyapunov_spectrum
from .maxlyap import MaxLyapunov
from .metrics import (Score, block_bootstrap, check_setting, is_int, median_mad, regress_full_observation, score_all,
                      summarise)
from .models.base import device_dtype, generate


def forced_rollouts(model, x0, n_steps: int, *, inputs=None, return_latent: bool = False):
    """Free runs of ``n_steps`` steps from the forced states of the observations ``x0`` (B, N).

    z_0 = model.force(x0); z_k = model.step(z_{k-1}) (a driven model: model.step(z_{k-1}, s_{k-1}) with
    ``inputs`` (B, n, K), the inputs of each run from its start on); returns the observations x̂_1..x̂_n as
    (B, n, N) (and the latents z_1..z_n as (B, n, M) with ``return_latent``), numpy float64. All starts in
    one batch: one ``step`` call per time step (:func:`dsrecon.models.base.generate`).
    """
    device, dtype = device_dtype(model)
    x0 = np.atleast_2d(np.asarray(x0, dtype=float))
    with torch.no_grad():
        z = model.force(torch.as_tensor(x0, dtype=dtype, device=device))
        s = None if inputs is None else torch.as_tensor(np.asarray(inputs), dtype=dtype, device=device).transpose(0, 1)
        out = generate(model, z, int(n_steps), inputs=s, return_latent=return_latent)
        xs, zs = out if return_latent else (out, None)
        xs = xs.transpose(0, 1).cpu().numpy().astype(np.float64)
        if return_latent:
            return xs, zs.transpose(0, 1).cpu().numpy().astype(np.float64)
    return xs


def _starts(n_avail: int, n_starts: int) -> np.ndarray:
    """Evenly spaced start indices 0 .. n_avail − 1 (at most ``n_starts``)."""
    if n_avail <= n_starts:
        return np.arange(n_avail)
    return np.linspace(0, n_avail - 1, n_starts).astype(np.int64)


def prediction_error(model, data, *, n_steps: int = 25, n_starts: int = 1000, inputs=None) -> Score:
    """PE(n): the n-step-ahead prediction error of a model from forced states.

    Algorithm: starts t_1..t_B evenly spaced over the series (at most ``n_starts``, each with n steps
    after it); z = model.force(x_t); n free steps; PE(k) = mean over starts and dimensions of
    (x̂_{t+k} − x_{t+k})², k = 1..n. The value is PE(n); ``extra["curve"]`` holds PE(1..n).
    Units: squared units of ``data`` (standardized data: fractions of the variance).
    Reference: "How to train RNNs on chaotic data" §4 / DurstewitzLab/ChaosRNN ``evaluation/mse.py``
    (there: every time step a start, forcing by B⁺x, n = 25).
    Pitfall: forcing sets only what the observation determines; unobserved latents get the model's
    forcing rule (see :mod:`dsrecon.models.observation`), so PE(1) is not zero even for a perfect model
    of a partially observed system. Non-finite predictions give inf with a reason.
    A driven model (``input_dim > 0``) reads ``inputs`` (T, K) aligned with ``data`` (default: the
    Dataset's ``s``): the run from x_t reads s_t, s_{t+1}, ...
    """
    check_setting(is_int(n_steps, 1), f"n_steps must be an integer ≥ 1, got {n_steps!r}")
    check_setting(is_int(n_starts, 1), f"n_starts must be an integer ≥ 1, got {n_starts!r}")
    x = as_array(data, what="data")
    s = model_inputs(model, data, inputs)
    variant = {"n": int(n_steps), "error": "MSE over starts and dimensions", "start": "forced: model.force(x_t)",
               "starts": "evenly spaced"}
    if len(x) <= n_steps:
        return Score("PE", math.nan, variant, 0, len(x), f"data have {len(x)} steps, need more than n = {n_steps}")
    st = _starts(len(x) - n_steps, n_starts)
    pred = forced_rollouts(model, x[st], n_steps, inputs=None if s is None else input_windows(s, st, n_steps))
    target = x[st[:, None] + np.arange(1, n_steps + 1)[None, :]]
    if not np.all(np.isfinite(pred)):
        return Score("PE", math.inf, variant, len(st), len(x) - n_steps, "non-finite predictions: the model diverged",
                     t_gen=int(n_steps), n_init=len(st))
    curve = np.mean((pred - target) ** 2, axis=(0, 2))
    return Score("PE", float(curve[-1]), variant, len(st), len(x) - n_steps, t_gen=int(n_steps), n_init=len(st),
                 extra={"curve": curve.tolist()})


def valid_prediction_time(model, data, *, lambda_max: float, dt: float | None = None, threshold: float = 0.5,
                          n_starts: int = 100, horizon: int | None = None, inputs=None) -> Score:
    """Valid prediction time in Lyapunov times: how long a forced-then-free run stays close to the data.

    Algorithm: starts evenly spaced over the series (at most ``n_starts``); z = model.force(x_t); free
    run; normalised error e(k) = √(mean_d ((x̂_{t+k,d} − x_{t+k,d}) / σ_d)²), σ_d the std (ddof=0) of
    ``data`` per dimension; k* the first step with e(k*) > ``threshold``; VPT = k* · dt · λ_max
    (Lyapunov times). Value: the median over starts, ``spread`` the MAD, ``extra["per_init"]`` each.
    A start whose error never exceeds the threshold within ``horizon`` steps counts as the horizon (a
    lower bound, said in ``reason``). ``horizon`` default: 20 Lyapunov times, at least 10 steps.

    Parameters: ``lambda_max`` per time unit (of the data or the true equations); ``dt`` time units per
    step (default: ``data.attrs["dt"]``, else 1); ``inputs`` (T, K) of a driven model, aligned with ``data``
    (default: the Dataset's ``s``).
    References: Pathak et al. 2018; Vlachas et al. 2020 (VPT with a normalised-error threshold of 0.5).
    Pitfall: the value scales with λ_max, so state which λ_max (``reference`` holds it).
    """
    x = as_array(data, what="data")
    s = model_inputs(model, data, inputs)
    if dt is None:
        dt = float(getattr(data, "attrs", {}).get("dt", 1.0))
    check_setting(math.isfinite(lambda_max) and lambda_max > 0,
                   f"valid_prediction_time: lambda_max must be a positive number per time unit, got {lambda_max}")
    check_setting(dt > 0, f"dt must be > 0, got {dt}")
    check_setting(threshold > 0, f"threshold must be > 0, got {threshold}")
    if horizon is None:
        horizon = max(10, int(math.ceil(20.0 / (lambda_max * dt))))
    check_setting(is_int(horizon, 1), f"horizon must be an integer ≥ 1, got {horizon!r}")
    variant = {"threshold": threshold, "error": "RMS over dimensions of error / std(data) per dimension",
               "units": "Lyapunov times (k*·dt·lambda_max)", "lambda_max": lambda_max, "dt": dt,
               "horizon": int(horizon), "start": "forced: model.force(x_t)"}
    if len(x) <= horizon:
        horizon = len(x) - 1
        variant["horizon"] = int(horizon)
    if horizon < 1:
        return Score("VPT", math.nan, variant, 0, len(x), "data too short", reference=lambda_max)
    sd = x.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    st = _starts(len(x) - horizon, n_starts)
    pred = forced_rollouts(model, x[st], horizon, inputs=None if s is None else input_windows(s, st, horizon))
    target = x[st[:, None] + np.arange(1, horizon + 1)[None, :]]
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.sqrt(np.mean(((pred - target) / sd) ** 2, axis=2))
    over = ~(err <= threshold)                        # NaN (diverged) counts as over the threshold
    first = np.where(over.any(axis=1), over.argmax(axis=1) + 1, horizon)
    censored = int((~over.any(axis=1)).sum())
    vpt = first * dt * lambda_max
    med, mad = median_mad(vpt)
    with warnings.catch_warnings():  # a column of NaN (every start diverged) gives NaN, as it should
        warnings.simplefilter("ignore", RuntimeWarning)
        curve = np.nanmedian(err, axis=0)
    reason = (f"{censored} of {len(st)} starts stayed below the threshold for the whole horizon of {horizon} "
              f"steps (counted as the horizon: a lower bound)" if censored else "")
    return Score("VPT", med, variant, len(st), len(x) - horizon, reason, reference=lambda_max, t_gen=int(horizon),
                 n_init=len(st), spread=mad, extra={"per_init": vpt.tolist(),
                                                    "median_error_curve": curve.tolist()})


def lyapunov_scores(model, *, dt: float = 1.0, reference=None, k: int | None = None, n_steps: int = 2000,
                    transient: int = 500, n_init: int = 4, z0=None, seed: int = 0,
                    qr_every: int = 1, inputs=None) -> dict[str, Score]:
    """The model's λ_max, Lyapunov spectrum and D_KY against a reference.

    The model's spectrum is :func:`dsrecon.lyapunov.lyapunov_spectrum` (QR method, first ``k`` exponents,
    ``n_init`` initial conditions or the states ``z0``), per time unit with ``dt``. ``reference``:
    a :class:`dsrecon.lyapunov.LyapunovSpectrum` (e.g. ``true_spectrum("lorenz")``: λ_max, spectrum and
    D_KY), a :class:`dsrecon.lyapunov.MaxLyapunov` (λ_max from data) or a number (λ_max per time unit),
    or None. Returns {"lambda_max", "spectrum", "D_KY"}: "lambda_max" value = the model's λ_1 per time
    unit, ``spread`` its standard error over initial conditions; "spectrum" value = mean |λ_i(model) −
    λ_i(reference)| over the exponents both have (nan without a reference spectrum), ``extra`` both
    spectra; "D_KY" value = the model's Kaplan-Yorke dimension of its first k exponents (the reason says
    when every partial sum is still ≥ 0, i.e. k was too small).
    A model whose trajectory diverges gives nan values with the reason (no exception). A driven model
    needs ``inputs``: (transient + n_steps, n_init, K) or a callable, as for :func:`lyapunov_spectrum`.
    Reference: "Lyapunov spectra of chaotic RNNs" §III and Eq. 3; Benettin et al. 1980.
    """
    ref_l1, ref_spec, ref_dky = None, None, None
    if isinstance(reference, LyapunovSpectrum):
        ref_spec = np.asarray(reference.per_time, dtype=float)
        ref_l1, ref_dky = float(ref_spec[0]), float(reference.kaplan_yorke_dim)
    elif isinstance(reference, MaxLyapunov):
        ref_l1 = float(reference.value)
    elif reference is not None:
        ref_l1 = float(reference)
    variant = {"method": "QR (Benettin)", "k": k, "n_steps": int(n_steps), "transient": int(transient),
               "qr_every": int(qr_every), "per": "time unit", "dt": dt}
    try:
        spec = lyapunov_spectrum(model, k=k, n_steps=n_steps, transient=transient, n_init=n_init, z0=z0,
                                 dt=dt, seed=seed, qr_every=qr_every, inputs=inputs)
    except DataError as err:
        why = f"model spectrum failed: {err}"
        return {name: Score(name, math.nan, variant, 0, 0, why, reference=r, n_init=n_init)
                for name, r in (("lambda_max", ref_l1), ("spectrum", None), ("D_KY", ref_dky))}
    model_spec = spec.per_time
    n = spec.n_init
    variant["k"] = len(model_spec)
    se = spec.stderr_per_time
    l1 = Score("lambda_max", float(model_spec[0]), variant, n, n, reference=ref_l1, t_gen=int(n_steps), n_init=n,
               spread=float(se[0]) if math.isfinite(se[0]) else None,
               extra={"spread_is": f"standard error over {n} initial conditions"})
    if ref_spec is not None:
        m = min(len(ref_spec), len(model_spec))
        diff = float(np.mean(np.abs(model_spec[:m] - ref_spec[:m])))
        spec_score = Score("spectrum", diff, {**variant, "compare": f"mean |difference| of the first {m}"}, n, n,
                           t_gen=int(n_steps), n_init=n,
                           extra={"model": model_spec.tolist(), "reference": ref_spec.tolist(), "stderr": se.tolist()})
    else:
        spec_score = Score("spectrum", math.nan, variant, n, n, "no reference spectrum given", t_gen=int(n_steps),
                           n_init=n, extra={"model": model_spec.tolist(), "stderr": se.tolist()})
    dky = kaplan_yorke_dimension(spec.values)
    dky_reason = (f"all {len(model_spec)} partial sums are ≥ 0: D_KY is at least {dky:g}; compute more exponents"
                  if len(model_spec) and dky == len(model_spec) and np.sum(model_spec) >= 0 else "")
    return {"lambda_max": l1, "spectrum": spec_score,
            "D_KY": Score("D_KY", float(dky), variant, n, n, dky_reason, reference=ref_dky, t_gen=int(n_steps),
                          n_init=n)}


def score_initial_conditions(model, true, *, t_gen: int, n_init: int = 10, seed: int = 0, x0=None,
                             n_bins: int = 30, alpha: float = 1e-5, sigma: float = 20.0, method: str = "bins",
                             legacy: bool = False, inputs=None) -> dict[str, Score]:
    """Free runs from ``n_init`` initial conditions, generated as one batch, each scored against ``true``;
    every metric summarised as median ± MAD (:func:`summarise`).

    Initial conditions: the forced states model.force(x) of ``x0`` (B, N) if given, else of ``n_init``
    points of ``true`` drawn with ``np.random.default_rng(seed)``. Generation is
    :func:`dsrecon.models.generate` on the model's device with z0 of shape (B, M): one ``step`` per time
    step for all initial conditions. Returns the :func:`score_all` names; ``extra["per_init"]`` has
    every initial condition's value.
    A driven model reads ``inputs``: with ``x0`` given, the inputs of each run, (t_gen, B, K) (or (t_gen, K)
    for all); otherwise (T_in, K) aligned with ``true`` from its first sample (default: its ``s``), covering
    every drawn start + t_gen (continue a periodic forcing first, :func:`dsrecon.inputs.input_series`).
    """
    t = as_array(true, what="true data")
    check_setting(is_int(t_gen, 2), f"t_gen must be an integer ≥ 2, got {t_gen!r}")
    s = model_inputs(model, true if x0 is None else None, inputs)
    if x0 is None:
        check_setting(is_int(n_init, 1), f"n_init must be an integer ≥ 1, got {n_init!r}")
        idx = np.random.default_rng(seed).integers(0, len(t), n_init)
        x0 = t[idx]
        if s is not None:
            s = np.swapaxes(input_windows(s, idx, int(t_gen)), 0, 1)      # (t_gen, B, K)
    x0 = np.atleast_2d(np.asarray(x0, dtype=float))
    if s is not None and s.ndim == 2:
        s = np.broadcast_to(s[:, None, :], (s.shape[0], len(x0), s.shape[1]))
    device, dtype = device_dtype(model)
    with torch.no_grad():
        z0 = model.force(torch.as_tensor(x0, dtype=dtype, device=device))
        s_t = None if s is None else torch.as_tensor(np.ascontiguousarray(s), dtype=dtype, device=device)
        gen = generate(model, z0, int(t_gen), inputs=s_t).cpu().numpy().astype(np.float64)  # (T, B, N)
    per = [score_all(t, gen[:, b], n_bins=n_bins, alpha=alpha, sigma=sigma, method=method, legacy=legacy)
           for b in range(gen.shape[1])]
    return {name: summarise([p[name] for p in per]) for name in per[0]}


def score_partially_observed(model, observed, full, *, t_gen: int, n_fit: int = 10, ridge: float = 0.0,
                             n_bins: int = 30, alpha: float = 1e-5, sigma: float = 20.0,
                             method: str = "bins", inputs=None) -> dict[str, Score]:
    """Scores of a model trained on some variables, in the full state space (App. A.6.3).

    ``observed`` (T, N_obs): the variables the model saw; ``full`` (T, N_full): all variables at the same
    times. Algorithm: z_0 = model.force(observed[0]); a free run z_1..z_T (T = ``t_gen``); W by
    :func:`regress_full_observation` of z_1..z_n onto full[1..n], n = ``n_fit`` (the paper: 10); the
    generated full state is z_t W; :func:`score_all` against ``full``. The variants say
    ``"space": "full (latents regressed on the first n_fit full observations)"``; ``extra["W"]`` is W.
    Pitfall: only the first ~τ_pred steps of a free run follow the data, so n_fit must stay well below
    that; with n_fit < M the regression is under-determined and the minimum-norm W is used.
    A driven model reads ``inputs`` (≥ t_gen, K), aligned with ``observed`` from its first sample.
    """
    obs = as_array(observed, what="observed data")
    fl = as_array(full, what="full data")
    if len(obs) != len(fl):
        raise DataError(f"observed ({len(obs)} steps) and full ({len(fl)} steps) data must cover the same times")
    check_setting(is_int(n_fit, 1) and n_fit < len(fl),
                   f"n_fit must be an integer in [1, {len(fl) - 1}], got {n_fit!r}")
    check_setting(is_int(t_gen, max(2, n_fit)), f"t_gen must be an integer ≥ max(2, n_fit), got {t_gen!r}")
    s = model_inputs(model, observed, inputs)
    s = None if s is None else input_windows(s, np.array([0]), int(t_gen))
    _, Z = forced_rollouts(model, obs[:1], int(t_gen), inputs=s, return_latent=True)
    Z = Z[0]
    tag = {"space": f"full (latents regressed on the first {n_fit} full observations"
                    + (f", ridge {ridge}" if ridge > 0 else "") + ")"}
    if not np.all(np.isfinite(Z[:n_fit])):
        bad = {name: Score(name, math.nan if name == "PSC" else math.inf, tag, 0, int(t_gen),
                           "the free run diverged before the regression window ended", t_gen=int(t_gen))
               for name in ("D_stsp", "D_H", "PSC")}
        return bad
    W = regress_full_observation(Z[:n_fit], fl[1:n_fit + 1], ridge=ridge)
    with np.errstate(invalid="ignore", over="ignore"):
        gen = Z @ W
    out = score_all(fl, gen, n_bins=n_bins, alpha=alpha, sigma=sigma, method=method)
    return {k: Score(s.name, s.value, {**s.variant, **tag}, s.n_used, s.n_total, s.reason, s.reference, s.t_gen,
                     s.n_init, s.spread, {**s.extra, "W": W.tolist()}) for k, s in out.items()}


def noise_floor(data, t_gen: int, *, seeds=(1,), n_bins: int = 30, alpha: float = 1e-5, sigma: float = 20.0,
                method: str = "bins", legacy: bool = False) -> dict[str, Score]:
    """The scores of independent true trajectories of length ``t_gen`` against the test split of a
    registered dataset: what a perfect model would get.

    For each seed, :func:`dsrecon.data.independent_trajectory` (another initial condition, integrated
    like the card says, standardized like ``data``) is scored by :func:`score_all` against the test split;
    a recording (``attrs["kind"]`` not "ode"/"dde") has no second orbit, so its stand-in is a
    :func:`block_bootstrap` of the training split to ``t_gen`` steps, blocks as long as the test split (at
    most half the training split), one resample per seed (``variant["floor"]`` says so): the floor then
    has the generated run's length and a spread over seeds, where the end of the training split had neither;
    with several seeds every metric is the median ± MAD over them (``n_init`` = number of seeds,
    ``extra["per_init"]`` each value, ``variant["noise_floor_seeds"]`` the seeds). The same seeds give the
    same numbers (the trajectories are deterministic given the seed).
    """
    seeds = [int(s) for s in np.atleast_1d(seeds)]
    check_setting(len(seeds) >= 1, "noise_floor needs at least one seed")
    train, test = train_test_split(data)
    recording = data.attrs.get("kind", "ode") not in ("ode", "dde")
    if recording:   # no second orbit: blocks of the training split, resampled to t_gen steps
        x_train, n_test = as_array(train, what="training split"), int(test.sizes["time"])
        block = max(2, min(n_test, len(x_train) // 2))
        def other(s):
            return block_bootstrap(x_train, int(t_gen), block=block, seed=s)
    else:
        def other(s):
            return independent_trajectory(data, int(t_gen), seed=s)
    per = [score_all(test, other(s), n_bins=n_bins, alpha=alpha, sigma=sigma, method=method, legacy=legacy)
           for s in seeds]
    if recording:
        per = [{k: Score(v.name, v.value, {**v.variant, "floor": f"block bootstrap of the training split, blocks "
                                           f"of {block} steps"}, v.n_used, v.n_total, v.reason, v.reference,
                         v.t_gen, v.n_init, v.spread, v.extra) for k, v in p.items()} for p in per]
    out = {}
    for name in per[0]:
        s = summarise([p[name] for p in per], label="noise-floor seeds") if len(seeds) > 1 else per[0][name]
        out[name] = Score(s.name, s.value, {**s.variant, "noise_floor_seeds": seeds}, s.n_used, s.n_total, s.reason,
                          s.reference, s.t_gen, s.n_init, s.spread, s.extra)
    return out
