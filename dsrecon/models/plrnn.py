"""Piecewise-linear RNN (PLRNN).

Update rule ("How to train RNNs on chaotic data" App. A.1.3, Eq. 27; Durstewitz 2017):

    z_t = A z_{t-1} + W relu(z_{t-1}) + h (+ C s_t)

with A diagonal (auto-regression), W off-diagonal (coupling), h a bias and C s_t an optional
external input. Observation is linear, x_t = B z_t with B of shape (N, M) (M < N too:
:mod:`dsrecon.models.observation`).

Jacobian (App. A.1.3 Eq. 28-29): J_t = A + W D_Ω(t-1), D_Ω = diag(1[z_{t-1} > 0]); it lives next to
the update rule and is tested against autograd.

Forcing (§4.1 Eq. 15) and the observation model are shared by all models and live in
:mod:`dsrecon.models.observation`: the control state is B^+ x (pseudo-inverse, or ridge inverse for
``ridge > 0``; (B^T B)^{-1} does not exist for M > N). With ``keep_unobserved=True`` the null-space
part of z keeps the model's own value, z_forced = z + B^+ (x - B z). The default
(``keep_unobserved=False``) is the paper's rule: the min-norm solution, unobserved latents reset to
zero at every forcing step. Keeping them stalled training in our experiments (loss stuck near 0.44,
free runs collapsing to a fixed point, D_stsp 13-15; ``benchmarks/bench_defaults.py``, docs/defaults.md).
"""
from __future__ import annotations

import torch
from torch import nn

from . import observation as obs
from .base import add_input, affine


class PLRNN(obs.LinearObservation, nn.Module):
    """PLRNN with a learned linear observation model.

    Parameters:
      obs_dim (N), latent_dim (M; default max(100, N), see ``benchmarks/bench_defaults.py``; M < N needs a
        learned B),
      input_dim: size of an external input s_t (0: autonomous),
      a_init: initial value of the diagonal A (close to 1: the data move little per step),
      w_scale: std of the initial off-diagonal W entries divided by sqrt(M),
      ridge: 0 for the pseudo-inverse in ``force``, > 0 for the ridge inverse,
      keep_unobserved: what the unobserved latents get at a forcing step (see module docstring),
      learn_observation: learn B (True) or fix B = [I 0], i.e. x = the first N latents (False),
      seed: initialisation seed (a private torch.Generator; no global RNG is touched).
    """

    def __init__(
        self,
        obs_dim: int,
        latent_dim: int | None = None,
        *,
        input_dim: int = 0,
        a_init: float = 0.9,
        w_scale: float = 0.1,
        ridge: float = 0.0,
        keep_unobserved: bool = False,
        learn_observation: bool = True,
        seed: int = 0,
    ):
        super().__init__()
        latent_dim = obs.resolve_latent_dim("PLRNN", obs_dim, latent_dim, default=100,
                                            learn_observation=learn_observation)
        self.obs_dim, self.latent_dim, self.input_dim = int(obs_dim), latent_dim, int(input_dim)
        self.hparams = dict(
            obs_dim=self.obs_dim, latent_dim=latent_dim, input_dim=self.input_dim, a_init=a_init,
            w_scale=w_scale, ridge=ridge, keep_unobserved=keep_unobserved,
            learn_observation=learn_observation, seed=seed,
        )
        self.ridge, self.keep_unobserved = float(ridge), bool(keep_unobserved)
        g = torch.Generator().manual_seed(seed)
        M, N = latent_dim, obs_dim
        self.A = nn.Parameter(torch.full((M,), float(a_init)))
        # W is off-diagonal: its diagonal starts at zero and its gradient there is masked, so no
        # optimiser step (Adam's included: zero gradient -> zero update) ever changes it, and the hot
        # loop uses W as it is.
        self.register_buffer("offdiag", 1.0 - torch.eye(M))
        self.W = nn.Parameter(torch.randn(M, M, generator=g) * w_scale / M**0.5 * self.offdiag)
        self.W.register_hook(lambda grad: grad * self.offdiag)
        self.h = nn.Parameter(torch.zeros(M))
        obs.add_observation(self, N, M, learn_observation, g)  # B: [I 0] (+ noise when learned)
        self.C = nn.Parameter(torch.randn(M, input_dim, generator=g) * 0.1) if input_dim else None

    # -- the Model interface -------------------------------------------------------------------
    def step(self, z: torch.Tensor, s: torch.Tensor | None = None) -> torch.Tensor:
        # fused: h + A z (addcmul), then + W relu(z) (addmm, or baddbmm over an ensemble's member axis)
        return add_input(affine(torch.addcmul(self.h, self.A, z), torch.relu(z), self.W), self.C, s, "PLRNN")

    def jacobian(self, z: torch.Tensor, s: torch.Tensor | None = None) -> torch.Tensor:
        """J = diag(A) + W diag(1[z > 0]) (App. A.1.3 Eq. 29); inputs do not enter J."""
        active = (z > 0).to(z.dtype)
        return torch.diag_embed(self.A.expand_as(z)) + self.W.unsqueeze(0) * active.unsqueeze(1)
