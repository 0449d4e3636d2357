"""True equations of the simulated benchmark systems.

Each ODE system is a vector field ``rhs(t, u, **parameters)`` plus an accurate integrator that samples it
every ``dt``. The data module calls :func:`simulate`; the Lyapunov code uses :class:`FlowModel`, which
wraps a vector field as a :class:`dsrecon.models.base.Model` (one RK4 step per ``dt`` split into
sub-steps, Jacobian by automatic differentiation), so the spectrum code meets known answers before any
trained network.

The forced Duffing oscillator is made autonomous by its forcing phase θ (θ' = ω), so its state is
(x, v, θ) and the QR code sees an ordinary flow. The Mackey-Glass equation is a delay-differential
equation: :func:`integrate_dde` (method of steps, RK4 with cubic interpolation of the stored history)
samples it, and :class:`DelayMap` is the same scheme as a Model whose state is the history buffer.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from scipy.integrate import odeint

from .errors import DataError
from .models.base import autograd_jacobian


def lorenz(t, u, sigma: float, rho: float, beta: float):
    """Lorenz (1963): x' = σ(y − x), y' = x(ρ − z) − y, z' = xy − βz. Works on numpy and torch."""
    x, y, z = u[..., 0], u[..., 1], u[..., 2]
    dx = sigma * (y - x)
    dy = x * (rho - z) - y
    dz = x * y - beta * z
    if isinstance(u, torch.Tensor):
        return torch.stack([dx, dy, dz], dim=-1)
    return np.stack([dx, dy, dz], axis=-1)


def rossler(t, u, a: float, b: float, c: float):
    """Rössler (1976): x' = −y − z, y' = x + a y, z' = b + z (x − c)."""
    x, y, z = u[..., 0], u[..., 1], u[..., 2]
    d = (-y - z, x + a * y, b + z * (x - c))
    if isinstance(u, torch.Tensor):
        return torch.stack(d, dim=-1)
    return np.stack(d, axis=-1)


def duffing(t, u, alpha: float, beta: float, delta: float, gamma: float, omega: float):
    """Forced Duffing oscillator x'' + δx' + βx + αx³ = γ cos(ωt), autonomous in (x, v, θ) with θ' = ω
    (θ = ωt + θ₀ is the forcing phase). With α = 1, β = −1 the potential is a double well."""
    x, v, th = u[..., 0], u[..., 1], u[..., 2]
    cos = torch.cos if isinstance(u, torch.Tensor) else np.cos
    d = (v, -delta * v - beta * x - alpha * x ** 3 + gamma * cos(th), omega + 0.0 * th)
    if isinstance(u, torch.Tensor):
        return torch.stack(d, dim=-1)
    return np.stack(d, axis=-1)


def mackey_glass(x, x_delayed, beta: float, gamma: float, n: float, delay: float):
    """Mackey & Glass (1977): x'(t) = β x(t−ρ) / (1 + x(t−ρ)ⁿ) − γ x(t), with delay ρ = ``delay``.
    ``x`` and ``x_delayed`` are floats or tensors; x stays positive for a positive history."""
    return beta * x_delayed / (1.0 + x_delayed ** n) - gamma * x


@dataclass(frozen=True)
class System:
    """A vector field with its state names and a default initial-condition box."""

    rhs: Callable
    dims: tuple[str, ...]
    ic_center: tuple[float, ...]
    ic_scale: float


SYSTEMS: dict[str, System] = {
    "lorenz": System(lorenz, ("x", "y", "z"), (1.0, 1.0, 20.0), 5.0),
    "rossler": System(rossler, ("x", "y", "z"), (1.0, 1.0, 0.0), 2.0),
    "duffing": System(duffing, ("x", "v", "phase"), (0.0, 0.0, 0.0), 1.0),
}


