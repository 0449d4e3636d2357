"""Lyapunov spectra of models: the QR method on any :class:`dsrecon.models.base.Model`.

:func:`qr_log_stretches` (the QR core shared with gradient flossing), :func:`lyapunov_spectrum` (QR method on any
Model, with convergence diagnostics), :func:`kaplan_yorke_dimension`, :func:`condition_number_estimate` and
:func:`predictability_time` (ln 2 / λ_max, from a model's λ_1 or a :class:`MaxLyapunov` from data).

The estimators from data live in their own modules and are re-exported here, so that
``ds.lyapunov.max_lyapunov`` (the name the docs and users know) keeps working: λ_max from a series in
:mod:`dsrecon.maxlyap`, the forcing interval τ in :mod:`dsrecon.tau`, the correlation dimension in
:mod:`dsrecon.dimension`, the delay-embedding toolkit in :mod:`dsrecon.embedding`. The true spectrum of a
dataset's equations reads a card, so it is in the data layer: :func:`dsrecon.data.true_spectrum`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .dimension import CorrelationDimension, correlation_dimension  # noqa: F401 - re-exported (see above)
from .embedding import delay_embedding, estimate_delay, estimate_embedding_dimension, mean_period  # noqa: F401
from .errors import ConfigError, DataError, InputError
from .inputs import check_covers, check_inputs, input_dim
from .maxlyap import ESTIMATORS, MaxLyapunov, max_lyapunov  # noqa: F401 - re-exported (see above)
from .models.base import device_dtype
from .tau import ForcingInterval, forcing_interval  # noqa: F401 - re-exported (see above)


def predictability_time(lam) -> float:
    """τ_pred = ln 2 / λ_max, in steps when λ_max is per step ("How to train RNNs on chaotic data",
    §4.1, Eq. 17; the paper sets the teacher-forcing interval τ from it, §4.3 / App. A.4).

    ``lam``: λ_max per step (a number), or a :class:`MaxLyapunov` result (its ``per_step`` is used after
    checking its ``chaotic`` flag).

    Raises DataError (one line that ends by telling the user to pass ``--tau``) for a result flagged not
    chaotic, or for λ_max ≤ 0 or not finite: τ_pred is then undefined (or huge and meaningless) and τ has
    to be set by hand.
    """
    if isinstance(lam, MaxLyapunov):
        if not lam.chaotic:
            raise DataError(f"the series does not look chaotic ({lam.reason}; lambda_max = {lam.value:.3g} per time "
                            f"unit), so tau_pred = ln2/lambda_max is meaningless; set tau by hand: pass --tau N "
                            f"(forcing interval in steps)")
        lam = lam.per_step
    try:
        lam = float(lam)
    except (TypeError, ValueError):
        raise DataError(f"lambda_max must be a number, got {lam!r}") from None
    if not math.isfinite(lam) or lam <= 0:
        raise DataError(
            f"lambda_max = {lam:.4g} per step is not positive: the series does not look chaotic (or the model has "
            f"no positive Lyapunov exponent), so tau_pred = ln2/lambda is undefined; set tau by hand: pass --tau N "
            f"(forcing interval in steps)")
    return math.log(2.0) / lam



@dataclass
class LyapunovSpectrum:
    """The first k Lyapunov exponents of a model (:func:`lyapunov_spectrum`).

    Attributes
    ----------
    values : np.ndarray (k,)
        Exponents per step, sorted in descending order (mean over initial conditions and ONS seeds);
        ``per_time`` = values / dt.
    dt : float
        Time units per step (given by the caller).
    stderr : np.ndarray (k,)
        Standard error over the ``n_init`` initial conditions (each averaged over its ONS seeds); NaN for one.
    running, running_steps : np.ndarray (n_blocks, k), (n_blocks,)
        Running estimate after each block of steps (convergence diagnostic; "Lyapunov spectra of chaotic
        RNNs" App. A Fig. 18).
    n_steps, n_init, n_ons : int
        Averaged steps, initial conditions, random orthonormal systems per initial condition.
    per_init : np.ndarray (n_init, k)
        The spectrum of each initial condition (averaged over its ONS seeds), in the order of ``values``.
    ons_spread : np.ndarray (k,)
        Standard deviation across the ``n_ons`` ONS seeds, averaged over initial conditions (NaN for
        n_ons = 1). Much larger than ``stderr`` means Q had not converged to the Oseledets directions:
        lengthen ``transient`` ("Lyapunov spectra of chaotic RNNs" App. A, control 6).
    """

    values: np.ndarray
    dt: float
    stderr: np.ndarray
    running: np.ndarray
    running_steps: np.ndarray
    n_steps: int
    n_init: int
    n_ons: int = 1
    per_init: np.ndarray | None = None
    ons_spread: np.ndarray | None = None

    @property
    def per_time(self) -> np.ndarray:
        return self.values / self.dt

    @property
    def stderr_per_time(self) -> np.ndarray:
        return self.stderr / self.dt

    @property
    def kaplan_yorke_dim(self) -> float:
        return kaplan_yorke_dimension(self.values)

    @property
    def entropy_rate(self) -> float:
        """Sum of the positive exponents per time unit (Pesin; "Lyapunov spectra of chaotic RNNs" §III.A)."""
        return float(np.sum(self.per_time[self.per_time > 0]))

    @property
    def neutral_exponent(self) -> float:
        """The exponent closest to 0, per time unit. An autonomous flow that is not at a fixed point has one
        exactly-zero exponent (the direction of the flow); its estimate → 0 as n_steps → ∞ and dt → 0, so
        |neutral_exponent| measures the accuracy of the run ("Lyapunov spectra of chaotic RNNs" App. A,
        control 5). Meaningless for driven models and maps, which have no neutral direction."""
        return float(self.per_time[np.argmin(np.abs(self.per_time))])

    @property
    def drift(self) -> np.ndarray:
        """Change of the running estimate over the second half of the run (per step, (k,)): small compared
        with ``stderr`` when n_steps is long enough."""
        half = int(np.searchsorted(self.running_steps, self.n_steps / 2))
        return self.running[-1] - self.running[min(half, len(self.running) - 1)]

    def __str__(self) -> str:
        def fmt(v, e):
            return f"{v:.4g}" + (f" ± {e:.2g}" if math.isfinite(e) else "")

        shown = ", ".join(fmt(v, e) for v, e in zip(self.per_time[:6], self.stderr_per_time[:6]))
        more = ", ..." if len(self.values) > 6 else ""
        return (f"Lyapunov spectrum per time unit (dt = {self.dt:g}; ± standard error over {self.n_init} initial "
                f"conditions): [{shown}{more}]; D_KY = {self.kaplan_yorke_dim:.3f}; "
                f"entropy rate = {self.entropy_rate:.4g}")


def condition_number_estimate(values, t) -> np.ndarray:
    """κ_2 of the evolved k-dimensional orthonormal system after t steps, estimated from the exponents:
    κ_m(t) ≈ exp((λ_1 − λ_m) t) for m = 1..k ("Gradient Flossing" Eq. 10 and App. J Eq. 28; "Lyapunov
    spectra of chaotic RNNs" Eq. 45).

    ``values``: exponents per step (any order; sorted descending here); ``t``: steps (a number or an
    array). Returns (k,) for scalar t, else (len(t), k). Use it to choose ``qr_every``: κ = 10^p loses p
    digits, so keep κ_k(qr_every) far below 1/eps (digest §1.2), and to see how many directions a gradient
    over t steps can still resolve (the m with κ_m(t) below, e.g., 1e5; "Gradient Flossing" Fig. 2).
    Pitfall: the estimate assumes t is long enough for the exponents to describe the product (the finite-time
    spread is ignored) and overflows to inf for large (λ_1 − λ_m) t.
    """
    lam = np.sort(np.asarray(values, dtype=np.float64).ravel())[::-1]
    tt = np.asarray(t, dtype=np.float64)
    with np.errstate(over="ignore"):
        out = np.exp((lam[0] - lam)[None, :] * tt.reshape(-1, 1))
    return out[0] if tt.ndim == 0 else out


def kaplan_yorke_dimension(values) -> float:
    """D_KY = j + (λ_1 + ... + λ_j) / |λ_{j+1}|, j the largest index with a non-negative partial sum.

    0 when λ_1 < 0; the number of exponents given when every partial sum is non-negative (the estimate
    then needs more exponents). Reference: "Lyapunov spectra of chaotic RNNs" Eq. 3.
    """
    lam = np.sort(np.asarray(values, dtype=float))[::-1]
    partial = np.cumsum(lam)
    nonneg = np.flatnonzero(partial >= 0)
    if len(nonneg) == 0:
        return 0.0
    j = int(nonneg[-1]) + 1
    if j == len(lam):
        return float(j)
    return float(j + partial[j - 1] / abs(lam[j]))


def _step_args(inputs, t):
    """Positional extra argument of step/jacobian at step t: () for autonomous runs, (s_t,) otherwise."""
    return () if inputs is None else (inputs[t],)


def qr_log_stretches(model, z, Q, n_steps, *, qr_every=1, inputs=None):
    """Evolve states z (B, M) and orthonormal frames Q (B, M, k) for n_steps steps of the model:
    Q <- J(z_t, s_t) Q (model.jacobian), z <- model.step(z, s_t); every qr_every steps and at the last
    step Q, R = qr(Q) and log|R_ii| is accumulated. Returns (z, Q, logs) with logs (B, k) the sum of
    log|R_ii| over this call (divide by the number of steps for exponents per step).
    inputs: None or (n_steps, B, K) external inputs s_1..s_n. Differentiable with respect to the model's
    parameters (and z) when called with autograd enabled: no detach / no_grad inside. Q is kept in the
    dtype it is given (float64 for lyapunov_spectrum; flossing may pass float32 or float64).

    This is the one QR core of :func:`lyapunov_spectrum` and of gradient flossing (Benettin et al. 1980;
    "Gradient Flossing" §3 and App. J Alg. 2; "On Lyapunov exponents for RNNs" Alg. 1/2; "Lyapunov
    spectra of chaotic RNNs" App. A). The Jacobian is evaluated at the state *before* the step, so the
    product after n steps is J(z_{n-1}) ··· J(z_0) Q. Autonomous models are called as ``step(z)`` /
    ``jacobian(z)`` (no ``s`` argument), driven ones as ``step(z, s_t)`` / ``jacobian(z, s_t)``; every
    column of Q sees the same input realization (frozen input, "Lyapunov spectra of chaotic RNNs" §VIII).

    Pitfalls: LAPACK's R_ii may be negative, hence log|R_ii|; an R_ii of exactly 0 (a dead direction: an
    exactly singular Jacobian product, e.g. an LSTM resting on its fixed point, docs/models.md) is counted as
    the smallest positive float, log ≈ −708 per QR, so its exponent is a finite number far below every
    resolvable one (≤ −708 / qr_every per step) instead of −∞ (which would turn means and gradients into NaN);
    between two QRs the columns of Q are multiplied by up to exp((λ₁ − λ_k)·qr_every) and
    lose that many digits, so keep qr_every·(λ₁ − λ_k) well below ln(1/eps) (digest §1.2). Nothing here
    checks for non-finite states (no host synchronisation per step); callers do.
    """
    n_steps, qr_every = int(n_steps), int(qr_every)
    if n_steps < 1 or qr_every < 1:
        raise ConfigError(f"n_steps and qr_every must be integers >= 1, got {n_steps} and {qr_every}")
    check_covers(inputs, n_steps)
    logs = torch.zeros(Q.shape[0], Q.shape[-1], dtype=Q.dtype, device=Q.device)
    for t in range(n_steps):
        extra = _step_args(inputs, t)
        Q = model.jacobian(z, *extra).to(Q.dtype) @ Q
        z = model.step(z, *extra)
        if (t + 1) % qr_every == 0 or t + 1 == n_steps:
            Q, R = torch.linalg.qr(Q)
            logs = logs + torch.log(torch.abs(torch.diagonal(R, dim1=-2, dim2=-1)).clamp_min(torch.finfo(Q.dtype).tiny))
    return z, Q, logs


class _SharedState:
    """The model seen by the n_ons frames of one initial condition: step and Jacobian are evaluated once per
    initial condition (rows 0, n_ons, 2 n_ons, ...) and repeated, so the copies stay bit-identical. Batched
    GEMMs round row by row differently (kernel tails on AVX-512: rows 3 and 4 of a (6, 40) product), and a
    chaotic map amplifies that last bit to O(1) within ~150 steps; ``ons_spread`` would then measure the
    divergence of the copies' trajectories instead of the convergence of the frames."""

    def __init__(self, model, n_ons: int):
        self.model, self.n_ons = model, int(n_ons)

    def _one_per_init(self, fn, z, extra):
        out = fn(z[::self.n_ons], *(s[::self.n_ons] for s in extra))
        return out.repeat_interleave(self.n_ons, dim=0)

    def step(self, z, *extra):
        return self._one_per_init(self.model.step, z, extra)

    def jacobian(self, z, *extra):
        return self._one_per_init(self.model.jacobian, z, extra)


def _input_sequence(inputs, n_total: int, B: int, generator, dtype, device):
    """The (n_total, B, K) input tensor of :func:`lyapunov_spectrum` from a tensor/array or a callable."""
    if inputs is None:
        return None
    if callable(inputs):
        inputs = inputs(n_total, B, generator)
    try:
        s = torch.as_tensor(inputs)
    except (TypeError, ValueError, RuntimeError):
        raise ConfigError(f"inputs must be a tensor of shape (transient + n_steps, B, K) or a callable "
                          f"returning one, got {type(inputs).__name__}") from None
    if s.dim() != 3 or s.shape[0] < n_total or s.shape[1] != B:
        raise InputError(f"inputs must have shape (transient + n_steps, n_init, K) = ({n_total}, {B}, K), "
                         f"got {tuple(s.shape)}")
    if not bool(torch.isfinite(s).all()):
        raise InputError("inputs contain NaN/inf values")
    return s[:n_total].to(device=device, dtype=dtype)


def lyapunov_spectrum(model, *, k: int | None = None, n_steps: int = 10_000, transient: int = 1000,
                      qr_every: int = 1, n_init: int = 1, z0=None, dt: float = 1.0, seed: int = 0,
                      n_blocks: int = 20, inputs=None, n_ons: int = 1) -> LyapunovSpectrum:
    """First ``k`` Lyapunov exponents of any :class:`dsrecon.models.base.Model` by the QR method.

    Algorithm (Benettin et al. 1980; "Lyapunov spectra of chaotic RNNs" §III and App. A; "On Lyapunov
    exponents for RNNs" Alg. 1): ``n_init`` initial states (``z0``, or standard normal with ``seed``)
    are iterated ``transient`` steps onto the attractor while a random orthonormal set Q (M x k) is
    evolved and re-orthonormalised without accumulating (so Q aligns with the Oseledets directions);
    then for ``n_steps`` steps Q <- J(z) Q, z <- step(z), and every ``qr_every`` steps Q, R = qr(Q) and
    log|R_ii| is accumulated (:func:`qr_log_stretches`, run block by block for the running estimate).
    λ_i = Σ log|R_ii| / n_steps per step; divide by ``dt`` (given) for per time.
    Deviation vectors are evolved in float64 whatever the model's dtype.

    Parameters: ``inputs`` — external inputs of a driven model (``input_dim > 0``): a tensor
    (transient + n_steps, n_init, K), row t the input s_t of step t (warm-up first), or a callable
    ``inputs(n_total, B, generator) -> tensor`` of that shape, called once with n_total = transient +
    n_steps, B = n_init and a ``torch.Generator`` seeded from ``seed`` (e.g. frozen white noise). All
    deviation vectors of one initial condition see the same input realization ("Lyapunov spectra of
    chaotic RNNs" §VIII; "On Lyapunov exponents for RNNs" §4.1, which averages the spectra over a batch
    of input sequences — here over ``n_init``). The result is then the conditional spectrum given the input
    statistics; a driven flow has no neutral exponent.
    ``n_ons`` — independent random orthonormal systems per initial condition (each its own Q, same state
    and input): their spread (``ons_spread``) checks that Q converged during ``transient`` ("Lyapunov
    spectra of chaotic RNNs" App. A, control 6). The run is batched over n_init x n_ons.
    Convergence controls on the result: ``running`` (estimate against steps), ``drift``, ``stderr`` (over
    initial conditions), ``ons_spread``, ``neutral_exponent`` (flows).

    Returns: :class:`LyapunovSpectrum` (values per step, stderr over initial conditions, running
    estimate, ONS spread, D_KY, entropy rate).
    Raises: DataError if the trajectory becomes non-finite, naming the steps; ConfigError on bad settings.
    Cost: per step one Jacobian (B, M, M), one batched (M x M)(M x k) product and every ``qr_every`` steps a
    QR of (M x k) ("Gradient Flossing" App. F Table 1); with B = n_init x n_ons.
    Pitfalls: R_ii may be negative (LAPACK's sign convention), hence |R_ii|; a large ``qr_every``
    flattens the tail of the spectrum (rounding); a flow's neutral exponent is ≈ 0 only as dt → 0;
    a finite ``n_steps`` leaves a bias of order 1/n_steps (check ``running``).
    """
    M = int(model.latent_dim)
    k = M if k is None else int(k)
    if not 1 <= k <= M:
        raise ConfigError(f"k must be between 1 and the latent dimension {M}, got {k}")
    for name, v, lo in (("n_steps", n_steps, 1), ("transient", transient, 0), ("qr_every", qr_every, 1),
                        ("n_init", n_init, 1), ("n_blocks", n_blocks, 1), ("n_ons", n_ons, 1)):
        if isinstance(v, bool) or int(v) != v or v < lo:
            raise ConfigError(f"{name} must be an integer >= {lo}, got {v!r}")
    n_steps, transient, qr_every = int(n_steps), int(transient), int(qr_every)
    if not (dt > 0 and math.isfinite(dt)):
        raise ConfigError(f"dt must be a positive number, got {dt!r}")
    device, dtype = device_dtype(model)
    g = torch.Generator().manual_seed(seed)
    if z0 is None:
        z = torch.randn(int(n_init), M, generator=g, dtype=torch.float64)
    else:
        z = torch.as_tensor(z0, dtype=torch.float64).reshape(-1, M)
    n_init, n_ons = z.shape[0], int(n_ons)
    B = n_init * n_ons                                   # row b: initial condition b // n_ons, ONS b % n_ons
    z = z.repeat_interleave(n_ons, dim=0).to(device=device, dtype=dtype)
    Q = torch.linalg.qr(torch.randn(B, M, k, generator=g, dtype=torch.float64))[0].to(device)
    s_all = _input_sequence(inputs, transient + n_steps, n_init, g, dtype, device)
    check_inputs(model, s_all, what="the call of lyapunov_spectrum",
                 fix=f"pass inputs= (a tensor (transient + n_steps, n_init, {input_dim(model)}) or a callable)")
    if s_all is not None and n_ons > 1:
        s_all = s_all.repeat_interleave(n_ons, dim=1)     # every ONS of an initial condition: the same input

    stepper = model if n_ons == 1 else _SharedState(model, n_ons)

    def run(z, Q, start, length):
        s = None if s_all is None else s_all[start: start + length]
        z, Q, logs = qr_log_stretches(stepper, z, Q, length, qr_every=qr_every, inputs=s)
        if not bool(torch.isfinite(z).all()) or not bool(torch.isfinite(logs).all()):
            raise DataError(f"the model's trajectory (or its deviation vectors) became non-finite between steps "
                            f"{start + 1} and {start + length} of the Lyapunov run")
        return z, Q, logs

    with torch.no_grad():
        if transient:                                   # warm-up of z and Q: accumulate nothing
            z, Q, _ = run(z, Q, 0, transient)
        acc = torch.zeros(B, k, dtype=torch.float64, device=device)
        block = max(qr_every, (max(1, n_steps // n_blocks) // qr_every) * qr_every)
        running, running_steps, done = [], [], 0
        while done < n_steps:
            length = min(block, n_steps - done)
            z, Q, logs = run(z, Q, transient + done, length)
            acc += logs
            done += length
            running.append((acc.mean(0) / done).cpu().numpy())
            running_steps.append(done)
    per_run = (acc / n_steps).cpu().numpy().reshape(n_init, n_ons, k)
    per_init = per_run.mean(1)
    order = np.argsort(-per_init.mean(0))
    values = per_init.mean(0)[order]
    stderr = (per_init.std(0, ddof=1) / math.sqrt(n_init))[order] if n_init > 1 else np.full(k, np.nan)
    ons_spread = per_run.std(1, ddof=1).mean(0)[order] if n_ons > 1 else np.full(k, np.nan)
    return LyapunovSpectrum(values=values, dt=float(dt), stderr=stderr,
                            running=np.asarray(running)[:, order], running_steps=np.asarray(running_steps),
                            n_steps=int(n_steps), n_init=int(n_init), n_ons=n_ons, per_init=per_init[:, order],
                            ons_spread=ons_spread)

