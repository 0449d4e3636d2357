"""Short-horizon forecasts from forced states: the scores of a model that look a few steps ahead of the data
(split out of :mod:`dsrecon.evaluation`, which re-exports them).

- :func:`forced_rollouts`: n-step runs from the forced states of many data points, as one batch.
- :func:`prediction_error`: PE(n), the n-step-ahead MSE from forced states.
- :func:`valid_prediction_time`: the first time the normalised error of a forced-then-free run exceeds a
  threshold, in Lyapunov times.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from .arrays import as_array
from .inputs import input_windows, model_inputs
from .metrics import Score, check_setting, is_int, median_mad
from .models.base import device_dtype, free_run


def forced_rollouts(model, x0, n_steps: int, *, inputs=None, return_latent: bool = False):
    """Free runs of ``n_steps`` steps from the forced states of the observations ``x0`` (B, N).

    z_0 = model.force(x0); z_k = model.step(z_{k-1}) (a driven model: model.step(z_{k-1}, s_{k-1}) with
    ``inputs`` (B, n, K), the inputs of each run from its start on); returns the observations x̂_1..x̂_n as
    (B, n, N) (and the latents z_1..z_n as (B, n, M) with ``return_latent``), numpy float64. All starts in
    one batch: one ``step`` call per time step (:func:`dsrecon.models.base.free_run`).
    """
    device, dtype = device_dtype(model)
    x0 = np.atleast_2d(np.asarray(x0, dtype=float))
    with torch.no_grad():
        z = model.force(torch.as_tensor(x0, dtype=dtype, device=device))
        s = None if inputs is None else torch.as_tensor(np.asarray(inputs), dtype=dtype, device=device).transpose(0, 1)
        out = free_run(model, z, int(n_steps), inputs=s, return_latent=return_latent)
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
