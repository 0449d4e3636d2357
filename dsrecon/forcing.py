"""How data enter the latent state during training.

Sparse teacher forcing ("How to train RNNs on chaotic data" §4.1, Eq. 15-16, App. A.7): a subsequence
x_0..x_T starts from the control state z̃_0 = force(x_0); the model then runs freely, and at every
forcing time t ∈ {τ, 2τ, ...} the loss at t is taken first and the state is then replaced by the
control value z̃_t = force(x_t, z_t). The control value is detached, so ∂z_{t+1}/∂z_t = 0 at forcing
times and back-propagation is cut into pieces of at most τ steps (App. A.7 Eq. 94-96): gradients grow
like exp(λ_max τ) at most, which stays bounded when τ ≈ τ_pred = ln 2 / λ_max.

Generation at test time never forces (§4.1).
"""
from __future__ import annotations

import torch


def sparse_teacher_forcing(model, x: torch.Tensor, tau: int) -> torch.Tensor:
    """Roll ``model`` over a batch of subsequences ``x`` (T+1, B, N) with forcing every ``tau`` steps.

    Returns the predictions x̂_1..x̂_T (T, B, N) for x_1..x_T, each taken *before* any forcing at
    that step; the caller's loss is e.g. ``mse(pred, x[1:])``.
    Pitfall: B^+ is computed once per call and detached: the control value is data, not a function
    of the observation parameters, so no gradient reaches B through it.
    """
    if tau < 1:
        raise ValueError(f"tau must be >= 1, got {tau}")
    pinv = model.observation_pinv().detach() if hasattr(model, "observation_pinv") else None
    kw = {"pinv": pinv} if pinv is not None else {}
    z = model.force(x[0], **kw).detach()
    states = []
    for t in range(1, x.shape[0]):
        z = model.step(z)
        states.append(z)  # observed after the loop: one (T*B, M) x (M, N) product instead of T small ones
        if t % tau == 0:
            z = model.force(x[t], z.detach(), **kw).detach()
    return model.observe(torch.stack(states))