@dataclass(frozen=True)
class DelaySystem:
    """A scalar delay-differential equation x' = rhs(x, x(t − delay), **parameters) with a default box for
    its constant initial history (center ± scale · N(0, 1), kept positive)."""

    rhs: Callable
    dims: tuple[str, ...]
    history_center: float
    history_scale: float


DELAY_SYSTEMS: dict[str, DelaySystem] = {
    "mackey_glass": DelaySystem(mackey_glass, ("x",), 1.2, 0.3),
}


def get_system(name: str) -> System:
    try:
        return SYSTEMS[name]
    except KeyError:
        if name in DELAY_SYSTEMS:
            raise DataError(f"{name!r} is a delay-differential equation, not an ODE: use systems.DelayMap "
                            f"(the history buffer as the state) instead of FlowModel") from None
        known = ", ".join(sorted([*SYSTEMS, *DELAY_SYSTEMS]))
        raise DataError(f"unknown system {name!r}; known systems: {known}") from None


def system_dims(name: str) -> tuple[str, ...]:
    """State names of an ODE or delay system (before any observation map of the data module)."""
    if name in DELAY_SYSTEMS:
        return DELAY_SYSTEMS[name].dims
    return get_system(name).dims


# ------------------------------------------------------------------------------ delay equations
def _delay_steps(delay: float, h: float) -> int:
    N = int(round(delay / h))
    if N < 2 or abs(N * h - delay) > 1e-9 * max(1.0, delay):
        raise DataError(f"the delay {delay} is not a whole number (>= 2) of integration steps h = {h}; choose "
                        f"dt and substeps so that delay / (dt / substeps) is an integer")
    return N


def _rk4_dde_step(f, x, older, d0, d1, d2, h):
    """One RK4 step of x' = f(x, x(t − ρ)) with ρ = N·h: d0 = x_{k−N}, d1 = x_{k−N+1} are grid values of the
    history, the half-step value x_{k−N+1/2} is the cubic (4-point Lagrange) interpolant through
    x_{k−N−1} (``older``), d0, d1, d2 = x_{k−N+2}: (−older + 9 d0 + 9 d1 − d2) / 16, accurate to O(h⁴)."""
    mid = (9.0 * (d0 + d1) - older - d2) / 16.0
    k1 = f(x, d0)
    k2 = f(x + 0.5 * h * k1, mid)
    k3 = f(x + 0.5 * h * k2, mid)
    k4 = f(x + h * k3, d1)
    return x + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def integrate_dde(f: Callable, history: Callable | np.ndarray, *, delay: float, h: float, n_steps: int) -> np.ndarray:
    """Integrate a scalar delay equation x'(t) = f(x(t), x(t − delay)) by the method of steps.

    Algorithm: classical RK4 with step h on the grid t_k = k·h, where delay = N·h exactly. The delayed
    argument at t_k and t_k + h is a stored grid value x_{k−N}, x_{k−N+1}; at the half step it is the cubic
    interpolant of the stored history (:func:`_rk4_dde_step`), so the scheme is 4th order for smooth
    solutions (Bellen & Zennaro 2003, "Numerical methods for delay differential equations", ch. 3-4).
    Parameters: ``history`` — a function of t (t <= 0) sampled at t = −(N+1)h, ..., 0, or an array of those
    N + 2 values; ``n_steps`` steps after t = 0.
    Returns: x at t = 0, h, ..., n_steps·h (n_steps + 1 values).
    Raises: DataError if delay is not a whole number of steps or the solution becomes non-finite.
    Pitfalls: a history whose derivative jumps at t = 0 (e.g. a constant) makes the solution non-smooth at
    t = 0, ρ, 2ρ, ...; the scheme then loses order near those points, which a transient removes.
    """
    N = _delay_steps(delay, h)
    if callable(history):
        past = [float(history(-j * h)) for j in range(N + 1, -1, -1)]
    else:
        past = [float(v) for v in np.asarray(history, dtype=float).ravel()]
        if len(past) != N + 2:
            raise DataError(f"history must hold N + 2 = {N + 2} values at t = -(N+1)h .. 0, got {len(past)}")
    xs = past                       # xs[i] is x at t = (i − N − 1) h
    off = N + 1
    step = _rk4_dde_step
    x = xs[-1]
    for k in range(int(n_steps)):
        i = k + off                 # index of x_k
        x = step(f, x, xs[i - N - 1], xs[i - N], xs[i - N + 1], xs[i - N + 2], h)
        xs.append(x)
    try:
        out = np.asarray(xs[off:], dtype=float)
    except TypeError:               # a negative base to a fractional power gave a complex number
        raise DataError("the delay equation left its domain (a negative value raised to a fractional power); "
                        "use a positive initial history") from None
    if not np.all(np.isfinite(out)):
        raise DataError(f"integration of the delay equation produced non-finite values (first at step "
                        f"{int(np.argmin(np.isfinite(out)))})")
    return out


