"""One reconstruction end to end: load -> λ_max -> τ -> fit -> generate -> score -> run directory.

The Python API (``dsrecon.fit``, ``dsrecon.generate``, ``dsrecon.evaluate``) and the CLI's
``dsrecon fit`` both go through these functions; the CLI adds only argument parsing and printing.

A dataset whose input variable ``s`` is not among its observed channels (the forced Duffing oscillator
loaded with ``forcing="input"``) drives the model: :func:`fit_run` builds it with ``input_dim = K``,
training reads the aligned input windows, and generation reads the test split's inputs, continued past
their end when they are a periodic forcing (:func:`input_series`).
"""
from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from . import data as data_mod
from .config import SHPLRNN_CLIPPED, EvalConfig, ModelConfig, RunConfig, TrainConfig, model_sizes
from .errors import ConfigError, DataError, DsreconError
from .lyapunov import ForcingInterval, MaxLyapunov, forcing_interval
from .models import generate as generate_latent
from .runs import WriteError, load_model, new_run_dir, package_versions, save_torch, write_json
from .train import FitResult, Interrupted, check_method, fit as train_fit, uses_tau

log = logging.getLogger("dsrecon")

# model-config fields that only some architectures take (the others ignore them only at their defaults)
_ARCH_FIELDS = ("a_init", "w_scale", "hidden_dim", "clipped", "g")


def build_model(cfg: ModelConfig, obs_dim: int, *, seed: int = 0, method: str = "stf",
                input_dim: int = 0) -> torch.nn.Module:
    """The model named by ``cfg.kind`` with the configured hyperparameters.

    ``method="id-tf"`` builds it with the identity observation (x = the first N latents). A
    model-specific field set away from its default for an architecture that has no such parameter is a
    ConfigError (e.g. ``model.clipped=true`` with ``--model lstm``).
    """
    import inspect

    from .models import MODELS

    if cfg.kind not in MODELS:
        raise ConfigError(f"unknown model {cfg.kind!r}; available: {', '.join(sorted(MODELS))}")
    cls = MODELS[cfg.kind]
    accepted = inspect.signature(cls).parameters
    kw = dict(input_dim=input_dim, ridge=cfg.ridge, keep_unobserved=cfg.keep_unobserved,
              learn_observation=cfg.learn_observation and method != "id-tf", seed=seed)
    defaults = ModelConfig()
    latent_dim, hidden_dim = model_sizes(cfg, obs_dim)   # sizes the config leaves open, chosen from the data
    for name in _ARCH_FIELDS:
        value = hidden_dim if name == "hidden_dim" else getattr(cfg, name)
        if name == "clipped" and value is None and name in accepted:
            value = SHPLRNN_CLIPPED
        if name in accepted:
            if value is not None:
                kw[name] = value
        elif value != getattr(defaults, name) and not (name == "clipped" and value is False):   # False: unclipped,
            #                                                                  what every older config.json says
            raise ConfigError(f"model.{name} does not apply to --model {cfg.kind}; it is a parameter of "
                              f"{', '.join(k for k, c in MODELS.items() if name in inspect.signature(c).parameters)}")
    if obs_dim > (latent_dim or obs_dim):
        raise ConfigError(f"latent_dim {latent_dim} is smaller than the number of observed channels ({obs_dim}); "
                          f"forcing needs at least one latent unit per channel: use --latent-dim >= {obs_dim}")
    return cls(obs_dim, latent_dim, **kw)


def external_inputs(data) -> np.ndarray | None:
    """The external input series s (T, K) of a dataset that drives a model, or None.

    A dataset's ``s`` is an external input unless its channels are also observed in ``x``: the forced
    Duffing oscillator with ``forcing="phase"`` carries ``s`` as a copy of its observed cos/sin channels
    (an autonomous model fits it), with ``forcing="input"`` x = (x, v) and ``s`` must drive the model.
    """
    if not isinstance(data, xr.Dataset) or "s" not in data:
        return None
    names = [str(v) for v in data["input"].values] if "input" in data.coords else []
    if names and set(names) <= {str(v) for v in data["dim"].values}:
        return None
    return np.asarray(data["s"].values, dtype=float).reshape(data.sizes["time"], -1)


def model_inputs(model, data, what: str = "data") -> np.ndarray | None:
    """The inputs (T, K) that drive ``model`` on ``data`` (None for an autonomous model on data without
    external inputs). Raises a one-line DataError when they disagree: a driven model (``input_dim > 0``)
    on data without ``s`` or with another number of inputs, or data with external inputs and a model built
    without any (``input_dim = 0``)."""
    K = int(getattr(model, "input_dim", 0) or 0)
    s = external_inputs(data)
    if K:
        if s is None and isinstance(data, xr.Dataset) and "s" in data:
            s = np.asarray(data["s"].values, dtype=float)   # an observed phase may also drive a model
        if s is None:
            raise DataError(f"the model is driven by {K} external inputs (input_dim={K}) but the {what} carry no "
                            f"input variable s; load data with inputs (e.g. dsrecon.load('duffing', "
                            f"forcing='input')) or build the model with input_dim=0")
        if s.shape[1] != K:
            raise DataError(f"the {what} carry {s.shape[1]} external inputs but the model reads {K} "
                            f"(input_dim={K}); build it with input_dim={s.shape[1]}")
        return s
    if s is not None:
        names = ", ".join(map(str, data["input"].values)) if "input" in data.coords else f"{s.shape[1]} channels"
        raise DataError(f"the {what} carry an external input s ({names}) but the model was built with input_dim=0; "
                        f"build it with input_dim={s.shape[1]} (dsrecon fit does this), or load the data with the "
                        f"forcing observed (forcing='phase')")
    return None


