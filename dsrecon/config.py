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
    name: str = "lorenz"          # a registered dataset (see `dsrecon.available()`), a user card or a file path
    seed: int | None = None       # None: the card's seed; another value gives an independent orbit
    noise: float | None = None    # observation noise (fraction of each channel's std); None: the card's
    forcing: str | None = None    # driven cards (duffing): "phase" (observed cos/sin) or "input"; None: the card's
    columns: list | None = None   # files: the channels to use (names or indices); None: every numeric column
    dt: float | None = None       # files: sampling interval; None: from the time column, else 1 per sample
    embed: str | None = None      # files: "auto" delay-embeds (mutual information + false nearest neighbours)
    interpolate: bool = False     # files: fill NaNs and gaps linearly instead of refusing them
    data_dir: str | None = None   # downloads (jena, eeg): where the recordings are looked for and stored

    def __post_init__(self):
        _check_types(self)

    def load_options(self) -> dict:
        """The keyword arguments of :func:`dsrecon.data.load` that differ from its defaults."""
        opts = {k: getattr(self, k) for k in ("noise", "forcing", "columns", "dt", "embed", "data_dir")}
        opts = {k: v for k, v in opts.items() if v is not None}
        if self.interpolate:
            opts["interpolate"] = True
        return opts


MODEL_KINDS = ("plrnn", "shplrnn", "rnn", "lstm", "gru")
METHODS = ("stf", "gtf", "id-tf", "bptt-clip", "window")
OPTIMIZERS = ("adam", "radam")
ADAPTIVE_ALPHAS = ("auto", "auto-norm")   # GTF alpha adapted from the model (docs/training.md)


@dataclass(frozen=True)
class ModelConfig:
    kind: str = "plrnn"           # architecture: plrnn | shplrnn | rnn | lstm | gru (docs/models.md)
    latent_dim: int | None = None  # units M; None -> the architecture's default (PLRNN: max(100, N), docs/defaults.md)
    a_init: float = 0.9           # PLRNN/shPLRNN: initial diagonal A: near-identity map, data move little per step
    w_scale: float = 0.1          # PLRNN: initial off-diagonal W std x sqrt(M)
    hidden_dim: int | None = None  # shPLRNN: width L of the hidden ReLU layer; None -> the model's default
    clipped: bool = False         # shPLRNN: the clipped, bounded variant (Hess et al. 2023)
    g: float | None = None        # RNN: recurrent gain, W ~ N(0, g^2/M); None -> the model's default
    ridge: float = 0.0            # 0: pseudo-inverse of B for forcing; > 0: ridge inverse
    keep_unobserved: bool = False  # True: forcing keeps the model's unobserved latents; stalled training
    learn_observation: bool = True  # learn B; False fixes x = first N latents (identity forcing; --method id-tf)

    def __post_init__(self):
        _check_types(self)
        _one_of("model", self.kind, MODEL_KINDS)
        if self.latent_dim is not None and (int(self.latent_dim) != self.latent_dim or self.latent_dim < 1):
            raise ConfigError(f"latent_dim must be a positive integer, got {self.latent_dim!r}")


