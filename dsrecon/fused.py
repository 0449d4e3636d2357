"""Fused training rollouts of the PLRNN family: the whole subsequence as one autograd operation whose backward
pass is the analytic adjoint recursion (issue 14, part 2).

Why: a small RNN trained in eager PyTorch is bound by per-operation overhead, not arithmetic. Autograd records
every operation of every time step and replays its backward one small operation at a time, and each
parameter's gradient is summed over T steps as T small products plus T additions. Here the forward pass runs
without a graph (the same operations as the eager rollout, so the states are the same), and the backward pass
runs the adjoint (back-propagation through time written out, Werbos 1990):

    λ_t = ∂L/∂z_t + c_t · J(z̃_t)ᵀ λ_{t+1},        J = the architecture's analytic Jacobian,

with c_t the share of the gradient the forcing lets through at t ("How to train RNNs on chaotic data" §4.1 and
App. A.7 Eq. 94-96: 0 at a sparse-forcing time, 1 elsewhere; Hess et al. 2023 §3: 1 − α under generalized
teacher forcing). Only the vector-Jacobian products λ ↦ Jᵀλ stay in the time loop; every parameter's gradient
is then one large product per chunk of steps (all its T·B samples at once, the chunk sized to stay in the cache),
e.g. ∂L/∂W = Σ_t λ_{t+1} relu(z̃_t)ᵀ for the PLRNN. The forward pass keeps its ReLU outputs (written into one
buffer per rollout), from which the backward pass takes the ReLU slopes without recomputing anything.

What is fused: :class:`~dsrecon.models.PLRNN` and :class:`~dsrecon.models.ShallowPLRNN` (clipped or not),
autonomous (no external inputs), under every training method of :mod:`dsrecon.forcing` (stf, id-tf, gtf,
bptt-clip, window), single models and the stacked view of an :class:`~dsrecon.ensemble.Ensemble` (per-member τ
and α included). Everything else runs the eager rollout, which stays the reference: tests/test_fused.py checks
the fused states and every parameter's gradient against autograd through the eager rollout. Setting the
environment variable ``DSRECON_ROLLOUT=eager`` turns fusing off everywhere (a debugging switch; results agree to
float rounding).

The gradients are those of the eager rollout, term for term: the control values of sparse forcing and the
data-inferred state ẑ of GTF are detached, and under GTF the observation matrix B receives the gradient of the
term −B⁺ B z inside ẑ (ẑ detaches z and B⁺ but not B, as in :func:`dsrecon.forcing.generalized_teacher_forcing`).
"""
from __future__ import annotations

import os

import torch

from .models import PLRNN, ShallowPLRNN
from .models.base import affine

FUSED_METHODS = ("stf", "id-tf", "gtf", "bptt-clip", "window")
EAGER_ABOVE_BYTES = 16 * 2**20   # a PLRNN ensemble with more state than this per rollout runs eager (supports)
CHUNK_ELEMENTS = 2**18   # elements of the bulk tensors of one chunk of time steps in the backward pass (1 MiB float32)
CHUNK_ELEMENTS_GPU = 2**26   # ... on a GPU, where each chunk's ~10 bulk operations are kernel launches: few chunks


def enabled() -> bool:
    """False when the environment says ``DSRECON_ROLLOUT=eager`` (read at each call, so a test can switch it)."""
    return os.environ.get("DSRECON_ROLLOUT", "fused").strip().lower() != "eager"


