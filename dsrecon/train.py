"""The one training loop: batches of subsequences, a forcing method, Adam, checkpoints, validation by
short free runs, gradient flossing, divergence recovery, resume.

Method ("How to train RNNs on chaotic data" §4.1-4.2): MSE loss on every step of each subsequence,
rolled out by the configured method (:func:`dsrecon.forcing.rollout`: sparse forcing every τ steps by
default), Adam with lr 1e-3, no gradient clipping except for the ``bptt-clip`` baseline (the forcing
bounds the gradients). The learning rate decays exponentially to ``lr_end``. Every ``validate_every``
steps a few short free runs from forced states on a held-out validation segment (the last
``val_fraction`` of the training series, never used for gradient steps) are scored by D_stsp against
that segment (:mod:`dsrecon.validation`); the best model is kept (free-run quality is what the user wants, and the one-step loss
does not see a collapse onto a fixed point; scoring on held-out data keeps the choice honest). Gradient flossing ("Gradient Flossing" §3, §6-7) runs before training
(``prefloss_epochs``), in episodes every ``floss_every`` steps, or as a weighted loss term.

A driven model (``input_dim > 0``) is trained with its external inputs ``s`` (T, K) next to ``x``: every
batch carries the aligned input windows, every rollout reads s_t in the step z_t → z_{t+1}
(:mod:`dsrecon.forcing`), and so do the validation free runs, the adaptive GTF α and the flossing
estimate (the Jacobian of a driven model depends on s).
"""
from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .config import ADAPTIVE_ALPHAS, TrainConfig
from .ensemble import (Ensemble, check_checkpoint as check_ensemble_checkpoint, check_config as check_ensemble_config,
                       check_memory, halving_survivors, member_history as _member_history, sampling_seeds)
from .errors import ConfigError, DataError, DivergenceError, DsreconError
from .flossing import floss, flossing_loss, lyapunov_exponents
from .forcing import gtf_alpha_from_jacobians, gtf_alpha_from_lyapunov, rollout
from .inputs import check_inputs, input_dim, input_windows
from .runs import load_torch, save_torch
from .validation import check_lengths, validation_score

log = logging.getLogger("dsrecon")


class Interrupted(DsreconError):
    """Training was interrupted (Ctrl-C); the last checkpoint was written. ``run_dir``: the run directory
    to resume, when known (set by :func:`dsrecon.experiment.fit_run`)."""

    run_dir = None


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DsreconError("--device cuda was requested but torch sees no CUDA GPU; use --device cpu")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise DsreconError("--device mps was requested but MPS is not available; use --device cpu")
    if name not in ("cpu", "cuda", "mps"):
        raise DsreconError(f"unknown device {name!r}; use auto, cpu, cuda or mps")
    return torch.device(name)


@dataclass
class FitResult:
    """What :func:`train_loop` returns: the trained (best) model and the training record."""

    model: torch.nn.Module
    tau: int | None
    steps_done: int
    history: dict = field(default_factory=dict)
    stopped: str = "completed"   # completed | time budget | early stop | (a member) dropped at step N | diverged
    elapsed: float = 0.0
    members: list | None = None   # an ensemble's: one FitResult per member (model = the member at its best)


def annealed_tau(tau: int, step: int, cfg: TrainConfig) -> int:
    """τ at ``step``: grows geometrically from 1 to ``tau`` over the first ``tau_anneal`` of the steps.

    Short intervals first teach the one-step map (nearly pure teacher forcing); the full interval
    τ ≈ τ_pred then teaches the long-range behaviour without exploding gradients.
    """
    if isinstance(tau, list):   # one τ per ensemble member (a folded τ-sweep): each anneals as in its own run
        return [annealed_tau(t, step, cfg) for t in tau]
    if cfg.tau_anneal <= 0:
        return tau
    frac = min(1.0, step / (cfg.tau_anneal * cfg.steps))
    return max(1, int(round(tau**frac)))


