"""Reservoir-computing baseline: an echo state network (reservoirpy), scored by dsrecon's metrics.

What a user would otherwise pick for a chaotic series: a fixed random leaky-tanh reservoir
r_{t+1} = (1 − a) r_t + a tanh(W r_t + W_in x_t + b) driven by the data, a linear readout
x̂_{t+1} = W_out [1; r_{t+1}] fitted by ridge regression (teacher forcing), then run in closed loop
(the prediction fed back as the next input) to generate a free trajectory (Jaeger 2001; Pathak et al.,
Chaos 27, 121102 (2017) for attractor reconstruction). Nothing is trained by gradients, so it costs
seconds; the price is sensitivity to the hyperparameters (spectral radius, leak rate, input scaling,
ridge), which is why :class:`ESN` picks them by a small validation search by default (see
:data:`SEARCH_GRID` and docs/sweeps.md).

reservoirpy is an optional extra: ``pip install 'dsrecon[esn]'``.
"""
from __future__ import annotations

import itertools
import math
import time
from pathlib import Path

import numpy as np

from . import data as data_mod, evaluation, metrics as M, report
from .data import as_array
from .errors import ConfigError, DataError
from .evaluation import generated_dataset
from .metrics import d_stsp, hellinger_distance
from .runs import write_json

#: The documented search: every combination is fitted on the first 80 % of the training split and
#: free-run against the last 20 %; the lowest validation D_stsp wins (ties: lowest D_H).
SEARCH_GRID = {
    "sr": (0.9, 1.2),                 # spectral radius of W: memory vs. stability of the closed loop
    "lr": (0.3, 1.0),                 # leak rate a: slow reservoirs for finely sampled flows
    "input_scaling": (0.1, 0.5),      # size of W_in relative to standardized inputs
    "bias_scaling": (0.5, 1.0),       # b ~ U(-s, s) per unit: breaks tanh's odd symmetry (see ESN)
}
SEARCH_TRAIN = 20_000    # at most this many training steps per candidate (the search must cost seconds)
SEARCH_GEN = 10_000      # free-run length of each validation run


def _reservoirpy():
    try:
        import reservoirpy.nodes as nodes   # an optional extra (dsrecon[esn]): imported only when an ESN is built
    except ImportError:
        raise ConfigError("the echo-state-network baseline needs reservoirpy: pip install 'dsrecon[esn]'") from None
    return nodes


