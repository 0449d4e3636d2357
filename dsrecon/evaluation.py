"""A model against data: the scores that need a model to run (forced states, free runs, spectra) or a dataset to
split, built on the pure kernels of :mod:`dsrecon.metrics`.

- :func:`prediction_error` and :func:`valid_prediction_time` (from :mod:`dsrecon.prediction`): PE(n) and the
  valid prediction time, from forced states.
- :func:`lyapunov_scores`: λ_max, the spectrum and D_KY of a model against the data's or the true ones.
- :func:`score_initial_conditions`: free runs from many initial conditions, batched; median ± MAD.
- :func:`score_partially_observed`: scores in the full state space after regressing latents onto the
  full observations ("How to train RNNs on chaotic data" App. A.6.3).
- :func:`noise_floor`: the same scores between the test split and independent true trajectories.
- :func:`generate` (``dsrecon.generate``): a free run as an ``xr.Dataset`` like the data; :func:`generated_dataset`.
- :func:`model_spectrum` (``dsrecon.model_spectrum``): the model's Lyapunov spectrum by the one recipe of
  ``dsrecon eval`` and ``dsrecon lyap RUN``.
- :func:`evaluate` (``dsrecon.evaluate``): every score of a free run against the test split, as a fit writes them.

Every free run is :func:`dsrecon.models.base.free_run`; every input check :func:`dsrecon.inputs.model_inputs`.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from dataclasses import replace

import numpy as np
import torch
import xarray as xr

from . import data as data_mod, metrics as M
from .arrays import as_array
from .cards import cache_dir
from .config import EvalConfig
from .data import independent_trajectory, train_test_split
from .ensemble import MEMORY_SHARE, Ensemble, available_bytes
from .errors import ConfigError, DataError, DsreconError
from .fileio import WriteError, atomic_write_bytes
from .inputs import (check_covers, check_inputs, extend_inputs, input_series, input_windows, model_inputs,
                     starts_with_inputs)
from .lyapunov import LyapunovSpectrum, kaplan_yorke_dimension, lyapunov_spectrum
from .maxlyap import MaxLyapunov
from .metrics import (Score, block_bootstrap, check_setting, is_int, regress_full_observation, score_all,
                      summarise)
from .models.base import device_dtype, free_run
from .prediction import forced_rollouts, prediction_error, valid_prediction_time  # noqa: F401 - re-exported
from .systems import system_dims
from .verdicts import lyapunov_note, run_status, size_verdict

log = logging.getLogger("dsrecon")




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


_REFERENCES: dict = {}   # the true spectrum of a card, per process: every member of an ensemble, every rescoring


def card_reference_spectrum(data: xr.Dataset, config: EvalConfig = EvalConfig()):
    """(reference, note): the true Lyapunov spectrum of a simulated ODE card's equations, by the recipe of the
    model's own (:func:`model_spectrum`: ``config.lyap_steps`` QR steps after ``config.lyap_transient``, a QR step
    every ``config.lyap_qr_every``) from one state on the attractor, RK4 with 4 substeps per sample
    (:func:`dsrecon.data.true_spectrum`); computed once per process and card. None with the reason for a
    recording (no equations), a delay card (its history-buffer map costs minutes: ~280 s for 1200 steps of
    Mackey-Glass on a loaded 2-core machine, against ~30 s for Lorenz; ``dsrecon eval --true-spectrum`` computes
    it) or data whose parameters are not the card's."""
    kind = data.attrs.get("kind", "")
    if kind == "dde":
        return None, ("delay card: its reference spectrum costs minutes (the history buffer has hundreds of "
                      "dimensions); `dsrecon eval --true-spectrum` computes it; λ_max is compared with the card's")
    if kind != "ode":
        return None, "a recording has no true equations: no reference spectrum (the model's exponents are in extra)"
    name = data.attrs.get("card", data.attrs.get("name"))
    key = (name, data.attrs.get("card_version"), data.attrs.get("parameters"), int(config.lyap_steps),
           int(config.lyap_transient), int(config.lyap_qr_every))
    if key not in _REFERENCES:
        try:
            c = data_mod.card(name)
            if json.loads(data.attrs.get("parameters", "{}") or "{}") != dict(c.get("parameters", {})):
                raise DataError("the data's parameters are not the card's")
            ref, took = _cached_true_spectrum(name, key, config)
            _REFERENCES[key] = (ref, f"the card's equations, {config.lyap_steps} QR steps after "
                                     f"{config.lyap_transient} from one state, RK4 with 4 substeps "
                                     f"({took})")
        except DsreconError as err:
            _REFERENCES[key] = (None, f"no reference spectrum: {err}")
    return _REFERENCES[key]


