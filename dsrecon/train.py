"""The one training loop: batches of subsequences, sparse teacher forcing, Adam, checkpoints,
validation by short free runs, divergence recovery, resume.

Method ("How to train RNNs on chaotic data" §4.1-4.2): MSE loss on every step of each subsequence,
sparse forcing every τ steps (:func:`dsrecon.forcing.sparse_teacher_forcing`), Adam with lr 1e-3,
no gradient clipping (the forcing bounds the gradients). The learning rate decays exponentially to
``lr_end``. Every ``validate_every`` steps a few short free runs from forced states on the training
data are scored by D_stsp; the best model is kept (free-run quality is what the user wants, and the
one-step loss does not see a collapse onto a fixed point).
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

from .config import TrainConfig
from .errors import DivergenceError, DsreconError
from .forcing import sparse_teacher_forcing
from .metrics import d_stsp
from .runs import load_torch, save_torch

log = logging.getLogger("dsrecon")


class Interrupted(DsreconError):
    """Training was interrupted (Ctrl-C); the last checkpoint was written."""


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
    """What :func:`fit` returns: the trained (best) model and the training record."""

    model: torch.nn.Module
    tau: int
    steps_done: int
    history: dict = field(default_factory=dict)
    stopped: str = "completed"   # completed | time budget (divergence raises DivergenceError)
    elapsed: float = 0.0


def annealed_tau(tau: int, step: int, cfg: TrainConfig) -> int:
    """τ at ``step``: grows geometrically from 1 to ``tau`` over the first ``tau_anneal`` of the steps.

    Short intervals first teach the one-step map (nearly pure teacher forcing); the full interval
    τ ≈ τ_pred then teaches the long-range behaviour without exploding gradients.
    """
    if cfg.tau_anneal <= 0:
        return tau
    frac = min(1.0, step / (cfg.tau_anneal * cfg.steps))
    return max(1, int(round(tau**frac)))


def _validate(model, x_train: torch.Tensor, cfg: TrainConfig, gen: torch.Generator) -> float:
    """D_stsp of short free runs from forced states (on training data) against the training data."""
    with torch.no_grad():
        T = x_train.shape[0]
        idx = torch.randint(0, T, (cfg.val_runs,), generator=gen)
        z = model.force(x_train[idx.to(x_train.device)])
        out = torch.empty(cfg.val_len, cfg.val_runs, model.obs_dim, device=x_train.device)
        for t in range(cfg.val_len):
            z = model.step(z)
            out[t] = model.observe(z)
        gen_x = out[cfg.val_len // 10 :].reshape(-1, model.obs_dim).cpu().numpy()  # drop transients
    if not np.all(np.isfinite(gen_x)):
        return math.inf
    return float(d_stsp(x_train.cpu().numpy(), gen_x).value)


def fit(
    model: torch.nn.Module,
    x_train: np.ndarray,
    *,
    tau: int,
    config: TrainConfig = TrainConfig(),
    checkpoint: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
) -> FitResult:
    """Train ``model`` on ``x_train`` (T, N), standardized, with sparse teacher forcing every ``tau``.

    Parameters: ``config`` (see :class:`dsrecon.config.TrainConfig`); ``checkpoint``: path of
    ``last.pt`` written atomically every ``checkpoint_every`` steps and at the end (a Ctrl-C or a
    divergence leaves the last consistent one in place); ``resume``: continue from that checkpoint,
    which reproduces the uninterrupted run exactly (model, optimiser, sampling RNG, history, best).
    Returns: :class:`FitResult` with the best model by validation D_stsp (the last one when
    validation is off).
    Raises: DivergenceError after ``max_recoveries`` non-finite losses (the checkpoint keeps the last
    good state); Interrupted on Ctrl-C (naming the step of the checkpoint kept).
    """
    cfg = config
    device = resolve_device(cfg.device)
    model.to(device)
    x = torch.as_tensor(np.asarray(x_train), dtype=torch.float32, device=device)
    T = x.shape[0]
    L = cfg.seq_len
    if T < L + 2:
        raise DsreconError(f"training series has {T} steps, fewer than seq_len + 2 = {L + 2}; lower seq_len")
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    history = {"step": [], "loss": [], "val_step": [], "val_d_stsp": [], "lr": []}
    step, elapsed0, recoveries = 0, 0.0, 0
    best = {"score": math.inf, "state": copy.deepcopy(model.state_dict()), "step": 0}

    if resume and checkpoint is not None and Path(checkpoint).exists():
        ck = load_torch(checkpoint, map_location=device)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        gen.set_state(ck["rng"])
        step, elapsed0, history = int(ck["step"]), float(ck["elapsed"]), ck["history"]
        best = {"score": float(ck["best_score"]), "state": ck["best_state"], "step": int(ck["best_step"])}
        log.info("resumed from %s at step %d", checkpoint, step)
    t0 = time.monotonic()

    def snapshot() -> dict:
        """A consistent training state: what checkpoints hold and divergence recovery restores."""
        return {
            "model": copy.deepcopy(model.state_dict()), "optimizer": copy.deepcopy(opt.state_dict()),
            "rng": gen.get_state(), "step": step, "elapsed": elapsed0 + time.monotonic() - t0,
            "history": copy.deepcopy(history), "best_score": best["score"],
            "best_state": copy.deepcopy(best["state"]), "best_step": best["step"], "tau": tau,
        }

    good = snapshot()

    def save_checkpoint():
        if checkpoint is not None:
            save_torch(checkpoint, good)

    stopped = "completed"
    bar = tqdm(total=cfg.steps, initial=step, disable=not progress, desc=f"training (tau={tau})",
               unit="step", dynamic_ncols=True)
    lr_scale = 1.0
    offsets = torch.arange(L + 1)
    try:
        while step < cfg.steps:
            elapsed = elapsed0 + time.monotonic() - t0
            if cfg.time_budget is not None and elapsed >= cfg.time_budget:
                stopped = "time budget"
                break
            frac = step / cfg.steps
            if cfg.time_budget is not None:
                frac = max(frac, elapsed / cfg.time_budget)
            lr = lr_scale * cfg.lr * (cfg.lr_end / cfg.lr) ** min(frac, 1.0)
            for group in opt.param_groups:
                group["lr"] = lr

            starts = torch.randint(0, T - L - 1, (cfg.batch_size,), generator=gen)
            batch = x[(starts[:, None] + offsets).to(device)].transpose(0, 1)  # (L+1, B, N)
            pred = sparse_teacher_forcing(model, batch, annealed_tau(tau, step, cfg))
            loss = torch.mean((pred - batch[1:]) ** 2)
            if not torch.isfinite(loss):
                recoveries += 1
                model.load_state_dict(good["model"])
                opt.load_state_dict(good["optimizer"])
                lr_scale *= 0.5
                msg = (f"non-finite loss at step {step}: restored the last good state and halved the "
                       f"learning rate (recovery {recoveries}/{cfg.max_recoveries})")
                log.warning(msg)
                bar.write(msg) if progress else None
                if recoveries > cfg.max_recoveries:
                    save_checkpoint()
                    raise DivergenceError(
                        f"training diverged: {recoveries} non-finite losses (last at step {step}); "
                        f"the last good state is in {checkpoint}. Try a smaller --set train.lr or another --tau")
                continue
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            lval = loss.item()
            history["step"].append(step)
            history["loss"].append(lval)
            history["lr"].append(lr)
            bar.update(1)
            if step % 20 == 0:
                bar.set_postfix(loss=f"{lval:.4f}", best_val=f"{best['score']:.3f}")

            if cfg.validate_every and step % cfg.validate_every == 0:
                score = _validate(model, x, cfg, gen)
                history["val_step"].append(step)
                history["val_d_stsp"].append(score)
                log.info("step %d loss %.5f lr %.2e val D_stsp %.4f", step, lval, lr, score)
                if score < best["score"]:
                    best = {"score": score, "state": copy.deepcopy(model.state_dict()), "step": step}
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                good = snapshot()
                save_checkpoint()
    except KeyboardInterrupt:
        # The last checkpoint on disk is consistent; the current state may be mid-update, so it is
        # not written.
        bar.close()
        raise Interrupted(f"interrupted at step {step}; the checkpoint of step {good['step']} is kept "
                          f"in {checkpoint}") from None
    bar.close()
    good = snapshot()
    save_checkpoint()
    if cfg.validate_every and best["step"] > 0:
        # a final validation so that the last state competes with the best one
        score = _validate(model, x, cfg, gen)
        if score < best["score"]:
            best = {"score": score, "state": copy.deepcopy(model.state_dict()), "step": step}
        model.load_state_dict(best["state"])
        log.info("kept the model of step %d (validation D_stsp %.4f)", best["step"], best["score"])
    history["best_step"] = best["step"]
    history["best_val_d_stsp"] = best["score"]
    return FitResult(model=model, tau=tau, steps_done=step, history=history, stopped=stopped,
                     elapsed=elapsed0 + time.monotonic() - t0)