def supports(model, method: str, inputs, x: torch.Tensor | None = None) -> bool:
    """Whether :func:`rollout` runs ``model`` under ``method`` on data ``x`` (T+1, [K,] B, N): fusing enabled, an
    autonomous PLRNN or shPLRNN, a method of :data:`FUSED_METHODS`.

    Not, on the CPU, the stacked view of a PLRNN ensemble whose states z_1..z_T exceed :data:`EAGER_ABOVE_BYTES`:
    there the bulk passes over the states are memory-bound and the fused rollout measured slower than the eager one
    (M = 100, batch 32, 200 steps, ms per training step, eager against fused: K = 2 32.6 / 28.1, K = 4 58.5 / 51.6,
    K = 8 (20 MB of states) 91 / 101-106). The shPLRNN's ensembles measured faster fused (K = 8: M = 3, L = 100
    63 / 40; M = 10, L = 300 45 / 35; docs/ensembles.md). A GPU, bound by kernel launches rather than memory at
    these sizes, runs every size fused (not yet measured there: benchmarks/gpu_check.sh)."""
    if not (enabled() and inputs is None and method in FUSED_METHODS and type(model) in _KERNELS
            and getattr(model, "C", None) is None):
        return False
    if type(model) is PLRNN and model.A.dim() > 1 and x is not None and x.device.type == "cpu":
        return (x.shape[0] - 1) * (x[0].numel() // x.shape[-1]) * model.latent_dim * x.element_size() \
            <= EAGER_ABOVE_BYTES
    return True


# -- the architectures' steps and adjoints ---------------------------------------------------------------
# Per-step tensors are time-major, (T, [K,] B, D), so that each step's state, adjoint and gradient is one contiguous
# block for the small products of the time loop. The bulk work of a chunk of c steps is member-major and flat,
# ([K,] c·B, D): each sum over time and batch is then one product per member.
def _by_member(t: torch.Tensor) -> torch.Tensor:
    """(c, [K,] B, D) -> ([K,] c·B, D): a view for one model, one copy of contiguous blocks for an ensemble."""
    if t.dim() == 3:
        return t.reshape(-1, t.shape[-1])
    return t.transpose(0, 1).reshape(t.shape[1], -1, t.shape[-1])


def _steps(f: torch.Tensor, c: int) -> tuple:
    """([K,] c·B, D) -> the c per-step views ([K,] B, D)."""
    return f.view(*f.shape[:-2], c, -1, f.shape[-1]).unbind(-3)


def _sum_rows(f: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Σ over the rows (time and batch) of f ([K,] c·B, D), shaped like the parameter ``like`` ((D,), or an
    ensemble's stacked (K, 1, D))."""
    return f.sum(-2).reshape(like.shape)


def _outer(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """aᵀb for a ([K,] R, I), b ([K,] R, J) -> ([K,] I, J), the sum over the rows of their outer products. With I > J
    computed as (bᵀa)ᵀ: the product with the narrow output runs 4-5x slower (measured, CPU, R = 200-6400, I = 100-300,
    J = 3-10)."""
    return (b.mT @ a).mT.contiguous() if a.shape[-1] > b.shape[-1] else a.mT @ b


def _kept(z: torch.Tensor, T: int, width: int) -> tuple[torch.Tensor, tuple]:
    """A time-major buffer (T, [K,] B, width) for a ReLU output the forward pass keeps for the backward one, and its
    per-step views ([K,] B, width), contiguous, written by ``clamp_min(..., out=)``."""
    buf = torch.empty(T, *z.shape[:-1], width, dtype=z.dtype, device=z.device)
    return buf, buf.unbind(0)


def _chunk(buf: torch.Tensor, j0: int, j1: int) -> torch.Tensor:
    """Steps j0..j1-1 of a kept buffer as ([K,] c·B, D) (:func:`_by_member`)."""
    return _by_member(buf[j0:j1])


class _PLRNNKernel:
    """z' = h + A z + W relu(z) (App. A.1.3 Eq. 27); Jᵀλ = A λ + Wᵀλ ⊙ 1[z > 0] (Eq. 29). The update rule repeats
    :meth:`dsrecon.models.PLRNN.step` to keep its ReLU output; tests/test_fused.py holds the two states equal."""
    names = ("A", "W", "h")

    @staticmethod
    def width(p) -> int:
        return p[0].shape[-1]

    @staticmethod
    def keep(p, z, T):
        R, Rs = _kept(z, T, z.shape[-1])
        return {"R": R, "Rs": Rs}

    @staticmethod
    def step_keeping(p, z, t, kept):
        """The model's step, operation for operation (clamp_min(z, 0) is relu), keeping relu(z̃_t) for the backward
        pass."""
        A, W, h = p
        return affine(torch.addcmul(h, A, z), torch.clamp_min(z, 0, out=kept["Rs"][t]), W)

    @staticmethod
    def prepare(p, Zt_c, kept, j0, j1):
        R = _chunk(kept["R"], j0, j1)
        D = torch.sign(R)   # the ReLU's slopes of the chunk's steps at once (R >= 0)
        return {"Zf": _by_member(Zt_c), "R": R, "D": D, "Ds": _steps(D, j1 - j0)}

    @staticmethod
    def vjp_add(p, lam, i, cache, g, s, out):
        """out = g + s Jᵀλ at step i of the chunk, for a number s: three operations."""
        A, W, _ = p
        torch.addcmul(torch.addcmul(g, A, lam, value=s), lam @ W, cache["Ds"][i], value=s, out=out)

    @staticmethod
    def vjp_bulk(p, Lf, cache):
        """Jᵀλ at every step of the chunk, flat ([K,] c·B, M)."""
        A, W, _ = p
        return torch.addcmul(A * Lf, Lf @ W, cache["D"])

    @staticmethod
    def param_grads(p, Lf, cache, needs):
        A, W, h = p
        Zf = cache["Zf"]
        return (_sum_rows(Lf * Zf, A) if needs[0] else None,
                _outer(Lf, cache["R"]) if needs[1] else None,
                _sum_rows(Lf, h) if needs[2] else None)


class _ShallowKernel:
    """z' = h1 + A z + W1 φ(W2 z + h2) with φ(a + h2) = relu(a + h2) (− relu(a) when clipped) (Hess et al. 2023);
    Jᵀλ = A λ + W2ᵀ[(W1ᵀλ) ⊙ d], d = 1[a + h2 > 0] (− 1[a > 0]). The update rule repeats
    :meth:`dsrecon.models.ShallowPLRNN.step` to keep its ReLU outputs; tests/test_fused.py holds the states equal."""
    names = ("A", "W1", "W2", "h1", "h2")

    def __init__(self, clipped: bool):
        self.clipped = clipped

    @staticmethod
    def width(p) -> int:
        return p[1].shape[-1]   # L

    def keep(self, p, z, T):
        L = p[1].shape[-1]
        on, ons = _kept(z, T, L)
        kept = {"on": on, "ons": ons}
        if self.clipped:
            kept["off"], kept["offs"] = _kept(z, T, L)
        return kept

    def step_keeping(self, p, z, t, kept):
        """The model's step, operation for operation (clamp_min(x, 0) is relu), keeping relu(W2 z̃_t + h2) (and
        relu(W2 z̃_t) when clipped) for the backward pass."""
        A, W1, W2, h1, h2 = p
        if self.clipped:
            a = z @ W2.mT
            hidden = torch.clamp_min(a + h2, 0, out=kept["ons"][t]) - torch.clamp_min(a, 0, out=kept["offs"][t])
        else:
            hidden = torch.clamp_min(affine(h2, z, W2), 0, out=kept["ons"][t])
        return affine(torch.addcmul(h1, A, z), hidden, W1)

    def prepare(self, p, Zt_c, kept, j0, j1):
        W2 = p[2]
        on = _chunk(kept["on"], j0, j1)      # relu(a + h2) of the chunk's steps, a = W2 z̃
        d_on = torch.sign(on)
        if self.clipped:
            off = _chunk(kept["off"], j0, j1)
            d, hidden = d_on - torch.sign(off), on - off
        else:
            d, hidden = d_on, on
        # W2 as the transpose of a contiguous W2ᵀ: the product (B x L) @ (L x M) with a long inner and a narrow
        # outer dimension runs ~2x faster in that layout (measured, CPU, L = 100-300, M = 3-10)
        return {"Zf": _by_member(Zt_c), "d": d, "ds": _steps(d, j1 - j0), "d_on": d_on, "hidden": hidden,
                "W2": W2.mT.contiguous().mT}

    @staticmethod
    def vjp_add(p, lam, i, cache, g, s, out):
        """out = g + s Jᵀλ at step i of the chunk, for a number s: four operations."""
        A, W1 = p[0], p[1]
        eta = (lam @ W1).mul_(cache["ds"][i])
        (torch.addmm if lam.dim() == 2 else torch.baddbmm)(torch.addcmul(g, A, lam, value=s), eta, cache["W2"],
                                                            alpha=s, out=out)

    @staticmethod
    def vjp_bulk(p, Lf, cache):
        """Jᵀλ at every step of the chunk, flat ([K,] c·B, M)."""
        A, W1 = p[0], p[1]
        return ((Lf @ W1).mul_(cache["d"]) @ cache["W2"]).addcmul_(A, Lf)

    @staticmethod
    def param_grads(p, Lf, cache, needs):
        A, W1, W2, h1, h2 = p
        Zf = cache["Zf"]
        E = Lf @ W1                          # W1ᵀλ at the chunk's steps: one product
        return (_sum_rows(Lf * Zf, A) if needs[0] else None,
                _outer(Lf, cache["hidden"]) if needs[1] else None,
                _outer(E * cache["d"], Zf) if needs[2] else None,
                _sum_rows(Lf, h1) if needs[3] else None,
                _sum_rows(E * cache["d_on"], h2) if needs[4] else None)


_KERNELS = {PLRNN: lambda m: _PLRNNKernel(), ShallowPLRNN: lambda m: _ShallowKernel(m.clipped)}


# -- the forcing plan -----------------------------------------------------------------------------------
class _Plan:
    """What happens to the state after step t (t = 1..T-1) and how much gradient passes back through it.

    ``kind``: "none" (bptt-clip, or GTF with α = 0), "replace" (stf, id-tf: the control value force(x_t, z_t);
    window: zero) at the times in ``due`` (t -> None for every member, or a (K, 1, 1) bool mask), or "gtf"
    (z̃ = lerp(z, ẑ, α) at every step)."""

    def __init__(self, model, x, method, due, alpha):
        self.model, self.x, self.kind, self.due = model, x, "none", {}
        self.P = model.observation_pinv().detach() if method != "window" else None
        if method in ("stf", "id-tf", "window"):
            self.kind, self.due, self.zero = "replace", due, method == "window"
        elif method == "gtf":
            alphas = [float(v) for v in alpha] if isinstance(alpha, (list, tuple)) else [float(alpha)]
            self.alphas = alphas
            if max(alphas) > 0:
                self.kind = "gtf"
                self.a = torch.tensor(alphas, dtype=x.dtype).view(-1, 1, 1).to(x.device) \
                    if isinstance(alpha, (list, tuple)) else alphas[0]
                # z̃ = lerp(z, ẑ, α) with ẑ = z + B⁺(x − B z) is z̃ = αB⁺x + z (I − αB⁺B)ᵀ: one product per step
                # instead of the eager rollout's four operations: the same values up to rounding; the gradients
                # stay the eager ones (ẑ passes none to z or B⁺, some to B), in _Rollout.backward
                B = model.B.detach()
                eye = torch.eye(B.shape[-1], dtype=x.dtype, device=x.device)
                self.axP, self.mixing = self.a * (x @ self.P.mT), eye - self.a * (self.P @ B)

    def start(self) -> torch.Tensor:
        """z̃_0: the control state of x_0 (zero for the windowing baseline)."""
        x = self.x
        if self.P is None:
            return torch.zeros(*x.shape[1:-1], self.model.latent_dim, dtype=x.dtype, device=x.device)
        return self.model.force(x[0], pinv=self.P)

    def mix(self, z: torch.Tensor, t: int) -> torch.Tensor:
        """z̃_t from z_t: the eager rollout's values (tests/test_fused.py holds the states equal)."""
        if self.kind == "gtf":
            return affine(self.axP[t], z, self.mixing)
        if self.kind == "replace" and t in self.due:
            c = torch.zeros_like(z) if self.zero else self.model.force(self.x[t], z, pinv=self.P)
            mask = self.due[t]
            return c if mask is None else torch.where(mask, c, z)
        return z

    def scale(self, t: int):
        """The share of ∂L/∂z̃_t that reaches z_t: 0 at a forcing time (the control is detached), 1 − α under GTF,
        1 otherwise (None); a number, or a ([K,] 1, 1) tensor when the members differ."""
        if self.kind == "gtf":
            return 1.0 - self.a
        if self.kind == "replace" and t in self.due:
            mask = self.due[t]
            return 0.0 if mask is None else (~mask).to(self.x.dtype)
        return None


def _kept_tensors(kept: dict) -> list:
    """The buffers of a kernel's ``keep`` (its per-step views are rebuilt from them when needed)."""
    return [v for v in kept.values() if isinstance(v, torch.Tensor)]


class _Rollout(torch.autograd.Function):
    """States z_1..z_T (T, [K,] B, M) of the forced rollout as a function of the architecture's parameters
    (and of B, which GTF's ẑ reads). Not differentiable twice."""

    @staticmethod
    def forward(ctx, kernel, plan, B, *params):
        T = plan.x.shape[0] - 1
        z = plan.start()
        inputs, states = [z], []
        kept = kernel.keep(params, z, T)
        step, mix, every = kernel.step_keeping, plan.mix, plan.kind == "gtf"
        for t in range(1, T + 1):
            z = step(params, z, t - 1, kept)
            states.append(z)
            if t < T:
                if every or t in plan.due:
                    z = mix(z, t)
                inputs.append(z)
        Z = torch.stack(states)
        ctx.kernel, ctx.plan = kernel, plan
        ctx.save_for_backward(torch.stack(inputs), Z, *_kept_tensors(kept), *params)
        ctx.kept_names = [k for k, v in kept.items() if isinstance(v, torch.Tensor)]
        return Z

    @staticmethod
    def backward(ctx, G):
        kernel, plan = ctx.kernel, ctx.plan
        Zt, Z, *rest = ctx.saved_tensors
        n_kept = len(ctx.kept_names)
        kept, params = dict(zip(ctx.kept_names, rest[:n_kept])), rest[n_kept:]
        G = G.contiguous()
        T = Z.shape[0]
        needs = ctx.needs_input_grad[3:]
        Lam = torch.empty_like(Z)            # Lam[j] = λ_{j+1}, the adjoint of the state step j produced
        Lams, Gs = Lam.unbind(0), G.unbind(0)   # per-step views, made once
        scales = [plan.scale(j) for j in range(T)]
        Lams[T - 1].copy_(Gs[T - 1])
        grads = [None] * len(params)
        S = None                             # Σ_t μ_t z_tᵀ (μ_t = Jᵀλ_{t+1}) for B's gradient under GTF
        # ... from λ_t = G_t + (1 − α) μ_t after the loop when every 1 − α > 0, else from Jᵀλ chunk by chunk
        mu_from_lambda = plan.kind == "gtf" and ctx.needs_input_grad[2] and max(plan.alphas) < 1.0
        mu_scale = 1.0 - plan.a if mu_from_lambda else None
        # time in chunks, last first: the bulk tensors of a chunk (masks, hidden layer) stay small enough for the
        # cache, and each chunk's parameter gradients are one product per parameter and member
        width = Z[0, ..., :1].numel() * max(Z.shape[-1], kernel.width(params))   # K·B·max(M, L)
        size = max(1, (CHUNK_ELEMENTS if Z.device.type == "cpu" else CHUNK_ELEMENTS_GPU) // width)
        for j0 in range(((T - 1) // size) * size, -1, -size):
            j1 = min(j0 + size, T)
            cache = kernel.prepare(params, Zt[j0:j1], kept, j0, j1)
            for j in range(j1 - 1, max(j0, 1) - 1, -1):   # λ_j = G_j + s_j Jᵀ(z̃_j) λ_{j+1}
                s, out = scales[j], Lams[j - 1]
                if s is None:
                    kernel.vjp_add(params, Lams[j], j - j0, cache, Gs[j - 1], 1.0, out)
                elif not isinstance(s, float):                # per-member shares
                    kernel.vjp_add(params, Lams[j], j - j0, cache, torch.zeros_like(out), 1.0, out)
                    torch.addcmul(Gs[j - 1], out, s, out=out)
                elif s == 0.0:
                    out.copy_(Gs[j - 1])                    # a forcing time: no gradient crosses it
                else:
                    kernel.vjp_add(params, Lams[j], j - j0, cache, Gs[j - 1], s, out)
            Lf = _by_member(Lam[j0:j1])
            part = kernel.param_grads(params, Lf, cache, needs)
            grads = [g if p is None else (p if g is None else g.add_(p)) for g, p in zip(grads, part)]
            if plan.kind == "gtf" and ctx.needs_input_grad[2] and not mu_from_lambda:
                lo = max(j0, 1)                             # μ_j pairs with z_j = Z[j - 1], for j >= 1
                rows = (lo - j0) * Z.shape[-2]
                mu = kernel.vjp_bulk(params, Lf, cache)[..., rows:, :]
                part = mu.mT @ _by_member(Z[lo - 1:j1 - 1])
                S = part if S is None else S.add_(part)
        if mu_from_lambda:                       # μ_j = (λ_j − G_j) / (1 − α): M-wide, no pass over the hidden layer
            S = _by_member(Lam[:-1] - G[:-1]).mT @ _by_member(Z[:-1]) / mu_scale
        dB = None
        if S is not None:                    # B inside ẑ = z + B⁺x − B⁺B z: ∂L/∂B = −α B⁺ᵀ Σ_t μ_t z_tᵀ
            dB = -plan.a * (plan.P.mT @ S)
        return (None, None, dB, *grads)


def rollout(model, x: torch.Tensor, method: str, *, due: dict | None = None, alpha=0.0,
            states_out: list | None = None) -> torch.Tensor:
    """The fused rollout of ``method`` (module docstring) -> x̂_1..x̂_T (T, [K,] B, N), the same values and
    gradients as :func:`dsrecon.forcing.rollout`'s eager path.

    ``due``: for stf, id-tf and window, the forcing (or reset) times t (1 <= t < T) -> None (every member) or a
    (K, 1, 1) bool mask of the members due (:func:`dsrecon.forcing.member_taus`); ``alpha``: GTF's α, a number or
    one per member. ``states_out``: if a list, z_1..z_T are appended."""
    kernel = _KERNELS[type(model)](model)
    plan = _Plan(model, x, method, due or {}, alpha)
    params = [getattr(model, n) for n in kernel.names]
    B = model.B if plan.kind == "gtf" else model.B.detach()
    Z = _Rollout.apply(kernel, plan, B, *params)   # (T, [K,] B, M)
    if states_out is not None:
        states_out.extend(Z.unbind(0))
    if Z.dim() == 3:
        return model.observe(Z)
    T, K, Bn, _ = Z.shape                          # an ensemble: one (T·B, M) x (M, N) product per member
    return model.observe(_by_member(Z)).view(K, T, Bn, -1).transpose(0, 1)
