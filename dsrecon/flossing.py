"""Gradient flossing: a differentiable QR estimate of the first k Lyapunov exponents, used as a loss.

"Gradient Flossing" (Engelken, NeurIPS 2023), §3 and Alg. 1: the exponents λ_1..λ_k of the model are
estimated by the QR (Benettin) method over T_f steps *inside the autograd graph* (the same
:func:`dsrecon.lyapunov.qr_log_stretches` that :func:`dsrecon.lyapunov.lyapunov_spectrum` uses, so the
same ``model.step``/``model.jacobian`` interface serves training, spectra and flossing), and

    L_floss = Σ_{i=1}^k (λ_i − λ_target)²                                   (Eq. 4; target 0 in the paper)

is minimised with Adam. Exponents near zero keep the long-term Jacobian T_t well conditioned
(κ₂ ≈ exp((λ_1 − λ_k) t), Eq. 10), so gradients neither explode nor vanish along k directions.

Choices where the paper is silent (digest §7.2):

- each flossing update starts from fresh initial states and a fresh random orthonormal Q (nothing carried
  over between updates) and runs ``n_steps`` = T_f steps with QR every ``qr_every`` steps (t_ONS);
- the gradient flows through the trajectory z_t as well as through Q (exact AD through everything);
- the loss is the mean over the batch of initial conditions of Σ_i (λ_i^b − target)²;
- a warm-up of ``n_steps // 2`` steps without gradient aligns the states and the frame Q before the
  estimate (Alg. 1 has none; without it the short T_f estimate is biased towards the stretching of random
  directions and the flossed exponents miss strongly negative targets: measured λ_1 ≈ −0.8 for a −1 target);
  ``warmup=0`` gives Alg. 1 as printed.

Pitfalls ("Gradient Flossing" §4, §8, App. D.2; digest §10): a positive target is not reachable; flossing
throughout training hurts (accuracy collapses after each episode), episodes at a few epochs help;
QR dominates the cost (O(M k²) forward and backward per QR), so floss few exponents with t_ONS > 1 when
the spectrum allows; log|R_ii| has no gradient where R_ii = 0 (dead ReLU / saturated directions).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from .errors import ConfigError, DivergenceError
from .lyapunov import qr_log_stretches
from .models.base import device_dtype


def _check_k(model, k: int) -> int:
    M = int(model.latent_dim)
    if isinstance(k, bool) or int(k) != k or not 1 <= k <= M:
        raise ConfigError(f"flossing k must be an integer between 1 and the model's state dimension {M}, got {k!r}; "
                          f"use --floss K with K <= {M}")
    return int(k)


def lyapunov_exponents(model, z0: torch.Tensor, *, k: int, n_steps: int, qr_every: int = 1,
                       inputs: torch.Tensor | None = None, generator: torch.Generator | None = None,
                       warmup: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Differentiable QR estimate of the first ``k`` Lyapunov exponents per step, (B, k).

    ``z0`` (B, M): initial states; ``inputs``: (warmup + n_steps, B, K) external inputs or None; the
    random initial orthonormal frame comes from ``generator``. With ``warmup`` > 0, states and frame are
    first evolved (and re-orthonormalised) that many steps without gradient, so that Q is aligned with
    the Oseledets directions before anything is accumulated (digest §1.1 step 3; without it a finite
    estimate is biased towards the mean stretching of random directions). Then the gradient flows through
    the trajectory and the QR steps of the remaining ``n_steps``. Deviation vectors are evolved in
    ``dtype`` (float64 by default; the model's Jacobians are cast).
    Reference: "Gradient Flossing" §3, Alg. 1; App. J (t_ONS).
    """
    k = _check_k(model, k)
    for name, v, lo in (("n_steps", n_steps, 1), ("warmup", warmup, 0)):
        if int(v) != v or v < lo:
            raise ConfigError(f"{name} must be an integer >= {lo}, got {v!r}")
    B, M = z0.shape
    Q = torch.linalg.qr(torch.randn(B, M, k, generator=generator, dtype=dtype))[0].to(z0.device)
    z = z0
    if warmup:
        with torch.no_grad():
            z, Q, _ = qr_log_stretches(model, z, Q, int(warmup), qr_every=qr_every,
                                       inputs=None if inputs is None else inputs[:warmup])
        inputs = None if inputs is None else inputs[warmup:]
    _, _, logs = qr_log_stretches(model, z, Q, int(n_steps), qr_every=qr_every, inputs=inputs)
    return logs / n_steps