def member_tau(model, cfg: TrainConfig, tau):
    """``tau`` of :func:`train_loop` as it trains: an int (or None), or for an :class:`Ensemble` whose members were a
    τ-sweep a list with one τ per member. A sequence of equal values is that one value (so the rollout is
    bit-identical to a scalar τ). One-line ConfigErrors: a sequence for a single model, of the wrong length,
    with a value < 1, or with different values for a method whose τ is not a forcing interval (gtf's floor of
    α, bptt-clip)."""
    if not isinstance(tau, (list, tuple)):
        return tau
    n = len(model) if isinstance(model, Ensemble) else None
    if n is None or len(tau) != n:
        raise ConfigError(f"one tau per member needs an ensemble of {len(tau)} members, got "
                          + (f"{n} members" if n is not None else f"a single {type(model).__name__}"))
    if any(isinstance(t, bool) or t is None or int(t) != t or t < 1 for t in tau):
        raise ConfigError(f"tau must be a positive integer for every member, got {list(tau)}")
    taus = [int(t) for t in tau]
    if len(set(taus)) == 1:
        return taus[0]
    if cfg.method not in USES_TAU:
        raise ConfigError(f"one tau per member applies to the forcing methods {', '.join(USES_TAU)}; method "
                          f"{cfg.method!r} needs one shared tau, got {taus}")
    return taus


GTF_UPDATE_EVERY = 10   # steps between re-estimates of the adaptive GTF alpha
GTF_SMOOTHING = 0.9     # running-average weight of the previous alpha (alpha moves smoothly, not per batch)
USES_TAU = ("stf", "id-tf", "window")   # methods that need a forcing interval; gtf uses one only as its alpha floor


def uses_tau(method: str, gtf_alpha) -> bool:
    """Whether τ changes a run: the forcing interval of stf/id-tf/window, or the floor of GTF's adaptive
    alpha (``gtf_alpha="auto"``). The one rule: choose_tau, sweeps (a τ grid collapses otherwise) and the CLI
    (an explicit --tau that would be ignored) all ask it."""
    return method in USES_TAU or (method == "gtf" and gtf_alpha == "auto")
GTF_DATA_SHARE = 0.05   # auto alpha: at most this share of the state is the model's own after tau steps


def _optimizer(cfg: TrainConfig, params):
    return {"adam": torch.optim.Adam, "radam": torch.optim.RAdam}[cfg.optimizer](params, lr=cfg.lr)


def check_checkpoint(model, ck: dict, cfg: TrainConfig, path, *, kind: str = "model",
                     config_path="the run's config.json") -> None:
    """One-line DataError when a checkpoint (``path``, read as ``ck``) cannot continue training ``model``: the
    weights of another architecture or size, a damaged optimiser or RNG state; an :class:`Ensemble` checks
    its members (:func:`dsrecon.ensemble.check_checkpoint`). Called before a resumed run writes anything."""
    if isinstance(model, Ensemble):
        check_ensemble_checkpoint(model, ck, path)
        return
    try:
        model.load_state_dict(ck["best_state"])
        model.load_state_dict(ck["model"])
        _optimizer(cfg, [p for p in model.parameters() if p.requires_grad]).load_state_dict(ck["optimizer"])
        torch.Generator().set_state(ck["rng"])
    except (RuntimeError, KeyError, TypeError, ValueError, AttributeError):
        raise DataError(f"{path} does not fit the {kind} (latent_dim {getattr(model, 'latent_dim', '?')}) of "
                        f"{config_path}: weights of another architecture, or a damaged optimiser or RNG state; "
                        f"restore the run's own checkpoint, or start again with --overwrite") from None


def _forced_states(model, x: torch.Tensor, s: torch.Tensor | None = None, horizon: int = 0):
    """``init`` and ``inputs`` for flossing on data: forced states at random training samples (on the
    data's attractor) and, for a driven model, the external inputs that follow each of them (``horizon``
    steps are needed; ``inputs`` is None for an autonomous model)."""
    last: dict = {}

    def init(batch: int, gen: torch.Generator) -> torch.Tensor:
        hi = x.shape[0] if s is None else max(1, x.shape[0] - horizon + 1)
        idx = torch.randint(0, hi, (batch,), generator=gen).to(x.device)
        last["idx"] = idx
        with torch.no_grad():
            return model.force(x[idx])

    def inputs(n_steps: int, batch: int, gen: torch.Generator) -> torch.Tensor:
        # (n_steps, batch, K); the clamp only for T < horizon
        return input_windows(s, last["idx"], n_steps, time_first=True, clamp=True)

    return init, (None if s is None else inputs)