PHASE_TOL = 1e-6   # rad: largest deviation of a periodic input's phase step from its mean (float64 data: ~1e-12)


def continue_periodic(s: np.ndarray, n_steps: int) -> np.ndarray | None:
    """``s`` (T, K) continued to ``n_steps`` rows if it is a periodic forcing, else None.

    The rule: the channels come in pairs (cos θ, sin θ) of unit norm (to 1e-6) whose phase θ advances by
    the same angle Δ every step (to :data:`PHASE_TOL` rad); for the forced Duffing oscillator θ = ω t and
    Δ = ω dt (card: ω = 1.4, dt = 0.17, Δ = 0.238). Such an input is continued exactly, pair by pair,
    by θ_{T−1+k} = θ_{T−1} + kΔ. Anything else (a recorded input, noise) has no continuation: None.
    """
    s = np.asarray(s, dtype=float)
    T, K = s.shape
    if n_steps <= T:
        return s[:n_steps]
    if K % 2 or T < 3:
        return None
    out = [s]
    k = np.arange(1, n_steps - T + 1)
    for j in range(0, K, 2):
        u = s[:, j] + 1j * s[:, j + 1]
        if np.max(np.abs(np.abs(u) - 1.0)) > 1e-6:
            return None
        steps = np.angle(u[1:] / u[:-1])
        delta = float(np.mean(steps))
        if np.max(np.abs(steps - delta)) > PHASE_TOL:
            return None
        theta = np.angle(u[-1]) + k * delta
        out.append(np.stack([np.cos(theta), np.sin(theta)], axis=1))
    tail = np.concatenate(out[1:], axis=1) if K > 2 else out[1]
    return np.concatenate([s, tail], axis=0)


def extend_inputs(s: np.ndarray | None, n_extra: int) -> np.ndarray | None:
    """``s`` continued by ``n_extra`` steps when it is a periodic forcing (:func:`continue_periodic`), else ``s``
    itself; None stays None. Runs that start late in a split read their inputs from this."""
    if s is None:
        return None
    longer = continue_periodic(s, len(s) + int(n_extra))
    return s if longer is None else longer


def starts_with_inputs(s: np.ndarray | None, n_data: int, window: int, n: int, seed: int):
    """``n`` random starts in [0, n_data) and, for a driven model, the input windows (window, n, K) that follow
    them; with inputs the starts are drawn only where a whole window of inputs exists. Returns (starts,
    windows or None); ``starts`` is empty when no start fits."""
    hi = n_data if s is None else min(n_data, len(s) - int(window) + 1)
    if hi < 1:
        return np.empty(0, dtype=int), None
    idx = np.random.default_rng(seed).integers(0, hi, n)
    return idx, None if s is None else s[idx[None, :] + np.arange(int(window))[:, None]]


def input_series(model, data, n_steps: int, what: str = "test split") -> np.ndarray | None:
    """The external inputs (n_steps, K) of a free run of ``model`` that starts at ``data``'s first sample:
    ``data``'s inputs, continued by :func:`continue_periodic` when ``n_steps`` exceeds them; None for an
    autonomous model. Raises a one-line DataError when they cannot cover ``n_steps``."""
    s = model_inputs(model, data, what)
    if s is None:
        return None
    out = continue_periodic(s, int(n_steps))
    if out is None:
        raise DataError(f"T_gen = {n_steps} steps is longer than the {len(s)} steps of external inputs in the {what}, "
                        f"and they are not a periodic forcing that can be continued; use --t-gen {len(s)} or "
                        f"less (EvalConfig(t_gen=...)), or give longer inputs")
    return out


def model_from_file(path) -> torch.nn.Module:
    """Rebuild a model from ``model.pt`` (state_dict + constructor arguments), weights_only; one-line
    DataErrors for a missing, corrupt or mismatched file (:func:`dsrecon.runs.load_model`)."""
    return load_model(path)


