"""One reconstruction end to end: load -> λ_max -> τ -> fit -> generate -> score -> run directory.

The Python API (``dsrecon.fit``) and the CLI's ``dsrecon fit`` both go through these functions; the CLI adds
only argument parsing and printing. Scoring a model against data (``dsrecon.generate``, ``dsrecon.evaluate``,
``dsrecon.model_spectrum``) is :mod:`dsrecon.evaluation`.

A dataset whose input variable ``s`` is not among its observed channels (the forced Duffing oscillator
loaded with ``forcing="input"``) drives the model: :func:`fit_run` builds it with ``input_dim = K``,
training reads the aligned input windows, and generation reads the test split's inputs, continued past
their end when they are a periodic forcing (:func:`dsrecon.inputs.input_series`).
"""
from __future__ import annotations

import inspect
import logging
import math
import os
import shutil
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from . import data as data_mod, dimension, evaluation as E, report, runs
from .config import (SHPLRNN_CLIPPED, DataConfig, ModelConfig, RunConfig, TrainConfig, ensemble_for, model_sizes,
                     sizes_note)
from .embedding import decorrelation_time
from .errors import ConfigError, DataError
from .fileio import check_path
from .inputs import external_inputs, model_inputs
from .ensemble import Ensemble, best_member, check_config as check_ensemble_config, check_memory, check_supported
from .maxlyap import MaxLyapunov
from .members import score_members
from .models import MODELS
from .models.base import device_dtype
from .runs import (RunLock, WriteError, _why, check_out, check_writable_dir, data_fingerprint, drop_replaced,
                   new_run_dir, REPLACED, restore_replaced, set_old_run_aside, write_manifest,
                   package_versions, save_torch, write_json)
from .tau import ForcingInterval, check_structure, forcing_interval
from .train import FitResult, Interrupted, check_checkpoint, check_method, train_loop, resolve_device, uses_tau
from .validation import LONG_RUNS, check_lengths, long_run_failures

log = logging.getLogger("dsrecon")

# model-config fields that only some architectures take (the others ignore them only at their defaults)
_ARCH_FIELDS = ("a_init", "w_scale", "hidden_dim", "clipped", "g", "init", "forget_bias", "force_cell")


def build_model(cfg: ModelConfig, obs_dim: int, *, seed: int = 0, method: str = "stf",
                input_dim: int = 0, data=None, dims=None) -> torch.nn.Module:
    """The model named by ``cfg.kind`` with the configured hyperparameters.

    ``method="id-tf"`` builds it with the identity observation (x = the first N latents). A
    model-specific field set away from its default for an architecture that has no such parameter is a
    ConfigError (e.g. ``model.clipped=true`` with ``--model lstm``). ``data`` (T, N), the training split: open sizes
    come from its linear dimension (config.model_sizes, sizes_note), B of M < N from it (dimension.init_observation);
    ``dims``: that linear dimension when the caller has it already (:func:`dimension.linear_dimension` of ``data``).
    """
    if cfg.kind not in MODELS:
        raise ConfigError(f"unknown model {cfg.kind!r}; available: {', '.join(sorted(MODELS))}")
    cls = MODELS[cfg.kind]
    accepted = inspect.signature(cls).parameters
    kw = dict(input_dim=input_dim, ridge=cfg.ridge, keep_unobserved=cfg.keep_unobserved,
              learn_observation=cfg.learn_observation and method != "id-tf", seed=seed)
    defaults = ModelConfig()
    if data is not None and dims is None:
        dims = dimension.linear_dimension(data_mod.as_array(data, what="the training data"))
    latent_dim, hidden_dim = model_sizes(cfg, obs_dim, dims)   # sizes the config leaves open, chosen from the data
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
    return dimension.init_observation(cls(obs_dim, latent_dim, **kw), data, dims)   # M < N: a learned B only


