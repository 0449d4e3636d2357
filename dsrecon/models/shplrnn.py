"""Shallow PLRNN (shPLRNN) and its clipped, bounded variant.

Update rule (Hess, Monfared, Brenner & Durstewitz, "Generalized Teacher Forcing for Learning Chaotic
Dynamics", ICML 2023: the shallow PLRNN and its clipped variant; that paper is not in shared/papers, so
the equations follow issue 4 and no section number is cited), with latent size M and hidden width L:

    z_t = A z_{t-1} + W1 relu(W2 z_{t-1} + h2) + h1 (+ C s_t)                       (shPLRNN)
    z_t = A z_{t-1} + W1 [relu(W2 z_{t-1} + h2) - relu(W2 z_{t-1})] + h1 (+ C s_t)  (clipped)

with A diagonal (M), W1 (M x L), W2 (L x M), h1 (M), h2 (L). One wide ReLU layer between two linear
maps gives many linear regions for few latent dimensions.

Jacobian (piecewise constant; inputs do not enter it):

    J = diag(A) + W1 diag(1[W2 z + h2 > 0]) W2                                  (shPLRNN)
    J = diag(A) + W1 [diag(1[W2 z + h2 > 0]) - diag(1[W2 z > 0])] W2            (clipped)

Boundedness of the clipped form (Hess et al. 2023): each bracket entry relu(a + h) - relu(a) lies
between -|h| and |h|, so |z_t,i| <= |A_i| |z_{t-1,i}| + Σ_l |W1_il| |h2_l| + |h1_i| (+ |C s_t|_i). With
all |A_i| < 1 every orbit of the autonomous clipped model enters and stays in the box
|z_i| <= (Σ_l |W1_il| |h2_l| + |h1_i|) / (1 - |A_i|), whatever the weights: free runs cannot diverge.
The unclipped model has no such bound (for large z it is the linear map A + W1 D W2, which may expand).

Observation and forcing are those of every model (:mod:`dsrecon.models.observation`).
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from . import observation as obs
from .base import add_input, affine


class ShallowPLRNN(obs.LinearObservation, nn.Module):
    """Shallow PLRNN z_t = A z_{t-1} + W1 relu(W2 z_{t-1} + h2) + h1 (+ C s_t); ``clipped=True`` for the
    bounded variant (module docstring).

    Parameters:
      obs_dim (N), latent_dim (M; default max(100, N): the PLRNN's default, the latent size that
        fitted Lorenz best with min-norm forcing, docs/defaults.md),
      hidden_dim (L; default 50): with M = 100 the model then has 2ML = 10^4 weights, as many as the
        default PLRNN's W, so swapping the architecture at default settings does not change the size,
      input_dim: size of an external input s_t (0: autonomous),
      clipped: use the clipped, bounded form (bounded for |A_i| < 1),
      a_init: initial value of the diagonal A (close to 1: the data move little per step; < 1 so the
        clipped model starts bounded),
      w_scale: W1 ~ N(0, w_scale^2/L) and W2 ~ N(0, 1/M) at initialisation,
      ridge, keep_unobserved, learn_observation: the observation model and forcing
        (:mod:`dsrecon.models.observation`),
      seed: initialisation seed (a private torch.Generator; no global RNG is touched).
    h2 starts at N(0, 1) (not zero: the ReLU thresholds must be spread for the layer to cut the state
    space into regions, and with h2 = 0 the clipped bracket is identically zero); h1 starts at 0.
    Raises: ConfigError for latent_dim < obs_dim with learn_observation=False, or hidden_dim < 1.
    References: Hess et al., ICML 2023 (shPLRNN and clipped shPLRNN, their boundedness result);
      "How to train RNNs on chaotic data" App. A.1.3 for the PLRNN it generalises.
    """

    def __init__(
        self,
        obs_dim: int,
        latent_dim: int | None = None,
        *,
        input_dim: int = 0,
        hidden_dim: int = 50,
        clipped: bool = False,
        a_init: float = 0.9,
        w_scale: float = 0.1,
        ridge: float = 0.0,
        keep_unobserved: bool = False,
        learn_observation: bool = True,
        seed: int = 0,
    ):
        super().__init__()
        M = obs.resolve_latent_dim("ShallowPLRNN", obs_dim, latent_dim, default=100,
                                   learn_observation=learn_observation)
        if int(hidden_dim) != hidden_dim or hidden_dim < 1:
            raise ConfigError(f"ShallowPLRNN: hidden_dim must be a positive integer, got {hidden_dim!r}")
        L = int(hidden_dim)
        self.obs_dim, self.latent_dim, self.input_dim, self.hidden_dim = int(obs_dim), M, int(input_dim), L
        self.clipped = bool(clipped)
        self.hparams = dict(
            obs_dim=self.obs_dim, latent_dim=M, input_dim=self.input_dim, hidden_dim=L, clipped=self.clipped,
            a_init=a_init, w_scale=w_scale, ridge=ridge, keep_unobserved=keep_unobserved,
            learn_observation=learn_observation, seed=seed,
        )
        self.ridge, self.keep_unobserved = float(ridge), bool(keep_unobserved)
        gen = torch.Generator().manual_seed(seed)
        self.A = nn.Parameter(torch.full((M,), float(a_init)))
        self.W1 = nn.Parameter(torch.randn(M, L, generator=gen) * (w_scale / L**0.5))
        self.W2 = nn.Parameter(torch.randn(L, M, generator=gen) / M**0.5)
        self.h1 = nn.Parameter(torch.zeros(M))
        self.h2 = nn.Parameter(torch.randn(L, generator=gen))
        obs.add_observation(self, self.obs_dim, M, learn_observation, gen)
        K = self.input_dim
        self.C = nn.Parameter(torch.randn(M, K, generator=gen) * 0.1) if K else None

    # -- the Model interface -------------------------------------------------------------------
    def step(self, z: torch.Tensor, s: torch.Tensor | None = None) -> torch.Tensor:
        # fused: h1 + A z (addcmul), then + W1 hidden (addmm): 4 operations per step instead of 7
        if self.clipped:
            a = z @ self.W2.mT
            hidden = torch.relu(a + self.h2) - torch.relu(a)
        else:
            hidden = torch.relu(affine(self.h2, z, self.W2))
        return add_input(affine(torch.addcmul(self.h1, self.A, z), hidden, self.W1), self.C, s, "ShallowPLRNN")

    def jacobian(self, z: torch.Tensor, s: torch.Tensor | None = None) -> torch.Tensor:
        """diag(A) + W1 diag(d) W2 with d = 1[W2 z + h2 > 0] (- 1[W2 z > 0] when clipped); s does not enter."""
        a = z @ self.W2.mT
        d = (a + self.h2 > 0).to(z.dtype)
        if self.clipped:
            d = d - (a > 0).to(z.dtype)
        return torch.diag_embed(self.A.expand_as(z)) + (self.W1 * d.unsqueeze(-2)) @ self.W2