def choose_tau(tau, train: xr.Dataset, method: str = "stf",
               gtf_alpha="auto") -> tuple[int | None, ForcingInterval | None]:
    """τ in steps and how it was chosen: an explicit positive integer (None), or ``"auto"``.

    ``"auto"`` is :func:`dsrecon.lyapunov.forcing_interval` of the training data themselves: round(ln 2 /
    λ_max per step) when the data diverge exponentially ("How to train RNNs on chaotic data" §4.1 Eq. 17,
    λ_max by Rosenstein's method), else the first minimum of the average mutual information, else the
    saturation lag of the divergence curve; data with no structure (white noise, constant) are refused.
    For data with external inputs (a driven system), the estimate uses the observations joined with the
    inputs, the state of the driven system. ``bptt-clip`` gets (None, None); ``gtf`` with
    ``gtf_alpha="auto"`` gets τ (it sets the floor of the adaptive α, see :func:`dsrecon.train.fit`), with
    a fixed α or ``tau=None`` (None, None).
    """
    estimate_only = method == "gtf" and tau == "auto" and not uses_tau(method, gtf_alpha)
    if (not uses_tau(method, gtf_alpha) and not estimate_only) or (method == "gtf" and tau is None):
        return None, None   # bptt-clip, gtf without tau: no forcing interval
    if tau == "auto":
        s = external_inputs(train)
        # a driven system's state includes its forcing: without it, neighbours in (x, v) are not
        # neighbours in state space (Duffing: 0.67 per time unit instead of the QR value 0.128)
        x = train if s is None else np.concatenate([data_mod.as_array(train), s], axis=1)
        try:
            fi = forcing_interval(x, dt=float(train.attrs["dt"]))
        except DataError as err:
            msg = str(err).split(", or pass --tau N")[0] if estimate_only else str(err)   # --tau would be ignored
            raise DataError(f"--tau auto: {msg}") from None
        # gtf with a fixed alpha (the default fit) uses no tau, but the estimate still checks that the data have
        # structure (white noise is refused here) and reports λ_max and τ_pred (docs/defaults.md, "Real recordings")
        return (None if estimate_only else fi.tau_steps), fi
    if isinstance(tau, bool) or not isinstance(tau, (int, np.integer)) or tau < 1:
        raise ConfigError(f"tau must be 'auto' or a positive integer number of steps, got {tau!r}")
    return int(tau), None


@dataclass
class Run:
    """A trained reconstruction: the model, its τ, λ_max of the data, and (after evaluate) scores."""

    model: torch.nn.Module
    tau: int
    lyapunov: MaxLyapunov | None
    result: FitResult
    config: RunConfig | TrainConfig   # the whole RunConfig from fit_run; the TrainConfig from fit
    run_dir: Path | None = None
    metrics: dict | None = None


def fit(model, data: xr.Dataset, *, tau="auto", config: TrainConfig | None = None,
        run_dir=None, progress: bool = True) -> Run:
    """Fit ``model`` to the training split of ``data`` by sparsely forced BPTT.

    ``tau="auto"`` estimates λ_max from the training split and uses τ = round(ln2 / λ_step).
    ``run_dir``: where ``checkpoints/last.pt`` goes (None: no checkpoints). A model built with
    ``input_dim = K`` is driven by the data's input variable ``s`` (see :func:`model_inputs`).
    ``model`` may be an :class:`dsrecon.ensemble.Ensemble`: its members train in one pass (member k samples
    with seed ``config.seed + k``); ``run.model`` is then the best member by held-out validation and
    ``run.result.members`` holds every member's FitResult (docs/ensembles.md).
    """
    train, _ = data_mod.train_test_split(data)
    x = data_mod.as_array(train, what="training data")
    if x.shape[1] != model.obs_dim:
        raise DataError(f"data have {x.shape[1]} channels but the model observes {model.obs_dim}")
    s = model_inputs(model, train, "training data")
    cfg = replace(config or TrainConfig(), tau=tau)
    tau_steps, fi = choose_tau(tau, train, cfg.method, cfg.gtf_alpha)
    lam = None if fi is None else fi.lam
    ck = None if run_dir is None else Path(run_dir) / "checkpoints" / "last.pt"
    res = train_fit(model, x, inputs=s, tau=tau_steps, config=cfg, checkpoint=ck, progress=progress)
    if res.members is not None:   # an Ensemble: the run's model is its best member by held-out validation
        from .ensemble import best_member

        return Run(model=res.members[best_member(res)].model, tau=tau_steps, lyapunov=lam, result=res,
                   config=cfg, run_dir=None if run_dir is None else Path(run_dir))
    return Run(model=res.model, tau=tau_steps, lyapunov=lam, result=res,
               config=cfg, run_dir=None if run_dir is None else Path(run_dir))


