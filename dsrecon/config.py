"""Every setting of a run as frozen dataclasses with a default and a one-line reason.

``RunConfig.to_dict()`` is what ``config.json`` holds; ``RunConfig.from_dict`` rebuilds it and rejects
unknown keys with a ConfigError that lists the valid ones. The CLI only overrides fields.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field, fields

from .errors import ConfigError


@dataclass(frozen=True)
class DataConfig:
    name: str = "lorenz"          # a registered dataset (see `dsrecon.available()`)
    seed: int | None = None       # None: the card's seed; another value gives an independent orbit


@dataclass(frozen=True)
class ModelConfig:
    kind: str = "plrnn"           # architecture; only "plrnn" so far
    latent_dim: int | None = None  # M; None -> max(100, obs_dim): larger M fit Lorenz better (docs/defaults.md)
    a_init: float = 0.9           # initial diagonal A: near-identity map, data move little per step
    w_scale: float = 0.1          # initial off-diagonal W std x sqrt(M)
    ridge: float = 0.0            # 0: pseudo-inverse of B for forcing; > 0: ridge inverse
    keep_unobserved: bool = False  # True: forcing keeps the model's unobserved latents; stalled training
    learn_observation: bool = True  # learn B; False fixes x = first N latents (identity forcing)


@dataclass(frozen=True)
class TrainConfig:
    tau: str | int = "auto"       # forcing interval in steps; "auto" = round(ln2 / lambda_max per step)
    steps: int = 15000            # optimiser steps (deterministic); about 5 min on 2 CPU cores at M = 100
    time_budget: float | None = None  # seconds; stop early when exceeded (then results depend on speed)
    batch_size: int = 32          # subsequences per step; 32 trained more steadily than 16 (docs/defaults.md)
    seq_len: int = 200            # steps per subsequence (several forcing intervals at tau ~ 46)
    tau_anneal: float = 0.0       # fraction of the steps over which tau grows geometrically from 1 to tau
    lr: float = 1e-3              # Adam, as in "How to train RNNs on chaotic data" §4.2
    lr_end: float = 1e-5          # exponential decay to this value: smoother late training (docs/defaults.md)
    seed: int = 0                 # batch sampling and model initialisation
    device: str = "auto"          # auto | cpu | cuda | mps
    checkpoint_every: int = 500   # steps between checkpoints/last.pt
    validate_every: int = 500     # steps between short free-run validations (keeps the best model)
    val_len: int = 20000          # steps of each validation free run (long: late collapses must show)
    val_runs: int = 4             # initial conditions of the validation free runs
    max_recoveries: int = 3       # non-finite losses survived (restore + halve lr) before giving up


@dataclass(frozen=True)
class EvalConfig:
    t_gen: int = 100_000          # generated steps scored against the test split
    n_bins: int = 30              # D_stsp bins per dimension
    alpha: float = 1e-5           # D_stsp Laplace smoothing
    sigma: float = 20.0           # D_H / PSC Gaussian smoothing (frequency bins)


@dataclass(frozen=True)
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        parts = {f.name: f.type for f in fields(cls)}
        unknown = set(d) - set(parts)
        if unknown:
            raise ConfigError(f"unknown config section(s) {sorted(unknown)}; valid: {sorted(parts)}")
        kinds = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig, "eval": EvalConfig}
        return cls(**{k: _build(kinds[k], v, k) for k, v in d.items()})

    def replace(self, **sections) -> "RunConfig":
        return dataclasses.replace(self, **sections)


def _build(kind, values: dict, section: str):
    valid = {f.name for f in fields(kind)}
    unknown = set(values) - valid
    if unknown:
        raise ConfigError(f"unknown key(s) {sorted(unknown)} in [{section}]; valid keys: {sorted(valid)}")
    return kind(**values)


def parse_tau(value) -> str | int:
    """'auto' or a positive integer number of steps; anything else is a ConfigError."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"--tau must be 'auto' or a positive integer number of steps, got {value!r}") from None
    if not f.is_integer() or f < 1:
        raise ConfigError(f"--tau must be 'auto' or a positive integer number of steps, got {value!r}")
    return int(f)


def parse_duration(value: str | float | None) -> float | None:
    """'90s', '3m', '1.5h' or a number of seconds -> seconds."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([smh]?)\s*", str(value))
        if not m:
            raise ConfigError(f"--time-budget must look like 90s, 3m or 1.5h, got {value!r}")
        seconds = float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]
    if seconds <= 0:
        raise ConfigError(f"--time-budget must be positive, got {value!r}")
    return seconds
