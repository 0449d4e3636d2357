"""Validation of a training run on held-out data: how much of the training series is held out
(:func:`val_fraction`, :func:`check_lengths`) and the D_stsp of short free runs from forced states on that
segment (:func:`validation_score`), by which :func:`dsrecon.train.train_loop` keeps its best model.

The one-step loss does not see a collapse onto a fixed point; a free run does. The held-out segment is the last
``val_fraction`` of the training split, never used for gradient steps, so the model is chosen on data it was not
fitted to (the test split stays untouched for the final scores).
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import torch

from .config import TrainConfig
from .errors import DataError
from .inputs import input_windows
from .metrics import d_stsp, dynamics_verdict
from .models.base import free_run


def val_fraction(cfg: TrainConfig) -> float:
    """The held-out share of the training series: 0 when validation is off."""
    return cfg.val_fraction if cfg.validate_every else 0.0


def validation_score(model, x_train: torch.Tensor, cfg: TrainConfig, gen,
                     s_train: torch.Tensor | None = None):
    """D_stsp of short free runs from forced states on the validation segment ``x_train`` against it.

    With external inputs ``s_train`` (T, K) each run reads the inputs that follow its start, so it is at
    most T − 1 steps long and starts where that many inputs follow. ``gen``: the run's generator; for an
    ensemble a list with one generator per member, ``model`` its stacked view (states (K, runs, M)), and
    the result a list of K scores, each member's runs drawn from its own generator as in its single run."""
    members = isinstance(gen, list)
    with torch.no_grad():
        T = x_train.shape[0]
        n = cfg.val_len if s_train is None else min(cfg.val_len, T - 1)
        hi = T if s_train is None else T - n + 1
        idx = torch.stack([torch.randint(0, hi, (cfg.val_runs,), generator=g) for g in gen]) if members \
            else torch.randint(0, hi, (cfg.val_runs,), generator=gen)
        idx = idx.to(x_train.device)
        z = model.force(x_train[idx])
        s = None if s_train is None else input_windows(s_train, idx, n, time_first=True)   # (n, *idx.shape, K)
        gen_x = free_run(model, z, n, inputs=s)[n // 10:].cpu().numpy()  # drop transients
    x_ref = x_train.cpu().numpy()
    data_fixed = dynamics_verdict(x_ref, x_ref, tail_fraction=1.0).verdict == "fixed point"

    def score(g: np.ndarray) -> float:
        # a validation free run (g: steps x runs x N) that collapsed to a fixed point (while the data do not) or
        # diverged is a failed model whatever its D_stsp (issue 15: a dead model scored better than the floor)
        if not data_fixed and any(dynamics_verdict(g[:, b], x_ref).verdict in ("diverged", "fixed point")
                                  for b in range(g.shape[1])):
            return math.inf
        g = g.reshape(-1, model.obs_dim)
        if not np.all(np.isfinite(g)):
            return math.inf
        # "auto": binned below 6 dimensions, Gaussian mixtures above (30^N bins are impossible for a 10-d embedding)
        return float(d_stsp(x_ref, g, method="auto").value)

    return [score(gen_x[:, k]) for k in range(len(gen))] if members else score(gen_x)


def survives_long_run(model, x_train: np.ndarray, cfg: TrainConfig, n_steps: int, seed: int = 0,
                      s_train: np.ndarray | None = None) -> bool:
    """Whether ``model`` (one trained model) keeps its dynamics alive over a free run as long as the run's
    generated series: one ``n_steps`` free run from a forced state on the validation segment of ``x_train`` (the
    training split; its last ``val_fraction``, or all of it without validation), judged as during training
    (:func:`validation_score`: a collapse to a fixed point or a divergence scores inf). The 20 000-step validation
    runs can miss a slow collapse: on the weather embedding 3 of 16 candidates with finite validation ended on a
    fixed point within 10⁵ steps (docs/defaults.md). Held-out data only: the test split stays untouched."""
    T = len(x_train)
    n_val = int(round(val_fraction(cfg) * T))
    dev = next(model.parameters()).device
    x = torch.as_tensor(np.asarray(x_train)[T - n_val:] if n_val else np.asarray(x_train), dtype=torch.float32,
                        device=dev)
    s = None if s_train is None else torch.as_tensor(np.asarray(s_train)[T - n_val:] if n_val else s_train,
                                                     dtype=torch.float32, device=dev)
    long = replace(cfg, val_len=int(n_steps), val_runs=1)
    return math.isfinite(validation_score(model, x, long, torch.Generator().manual_seed(int(seed)), s))


def check_lengths(T: int, cfg: TrainConfig) -> int:
    """The number of held-out validation steps of a T-step training series; a one-line DataError when the
    rest is too short for one subsequence or the held-out part too short for a validation run."""
    n_val = int(round(val_fraction(cfg) * T))
    if cfg.validate_every and cfg.val_fraction > 0 and n_val < 2:
        raise DataError(f"training series has {T} steps: too few to hold out a validation segment; use more data "
                        f"or turn validation off (--set train.validate_every=0)")
    if T - n_val < cfg.seq_len + 2:
        held = f" after holding out {n_val} for validation" if n_val else ""
        raise DataError(f"training series has {T - n_val} steps{held}, fewer than seq_len + 2 = {cfg.seq_len + 2}; "
                        f"lower seq_len (--set train.seq_len=...)")
    return n_val