def simulate_delay(system: str, parameters: dict, *, dt: float, n_samples: int, transient: int, seed: int,
                   substeps: int = 4) -> np.ndarray:
    """Sample a delay system every ``dt`` -> (n_samples, 1): :func:`integrate_dde` with h = dt / substeps from a
    constant history drawn from ``default_rng(seed)`` (kept positive); ``transient`` samples discarded."""
    sys_ = DELAY_SYSTEMS[system]
    params = dict(parameters)
    delay = float(params["delay"])
    rng = np.random.default_rng(seed)
    c0 = abs(sys_.history_center + sys_.history_scale * rng.standard_normal()) + 1e-3
    h = float(dt) / int(substeps)
    f = lambda x, xd: sys_.rhs(x, xd, **params)  # noqa: E731
    x = integrate_dde(f, lambda t: c0, delay=delay, h=h, n_steps=(transient + n_samples - 1) * int(substeps))
    return x[:: int(substeps)][transient:, None]


def delay_state(series: np.ndarray, *, delay: float, h: float) -> np.ndarray:
    """The :class:`DelayMap` state (x_{k−N−1}, ..., x_k) at the last sample of a series on the h-grid."""
    N = _delay_steps(delay, h)
    s = np.asarray(series, dtype=float).ravel()
    if len(s) < N + 2:
        raise DataError(f"need at least {N + 2} samples on the h-grid for a delay state, got {len(s)}")
    return s[-(N + 2):].copy()


class DelayMap(torch.nn.Module):
    """The Mackey-Glass (or any scalar delay system's) method-of-steps scheme as a :class:`Model`.

    State: the history buffer z = (x_{k−N−1}, ..., x_k) on the grid of step h = dt / substeps (N = delay/h),
    latent_dim N + 2; ``step`` advances one sample dt (``substeps`` steps of :func:`_rk4_dde_step`, each
    shifting the buffer), so the QR method of :func:`dsrecon.lyapunov.lyapunov_spectrum` gives the leading
    exponents of the discretised delay equation. ``observe`` returns x_k. Jacobian by autograd.
    Pitfall: the scheme is a finite-dimensional map; its leading exponents approach the DDE's as h → 0.
    """

    def __init__(self, system: str, parameters: dict, dt: float, substeps: int = 4):
        super().__init__()
        if system not in DELAY_SYSTEMS:
            raise DataError(f"unknown delay system {system!r}; known: {', '.join(sorted(DELAY_SYSTEMS))}")
        self.system = DELAY_SYSTEMS[system]
        self.system_parameters = dict(parameters)
        self.dt, self.substeps = float(dt), int(substeps)
        self.h = self.dt / self.substeps
        self.N = _delay_steps(float(parameters["delay"]), self.h)
        self.latent_dim, self.obs_dim = self.N + 2, 1

    def step(self, z):
        p = self.system_parameters
        f = lambda x, xd: self.system.rhs(x, xd, **p)  # noqa: E731
        for _ in range(self.substeps):
            # buffer index j holds x_{k−N−1+j}: older = 0, d0 = 1, d1 = 2, d2 = 3, x_k = N + 1
            new = _rk4_dde_step(f, z[..., -1], z[..., 0], z[..., 1], z[..., 2], z[..., 3], self.h)
            z = torch.cat([z[..., 1:], new.unsqueeze(-1)], dim=-1)
        return z

    def jacobian(self, z):
        return autograd_jacobian(self.step, z)

    def observe(self, z):
        return z[..., -1:]

    def force(self, x, z=None):
        raise DataError("a DelayMap's state is its history buffer; it cannot be rebuilt from one observation")