def choose_tau(tau, train: xr.Dataset, method: str = "stf",
               gtf_alpha="auto") -> tuple[int | None, ForcingInterval | None]:
    """τ in steps and how it was chosen: an explicit positive integer (None), or ``"auto"``.

    ``"auto"`` is :func:`dsrecon.lyapunov.forcing_interval` of the training data themselves: round(ln 2 /
    λ_max per step) when the data diverge exponentially ("How to train RNNs on chaotic data" §4.1 Eq. 17,
    λ_max by Rosenstein's method), else the first minimum of the average mutual information, else the
    saturation lag of the divergence curve; data with no structure (white noise, constant) are refused.
    For data with external inputs (a driven system), the estimate uses the observations joined with the
    inputs, the state of the driven system. ``bptt-clip`` gets (None, None); ``gtf`` with
    ``gtf_alpha="auto"`` gets τ (it sets the floor of the adaptive α, see :func:`dsrecon.train.train_loop`), with
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
    """A trained reconstruction: the model, its τ, λ_max of the data, and (with a run directory) its scores.

    ``config`` is always the whole :class:`dsrecon.config.RunConfig` (for :func:`fit` the data and model
    sections describe the dataset and the model it was given); ``result`` is the training's FitResult (an
    ensemble's, with one FitResult per member in ``result.members``; ``model`` is then the kept member)."""

    model: torch.nn.Module
    tau: int | None
    lyapunov: MaxLyapunov | None
    result: FitResult
    config: RunConfig
    run_dir: Path | None = None
    metrics: dict | None = None


def model_config_of(model) -> ModelConfig:
    """The :class:`ModelConfig` that describes ``model`` (an :class:`Ensemble`: its members'): its kind and
    the hyperparameters of its constructor that a config names. What config.json records for :func:`fit`."""
    one = model.members[0] if isinstance(model, Ensemble) else model
    kind = next((k for k, cls in MODELS.items() if type(one) is cls), None)
    if kind is None:
        raise ConfigError(f"fit: {type(one).__name__} is not one of dsrecon's models ({', '.join(MODELS)}); a run "
                          f"directory can only name those")
    hp = dict(getattr(one, "hparams", {}))
    if "units" in hp:      # an LSTM's size argument is its H units (state 2H); a config calls it latent_dim
        hp["latent_dim"] = hp.pop("units")
    fields_ = {f for f in ModelConfig.__dataclass_fields__ if f != "kind"}
    return ModelConfig(kind=kind, **{k: v for k, v in hp.items() if k in fields_})


def data_config_of(data: xr.Dataset) -> DataConfig:
    """The :class:`DataConfig` that names ``data`` as well as its attrs allow (card or file, seed, noise,
    forcing). Data changed in memory since they were loaded are caught by the fingerprint in config.json."""
    a = data.attrs
    name = str(a.get("card") or a.get("name") or "data")
    kw = {}
    if "seed" in a and a.get("kind", "ode") in ("ode", "dde", "map"):
        kw["seed"] = int(a["seed"])
    if float(a.get("noise", 0.0) or 0.0):
        kw["noise"] = float(a["noise"])
    if a.get("forcing") in ("phase", "input"):
        kw["forcing"] = str(a["forcing"])
    return DataConfig(name=name, **kw)