@dataclass(frozen=True)
class TrainConfig:
    method: str = "stf"           # stf | gtf | id-tf | bptt-clip | window (docs/training.md)
    tau: str | int = "auto"       # forcing interval in steps; "auto" = round(ln2 / lambda_max per step)
    gtf_alpha: str | float = 0.15  # GTF alpha in [0, 1] (best of 0.058-0.5 on Lorenz, docs/training.md); "auto" | "auto-norm" adapt it
    clip_norm: float = 1.0        # bptt-clip: gradient-norm clip ("How to train RNNs on chaotic data" §4.2: norm 1)
    optimizer: str = "adam"       # adam (the paper's) | radam (less sensitive to the first steps' lr)
    obs_noise: float = 0.0        # std of Gaussian noise added to the forcing signal (not the targets); regularises
    latent_reg: float = 0.0       # weight of mean(z^2) of the latent states in the loss; keeps free runs bounded
    early_stop: int = 0           # stop after this many validations without improvement (0: never)
    floss_k: int = 0              # gradient flossing: number of exponents pushed to floss_target (0: off)
    floss_target: float = 0.0     # target of the flossed exponents, per step ("Gradient Flossing" Eq. 4: 0)
    prefloss_epochs: int = 0      # flossing updates before training ("Gradient Flossing" §6: 500)
    floss_every: int = 0          # training steps between flossing episodes (0: none during training)
    floss_epochs: int = 100       # flossing updates per episode during training
    floss_weight: float = 0.0     # > 0: add weight x flossing loss to every floss_every-th training step instead of episodes
    floss_steps: int = 100        # T_f: steps of the differentiable QR estimate (must bridge the time scales to learn)
    floss_qr_every: int = 1       # t_ONS of the flossing estimate ("Gradient Flossing" App. J)
    floss_lr: float = 1e-3        # Adam learning rate of the flossing updates
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
    explode_loss: float = 1e4     # a loss above this (on standardized data) counts as diverged, like a non-finite one

    def __post_init__(self):
        _check_types(self)
        _one_of("method", self.method, METHODS)
        _one_of("optimizer", self.optimizer, OPTIMIZERS)
        if self.gtf_alpha not in ADAPTIVE_ALPHAS:
            try:
                a = float(self.gtf_alpha)   # the CLI and --set pass strings
            except (TypeError, ValueError):
                a = -1.0
            if not 0.0 <= a <= 1.0:
                raise ConfigError(f"gtf_alpha must be one of {', '.join(ADAPTIVE_ALPHAS)} or a number in [0, 1], "
                                  f"got {self.gtf_alpha!r}")
            object.__setattr__(self, "gtf_alpha", a)
        for name in ("floss_k", "prefloss_epochs", "floss_every", "early_stop"):
            if int(getattr(self, name)) != getattr(self, name) or getattr(self, name) < 0:
                raise ConfigError(f"{name} must be an integer >= 0, got {getattr(self, name)!r}")
        for name in ("floss_epochs", "floss_steps", "floss_qr_every", "batch_size", "seq_len", "steps"):
            if int(getattr(self, name)) != getattr(self, name) or getattr(self, name) < 1:
                raise ConfigError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        for name in ("obs_noise", "latent_reg", "floss_weight"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if not self.clip_norm > 0:
            raise ConfigError(f"clip_norm must be > 0, got {self.clip_norm!r}")
        if self.floss_k == 0 and (self.prefloss_epochs or self.floss_every or self.floss_weight):
            raise ConfigError("flossing settings were given but floss_k = 0; set the number of exponents to floss "
                              "(--floss K)")


@dataclass(frozen=True)
class EvalConfig:
    t_gen: int = 100_000          # generated steps scored against the test split
    n_bins: int = 30              # D_stsp bins per dimension
    alpha: float = 1e-5           # D_stsp Laplace smoothing
    sigma: float = 20.0           # D_H / PSC Gaussian smoothing (frequency bins)

    def __post_init__(self):
        _check_types(self)


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

    def override(self, assignments) -> "RunConfig":
        """Apply ``section.key=value`` strings (the CLI's ``--set``); values are parsed as JSON when they
        can be (numbers, true/false, null, quoted strings), else taken as strings."""
        import json

        d = self.to_dict()
        for item in assignments:
            key, sep, raw = str(item).partition("=")
            section, dot, name = key.strip().partition(".")
            if not sep or not dot:
                raise ConfigError(f"--set takes section.key=value (e.g. train.lr=3e-4), got {item!r}")
            if section not in d:
                raise ConfigError(f"unknown config section {section!r} in --set {item}; valid: {sorted(d)}")
            if name not in d[section]:
                raise ConfigError(f"unknown key {name!r} in [{section}] (--set {item}); valid keys: "
                                  f"{sorted(d[section])}")
            try:
                value = json.loads(raw)
            except ValueError:
                value = raw.strip()
            d[section][name] = value
        try:
            return RunConfig.from_dict(d)
        except TypeError as err:
            raise ConfigError(f"invalid --set value: {err}") from None


_TYPES = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,), "None": (type(None),),
          "list": (list, tuple)}


def _check_types(obj) -> None:
    """Each field's value has one of the types its annotation names (bools are not numbers here), so a
    ``lr = "fast"`` in a config file fails with one line naming the key instead of deep inside torch."""
    for f in fields(obj):
        value = getattr(obj, f.name)
        names = [t.strip() for t in str(f.type).split("|")]
        ok = any(isinstance(value, _TYPES.get(t, (object,))) and not (isinstance(value, bool) and t != "bool")
                 for t in names)
        if not ok:
            section = type(obj).__name__.replace("Config", "").lower()
            raise ConfigError(f"[{section}] {f.name} must be {' or '.join(names)}, got {value!r}")


def _one_of(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ConfigError(f"unknown {name} {value!r}; available: {', '.join(allowed)}")


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
