"""How data enter the latent state during training: one rollout function per training method.

Every function rolls a model over a batch of subsequences ``x`` (T+1, B, N) and returns the predictions
x̂_1..x̂_T (T, B, N) for x_1..x_T, each taken *before* any forcing at that step (the loss is taken first,
then the state is forced: "How to train RNNs on chaotic data" §4.1). :func:`rollout` dispatches on the
method name used by the config and the CLI (``--method``):

========== ===================================================================================================
stf        sparse teacher forcing every τ steps (§4.1 Eq. 15-16, App. A.7) — :func:`sparse_teacher_forcing`
id-tf      the same with the identity observation x = first N latents (the model is built with
           ``learn_observation=False``; the forcing then writes the data into those latents)
gtf        generalized teacher forcing (Hess et al. 2023): z̃_t = (1−α) z_t + α ẑ_t at every step —
           :func:`generalized_teacher_forcing`; α fixed, or adapted by :func:`gtf_alpha_from_lyapunov`
           ("auto") or :func:`gtf_alpha_from_jacobians` ("auto-norm")
bptt-clip  classical BPTT over the whole subsequence, forced only at its start (the caller clips the gradient
           norm to 1: the paper's baseline, §4.2) — :func:`free_rollout`
window     windows of τ steps with the state reset to zero at each window start, no forcing (the paper's
           second baseline, App. A.6.4) — :func:`windowed_rollout`
========== ===================================================================================================

Generation at test time never forces (§4.1).

**Ensembles.** With the stacked view of :class:`dsrecon.ensemble.Ensemble` as ``model``, ``x`` is (T+1, K, B, N),
states are (K, B, M) and predictions (T, K, B, N); GTF then takes one α per member (a list). The same code
runs: every model operation broadcasts over the member axis.

**External inputs.** A driven model (``input_dim > 0``, e.g. the forced Duffing oscillator with
``forcing="input"``) gets ``inputs`` (T+1, B, K) aligned in time with ``x``: the step z_t → z_{t+1} reads
s_t = ``inputs[t]``, the forcing at the start of the step (the sampled ODE map x_{t+1} = Φ(x_t, θ_t) is a
function of the state and the phase at t; the PLRNN with inputs is "How to train RNNs on chaotic data"
App. A.1.3 Eq. 27 plus C s_t). ``inputs=None`` calls ``model.step(z)`` exactly as for an autonomous model.
"""
from __future__ import annotations

import math

import torch

from . import fused
from .config import METHODS
from .errors import ConfigError, InputError
from .inputs import check_inputs, input_dim
from .lyapunov import qr_log_stretches
from .models.base import affine


def _pinv_kw(model) -> dict:
    # B^+ once per call and detached: the control value is data, not a function of the observation
    # parameters, so no gradient reaches B through it.
    return {"pinv": model.observation_pinv().detach()} if hasattr(model, "observation_pinv") else {}


def _observed(model, states: list[torch.Tensor]) -> torch.Tensor:
    # one (T*B, M) x (M, N) product instead of T small ones
    return model.observe(torch.stack(states))


def _check_inputs(model, x: torch.Tensor, inputs: torch.Tensor | None) -> None:
    """One-line InputErrors for inputs that do not fit the model (:func:`dsrecon.inputs.check_inputs`) or the
    batch, before the rollout."""
    K = input_dim(model)
    check_inputs(model, inputs, what="the call of the rollout", fix=f"pass inputs= of shape (T+1, B, {K}) aligned with x")
    if inputs is not None and (inputs.dim() != 3 or inputs.shape[0] < x.shape[0] - 1 or inputs.shape[1] != x.shape[1]):
        raise InputError(f"inputs must have shape ({x.shape[0]}, {x.shape[1]}, {K}) (time, batch, input) aligned "
                         f"with x {tuple(x.shape)}, got {tuple(inputs.shape)}")


def _step(model, z: torch.Tensor, inputs: torch.Tensor | None, t: int) -> torch.Tensor:
    # the step z_t -> z_{t+1} reads s_t; an autonomous rollout calls step(z) exactly as before
    return model.step(z) if inputs is None else model.step(z, inputs[t])


