"""The one model interface shared by training, generation, Lyapunov spectra and flossing.

Every model (PLRNN, RNN, LSTM, and the true equations in :mod:`dsrecon.systems`) provides

- ``latent_dim`` (M) and ``obs_dim`` (N),
- ``step(z, s=None) -> z_next``    (B, M) -> (B, M), pure: state in, state out; ``s`` (B, K) is the
  external input of this step (None for autonomous models; a model with ``input_dim > 0`` needs it),
- ``jacobian(z, s=None) -> J``     (B, M, M) = d step / d z at (z, s), differentiable with respect to
  the parameters (gradient flossing back-propagates through it),
- ``observe(z) -> x``              (B, M) -> (B, N), the linear observation x = B z,
- ``force(x, z=None) -> z_forced`` (B, N) -> (B, M), the control state from an observation
  ("How to train RNNs on chaotic data", §4.1 Eq. 15).

Nothing else is called by :func:`free_run`, :func:`dsrecon.train.train_loop` or
:func:`dsrecon.lyapunov.lyapunov_spectrum`.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from ..inputs import check_covers, check_inputs


@runtime_checkable
class Model(Protocol):
    latent_dim: int
    obs_dim: int

    def step(self, z: torch.Tensor, s: torch.Tensor | None = None) -> torch.Tensor: ...

    def jacobian(self, z: torch.Tensor, s: torch.Tensor | None = None) -> torch.Tensor: ...

    def observe(self, z: torch.Tensor) -> torch.Tensor: ...

    def force(self, x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor: ...


def affine(bias: torch.Tensor, x: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """``bias + x @ W.mT`` as one fused operation where the shapes allow it: ``addmm`` for a batch (B, M) and
    a matrix, ``baddbmm`` for an ensemble's member axis (K, B, M) and stacked matrices (K, L, M); the plain
    expression otherwise. Fewer, larger operations per time step: small RNNs are bound by per-operation
    overhead (docs/ensembles.md)."""
    if x.dim() == 2 and W.dim() == 2 and bias.dim() <= 2:
        return torch.addmm(bias, x, W.mT)
    if x.dim() == 3 and W.dim() == 3:
        return torch.baddbmm(bias, x, W.mT)
    return bias + x @ W.mT


def add_input(pre: torch.Tensor, C: torch.Tensor | None, s: torch.Tensor | None, name: str) -> torch.Tensor:
    """``pre + s @ C.T``: the external input term C s_t of a driven model, or ``pre`` unchanged for an
    autonomous one (C is None; s is then ignored).

    Raises InputError when the model has inputs (C is not None) and ``s`` is None, naming ``name``.
    """
    if C is None:
        return pre
    if s is None:
        check_inputs(C.shape[1], None, what=f"this {name}'s call of step/jacobian",
                     fix=f"pass s of shape (batch, {C.shape[1]}) to step and jacobian")
    return pre + s @ C.mT


def autograd_jacobian(step, z: torch.Tensor, s: torch.Tensor | None = None) -> torch.Tensor:
    """Batched Jacobian of ``step`` at ``z`` (B, M) (input ``s`` (B, K) or None) by automatic
    differentiation -> (B, M, M).

    Used as the reference that every analytic Jacobian is tested against, and as the fallback for
    models without an analytic one.
    """
    z = z.detach()
    if s is None:
        return torch.func.vmap(torch.func.jacrev(lambda v: step(v.unsqueeze(0)).squeeze(0)))(z)
    return torch.func.vmap(torch.func.jacrev(lambda v, u: step(v.unsqueeze(0), u.unsqueeze(0)).squeeze(0)))(z, s)


def device_dtype(model, default_dtype: torch.dtype = torch.float64) -> tuple[torch.device, torch.dtype]:
    """(device, dtype) of ``model``'s first parameter: where and in what precision it computes. A model without
    parameters (a true system, a hand-written map) gets the CPU and ``default_dtype``."""
    params = model.parameters() if hasattr(model, "parameters") else ()
    p = next(iter(params), None)
    return (torch.device("cpu"), default_dtype) if p is None else (p.device, p.dtype)


@torch.no_grad()
def free_run(model: Model, z0: torch.Tensor, n_steps: int, inputs: torch.Tensor | None = None, *,
             return_latent: bool = False):
    """Free run of ``model`` for ``n_steps`` steps from latent state ``z0`` (..., M) or (M,): the one free-run loop
    (evaluation, validation during training and forced rollouts all call it).

    ``inputs``: external inputs (n_steps, ..., K) (or (n_steps, K) for a 1-d z0), for models with
    ``input_dim > 0``; None for autonomous models. ``inputs[t]`` drives the step z_t → z_{t+1}; the fit
    path of :mod:`dsrecon.experiment` passes s_t, the data's input at the start of the step.

    Returns the observations x_1..x_n as a tensor (n_steps, ..., N) (or (n_steps, N) for a 1-d z0), and with
    ``return_latent`` also the states z_1..z_n (n_steps, ..., M).
    The state z0 itself is not observed in the output: the first row is observe(step(z0)).
    Generation never forces (test-time runs are free, "How to train RNNs on chaotic data" §4.1).
    Non-finite states are kept (they propagate as NaN/inf) so that metrics can report a diverged
    model instead of crashing here.
    """
    squeeze = z0.dim() == 1
    z = z0.unsqueeze(0) if squeeze else z0
    out = torch.empty(n_steps, *z.shape[:-1], model.obs_dim, dtype=z.dtype, device=z.device)
    lat = torch.empty(n_steps, *z.shape, dtype=z.dtype, device=z.device) if return_latent else None
    if inputs is not None:
        inputs = torch.as_tensor(inputs, dtype=z.dtype, device=z.device)
        inputs = inputs.unsqueeze(1) if squeeze else inputs
        check_covers(inputs, n_steps)
    for t in range(n_steps):
        z = model.step(z) if inputs is None else model.step(z, inputs[t])
        out[t] = model.observe(z)
        if return_latent:
            lat[t] = z
    if squeeze:
        out, lat = out[:, 0], None if lat is None else lat[:, 0]
    return (out, lat) if return_latent else out