def generate(model, n_steps: int, *, like: xr.Dataset, x0=None, inputs=None) -> xr.Dataset:
    """Free run of ``n_steps`` steps as an ``xr.Dataset`` with the dims and attrs of ``like``.

    The initial latent state is the forced state of ``x0`` (default: the first sample of ``like``).
    Values are in the same (standardized) units as ``like``; see :func:`dsrecon.data.to_physical`.
    A driven model (``input_dim = K``) reads ``inputs`` (n_steps, K), default :func:`input_series` of
    ``like``: its inputs from its first sample on (the step from x_t reads s_t), continued when they are a
    periodic forcing; the result then carries them as ``s``. Raises DataError when the model and ``like``
    disagree about inputs, or when non-periodic inputs are shorter than ``n_steps``.
    """
    if n_steps < 1:
        raise ConfigError(f"n_steps must be >= 1, got {n_steps}")
    if inputs is None:
        s = input_series(model, like, n_steps, what="data given as like")
    else:
        s = np.asarray(inputs, dtype=float).reshape(len(inputs), -1)
        K = int(getattr(model, "input_dim", 0) or 0)
        if not K or s.shape[1] != K or len(s) < n_steps:
            raise DataError(f"inputs of shape {s.shape} do not fit: the model reads {K} inputs (input_dim) and "
                            f"{n_steps} steps need {n_steps} rows" + ("; pass inputs=None" if not K else ""))
        s = s[:n_steps]
    device = next(iter(model.parameters()), torch.empty(0)).device
    first = data_mod.as_array(like if x0 is None else np.atleast_2d(x0))[0]
    with torch.no_grad():
        z0 = model.force(torch.as_tensor(first, dtype=torch.float32, device=device)[None])[0]
        s_t = None if s is None else torch.as_tensor(s, dtype=z0.dtype, device=device)
        x = generate_latent(model, z0, n_steps, inputs=s_t).cpu().numpy().astype(np.float64)
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
    return data_mod._make_dataset(x, dt=like.attrs["dt"], dims=like["dim"].values, attrs=attrs, s=s, inputs=names)


LYAPUNOV_STEPS = 1200   # transient + steps of evaluate's model spectrum (200 + 1000)