def _training_inputs(model, inputs, T: int, device) -> torch.Tensor | None:
    """The external inputs (T, K) as a float32 tensor, or None; one-line DataErrors when they do not fit
    the model (its ``input_dim``) or the training series (T steps)."""
    K = input_dim(model)
    if inputs is None:
        return check_inputs(model, None, what="the call of fit",
                            fix=f"pass inputs= (T, {K}) aligned with x_train, or build the model with input_dim=0")
    s = torch.as_tensor(np.asarray(inputs), dtype=torch.float32, device=device)
    if s.dim() == 1:
        s = s[:, None]
    check_inputs(model, s, what="the inputs given to fit")
    if s.dim() != 2 or s.shape != (T, K):
        raise DataError(f"inputs must have shape (T, K) = ({T}, {K}) like x_train and the model's input_dim, "
                        f"got {tuple(s.shape)}")
    if not bool(torch.isfinite(s).all()):
        raise DataError("inputs contain NaN/inf values; fill or drop them first")
    return s


def check_method(model, cfg: TrainConfig, tau="unchecked") -> None:
    """One-line ConfigErrors for settings the model cannot run, before any work starts (``tau`` is
    checked unless it is left at ``"unchecked"``)."""
    if tau != "unchecked" and cfg.method in USES_TAU and (tau is None or int(tau) < 1):
        raise ConfigError(f"method {cfg.method!r} needs a forcing interval tau >= 1 (steps), got {tau!r}")
    if cfg.method == "id-tf" and getattr(model, "hparams", {}).get("learn_observation", False):
        raise ConfigError("method 'id-tf' (identity forcing) needs a model built with learn_observation=False "
                          "(x = the first N latents); dsrecon fit does this for --method id-tf")
    if isinstance(model, Ensemble):
        check_ensemble_config(cfg)
    if cfg.floss_k > model.latent_dim:
        raise ConfigError(f"--floss {cfg.floss_k} exceeds the model's state dimension {model.latent_dim}; "
                          f"floss at most {model.latent_dim} exponents")


@dataclass
class _Member:
    """One model's training state inside :func:`train_loop`: a single run has one, an ensemble one per member.

    ``status``: "training", "early stop" (its validation stopped improving), "dropped at step N" (successive halving)
    or "diverged" (> ``max_recoveries`` recoveries; a single run raises DivergenceError); only "training" ones step."""

    model: torch.nn.Module
    opt: torch.optim.Optimizer
    gen: torch.Generator
    params: list
    best: dict
    alpha: float | None = None
    lr_scale: float = 1.0
    recoveries: int = 0
    since_best: int = 0
    status: str = "training"

    def state(self) -> dict:
        """A consistent copy of this member's training state (the per-member part of a checkpoint)."""
        return {"model": copy.deepcopy(self.model.state_dict()), "optimizer": copy.deepcopy(self.opt.state_dict()),
                "rng": self.gen.get_state(), "best_score": self.best["score"],
                "best_state": copy.deepcopy(self.best["state"]), "best_step": self.best["step"], "alpha": self.alpha,
                "since_best": self.since_best, "lr_scale": self.lr_scale, "recoveries": self.recoveries,
                "status": self.status}

    def load(self, ck: dict) -> None:
        self.model.load_state_dict(ck["best_state"])   # checked here, used at the end
        self.model.load_state_dict(ck["model"])
        self.opt.load_state_dict(ck["optimizer"])
        self.gen.set_state(ck["rng"])
        # the divergence recovery's learning-rate scale and count (checkpoints before they were kept: 1, 0)
        self.lr_scale, self.recoveries = float(ck.get("lr_scale", 1.0)), int(ck.get("recoveries", 0))
        self.best = {"score": float(ck["best_score"]), "state": ck["best_state"], "step": int(ck["best_step"])}
        self.alpha, self.since_best = ck.get("alpha"), int(ck.get("since_best", 0))
        self.status = ck.get("status", "training")


def _per_member(t: torch.Tensor, ensemble: bool) -> torch.Tensor:
    """Mean of ``t`` per member: over (time, batch, channel) of (T, K, B, N) -> (K,); one value (1,) otherwise."""
    return t.mean(dim=(0, 2, 3)) if ensemble else t.mean().reshape(1)


