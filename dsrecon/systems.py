"""True equations of the simulated benchmark systems.

Each system is a vector field ``rhs(t, u, **parameters)`` plus an accurate integrator that samples it
every ``dt``. The data module calls :func:`simulate`; the Lyapunov code uses :class:`FlowModel`, which
wraps a vector field as a :class:`dsrecon.models.base.Model` (one RK4 step per ``dt`` split into
sub-steps, Jacobian by automatic differentiation), so the spectrum code meets known answers before any
trained network.
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
}


def get_system(name: str) -> System:
    try:
        return SYSTEMS[name]
    except KeyError:
        raise DataError(f"unknown system {name!r}; known systems: {', '.join(sorted(SYSTEMS))}") from None


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
) -> np.ndarray:
    """Integrate ``system`` and return ``n_samples`` states sampled every ``dt`` -> (n_samples, dim).

    The initial condition is drawn from ``numpy.random.default_rng(seed)`` around the system's
    ``ic_center``; the first ``transient`` samples are discarded so the orbit is on the attractor.
    Integration: LSODA (``scipy.integrate.odeint``) with rtol = atol = 1e-10 by default; the output is
    deterministic for a given seed. Pitfall: the sampling grid is t_k = k·dt exactly (stored as the
    ``time`` coordinate by the data module), never n·h/(n−1).
    """
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
