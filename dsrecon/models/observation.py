"""The linear observation model and the forcing map shared by every architecture.

Observation ("How to train RNNs on chaotic data" §4.1): x_t = B z_t with B of shape (N, M), M >= N.
Every model in :mod:`dsrecon.models` observes through these functions; the LSTM applies them to its
hidden half h only (its cell state c is never observed; see :mod:`dsrecon.models.lstm`).

Forcing (§4.1 Eq. 15): the control state solves B z = x in the least-squares sense. B^T B (M x M)
has rank <= N < M, so the paper's (B^T B)^{-1} does not exist when M > N (digest erratum #21); we use
the Moore-Penrose pseudo-inverse B^+ (``ridge = 0``) or the ridge inverse
(B^T B + ridge I)^{-1} B^T (``ridge > 0``). The null space of B is not determined by x:

- ``keep_unobserved=False`` (default, the paper's rule): z_forced = B^+ x, the min-norm solution;
  unobserved directions are reset to zero at every forcing step.
- ``keep_unobserved=True``: z_forced = z + B^+ (x - B z); only the observed part of z is replaced
  and the unobserved directions keep the model's own value (they carry memory across forcing steps).

These are plain functions (STYLE §3: helpers are functions, not methods added to every model); each
model keeps its own ``B`` and calls them from ``observe``, ``observation_pinv`` and ``force``.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError


def resolve_latent_dim(name: str, obs_dim: int, latent_dim: int | None, default: int,
                       param: str = "latent_dim") -> int:
    """Number of units: ``latent_dim``, or ``max(default, obs_dim)`` when None (``param``: the argument's name in
    the model's constructor, for the messages).

    Raises ConfigError when it is smaller than ``obs_dim``: B (N x M) then cannot have full row rank,
    so forcing cannot reproduce the data (and the identity observation has too few units).
    """
    if int(obs_dim) != obs_dim or obs_dim < 1:
        raise ConfigError(f"{name}: obs_dim must be a positive integer, got {obs_dim!r}")
    units = max(int(default), int(obs_dim)) if latent_dim is None else latent_dim
    if int(units) != units or units < 1:
        raise ConfigError(f"{name}: {param} must be a positive integer, got {latent_dim!r}")
    units = int(units)
    if units < obs_dim:
        raise ConfigError(f"{name}: {param} ({units}) is smaller than obs_dim ({obs_dim}); "
                          f"use {param} >= {obs_dim} (or None for the default)")
    return units


def add_observation(module: nn.Module, obs_dim: int, n_units: int, learn_observation: bool,
                    generator: torch.Generator) -> None:
    """Register ``module.B`` (N x n_units): [I 0] plus N(0, 0.01^2) noise as an nn.Parameter when
    ``learn_observation``, else the fixed [I 0] as a buffer (x = the first N units, "identity forcing").

    The small noise makes every unit reachable from the data from the first step on. Draws from
    ``generator`` only when the observation is learned.
    """
    B = torch.zeros(obs_dim, n_units)
    B[:, :obs_dim] = torch.eye(obs_dim)
    if learn_observation:
        module.B = nn.Parameter(B + 0.01 * torch.randn(obs_dim, n_units, generator=generator))
    else:
        module.register_buffer("B", B)


def observation_pinv(B: torch.Tensor, ridge: float = 0.0) -> torch.Tensor:
    """B^+ (M, N): pseudo-inverse (``ridge = 0``), or ridge inverse (B^T B + ridge I)^{-1} B^T.

    The ridge inverse is computed as B^T (B B^T + ridge I)^{-1} (the push-through identity): an
    N x N solve that stays well conditioned in float32 however small the ridge, where the M x M
    B^T B is singular for M > N.
    """
    if ridge > 0:
        eye = torch.eye(B.shape[-2], dtype=B.dtype, device=B.device)
        return torch.linalg.solve(B @ B.mT + ridge * eye, B).mT
    return torch.linalg.pinv(B)


def force_state(x: torch.Tensor, B: torch.Tensor, pinv: torch.Tensor, z: torch.Tensor | None = None,
                keep_unobserved: bool = False) -> torch.Tensor:
    """Control state (batch, M) from observation ``x`` (batch, N): B^+ x, or z + B^+ (x - B z) when
    ``keep_unobserved`` and a current state ``z`` is given (see the module docstring)."""
    if z is None or not keep_unobserved:
        return x @ pinv.mT
    return z + (x - z @ B.mT) @ pinv.mT


class LinearObservation:
    """``observe``, ``observation_pinv`` and ``force`` of a model whose whole state is observed through
    one matrix, x = B z (PLRNN, shallow PLRNN, RNN, GRU). The model sets ``B`` (via
    :func:`add_observation`), ``ridge`` and ``keep_unobserved``; the LSTM observes h only and has its own.
    """

    B: torch.Tensor
    ridge: float
    keep_unobserved: bool

    def observe(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.B.mT

    def observation_pinv(self) -> torch.Tensor:
        """B^+ (M, N): pseudo-inverse, or ridge inverse for ``ridge > 0`` (:func:`observation_pinv`)."""
        return observation_pinv(self.B, self.ridge)

    def force(self, x: torch.Tensor, z: torch.Tensor | None = None, pinv: torch.Tensor | None = None):
        """Control state from observation x (B, N): B^+ x, or z + B^+(x - B z) with keep_unobserved
        ("How to train RNNs on chaotic data" §4.1 Eq. 15; :func:`force_state`)."""
        P = self.observation_pinv() if pinv is None else pinv
        return force_state(x, self.B, P, z, self.keep_unobserved)
