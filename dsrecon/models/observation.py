"""The linear observation model and the forcing map shared by every architecture.

Observation ("How to train RNNs on chaotic data" §4.1): x_t = B z_t with B of shape (N, M). The paper takes
M >= N; M < N is allowed too (an affine observation of fewer latents than channels, as a published
reconstruction of a 64-channel EEG with 16 latents did; issue 22): then x lies, up to the model's error, in
the M-dimensional range of B, and forcing can only reproduce the data's projection on it.
Every model in :mod:`dsrecon.models` observes through these functions; the LSTM applies them to its
hidden half h only (its cell state c is never observed; see :mod:`dsrecon.models.lstm`).

Forcing (§4.1 Eq. 15): the control state solves B z = x in the least-squares sense.

- M >= N: B^T B (M x M) has rank <= N < M, so the paper's (B^T B)^{-1} does not exist when M > N (digest
  erratum #21); we use the Moore-Penrose pseudo-inverse B^+ (``ridge = 0``) or the ridge inverse
  B^T (B B^T + ridge I)^{-1} (``ridge > 0``), and B (B^+ x) = x.
- M < N: B has full column rank, B^+ = (B^T B)^{-1} B^T is the paper's formula itself (the least-squares
  solution), (B^T B + ridge I)^{-1} B^T the ridge one; B (B^+ x) is the orthogonal projection of x on the
  range of B, not x.

The null space of B is not determined by x (for M > N):

- ``keep_unobserved=False`` (default, the paper's rule): z_forced = B^+ x, the min-norm solution;
  unobserved directions are reset to zero at every forcing step.
- ``keep_unobserved=True``: z_forced = z + B^+ (x - B z); only the observed part of z is replaced
  and the unobserved directions keep the model's own value (they carry memory across forcing steps).
  For M < N, B^+ B = I and both rules give B^+ x.

The identity observation (``learn_observation=False``, id-tf: x = the first N units) needs M >= N.

These are plain functions (STYLE §3: helpers are functions, not methods added to every model); each
model keeps its own ``B`` and calls them from ``observe``, ``observation_pinv`` and ``force``.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError


MAX_UNITS = 10_000   # as ModelConfig.latent_dim's bound


def resolve_latent_dim(name: str, obs_dim: int, latent_dim: int | None, default: int,
                       param: str = "latent_dim", learn_observation: bool = True) -> int:
    """Number of units: ``latent_dim``, or ``max(default, obs_dim)`` when None (``param``: the argument's name in
    the model's constructor, for the messages).

    Fewer units than ``obs_dim`` are allowed with a learned observation (forcing is then the least-squares
    inverse, see the module docstring). Raises ConfigError when they are fewer with the identity observation
    (``learn_observation=False``): x = the first N units needs N of them.
    """
    if int(obs_dim) != obs_dim or obs_dim < 1:
        raise ConfigError(f"{name}: obs_dim must be a positive integer, got {obs_dim!r}")
    units = max(int(default), int(obs_dim)) if latent_dim is None else latent_dim
    if int(units) != units or units < 1:
        raise ConfigError(f"{name}: {param} must be a positive integer, got {latent_dim!r}")
    units = int(units)
    if units > MAX_UNITS:   # W has units^2 weights: 10^6 units would ask the allocator for terabytes
        raise ConfigError(f"{name}: {param} = {units:,} is more than {MAX_UNITS:,} units (its square matrices would "
                          f"need {4 * units * units / 2**30:,.0f} GiB); use {param} <= {MAX_UNITS:,}")
    if units < obs_dim and not learn_observation:
        raise ConfigError(f"{name}: {param} ({units}) is smaller than obs_dim ({obs_dim}), but the identity "
                          f"observation (learn_observation=False, id-tf) writes x into the first {obs_dim} units; use "
                          f"{param} >= {obs_dim}, or a learned observation")
    return units


def add_observation(module: nn.Module, obs_dim: int, n_units: int, learn_observation: bool,
                    generator: torch.Generator) -> None:
    """Register ``module.B`` (N x n_units): [I 0] plus N(0, 0.01^2) noise as an nn.Parameter when
    ``learn_observation``, else the fixed [I 0] as a buffer (x = the first N units, "identity forcing").
    With fewer units than channels (M < N) the identity block is M x M: unit i reads channel i, the other
    channels start unobserved (a fit given its data sets B from them instead, :func:`set_observation`).

    The small noise makes every unit reachable from the data from the first step on. Draws from
    ``generator`` only when the observation is learned.
    """
    B = torch.zeros(obs_dim, n_units)
    k = min(obs_dim, n_units)
    B[:k, :k] = torch.eye(k)
    if learn_observation:
        module.B = nn.Parameter(B + 0.01 * torch.randn(obs_dim, n_units, generator=generator))
    else:
        module.register_buffer("B", B)


@torch.no_grad()
def set_observation(module: nn.Module, B: torch.Tensor) -> None:
    """Overwrite the learned observation ``module.B`` (N x M) with ``B`` (e.g. principal directions of the
    training data, set where the data are known: :func:`dsrecon.experiment.build_model`; the models stay
    data-free). ConfigError for another shape or a fixed (identity) observation."""
    have = getattr(module, "B", None)
    if not isinstance(have, nn.Parameter):
        raise ConfigError(f"{type(module).__name__}: its observation is fixed (identity); it cannot be initialised "
                          f"from the data")
    B = torch.as_tensor(B, dtype=have.dtype, device=have.device)
    if tuple(B.shape) != tuple(have.shape):
        raise ConfigError(f"{type(module).__name__}: an initial B must have shape {tuple(have.shape)}, got "
                          f"{tuple(B.shape)}")
    have.copy_(B)


def observation_pinv(B: torch.Tensor, ridge: float = 0.0) -> torch.Tensor:
    """B^+ (M, N): pseudo-inverse (``ridge = 0``), or the ridge inverse for ``ridge > 0``.

    The ridge inverse (B^T B + ridge I)^{-1} B^T = B^T (B B^T + ridge I)^{-1} (the push-through identity) is
    computed with the smaller of the two Gram matrices: B B^T (N x N) for M >= N, where the M x M B^T B is
    singular, and B^T B (M x M) for M < N, where B B^T is: the solve stays well conditioned in float32
    however small the ridge. For ``ridge = 0`` and M < N, torch.linalg.pinv is (B^T B)^{-1} B^T (full
    column rank).
    """
    if ridge > 0:
        M, N = B.shape[-1], B.shape[-2]
        if M < N:
            eye = torch.eye(M, dtype=B.dtype, device=B.device)
            return torch.linalg.solve(B.mT @ B + ridge * eye, B.mT)
        eye = torch.eye(N, dtype=B.dtype, device=B.device)
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