class ESN:
    """Echo state network with a ridge readout, trained by one-step teacher forcing, generating in closed loop.

    Parameters are reservoirpy's ``Reservoir`` ones (``units``, ``sr`` spectral radius, ``lr`` leak
    rate, ``input_scaling``, ``rc_connectivity``, ``input_connectivity``) and the readout's ``ridge``;
    ``warmup`` states are discarded before the readout is fitted. ``search=True`` replaces
    sr/lr/input_scaling/bias_scaling by the best of :data:`SEARCH_GRID` on a validation split of the training
    data (``self.search_results_`` holds every candidate's scores).

    ``bias_scaling``: each unit gets a constant bias b_i ~ U(−s, s). Without it the reservoir is an odd
    function of its input history and a linear readout cannot represent even components such as Lorenz's
    z (x, y, z → −x, −y, z); measured on Lorenz, validation D_stsp ≈ 8 without bias, ≈ 0.8 with s = 0.5.
    Pathak et al. break the symmetry by squaring half the states instead.

    Pitfalls: the closed loop can leave the attractor (blow up, or settle on a fixed point or cycle)
    for settings that predict one step well; only a free-run score, as in the search, reveals it.
    """

    def __init__(self, units: int = 500, sr: float = 0.9, lr: float = 0.3, input_scaling: float = 0.1,
                 bias_scaling: float = 0.5, ridge: float = 1e-6, rc_connectivity: float = 0.1, input_connectivity: float = 1.0,
                 warmup: int = 200, search: bool = True, seed: int = 0):
        for name, v, lo in (("units", units, 1), ("warmup", warmup, 0)):
            if int(v) != v or v < lo:
                raise ConfigError(f"esn.{name} must be an integer >= {lo}, got {v!r}")
        for name, v in (("sr", sr), ("lr", lr), ("input_scaling", input_scaling), ("bias_scaling", bias_scaling), ("rc_connectivity", rc_connectivity),
                        ("input_connectivity", input_connectivity)):
            if not (isinstance(v, (int, float)) and v > 0):
                raise ConfigError(f"esn.{name} must be a positive number, got {v!r}")
        if not (isinstance(ridge, (int, float)) and ridge >= 0):
            raise ConfigError(f"esn.ridge must be >= 0, got {ridge!r}")
        self.units, self.sr, self.lr, self.input_scaling, self.ridge = int(units), sr, lr, input_scaling, ridge
        self.bias_scaling = bias_scaling
        self.rc_connectivity, self.input_connectivity = rc_connectivity, input_connectivity
        self.warmup, self.search, self.seed = int(warmup), bool(search), int(seed)
        self.search_results_: list[dict] = []
        self._net = None

    @property
    def hparams(self) -> dict:
        return {k: getattr(self, k) for k in ("units", "sr", "lr", "input_scaling", "bias_scaling", "ridge", "rc_connectivity",
                                              "input_connectivity", "warmup", "search", "seed")}

    def _build(self, sr, lr, input_scaling, bias_scaling, ridge):
        nodes = _reservoirpy()
        bias = np.random.default_rng(self.seed).uniform(-bias_scaling, bias_scaling, self.units)
        res = nodes.Reservoir(units=self.units, sr=sr, lr=lr, input_scaling=input_scaling, bias=bias,
                              rc_connectivity=self.rc_connectivity, input_connectivity=self.input_connectivity,
                              seed=self.seed)
        return res >> nodes.Ridge(ridge=ridge)

    def _fit_one(self, x: np.ndarray, params: dict):
        net = self._build(**params)
        net.fit(x[:-1], x[1:], warmup=min(self.warmup, len(x) // 4))
        return net

    @staticmethod
    def _closed_loop(net, history: np.ndarray, n_steps: int) -> np.ndarray:
        """Teacher-force ``history`` through the network, then feed predictions back for ``n_steps``."""
        net.reset()
        y = None
        for xt in history:
            y = net.step(xt)
        out = np.empty((n_steps, history.shape[1]))
        with np.errstate(over="ignore", invalid="ignore"):
            for t in range(n_steps):
                out[t] = y
                if not np.all(np.isfinite(y)) or np.max(np.abs(y)) > 1e6:
                    out[t:] = np.nan   # left the attractor for good: the metrics report it as non-finite
                    break
                y = net.step(y)
        return out

    def fit(self, x) -> "ESN":
        """Fit to a (T, N) standardized series (the training split); with ``search`` pick the hyperparameters."""
        x = as_array(x, what="ESN training data")
        if len(x) < 4 * max(self.warmup, 50):
            raise DataError(f"the ESN needs at least {4 * max(self.warmup, 50)} training steps, got {len(x)}")
        params = {k: getattr(self, k) for k in ("sr", "lr", "input_scaling", "bias_scaling", "ridge")}
        if self.search:
            cut = int(0.8 * len(x))
            fit_part, val = x[max(0, cut - SEARCH_TRAIN):cut], x[cut:]
            n_gen = min(SEARCH_GEN, len(val))
            self.search_results_ = []
            for combo in itertools.product(*SEARCH_GRID.values()):
                p = {**params, **dict(zip(SEARCH_GRID, combo))}
                gen = self._closed_loop(self._fit_one(fit_part, p), fit_part[-self.warmup - 1:], n_gen)
                ds = d_stsp(val, gen, method="auto").value
                dh = hellinger_distance(val, gen).value
                self.search_results_.append({**{k: p[k] for k in SEARCH_GRID}, "D_stsp": float(ds), "D_H": float(dh)})
            ok = [r for r in self.search_results_ if math.isfinite(r["D_stsp"])]
            if ok:
                best = min(ok, key=lambda r: (r["D_stsp"], r["D_H"] if math.isfinite(r["D_H"]) else math.inf))
                params = {**params, **{k: best[k] for k in SEARCH_GRID}}
            for k, v in params.items():
                setattr(self, k, v)
        self._net = self._fit_one(x, params)
        self._train_tail = x[-self.warmup - 1:]
        return self

    def generate(self, n_steps: int, history=None) -> np.ndarray:
        """Closed-loop run of ``n_steps`` after teacher-forcing ``history`` (default: the end of the training data).

        With the default, the run continues the training series, i.e. it covers the time of the test split.
        """
        if self._net is None:
            raise ConfigError("ESN.generate before fit: call fit(x) first")
        if int(n_steps) != n_steps or n_steps < 1:
            raise ConfigError(f"n_steps must be a positive integer, got {n_steps!r}")
        hist = self._train_tail if history is None else np.atleast_2d(np.asarray(history, dtype=float))
        return self._closed_loop(self._net, hist, int(n_steps))


def run_esn(data, *, t_gen: int, seed: int = 0, params: dict | None = None, eval_kw: dict | None = None,
            run_dir=None) -> dict:
    """Fit the ESN baseline to the training split of ``data``, free-run ``t_gen`` steps, score like :func:`dsrecon.evaluate`.

    Scores: D_stsp (``method="auto"``), D_H, PSC and their legacy variants, and the noise floor of the
    same seed as a dsrecon run on these data (data seed + 1), so the numbers sit in the same table.
    With ``run_dir``: writes metrics.json, generated.nc and the attractor/spectrum plots there.
    """
    if "s" in data and data.attrs.get("forcing", "input") != "phase":   # phase mode observes the forcing as channels
        raise ConfigError("the ESN baseline does not take external inputs; load the driven dataset with "
                          "forcing='phase' (the default) to observe the forcing instead")
    t0 = time.monotonic()
    train, test = data_mod.train_test_split(data)
    esn = ESN(seed=seed, **(params or {}))
    esn.fit(data_mod.as_array(train, what="training data"))
    train_seconds = time.monotonic() - t0
    gen_x = esn.generate(int(t_gen))
    gen = generated_dataset(gen_x, test, "ESN (reservoirpy)")
    kw = {"n_bins": 30, "alpha": 1e-5, "sigma": 20.0, **(eval_kw or {})}
    scores = M.score_all(test, gen, method="auto", legacy=True, **kw)
    metrics = {k: float(v.value) for k, v in scores.items()}
    floor = evaluation.noise_floor(data, int(t_gen), seeds=[int(data.attrs["seed"]) + 1], method="auto", legacy=True, **kw)
    metrics.update({
        "T_gen": int(t_gen), "T_test": int(test.sizes["time"]),
        "variants": {k: v.variant for k, v in scores.items()},
        "reasons": {k: v.reason for k, v in scores.items() if v.reason},
        "noise_floor": {**{k: float(v.value) for k, v in floor.items()}, "seed": int(data.attrs["seed"]) + 1},
        "train_seconds": train_seconds, "total_seconds": time.monotonic() - t0, "steps": 0, "tau": None,
        "dataset": data.attrs["name"], "model": "esn", "esn": esn.hparams, "esn_search": esn.search_results_,
    })
    if run_dir is not None:
        run_dir = Path(run_dir)
        write_json(run_dir / "metrics.json", metrics)
        data_mod.write_netcdf(data_mod.to_physical(gen), run_dir / "generated.nc")
        report.plot_run(run_dir)
    return metrics
