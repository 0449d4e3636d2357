"""LSTM with the full [h, c] state and its 2H x 2H analytic Jacobian.

Update rule ("How to train RNNs on chaotic data" App. A.1.4 Eq. 31-32; "Gradient flossing" App. B.1
Eq. 12-17), with H units, recurrent weights U, input weights W and biases b:

    i_t = σ(U_i h_{t-1} + W_i s_t + b_i)        f_t = σ(U_f h_{t-1} + W_f s_t + b_f)
    g_t = tanh(U_g h_{t-1} + W_g s_t + b_g)     o_t = σ(U_o h_{t-1} + W_o s_t + b_o)
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t             h_t = o_t ⊙ tanh(c_t)

The state is z_t = [h_t, c_t] (size M = 2H; ``model.units`` = H), so the spectrum has 2H exponents: the
H x H Jacobian of h alone is insufficient ("Gradient flossing" §3 and App. D.3; "How to train RNNs on
chaotic data" Remark 3 and Eq. 35). U is stored stacked as (4H, H) with rows in the order i, f, g, o;
W likewise (4H, K); b (4H,). Every operation broadcasts over a leading member axis (weights (K, 4H, H), states
(K, B, 2H)), so an :class:`dsrecon.ensemble.Ensemble` batches LSTMs as it does the PLRNN.

Jacobian (digest §2.7, derived from the equations; σ'_a = a ⊙ (1 - a), k_t = 1 - tanh^2(c_t)):

    ∂c_t/∂c_{t-1} = diag(f_t)
    ∂c_t/∂h_{t-1} = diag(c_{t-1} σ'_f) U_f + diag(g_t σ'_i) U_i + diag(i_t (1 - g_t^2)) U_g
    ∂h_t/∂c_{t-1} = diag(o_t k_t f_t)
    ∂h_t/∂h_{t-1} = diag(tanh(c_t) σ'_o) U_o + diag(o_t k_t) ∂c_t/∂h_{t-1}
    J_t = [[∂h_t/∂h_{t-1}, ∂h_t/∂c_{t-1}], [∂c_t/∂h_{t-1}, ∂c_t/∂c_{t-1}]]

Observation reads h only: x = B h with B of shape (N, H); the c columns of the full (N, 2H)
observation are structurally zero, so ``observation_pinv()`` (2H, N) has zero c rows.

Forcing (what happens to c; the issue asks for this to be explicit): h is set from the data exactly as
every other model's state is (h = B^+ x, or h + B^+(x - B h) with ``keep_unobserved``;
:mod:`dsrecon.models.observation`). The cell state is not observed, so the data say nothing about it:

- ``force_cell="keep"`` (default): c keeps the model's current value at a forcing step, so the cell
  carries memory across forcing intervals, which is what it is for. When ``force`` is called without a
  current state (the start of a subsequence, or of a free run), c = 0.
- ``force_cell="zero"``: c = 0 at every forcing step (the min-norm solution of B h = x for the whole
  [h, c] state; forcing then equals ``x @ observation_pinv().T`` exactly).

In sparse teacher forcing the state passed to ``force`` is detached, so with "keep" the kept c is data
for the next interval and no gradient crosses a forcing step through it either.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from . import observation as obs
from .base import add_input

FORCE_CELL = ("keep", "zero")


class LSTM(nn.Module):
    """LSTM on the state z = [h, c] (size 2H) with observation x = B h.

    Parameters:
      obs_dim (N), units: the number of units H (default max(50, N): a state of size 2H = 100,
        the PLRNN's default state size, and 4H^2 = 10^4 recurrent weights, as many as the PLRNN's),
      input_dim: size of an external input s_t (0: autonomous),
      g: gain of the initial recurrent weights, U ~ N(0, g^2/H) (default 1),
      forget_bias: initial b_f (default 1: the forget gate starts mostly open, σ(1) ≈ 0.73, so c keeps
        memory from the start; Gers et al. 2000, Jozefowicz et al. 2015); the other biases start at 0,
      force_cell: "keep" or "zero", what c gets at a forcing step (module docstring),
      ridge, keep_unobserved, learn_observation: the observation model of h and its forcing
        (:mod:`dsrecon.models.observation`); learn_observation=False reads x = the first N units of h,
      seed: initialisation seed (a private torch.Generator; no global RNG is touched).
    Attributes: ``units`` = H, ``latent_dim`` = 2H (the state size every algorithm sees): two names, two
      numbers. (Before issue 13 the constructor called H ``latent_dim``; model files that say so are read by
      :func:`dsrecon.models.upgrade_hparams`. A run config's ``model.latent_dim`` is the constructor's size
      argument, so for an LSTM it is H.)
    Raises: ConfigError for units < obs_dim with learn_observation=False, or an unknown ``force_cell``.
    References: "How to train RNNs on chaotic data" App. A.1.4; "Gradient flossing" App. B.1 and D.3;
      digest §2.7 for the block Jacobian.
    """

    def __init__(
        self,
        obs_dim: int,
        units: int | None = None,
        *,
        input_dim: int = 0,
        g: float = 1.0,
        forget_bias: float = 1.0,
        force_cell: str = "keep",
        ridge: float = 0.0,
        keep_unobserved: bool = False,
        learn_observation: bool = True,
        seed: int = 0,
    ):
        super().__init__()
        H = obs.resolve_latent_dim("LSTM", obs_dim, units, default=50, param="units",
                                   learn_observation=learn_observation)
        if force_cell not in FORCE_CELL:
            raise ConfigError(f"LSTM: unknown force_cell {force_cell!r}; use one of {', '.join(FORCE_CELL)}")
        self.obs_dim, self.units, self.latent_dim, self.input_dim = int(obs_dim), H, 2 * H, int(input_dim)
        self.hparams = dict(
            obs_dim=self.obs_dim, units=H, input_dim=self.input_dim, g=g, forget_bias=forget_bias,
            force_cell=force_cell, ridge=ridge, keep_unobserved=keep_unobserved,
            learn_observation=learn_observation, seed=seed,
        )
        self.force_cell = force_cell
        self.ridge, self.keep_unobserved = float(ridge), bool(keep_unobserved)
        gen = torch.Generator().manual_seed(seed)
        self.U = nn.Parameter(torch.randn(4 * H, H, generator=gen) * (g / H**0.5))
        b = torch.zeros(4 * H)
        b[H:2 * H] = float(forget_bias)
        self.b = nn.Parameter(b)
        obs.add_observation(self, self.obs_dim, H, learn_observation, gen)  # B: (N, H), reads h
        K = self.input_dim
        self.W = nn.Parameter(torch.randn(4 * H, K, generator=gen) / K**0.5) if K else None

    def _gates(self, z: torch.Tensor, s: torch.Tensor | None):
        H = self.units
        h, c = z[..., :H], z[..., H:]
        pre = add_input(h @ self.U.mT + self.b, self.W, s, "LSTM")
        i, f, o = (torch.sigmoid(pre[..., k * H:(k + 1) * H]) for k in (0, 1, 3))
        g = torch.tanh(pre[..., 2 * H:3 * H])
        c_new = f * c + i * g
        return c, i, f, g, o, c_new, torch.tanh(c_new)

    # -- the Model interface -------------------------------------------------------------------
    def step(self, z: torch.Tensor, s: torch.Tensor | None = None) -> torch.Tensor:
        *_, o, c_new, tc = self._gates(z, s)
        return torch.cat([o * tc, c_new], dim=-1)

    def jacobian(self, z: torch.Tensor, s: torch.Tensor | None = None) -> torch.Tensor:
        """The 2H x 2H block Jacobian d[h_t, c_t]/d[h_{t-1}, c_{t-1}] (module docstring; digest §2.7)."""
        H = self.units
        c, i, f, g, o, c_new, tc = self._gates(z, s)
        U_i, U_f, U_g, U_o = (self.U[..., k * H:(k + 1) * H, :] for k in range(4))
        col = lambda v: v.unsqueeze(-1)  # noqa: E731  diag(v) @ U == v[:, None] * U
        dc_dh = col(c * f * (1 - f)) * U_f + col(g * i * (1 - i)) * U_i + col(i * (1 - g**2)) * U_g
        ok = o * (1 - tc**2)
        dh_dh = col(tc * o * (1 - o)) * U_o + col(ok) * dc_dh
        dh_dc = torch.diag_embed(ok * f)
        dc_dc = torch.diag_embed(f)
        return torch.cat([torch.cat([dh_dh, dh_dc], -1), torch.cat([dc_dh, dc_dc], -1)], -2)

    def observe(self, z: torch.Tensor) -> torch.Tensor:
        return z[..., :self.units] @ self.B.mT

    def observation_pinv(self) -> torch.Tensor:
        """(2H, N): B^+ (or the ridge inverse) for the h rows, zeros for the c rows."""
        P = obs.observation_pinv(self.B, self.ridge)
        return torch.cat([P, torch.zeros_like(P)], dim=-2)

    def force(self, x: torch.Tensor, z: torch.Tensor | None = None, pinv: torch.Tensor | None = None):
        """Control state [h, c] from observation x (B, N): h from the data (as every model), c kept
        (``force_cell="keep"`` and z given) or zero; see the module docstring. Only the h rows of
        ``pinv`` (2H, N) are used."""
        H = self.units
        P = self.observation_pinv() if pinv is None else pinv
        h = obs.force_state(x, self.B, P[..., :H, :], None if z is None else z[..., :H], self.keep_unobserved)
        if z is not None and self.force_cell == "keep":
            c = z[..., H:]
        else:
            c = torch.zeros_like(h)
        return torch.cat([h, c], dim=-1)
