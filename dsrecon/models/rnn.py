"""Vanilla tanh RNN in the post-activation convention.

Update rule ("How to train RNNs on chaotic data" §3.1 Eq. 1 and App. A.1.2):

    z_t = tanh(W z_{t-1} + C s_t + b)

with W (M x M) the recurrent weights, b a bias and C s_t an optional external input. The state is the
activation itself, so z stays in (-1, 1)^M. Observation is linear, x_t = B z_t (shared with every model:
:mod:`dsrecon.models.observation`).

Jacobian (§3.1 Eq. 3, with the factor order corrected, digest erratum #18):

    J_t = diag(1 - z_t^2) W,    z_t = tanh(W z_{t-1} + C s_t + b)

i.e. the rows of W scaled by tanh' at the new pre-activation. The pre-activation convention
h_{t+1} = W tanh(h_t) (+ V s) of "Gradient flossing" Eq. 9 has J = W diag(1 - tanh^2 h_t); both give the
same Lyapunov spectrum (the two Jacobian products differ only by fixed boundary factors; digest §2.3,
tested in tests/test_models.py).

Initialisation: W ~ N(0, g^2/M) (``init="gaussian"``), or g times a random orthogonal matrix
(``init="orthogonal"``; all singular values equal g). For the Gaussian W the origin is a stable fixed
point for g < 1 with λ_i ≈ ln g + ½ ln(1 - i/M) (circular law; "Lyapunov spectra of chaotic RNNs"
§IV, Eq. 19 and digest §5(4)), and the network becomes chaotic for g somewhat above 1.

Forcing: z_forced = B^+ x (or z + B^+(x - B z) with ``keep_unobserved``), as for the PLRNN. A forced
state can leave (-1, 1)^M when the data are not scaled into that range; the next step maps it back.
With ``learn_observation=False`` the data are written into the first N units, so standardised data
(|x| often > 1) give states no tanh unit can reach in a free run: prefer a learned B for this model.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from . import observation as obs
from .base import add_input, affine

INITS = ("gaussian", "orthogonal")


class RNN(obs.LinearObservation, nn.Module):
    """Vanilla tanh RNN z_t = tanh(W z_{t-1} + C s_t + b) with a linear observation model.

    Parameters:
      obs_dim (N), latent_dim (M; default max(100, N): the PLRNN's default state size, which
        fitted Lorenz best in docs/defaults.md, and the same M^2 recurrent weights),
      input_dim: size of an external input s_t (0: autonomous),
      g: gain of the initial W (std g/sqrt(M), or g times an orthogonal matrix). Default 0.9: just below
        the transition to chaos at g ≈ 1, so the untrained net is stable (λ_1 ≈ ln 0.9 ≈ -0.1 per step:
        gradients over the τ steps between forcings neither explode nor vanish fast) yet close to the
        edge where a small change of W makes it chaotic,
      init: "gaussian" or "orthogonal",
      ridge, keep_unobserved, learn_observation: the observation model and forcing
        (:mod:`dsrecon.models.observation`),
      seed: initialisation seed (a private torch.Generator; no global RNG is touched).
    Raises: ConfigError for latent_dim < obs_dim with learn_observation=False, or an unknown ``init``.
    References: "How to train RNNs on chaotic data" §3.1, App. A.1.2; "Lyapunov spectra of chaotic
      RNNs" §IV (random-matrix spectra of the Gaussian initialisation).
    """

    def __init__(
        self,
        obs_dim: int,
        latent_dim: int | None = None,
        *,
        input_dim: int = 0,
        g: float = 0.9,
        init: str = "gaussian",
        ridge: float = 0.0,
        keep_unobserved: bool = False,
        learn_observation: bool = True,
        seed: int = 0,
    ):
        super().__init__()
        M = obs.resolve_latent_dim("RNN", obs_dim, latent_dim, default=100,
                                   learn_observation=learn_observation)
        if init not in INITS:
            raise ConfigError(f"RNN: unknown init {init!r}; use one of {', '.join(INITS)}")
        self.obs_dim, self.latent_dim, self.input_dim = int(obs_dim), M, int(input_dim)
        self.hparams = dict(
            obs_dim=self.obs_dim, latent_dim=M, input_dim=self.input_dim, g=g, init=init, ridge=ridge,
            keep_unobserved=keep_unobserved, learn_observation=learn_observation, seed=seed,
        )
        self.ridge, self.keep_unobserved = float(ridge), bool(keep_unobserved)
        gen = torch.Generator().manual_seed(seed)
        if init == "gaussian":
            W = torch.randn(M, M, generator=gen) * (g / M**0.5)
        else:  # Haar-random orthogonal: QR of a Gaussian matrix with the signs of diag(R) fixed
            Q, R = torch.linalg.qr(torch.randn(M, M, generator=gen))
            W = g * Q * torch.sign(torch.diagonal(R))
        self.W = nn.Parameter(W)
        self.b = nn.Parameter(torch.zeros(M))
        obs.add_observation(self, self.obs_dim, M, learn_observation, gen)
        K = self.input_dim
        self.C = nn.Parameter(torch.randn(M, K, generator=gen) / K**0.5) if K else None

    # -- the Model interface -------------------------------------------------------------------
    def step(self, z: torch.Tensor, s: torch.Tensor | None = None) -> torch.Tensor:
        return torch.tanh(add_input(affine(self.b, z, self.W), self.C, s, "RNN"))   # b + W z in one addmm

    def jacobian(self, z: torch.Tensor, s: torch.Tensor | None = None) -> torch.Tensor:
        """J = diag(1 - z_t^2) W at z_t = step(z, s) (§3.1 Eq. 3; digest erratum #18: diag first)."""
        z_next = self.step(z, s)
        return (1 - z_next**2).unsqueeze(-1) * self.W