def sparse_teacher_forcing(model, x: torch.Tensor, tau: int, *, inputs: torch.Tensor | None = None,
                           states_out: list | None = None) -> torch.Tensor:
    """Sparsely forced rollout ("How to train RNNs on chaotic data" §4.1, Eq. 15-16, App. A.7).

    A subsequence starts from the control state z̃_0 = force(x_0); the model then runs freely, and at every
    forcing time t ∈ {τ, 2τ, ...} the state is replaced by the control value z̃_t = force(x_t, z_t), after
    the prediction at t has been recorded. The control value is detached, so ∂z_{t+1}/∂z_t = 0 at forcing
    times and back-propagation is cut into pieces of at most τ steps (App. A.7 Eq. 94-96): gradients grow
    like exp(λ_max τ) at most, which stays bounded when τ ≈ τ_pred = ln 2 / λ_max.

    ``inputs``: external inputs (T+1, B, K) of a driven model, aligned with ``x`` (z_{t+1} = step(z_t, s_t));
    None for an autonomous one. ``states_out``: if a list is given, the latent states z_1..z_T are appended
    to it (for a latent regulariser or adaptive GTF). Returns x̂_1..x̂_T (T, B, N).
    ``tau``: an int, or for an ensemble (``x`` (T+1, K, B, N)) a sequence of K ints, one per member (a
    τ-sweep folded into one job, :func:`member_taus`): at time t the members with t % τ_k = 0 are forced.
    """
    tau, due = member_taus(tau, x)
    _check_inputs(model, x, inputs)
    kw = _pinv_kw(model)
    z = model.force(x[0], **kw).detach()
    states = []
    for t in range(1, x.shape[0]):
        z = _step(model, z, inputs, t - 1)
        states.append(z)
        if due is not None:   # one τ per member: the control value is taken, detached, by the members due at t;
            if t in due:      # the others run on with their gradient path intact (each sees its single run's τ_k)
                z = torch.where(due[t], model.force(x[t], z.detach(), **kw).detach(), z)
        elif t % tau == 0:
            z = model.force(x[t], z.detach(), **kw).detach()
    if states_out is not None:
        states_out.extend(states)
    return _observed(model, states)


def free_rollout(model, x: torch.Tensor, *, inputs: torch.Tensor | None = None,
                 states_out: list | None = None) -> torch.Tensor:
    """Classical BPTT: forced once at the start (z_0 = force(x_0)), then free over the whole subsequence.

    The gradient crosses every step, so on chaotic data it grows like exp(λ_max T); the paper's baseline
    clips its norm to 1 ("How to train RNNs on chaotic data" §4.2), which :func:`dsrecon.train.train_loop` does
    for ``method="bptt-clip"``.
    """
    return sparse_teacher_forcing(model, x, x.shape[0], inputs=inputs, states_out=states_out)


def windowed_rollout(model, x: torch.Tensor, tau: int, *, inputs: torch.Tensor | None = None,
                     states_out: list | None = None) -> torch.Tensor:
    """Windowing baseline ("How to train RNNs on chaotic data" App. A.6.4, Fig. 9): the subsequence is cut
    into windows of τ steps and the latent state is reset to zero at the start of each (the first window
    included); no data enter the state. Gradients are cut like in sparse forcing, but every window starts
    without any information about where the system is, which "equally destroys performance". External
    ``inputs`` (T+1, B, K) still drive every step: they are not data about the state."""
    tau, due = member_taus(tau, x)
    _check_inputs(model, x, inputs)
    z = torch.zeros(*x.shape[1:-1], model.latent_dim, dtype=x.dtype, device=x.device)   # (B, M) or (K, B, M)
    states = []
    for t in range(1, x.shape[0]):
        z = _step(model, z, inputs, t - 1)
        states.append(z)
        if due is not None:   # per-member windows: reset the members whose window ends at t
            if t in due:
                z = torch.where(due[t], torch.zeros_like(z), z)
        elif t % tau == 0:
            z = torch.zeros_like(z)
    if states_out is not None:
        states_out.extend(states)
    return _observed(model, states)