def flossing_loss(lambdas: torch.Tensor, target: float | torch.Tensor = 0.0) -> torch.Tensor:
    """Σ_i (λ_i − target_i)², averaged over the batch: "Gradient Flossing" Eq. 4 (target 0) and the target
    variant of Fig. 1B. ``lambdas`` (B, k) per step; ``target`` a scalar or (k,)."""
    return ((lambdas - torch.as_tensor(target, dtype=lambdas.dtype, device=lambdas.device)) ** 2).sum(-1).mean()


@dataclass
class FlossResult:
    """What :func:`floss` did: the loss and the batch-mean exponents (per step) after each update."""

    loss: list = field(default_factory=list)
    lambdas: list = field(default_factory=list)   # each (k,) as a list

    @property
    def final(self) -> np.ndarray:
        return np.asarray(self.lambdas[-1]) if self.lambdas else np.array([])


def floss(model, *, k: int, target: float = 0.0, epochs: int = 500, n_steps: int = 100, qr_every: int = 1,
          lr: float = 1e-3, init: Callable | torch.Tensor | None = None, inputs: Callable | None = None,
          batch: int = 1, warmup: int | None = None, seed: int = 0, optimizer: torch.optim.Optimizer | None = None,
          progress: bool = False, desc: str = "flossing") -> FlossResult:
    """Gradient flossing for ``epochs`` Adam updates ("Gradient Flossing" Alg. 1; preflossing §6).

    Each update: initial states from ``init`` (a callable ``init(batch, generator) -> (batch, M)`` tensor,
    a fixed (batch, M) tensor, or None for standard normal states), inputs from ``inputs`` (a callable
    ``inputs(n_steps, batch, generator) -> (n_steps, batch, K)``, or None for an autonomous model), an
    ``warmup`` without gradient (default n_steps // 2, see the module docstring), then the differentiable estimate of λ_1..λ_k over ``n_steps``
    steps and one Adam step on :func:`flossing_loss`.

    Parameters: ``k`` exponents (1..state dimension), ``target`` per step (a scalar or (k,)), ``lr``
    (Adam; ignored when ``optimizer`` is given), ``seed`` for the initial states, frames and inputs.
    Returns :class:`FlossResult`. Raises DivergenceError if the estimate becomes non-finite (the model is
    left at its last finite state).
    """
    k = _check_k(model, k)
    warm = n_steps // 2 if warmup is None else warmup
    for name, v in (("epochs", epochs), ("n_steps", n_steps), ("qr_every", qr_every), ("batch", batch)):
        if int(v) != v or v < 1:
            raise ConfigError(f"flossing {name} must be a positive integer, got {v!r}")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ConfigError("the model has no trainable parameters to floss")
    device, dtype = device_dtype(model)
    opt = optimizer if optimizer is not None else torch.optim.Adam(params, lr=lr)
    gen = torch.Generator().manual_seed(int(seed))
    result = FlossResult()
    bar = tqdm(range(int(epochs)), disable=not progress, desc=desc, unit="update", dynamic_ncols=True, leave=False)
    for _ in bar:
        if init is None:
            z = torch.randn(batch, model.latent_dim, generator=gen).to(device=device, dtype=dtype)
        elif callable(init):
            z = init(batch, gen).to(device=device, dtype=dtype)
        else:
            z = torch.as_tensor(init).to(device=device, dtype=dtype)
        s = None if inputs is None else inputs(warm + n_steps, z.shape[0], gen).to(device=device, dtype=dtype)
        lam = lyapunov_exponents(model, z, k=k, n_steps=n_steps, qr_every=qr_every, inputs=s, generator=gen,
                                 warmup=warm)
        loss = flossing_loss(lam, target)
        if not torch.isfinite(loss):
            raise DivergenceError(f"gradient flossing: the Lyapunov estimate became non-finite after "
                                  f"{len(result.loss)} updates; lower the flossing lr or n_steps (T_f)")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        result.loss.append(loss.item())
        result.lambdas.append(lam.detach().mean(0).cpu().tolist())
        if progress:
            bar.set_postfix(loss=f"{result.loss[-1]:.4f}", lambda1=f"{result.lambdas[-1][0]:.4f}")
    bar.close()
    return result