def simulate(
    system: str,
    parameters: dict,
    *,
    dt: float,
    n_samples: int,
    transient: int,
    seed: int,
    rtol: float = 1e-10,
    atol: float = 1e-10,
    substeps: int = 4,
) -> np.ndarray:
    """Integrate ``system`` and return ``n_samples`` states sampled every ``dt`` -> (n_samples, dim).

    The initial condition is drawn from ``numpy.random.default_rng(seed)`` around the system's
    ``ic_center``; the first ``transient`` samples are discarded so the orbit is on the attractor.
    Integration: LSODA (``scipy.integrate.odeint``) with rtol = atol = 1e-10 by default; the output is
    deterministic for a given seed. A delay system (Mackey-Glass) is integrated by :func:`simulate_delay`
    with h = dt / ``substeps`` instead (rtol/atol do not apply) and returns (n_samples, 1). Pitfall: the sampling grid is t_k = k·dt exactly (stored as the
    ``time`` coordinate by the data module), never n·h/(n−1).
    """
    if system in DELAY_SYSTEMS:
        return simulate_delay(system, parameters, dt=dt, n_samples=n_samples, transient=transient, seed=seed,
                              substeps=substeps)
    sys_ = get_system(system)
    rng = np.random.default_rng(seed)
    u0 = np.asarray(sys_.ic_center) + sys_.ic_scale * rng.standard_normal(len(sys_.dims))
    t = np.arange(transient + n_samples) * dt

    def rhs(u, t_):
        return sys_.rhs(t_, u, **parameters)

    sol = odeint(rhs, u0, t, rtol=rtol, atol=atol, mxstep=100_000)
    out = sol[transient:]
    if not np.all(np.isfinite(out)):
        raise DataError(f"integration of {system!r} with {parameters} produced non-finite values")
    return out


class FlowModel(torch.nn.Module):
    """A vector field as a :class:`Model`: ``step`` advances one sample interval ``dt`` by RK4.

    ``substeps`` RK4 steps of dt/substeps are taken per sample (default 10: the error is far below
    the attractor's scale for the benchmark systems at their dt). Observation is the identity.
    The Jacobian of the RK4 map is computed by automatic differentiation, which is exact for the
    discrete map; its exponents approach the flow's as dt/substeps → 0.
    """

    def __init__(self, system: str, parameters: dict, dt: float, substeps: int = 10):
        super().__init__()
        self.system = get_system(system)
        self.system_parameters = dict(parameters)
        self.dt = float(dt)
        self.substeps = int(substeps)
        self.latent_dim = self.obs_dim = len(self.system.dims)

    def step(self, z):
        h = self.dt / self.substeps
        f = lambda u: self.system.rhs(0.0, u, **self.system_parameters)  # noqa: E731 - autonomous field
        for _ in range(self.substeps):
            k1 = f(z)
            k2 = f(z + 0.5 * h * k1)
            k3 = f(z + 0.5 * h * k2)
            k4 = f(z + h * k3)
            z = z + (h / 6.0) * (k1 + 2 * k2 + 2 * k3 + k4)
        return z

    def jacobian(self, z):
        return autograd_jacobian(self.step, z)

    def observe(self, z):
        return z

    def force(self, x, z=None):
        return x