def generalized_teacher_forcing(model, x: torch.Tensor, alpha: float, *, inputs: torch.Tensor | None = None,
                                states_out: list | None = None) -> torch.Tensor:
    """Generalized teacher forcing (Hess, Monfared, Brenner & Durstewitz, ICML 2023, "Generalized Teacher
    Forcing for Learning Chaotic Dynamics", §3 Eq. 5-7).

    At every step the model's state is pulled towards the data-inferred state ẑ_t:

        z̃_t = (1 − α) z_t + α ẑ_t,      ẑ_t = z_t + B⁺(x_t − B z_t),      z_{t+1} = step(z̃_t),

    with the prediction x̂_t = observe(z_t) taken before the mixing. In ẑ_t the state z_t and B⁺ are detached (no
    gradient reaches z through ẑ, so the gradient crosses a step scaled by exactly 1 − α), but the observation matrix
    B in B z_t is not: a learned B also receives the gradient of the mixing term, −α B⁺ᵀ Σ_t μ_t z_tᵀ (μ_t the
    adjoint of z̃_t; :mod:`dsrecon.fused` computes the same term). ẑ_t is the state closest to the
    model's own whose observation is x_t: its observed part comes from the data, its unobserved part
    (the null space of B, M > N) is the model's. So the forward pass pulls only the observed subspace
    towards the data (z̃ = z + α B⁺(x − Bz)), while the gradient crosses each step scaled by (1 − α) in
    every direction: products of Jacobians are damped by (1 − α)^T and stay bounded on any orbit when
    (1 − α)·e^{λ_1} ≤ 1. α = 0 is free BPTT. Starts from force(x_0).

    Why not the min-norm ẑ = B⁺x_t of sparse forcing: it zeroes the unobserved latents, so every mixing
    step shrinks them by (1 − α), which free runs never do; with it a 100-unit PLRNN on Lorenz reached a
    one-step loss of 2·10⁻⁴ while its free runs collapsed (validation D_stsp ≈ 16, docs/training.md).
    When M = N (Hess et al.'s setting, B invertible) both readings are the same.
    ``inputs`` (T+1, B, K): external inputs of a driven model, z_{t+1} = step(z̃_t, s_t).
    ``alpha``: a number, or a list with one α per member of an ensemble (``model`` is then the stacked view
    of :meth:`dsrecon.ensemble.Ensemble.stacked` and ``x`` is (T+1, K, B, N)).
    """
    alphas = _gtf_alphas(alpha)
    # one alpha per ensemble member (x (T+1, K, B, N), z (K, B, M)): a (K, 1, 1) tensor, moved once per rollout
    a = torch.tensor(alphas, dtype=x.dtype).view(-1, 1, 1).to(x.device) if isinstance(alpha, (list, tuple)) \
        else alphas[0]
    _check_inputs(model, x, inputs)
    P = model.observation_pinv().detach()   # GTF needs the linear observation's inverse
    z = model.force(x[0], pinv=P).detach()
    xP, neg_P = x @ P.mT, -P   # B^+ x_t for every t in one product, outside the time loop
    states = []
    for t in range(1, x.shape[0]):
        z = _step(model, z, inputs, t - 1)
        states.append(z)
        if max(alphas) > 0:
            zd = z.detach()
            # data-inferred state ẑ = z + B^+ x_t - B^+ B z (observed part from x_t), then (1 - α) z + α ẑ by
            # lerp, whose gradient to z is (1 - α): 4 operations per step
            z_hat = zd + affine(xP[t], model.observe(zd), neg_P)
            z = torch.lerp(z, z_hat, a)
    if states_out is not None:
        states_out.extend(states)
    return _observed(model, states)


def _gtf_alphas(alpha) -> list[float]:
    """GTF's α as a list (one per member, or one), with a one-line ConfigError outside [0, 1]."""
    alphas = [float(v) for v in alpha] if isinstance(alpha, (list, tuple)) else [float(alpha)]
    if not all(0.0 <= v <= 1.0 for v in alphas):
        raise ConfigError(f"GTF alpha must lie in [0, 1], got {alpha!r}")
    return alphas