_SPECTRUM_FIELDS = ("values", "stderr", "running", "running_steps", "per_init", "ons_spread")


def _cached_true_spectrum(name: str, key: tuple, config: EvalConfig) -> tuple[LyapunovSpectrum, str]:
    """:func:`dsrecon.data.true_spectrum` of a card by the evaluation's recipe, kept on disk beside the card's data
    (``$DSRECON_CACHE_DIR/spectra``; the key holds the card's version, parameters and the recipe): it is a
    deterministic function of them, and costs ~10-30 s for Lorenz that every fit of the card would pay again. A
    damaged or unwritable cache file is computed anew (and a write failure ignored: the cache only saves time)."""
    digest = hashlib.sha256(json.dumps([str(k) for k in key]).encode()).hexdigest()[:16]
    path = cache_dir() / "spectra" / f"{name}-{digest}.json"
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
        arrays = {f: None if obj[f] is None else np.asarray(obj[f], dtype=float) for f in _SPECTRUM_FIELDS}
        return LyapunovSpectrum(dt=float(obj["dt"]), n_steps=int(obj["n_steps"]), n_init=int(obj["n_init"]),
                                n_ons=int(obj["n_ons"]), **arrays), "cached"
    except (OSError, ValueError, KeyError, TypeError):
        pass
    t0 = time.monotonic()
    ref = data_mod.true_spectrum(name, n_steps=int(config.lyap_steps), transient=int(config.lyap_transient),
                                 n_init=1, substeps=4, qr_every=int(config.lyap_qr_every))
    took = f"{time.monotonic() - t0:.0f} s"
    obj = {f: None if getattr(ref, f) is None else np.asarray(getattr(ref, f), dtype=float).tolist()
           for f in _SPECTRUM_FIELDS}
    obj.update(dt=float(ref.dt), n_steps=int(ref.n_steps), n_init=int(ref.n_init), n_ons=int(ref.n_ons))
    try:
        atomic_write_bytes(path, json.dumps(obj).encode())
    except WriteError:
        pass
    return ref, took


def check_batch_memory(model, t_gen: int, n_init: int, n_obs: int) -> None:
    """One-line ConfigError, before any work, when ``n_init`` free runs of ``t_gen`` steps would take more than
    ``MEMORY_SHARE`` of the free memory: per run and step the generated observations on the model's device, their
    float64 copy on the host, the scored copy and the state (an estimate from the shapes, as for ensembles)."""
    device, dtype = device_dtype(model)
    per_run = int(t_gen) * (dtype.itemsize * (n_obs + model.latent_dim) + 16 * n_obs)
    free = available_bytes(torch.device("cpu"))
    if free is not None and n_init * per_run > MEMORY_SHARE * free:
        if n_init == 1:   # one run (generate): its length is the setting
            raise ConfigError(f"n_steps = {t_gen} generated steps need about {per_run / 2**30:.1f} GiB, but the "
                              f"machine has {free / 2**30:.1f} GiB free; generate fewer")
        raise ConfigError(f"n_init = {n_init} free runs of t_gen = {t_gen} steps need about "
                          f"{n_init * per_run / 2**30:.1f} GiB, but the machine has {free / 2**30:.1f} GiB free; use "
                          f"n_init = {max(1, int(MEMORY_SHARE * free // per_run))} or fewer (or a shorter t_gen)")