def fit(model, data: xr.Dataset, *, tau="auto", config: TrainConfig | RunConfig | None = None,
        run_dir=None, overwrite: bool = False, progress: bool = True) -> Run:
    """Fit ``model`` to the training split of ``data`` (by ``config.method``: generalized teacher forcing by default).

    ``tau="auto"`` estimates λ_max from the training split and uses τ = round(ln2 / λ_step). ``config``: a
    TrainConfig, or a whole RunConfig (its train and eval sections are used; its data and model sections
    are replaced by those describing ``data`` and ``model``).

    ``run_dir=None``: train only; nothing is written and nothing scored. ``run_dir`` a folder: the run
    directory that ``dsrecon fit --out run_dir`` writes, by the same code path (:func:`fit_run` calls it
    too): config.json (with the data's fingerprint), checkpoints/last.pt, model.pt, history.json,
    metrics.json (scores against the test split with noise floors), generated.nc, train.log, the figures and
    report.html; refused like ``--out`` (a finished or interrupted run unless ``overwrite``, a folder that is
    not a run always). A model built with ``input_dim = K`` is driven by the data's input variable ``s``.
    ``model`` may be an :class:`dsrecon.ensemble.Ensemble`: its members train in one pass (member k samples
    with seed ``config.seed + k``); ``run.model`` is then the best member by held-out validation and
    ``run.result.members`` holds every member's FitResult (docs/ensembles.md).
    """
    data_mod.check_dataset(data)
    if config is not None and not isinstance(config, (TrainConfig, RunConfig)):
        raise ConfigError(f"config must be a TrainConfig or a RunConfig, got {type(config).__name__}; e.g. "
                          f"config=ds.TrainConfig(steps=2000)")
    for name, flag in (("overwrite", overwrite), ("progress", progress)):
        if not isinstance(flag, bool):   # "no" is truthy: a finished run must not be replaced by a typo
            raise ConfigError(f"{name} must be True or False, got {flag!r}")
    if run_dir is not None and not isinstance(run_dir, (str, os.PathLike)):
        raise ConfigError(f"run_dir must be a folder path (str or pathlib.Path) or None, got {type(run_dir).__name__}")
    if run_dir is not None:   # "" would become Path(""), the current folder
        check_path(run_dir, "run_dir", ConfigError)
    base = config if isinstance(config, RunConfig) else RunConfig(train=config or TrainConfig())
    cfg = base.replace(data=data_config_of(data), model=model_config_of(model), train=replace(base.train, tau=tau))
    train, _ = data_mod.train_test_split(data)
    x = data_mod.as_array(train, what="training data")
    if x.shape[1] != model.obs_dim:
        raise DataError(f"data have {x.shape[1]} channels but the model observes {model.obs_dim}")
    out = None if run_dir is None else Path(run_dir)
    if out is not None:
        check_out(out, overwrite, what="run_dir")
    return _fit(cfg, data, model, out=out, runs_root=None, overwrite=overwrite, progress=progress, echo=None,
                in_memory=True)