def _next_inputs(states: torch.Tensor, inputs: torch.Tensor | None) -> torch.Tensor | None:
    """Inputs of the step after each of the rollout's states z_1..z_T (T, B, M): s_1..s_T of the
    rollout's inputs (T+1, B, K), flattened like the states (time-major)."""
    if inputs is None:
        return None
    T = states.shape[0]
    return inputs[1:T + 1].reshape(-1, inputs.shape[-1])


@torch.no_grad()
def gtf_alpha_from_jacobians(model, states: torch.Tensor, *, inputs: torch.Tensor | None = None,
                             max_states: int = 256) -> float:
    """Adaptive GTF α from one-step Jacobian norms (Hess et al. 2023, §3.2): α* = max(0, 1 − 1/G), G the
    geometric mean of the spectral norms ‖J(z_t)‖₂ over (a sample of) the given latent states (…, M).

    ``gtf_alpha="auto-norm"``. With α = α*, (1 − α) G = 1, which bounds the product of the damped
    Jacobians by 1. Pitfall: ‖J‖₂ bounds the growth of single steps, not of long products; for a 100-unit
    PLRNN on Lorenz we measured G ≈ 1.9 (α ≈ 0.46) where the actual growth rate is e^{λ_1} ≈ 1.014 per
    step: the model was then forced so hard that its free runs diverged (docs/training.md). The default
    ``"auto"`` uses :func:`gtf_alpha_from_lyapunov`. ``inputs``: the rollout's external inputs (T+1, B, K)
    of a driven model (its Jacobian depends on s), None otherwise.
    """
    z = states.reshape(-1, states.shape[-1])
    s = _next_inputs(states, inputs)
    if z.shape[0] > max_states:
        pick = torch.linspace(0, z.shape[0] - 1, max_states, device=z.device).long()
        z, s = z[pick], None if s is None else s[pick]
    J = model.jacobian(z) if s is None else model.jacobian(z, s)
    norms = torch.linalg.matrix_norm(J.double(), ord=2)
    G = float(torch.exp(torch.log(norms.clamp_min(1e-12)).mean()))
    if not math.isfinite(G):
        return 1.0
    return max(0.0, 1.0 - 1.0 / G)


@torch.no_grad()
def gtf_alpha_from_lyapunov(model, states: torch.Tensor, *, inputs: torch.Tensor | None = None,
                            n_steps: int = 50, n_starts: int = 8) -> float:
    """Adaptive GTF α from the growth rate of Jacobian *products*: α* = max(0, 1 − exp(−λ_1)), λ_1 the
    largest Lyapunov exponent per step of the model, estimated by the QR method (k = 1) over ``n_steps``
    free steps from ``n_starts`` of the given latent states (…, M).

    ``gtf_alpha="auto"`` (TrainConfig's default is a fixed 0.15). The gradient through T damped steps grows like
    ((1 − α) e^{λ_1})^T ("Gradient Flossing" §2, "How to train RNNs on chaotic data" Thm. 2), so
    (1 − α*) e^{λ_1} = 1 is the least forcing that keeps it bounded. This is the idea of Hess et al.
    (2023, §3.2) with the product's growth rate in place of their bound by one-step norms, which
    over-forces (see :func:`gtf_alpha_from_jacobians`). A non-chaotic model (λ_1 ≤ 0) gets α = 0.

    ``inputs``: the rollout's external inputs (T+1, B, K) of a driven model. The free steps then read the
    inputs that follow each start inside the batch window, so starts are taken from the states whose
    continuation of min(n_steps, T) steps lies in the window.
    """
    s = None
    if inputs is None:
        z = states.reshape(-1, states.shape[-1])
        z = z[torch.linspace(0, z.shape[0] - 1, min(n_starts, z.shape[0]), device=z.device).long()]
    else:
        T, B = states.shape[0], states.shape[1]
        n_steps = min(int(n_steps), T)
        cand = states[: T - n_steps + 1].reshape(-1, states.shape[-1])   # z_{t+1} with t + n_steps <= T
        pick = torch.linspace(0, cand.shape[0] - 1, min(n_starts, cand.shape[0]), device=cand.device).long()
        z, t0, b = cand[pick], pick // B + 1, pick % B                    # z_{t0} reads s_{t0} first
        s = inputs[t0[None, :] + torch.arange(n_steps, device=inputs.device)[:, None], b[None, :]]
    Q = torch.ones(z.shape[0], z.shape[1], 1, dtype=torch.float64, device=z.device) / math.sqrt(z.shape[1])
    _, _, logs = qr_log_stretches(model, z, Q, n_steps, qr_every=1, inputs=s)
    lam = float(logs.mean()) / n_steps
    if not math.isfinite(lam):
        return 1.0
    return max(0.0, 1.0 - math.exp(-lam))