def train_loop(
    model: torch.nn.Module,
    x_train: np.ndarray,
    *,
    inputs: np.ndarray | None = None,
    tau: int | None = None,
    config: TrainConfig = TrainConfig(),
    checkpoint: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    candidates: bool = False,
) -> FitResult:
    """Train ``model`` on ``x_train`` (T, N), standardized, with the method of ``config.method``.

    Parameters: ``model``: a model, or an :class:`dsrecon.ensemble.Ensemble` of K members trained in one
    pass (each with its own batches from a generator seeded ``config.seed + k``, its own optimiser, learning
    rate, divergence recovery, validation and best state: per member what a single run with seed
    ``config.seed + k`` does, up to float rounding; docs/ensembles.md);
    ``inputs``: external inputs s (T, K) aligned with ``x_train``, for a model built with
    ``input_dim = K`` (None for an autonomous model); ``tau``: forcing interval (steps) of ``stf``, ``id-tf``
    and ``window`` (for an ensemble also a list, one τ per member: a folded τ-sweep, :func:`member_tau`); for ``gtf`` with ``gtf_alpha="auto"`` it sets the floor 1 − 0.05^(1/τ) of α; unused by
    ``bptt-clip``; ``config`` (see :class:`dsrecon.config.TrainConfig`); ``checkpoint``: path
    of ``last.pt`` written atomically every ``checkpoint_every`` steps and at the end (a Ctrl-C or a
    divergence leaves the last consistent one in place); ``resume``: continue from that checkpoint,
    which reproduces the uninterrupted run exactly (model, optimiser, sampling RNG, history, best, GTF α, the
    validations since the best and which members still train); ``candidates``: an ensemble's members are
    candidates of which one is kept (:func:`dsrecon.fit`): every ``config.halving`` validations the worse half
    of those still training is dropped (successive halving; docs/ensembles.md). Training stops after
    ``config.early_stop`` validations without improvement (per member), or after ``config.steps``.
    Returns: :class:`FitResult` with the best model by validation D_stsp (the last one when
    validation is off); for an ensemble ``model`` is the ensemble (every member at its best state), the
    history's per-step entries are lists over the members, and ``members`` holds one FitResult per member.
    Raises: ConfigError for settings the model cannot run (before any work); DataError when ``inputs`` and
    the model's ``input_dim`` disagree; DivergenceError after
    ``max_recoveries`` non-finite or exploding losses (of every member, for an ensemble; the checkpoint
    keeps the last good state); Interrupted on Ctrl-C (naming the step of the checkpoint kept).
    Pitfall (ensembles): after a divergence recovery a member departs from its single run: it loses that
    step (the others take theirs) and follows the ensemble's step count in its learning-rate schedule.
    """
    cfg = config
    tau = member_tau(model, cfg, tau)
    check_method(model, cfg, min(tau) if isinstance(tau, list) else tau)
    ens = isinstance(model, Ensemble)
    device = resolve_device(cfg.device)
    if ens:
        check_memory(model.members[0], len(model), cfg, device, flag="ensemble size")
    model.to(device)
    x_all = torch.as_tensor(np.asarray(x_train), dtype=torch.float32, device=device)
    s_all = _training_inputs(model, inputs, x_all.shape[0], device)
    L = cfg.seq_len
    n_val = check_lengths(x_all.shape[0], cfg)
    T = x_all.shape[0] - n_val   # gradient steps see x[:T]; validation runs start on and are scored against x[T:]
    x, x_val = x_all[:T], (x_all[T:] if n_val else x_all)   # val_fraction 0: validation on the training data
    s = None if s_all is None else s_all[:T]
    s_val = None if s_all is None else (s_all[T:] if n_val else s_all)
    if resume and checkpoint is not None and not Path(checkpoint).exists():
        raise DataError(f"resume: {checkpoint} does not exist; there is nothing to resume (train without resume)")
    members, seeds = [], sampling_seeds(model, cfg.seed) if ens else [cfg.seed]
    for k, net in enumerate(model.members if ens else [model]):
        params = [p for p in net.parameters() if p.requires_grad]
        members.append(_Member(model=net, opt=_optimizer(cfg, params), gen=torch.Generator().manual_seed(seeds[k]),
                               params=params, best={"score": math.inf, "state": copy.deepcopy(net.state_dict()),
                                                    "step": 0}))
    one = (lambda v: v) if ens else (lambda v: v[0])   # history entries: a list over the members, or the value
    history = {"step": [], "loss": [], "val_step": [], "val_d_stsp": [], "lr": [], "alpha": [],
               "floss_step": [], "floss_lambda": []}
    step, elapsed0 = 0, 0.0
    adaptive = cfg.method == "gtf" and cfg.gtf_alpha in ADAPTIVE_ALPHAS
    alpha_of = gtf_alpha_from_lyapunov if cfg.gtf_alpha == "auto" else gtf_alpha_from_jacobians
    # floor of the auto alpha: (1 - alpha)^tau <= 5 %, i.e. within one predictability interval the state is
    # pulled back to the data about as completely as sparse forcing's full reset (docs/training.md)
    alpha_floor = 1.0 - GTF_DATA_SHARE ** (1.0 / tau) if cfg.method == "gtf" and cfg.gtf_alpha == "auto" and tau \
        else 0.0   # (only gtf reads it; a per-member tau list belongs to the forcing methods)
    for m in members:
        m.alpha = float(cfg.gtf_alpha) if cfg.method == "gtf" and not adaptive else None

    if resume and checkpoint is not None and Path(checkpoint).exists():
        ck = load_torch(checkpoint, map_location=device)
        try:
            if (len(ck["members"]) != len(members)) if ens else ("members" in ck):
                raise ValueError   # an ensemble of another size, or an ensemble's checkpoint for a single run
            for m, c in zip(members, ck["members"] if ens else [ck]):
                m.load(c)
            step, elapsed0, history = int(ck["step"]), float(ck["elapsed"]), ck["history"]
            [history[k].append for k in ("step", "loss", "val_step", "val_d_stsp", "lr", "alpha", "floss_step")]
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError):
            raise DataError(f"{checkpoint} does not fit this model and method (another architecture, optimiser or "
                            f"ensemble size, or not a dsrecon checkpoint); it cannot be resumed: start the training "
                            f"again") from None
        log.info("resumed from %s at step %d", checkpoint, step)
    t0 = time.monotonic()

    def snapshot() -> dict:
        """A consistent training state: what checkpoints hold and divergence recovery restores."""
        shared = {"step": step, "elapsed": elapsed0 + time.monotonic() - t0, "history": copy.deepcopy(history),
                  "tau": tau}
        if ens:   # member 0's state also at the top level, where runs.py looks for a training checkpoint's keys
            states = [m.state() for m in members]
            return {**states[0], **shared, "members": states}
        return {**members[0].state(), **shared}

    def save_checkpoint():
        if checkpoint is not None:
            save_torch(checkpoint, good)

    floss_init, floss_inputs = _forced_states(model, x, s, horizon=cfg.floss_steps + cfg.floss_steps // 2)

    def floss_episode(epochs: int, desc: str):
        res = floss(model, k=cfg.floss_k, target=cfg.floss_target, epochs=epochs, n_steps=cfg.floss_steps,
                    qr_every=cfg.floss_qr_every, lr=cfg.floss_lr, init=floss_init, inputs=floss_inputs, batch=1,
                    seed=cfg.seed + step, progress=progress, desc=desc)
        history["floss_step"].append(step)
        history["floss_lambda"].append(res.final.tolist())
        log.info("%s at step %d: %d updates, lambda_1..%d per step now %s", desc, step, epochs, cfg.floss_k,
                 np.array2string(res.final[:5], precision=4))

    def recover(k: int, m: _Member, what: str) -> None:
        """Restore member k's last good state, halve its learning rate; give up after max_recoveries."""
        g = good["members"][k] if ens else good
        m.model.load_state_dict(g["model"])
        m.opt.load_state_dict(g["optimizer"])
        m.recoveries += 1
        m.lr_scale *= 0.5
        name = f"member {k} (seed {seeds[k]}): " if ens else ""
        msg = (f"{name}{what} loss at step {step}: restored the last good state and halved the "
               f"learning rate (recovery {m.recoveries}/{cfg.max_recoveries})")
        log.warning(msg)
        bar.write(msg) if progress else None
        if m.recoveries > cfg.max_recoveries:
            if ens:
                m.status = "diverged"
                log.warning("member %d (seed %d) diverged: %d recoveries; it keeps its best state", k, seeds[k],
                            m.recoveries)
                if any(o.status == "training" for o in members):
                    return
            save_checkpoint()
            raise DivergenceError(
                f"training diverged: {m.recoveries} {what.split(' ')[0]} losses (last at step {step})"
                + (" in every member" if ens else "") + f"; the last good state is in {checkpoint}. "
                f"Try a smaller --set train.lr=... or another --tau")

    resumed = step > 0 or (resume and checkpoint is not None)
    if step == 0 and cfg.floss_k and cfg.prefloss_epochs:
        floss_episode(cfg.prefloss_epochs, "preflossing")
    good = snapshot()
    if not resumed:
        save_checkpoint()   # a step-0 checkpoint: an interrupt before the first regular one can still resume

    stopped = "completed"
    label = f"training ({cfg.method}" + (f", tau={tau}" if cfg.method in USES_TAU else "") \
        + (f", {len(members)} members)" if ens else ")")
    bar = tqdm(total=cfg.steps, initial=step, disable=not progress, desc=label, unit="step", dynamic_ncols=True)
    offsets = torch.arange(L + 1)
    try:
        while step < cfg.steps:
            act = [k for k, m in enumerate(members) if m.status == "training"]   # the members stepped now
            if not act:   # e.g. resumed from the checkpoint written when the last one stopped
                stopped = "early stop"
                break
            pos = {k: i for i, k in enumerate(act)}   # spread: the active members' values, one per member (None)
            spread = lambda v: [v[pos[k]] if k in pos else None for k in range(len(members))]  # noqa: E731

            elapsed = elapsed0 + time.monotonic() - t0
            if cfg.time_budget is not None and elapsed >= cfg.time_budget:
                stopped = "time budget"
                break
            frac = step / cfg.steps
            if cfg.time_budget is not None:
                frac = max(frac, elapsed / cfg.time_budget)
            lrs = []
            for m in (members[k] for k in act):
                lrs.append(m.lr_scale * cfg.lr * (cfg.lr_end / cfg.lr) ** min(frac, 1.0))
                for group in m.opt.param_groups:
                    group["lr"] = lrs[-1]

            if cfg.floss_k and cfg.floss_every and not cfg.floss_weight and step > 0 and step % cfg.floss_every == 0 \
                    and (not history["floss_step"] or history["floss_step"][-1] != step):
                floss_episode(cfg.floss_epochs, "flossing episode")

            # each member draws its batch (and noise) from its own generator, as its single run would
            starts = [torch.randint(0, T - L - 1, (cfg.batch_size,), generator=members[k].gen) for k in act]
            noise = [torch.randn((L + 1, cfg.batch_size, x.shape[1]), generator=members[k].gen) for k in act] \
                if cfg.obs_noise > 0 else None
            if ens:
                window = (torch.stack(starts)[:, :, None] + offsets).to(device)   # (K, B, L+1)
                batch = x[window].permute(2, 0, 1, 3)   # (L+1, K, B, N)
                net = model.stacked(act)                # the training members' parameters stacked, for this step
            else:
                window = (starts[0][:, None] + offsets).to(device)
                batch = x[window].transpose(0, 1)  # (L+1, B, N)
                net = model
            s_batch = None if s is None else s[window].transpose(0, 1)  # (L+1, B, K), aligned with batch
            driving = batch
            if noise is not None:
                driving = batch + cfg.obs_noise * (torch.stack(noise, 1) if ens else noise[0]).to(device)
            if cfg.method == "gtf" and members[act[0]].alpha is None:  # first adaptive estimate, from a free rollout
                with torch.no_grad():
                    first: list = []
                    rollout(net, driving, "bptt-clip", inputs=s_batch, states_out=first)
                    first_z = torch.stack(first)
                for i, k in enumerate(act):
                    members[k].alpha = max(alpha_floor, alpha_of(members[k].model, first_z[:, i] if ens else first_z,
                                                                  inputs=s_batch))
            states: list = []
            keep_states = cfg.latent_reg > 0 or adaptive
            alpha = [members[k].alpha for k in act] if ens and members[act[0]].alpha is not None \
                else members[0].alpha or 0.0
            tau_now = annealed_tau(tau, step, cfg) if tau else None
            tau_now = [tau_now[k] for k in act] if isinstance(tau_now, list) else tau_now
            pred = rollout(net, driving, cfg.method, tau=tau_now,
                           alpha=alpha, inputs=s_batch, states_out=states if keep_states else None)
            losses = _per_member((pred - batch[1:]) ** 2, ens)   # (K,): one loss per member
            if cfg.latent_reg > 0:
                losses = losses + cfg.latent_reg * _per_member(torch.stack(states) ** 2, ens)
            if cfg.floss_k and cfg.floss_weight and step % max(1, cfg.floss_every) == 0:
                z_f = floss_init(1, members[0].gen)
                s_f = None if floss_inputs is None else floss_inputs(cfg.floss_steps + cfg.floss_steps // 2, 1,
                                                                     members[0].gen)
                lam = lyapunov_exponents(model, z_f, k=cfg.floss_k, n_steps=cfg.floss_steps, inputs=s_f,
                                         qr_every=cfg.floss_qr_every, generator=members[0].gen,
                                         warmup=cfg.floss_steps // 2)
                losses = losses + cfg.floss_weight * flossing_loss(lam, cfg.floss_target)
            vals = losses.tolist()   # one device sync per step; one value per active member
            ok = []   # positions in act
            for i, k in enumerate(act):
                if math.isfinite(vals[i]) and vals[i] <= cfg.explode_loss:
                    ok.append(i)
                    continue
                what = "non-finite" if not math.isfinite(vals[i]) else \
                    f"exploding ({vals[i]:.3g} > {cfg.explode_loss:g})"
                recover(k, members[k], what)
            if not ok:
                if not any(m.status == "training" for m in members):
                    stopped = "early stop"
                    break
                continue   # every training member was restored: draw new batches, as a single run does
            for k in act:
                members[k].opt.zero_grad(set_to_none=True)
            (losses.sum() if len(ok) == len(act) else losses[ok].sum()).backward()
            for k in (act[i] for i in ok):   # per member: its gradient-norm clip and its own optimiser
                if cfg.method == "bptt-clip":
                    torch.nn.utils.clip_grad_norm_(members[k].params, cfg.clip_norm)
                members[k].opt.step()
            step += 1
            if adaptive and step % GTF_UPDATE_EVERY == 0:
                zs = torch.stack(states).detach()
                for i in ok:
                    m = members[act[i]]
                    new = alpha_of(m.model, zs[:, i] if ens else zs, inputs=s_batch)
                    m.alpha = max(alpha_floor, GTF_SMOOTHING * m.alpha + (1 - GTF_SMOOTHING) * new)
            history["step"].append(step)
            history["loss"].append(one(spread(vals)))
            history["lr"].append(one(spread(lrs)))
            if members[act[0]].alpha is not None:
                history["alpha"].append(one(spread([members[k].alpha for k in act])))
            bar.update(1)
            if step % 20 == 0:
                post = {"loss": f"{min(vals):.4f}", "best_val": f"{min(m.best['score'] for m in members):.3f}"}
                if members[act[0]].alpha is not None:
                    post["alpha"] = f"{members[act[0]].alpha:.3f}"
                bar.set_postfix(**post)

            if cfg.validate_every and step % cfg.validate_every == 0:
                vk = [k for k in act if members[k].status == "training"]   # (a recovery may have given one up)
                got = validation_score(model.stacked(vk) if ens else model, x_val, cfg,
                                       [members[k].gen for k in vk] if ens else members[0].gen, s_val)
                scores = [None] * len(members)
                for k, score in zip(vk, got if ens else [got]):
                    scores[k] = score
                history["val_step"].append(step)
                history["val_d_stsp"].append(one(scores))
                log.info("step %d loss %s lr %s val D_stsp %s", step, _fmt(spread(vals), "%.5f"),
                         _fmt(spread(lrs), "%.2e"), _fmt(scores, "%.4f"))
                for k in vk:
                    m = members[k]
                    if scores[k] < m.best["score"]:
                        m.best = {"score": scores[k], "state": copy.deepcopy(m.model.state_dict()), "step": step}
                        m.since_best = 0
                    else:
                        m.since_best += 1
                    if cfg.early_stop and m.since_best >= cfg.early_stop:
                        m.status = "early stop"
                        log.info("early stop%s at step %d: validation D_stsp has not improved for %d validations "
                                 "(train.early_stop), best %.4f at step %d", f" of member {k} (seed {seeds[k]})"
                                 if ens else "", step, m.since_best, m.best["score"], m.best["step"])
                race = [k for k in vk if members[k].status == "training"]
                if candidates and cfg.halving and len(race) > 1 and len(history["val_step"]) % cfg.halving == 0:
                    keep = halving_survivors({k: members[k].best["score"] for k in race})
                    for k in race:
                        members[k].status = "training" if k in keep else f"dropped at step {step}"
                    log.info("successive halving at step %d: members %s go on (best validation D_stsp %s), "
                             "members %s are dropped and keep their best state", step, keep,
                             _fmt([members[k].best["score"] for k in keep], "%.4f"),
                             [k for k in race if k not in keep])
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                good = snapshot()
                save_checkpoint()
            if not any(m.status == "training" for m in members):
                stopped = "early stop"
                break
    except KeyboardInterrupt:
        # The last checkpoint on disk is consistent; the current state may be mid-update, so it is
        # not written.
        bar.close()
        if checkpoint is None:
            raise Interrupted(f"interrupted at step {step}; no checkpoint was written (checkpoint=None)") from None
        raise Interrupted(f"interrupted at step {step}; the checkpoint of step {good['step']} is kept "
                          f"in {checkpoint}") from None
    bar.close()
    good = snapshot()
    save_checkpoint()
    last = [k for k, m in enumerate(members) if m.status == "training" and m.best["step"] > 0]
    if cfg.validate_every and last:
        # a final validation so that the last state competes with the best one (a member that stopped or was
        # dropped did so at a validation: its last state has been scored)
        got = validation_score(model.stacked(last) if ens else model, x_val, cfg,
                               [members[k].gen for k in last] if ens else members[0].gen, s_val)
        for k, score in zip(last, got if ens else [got]):
            m = members[k]
            if score < m.best["score"]:
                m.best = {"score": score, "state": copy.deepcopy(m.model.state_dict()), "step": step}
    for k, m in enumerate(members):
        if cfg.validate_every and m.best["step"] > 0:
            m.model.load_state_dict(m.best["state"])
            log.info("%skept the model of step %d (validation D_stsp %.4f)",
                     f"member {k} (seed {seeds[k]}): " if ens else "", m.best["step"], m.best["score"])
    why = {"completed": f"the {cfg.steps} steps of train.steps are done",
           "time budget": f"the time budget of {cfg.time_budget} s is spent",
           "early stop": f"validation D_stsp stopped improving (train.early_stop = {cfg.early_stop} validations)"
           if not ens else "no member trains any more: " + ", ".join(f"{k} {m.status}" for k, m in
                                                                      enumerate(members))}[stopped]
    history["stopped"], history["stop_reason"] = stopped, why
    log.info("training stopped (%s) at step %d: %s", stopped, step, why)
    history["best_step"] = one([m.best["step"] for m in members])
    history["best_val_d_stsp"] = one([m.best["score"] for m in members])
    elapsed = elapsed0 + time.monotonic() - t0
    if not ens:
        return FitResult(model=model, tau=tau, steps_done=step, history=history, stopped=stopped, elapsed=elapsed)
    history["status"] = [m.status if m.status != "training" else stopped for m in members]
    per = [FitResult(model=m.model, tau=tau[k] if isinstance(tau, list) else tau, steps_done=step,
                     history=_member_history(history, k),
                     stopped=history["status"][k], elapsed=elapsed) for k, m in enumerate(members)]
    return FitResult(model=model, tau=tau, steps_done=step, history=history, stopped=stopped, elapsed=elapsed,
                     members=per)


def _fmt(values: list, spec: str) -> str:
    """One number, or a bracketed list for an ensemble's members, for the log."""
    text = [("-" if v is None else spec % v) for v in values]
    return text[0] if len(text) == 1 else "[" + " ".join(text) + "]"