# ------------------------------------------------------------------------------ the one fit path
def fit_run(config: RunConfig | None, *, out=None, runs_root="runs", resume=None, quiet=False, echo=print,
            overwrite: bool = False) -> Run:
    """``dsrecon fit`` and sweeps: load the data and build the model that ``config`` names, then :func:`fit`'s
    path (:func:`_fit`), writing the run directory described in :mod:`dsrecon.runs`.

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
    opened = ck = None
    if resume is not None:
        opened = runs.open(resume)
        holder = RunLock.holder(opened.path)
        if holder is not None:
            raise ConfigError(f"--resume {opened.path}: the run is being written by another dsrecon process "
                              f"({holder}); wait for it to finish")
        cfg = opened.config
        if config is not None:   # only the budget may change on resume
            cfg = cfg.replace(train=replace(cfg.train, steps=config.train.steps, time_budget=config.train.time_budget,
                                            device=config.train.device))
        run_dir = opened.path
        if not opened.checkpoint_path.exists():
            if opened.finished or opened.file("model.pt").exists():
                raise DataError(f"--resume {run_dir}: the run has no checkpoints/last.pt, so it cannot be resumed "
                                f"(its model.pt is kept); re-score it with `dsrecon eval {run_dir}`, or start a new fit")
            raise DataError(f"--resume {run_dir}: no checkpoints/last.pt there (the run stopped before its first "
                            f"checkpoint), so there is nothing to resume; start it again with --out {run_dir} "
                            f"--overwrite")
        data = opened.data()   # refuses data changed since the run was trained
        ck = opened.checkpoint()
        done = int(ck["step"])
        if opened.finished and (done >= cfg.train.steps or (cfg.train == opened.config.train and opened.metrics().get(
                "stopped") not in (None, "completed"))):
            raise DataError(f"--resume {run_dir}: the run is finished ({done} steps trained and scored), nothing to "
                            f"resume; train it longer with `dsrecon fit --resume {run_dir} --set train.steps=N` "
                            f"(N > {done}), or re-score it with `dsrecon eval {run_dir}`")
    else:
        cfg = config
        run_dir = None if out is None else Path(out)
        if run_dir is not None:
            check_out(run_dir, overwrite)
        else:
            check_writable_dir(runs_root, "runs folder")
        data = data_mod.load_for(cfg.data)
    return _fit(cfg, data, None, out=run_dir, runs_root=runs_root, resume=None if opened is None else (opened, ck),
                overwrite=overwrite, progress=not quiet, echo=None if quiet else echo)


def _fit(cfg: RunConfig, data: xr.Dataset, model, *, out: Path | None, runs_root, resume=None,
         overwrite: bool = False, progress: bool = True, echo=None, in_memory: bool = False) -> Run:
    """The one fit path of :func:`fit` and :func:`fit_run`: every check (:func:`_prepare`; ``model=None``
    builds it from ``cfg``), then train; with a run directory (``out``, or a new one under ``runs_root``)
    also write config.json first and model.pt, history.json, metrics.json, generated.nc, the figures and
    report.html after training (:func:`_train_and_score`). ``out=None`` and ``runs_root=None``: train only,
    nothing written. ``resume``: (opened run, its checkpoint) to continue. ``echo``: where the notes go besides
    train.log (None: nowhere)."""
    lines: list[str] = []

    def first_note(msg):
        lines.append(msg)
        if echo is not None:
            echo(msg)

    model, tau, fi, cfg = _prepare(cfg, data, first_note, model)
    if resume is not None:
        opened, ck = resume
        check_checkpoint(model, ck, cfg.train, opened.checkpoint_path, kind=cfg.model.kind,
                         config_path=opened.path / "config.json")
        out = opened.path
    if out is None and runs_root is None:   # the Python API without a run directory: train only
        train, _ = data_mod.train_test_split(data)
        res = train_loop(model, data_mod.as_array(train), inputs=model_inputs(model, train, what="the training data"),
                        tau=tau, config=cfg.train, progress=progress)
        best = best_member(res) if res.members is not None else None
        return Run(model=res.model if best is None else res.members[best].model, tau=tau,
                   lyapunov=None if fi is None else fi.lam, result=res, config=cfg)

    created, root_existed = False, runs_root is not None and Path(runs_root).exists()
    run_dir = out
    if run_dir is None:
        run_dir = new_run_dir(runs_root, cfg.data.name, cfg.model.kind)
        created = True
    elif not run_dir.exists():
        try:
            run_dir.mkdir(parents=True)
            created = True
        except FileExistsError:   # another fit made it just now: the lock and the check below decide
            pass
        except OSError as err:
            raise WriteError(f"could not create {run_dir}: {_why(err)}") from None

    def remove_new_dir():
        """Nothing to resume was written: leave no half-written run directory (nor a runs/ made for it)."""
        shutil.rmtree(run_dir, ignore_errors=True)
        if out is None and runs_root is not None and not root_existed and not any(Path(runs_root).iterdir()):
            os.rmdir(runs_root)

    lock = RunLock(run_dir)   # the one writer of this folder until the fit returns (issue 26)
    try:
        lock.__enter__()
    except BaseException:   # another process writes there: the folder is its own, nothing here is removed
        if created and not lock.holder(run_dir):
            remove_new_dir()
        raise
    try:
        if resume is None and not created:   # checked again under the lock: another writer may have been there
            check_out(run_dir, overwrite, locked=True)   # between the first check and now
        if overwrite and resume is None and not created:
            try:
                set_old_run_aside(run_dir)   # the old run stays whole in .replaced until the new one is finished
            except OSError as err:
                restore_replaced(run_dir)
                raise WriteError(f"could not set the old run in {run_dir} aside: {_why(err)}; nothing was "
                                 "removed") from None
    except BaseException:
        if created:
            remove_new_dir()
        lock.__exit__(None, None, None)
        raise

    def undo():
        """The fit failed before anything resumable was written: the folder as it was before."""
        if created:
            remove_new_dir()
        else:
            restore_replaced(run_dir)

    if resume is None:
        info = {"config": cfg.to_dict(), "tau_steps": tau, "versions": package_versions(),
                "data_fingerprint": data_fingerprint(data)}
        if in_memory:
            info["data_in_memory"] = True   # fitted on a dataset given to ds.fit: its fingerprint is always checked
    else:
        info = {**resume[0].info, "config": cfg.to_dict()}   # keeps the fingerprint (or its absence) of the run
    try:
        if resume is None or cfg != resume[0].config:
            write_json(run_dir / "config.json", info)
        write_manifest(run_dir)
    except WriteError:
        undo()
        lock.__exit__(None, None, None)
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
        run = _train_and_score(cfg, data, run_dir, resume is not None, progress, echo, model, tau, fi)
        write_manifest(run_dir)   # what this run wrote, with checksums: --overwrite replaces exactly these
        drop_replaced(run_dir)    # the new run is whole: the old one it replaces goes
        return run
    except Interrupted as err:
        if not ck_path.exists() and not created and restore_replaced(run_dir):
            err.run_dir = None   # nothing of the new run to resume: the old run is back, as it was
            raise Interrupted(f"{err}; nothing resumable was written, and the run that --overwrite was replacing "
                              f"is back in {run_dir} as it was") from None
        err.run_dir = run_dir
        if (run_dir / REPLACED).is_dir():
            raise Interrupted(f"{err}; the run it replaces is kept whole in {run_dir / REPLACED} until this one "
                              "finishes") from None
        raise
    except KeyboardInterrupt:
        err = Interrupted(f"interrupted after training, while writing and scoring the run; the trained checkpoint "
                          f"is kept in {ck_path}")
        err.run_dir = run_dir
        raise err from None
    except (WriteError, OSError) as err:
        msg = str(err) if isinstance(err, WriteError) else f"could not write in {run_dir}: {_why(err)}"
        if ck_path.exists():
            msg += f"; the run stays resumable: then `dsrecon fit --resume {run_dir}`"
        else:   # nothing to resume in it: leave no half-written run directory behind, or the old run as it was
            log.removeHandler(handler)
            handler.close()
            undo()
            msg += "; then run the same `dsrecon fit` again"
        raise WriteError(msg) from None
    except BaseException:   # diverged, refused, ...: with nothing resumable written, the run --overwrite replaces
        if not ck_path.exists() and not created:   # comes back as it was
            restore_replaced(run_dir)
        raise
    finally:
        log.removeHandler(handler)
        handler.close()
        lock.__exit__(None, None, None)


def _auto_ensemble(cfg: RunConfig, train, model, note) -> RunConfig:
    """``train.ensemble = "auto"`` made a number (:func:`dsrecon.config.ensemble_for` of the training split),
    said in one line; 1 where the model cannot be batched (a driven model, GRU, flossing) or the candidates do
    not fit in memory. config.json stores the number, so a resumed run rebuilds the same members."""
    if cfg.train.ensemble != "auto":
        return cfg
    n = int(train.sizes["time"])
    t_dec = decorrelation_time(data_mod.as_array(train, what="training data"))
    K = ensemble_for(n, t_dec)
    if K > 1:
        try:
            check_supported(model)
            check_ensemble_config(cfg.train)
            check_memory(model, K, cfg.train, resolve_device(cfg.train.device))
        except ConfigError as err:
            note(f"short recording ({n / max(t_dec, 1):.0f} decorrelation times), but one model trains: {err}")
            K = 1
        else:
            note(f"short recording: the training split spans {n / max(t_dec, 1):.0f} decorrelation times ({n} "
                 f"steps, autocorrelation below 1/e after {t_dec} steps): {K} candidates (seeds {cfg.train.seed}.."
                 f"{cfg.train.seed + K - 1}) train as one ensemble and the best by held-out validation is kept "
                 f"(--ensemble 1 trains one)")
    return cfg.replace(train=replace(cfg.train, ensemble=K))


def _prepare(cfg: RunConfig, data, note, model=None):
    """The checks and choices before a run directory exists: the model (built from ``cfg`` when None), the
    method, the device, the series length and τ. Returns (model, tau, how τ was chosen: a ForcingInterval, or
    None when set by hand or unused, the config with ``train.ensemble`` resolved to a number)."""
    train, test = data_mod.train_test_split(data)
    a = data.attrs
    note(f"dataset {a.get('name', cfg.data.name)} (card v{a.get('card_version', '-')}): {a.get('description', '')}")
    note(f"  source: {a.get('source', '-')}; parameters {a.get('parameters', '-')}; seed {a.get('seed', '-')}")
    note(f"  dt = {data.attrs['dt']}, train {train.sizes['time']} steps, test {test.sizes['time']} steps, "
         f"{data.sizes['channel']} channels {list(map(str, data['channel'].values))}, standardized on train")
    obs_dim = data.sizes["channel"]
    s_all = external_inputs(data)
    input_dim = 0 if s_all is None else s_all.shape[1]
    if input_dim:
        note(f"  external inputs s: {input_dim} channels {list(map(str, data['input'].values))} drive the model "
             f"(input_dim = {input_dim})")
    cfg.check_series(int(train.sizes["time"]), obs_dim, f"the training split of {a.get('name', cfg.data.name)}")
    if model is None:
        x_tr = data_mod.as_array(train, what="the training data")
        dims = dimension.linear_dimension(x_tr)
        note(sizes_note(cfg.model, obs_dim, dims))   # where M and L come from (issue 22, part 2)
        model = build_model(cfg.model, obs_dim, seed=cfg.train.seed, method=cfg.train.method, input_dim=input_dim,
                            data=x_tr, dims=dims)
        cfg = _auto_ensemble(cfg, train, model, note)
        if cfg.train.ensemble > 1:   # seeds seed..seed+K-1, refused in one line when unsupported or too big for memory
            check_memory(model, cfg.train.ensemble, cfg.train, resolve_device(cfg.train.device))   # before building
            model = Ensemble(model, cfg.train.ensemble)   # rebuilds its members from their hyperparameters:
            dimension.init_observation(model, x_tr, dims)   # B of M < N from the data again
    else:   # a given model (ds.fit): its own member count
        cfg = cfg.replace(train=replace(cfg.train, ensemble=len(model) if isinstance(model, Ensemble) else 1))
    K = cfg.train.ensemble
    check_method(model, cfg.train)  # bad model/method combinations fail before any work
    resolve_device(cfg.train.device)
    check_lengths(int(train.sizes["time"]), cfg.train)
    model_inputs(model, train, what="the training data")
    try:
        with warnings.catch_warnings(record=True) as caveats:   # the estimate's caveats go to the run's log below,
            warnings.simplefilter("always", RuntimeWarning)      # not to stderr as Python warnings with source lines
            tau, fi = choose_tau(cfg.train.tau, train, cfg.train.method, cfg.train.gtf_alpha)
    except DataError as err:
        if cfg.train.tau != "auto" or uses_tau(cfg.train.method, cfg.train.gtf_alpha):
            raise   # the training needs tau: refused in one line that says to pass --tau N
        # the estimate would only be reported: a lambda_max the data cannot give (too short, too regular) does not
        # stop the fit, data without dynamics (constant, white noise) still do; a driven system's state has its inputs
        s = external_inputs(train)
        try:
            check_structure(train if s is None else np.concatenate([data_mod.as_array(train), s], axis=1))
        except DataError:
            raise err from None
        tau, fi = None, None
        note(f"lambda_max not estimated: {str(err).removeprefix('--tau auto: ')}; {cfg.train.method} with a fixed "
             f"alpha = {cfg.train.gtf_alpha} uses no tau, so the fit goes on without it")
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
    for w in caveats:   # e.g. a short recording's divergence curve that has not saturated
        if issubclass(w.category, RuntimeWarning):
            note(f"  {w.message}")
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    check_method(model, cfg.train, tau)
    note(f"model {cfg.model.kind}, method {cfg.train.method}"
         + (f", flossing k={cfg.train.floss_k} to {cfg.train.floss_target}" if cfg.train.floss_k else "")
         + (f", ensemble of {K} members (seeds {cfg.train.seed}..{cfg.train.seed + K - 1}) trained as one batched "
            f"model" if K > 1 else ""))
    return model, tau, fi, cfg


def _train_and_score(cfg: RunConfig, data, run_dir: Path, resuming: bool, progress: bool, echo, model, tau,
                     fi: ForcingInterval | None) -> Run:
    """Train (checkpoints in ``run_dir``), then write model.pt, history.json, metrics.json (scores of
    :func:`dsrecon.evaluation.evaluate`), generated.nc and the figures and report (:func:`dsrecon.report.plot_run`,
    given the data in memory: the dataset is loaded once per run)."""
    def note(msg):
        log.info(msg)
        if echo is not None:
            echo(msg)

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
    x_tr, s_tr = data_mod.as_array(train), model_inputs(model, train, what="the training data")
    res = train_loop(model, x_tr, inputs=s_tr, tau=tau, config=cfg.train, checkpoint=ck, resume=resuming,
                     progress=progress, candidates=True)   # one member is kept: successive halving among them
    device, _ = device_dtype(res.model)
    ens = res.members is not None
    if ens:   # the run's model is the best member by held-out validation; every member is scored below
        # the validation runs last val_len steps, and a trained model is often multistable: a candidate may still
        # collapse later, or from other states; count, for those with a finite validation, how often it does
        # counted in the order of validation: once one fails none, no member after it can be kept (best_member
        # ranks failures, then validation), so theirs are not counted (None; dropped candidates mostly)
        val = res.history["best_val_d_stsp"]
        fails = [None if math.isfinite(v) else LONG_RUNS for v in val]
        zero = None   # the validation D_stsp of the first member that failed none
        for k in sorted((k for k, v in enumerate(val) if math.isfinite(v)), key=lambda k: val[k]):
            if zero is not None and val[k] > zero:
                break
            fails[k] = long_run_failures(res.members[k].model, x_tr, cfg.train, cfg.eval.t_gen,
                                         seed=cfg.train.seed + k, s_train=s_tr)
            zero = val[k] if fails[k] == 0 and zero is None else zero
        best = best_member(res, [LONG_RUNS + 1 if f is None else f for f in fails])
        ens_res, res = res, res.members[best]
        note(f"ensemble of {len(ens_res.members)} members: kept member {best} (seed {cfg.train.seed + best}), the "
             f"best by held-out validation D_stsp among those whose {LONG_RUNS} free runs of {cfg.eval.t_gen} steps "
             f"on the held-out segment failed the evaluation's verdict least (collapsed, diverged, shrunk or periodic; per member: "
             f"{', '.join('-' if f is None else str(f) for f in fails)} of {LONG_RUNS}; -: not counted, a better "
             f"validated member failed none)")
    kept = (f"kept the model of step {res.history['best_step']} (validation D_stsp "
            f"{res.history['best_val_d_stsp']:.3f})" if res.history.get("best_step") else "kept the last state")
    note(f"training {res.stopped} after {res.steps_done} steps in {res.elapsed:.0f} s on {device}; {kept}")
    save_torch(run_dir / "model.pt", {"state_dict": {k: v.cpu() for k, v in res.model.state_dict().items()},
                                      "config": {"kind": cfg.model.kind, "hparams": res.model.hparams}})
    write_json(run_dir / "history.json", res.history)

    note(f"generating T_gen = {cfg.eval.t_gen} steps and scoring against the test split ...")
    metrics, gen = E.evaluate(res.model, data, cfg.eval, noise_floor_seed=int(data.attrs["seed"]) + 1)
    if ens:
        metrics.update(score_members(ens_res, best, metrics, data, cfg, note))
    metrics.update({
        "lambda_max": None if lam is None else lam.value, "lambda_max_per_step": None if lam is None else lam.per_step,
        "tau": tau, "tau_source": "set" if fi is None else fi.source, "steps": res.steps_done, "train_seconds": res.elapsed, "stopped": res.stopped,
        "total_seconds": time.monotonic() - t_start, "dataset": data.attrs["name"], "model": cfg.model.kind,
    })
    write_json(run_dir / "metrics.json", metrics)
    data_mod.write_netcdf(data_mod.to_physical(gen), run_dir / "generated.nc")
    report.plot_run(run_dir, data=data)   # the data in memory: not loaded a second time
    nf = metrics.get("noise_floor", {})
    note(f"D_stsp = {metrics['D_stsp']:.4f} (noise floor {nf.get('D_stsp', float('nan')):.4f}), "
         f"D_H = {metrics['D_H']:.4f} (noise floor {nf.get('D_H', float('nan')):.4f}), "
         f"PSC = {metrics['PSC']:.4f} (noise floor {nf.get('PSC', float('nan')):.4f}), T_gen = {metrics['T_gen']}")
    for k, why in metrics.get("reasons", {}).items():
        note(f"  {k}: {why}")
    note(f"run directory: {run_dir}")
    return Run(model=res.model, tau=tau, lyapunov=lam, result=res if not ens else ens_res, config=cfg, run_dir=run_dir,
               metrics=metrics)