def member_taus(tau, x: torch.Tensor) -> tuple[int, dict | None]:
    """τ of a rollout: (τ, None) for one interval, the shared one when a per-member sequence holds one value
    (so that path stays bit-identical to a scalar τ); for K different values (x (T+1, K, B, N), an ensemble
    whose members were a τ-sweep) (max τ, ``due``): for every time t at which some member is forced, a bool
    mask (K, 1, 1) of those members. One-line ConfigError for τ < 1 or a sequence of the wrong length."""
    if not isinstance(tau, (list, tuple)):
        if tau is None or int(tau) < 1:
            raise ConfigError(f"tau must be >= 1, got {tau}")
        return int(tau), None
    taus = [int(t) for t in tau]
    if not taus or min(taus) < 1:
        raise ConfigError(f"tau must be >= 1 for every member, got {list(tau)}")
    if len(set(taus)) == 1:
        return taus[0], None
    if x.dim() != 4 or x.shape[1] != len(taus):
        raise ConfigError(f"one tau per member needs x of shape (T+1, K={len(taus)}, B, N), got {tuple(x.shape)}")
    t_all = torch.arange(1, x.shape[0])
    hits = t_all[:, None] % torch.tensor(taus)[None, :] == 0            # (T, K): member k forced at t
    rows = hits.any(1).nonzero().flatten().tolist()
    masks = hits[rows].view(len(rows), len(taus), 1, 1).to(x.device)   # moved once per rollout
    return max(taus), {int(t_all[r]): masks[i] for i, r in enumerate(rows)}


def rollout(model, x: torch.Tensor, method: str, *, tau: int | None = None, alpha: float | list = 0.0,
            inputs: torch.Tensor | None = None, states_out: list | None = None) -> torch.Tensor:
    """The rollout of training method ``method`` (see the module docstring) -> x̂_1..x̂_T (T, B, N).
    ``inputs`` (T+1, B, K): external inputs of a driven model, aligned with ``x``; None otherwise.

    The PLRNN and shPLRNN without inputs run the fused rollout of :mod:`dsrecon.fused` (the same states and
    gradients, computed with an analytic backward pass; ``DSRECON_ROLLOUT=eager`` turns it off); every other model
    runs the eager functions above, the reference the fused one is tested against."""
    if fused.supports(model, method, inputs, x):   # the PLRNN family: one autograd operation (dsrecon.fused)
        due = None
        if method in ("stf", "id-tf", "window"):
            tau, due = member_taus(tau, x)
            due = due or {t: None for t in range(tau, x.shape[0] - 1, tau)}
        elif method == "gtf":
            _gtf_alphas(alpha)
        return fused.rollout(model, x, method, due=due, alpha=alpha, states_out=states_out)
    kw = dict(inputs=inputs, states_out=states_out)
    if method in ("stf", "id-tf"):
        return sparse_teacher_forcing(model, x, tau, **kw)
    if method == "gtf":
        return generalized_teacher_forcing(model, x, alpha, **kw)
    if method == "bptt-clip":
        return free_rollout(model, x, **kw)
    if method == "window":
        return windowed_rollout(model, x, tau, **kw)
    raise ConfigError(f"unknown training method {method!r}; available: {', '.join(METHODS)}")