def evaluate(model, data: xr.Dataset, config: EvalConfig = EvalConfig(), *, noise_floor_seed: int | None = None,
             n_init: int = 1, legacy: bool = True, prediction: bool = True, lyapunov_k: int | None = 5,
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
    why) for a diverged run or one collapsed to a fixed point while the data are not
    (:func:`dsrecon.metrics.run_status`), whatever its scores; else "ok". With a noise floor,
    ``"trivial_baseline"`` (D_stsp of a constant at the test mean, D_H of the shuffled test split) and
    ``"informative"`` per score: False when the floor is ≥ half the trivial score
    (:func:`dsrecon.metrics.informative`), said in ``"reasons"``.

    ``noise_floor_seed``: the same scores between the test split and an independent true trajectory of
    the same length (:func:`dsrecon.metrics.noise_floor`), so a number can be read against what a perfect
    model would get; with ``n_init`` > 1, min(n_init, 5) trajectories (seeds noise_floor_seed, +1, ...) and
    their median, the MAD under "noise_floor_mad". ``n_init`` > 1: also free runs from that many initial conditions (forced states of
    test points drawn with ``seed``), generated as one batch, as median ± MAD under
    "initial_conditions". ``prediction``: PE(n) for n = 1..25 and the valid prediction time (threshold
    0.5; needs the card's ``lambda_ref``). ``lyapunov_k``: the first k exponents of the model (QR, 1000
    steps after 200 of warm-up, QR every 5 steps, from 4 forced test states) against ``reference_spectrum`` (e.g.
    ``dsrecon.lyapunov.true_spectrum(name)``) or else the card's λ_max; None skips it.
    ``full_test``: for a partially observed system, the full state (T_test, N_full) at the times of the test
    split; adds "D_stsp_full", "D_H_full", "PSC_full" (:func:`dsrecon.metrics.score_partially_observed`:
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
        from .systems import system_dims

        idx = [list(system_dims(c["system"])).index(d) for d in c["observe"]]
        obs = (raw[:, idx] - np.asarray(data.attrs["mean"])) / np.asarray(data.attrs["std"])
        if not np.allclose(obs, data_mod.as_array(data), atol=1e-6):
            log.warning("evaluate: the re-integrated full orbit does not reproduce the observed data; "
                        "no full-state scores")
            return None
        return full[n_train:]

    from . import metrics as M

    t0 = time.monotonic()
    _, test = data_mod.train_test_split(data)
    gen = generate(model, config.t_gen, like=test)
    s_test = model_inputs(model, test, "test split")   # (T_test, K) or None
    s_long = extend_inputs(s_test, max(int(config.t_gen), LYAPUNOV_STEPS))   # for runs that start late in the split
    kw = dict(n_bins=config.n_bins, alpha=config.alpha, sigma=config.sigma, method="auto", legacy=legacy)
    scores = dict(M.score_all(test, gen, **kw))
    metrics = {k: float(v.value) for k, v in scores.items()}
    metrics["T_gen"] = int(config.t_gen)
    metrics["T_test"] = int(test.sizes["time"])
    x_test = data_mod.as_array(test)
    lam_ref = float(data.attrs.get("lambda_ref", float("nan")))
    dt = float(data.attrs["dt"])
    if prediction:
        scores["PE"] = M.prediction_error(model, x_test, n_steps=25, inputs=s_test)
        metrics["PE"] = float(scores["PE"].value)
        if math.isfinite(lam_ref) and lam_ref > 0:
            scores["VPT"] = M.valid_prediction_time(model, x_test, lambda_max=lam_ref, dt=dt, inputs=s_test)
            metrics["VPT"] = float(scores["VPT"].value)
    idx, ly_inputs = starts_with_inputs(s_long, len(x_test), LYAPUNOV_STEPS, 4, seed)
    if lyapunov_k and not len(idx):
        log.warning("evaluate: the test inputs cover %d steps, fewer than the %d of the Lyapunov run; no model "
                    "spectrum", len(s_long), LYAPUNOV_STEPS)
    elif lyapunov_k:
        with torch.no_grad():
            p = next(iter(model.parameters()), torch.empty(0))
            z0 = model.force(torch.as_tensor(x_test[idx], dtype=p.dtype, device=p.device))
        ref = reference_spectrum if reference_spectrum is not None else (lam_ref if math.isfinite(lam_ref) else None)
        ly = M.lyapunov_scores(model, dt=dt, reference=ref, k=min(int(lyapunov_k), int(model.latent_dim)),
                               n_steps=1000, transient=200, qr_every=5, z0=z0, seed=seed, inputs=ly_inputs)
        for name, sc in ly.items():
            scores[f"model_{name}"] = sc
        metrics["model_lambda_max"] = float(ly["lambda_max"].value)
        metrics["model_D_KY"] = float(ly["D_KY"].value)
    # what the free run does at its end, against what the data do (issue 15): a collapsed or diverged run fails
    lam_model = metrics.get("model_lambda_max")
    dyn = M.dynamics_verdict(gen, test, lambda_max=lam_model)
    data_dyn = M.dynamics_verdict(test, test, tail_fraction=1.0)
    status, status_reason = M.run_status(dyn, data_dyn)
    metrics["dynamics"] = {**dyn.to_dict(), "data": data_dyn.to_dict()}
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
        many = M.score_initial_conditions(model, test, t_gen=config.t_gen, n_init=n_init, seed=seed,
                                          n_bins=config.n_bins, alpha=config.alpha, sigma=config.sigma, method="auto",
                                          **ics)
        metrics["initial_conditions"] = {k: {"median": v.value, "mad": v.spread, "n_init": v.n_init,
                                             "per_init": v.extra["per_init"]} for k, v in many.items()}
        for k, v in many.items():
            scores[f"{k}_ics"] = v
    if isinstance(full_test, str) and full_test == "auto":
        full_test = auto_full_test()
    if full_test is not None:
        part = M.score_partially_observed(model, x_test, data_mod.as_array(full_test, what="full_test"),
                                          t_gen=config.t_gen, n_fit=10, n_bins=config.n_bins, alpha=config.alpha,
                                          sigma=config.sigma, method="auto", inputs=s_long)
        for k, v in part.items():
            scores[f"{k}_full"] = v
            metrics[f"{k}_full"] = float(v.value)
    metrics["variants"] = {k: v.variant for k, v in scores.items()}
    metrics["reasons"] = {k: v.reason for k, v in scores.items() if v.reason}
    metrics["scores"] = {k: v.to_dict() for k, v in scores.items()}
    period = f" (period {dyn.period} steps)" if dyn.period else ""
    metrics["reasons"]["dynamics"] = (f"{dyn.verdict}{period}: {dyn.reason}; the data: {data_dyn.verdict}"
                                      + (f"; FAILED: {status_reason}" if status_reason else ""))
    if noise_floor_seed is not None:
        # a recording's floor is a block bootstrap of its training split; min 3 resamples for a spread
        n_floor = min(max(1, int(n_init)), 5) if data.attrs.get("kind", "ode") in ("ode", "dde") else 3
        seeds = [int(noise_floor_seed) + i for i in range(n_floor)]
        floor = M.noise_floor(data, config.t_gen, seeds=seeds, n_bins=config.n_bins,
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


# ------------------------------------------------------------------------------ the CLI's path
def fit_run(config: RunConfig | None, *, out=None, runs_root="runs", resume=None, quiet=False, echo=print,
            overwrite: bool = False) -> Run:
    """Everything ``dsrecon fit`` does, writing the run directory described in :mod:`dsrecon.runs`.

    Nothing is created before every check has passed: the data load, the model and method, τ (``"auto"``
    refuses data that do not look chaotic), the device and the series length. ``out``: the run directory
    (default a new ``runs_root/<dataset>-<model>-<timestamp>``); a folder holding a finished or interrupted
    run is refused unless ``overwrite`` (which replaces it), a non-empty folder that is not a run always.

    With ``resume`` (a run directory), its ``config.json`` is used and training continues from
    ``checkpoints/last.pt``; from ``config``, if given, only ``train.steps``, ``train.time_budget`` and
    ``train.device`` are taken (train a finished run longer, or elsewhere). Refused in one line: no checkpoint, a corrupt one or one of another
    architecture, a run that is already finished, data that changed since the run was trained.
    Raises :class:`dsrecon.train.Interrupted` (with ``run_dir``) on Ctrl-C, :class:`dsrecon.runs.WriteError`
    when a file cannot be written (the checkpoint on disk stays consistent: resume once fixed).
    """
    from .runs import check_writable_dir, data_fingerprint, open_run

    run = None
    if resume is not None:
        run = open_run(resume)
        cfg = run.config
        if config is not None:   # only the budget may change on resume
            cfg = cfg.replace(train=replace(cfg.train, steps=config.train.steps, time_budget=config.train.time_budget,
                                            device=config.train.device))
        run_dir = run.path
        if not run.checkpoint_path.exists():
            if run.finished or run.file("model.pt").exists():
                raise DataError(f"--resume {run_dir}: the run has no checkpoints/last.pt, so it cannot be resumed "
                                f"(its model.pt is kept); re-score it with `dsrecon eval {run_dir}`, or start a new fit")
            raise DataError(f"--resume {run_dir}: no checkpoints/last.pt there (the run stopped before its first "
                            f"checkpoint), so there is nothing to resume; start it again with --out {run_dir} "
                            f"--overwrite")
        data = run.load_data()   # refuses data changed since the run was trained
    else:
        cfg = config
        run_dir = None if out is None else Path(out)
        if run_dir is not None:
            _check_out(run_dir, overwrite)
        else:
            check_writable_dir(runs_root, "runs folder")
        data = data_mod.load_for(cfg.data)

    if run is not None:
        ck = run.checkpoint()
        done = int(ck["step"])
        if run.finished and (done >= cfg.train.steps or (cfg.train == run.config.train and run.metrics().get("stopped")
                                                         not in (None, "completed"))):
            raise DataError(f"--resume {run_dir}: the run is finished ({done} steps trained and scored), nothing to "
                            f"resume; train it longer with `dsrecon fit --resume {run_dir} --set train.steps=N` "
                            f"(N > {done}), or re-score it with `dsrecon eval {run_dir}`")

    # every check before anything is written
    lines: list[str] = []
    model, tau, fi = _prepare(cfg, data, lines.append if quiet else (lambda m: (lines.append(m), echo(m))))
    if run is not None:
        if cfg.train.ensemble > 1:
            from .ensemble import check_checkpoint

            check_checkpoint(model, ck, run.checkpoint_path)
        else:
            run.check_checkpoint_fits(model, ck)

    created, root_existed = False, Path(runs_root).exists()
    if run_dir is None:
        run_dir = new_run_dir(runs_root, cfg.data.name, cfg.model.kind)
        created = True
    elif not run_dir.exists():
        try:
            run_dir.mkdir(parents=True)
        except OSError as err:
            from .runs import _why

            raise WriteError(f"could not create {run_dir}: {_why(err)}") from None
        created = True
    elif overwrite and resume is None:
        _clear_run(run_dir)

    def remove_new_dir():
        """Nothing to resume was written: leave no half-written run directory (nor a runs/ made for it)."""
        shutil.rmtree(run_dir, ignore_errors=True)
        if out is None and resume is None and not root_existed and not any(Path(runs_root).iterdir()):
            os.rmdir(runs_root)

    info = {"config": cfg.to_dict(), "tau_steps": tau, "versions": package_versions(),
            "data_fingerprint": data_fingerprint(data)}
    if run is not None:
        info = {**run.info, "config": cfg.to_dict()}   # keeps the fingerprint (or its absence) of the run
    try:
        if run is None or cfg != run.config:
            write_json(run_dir / "config.json", info)
    except WriteError:
        if created:
            remove_new_dir()
        raise
    handler = logging.FileHandler(run_dir / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handler.handleError = lambda record: None   # a full disk: the next atomic write says so in one line, no traceback
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    ck_path = run_dir / "checkpoints" / "last.pt"
    try:
        for line in lines:
            log.info(line)
        return _fit_run(cfg, data, run_dir, resume is not None, quiet, echo, model, tau, fi)
    except Interrupted as err:
        err.run_dir = run_dir
        raise
    except KeyboardInterrupt:
        err = Interrupted(f"interrupted after training, while writing and scoring the run; the trained checkpoint "
                          f"is kept in {ck_path}")
        err.run_dir = run_dir
        raise err from None
    except (WriteError, OSError) as err:
        from .runs import _why

        msg = str(err) if isinstance(err, WriteError) else f"could not write in {run_dir}: {_why(err)}"
        if ck_path.exists():
            msg += f"; the run stays resumable: then `dsrecon fit --resume {run_dir}`"
        else:   # nothing to resume in it: leave no half-written run directory behind
            if created:
                log.removeHandler(handler)
                handler.close()
                remove_new_dir()
            msg += "; then run the same `dsrecon fit` again"
        raise WriteError(msg) from None
    finally:
        log.removeHandler(handler)
        handler.close()


def _score_members(res: FitResult, best: int, best_metrics: dict, data, cfg: RunConfig, note) -> dict:
    """``members`` (per member: seed, validation, status and the scores of :func:`evaluate`, called per member;
    the kept one's are ``best_metrics``) and ``ensemble`` (size, kept member, median ± MAD of D_stsp, D_H, PSC)
    for metrics.json, with the table in the log."""
    from .ensemble import median_mad

    rows = []
    for k, m in enumerate(res.members):
        sc = best_metrics if k == best else evaluate(m.model, data, cfg.eval)[0]
        rows.append({"member": k, "seed": cfg.train.seed + k, "kept": k == best,
                     "val_d_stsp": m.history["best_val_d_stsp"], "best_step": m.history["best_step"],
                     "status": m.stopped, **{n: sc.get(n) for n in ("D_stsp", "D_H", "PSC", "T_gen")},
                     "eval_status": sc.get("status")})
    summary = {n: median_mad([r[n] for r in rows]) for n in ("D_stsp", "D_H", "PSC", "val_d_stsp")}
    fmt = lambda v: "   -   " if v is None else f"{v:7.4f}"  # noqa: E731
    note("member  seed  val_D_stsp  D_stsp     D_H     PSC   status")
    for r in rows:
        note(f"{r['member']:>6} {r['seed']:>5}  {fmt(r['val_d_stsp'])}   {fmt(r['D_stsp'])} {fmt(r['D_H'])} "
             f"{fmt(r['PSC'])}   {r['status']}" + ("  (kept)" if r["kept"] else ""))
    note("median ± MAD over members: " + ", ".join(
        f"{n} {s['median']:.4f} ± {s['mad']:.4f}" for n, s in summary.items() if s["median"] is not None))
    return {"members": rows, "ensemble": {"size": len(rows), "kept_member": best, "kept_seed": cfg.train.seed + best,
                                          "median_mad": summary}}


def _check_out(run_dir: Path, overwrite: bool) -> None:
    """``--out``: a new or empty folder, or (with ``overwrite``) one holding a dsrecon run; one-line ConfigErrors
    otherwise, before any work."""
    from .runs import RUN_FILES, check_writable_dir

    check_writable_dir(run_dir, "--out")
    if not run_dir.is_dir():
        return
    foreign = sorted(p.name for p in run_dir.iterdir()
                     if p.name not in RUN_FILES and not p.name.endswith((".png", ".tmp")))
    if foreign:
        raise ConfigError(f"--out {run_dir} is a folder that is not a dsrecon run (it holds {foreign[0]!r}"
                          + (f" and {len(foreign) - 1} more" if len(foreign) > 1 else "")
                          + "); choose a new or empty folder")
    if overwrite:
        return
    if (run_dir / "model.pt").exists() or (run_dir / "metrics.json").exists():
        raise ConfigError(f"--out {run_dir} holds a finished run (model.pt, metrics.json); choose another --out, or "
                          f"pass --overwrite to replace it")
    if (run_dir / "checkpoints" / "last.pt").exists():
        raise ConfigError(f"--out {run_dir} holds an interrupted run; continue it with `dsrecon fit --resume {run_dir}`, "
                          f"or pass --overwrite to start it again")


def _clear_run(run_dir: Path) -> None:
    """--overwrite: remove the files of the run in ``run_dir`` (only dsrecon's names; _check_out saw no others)."""
    from .runs import RUN_FILES

    for p in run_dir.iterdir():
        if p.name in RUN_FILES or p.name.endswith((".png", ".tmp")):
            shutil.rmtree(p) if p.is_dir() else p.unlink()


def _prepare(cfg: RunConfig, data, note):
    """The checks and choices before a run directory exists: the model, the method, the device, the series
    length and τ. Returns (model, tau, how τ was chosen: a ForcingInterval, or None when set by hand or unused)."""
    from .train import check_lengths, resolve_device

    train, test = data_mod.train_test_split(data)
    note(f"dataset {data.attrs['name']} (card v{data.attrs['card_version']}): {data.attrs['description']}")
    note(f"  source: {data.attrs['source']}; parameters {data.attrs['parameters']}; seed {data.attrs['seed']}")
    note(f"  dt = {data.attrs['dt']}, train {train.sizes['time']} steps, test {test.sizes['time']} steps, "
         f"{data.sizes['dim']} channels {list(map(str, data['dim'].values))}, standardized on train")
    obs_dim = data.sizes["dim"]
    s_all = external_inputs(data)
    input_dim = 0 if s_all is None else s_all.shape[1]
    if input_dim:
        note(f"  external inputs s: {input_dim} channels {list(map(str, data['input'].values))} drive the model "
             f"(input_dim = {input_dim})")
    cfg.train.check_series(int(train.sizes["time"]), f"the training split of {data.attrs.get('name', cfg.data.name)}")
    model = build_model(cfg.model, obs_dim, seed=cfg.train.seed, method=cfg.train.method, input_dim=input_dim)
    K = cfg.train.ensemble
    if K > 1:   # members with seeds seed..seed+K-1, refused in one line when unsupported or too big for memory
        from .ensemble import Ensemble, check_memory

        check_memory(model, K, cfg.train, resolve_device(cfg.train.device))   # before K members are built
        model = Ensemble(model, K)
    check_method(model, cfg.train)  # bad model/method combinations fail before any work
    resolve_device(cfg.train.device)
    check_lengths(int(train.sizes["time"]), cfg.train)
    model_inputs(model, train, "training data")
    tau, fi = choose_tau(cfg.train.tau, train, cfg.train.method, cfg.train.gtf_alpha)
    if fi is not None:
        lam = fi.lam
        note(f"lambda_max from the training data: {lam.value:.4g} ± {lam.stderr:.2g} per time unit = "
             f"{lam.per_step:.4g} per step ({lam.method}, fit over lags {lam.fit_range[0]}..{lam.fit_range[1]}; reference "
             f"{data.attrs.get('lambda_ref', float('nan')):.3g})")
        if tau is None:   # gtf with a fixed alpha: the estimate checked the data and is reported, tau is unused
            note(f"tau_pred = {fi.tau_steps} steps ({fi.source.replace('_', ' ')}); gtf with a fixed alpha = "
                 f"{cfg.train.gtf_alpha} forces every step and uses no tau (--gtf-alpha auto takes tau_pred as its floor)")
        elif fi.source == "lambda_max":
            note(f"tau = round(ln 2 / lambda_step) = round({math.log(2) / lam.per_step:.2f}) = {tau} steps")
        else:
            note(f"tau = {tau} steps from {fi.source.replace('_', ' ')}: {fi.reason}")
    elif tau is not None:
        note(f"tau = {tau} steps (set by hand)")
    check_method(model, cfg.train, tau)
    note(f"model {cfg.model.kind}, method {cfg.train.method}"
         + (f", flossing k={cfg.train.floss_k} to {cfg.train.floss_target}" if cfg.train.floss_k else "")
         + (f", ensemble of {K} members (seeds {cfg.train.seed}..{cfg.train.seed + K - 1}) trained as one batched "
            f"model" if K > 1 else ""))
    return model, tau, fi


def _fit_run(cfg: RunConfig, data, run_dir: Path, resuming: bool, quiet: bool, echo, model, tau,
             fi: ForcingInterval | None) -> Run:
    from . import report

    say = (lambda *a: None) if quiet else echo

    def note(msg):
        log.info(msg)
        say(msg)

    train, test = data_mod.train_test_split(data)
    t_start = time.monotonic()
    lam = None if fi is None else fi.lam
    if lam is not None:
        write_json(run_dir / "lambda_max.json", {
            "value": lam.value, "per_step": lam.per_step, "dt": lam.dt, "fit_range": list(lam.fit_range),
            "intercept": lam.intercept, "lags": np.asarray(lam.lags).tolist(), "curve": np.asarray(lam.curve).tolist(),
            "emb_dim": lam.emb_dim, "delay": lam.delay, "theiler": lam.theiler, "method": lam.method,
            "stderr": lam.stderr, "chaotic": lam.chaotic, "reason": lam.reason,
            "tau_steps": fi.tau_steps, "tau_source": fi.source, "tau_reason": fi.reason})
    ck = run_dir / "checkpoints" / "last.pt"
    res = train_fit(model, data_mod.as_array(train), inputs=model_inputs(model, train, "training data"), tau=tau,
                    config=cfg.train, checkpoint=ck, resume=resuming, progress=not quiet)
    device = next(res.model.parameters()).device
    ens = res.members is not None
    if ens:   # the run's model is the best member by held-out validation; every member is scored below
        from .ensemble import best_member

        best = best_member(res)
        ens_res, res = res, res.members[best]
        note(f"ensemble of {len(ens_res.members)} members: kept member {best} (seed {cfg.train.seed + best}) by "
             f"held-out validation D_stsp")
    kept = (f"kept the model of step {res.history['best_step']} (validation D_stsp "
            f"{res.history['best_val_d_stsp']:.3f})" if res.history.get("best_step") else "kept the last state")
    note(f"training {res.stopped} after {res.steps_done} steps in {res.elapsed:.0f} s on {device}; {kept}")
    save_torch(run_dir / "model.pt", {"state_dict": {k: v.cpu() for k, v in res.model.state_dict().items()},
                                      "config": {"kind": cfg.model.kind, "hparams": res.model.hparams}})
    write_json(run_dir / "history.json", res.history)

    note(f"generating T_gen = {cfg.eval.t_gen} steps and scoring against the test split ...")
    metrics, gen = evaluate(res.model, data, cfg.eval, noise_floor_seed=int(data.attrs["seed"]) + 1)
    if ens:
        metrics.update(_score_members(ens_res, best, metrics, data, cfg, note))
    metrics.update({
        "lambda_max": None if lam is None else lam.value, "lambda_max_per_step": None if lam is None else lam.per_step,
        "tau": tau, "tau_source": "set" if fi is None else fi.source, "steps": res.steps_done, "train_seconds": res.elapsed, "stopped": res.stopped,
        "total_seconds": time.monotonic() - t_start, "dataset": data.attrs["name"], "model": cfg.model.kind,
    })
    write_json(run_dir / "metrics.json", metrics)
    data_mod.write_netcdf(data_mod.to_physical(gen), run_dir / "generated.nc")
    report.plot_run(run_dir)
    nf = metrics.get("noise_floor", {})
    note(f"D_stsp = {metrics['D_stsp']:.4f} (noise floor {nf.get('D_stsp', float('nan')):.4f}), "
         f"D_H = {metrics['D_H']:.4f} (noise floor {nf.get('D_H', float('nan')):.4f}), "
         f"PSC = {metrics['PSC']:.4f} (noise floor {nf.get('PSC', float('nan')):.4f}), T_gen = {metrics['T_gen']}")
    for k, why in metrics.get("reasons", {}).items():
        note(f"  {k}: {why}")
    note(f"run directory: {run_dir}")
    return Run(model=res.model, tau=tau, lyapunov=lam, result=res, config=cfg, run_dir=run_dir, metrics=metrics)