def score_initial_conditions(model, true, *, t_gen: int, n_init: int = 10, seed: int = 0, x0=None,
                             n_bins: int = 30, alpha: float = 1e-5, sigma: float = 20.0, method: str = "bins",
                             legacy: bool = False, inputs=None) -> dict[str, Score]:
    """Free runs from ``n_init`` initial conditions, generated as one batch, each scored against ``true``;
    every metric summarised as median ± MAD (:func:`summarise`).

    Initial conditions: the forced states model.force(x) of ``x0`` (B, N) if given, else of ``n_init``
    points of ``true`` drawn with ``np.random.default_rng(seed)``. Generation is
    :func:`dsrecon.models.free_run` on the model's device with z0 of shape (B, M): one ``step`` per time
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
        gen = free_run(model, z0, int(t_gen), inputs=s_t).cpu().numpy().astype(np.float64)  # (T, B, N)
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


def check_model_and_data(model, data, what: str = "data") -> None:
    """One-line errors, before any work, for what the public analysis functions cannot score: ``data`` that is not
    a dataset from ds.load, an :class:`Ensemble` (its members are the models), or a model observing another
    number of channels than ``data`` has (instead of a matrix-shape error from inside the model)."""
    data_mod.check_dataset(data, what, attrs=("dt",))
    if isinstance(model, Ensemble):
        raise ConfigError("an Ensemble is K models: score one of them, e.g. ens.members[k] (run.model is the member "
                          "a fit kept)")
    if not hasattr(model, "obs_dim") or not hasattr(model, "force"):
        raise ConfigError(f"model must be a dsrecon model (PLRNN, ShallowPLRNN, RNN, LSTM, GRU), got "
                          f"{type(model).__name__}")
    if model.obs_dim != data.sizes["channel"]:
        raise DataError(f"{what}: {data.sizes['channel']} channels, but the model observes {model.obs_dim}")


def generate(model, n_steps: int, *, like: xr.Dataset, x0=None, inputs=None) -> xr.Dataset:
    """Free run of ``n_steps`` steps as an ``xr.Dataset`` with the dims and attrs of ``like``.

    The initial latent state is the forced state of ``x0`` (default: the first sample of ``like``).
    Values are in the same (standardized) units as ``like``; see :func:`dsrecon.data.to_physical`.
    A driven model (``input_dim = K``) reads ``inputs`` (n_steps, K), default :func:`input_series` of
    ``like``: its inputs from its first sample on (the step from x_t reads s_t), continued when they are a
    periodic forcing; the result then carries them as ``s``. Raises DataError when the model and ``like``
    disagree about inputs, or when non-periodic inputs are shorter than ``n_steps``.
    """
    check_setting(is_int(n_steps, 1), f"n_steps must be an integer >= 1, got {n_steps!r}")
    check_model_and_data(model, like, "like")
    check_batch_memory(model, int(n_steps), 1, like.sizes["channel"])
    if x0 is not None and np.size(x0) != model.obs_dim:
        raise DataError(f"x0 must be one observation of the model's {model.obs_dim} channels, got shape "
                        f"{np.shape(x0)}")
    if inputs is None:
        s = input_series(model, like, n_steps, what="data given as like")
    else:
        s = check_inputs(model, np.asarray(inputs, dtype=float).reshape(len(inputs), -1), what="the inputs given")
        check_covers(s, n_steps, what="the inputs given")
        s = s[:n_steps]
    device, _ = device_dtype(model)
    first = data_mod.as_array(like if x0 is None else np.atleast_2d(x0))[0]
    with torch.no_grad():
        z0 = model.force(torch.as_tensor(first, dtype=torch.float32, device=device)[None])[0]
        s_t = None if s is None else torch.as_tensor(s, dtype=z0.dtype, device=device)
        x = free_run(model, z0, n_steps, inputs=s_t).cpu().numpy().astype(np.float64)
    note = {} if s is None else {"inputs": "given" if inputs is not None else "like's s (continued if periodic)"}
    return generated_dataset(x, like, type(model).__name__, s=s, note=note)


def generated_dataset(x: np.ndarray, like: xr.Dataset, model_name: str, *, s: np.ndarray | None = None,
                      note: dict | None = None) -> xr.Dataset:
    """A generated series (T, N) as an ``xr.Dataset`` with the dims and attrs of ``like``, its provenance
    extended by a "generate" step (and the inputs ``s`` that drove it, if any)."""
    attrs = {k: v for k, v in like.attrs.items() if k != "n_train"}
    attrs["provenance"] = json.dumps(json.loads(like.attrs.get("provenance", "[]")) + [
        {"step": "generate", "n_steps": int(len(x)), "model": model_name, **(note or {})}])
    names = None
    if s is not None:
        names = (list(map(str, like["input"].values)) if "input" in like.coords and like.sizes["input"] == s.shape[1]
                 else [f"s{k}" for k in range(s.shape[1])])
    return data_mod._make_dataset(x, dt=like.attrs["dt"], dims=like["channel"].values, attrs=attrs, s=s, inputs=names)


def model_spectrum(model, data: xr.Dataset, config: EvalConfig = EvalConfig(), *, k: int | None = None,
                   n_steps: int | None = None, reference=None, seed: int = 0) -> dict:
    """The model's Lyapunov spectrum by the one recipe of ``dsrecon eval`` (and a fit's scores) and
    ``dsrecon lyap RUN``: QR (:func:`dsrecon.evaluation.lyapunov_scores`, Benettin et al. 1980) from
    ``config.lyap_n_init`` forced states at random samples of the test split (drawn with ``seed``), the first
    ``k`` exponents (default ``config.lyap_k``, at most the latent dimension), ``config.lyap_transient`` steps
    discarded, then ``n_steps`` (default ``config.lyap_steps``) averaged with a QR step every
    ``config.lyap_qr_every``; per time unit with the data's dt. A driven model reads the inputs that follow each
    start (continued when they are a periodic forcing).

    Returns {"lambda_max", "spectrum", "D_KY"} Scores against ``reference`` (a spectrum, a MaxLyapunov or a
    number); raises a one-line DataError when the test inputs are too short for the run. The same model,
    data, config and seed give the same numbers bit for bit, whichever command asks.
    """
    check_model_and_data(model, data)
    _, test = data_mod.train_test_split(data)
    x_test = data_mod.as_array(test)
    n_steps = int(config.lyap_steps if n_steps is None else n_steps)
    n_total = int(config.lyap_transient) + n_steps
    s = extend_inputs(model_inputs(model, test, what="the test split"), n_total)
    idx, windows = starts_with_inputs(s, len(x_test), n_total, int(config.lyap_n_init), seed)
    if not len(idx):
        raise DataError(f"the model's test inputs cover {len(s)} steps, fewer than the {n_total} of its Lyapunov "
                        f"spectrum (eval.lyap_transient + steps); lower eval.lyap_steps")
    with torch.no_grad():
        device, dtype = device_dtype(model)
        z0 = model.force(torch.as_tensor(x_test[idx], dtype=dtype, device=device))
    k = min(int(config.lyap_k if k is None else k), int(model.latent_dim))
    return lyapunov_scores(model, dt=float(data.attrs["dt"]), reference=reference, k=k, n_steps=n_steps,
                             transient=int(config.lyap_transient), qr_every=int(config.lyap_qr_every), z0=z0,
                             seed=seed, inputs=windows)


def evaluate(model, data: xr.Dataset, config: EvalConfig = EvalConfig(), *, noise_floor_seed: int | None = None,
             n_init: int = 1, legacy: bool = True, prediction: bool = True, lyapunov_k: int | str | None = "config",
             reference_spectrum=None, seed: int = 0, full_test="auto"):
    """Score a free run of ``config.t_gen`` steps against the test split of ``data``.

    Returns (metrics dict, generated xr.Dataset). The metrics dict holds the plain numbers under their
    names ("D_stsp", "D_H", "PSC"; with ``legacy`` also "D_stsp_legacy", "D_H_legacy"; "PE" = PE(25),
    "VPT" in Lyapunov times of the card's reference λ_max, "model_lambda_max" and "model_D_KY") and every
    :class:`dsrecon.metrics.Score` in full under "scores" (variant, T_gen, number of initial conditions,
    reason, curves). D_stsp uses ``method="auto"`` (:func:`dsrecon.metrics.auto_method`: bins below 6
    dimensions when the test split fills its occupied cells with ≥ 5 points on average, else the Gaussian
    mixture). Every score covers the whole free run (D_H and PSC average the spectra of test-length chunks).

    Every run gets ``"dynamics"``: the verdict of the free run's last 20 % (diverged, fixed point, cycle with
    ``period``, irregular; :func:`dsrecon.metrics.dynamics_verdict`, with the model's λ_max when computed)
    and the test split's own verdict under ``"data"``; ``"status"`` is "failed" (``"status_reason"`` says
    why) for a diverged run, one collapsed to a fixed point while the data are not, one whose tail is shrunk or
    inflated (std or range outside 1/5..5 of the data's in a channel) or misplaced (density overlap below 0.1;
    ``"dynamics"["size"]``, :func:`dsrecon.verdicts.size_verdict`), or a cycle where the data are irregular
    (:func:`dsrecon.verdicts.run_status`), whatever its scores; else "ok". ``"dynamics"["lyapunov_note"]`` says
    why the model's λ_max disagrees with the tail verdict, when it does. On a card with equations (kind "ode")
    the model's spectrum is compared with the true one (:func:`card_reference_spectrum`, once per process). With a noise floor,
    ``"trivial_baseline"`` (D_stsp of a constant at the test mean, D_H of the shuffled test split) and
    ``"informative"`` per score: False when the floor is ≥ half the trivial score
    (:func:`dsrecon.metrics.informative`), said in ``"reasons"``.

    ``noise_floor_seed``: the same scores between the test split and an independent true trajectory of
    the same length (:func:`dsrecon.evaluation.noise_floor`), so a number can be read against what a perfect
    model would get; with ``n_init`` > 1, min(n_init, 5) trajectories (seeds noise_floor_seed, +1, ...) and
    their median, the MAD under "noise_floor_mad". ``n_init`` > 1: also free runs from that many initial conditions (forced states of
    test points drawn with ``seed``), generated as one batch, as median ± MAD under
    "initial_conditions". ``prediction``: PE(n) for n = 1..25 and the valid prediction time (threshold
    0.5; needs the card's ``lambda_ref``). ``lyapunov_k``: the first k exponents of the model by
    :func:`model_spectrum` (``"config"``: ``config.lyap_k``; the recipe of ``dsrecon lyap RUN``: QR, 1000 steps
    after 200 of warm-up, QR every 5 steps, from 4 forced test states, all set in EvalConfig) against
    ``reference_spectrum`` (e.g. ``dsrecon.data.true_spectrum(name)``) or else the card's λ_max; None skips it.
    ``full_test``: for a partially observed system, the full state (T_test, N_full) at the times of the test
    split; adds "D_stsp_full", "D_H_full", "PSC_full" (:func:`dsrecon.evaluation.score_partially_observed`:
    latents of the free run regressed onto the first 10 full observations, "How to train RNNs on chaotic
    data" App. A.6.3). ``"auto"`` (default): for a simulated card with ``observe`` (and no forcing, embedding,
    preprocessing or noise) the full orbit is integrated again (same seed and transient; standardized on the
    train split) and used after checking that its observed channels reproduce the data; None: never.

    A driven model (``input_dim > 0``) reads the test split's inputs everywhere it runs: the free run of
    T_gen steps from test[0] (:func:`generate`; inputs continued past the split when they are a periodic
    forcing, else T_gen must fit in it), PE and VPT (s_t, s_{t+1}, ... from each start), the Lyapunov
    spectrum (the inputs that follow each of its 4 starts, the spectrum of the driven, non-autonomous
    map) and the runs from ``n_init`` initial conditions (their own input windows).
    """

    def auto_full_test():
        try:
            c = data_mod.card(data.attrs.get("card", data.attrs.get("name")))
        except DsreconError:
            return None
        if ("observe" not in c or any(k in c for k in ("forcing", "embedding")) or c.get("preprocess")
                or float(data.attrs.get("noise", 0.0) or 0.0) or data.attrs.get("kind", "ode") != "ode"):
            return None
        if "transient" in data.attrs:
            c = {**c, "sampling": {**c["sampling"], "transient": int(data.attrs["transient"])}}
        n_train = int(data.attrs["n_train"])
        raw = data_mod.simulate_card(c, n_samples=int(data.sizes["time"]), seed=int(data.attrs["seed"]))
        full = (raw - raw[:n_train].mean(0)) / raw[:n_train].std(0)
        idx = [list(system_dims(c["system"])).index(d) for d in c["observe"]]
        obs = (raw[:, idx] - np.asarray(data.attrs["mean"])) / np.asarray(data.attrs["std"])
        if not np.allclose(obs, data_mod.as_array(data), atol=1e-6):
            log.warning("evaluate: the re-integrated full orbit does not reproduce the observed data; "
                        "no full-state scores")
            return None
        return full[n_train:]

    check_model_and_data(model, data)
    if not isinstance(config, EvalConfig):
        raise ConfigError(f"config must be an EvalConfig, got {type(config).__name__}; e.g. "
                          f"config=ds.EvalConfig(t_gen=20000)")
    check_setting(is_int(n_init, 1), f"n_init must be an integer >= 1, got {n_init!r}")
    t0 = time.monotonic()
    _, test = data_mod.train_test_split(data)
    if n_init > 1:   # before the work: the free runs from n_init starts are one batch in memory
        check_batch_memory(model, int(config.t_gen), int(n_init), int(test.sizes["channel"]))
    gen = generate(model, config.t_gen, like=test)
    s_test = model_inputs(model, test, what="the test split")   # (T_test, K) or None
    s_long = extend_inputs(s_test, int(config.t_gen))   # for runs that start late in the split
    kw = dict(n_bins=config.n_bins, alpha=config.alpha, sigma=config.sigma, method="auto", legacy=legacy)
    scores = dict(M.score_all(test, gen, **kw))
    metrics = {k: float(v.value) for k, v in scores.items()}
    metrics["T_gen"] = int(config.t_gen)
    metrics["T_test"] = int(test.sizes["time"])
    x_test = data_mod.as_array(test)
    lam_ref = float(data.attrs.get("lambda_ref", float("nan")))
    dt = float(data.attrs["dt"])
    if prediction:
        scores["PE"] = prediction_error(model, x_test, n_steps=25, inputs=s_test)
        metrics["PE"] = float(scores["PE"].value)
        if math.isfinite(lam_ref) and lam_ref > 0:
            scores["VPT"] = valid_prediction_time(model, x_test, lambda_max=lam_ref, dt=dt, inputs=s_test)
            metrics["VPT"] = float(scores["VPT"].value)
    ly, ref_note = None, ""
    if lyapunov_k is not None:
        ref = reference_spectrum
        if ref is None:   # a card with equations: its true spectrum (issue 23: no red nan on the Lorenz card)
            ref, ref_note = card_reference_spectrum(data, config)
        if ref is None:
            ref = lam_ref if math.isfinite(lam_ref) else None
        try:
            ly = model_spectrum(model, data, config, k=None if lyapunov_k == "config" else int(lyapunov_k),
                                reference=ref, seed=seed)
        except DataError as err:   # inputs too short for the spectrum's run: the other scores stand
            log.warning("evaluate: no model spectrum: %s", err)
    if ly is not None:
        if ref_note and not (ly["spectrum"].reason or "").startswith("model spectrum failed"):
            sp = ly["spectrum"]
            if math.isfinite(sp.value):   # compared: say with what
                ly["spectrum"] = replace(sp, variant={**sp.variant, "reference": ref_note})
            else:                         # nothing to compare with: a note, not a failure
                ly["spectrum"] = replace(sp, reason=ref_note, extra={**sp.extra, "note_only": True})
        for name, sc in ly.items():
            scores[f"model_{name}"] = sc
        metrics["model_lambda_max"] = float(ly["lambda_max"].value)
        metrics["model_D_KY"] = float(ly["D_KY"].value)
    # what the free run does at its end, against what the data do (issue 15): a collapsed or diverged run fails;
    # and how large its tail is next to the data (issue 23): shrunk, inflated, misplaced or periodic fails too
    lam_model = metrics.get("model_lambda_max")
    dyn = M.dynamics_verdict(gen, test, lambda_max=lam_model)
    data_dyn = M.dynamics_verdict(test, test, tail_fraction=1.0)
    size = size_verdict(gen, test)
    status, status_reason = run_status(dyn, data_dyn, size)
    lam_se = ly["lambda_max"].spread if ly is not None else None
    lam_note = lyapunov_note(dyn, lam_model, lam_se)
    metrics["dynamics"] = {**dyn.to_dict(), "data": data_dyn.to_dict(), "size": size.to_dict()}
    if lam_note:
        metrics["dynamics"]["lyapunov_note"] = lam_note
    metrics["status"] = status
    if status_reason:
        metrics["status_reason"] = status_reason
    if n_init > 1:
        ics = {}
        if s_long is not None:   # starts whose t_gen inputs are available; their input windows
            starts, windows = starts_with_inputs(s_long, len(x_test), int(config.t_gen), n_init, seed)
            if not len(starts):
                raise DataError(f"n_init = {n_init}: the test inputs cover {len(s_long)} steps, fewer than T_gen = "
                                f"{config.t_gen}; use a shorter --t-gen")
            ics = dict(x0=x_test[starts], inputs=windows)
        many = score_initial_conditions(model, test, t_gen=config.t_gen, n_init=n_init, seed=seed,
                                          n_bins=config.n_bins, alpha=config.alpha, sigma=config.sigma, method="auto",
                                          **ics)
        metrics["initial_conditions"] = {k: {"median": v.value, "mad": v.spread, "n_init": v.n_init,
                                             "per_init": v.extra["per_init"]} for k, v in many.items()}
        for k, v in many.items():
            scores[f"{k}_ics"] = v
    if isinstance(full_test, str) and full_test == "auto":
        full_test = auto_full_test()
    if full_test is not None:
        part = score_partially_observed(model, x_test, data_mod.as_array(full_test, what="full_test"),
                                          t_gen=config.t_gen, n_fit=10, n_bins=config.n_bins, alpha=config.alpha,
                                          sigma=config.sigma, method="auto", inputs=s_long)
        for k, v in part.items():
            scores[f"{k}_full"] = v
            metrics[f"{k}_full"] = float(v.value)
    metrics["variants"] = {k: v.variant for k, v in scores.items()}
    metrics["reasons"] = {k: v.reason for k, v in scores.items() if v.reason}
    metrics["scores"] = {k: v.to_dict() for k, v in scores.items()}
    period = f" (period {dyn.period} steps)" if dyn.period else ""
    metrics["reasons"]["dynamics"] = (f"{dyn.verdict}{period}: {dyn.reason}; the data: {data_dyn.verdict}; size: "
                                      f"{size.reason}" + (f"; {lam_note}" if lam_note else "")
                                      + (f"; FAILED: {status_reason}" if status_reason else ""))
    if noise_floor_seed is not None:
        # a recording's floor is a block bootstrap of its training split; min 3 resamples for a spread
        n_floor = min(max(1, int(n_init)), 5) if data.attrs.get("kind", "ode") in ("ode", "dde") else 3
        seeds = [int(noise_floor_seed) + i for i in range(n_floor)]
        floor = noise_floor(data, config.t_gen, seeds=seeds, n_bins=config.n_bins,
                              alpha=config.alpha, sigma=config.sigma, method="auto", legacy=legacy)
        metrics["noise_floor"] = {k: float(v.value) for k, v in floor.items()}
        metrics["noise_floor"]["seed"] = int(noise_floor_seed)
        if len(seeds) > 1:
            metrics["noise_floor"]["seeds"] = seeds
            metrics["noise_floor_mad"] = {k: v.spread for k, v in floor.items()}
        if "floor" in floor["D_stsp"].variant:
            metrics["noise_floor"]["source"] = floor["D_stsp"].variant["floor"]
        # is a score able to tell at all? its floor against a trivial model's score (metrics.informative)
        base = M.trivial_baselines(test, config.t_gen, n_bins=config.n_bins, alpha=config.alpha,
                                   sigma=config.sigma, method="auto", seed=seed)
        metrics["trivial_baseline"] = {k: float(v.value) for k, v in base.items()}
        metrics["informative"] = {}
        for k, b in base.items():
            ok, why = M.informative(float(floor[k].value), float(b.value))
            metrics["informative"][k] = ok
            if not ok:
                metrics["reasons"][k] = "; ".join(r for r in (metrics["reasons"].get(k, ""), why) if r)
                metrics["scores"][k]["extra"]["uninformative"] = why
    metrics["eval_seconds"] = time.monotonic() - t0
    return metrics, gen
