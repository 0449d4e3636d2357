"""Gated recurrent unit (GRU) in the original form of Cho et al. (2014).

Update rule ("How to train RNNs on chaotic data" App. A.1.5 Eq. 40), with H units, update gate u,
reset gate r, candidate n, recurrent weights U, input weights W and biases b:

    u_t = σ(U_u h_{t-1} + W_u s_t + b_u)
    r_t = σ(U_r h_{t-1} + W_r s_t + b_r)
    n_t = tanh(U_n (r_t ⊙ h_{t-1}) + W_n s_t + b_n)
    h_t = (1 - u_t) ⊙ n_t + u_t ⊙ h_{t-1}

(the paper writes z_t for the update gate; here z is the state). The reset gate acts *before* U_n, as
in the paper; torch.nn.GRU applies it after (r ⊙ (U_n h + b)), a different model. U is stored stacked as
(3H, H) with rows in the order u, r, n; W likewise (3H, K); b (3H,).

Jacobian (digest §2.8 [derived]; no paper prints it; tested against autograd):

    ∂h_t/∂h_{t-1} = diag(u_t) + diag((h_{t-1} - n_t) ⊙ u_t ⊙ (1 - u_t)) U_u
                    + diag((1 - u_t) ⊙ (1 - n_t^2)) U_n [diag(r_t) + diag(h_{t-1} ⊙ r_t ⊙ (1 - r_t)) U_r]

Observation and forcing are those of every model (:mod:`dsrecon.models.observation`): x = B h,
h_forced = B^+ x (or h + B^+(x - B h) with ``keep_unobserved``).
"""
from __future__ import annotations

import torch
from torch import nn

from . import observation as obs
from .base import add_input


class GRU(obs.LinearObservation, nn.Module):
    """GRU h_t = (1 - u_t) ⊙ n_t + u_t ⊙ h_{t-1} (Cho et al. 2014) with a linear observation model.

    Parameters:
      obs_dim (N), latent_dim: the number of units H = the state size (default max(60, N):
        3H^2 ≈ 10^4 recurrent weights, as many as the default PLRNN and LSTM),
      input_dim: size of an external input s_t (0: autonomous),
      g: gain of the initial recurrent weights, U ~ N(0, g^2/H) (default 1); biases start at 0, so the
        update gate starts half open (σ(0) = 1/2: every unit leaks half of its old value),
      ridge, keep_unobserved, learn_observation: the observation model and forcing
        (:mod:`dsrecon.models.observation`),
      seed: initialisation seed (a private torch.Generator; no global RNG is touched).
    Raises: ConfigError for latent_dim < obs_dim with learn_observation=False.
    References: "How to train RNNs on chaotic data" App. A.1.5 Eq. 40; Cho et al. 2014; digest §2.8.
    """

    def __init__(
        self,
        obs_dim: int,
        latent_dim: int | None = None,
        *,
        input_dim: int = 0,
        g: float = 1.0,
        ridge: float = 0.0,
        keep_unobserved: bool = False,
        learn_observation: bool = True,
        seed: int = 0,
    ):
        super().__init__()
        H = obs.resolve_latent_dim("GRU", obs_dim, latent_dim, default=60,
                                   learn_observation=learn_observation)
        self.obs_dim, self.latent_dim, self.input_dim = int(obs_dim), H, int(input_dim)
        self.hparams = dict(
            obs_dim=self.obs_dim, latent_dim=H, input_dim=self.input_dim, g=g, ridge=ridge,
            keep_unobserved=keep_unobserved, learn_observation=learn_observation, seed=seed,
        )
        self.ridge, self.keep_unobserved = float(ridge), bool(keep_unobserved)
        gen = torch.Generator().manual_seed(seed)
        self.U = nn.Parameter(torch.randn(3 * H, H, generator=gen) * (g / H**0.5))
        self.b = nn.Parameter(torch.zeros(3 * H))
        obs.add_observation(self, self.obs_dim, H, learn_observation, gen)
        K = self.input_dim
        self.W = nn.Parameter(torch.randn(3 * H, K, generator=gen) / K**0.5) if K else None

    def _gates(self, h: torch.Tensor, s: torch.Tensor | None):
        H = self.latent_dim
        U_u, U_r, U_n = self.U[:H], self.U[H:2 * H], self.U[2 * H:]
        drive = add_input(self.b.expand(h.shape[:-1] + (3 * H,)), self.W, s, "GRU")  # W s + b
        u = torch.sigmoid(h @ U_u.T + drive[..., :H])
        r = torch.sigmoid(h @ U_r.T + drive[..., H:2 * H])
        n = torch.tanh((r * h) @ U_n.T + drive[..., 2 * H:])
        return u, r, n

    # -- the Model interface -------------------------------------------------------------------
    def step(self, z: torch.Tensor, s: torch.Tensor | None = None) -> torch.Tensor:
        u, _, n = self._gates(z, s)
        return (1 - u) * n + u * z

    def jacobian(self, z: torch.Tensor, s: torch.Tensor | None = None) -> torch.Tensor:
        """∂h_t/∂h_{t-1} (module docstring; digest §2.8)."""
        H = self.latent_dim
        U_u, U_r, U_n = self.U[:H], self.U[H:2 * H], self.U[2 * H:]
        u, r, n = self._gates(z, s)
        col = lambda v: v.unsqueeze(-1)  # noqa: E731  diag(v) @ U == v[:, None] * U
        d_reset = torch.diag_embed(r) + col(z * r * (1 - r)) * U_r        # ∂(r ⊙ h)/∂h
        return (torch.diag_embed(u) + col((z - n) * u * (1 - u)) * U_u
                + col((1 - u) * (1 - n**2)) * (U_n @ d_reset))
